//! Percent used -> quota level, with hysteresis so a value wobbling around a threshold
//! does not flap the state (and the notifications) up and down.

use crate::config::Thresholds;
use crate::types::QuotaLevel;

/// The percent at which `level` begins.
pub fn threshold(thresholds: &Thresholds, level: QuotaLevel) -> f64 {
    match level {
        QuotaLevel::Normal => f64::NEG_INFINITY,
        QuotaLevel::Caution => thresholds.caution,
        QuotaLevel::Warning => thresholds.warning,
        QuotaLevel::Critical => thresholds.critical,
    }
}

/// The level `percent` falls in, ignoring history.
pub fn plain_level(thresholds: &Thresholds, percent: f64) -> QuotaLevel {
    QuotaLevel::ALL
        .iter()
        .copied()
        .rev()
        .find(|&level| percent >= threshold(thresholds, level))
        .unwrap_or(QuotaLevel::Normal)
}

/// The level after `previous`: up at once when a threshold is reached; down only once the
/// percent is `hysteresis` points below the threshold of the level being left.
pub fn next_level(
    thresholds: &Thresholds,
    previous: Option<QuotaLevel>,
    percent: f64,
) -> QuotaLevel {
    let plain = plain_level(thresholds, percent);
    let Some(previous) = previous else {
        return plain;
    };
    if plain >= previous {
        return plain;
    }
    // Going down: stay at the highest level up to `previous` whose threshold, less the
    // hysteresis, is still reached.
    QuotaLevel::ALL
        .iter()
        .copied()
        .rev()
        .filter(|&level| level <= previous)
        .find(|&level| percent >= threshold(thresholds, level) - thresholds.hysteresis)
        .unwrap_or(QuotaLevel::Normal)
        .max(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use QuotaLevel::*;

    const T: Thresholds = Thresholds {
        caution: 50.0,
        warning: 75.0,
        critical: 90.0,
        hysteresis: 3.0,
    };

    fn run(sequence: &[f64]) -> Vec<QuotaLevel> {
        let mut previous = None;
        sequence
            .iter()
            .map(|&p| {
                let level = next_level(&T, previous, p);
                previous = Some(level);
                level
            })
            .collect()
    }

    #[test]
    fn hysteresis_sequences() {
        let table: &[(&[f64], &[QuotaLevel])] = &[
            (
                &[89.0, 91.0, 88.0, 86.0],
                &[Warning, Critical, Critical, Warning],
            ),
            (
                &[10.0, 50.0, 49.0, 47.5, 46.9],
                &[Normal, Caution, Caution, Caution, Normal],
            ),
            (&[95.0, 40.0], &[Critical, Normal]),
            (&[95.0, 72.5], &[Critical, Warning]),
            (&[95.0, 71.9], &[Critical, Caution]),
            (
                &[74.0, 75.0, 74.9, 72.0, 71.99],
                &[Caution, Warning, Warning, Warning, Caution],
            ),
            (&[0.0, 100.0, 120.0], &[Normal, Critical, Critical]),
        ];
        for (sequence, expected) in table {
            assert_eq!(&run(sequence), expected, "{sequence:?}");
        }
    }

    #[test]
    fn without_history_the_plain_level_applies() {
        assert_eq!(next_level(&T, None, 88.0), Warning);
        assert_eq!(plain_level(&T, 49.99), Normal);
        assert_eq!(plain_level(&T, 90.0), Critical);
    }
}
