//! The whole system in one process: API on :3000, VendorA on :3001 and VendorB on
//! :3002, outbox relay, two workers, stock sync every 30 s, sweeper.
//!
//! `cargo run --example full_stack` runs on in-memory backends; `DATABASE_URL`,
//! `AMQP_URL` and `REDIS_URL` switch each part to the real service. Every setting of
//! `aggregator --help` applies. Ctrl-C stops it gracefully.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use clap::Parser;
use mock_vendors::{MockVendor, MockVendorConfig};
use order_aggregator::app::App;
use order_aggregator::logging;
use order_aggregator::settings::{Settings, parse_process};
use order_aggregator::stack::{Roles, termination_signal};

/// The whole system in one process, with mock vendors for every vendor on this machine.
#[derive(Debug, Parser)]
#[command(name = "full_stack", version, about)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
}

/// The local port of a vendor URL such as `http://127.0.0.1:3001`, if it is local.
fn local_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://")?.1;
    let host_port = rest.split('/').next()?;
    let (host, port) = host_port.rsplit_once(':')?;
    let local = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    local.then(|| port.parse().ok()).flatten()
}

#[tokio::main]
async fn main() -> ExitCode {
    let settings = parse_process::<Cli>().settings;
    let _logs = match logging::init(&settings, logging::Console::Stdout) {
        Ok(guard) => guard,
        Err(message) => {
            eprintln!("full_stack: {message}");
            return ExitCode::FAILURE;
        }
    };
    // The mock vendors for every configured vendor on this machine.
    let mut vendors = Vec::new();
    for endpoint in &settings.vendor.vendors {
        let Some(port) = local_port(endpoint.base_url.expose()) else {
            continue;
        };
        let config = MockVendorConfig::new(endpoint.id.as_str());
        match MockVendor::spawn(config, SocketAddr::from(([127, 0, 0, 1], port))).await {
            Ok(vendor) => vendors.push(vendor),
            Err(error) => {
                eprintln!(
                    "full_stack: cannot serve mock {} on port {port}: {error}",
                    endpoint.id
                );
                return ExitCode::FAILURE;
            }
        }
    }
    // Listen for SIGTERM/SIGINT before starting, so one sent during start-up stops
    // the system cleanly instead of killing the process.
    let stop = termination_signal();
    let app = match App::build(settings).await {
        Ok(app) => app,
        Err(error) => {
            eprintln!("full_stack: {error}");
            return ExitCode::FAILURE;
        }
    };
    let running = match app.start(Roles::ALL).await {
        Ok(running) => running,
        Err(error) => {
            eprintln!("full_stack: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(addr) = running.api_addr {
        println!("Order Aggregator on http://{addr} (docs: http://{addr}/docs)");
    }
    for vendor in &vendors {
        println!("{} on {}", vendor.id(), vendor.base_url());
    }
    let result = running.run_until(stop).await;
    for vendor in vendors {
        let _ = vendor.shutdown().await;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("full_stack: {error}");
            ExitCode::FAILURE
        }
    }
}
