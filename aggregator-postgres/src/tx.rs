//! Transactions that retry by themselves when PostgreSQL picks them as a deadlock or
//! serialization victim, so those never reach a caller unless they keep happening.

use std::future::Future;
use std::time::Duration;

use aggregator_core::{Error, Result};

use crate::error::{is_transaction_conflict, map};

/// Why a transaction attempt stopped: the engine (maybe worth another attempt) or a
/// domain rule (final).
#[derive(Debug)]
pub(crate) enum Fail {
    Db(sqlx::Error),
    Domain(Error),
}

impl From<sqlx::Error> for Fail {
    fn from(error: sqlx::Error) -> Self {
        Self::Db(error)
    }
}

impl From<Error> for Fail {
    fn from(error: Error) -> Self {
        Self::Domain(error)
    }
}

pub(crate) type TxResult<T> = std::result::Result<T, Fail>;

/// Attempts at a transaction that lost a deadlock or serialization race.
const ATTEMPTS: u32 = 5;

/// Runs `attempt` until it succeeds, fails for a domain reason, or has lost
/// [`ATTEMPTS`] deadlock/serialization races (then the error is retryable).
pub(crate) async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = TxResult<T>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(Fail::Domain(error)) => return Err(error),
            Err(Fail::Db(error)) if is_transaction_conflict(&error) && tries < ATTEMPTS => {
                tracing::debug!(%error, tries, "transaction lost a race; trying again");
                tokio::time::sleep(Duration::from_millis(1 << tries)).await;
            }
            Err(Fail::Db(error)) => return Err(map(error)),
        }
    }
}
