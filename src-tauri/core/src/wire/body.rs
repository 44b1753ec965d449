//! A Messages request body as the proxy holds it: the client's bytes, forwarded as they
//! are, and parsed into a `serde_json::Value` only when something must read or rewrite
//! all of it (a translating provider, the thinking fix-up).
//!
//! Routing reads the borrowed [`MessagesSummary`](super::summary::MessagesSummary); a
//! pass-through to Anthropic never builds a `Value`, and a model swap splices the new
//! name into the bytes instead of serialising the whole body again.

use std::ops::Range;
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use super::summary::MessagesSummary;

pub struct MessagesBody {
    bytes: Bytes,
    /// Where the top-level `model` value (quotes included) sits in `bytes`.
    model_span: Option<Range<usize>>,
    model: Option<String>,
    parsed: OnceLock<Value>,
}

impl MessagesBody {
    /// The body `summary` was parsed from (the summary borrows from `bytes`).
    pub fn new(bytes: Bytes, summary: &MessagesSummary<'_>) -> MessagesBody {
        MessagesBody {
            model_span: summary.model_span(&bytes),
            model: summary.model().map(str::to_owned),
            bytes,
            parsed: OnceLock::new(),
        }
    }

    /// A body built from a value (a rewritten request).
    pub fn from_value(value: Value) -> MessagesBody {
        let bytes = Bytes::from(value.to_string());
        let model = value
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let parsed = OnceLock::new();
        let _ = parsed.set(value);
        MessagesBody {
            bytes,
            model_span: None,
            model,
            parsed,
        }
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The body as JSON, parsed on first use. The bytes were checked to be a JSON object
    /// when the request arrived, so this cannot fail; `Null` stands in if it ever did.
    pub fn json(&self) -> &Value {
        self.parsed
            .get_or_init(|| serde_json::from_slice(&self.bytes).unwrap_or(Value::Null))
    }

    /// The bytes to send when the target wants `model`: the client's own when it asked
    /// for that model, else the same bytes with the new name in place of the old one.
    pub fn with_model(&self, model: &str) -> Bytes {
        if self.model.as_deref() == Some(model) {
            return self.bytes.clone();
        }
        let name = Value::String(model.to_owned()).to_string();
        match &self.model_span {
            Some(span) => {
                let mut out = BytesMut::with_capacity(self.bytes.len() + name.len());
                out.extend_from_slice(&self.bytes[..span.start]);
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(&self.bytes[span.end..]);
                out.freeze()
            }
            None => {
                let mut json = self.json().clone();
                json["model"] = Value::String(model.to_owned());
                Bytes::from(json.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> MessagesBody {
        let bytes = Bytes::from(text.to_owned());
        let summary = MessagesSummary::parse(&bytes).unwrap();
        MessagesBody::new(bytes.clone(), &summary)
    }

    #[test]
    fn the_same_model_sends_the_clients_bytes() {
        let text = r#"{ "model" : "claude-sonnet-5", "messages":[]}"#;
        assert_eq!(body(text).with_model("claude-sonnet-5"), text.as_bytes());
    }

    #[test]
    fn another_model_is_spliced_in_and_nothing_else_changes() {
        let text = r#"{"messages":[{"role":"user","content":"model \"x\""}], "model" : "claude-opus-4-8","max_tokens":5}"#;
        let swapped = body(text).with_model("local \"q\"");
        assert_eq!(
            std::str::from_utf8(&swapped).unwrap(),
            r#"{"messages":[{"role":"user","content":"model \"x\""}], "model" : "local \"q\"","max_tokens":5}"#
        );
        let parsed: Value = serde_json::from_slice(&swapped).unwrap();
        assert_eq!(parsed["model"], "local \"q\"");
    }

    #[test]
    fn a_body_without_a_model_gets_one() {
        let swapped = body(r#"{"messages":[]}"#).with_model("m");
        let parsed: Value = serde_json::from_slice(&swapped).unwrap();
        assert_eq!(parsed["model"], "m");
        assert_eq!(parsed["messages"], serde_json::json!([]));
    }

    #[test]
    fn an_escaped_model_name_is_read_and_replaced_whole() {
        let text = r#"{"model":"claude\u002dsonnet-5","messages":[]}"#;
        let b = body(text);
        assert_eq!(b.with_model("claude-sonnet-5"), text.as_bytes());
        let swapped = b.with_model("other");
        assert_eq!(&swapped[..], br#"{"model":"other","messages":[]}"#);
    }
}
