//! The proxy's one token estimate: for the context-window checks, the classifier, and
//! `count_tokens` on targets that cannot count.
//!
//! Claude Code compacts its context when `count_tokens` says it is full, so the answer must
//! be honest and never 0 for a non-empty request. Without Claude's tokenizer a body counts
//! ~3.5 bytes per token (English prose runs ~4, code and JSON ~3) — except its images,
//! which are counted as images: Anthropic's (width × height) / 750 tokens, from the size
//! in the image's header (PNG, GIF, WebP), at most the ~1,600 of an image Anthropic
//! scales down; a fixed 1,600 where the header does not say (JPEG). Counted by their
//! base64 bytes instead, one screenshot would fill a local model's window.

use serde_json::Value;

const BYTES_PER_TOKEN: f64 = 3.5;
/// What an image costs at most (Anthropic scales larger ones down to about this).
pub const IMAGE_TOKENS: u64 = 1_600;

/// Tokens of a Messages request body.
pub fn estimate(body: &[u8]) -> u64 {
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    if !has(b"\"image\"") {
        return ((body.len() as f64 / BYTES_PER_TOKEN).ceil() as u64).max(1);
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return ((body.len() as f64 / BYTES_PER_TOKEN).ceil() as u64).max(1);
    };
    let mut images = Images::default();
    images.walk(&value);
    let text = body.len().saturating_sub(images.data_bytes);
    ((text as f64 / BYTES_PER_TOKEN).ceil() as u64 + images.tokens).max(1)
}

/// The images of a request: their base64 bytes, and what they cost as images.
#[derive(Default)]
struct Images {
    data_bytes: usize,
    tokens: u64,
}

impl Images {
    fn walk(&mut self, value: &Value) {
        match value {
            Value::Object(object) => {
                let is_image = object.get("type").and_then(Value::as_str) == Some("image");
                let data = object
                    .get("source")
                    .and_then(|s| s.get("data"))
                    .and_then(Value::as_str);
                match (is_image, data) {
                    (true, Some(data)) => {
                        self.data_bytes += data.len();
                        self.tokens += image_tokens(data);
                    }
                    (true, None) => self.tokens += IMAGE_TOKENS,
                    _ => object.values().for_each(|v| self.walk(v)),
                }
            }
            Value::Array(items) => items.iter().for_each(|v| self.walk(v)),
            _ => {}
        }
    }
}

/// What a base64 image costs, from the size its header gives.
fn image_tokens(data: &str) -> u64 {
    use base64::Engine as _;
    let head: String = data.chars().take(64).collect();
    let head = &head[..head.len() / 4 * 4];
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(head) else {
        return IMAGE_TOKENS;
    };
    match dimensions(&bytes) {
        Some((w, h)) => (u64::from(w) * u64::from(h) / 750).clamp(1, IMAGE_TOKENS),
        None => IMAGE_TOKENS,
    }
}

/// Width and height from the first bytes of a PNG, GIF or WebP file.
fn dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let be = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let le16 = |at: usize| {
        Some(u32::from(u16::from_le_bytes(
            bytes.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some((be(16)?, be(20)?));
    }
    if bytes.starts_with(b"GIF8") {
        return Some((le16(6)?, le16(8)?));
    }
    if bytes.starts_with(b"RIFF")
        && bytes.get(8..12) == Some(b"WEBP")
        && bytes.get(12..16) == Some(b"VP8X")
    {
        let le24 = |at: usize| {
            let b = bytes.get(at..at + 3)?;
            Some(u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16)
        };
        return Some((le24(24)? + 1, le24(27)? + 1));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::json;

    fn body(value: &Value) -> Vec<u8> {
        serde_json::to_vec(value).unwrap()
    }

    #[test]
    fn never_zero_and_grows_with_content() {
        let empty = json!({"messages": [{"role": "user", "content": ""}]});
        assert!(estimate(&body(&empty)) >= 1);
        let long = estimate(&body(
            &json!({"messages": [{"role": "user", "content": "hello there ".repeat(1000)}]}),
        ));
        // ~12,000 bytes of prose: about 3,400 tokens.
        assert!((3000..4000).contains(&long), "{long}");
    }

    #[test]
    fn a_screenshot_counts_as_an_image_not_as_its_base64() {
        let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        png.extend_from_slice(&1280u32.to_be_bytes());
        png.extend_from_slice(&800u32.to_be_bytes());
        png.resize(300_000, 7);
        let data = base64::engine::general_purpose::STANDARD.encode(&png);
        let request = json!({"messages": [
            {"role": "user", "content": "look"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Read", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}]}]}]});
        let tokens = estimate(&body(&request));
        // 1280 x 800 / 750 = 1365 tokens, and the rest of the body.
        assert!((1365..1500).contains(&tokens), "{tokens}");
        let small = json!({"messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}}]}]});
        assert!(
            estimate(&body(&small)) >= IMAGE_TOKENS,
            "a JPEG's size is not in its first bytes"
        );
    }
}
