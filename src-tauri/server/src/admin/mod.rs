//! The admin API (`/api/*`) behind the settings window and the tray: config read,
//! validate and save, routing mode, stats, route preview, request log, quota history,
//! qualification. Every call needs the admin token (`Authorization: Bearer …`); the guard
//! in front refuses foreign origins and hosts as for the proxy.

pub mod token;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use pai_core::config::edit::{apply as apply_edit, ConfigEdit, EditError};

use crate::rejection::{error_response, HttpError, Json, Path, Query};
use crate::ProxyState;
use pai_core::config::{Config, ConfigError};
use pai_core::fsutil;
use pai_core::router::Mode;
use pai_core::types::{Complexity, QuotaState};
use pai_core::wire::ApiError;

pub fn router(state: ProxyState) -> Router<ProxyState> {
    Router::new()
        .route(
            "/config",
            get(get_config).put(put_config).patch(patch_config),
        )
        .route("/config/validate", post(validate_config))
        .route("/mode", get(get_mode).put(put_mode))
        .route("/stats", get(stats))
        .route("/route/preview", post(route_preview))
        .route("/route/replay", post(route_replay))
        .route("/requests", get(requests))
        .route("/quota/history", get(quota_history))
        .route("/providers/{name}/qualify", post(qualify))
        .route("/events", get(events))
        .fallback(|request: Request| async move {
            HttpError::from(ApiError::not_found(format!(
                "{} {} is not an admin route",
                request.method(),
                request.uri().path()
            )))
        })
        .layer(axum::middleware::from_fn_with_state(state, require_token))
}

async fn require_token(State(state): State<ProxyState>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !token::matches(&state.admin_token, given.trim()) {
        return error_response(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "the admin API needs the admin token (Authorization: Bearer …); `pai-orchestrator settings-url` prints a link with it",
        ));
    }
    next.run(request).await
}

fn problems_json(error: &ConfigError) -> Value {
    match error {
        ConfigError::Invalid(problems) => json!(problems),
        other => json!([{"key": "", "value": "", "reason": other.to_string()}]),
    }
}

async fn read_config_text(state: &ProxyState) -> Result<String, ApiError> {
    let Some(path) = &state.config_path else {
        return Err(ApiError::not_found(
            "this instance runs without a config file",
        ));
    };
    tokio::fs::read_to_string(path).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            format!("cannot read {}: {e}", path.display()),
        )
    })
}

/// The file as written (`text`) and the config in force, validated (`config`: what the
/// settings page renders from).
async fn get_config(State(state): State<ProxyState>) -> Result<Json<Value>, HttpError> {
    let text = read_config_text(&state).await?;
    let config = state.config();
    Ok(Json(json!({
        "path": state.config_path.as_ref().map(|p| p.display().to_string()),
        "text": text,
        "config": &*config,
    })))
}

/// `GET /api/events`: the core's events as they happen (server-sent events), so the
/// settings page shows changes without asking again and again.
async fn events(
    State(state): State<ProxyState>,
) -> axum::response::Sse<
    impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
> {
    use axum::response::sse::{Event, KeepAlive};
    use futures_util::StreamExt;
    let stream = state.core.events().map(|event| {
        Ok(Event::default()
            .json_data(&event)
            .unwrap_or_else(|_| Event::default().comment("unserialisable event")))
    });
    axum::response::Sse::new(stream).keep_alive(KeepAlive::default())
}

#[derive(Deserialize)]
struct ConfigText {
    text: String,
}

async fn validate_config(Json(body): Json<ConfigText>) -> Json<Value> {
    match Config::from_toml(&body.text) {
        Ok(_) => Json(json!({"ok": true, "problems": []})),
        Err(error) => Json(json!({"ok": false, "problems": problems_json(&error)})),
    }
}

/// Validates, writes atomically, applies. A bad config is refused and nothing is written.
async fn save(state: &ProxyState, text: String) -> Response {
    let config = match Config::from_toml(&text) {
        Ok(config) => config,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"ok": false, "problems": problems_json(&error)})),
            )
                .into_response()
        }
    };
    let Some(path) = state.config_path.clone() else {
        return error_response(ApiError::not_found(
            "this instance runs without a config file",
        ));
    };
    // A new listen address takes a restart; compare with what the file said before.
    let before = tokio::fs::read_to_string(&path).await.ok();
    let old_listen = before
        .and_then(|t| Config::from_toml(&t).ok())
        .map(|c| c.server.listen);
    let restart_needed = old_listen.is_some_and(|old| old != config.server.listen);
    let bytes = text.clone().into_bytes();
    let written = tokio::task::spawn_blocking(move || fsutil::write_atomic(&path, &bytes)).await;
    if let Err(error) = written.map_err(std::io::Error::other).and_then(|r| r) {
        return error_response(ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "api_error",
            format!("cannot save the config (the old file is untouched): {error}"),
        ));
    }
    state.core.apply_config(config);
    Json(json!({"ok": true, "problems": [], "restart_needed": restart_needed, "text": text}))
        .into_response()
}

async fn put_config(State(state): State<ProxyState>, Json(body): Json<ConfigText>) -> Response {
    save(&state, body.text).await
}

#[derive(Deserialize)]
struct DryRun {
    #[serde(default)]
    dry_run: bool,
}

/// Edits that keep the file's comments; `?dry_run=true` only validates the result.
async fn patch_config(
    State(state): State<ProxyState>,
    Query(query): Query<DryRun>,
    Json(edit): Json<ConfigEdit>,
) -> Response {
    let current = match read_config_text(&state).await {
        Ok(text) => text,
        Err(error) => return error_response(error),
    };
    let text = match apply_edit(&current, &edit) {
        Ok(text) => text,
        Err(error) => {
            let (key, reason) = match &error {
                EditError::Key { key, reason } => (key.clone(), reason.clone()),
                EditError::Parse(reason) => (String::new(), reason.clone()),
            };
            return (
                StatusCode::BAD_REQUEST,
                Json(
                    json!({"ok": false, "problems": [{"key": key, "value": "", "reason": reason}]}),
                ),
            )
                .into_response();
        }
    };
    if query.dry_run {
        return match Config::from_toml(&text) {
            Ok(_) => Json(json!({"ok": true, "problems": [], "text": text})).into_response(),
            Err(error) => {
                Json(json!({"ok": false, "problems": problems_json(&error), "text": text}))
                    .into_response()
            }
        };
    }
    save(&state, text).await
}

async fn get_mode(State(state): State<ProxyState>) -> Json<Value> {
    Json(json!({"mode": state.core.mode.get(), "modes": Mode::ALL}))
}

#[derive(Deserialize)]
struct ModeBody {
    mode: String,
}

async fn put_mode(
    State(state): State<ProxyState>,
    Json(body): Json<ModeBody>,
) -> Result<Json<Value>, HttpError> {
    let mode = body.mode.parse::<Mode>().map_err(|_| {
        ApiError::invalid_request(format!(
            "mode: {:?} is not one of auto, claude-only, local-only, paused",
            body.mode
        ))
    })?;
    state.core.mode.set(mode);
    Ok(Json(json!({"mode": mode})))
}

async fn stats(State(state): State<ProxyState>) -> Result<Json<Value>, HttpError> {
    let by_class = state
        .read_db(pai_core::store::stats_by_class_and_target)
        .await
        .map_err(ApiError::bad_gateway)?;
    let sessions = state.core.sessions.stats();
    let switches: u64 = sessions.iter().map(|s| s.switches).sum();
    Ok(Json(json!({
        "by_class_and_target": by_class,
        "live": state.core.outcomes.rows(),
        "sessions": sessions,
        "switches": switches,
    })))
}

#[derive(Deserialize)]
struct PreviewQuery {
    complexity: Option<String>,
}

/// The decision for a request body, without sending anything: the same parsing,
/// classification and routing as a real request.
async fn route_preview(
    State(state): State<ProxyState>,
    Query(query): Query<PreviewQuery>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, HttpError> {
    let mut headers = axum::http::HeaderMap::new();
    if let Some(value) = query
        .complexity
        .as_deref()
        .and_then(|c| axum::http::HeaderValue::from_str(c).ok())
    {
        headers.insert("x-pai-complexity", value);
    }
    let prepared = pai_core::pipeline::Prepared::new(
        &state.core,
        body,
        headers,
        "/v1/messages".to_owned(),
        false,
        pai_core::pipeline::Origin::Client,
    )?;
    Ok(Json(
        json!({"decision": prepared.decision, "input_tokens": prepared.input_tokens}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    /// How many of the latest logged requests (default 50).
    limit: Option<usize>,
    /// Changes to try (as for `PATCH /api/config`); none: the current config.
    #[serde(default)]
    edit: Option<ConfigEdit>,
}

/// The last logged requests routed again under an edited config: where each went, and
/// where it would go now — without sending anything.
async fn route_replay(
    State(state): State<ProxyState>,
    Json(body): Json<ReplayBody>,
) -> Result<Json<Value>, HttpError> {
    let config = match &body.edit {
        None => (*state.config()).clone(),
        Some(edit) => {
            let current = read_config_text(&state).await?;
            let text =
                apply_edit(&current, edit).map_err(|e| ApiError::invalid_request(e.to_string()))?;
            Config::from_toml(&text).map_err(|e| ApiError::invalid_request(e.to_string()))?
        }
    };
    let limit = body.limit.unwrap_or(50).min(1000);
    let rows = state
        .read_db(move |conn| pai_core::store::recent(conn, limit))
        .await
        .map_err(ApiError::bad_gateway)?;
    let mut out = Vec::new();
    for row in rows.iter().filter(|r| r.path.starts_with("/v1/messages")) {
        let complexity = row
            .complexity
            .as_deref()
            .and_then(|c| c.parse::<Complexity>().ok())
            .unwrap_or(Complexity::Medium);
        let quota_state = row
            .quota_state
            .as_deref()
            .and_then(|s| s.parse().ok())
            .unwrap_or(QuotaState::Unknown);
        let quota = pai_core::quota::QuotaSnapshot {
            state: quota_state,
            ..pai_core::quota::QuotaSnapshot::default()
        };
        let classification = pai_core::classify::Classification {
            complexity,
            score: 0.0,
            reason: "as logged".to_owned(),
        };
        let decision = pai_core::router::plan(
            &config,
            pai_core::router::Situation {
                mode: state.core.mode.get(),
                quota: &quota,
                health: &state.core.health,
                outcomes: &state.core.outcomes,
                models: &state.core.models,
                continues_on: None,
            },
            &classification,
            row.model.as_deref(),
            pai_core::router::Needs::default(),
        );
        let would = decision.chain.first().map(|c| c.target.clone());
        out.push(json!({
            "started_at": row.started_at,
            "model": row.model,
            "complexity": complexity,
            "quota_state": quota_state,
            "was": row.target,
            "would": would,
            "changed": row.target != would,
        }));
    }
    let changed = out.iter().filter(|r| r["changed"] == true).count();
    Ok(Json(json!({"requests": out, "changed": changed})))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn requests(
    State(state): State<ProxyState>,
    Query(query): Query<Limit>,
) -> Result<Json<Value>, HttpError> {
    let limit = query.limit.unwrap_or(50).min(1000);
    let rows = state
        .read_db(move |conn| pai_core::store::recent(conn, limit))
        .await
        .map_err(ApiError::bad_gateway)?;
    Ok(Json(json!({"requests": rows})))
}

#[derive(Deserialize)]
struct Hours {
    hours: Option<i64>,
}

async fn quota_history(
    State(state): State<ProxyState>,
    Query(query): Query<Hours>,
) -> Result<Json<Value>, HttpError> {
    let since =
        chrono::Utc::now() - chrono::Duration::hours(query.hours.unwrap_or(24).clamp(1, 24 * 30));
    let rows = state
        .read_db(move |conn| pai_core::store::quota_history(conn, since))
        .await
        .map_err(ApiError::bad_gateway)?;
    Ok(Json(json!({"readings": rows})))
}

async fn qualify(
    State(state): State<ProxyState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, HttpError> {
    let config = state.config();
    let report = pai_core::providers::qualify::qualify_named(
        &config,
        &name,
        &state.core.http,
        &state.core.health,
    )
    .await
    .map_err(ApiError::not_found)?;
    let text = serde_json::to_string(&report).unwrap_or_default();
    let verdict = report.verdict_name();
    let provider = name.clone();
    state
        .read_db(move |conn| pai_core::store::put_qualification(conn, &provider, verdict, &text))
        .await
        .map_err(ApiError::bad_gateway)?;
    Ok(Json(json!(report)))
}
