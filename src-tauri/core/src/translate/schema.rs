//! Tool input schemas cleaned of what strict OpenAI-compatible backends reject.

use serde_json::{Map, Value};

/// Removes `format: "uri"` (and other formats most backends refuse), unicode `\p{…}`
/// patterns, `$schema`, and a top-level `oneOf`/`anyOf`/`allOf`; guarantees an object
/// schema at the top.
pub fn clean(schema: &Value) -> Value {
    let mut cleaned = clean_node(schema);
    if let Value::Object(map) = &mut cleaned {
        for key in ["oneOf", "anyOf", "allOf"] {
            map.remove(key);
        }
        map.entry("type").or_insert(Value::String("object".into()));
        if map.get("type") == Some(&Value::String("object".into())) {
            map.entry("properties").or_insert(Value::Object(Map::new()));
        }
        cleaned
    } else {
        serde_json::json!({"type": "object", "properties": {}})
    }
}

fn clean_node(node: &Value) -> Value {
    match node {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, value) in map {
                match key.as_str() {
                    "$schema" => continue,
                    "format"
                        if value
                            .as_str()
                            .is_some_and(|f| f != "date-time" && f != "enum") =>
                    {
                        continue
                    }
                    "pattern"
                        if value
                            .as_str()
                            .is_some_and(|p| p.contains("\\p{") || p.contains("\\P{")) =>
                    {
                        continue
                    }
                    _ => {}
                }
                out.insert(key.clone(), clean_node(value));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(clean_node).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strict_backend_rejections_are_removed() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "anyOf": [{"required": ["a"]}, {"required": ["b"]}],
            "properties": {
                "url": {"type": "string", "format": "uri"},
                "when": {"type": "string", "format": "date-time"},
                "name": {"type": "string", "pattern": "^\\p{L}+$"},
                "code": {"type": "string", "pattern": "^[a-z]+$"},
                "list": {"type": "array", "items": {"type": "string", "format": "email"}}
            },
            "additionalProperties": false
        });
        let cleaned = clean(&schema);
        assert_eq!(
            cleaned,
            json!({
                "type": "object",
                "properties": {
                    "url": {"type": "string"},
                    "when": {"type": "string", "format": "date-time"},
                    "name": {"type": "string"},
                    "code": {"type": "string", "pattern": "^[a-z]+$"},
                    "list": {"type": "array", "items": {"type": "string"}}
                },
                "additionalProperties": false
            })
        );
        assert_eq!(
            clean(&json!(null)),
            json!({"type": "object", "properties": {}})
        );
        assert_eq!(
            clean(&json!({})),
            json!({"type": "object", "properties": {}})
        );
    }
}
