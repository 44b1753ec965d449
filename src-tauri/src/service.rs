//! The headless daemon as a systemd user service (the tray app uses autostart instead).

use std::path::PathBuf;

use crate::cli::Paths;
use pai_core::fsutil;

/// The unit shipped in the repository, with this binary's path and the user's paths.
pub const UNIT_TEMPLATE: &str = include_str!("../../scripts/pai-orchestrator.service");

pub fn unit_text(binary: &std::path::Path, paths: &Paths) -> String {
    UNIT_TEMPLATE
        .replace("@BINARY@", &binary.display().to_string())
        .replace("@CONFIG@", &paths.config.display().to_string())
        .replace("@DATA_DIR@", &paths.data_dir.display().to_string())
}

/// Writes `~/.config/systemd/user/pai-orchestrator.service`; returns its path.
pub fn install(paths: &Paths) -> std::io::Result<PathBuf> {
    let binary = std::env::current_exe()?;
    let dir = directories::BaseDirs::new()
        .map(|d| d.config_dir().join("systemd/user"))
        .ok_or_else(|| std::io::Error::other("no home directory"))?;
    let path = dir.join("pai-orchestrator.service");
    fsutil::write_atomic(&path, unit_text(&binary, paths).as_bytes())?;
    Ok(path)
}
