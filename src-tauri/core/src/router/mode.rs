//! Routing modes the user switches at run time (tray, admin API).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr, VariantArray};

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

/// The current mode, shared; cheap to read on every request.
#[derive(Clone, Default)]
pub struct ModeSwitch(Arc<AtomicU8>);

impl ModeSwitch {
    pub fn get(&self) -> Mode {
        Mode::VARIANTS
            .get(usize::from(self.0.load(Ordering::Relaxed)))
            .copied()
            .unwrap_or(Mode::Auto)
    }

    pub fn set(&self, mode: Mode) {
        let index = Mode::VARIANTS.iter().position(|m| *m == mode).unwrap_or(0);
        self.0.store(index as u8, Ordering::Relaxed);
        tracing::info!(mode = mode.name(), "routing mode changed");
    }
}
