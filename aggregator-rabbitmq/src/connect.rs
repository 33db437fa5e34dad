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
/// it is up and moves on once it is not. Fails (retryably) naming every node's error
/// only when none accepts.
pub(crate) async fn connect(config: &RabbitConfig, last: &AtomicUsize) -> Result<Connection> {
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
                return Ok(connection);
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
