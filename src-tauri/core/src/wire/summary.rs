//! Reads what routing needs from a Messages request without copying or rewriting it.
//!
//! The body is forwarded byte for byte; this only borrows from it. Unknown fields
//! (`context_management`, `output_config`, whatever Anthropic adds next) are ignored here
//! and kept in the forwarded body.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::ApiError;

/// The parts of a `/v1/messages` (or `count_tokens`) body the proxy looks at.
#[derive(Debug, Deserialize)]
pub struct MessagesSummary<'a> {
    /// `model` as written in the body (its place is where a new model goes).
    #[serde(rename = "model", borrow, default)]
    model_raw: Option<&'a RawValue>,
    #[serde(skip)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(borrow)]
    pub messages: &'a RawValue,
    #[serde(borrow, default)]
    pub system: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub tools: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub thinking: Option<&'a RawValue>,
    /// Auto mode's server-side safety check (Claude Code 2.1.332+).
    #[serde(borrow, default)]
    pub safeguards: Option<&'a RawValue>,
    /// Anthropic's MCP connector.
    #[serde(borrow, default)]
    pub mcp_servers: Option<&'a RawValue>,
    /// Anthropic's code-execution container.
    #[serde(borrow, default)]
    pub container: Option<&'a RawValue>,
    /// Effort and the answer's format (a JSON schema for Claude Code's title chore).
    #[serde(borrow, default)]
    pub output_config: Option<&'a RawValue>,
}

impl<'a> MessagesSummary<'a> {
    /// Parses a request body; bad JSON or a missing `messages` array is the client's error.
    pub fn parse(body: &'a [u8]) -> Result<Self, ApiError> {
        if body.is_empty() {
            return Err(ApiError::invalid_request(
                "request body is empty; expected a JSON object",
            ));
        }
        let mut summary: MessagesSummary<'a> = serde_json::from_slice(body).map_err(|e| {
            if e.is_data() && e.to_string().starts_with("missing field `messages`") {
                ApiError::invalid_request("messages: Field required")
            } else {
                ApiError::invalid_request(format!("request body is not valid JSON: {e}"))
            }
        })?;
        if !summary.messages.get().trim_start().starts_with('[') {
            return Err(ApiError::invalid_request(
                "messages: Input should be a valid list",
            ));
        }
        summary.model =
            match summary.model_raw.map(RawValue::get) {
                None | Some("null") => None,
                Some(raw) => Some(serde_json::from_str::<Cow<'a, str>>(raw).map_err(|_| {
                    ApiError::invalid_request("model: Input should be a valid string")
                })?),
            };
        Ok(summary)
    }

    /// Where the `model` value (quotes included) sits in `body`, the bytes this summary
    /// was parsed from.
    pub fn model_span(&self, body: &[u8]) -> Option<Range<usize>> {
        let raw = self.model_raw?.get();
        let start = (raw.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
        let end = start + raw.len();
        (end <= body.len() && &body[start..end] == raw.as_bytes()).then_some(start..end)
    }

    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_claude_code_request_and_ignores_unknown_fields() {
        let body = br#"{"model":"claude-sonnet-5","max_tokens":32000,"stream":true,
            "system":[{"type":"text","text":"You are Claude Code","cache_control":{"type":"ephemeral"}}],
            "messages":[{"role":"system","content":"ctx"},{"role":"user","content":"hi"}],
            "thinking":{"type":"adaptive"},"context_management":{"edits":[]},
            "output_config":{"effort":"high"},"metadata":{"user_id":"u"},"tools":[]}"#;
        let summary = MessagesSummary::parse(body).unwrap();
        assert_eq!(summary.model(), Some("claude-sonnet-5"));
        assert!(summary.is_stream());
        assert_eq!(summary.max_tokens, Some(32000));
        assert!(summary.thinking.is_some());
    }

    #[test]
    fn bad_bodies_are_invalid_requests() {
        for (body, needle) in [
            (&b""[..], "empty"),
            (b"{not json", "not valid JSON"),
            (b"{\"model\":\"x\"}", "messages: Field required"),
            (b"{\"model\":\"x\",\"messages\":3}", "valid list"),
            (b"[1,2]", "not valid JSON"),
        ] {
            let err = MessagesSummary::parse(body).unwrap_err();
            assert_eq!(err.kind, "invalid_request_error");
            assert!(
                err.message.contains(needle),
                "{}: {}",
                String::from_utf8_lossy(body),
                err.message
            );
        }
    }
}
