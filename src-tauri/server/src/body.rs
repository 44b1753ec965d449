//! Reading a request body, with Anthropic's limit and its `413` in Anthropic's shape.
//!
//! A body over the limit is still read (and thrown away) up to a bound before the `413`
//! goes out: a client that is still sending when the proxy closes would see a connection
//! reset instead of the answer, and the SDKs then retry the whole upload.

use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::{header, HeaderMap};

use pai_core::wire::ApiError;

/// Largest request body accepted (Anthropic's own limit for Messages is 32 MB).
pub const MAX_BODY_BYTES: usize = 32 << 20;

/// How much of an oversized body is read and discarded so the client reads the `413`.
const DRAIN_BYTES: u64 = 256 << 20;

/// How long draining an oversized body may take.
const DRAIN_TIME: Duration = Duration::from_secs(30);

/// Reads the whole body, at most [`MAX_BODY_BYTES`].
pub async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::too_large(format!(
            "request body exceeds the proxy's limit of {} MiB",
            MAX_BODY_BYTES >> 20
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut stream = body.into_data_stream();
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        drain(&mut stream).await;
        return Err(too_large());
    }
    let capacity = declared.map_or(0, |len| len as usize);
    let mut whole = BytesMut::with_capacity(capacity);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| {
            ApiError::invalid_request(format!("cannot read the request body: {error}"))
        })?;
        if whole.len() + chunk.len() > MAX_BODY_BYTES {
            drain(&mut stream).await;
            return Err(too_large());
        }
        whole.extend_from_slice(&chunk);
    }
    Ok(whole.freeze())
}

/// Reads and discards what the client still sends, within [`DRAIN_BYTES`] and
/// [`DRAIN_TIME`].
async fn drain(stream: &mut axum::body::BodyDataStream) {
    let discard = async {
        let mut read = 0u64;
        while let Some(Ok(chunk)) = stream.next().await {
            read += chunk.len() as u64;
            if read > DRAIN_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
}
