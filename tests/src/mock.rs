//! A mock upstream: a real HTTP server on 127.0.0.1 with a random port that records what
//! it receives and answers as a script says (JSON, SSE with gates between events, errors).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use futures_util::stream;
use tokio::sync::{mpsc, Notify};

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, e.g. `/v1/messages?beta=true`.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the mock answers.
pub enum Reply {
    Json {
        status: u16,
        headers: Vec<(String, String)>,
        body: serde_json::Value,
    },
    /// Server-sent events, sent one by one. Before event `i`, if `gates` has an entry
    /// `(i, notify)`, the mock waits for `notify` — the test decides when the stream goes on.
    Sse {
        headers: Vec<(String, String)>,
        events: Vec<String>,
        gates: Vec<(usize, Arc<Notify>)>,
        /// Told when the stream is dropped before its end (the client went away).
        dropped: Option<mpsc::UnboundedSender<()>>,
        /// Called as the last event is handed out (before the client can see the end).
        on_end: Option<Arc<dyn Fn() + Send + Sync>>,
    },
}

impl Reply {
    pub fn json(body: serde_json::Value) -> Reply {
        Reply::Json {
            status: 200,
            headers: vec![("request-id".into(), "req_mock".into())],
            body,
        }
    }

    pub fn status(status: u16, headers: &[(&str, &str)], body: serde_json::Value) -> Reply {
        Reply::Json {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body,
        }
    }

    /// The same reply with `extra` headers added (quota headers on a standard answer).
    pub fn with_headers(self, extra: Vec<(String, String)>) -> Reply {
        match self {
            Reply::Json {
                status,
                mut headers,
                body,
            } => {
                headers.extend(extra);
                Reply::Json {
                    status,
                    headers,
                    body,
                }
            }
            Reply::Sse {
                mut headers,
                events,
                gates,
                dropped,
                on_end,
            } => {
                headers.extend(extra);
                Reply::Sse {
                    headers,
                    events,
                    gates,
                    dropped,
                    on_end,
                }
            }
        }
    }

    pub fn sse(events: Vec<String>) -> Reply {
        Reply::Sse {
            headers: vec![],
            events,
            gates: vec![],
            dropped: None,
            on_end: None,
        }
    }
}

type Script = dyn Fn(&Recorded) -> Reply + Send + Sync;

#[derive(Clone)]
struct MockState {
    recorded: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Script>,
}

pub struct MockUpstream {
    pub addr: SocketAddr,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl MockUpstream {
    /// Starts a mock that answers every request with `script(request)`.
    pub async fn start(
        script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> MockUpstream {
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let state = MockState {
            recorded: recorded.clone(),
            script: Arc::new(script),
        };
        let app = Router::new().fallback(handle).with_state(state);
        let (addr, shutdown) = serve(app).await;
        MockUpstream {
            addr,
            recorded,
            _shutdown: shutdown,
        }
    }

    /// A mock that answers like Anthropic: SSE for `stream: true`, JSON otherwise,
    /// `{"input_tokens": N}` for count_tokens.
    pub async fn anthropic(text: &'static str) -> MockUpstream {
        MockUpstream::start(move |req| anthropic_reply(req, text)).await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }
}

/// Serves `app` on a random loopback port until the returned sender is dropped.
pub async fn serve(app: Router) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    (addr, tx)
}

/// The standard Anthropic-like answer to `req`.
pub fn anthropic_reply(req: &Recorded, text: &str) -> Reply {
    if req.uri.starts_with("/v1/messages/count_tokens") {
        return Reply::json(serde_json::json!({"input_tokens": 42}));
    }
    let body = req.json();
    let model = body["model"]
        .as_str()
        .unwrap_or("claude-sonnet-5")
        .to_owned();
    if body["stream"].as_bool() == Some(true) {
        Reply::sse(crate::anthropic::text_stream(&model, text))
    } else {
        Reply::json(crate::anthropic::text_message(&model, text))
    }
}

async fn handle(State(state): State<MockState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        uri: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers: parts.headers,
        body,
    };
    let reply = (state.script)(&recorded);
    state.recorded.lock().unwrap().push(recorded);
    match reply {
        Reply::Json {
            status,
            headers,
            body,
        } => {
            let mut response = Response::new(Body::from(body.to_string()));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            set_headers(&mut response, &headers);
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            response
        }
        Reply::Sse {
            headers,
            events,
            gates,
            dropped,
            on_end,
        } => {
            let guard = DropAlarm {
                tx: dropped,
                finished: false,
            };
            let total = events.len();
            let state = (events.into_iter().enumerate(), gates, guard);
            let body = stream::unfold(state, move |(mut events, gates, mut guard)| {
                let on_end = on_end.clone();
                async move {
                    let (i, event) = events.next()?;
                    if let Some((_, gate)) = gates.iter().find(|(at, _)| *at == i) {
                        gate.notified().await;
                    }
                    if i + 1 == total {
                        guard.finished = true;
                        if let Some(on_end) = &on_end {
                            on_end();
                        }
                    }
                    Some((
                        Ok::<_, Infallible>(Bytes::from(event)),
                        (events, gates, guard),
                    ))
                }
            });
            let mut response = Response::new(Body::from_stream(body));
            set_headers(&mut response, &headers);
            response.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("text/event-stream; charset=utf-8"),
            );
            response
        }
    }
}

fn set_headers(response: &mut Response, headers: &[(String, String)]) {
    for (k, v) in headers {
        response.headers_mut().append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
}

/// Reports a stream dropped before its last event: the proxy cancelled the upstream.
struct DropAlarm {
    tx: Option<mpsc::UnboundedSender<()>>,
    finished: bool,
}

impl Drop for DropAlarm {
    fn drop(&mut self) {
        if !self.finished {
            if let Some(tx) = &self.tx {
                let _ = tx.send(());
            }
        }
    }
}
