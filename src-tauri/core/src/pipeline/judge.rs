//! Whether an answer that came back worked — the signals of "learning from
//! constraints" that are not errors: a tool call Claude Code cannot run (a tool the
//! request did not offer, or input that does not fit the tool's `input_schema`), an empty
//! answer, one cut off at `max_tokens` while still short. The client asking the same
//! turn again, and a tool result that is an error, are read from the next request
//! ([`super::prepare`]). Anthropic's own answers are the reference and are not judged.
//!
//! The schema check covers what a tool call needs to run: a JSON object, every
//! `required` property present, and each property of the JSON type its schema names.

use std::collections::HashMap;

use serde_json::Value;

use crate::router::Flaw;
use crate::wire::trace::Content;

/// A short answer: one cut off at `max_tokens` below this many output tokens did not
/// get to say what it had to.
const SHORT_ANSWER_TOKENS: u64 = 1024;

/// The tools a request offered, by name, with their input schemas.
pub struct Tools(HashMap<String, Value>);

impl Tools {
    /// The custom tools of a Messages request body.
    pub fn of_request(body: &[u8]) -> Tools {
        #[derive(serde::Deserialize)]
        struct Request {
            #[serde(default)]
            tools: Vec<Value>,
        }
        let tools = serde_json::from_slice::<Request>(body)
            .map(|r| r.tools)
            .unwrap_or_default();
        Tools(
            tools
                .into_iter()
                .filter_map(|t| {
                    let name = t.get("name")?.as_str()?.to_owned();
                    Some((name, t.get("input_schema").cloned().unwrap_or(Value::Null)))
                })
                .collect(),
        )
    }
}

/// What is wrong with an answer, if anything; with the tool call at fault in words.
pub fn flaw(content: &Content, tools: &Tools) -> Option<(Flaw, String)> {
    for call in &content.tool_uses {
        let Some(schema) = tools.0.get(&call.name) else {
            return Some((
                Flaw::InvalidToolCall,
                format!(
                    "it called {:?}, a tool the request does not offer",
                    call.name
                ),
            ));
        };
        let input = if call.input.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            match serde_json::from_str::<Value>(&call.input) {
                Ok(input) => input,
                Err(_) => {
                    return Some((
                        Flaw::InvalidToolCall,
                        format!("its {} call's input is not JSON", call.name),
                    ))
                }
            }
        };
        if let Some(why) = misfit(schema, &input) {
            return Some((
                Flaw::InvalidToolCall,
                format!("its {} call {why}", call.name),
            ));
        }
    }
    if content.text_chars == 0
        && content.tool_uses.is_empty()
        && content.stop_reason.as_deref() != Some("refusal")
    {
        return Some((Flaw::Empty, "it said nothing".to_owned()));
    }
    let short = content
        .output_tokens
        .is_none_or(|t| t < SHORT_ANSWER_TOKENS);
    if content.stop_reason.as_deref() == Some("max_tokens") && short {
        return Some((
            Flaw::CutShort,
            "it stopped at max_tokens after a short answer".to_owned(),
        ));
    }
    None
}

/// Why `input` does not fit `schema`, if it does not.
fn misfit(schema: &Value, input: &Value) -> Option<String> {
    let Some(object) = input.as_object() else {
        return Some("has input that is not an object".to_owned());
    };
    let required = schema.get("required").and_then(Value::as_array);
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        if !object.contains_key(name) {
            return Some(format!("lacks the required {name:?}"));
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    for (name, value) in object {
        let Some(kind) = properties
            .and_then(|p| p.get(name))
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let fits = match kind {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            "null" => value.is_null(),
            _ => true,
        };
        if !fits {
            return Some(format!("gives {name:?} as {value}, not a {kind}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::trace::ToolUse;

    fn content(calls: &[(&str, &str)]) -> Content {
        Content {
            text_chars: 0,
            tool_uses: calls
                .iter()
                .map(|(name, input)| ToolUse {
                    name: (*name).to_owned(),
                    input: (*input).to_owned(),
                })
                .collect(),
            stop_reason: Some("tool_use".to_owned()),
            output_tokens: Some(20),
        }
    }

    #[test]
    fn a_tool_call_claude_code_cannot_run_is_a_flaw() {
        let tools = Tools::of_request(
            br#"{"tools":[{"name":"Bash","input_schema":{"type":"object","properties":{"command":{"type":"string"},"timeout":{"type":"number"}},"required":["command"]}}]}"#,
        );
        assert_eq!(
            flaw(&content(&[("Bash", r#"{"command":"ls"}"#)]), &tools),
            None
        );
        let bad = [
            ("Shell", r#"{"command":"ls"}"#),
            ("Bash", r#"{"cmd":"ls"}"#),
            ("Bash", r#"{"command":["ls"]}"#),
            ("Bash", r#"{"command":"ls","#),
        ];
        for (name, input) in bad {
            let (kind, why) = flaw(&content(&[(name, input)]), &tools).unwrap();
            assert_eq!(kind, Flaw::InvalidToolCall, "{why}");
        }
        let empty = Content::default();
        assert_eq!(flaw(&empty, &tools).unwrap().0, Flaw::Empty);
        let cut = Content {
            text_chars: 40,
            stop_reason: Some("max_tokens".to_owned()),
            output_tokens: Some(12),
            ..Content::default()
        };
        assert_eq!(flaw(&cut, &tools).unwrap().0, Flaw::CutShort);
    }
}
