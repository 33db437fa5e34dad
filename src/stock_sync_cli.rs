//! The seed's `stock-sync` command: sync every vendor, one vendor, or print the
//! aggregated availability, against PostgreSQL (`DATABASE_URL`) or an in-memory store.

use std::io::Write;
use std::sync::Arc;

use aggregator_core::clock::{Clock, SystemClock};
use aggregator_core::domain::{StalenessLimit, VendorId};
use aggregator_core::error::{Error, Result};
use aggregator_core::memory::InMemoryStockStore;
use aggregator_core::service::{Catalog, StockSync, SyncConfig, SyncReport};
use aggregator_core::traits::{OrderQueue, StockStore};
use aggregator_http::{VendorEndpoint, parse_vendor_list, register_vendors};
use aggregator_postgres::{PostgresConfig, PostgresStockStore};
use aggregator_rabbitmq::{RabbitConfig, RabbitQueue};

/// The vendors used when `AGGREGATOR_VENDORS` is not set: the two mock vendors.
pub const DEFAULT_VENDORS: &str = "VendorA=http://127.0.0.1:3001,VendorB=http://127.0.0.1:3002";

/// The command's usage text.
pub const USAGE: &str = "\
usage: stock-sync [all | vendor ID | aggregate] [--queue | --api URL] [--page-size N]

  all          sync every configured vendor now (the default)
  vendor ID    sync one vendor now
  aggregate    print the aggregated availability of every product in the store
  --queue      queue the sync requests on stock_sync_queue (for the workers) instead
  --api URL    ask a running API (e.g. http://127.0.0.1:3000 of full_stack) instead:
               `all`/`vendor` queue its syncs, `aggregate` prints its catalog
  --page-size N  rows asked per page of a vendor's feed (default 1000)

Settings from the environment:
  AGGREGATOR_VENDORS  e.g. VendorA=http://127.0.0.1:3001,VendorB=http://127.0.0.1:3002 (the default)
  DATABASE_URL        PostgreSQL; without it the store is in memory and lives for this run
                      only (then `aggregate` syncs every vendor first)
  AMQP_URL            RabbitMQ, needed by --queue
  AGGREGATOR_API_URL  the API for --api; AGGREGATOR_API_KEY an admin key for it, if it has keys
  AGGREGATOR_QUEUE_PREFIX  prepended to queue names (default none)";

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncCommand {
    /// Sync every vendor.
    All,
    /// Sync one vendor.
    Vendor(VendorId),
    /// Print aggregated availability.
    Aggregate,
}

/// The parsed command line and environment.
#[derive(Debug, Clone)]
pub struct SyncCli {
    /// What to do.
    pub command: SyncCommand,
    /// Queue the requests instead of syncing here.
    pub queue: bool,
    /// Rows per page.
    pub page_size: u32,
    /// The vendors, in priority order.
    pub vendors: Vec<VendorEndpoint>,
    /// PostgreSQL, if set.
    pub database_url: Option<String>,
    /// RabbitMQ, if set.
    pub amqp_url: Option<String>,
    /// Queue name prefix.
    pub queue_prefix: String,
    /// A running API to ask instead, and its admin key.
    pub api: Option<(String, Option<String>)>,
}

impl SyncCli {
    /// Parses the arguments (without the program name) and reads the settings through
    /// `env`. An error is a message for the user (exit code 2).
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> std::result::Result<Self, String> {
        let mut words = Vec::new();
        let mut queue = false;
        let mut api = env("AGGREGATOR_API_URL").filter(|url| !url.is_empty());
        let mut page_size = SyncConfig::default().page_size;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--queue" => queue = true,
                "--api" => {
                    api = Some(
                        args.next()
                            .ok_or_else(|| format!("--api needs a URL\n\n{USAGE}"))?,
                    );
                }
                "--page-size" => {
                    let text = args
                        .next()
                        .ok_or_else(|| format!("--page-size needs a value\n\n{USAGE}"))?;
                    page_size = match text.parse::<u32>() {
                        Ok(n) if (1..=10_000).contains(&n) => n,
                        _ => return Err(format!("--page-size {text:?} must be from 1 to 10000")),
                    };
                }
                "-h" | "--help" => return Err(USAGE.to_owned()),
                flag if flag.starts_with('-') => {
                    return Err(format!("unknown option {flag:?}\n\n{USAGE}"));
                }
                _ => words.push(arg),
            }
        }
        let vendors_text = env("AGGREGATOR_VENDORS").unwrap_or_else(|| DEFAULT_VENDORS.into());
        let vendors =
            parse_vendor_list(&vendors_text).map_err(|e| format!("AGGREGATOR_VENDORS: {e}"))?;
        let command = match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            [] | ["all"] => SyncCommand::All,
            ["aggregate"] => SyncCommand::Aggregate,
            ["vendor", id] => {
                let id = VendorId::new(id).map_err(|e| e.to_string())?;
                if !vendors.iter().any(|v| v.id == id) {
                    let known: Vec<&str> = vendors.iter().map(|v| v.id.as_str()).collect();
                    return Err(format!(
                        "unknown vendor {id}; configured vendors: {}",
                        known.join(", ")
                    ));
                }
                SyncCommand::Vendor(id)
            }
            ["vendor"] => return Err(format!("`vendor` needs a vendor id\n\n{USAGE}")),
            _ => return Err(format!("unknown command {:?}\n\n{USAGE}", words.join(" "))),
        };
        if let Some(url) = &api {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("--api {url:?} must be an http:// or https:// URL"));
            }
            if queue {
                return Err("--queue and --api exclude each other".into());
            }
        }
        if queue && command == SyncCommand::Aggregate {
            return Err("--queue applies to `all` and `vendor`, not to `aggregate`".into());
        }
        let amqp_url = env("AMQP_URL").filter(|url| !url.is_empty());
        if queue && amqp_url.is_none() {
            return Err("--queue needs AMQP_URL (the RabbitMQ that the workers consume)".into());
        }
        Ok(Self {
            command,
            queue,
            page_size,
            vendors,
            database_url: env("DATABASE_URL").filter(|url| !url.is_empty()),
            amqp_url,
            queue_prefix: env("AGGREGATOR_QUEUE_PREFIX").unwrap_or_default(),
            api: api.map(|url| {
                (
                    url.trim_end_matches('/').to_owned(),
                    env("AGGREGATOR_API_KEY").filter(|k| !k.is_empty()),
                )
            }),
        })
    }

    fn targets(&self) -> Vec<VendorId> {
        match &self.command {
            SyncCommand::Vendor(id) => vec![id.clone()],
            _ => self.vendors.iter().map(|v| v.id.clone()).collect(),
        }
    }

    /// Runs the command, writing results to `out`; answers the process exit code: 0 when
    /// everything worked, 1 when a vendor's sync failed or a service was unreachable.
    pub async fn run(&self, out: &mut dyn Write) -> u8 {
        match self.run_inner(out).await {
            Ok(code) => code,
            Err(error) => {
                let _ = writeln!(out, "stock-sync: {error}");
                1
            }
        }
    }

    async fn run_inner(&self, out: &mut dyn Write) -> Result<u8> {
        if let Some((url, key)) = &self.api {
            return self.through_api(url, key.as_deref(), out).await;
        }
        if self.queue {
            return self.queue_requests(out).await;
        }
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (store, in_memory): (Arc<dyn StockStore>, bool) = match &self.database_url {
            Some(url) => {
                let store = PostgresStockStore::connect(&PostgresConfig::new(url.clone())).await?;
                store.migrate().await?;
                (Arc::new(store), false)
            }
            None => (Arc::new(InMemoryStockStore::new()), true),
        };
        let directory = register_vendors(store.as_ref(), &self.vendors, |_| {}).await?;
        let config = SyncConfig {
            page_size: self.page_size,
            ..SyncConfig::default()
        };
        let sync = StockSync::new(store.clone(), directory, clock.clone(), config)?;
        match self.command {
            SyncCommand::All | SyncCommand::Vendor(_) => self.sync_targets(&sync, out).await,
            SyncCommand::Aggregate => {
                if in_memory {
                    writeln!(
                        out,
                        "(no DATABASE_URL: syncing every vendor into memory first)"
                    )
                    .map_err(io_error)?;
                    self.sync_targets(&sync, out).await?;
                }
                let catalog = Catalog::new(store, clock, StalenessLimit::default());
                print_aggregate(&catalog, out).await?;
                Ok(0)
            }
        }
    }

    async fn sync_targets(&self, sync: &StockSync, out: &mut dyn Write) -> Result<u8> {
        let mut failed = 0;
        for vendor in self.targets() {
            match sync.sync_vendor(&vendor).await {
                Ok(report) => writeln!(out, "{}", describe_success(&report)),
                Err(error) => {
                    failed += 1;
                    writeln!(out, "{vendor}: sync FAILED: {error}")
                }
            }
            .map_err(io_error)?;
        }
        Ok(u8::from(failed > 0))
    }

    async fn queue_requests(&self, out: &mut dyn Write) -> Result<u8> {
        let url = self
            .amqp_url
            .clone()
            .ok_or_else(|| Error::invalid("AMQP_URL", "is required with --queue"))?;
        let mut config = RabbitConfig::new(url);
        config.prefix = self.queue_prefix.clone();
        let queue = RabbitQueue::connect(config).await?;
        for vendor in self.targets() {
            let message =
                aggregator_core::domain::Message::json(&aggregator_core::domain::SyncRequest {
                    vendor: vendor.clone(),
                })?;
            queue
                .publish(aggregator_core::domain::QueueName::StockSync, &message)
                .await?;
            writeln!(
                out,
                "{vendor}: sync request queued on stock_sync_queue ({})",
                message.id
            )
            .map_err(io_error)?;
        }
        Ok(0)
    }
}

impl SyncCli {
    async fn through_api(&self, base: &str, key: Option<&str>, out: &mut dyn Write) -> Result<u8> {
        let http = reqwest::Client::new();
        let with_key = |request: reqwest::RequestBuilder| match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        };
        let unreachable = |e: reqwest::Error| {
            Error::transient(format!("API {base}"), e.without_url().to_string())
        };
        match &self.command {
            SyncCommand::All | SyncCommand::Vendor(_) => {
                let body = match &self.command {
                    SyncCommand::Vendor(id) => serde_json::json!({ "vendor": id.as_str() }),
                    _ => serde_json::json!({}),
                };
                let response = with_key(http.post(format!("{base}/api/ops/stock-sync")))
                    .json(&body)
                    .send()
                    .await
                    .map_err(unreachable)?;
                let status = response.status();
                let answer: serde_json::Value = response.json().await.unwrap_or_default();
                if !status.is_success() {
                    return refused(out, status, &answer);
                }
                for vendor in answer["queued"].as_array().into_iter().flatten() {
                    writeln!(
                        out,
                        "{}: sync requested from {base}",
                        vendor.as_str().unwrap_or("?")
                    )
                    .map_err(io_error)?;
                }
                Ok(0)
            }
            SyncCommand::Aggregate => {
                let mut page = 1;
                let mut printed = 0;
                loop {
                    let response =
                        with_key(http.get(format!("{base}/api/products?limit=100&page={page}")))
                            .send()
                            .await
                            .map_err(unreachable)?;
                    let status = response.status();
                    let answer: serde_json::Value = response.json().await.unwrap_or_default();
                    if !status.is_success() {
                        return refused(out, status, &answer);
                    }
                    for product in answer["products"].as_array().into_iter().flatten() {
                        let vendors =
                            product["vendors"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .map(|v| {
                                    (
                                        v["vendor"].as_str().unwrap_or("?").to_owned(),
                                        v["sku"].as_str().unwrap_or("?").to_owned(),
                                        v["sellable"].as_i64().unwrap_or(0),
                                        v["fresh"] == true,
                                    )
                                });
                        let line = product_line(
                            product["productId"].as_str().unwrap_or("?"),
                            product["available"].as_u64().unwrap_or(0),
                            vendors,
                        );
                        writeln!(out, "{line}").map_err(io_error)?;
                        printed += 1;
                    }
                    if page >= answer["pagination"]["pages"].as_u64().unwrap_or(0) {
                        break;
                    }
                    page += 1;
                }
                writeln!(out, "{printed} product(s)").map_err(io_error)?;
                Ok(0)
            }
        }
    }
}

fn describe_success(report: &SyncReport) -> String {
    format!(
        "{}: synced {} SKU(s) from {} page(s) ({} older rows ignored); health {}",
        report.vendor.id,
        report.applied,
        report.pages,
        report.ignored_older,
        report.vendor.health.as_str()
    )
}

async fn print_aggregate(catalog: &Catalog, out: &mut dyn Write) -> Result<()> {
    let mut offset = 0u64;
    let mut printed = 0u64;
    loop {
        let page = catalog.products(offset, 500).await?;
        if page.items.is_empty() {
            break;
        }
        for product in &page.items {
            let vendors = product
                .vendors
                .iter()
                .map(|v| (v.vendor.to_string(), v.sku.to_string(), v.sellable, v.fresh));
            writeln!(
                out,
                "{}",
                product_line(product.product.as_str(), product.available, vendors)
            )
            .map_err(io_error)?;
            printed += 1;
        }
        offset += page.items.len() as u64;
        if offset >= page.total {
            break;
        }
    }
    writeln!(out, "{printed} product(s)").map_err(io_error)?;
    Ok(())
}

/// One line of `aggregate`: the product, its available units, and each vendor's SKU
/// and sellable units (marked when stale).
fn product_line(
    product: &str,
    available: u64,
    vendors: impl Iterator<Item = (String, String, i64, bool)>,
) -> String {
    let by_vendor: Vec<String> = vendors
        .map(|(vendor, sku, sellable, fresh)| {
            let counted = if fresh { "" } else { ", stale" };
            format!("{vendor} {sku} {}{counted}", sellable.max(0))
        })
        .collect();
    format!(
        "{product}\tavailable {available}\t({})",
        by_vendor.join("; ")
    )
}

/// Reports an API's refusal; exit code 1.
fn refused(
    out: &mut dyn Write,
    status: reqwest::StatusCode,
    answer: &serde_json::Value,
) -> Result<u8> {
    writeln!(out, "the API refused ({status}): {}", answer["detail"]).map_err(io_error)?;
    Ok(1)
}

fn io_error(error: std::io::Error) -> Error {
    Error::permanent("output", error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> std::result::Result<SyncCli, String> {
        SyncCli::parse(args.iter().map(|s| s.to_string()), |_| None)
    }

    #[test]
    fn commands_parse() {
        assert_eq!(parse(&[]).expect("all").command, SyncCommand::All);
        assert_eq!(parse(&["all"]).expect("all").command, SyncCommand::All);
        assert_eq!(
            parse(&["aggregate"]).expect("aggregate").command,
            SyncCommand::Aggregate
        );
        let one = parse(&["vendor", "VendorB", "--page-size", "50"]).expect("vendor");
        assert_eq!(
            one.command,
            SyncCommand::Vendor(VendorId::new("VendorB").expect("id"))
        );
        assert_eq!(one.page_size, 50);
        assert_eq!(one.targets().len(), 1);
        assert_eq!(parse(&["all"]).expect("all").targets().len(), 2);
    }

    #[test]
    fn bad_commands_are_explained() {
        for (args, needle) in [
            (
                vec!["vendor", "VendorZ"],
                "unknown vendor VendorZ; configured vendors: VendorA, VendorB",
            ),
            (vec!["vendor"], "needs a vendor id"),
            (vec!["everything"], "unknown command"),
            (vec!["all", "extra"], "unknown command"),
            (vec!["--bogus"], "unknown option"),
            (vec!["--page-size", "0"], "--page-size"),
            (vec!["--page-size"], "needs a value"),
            (vec!["aggregate", "--queue"], "--queue applies"),
            (vec!["--queue"], "AMQP_URL"),
            (vec!["--api"], "needs a URL"),
            (vec!["--api", "localhost:3000"], "http://"),
            (vec!["vendor", "Bad Id"], "vendorId"),
        ] {
            let error = parse(&args).expect_err(needle);
            assert!(error.contains(needle), "{args:?}: {error}");
        }
        let bad_env = SyncCli::parse(Vec::new(), |name| {
            (name == "AGGREGATOR_VENDORS").then(|| "nonsense".to_string())
        })
        .expect_err("bad list");
        assert!(bad_env.contains("AGGREGATOR_VENDORS"), "{bad_env}");
    }
}
