//! Anthropic's own API: what a request must look like for the Claude model it goes to.
//!
//! The proxy changes a Claude request only where it has to, and then by the model's
//! [`rules`]: thinking blocks another model signed (see [`signatures`]) or no model signed
//! (a local model's turn) are dropped; when the proxy sends another model than the client
//! asked for, what that model rejects is made acceptable — a thinking setting it refuses,
//! forced tool use, sampling parameters, a prefill. Older models that still accept it get
//! the older fix for a turn without a signed thinking block: thinking off for that
//! request. Anything else passes byte for byte. Which models exist now: [`catalog`].

pub mod catalog;
pub mod rules;
pub mod signatures;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

pub use catalog::Catalog;
pub use signatures::Signatures;

use super::Shaped;
use crate::wire::body::MessagesBody;

/// The body `model` must receive, or `None` when the client's (with `model` in place) is
/// right as it is.
pub fn shape(
    body: &MessagesBody,
    model: &str,
    requested: Option<&str>,
    signatures: &Signatures,
) -> Option<Shaped> {
    let view: View<'_> = serde_json::from_slice(body.bytes()).ok()?;
    let rules = rules::for_model(model);
    let model_changed = requested.is_some_and(|r| r != model);
    let mut plan = Plan::default();

    for (m, turn) in view.messages.iter().enumerate() {
        if turn.role != "assistant" {
            continue;
        }
        let Ok(blocks) = serde_json::from_str::<Vec<Block<'_>>>(turn.content.get()) else {
            continue;
        };
        let mut kept_first: Option<&Block<'_>> = None;
        for (b, block) in blocks.iter().enumerate() {
            let foreign = match block.proof() {
                Some("") => Some("unsigned"),
                Some(proof) => signatures
                    .signer(proof)
                    .filter(|signer| signer.as_ref() != model)
                    .map(|_| "another model's"),
                None => None,
            };
            match foreign {
                Some("unsigned") => plan.drop(m, b, Drop::Unsigned),
                Some(_) => plan.drop(m, b, Drop::OtherModel),
                _ => {
                    kept_first.get_or_insert(block);
                }
            }
        }
        let uses_tools = blocks.iter().any(|b| b.kind == "tool_use");
        let starts_signed = kept_first.is_some_and(|b| b.proof().is_some_and(|p| !p.is_empty()));
        if uses_tools && !starts_signed {
            plan.tool_turn_unsigned = true;
        }
    }

    let thinking = view.thinking.as_ref().map(|t| t.kind.as_ref());
    if model_changed && rules.adaptive_thinking_only {
        match thinking {
            Some("disabled") => plan.thinking = Some(ThinkingFix::Remove),
            Some("enabled") => plan.thinking = Some(ThinkingFix::Adaptive),
            _ => {}
        }
    }
    let explicitly_on = matches!(thinking, Some("enabled" | "adaptive"));
    if !rules.adaptive_thinking_only && explicitly_on && plan.tool_turn_unsigned {
        plan.thinking = Some(ThinkingFix::Off);
    }
    if model_changed && rules.no_forced_tool_use {
        let forced = view
            .tool_choice
            .as_ref()
            .is_some_and(|c| matches!(c.kind.as_ref(), "any" | "tool"));
        plan.unforce_tools = forced;
    }
    if model_changed && rules.no_sampling_parameters {
        plan.sampling = view.temperature.is_some() || view.top_p.is_some() || view.top_k.is_some();
    }
    if model_changed && rules.no_prefill {
        plan.prefill = view.messages.last().is_some_and(|m| m.role == "assistant");
    }
    if plan.is_empty() {
        return None;
    }
    Some(plan.apply(body.json(), model, rules))
}

/// What the rewrite does.
#[derive(Default)]
struct Plan {
    /// (message, block, why) to remove.
    drops: Vec<(usize, usize, Drop)>,
    tool_turn_unsigned: bool,
    thinking: Option<ThinkingFix>,
    unforce_tools: bool,
    sampling: bool,
    prefill: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Drop {
    Unsigned,
    OtherModel,
}

#[derive(Clone, Copy, PartialEq)]
enum ThinkingFix {
    /// `disabled` on a model that is always thinking: omit the field (adaptive).
    Remove,
    /// `enabled` with a budget on a model that only thinks adaptively.
    Adaptive,
    /// An older model, a turn with no signed thinking block: thinking off this once.
    Off,
}

impl Plan {
    fn drop(&mut self, message: usize, block: usize, why: Drop) {
        self.drops.push((message, block, why));
    }

    fn is_empty(&self) -> bool {
        self.drops.is_empty()
            && self.thinking.is_none()
            && !self.unforce_tools
            && !self.sampling
            && !self.prefill
    }

    fn apply(self, body: &Value, model: &str, rules: rules::Rules) -> Shaped {
        let mut out = body.clone();
        let mut changes = Vec::new();
        let count = |why: Drop| self.drops.iter().filter(|(.., w)| *w == why).count();
        match (count(Drop::OtherModel), count(Drop::Unsigned)) {
            (0, 0) => {}
            (other, unsigned) => changes.push(format!(
                "thinking blocks dropped: {other} signed by another model, {unsigned} unsigned"
            )),
        }
        if let Some(messages) = out["messages"].as_array_mut() {
            // Back to front, so the indices stay right.
            for (m, b, _) in self.drops.iter().rev() {
                if let Some(blocks) = messages
                    .get_mut(*m)
                    .and_then(|t| t["content"].as_array_mut())
                {
                    if *b < blocks.len() {
                        blocks.remove(*b);
                    }
                }
            }
            // A turn left with nothing is not a turn Anthropic accepts.
            for turn in messages.iter_mut() {
                if turn["content"].as_array().is_some_and(Vec::is_empty) {
                    turn["content"] = json!([{"type": "text", "text": "(thinking)"}]);
                }
            }
            if self.prefill && messages.last().is_some_and(|m| m["role"] == "assistant") {
                messages.pop();
                changes.push(format!("assistant prefill removed ({})", rules.source));
            }
        }
        if let Some(object) = out.as_object_mut() {
            match self.thinking {
                Some(ThinkingFix::Remove) => {
                    object.remove("thinking");
                    changes.push(format!(
                        "thinking \"disabled\" omitted for {model} ({})",
                        rules.source
                    ));
                }
                Some(ThinkingFix::Adaptive) => {
                    let display = object
                        .get("thinking")
                        .and_then(|t| t.get("display"))
                        .cloned();
                    let mut adaptive = json!({"type": "adaptive"});
                    if let Some(display) = display {
                        adaptive["display"] = display;
                    }
                    object.insert("thinking".into(), adaptive);
                    changes.push(format!(
                        "thinking budget made adaptive for {model} ({})",
                        rules.source
                    ));
                }
                Some(ThinkingFix::Off) => {
                    object.remove("thinking");
                    // Its edits only make sense with thinking on.
                    object.remove("context_management");
                    changes.push("thinking off for a turn no Claude model signed".to_owned());
                }
                None => {}
            }
            if self.unforce_tools {
                let parallel = object
                    .get("tool_choice")
                    .and_then(|c| c.get("disable_parallel_tool_use"))
                    .cloned();
                let mut auto = json!({"type": "auto"});
                if let Some(parallel) = parallel {
                    auto["disable_parallel_tool_use"] = parallel;
                }
                object.insert("tool_choice".into(), auto);
                changes.push(format!(
                    "forced tool use made auto for {model} ({})",
                    rules.source
                ));
            }
            if self.sampling {
                for key in ["temperature", "top_p", "top_k"] {
                    object.remove(key);
                }
                changes.push(format!(
                    "sampling parameters removed for {model} ({})",
                    rules.source
                ));
            }
            object.insert("model".into(), Value::String(model.to_owned()));
        }
        Shaped {
            body: MessagesBody::from_value(out),
            changes,
        }
    }
}

/// What the shaping looks at, borrowed from the bytes.
#[derive(Deserialize)]
struct View<'a> {
    #[serde(borrow, default)]
    thinking: Option<Typed<'a>>,
    #[serde(borrow, default)]
    tool_choice: Option<Typed<'a>>,
    #[serde(borrow, default)]
    temperature: Option<&'a RawValue>,
    #[serde(borrow, default)]
    top_p: Option<&'a RawValue>,
    #[serde(borrow, default)]
    top_k: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: Vec<Turn<'a>>,
}

#[derive(Deserialize)]
struct Turn<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow)]
    content: &'a RawValue,
}

#[derive(Deserialize)]
struct Typed<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
}

impl Block<'_> {
    /// What binds a thinking block to its model: a `thinking` block's signature, a
    /// `redacted_thinking` block's data; `None` for any other block.
    fn proof(&self) -> Option<&str> {
        match self.kind.as_ref() {
            "thinking" => Some(self.signature.as_deref().unwrap_or("")),
            "redacted_thinking" => Some(self.data.as_deref().unwrap_or("")),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
