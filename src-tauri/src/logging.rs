//! Logs to stderr and to a daily-rotated file in the data dir, filtered by `RUST_LOG`.
//!
//! Secrets never reach a log: credential headers are marked sensitive before they go
//! upstream, errors are described without URLs, and bodies are never logged.

use std::io::IsTerminal;
use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

/// How many daily log files are kept.
const KEEP_LOG_FILES: usize = 7;

/// Installs the global subscriber. Keep the guard alive: dropping it flushes the file.
pub fn init(data_dir: &Path) -> Result<WorkerGuard, String> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let log_dir = data_dir.join("logs");
    std::fs::create_dir_all(&log_dir)
        .map_err(|e| format!("cannot create log dir {}: {e}", log_dir.display()))?;
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix("pai-orchestrator")
        .filename_suffix("log")
        .max_log_files(KEEP_LOG_FILES)
        .build(&log_dir)
        .map_err(|e| format!("cannot open log dir {}: {e}", log_dir.display()))?;
    let (file_writer, guard) = tracing_appender::non_blocking(appender);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr),
        )
        .with(fmt::layer().with_ansi(false).with_writer(file_writer))
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))?;
    Ok(guard)
}
