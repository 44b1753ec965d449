//! Claude's model ids, read: which family a model is of (`claude-opus-5-5` → Opus), how
//! the families rank, which generation it is, and its name in words ("Opus 5.5").
//! Anthropic names models `claude-<family>-<major>[-<minor>][-<date>]` (and, before 4,
//! `claude-<major>-<minor>-<family>-<date>`).
//!
//! The bottom layer: imports nothing of the crate.

use std::fmt;

/// A family of Claude models, lowest first: the order is their rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Haiku,
    Sonnet,
    Opus,
    /// Above Opus (`claude-fable-5-2`, the top model).
    Fable,
}

impl Family {
    pub const ALL: [Family; 4] = [Family::Haiku, Family::Sonnet, Family::Opus, Family::Fable];

    /// As it appears in model ids and tier names: `opus`.
    pub fn id(self) -> &'static str {
        match self {
            Family::Haiku => "haiku",
            Family::Sonnet => "sonnet",
            Family::Opus => "opus",
            Family::Fable => "fable",
        }
    }

    /// The family a tier name or model id names, if any.
    pub fn of(model: &str) -> Option<Family> {
        let lower = model.to_ascii_lowercase();
        Family::ALL.into_iter().find(|family| {
            lower
                .split(['-', '.', '_', ':', '/', ' '])
                .any(|part| part == family.id())
        })
    }

    fn word(self) -> &'static str {
        match self {
            Family::Haiku => "Haiku",
            Family::Sonnet => "Sonnet",
            Family::Opus => "Opus",
            Family::Fable => "Fable",
        }
    }
}

/// A generation, e.g. 5.5 (`major`, `minor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32) -> Version {
        Version { major, minor }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.minor == 0 {
            write!(f, "{}", self.major)
        } else {
            write!(f, "{}.{}", self.major, self.minor)
        }
    }
}

/// A Claude model id, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    pub family: Family,
    pub version: Option<Version>,
}

impl Model {
    /// Reads a Claude model id; `None` for anything that is not one.
    pub fn parse(id: &str) -> Option<Model> {
        let lower = id.to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('-').collect();
        let family_at = parts.iter().position(|p| Family::of(p).is_some())?;
        let family = Family::of(parts[family_at])?;
        // A version number is one or two short numbers; a date (8 digits) is not one.
        let numbers = |run: &[&str]| -> Vec<u32> {
            run.iter()
                .take_while(|p| p.len() <= 2 && p.chars().all(|c| c.is_ascii_digit()))
                .filter_map(|p| p.parse().ok())
                .collect()
        };
        let after = numbers(&parts[family_at + 1..]);
        let before: Vec<u32> = {
            let run: Vec<&str> = parts[..family_at]
                .iter()
                .rev()
                .take_while(|p| p.chars().all(|c| c.is_ascii_digit()) && p.len() <= 2)
                .copied()
                .collect();
            run.iter().rev().filter_map(|p| p.parse().ok()).collect()
        };
        let digits = if after.is_empty() { before } else { after };
        let version = digits.first().map(|&major| Version {
            major,
            minor: digits.get(1).copied().unwrap_or(0),
        });
        Some(Model { family, version })
    }

    /// "Opus 5.5"; "Opus" when the id names no version.
    pub fn name(&self) -> String {
        match self.version {
            Some(version) => format!("{} {version}", self.family.word()),
            None => self.family.word().to_owned(),
        }
    }
}

/// A model id in words where it is Claude's ("Opus 5.5"), else as it is.
pub fn display_name(id: &str) -> String {
    Model::parse(id).map_or_else(|| id.to_owned(), |m| m.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_of_every_naming_scheme_are_read() {
        let read = |id: &str| Model::parse(id).map(|m| (m.family, m.version));
        assert_eq!(
            read("claude-opus-5-5"),
            Some((Family::Opus, Some(Version::new(5, 5))))
        );
        assert_eq!(
            read("claude-fable-5-2"),
            Some((Family::Fable, Some(Version::new(5, 2))))
        );
        assert_eq!(
            read("claude-sonnet-5"),
            Some((Family::Sonnet, Some(Version::new(5, 0))))
        );
        assert_eq!(
            read("claude-haiku-4-5-20251001"),
            Some((Family::Haiku, Some(Version::new(4, 5))))
        );
        assert_eq!(
            read("claude-3-5-sonnet-20241022"),
            Some((Family::Sonnet, Some(Version::new(3, 5))))
        );
        assert_eq!(
            read("claude-opus-4-8"),
            Some((Family::Opus, Some(Version::new(4, 8))))
        );
        assert_eq!(read("qwen/qwen3-coder-30b"), None);
        assert_eq!(read("opus"), Some((Family::Opus, None)));
        assert_eq!(display_name("claude-sonnet-5-5"), "Sonnet 5.5");
        assert_eq!(display_name("local-model"), "local-model");
        assert!(Family::Fable > Family::Opus && Family::Opus > Family::Sonnet);
    }
}
