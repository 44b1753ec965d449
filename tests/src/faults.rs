//! An upstream that fails the way real ones do, written at the TCP level where an HTTP
//! framework would hide the fault: a stall after the headers, a body cut without
//! framing, an error as the first event. It counts the connections it holds, so a test
//! can see the proxy let go of them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// A request as the faulty upstream read it.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub head: String,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

/// What the upstream does with a request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// A complete, well-formed answer (`status`, content type, body).
    Answer {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// Headers (chunked), then `events` (maybe none), then silence until the peer leaves.
    StallAfterHeaders {
        content_type: &'static str,
        events: Vec<String>,
    },
    /// Nothing at all (not even headers) until the peer leaves.
    StallBeforeHeaders,
    /// Headers with `connection: close` and no length or chunking, `events`, then close:
    /// only the content tells the answer is incomplete.
    CloseMidBody {
        content_type: &'static str,
        events: Vec<String>,
    },
}

impl Fault {
    pub fn json(status: u16, body: &serde_json::Value) -> Fault {
        Fault::Answer {
            status,
            content_type: "application/json",
            body: body.to_string(),
        }
    }

    pub fn sse(events: &[String]) -> Fault {
        Fault::Answer {
            status: 200,
            content_type: "text/event-stream",
            body: events.concat(),
        }
    }
}

type Script = dyn Fn(&RawRequest) -> Fault + Send + Sync;

pub struct FaultyUpstream {
    pub addr: std::net::SocketAddr,
    open: Arc<watch::Sender<usize>>,
    accepted: Arc<AtomicUsize>,
    seen: mpsc::UnboundedReceiver<RawRequest>,
    seen_all: Arc<std::sync::Mutex<Vec<RawRequest>>>,
}

impl FaultyUpstream {
    pub async fn start(script: impl Fn(&RawRequest) -> Fault + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(watch::channel(0usize).0);
        let accepted = Arc::new(AtomicUsize::new(0));
        let seen_all: Arc<std::sync::Mutex<Vec<RawRequest>>> = Arc::default();
        let (tx, seen) = mpsc::unbounded_channel();
        let script: Arc<Script> = Arc::new(script);
        let (counter, total, all) = (open.clone(), accepted.clone(), seen_all.clone());
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                counter.send_modify(|n| *n += 1);
                total.fetch_add(1, Ordering::SeqCst);
                let (script, tx, counter, all) =
                    (script.clone(), tx.clone(), counter.clone(), all.clone());
                tokio::spawn(async move {
                    serve(socket, &*script, &tx, &all).await;
                    counter.send_modify(|n| *n -= 1);
                });
            }
        });
        FaultyUpstream {
            addr,
            open,
            accepted,
            seen,
            seen_all,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        *self.open.borrow()
    }

    pub fn accepted_connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits (at most 10 s) for the next request to arrive.
    pub async fn next_request(&mut self) -> RawRequest {
        tokio::time::timeout(Duration::from_secs(10), self.seen.recv())
            .await
            .expect("no request reached the upstream")
            .unwrap()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RawRequest> {
        self.seen_all.lock().unwrap().clone()
    }

    /// Waits (at most 10 s) until at most `n` connections are open.
    pub async fn wait_open_at_most(&self, n: usize) {
        let mut open = self.open.subscribe();
        let waited =
            tokio::time::timeout(Duration::from_secs(10), open.wait_for(|open| *open <= n)).await;
        assert!(
            waited.is_ok(),
            "the upstream still holds {} connections",
            self.open_connections()
        );
    }
}

/// Serves one connection: one request and its answer (or fault).
async fn serve(
    mut socket: TcpStream,
    script: &Script,
    tx: &mpsc::UnboundedSender<RawRequest>,
    all: &std::sync::Mutex<Vec<RawRequest>>,
) {
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    let fault = script(&request);
    all.lock().unwrap().push(request.clone());
    let _ = tx.send(request);
    match fault {
        Fault::Answer {
            status,
            content_type,
            body,
        } => {
            // One answer per connection: every socket it holds is one it is using.
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
        Fault::StallAfterHeaders {
            content_type,
            events,
        } => {
            let mut out = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n"
            );
            for event in events {
                out.push_str(&format!("{:x}\r\n{event}\r\n", event.len()));
            }
            let _ = socket.write_all(out.as_bytes()).await;
            hold(&mut socket).await;
        }
        Fault::StallBeforeHeaders => hold(&mut socket).await,
        Fault::CloseMidBody {
            content_type,
            events,
        } => {
            let out = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\nconnection: close\r\n\r\n{}",
                events.concat()
            );
            let _ = socket.write_all(out.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    }
}

/// Keeps a connection open until the peer closes it.
async fn hold(socket: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = socket.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

/// Reads one request (head and `content-length` body); `None` when the peer closed.
async fn read_request(socket: &mut TcpStream) -> Option<RawRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(RawRequest { head, body })
}
