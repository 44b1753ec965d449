//! The quota state machine: readings in, one snapshot out. Pure: time is a parameter, so
//! expiry, resets and burn rates are tested without waiting.

use std::collections::BTreeMap;

use chrono::{DateTime, Local, Utc};

use super::burn::{self, History};
use super::level::{next_level, threshold};
use super::{QuotaSnapshot, Reading, Source, Window};
use crate::config::Thresholds;
use crate::types::{QuotaLevel, QuotaState};

/// How long each kind of reading stays fresh.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    pub headers: chrono::Duration,
    pub dashboard: chrono::Duration,
    pub usage_api: chrono::Duration,
}

#[derive(Debug, Clone)]
struct Stamped {
    reading: Reading,
    source: Source,
    at: DateTime<Utc>,
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

#[derive(Debug)]
pub struct Tracker {
    thresholds: Thresholds,
    freshness: Freshness,
    readings: BTreeMap<Window, Stamped>,
    rate_limited_until: Option<DateTime<Utc>>,
    level: Option<QuotaLevel>,
    history: History,
}

impl Tracker {
    pub fn new(thresholds: Thresholds, freshness: Freshness) -> Self {
        Tracker {
            thresholds,
            freshness,
            readings: BTreeMap::new(),
            rate_limited_until: None,
            level: None,
            history: History::default(),
        }
    }

    /// New thresholds or freshness after a config edit.
    pub fn reconfigure(&mut self, thresholds: Thresholds, freshness: Freshness) {
        self.thresholds = thresholds;
        self.freshness = freshness;
    }

    pub fn observe(&mut self, source: Source, readings: &[Reading], now: DateTime<Utc>) {
        for reading in readings {
            self.history.push(now, reading.window, reading.percent);
            self.readings.insert(
                reading.window,
                Stamped {
                    reading: reading.clone(),
                    source,
                    at: now,
                },
            );
        }
    }

    /// A 429 from Anthropic: critical until `until`, whatever the readings say.
    pub fn rate_limited(&mut self, until: DateTime<Utc>) {
        self.rate_limited_until = Some(self.rate_limited_until.map_or(until, |u| u.max(until)));
    }

    fn ttl(&self, source: Source) -> chrono::Duration {
        self.freshness.ttl(source)
    }

    /// When the snapshot next changes by itself (a reading expires, a reset passes).
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let expiries = self.readings.values().map(|s| s.at + self.ttl(s.source));
        let resets = self.readings.values().filter_map(|s| s.reading.resets_at);
        expiries.chain(resets).chain(self.rate_limited_until).min()
    }

    pub fn snapshot(&mut self, now: DateTime<Utc>) -> QuotaSnapshot {
        let freshness = self.freshness;
        self.readings
            .retain(|_, s| now - s.at < freshness.ttl(s.source));
        // A window whose reset time has passed no longer says anything about the quota.
        self.readings
            .retain(|_, s| s.reading.resets_at.is_none_or(|reset| reset > now));
        if self.rate_limited_until.is_some_and(|until| until <= now) {
            self.rate_limited_until = None;
        }

        let binding = self
            .readings
            .values()
            .max_by(|a, b| a.reading.percent.total_cmp(&b.reading.percent))
            .cloned();
        let level = binding
            .as_ref()
            .map(|s| next_level(&self.thresholds, self.level, s.reading.percent));
        self.level = level;

        let burn_rate = binding
            .as_ref()
            .and_then(|s| self.history.rate(s.reading.window, now));
        let projected_exhaustion = match (&binding, burn_rate) {
            (Some(s), Some(rate)) => burn::projected_exhaustion(s.reading.percent, rate, now),
            _ => None,
        };
        let exhausts_before_reset = match (projected_exhaustion, &binding) {
            (Some(when), Some(s)) => s.reading.resets_at.is_none_or(|reset| when < reset),
            _ => false,
        };

        let mut snapshot = QuotaSnapshot {
            state: level.map_or(QuotaState::Unknown, QuotaState::from),
            percent: binding.as_ref().map(|s| round1(s.reading.percent)),
            source: binding.as_ref().map(|s| s.source),
            window: binding.as_ref().map(|s| s.reading.window),
            resets_at: binding.as_ref().and_then(|s| s.reading.resets_at),
            burn_rate: burn_rate.map(round1),
            projected_exhaustion,
            exhausts_before_reset,
            rate_limited_until: self.rate_limited_until,
            updated_at: now,
            reason: String::new(),
            readings: self
                .readings
                .values()
                .map(|s| super::ReadingView {
                    window: s.reading.window,
                    source: s.source,
                    percent: round1(s.reading.percent),
                    resets_at: s.reading.resets_at,
                    at: s.at,
                })
                .collect(),
        };
        snapshot.reason = match (self.rate_limited_until, &binding, level) {
            (Some(until), _, _) => {
                snapshot.state = QuotaState::Critical;
                format!(
                    "Anthropic answered 429 (rate limited) until {}",
                    clock(until)
                )
            }
            (None, Some(s), Some(level)) => self.explain(s, level),
            _ => "no fresh quota reading; routing as normal".to_owned(),
        };
        snapshot
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
        Reading {
            window,
            percent,
            resets_at: None,
        }
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
            &[Reading {
                window: Window::FiveHour,
                percent: 95.0,
                resets_at: Some(t(30)),
            }],
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
                &[Reading {
                    window: Window::FiveHour,
                    percent: 70.0 + m as f64,
                    resets_at: Some(t(4 * 3600)),
                }],
                t(m * 60),
            );
        }
        let snapshot = tracker.snapshot(t(600));
        assert_eq!(snapshot.burn_rate, Some(60.0));
        // 80% now, 20 points at 60 %/h: 20 minutes, well before the reset.
        assert_eq!(snapshot.projected_exhaustion, Some(t(600 + 20 * 60)));
        assert!(snapshot.exhausts_before_reset);
    }
}
