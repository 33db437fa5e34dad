//! The one error type every trait and service in the workspace returns.

use serde::{Deserialize, Serialize};

/// Result with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One line of an order (or hold) that could not be served, and what was available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShortLine {
    /// The SKU or canonical product id as the caller named it.
    pub item: String,
    /// Units the caller asked for.
    pub requested: u32,
    /// Units that could be sold at the time of the attempt (never negative).
    pub available: u64,
}

/// Everything that can go wrong, by meaning rather than by origin.
///
/// Backends map their engine errors onto these variants at their edge; no engine error
/// type ever appears here. Callers decide what to do from the variant alone: show a
/// `NotFound`, re-read on `Conflict`, tell the customer on `InsufficientStock`, fix the
/// input on `Invalid`, and retry `Unavailable { retryable: true }` later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The named thing does not exist (or is not visible to the caller).
    #[error("{what} {id} not found")]
    NotFound {
        /// Kind of thing, e.g. `order`.
        what: &'static str,
        /// Its identifier as text.
        id: String,
    },
    /// The request lost a race or asks for a change the current state forbids
    /// (a stale version, an illegal status transition, a duplicate).
    #[error("conflict: {detail}")]
    Conflict {
        /// What conflicted, for humans.
        detail: String,
    },
    /// Not enough sellable stock; names every short line.
    #[error("insufficient stock for {}", describe_short(short))]
    InsufficientStock {
        /// Each line that could not be served.
        short: Vec<ShortLine>,
    },
    /// The input broke a rule; `field` names where.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The offending field, as a path such as `items[2].quantity`.
        field: String,
        /// Why it was refused.
        reason: String,
    },
    /// A price the client quoted is not a current catalog price of the item; prices
    /// always come from the catalog, so nothing was reserved.
    #[error(
        "{field}: {quoted} is not a current price of {item} (catalog: {})",
        describe_prices(catalog)
    )]
    PriceMismatch {
        /// Where the quote was, e.g. `items[0].unitPrice`.
        field: String,
        /// The item as the client named it.
        item: String,
        /// The quoted price, as a decimal.
        quoted: String,
        /// The current catalog prices of the item at fresh vendors.
        catalog: Vec<crate::domain::Money>,
    },
    /// The idempotency key was already used with a different request.
    #[error("idempotency key {key} was already used with a different request")]
    IdempotencyMismatch {
        /// The reused key.
        key: String,
    },
    /// A dependency (database, broker, cache, vendor) could not serve the call.
    #[error("{component} unavailable: {detail}")]
    Unavailable {
        /// Which dependency, e.g. `postgres` or `vendor VendorA`.
        component: String,
        /// Whether the same call may succeed if tried again later.
        retryable: bool,
        /// What happened, without secrets.
        detail: String,
    },
}

fn describe_prices(prices: &[crate::domain::Money]) -> String {
    let parts: Vec<String> = prices.iter().map(crate::domain::Money::decimal).collect();
    parts.join(", ")
}

fn describe_short(short: &[ShortLine]) -> String {
    let parts: Vec<String> = short
        .iter()
        .map(|line| {
            format!(
                "{} (requested {}, available {})",
                line.item, line.requested, line.available
            )
        })
        .collect();
    parts.join(", ")
}

impl Error {
    /// A [`Error::NotFound`] for `what` with the given id.
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            what,
            id: id.to_string(),
        }
    }

    /// A [`Error::Conflict`] with the given explanation.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict {
            detail: detail.into(),
        }
    }

    /// An [`Error::Invalid`] naming `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::Unavailable`] that may succeed when retried.
    pub fn transient(component: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Unavailable {
            component: component.into(),
            retryable: true,
            detail: detail.into(),
        }
    }

    /// An [`Error::Unavailable`] that will fail the same way if retried.
    pub fn permanent(component: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Unavailable {
            component: component.into(),
            retryable: false,
            detail: detail.into(),
        }
    }

    /// True when retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable {
                retryable: true,
                ..
            }
        )
    }

    /// Prefixes the field of an [`Error::Invalid`] with `prefix.` (other variants pass
    /// through), so nested validation reports a full path such as `items[1].quantity`.
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Self::Invalid { field, reason } => Self::Invalid {
                field: format!("{prefix}.{field}"),
                reason,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insufficient_stock_names_every_short_line() {
        let error = Error::InsufficientStock {
            short: vec![
                ShortLine {
                    item: "LAPTOP-001".into(),
                    requested: 3,
                    available: 1,
                },
                ShortLine {
                    item: "PHONE-b-002".into(),
                    requested: 1,
                    available: 0,
                },
            ],
        };
        let text = error.to_string();
        assert!(
            text.contains("LAPTOP-001 (requested 3, available 1)"),
            "{text}"
        );
        assert!(
            text.contains("PHONE-b-002 (requested 1, available 0)"),
            "{text}"
        );
    }

    #[test]
    fn only_retryable_unavailable_is_retryable() {
        assert!(Error::transient("postgres", "timeout").is_retryable());
        assert!(!Error::permanent("vendor A", "bad json").is_retryable());
        assert!(!Error::conflict("stale").is_retryable());
    }

    #[test]
    fn within_prefixes_invalid_fields_only() {
        let nested = Error::invalid("quantity", "must be at least 1").within("items[2]");
        assert_eq!(
            nested,
            Error::invalid("items[2].quantity", "must be at least 1")
        );
        let other = Error::conflict("x").within("items[2]");
        assert_eq!(other, Error::conflict("x"));
    }
}
