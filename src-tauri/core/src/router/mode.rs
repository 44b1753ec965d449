//! Routing modes the user switches at run time (tray, admin API).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr, VariantArray};
use tokio::sync::watch;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    EnumString,
    IntoStaticStr,
    VariantArray,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Mode {
    /// The decision matrix.
    Auto,
    /// Everything to Claude, as requested.
    ClaudeOnly,
    /// Everything to the providers on this machine.
    LocalOnly,
    /// Pure pass-through: no classification, no routing.
    Paused,
}

impl Mode {
    pub const ALL: &'static [Mode] = Self::VARIANTS;

    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// The current mode, shared; cheap to read on every request, and followed by whoever
/// shows it.
#[derive(Clone)]
pub struct ModeSwitch(Arc<watch::Sender<Mode>>);

impl Default for ModeSwitch {
    fn default() -> Self {
        ModeSwitch(Arc::new(watch::channel(Mode::Auto).0))
    }
}

impl ModeSwitch {
    pub fn get(&self) -> Mode {
        *self.0.borrow()
    }

    pub fn set(&self, mode: Mode) {
        if self.0.send_replace(mode) != mode {
            tracing::info!(mode = mode.name(), "routing mode changed");
        }
    }

    /// Follows changes of mode.
    pub fn subscribe(&self) -> watch::Receiver<Mode> {
        self.0.subscribe()
    }
}
