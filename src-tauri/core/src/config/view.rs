//! The config as JSON, for the settings page and `GET /api/config`: what was validated,
//! durations in seconds, targets as written, and of every key only whether it is set.

use std::time::Duration;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::{Credentials, Matrix, Secret, Target};
use crate::types::{Complexity, QuotaLevel};

pub(super) fn secs<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// A secret is never shown: only whether there is one.
pub(super) fn is_set<S: Serializer>(
    secret: &Option<Secret>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_bool(secret.is_some())
}

impl Serialize for Credentials {
    /// `"client"`, `"none"`, or `{"env": "XAI_API_KEY", "set": true}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Credentials::PassThrough => serializer.serialize_str("client"),
            Credentials::None => serializer.serialize_str("none"),
            Credentials::Env { var, key } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("env", var)?;
                map.serialize_entry("set", &key.is_some())?;
                map.end()
            }
        }
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Serialize for Matrix {
    /// `{"normal": {"simple": ["claude:haiku"], …}, …}`, as in the file.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut rows = serializer.serialize_map(Some(QuotaLevel::ALL.len()))?;
        for level in QuotaLevel::ALL.iter().copied() {
            let row: std::collections::BTreeMap<&str, &[Target]> = Complexity::ALL
                .iter()
                .map(|complexity| (complexity.name(), self.cell(level, *complexity)))
                .collect();
            rows.serialize_entry(level.name(), &row)?;
        }
        rows.end()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, DEFAULT_TOML};

    #[test]
    fn the_view_shows_what_was_validated_and_no_key() {
        let lookup = |var: &str| (var == "XAI_API_KEY").then(|| "xai-secret-123".to_owned());
        let config = Config::from_toml_with_env(DEFAULT_TOML, &lookup).unwrap();
        let view = serde_json::to_value(&config).unwrap();
        assert_eq!(
            view["routing"]["matrix"]["critical"]["complex"],
            serde_json::json!(["queue", "lmstudio"])
        );
        assert_eq!(view["routing"]["fallback"], serde_json::json!(["grok"]));
        assert_eq!(view["quota"]["thresholds"]["critical"], 90.0);
        assert_eq!(view["queue"]["max_wait"], 300.0);
        let grok = &view["providers"][2];
        assert_eq!(
            grok["credentials"],
            serde_json::json!({"env": "XAI_API_KEY", "set": true})
        );
        assert!(!view.to_string().contains("xai-secret-123"));
    }
}
