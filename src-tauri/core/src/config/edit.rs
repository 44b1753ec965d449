//! Edits to the config file that keep the user's comments and layout (`toml_edit`).
//!
//! The settings window sends changes as dotted keys (`routing.matrix.caution.simple`,
//! `quota.thresholds.caution`, `providers.lmstudio.model`) with JSON values, and whole
//! providers to add or remove. The result is validated before anything is written.

use serde::Deserialize;
use serde_json::Value as Json;
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigEdit {
    /// Dotted key -> new value (`null` removes the key).
    #[serde(default)]
    pub set: serde_json::Map<String, Json>,
    /// New `[[providers]]` entries (objects with `name`, `kind`, `base_url`, …).
    #[serde(default)]
    pub add_providers: Vec<serde_json::Map<String, Json>>,
    /// Names of providers to remove.
    #[serde(default)]
    pub remove_providers: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EditError {
    #[error("the config file is not valid TOML: {0}")]
    Parse(String),
    #[error("{key}: {reason}")]
    Key { key: String, reason: String },
}

/// Applies `edit` to the TOML `text`, returning the new text.
pub fn apply(text: &str, edit: &ConfigEdit) -> Result<String, EditError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::Parse(e.to_string()))?;
    for name in &edit.remove_providers {
        let providers = providers_mut(&mut doc)?;
        let before = providers.len();
        providers.retain(|t| t.get("name").and_then(Item::as_str) != Some(name.as_str()));
        if providers.len() == before {
            return Err(EditError::Key {
                key: format!("providers.{name}"),
                reason: "no such provider".into(),
            });
        }
    }
    for provider in &edit.add_providers {
        let mut table = Table::new();
        for (key, json) in provider {
            table.insert(key, Item::Value(to_toml(key, json)?));
        }
        providers_mut(&mut doc)?.push(table);
    }
    for (key, json) in &edit.set {
        set(&mut doc, key, json)?;
    }
    Ok(doc.to_string())
}

fn providers_mut(doc: &mut DocumentMut) -> Result<&mut ArrayOfTables, EditError> {
    if doc.get("providers").is_none() {
        doc.insert("providers", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    doc.get_mut("providers")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| EditError::Key {
            key: "providers".into(),
            reason: "is not a list of [[providers]] tables".into(),
        })
}

fn set(doc: &mut DocumentMut, key: &str, json: &Json) -> Result<(), EditError> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(EditError::Key {
            key: key.into(),
            reason: "is not a dotted key".into(),
        });
    }
    // providers.<name>.<field>
    if parts[0] == "providers" {
        let [_, name, field] = parts[..] else {
            return Err(EditError::Key {
                key: key.into(),
                reason: "provider keys look like providers.<name>.<field>".into(),
            });
        };
        let providers = providers_mut(doc)?;
        let table = providers
            .iter_mut()
            .find(|t| t.get("name").and_then(Item::as_str) == Some(name))
            .ok_or_else(|| EditError::Key {
                key: key.into(),
                reason: format!("no provider named {name:?}"),
            })?;
        if json.is_null() {
            table.remove(field);
        } else {
            table.insert(field, Item::Value(to_toml(key, json)?));
        }
        return Ok(());
    }
    let (last, path) = parts.split_last().ok_or_else(|| EditError::Key {
        key: key.into(),
        reason: "is empty".into(),
    })?;
    let mut item: &mut Item = doc.as_item_mut();
    for part in path {
        let like = item.as_table_like_mut().ok_or_else(|| EditError::Key {
            key: key.into(),
            reason: format!("{part:?} is inside a value that is not a table"),
        })?;
        if like.get(part).is_none() {
            let mut table = Table::new();
            table.set_implicit(true);
            like.insert(part, Item::Table(table));
        }
        item = like.get_mut(part).ok_or_else(|| EditError::Key {
            key: key.into(),
            reason: "cannot be created".into(),
        })?;
    }
    let like = item.as_table_like_mut().ok_or_else(|| EditError::Key {
        key: key.into(),
        reason: "its parent is not a table".into(),
    })?;
    if json.is_null() {
        like.remove(last);
        return Ok(());
    }
    let new = to_toml(key, json)?;
    // Keep the comment and spacing around an existing value.
    match like.get_mut(last) {
        Some(Item::Value(existing)) => {
            let decor = existing.decor().clone();
            *existing = new;
            *existing.decor_mut() = decor;
        }
        _ => {
            like.insert(last, value(new));
        }
    }
    Ok(())
}

fn to_toml(key: &str, json: &Json) -> Result<Value, EditError> {
    Ok(match json {
        Json::String(s) => Value::from(s.as_str()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(f)) => Value::from(f),
            _ => {
                return Err(EditError::Key {
                    key: key.into(),
                    reason: format!("{n} is not a number TOML can hold"),
                })
            }
        },
        Json::Array(items) => {
            let mut array = Array::new();
            for item in items {
                array.push(to_toml(key, item)?);
            }
            Value::Array(array)
        }
        Json::Object(map) => {
            let mut table = InlineTable::new();
            for (k, v) in map {
                table.insert(k, to_toml(key, v)?);
            }
            Value::InlineTable(table)
        }
        Json::Null => {
            return Err(EditError::Key {
                key: key.into(),
                reason: "null is only allowed as a whole value (it removes the key)".into(),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TEXT: &str = "# my config\n[quota]\n# when to worry\nthresholds = { caution = 50, warning = 75, critical = 90 }\n\n[[providers]]\nname = \"lmstudio\" # local\nkind = \"openai\"\nbase_url = \"http://localhost:1234/v1\"\n\n[routing.matrix]\n# cheap first\ncaution = { simple = [\"lmstudio\"], medium = [\"lmstudio\"], complex = [\"lmstudio\"] }\n";

    fn edit(value: Json) -> ConfigEdit {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn edits_keep_comments() {
        let out = apply(
            TEXT,
            &edit(json!({"set": {
                "routing.matrix.caution.simple": ["lmstudio", "grok"],
                "quota.thresholds.caution": 55,
                "quota.poll_interval_secs": 30,
                "providers.lmstudio.model": "qwen3"
            }})),
        )
        .unwrap();
        assert!(out.contains("# my config"));
        assert!(out.contains("# when to worry"));
        assert!(out.contains("# cheap first"));
        assert!(out.contains("name = \"lmstudio\" # local"));
        assert!(out.contains("caution = 55"), "{out}");
        assert!(out.contains("simple = [\"lmstudio\", \"grok\"]"), "{out}");
        assert!(out.contains("poll_interval_secs = 30"));
        assert!(out.contains("model = \"qwen3\""));
    }

    #[test]
    fn providers_are_added_and_removed() {
        let out = apply(
            TEXT,
            &edit(json!({"remove_providers": ["lmstudio"],
                "add_providers": [{"name": "grok", "kind": "openai", "base_url": "https://api.x.ai/v1", "api_key_env": "XAI_API_KEY"}]})),
        )
        .unwrap();
        assert!(!out.contains("lmstudio\" # local"));
        assert!(out.contains("[[providers]]\nname = \"grok\""), "{out}");
        assert_eq!(
            apply(TEXT, &edit(json!({"remove_providers": ["nope"]}))),
            Err(EditError::Key {
                key: "providers.nope".into(),
                reason: "no such provider".into()
            })
        );
    }

    #[test]
    fn bad_keys_are_named() {
        let err = apply(
            TEXT,
            &edit(json!({"set": {"quota.thresholds.caution.deeper": 1}})),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("quota.thresholds.caution.deeper:"),
            "{err}"
        );
        let err = apply(TEXT, &edit(json!({"set": {"providers.ghost.model": "x"}}))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "providers.ghost.model: no provider named \"ghost\""
        );
    }
}
