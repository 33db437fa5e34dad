//! The connection to the broker and the publishing channel, re-opened on demand after
//! a drop.

use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use aggregator_core::domain::QueueName;
use aggregator_core::{Error, Result};
use lapin::options::{ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::Mutex;

use crate::config::RabbitConfig;
use crate::headers::{table, text};

const COMPONENT: &str = "rabbitmq";

/// A broker error as a retryable `Unavailable` (the caller's retry goes through a fresh
/// connection).
pub(crate) fn transient(context: &str, error: &lapin::Error) -> Error {
    Error::transient(COMPONENT, format!("{context}: {error}"))
}

struct Open {
    connection: Connection,
    publisher: Channel,
}

impl Open {
    fn is_up(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }
}

/// The shared connection; every use checks it is still up and re-opens it if not.
pub(crate) struct Link {
    config: RabbitConfig,
    open: Mutex<Option<Open>>,
    /// The node (index into the URL list) that accepted the last connection.
    node: AtomicUsize,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("config", &self.config)
            .finish()
    }
}

impl Link {
    pub(crate) fn new(config: RabbitConfig) -> Self {
        Self {
            config,
            open: Mutex::new(None),
            node: AtomicUsize::new(0),
        }
    }

    pub(crate) fn config(&self) -> &RabbitConfig {
        &self.config
    }

    /// A connection of its own (for a consumer), to the node that answered last, with
    /// that node's index for [`Link::pass_over`].
    pub(crate) async fn connect(&self) -> Result<(Connection, usize)> {
        crate::connect::connect(&self.config, &self.node).await
    }

    /// The next connection starts past `node`: it accepted a connection that could not
    /// be set up.
    pub(crate) fn pass_over(&self, node: usize) {
        crate::connect::pass_over(&self.node, node);
    }

    /// The publishing channel of a new connection, with confirms on and the topology
    /// declared.
    async fn set_up(&self, connection: &Connection) -> Result<Channel> {
        let publisher = connection
            .create_channel()
            .await
            .map_err(|e| transient("opening a channel", &e))?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| transient("enabling confirms", &e))?;
        declare(&publisher, &self.config).await?;
        Ok(publisher)
    }

    /// Whether the connection is up right now.
    pub(crate) async fn is_connected(&self) -> bool {
        self.open.lock().await.as_ref().is_some_and(Open::is_up)
    }

    /// Opens the connection if it is down, declaring the topology on the way.
    async fn ensure<'a>(&self, open: &'a mut Option<Open>) -> Result<&'a Open> {
        let healthy = open.as_ref().is_some_and(Open::is_up);
        if !healthy {
            *open = None;
            let (connection, node) = crate::connect::connect(&self.config, &self.node).await?;
            let publisher = match self.set_up(&connection).await {
                Ok(publisher) => publisher,
                Err(error) => {
                    crate::connect::pass_over(&self.node, node);
                    return Err(error);
                }
            };
            tracing::info!("connected to rabbitmq");
            *open = Some(Open {
                connection,
                publisher,
            });
        }
        open.as_ref()
            .ok_or_else(|| Error::transient(COMPONENT, "not connected"))
    }

    /// A new channel on the (re-opened if need be) connection.
    pub(crate) async fn channel(&self) -> Result<Channel> {
        let mut open = self.open.lock().await;
        let mut tries = 0;
        loop {
            let link = self.ensure(&mut open).await?;
            match link.connection.create_channel().await {
                Ok(channel) => return Ok(channel),
                // lapin can hand out the id of a channel that is still closing (a
                // dropped subscription closes its channel in the background); such an
                // attempt fails at once and the next one gets a free id.
                Err(error) if tries < 10 => {
                    tracing::debug!(%error, "opening a channel failed; retrying");
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(10 * tries)).await;
                }
                Err(error) => return Err(transient("opening a channel", &error)),
            }
        }
    }

    /// Publishes to `queue` (by its broker name) and waits for the broker's confirm; a
    /// message no queue takes is an error, not a silent loss. Concurrent publishes
    /// share the channel, so their confirms overlap.
    pub(crate) async fn publish(
        &self,
        queue: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<()> {
        let publisher = {
            let mut open = self.open.lock().await;
            self.ensure(&mut open).await?.publisher.clone()
        };
        let outcome = async {
            // Mandatory: a message no queue takes comes back (and fails the publish)
            // instead of being confirmed and dropped.
            let options = lapin::options::BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            };
            let confirm = publisher
                .basic_publish("".into(), queue.into(), options, body, properties)
                .await
                .map_err(|e| transient("publishing", &e))?;
            match tokio::time::timeout(self.config.confirm_timeout, confirm).await {
                Ok(Ok(Confirmation::Ack(None) | Confirmation::NotRequested)) => Ok(()),
                Ok(Ok(Confirmation::Ack(Some(_)))) => Err(Error::transient(
                    COMPONENT,
                    format!("queue {queue} does not exist"),
                )),
                Ok(Ok(Confirmation::Nack(_))) => Err(Error::transient(
                    COMPONENT,
                    "the broker refused the message",
                )),
                Ok(Err(e)) => Err(transient("waiting for the confirm", &e)),
                Err(_) => Err(Error::transient(COMPONENT, "no confirm in time")),
            }
        }
        .await;
        if outcome.is_err() {
            // Start over on a fresh connection next time, unless someone already did.
            let mut open = self.open.lock().await;
            if open
                .as_ref()
                .is_some_and(|o| o.publisher.id() == publisher.id())
            {
                *open = None;
            }
        }
        outcome
    }
}

/// Declares every queue (idempotent): the main queues, one delay queue per retry whose
/// messages dead-letter back to the main queue when their TTL runs out, and the
/// dead-letter queues.
async fn declare(channel: &Channel, config: &RabbitConfig) -> Result<()> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    for queue in QueueName::ALL {
        let main = config.queue(queue);
        channel
            .queue_declare(main.as_str().into(), durable, main_arguments(config, queue))
            .await
            .map_err(|e| transient("declaring a queue", &e))?;
        channel
            .queue_declare(
                config.dead_letter_queue(queue).into(),
                durable,
                arguments(config, vec![]),
            )
            .await
            .map_err(|e| transient("declaring a queue", &e))?;
        for (index, delay) in config.retry.delays().iter().enumerate() {
            let attempt = u32::try_from(index + 1).unwrap_or(u32::MAX);
            let ttl = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
            let mut entries = vec![
                ("x-message-ttl", AMQPValue::LongUInt(ttl)),
                ("x-dead-letter-exchange", text("")),
                ("x-dead-letter-routing-key", text(&main)),
            ];
            entries.extend(at_least_once(config));
            channel
                .queue_declare(
                    config.delay_queue(queue, attempt).into(),
                    durable,
                    arguments(config, entries),
                )
                .await
                .map_err(|e| transient("declaring a delay queue", &e))?;
        }
    }
    Ok(())
}

/// The main queue's arguments: on quorum queues, the delivery limit, past which the
/// broker moves the message to the dead-letter queue. The dead-letter queue itself has
/// no limit: listing it hands every message back, and a limit there would drop them.
fn main_arguments(config: &RabbitConfig, queue: QueueName) -> FieldTable {
    let mut entries = Vec::new();
    if config.quorum
        && let Some(limit) = config.delivery_limit
    {
        entries.push(("x-delivery-limit", AMQPValue::LongUInt(limit)));
        entries.push(("x-dead-letter-exchange", text("")));
        entries.push((
            "x-dead-letter-routing-key",
            text(&config.dead_letter_queue(queue)),
        ));
        entries.extend(at_least_once(config));
    }
    arguments(config, entries)
}

/// On quorum queues, dead-lettering that keeps the message until the target queue has
/// confirmed it (the default drops it if the target cannot take it); the broker needs
/// publishes refused rather than old messages dropped for that.
fn at_least_once(config: &RabbitConfig) -> Vec<(&'static str, AMQPValue)> {
    if config.quorum {
        vec![
            ("x-dead-letter-strategy", text("at-least-once")),
            ("x-overflow", text("reject-publish")),
        ]
    } else {
        Vec::new()
    }
}

/// `entries` plus the queue type.
fn arguments(config: &RabbitConfig, mut entries: Vec<(&str, AMQPValue)>) -> FieldTable {
    if config.quorum {
        entries.push(("x-queue-type", text("quorum")));
    }
    table(entries)
}
