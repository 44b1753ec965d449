//! Messages request -> Chat Completions request.

use serde_json::{json, Map, Value};

use super::schema;

/// Most OpenAI-compatible APIs accept at most this many tools.
pub const MAX_TOOLS: usize = 128;
/// OpenAI accepts at most four stop sequences.
const MAX_STOP: usize = 4;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TranslateError {
    #[error("{0}")]
    Invalid(String),
}

/// What the target allows.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The target's context window in tokens, when known.
    pub context_window: Option<u32>,
    /// Estimated tokens of the request's input.
    pub input_tokens: u32,
    /// The target reads images (else they are named in words).
    pub images: bool,
}

/// Translates `body` (a Messages request) for `model` on an OpenAI-compatible API.
/// Anthropic-only fields (`cache_control`, thinking, `context_management`,
/// `output_config`, `metadata`, `top_k`, server tools) are dropped.
pub fn to_openai(body: &Value, model: &str, limits: Limits) -> Result<Value, TranslateError> {
    let object = body
        .as_object()
        .ok_or_else(|| TranslateError::Invalid("request body must be a JSON object".into()))?;
    let messages = object
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::Invalid("messages: Field required".into()))?;

    let mut system_parts: Vec<String> = Vec::new();
    if let Some(system) = object.get("system") {
        system_parts.extend(text_of(system));
    }
    let mut out_messages: Vec<Value> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        let content = message.get("content").unwrap_or(&Value::Null);
        match role {
            // Claude Code puts harness context in `role: "system"` messages; strict chat
            // templates want one system message first, so they join it there.
            "system" => system_parts.extend(text_of(content)),
            "user" => user_message(content, limits.images, &mut out_messages),
            "assistant" => assistant_message(content, &mut out_messages),
            other => {
                return Err(TranslateError::Invalid(format!(
                    "messages[{i}].role: {other:?} is not one of user, assistant, system"
                )))
            }
        }
    }
    let system_parts: Vec<String> = system_parts.into_iter().filter(|s| !s.is_empty()).collect();
    if !system_parts.is_empty() {
        out_messages.insert(
            0,
            json!({"role": "system", "content": system_parts.join("\n\n")}),
        );
    }

    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.to_owned()));
    out.insert("messages".into(), Value::Array(out_messages));

    let requested = object
        .get("max_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(4096);
    let mut max_tokens = requested;
    if let Some(window) = limits.context_window {
        let room = u64::from(window).saturating_sub(u64::from(limits.input_tokens));
        max_tokens = max_tokens.min(room.max(1));
    }
    out.insert("max_tokens".into(), json!(max_tokens));

    for key in ["temperature", "top_p"] {
        if let Some(value) = object.get(key).filter(|v| v.is_number()) {
            out.insert(key.into(), value.clone());
        }
    }
    if let Some(stops) = object.get("stop_sequences").and_then(Value::as_array) {
        let stops: Vec<Value> = stops
            .iter()
            .filter(|s| s.is_string())
            .take(MAX_STOP)
            .cloned()
            .collect();
        if !stops.is_empty() {
            out.insert("stop".into(), Value::Array(stops));
        }
    }

    let tools = tools(object.get("tools"));
    let has_tools = !tools.is_empty();
    if has_tools {
        out.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = object.get("tool_choice") {
            if let Some(mapped) = tool_choice(choice) {
                out.insert("tool_choice".into(), mapped);
            }
            if choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
                out.insert("parallel_tool_calls".into(), Value::Bool(false));
            }
        }
    }

    // Structured output (Claude Code's title chore asks for a JSON object).
    if let Some(schema) = object
        .get("output_config")
        .and_then(|o| o.get("format"))
        .filter(|f| f.get("type").and_then(Value::as_str) == Some("json_schema"))
        .and_then(|f| f.get("schema"))
    {
        out.insert(
            "response_format".into(),
            json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}),
        );
    }

    if object.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), Value::Bool(true));
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(Value::Object(out))
}

/// The text of a string or of a block array's text (and text-document) blocks.
fn text_of(content: &Value) -> Vec<String> {
    match content {
        Value::String(s) => vec![s.clone()],
        Value::Array(blocks) => blocks.iter().filter_map(block_text).collect(),
        _ => Vec::new(),
    }
}

fn block_text(block: &Value) -> Option<String> {
    match block.get("type").and_then(Value::as_str)? {
        "text" => block.get("text").and_then(Value::as_str).map(str::to_owned),
        "document" => document_text(block),
        _ => None,
    }
}

/// A document as text where it has text; other documents are named, not dropped silently.
fn document_text(block: &Value) -> Option<String> {
    let source = block.get("source")?;
    let title = block.get("title").and_then(Value::as_str);
    let text = match source.get("type").and_then(Value::as_str) {
        Some("text") => source
            .get("data")
            .and_then(Value::as_str)
            .map(str::to_owned),
        Some("content") => Some(text_of(source.get("content").unwrap_or(&Value::Null)).join("\n")),
        _ => Some("[a document this model cannot read was omitted]".to_owned()),
    }?;
    Some(match title {
        Some(title) => format!("{title}\n\n{text}"),
        None => text,
    })
}

fn image_part(block: &Value) -> Option<Value> {
    let source = block.get("source")?;
    let url = match source.get("type").and_then(Value::as_str)? {
        "base64" => {
            let media = source
                .get("media_type")
                .and_then(Value::as_str)
                .unwrap_or("image/png");
            let data = source.get("data").and_then(Value::as_str)?;
            if data.starts_with("data:") {
                data.to_owned()
            } else {
                format!("data:{media};base64,{data}")
            }
        }
        "url" => source.get("url").and_then(Value::as_str)?.to_owned(),
        _ => return None,
    };
    Some(json!({"type": "image_url", "image_url": {"url": url}}))
}

fn user_message(content: &Value, images: bool, out: &mut Vec<Value>) {
    let blocks = match content {
        Value::String(s) => {
            out.push(json!({"role": "user", "content": s}));
            return;
        }
        Value::Array(blocks) => blocks,
        _ => return,
    };
    // Tool results first, right after the assistant's tool_calls; the rest of the turn after.
    // A tool message holds text only: the images a tool returned (Claude Code's Read of a
    // screenshot) follow in the user turn, for a model that reads them.
    let mut parts: Vec<Value> = Vec::new();
    let mut has_image = false;
    for block in blocks {
        if block.get("type").and_then(Value::as_str) == Some("tool_result") {
            let (message, tool_images) = tool_message(block, images);
            out.push(message);
            if !tool_images.is_empty() {
                has_image = true;
                parts.push(json!({"type": "text", "text": "The tool result's images:"}));
                parts.extend(tool_images);
            }
        }
    }
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("image") if images => {
                if let Some(part) = image_part(block) {
                    has_image = true;
                    parts.push(part);
                }
            }
            Some("image") => parts.push(json!({"type": "text", "text": NO_VISION})),
            Some("tool_result") => {}
            _ => {
                if let Some(text) = block_text(block).filter(|t| !t.is_empty()) {
                    parts.push(json!({"type": "text", "text": text}));
                }
            }
        }
    }
    if parts.is_empty() {
        return;
    }
    let content = if has_image {
        Value::Array(parts)
    } else {
        Value::String(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n\n"),
        )
    };
    out.push(json!({"role": "user", "content": content}));
}

/// What a model without vision reads in place of an image.
const NO_VISION: &str = "[an image was here; this model cannot read images]";

/// A tool result as a `tool` message, and the images it held (as parts for the next user
/// message), when the model reads images.
fn tool_message(block: &Value, images: bool) -> (Value, Vec<Value>) {
    let mut image_parts = Vec::new();
    let id = block
        .get("tool_use_id")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut text = match block.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| match item.get("type").and_then(Value::as_str) {
                Some("image") if images => {
                    image_parts.extend(image_part(item));
                    Some("[image: see the next message]".to_owned())
                }
                Some("image") => Some(NO_VISION.to_owned()),
                _ => block_text(item),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    if block.get("is_error") == Some(&Value::Bool(true)) {
        text = format!("Error: {text}");
    }
    (
        json!({"role": "tool", "tool_call_id": id, "content": text}),
        image_parts,
    )
}

fn assistant_message(content: &Value, out: &mut Vec<Value>) {
    let blocks = match content {
        Value::String(s) => {
            out.push(json!({"role": "assistant", "content": s}));
            return;
        }
        Value::Array(blocks) => blocks,
        _ => return,
    };
    let mut text = Vec::new();
    let mut reasoning = Vec::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            // A local model's own reasoning goes back to it (DeepSeek and others want it
            // in a tool loop); Claude's signed blocks carry none it could read.
            Some("thinking") => {
                let signed = block
                    .get("signature")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty());
                if let Some(t) = block
                    .get("thinking")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty() && !signed)
                {
                    reasoning.push(t.to_owned());
                }
            }
            Some("text") => {
                if let Some(t) = block
                    .get("text")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    text.push(t.to_owned());
                }
            }
            Some("tool_use") => {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({
                    "id": block.get("id").and_then(Value::as_str).unwrap_or(""),
                    "type": "function",
                    "function": {
                        "name": block.get("name").and_then(Value::as_str).unwrap_or(""),
                        "arguments": input.to_string(),
                    }
                }));
            }
            // thinking, redacted_thinking, server tool blocks: Anthropic-only.
            _ => {}
        }
    }
    if text.is_empty() && calls.is_empty() && reasoning.is_empty() {
        return;
    }
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert(
        "content".into(),
        if text.is_empty() {
            Value::Null
        } else {
            Value::String(text.join("\n\n"))
        },
    );
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    if !reasoning.is_empty() {
        message.insert(
            "reasoning_content".into(),
            Value::String(reasoning.join("\n\n")),
        );
    }
    out.push(Value::Object(message));
}

fn tools(tools: Option<&Value>) -> Vec<Value> {
    let Some(tools) = tools.and_then(Value::as_array) else {
        return Vec::new();
    };
    let custom: Vec<&Value> = tools
        .iter()
        // Server tools (`web_search_…`, `bash_…`) have a versioned type and no schema.
        .filter(|t| t.get("input_schema").is_some())
        .collect();
    if custom.len() > MAX_TOOLS {
        tracing::warn!(
            tools = custom.len(),
            kept = MAX_TOOLS,
            "too many tools for an OpenAI-compatible API; the rest are dropped"
        );
    }
    custom
        .into_iter()
        .take(MAX_TOOLS)
        .map(|tool| {
            let mut function = Map::new();
            function.insert(
                "name".into(),
                tool.get("name").cloned().unwrap_or(json!("")),
            );
            if let Some(description) = tool.get("description").filter(|d| d.is_string()) {
                function.insert("description".into(), description.clone());
            }
            function.insert(
                "parameters".into(),
                schema::clean(tool.get("input_schema").unwrap_or(&Value::Null)),
            );
            json!({"type": "function", "function": function})
        })
        .collect()
}

fn tool_choice(choice: &Value) -> Option<Value> {
    match choice.get("type").and_then(Value::as_str)? {
        "auto" => Some(json!("auto")),
        "any" => Some(json!("required")),
        "none" => Some(json!("none")),
        "tool" => {
            let name = choice.get("name").and_then(Value::as_str)?;
            Some(json!({"type": "function", "function": {"name": name}}))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
