//! `[notifications]`: which kinds of desktop notification to show, and how often.

use serde::{Deserialize, Serialize};

/// `[notifications]`: which kinds to show, and the debounce window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    pub quota: bool,
    pub providers: bool,
    pub queue: bool,
    pub debounce_secs: u64,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            quota: true,
            providers: true,
            queue: true,
            debounce_secs: 60,
        }
    }
}
