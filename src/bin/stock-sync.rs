//! `stock-sync`: the seed's stock sync command. See `stock-sync --help`.

/// mimalloc: glibc's malloc took about a tenth of the CPU under load (see Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::CommandFactory;
use order_aggregator::logging;
use order_aggregator::settings::parse_process;
use order_aggregator::stock_sync_cli::SyncCli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli: SyncCli = parse_process();
    let command = match cli.sync_command() {
        Ok(command) => command,
        Err(message) => SyncCli::command()
            .error(clap::error::ErrorKind::InvalidValue, message)
            .exit(),
    };
    // The same logging as the servers, its console lines on stderr: stdout is the
    // command's report.
    let _logs = match logging::init(&cli.settings, logging::Console::Stderr) {
        Ok(guard) => guard,
        Err(message) => {
            eprintln!("stock-sync: {message}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    ExitCode::from(cli.run(&command, &mut out).await)
}
