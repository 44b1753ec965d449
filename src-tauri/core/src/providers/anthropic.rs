//! The `anthropic` provider: Anthropic's Messages API, or any server that speaks it
//! (LM Studio ≥ 0.4.1, Ollama, llama.cpp). Requests and responses pass through untouched;
//! only the model is rewritten when the route names another one. LM Studio's model is
//! loaded as [`super::lmstudio`] says when `load_context` is set.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

use super::lmstudio::Loader;
use super::{
    body_stream, own_key, request, send_with_timeout, HealthBoard, MessagesRequest, ModelInfo,
    Outgoing, Provider, ProviderError, Reading, Shaped, Upstream,
};
use crate::config::ProviderConfig;
use crate::net::Http;
use crate::wire::headers;

pub struct AnthropicProvider {
    config: ProviderConfig,
    board: HealthBoard,
    /// Set when the proxy loads the model (LM Studio, `load_context`).
    pub loader: Option<Loader>,
}

impl AnthropicProvider {
    pub fn new(config: ProviderConfig, board: HealthBoard) -> Self {
        AnthropicProvider {
            loader: Loader::for_provider(&config),
            config,
            board,
        }
    }

    /// Sends any request upstream as the client made it (headers filtered, credentials
    /// only when they are the client's to send here).
    pub async fn send_raw(
        &self,
        http: &Http,
        method: Method,
        path_and_query: &str,
        client_headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Upstream, ProviderError> {
        let url = upstream_url(&self.config, path_and_query);
        let mut headers = headers::upstream_request(client_headers, self.config.is_claude());
        if let Some(key) = own_key(&self.config)? {
            headers.insert("x-api-key", key);
        }
        self.send(method, url, headers, body, http).await
    }

    async fn send(
        &self,
        method: Method,
        url: String,
        headers: HeaderMap,
        body: Bytes,
        http: &Http,
    ) -> Result<Upstream, ProviderError> {
        let request = request(&self.config, method, &url, headers, body)?;
        let response = send_with_timeout(&self.config, http, request).await?;
        let status = response.status();
        let headers = headers::downstream_response(response.headers());
        Ok(Upstream {
            status,
            headers,
            body: body_stream(&self.config, response),
        })
    }
}

impl Provider for AnthropicProvider {
    fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// Anthropic's API: the model's rules (see [`super::claude`]); any other server
    /// speaking the Messages API: the request without what is Anthropic's alone.
    fn prepare(&self, outgoing: &Outgoing<'_>) -> Option<Shaped> {
        if !self.config.is_claude() {
            return super::without_anthropic_only(outgoing);
        }
        if outgoing.untouched {
            return None;
        }
        super::claude::shape(
            outgoing.body,
            outgoing.model,
            outgoing.requested_model,
            outgoing.signatures,
        )
    }

    fn observe(&self, status: StatusCode) -> Reading {
        let claude = self.config.is_claude();
        Reading {
            carries_quota: claude,
            own_key_refused: !claude && matches!(status.as_u16(), 401 | 403),
            signs_thinking: claude,
        }
    }

    async fn messages(
        &self,
        http: &Http,
        request: &MessagesRequest<'_>,
    ) -> Result<Upstream, ProviderError> {
        // `auto` (a local server speaking the Messages API): the model it has loaded.
        let model = super::resolve_model(self, &self.board, http, request.model).await?;
        let body = request.body.with_model(&model);
        let url = upstream_url(&self.config, request.path_and_query);
        let mut headers =
            headers::upstream_request(request.client_headers, self.config.is_claude());
        // Plain bytes: the proxy follows the answer (its first event, its end).
        headers.remove(http::header::ACCEPT_ENCODING);
        if let Some(key) = own_key(&self.config)? {
            headers.insert("x-api-key", key);
        }
        let answer = self
            .send(Method::POST, url.clone(), headers.clone(), body, http)
            .await?;
        let requested = request.requested_model.unwrap_or(&model);
        if self.config.is_claude() && answer.status == StatusCode::NOT_FOUND && requested != model {
            // Anthropic does not know the model a tier put in place of the client's: the
            // client's own request, as it came, so a stale tier never breaks Claude Code.
            tracing::warn!(
                tier_model = %model,
                requested,
                "Anthropic does not know the tier's model; check [providers] tiers — using the model the client asked for"
            );
            drop(answer);
            let body = request.original.with_model(requested);
            return self.send(Method::POST, url, headers, body, http).await;
        }
        Ok(answer)
    }

    async fn count_tokens(
        &self,
        http: &Http,
        request: &MessagesRequest<'_>,
    ) -> Result<Upstream, ProviderError> {
        self.messages(http, request).await
    }

    async fn check(&self, http: &Http) -> Option<Result<ModelInfo, String>> {
        if self.config.is_claude() {
            return None;
        }
        let wants_auto = self.config.model.as_deref() == Some(super::AUTO);
        if wants_auto || self.loader.is_some() {
            // LM Studio: its own API says what is loaded and with which context.
            let root = super::lmstudio::root(self.config.base_url.as_str());
            let models = match super::bearer_headers(&self.config) {
                Ok(headers) => super::lmstudio::models(http, root, &headers).await,
                Err(error) => Err(error.to_string()),
            };
            match models {
                Ok(info) => return Some(Ok(info)),
                Err(refused) if self.loader.is_some() => return Some(Err(refused)),
                // Not LM Studio (llama.cpp, Ollama): the Messages API's own model list.
                Err(_) => {}
            }
        }
        let mut headers = HeaderMap::new();
        match own_key(&self.config) {
            Ok(Some(key)) => {
                headers.insert("x-api-key", key);
            }
            Ok(None) => {}
            Err(error) => return Some(Err(error.to_string())),
        }
        let url = upstream_url(&self.config, "/v1/models");
        Some(super::openai::list_models(http, &url, headers).await)
    }
}

/// `base_url` + the client's path and query; a base URL with a path prefix keeps it.
fn upstream_url(provider: &ProviderConfig, path_and_query: &str) -> String {
    let base = provider.base_url.as_str().trim_end_matches('/');
    format!("{base}{path_and_query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_keeps_base_path_and_query() {
        let config = crate::config::Config::from_toml(
            "[[providers]]\nname='c'\nkind='anthropic'\nbase_url='http://127.0.0.1:9/prefix/'\n[routing]\nfallback=[]\n[routing.matrix]\nnormal={simple=['c'],medium=['c'],complex=['c']}\ncaution={simple=['c'],medium=['c'],complex=['c']}\nwarning={simple=['c'],medium=['c'],complex=['c']}\ncritical={simple=['c'],medium=['c'],complex=['c']}\n",
        )
        .unwrap();
        let provider = config.provider("c").unwrap();
        assert_eq!(
            upstream_url(provider, "/v1/messages?beta=true"),
            "http://127.0.0.1:9/prefix/v1/messages?beta=true"
        );
    }
}
