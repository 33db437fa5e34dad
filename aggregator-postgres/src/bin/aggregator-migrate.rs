//! Applies the PostgreSQL migrations and exits.
//!
//! `aggregator-migrate [DATABASE_URL]`: the URL comes from the argument or from the
//! `DATABASE_URL` environment variable.

use std::process::ExitCode;

use aggregator_postgres::{PostgresConfig, PostgresStockStore};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let url = match args.next() {
        Some(flag) if flag == "--help" || flag == "-h" => {
            println!(
                "usage: aggregator-migrate [DATABASE_URL]\napplies the schema migrations to the database and exits"
            );
            return ExitCode::SUCCESS;
        }
        Some(url) => url,
        None => match std::env::var("DATABASE_URL") {
            Ok(url) => url,
            Err(_) => {
                eprintln!(
                    "aggregator-migrate: give the database URL as an argument or in DATABASE_URL"
                );
                return ExitCode::from(2);
            }
        },
    };
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
