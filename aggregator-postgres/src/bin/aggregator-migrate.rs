//! Applies the PostgreSQL migrations and exits. See `aggregator-migrate --help`.

use std::process::ExitCode;

use aggregator_postgres::{PostgresConfig, PostgresStockStore};
use clap::Parser;

/// Applies the schema migrations to the database and exits (running it again is a
/// no-op).
#[derive(Parser)]
#[command(name = "aggregator-migrate", version, about)]
struct Cli {
    /// The database, e.g. postgres://postgres@127.0.0.1:5432/orders
    #[arg(
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        hide_env_values = true
    )]
    url: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let url = Cli::parse().url;
    let config = PostgresConfig::new(url);
    let store = match PostgresStockStore::connect(&config).await {
        Ok(store) => store,
        Err(error) => {
            eprintln!("aggregator-migrate: cannot connect with {config:?}: {error}");
            return ExitCode::FAILURE;
        }
    };
    match store.migrate().await {
        Ok(()) => {
            println!("migrations applied");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("aggregator-migrate: {error}");
            ExitCode::FAILURE
        }
    }
}
