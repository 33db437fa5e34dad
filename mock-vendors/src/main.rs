//! `mock-vendors`: serves mock vendor APIs (VendorA on 3001 and VendorB on 3002 by
//! default) until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use mock_vendors::{MockVendor, ServeCli};

#[tokio::main]
async fn main() -> ExitCode {
    let args = match ServeCli::parse().serve_args() {
        Ok(args) => args,
        Err(message) => ServeCli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit(),
    };
    let mut running = Vec::new();
    for (config, port) in args.vendors {
        let id = config.id.clone();
        match MockVendor::spawn(config, SocketAddr::new(args.host, port)).await {
            Ok(vendor) => {
                println!(
                    "{} ({}) on {}",
                    vendor.id(),
                    vendor.name(),
                    vendor.base_url()
                );
                running.push(vendor);
            }
            Err(error) => {
                eprintln!("cannot serve {id} on {}:{port}: {error}", args.host);
                return ExitCode::FAILURE;
            }
        }
    }
    wait_for_signal().await;
    println!("stopping");
    for vendor in running {
        let id = vendor.id().to_owned();
        if let Err(error) = vendor.shutdown().await {
            eprintln!("stopping {id}: {error}");
        }
    }
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
