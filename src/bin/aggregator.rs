//! `aggregator`: runs parts of the system, for scale-out. See `aggregator --help`.

use std::process::ExitCode;

use order_aggregator::backends;
use order_aggregator::logging;
use order_aggregator::settings::{Settings, help};
use order_aggregator::stack::{Roles, start, termination_signal};

const USAGE: &str = "[PART...] [SETTINGS]

Runs the named parts (several may be named, e.g. `aggregator api relay`):
  all      every part below in one process (the default)
  api      the HTTP API
  worker   order workers (consume order_queue)
  relay    the outbox relay (order messages from the store to the queue)
  sweeper  expires overdue reservations and holds
  sync     the stock-sync schedule and the stock_sync_queue consumer

Several api and worker processes can run against one PostgreSQL, RabbitMQ and Redis;
without DATABASE_URL and AMQP_URL every part must run in one process (`all`).";

/// The parts named on the command line (`all` when none is).
fn roles(words: &[String]) -> Result<Roles, String> {
    if words.is_empty() {
        return Ok(Roles::ALL);
    }
    let mut roles = Roles::NONE;
    for word in words {
        match word.as_str() {
            "all" => roles = Roles::ALL,
            "api" => roles.api = true,
            "worker" => roles.worker = true,
            "relay" => roles.relay = true,
            "sweeper" => roles.sweeper = true,
            "sync" => roles.sync = true,
            other => return Err(format!("unknown part {other:?}")),
        }
    }
    Ok(roles)
}

#[tokio::main]
async fn main() -> ExitCode {
    let (settings, rest) = match Settings::from_process(0) {
        Ok(parsed) => parsed,
        Err(message) if message == "help" => {
            println!("{}", help("aggregator", USAGE));
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("aggregator: {message}");
            return ExitCode::from(2);
        }
    };
    let roles = match roles(&rest) {
        Ok(roles) => roles,
        Err(message) => {
            eprintln!("aggregator: {message}\n\n{}", help("aggregator", USAGE));
            return ExitCode::from(2);
        }
    };
    let _logs = match logging::init(&settings) {
        Ok(guard) => guard,
        Err(message) => {
            eprintln!("aggregator: {message}");
            return ExitCode::FAILURE;
        }
    };
    let backends = match backends::connect(&settings).await {
        Ok(backends) => backends,
        Err(error) => {
            tracing::error!(%error, "cannot reach the backends");
            eprintln!("aggregator: {error}");
            return ExitCode::FAILURE;
        }
    };
    let running = match start(&settings, backends, roles).await {
        Ok(running) => running,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            eprintln!("aggregator: {error}");
            return ExitCode::FAILURE;
        }
    };
    match running.run_until(termination_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("aggregator: {error}");
            ExitCode::FAILURE
        }
    }
}
