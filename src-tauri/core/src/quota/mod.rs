//! Quota monitor: how much of the Claude quota is used, as one shared snapshot.
//!
//! Sources (each optional): a dashboard polled over HTTP, the rate-limit headers on every
//! Anthropic response the proxy relays, 429s, and (opt-in) Anthropic's OAuth usage
//! endpoint. [`tracker`] merges them into one [`QuotaSnapshot`]; [`monitor`] publishes it on
//! a `watch` that every consumer (router, tray, `/health`) reads, writes it to the state
//! file, and emits a [`QuotaEvent`] on every change of state.
//!
//! Imports: `config`, `store` (the history), `net`, `fsutil`, `types`; never providers
//! or the router: the pipeline hands it the responses it reads.

mod burn;
mod dashboard;
pub mod headers;
mod level;
mod monitor;
pub mod tracker;
mod usage_api;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use monitor::QuotaMonitor;

use crate::types::QuotaState;

/// Which kind of quota a reading measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Window {
    /// The subscription's rolling 5-hour window (the session).
    #[serde(rename = "5h")]
    FiveHour,
    /// The subscription's weekly window.
    #[serde(rename = "7d")]
    SevenDay,
    /// Whatever the dashboard measures.
    #[serde(rename = "dashboard")]
    Dashboard,
    /// An API key's per-minute limits.
    #[serde(rename = "api-key")]
    ApiKey,
}

impl Window {
    pub fn describe(self) -> &'static str {
        match self {
            Window::FiveHour => "5h window",
            Window::SevenDay => "7d window",
            Window::Dashboard => "dashboard",
            Window::ApiKey => "API-key limit",
        }
    }

    /// The short name the tray and the status line use: `5h`, `week`.
    pub fn short(self) -> &'static str {
        match self {
            Window::FiveHour => "5h",
            Window::SevenDay => "week",
            Window::Dashboard => "dashboard",
            Window::ApiKey => "API key",
        }
    }
}

/// Where a reading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Headers,
    Dashboard,
    UsageApi,
}

/// What Anthropic says of a window: `allowed`, `allowed_warning`, or `rejected` (used up).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum LimitStatus {
    Allowed,
    AllowedWarning,
    Rejected,
}

/// One measurement of one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub window: Window,
    /// `None`: every model shares it; `Some("opus")`: only the models whose id contains it.
    pub scope: Option<String>,
    /// Percent used; can exceed 100 when over the limit.
    pub percent: f64,
    pub resets_at: Option<DateTime<Utc>>,
    pub status: Option<LimitStatus>,
}

impl Reading {
    /// A reading of a window every model shares.
    pub fn shared(window: Window, percent: f64, resets_at: Option<DateTime<Utc>>) -> Reading {
        Reading {
            window,
            scope: None,
            percent,
            resets_at,
            status: None,
        }
    }
}

/// Whether a window's `scope` covers `model` (`None` covers every model).
pub fn covers(scope: Option<&str>, model: &str) -> bool {
    scope.is_none_or(|family| model.to_ascii_lowercase().contains(family))
}

/// The family a model belongs to, for caps scoped by family: `opus`, `sonnet`, `haiku`,
/// `fable`, else the model id itself.
pub fn family_of(model: &str) -> String {
    crate::models::Family::of(model)
        .map_or_else(|| model.to_ascii_lowercase(), |f| f.id().to_owned())
}

/// A window in words: `5h`, `week`, `Opus week`.
pub fn window_label(window: Window, scope: Option<&str>) -> String {
    match scope {
        None => window.short().to_owned(),
        Some(family) => {
            let mut chars = family.chars();
            let capitalised: String = chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default();
            format!("{capitalised} {}", window.short())
        }
    }
}

/// A fresh reading as shown in the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadingView {
    pub window: Window,
    #[serde(default)]
    pub scope: Option<String>,
    pub source: Source,
    pub percent: f64,
    pub resets_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub status: Option<LimitStatus>,
    pub at: DateTime<Utc>,
}

/// One window as it stands (its freshest reading), with its pace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowView {
    pub window: Window,
    /// `None`: shared by every model; else the model family it caps (`opus`).
    pub scope: Option<String>,
    /// `5h`, `week`, `Opus week`.
    pub label: String,
    pub percent: f64,
    pub status: Option<LimitStatus>,
    pub resets_at: Option<DateTime<Utc>>,
    pub source: Source,
    /// When the reading arrived.
    pub at: DateTime<Utc>,
    /// Percent per hour over the last 30 minutes.
    pub burn_rate: Option<f64>,
    /// When it reaches 100% at that pace.
    pub projected_exhaustion: Option<DateTime<Utc>>,
}

/// A model family that may not be used until `until`: its own window is used up, or
/// Anthropic refused it (a 429 scoped to it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cap {
    /// The models it covers: those whose id contains this (`opus`).
    pub family: String,
    /// `Opus week`.
    pub label: String,
    pub until: Option<DateTime<Utc>>,
    /// "Opus week cap reached, resets Tue 14:00".
    pub reason: String,
}

/// Extra usage (overage): billed use beyond the subscription's included quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overage {
    /// Extra usage is being spent now.
    pub in_use: bool,
    /// Whether the account may spend it (`allowed`, `allowed_warning`, `rejected`).
    pub status: Option<LimitStatus>,
    /// Percent of the extra-usage limit spent.
    pub percent: Option<f64>,
    pub resets_at: Option<DateTime<Utc>>,
    /// Why it is off, as Anthropic says (`out_of_credits`, `org_level_disabled`, …).
    pub disabled_reason: Option<String>,
    /// Whether the config lets the proxy spend it (`[quota] allow_extra_usage`).
    pub allowed_by_config: bool,
}

/// What the quota monitor currently knows; every consumer reads this one value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaSnapshot {
    /// The state of the quota every model shares: the matrix row.
    pub state: QuotaState,
    /// Percent used of the shared window closest to its limit, when any reading is fresh.
    pub percent: Option<f64>,
    pub source: Option<Source>,
    pub window: Option<Window>,
    pub resets_at: Option<DateTime<Utc>>,
    /// Percent per hour over the last 30 minutes.
    pub burn_rate: Option<f64>,
    /// When the window reaches 100% at the current burn rate.
    pub projected_exhaustion: Option<DateTime<Utc>>,
    /// The projection comes before the window's reset: the quota runs out first.
    pub exhausts_before_reset: bool,
    /// Set while a 429 from Anthropic holds the state at critical.
    pub rate_limited_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// The state in words: "5h window at 91% (critical ≥ 90%), resets 14:20".
    pub reason: String,
    pub readings: Vec<ReadingView>,
    /// Every window known, shared and scoped, the fullest first.
    #[serde(default)]
    pub windows: Vec<WindowView>,
    /// Model families that may not be used now.
    #[serde(default)]
    pub caps: Vec<Cap>,
    #[serde(default)]
    pub overage: Option<Overage>,
}

impl Default for QuotaSnapshot {
    fn default() -> Self {
        QuotaSnapshot {
            state: QuotaState::Unknown,
            percent: None,
            source: None,
            window: None,
            resets_at: None,
            burn_rate: None,
            projected_exhaustion: None,
            exhausts_before_reset: false,
            rate_limited_until: None,
            updated_at: Utc::now(),
            reason: "no quota reading yet; routing as normal".to_owned(),
            readings: Vec::new(),
            windows: Vec::new(),
            caps: Vec::new(),
            overage: None,
        }
    }
}

impl QuotaSnapshot {
    /// Equal for the user: everything but when it was computed and when each reading
    /// arrived (a new reading with the same value changes nothing worth publishing).
    pub fn same_as(&self, other: &QuotaSnapshot) -> bool {
        let mut a = self.clone();
        a.updated_at = other.updated_at;
        for (mine, theirs) in a.readings.iter_mut().zip(&other.readings) {
            mine.at = theirs.at;
        }
        for (mine, theirs) in a.windows.iter_mut().zip(&other.windows) {
            mine.at = theirs.at;
        }
        a == *other
    }

    /// The cap that keeps `model` from being used now, if one does.
    pub fn cap_for(&self, model: &str) -> Option<&Cap> {
        self.caps
            .iter()
            .find(|cap| covers(Some(cap.family.as_str()), model))
    }

    /// When the critical state is expected to clear: a 429's reset, else the binding
    /// window's. `None` when it is not known (or not critical).
    pub fn critical_until(&self) -> Option<DateTime<Utc>> {
        if self.state != QuotaState::Critical {
            return None;
        }
        self.rate_limited_until.or(self.resets_at)
    }

    /// One line with every window: `5h 42% · week 81% · Opus week 100% until Tue 14:00`.
    pub fn windows_line(&self) -> String {
        let mut parts: Vec<String> = self
            .windows
            .iter()
            .map(|w| {
                let capped = w.scope.is_some()
                    && self
                        .caps
                        .iter()
                        .any(|c| Some(&c.family) == w.scope.as_ref());
                match (capped, w.resets_at) {
                    (true, Some(reset)) => format!(
                        "{} {:.0}% until {}",
                        w.label,
                        w.percent,
                        tracker::clock(reset)
                    ),
                    _ => format!("{} {:.0}%", w.label, w.percent),
                }
            })
            .collect();
        for cap in &self.caps {
            if !self
                .windows
                .iter()
                .any(|w| w.scope.as_deref() == Some(&cap.family))
            {
                parts.push(match cap.until {
                    Some(until) => format!("{} capped until {}", cap.label, tracker::clock(until)),
                    None => format!("{} capped", cap.label),
                });
            }
        }
        if self.overage.as_ref().is_some_and(|o| o.in_use) {
            parts.push("extra usage in use".to_owned());
        }
        parts.join(" · ")
    }
}

/// A change of quota state, for notifications and the tray.
#[derive(Debug, Clone, Serialize)]
pub struct QuotaEvent {
    pub from: QuotaState,
    pub to: QuotaState,
    pub snapshot: QuotaSnapshot,
}

/// A model family capped, or free again.
#[derive(Debug, Clone, Serialize)]
pub struct CapEvent {
    pub cap: Cap,
    /// `true`: the cap was reached; `false`: it lifted.
    pub reached: bool,
}
