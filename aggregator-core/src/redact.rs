//! Keeping secrets out of logs and `Debug` output.

/// `url` with the password of its `user:password@` part, if any, and the value of a
/// `password=` query parameter replaced by `***` (`postgres://app:***@db:5432/orders`,
/// `postgres://db/orders?user=app&password=***`). Anything that is not such a URL comes
/// back unchanged. A list of URLs separated by commas (the nodes of a cluster) has each
/// one redacted, and a part without a scheme loses the password of its `user:password@`
/// too.
pub fn redact_url(url: &str) -> String {
    if url.contains(',') {
        return url.split(',').map(redact_one).collect::<Vec<_>>().join(",");
    }
    redact_one(url)
}

fn redact_one(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return match url.rsplit_once('@') {
            Some((credentials, host)) => match credentials.split_once(':') {
                Some((user, _password)) => format!("{user}:***@{host}"),
                None => url.to_owned(),
            },
            None => url.to_owned(),
        };
    };
    let (address, query) = match rest.split_once('?') {
        Some((address, query)) => (address, Some(query)),
        None => (rest, None),
    };
    let address = match address.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => address.to_owned(),
        },
        None => address.to_owned(),
    };
    let Some(query) = query else {
        return format!("{scheme}://{address}");
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{scheme}://{address}?{}", query.join("&"))
}

/// A service URL whose password never reaches a log line, `Debug` or `Display` output:
/// both show it through [`redact_url`]. [`RedactedUrl::expose`] gives the whole URL, to
/// connect with.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RedactedUrl(String);

impl RedactedUrl {
    /// Wraps `url` (any text; a URL without a password shows as it is).
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL, secrets included.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

impl std::fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl std::str::FromStr for RedactedUrl {
    type Err = String;

    /// Accepts text of the form `scheme://...`; the error never repeats a password.
    fn from_str(text: &str) -> Result<Self, String> {
        if text
            .split_once("://")
            .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty())
        {
            Ok(Self(text.to_owned()))
        } else {
            // Never the text itself: without a scheme it cannot be redacted reliably.
            Err("is not a URL like scheme://host:port".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_of_a_list_loses_its_password() {
        assert_eq!(
            redact_url("amqp://u:p1@n1:5672/%2f?heartbeat=10,amqp://u:p2@n2/%2f"),
            "amqp://u:***@n1:5672/%2f?heartbeat=10,amqp://u:***@n2/%2f"
        );
        // A part without a scheme is malformed, but its password still never shows.
        assert_eq!(
            redact_url("amqp://u:p1@n1/%2f,u:p2@n2"),
            "amqp://u:***@n1/%2f,u:***@n2"
        );
        assert_eq!(redact_url("a,b"), "a,b");
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact_url("postgres://app:s3cr3t@db.internal:5432/orders"),
            "postgres://app:***@db.internal:5432/orders"
        );
        assert_eq!(
            redact_url("redis://:hunter2@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(
            redact_url("postgres://u:p@ss@h/db"),
            "postgres://u:***@h/db"
        );
    }

    #[test]
    fn urls_without_passwords_are_unchanged() {
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn passwords_in_the_query_are_hidden_too() {
        assert_eq!(
            redact_url("postgres://db/orders?user=app&password=s3cr3t&sslmode=require"),
            "postgres://db/orders?user=app&password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://u:p@db/orders?sslmode=disable"),
            "postgres://u:***@db/orders?sslmode=disable"
        );
    }

    #[test]
    fn a_redacted_url_hides_its_password_everywhere_but_expose() {
        let url: RedactedUrl = "amqp://guest:hunter2@mq:5672/%2f".parse().expect("url");
        assert_eq!(url.to_string(), "amqp://guest:***@mq:5672/%2f");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(url.expose(), "amqp://guest:hunter2@mq:5672/%2f");
        let refused = "user:hunter2@host"
            .parse::<RedactedUrl>()
            .expect_err("no scheme");
        assert!(!refused.contains("hunter2"), "{refused}");
    }
}
