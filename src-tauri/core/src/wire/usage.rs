//! Token usage as Anthropic reports it, for the request log. Streams are read by
//! [`super::sse::AnthropicEvents`]; whole bodies here.

use serde::Deserialize;

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Usage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct UsageFields {
    input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    pub(super) output_tokens: Option<u64>,
}

impl UsageFields {
    pub(super) fn input(&self) -> Option<u64> {
        self.input_tokens.map(|tokens| {
            tokens
                + self.cache_creation_input_tokens.unwrap_or(0)
                + self.cache_read_input_tokens.unwrap_or(0)
        })
    }
}

/// Usage of a complete non-streaming response body.
pub fn from_json(body: &[u8]) -> Usage {
    #[derive(Deserialize)]
    struct Body {
        usage: Option<UsageFields>,
        input_tokens: Option<u64>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(Body { usage: Some(u), .. }) => Usage {
            input_tokens: u.input(),
            output_tokens: u.output_tokens,
        },
        // count_tokens answers {"input_tokens": N}
        Ok(Body {
            input_tokens: Some(n),
            ..
        }) => Usage {
            input_tokens: Some(n),
            output_tokens: None,
        },
        _ => Usage::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_usage() {
        assert_eq!(
            from_json(br#"{"usage":{"input_tokens":3,"output_tokens":4}}"#),
            Usage {
                input_tokens: Some(3),
                output_tokens: Some(4)
            }
        );
        assert_eq!(from_json(br#"{"input_tokens":42}"#).input_tokens, Some(42));
        assert_eq!(from_json(b"garbage"), Usage::default());
    }
}
