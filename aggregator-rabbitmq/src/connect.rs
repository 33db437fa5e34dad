//! Connecting to a broker that may be one of several cluster nodes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aggregator_core::{Error, Result};
use lapin::{Connection, ConnectionProperties};

use crate::config::RabbitConfig;

/// How long one node may take to accept a connection before the next is tried.
const PER_NODE: Duration = Duration::from_secs(5);

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
        let attempt = tokio::time::timeout(
            PER_NODE,
            Connection::connect(nodes[index].expose(), ConnectionProperties::default()),
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
