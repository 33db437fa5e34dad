//! The seed's `stock-sync` command: sync every vendor, one vendor, or print the
//! aggregated availability, against PostgreSQL (`DATABASE_URL`) or an in-memory store.
//! It takes every setting of the running system (same flags, same variables).

use std::io::Write;

use aggregator_core::domain::VendorId;
use aggregator_core::error::{Error, Result};
use aggregator_core::service::{Catalog, StockSync, SyncReport, request_syncs};
use clap::Parser;

use crate::app::App;
use crate::backends;
use crate::settings::Settings;
use crate::sync_progress_view::{ProgressMode, ProgressView};

/// Syncs vendors' stock now: every configured vendor (`all`, the default), one
/// (`vendor ID`), or prints the aggregated availability of every product (`aggregate`;
/// without DATABASE_URL the store lives for this run only, so it syncs every vendor
/// first).
#[derive(Clone, Parser)]
#[command(name = "stock-sync", version, about, long_about)]
pub struct SyncCli {
    /// all | vendor ID | aggregate
    #[arg(value_name = "COMMAND", num_args = 0..=2)]
    pub words: Vec<String>,
    /// Queue the sync requests on stock_sync_queue (for the workers) instead of syncing
    /// here; needs AMQP_URL
    #[arg(long, conflicts_with = "api")]
    pub queue: bool,
    /// Ask a running API (e.g. http://127.0.0.1:3000) instead: `all`/`vendor` queue its
    /// syncs, `aggregate` prints its catalog
    #[arg(long, env = "AGGREGATOR_API_URL", value_name = "URL", value_parser = http_url, hide_env_values = true)]
    pub api: Option<String>,
    /// The admin key this command sends to the API of --api (the server's own keys are
    /// --api-keys)
    #[arg(
        long,
        env = "AGGREGATOR_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// How syncs done here show their progress on stderr: auto (a bar per vendor on a
    /// terminal, lines otherwise), bar, lines or off
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        env = "AGGREGATOR_SYNC_PROGRESS"
    )]
    pub progress: ProgressMode,
    /// Every setting of the running system.
    #[command(flatten)]
    pub settings: Settings,
}

impl std::fmt::Debug for SyncCli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncCli")
            .field("words", &self.words)
            .field("queue", &self.queue)
            .field("api", &self.api.as_deref().map(aggregator_core::redact_url))
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("progress", &self.progress)
            .field("settings", &self.settings)
            .finish()
    }
}

fn http_url(text: &str) -> std::result::Result<String, String> {
    if text.starts_with("http://") || text.starts_with("https://") {
        Ok(text.trim_end_matches('/').to_owned())
    } else {
        Err(format!("{text:?} must be an http:// or https:// URL"))
    }
}

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

impl SyncCli {
    /// What the words ask for, checked against the settings: a message for the user
    /// (exit code 2) when they make no sense.
    pub fn sync_command(&self) -> std::result::Result<SyncCommand, String> {
        let vendors = &self.settings.vendor.vendors;
        let command = match self.words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
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
            ["vendor"] => return Err("`vendor` needs a vendor id".into()),
            _ => return Err(format!("unknown command {:?}", self.words.join(" "))),
        };
        if self.queue && command == SyncCommand::Aggregate {
            return Err("--queue applies to `all` and `vendor`, not to `aggregate`".into());
        }
        if self.queue && self.settings.queue.amqp_url.is_none() {
            return Err("--queue needs AMQP_URL (the RabbitMQ that the workers consume)".into());
        }
        Ok(command)
    }

    fn targets(&self, command: &SyncCommand) -> Vec<VendorId> {
        match command {
            SyncCommand::Vendor(id) => vec![id.clone()],
            _ => self
                .settings
                .vendor
                .vendors
                .iter()
                .map(|v| v.id.clone())
                .collect(),
        }
    }

    /// Runs `command`, writing results to `out`; answers the process exit code: 0 when
    /// everything worked, 1 when a vendor's sync failed or a service was unreachable.
    pub async fn run(&self, command: &SyncCommand, out: &mut dyn Write) -> u8 {
        match self.run_inner(command, out).await {
            Ok(code) => code,
            Err(error) => {
                let _ = writeln!(out, "stock-sync: {error}");
                1
            }
        }
    }

    async fn run_inner(&self, command: &SyncCommand, out: &mut dyn Write) -> Result<u8> {
        if let Some(url) = &self.api {
            return self
                .through_api(command, url, self.api_key.as_deref(), out)
                .await;
        }
        if self.queue {
            // Publishing needs the queue only: a store or cache that is down must not
            // stop it.
            let mut settings = self.settings.clone();
            settings.store.database_url = None;
            settings.cache.redis_url = None;
            let backends = backends::connect(&settings).await?;
            let queued = request_syncs(backends.queue.as_ref(), self.targets(command)).await?;
            for (vendor, id) in queued {
                writeln!(
                    out,
                    "{vendor}: sync request queued on stock_sync_queue ({id})"
                )
                .map_err(io_error)?;
            }
            return Ok(0);
        }
        let in_memory = self.settings.store.database_url.is_none();
        // Syncing here needs the store only: a queue or cache that is down must not stop
        // it (the settings may name them for the other binaries).
        let mut settings = self.settings.clone();
        settings.queue.amqp_url = None;
        settings.cache.redis_url = None;
        let app = App::build(settings).await?;
        match command {
            SyncCommand::All | SyncCommand::Vendor(_) => {
                self.sync_targets(command, app.sync(), out).await
            }
            SyncCommand::Aggregate => {
                if in_memory {
                    writeln!(
                        out,
                        "(no DATABASE_URL: syncing every vendor into memory first)"
                    )
                    .map_err(io_error)?;
                    self.sync_targets(command, app.sync(), out).await?;
                }
                print_aggregate(app.listing(), out).await?;
                Ok(0)
            }
        }
    }

    async fn sync_targets(
        &self,
        command: &SyncCommand,
        sync: &StockSync,
        out: &mut dyn Write,
    ) -> Result<u8> {
        let sync = match ProgressView::on_stderr(self.progress) {
            Some(view) => sync.clone().with_progress(std::sync::Arc::new(view)),
            None => sync.clone(),
        };
        let mut failed = 0;
        for vendor in self.targets(command) {
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
}

impl SyncCli {
    async fn through_api(
        &self,
        command: &SyncCommand,
        base: &str,
        key: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<u8> {
        let http = reqwest::Client::new();
        let with_key = |request: reqwest::RequestBuilder| match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        };
        let unreachable = |e: reqwest::Error| {
            Error::transient(format!("API {base}"), e.without_url().to_string())
        };
        match command {
            SyncCommand::All | SyncCommand::Vendor(_) => {
                let body = match command {
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
                for vendor in answer["data"]["queued"].as_array().into_iter().flatten() {
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
                    for product in answer["data"]["products"].as_array().into_iter().flatten() {
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
                    if page >= answer["data"]["pagination"]["pages"].as_u64().unwrap_or(0) {
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
    use crate::settings::parse_with_env;
    use clap::CommandFactory;

    fn parse_env(args: &[&str], env: &[(&str, &str)]) -> std::result::Result<SyncCli, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_with_env(
            SyncCli::command(),
            args.iter().map(|s| s.to_string()),
            move |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
        )
        .map_err(|e| e.to_string())
    }

    fn command(args: &[&str]) -> std::result::Result<SyncCommand, String> {
        parse_env(args, &[])?.sync_command()
    }

    #[test]
    fn commands_parse() {
        assert_eq!(command(&[]).expect("all"), SyncCommand::All);
        assert_eq!(command(&["all"]).expect("all"), SyncCommand::All);
        assert_eq!(
            command(&["aggregate"]).expect("aggregate"),
            SyncCommand::Aggregate
        );
        let cli = parse_env(&["vendor", "VendorB", "--page-size", "50"], &[]).expect("vendor");
        let one = cli.sync_command().expect("vendor");
        assert_eq!(
            one,
            SyncCommand::Vendor(VendorId::new("VendorB").expect("id"))
        );
        assert_eq!(
            cli.settings.sync.sync_page_size, 50,
            "--page-size is --sync-page-size"
        );
        assert_eq!(cli.targets(&one).len(), 1);
        assert_eq!(cli.targets(&SyncCommand::All).len(), 2);
        let queued = parse_env(&["--queue"], &[("AMQP_URL", "amqp://mq")]).expect("queue");
        assert_eq!(queued.sync_command(), Ok(SyncCommand::All));
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
            (vec!["--bogus"], "unexpected argument"),
            (vec!["--page-size", "0"], "--sync-page-size"),
            (vec!["--page-size"], "a value is required"),
            (vec!["aggregate", "--queue"], "--queue applies"),
            (vec!["--queue"], "AMQP_URL"),
            (vec!["--api"], "a value is required"),
            (vec!["--api", "localhost:3000"], "http://"),
            (vec!["--api", "http://x", "--queue"], "cannot be used with"),
            (vec!["vendor", "Bad Id"], "vendorId"),
        ] {
            let error = command(&args).expect_err(needle);
            assert!(error.contains(needle), "{args:?}: {error}");
        }
        let bad_env = parse_env(&[], &[("AGGREGATOR_VENDORS", "nonsense")]).expect_err("bad list");
        assert!(bad_env.contains("--vendors"), "{bad_env}");
    }
}
