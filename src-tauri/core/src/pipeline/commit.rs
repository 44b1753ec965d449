//! Deciding that an upstream's answer is one, before anything reaches the client.
//!
//! A stream is committed after its first event: a connection that breaks or stalls
//! before it, or a first event that is an overload/server error, still fails over like a
//! 5xx. A whole body (non-streaming answers, errors) is read to its end first, under the
//! provider's idle timeout, and a `2xx` must be JSON — an empty or garbled "success"
//! fails over too.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::header;

use super::{Answer, AnswerBody};
use crate::config::ProviderConfig;
use crate::providers::{BodyStream, Upstream};
use crate::queue::Permit;
use crate::wire::sse::AnthropicEvents;

/// Largest whole body read before it is handed on (Anthropic's own request limit).
const MAX_WHOLE_BODY: usize = 32 << 20;

/// How much of a stream may pass without one complete event before it is not a stream.
const MAX_BEFORE_FIRST_EVENT: usize = 1 << 20;

/// Error types that, as a stream's first event, mean "try elsewhere".
const FAIL_OVER_KINDS: [&str; 4] = [
    "overloaded_error",
    "api_error",
    "rate_limit_error",
    "timeout_error",
];

pub(super) enum Committed {
    Answer(Answer),
    /// A `200` stream whose first event is an error worth failing over for; the whole
    /// stream is kept, in case nothing else answers.
    ErrorEvent {
        answer: Answer,
        kind: String,
    },
    /// The body broke off or is not what its headers promised.
    Broken(String),
    /// Nothing arrived for the provider's idle timeout.
    Stalled(Duration),
}

/// Reads as much of `upstream` as it takes to know what it is. A stream is followed as
/// one only when the client asked for one; `failing_over`: its status already says the
/// next target will be tried (its body is kept whole, for the record).
pub(super) async fn commit(
    upstream: Upstream,
    permit: Option<Permit>,
    provider: &ProviderConfig,
    stream: bool,
    failing_over: bool,
) -> Committed {
    let Upstream {
        status,
        mut headers,
        body,
    } = upstream;
    let opaque = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() != b"identity");
    let is_sse = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let answer = |headers, body| Answer {
        status,
        headers,
        body,
        target: None,
        shared: false,
    };
    if opaque && status.is_success() {
        // Compressed bytes cannot be followed: relayed as they come.
        return Committed::Answer(answer(headers, AnswerBody::Raw(hold(body, permit))));
    }
    if stream && is_sse && status.is_success() && !failing_over {
        return first_event(status, headers, body, permit, provider).await;
    }
    let whole = match read_whole(body, provider.idle_timeout).await {
        Ok(whole) => whole,
        Err(failure) => return failure,
    };
    drop(permit);
    if status.is_success() && !failing_over && !opaque {
        let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(&whole).is_ok();
        if !is_json {
            let what = if whole.is_empty() {
                "an empty body".to_owned()
            } else {
                format!("{} bytes that are not JSON", whole.len())
            };
            return Committed::Broken(format!("answered HTTP {} with {what}", status.as_u16()));
        }
    }
    headers.remove(header::CONTENT_LENGTH);
    Committed::Answer(answer(headers, AnswerBody::Full(whole)))
}

/// Reads a stream up to the end of its first event.
async fn first_event(
    status: http::StatusCode,
    headers: http::HeaderMap,
    mut body: BodyStream,
    permit: Option<Permit>,
    provider: &ProviderConfig,
) -> Committed {
    let mut events = AnthropicEvents::default();
    let mut prefix: Vec<Bytes> = Vec::new();
    let mut read = 0;
    while events.first_event().is_none() {
        match body.next().await {
            Some(Ok(chunk)) => {
                events.feed(&chunk);
                read += chunk.len();
                prefix.push(chunk);
                if read > MAX_BEFORE_FIRST_EVENT {
                    return Committed::Broken(format!(
                        "sent {read} bytes of event stream without a complete event"
                    ));
                }
            }
            Some(Err(error)) if error.kind() == std::io::ErrorKind::TimedOut => {
                return Committed::Stalled(provider.idle_timeout);
            }
            Some(Err(error)) => {
                return Committed::Broken(format!(
                    "its stream broke before the first event: {error}"
                ))
            }
            None => {
                return Committed::Broken("it closed the stream before the first event".to_owned())
            }
        }
    }
    let first = events.first_event().unwrap_or_default();
    if !matches!(first, "message_start" | "error" | "ping") {
        // Every Messages stream opens with message_start (the SDKs refuse one that does
        // not); a server that left it out gets one put before what it sent.
        tracing::warn!(provider = %provider.name, first, "a stream began without message_start; one is put before it");
        prefix.insert(0, opening(provider));
    }
    let rest = futures_util::stream::iter(prefix.into_iter().map(Ok)).chain(body);
    let body: BodyStream = Box::pin(rest);
    let kind = events.error_kind().unwrap_or("api_error").to_owned();
    if events.first_event() == Some("error") && FAIL_OVER_KINDS.contains(&kind.as_str()) {
        // The rest of an error stream is short; keep it whole and free the slot.
        let whole = match read_whole(body, provider.idle_timeout).await {
            Ok(whole) => whole,
            Err(failure) => return failure,
        };
        drop(permit);
        let answer = Answer {
            status,
            headers,
            body: AnswerBody::Full(whole),
            target: None,
            shared: false,
        };
        return Committed::ErrorEvent { answer, kind };
    }
    Committed::Answer(Answer {
        status,
        headers,
        body: AnswerBody::Events(hold(body, permit)),
        target: None,
        shared: false,
    })
}

/// A `message_start` for a stream that came without one.
fn opening(provider: &ProviderConfig) -> Bytes {
    let model = provider.model.as_deref().unwrap_or("unknown");
    let data = serde_json::json!({"type": "message_start", "message": {
        "id": "msg_pai_opening", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 0, "output_tokens": 0}}});
    Bytes::from(format!("event: message_start\ndata: {data}\n\n"))
}

/// Reads a body to its end, at most [`MAX_WHOLE_BODY`]; each chunk within the idle
/// timeout (the provider's body stream enforces it).
pub(super) async fn read_whole(mut body: BodyStream, idle: Duration) -> Result<Bytes, Committed> {
    let mut whole = BytesMut::new();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) if whole.len() + chunk.len() > MAX_WHOLE_BODY => {
                return Err(Committed::Broken(format!(
                    "its answer is larger than {} MiB",
                    MAX_WHOLE_BODY >> 20
                )))
            }
            Ok(chunk) => whole.extend_from_slice(&chunk),
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {
                return Err(Committed::Stalled(idle))
            }
            Err(error) => return Err(Committed::Broken(format!("its answer broke off: {error}"))),
        }
    }
    Ok(whole.freeze())
}

/// Keeps the concurrency slot until the body has been sent (or dropped).
fn hold(body: BodyStream, permit: Option<Permit>) -> BodyStream {
    match permit {
        None => body,
        Some(permit) => Box::pin(body.map(move |chunk| {
            let _slot = &permit;
            chunk
        })),
    }
}
