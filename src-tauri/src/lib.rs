//! The app around the core: the command line, the headless daemon and, behind the `gui`
//! feature, the Tauri tray. Two binaries share it:
//!
//! - `pai-orchestrator` (`main.rs`): the command line and the headless proxy. It never
//!   links the desktop libraries, so `status`, `connect-claude` and `--headless` start
//!   in milliseconds and stay small. Run without a command where there is a display, it
//!   hands over to the tray binary next to it.
//! - `pai-orchestrator-tray` (`tray.rs`, feature `gui`): the tray app.
//!
//! May import the server (`pai-server`) and the core (`pai-core`); nothing imports this.

#[cfg(feature = "gui")]
pub mod app;
pub mod cli;
pub mod commands;
pub mod connect;
pub mod doctor;
pub mod logging;
pub mod service;
pub mod status;
pub mod statusline;

/// The command-line binary's name (the tray binary finds it next to itself).
pub const LIGHT_BINARY: &str = "pai-orchestrator";
