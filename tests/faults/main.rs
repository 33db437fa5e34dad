//! The fault harness: the real `aggregator` processes (API, relay, sweeper, sync, two
//! workers) and two mock vendors against the real PostgreSQL, RabbitMQ and Redis,
//! concurrent clients placing, cancelling and holding under Idempotency-Keys, and one
//! fault per case (then all of them at once). After each case an audit reads the store
//! and the vendors and prints one line; every figure in it must be 0.
//!
//! ```text
//! cargo test --test faults                         # one short round of every case (CI)
//! cargo test --test faults -- --rounds 5           # five rounds
//! cargo test --test faults -- --case kill-worker   # one case (repeatable)
//! cargo test --test faults -- --seconds 20         # longer load per case
//! cargo test --test faults -- --list               # the cases
//! ```
//!
//! It restarts the local PostgreSQL, RabbitMQ and Redis (the ones `.ci/run` starts on
//! their default ports) and nothing else; the processes it starts it stops by PID.
//! Without the services it prints one line and passes, unless
//! `AGGREGATOR_REQUIRE_SERVICES=1`.

mod audit;
mod cases;
mod cluster;
mod hosts;
mod load;
mod proxy;
mod services;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use aggregator_core::conformance::service_url;

/// What the command line asked for.
#[derive(Debug)]
struct Args {
    rounds: u32,
    cases: Vec<String>,
    load: Duration,
    list: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        rounds: 1,
        cases: Vec::new(),
        load: Duration::from_secs(8),
        list: false,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        let mut value = |name: &str| given.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--rounds" => {
                args.rounds = value("--rounds")?
                    .parse()
                    .ok()
                    .filter(|n| (1..=1_000).contains(n))
                    .ok_or("--rounds takes 1 to 1000")?;
            }
            "--case" => args.cases.push(value("--case")?),
            "--seconds" => {
                let seconds: u64 = value("--seconds")?
                    .parse()
                    .ok()
                    .filter(|n| (2..=600).contains(n))
                    .ok_or("--seconds takes 2 to 600")?;
                args.load = Duration::from_secs(seconds);
            }
            "--list" => args.list = true,
            // What cargo's test runner passes along is not for this binary.
            other if other.starts_with('-') => {
                eprintln!("faults: ignoring {other}");
            }
            filter => args.cases.push(filter.to_owned()),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("faults: {error}");
            return ExitCode::from(2);
        }
    };
    if args.list {
        for case in cases::ALL {
            println!("{:<18} {}", case.name, case.what);
        }
        return ExitCode::SUCCESS;
    }
    let selected: Vec<&cases::Case> = if args.cases.is_empty() {
        cases::ALL.iter().collect()
    } else {
        let mut selected = Vec::new();
        for name in &args.cases {
            match cases::ALL.iter().find(|case| case.name == name) {
                Some(case) => selected.push(case),
                None => {
                    eprintln!("faults: no case {name:?} (see --list)");
                    return ExitCode::from(2);
                }
            }
        }
        selected
    };
    let (Some(database), Some(amqp), Some(redis)) = (
        service_url("DATABASE_URL"),
        service_url("AMQP_URL"),
        service_url("REDIS_URL"),
    ) else {
        return ExitCode::SUCCESS;
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("faults: no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let restartable = services::is_local(&database, 5432)
        && services::is_local(&amqp, 5672)
        && services::is_local(&redis, 6379);
    let urls = cluster::Urls { amqp, redis };
    let selected: Vec<&cases::Case> = selected
        .into_iter()
        .filter(|case| {
            let keep = restartable || !case.restarts_services;
            if !keep {
                println!(
                    "case={} skipped: the services are not the local ones on their default ports, which this case restarts",
                    case.name
                );
            }
            keep
        })
        .filter(|case| {
            let why = (case.layout == cluster::Layout::FourHosts)
                .then(hosts::unavailable)
                .flatten();
            if let Some(why) = &why {
                println!("case={} skipped: {why}", case.name);
            }
            why.is_none()
        })
        .collect();
    let started = Instant::now();
    let mut failed = 0;
    let mut totals = audit::Totals::default();
    for round in 1..=args.rounds {
        for case in &selected {
            let outcome = runtime.block_on(cluster::run_case(case, round, &urls, args.load));
            match outcome {
                Ok(report) => {
                    println!("{}", report.line());
                    if !report.audit.clean() {
                        failed += 1;
                        eprintln!("faults: logs of the failed case are in {}", report.logs);
                    }
                    totals.add(&report);
                }
                Err(error) => {
                    failed += 1;
                    println!("case={} round={round} ERROR {error}", case.name);
                }
            }
        }
    }
    println!(
        "faults: {} case runs in {:.0} s, {} failed; {}",
        totals.runs,
        started.elapsed().as_secs_f64(),
        failed,
        totals.line()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
