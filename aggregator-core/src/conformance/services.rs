//! How backend tests find the real services: from the environment, skipping with one
//! clear line when a URL is unset, and failing instead when
//! `AGGREGATOR_REQUIRE_SERVICES=1` (as CI sets it). With `AGGREGATOR_TEST_CONTAINERS=1`
//! (and the `testcontainers` feature, which every backend's tests turn on), an unset URL
//! is first filled by a container.

/// The variable that turns a missing service from a skip into a failure.
pub const REQUIRE_SERVICES: &str = "AGGREGATOR_REQUIRE_SERVICES";

/// The variable that lets an unset service URL be filled by a container the tests start
/// (`1`; needs a Docker engine and the `testcontainers` feature).
pub const USE_CONTAINERS: &str = "AGGREGATOR_TEST_CONTAINERS";

/// What a test should do about a service it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceDecision {
    /// Run against this URL.
    Use(String),
    /// Skip, printing this line.
    Skip(String),
    /// Fail with this message: the service is required but not configured.
    Fail(String),
}

/// Decides from the value of `variable` and whether services are required.
pub fn decide(variable: &str, value: Option<String>, required: bool) -> ServiceDecision {
    match value.filter(|url| !url.trim().is_empty()) {
        Some(url) => ServiceDecision::Use(url),
        None if required => ServiceDecision::Fail(format!(
            "{variable} is not set but {REQUIRE_SERVICES}=1: this test needs the real service"
        )),
        None => ServiceDecision::Skip(format!(
            "skipped: set {variable} to run this test against a real service"
        )),
    }
}

/// The URL in `variable`, or `None` after printing one line saying the test is skipped.
///
/// With `AGGREGATOR_TEST_CONTAINERS=1` (and the `testcontainers` feature), an unset
/// `DATABASE_URL`, `AMQP_URL` or `REDIS_URL` is answered by a container started for it
/// (see [`super::containers`]); a URL that is set always wins.
///
/// # Panics
///
/// When the variable is unset and `AGGREGATOR_REQUIRE_SERVICES=1`: a required service
/// that is missing fails the test.
pub fn service_url(variable: &str) -> Option<String> {
    let required = std::env::var(REQUIRE_SERVICES).is_ok_and(|v| v.trim() == "1");
    let value = std::env::var(variable)
        .ok()
        .filter(|url| !url.trim().is_empty());
    #[cfg(feature = "testcontainers")]
    let value = value.or_else(|| {
        let wanted = std::env::var(USE_CONTAINERS).is_ok_and(|v| v.trim() == "1");
        if wanted {
            super::containers::url_for(variable)
        } else {
            None
        }
    });
    match decide(variable, value, required) {
        ServiceDecision::Use(url) => Some(url),
        ServiceDecision::Skip(line) => {
            say_skipped(&line);
            None
        }
        ServiceDecision::Fail(message) => panic!("{message}"),
    }
}

/// Says a test is skipped because this host lacks `missing` (a tool, a right, a server
/// setting): one line `skipped: {missing}` on standard error, past the test harness's
/// capture so every run shows it and CI counts it as a skip, not a pass. The caller then
/// returns.
///
/// # Panics
///
/// When `required_by` (a variable such as `AGGREGATOR_REQUIRE_SERVICES`) is set to `1`:
/// there the missing thing fails the test instead.
pub fn skip_unless_required(required_by: &str, missing: &str) {
    let required = std::env::var(required_by).is_ok_and(|v| v.trim() == "1");
    assert!(!required, "{required_by}=1, but {missing}");
    say_skipped(&format!("skipped: {missing}"));
}

/// Writes `line` to standard error directly, not through `eprintln!`, which the test
/// harness captures: a skip should be seen.
fn say_skipped(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_urls_are_used() {
        assert_eq!(
            decide("DATABASE_URL", Some("postgres://x".into()), true),
            ServiceDecision::Use("postgres://x".into())
        );
    }

    #[test]
    fn missing_urls_skip_unless_required() {
        assert!(
            matches!(decide("REDIS_URL", None, false), ServiceDecision::Skip(line) if line.contains("REDIS_URL"))
        );
        assert!(matches!(
            decide("REDIS_URL", Some(" ".into()), false),
            ServiceDecision::Skip(_)
        ));
        assert!(
            matches!(decide("AMQP_URL", None, true), ServiceDecision::Fail(message) if message.contains("AMQP_URL"))
        );
    }
}
