//! PostgreSQL errors mapped onto the core's meanings, at the edge.

use aggregator_core::Error;

const COMPONENT: &str = "postgres";

/// Maps an engine error to what it means to a caller.
///
/// * unique violation → `Conflict`;
/// * check violation → `InsufficientStock` (a counter would have gone below zero);
/// * foreign-key violation → `Invalid` (a reference to something unknown);
/// * serialization failure, deadlock, statement timeout, lost connection, pool timeout
///   → `Unavailable { retryable: true }`;
/// * anything else → `Unavailable { retryable: false }`, with the engine's message.
pub(crate) fn map(error: sqlx::Error) -> Error {
    match &error {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("23505") => Error::conflict(format!("duplicate: {}", db.message())),
            Some("23514") => Error::InsufficientStock { short: Vec::new() },
            Some("23503") => Error::invalid("reference", db.message().to_owned()),
            Some("40001" | "40P01" | "57014" | "55P03" | "53300" | "57P01" | "57P02" | "57P03") => {
                Error::transient(COMPONENT, db.message().to_owned())
            }
            Some(code) if code.starts_with("08") => {
                Error::transient(COMPONENT, db.message().to_owned())
            }
            _ => Error::permanent(COMPONENT, db.message().to_owned()),
        },
        sqlx::Error::PoolTimedOut => Error::transient(COMPONENT, "no free connection in time"),
        sqlx::Error::PoolClosed => Error::transient(COMPONENT, "connection pool is closed"),
        sqlx::Error::Io(io) => Error::transient(COMPONENT, format!("connection lost: {io}")),
        sqlx::Error::Tls(tls) => Error::transient(COMPONENT, format!("tls: {tls}")),
        sqlx::Error::Protocol(message) => {
            Error::transient(COMPONENT, format!("protocol: {message}"))
        }
        sqlx::Error::WorkerCrashed => Error::transient(COMPONENT, "connection worker crashed"),
        other => Error::permanent(COMPONENT, other.to_string()),
    }
}

/// True for errors worth retrying the whole transaction at once (deadlock or
/// serialization failure), before the caller ever sees them.
pub(crate) fn is_transaction_conflict(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40001" | "40P01")))
}

/// A stored value that does not decode into the domain: the database holds data the
/// code did not write.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::permanent(COMPONENT, format!("stored {what} is unreadable: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_and_io_errors_are_retryable() {
        assert!(map(sqlx::Error::PoolTimedOut).is_retryable());
        assert!(map(sqlx::Error::Io(std::io::Error::other("reset"))).is_retryable());
        assert!(!map(sqlx::Error::RowNotFound).is_retryable());
    }
}
