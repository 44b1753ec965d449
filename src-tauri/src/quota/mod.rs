//! Quota monitor: how much of the Claude quota is used, as one shared snapshot.
//!
//! Every consumer (router, tray, `/health`) reads the same `watch` value.

use serde::Serialize;

/// The four levels of the decision matrix, ordered from relaxed to critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaLevel {
    Normal = 0,
    Caution = 1,
    Warning = 2,
    Critical = 3,
}

impl QuotaLevel {
    pub const ALL: [QuotaLevel; 4] = [
        QuotaLevel::Normal,
        QuotaLevel::Caution,
        QuotaLevel::Warning,
        QuotaLevel::Critical,
    ];

    pub fn name(self) -> &'static str {
        match self {
            QuotaLevel::Normal => "normal",
            QuotaLevel::Caution => "caution",
            QuotaLevel::Warning => "warning",
            QuotaLevel::Critical => "critical",
        }
    }

    pub fn from_name(name: &str) -> Option<QuotaLevel> {
        QuotaLevel::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// The quota state as shown to users: a level, or `unknown` when no reading is fresh
/// (routed as `normal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaState {
    Unknown,
    Normal,
    Caution,
    Warning,
    Critical,
}

impl QuotaState {
    /// The matrix row this state routes by.
    pub fn level(self) -> QuotaLevel {
        match self {
            QuotaState::Unknown | QuotaState::Normal => QuotaLevel::Normal,
            QuotaState::Caution => QuotaLevel::Caution,
            QuotaState::Warning => QuotaLevel::Warning,
            QuotaState::Critical => QuotaLevel::Critical,
        }
    }
}

/// What the quota monitor currently knows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuotaSnapshot {
    pub state: QuotaState,
    /// Percent of the quota used, when any reading is fresh.
    pub percent: Option<f64>,
}

impl Default for QuotaSnapshot {
    fn default() -> Self {
        QuotaSnapshot {
            state: QuotaState::Unknown,
            percent: None,
        }
    }
}
