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

use pai_core::fsutil;

/// How many daily log files are kept.
const KEEP_LOG_FILES: usize = 7;

/// Installs the global subscriber. Keep the guard alive: dropping it flushes the file.
/// When the log dir cannot be written (a full or read-only disk), logs go to stderr only
/// — saying so — rather than keeping the proxy from starting.
pub fn init(data_dir: &Path) -> Option<WorkerGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match file_appender(data_dir) {
        Ok(appender) => {
            let (file_writer, guard) = tracing_appender::non_blocking(appender);
            let installed = tracing_subscriber::registry()
                .with(filter)
                .with(stderr)
                .with(fmt::layer().with_ansi(false).with_writer(file_writer))
                .try_init();
            installed.ok().map(|()| guard)
        }
        Err(problem) => {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(stderr)
                .try_init();
            tracing::error!("{problem}; logging to stderr only");
            None
        }
    }
}

/// The daily log files in `data_dir/logs`, private to the user (files an earlier version
/// left readable by others are tightened).
fn file_appender(data_dir: &Path) -> Result<RollingFileAppender, String> {
    let log_dir = data_dir.join("logs");
    fsutil::private_dir(data_dir)
        .and_then(|()| fsutil::private_dir(&log_dir))
        .map_err(|e| format!("cannot create log dir {}: {e}", log_dir.display()))?;
    if let Ok(entries) = std::fs::read_dir(&log_dir) {
        for entry in entries.flatten() {
            let _ = fsutil::private_file(&entry.path());
        }
    }
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix("pai-orchestrator")
        .filename_suffix("log")
        .max_log_files(KEEP_LOG_FILES)
        .build(&log_dir)
        .map_err(|e| format!("cannot open log dir {}: {e}", log_dir.display()))
}
