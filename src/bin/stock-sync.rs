//! `stock-sync`: the seed's stock sync command. See `stock-sync --help`.

use std::process::ExitCode;

use order_aggregator::stock_sync_cli::SyncCli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match SyncCli::parse(std::env::args().skip(1), |name| std::env::var(name).ok()) {
        Ok(cli) => cli,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    ExitCode::from(cli.run(&mut out).await)
}
