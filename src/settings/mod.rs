//! One typed configuration for every binary: command-line flags, then environment
//! variables, then defaults, parsed by clap. Every binary flattens [`Settings`], so a
//! setting has the same flag and variable everywhere; `--help` lists them all. In code
//! the settings come in sections (store, queue, cache, API, ops, vendors, worker,
//! webhooks, sync, orders), and each section builds the configuration of its part.

use std::net::SocketAddr;
use std::time::Duration;

use aggregator_core::RedactedUrl;
use aggregator_core::traits::RetryPolicy;
use aggregator_http::VendorEndpoint;
use aggregator_http::api::ApiKeys;
use clap::{ArgMatches, Args, Command, FromArgMatches, ValueEnum};

/// How log lines are written to standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    Auto,
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Every setting of the running system, in sections; each section builds the
/// configuration of the part it is for. Durations are given in the unit their flag
/// names (`_SECS`, `_MS`). Flags and variables are flat (`--sync-interval`,
/// `AGGREGATOR_SYNC_INTERVAL_SECS`); the sections only group them in code.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Where orders, stock, holds and the outbox live: PostgreSQL or in memory.
    #[command(flatten)]
    pub store: StoreSettings,
    /// Where order, sync and webhook messages travel: RabbitMQ or in memory, and how
    /// failed messages are retried.
    #[command(flatten)]
    pub queue: QueueSettings,
    /// Cached availability, rate limits and kept answers: Redis or in memory.
    #[command(flatten)]
    pub cache: CacheSettings,
    /// The HTTP API.
    #[command(flatten)]
    pub api: ApiSettings,
    /// Operations: the ops listener and logging.
    #[command(flatten)]
    pub ops: OpsSettings,
    /// The vendors and how they are called.
    #[command(flatten)]
    pub vendor: VendorSettings,
    /// Order workers, the outbox relay, the sweeper and shutdown.
    #[command(flatten)]
    pub worker: WorkerSettings,
    /// Webhook endpoints and deliveries.
    #[command(flatten)]
    pub webhooks: WebhookSettings,
    /// The stock sync and the clocks it trusts.
    #[command(flatten)]
    pub sync: SyncSettings,
    /// Orders, holds and group commit.
    #[command(flatten)]
    pub orders: OrderSettings,
}

/// Where orders, stock, holds and the outbox live: PostgreSQL or in memory.
#[derive(Debug, Clone, Args)]
pub struct StoreSettings {
    /// PostgreSQL (a server on this host, named without `sslmode`, is reached without TLS); unset: an in-memory store (lost at exit)
    #[arg(long, env = "DATABASE_URL", value_name = "URL", value_parser = SERVICE_URL, hide_env_values = true, help_heading = "Backends")]
    pub database_url: Option<RedactedUrl>,
    /// A PostgreSQL streaming replica of DATABASE_URL for catalog and order-list reads; unset: the primary answers every read
    #[arg(long, env = "DATABASE_READ_URL", value_name = "URL", value_parser = SERVICE_URL, hide_env_values = true, help_heading = "Backends")]
    pub database_read_url: Option<RedactedUrl>,
    /// Milliseconds the read replica may lag behind the primary and still answer reads
    #[arg(long = "read-replica-max-lag", env = "AGGREGATOR_READ_REPLICA_MAX_LAG_MS", default_value = "5000", value_parser = millis(1, 3_600_000), value_name = "MS", help_heading = "Backends")]
    pub read_replica_max_lag: Duration,
}

/// Where order, sync and webhook messages travel: RabbitMQ or in memory, and how
/// failed messages are retried.
#[derive(Debug, Clone, Args)]
pub struct QueueSettings {
    /// RabbitMQ (a cluster's nodes: URLs separated by commas); unset: an in-memory queue (one process only)
    #[arg(long, env = "AMQP_URL", value_name = "URL", value_parser = SERVICE_URL, hide_env_values = true, help_heading = "Backends")]
    pub amqp_url: Option<RedactedUrl>,
    /// Prepended to RabbitMQ queue names
    #[arg(
        long,
        env = "AGGREGATOR_QUEUE_PREFIX",
        default_value = "",
        hide_default_value = true,
        help_heading = "Backends"
    )]
    pub queue_prefix: String,
    /// Declare RabbitMQ quorum queues (replicated; needs RabbitMQ 3.10+); false declares classic ones
    #[arg(long = "quorum-queues", env = "AGGREGATOR_QUORUM_QUEUES", default_value = "true", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, value_name = "BOOL", help_heading = "Backends")]
    pub quorum_queues: bool,
    /// On quorum queues, how many times a message is handed out before the broker dead-letters it (0: no limit)
    #[arg(
        long,
        env = "AGGREGATOR_QUEUE_DELIVERY_LIMIT",
        default_value_t = aggregator_rabbitmq::DEFAULT_DELIVERY_LIMIT,
        value_name = "COUNT",
        help_heading = "Backends"
    )]
    pub queue_delivery_limit: u32,
    /// Milliseconds before each retry of a failed message; after the last, the dead-letter queue
    #[arg(long = "retry-delays", env = "AGGREGATOR_RETRY_DELAYS_MS", default_value = "1000,5000,25000,120000", value_parser = retry_delays, value_name = "MS,...", help_heading = "Workers")]
    pub retry: RetryPolicy,
}

/// Cached availability, rate limits and kept answers: Redis or in memory.
#[derive(Debug, Clone, Args)]
pub struct CacheSettings {
    /// Redis; unset: an in-memory cache and rate limiter
    #[arg(long, env = "REDIS_URL", value_name = "URL", value_parser = SERVICE_URL, hide_env_values = true, help_heading = "Backends")]
    pub redis_url: Option<RedactedUrl>,
    /// REDIS_URL names a Redis Cluster: one or more of its nodes, comma-separated
    #[arg(long = "redis-cluster", env = "AGGREGATOR_REDIS_CLUSTER", default_value = "false", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, value_name = "BOOL", help_heading = "Backends")]
    pub redis_cluster: bool,
    /// Prepended to Redis keys
    #[arg(
        long,
        env = "AGGREGATOR_CACHE_PREFIX",
        default_value = "aggregator:",
        help_heading = "Backends"
    )]
    pub cache_prefix: String,
    /// Milliseconds cached availability may lag behind changes another process made
    #[arg(long = "cache-ttl", env = "AGGREGATOR_CACHE_TTL_MS", default_value = "2000", value_parser = millis(1, 3_600_000), value_name = "MS", help_heading = "Backends")]
    pub cache_ttl: Duration,
}

/// The HTTP API.
#[derive(Debug, Clone, Args)]
pub struct ApiSettings {
    /// Where the HTTP API listens
    #[arg(
        long,
        env = "AGGREGATOR_API_ADDR",
        default_value = "127.0.0.1:3000",
        value_name = "ADDR",
        help_heading = "API"
    )]
    pub api_addr: SocketAddr,
    /// admin:KEY,client:CUSTOMER:KEY; without keys the API only listens on loopback
    #[arg(long, env = "AGGREGATOR_API_KEYS", default_value = "", hide_default_value = true, value_parser = API_KEYS, hide_env_values = true, value_name = "KEYS", help_heading = "API")]
    pub api_keys: ApiKeys,
    /// API requests a second per API key (per client address without keys)
    #[arg(long = "rate-limit", env = "AGGREGATOR_RATE_LIMIT_PER_SEC", default_value = "2000", value_parser = clap::value_parser!(u32).range(1..=10_000_000), value_name = "N", help_heading = "API")]
    pub rate_limit_per_sec: u32,
    /// Order event streams (`GET /api/events`) one API key, or one client address without keys, may hold open at once; more are answered 429
    #[arg(long = "max-streams-per-key", env = "AGGREGATOR_MAX_STREAMS_PER_KEY", default_value = "16", value_parser = clap::value_parser!(u32).range(1..=100_000), value_name = "N", help_heading = "API")]
    pub max_streams_per_key: u32,
    /// Orders this process places at once (`POST /api/orders`, `POST /order`); one more waits at most --admission-wait for a place, then is answered 503 with Retry-After, so that past capacity the orders taken keep their latency (0: no bound)
    #[arg(long = "max-orders-in-flight", env = "AGGREGATOR_MAX_ORDERS_IN_FLIGHT", default_value = "256", value_parser = clap::value_parser!(u32).range(0..=1_000_000), value_name = "N", help_heading = "API")]
    pub max_orders_in_flight: u32,
    /// Milliseconds an order waits for a place when --max-orders-in-flight are in flight, before it is refused
    #[arg(long = "admission-wait", env = "AGGREGATOR_ADMISSION_WAIT_MS", default_value = "0", value_parser = millis(0, 10_000), value_name = "MS", help_heading = "API")]
    pub admission_wait: Duration,
}

/// Operations: the ops listener and logging.
#[derive(Debug, Clone, Args)]
pub struct OpsSettings {
    /// Where this process serves /metrics, /health/live and /health/ready to operators, without keys (unset: only the API serves them)
    #[arg(
        long = "ops-addr",
        env = "AGGREGATOR_OPS_ADDR",
        value_name = "ADDR",
        help_heading = "Operations"
    )]
    pub ops_addr: Option<SocketAddr>,
    /// combined.log and error.log go here (rotated daily); `none`: no files
    #[arg(long, env = "AGGREGATOR_LOG_DIR", default_value = "logs", value_parser = log_dir, value_name = "DIR", help_heading = "Logging")]
    pub log_dir: LogDir,
    /// Days of log files kept (older ones are deleted as new ones start)
    #[arg(long = "log-keep-days", env = "AGGREGATOR_LOG_KEEP_DAYS", default_value = "14", value_parser = clap::value_parser!(u16).range(1..=3_650), value_name = "DAYS", help_heading = "Logging")]
    pub log_keep_days: u16,
    /// auto (pretty on a terminal, JSON otherwise), pretty or json
    #[arg(
        long,
        env = "AGGREGATOR_LOG_FORMAT",
        default_value = "auto",
        value_enum,
        help_heading = "Logging"
    )]
    pub log_format: LogFormat,
}

/// The vendors and how they are called.
#[derive(Debug, Clone, Args)]
pub struct VendorSettings {
    /// The vendors, in priority order
    #[arg(long, env = "AGGREGATOR_VENDORS", default_value = "VendorA=http://127.0.0.1:3001,VendorB=http://127.0.0.1:3002", value_parser = VENDOR_LIST, value_name = "ID=URL,...", help_heading = "Vendors")]
    pub vendors: ::std::vec::Vec<VendorEndpoint>,
    /// Milliseconds one vendor request may take
    #[arg(long = "vendor-timeout", env = "AGGREGATOR_VENDOR_TIMEOUT_MS", default_value = "10000", value_parser = millis(1, 600_000), value_name = "MS", help_heading = "Vendors")]
    pub vendor_timeout: Duration,
    /// Seconds a vendor's circuit breaker stays open after 5 failures in a row
    #[arg(long = "vendor-breaker-open", env = "AGGREGATOR_VENDOR_BREAKER_OPEN_SECS", default_value = "30", value_parser = seconds(1), value_name = "SECS", help_heading = "Vendors")]
    pub vendor_breaker_open: Duration,
    /// Seconds a vendor call waits for an open breaker to let it through, or for its place within the vendor's limits, before failing (not counted as an attempt)
    #[arg(long = "vendor-breaker-wait", env = "AGGREGATOR_VENDOR_BREAKER_WAIT_SECS", default_value = "30", value_parser = seconds(0), value_name = "SECS", help_heading = "Vendors")]
    pub vendor_breaker_wait: Duration,
    /// Seconds an order may wait on an unreachable vendor before its part moves to another fresh vendor with stock
    #[arg(long = "reroute-unavailable-after", env = "AGGREGATOR_REROUTE_UNAVAILABLE_AFTER_SECS", default_value = "20", value_parser = seconds(0), value_name = "SECS", help_heading = "Vendors")]
    pub reroute_unavailable_after: Duration,
    /// Requests a second each vendor may be sent, by all processes together (counted through Redis when it is configured), unless `--vendor-limits` names it
    #[arg(long = "vendor-max-per-second", env = "AGGREGATOR_VENDOR_MAX_PER_SECOND", default_value = "5000", value_parser = clap::value_parser!(u32).range(1..=1_000_000), value_name = "N", help_heading = "Vendors")]
    pub vendor_max_per_second: u32,
    /// Requests each vendor may have from us at once, by all processes together, unless `--vendor-limits` names it
    #[arg(long = "vendor-max-in-flight", env = "AGGREGATOR_VENDOR_MAX_IN_FLIGHT", default_value = "256", value_parser = clap::value_parser!(u32).range(1..=100_000), value_name = "N", help_heading = "Vendors")]
    pub vendor_max_in_flight: u32,
    /// Limits of single vendors, `ID=PER_SECOND[/IN_FLIGHT]` comma-separated (e.g. `VendorA=50/8`); set them about 10% under the vendor's own
    #[arg(long = "vendor-limits", env = "AGGREGATOR_VENDOR_LIMITS", default_value = "", hide_default_value = true, value_parser = vendor_limits, value_name = "ID=N[/N],...", help_heading = "Vendors")]
    pub vendor_limits: VendorLimitTable,
    /// Seconds a worker keeps sending one version of an order to its vendors after reading it; past it the message starts over from a fresh read, and a vendor answering "unknown key" to a cancellation is believed once the key has been dead twice this long
    #[arg(long = "placement-timeout", env = "AGGREGATOR_PLACEMENT_TIMEOUT_SECS", default_value = "60", value_parser = seconds(1), value_name = "SECS", help_heading = "Vendors")]
    pub placement_timeout: Duration,
}

/// Order workers, the outbox relay, the sweeper and shutdown.
#[derive(Debug, Clone, Args)]
pub struct WorkerSettings {
    /// Order workers in this process
    #[arg(long, env = "AGGREGATOR_WORKERS", default_value = "2", value_parser = clap::value_parser!(u16).range(0..=64), value_name = "N", help_heading = "Workers")]
    pub workers: u16,
    /// Messages each worker handles at once
    #[arg(long, env = "AGGREGATOR_WORKER_CONCURRENCY", default_value = "128", value_parser = clap::value_parser!(u16).range(1..=1_000), value_name = "N", help_heading = "Workers")]
    pub worker_concurrency: u16,
    /// Milliseconds between the outbox relay's scans of the whole outbox; what a commit in this process wrote is published at once, found by id, and a full batch is followed by another straight away
    #[arg(long = "relay-interval", env = "AGGREGATOR_RELAY_INTERVAL_MS", default_value = "500", value_parser = millis(1, 60_000), value_name = "MS", help_heading = "Workers")]
    pub relay_interval: Duration,
    /// Outbox messages the relay claims and publishes per round (the orders among them go
    /// as `ProcessOrders` messages of at most 256 orders)
    #[arg(long, env = "AGGREGATOR_RELAY_BATCH", default_value = "200", value_parser = clap::value_parser!(u32).range(1..=100_000), value_name = "N", help_heading = "Workers")]
    pub relay_batch: u32,
    /// Milliseconds a relay's claim on outbox messages lasts; unpublished ones are claimed again after it
    #[arg(long = "relay-lease", env = "AGGREGATOR_RELAY_LEASE_MS", default_value = "5000", value_parser = millis(1, 3_600_000), value_name = "MS", help_heading = "Workers")]
    pub relay_lease: Duration,
    /// Seconds between sweeps of overdue reservations and holds
    #[arg(long = "sweep-interval", env = "AGGREGATOR_SWEEP_INTERVAL_SECS", default_value = "5", value_parser = seconds(1), value_name = "SECS", help_heading = "Workers")]
    pub sweep_interval: Duration,
    /// Orders and holds the sweeper expires per store call
    #[arg(long, env = "AGGREGATOR_SWEEP_BATCH", default_value = "500", value_parser = clap::value_parser!(u32).range(1..=100_000), value_name = "N", help_heading = "Workers")]
    pub sweep_batch: u32,
    /// Seconds a cancellation at a vendor may stay pending after it was last queued before the sweeper queues it again (one whose message was dead-lettered comes back)
    #[arg(long = "cancellation-requeue-after", env = "AGGREGATOR_CANCELLATION_REQUEUE_AFTER_SECS", default_value = "600", value_parser = seconds(1), value_name = "SECS", help_heading = "Workers")]
    pub cancellation_requeue_after: Duration,
    /// Seconds in-flight work may take after SIGINT/SIGTERM
    #[arg(long, env = "AGGREGATOR_SHUTDOWN_GRACE_SECS", default_value = "10", value_parser = seconds(0), value_name = "SECS", help_heading = "Workers")]
    pub grace: Duration,
    /// Seconds order events are kept for clients resuming their event stream; the sweeper forgets older ones
    #[arg(long = "event-retention", env = "AGGREGATOR_EVENT_RETENTION_SECS", default_value = "604800", value_parser = seconds_up_to(60, 31_536_000), value_name = "SECS", help_heading = "Workers")]
    pub event_retention: Duration,
}

/// Webhook endpoints and deliveries.
#[derive(Debug, Clone, Args)]
pub struct WebhookSettings {
    /// Let webhook endpoints point at loopback and private addresses (off: only public ones, against request forgery)
    #[arg(long = "webhook-allow-private", env = "AGGREGATOR_WEBHOOK_ALLOW_PRIVATE", default_value = "false", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, value_name = "BOOL", help_heading = "Webhooks")]
    pub webhook_allow_private: bool,
    /// Milliseconds one webhook delivery may take
    #[arg(long = "webhook-timeout", env = "AGGREGATOR_WEBHOOK_TIMEOUT_MS", default_value = "5000", value_parser = millis(100, 60_000), value_name = "MS", help_heading = "Webhooks")]
    pub webhook_timeout: Duration,
    /// Failed deliveries in a row that disable a webhook endpoint
    #[arg(long = "webhook-disable-after", env = "AGGREGATOR_WEBHOOK_DISABLE_AFTER", default_value = "20", value_parser = clap::value_parser!(u32).range(1..=10_000), value_name = "N", help_heading = "Webhooks")]
    pub webhook_disable_after: u32,
    /// Webhook deliveries each worker process sends at once
    #[arg(long = "webhook-concurrency", env = "AGGREGATOR_WEBHOOK_CONCURRENCY", default_value = "16", value_parser = clap::value_parser!(u16).range(1..=1_000), value_name = "N", help_heading = "Webhooks")]
    pub webhook_concurrency: u16,
}

/// The stock sync and the clocks it trusts.
#[derive(Debug, Clone, Args)]
pub struct SyncSettings {
    /// Seconds between stock syncs of every vendor
    #[arg(long = "sync-interval", env = "AGGREGATOR_SYNC_INTERVAL_SECS", default_value = "30", value_parser = seconds(1), value_name = "SECS", help_heading = "Stock sync")]
    pub sync_interval: Duration,
    /// Sync requests the stock_sync_queue consumer handles at once
    #[arg(long, env = "AGGREGATOR_SYNC_CONCURRENCY", default_value = "2", value_parser = clap::value_parser!(u16).range(1..=1_000), value_name = "N", help_heading = "Stock sync")]
    pub sync_concurrency: u16,
    /// Rows asked per page of a vendor's stock feed
    #[arg(long = "sync-page-size", visible_alias = "page-size", env = "AGGREGATOR_SYNC_PAGE_SIZE", default_value = "1000", value_parser = clap::value_parser!(u32).range(1..=10_000), value_name = "N", help_heading = "Stock sync")]
    pub sync_page_size: u32,
    /// Pages of one vendor's stock feed asked for at once (when the vendor tells its row count)
    #[arg(long = "sync-fetches", env = "AGGREGATOR_SYNC_FETCHES", default_value = "4", value_parser = clap::value_parser!(u16).range(1..=64), value_name = "N", help_heading = "Stock sync")]
    pub sync_fetches: u16,
    /// Rows of a vendor's stock feed written to the store per transaction, once every page is read
    #[arg(long = "sync-write-rows", env = "AGGREGATOR_SYNC_WRITE_ROWS", default_value = "10000", value_parser = clap::value_parser!(u32).range(1..=1_000_000), value_name = "N", help_heading = "Stock sync")]
    pub sync_write_rows: u32,
    /// Milliseconds a vendor's stock feed may run ahead of our clock; a feed further ahead is refused whole
    #[arg(long = "clock-tolerance", env = "AGGREGATOR_CLOCK_TOLERANCE_MS", default_value = "5000", value_parser = millis(0, 86_400_000), value_name = "MS", help_heading = "Stock sync")]
    pub clock_tolerance: Duration,
    /// Milliseconds a vendor's report must be later than its confirmation of our order to count as including it
    #[arg(long = "confirmation-margin", env = "AGGREGATOR_CONFIRMATION_MARGIN_MS", default_value = "5000", value_parser = millis(0, 86_400_000), value_name = "MS", help_heading = "Stock sync")]
    pub confirmation_margin: Duration,
}

/// Orders, holds and group commit.
#[derive(Debug, Clone, Args)]
pub struct OrderSettings {
    /// Seconds a placed order holds its units before it expires unconfirmed
    #[arg(long = "reservation-ttl", env = "AGGREGATOR_RESERVATION_TTL_SECS", default_value = "900", value_parser = seconds(1), value_name = "SECS", help_heading = "Orders and holds")]
    pub reservation_ttl: Duration,
    /// Active holds one customer may have at once
    #[arg(long = "max-holds", env = "AGGREGATOR_MAX_HOLDS_PER_CUSTOMER", default_value = "10", value_parser = clap::value_parser!(u32).range(1..=1_000_000), value_name = "N", help_heading = "Orders and holds")]
    pub max_holds_per_customer: u32,
    /// Units one customer may hold at once over all its holds
    #[arg(long = "max-held-units", env = "AGGREGATOR_MAX_HELD_UNITS_PER_CUSTOMER", default_value = "100", value_parser = clap::value_parser!(u64).range(1..=1_000_000_000), value_name = "N", help_heading = "Orders and holds")]
    pub max_held_units_per_customer: u64,
    /// Seconds a hold may last from its creation, extensions included
    #[arg(long = "max-hold-lifetime", env = "AGGREGATOR_MAX_HOLD_LIFETIME_SECS", default_value = "3600", value_parser = seconds(1), value_name = "SECS", help_heading = "Orders and holds")]
    pub max_hold_lifetime: Duration,
    /// Milliseconds a placement may plan from catalog reads this old (the store still decides; a short or refused plan is made again from fresh reads); 0: always read
    #[arg(long = "plan-reads-ttl", env = "AGGREGATOR_PLAN_READS_TTL_MS", default_value = "30000", value_parser = millis(0, 60_000), value_name = "MS", help_heading = "Group commit")]
    pub plan_reads_ttl: Duration,
    /// Microseconds a placement or status change waits for others to share its commit
    #[arg(long = "group-commit-window", env = "AGGREGATOR_GROUP_COMMIT_WINDOW_US", default_value = "2000", value_parser = micros(0, 1_000_000), value_name = "US", help_heading = "Group commit")]
    pub group_commit_window: Duration,
    /// Most placements (or status changes) committed as one batch; 1 turns group commit off
    #[arg(long = "group-commit-max", env = "AGGREGATOR_GROUP_COMMIT_MAX", default_value = "256", value_parser = clap::value_parser!(u32).range(1..=10_000), value_name = "N", help_heading = "Group commit")]
    pub group_commit_max: u32,
    /// Batches in the store at once (each uses one database connection)
    #[arg(long = "group-commit-in-flight", env = "AGGREGATOR_GROUP_COMMIT_IN_FLIGHT", default_value = "2", value_parser = clap::value_parser!(u32).range(1..=256), value_name = "N", help_heading = "Group commit")]
    pub group_commit_in_flight: u32,
}

mod configs;
mod parsers;

pub(crate) use configs::span;
use parsers::{
    API_KEYS, SERVICE_URL, VENDOR_LIST, log_dir, micros, millis, retry_delays, seconds,
    seconds_up_to, vendor_limits,
};
pub use parsers::{LogDir, VendorLimitTable};

/// One setting as `--help` and the table in docs/SETTINGS.md show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingRow {
    /// The long flag, e.g. `--api-addr`.
    pub flag: String,
    /// The environment variable, e.g. `AGGREGATOR_API_ADDR`.
    pub env: String,
    /// The default as text (empty: unset).
    pub default: String,
    /// What it does.
    pub help: String,
}

impl Settings {
    /// Every setting, in the order `--help` lists them.
    pub fn table() -> Vec<SettingRow> {
        Self::augment_args(Command::new("settings"))
            .get_arguments()
            .filter_map(|arg| {
                Some(SettingRow {
                    flag: format!("--{}", arg.get_long()?),
                    env: arg.get_env()?.to_string_lossy().into_owned(),
                    default: arg
                        .get_default_values()
                        .iter()
                        .map(|v| v.to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join(","),
                    help: arg.get_help().map(ToString::to_string).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Parses `args` (flags only, no program name), reading the environment through
    /// `env` instead of the process's: for tests and embedders. Flags win over
    /// variables, variables over defaults.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, clap::Error> {
        parse_with_env(Self::augment_args(Command::new("settings")), args, env)
    }
}

/// Parses the process's arguments and environment as `T` exactly as [`parse_with_env`]
/// does (an empty variable counts as unset, as it always has here), and on `--help`,
/// `--version` or an error prints and exits as clap does: help and version on stdout
/// with exit 0, errors on stderr with exit 2.
pub fn parse_process<T: clap::Parser>() -> T {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    match parse_with_env::<T>(T::command(), args, |name| std::env::var(name).ok()) {
        Ok(parsed) => parsed,
        Err(error) => {
            if matches!(
                error.kind(),
                clap::error::ErrorKind::DisplayHelp
                    | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                    | clap::error::ErrorKind::DisplayVersion
            ) {
                // The full command, so that the help names each setting's variable.
                if let Err(shown) = T::command().try_get_matches_from(std::env::args_os()) {
                    shown.exit();
                }
            }
            error.exit()
        }
    }
}

/// Parses `args` (no program name) with `command`, reading every argument's
/// environment variable through `env` instead of the process's environment (an empty
/// value counts as unset, as clap does). Flags win over variables.
pub fn parse_with_env<T: FromArgMatches>(
    command: Command,
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<T, clap::Error> {
    let mut from_env = Vec::new();
    let command = command
        .no_binary_name(true)
        .args_override_self(true)
        .mut_args(|arg| {
            if let (Some(name), Some(long)) = (arg.get_env(), arg.get_long())
                && let Some(value) = env(&name.to_string_lossy()).filter(|v| !v.is_empty())
            {
                from_env.push(format!("--{long}={value}"));
            }
            arg.env(None)
        });
    // Flags first, so that positional words (subcommands) keep their place after them.
    let matches: ArgMatches = command.try_get_matches_from(from_env.into_iter().chain(args))?;
    T::from_arg_matches(&matches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aggregator_core::domain::VendorId;
    use aggregator_core::resilience::VendorLimits;
    use std::path::PathBuf;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Settings, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::parse(args.iter().map(|s| s.to_string()), move |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_then_environment_then_flags() {
        let settings = parse(&[], &[]).expect("defaults");
        assert_eq!(settings.api.api_addr.to_string(), "127.0.0.1:3000");
        assert_eq!(settings.ops.ops_addr, None, "no ops listener unless asked");
        assert_eq!(settings.vendor.vendors.len(), 2);
        assert_eq!(settings.sync.sync_interval, Duration::from_secs(30));
        assert!(settings.store.database_url.is_none());
        assert_eq!(settings.ops.log_dir, Some(PathBuf::from("logs")));
        assert_eq!(settings.worker.relay_batch, 200);
        assert_eq!(settings.cache.cache_ttl, Duration::from_secs(2));
        assert_eq!(
            settings.worker.event_retention,
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(settings.sync.sync_write_rows, 10_000);
        assert!(
            !settings.webhooks.webhook_allow_private,
            "webhooks only to public addresses"
        );
        assert_eq!(settings.webhooks.webhook_disable_after, 20);
        let error = parse(&["--event-retention", "59"], &[]).expect_err("too short");
        assert!(error.contains("--event-retention"), "{error}");
        let settings = parse(
            &[
                "--workers",
                "4",
                "--api-addr=0.0.0.0:8080",
                "--log-dir",
                "none",
            ],
            &[
                ("AGGREGATOR_WORKERS", "3"),
                ("DATABASE_URL", "postgres://x"),
                ("AGGREGATOR_RELAY_BATCH", "50"),
            ],
        )
        .expect("valid");
        assert_eq!(settings.worker.workers, 4, "the flag wins");
        assert_eq!(
            settings.worker.relay_batch, 50,
            "the variable beats the default"
        );
        assert_eq!(settings.api.api_addr.port(), 8080);
        assert_eq!(
            settings
                .store
                .database_url
                .as_ref()
                .map(RedactedUrl::expose),
            Some("postgres://x")
        );
        assert_eq!(settings.ops.log_dir, None, "none means no files");
        let secret = parse(
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
            (vec!["--workers", "many"], vec![], "--workers"),
            (vec!["--workers"], vec![], "a value is required"),
            (vec!["--nope", "1"], vec![], "unexpected argument"),
            (
                vec![],
                vec![("AGGREGATOR_API_ADDR", "localhost")],
                "--api-addr",
            ),
            (vec![], vec![("AGGREGATOR_VENDORS", "x")], "--vendors"),
            (
                vec![],
                vec![("AGGREGATOR_API_KEYS", "admin:short")],
                "--api-keys",
            ),
            (
                vec![],
                vec![("AGGREGATOR_SYNC_INTERVAL_SECS", "0")],
                "--sync-interval",
            ),
            (
                vec![],
                vec![("AGGREGATOR_LOG_FORMAT", "xml")],
                "--log-format",
            ),
            (
                vec![],
                vec![("AGGREGATOR_RETRY_DELAYS_MS", "10,x")],
                "--retry-delays",
            ),
            (vec![], vec![("DATABASE_URL", "nonsense")], "--database-url"),
        ] {
            let error = parse(&args, &env).expect_err(needle);
            assert!(error.contains(needle), "{args:?} {env:?}: {error}");
        }
    }

    #[test]
    fn the_readme_table_and_the_compose_file_agree_with_the_settings() {
        let readme = include_str!("../../docs/SETTINGS.md");
        let table = Settings::table();
        assert!(table.len() >= 30, "{}", table.len());
        for row in &table {
            let line = format!("| `{}` | `{}` |", row.flag, row.env);
            assert!(
                readme.contains(&line),
                "docs/SETTINGS.md lacks the row {line}"
            );
            assert!(!row.help.is_empty(), "{} has no help", row.flag);
        }
        let compose = include_str!("../../docker-compose.yml");
        let keys = compose
            .lines()
            .find_map(|l| l.trim().strip_prefix("AGGREGATOR_API_KEYS:"))
            .expect("compose sets API keys");
        assert!(ApiKeys::parse(keys.trim()).is_ok(), "{keys}");
    }

    #[test]
    fn vendor_limits_name_single_vendors_and_refuse_bad_entries() {
        let table = vendor_limits("VendorA=50/8, VendorB=120").expect("valid");
        let default = VendorLimits {
            per_second: 5_000,
            in_flight: 256,
        };
        let id = |text: &str| VendorId::new(text).expect("id");
        assert_eq!(
            table.for_vendor(&id("VendorA"), default),
            VendorLimits {
                per_second: 50,
                in_flight: 8
            }
        );
        assert_eq!(
            table.for_vendor(&id("VendorB"), default),
            VendorLimits {
                per_second: 120,
                in_flight: 256
            }
        );
        assert_eq!(table.for_vendor(&id("VendorC"), default), default);
        assert_eq!(
            vendor_limits("").expect("none"),
            VendorLimitTable::default()
        );
        for bad in [
            "VendorA",
            "VendorA=0",
            "VendorA=5/0",
            "VendorA=x",
            "VendorA=5,VendorA=6",
            "=5",
        ] {
            assert!(vendor_limits(bad).is_err(), "{bad}");
        }
    }
}
