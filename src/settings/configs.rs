//! What each section of the settings builds: the configuration of its part (the
//! backends' connections, the API, the vendor clients, the consumers, the sync, the
//! ordering rules and group commit).

use std::time::Duration;

use aggregator_core::RedactedUrl;
use aggregator_core::resilience::VendorLimits;
use aggregator_core::service::{BatchConfig, ConsumerConfig, OrderConfig, SyncConfig};
use aggregator_core::traits::{HoldLimits, RateLimit};
use aggregator_http::HttpVendorConfig;
use aggregator_http::api::ApiConfig;
use aggregator_http::webhooks::WebhookSenderConfig;
use aggregator_postgres::ReadReplicaConfig;
use aggregator_rabbitmq::RabbitConfig;
use aggregator_redis::RedisConfig;

use super::{
    ApiSettings, CacheSettings, OrderSettings, QueueSettings, StoreSettings, SyncSettings,
    VendorSettings, WebhookSettings, WorkerSettings,
};

impl StoreSettings {
    /// The read replica's connection, if `DATABASE_READ_URL` names one.
    pub fn replica(&self) -> Option<ReadReplicaConfig> {
        self.database_read_url.as_ref().map(|url| {
            let mut config = ReadReplicaConfig::new(url.expose().to_owned());
            config.max_lag = self.read_replica_max_lag;
            config
        })
    }
}

impl QueueSettings {
    /// How to reach RabbitMQ at `url` and declare its queues.
    pub fn rabbit(&self, url: &RedactedUrl) -> RabbitConfig {
        let mut config = RabbitConfig::new(url.expose().to_owned());
        config.prefix = self.queue_prefix.clone();
        config.retry = self.retry.clone();
        config.quorum = self.quorum_queues;
        config.delivery_limit = Some(self.queue_delivery_limit).filter(|&n| n > 0);
        config
    }
}

impl CacheSettings {
    /// How to reach Redis at `url`.
    pub fn redis(&self, url: &RedactedUrl) -> RedisConfig {
        let mut config = RedisConfig::new(url.expose().to_owned());
        config.key_prefix = self.cache_prefix.clone();
        config.cluster = self.redis_cluster;
        config
    }
}

impl ApiSettings {
    /// The API's configuration; `webhook_allow_private` says whether webhook endpoints
    /// may point at private addresses.
    pub fn config(&self, webhook_allow_private: bool) -> ApiConfig {
        ApiConfig {
            keys: self.api_keys.clone(),
            rate_limit: RateLimit {
                max_requests: self.rate_limit_per_sec,
                window: Duration::from_secs(1),
            },
            webhook_allow_private,
            max_streams_per_key: usize::try_from(self.max_streams_per_key).unwrap_or(usize::MAX),
            max_orders_in_flight: usize::try_from(self.max_orders_in_flight).unwrap_or(usize::MAX),
            admission_wait: self.admission_wait,
            ..ApiConfig::default()
        }
    }
}

impl VendorSettings {
    /// Applies the vendor call settings to one vendor's client configuration: its
    /// timeout, breaker, and its limits (its own from `--vendor-limits`, or the
    /// defaults).
    pub fn tune(&self, config: &mut HttpVendorConfig) {
        config.request_timeout = self.vendor_timeout;
        config.breaker.open_for = self.vendor_breaker_open;
        config.breaker_wait = self.vendor_breaker_wait;
        config.budget_wait = self.vendor_breaker_wait;
        let default_limits = VendorLimits {
            per_second: self.vendor_max_per_second,
            in_flight: self.vendor_max_in_flight,
        };
        config.limits = self
            .vendor_limits
            .for_vendor(&config.vendor, default_limits);
    }
}

impl WorkerSettings {
    /// How each order worker consumes `order_queue`.
    pub fn consumer(&self) -> ConsumerConfig {
        ConsumerConfig {
            concurrency: self.worker_concurrency,
            grace: self.grace,
        }
    }
}

impl WebhookSettings {
    /// How the deliverer consumes `webhook_queue`, with `grace` after shutdown.
    pub fn consumer(&self, grace: Duration) -> ConsumerConfig {
        ConsumerConfig {
            concurrency: self.webhook_concurrency,
            grace,
        }
    }

    /// How each delivery is sent.
    pub fn sender(&self) -> WebhookSenderConfig {
        WebhookSenderConfig {
            timeout: self.webhook_timeout,
            allow_private: self.webhook_allow_private,
        }
    }
}

impl SyncSettings {
    /// How a stock sync runs. Refuses a confirmation margin below the clock tolerance:
    /// a report taken before a sale could then prune it (`StockLedger`'s clock notes).
    pub fn config(&self) -> aggregator_core::Result<SyncConfig> {
        if self.confirmation_margin < self.clock_tolerance {
            return Err(aggregator_core::Error::invalid(
                "confirmationMargin",
                format!(
                    "--confirmation-margin ({} ms) must be at least --clock-tolerance ({} ms)",
                    self.confirmation_margin.as_millis(),
                    self.clock_tolerance.as_millis()
                ),
            ));
        }
        Ok(SyncConfig {
            page_size: self.sync_page_size,
            fetches_in_flight: usize::from(self.sync_fetches),
            rows_per_write: usize::try_from(self.sync_write_rows).unwrap_or(usize::MAX),
            clock_tolerance: span(self.clock_tolerance)?,
            confirmation_margin: span(self.confirmation_margin)?,
            ..SyncConfig::default()
        })
    }

    /// How the sync consumer takes `stock_sync_queue`, with `grace` after shutdown.
    pub fn consumer(&self, grace: Duration) -> ConsumerConfig {
        ConsumerConfig {
            concurrency: self.sync_concurrency,
            grace,
        }
    }
}

impl OrderSettings {
    /// The ordering rules these settings ask for; refuses an invalid combination.
    pub fn config(&self) -> aggregator_core::Result<OrderConfig> {
        let config = OrderConfig {
            reservation_ttl: span(self.reservation_ttl)?,
            max_hold_lifetime: span(self.max_hold_lifetime)?,
            hold_limits: HoldLimits {
                max_active: self.max_holds_per_customer,
                max_units: self.max_held_units_per_customer,
            },
            ..OrderConfig::default()
        };
        config.validate()?;
        Ok(config)
    }

    /// How placements and status changes are gathered into group commits.
    pub fn group_commit(&self) -> BatchConfig {
        BatchConfig {
            window: self.group_commit_window,
            max_batch: self.group_commit_max as usize,
            in_flight: self.group_commit_in_flight as usize,
        }
    }
}

/// A span of time as the core counts it.
pub(crate) fn span(duration: Duration) -> aggregator_core::Result<time::Duration> {
    time::Duration::try_from(duration)
        .map_err(|e| aggregator_core::Error::invalid("duration", format!("{duration:?}: {e}")))
}
