//! One typed configuration for every binary: command-line flags, then environment
//! variables, then defaults. `--help` prints [`help`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use aggregator_core::traits::RetryPolicy;
use aggregator_http::api::ApiKeys;
use aggregator_http::{VendorEndpoint, parse_vendor_list};

/// One setting: its flag, environment variable, default and meaning.
#[derive(Debug, Clone, Copy)]
pub struct SettingSpec {
    /// The long flag, e.g. `--api-addr`.
    pub flag: &'static str,
    /// The environment variable, e.g. `AGGREGATOR_API_ADDR`.
    pub env: &'static str,
    /// The default as text (empty: unset).
    pub default: &'static str,
    /// What it does.
    pub help: &'static str,
}

/// Every setting, in the order `--help` lists them.
pub const SETTINGS: &[SettingSpec] = &[
    SettingSpec {
        flag: "--database-url",
        env: "DATABASE_URL",
        default: "",
        help: "PostgreSQL; unset: an in-memory store (lost at exit)",
    },
    SettingSpec {
        flag: "--amqp-url",
        env: "AMQP_URL",
        default: "",
        help: "RabbitMQ; unset: an in-memory queue (one process only)",
    },
    SettingSpec {
        flag: "--redis-url",
        env: "REDIS_URL",
        default: "",
        help: "Redis; unset: an in-memory cache and rate limiter",
    },
    SettingSpec {
        flag: "--api-addr",
        env: "AGGREGATOR_API_ADDR",
        default: "127.0.0.1:3000",
        help: "where the HTTP API listens",
    },
    SettingSpec {
        flag: "--api-keys",
        env: "AGGREGATOR_API_KEYS",
        default: "",
        help: "admin:KEY,client:CUSTOMER:KEY; without keys the API only listens on loopback",
    },
    SettingSpec {
        flag: "--rate-limit",
        env: "AGGREGATOR_RATE_LIMIT_PER_SEC",
        default: "2000",
        help: "API requests a second per API key (per client address without keys)",
    },
    SettingSpec {
        flag: "--vendors",
        env: "AGGREGATOR_VENDORS",
        default: "VendorA=http://127.0.0.1:3001,VendorB=http://127.0.0.1:3002",
        help: "the vendors, in priority order",
    },
    SettingSpec {
        flag: "--workers",
        env: "AGGREGATOR_WORKERS",
        default: "2",
        help: "order workers in this process",
    },
    SettingSpec {
        flag: "--worker-concurrency",
        env: "AGGREGATOR_WORKER_CONCURRENCY",
        default: "16",
        help: "messages each worker handles at once",
    },
    SettingSpec {
        flag: "--sync-interval",
        env: "AGGREGATOR_SYNC_INTERVAL_SECS",
        default: "30",
        help: "seconds between stock syncs of every vendor",
    },
    SettingSpec {
        flag: "--sweep-interval",
        env: "AGGREGATOR_SWEEP_INTERVAL_SECS",
        default: "5",
        help: "seconds between sweeps of overdue reservations and holds",
    },
    SettingSpec {
        flag: "--relay-interval",
        env: "AGGREGATOR_RELAY_INTERVAL_MS",
        default: "100",
        help: "milliseconds between outbox relay rounds",
    },
    SettingSpec {
        flag: "--retry-delays",
        env: "AGGREGATOR_RETRY_DELAYS_MS",
        default: "1000,5000,25000,120000",
        help: "milliseconds before each retry of a failed message; after the last, the dead-letter queue",
    },
    SettingSpec {
        flag: "--vendor-timeout",
        env: "AGGREGATOR_VENDOR_TIMEOUT_MS",
        default: "10000",
        help: "milliseconds one vendor request may take",
    },
    SettingSpec {
        flag: "--vendor-breaker-open",
        env: "AGGREGATOR_VENDOR_BREAKER_OPEN_SECS",
        default: "30",
        help: "seconds a vendor's circuit breaker stays open after 5 failures in a row",
    },
    SettingSpec {
        flag: "--vendor-breaker-wait",
        env: "AGGREGATOR_VENDOR_BREAKER_WAIT_SECS",
        default: "30",
        help: "seconds a vendor call waits for an open breaker to let it through before failing (not counted as an attempt)",
    },
    SettingSpec {
        flag: "--reroute-unavailable-after",
        env: "AGGREGATOR_REROUTE_UNAVAILABLE_AFTER_SECS",
        default: "20",
        help: "seconds an order may wait on an unreachable vendor before its part moves to another fresh vendor with stock",
    },
    SettingSpec {
        flag: "--reservation-ttl",
        env: "AGGREGATOR_RESERVATION_TTL_SECS",
        default: "900",
        help: "seconds a placed order holds its units before it expires unconfirmed",
    },
    SettingSpec {
        flag: "--clock-tolerance",
        env: "AGGREGATOR_CLOCK_TOLERANCE_MS",
        default: "5000",
        help: "milliseconds a vendor's stock feed may run ahead of our clock; a feed further ahead is refused whole",
    },
    SettingSpec {
        flag: "--confirmation-margin",
        env: "AGGREGATOR_CONFIRMATION_MARGIN_MS",
        default: "5000",
        help: "milliseconds a vendor's report must be later than its confirmation of our order to count as including it",
    },
    SettingSpec {
        flag: "--max-holds",
        env: "AGGREGATOR_MAX_HOLDS_PER_CUSTOMER",
        default: "10",
        help: "active holds one customer may have at once",
    },
    SettingSpec {
        flag: "--max-held-units",
        env: "AGGREGATOR_MAX_HELD_UNITS_PER_CUSTOMER",
        default: "100",
        help: "units one customer may hold at once over all its holds",
    },
    SettingSpec {
        flag: "--max-hold-lifetime",
        env: "AGGREGATOR_MAX_HOLD_LIFETIME_SECS",
        default: "3600",
        help: "seconds a hold may last from its creation, extensions included",
    },
    SettingSpec {
        flag: "--grace",
        env: "AGGREGATOR_SHUTDOWN_GRACE_SECS",
        default: "10",
        help: "seconds in-flight work may take after SIGINT/SIGTERM",
    },
    SettingSpec {
        flag: "--queue-prefix",
        env: "AGGREGATOR_QUEUE_PREFIX",
        default: "",
        help: "prepended to RabbitMQ queue names",
    },
    SettingSpec {
        flag: "--cache-prefix",
        env: "AGGREGATOR_CACHE_PREFIX",
        default: "aggregator:",
        help: "prepended to Redis keys",
    },
    SettingSpec {
        flag: "--log-dir",
        env: "AGGREGATOR_LOG_DIR",
        default: "logs",
        help: "combined.log and error.log go here (rotated daily); empty: no files",
    },
    SettingSpec {
        flag: "--log-format",
        env: "AGGREGATOR_LOG_FORMAT",
        default: "auto",
        help: "auto (pretty on a terminal, JSON otherwise), pretty or json",
    },
];

/// How logs are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    Auto,
    /// Human-readable.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// The parsed settings. Its `Debug` output hides passwords in URLs.
#[derive(Clone)]
pub struct Settings {
    /// PostgreSQL URL, if any.
    pub database_url: Option<String>,
    /// RabbitMQ URL, if any.
    pub amqp_url: Option<String>,
    /// Redis URL, if any.
    pub redis_url: Option<String>,
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// API keys.
    pub api_keys: ApiKeys,
    /// API requests a second per key (or client address).
    pub rate_limit_per_sec: u32,
    /// The vendors.
    pub vendors: Vec<VendorEndpoint>,
    /// Order workers in this process.
    pub workers: u16,
    /// Messages per worker at once.
    pub worker_concurrency: u16,
    /// Between stock syncs.
    pub sync_interval: Duration,
    /// Between sweeps.
    pub sweep_interval: Duration,
    /// Between relay rounds.
    pub relay_interval: Duration,
    /// Delays between attempts of a failed message.
    pub retry: RetryPolicy,
    /// The longest one vendor request may take.
    pub vendor_timeout: Duration,
    /// How long a vendor's breaker stays open.
    pub vendor_breaker_open: Duration,
    /// How long a vendor call waits for an open breaker.
    pub vendor_breaker_wait: Duration,
    /// How long an order waits on an unreachable vendor before its part moves.
    pub reroute_unavailable_after: Duration,
    /// How long a placed order holds its units.
    pub reservation_ttl: Duration,
    /// How far a vendor feed may run ahead of our clock.
    pub clock_tolerance: Duration,
    /// How much later than a confirmation a report must be to include it.
    pub confirmation_margin: Duration,
    /// Active holds per customer.
    pub max_holds_per_customer: u32,
    /// Held units per customer.
    pub max_held_units_per_customer: u64,
    /// A hold's longest life from creation.
    pub max_hold_lifetime: Duration,
    /// Shutdown grace period.
    pub grace: Duration,
    /// Queue name prefix.
    pub queue_prefix: String,
    /// Redis key prefix.
    pub cache_prefix: String,
    /// Log directory (`None`: no files).
    pub log_dir: Option<PathBuf>,
    /// Stdout log format.
    pub log_format: LogFormat,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |url: &Option<String>| url.as_deref().map(aggregator_core::redact_url);
        f.debug_struct("Settings")
            .field("database_url", &redact(&self.database_url))
            .field("amqp_url", &redact(&self.amqp_url))
            .field("redis_url", &redact(&self.redis_url))
            .field("api_addr", &self.api_addr)
            .field("api_keys", &self.api_keys)
            .field("rate_limit_per_sec", &self.rate_limit_per_sec)
            .field("vendors", &self.vendors)
            .field("workers", &self.workers)
            .field("worker_concurrency", &self.worker_concurrency)
            .field("sync_interval", &self.sync_interval)
            .field("sweep_interval", &self.sweep_interval)
            .field("relay_interval", &self.relay_interval)
            .field("retry", &self.retry)
            .field("vendor_timeout", &self.vendor_timeout)
            .field("vendor_breaker_open", &self.vendor_breaker_open)
            .field("vendor_breaker_wait", &self.vendor_breaker_wait)
            .field("reroute_unavailable_after", &self.reroute_unavailable_after)
            .field("reservation_ttl", &self.reservation_ttl)
            .field("clock_tolerance", &self.clock_tolerance)
            .field("confirmation_margin", &self.confirmation_margin)
            .field("max_holds_per_customer", &self.max_holds_per_customer)
            .field(
                "max_held_units_per_customer",
                &self.max_held_units_per_customer,
            )
            .field("max_hold_lifetime", &self.max_hold_lifetime)
            .field("grace", &self.grace)
            .field("queue_prefix", &self.queue_prefix)
            .field("cache_prefix", &self.cache_prefix)
            .field("log_dir", &self.log_dir)
            .field("log_format", &self.log_format)
            .finish()
    }
}

/// The help text for `program`: usage line, then every setting with its flag,
/// environment variable and default.
pub fn help(program: &str, usage: &str) -> String {
    let mut text = format!(
        "usage: {program} {usage}\n\nSettings (flag, or environment variable; flags win):\n"
    );
    for spec in SETTINGS {
        let default = if spec.default.is_empty() {
            "unset".to_owned()
        } else {
            spec.default.to_owned()
        };
        text.push_str(&format!(
            "  {:<32} {:<38} {} (default: {default})\n",
            format!("{} VALUE", spec.flag),
            spec.env,
            spec.help
        ));
    }
    text
}

fn number<T: std::str::FromStr + PartialOrd + Copy>(
    name: &str,
    text: &str,
    min: T,
    max: T,
) -> Result<T, String> {
    text.parse::<T>()
        .ok()
        .filter(|n| *n >= min && *n <= max)
        .ok_or_else(|| format!("{name}: {text:?} is not a whole number in the allowed range"))
}

impl Settings {
    /// Parses `args` (flags only; anything else is an error naming it) over `env`.
    /// Answers the settings and the arguments left for the caller (subcommands);
    /// unknown flags are errors, and so is `--help` (its text is the error).
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Self, Vec<String>), String> {
        let mut given: Vec<(&'static SettingSpec, String)> = Vec::new();
        let mut rest = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                return Err("help".into());
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => {
                    (flag.to_owned(), Some(value.to_owned()))
                }
                _ => (arg.clone(), None),
            };
            if let Some(spec) = SETTINGS.iter().find(|s| s.flag == flag) {
                let value = match inline {
                    Some(value) => value,
                    None => args.next().ok_or_else(|| format!("{flag} needs a value"))?,
                };
                given.push((spec, value));
            } else if arg.starts_with("--") {
                return Err(format!("unknown option {arg:?} (see --help)"));
            } else {
                rest.push(arg);
            }
        }
        let value = |env_name: &str| -> Option<String> {
            let spec = SETTINGS.iter().find(|s| s.env == env_name)?;
            given
                .iter()
                .rev()
                .find(|(s, _)| s.env == env_name)
                .map(|(_, v)| v.clone())
                .or_else(|| env(env_name))
                .or_else(|| (!spec.default.is_empty()).then(|| spec.default.to_owned()))
                .filter(|v| !v.is_empty())
        };
        let text = |env_name: &str| value(env_name).unwrap_or_default();
        let api_addr_text = text("AGGREGATOR_API_ADDR");
        let api_addr = api_addr_text.parse().map_err(|_| {
            format!("AGGREGATOR_API_ADDR: {api_addr_text:?} is not an address like 127.0.0.1:3000")
        })?;
        let api_keys = match value("AGGREGATOR_API_KEYS") {
            Some(keys) => ApiKeys::parse(&keys).map_err(|e| format!("AGGREGATOR_API_KEYS: {e}"))?,
            None => ApiKeys::none(),
        };
        let vendors = parse_vendor_list(&text("AGGREGATOR_VENDORS"))
            .map_err(|e| format!("AGGREGATOR_VENDORS: {e}"))?;
        let seconds = |env_name: &str, min: u64| -> Result<Duration, String> {
            number(env_name, &text(env_name), min, 86_400).map(Duration::from_secs)
        };
        let millis = |env_name: &str, min: u64, max: u64| -> Result<Duration, String> {
            number(env_name, &text(env_name), min, max).map(Duration::from_millis)
        };
        let log_format = match text("AGGREGATOR_LOG_FORMAT").as_str() {
            "auto" => LogFormat::Auto,
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => {
                return Err(format!(
                    "AGGREGATOR_LOG_FORMAT: {other:?} is not auto, pretty or json"
                ));
            }
        };
        let delays_text = text("AGGREGATOR_RETRY_DELAYS_MS");
        let delays = delays_text
            .split(',')
            .map(|part| {
                number("AGGREGATOR_RETRY_DELAYS_MS", part.trim(), 1u64, 86_400_000)
                    .map(Duration::from_millis)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let retry =
            RetryPolicy::new(delays).map_err(|e| format!("AGGREGATOR_RETRY_DELAYS_MS: {e}"))?;
        Ok((
            Self {
                database_url: value("DATABASE_URL"),
                amqp_url: value("AMQP_URL"),
                redis_url: value("REDIS_URL"),
                api_addr,
                api_keys,
                rate_limit_per_sec: number(
                    "AGGREGATOR_RATE_LIMIT_PER_SEC",
                    &text("AGGREGATOR_RATE_LIMIT_PER_SEC"),
                    1,
                    10_000_000,
                )?,
                vendors,
                workers: number("AGGREGATOR_WORKERS", &text("AGGREGATOR_WORKERS"), 0, 64)?,
                worker_concurrency: number(
                    "AGGREGATOR_WORKER_CONCURRENCY",
                    &text("AGGREGATOR_WORKER_CONCURRENCY"),
                    1,
                    1_000,
                )?,
                sync_interval: seconds("AGGREGATOR_SYNC_INTERVAL_SECS", 1)?,
                sweep_interval: seconds("AGGREGATOR_SWEEP_INTERVAL_SECS", 1)?,
                relay_interval: Duration::from_millis(number(
                    "AGGREGATOR_RELAY_INTERVAL_MS",
                    &text("AGGREGATOR_RELAY_INTERVAL_MS"),
                    1,
                    60_000,
                )?),
                retry,
                vendor_timeout: Duration::from_millis(number(
                    "AGGREGATOR_VENDOR_TIMEOUT_MS",
                    &text("AGGREGATOR_VENDOR_TIMEOUT_MS"),
                    1,
                    600_000,
                )?),
                vendor_breaker_open: seconds("AGGREGATOR_VENDOR_BREAKER_OPEN_SECS", 1)?,
                vendor_breaker_wait: seconds("AGGREGATOR_VENDOR_BREAKER_WAIT_SECS", 0)?,
                reroute_unavailable_after: seconds("AGGREGATOR_REROUTE_UNAVAILABLE_AFTER_SECS", 0)?,
                reservation_ttl: seconds("AGGREGATOR_RESERVATION_TTL_SECS", 1)?,
                clock_tolerance: millis("AGGREGATOR_CLOCK_TOLERANCE_MS", 0, 86_400_000)?,
                confirmation_margin: millis("AGGREGATOR_CONFIRMATION_MARGIN_MS", 0, 86_400_000)?,
                max_holds_per_customer: number(
                    "AGGREGATOR_MAX_HOLDS_PER_CUSTOMER",
                    &text("AGGREGATOR_MAX_HOLDS_PER_CUSTOMER"),
                    1,
                    1_000_000,
                )?,
                max_held_units_per_customer: number(
                    "AGGREGATOR_MAX_HELD_UNITS_PER_CUSTOMER",
                    &text("AGGREGATOR_MAX_HELD_UNITS_PER_CUSTOMER"),
                    1,
                    1_000_000_000,
                )?,
                max_hold_lifetime: seconds("AGGREGATOR_MAX_HOLD_LIFETIME_SECS", 1)?,
                grace: seconds("AGGREGATOR_SHUTDOWN_GRACE_SECS", 0)?,
                queue_prefix: text("AGGREGATOR_QUEUE_PREFIX"),
                cache_prefix: text("AGGREGATOR_CACHE_PREFIX"),
                log_dir: value("AGGREGATOR_LOG_DIR").map(PathBuf::from),
                log_format,
            },
            rest,
        ))
    }

    /// The settings from the process's arguments (after the program name and
    /// `skip` more) and environment.
    pub fn from_process(skip: usize) -> Result<(Self, Vec<String>), String> {
        Self::parse(std::env::args().skip(1 + skip), |name| {
            std::env::var(name).ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<(Settings, Vec<String>), String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::parse(args.iter().map(|s| s.to_string()), move |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_then_environment_then_flags() {
        let (settings, rest) = parse(&[], &[]).expect("defaults");
        assert_eq!(settings.api_addr.to_string(), "127.0.0.1:3000");
        assert_eq!(settings.vendors.len(), 2);
        assert_eq!(settings.sync_interval, Duration::from_secs(30));
        assert!(settings.database_url.is_none() && rest.is_empty());
        assert_eq!(settings.log_dir, Some(PathBuf::from("logs")));
        let (settings, rest) = parse(
            &["worker", "--workers", "4", "--api-addr=0.0.0.0:8080"],
            &[
                ("AGGREGATOR_WORKERS", "3"),
                ("DATABASE_URL", "postgres://x"),
                ("AGGREGATOR_LOG_DIR", ""),
            ],
        )
        .expect("valid");
        assert_eq!(settings.workers, 4, "the flag wins");
        assert_eq!(settings.api_addr.port(), 8080);
        assert_eq!(settings.database_url.as_deref(), Some("postgres://x"));
        assert_eq!(settings.log_dir, None, "empty means no files");
        assert_eq!(rest, ["worker"]);
        let (secret, _) = parse(
            &[],
            &[
                ("DATABASE_URL", "postgres://app:s3cret@db/orders"),
                ("AGGREGATOR_API_KEYS", "admin:0123456789abcdef-key"),
            ],
        )
        .expect("valid");
        let printed = format!("{secret:?}");
        assert!(
            !printed.contains("s3cret") && !printed.contains("0123456789abcdef"),
            "{printed}"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        for (args, env, needle) in [
            (vec!["--workers", "many"], vec![], "AGGREGATOR_WORKERS"),
            (vec!["--workers"], vec![], "needs a value"),
            (vec!["--nope", "1"], vec![], "unknown option"),
            (
                vec![],
                vec![("AGGREGATOR_API_ADDR", "localhost")],
                "AGGREGATOR_API_ADDR",
            ),
            (
                vec![],
                vec![("AGGREGATOR_VENDORS", "x")],
                "AGGREGATOR_VENDORS",
            ),
            (
                vec![],
                vec![("AGGREGATOR_API_KEYS", "admin:short")],
                "AGGREGATOR_API_KEYS",
            ),
            (
                vec![],
                vec![("AGGREGATOR_SYNC_INTERVAL_SECS", "0")],
                "AGGREGATOR_SYNC_INTERVAL_SECS",
            ),
            (
                vec![],
                vec![("AGGREGATOR_LOG_FORMAT", "xml")],
                "AGGREGATOR_LOG_FORMAT",
            ),
        ] {
            let error = parse(&args, &env).expect_err(needle);
            assert!(error.contains(needle), "{args:?} {env:?}: {error}");
        }
        assert_eq!(parse(&["--help"], &[]).expect_err("help"), "help");
        let text = help("aggregator", "[all|api|worker]");
        for spec in SETTINGS {
            assert!(
                text.contains(spec.flag) && text.contains(spec.env),
                "{}",
                spec.flag
            );
        }
    }

    #[test]
    fn the_readme_table_and_the_compose_file_agree_with_the_settings() {
        let readme = include_str!("../README.md");
        for spec in SETTINGS {
            let row = format!("| `{}` | `{}` |", spec.flag, spec.env);
            assert!(
                readme.contains(&row),
                "README.md lacks the row for {}",
                spec.flag
            );
        }
        let compose = include_str!("../docker-compose.yml");
        let keys = compose
            .lines()
            .find_map(|l| l.trim().strip_prefix("AGGREGATOR_API_KEYS:"))
            .expect("compose sets API keys");
        assert!(ApiKeys::parse(keys.trim()).is_ok(), "{keys}");
    }
}
