//! Streams a provider's answer to the client as it arrives, watching it go by.
//!
//! Chunks are forwarded the moment they arrive and never re-serialised (thinking
//! signatures stay byte-exact). On the way, usage is read for the request log. When the
//! client hangs up, axum drops this stream, which drops the upstream response and so
//! cancels the upstream request; the log row then says `client_closed`.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::error::ApiError;
use super::usage::{self, SseUsage, Usage};
use crate::providers::{BodyStream, Upstream};
use crate::store::{Recorder, RequestRecord};

/// Largest non-streaming body kept aside to read its usage from.
const MAX_JSON_FOR_USAGE: usize = 4 << 20;

/// Turns the provider's answer into the client's response.
pub fn relay(upstream: Upstream, mut record: Pending) -> Response {
    let Upstream {
        status,
        mut headers,
        body,
    } = upstream;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let is_sse = content_type.starts_with("text/event-stream");
    let encoded = headers.contains_key(header::CONTENT_ENCODING);
    record.record.status = Some(status.as_u16());
    record.ttfb = Some(record.started.elapsed());
    let reader = match (encoded, is_sse) {
        (true, _) => UsageReader::None,
        (false, true) => UsageReader::Sse(SseUsage::default()),
        (false, false) => UsageReader::Json(Vec::new()),
    };
    if is_sse {
        // Tell intermediaries (and curl) not to buffer the event stream.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    let stream = RelayStream {
        inner: body,
        pending: record,
        reader,
        is_sse,
        failed: false,
    };
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// A request on its way, written to the log when its response ends (however it ends).
pub struct Pending {
    pub recorder: Recorder,
    pub record: RequestRecord,
    pub started: Instant,
    pub ttfb: Option<std::time::Duration>,
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

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

enum UsageReader {
    None,
    Sse(SseUsage),
    Json(Vec<u8>),
}

impl UsageReader {
    fn feed(&mut self, chunk: &[u8]) {
        match self {
            UsageReader::None => {}
            UsageReader::Sse(sse) => sse.feed(chunk),
            UsageReader::Json(buf) => {
                if buf.len() + chunk.len() <= MAX_JSON_FOR_USAGE {
                    buf.extend_from_slice(chunk);
                } else {
                    *self = UsageReader::None;
                }
            }
        }
    }

    fn usage(&self) -> Usage {
        match self {
            UsageReader::None => Usage::default(),
            UsageReader::Sse(sse) => sse.usage(),
            UsageReader::Json(buf) => usage::from_json(buf),
        }
    }
}

struct RelayStream {
    inner: BodyStream,
    pending: Pending,
    reader: UsageReader,
    is_sse: bool,
    failed: bool,
}

impl RelayStream {
    fn complete(&mut self, outcome: &str) {
        let usage = self.reader.usage();
        self.pending.record.input_tokens = usage.input_tokens;
        self.pending.record.output_tokens = usage.output_tokens;
        self.pending.record.outcome = outcome.to_owned();
        self.pending.write();
    }
}

impl Stream for RelayStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.reader.feed(&chunk);
                self.pending.record.response_bytes += chunk.len() as u64;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => {
                self.failed = true;
                let provider = self.pending.record.target.clone().unwrap_or_default();
                tracing::warn!(provider, %error, "upstream stream broke");
                self.complete("upstream_error");
                if self.is_sse {
                    // End the stream the way Anthropic ends a failed one, so the client
                    // reports an error instead of a silently truncated answer.
                    let event =
                        ApiError::bad_gateway(format!("provider {provider} broke off the stream"))
                            .sse_event();
                    Poll::Ready(Some(Ok(Bytes::from(format!("\n\n{event}")))))
                } else {
                    Poll::Ready(Some(Err(error)))
                }
            }
            Poll::Ready(None) => {
                self.complete("ok");
                Poll::Ready(None)
            }
        }
    }
}
