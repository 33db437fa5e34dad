//! Customer e-mail addresses.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An e-mail address of the plain `local@domain.tld` shape, at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Checks the address's shape; it does not prove the mailbox exists.
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        let refuse = |reason: &str| Err(Error::invalid("customerEmail", reason));
        if value.len() > 254 {
            return refuse("must be at most 254 characters");
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return refuse("must not contain spaces or control characters");
        }
        let Some((local, domain)) = value.split_once('@') else {
            return refuse("must contain '@'");
        };
        if local.is_empty() || local.len() > 64 {
            return refuse("needs 1 to 64 characters before '@'");
        }
        if domain.contains('@') {
            return refuse("must contain exactly one '@'");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 || labels.iter().any(|label| label.is_empty()) {
            return refuse("needs a domain such as example.com after '@'");
        }
        Ok(Self(value))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> String {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_addresses() {
        assert!(Email::new("customer@example.com").is_ok());
        assert!(Email::new("a.b+tag@mail.example.co.uk").is_ok());
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@@b.com",
            "a@b..com",
            "a b@c.com",
            "a@b.com\n",
        ] {
            assert!(Email::new(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Email::new(format!("{}@example.com", "a".repeat(65))).is_err());
    }
}
