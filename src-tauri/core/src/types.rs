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

/// Why a request is Claude's alone: what it asks for runs at Anthropic. Such a request
/// stays on Claude while Claude can take it; elsewhere it is answered without that part,
/// and the answer says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaudeOnly {
    /// A server tool (`web_search_*`, `web_fetch_*`, `code_execution_*`, …): Claude Code's
    /// WebSearch sends one.
    ServerTool,
    /// Auto mode's `safeguards`: its safety check runs at Anthropic.
    AutoMode,
    /// Auto mode's own security-monitor request (older Claude Code).
    SecurityMonitor,
    /// `mcp_servers`: Anthropic's MCP connector.
    McpServers,
    /// `container`: Anthropic's code-execution container.
    Container,
    /// Tool search's `tool_reference` blocks: Anthropic loads the tools they name.
    ToolReference,
}

impl ClaudeOnly {
    pub fn describe(self) -> &'static str {
        match self {
            ClaudeOnly::ServerTool => {
                "a server tool only Anthropic runs (web search, web fetch, code execution)"
            }
            ClaudeOnly::AutoMode => "auto mode, whose safety check runs at Anthropic",
            ClaudeOnly::SecurityMonitor => "auto mode's security monitor",
            ClaudeOnly::McpServers => "Anthropic's MCP connector",
            ClaudeOnly::Container => "Anthropic's code-execution container",
            ClaudeOnly::ToolReference => "tool search, which Anthropic resolves",
        }
    }
}
