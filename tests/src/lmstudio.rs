//! A mock LM Studio 0.4 on loopback, as its documentation describes it (lmstudio-ai/docs,
//! `1_developer/2_rest/`: `list.md`, `load.md`, `unload.md`): `GET /api/v1/models` (models
//! with their `loaded_instances`), `POST /api/v1/models/load` — `context_length` and the
//! other settings at the top level of the body, anything else ignored (so a nested
//! `config` loads with the default 4096), answered `{"type", "instance_id",
//! "load_time_seconds", "status": "loaded"}` plus `load_config` when `echo_load_config`;
//! like the real one it makes a second instance of a model already loaded — `POST
//! /api/v1/models/unload`, and the chat endpoints (`/v1/chat/completions`, `/v1/messages`)
//! which, like LM Studio's just-in-time loading, load a model asked for that is not loaded
//! with the default context, and refuse a prompt longer than the loaded context.
//! Authentication by bearer token when one is set. Loads can be held until the test
//! releases them; knobs make a load come back smaller than asked, or not appear at all.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub struct LoadedInstance {
    pub id: String,
    pub model: String,
    pub context_length: u64,
}

#[derive(Default)]
pub struct LmState {
    /// Model keys on disk.
    pub models: Vec<String>,
    pub instances: Vec<LoadedInstance>,
    /// Every load request's body, in order.
    pub loads: Vec<Value>,
    /// Every unloaded instance id, in order.
    pub unloads: Vec<String>,
    /// Chat requests answered.
    pub chats: usize,
    /// Loads made just in time by a chat request (with the default context).
    pub jit_loads: usize,
    /// The most context a load gets (the machine's memory), when set.
    pub max_context: Option<u64>,
    /// Loads answer 200 but no instance appears (a failure LM Studio does not report).
    pub phantom_loads: bool,
}

/// LM Studio's default context length for a load that names none.
pub const DEFAULT_CONTEXT: u64 = 4096;

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<LmState>>,
    token: Option<String>,
    /// When set, loads wait for it.
    load_gate: Option<Arc<Notify>>,
}

pub struct MockLmStudio {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<LmState>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl MockLmStudio {
    /// LM Studio with `models` on disk and `loaded` (model, context) instances;
    /// `token` turns authentication on; `load_gate` holds every load until notified.
    pub async fn start(
        models: &[&str],
        loaded: &[(&str, u64)],
        token: Option<&str>,
        load_gate: Option<Arc<Notify>>,
    ) -> MockLmStudio {
        let state = Arc::new(Mutex::new(LmState {
            models: models.iter().map(|m| (*m).to_owned()).collect(),
            instances: loaded
                .iter()
                .map(|(model, context_length)| LoadedInstance {
                    id: (*model).to_owned(),
                    model: (*model).to_owned(),
                    context_length: *context_length,
                })
                .collect(),
            ..LmState::default()
        }));
        let shared = Shared {
            state: state.clone(),
            token: token.map(str::to_owned),
            load_gate,
        };
        let app = Router::new()
            .route("/api/v1/models", get(list))
            .route("/api/v1/models/load", post(load))
            .route("/api/v1/models/unload", post(unload))
            .route("/v1/chat/completions", post(chat))
            .route("/v1/messages", post(messages))
            .route_layer(middleware::from_fn_with_state(shared.clone(), authorized))
            .with_state(shared);
        let (addr, shutdown) = crate::mock::serve(app).await;
        MockLmStudio {
            addr,
            state,
            _shutdown: shutdown,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn instances(&self) -> Vec<LoadedInstance> {
        self.state.lock().unwrap().instances.clone()
    }

    pub fn loads(&self) -> Vec<Value> {
        self.state.lock().unwrap().loads.clone()
    }

    pub fn unloads(&self) -> Vec<String> {
        self.state.lock().unwrap().unloads.clone()
    }

    /// Unloads everything, as LM Studio's idle TTL or auto-evict does.
    pub fn evict(&self) {
        self.state.lock().unwrap().instances.clear();
    }
}

/// With a token set, every endpoint wants it: as a bearer token, or (for `/v1/messages`,
/// as Anthropic's API takes it) as `x-api-key`.
async fn authorized(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let Some(token) = shared.token.as_deref() else {
        return next.run(request).await;
    };
    let headers = request.headers();
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
    if given == Some(token) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": {"message": "Invalid or missing API token", "type": "invalid_api_key"}})),
    )
        .into_response()
}

async fn list(State(shared): State<Shared>) -> Response {
    let state = shared.state.lock().unwrap();
    let models: Vec<Value> = state
        .models
        .iter()
        .map(|key| {
            let instances: Vec<Value> = state
                .instances
                .iter()
                .filter(|i| &i.model == key)
                .map(|i| json!({"id": i.id, "config": {"context_length": i.context_length}}))
                .collect();
            json!({"type": "llm", "publisher": "mock", "key": key, "display_name": key,
                "loaded_instances": instances, "max_context_length": 131072, "format": "gguf",
                "capabilities": {"vision": false, "trained_for_tool_use": true}})
        })
        .collect();
    Json(json!({ "models": models })).into_response()
}

async fn load(State(shared): State<Shared>, Json(body): Json<Value>) -> Response {
    shared.state.lock().unwrap().loads.push(body.clone());
    if let Some(gate) = &shared.load_gate {
        gate.notified().await;
    }
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let asked = body["context_length"].as_u64().unwrap_or(DEFAULT_CONTEXT);
    let mut state = shared.state.lock().unwrap();
    if !state.models.contains(&model) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"message": "model not found"}})),
        )
            .into_response();
    }
    let context_length = state.max_context.map_or(asked, |most| asked.min(most));
    let id = if state.phantom_loads {
        format!("{model}:phantom")
    } else {
        new_instance(&mut state, &model, context_length)
    };
    let mut answer =
        json!({"type": "llm", "instance_id": id, "load_time_seconds": 1.5, "status": "loaded"});
    if body["echo_load_config"] == true {
        answer["load_config"] = json!({"context_length": context_length, "flash_attention": true});
    }
    Json(answer).into_response()
}

/// As LM Studio does: loading again makes another instance, `key:2`.
fn new_instance(state: &mut LmState, model: &str, context_length: u64) -> String {
    let same = state.instances.iter().filter(|i| i.model == model).count();
    let id = if same == 0 {
        model.to_owned()
    } else {
        format!("{model}:{}", same + 1)
    };
    state.instances.push(LoadedInstance {
        id: id.clone(),
        model: model.to_owned(),
        context_length,
    });
    id
}

async fn unload(State(shared): State<Shared>, Json(body): Json<Value>) -> Response {
    let id = body["instance_id"].as_str().unwrap_or_default().to_owned();
    let mut state = shared.state.lock().unwrap();
    let before = state.instances.len();
    state.instances.retain(|i| i.id != id);
    if state.instances.len() == before {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"message": "no such instance"}})),
        )
            .into_response();
    }
    state.unloads.push(id.clone());
    Json(json!({"instance_id": id})).into_response()
}

/// The loaded context of `model`, or why the prompt cannot be answered.
fn fits(shared: &Shared, body: &Value) -> Result<(), String> {
    let model = body["model"].as_str().unwrap_or_default();
    let prompt_tokens = body.to_string().len() as u64 / 4;
    let mut state = shared.state.lock().unwrap();
    if !state.instances.iter().any(|i| i.model == model) && state.models.iter().any(|m| m == model)
    {
        // Just-in-time loading, with the default context.
        new_instance(&mut state, model, DEFAULT_CONTEXT);
        state.jit_loads += 1;
    }
    let context = state
        .instances
        .iter()
        .filter(|i| i.model == model)
        .map(|i| i.context_length)
        .max()
        .ok_or_else(|| format!("model {model} is not loaded"))?;
    if prompt_tokens > context {
        return Err(format!(
            "The number of tokens to keep from the initial prompt is greater than the context length ({prompt_tokens} > {context})"
        ));
    }
    state.chats += 1;
    Ok(())
}

async fn chat(State(shared): State<Shared>, Json(body): Json<Value>) -> Response {
    if let Err(message) = fits(&shared, &body) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": message}})),
        )
            .into_response();
    }
    if body["stream"].as_bool() == Some(true) {
        let text = crate::openai::text_stream("loaded and answering").concat();
        return ([("content-type", "text/event-stream")], text).into_response();
    }
    Json(crate::openai::completion("loaded and answering")).into_response()
}

async fn messages(State(shared): State<Shared>, Json(body): Json<Value>) -> Response {
    if let Err(message) = fits(&shared, &body) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}})),
        )
            .into_response();
    }
    let model = body["model"].as_str().unwrap_or_default();
    if body["stream"].as_bool() == Some(true) {
        let text = crate::anthropic::text_stream(model, "loaded and answering").concat();
        return ([("content-type", "text/event-stream")], text).into_response();
    }
    Json(crate::anthropic::text_message(
        model,
        "loaded and answering",
    ))
    .into_response()
}
