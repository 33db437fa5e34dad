//! `GET /api/events`: order events as server-sent events, resumable with
//! `Last-Event-ID`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use aggregator_core::domain::{CustomerId, EventCursor, EventRead, LoggedOrderEvent};
use aggregator_core::service::{EventFollower, Scope, ShutdownSignal};
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::extract::Caller;
use crate::api::middleware::LimitKey;
use crate::api::problem::{ApiError, Problem};
use crate::api::state::ApiState;
use crate::api::stream_slots::StreamSlot;

/// Events read from the store per round.
const READ_BATCH: u32 = 200;

/// How long a stream waits for the shared reader's news before looking again anyway.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// How long a client should wait before reconnecting after the stream ends.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Where to start, for clients that cannot send `Last-Event-ID`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsQuery {
    /// The id of the last event the client has; the header wins when both are given.
    #[param(example = "812-4031")]
    last_event_id: Option<String>,
}

/// One order status change, the `data` of an `order` event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderEventView {
    /// Stable across reconnects and deliveries: `<order id>:v<version>`.
    #[schema(example = "01939b2e-7c1a-7d2e-9b1f-3a4c5d6e7f80:v2")]
    id: String,
    /// The order.
    order_id: String,
    /// The order's customer.
    customer_id: String,
    /// The status before (absent when the order was created).
    from: Option<String>,
    /// The status after.
    to: String,
    /// Why.
    reason: String,
    /// When (RFC 3339).
    at: String,
    /// The order's version after the change.
    version: i64,
}

impl OrderEventView {
    fn from_event(event: &LoggedOrderEvent) -> Self {
        Self {
            id: event.id.clone(),
            order_id: event.order_id.to_string(),
            customer_id: event.customer_id.to_string(),
            from: event.change.from.map(|s| s.as_str().to_owned()),
            to: event.change.to.as_str().to_owned(),
            reason: event.change.reason.clone(),
            at: event
                .change
                .at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            version: event.change.version,
        }
    }
}

/// The `data` of a `reset` event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResetView {
    /// What happened and what to do.
    detail: String,
    /// Where the stream goes on from (also this event's id).
    resume_from: String,
}

/// Streams order status changes as server-sent events: a client key receives its
/// customer's, the admin key every customer's.
///
/// Each change is an event named `order` whose `id` is its position in the log and
/// whose `data` is an [`OrderEventView`]. Reconnecting with `Last-Event-ID` (or
/// `?lastEventId=`) goes on right after that event, so nothing is missed or repeated.
/// Events are kept for the event retention (`--event-retention`, 7 days by default); a
/// client whose id is older than that, or unknown, first receives a `reset` event: it
/// has missed events, must re-read the state of the orders it follows, and the stream
/// goes on from the reset's id. Comments keep the connection alive every 15 s.
///
/// However many streams are open, one reader per server follows the log for all of
/// them. One API key (one client address without keys) may hold a limited number of
/// streams open at once (`--max-streams-per-key`, 16 by default); one more is answered
/// 429 with `Retry-After`.
#[utoipa::path(get, path = "/api/events", tag = "events",
    params(
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event the client has (sent by EventSource on reconnect)"),
        EventsQuery,
    ),
    responses(
        (status = 200, description = "A stream of `order` events (data: OrderEventView) and, when the asked position is gone, one `reset` event (data: ResetView) first", content_type = "text/event-stream", body = String),
        (status = 400, description = "Not an event id this server gave", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "This key already holds as many open streams as allowed; see Retry-After", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn events(
    State(state): State<ApiState>,
    caller: Caller,
    limit_key: Option<Extension<LimitKey>>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let header = headers
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .map(str::to_owned)
                .map_err(|_| ApiError::invalid("lastEventId", "must be visible ASCII"))
        })
        .transpose()?;
    let after = header
        .or(query.last_event_id)
        .filter(|text| !text.is_empty())
        .map(|text| text.parse::<EventCursor>())
        .transpose()?;
    let customer = match caller.scope() {
        Scope::All => None,
        Scope::Customer(customer) => Some(customer),
    };
    let holder = limit_key.map_or_else(|| "open".to_owned(), |Extension(key)| key.0);
    let max = state.inner.config.max_streams_per_key;
    let Some(slot) = state.inner.streams.open(&holder, max) else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-streams",
            "Too many open event streams",
            format!("this key already holds {max} open event streams; close one first"),
        )
        .retry_after(5));
    };
    state.inner.events.start(state.stop.clone());
    let follow = Follow {
        events: state.inner.events.clone(),
        customer,
        cursor: after,
        queued: VecDeque::new(),
        stop: state.stop.clone(),
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(follow, |mut follow| async move {
        let event = follow.next_event().await?;
        Some((Ok(event), follow))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One client's place in the log.
struct Follow {
    events: EventFollower,
    customer: Option<CustomerId>,
    cursor: Option<EventCursor>,
    queued: VecDeque<Event>,
    stop: ShutdownSignal,
    _slot: StreamSlot,
}

impl Follow {
    /// The next event to send; `None` once the server is stopping.
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.queued.pop_front() {
                return Some(event);
            }
            if self.stop.is_triggered() {
                return None;
            }
            let read = self
                .events
                .read(self.cursor, self.customer.as_ref(), READ_BATCH)
                .await;
            match read {
                Ok((EventRead::Events(events), scanned)) if events.is_empty() => {
                    // Past other customers' events, if any were read.
                    if scanned > self.cursor {
                        self.cursor = scanned;
                        continue;
                    }
                    self.pause().await;
                }
                Ok((EventRead::Events(events), scanned)) => {
                    let last = events.last().and_then(|event| event.cursor);
                    for event in events {
                        let Some(cursor) = event.cursor else { continue };
                        self.cursor = Some(cursor);
                        let data = Event::default()
                            .event("order")
                            .id(cursor.to_string())
                            .retry(RECONNECT_AFTER)
                            .json_data(OrderEventView::from_event(&event));
                        match data {
                            Ok(data) => self.queued.push_back(data),
                            Err(error) => {
                                tracing::warn!(%error, "an order event could not be encoded")
                            }
                        }
                    }
                    if scanned > last {
                        self.cursor = scanned;
                    }
                }
                Ok((EventRead::Gone { resume_from }, _)) => {
                    let from = resume_from.unwrap_or(EventCursor::new(0, 0));
                    self.cursor = Some(from);
                    let reset = ResetView {
                        detail: "the asked event is no longer kept (or was never given): events \
                                 were missed; re-read the orders you follow, then go on from here"
                            .to_owned(),
                        resume_from: from.to_string(),
                    };
                    match Event::default()
                        .event("reset")
                        .id(from.to_string())
                        .json_data(reset)
                    {
                        Ok(event) => return Some(event),
                        Err(error) => tracing::warn!(%error, "a reset event could not be encoded"),
                    }
                }
                Err(error) => {
                    // Keep the connection: the client's position is ours to keep, and the
                    // store usually comes back.
                    tracing::warn!(%error, "reading order events failed; trying again");
                    self.pause().await;
                }
            }
        }
    }

    /// Waits for the shared reader's news (at most a poll interval), or less if the
    /// server stops meanwhile.
    async fn pause(&self) {
        tokio::select! {
            () = self.events.wait_for_news(POLL_EVERY) => {}
            () = self.stop.clone().wait() => {}
        }
    }
}
