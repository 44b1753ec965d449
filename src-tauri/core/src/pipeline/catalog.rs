//! Keeps the list of Anthropic's models current (see [`crate::providers::claude::catalog`]):
//! the first request that carries credentials, and then one a day, has the proxy ask
//! `GET /v1/models` with those credentials, in the background — the request itself never
//! waits for it.

use bytes::Bytes;
use http::{HeaderMap, Method};

use super::Core;
use crate::providers::{AnyProvider, Provider};
use crate::wire::headers::CREDENTIAL_HEADERS;

/// The headers a model list needs of the client's: its credentials, the API version and
/// its betas (a subscription token is accepted with Claude Code's OAuth beta).
const NEEDED: [&str; 2] = ["anthropic-version", "anthropic-beta"];

/// Starts a fetch of the model list if one is due and `headers` carry credentials.
pub(super) fn refresh(core: &Core, headers: &HeaderMap) {
    if !CREDENTIAL_HEADERS.iter().any(|h| headers.contains_key(*h)) {
        return;
    }
    let config = core.config();
    if !crate::router::claude_provider(&config).is_some_and(|p| p.is_claude() && p.discover_models)
    {
        return;
    }
    let now = chrono::Utc::now();
    if !core.models.begin_fetch(now) {
        return;
    }
    let mut asked = HeaderMap::new();
    for name in CREDENTIAL_HEADERS.iter().chain(NEEDED.iter()) {
        if let Some(value) = headers.get(*name) {
            let mut value = value.clone();
            value.set_sensitive(CREDENTIAL_HEADERS.contains(name));
            asked.insert(*name, value);
        }
    }
    let core = core.clone();
    tokio::spawn(async move {
        let config = core.config();
        let providers = core.providers.load_full();
        let provider = crate::router::claude_provider(&config).and_then(|p| providers.get(&p.name));
        let Some(AnyProvider::Anthropic(anthropic)) = provider else {
            return;
        };
        let answer = anthropic
            .send_raw(
                &core.http,
                Method::GET,
                "/v1/models?limit=1000",
                &asked,
                Bytes::new(),
            )
            .await;
        let outcome = match answer {
            Ok(upstream) if upstream.status.is_success() => {
                let idle = anthropic.config().idle_timeout;
                match super::commit::read_whole(upstream.body, idle).await {
                    Ok(body) => core.models.accept(&body, chrono::Utc::now()),
                    Err(_) => Err("its model list did not arrive whole".to_owned()),
                }
            }
            Ok(upstream) => Err(format!("it answered HTTP {}", upstream.status.as_u16())),
            Err(error) => Err(error.to_string()),
        };
        match outcome {
            Ok(count) => tracing::info!(
                count,
                "Anthropic's model list read; tiers follow its newest models"
            ),
            Err(why) => {
                tracing::info!(%why, "Anthropic's model list could not be read; the config's tier ids stand")
            }
        }
    });
}
