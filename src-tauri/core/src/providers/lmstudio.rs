//! LM Studio's own API: what is loaded and with which context, and loading a model with
//! the context Claude Code needs.
//!
//! LM Studio 0.4 lists models at `/api/v1/models` (`key`, `type`, `max_context_length`,
//! `capabilities`, `loaded_instances[].config.context_length`) and loads them with
//! `POST /api/v1/models/load`; older versions only list, at `/api/v0/models`. Two traps
//! this module exists for: a model LM Studio loads on first use gets a small default
//! context (Claude Code's system prompt and tools alone are ~20k tokens), and loading a
//! model that is already loaded makes a second instance. So a provider that names a
//! `model` and a `load_context` has it loaded once, by one request while the others wait
//! for that load, after unloading an instance whose context is too small. A load is
//! believed when LM Studio lists the instance afterwards, with its context; one that
//! outran its bound is not sent again while it may still run; one that was not listed, or
//! came back smaller than asked, is not retried on every request; and a model LM Studio
//! unloaded by itself (idle TTL) is loaded again before the next chat, which would
//! otherwise load it with the small default.
//!
//! Imports: `config`, `net`, and the provider types beside it.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

use super::{Capabilities, HealthBoard, Instance, Loading, ModelInfo, ProviderError};
use crate::config::ProviderConfig;
use crate::net::Http;

/// How long a models check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long loading a model may take (a large model from disk takes a minute or more).
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(300);
/// Room for the answer on top of the prompt when deciding whether a context is enough.
const ANSWER_ROOM: u64 = 4096;

/// The server root of a base URL (`http://localhost:1234/v1` -> `http://localhost:1234`).
pub fn root(base_url: &str) -> &str {
    let base = base_url.trim_end_matches('/');
    base.strip_suffix("/v1").unwrap_or(base)
}

/// What LM Studio serves: `/api/v1/models`, else (before 0.4) `/api/v0/models`.
pub async fn models(http: &Http, root: &str, headers: &HeaderMap) -> Result<ModelInfo, String> {
    match get_json(http, &format!("{root}/api/v1/models"), headers).await {
        Ok(body) if body["models"].is_array() => Ok(from_v1(&body)),
        Err(error) if error.starts_with("HTTP 401") || error.starts_with("HTTP 403") => {
            Err(format!("LM Studio refused the token: {error}"))
        }
        _ => {
            let body = get_json(http, &format!("{root}/api/v0/models"), headers).await?;
            from_v0(&body)
        }
    }
}

async fn get_json(http: &Http, url: &str, headers: &HeaderMap) -> Result<Value, String> {
    let response = http
        .get(url, headers.clone(), CHECK_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    if !response.status.is_success() {
        return Err(format!("HTTP {}", response.status.as_u16()));
    }
    response.json().ok_or_else(|| "not JSON".to_owned())
}

fn tokens(value: &Value) -> Option<u32> {
    value.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// `GET /api/v1/models`: chat models (`type: llm`) and their loaded instances.
fn from_v1(body: &Value) -> ModelInfo {
    let llms: Vec<&Value> = body["models"]
        .as_array()
        .map(|models| {
            models
                .iter()
                .filter(|m| m["type"].as_str() != Some("embedding"))
                .collect()
        })
        .unwrap_or_default();
    let instances: Vec<Instance> = llms
        .iter()
        .flat_map(|m| {
            let model = m["key"].as_str().unwrap_or_default().to_owned();
            m["loaded_instances"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |i| Instance {
                    id: i["id"].as_str().unwrap_or_default().to_owned(),
                    model: model.clone(),
                    context_length: tokens(&i["config"]["context_length"]),
                })
        })
        .collect();
    let loaded = instances.first();
    let loaded_model = loaded.and_then(|i| llms.iter().find(|m| m["key"] == i.model.as_str()));
    ModelInfo {
        models: llms
            .iter()
            .filter_map(|m| m["key"].as_str().map(str::to_owned))
            .collect(),
        loaded: loaded.map(|i| i.model.clone()),
        context_window: loaded.and_then(|i| i.context_length),
        capabilities: loaded_model.map(|m| Capabilities {
            vision: m["capabilities"]["vision"].as_bool().unwrap_or(false),
            tool_use: m["capabilities"]["trained_for_tool_use"]
                .as_bool()
                .unwrap_or(false),
        }),
        instances,
        api: Some("lmstudio-v1".to_owned()),
    }
}

/// `GET /api/v0/models`: `state: "loaded"`, `loaded_context_length`.
fn from_v0(body: &Value) -> Result<ModelInfo, String> {
    let data = body["data"].as_array().ok_or("no data")?;
    let is_chat = |m: &&Value| !matches!(m["type"].as_str(), Some("embeddings"));
    let loaded = data
        .iter()
        .filter(is_chat)
        .find(|m| m["state"].as_str() == Some("loaded"));
    Ok(ModelInfo {
        models: data
            .iter()
            .filter(is_chat)
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect(),
        loaded: loaded.and_then(|m| m["id"].as_str().map(str::to_owned)),
        context_window: loaded.and_then(|m| {
            tokens(&m["loaded_context_length"]).or_else(|| tokens(&m["max_context_length"]))
        }),
        api: Some("lmstudio-v0".to_owned()),
        ..ModelInfo::default()
    })
}

/// The context a request of `input_tokens` needs: the prompt and room to answer.
pub fn needed_context(input_tokens: u64) -> u64 {
    input_tokens.saturating_add(ANSWER_ROOM)
}

/// Whether `info` shows `model` loaded with at least `needed` tokens of context.
pub fn is_ready(info: &ModelInfo, model: &str, needed: u64) -> bool {
    info.instances
        .iter()
        .any(|i| i.model == model && i.context_length.is_some_and(|c| u64::from(c) >= needed))
}

/// How long a load that outran [`LOAD_TIMEOUT`] may still be running in LM Studio: no
/// second load is sent meanwhile.
const STILL_LOADING_FOR: Duration = Duration::from_secs(600);
/// How long a load that did not give what it said is not tried again.
const LOAD_TROUBLE_FOR: Duration = Duration::from_secs(600);

/// A provider whose model the proxy loads (`model` and `load_context` set).
pub struct Loader {
    /// One load at a time: requests that need the same load wait here, then find it done.
    lock: Arc<tokio::sync::Mutex<LoadState>>,
}

/// What the loads so far taught.
#[derive(Default)]
struct LoadState {
    trouble: Option<(std::time::Instant, Trouble)>,
}

/// A load that did not end as it should have.
#[derive(Debug, Clone)]
enum Trouble {
    /// It outran the bound; LM Studio may still be loading.
    StillLoading,
    /// LM Studio said it loaded it, but lists no such instance.
    NotListed,
    /// It loaded with less context than asked: this much at most.
    Smaller(u32),
}

impl Loader {
    pub fn for_provider(config: &ProviderConfig) -> Option<Loader> {
        config.load_context?;
        Some(Loader {
            lock: Arc::new(tokio::sync::Mutex::new(LoadState::default())),
        })
    }

    /// Whether requests go through [`Loader::ensure`] first: on LM Studio 0.4 every one
    /// does — a listing is cheap, and LM Studio unloads idle models by itself (JIT TTL,
    /// auto-evict), after which a chat would have it loaded with the small default.
    pub fn must_load(&self, config: &ProviderConfig, board: &HealthBoard) -> bool {
        let older_api = board
            .report(&config.name)
            .info
            .is_some_and(|i| i.api.as_deref() != Some("lmstudio-v1"));
        config.model.is_some() && !older_api
    }

    /// Makes sure `config.model` is loaded with enough context for `input_tokens`: loads
    /// it with `load_context` (unloading a smaller instance first, so there is never a
    /// second one), unless another request's load already did, and checks by listing
    /// that LM Studio holds the instance it said it loaded. The caller bounds its wait
    /// with [`LOAD_TIMEOUT`].
    ///
    /// The load runs as a task of its own: a client that hangs up (Esc in Claude Code)
    /// stops waiting, but the load goes on to its end under the lock — cut off half-way,
    /// LM Studio could go on loading while the next request, seeing nothing loaded yet,
    /// starts a second instance.
    /// `loading` is told when a load (or an unload before it) begins, so the request can
    /// say it waits.
    pub async fn ensure(
        &self,
        http: &Http,
        config: &ProviderConfig,
        headers: &HeaderMap,
        board: &HealthBoard,
        input_tokens: u64,
        loading: tokio::sync::oneshot::Sender<()>,
    ) -> Result<(), ProviderError> {
        let lock = self.lock.clone();
        let (http, owned, headers, board) =
            (http.clone(), config.clone(), headers.clone(), board.clone());
        let load = tokio::spawn(async move {
            let mut loading = Some(loading);
            let mut state = match lock.clone().try_lock_owned() {
                Ok(state) => state,
                Err(_) => {
                    // Another request's load is under way: this one waits for it.
                    if let Some(loading) = loading.take() {
                        let _ = loading.send(());
                    }
                    lock.lock_owned().await
                }
            };
            load_unless_ready(
                &http,
                &owned,
                &headers,
                &board,
                input_tokens,
                &mut state,
                loading,
            )
            .await
            .map(|_| ())
        });
        load.await.map_err(|stopped| ProviderError::Failed {
            provider: config.name.clone(),
            reason: format!("the model load stopped: {stopped}"),
        })?
    }
}

/// The largest context among `model`'s instances, if it is loaded.
fn loaded_context(info: &ModelInfo, model: &str) -> Option<u32> {
    info.instances
        .iter()
        .filter(|i| i.model == model)
        .filter_map(|i| i.context_length)
        .max()
}

/// The load itself, run with the loader's lock held: every wait in it is bounded
/// ([`CHECK_TIMEOUT`] to list, [`LOAD_TIMEOUT`] to unload or load). Returns the context
/// the model is loaded with (enough for this request).
async fn load_unless_ready(
    http: &Http,
    config: &ProviderConfig,
    headers: &HeaderMap,
    board: &HealthBoard,
    input_tokens: u64,
    state: &mut LoadState,
    loading: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<u64, ProviderError> {
    let (Some(model), Some(load_context)) = (config.model.as_deref(), config.load_context) else {
        return Ok(u64::MAX);
    };
    let name = &config.name;
    let unfit = |reason: String| ProviderError::Unfit {
        provider: name.clone(),
        reason,
    };
    let root = root(config.base_url.as_str());
    let info = models(http, root, headers)
        .await
        .map_err(|reason| ProviderError::Unreachable {
            provider: name.clone(),
            reason,
        })?;
    board.set_info(name, info.clone());
    let needed = needed_context(input_tokens);
    if info.api.as_deref() != Some("lmstudio-v1") {
        // Before 0.4 there is nothing to load with: LM Studio loads on first use.
        return Ok(u64::MAX);
    }
    if is_ready(&info, model, needed) {
        return Ok(loaded_context(&info, model).map_or(needed, u64::from));
    }
    if let Some((since, trouble)) = state.trouble.clone() {
        let lasts = match trouble {
            Trouble::StillLoading => STILL_LOADING_FOR,
            _ => LOAD_TROUBLE_FOR,
        };
        if since.elapsed() < lasts {
            return Err(unfit(match trouble {
                Trouble::StillLoading => format!(
                    "LM Studio may still be loading {model} (a load outran {}s); not loading it twice",
                    LOAD_TIMEOUT.as_secs()
                ),
                Trouble::NotListed => format!(
                    "LM Studio said it loaded {model} but lists no such instance; not loading it again for now"
                ),
                Trouble::Smaller(most) => format!(
                    "LM Studio loads {model} with {most} tokens of context at most (asked {load_context}); the request needs ~{needed}"
                ),
            }));
        }
        state.trouble = None;
    }
    if u64::from(load_context) < needed {
        return Err(unfit(format!(
            "the request needs ~{needed} tokens of context; load_context is {load_context}"
        )));
    }
    if !info.models.iter().any(|m| m == model) {
        return Err(unfit(format!(
            "LM Studio has no model {model:?}; download it or fix model"
        )));
    }
    if let Some(loading) = loading {
        let _ = loading.send(());
    }
    for instance in info.instances.iter().filter(|i| i.model == model) {
        tracing::info!(provider = %name, instance = %instance.id, context = ?instance.context_length, "unloading an instance with too small a context");
        post(
            http,
            config,
            &format!("{root}/api/v1/models/unload"),
            headers,
            json!({"instance_id": instance.id}),
        )
        .await?;
    }
    board.set_loading(
        name,
        Some(Loading {
            model: model.to_owned(),
            context_length: load_context,
            since: chrono::Utc::now(),
        }),
    );
    let _done = LoadingShown { board, name };
    tracing::info!(provider = %name, %model, context = load_context, "loading the model");
    let started = std::time::Instant::now();
    // lmstudio-ai/docs, 1_developer/2_rest/load.md: the settings at the top level.
    let loaded = post(
        http,
        config,
        &format!("{root}/api/v1/models/load"),
        headers,
        json!({"model": model, "context_length": load_context, "echo_load_config": true}),
    )
    .await;
    let answer = match loaded {
        Ok(answer) => answer,
        Err(error @ ProviderError::Timeout { .. }) => {
            state.trouble = Some((started, Trouble::StillLoading));
            return Err(error);
        }
        Err(error) => return Err(error),
    };
    // Believe the listing, not the answer: what LM Studio holds now.
    let info = models(http, root, headers)
        .await
        .map_err(|reason| ProviderError::Unreachable {
            provider: name.clone(),
            reason,
        })?;
    board.set_info(name, info.clone());
    let instance = answer["instance_id"].as_str().unwrap_or(model);
    let listed = info
        .instances
        .iter()
        .find(|i| i.id == instance || (i.model == model && instance == model));
    let Some(context) = listed.map(|i| i.context_length.unwrap_or(load_context)) else {
        tracing::warn!(provider = %name, %model, %instance, "LM Studio answered the load but lists no such instance");
        state.trouble = Some((std::time::Instant::now(), Trouble::NotListed));
        return Err(ProviderError::Failed {
            provider: name.clone(),
            reason: format!("LM Studio said it loaded {model} ({instance}) but does not list it"),
        });
    };
    if context < load_context {
        tracing::warn!(provider = %name, %model, context, asked = load_context, "LM Studio loaded the model with less context than asked");
        state.trouble = Some((std::time::Instant::now(), Trouble::Smaller(context)));
        if u64::from(context) < needed {
            return Err(unfit(format!(
                "LM Studio loaded {model} with {context} tokens of context (asked {load_context}); the request needs ~{needed}"
            )));
        }
    }
    Ok(u64::from(context))
}

/// Clears the "loading" mark however the load ends (done, failed, or given up on).
struct LoadingShown<'a> {
    board: &'a HealthBoard,
    name: &'a str,
}

impl Drop for LoadingShown<'_> {
    fn drop(&mut self) {
        self.board.set_loading(self.name, None);
    }
}

/// A `POST` to LM Studio's API; its JSON answer (`null` when it is not JSON).
async fn post(
    http: &Http,
    config: &ProviderConfig,
    url: &str,
    headers: &HeaderMap,
    body: Value,
) -> Result<Value, ProviderError> {
    let mut headers = headers.clone();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let response = http
        .fetch(
            http::Method::POST,
            url,
            headers,
            bytes::Bytes::from(body.to_string()),
            LOAD_TIMEOUT,
        )
        .await
        .map_err(|error| ProviderError::from_net(&config.name, error))?;
    if response.status.is_success() {
        return Ok(serde_json::from_slice(&response.body).unwrap_or(Value::Null));
    }
    Err(ProviderError::Failed {
        provider: config.name.clone(),
        reason: format!(
            "LM Studio answered HTTP {} to {}: {}",
            response.status.as_u16(),
            url.rsplit('/').next().unwrap_or_default(),
            crate::translate::response::error_message(&response.body)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_v1_listing_gives_instances_contexts_and_capabilities() {
        let body = json!({"models": [
            {"type": "llm", "key": "qwen/qwen3-8b", "max_context_length": 131072,
             "loaded_instances": [{"id": "qwen/qwen3-8b", "config": {"context_length": 4096}}],
             "capabilities": {"vision": false, "trained_for_tool_use": true}},
            {"type": "llm", "key": "gemma-3", "loaded_instances": [], "max_context_length": 32768},
            {"type": "embedding", "key": "nomic-embed", "loaded_instances": [{"id": "nomic-embed", "config": {"context_length": 2048}}]}
        ]});
        let info = from_v1(&body);
        assert_eq!(info.models, ["qwen/qwen3-8b", "gemma-3"]);
        assert_eq!(info.loaded.as_deref(), Some("qwen/qwen3-8b"));
        assert_eq!(info.context_window, Some(4096));
        assert_eq!(info.instances.len(), 1, "embeddings are not chat models");
        assert_eq!(
            info.capabilities,
            Some(Capabilities {
                vision: false,
                tool_use: true
            })
        );
        assert!(!is_ready(&info, "qwen/qwen3-8b", needed_context(20_000)));
        assert!(is_ready(&info, "qwen/qwen3-8b", 4000));
        assert!(!is_ready(&info, "gemma-3", 10));
    }

    #[test]
    fn the_root_is_the_base_url_without_v1() {
        assert_eq!(root("http://localhost:1234/v1/"), "http://localhost:1234");
        assert_eq!(root("http://localhost:1234"), "http://localhost:1234");
    }
}
