//! Identifiers, each validated when it is built so that a value of the type is always
//! well formed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};

/// Checks `value` against the rules shared by textual identifiers: non-empty, at most
/// `max` bytes, and only the characters `allowed` accepts.
fn check_text(
    field: &str,
    value: &str,
    max: usize,
    allowed: fn(char) -> bool,
    allowed_text: &str,
) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if let Some(bad) = value.chars().find(|c| !allowed(*c)) {
        return Err(Error::invalid(
            field,
            format!("contains {bad:?}; only {allowed_text} are allowed"),
        ));
    }
    Ok(())
}

fn is_code_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn is_customer_char(c: char) -> bool {
    is_code_char(c) || matches!(c, '@' | ':' | '+')
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_graphic()
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal, $allowed:ident, $allowed_text:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Builds the identifier, refusing empty, over-long or ill-charactered text.
            pub fn new(value: impl Into<String>) -> Result<Self> {
                let value = value.into();
                check_text($field, &value, $max, $allowed, $allowed_text)?;
                Ok(Self(value))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(value: String) -> Result<Self> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(value: &str) -> Result<Self> {
                Self::new(value)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_id!(
    /// A vendor's identifier, such as `VendorA`.
    VendorId, "vendorId", 64, is_code_char, "letters, digits, '-', '_' and '.'"
);
text_id!(
    /// A vendor's own stock-keeping unit, such as `LAPTOP-a-001`.
    VendorSku, "sku", 64, is_code_char, "letters, digits, '-', '_' and '.'"
);
text_id!(
    /// A canonical product id, such as `LAPTOP-001`, that vendor SKUs roll up to.
    ProductId, "productId", 64, is_code_char, "letters, digits, '-', '_' and '.'"
);
text_id!(
    /// The client's identifier for its customer.
    CustomerId, "customerId", 128, is_customer_char, "letters, digits and -_.@:+"
);
text_id!(
    /// A client-chosen key that makes a retried request safe (printable ASCII, no spaces).
    IdempotencyKey, "idempotencyKey", 255, is_key_char, "printable ASCII without spaces"
);

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (UUID v7) identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (as read back from storage).
            pub fn from_uuid(value: Uuid) -> Self {
                Self(value)
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(value: &str) -> Result<Self> {
                Uuid::parse_str(value)
                    .map(Self)
                    .map_err(|_| Error::invalid($field, format!("{value:?} is not a UUID")))
            }
        }
    };
}

uuid_id!(
    /// An order's identifier (UUID v7, so ids sort by creation time).
    OrderId, "orderId"
);
uuid_id!(
    /// An explicit stock hold's identifier (UUID v7).
    HoldId, "holdId"
);
uuid_id!(
    /// A queue or outbox message's identifier (UUID v7); consumers de-duplicate by it.
    MessageId, "messageId"
);
uuid_id!(
    /// A registered webhook endpoint's identifier (UUID v7).
    WebhookId, "webhookId"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_ids_accept_seed_values() {
        assert!(VendorId::new("VendorA").is_ok());
        assert!(VendorSku::new("LAPTOP-a-001").is_ok());
        assert!(ProductId::new("LAPTOP-001").is_ok());
        assert!(CustomerId::new("customer-123").is_ok());
        assert!(CustomerId::new("load-test-7").is_ok());
    }

    #[test]
    fn text_ids_refuse_bad_text_and_name_the_field() {
        assert_eq!(
            VendorSku::new(""),
            Err(Error::invalid("sku", "must not be empty"))
        );
        let long = "x".repeat(65);
        assert!(
            matches!(ProductId::new(long), Err(Error::Invalid { field, .. }) if field == "productId")
        );
        assert!(
            matches!(VendorSku::new("A B"), Err(Error::Invalid { field, reason }) if field == "sku" && reason.contains("' '"))
        );
        assert!(IdempotencyKey::new("abc def").is_err());
        assert!(IdempotencyKey::new("ключ").is_err());
        assert!(IdempotencyKey::new("a".repeat(255)).is_ok());
    }

    #[test]
    fn text_ids_validate_when_deserialized() {
        let parsed: std::result::Result<VendorSku, _> = serde_json::from_str("\"bad sku\"");
        assert!(parsed.is_err());
        let parsed: VendorSku = serde_json::from_str("\"LAPTOP-a-001\"").expect("valid sku");
        assert_eq!(parsed.as_str(), "LAPTOP-a-001");
    }

    #[test]
    fn order_ids_are_time_ordered_uuid_v7() {
        let first = OrderId::new();
        let second = OrderId::new();
        assert_eq!(first.as_uuid().get_version_num(), 7);
        assert!(first < second);
        let text = first.to_string();
        assert_eq!(text.parse::<OrderId>(), Ok(first));
        assert!(
            matches!("nope".parse::<OrderId>(), Err(Error::Invalid { field, .. }) if field == "orderId")
        );
    }
}
