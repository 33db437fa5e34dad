//! Logs with `tracing`: pretty on a terminal and JSON otherwise on the console (stdout
//! for the servers, stderr for `stock-sync`, whose stdout is its report), and JSON files
//! `combined.log.<date>` (everything logged) and `error.log.<date>` (errors only),
//! rotated daily and kept for `--log-keep-days`. `RUST_LOG` picks what is logged
//! (default `info`; the access log is target `access`).

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

use crate::settings::{LogFormat, Settings};

/// Keeps the log files' writers running; drop it last so buffered lines are flushed.
#[derive(Debug)]
pub struct LogGuard {
    _guards: Vec<WorkerGuard>,
}

/// Which console stream a process logs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// Standard output (the servers).
    Stdout,
    /// Standard error (command-line tools whose standard output is their answer).
    Stderr,
}

impl Console {
    fn is_terminal(self) -> bool {
        match self {
            Self::Stdout => std::io::stdout().is_terminal(),
            Self::Stderr => std::io::stderr().is_terminal(),
        }
    }
}

/// Sets up logging for this process as the settings say, its console lines going to
/// `console`. A second call (tests) keeps the first set-up. Fails only if the log
/// directory cannot be created.
pub fn init(settings: &Settings, console: Console) -> Result<LogGuard, String> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = console.is_terminal();
    let json = match settings.ops.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !terminal,
    };
    let writer = match console {
        Console::Stdout => BoxMakeWriter::new(std::io::stdout),
        Console::Stderr => BoxMakeWriter::new(std::io::stderr),
    };
    let on_console = if json {
        fmt::layer()
            .json()
            .with_writer(writer)
            .with_filter(filter())
            .boxed()
    } else {
        fmt::layer()
            .with_ansi(terminal)
            .with_writer(writer)
            .with_filter(filter())
            .boxed()
    };
    let mut guards = Vec::new();
    let mut layers = vec![on_console];
    if let Some(dir) = &settings.ops.log_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the log directory {}: {e}", dir.display()))?;
        let keep = usize::from(settings.ops.log_keep_days);
        let daily = |name: &str| {
            RollingFileAppender::builder()
                .rotation(Rotation::DAILY)
                .filename_prefix(name)
                .max_log_files(keep)
                .build(dir)
                .map_err(|e| format!("cannot open {name} in {}: {e}", dir.display()))
        };
        let (combined, guard) = tracing_appender::non_blocking(daily("combined.log")?);
        guards.push(guard);
        layers.push(
            fmt::layer()
                .json()
                .with_ansi(false)
                .with_writer(combined)
                .with_filter(filter())
                .boxed(),
        );
        let (errors, guard) = tracing_appender::non_blocking(daily("error.log")?);
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
