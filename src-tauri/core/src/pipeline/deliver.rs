//! An answer on its way to the client, and its row in the request log.
//!
//! Chunks are forwarded the moment they arrive and never re-serialised (thinking
//! signatures stay byte-exact). An event stream always ends as Anthropic ends one: if the
//! upstream breaks off, stalls past its idle timeout or closes before `message_stop`, the
//! client gets an `error` event instead of a silently cut answer. When the client hangs
//! up, the stream is dropped, which drops the upstream response and so cancels the
//! upstream request; the log row then says `client_closed`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{header, HeaderMap, HeaderValue, StatusCode};

use super::{Answer, AnswerBody};
use crate::providers::BodyStream;
use crate::store::{Recorder, RequestRecord};
use crate::wire::sse::{AnthropicEvents, Ending};
use crate::wire::usage::{self, Usage};
use crate::wire::ApiError;

/// Largest non-streaming body kept aside to read its usage from.
const MAX_JSON_FOR_USAGE: usize = 4 << 20;

/// A request on its way, written to the log when its response ends (however it ends).
pub struct Pending {
    recorder: Recorder,
    pub record: RequestRecord,
    started: Instant,
    ttfb: Option<Duration>,
    finished: bool,
}

impl Pending {
    pub fn new(recorder: Recorder, record: RequestRecord, started: Instant) -> Self {
        Pending {
            recorder,
            record,
            started,
            ttfb: None,
            finished: false,
        }
    }

    /// Writes the record now with the given outcome (used when no body follows).
    pub fn finish(mut self, outcome: &str) {
        self.record.outcome = outcome.to_owned();
        self.write();
    }

    fn write(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.record.latency_ms = ms(self.started.elapsed());
        self.record.ttfb_ms = self.ttfb.map(ms);
        self.recorder.record(self.record.clone());
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.finished {
            if self.record.outcome.is_empty() {
                self.record.outcome = "client_closed".to_owned();
            }
            self.write();
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A body as the client receives it.
pub enum Delivered {
    /// Complete: sent with its length.
    Whole(Bytes),
    /// Sent as it comes; writes the request-log row when it ends.
    Stream(BodyStream),
}

impl Answer {
    /// The response as the client receives it: status, headers, and the body.
    pub fn deliver(self, mut pending: Pending) -> (StatusCode, HeaderMap, Delivered) {
        let Answer {
            status,
            mut headers,
            body,
            target,
            shared,
        } = self;
        if pending.record.target.is_none() {
            pending.record.target = target;
        }
        if shared {
            pending.record.outcome = "coalesced".to_owned();
        }
        pending.record.status = Some(status.as_u16());
        if let Some(change) = headers
            .get("x-pai-model-change")
            .and_then(|v| v.to_str().ok())
        {
            let reason = pending.record.route_reason.get_or_insert_with(String::new);
            reason.push_str(&format!("; model {change}"));
        }
        pending.ttfb = Some(pending.started.elapsed());
        let follow = match body {
            AnswerBody::Full(bytes) => {
                let usage = if bytes.len() <= MAX_JSON_FOR_USAGE {
                    usage::from_json(&bytes)
                } else {
                    Usage::default()
                };
                pending.record.response_bytes = bytes.len() as u64;
                pending.record.input_tokens = usage.input_tokens;
                pending.record.output_tokens = usage.output_tokens;
                if pending.record.outcome.is_empty() {
                    // The proxy's own error: every target failed, or none could be tried.
                    let own_error = headers.contains_key("x-pai-error");
                    pending.record.outcome =
                        if own_error { "upstream_error" } else { "ok" }.to_owned();
                }
                pending.write();
                return (status, headers, Delivered::Whole(bytes));
            }
            AnswerBody::Events(inner) => {
                // Tell intermediaries (and curl) not to buffer the event stream.
                headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
                Follow::Events {
                    inner,
                    events: Box::default(),
                }
            }
            AnswerBody::Raw(inner) => Follow::Raw(inner),
        };
        let stream = Delivery {
            follow,
            pending,
            done: false,
        };
        (status, headers, Delivered::Stream(Box::pin(stream)))
    }
}

enum Follow {
    Events {
        inner: BodyStream,
        events: Box<AnthropicEvents>,
    },
    Raw(BodyStream),
}

struct Delivery {
    follow: Follow,
    pending: Pending,
    done: bool,
}

impl Delivery {
    fn complete(&mut self, outcome: &str) {
        if let Follow::Events { events, .. } = &self.follow {
            let usage = events.usage();
            self.pending.record.input_tokens = usage.input_tokens;
            self.pending.record.output_tokens = usage.output_tokens;
        }
        if self.pending.record.outcome.is_empty() || outcome != "ok" {
            self.pending.record.outcome = outcome.to_owned();
        }
        self.pending.write();
        self.done = true;
    }

    fn provider(&self) -> String {
        self.pending
            .record
            .target
            .clone()
            .unwrap_or_else(|| "upstream".to_owned())
    }
}

impl Stream for Delivery {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        match &mut this.follow {
            Follow::Raw(inner) => match inner.poll_next_unpin(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    this.pending.record.response_bytes += chunk.len() as u64;
                    Poll::Ready(Some(Ok(chunk)))
                }
                Poll::Ready(Some(Err(error))) => {
                    tracing::warn!(provider = this.provider(), %error, "upstream body broke");
                    this.complete("upstream_error");
                    Poll::Ready(Some(Err(error)))
                }
                Poll::Ready(None) => {
                    this.complete("ok");
                    Poll::Ready(None)
                }
            },
            Follow::Events { inner, events } => match inner.poll_next_unpin(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    events.feed(&chunk);
                    this.pending.record.response_bytes += chunk.len() as u64;
                    Poll::Ready(Some(Ok(chunk)))
                }
                Poll::Ready(Some(Err(error))) => {
                    let provider = this.provider();
                    tracing::warn!(provider, %error, "upstream stream broke");
                    let error = if error.kind() == std::io::ErrorKind::TimedOut {
                        ApiError::overloaded(format!(
                            "provider {provider} stopped sending mid-answer ({error}); the answer is incomplete"
                        ))
                    } else {
                        ApiError::bad_gateway(format!("provider {provider} broke off the stream"))
                    };
                    this.complete("upstream_error");
                    Poll::Ready(Some(Ok(closing_error(&error))))
                }
                Poll::Ready(None) => match events.ending() {
                    Some(Ending::Stop) => {
                        this.complete("ok");
                        Poll::Ready(None)
                    }
                    Some(Ending::Error) => {
                        this.complete("upstream_error");
                        Poll::Ready(None)
                    }
                    None => {
                        let provider = this.provider();
                        tracing::warn!(provider, "upstream closed the stream before message_stop");
                        this.complete("truncated");
                        Poll::Ready(Some(Ok(closing_error(&ApiError::overloaded(format!(
                            "provider {provider} closed the stream before message_stop; the answer is incomplete"
                        ))))))
                    }
                },
            },
        }
    }
}

/// An `error` event that ends a stream cut short. It starts with a blank line, so it
/// stands as an event of its own whatever the upstream left half-written.
fn closing_error(error: &ApiError) -> Bytes {
    Bytes::from(format!("\n\n{}", error.sse_event()))
}

/// A streaming request held for the quota: the client gets its headers and `ping` events
/// at once (every `ping_every`) and then, when `answer` is ready, its events — or, for
/// an error answer, the error as an `error` event.
pub(super) fn held_stream(
    answer: impl Future<Output = Answer> + Send + 'static,
    ping_every: Duration,
) -> Answer {
    let body = async_stream::stream! {
        yield Ok(ping());
        let answer = {
            tokio::pin!(answer);
            let mut ticks = tokio::time::interval(ping_every);
            ticks.tick().await;
            loop {
                tokio::select! {
                    answer = &mut answer => break answer,
                    _ = ticks.tick() => yield Ok(ping()),
                }
            }
        };
        match answer.body {
            AnswerBody::Events(mut inner) | AnswerBody::Raw(mut inner) => {
                while let Some(chunk) = inner.next().await {
                    yield chunk;
                }
            }
            AnswerBody::Full(bytes) if answer.status.is_success() => yield Ok(bytes),
            AnswerBody::Full(bytes) => {
                let parsed: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                let message = parsed["error"]["message"]
                    .as_str()
                    .unwrap_or("the upstream failed")
                    .to_owned();
                let kind = crate::wire::error::error_type(answer.status.as_u16());
                yield Ok(Bytes::from(ApiError::new(answer.status, kind, message).sse_event()));
            }
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Answer {
        status: StatusCode::OK,
        headers,
        body: AnswerBody::Events(Box::pin(body)),
        target: Some("queue".to_owned()),
        shared: false,
    }
}

fn ping() -> Bytes {
    Bytes::from_static(b"event: ping\ndata: {\"type\": \"ping\"}\n\n")
}
