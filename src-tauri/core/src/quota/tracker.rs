//! The quota state machine: readings in, one snapshot out. Pure: time is a parameter, so
//! expiry, resets and burn rates are tested without waiting.
//!
//! Every window is kept with its scope: the ones every model shares decide the state (the
//! matrix row); the ones scoped to a model family decide caps — a family whose own
//! window is used up, or that Anthropic refused, is left out until its reset while the
//! others go on. Extra usage is a state of its own: spending it is critical unless the
//! config allows it.

use std::collections::BTreeMap;

use chrono::{DateTime, Local, Utc};

use super::burn::{self, History};
use super::headers::{OverageReport, Rejection};
use super::level::{next_level, threshold};
use super::{
    window_label, Cap, LimitStatus, Overage, QuotaSnapshot, Reading, Source, Window, WindowView,
};
use crate::config::Thresholds;
use crate::types::{QuotaLevel, QuotaState};

/// How long each kind of reading stays fresh.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    pub headers: chrono::Duration,
    pub dashboard: chrono::Duration,
    pub usage_api: chrono::Duration,
}

impl Freshness {
    fn ttl(&self, source: Source) -> chrono::Duration {
        match source {
            Source::Headers => self.headers,
            Source::Dashboard => self.dashboard,
            Source::UsageApi => self.usage_api,
        }
    }
}

#[derive(Debug, Clone)]
struct Stamped {
    reading: Reading,
    source: Source,
    at: DateTime<Utc>,
}

/// A window's identity: which kind, for whom, from where. A fresher reading of the same
/// one replaces the older.
type Key = (Window, Option<String>, Source);

/// A refusal that holds until `until`: every model (`scope: None`) or one family.
#[derive(Debug, Clone)]
struct Block {
    scope: Option<String>,
    window: Option<Window>,
    until: DateTime<Utc>,
}

#[derive(Debug)]
pub struct Tracker {
    thresholds: Thresholds,
    freshness: Freshness,
    /// Whether spending extra usage is fine (`[quota] allow_extra_usage`).
    allow_extra_usage: bool,
    readings: BTreeMap<Key, Stamped>,
    blocks: Vec<Block>,
    overage: Option<(OverageReport, Source, DateTime<Utc>)>,
    level: Option<QuotaLevel>,
    history: History,
}

impl Tracker {
    pub fn new(thresholds: Thresholds, freshness: Freshness) -> Self {
        Tracker {
            thresholds,
            freshness,
            allow_extra_usage: false,
            readings: BTreeMap::new(),
            blocks: Vec::new(),
            overage: None,
            level: None,
            history: History::default(),
        }
    }

    /// New thresholds, freshness or extra-usage permission after a config edit.
    pub fn reconfigure(&mut self, thresholds: Thresholds, freshness: Freshness) {
        self.thresholds = thresholds;
        self.freshness = freshness;
    }

    pub fn allow_extra_usage(&mut self, allowed: bool) {
        self.allow_extra_usage = allowed;
    }

    pub fn observe(&mut self, source: Source, readings: &[Reading], now: DateTime<Utc>) {
        for reading in readings {
            self.history.push(
                now,
                (reading.window, reading.scope.clone()),
                reading.percent,
            );
            self.readings.insert(
                (reading.window, reading.scope.clone(), source),
                Stamped {
                    reading: reading.clone(),
                    source,
                    at: now,
                },
            );
        }
    }

    /// What an account in extra usage says of it.
    pub fn observe_overage(&mut self, source: Source, overage: OverageReport, now: DateTime<Utc>) {
        self.overage = Some((overage, source, now));
    }

    /// A refusal from Anthropic: its scope is blocked until its reset, whatever the
    /// readings say.
    pub fn rejected(&mut self, rejection: Rejection) {
        match self.blocks.iter_mut().find(|b| b.scope == rejection.scope) {
            Some(block) => {
                block.until = block.until.max(rejection.until);
                block.window = rejection.window.or(block.window);
            }
            None => self.blocks.push(Block {
                scope: rejection.scope,
                window: rejection.window,
                until: rejection.until,
            }),
        }
    }

    /// A refusal of every model until `until`.
    pub fn rate_limited(&mut self, until: DateTime<Utc>) {
        self.rejected(Rejection {
            scope: None,
            until,
            window: None,
        });
    }

    /// What a previous run knew (its state file), taken up again at start: refusals and
    /// caps whose reset is still ahead, windows used up until their reset, and every
    /// reading at the time it arrived — the freshness rules then decide, as if the proxy
    /// had never stopped.
    pub fn restore(&mut self, previous: &QuotaSnapshot, now: DateTime<Utc>) {
        let ahead = |at: Option<DateTime<Utc>>| at.filter(|at| *at > now);
        if let Some(until) = ahead(previous.rate_limited_until) {
            self.rate_limited(until);
        }
        for cap in &previous.caps {
            if let Some(until) = ahead(cap.until) {
                self.rejected(Rejection {
                    scope: Some(cap.family.clone()),
                    until,
                    window: None,
                });
            }
        }
        for window in &previous.windows {
            let Some(resets_at) = ahead(window.resets_at) else {
                continue;
            };
            let used_up = window.percent >= 100.0 || window.status == Some(LimitStatus::Rejected);
            if used_up {
                self.rejected(Rejection {
                    scope: window.scope.clone(),
                    until: resets_at,
                    window: Some(window.window),
                });
            }
            self.readings.insert(
                (window.window, window.scope.clone(), window.source),
                Stamped {
                    reading: Reading {
                        window: window.window,
                        scope: window.scope.clone(),
                        percent: window.percent,
                        resets_at: Some(resets_at),
                        status: window.status,
                    },
                    source: window.source,
                    at: window.at.min(now),
                },
            );
        }
    }

    fn ttl(&self, source: Source) -> chrono::Duration {
        self.freshness.ttl(source)
    }

    /// When the snapshot next changes by itself (a reading expires, a reset passes).
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let expiries = self.readings.values().map(|s| s.at + self.ttl(s.source));
        let resets = self.readings.values().filter_map(|s| s.reading.resets_at);
        let blocks = self.blocks.iter().map(|b| b.until);
        let overage = self
            .overage
            .iter()
            .map(|(_, source, at)| *at + self.ttl(*source));
        expiries.chain(resets).chain(blocks).chain(overage).min()
    }

    pub fn snapshot(&mut self, now: DateTime<Utc>) -> QuotaSnapshot {
        let freshness = self.freshness;
        self.readings
            .retain(|_, s| now - s.at < freshness.ttl(s.source));
        // A window whose reset time has passed no longer says anything about the quota.
        self.readings
            .retain(|_, s| s.reading.resets_at.is_none_or(|reset| reset > now));
        self.blocks.retain(|b| b.until > now);
        if self
            .overage
            .as_ref()
            .is_some_and(|(_, source, at)| now - *at >= freshness.ttl(*source))
        {
            self.overage = None;
        }

        // The windows every model shares decide the state; the fullest is binding.
        let binding = self
            .readings
            .values()
            .filter(|s| s.reading.scope.is_none())
            .max_by(|a, b| a.reading.percent.total_cmp(&b.reading.percent))
            .cloned();
        let mut level = binding
            .as_ref()
            .map(|s| next_level(&self.thresholds, self.level, s.reading.percent));
        if binding
            .as_ref()
            .is_some_and(|s| s.reading.status == Some(LimitStatus::Rejected))
        {
            level = Some(QuotaLevel::Critical);
        }
        self.level = level;

        let burn_rate = binding
            .as_ref()
            .and_then(|s| self.history.rate(&(s.reading.window, None), now));
        let projected_exhaustion = match (&binding, burn_rate) {
            (Some(s), Some(rate)) => burn::projected_exhaustion(s.reading.percent, rate, now),
            _ => None,
        };

        let rate_limited_until = self
            .blocks
            .iter()
            .filter(|b| b.scope.is_none())
            .map(|b| b.until)
            .max();
        let overage = self.overage.as_ref().map(|(report, _, _)| Overage {
            in_use: report.in_use,
            status: report.status,
            percent: report.percent.map(round1),
            resets_at: report.resets_at,
            disabled_reason: report.disabled_reason.clone(),
            allowed_by_config: self.allow_extra_usage,
        });
        let windows = self.windows(now);
        let caps = self.caps(&windows);
        // Predictive step-down looks at every shared window: one that runs out at its
        // pace before its reset is enough (a week nearly gone while the session is fine).
        let exhausts_before_reset = windows.iter().any(|w| {
            w.scope.is_none()
                && w.projected_exhaustion
                    .is_some_and(|when| w.resets_at.is_none_or(|reset| when < reset))
        });

        let mut snapshot = QuotaSnapshot {
            state: level.map_or(QuotaState::Unknown, QuotaState::from),
            percent: binding.as_ref().map(|s| round1(s.reading.percent)),
            source: binding.as_ref().map(|s| s.source),
            window: binding.as_ref().map(|s| s.reading.window),
            resets_at: binding.as_ref().and_then(|s| s.reading.resets_at),
            burn_rate: burn_rate.map(round1),
            projected_exhaustion,
            exhausts_before_reset,
            rate_limited_until,
            updated_at: now,
            reason: String::new(),
            readings: self
                .readings
                .values()
                .map(|s| super::ReadingView {
                    window: s.reading.window,
                    scope: s.reading.scope.clone(),
                    source: s.source,
                    percent: round1(s.reading.percent),
                    resets_at: s.reading.resets_at,
                    status: s.reading.status,
                    at: s.at,
                })
                .collect(),
            windows,
            caps,
            overage,
        };
        let billed = snapshot
            .overage
            .as_ref()
            .is_some_and(|o| o.in_use && !self.allow_extra_usage);
        snapshot.reason = match (rate_limited_until, billed, &binding, level) {
            (Some(until), _, _, _) => {
                snapshot.state = QuotaState::Critical;
                format!(
                    "Anthropic answered 429 (rate limited) until {}",
                    clock(until)
                )
            }
            (None, true, _, _) => {
                snapshot.state = QuotaState::Critical;
                "the included quota is used up and extra usage (billed) would be spent; [quota] allow_extra_usage = false routes as critical".to_owned()
            }
            (None, false, Some(s), Some(level)) => self.explain(s, level),
            _ => "no fresh quota reading; routing as normal".to_owned(),
        };
        snapshot
    }

    /// Every window as it stands: its freshest reading, with its pace; fullest first.
    fn windows(&self, now: DateTime<Utc>) -> Vec<WindowView> {
        let mut freshest: BTreeMap<(Window, Option<String>), &Stamped> = BTreeMap::new();
        for stamped in self.readings.values() {
            let key = (stamped.reading.window, stamped.reading.scope.clone());
            match freshest.get(&key) {
                Some(known) if known.at >= stamped.at => {}
                _ => {
                    freshest.insert(key, stamped);
                }
            }
        }
        let mut windows: Vec<WindowView> = freshest
            .into_iter()
            .map(|(key, s)| {
                let burn_rate = self.history.rate(&key, now);
                WindowView {
                    window: key.0,
                    label: window_label(key.0, key.1.as_deref()),
                    scope: key.1,
                    percent: round1(s.reading.percent),
                    status: s.reading.status,
                    resets_at: s.reading.resets_at,
                    source: s.source,
                    at: s.at,
                    burn_rate: burn_rate.map(round1),
                    projected_exhaustion: burn_rate
                        .and_then(|rate| burn::projected_exhaustion(s.reading.percent, rate, now)),
                }
            })
            .collect();
        windows.sort_by(|a, b| b.percent.total_cmp(&a.percent));
        windows
    }

    /// The families that may not be used: their own window used up, or refused.
    fn caps(&self, windows: &[WindowView]) -> Vec<Cap> {
        let mut caps: BTreeMap<String, Cap> = BTreeMap::new();
        let mut cap = |family: &str, label: String, until: Option<DateTime<Utc>>, why: &str| {
            let entry = caps.entry(family.to_owned()).or_insert_with(|| Cap {
                family: family.to_owned(),
                label: label.clone(),
                until,
                reason: String::new(),
            });
            entry.until = entry.until.max(until);
            entry.reason = match entry.until {
                Some(until) => format!("{} {why}, resets {}", entry.label, clock(until)),
                None => format!("{} {why}", entry.label),
            };
        };
        for window in windows {
            let Some(family) = &window.scope else {
                continue;
            };
            if window.status == Some(LimitStatus::Rejected) || window.percent >= 100.0 {
                cap(
                    family,
                    window.label.clone(),
                    window.resets_at,
                    "cap reached",
                );
            }
        }
        for block in &self.blocks {
            if let Some(family) = &block.scope {
                let label = window_label(block.window.unwrap_or(Window::SevenDay), Some(family));
                cap(
                    family,
                    label,
                    Some(block.until),
                    "refused by Anthropic (429)",
                );
            }
        }
        caps.into_values().collect()
    }

    fn explain(&self, binding: &Stamped, level: QuotaLevel) -> String {
        let percent = binding.reading.percent;
        let mut text = format!("{} at {:.0}%", binding.reading.window.describe(), percent);
        if level == QuotaLevel::Normal {
            text.push_str(&format!(
                " (normal < {:.0}%)",
                threshold(&self.thresholds, QuotaLevel::Caution)
            ));
        } else if percent >= threshold(&self.thresholds, level) {
            text.push_str(&format!(
                " ({} ≥ {:.0}%)",
                level.name(),
                threshold(&self.thresholds, level)
            ));
        } else if binding.reading.status == Some(LimitStatus::Rejected) {
            text.push_str(" (used up)");
        } else {
            text.push_str(&format!(
                " (still {}: going down needs < {:.0}%)",
                level.name(),
                threshold(&self.thresholds, level) - self.thresholds.hysteresis
            ));
        }
        if let Some(reset) = binding.reading.resets_at {
            text.push_str(&format!(", resets {}", clock(reset)));
        }
        text
    }
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// A time as the user reads it: `14:20`, or `Mon 14:20` beyond a day.
pub fn clock(at: DateTime<Utc>) -> String {
    let local = at.with_timezone(&Local);
    if at - Utc::now() > chrono::Duration::hours(20) {
        local.format("%a %H:%M").to_string()
    } else {
        local.format("%H:%M").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const T: Thresholds = Thresholds {
        caution: 50.0,
        warning: 75.0,
        critical: 90.0,
        hysteresis: 3.0,
    };

    fn tracker() -> Tracker {
        Tracker::new(
            T,
            Freshness {
                headers: chrono::Duration::minutes(10),
                dashboard: chrono::Duration::minutes(3),
                usage_api: chrono::Duration::minutes(15),
            },
        )
    }

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_764_000_000 + secs, 0).unwrap()
    }

    fn reading(window: Window, percent: f64) -> Reading {
        Reading::shared(window, percent, None)
    }

    #[test]
    fn the_window_closest_to_its_limit_wins() {
        let mut tracker = tracker();
        tracker.observe(
            Source::Headers,
            &[
                reading(Window::FiveHour, 63.0),
                reading(Window::SevenDay, 81.0),
            ],
            t(0),
        );
        tracker.observe(Source::Dashboard, &[reading(Window::Dashboard, 40.0)], t(0));
        let snapshot = tracker.snapshot(t(1));
        assert_eq!(snapshot.state, QuotaState::Warning);
        assert_eq!(snapshot.percent, Some(81.0));
        assert_eq!(snapshot.window, Some(Window::SevenDay));
        assert_eq!(snapshot.source, Some(Source::Headers));
        assert!(
            snapshot
                .reason
                .starts_with("7d window at 81% (warning ≥ 75%)"),
            "{}",
            snapshot.reason
        );
        assert_eq!(snapshot.readings.len(), 3);
    }

    #[test]
    fn readings_expire_and_then_the_state_is_unknown() {
        let mut tracker = tracker();
        tracker.observe(Source::Dashboard, &[reading(Window::Dashboard, 55.0)], t(0));
        tracker.observe(Source::Headers, &[reading(Window::FiveHour, 20.0)], t(0));
        assert_eq!(tracker.snapshot(t(60)).state, QuotaState::Caution);
        // The dashboard reading is stale after 3 minutes; the header one remains.
        let snapshot = tracker.snapshot(t(181));
        assert_eq!(snapshot.state, QuotaState::Normal);
        assert_eq!(snapshot.window, Some(Window::FiveHour));
        assert_eq!(tracker.next_deadline(), Some(t(600)));
        let snapshot = tracker.snapshot(t(601));
        assert_eq!(snapshot.state, QuotaState::Unknown);
        assert_eq!(snapshot.percent, None);
        assert_eq!(snapshot.state.level(), QuotaLevel::Normal);
    }

    #[test]
    fn a_restart_takes_up_what_the_last_run_knew() {
        let mut before = tracker();
        before.observe(
            Source::Headers,
            &[Reading::shared(Window::SevenDay, 60.0, Some(t(7200)))],
            t(0),
        );
        before.rate_limited(t(3600));
        before.rejected(Rejection {
            scope: Some("opus".to_owned()),
            until: t(5400),
            window: Some(Window::SevenDay),
        });
        let written = before.snapshot(t(10));
        let text = serde_json::to_string(&written).unwrap();

        let mut after = tracker();
        after.restore(&serde_json::from_str(&text).unwrap(), t(20));
        let snapshot = after.snapshot(t(20));
        assert_eq!(snapshot.state, QuotaState::Critical);
        assert_eq!(snapshot.rate_limited_until, Some(t(3600)));
        assert!(snapshot.cap_for("claude-opus-5-5").is_some());
        // The reading keeps the time it arrived: stale after its ten minutes, as before.
        let later = after.snapshot(t(3700));
        assert_eq!(later.state, QuotaState::Unknown, "{}", later.reason);
        assert!(
            later.cap_for("claude-opus-5-5").is_some(),
            "the cap holds to 5400"
        );
        // A block whose reset passed while the proxy was down is gone.
        let mut late = tracker();
        late.restore(&written, t(6000));
        assert!(late.snapshot(t(6000)).caps.is_empty());
        assert_eq!(late.snapshot(t(6000)).rate_limited_until, None);
    }

    #[test]
    fn a_429_is_critical_until_its_reset_then_drops_at_once() {
        let mut tracker = tracker();
        tracker.observe(Source::Headers, &[reading(Window::FiveHour, 30.0)], t(0));
        tracker.rate_limited(t(120));
        let snapshot = tracker.snapshot(t(1));
        assert_eq!(snapshot.state, QuotaState::Critical);
        assert_eq!(snapshot.rate_limited_until, Some(t(120)));
        assert!(snapshot.reason.contains("429"));
        assert_eq!(tracker.next_deadline(), Some(t(120)));
        let snapshot = tracker.snapshot(t(120));
        assert_eq!(snapshot.state, QuotaState::Normal);
        assert_eq!(snapshot.rate_limited_until, None);
    }

    #[test]
    fn a_passed_window_reset_drops_the_reading() {
        let mut tracker = tracker();
        tracker.observe(
            Source::Headers,
            &[Reading::shared(Window::FiveHour, 95.0, Some(t(30)))],
            t(0),
        );
        assert_eq!(tracker.snapshot(t(10)).state, QuotaState::Critical);
        assert_eq!(tracker.snapshot(t(30)).state, QuotaState::Unknown);
    }

    #[test]
    fn hysteresis_holds_across_observations() {
        let mut tracker = tracker();
        let mut states = Vec::new();
        for (i, percent) in [89.0, 91.0, 88.0, 86.0].into_iter().enumerate() {
            tracker.observe(
                Source::Headers,
                &[reading(Window::FiveHour, percent)],
                t(i as i64),
            );
            states.push(tracker.snapshot(t(i as i64)).state);
        }
        assert_eq!(
            states,
            [
                QuotaState::Warning,
                QuotaState::Critical,
                QuotaState::Critical,
                QuotaState::Warning
            ]
        );
    }

    #[test]
    fn burn_rate_and_projection_are_exposed() {
        let mut tracker = tracker();
        for m in 0..=10 {
            tracker.observe(
                Source::Headers,
                &[Reading::shared(
                    Window::FiveHour,
                    70.0 + m as f64,
                    Some(t(4 * 3600)),
                )],
                t(m * 60),
            );
        }
        let snapshot = tracker.snapshot(t(600));
        assert_eq!(snapshot.burn_rate, Some(60.0));
        // 80% now, 20 points at 60 %/h: 20 minutes, well before the reset.
        assert_eq!(snapshot.projected_exhaustion, Some(t(600 + 20 * 60)));
        assert!(snapshot.exhausts_before_reset);
    }

    fn scoped(family: &str, percent: f64, status: LimitStatus, reset: i64) -> Reading {
        Reading {
            window: Window::SevenDay,
            scope: Some(family.to_owned()),
            percent,
            resets_at: Some(t(reset)),
            status: Some(status),
        }
    }

    #[test]
    fn a_family_cap_leaves_the_shared_state_alone() {
        let mut tracker = tracker();
        tracker.observe(
            Source::Headers,
            &[
                reading(Window::FiveHour, 42.0),
                reading(Window::SevenDay, 81.0),
                scoped("opus", 100.0, LimitStatus::Rejected, 86_400),
                scoped("sonnet", 30.0, LimitStatus::Allowed, 86_400),
            ],
            t(0),
        );
        let snapshot = tracker.snapshot(t(1));
        assert_eq!(
            snapshot.state,
            QuotaState::Warning,
            "the week at 81% decides"
        );
        assert_eq!(snapshot.windows.len(), 4);
        assert_eq!(snapshot.windows[0].label, "Opus week");
        assert_eq!(snapshot.caps.len(), 1);
        let cap = snapshot.cap_for("claude-opus-4-8").unwrap();
        assert_eq!(cap.until, Some(t(86_400)));
        assert!(
            cap.reason.starts_with("Opus week cap reached, resets"),
            "{}",
            cap.reason
        );
        assert!(snapshot.cap_for("claude-sonnet-5").is_none());
        // At its reset the cap lifts by itself.
        assert_eq!(tracker.next_deadline(), Some(t(600)));
        tracker.observe(
            Source::Headers,
            &[scoped("opus", 100.0, LimitStatus::Rejected, 700)],
            t(300),
        );
        assert!(tracker
            .snapshot(t(699))
            .cap_for("claude-opus-4-8")
            .is_some());
        assert!(tracker
            .snapshot(t(700))
            .cap_for("claude-opus-4-8")
            .is_none());
    }

    #[test]
    fn a_scoped_429_blocks_its_family_and_a_session_429_everything() {
        let mut tracker = tracker();
        tracker.observe(Source::Headers, &[reading(Window::FiveHour, 30.0)], t(0));
        tracker.rejected(Rejection {
            scope: Some("opus".to_owned()),
            until: t(3600),
            window: Some(Window::SevenDay),
        });
        let snapshot = tracker.snapshot(t(1));
        assert_eq!(snapshot.state, QuotaState::Normal);
        assert!(snapshot.cap_for("claude-opus-4-8").is_some());
        tracker.rejected(Rejection {
            scope: None,
            until: t(120),
            window: Some(Window::FiveHour),
        });
        let snapshot = tracker.snapshot(t(2));
        assert_eq!(snapshot.state, QuotaState::Critical);
        assert_eq!(snapshot.critical_until(), Some(t(120)));
    }

    #[test]
    fn any_shared_window_running_out_before_its_reset_counts_for_the_prediction() {
        let mut tracker = tracker();
        for m in 0..=10 {
            tracker.observe(
                Source::Headers,
                &[
                    // The session is the fuller one but steady...
                    Reading::shared(Window::FiveHour, 60.0, Some(t(4 * 3600))),
                    // ...while the week climbs fast and resets in days.
                    Reading::shared(Window::SevenDay, 40.0 + m as f64, Some(t(5 * 86_400))),
                ],
                t(m * 60),
            );
        }
        let snapshot = tracker.snapshot(t(600));
        assert_eq!(snapshot.window, Some(Window::FiveHour));
        assert!(snapshot.exhausts_before_reset, "{:?}", snapshot.windows);
        let week = snapshot
            .windows
            .iter()
            .find(|w| w.window == Window::SevenDay)
            .unwrap();
        assert_eq!(week.burn_rate, Some(60.0));
    }

    #[test]
    fn extra_usage_is_critical_unless_allowed() {
        let mut tracker = tracker();
        let overage = || OverageReport {
            in_use: true,
            status: Some(LimitStatus::Allowed),
            percent: Some(10.0),
            resets_at: None,
            disabled_reason: None,
        };
        tracker.observe_overage(Source::Headers, overage(), t(0));
        let snapshot = tracker.snapshot(t(1));
        assert_eq!(snapshot.state, QuotaState::Critical);
        assert!(
            snapshot.reason.contains("extra usage"),
            "{}",
            snapshot.reason
        );
        assert!(snapshot.windows_line().contains("extra usage in use"));
        tracker.allow_extra_usage(true);
        tracker.observe_overage(Source::Headers, overage(), t(2));
        assert_ne!(tracker.snapshot(t(3)).state, QuotaState::Critical);
    }
}
