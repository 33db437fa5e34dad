//! `aggregator-api`: the HTTP API alone, on in-memory backends unless the settings name
//! real ones, syncing every vendor once at start: for trying the API and for API tests
//! (schemathesis). The whole system is `aggregator`. See `aggregator-api --help`.

/// mimalloc: glibc's malloc took about a tenth of the CPU under load (see Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;
use order_aggregator::app::App;
use order_aggregator::logging;
use order_aggregator::settings::{Settings, parse_process};
use order_aggregator::stack::{Roles, termination_signal};

/// Serves the Order Aggregator HTTP API alone, after one stock sync of every vendor.
#[derive(Debug, Parser)]
#[command(name = "aggregator-api", version, about)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = parse_process();
    let _logs = match logging::init(&cli.settings, logging::Console::Stdout) {
        Ok(guard) => guard,
        Err(message) => {
            eprintln!("aggregator-api: {message}");
            return ExitCode::FAILURE;
        }
    };
    // Listen for SIGTERM/SIGINT before starting, so one sent during start-up stops
    // the system cleanly instead of killing the process.
    let stop = termination_signal();
    let app = match App::build(cli.settings).await {
        Ok(app) => app,
        Err(error) => {
            eprintln!("aggregator-api: {error}");
            return ExitCode::FAILURE;
        }
    };
    for (vendor, outcome) in app.sync_all_once().await {
        match outcome {
            Ok(applied) => println!("{vendor}: synced {applied} SKU(s)"),
            Err(error) => println!("{vendor}: not synced ({error})"),
        }
    }
    let running = match app
        .start(Roles {
            api: true,
            ..Roles::NONE
        })
        .await
    {
        Ok(running) => running,
        Err(error) => {
            eprintln!("aggregator-api: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(addr) = running.api_addr {
        println!("API on http://{addr} (docs at /docs)");
    }
    match running.run_until(stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("aggregator-api: {error}");
            ExitCode::FAILURE
        }
    }
}
