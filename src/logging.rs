//! Logs with `tracing`: pretty on a terminal and JSON otherwise on stdout, and JSON
//! files `combined.log.<date>` (everything logged) and `error.log.<date>` (errors only),
//! rotated daily. `RUST_LOG` picks what is logged (default `info`).

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

use crate::settings::{LogFormat, Settings};

/// Keeps the log files' writers running; drop it last so buffered lines are flushed.
#[derive(Debug)]
pub struct LogGuard {
    _guards: Vec<WorkerGuard>,
}

/// Sets up logging for this process as the settings say. A second call (tests) keeps
/// the first set-up. Fails only if the log directory cannot be created.
pub fn init(settings: &Settings) -> Result<LogGuard, String> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match settings.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let stdout = if json {
        fmt::layer().json().with_filter(filter()).boxed()
    } else {
        fmt::layer()
            .with_ansi(std::io::stdout().is_terminal())
            .with_filter(filter())
            .boxed()
    };
    let mut guards = Vec::new();
    let mut layers = vec![stdout];
    if let Some(dir) = &settings.log_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the log directory {}: {e}", dir.display()))?;
        let (combined, guard) = tracing_appender::non_blocking(rolling::daily(dir, "combined.log"));
        guards.push(guard);
        layers.push(
            fmt::layer()
                .json()
                .with_ansi(false)
                .with_writer(combined)
                .with_filter(filter())
                .boxed(),
        );
        let (errors, guard) = tracing_appender::non_blocking(rolling::daily(dir, "error.log"));
        guards.push(guard);
        layers.push(
            fmt::layer()
                .json()
                .with_ansi(false)
                .with_writer(errors)
                .with_filter(LevelFilter::ERROR)
                .boxed(),
        );
    }
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(LogGuard { _guards: guards })
}
