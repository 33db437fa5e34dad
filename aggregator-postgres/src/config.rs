//! Connection settings.

use std::time::Duration;

use aggregator_core::RedactedUrl;

/// How to reach PostgreSQL and how many connections to keep.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// A `postgres://user:password@host:port/database` URL. Never printed as is: the
    /// `Debug` output hides the password.
    pub url: RedactedUrl,
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// How long a caller waits for a free connection before getting a retryable error.
    pub acquire_timeout: Duration,
    /// The longest any one statement may run (PostgreSQL's `statement_timeout`).
    pub statement_timeout: Duration,
}

impl PostgresConfig {
    /// Settings for `url` with the defaults: 20 connections, 5 s to acquire one, 10 s
    /// per statement.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: RedactedUrl::new(url),
            max_connections: 20,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
        }
    }
}

impl PostgresConfig {
    /// The same settings for another database on the same server (the URL's path
    /// replaced, its query parameters such as `sslmode` kept).
    pub fn with_database(&self, database: &str) -> Self {
        let whole = self.url.expose();
        let (address, query) = whole.split_once('?').unwrap_or((whole, ""));
        let server = match address.split_once("://") {
            Some((scheme, rest)) => match rest.split_once('/') {
                Some((host, _)) => format!("{scheme}://{host}"),
                None => address.to_owned(),
            },
            None => address.to_owned(),
        };
        let url = if query.is_empty() {
            format!("{server}/{database}")
        } else {
            format!("{server}/{database}?{query}")
        };
        Self {
            url: RedactedUrl::new(url),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let config = PostgresConfig::new("postgres://app:s3cr3t@db.internal:5432/orders");
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
        assert!(
            printed.contains("postgres://app:***@db.internal:5432/orders"),
            "{printed}"
        );
    }

    #[test]
    fn another_database_keeps_server_and_parameters() {
        let config = PostgresConfig::new("postgres://u:p@h:5432/postgres?sslmode=disable");
        assert_eq!(
            config.with_database("x").url.expose(),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        let plain = PostgresConfig::new("postgres://h");
        assert_eq!(plain.with_database("y").url.expose(), "postgres://h/y");
    }
}
