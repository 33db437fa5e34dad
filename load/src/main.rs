//! `aggregator-load`: offers open-loop load to the whole running system on the real
//! PostgreSQL, RabbitMQ and Redis, next to the pgbench ceiling of the same SQL, prints
//! the figures as Markdown and draws the curves as SVG.
//!
//! ```text
//! cargo build --release --workspace --bins
//! ./target/release/aggregator-load                 # pgbench spread hot flash e2e sync
//! ./target/release/aggregator-load soak --soak-minutes 30 --soak-rate 2000
//! ```
//!
//! `AGGREGATOR_LOAD_SYNC_LOG=info` lets the `stock-sync` runs of the sync scenario log
//! where their time went (`stock sync applied`: `fetch_ms`, `write_ms`, `complete_ms`).
//!
//! Each scenario starts its own system (a fresh database, mock vendors and the
//! `aggregator` binary, all children of this process, stopped by PID) and removes it
//! afterwards.

mod cpu;
mod http;
mod open_loop;
mod pgbench;
mod plot;
mod scenarios;
mod system;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use crate::open_loop::Step;
use crate::plot::Series;
use crate::scenarios::{Load, intake, no_group_commit};
use crate::system::Services;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// pgbench running the store's SQL: one order per transaction, and batched
    Pgbench,
    /// Intake of orders spread over 1,990 products, at each offered rate
    Spread,
    /// Intake of orders for one hot product, at each offered rate
    Hot,
    /// Both intakes with group commit off, at the top offered rates
    Baseline,
    /// A flash sale: far more orders than stock; nothing may be oversold
    Flash,
    /// Spread orders through the whole system until the vendors confirmed them
    E2e,
    /// A 100,000-SKU vendor synced into PostgreSQL, idle and under spread intake
    Sync,
    /// A long run at a steady rate, sampling memory, p99 and the workers' backlog
    Soak,
}

/// Open-loop load against the whole system, with the pgbench ceiling and plots.
#[derive(Debug, Parser)]
#[command(name = "aggregator-load", version, about)]
struct Cli {
    /// Scenarios to run, in order (default: pgbench spread hot baseline flash e2e sync)
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// Offered orders a second for the intake sweeps
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,2500,5000,7500,10000"
    )]
    rates: Vec<f64>,
    /// Seconds per offered rate
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Kept-alive connections the load is offered over
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Offered orders a second for the end-to-end run
    #[arg(long, default_value_t = 3000.0)]
    e2e_rate: f64,
    /// Offered orders a second while the big sync runs
    #[arg(long, default_value_t = 5000.0)]
    sync_rate: f64,
    /// SKUs of the big vendor
    #[arg(long, default_value_t = 100_000)]
    sync_skus: u32,
    /// Units on sale in the flash sale
    #[arg(long, default_value_t = 10_000)]
    flash_stock: u64,
    /// Offered orders a second in the flash sale
    #[arg(long, default_value_t = 5000.0)]
    flash_rate: f64,
    /// Minutes of the soak
    #[arg(long, default_value_t = 30.0)]
    soak_minutes: f64,
    /// Offered orders a second in the soak
    #[arg(long, default_value_t = 2000.0)]
    soak_rate: f64,
    /// Seconds per soak sample
    #[arg(long, default_value_t = 10)]
    soak_sample: u64,
    /// SKUs per mock vendor in the soak (enough stock that a long run does not sell out)
    #[arg(long, default_value_t = 10_000)]
    soak_skus: u32,
    /// Seconds per pgbench case
    #[arg(long, default_value_t = 10)]
    pgbench_seconds: u64,
    /// Orders per transaction in the batched pgbench case
    #[arg(long, default_value_t = 100)]
    pgbench_batch: u32,
    /// PostgreSQL server (no database name; the harness creates its own databases)
    #[arg(
        long,
        env = "LOAD_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    postgres: String,
    /// RabbitMQ
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    amqp: String,
    /// Redis
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    redis: String,
    /// Where the release binaries are (default: beside this one)
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The API's port; the mock vendors take the next three
    #[arg(long, default_value_t = 3100)]
    base_port: u16,
    /// Extra environment for every `aggregator` process started, e.g.
    /// `--set AGGREGATOR_GROUP_COMMIT_IN_FLIGHT=2` (repeat for more); `{database}` in a
    /// value stands for the run's database
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = key_value)]
    set: Vec<(String, String)>,
    /// Where the SVG curves go
    #[arg(long, default_value = "docs")]
    out: PathBuf,
    /// Record a CPU profile of the aggregator (`perf record` with call graphs) over each
    /// recorded intake step into this directory; `scripts/cpu_stages.py` splits one
    /// into the stages of an order
    #[arg(long, value_name = "DIR")]
    perf: Option<PathBuf>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("aggregator-load: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let bin_dir = match &cli.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(PathBuf::from))
            .ok_or("cannot tell where the binaries are; pass --bin-dir")?,
    };
    let services = Services {
        postgres: cli.postgres.trim_end_matches('/').to_owned(),
        amqp: cli.amqp.clone(),
        redis: cli.redis.clone(),
        bin_dir,
        base_port: cli.base_port,
        env: cli.set.clone(),
    };
    let load = Load {
        seconds: cli.seconds,
        connections: cli.connections,
        perf_dir: cli.perf.clone(),
    };
    let scenarios = if cli.scenarios.is_empty() {
        vec![
            Scenario::Pgbench,
            Scenario::Spread,
            Scenario::Hot,
            Scenario::Baseline,
            Scenario::Flash,
            Scenario::E2e,
            Scenario::Sync,
        ]
    } else {
        cli.scenarios.clone()
    };
    std::fs::create_dir_all(&cli.out).map_err(|e| format!("{}: {e}", cli.out.display()))?;
    let mut report = vec![
        "| scenario | offered/s | orders/s | p50 ms | p99 ms | p99.9 ms | refused (409) | shed (503) | shed p99 ms | errors |"
            .to_owned(),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|".to_owned(),
    ];
    let mut cpu_table = vec![
        format!(
            "| scenario | offered/s | orders/s | {} | all | cores busy |",
            cpu::GROUPS.join(" | ")
        ),
        format!(
            "|---|---:|---:|{}---:|---:|",
            "---:|".repeat(cpu::GROUPS.len())
        ),
    ];
    let mut notes = Vec::new();
    let mut throughput = Vec::new();
    let mut latency = Vec::new();
    let top_rates: Vec<f64> = cli.rates.iter().rev().take(2).rev().copied().collect();
    for scenario in scenarios {
        eprintln!("== {scenario:?}");
        match scenario {
            Scenario::Pgbench => {
                for ceiling in
                    pgbench::ceilings(&services, cli.pgbench_seconds, cli.pgbench_batch).await?
                {
                    notes.push(format!(
                        "pgbench {}: {:.0} orders/s ({} clients)",
                        ceiling.case, ceiling.orders_per_second, ceiling.clients
                    ));
                    eprintln!("  {}", notes.last().map(String::as_str).unwrap_or(""));
                }
            }
            Scenario::Spread | Scenario::Hot => {
                let hot = scenario == Scenario::Hot;
                let name = if hot { "hot" } else { "spread" };
                let steps = scenarios::sweep(
                    &services,
                    &intake(2_000, Vec::new()),
                    hot,
                    &cli.rates,
                    &load,
                )
                .await?;
                add_steps(&mut report, &mut throughput, &mut latency, name, &steps);
                cpu_rows(&mut cpu_table, name, &steps);
            }
            Scenario::Baseline => {
                for hot in [false, true] {
                    let name = if hot {
                        "hot, group commit off"
                    } else {
                        "spread, group commit off"
                    };
                    let steps = scenarios::sweep(
                        &services,
                        &intake(2_000, no_group_commit()),
                        hot,
                        &top_rates,
                        &load,
                    )
                    .await?;
                    add_steps(&mut report, &mut throughput, &mut latency, name, &steps);
                    cpu_rows(&mut cpu_table, name, &steps);
                }
            }
            Scenario::Flash => {
                let (step, sold, reported) =
                    scenarios::flash_sale(&services, cli.flash_stock, cli.flash_rate, &load)
                        .await?;
                report.push(row("flash sale", &step));
                let oversold = (i64::try_from(step.ok).unwrap_or(i64::MAX) - reported).max(0);
                notes.push(format!(
                    "flash sale: {} units on sale, {} orders offered, {} accepted, {} refused; the store holds {} units sold of {} reported; oversold: {}",
                    cli.flash_stock, step.sent, step.ok, step.refused, sold, reported, oversold
                ));
                eprintln!("  {}", notes.last().map(String::as_str).unwrap_or(""));
                if oversold > 0 || sold > reported {
                    return Err(format!(
                        "OVERSOLD: {}",
                        notes.last().map(String::as_str).unwrap_or("")
                    ));
                }
            }
            Scenario::E2e => {
                let e2e = scenarios::end_to_end(&services, 2_000, cli.e2e_rate, &load).await?;
                report.push(row("end to end (intake)", &e2e.step));
                notes.push(format!(
                    "end to end at {:.0}/s offered: {} accepted, {} confirmed and {} failed within {:.1} s of the first order: {:.0} confirmed orders/s; {} left unconfirmed",
                    cli.e2e_rate, e2e.step.ok, e2e.confirmed, e2e.failed, e2e.until_confirmed,
                    e2e.confirmed_per_second(), e2e.left
                ));
                eprintln!("  {}", notes.last().map(String::as_str).unwrap_or(""));
                // From the first order to the last confirmation, per order confirmed.
                cpu_table.push(cpu_row(
                    "end to end (per confirmed order)",
                    cli.e2e_rate,
                    e2e.confirmed_per_second(),
                    &e2e.cpu,
                    u64::try_from(e2e.confirmed).unwrap_or(0),
                    e2e.until_confirmed,
                ));
            }
            Scenario::Sync => {
                let sync =
                    scenarios::big_sync(&services, cli.sync_skus, cli.sync_rate, &load).await?;
                report.push(row("spread during the big sync", &sync.load));
                notes.push(format!(
                    "sync of a {}-SKU vendor into PostgreSQL (the stock-sync process, end to end): {:.2} s idle, {:.2} s while spread orders arrive at {:.0}/s ({:.0} orders/s taken, p99 {:.1} ms)",
                    sync.skus,
                    sync.idle.as_secs_f64(),
                    sync.under_load.as_secs_f64(),
                    cli.sync_rate,
                    sync.load.throughput(),
                    sync.load.ms(0.99)
                ));
                eprintln!("  {}", notes.last().map(String::as_str).unwrap_or(""));
            }
            Scenario::Soak => {
                let samples = scenarios::soak(
                    &services,
                    cli.soak_skus,
                    cli.soak_rate,
                    cli.soak_minutes,
                    cli.soak_sample,
                    cli.connections,
                )
                .await?;
                let rss = Series {
                    name: "aggregator RSS (MiB)".into(),
                    points: samples.iter().map(|s| (s.minute, s.rss_mib)).collect(),
                };
                let p99 = Series {
                    name: "p99 (ms)".into(),
                    points: samples.iter().map(|s| (s.minute, s.p99_ms)).collect(),
                };
                let backlog = Series {
                    name: "unconfirmed backlog (hundreds of orders)".into(),
                    points: samples
                        .iter()
                        .map(|s| (s.minute, s.backlog as f64 / 100.0))
                        .collect(),
                };
                plot::lines(
                    &cli.out.join("load-soak.svg"),
                    &format!(
                        "Soak: spread orders at {:.0}/s, whole system",
                        cli.soak_rate
                    ),
                    "minutes",
                    "MiB / ms / hundreds",
                    &[rss, p99, backlog],
                    false,
                )?;
                if let (Some(first), Some(last)) = (samples.get(samples.len() / 5), samples.last())
                {
                    notes.push(format!(
                        "soak at {:.0}/s for {:.0} min: RSS {:.1} MiB after warm-up, {:.1} MiB at the end; p99 {:.1} ms then {:.1} ms; backlog {} then {}",
                        cli.soak_rate, cli.soak_minutes, first.rss_mib, last.rss_mib,
                        first.p99_ms, last.p99_ms, first.backlog, last.backlog
                    ));
                    eprintln!("  {}", notes.last().map(String::as_str).unwrap_or(""));
                }
            }
        }
    }
    if !throughput.is_empty() {
        plot::lines(
            &cli.out.join("load-throughput.svg"),
            "Orders taken against orders offered (open loop, real services)",
            "offered orders/s",
            "orders/s answered 201",
            &throughput,
            false,
        )?;
        plot::lines(
            &cli.out.join("load-latency.svg"),
            "Latency from due time to answer",
            "offered orders/s",
            "ms (log scale)",
            &latency,
            true,
        )?;
    }
    println!("{}", report.join("\n"));
    println!();
    if cpu_table.len() > 2 {
        println!("CPU per taken order, in µs, by process (from /proc, over each step):");
        println!();
        println!("{}", cpu_table.join("\n"));
        println!();
    }
    for note in notes {
        println!("- {note}");
    }
    Ok(())
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .filter(|(key, _)| !key.is_empty())
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

fn row(name: &str, step: &Step) -> String {
    format!(
        "| {name} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} | {:.1} | {} |",
        step.offered,
        step.throughput(),
        step.ms(0.5),
        step.ms(0.99),
        step.ms(0.999),
        step.refused,
        step.shed,
        step.shed_ms(0.99),
        step.errors + step.other + step.dropped
    )
}

/// One row per step that measured CPU: microseconds per taken order in each process.
fn cpu_rows(table: &mut Vec<String>, name: &str, steps: &[Step]) {
    for step in steps {
        let Some(cpu) = &step.cpu else {
            continue;
        };
        table.push(cpu_row(
            name,
            step.offered,
            step.throughput(),
            cpu,
            step.ok,
            step.elapsed,
        ));
    }
}

/// One row of the CPU table: `cpu` in microseconds per each of `count` orders, and the
/// cores it kept busy over `seconds`.
fn cpu_row(
    name: &str,
    offered: f64,
    rate: f64,
    cpu: &cpu::CpuUse,
    count: u64,
    seconds: f64,
) -> String {
    let (per_order, total) = cpu.micros_per(count);
    let cells: Vec<String> = per_order.iter().map(|(_, m)| format!("{m:.0}")).collect();
    format!(
        "| {name} | {offered:.0} | {rate:.0} | {} | {total:.0} | {:.2} |",
        cells.join(" | "),
        cpu::cores_busy(cpu, std::time::Duration::from_secs_f64(seconds.max(0.001)))
    )
}

fn add_steps(
    report: &mut Vec<String>,
    throughput: &mut Vec<Series>,
    latency: &mut Vec<Series>,
    name: &str,
    steps: &[Step],
) {
    for step in steps {
        report.push(row(name, step));
    }
    throughput.push(Series {
        name: name.to_owned(),
        points: steps.iter().map(|s| (s.offered, s.throughput())).collect(),
    });
    for (label, quantile) in [("p50", 0.5), ("p99", 0.99)] {
        latency.push(Series {
            name: format!("{name} {label}"),
            points: steps.iter().map(|s| (s.offered, s.ms(quantile))).collect(),
        });
    }
}
