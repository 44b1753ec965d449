//! `GET /health`: cheap, never waits on an upstream; what the tray and `status` show.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::rejection::Query;
use super::ProxyState;
use pai_core::pipeline::sessions::SessionRoute;
use pai_core::providers::{Breaker, Health, Loading, ModelInfo};
use pai_core::quota::QuotaSnapshot;

#[derive(Debug, Serialize, Deserialize)]
pub struct HealthResponse {
    pub status: String,
    pub version: String,
    pub uptime_secs: u64,
    pub listen: String,
    pub providers: Vec<ProviderHealth>,
    pub quota: QuotaSnapshot,
    pub mode: pai_core::router::Mode,
    /// Interactive requests waiting for the quota now.
    pub queue_waiting: usize,
    /// Client connections open now.
    #[serde(default)]
    pub connections: usize,
    /// Requests that shared an identical request's upstream call, so far.
    #[serde(default)]
    pub coalesced: usize,
    /// Tasks alive in the runtime (a number that returns to its resting value when
    /// nothing is in flight: a leak shows as growth).
    #[serde(default)]
    pub tasks: usize,
    /// What does not work, in words (the proxy serves without it); empty when all is well.
    #[serde(default)]
    pub degraded: Vec<String>,
    /// What clients sent that the proxy has never seen (a field, block, tool type, beta):
    /// passed to Anthropic unchanged, kept from other targets.
    #[serde(default)]
    pub unknown_features: Vec<pai_core::pipeline::drift::UnknownFeature>,
    /// With `?session=ID`: where that Claude Code session's latest request went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionRoute>,
}

#[derive(Debug, Deserialize)]
pub struct HealthQuery {
    /// A Claude Code session id (`X-Claude-Code-Session-Id`; `session_id` in its status
    /// line input).
    session: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ProviderHealth {
    pub name: String,
    pub kind: String,
    pub base_url: String,
    /// The configured model (`auto`: the loaded one, in `models.loaded`).
    pub model: Option<String>,
    pub health: Health,
    pub last_error: Option<String>,
    pub breaker: Breaker,
    /// What the last health check learnt: models, the loaded one, its context window.
    pub models: Option<ModelInfo>,
    /// The configured context window, else the one the server reported.
    pub context_window: Option<u32>,
    pub qualification: Option<pai_core::providers::qualify::Qualification>,
    /// Requests in flight there now, and waiting at its gate (`max_concurrent`).
    #[serde(default)]
    pub in_flight: usize,
    #[serde(default)]
    pub gate_waiting: usize,
    /// The model being loaded for waiting requests (LM Studio), if one is.
    #[serde(default)]
    pub loading: Option<Loading>,
}

pub async fn health(
    State(state): State<ProxyState>,
    Query(query): Query<HealthQuery>,
) -> Json<HealthResponse> {
    let config = state.config();
    let providers = config
        .providers
        .iter()
        .map(|p| {
            let report = state.core.health.report(&p.name);
            let (in_flight, gate_waiting) = state.core.queue.load(&p.name).unwrap_or_default();
            ProviderHealth {
                name: p.name.clone(),
                kind: p.kind.to_string(),
                base_url: p.base_url.to_string(),
                model: p.model.clone(),
                health: report.health,
                last_error: report.last_error,
                breaker: report.breaker,
                context_window: p
                    .context_window
                    .or_else(|| report.info.as_ref().and_then(|i| i.context_window)),
                loading: report.loading,
                models: report.info,
                qualification: report.qualification,
                in_flight,
                gate_waiting,
            }
        })
        .collect();
    let status = if state.degraded.is_empty() {
        "ok"
    } else {
        "degraded"
    };
    Json(HealthResponse {
        status: status.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_secs: state.started.elapsed().as_secs(),
        listen: state.listen.to_string(),
        providers,
        quota: state.core.quota.snapshot(),
        mode: state.core.mode.get(),
        queue_waiting: *state.core.queue.waiting().borrow(),
        connections: state.connections.open(),
        coalesced: *state.core.coalescer.joined().borrow(),
        tasks: tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        degraded: state.degraded.clone(),
        unknown_features: state.core.drift.unknown(),
        session: query.session.and_then(|id| state.core.sessions.get(&id)),
    })
}
