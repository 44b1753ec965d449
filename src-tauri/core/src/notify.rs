//! What the desktop notifications say, and when: the decision is made here, in the core,
//! so it is tested without a desktop; the tray app only shows what comes out.
//!
//! Quota state changes (up and down) say what changed and what routing does now. A value
//! wobbling across a threshold does not storm: after a notification of a kind, the next
//! waits out the debounce window, and only the latest state is told then.
//!
//! Imports: `config`, `quota`, `router` (its demotions), `types`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::{Config, Target};
use crate::quota::{CapEvent, QuotaEvent};
use crate::types::{Complexity, QuotaState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Quota,
    Provider,
    Queue,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub kind: Kind,
    pub title: String,
    pub body: String,
}

/// "Complex work waits; simple and medium work go to lmstudio."
pub fn routing_summary(config: &Config, state: QuotaState) -> String {
    let level = state.level();
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for complexity in Complexity::ALL.iter().copied() {
        let first = config.routing.matrix.cell(level, complexity).first();
        let what = match first {
            Some(Target::Queue) => "waits for the quota".to_owned(),
            Some(target) => format!("goes to {target}"),
            None => "goes to the fallback".to_owned(),
        };
        match groups.iter_mut().find(|(w, _)| *w == what) {
            Some((_, classes)) => classes.push(complexity.name()),
            None => groups.push((what, vec![complexity.name()])),
        }
    }
    let parts: Vec<String> = groups
        .into_iter()
        .map(|(what, classes)| {
            let who = match classes.as_slice() {
                [one] => format!("{one} work"),
                [a, b] => format!("{a} and {b} work"),
                _ => "all work".to_owned(),
            };
            let what = if classes.len() > 1 {
                what.replacen("goes", "go", 1).replacen("waits", "wait", 1)
            } else {
                what
            };
            format!("{who} {what}")
        })
        .collect();
    let mut text = parts.join("; ");
    if let Some(first) = text.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    text.push('.');
    text
}

/// The notification for a change of quota state.
pub fn quota_notification(event: &QuotaEvent, config: &Config) -> Notification {
    let snapshot = &event.snapshot;
    let title = match (event.to, snapshot.percent) {
        (QuotaState::Unknown, _) => "Claude quota: no fresh reading".to_owned(),
        (state, Some(percent)) => {
            let window = snapshot
                .window
                .map(|w| w.describe().replace(" window", ""))
                .unwrap_or_default();
            format!("Claude {window} at {percent:.0}% — {}", state.name())
        }
        (state, None) => format!("Claude quota — {}", state.name()),
    };
    let mut body = routing_summary(config, event.to);
    if let Some(reset) = snapshot.rate_limited_until.or(snapshot.resets_at) {
        body.push_str(&format!(" Resets {}.", crate::quota::tracker::clock(reset)));
    }
    Notification {
        kind: Kind::Quota,
        title,
        body,
    }
}

/// A model family capped (or free again): what changed, and where its work goes now.
pub fn cap_notification(event: &CapEvent, config: &Config) -> Notification {
    let cap = &event.cap;
    if !event.reached {
        return Notification {
            kind: Kind::Quota,
            title: format!("{} available again", cap.label),
            body: format!("{} requests go to Claude as before.", cap.family),
        };
    }
    // Where the family's work goes: the next Claude target of the normal complex cell
    // that is not capped, else whatever comes next.
    let next = config
        .routing
        .matrix
        .cell(crate::types::QuotaLevel::Normal, Complexity::Complex)
        .iter()
        .chain(&config.routing.fallback)
        .find(|target| {
            !matches!(target, Target::Queue) && !target.to_string().contains(cap.family.as_str())
        })
        .map_or_else(|| "the next target".to_owned(), ToString::to_string);
    let until = cap
        .until
        .map(|at| format!(" until {}", crate::quota::tracker::clock(at)))
        .unwrap_or_default();
    Notification {
        kind: Kind::Quota,
        title: format!("{} cap reached", cap.label),
        body: format!(
            "{} work goes to {next}{until}; the rest of Claude keeps working.",
            cap.family
        ),
    }
}

/// The queue let go of requests that waited for the quota.
/// A target taken off a class of work for answers that did not work.
pub fn demotion_notification(demotion: &crate::router::Demotion) -> Notification {
    Notification {
        kind: Kind::Provider,
        title: format!(
            "{} taken off {} work",
            demotion.provider,
            demotion.complexity.name()
        ),
        body: format!(
            "{}. It is tried again at {}; until then that work goes to the next target.",
            demotion
                .why
                .split_once(": ")
                .map_or(demotion.why.as_str(), |(_, evidence)| evidence),
            crate::quota::tracker::clock(demotion.until)
        ),
    }
}

pub fn released_notification(count: usize) -> Notification {
    Notification {
        kind: Kind::Queue,
        title: format!(
            "{count} waiting request{} released",
            if count == 1 { "" } else { "s" }
        ),
        body: "The quota left critical: work that waited for it is running now.".to_owned(),
    }
}

/// Holds back notifications that come too fast; tells only the latest of a burst.
pub struct Debouncer {
    window: Duration,
    last_sent: std::collections::HashMap<Kind, Instant>,
    pending: std::collections::HashMap<Kind, Notification>,
    last_quota_state: Option<QuotaState>,
    pending_state: Option<QuotaState>,
}

impl Debouncer {
    pub fn new(window: Duration) -> Self {
        Debouncer {
            window,
            last_sent: Default::default(),
            pending: Default::default(),
            last_quota_state: None,
            pending_state: None,
        }
    }

    /// A quota change: shown now, or held until the window passes.
    pub fn quota(
        &mut self,
        event: &QuotaEvent,
        config: &Config,
        now: Instant,
    ) -> Option<Notification> {
        let notification = quota_notification(event, config);
        self.offer(notification, now, Some(event.to))
    }

    /// A model family capped or freed: its own notification (not debounced with the
    /// state's: it says something else).
    pub fn cap(&mut self, event: &CapEvent, config: &Config) -> Notification {
        cap_notification(event, config)
    }

    pub fn other(&mut self, notification: Notification, now: Instant) -> Option<Notification> {
        self.offer(notification, now, None)
    }

    fn offer(
        &mut self,
        notification: Notification,
        now: Instant,
        state: Option<QuotaState>,
    ) -> Option<Notification> {
        let kind = notification.kind;
        let recent = self
            .last_sent
            .get(&kind)
            .is_some_and(|at| now.duration_since(*at) < self.window);
        if recent {
            self.pending.insert(kind, notification);
            if let Some(state) = state {
                self.pending_state = Some(state);
            }
            return None;
        }
        self.pending.remove(&kind);
        if let Some(state) = state {
            self.last_quota_state = Some(state);
        }
        self.last_sent.insert(kind, now);
        Some(notification)
    }

    /// Held notifications whose window has passed (a quota state that wobbled back to
    /// the one already told is dropped).
    pub fn due(&mut self, now: Instant) -> Vec<Notification> {
        let mut out = Vec::new();
        let kinds: Vec<Kind> = self.pending.keys().copied().collect();
        for kind in kinds {
            let ready = self
                .last_sent
                .get(&kind)
                .is_none_or(|at| now.duration_since(*at) >= self.window);
            if !ready {
                continue;
            }
            let Some(notification) = self.pending.remove(&kind) else {
                continue;
            };
            if kind == Kind::Quota {
                if self.pending_state == self.last_quota_state {
                    continue;
                }
                self.last_quota_state = self.pending_state;
            }
            self.last_sent.insert(kind, now);
            out.push(notification);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_TOML;
    use crate::quota::{QuotaSnapshot, Window};

    fn event(from: QuotaState, to: QuotaState, percent: f64) -> QuotaEvent {
        QuotaEvent {
            from,
            to,
            snapshot: QuotaSnapshot {
                state: to,
                percent: Some(percent),
                window: Some(Window::FiveHour),
                ..QuotaSnapshot::default()
            },
        }
    }

    fn config() -> Config {
        Config::from_toml_with_env(DEFAULT_TOML, &|_| None).unwrap()
    }

    #[test]
    fn the_message_says_what_changed_and_what_routing_does() {
        let n = quota_notification(
            &event(QuotaState::Warning, QuotaState::Critical, 91.0),
            &config(),
        );
        assert_eq!(n.title, "Claude 5h at 91% — critical");
        assert_eq!(
            n.body,
            "Simple and medium work go to lmstudio; complex work waits for the quota."
        );
        let n = quota_notification(
            &event(QuotaState::Caution, QuotaState::Normal, 40.0),
            &config(),
        );
        assert_eq!(
            n.body,
            "Simple work goes to claude:haiku; medium work goes to claude:sonnet; complex work goes to claude:opus."
        );
    }

    #[test]
    fn a_wobbling_value_does_not_storm() {
        let config = config();
        let mut debouncer = Debouncer::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let first = debouncer.quota(
            &event(QuotaState::Warning, QuotaState::Critical, 90.0),
            &config,
            t0,
        );
        assert!(first.is_some());
        // Down and up again within the window: held, then dropped (nothing changed).
        let s = Duration::from_secs;
        assert!(debouncer
            .quota(
                &event(QuotaState::Critical, QuotaState::Warning, 86.0),
                &config,
                t0 + s(5)
            )
            .is_none());
        assert!(debouncer
            .quota(
                &event(QuotaState::Warning, QuotaState::Critical, 90.0),
                &config,
                t0 + s(9)
            )
            .is_none());
        assert!(debouncer.due(t0 + s(61)).is_empty());
        // A real change within a window is told once the window has passed.
        assert!(debouncer
            .quota(
                &event(QuotaState::Critical, QuotaState::Warning, 80.0),
                &config,
                t0 + s(70)
            )
            .is_some());
        assert!(debouncer
            .quota(
                &event(QuotaState::Warning, QuotaState::Caution, 60.0),
                &config,
                t0 + s(80)
            )
            .is_none());
        assert!(debouncer.due(t0 + s(100)).is_empty(), "window not over yet");
        let due = debouncer.due(t0 + s(131));
        assert_eq!(due.len(), 1);
        assert!(due[0].title.ends_with("caution"));
    }

    #[test]
    fn a_cap_reached_says_where_its_work_goes_and_a_lifted_one_says_so() {
        let config = Config::from_toml(DEFAULT_TOML).unwrap();
        let cap = crate::quota::Cap {
            family: "opus".into(),
            label: "Opus week".into(),
            until: None,
            reason: "Opus week cap reached".into(),
        };
        let reached = cap_notification(
            &CapEvent {
                cap: cap.clone(),
                reached: true,
            },
            &config,
        );
        assert_eq!(reached.title, "Opus week cap reached");
        assert!(
            reached.body.starts_with("opus work goes to claude:sonnet"),
            "{}",
            reached.body
        );
        let lifted = cap_notification(
            &CapEvent {
                cap,
                reached: false,
            },
            &config,
        );
        assert_eq!(lifted.title, "Opus week available again");
    }
}
