//! `aggregator`: runs parts of the system, for scale-out. See `aggregator --help`.

/// mimalloc: glibc's malloc took about a tenth of the CPU under load (see Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use order_aggregator::app::App;
use order_aggregator::logging;
use order_aggregator::settings::{Settings, parse_process};
use order_aggregator::stack::{Roles, termination_signal};

/// Runs the named parts of Order Aggregator (several may be named, e.g.
/// `aggregator api relay`; none means all).
///
/// Several api and worker processes can run against one PostgreSQL, RabbitMQ and Redis;
/// without DATABASE_URL and AMQP_URL every part must run in one process (`all`).
#[derive(Debug, Parser)]
#[command(name = "aggregator", version, about, long_about)]
struct Cli {
    /// The parts to run in this process
    #[arg(value_enum, value_name = "PART")]
    parts: Vec<Part>,
    #[command(flatten)]
    settings: Settings,
}

/// A part of the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    /// Every part below in one process (the default)
    All,
    /// The HTTP API
    Api,
    /// Order workers (consume order_queue)
    Worker,
    /// The outbox relay (order messages from the store to the queue)
    Relay,
    /// Expires overdue reservations and holds
    Sweeper,
    /// The stock-sync schedule and the stock_sync_queue consumer
    Sync,
}

fn roles(parts: &[Part]) -> Roles {
    if parts.is_empty() {
        return Roles::ALL;
    }
    let mut roles = Roles::NONE;
    for part in parts {
        match part {
            Part::All => roles = Roles::ALL,
            Part::Api => roles.api = true,
            Part::Worker => roles.worker = true,
            Part::Relay => roles.relay = true,
            Part::Sweeper => roles.sweeper = true,
            Part::Sync => roles.sync = true,
        }
    }
    roles
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = parse_process();
    let roles = roles(&cli.parts);
    let _logs = match logging::init(&cli.settings, logging::Console::Stdout) {
        Ok(guard) => guard,
        Err(message) => {
            eprintln!("aggregator: {message}");
            return ExitCode::FAILURE;
        }
    };
    // Listen for SIGTERM/SIGINT before starting, so one sent during start-up stops
    // the system cleanly instead of killing the process.
    let stop = termination_signal();
    let app = match App::build(cli.settings).await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(%error, "cannot build the system");
            eprintln!("aggregator: {error}");
            return ExitCode::FAILURE;
        }
    };
    let running = match app.start(roles).await {
        Ok(running) => running,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            eprintln!("aggregator: {error}");
            return ExitCode::FAILURE;
        }
    };
    match running.run_until(stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("aggregator: {error}");
            ExitCode::FAILURE
        }
    }
}
