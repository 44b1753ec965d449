//! Accepting client connections: HTTP/1.1 with TCP_NODELAY, a time limit on reading a
//! request's headers that is also the keep-alive idle limit, a cap on open connections
//! (beyond it a clear `503`, in Anthropic's shape), and a body for the errors hyper
//! answers by itself (a malformed request, headers too large) so that every error a
//! client gets says what went wrong.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use pai_core::wire::ApiError;

/// How long an over-the-cap connection may take to send the request it gets a 503 for.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// How many client connections may be open, and how many beyond that are answered `503`
/// at once (more are closed at once).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub open: usize,
    pub refused_at_once: usize,
}

/// The open client connections, counted against the cap.
#[derive(Clone)]
pub struct Connections {
    slots: Arc<Semaphore>,
    refusals: Arc<Semaphore>,
    max: usize,
}

impl Connections {
    pub fn new(limits: ConnectionLimits) -> Connections {
        Connections {
            slots: Arc::new(Semaphore::new(limits.open)),
            refusals: Arc::new(Semaphore::new(limits.refused_at_once)),
            max: limits.open,
        }
    }

    /// Client connections open now.
    pub fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }
}

/// Serves `router` on `listener` until `shutdown` fires, then waits for the open
/// connections to finish (the daemon bounds that wait with its grace period).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    connections: Connections,
    idle_timeout: Duration,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(idle_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    // Every connection's task: dropping this set (the server cut after its grace
    // period) cuts them all.
    let mut tasks = tokio::task::JoinSet::new();
    let mut fd_warning = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = tasks.join_next() => continue,
            _ = shutdown.cancelled() => break,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(error) => {
                // Out of file descriptors, say: wait a little for some to close, never stop.
                if fd_warning
                    .is_none_or(|at: std::time::Instant| at.elapsed() > Duration::from_secs(60))
                {
                    tracing::warn!(%error, "cannot accept a connection; retrying");
                    fd_warning = Some(std::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let io = TokioIo::new(ErrorBodies::new(tcp));
        match connections.take() {
            Some(slot) => {
                let service = TowerToHyperService::new(router.clone());
                let connection = graceful.watch(builder.serve_connection(io, service));
                tasks.spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "client connection ended with an error");
                    }
                    drop(slot);
                });
            }
            None => {
                let Ok(slot) = connections.refusals.clone().try_acquire_owned() else {
                    continue;
                };
                let mut refuse = builder.clone();
                refuse.keep_alive(false);
                let service = hyper::service::service_fn(|_request| async {
                    Ok::<_, std::convert::Infallible>(too_many_connections())
                });
                let connection = refuse.serve_connection(io, service);
                tasks.spawn(async move {
                    let _ = tokio::time::timeout(REFUSAL_TIME, connection).await;
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
    while tasks.join_next().await.is_some() {}
    Ok(())
}

fn too_many_connections() -> hyper::Response<axum::body::Body> {
    let error =
        ApiError::unavailable("the proxy has too many open connections; try again in a moment");
    let mut response = hyper::Response::new(axum::body::Body::from(error.body().to_string()));
    *response.status_mut() = error.status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert("retry-after", http::HeaderValue::from_static("1"));
    response
}

/// A client connection that gives hyper's own error responses a body.
///
/// hyper answers a request it cannot parse itself, with `content-length: 0` and no
/// body, then closes. Our handlers never send an empty 4xx, so such a response is
/// hyper's: it is replaced, as it is written, by the same status with an Anthropic
/// error body.
struct ErrorBodies {
    tcp: TcpStream,
    /// The replacement still to write, and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
}

impl ErrorBodies {
    fn new(tcp: TcpStream) -> Self {
        ErrorBodies {
            tcp,
            replacement: None,
        }
    }

    /// Writes what is left of the replacement; ready once it is all written.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement {
            if *written == bytes.len() {
                self.replacement = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

/// hyper's bodiless error response -> the same status with an Anthropic error body.
fn replace_bodiless_error(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let rest = text.strip_prefix("HTTP/1.1 ")?;
    let status: u16 = rest.get(..3)?.parse().ok()?;
    let message = match status {
        400 => "the request is not valid HTTP (malformed request line or headers)",
        414 => "the request URI is too long",
        431 => "the request headers are too large",
        _ => return None,
    };
    let lower = text.to_ascii_lowercase();
    if !lower.contains("\r\ncontent-length: 0\r\n") || !text.ends_with("\r\n\r\n") {
        return None;
    }
    let kind = pai_core::wire::error::error_type(status);
    let status = http::StatusCode::from_u16(status).ok()?;
    let body = ApiError::new(status, kind, message).body().to_string();
    Some(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nx-pai-error: proxy\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl AsyncRead for ErrorBodies {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ErrorBodies {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_replacement(cx))?;
        if buf.len() < 512 && buf.starts_with(b"HTTP/1.1 4") {
            if let Some(replacement) = replace_bodiless_error(buf) {
                // hyper's bytes count as written; flushing writes the replacement.
                self.replacement = Some((replacement, 0));
                if let Poll::Ready(Err(error)) = self.poll_replacement(cx) {
                    return Poll::Ready(Err(error));
                }
                return Poll::Ready(Ok(buf.len()));
            }
        }
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_replacement(cx))?;
        // A bodiless error head comes as one buffer; anything else passes untouched.
        if let [only] = bufs {
            return self.poll_write(cx, only);
        }
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::replace_bodiless_error;

    #[test]
    fn hyper_error_heads_get_a_body_and_others_pass() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Fri, 27 Nov 2026 10:00:00 GMT\r\n\r\n";
        let replaced = String::from_utf8(replace_bodiless_error(head).unwrap()).unwrap();
        assert!(replaced.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        let body = replaced.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["type"], "error");
        assert_eq!(
            json["error"]["message"],
            "the request headers are too large"
        );
        // Our own responses have bodies; a 2xx or a head with a length is left alone.
        assert!(
            replace_bodiless_error(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 97\r\n\r\n")
                .is_none()
        );
        assert!(replace_bodiless_error(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
