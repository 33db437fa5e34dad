//! The scenarios: each starts its own system, offers load, and reports figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::http::post_json;
use crate::open_loop::{RequestMaker, Step, run_step};
use crate::system::{Failure, Services, Setup, System};

/// How load is offered.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    pub(crate) seconds: u64,
    pub(crate) connections: usize,
    /// Where `perf record` writes a CPU profile of the aggregator for each recorded
    /// sweep step (none: no profile).
    pub(crate) perf_dir: Option<std::path::PathBuf>,
}

/// The product every hot order is for (one row at each mock vendor).
pub(crate) const HOT_PRODUCT: &str = "LAPTOP-001";
/// Generated products of the mock vendors' catalogs that spread orders go to.
const SPREAD_FIRST: u64 = 11;

/// One-unit orders for the hot product.
pub(crate) fn hot_orders() -> RequestMaker {
    Arc::new(|n| {
        post_json(
            "/api/orders",
            &format!(
                r#"{{"customerId":"load-{}","items":[{{"sku":"{HOT_PRODUCT}","quantity":1}}]}}"#,
                n % 1000
            ),
        )
    })
}

/// One-unit orders spread over the generated products `ITEM-000011..=ITEM-<skus>`.
pub(crate) fn spread_orders(skus: u32) -> RequestMaker {
    let span = u64::from(skus).saturating_sub(SPREAD_FIRST - 1).max(1);
    Arc::new(move |n| {
        // A multiplicative hash spreads consecutive numbers over the products.
        let product = SPREAD_FIRST + (n.wrapping_mul(2_654_435_761) % span);
        post_json(
            "/api/orders",
            &format!(
                r#"{{"customerId":"load-{}","items":[{{"sku":"ITEM-{product:06}","quantity":1}}]}}"#,
                n % 1000
            ),
        )
    })
}

/// Group commit off (every placement its own transaction), for the before figures.
pub(crate) fn no_group_commit() -> Vec<(String, String)> {
    vec![("AGGREGATOR_GROUP_COMMIT_MAX".into(), "1".into())]
}

/// Intake only: the API, relay and sync (no workers), as the seed's system was measured.
pub(crate) fn intake(skus: u32, env: Vec<(String, String)>) -> Setup {
    Setup {
        parts: vec!["api".into(), "relay".into(), "sync".into()],
        skus,
        env,
        big_vendor_skus: None,
        stock_scale: 1,
    }
}

/// Seconds of load at the first offered rate before a sweep records anything.
const WARM_UP_SECONDS: u64 = 3;

/// A sweep of offered rates against one system, after an unrecorded warm-up.
pub(crate) async fn sweep(
    services: &Services,
    setup: &Setup,
    hot: bool,
    rates: &[f64],
    load: &Load,
) -> Result<Vec<Step>, Failure> {
    let system = System::start(services, setup).await?;
    let outcome = async {
        if hot {
            for vendor in ['a', 'b'] {
                system
                    .set_vendor_stock(vendor, &format!("LAPTOP-{vendor}-001"), 1_000_000)
                    .await?;
            }
            system.sync_now(None).await?;
        }
        let make = if hot {
            hot_orders()
        } else {
            spread_orders(setup.skus)
        };
        // Warm-up, not recorded: the first orders for each product find its catalog
        // entries in no cache yet (a running shop has them).
        if let Some(&first) = rates.first() {
            run_step(
                system.api,
                first,
                Duration::from_secs(WARM_UP_SECONDS),
                load.connections,
                make.clone(),
            )
            .await;
        }
        // What autovacuum would do between steps on a server that runs it (these
        // machines do not): without it every step inherits the dead rows of the ones
        // before it, and the sweep measures the vacuum debt instead of the rate.
        let vacuum = system.must_vacuum("sweep", "before each step").await?;
        let mut steps = Vec::new();
        let label = if hot { "hot" } else { "spread" };
        for &rate in rates {
            if vacuum {
                system.vacuum().await?;
            }
            let profile = match (&load.perf_dir, system.aggregator_pid()) {
                (Some(dir), Some(pid)) => Some(Profile::start(dir, label, rate, pid)?),
                _ => None,
            };
            let before = system.cpu_snapshot();
            let mut step = run_step(
                system.api,
                rate,
                Duration::from_secs(load.seconds),
                load.connections,
                make.clone(),
            )
            .await;
            let cpu = crate::cpu::used(&before, &system.cpu_snapshot());
            if let Some(profile) = profile {
                profile.stop().await;
            }
            eprintln!(
                "  offered {:>6.0}/s: {:>7.0} orders/s, p50 {:.1} ms, p99 {:.1} ms, {} refused, {} shed (p99 {:.1} ms), {} other, {} errors",
                rate,
                step.throughput(),
                step.ms(0.5),
                step.ms(0.99),
                step.refused,
                step.shed,
                step.shed_ms(0.99),
                step.other,
                step.errors
            );
            let (per_order, total) = cpu.micros_per(step.ok);
            let parts: Vec<String> = per_order
                .iter()
                .map(|(group, micros)| format!("{group} {micros:.0}"))
                .collect();
            eprintln!(
                "    CPU per taken order (µs): {}; all {total:.0} ({:.2} cores busy)",
                parts.join(", "),
                crate::cpu::cores_busy(&cpu, Duration::from_secs_f64(step.elapsed.max(0.001)))
            );
            step.cpu = Some(cpu);
            steps.push(step);
        }
        Ok(steps)
    }
    .await;
    system.stop().await;
    outcome
}

/// A `perf record` of the aggregator over one step, started and stopped by its PID.
struct Profile {
    child: tokio::process::Child,
    path: std::path::PathBuf,
}

impl Profile {
    /// Samples the aggregator (`pid`) with call graphs into `dir/LABEL-RATE.data`.
    fn start(dir: &std::path::Path, label: &str, rate: f64, pid: u32) -> Result<Self, Failure> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!("{label}-{rate:.0}.data"));
        let child = tokio::process::Command::new("perf")
            .args([
                "record",
                "-q",
                "-F",
                "199",
                "--call-graph",
                "dwarf,16384",
                "-p",
            ])
            .arg(pid.to_string())
            .arg("-o")
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start perf ({e}); install linux-perf"))?;
        Ok(Self { child, path })
    }

    /// Stops the recording (SIGINT to the perf this harness started) and waits for it
    /// to write its file.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill")
                .arg("-INT")
                .arg(pid.to_string())
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        eprintln!("    profile: {}", self.path.display());
    }
}

/// A flash sale: `stock` units of the hot product, `offered` orders for them at `rate`.
/// Returns the step, the units the store holds as sold, and what the vendors reported.
pub(crate) async fn flash_sale(
    services: &Services,
    stock: u64,
    rate: f64,
    load: &Load,
) -> Result<(Step, i64, i64), Failure> {
    let system = System::start(services, &intake(20, Vec::new())).await?;
    let outcome = async {
        system
            .set_vendor_stock('a', "LAPTOP-a-001", stock / 2)
            .await?;
        system
            .set_vendor_stock('b', "LAPTOP-b-001", stock - stock / 2)
            .await?;
        system.sync_now(None).await?;
        let step = run_step(
            system.api,
            rate,
            Duration::from_secs(load.seconds),
            load.connections,
            hot_orders(),
        )
        .await;
        let (sold, reported) = system.sold_and_reported(HOT_PRODUCT).await?;
        Ok((step, sold, reported))
    }
    .await;
    system.stop().await;
    outcome
}

/// What the end-to-end run measured.
#[derive(Debug, Clone)]
pub(crate) struct EndToEnd {
    pub(crate) step: Step,
    pub(crate) confirmed: i64,
    pub(crate) failed: i64,
    /// Seconds from the first order to the last confirmation.
    pub(crate) until_confirmed: f64,
    /// Orders accepted but not confirmed or failed when the wait ended.
    pub(crate) left: i64,
    /// The CPU every part used from the first order to the last confirmation.
    pub(crate) cpu: crate::cpu::CpuUse,
}

impl EndToEnd {
    /// Orders confirmed a second, from the first order to the last confirmation.
    pub(crate) fn confirmed_per_second(&self) -> f64 {
        if self.until_confirmed > 0.0 {
            self.confirmed as f64 / self.until_confirmed
        } else {
            0.0
        }
    }
}

/// Spread orders at `rate` into the whole system (API, relay, two workers, sweeper,
/// sync), then waits until every accepted order is confirmed or failed.
pub(crate) async fn end_to_end(
    services: &Services,
    skus: u32,
    rate: f64,
    load: &Load,
) -> Result<EndToEnd, Failure> {
    let setup = Setup {
        parts: vec!["all".into()],
        skus,
        env: Vec::new(),
        big_vendor_skus: None,
        stock_scale: 1,
    };
    let system = System::start(services, &setup).await?;
    let outcome = async {
        let profile = match (&load.perf_dir, system.aggregator_pid()) {
            (Some(dir), Some(pid)) => Some(Profile::start(dir, "e2e", rate, pid)?),
            _ => None,
        };
        let before = system.cpu_snapshot();
        let started = Instant::now();
        let step = run_step(
            system.api,
            rate,
            Duration::from_secs(load.seconds),
            load.connections,
            spread_orders(skus),
        )
        .await;
        let accepted = i64::try_from(step.ok).unwrap_or(i64::MAX);
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut last_change = Instant::now();
        let mut seen = -1;
        let (confirmed, failed) = loop {
            let confirmed = system.count("confirmed").await?;
            let failed = system.count("failed").await?;
            if confirmed + failed != seen {
                seen = confirmed + failed;
                last_change = Instant::now();
            }
            if confirmed + failed >= accepted || Instant::now() > deadline {
                break (confirmed, failed);
            }
            sleep(Duration::from_millis(100)).await;
        };
        let cpu = crate::cpu::used(&before, &system.cpu_snapshot());
        if let Some(profile) = profile {
            profile.stop().await;
        }
        Ok(EndToEnd {
            until_confirmed: last_change.saturating_duration_since(started).as_secs_f64(),
            left: accepted - confirmed - failed,
            step,
            confirmed,
            failed,
            cpu,
        })
    }
    .await;
    system.stop().await;
    outcome
}

/// What the big-sync run measured.
#[derive(Debug, Clone)]
pub(crate) struct BigSync {
    pub(crate) skus: u32,
    pub(crate) idle: Duration,
    pub(crate) under_load: Duration,
    pub(crate) load: Step,
}

/// Syncs a vendor of `skus` SKUs into PostgreSQL once idle and once while spread
/// orders arrive at `rate`.
pub(crate) async fn big_sync(
    services: &Services,
    skus: u32,
    rate: f64,
    load: &Load,
) -> Result<BigSync, Failure> {
    let mut setup = intake(2_000, Vec::new());
    setup.big_vendor_skus = Some(skus);
    let system = System::start(services, &setup).await?;
    let outcome = async {
        let idle = system.sync_now(Some("VendorC")).await?;
        let api = system.api;
        let seconds = load.seconds.max(6);
        let connections = load.connections;
        let running = tokio::spawn(run_step(
            api,
            rate,
            Duration::from_secs(seconds),
            connections,
            spread_orders(2_000),
        ));
        sleep(Duration::from_secs(2)).await;
        let under_load = system.sync_now(Some("VendorC")).await;
        let step = running
            .await
            .map_err(|e| format!("the load task failed: {e}"))?;
        Ok(BigSync {
            skus,
            idle,
            under_load: under_load?,
            load: step,
        })
    }
    .await;
    system.stop().await;
    outcome
}

/// How many times the seed's stock the soak's vendors must hold so that the run's
/// orders take about a tenth of each product's stock on average: the seed's catalog
/// (0-500 units a SKU, about 500 a product over two vendors) sells out within minutes
/// at thousands of orders a second, and sold-out products answer 409, which a soak
/// would misread as the system slowing down.
pub(crate) fn soak_stock_scale(skus: u32, rate: f64, minutes: f64) -> u32 {
    let products = u64::from(skus).saturating_sub(SPREAD_FIRST - 1).max(1) as f64;
    let orders_per_product = rate.max(0.0) * minutes.max(0.0) * 60.0 / products;
    // Ten times the demand, over a mean of 500 units a product at scale 1.
    let scale = (orders_per_product * 10.0 / 500.0).ceil();
    if scale >= f64::from(MOST_STOCK_SCALE) {
        MOST_STOCK_SCALE
    } else {
        (scale as u32).max(1)
    }
}

/// The largest `--stock-scale` the mock vendors take.
const MOST_STOCK_SCALE: u32 = 1_000_000;

/// One soak sample.
#[derive(Debug, Clone)]
pub(crate) struct SoakSample {
    pub(crate) minute: f64,
    pub(crate) rss_mib: f64,
    pub(crate) p99_ms: f64,
    /// The slowest answer of the sample.
    pub(crate) max_ms: f64,
    /// Seconds the last answer came after the sample's offered window closed: a
    /// sample's rate is its orders over the window and this tail.
    pub(crate) tail_s: f64,
    /// Orders refused for want of stock (409): the catalog selling out, not the system.
    pub(crate) refused: u64,
    /// Requests that failed, were dropped or were answered anything but 2xx or 409.
    pub(crate) failed: u64,
    /// Microseconds of CPU an answered order (taken or refused) cost during the
    /// sample, per part of the system (in [`crate::cpu::GROUPS`] order).
    pub(crate) cpu_micros_by_part: Vec<(&'static str, f64)>,
    /// The same, every part together.
    pub(crate) cpu_micros: f64,
    pub(crate) throughput: f64,
    /// Accepted orders not yet confirmed or failed.
    pub(crate) backlog: i64,
}

/// Spread orders at `rate` into the whole system for `minutes`, sampling the
/// aggregator's RSS, p99 and the workers' backlog every `sample` seconds.
pub(crate) async fn soak(
    services: &Services,
    skus: u32,
    rate: f64,
    minutes: f64,
    sample: u64,
    connections: usize,
) -> Result<Vec<SoakSample>, Failure> {
    let setup = Setup {
        parts: vec!["all".into()],
        skus,
        // The vendors must stay fresh for the whole run: sync at the system's default.
        env: vec![("AGGREGATOR_SYNC_INTERVAL_SECS".into(), "30".into())],
        big_vendor_skus: None,
        stock_scale: soak_stock_scale(skus, rate, minutes),
    };
    eprintln!(
        "  the vendors hold {} times the seed's stock, so the run's orders leave their products in stock",
        setup.stock_scale
    );
    let system = System::start(services, &setup).await?;
    let outcome = async {
        let vacuum = system.must_vacuum("soak", "after each sample").await?;
        let started = Instant::now();
        let accepted = AtomicU64::new(0);
        let mut samples = Vec::new();
        let make = spread_orders(skus);
        while started.elapsed().as_secs_f64() < minutes * 60.0 {
            let before = system.cpu_snapshot();
            let step = run_step(
                system.api,
                rate,
                Duration::from_secs(sample),
                connections,
                make.clone(),
            )
            .await;
            let cpu = crate::cpu::used(&before, &system.cpu_snapshot());
            let (cpu_micros_by_part, cpu_micros) = cpu.micros_per(step.ok + step.refused);
            accepted.fetch_add(step.ok, Ordering::Relaxed);
            if vacuum {
                system.vacuum().await?;
            }
            let done = system.count("confirmed").await? + system.count("failed").await?;
            let sample = SoakSample {
                minute: started.elapsed().as_secs_f64() / 60.0,
                rss_mib: system.aggregator_rss_kib().unwrap_or(0) as f64 / 1024.0,
                p99_ms: step.ms(0.99),
                max_ms: step.ms(1.0),
                tail_s: (step.elapsed - sample as f64).max(0.0),
                refused: step.refused,
                failed: step.other + step.errors + step.dropped,
                cpu_micros_by_part,
                cpu_micros,
                throughput: step.throughput(),
                backlog: i64::try_from(accepted.load(Ordering::Relaxed)).unwrap_or(i64::MAX) - done,
            };
            let parts: Vec<String> = sample
                .cpu_micros_by_part
                .iter()
                .map(|(group, micros)| format!("{group} {micros:.0}"))
                .collect();
            eprintln!(
                "  {:>5.1} min: RSS {:>6.1} MiB, p99 {:>6.1} ms, max {:>7.1} ms, {:>6.0} orders/s (last answer {:.1} s late), refused {}, failed {}, backlog {}, CPU an answered order (µs): {}; all {:.0}",
                sample.minute,
                sample.rss_mib,
                sample.p99_ms,
                sample.max_ms,
                sample.throughput,
                sample.tail_s,
                sample.refused,
                sample.failed,
                sample.backlog,
                parts.join(", "),
                sample.cpu_micros
            );
            samples.push(sample);
        }
        Ok(samples)
    }
    .await;
    system.stop().await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_soak_holds_ten_times_its_demand_on_average() {
        // 2,500 a second for 30 minutes over 9,990 products: 450.5 orders a product,
        // 4,505 units at ten times: 10 times the seed's mean of 500.
        assert_eq!(soak_stock_scale(10_000, 2_500.0, 30.0), 10);
        for (skus, rate, minutes) in [
            (10_000, 2_500.0, 30.0),
            (2_000, 4_500.0, 1.0),
            (500, 100.0, 60.0),
        ] {
            let scale = f64::from(soak_stock_scale(skus, rate, minutes));
            let products = f64::from(skus) - 10.0;
            let demand = rate * minutes * 60.0 / products;
            assert!(
                scale * 500.0 >= demand * 10.0,
                "{skus} {rate} {minutes}: scale {scale}"
            );
            assert!(
                (scale - 1.0) * 500.0 < demand * 10.0,
                "no more than needed: {scale}"
            );
        }
    }

    #[test]
    fn a_short_or_idle_soak_keeps_the_seed_stock() {
        assert_eq!(soak_stock_scale(10_000, 100.0, 1.0), 1);
        assert_eq!(soak_stock_scale(10_000, 0.0, 30.0), 1);
        assert_eq!(soak_stock_scale(10_000, -5.0, 30.0), 1);
        assert_eq!(soak_stock_scale(1, f64::MAX, 30.0), MOST_STOCK_SCALE);
        assert_eq!(soak_stock_scale(10_000, f64::NAN, 30.0), 1);
    }
}
