//! What travels in message headers: attempt counts, failure reasons, dead-letter data.

use aggregator_core::domain::{Message, MessageId};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

pub(crate) const ATTEMPT: &str = "x-attempt";
pub(crate) const LAST_ERROR: &str = "x-last-error";
pub(crate) const DEAD_ATTEMPTS: &str = "x-dead-attempts";
pub(crate) const DEAD_REASON: &str = "x-dead-reason";
pub(crate) const DEAD_AT: &str = "x-dead-at-ms";
/// Set by quorum queues: how many times this message was handed out and came back
/// unsettled (its consumer died, or dropped it).
pub(crate) const DELIVERY_COUNT: &str = "x-delivery-count";

/// Persistent, with the message id and the given headers.
pub(crate) fn properties(message: &Message, headers: FieldTable) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        .with_message_id(ShortString::from(message.id.to_string()))
        .with_headers(headers)
}

pub(crate) fn table(entries: Vec<(&str, AMQPValue)>) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in entries {
        table.insert(ShortString::from(key), value);
    }
    table
}

pub(crate) fn number(value: u64) -> AMQPValue {
    AMQPValue::LongLongInt(i64::try_from(value).unwrap_or(i64::MAX))
}

pub(crate) fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.to_owned()))
}

/// A numeric header, whatever integer type the sender used.
pub(crate) fn read_number(properties: &BasicProperties, key: &str) -> Option<u64> {
    let headers = properties.headers().as_ref()?;
    match headers.inner().get(key)? {
        AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(u64::from(*n)),
        AMQPValue::ShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::ShortUInt(n) => Some(u64::from(*n)),
        AMQPValue::ShortShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::ShortShortUInt(n) => Some(u64::from(*n)),
        _ => None,
    }
}

/// A text header.
pub(crate) fn read_text(properties: &BasicProperties, key: &str) -> Option<String> {
    let headers = properties.headers().as_ref()?;
    match headers.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// Why and when the broker itself dead-lettered a message (a quorum queue's delivery
/// limit), from the `x-death` record it adds: the reason and the time in Unix seconds.
pub(crate) fn broker_death(properties: &BasicProperties) -> Option<(String, Option<u64>)> {
    let headers = properties.headers().as_ref()?;
    let AMQPValue::FieldArray(deaths) = headers.inner().get("x-death")? else {
        return None;
    };
    let AMQPValue::FieldTable(first) = deaths.as_slice().first()? else {
        return None;
    };
    let reason = match first.inner().get("reason")? {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        _ => return None,
    };
    let time = match first.inner().get("time") {
        Some(AMQPValue::Timestamp(seconds)) => Some(*seconds),
        _ => None,
    };
    Some((reason, time))
}

/// The message as we published it (a message from elsewhere without a valid id gets a
/// new one).
pub(crate) fn message(properties: &BasicProperties, body: Vec<u8>) -> Message {
    let id = properties
        .message_id()
        .as_ref()
        .and_then(|id| id.as_str().parse::<MessageId>().ok())
        .unwrap_or_default();
    Message { id, body }
}
