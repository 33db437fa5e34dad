//! Connecting to a broker that may be one of several cluster nodes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aggregator_core::{Error, Result};
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};

use crate::config::RabbitConfig;

/// How long one node may take to accept a connection before the next is tried.
const PER_NODE: Duration = Duration::from_secs(5);

/// The largest frame this client proposes when the node's URL names none
/// (`?frame_max=`). The client keeps a send and a receive buffer of 32 frames for each
/// connection, so RabbitMQ's default of 128 KiB held 8 MiB per connection (40 MiB for a
/// process's five); at 32 KiB they hold 2 MiB, and a message of a whole relay batch
/// (256 order ids) still fits in one frame. Larger messages travel in several frames.
pub(crate) const DEFAULT_FRAME_MAX: u32 = 32 * 1024;

/// Parses one node's URL and proposes [`DEFAULT_FRAME_MAX`] unless the URL names its own
/// frame size; the broker may lower it further.
fn node_uri(url: &str) -> std::result::Result<AMQPUri, String> {
    let mut uri: AMQPUri = url.parse()?;
    if uri.query.frame_max.is_none() {
        uri.query.frame_max = Some(DEFAULT_FRAME_MAX);
    }
    Ok(uri)
}

/// Opens a connection to the first node of `config`'s list that accepts one, starting
/// with the node that answered last time (`last`), so a process stays on a node while
/// it is up and moves on once it is not; answers the connection and the node's index.
/// Fails (retryably) naming every node's error only when none accepts.
pub(crate) async fn connect(
    config: &RabbitConfig,
    last: &AtomicUsize,
) -> Result<(Connection, usize)> {
    let nodes = config.nodes();
    let first = last.load(Ordering::Relaxed) % nodes.len().max(1);
    let mut errors = Vec::new();
    for step in 0..nodes.len() {
        let index = (first + step) % nodes.len();
        let uri = match node_uri(nodes[index].expose()) {
            Ok(uri) => uri,
            Err(error) => {
                errors.push(format!("{}: {error}", nodes[index]));
                continue;
            }
        };
        let attempt = tokio::time::timeout(
            PER_NODE,
            Connection::connect_uri(uri, ConnectionProperties::default()),
        )
        .await;
        match attempt {
            Ok(Ok(connection)) => {
                if index != first {
                    tracing::info!(node = %nodes[index], "connected to another rabbitmq node");
                }
                last.store(index, Ordering::Relaxed);
                return Ok((connection, index));
            }
            Ok(Err(error)) => errors.push(format!("{}: {error}", nodes[index])),
            Err(_) => errors.push(format!("{}: connecting timed out", nodes[index])),
        }
    }
    Err(Error::transient(
        "rabbitmq",
        format!("connecting: {}", errors.join("; ")),
    ))
}

/// Moves `last` past `node` after a connection to it was accepted but could not be set
/// up (its channel, queues or consumer refused), so the next attempt starts at the next
/// node instead of returning to one that cannot work. Another task that already moved
/// `last` elsewhere wins.
pub(crate) fn pass_over(last: &AtomicUsize, node: usize) {
    let _ = last.compare_exchange(node, node + 1, Ordering::Relaxed, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_url_without_a_frame_size_proposes_the_default() {
        let uri = node_uri("amqp://guest:guest@127.0.0.1:5672/%2f").expect("parses");
        assert_eq!(uri.query.frame_max, Some(DEFAULT_FRAME_MAX));
        assert_eq!(uri.authority.port, 5672);
    }

    #[test]
    fn a_node_url_that_names_a_frame_size_keeps_it() {
        let uri = node_uri("amqp://127.0.0.1:5672/%2f?frame_max=131072").expect("parses");
        assert_eq!(uri.query.frame_max, Some(131_072));
    }

    #[test]
    fn a_node_url_that_does_not_parse_is_an_error_naming_why() {
        let error = node_uri("amqp://127.0.0.1:notaport/%2f").expect_err("bad port");
        assert!(!error.is_empty());
    }

    #[tokio::test]
    async fn the_broker_agrees_to_the_smaller_frame() {
        let Some(url) = aggregator_core::conformance::service_url("AMQP_URL") else {
            return;
        };
        let (connection, _) = connect(&RabbitConfig::new(url), &AtomicUsize::new(0))
            .await
            .expect("connect");
        assert_eq!(connection.configuration().frame_max(), DEFAULT_FRAME_MAX);
        connection
            .close(200, "test done".into())
            .await
            .expect("close");
    }

    #[test]
    fn a_node_that_cannot_be_set_up_is_passed_over_once() {
        let last = AtomicUsize::new(1);
        pass_over(&last, 1);
        assert_eq!(last.load(Ordering::Relaxed), 2);
        // A second report about node 1 (another task's) does not skip node 2 as well.
        pass_over(&last, 1);
        assert_eq!(last.load(Ordering::Relaxed), 2);
        // Past the end of the list, connect starts again from the first node (modulo).
        pass_over(&last, 2);
        assert_eq!(last.load(Ordering::Relaxed) % 3, 0);
    }
}
