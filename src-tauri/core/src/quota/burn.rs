//! Burn rate: how fast the binding window fills, and when it would run out at that pace.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use super::Window;

/// A window and its scope.
pub type WindowKey = (Window, Option<String>);

/// How far back the rate looks.
pub const RATE_SPAN: chrono::Duration = chrono::Duration::minutes(30);
/// A drop of more than this many points means the window was reset: older points no
/// longer describe it.
const RESET_DROP: f64 = 5.0;

/// Recent readings of every window, oldest first.
#[derive(Debug, Default)]
pub struct History {
    points: VecDeque<(DateTime<Utc>, WindowKey, f64)>,
}

impl History {
    pub fn push(&mut self, at: DateTime<Utc>, window: WindowKey, percent: f64) {
        self.points.push_back((at, window, percent));
        while self
            .points
            .front()
            .is_some_and(|(t, _, _)| at - *t > RATE_SPAN * 2)
        {
            self.points.pop_front();
        }
    }

    /// Percent per hour over the last 30 minutes for `window` (least squares), or `None`
    /// with fewer than two readings a minute apart.
    pub fn rate(&self, window: &WindowKey, now: DateTime<Utc>) -> Option<f64> {
        let mut points: Vec<(f64, f64)> = Vec::new();
        let mut last = None;
        for (at, w, percent) in &self.points {
            let (at, percent) = (*at, *percent);
            if w != window || now - at > RATE_SPAN {
                continue;
            }
            if last.is_some_and(|prev: f64| prev - percent > RESET_DROP) {
                points.clear();
            }
            last = Some(percent);
            let hours = (at - now).num_milliseconds() as f64 / 3_600_000.0;
            points.push((hours, percent));
        }
        let first = points.first()?;
        let span = points.last()?.0 - first.0;
        if points.len() < 2 || span < 1.0 / 60.0 {
            return None;
        }
        let n = points.len() as f64;
        let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
        let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
        let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
        (sxx > 0.0).then(|| sxy / sxx)
    }
}

/// When `percent` reaches 100 at `rate` percent per hour; `None` when not rising.
pub fn projected_exhaustion(percent: f64, rate: f64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if rate <= 0.01 {
        return None;
    }
    if percent >= 100.0 {
        return Some(now);
    }
    let hours = (100.0 - percent) / rate;
    Some(crate::bounded::after(
        now,
        crate::bounded::secs(hours * 3600.0)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_764_000_000, 0).unwrap() + chrono::Duration::minutes(minutes)
    }

    #[test]
    fn steady_climb_projects_exhaustion() {
        let mut history = History::default();
        // 1 point per minute, +0.5 points per minute = 30 %/h.
        for m in 0..=20 {
            history.push(t(m), (Window::FiveHour, None), 60.0 + 0.5 * m as f64);
        }
        let rate = history.rate(&(Window::FiveHour, None), t(20)).unwrap();
        assert!((rate - 30.0).abs() < 1e-6, "{rate}");
        // 70% now, 30 points to go at 30 %/h: one hour.
        let when = projected_exhaustion(70.0, rate, t(20)).unwrap();
        assert_eq!(when, t(80));
    }

    #[test]
    fn other_windows_old_points_and_resets_are_ignored() {
        let mut history = History::default();
        history.push(t(0), (Window::SevenDay, None), 10.0);
        history.push(t(5), (Window::FiveHour, None), 95.0);
        history.push(t(6), (Window::FiveHour, None), 97.0);
        // Window reset: from 97% back to 2%, then a slow climb.
        history.push(t(10), (Window::FiveHour, None), 2.0);
        history.push(t(20), (Window::FiveHour, None), 3.0);
        let rate = history.rate(&(Window::FiveHour, None), t(20)).unwrap();
        assert!((rate - 6.0).abs() < 1e-6, "{rate}");
        // Older than 30 minutes: not counted.
        assert_eq!(history.rate(&(Window::FiveHour, None), t(60)), None);
        assert_eq!(history.rate(&(Window::Dashboard, None), t(20)), None);
    }

    #[test]
    fn no_projection_when_flat_or_falling() {
        assert_eq!(projected_exhaustion(50.0, 0.0, t(0)), None);
        assert_eq!(projected_exhaustion(50.0, -3.0, t(0)), None);
        assert_eq!(projected_exhaustion(101.0, 1.0, t(0)), Some(t(0)));
    }
}
