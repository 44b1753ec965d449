//! The shared vocabulary: how demanding a request is, and how much quota is left. Every
//! layer speaks these — the config's decision matrix is indexed by them — so they sit at
//! the bottom and import nothing of the crate. Their names come from `strum`, the same
//! as serde's.

use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr, VariantArray};

/// How demanding a request is: the decision matrix's column.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    EnumString,
    IntoStaticStr,
    VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Complexity {
    Simple = 0,
    Medium = 1,
    Complex = 2,
}

impl Complexity {
    pub const ALL: &'static [Complexity] = Self::VARIANTS;

    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// The four levels of the decision matrix, ordered from relaxed to critical.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    EnumString,
    IntoStaticStr,
    VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum QuotaLevel {
    Normal = 0,
    Caution = 1,
    Warning = 2,
    Critical = 3,
}

impl QuotaLevel {
    pub const ALL: &'static [QuotaLevel] = Self::VARIANTS;

    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The next level up (critical stays critical).
    pub fn up(self) -> QuotaLevel {
        QuotaLevel::VARIANTS
            .get(self as usize + 1)
            .copied()
            .unwrap_or(QuotaLevel::Critical)
    }
}

/// The quota state as shown to users: a level, or `unknown` when no reading is fresh
/// (routed as `normal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, EnumString, IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum QuotaState {
    Unknown,
    Normal,
    Caution,
    Warning,
    Critical,
}

impl QuotaState {
    pub fn name(self) -> &'static str {
        self.into()
    }

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

impl From<QuotaLevel> for QuotaState {
    fn from(level: QuotaLevel) -> Self {
        match level {
            QuotaLevel::Normal => QuotaState::Normal,
            QuotaLevel::Caution => QuotaState::Caution,
            QuotaLevel::Warning => QuotaState::Warning,
            QuotaLevel::Critical => QuotaState::Critical,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for complexity in Complexity::VARIANTS {
            assert_eq!(
                complexity.name().parse::<Complexity>().ok(),
                Some(*complexity)
            );
        }
        for level in QuotaLevel::VARIANTS {
            assert_eq!(level.name().parse::<QuotaLevel>().ok(), Some(*level));
        }
        assert!("extreme".parse::<Complexity>().is_err());
        assert_eq!(
            "critical".parse::<QuotaState>().ok(),
            Some(QuotaState::Critical)
        );
        assert_eq!(QuotaLevel::Warning.up(), QuotaLevel::Critical);
        assert_eq!(QuotaLevel::Critical.up(), QuotaLevel::Critical);
    }
}
