//! The `openai` provider: any OpenAI-compatible Chat Completions API (LM Studio, Ollama,
//! llama.cpp, xAI, OpenAI). Requests and answers are translated (see [`crate::translate`]);
//! Claude Code sees an Anthropic response either way.

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};

use super::lmstudio::Loader;
use super::{
    body_stream, send_with_timeout, BodyStream, HealthBoard, MessagesRequest, ModelInfo, Outgoing,
    Provider, ProviderError, Reading, Shaped, Upstream,
};
use crate::config::ProviderConfig;
use crate::net::Http;
use crate::translate::request::{to_openai, Limits};
use crate::translate::response::{error_message, to_anthropic};
use crate::translate::stream::StreamTranslator;
use crate::wire::error::error_type;
use crate::wire::ApiError;

pub struct OpenAiProvider {
    config: ProviderConfig,
    board: HealthBoard,
    /// Set when the proxy loads the model (LM Studio, `load_context`).
    pub loader: Option<Loader>,
}

impl OpenAiProvider {
    pub fn new(config: ProviderConfig, board: HealthBoard) -> Self {
        OpenAiProvider {
            loader: Loader::for_provider(&config),
            config,
            board,
        }
    }

    /// The context window: the config's, else the one the proxy loads the model with,
    /// else what the server said of its loaded model.
    pub fn context_window(&self) -> Option<u32> {
        self.config
            .context_window
            .or(self.config.load_context)
            .or_else(|| {
                self.board
                    .report(&self.config.name)
                    .info
                    .and_then(|i| i.context_window)
            })
    }

    fn endpoint(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.config.base_url.as_str().trim_end_matches('/')
        )
    }

    /// The server root (the base URL without its trailing `/v1`).
    fn root(&self) -> String {
        super::lmstudio::root(self.config.base_url.as_str()).to_owned()
    }
}

impl Provider for OpenAiProvider {
    fn config(&self) -> &ProviderConfig {
        &self.config
    }

    fn prepare(&self, outgoing: &Outgoing<'_>) -> Option<Shaped> {
        super::without_anthropic_only(outgoing)
    }

    fn observe(&self, status: StatusCode) -> Reading {
        Reading {
            own_key_refused: matches!(status.as_u16(), 401 | 403),
            ..Reading::default()
        }
    }

    async fn messages(
        &self,
        http: &Http,
        request: &MessagesRequest<'_>,
    ) -> Result<Upstream, ProviderError> {
        let model = super::resolve_model(self, &self.board, http, request.model).await?;
        let window = self.context_window();
        if let Some(window) = window {
            if request.input_tokens >= u64::from(window) {
                return Err(ProviderError::Unfit {
                    provider: self.config.name.clone(),
                    reason: format!(
                        "the request has ~{} input tokens; {model}'s context window is {window}",
                        request.input_tokens
                    ),
                });
            }
        }
        let body = to_openai(
            request.body.json(),
            &model,
            Limits {
                context_window: window,
                input_tokens: u32::try_from(request.input_tokens).unwrap_or(u32::MAX),
                images: self.config.supports_images,
            },
        )
        .map_err(|e| ProviderError::Unfit {
            provider: self.config.name.clone(),
            reason: e.to_string(),
        })?;
        // The client asked for thinking: the model's reasoning comes back as thinking.
        let thinking = request.body.json()["thinking"]["type"]
            .as_str()
            .is_some_and(|t| t != "disabled");
        let mut headers = super::bearer_headers(&self.config)?;
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let url = self.endpoint("/chat/completions");
        let upstream = super::request(
            &self.config,
            http::Method::POST,
            &url,
            headers,
            Bytes::from(body.to_string()),
        )?;
        let response = send_with_timeout(&self.config, http, upstream).await?;
        let status = response.status();
        let retry_after = response.headers().get("retry-after").cloned();
        let body = body_stream(&self.config, response);
        if !status.is_success() {
            return error_answer(&self.config, status, retry_after, body).await;
        }
        if request.stream {
            return Ok(translated_stream(
                body,
                &model,
                request.input_tokens,
                thinking,
            ));
        }
        let bytes = read_all(&self.config, body).await?;
        let translated = serde_json::from_slice::<Value>(&bytes)
            .map_err(|_| "its answer is not JSON".to_owned())
            .and_then(|completion| to_anthropic(&completion, &model, thinking));
        match translated {
            Ok(message) => Ok(Upstream::json(StatusCode::OK, &message)),
            Err(reason) => Err(ProviderError::Failed {
                provider: self.config.name.clone(),
                reason: format!("not a chat completion: {reason}"),
            }),
        }
    }

    async fn count_tokens(
        &self,
        _http: &Http,
        request: &MessagesRequest<'_>,
    ) -> Result<Upstream, ProviderError> {
        Ok(Upstream::json(
            StatusCode::OK,
            &json!({"input_tokens": crate::wire::tokens::estimate(request.body.bytes())}),
        ))
    }

    async fn check(&self, http: &Http) -> Option<Result<ModelInfo, String>> {
        let wants_auto = self.config.model.as_deref() == Some(super::AUTO);
        let headers = match super::bearer_headers(&self.config) {
            Ok(headers) => headers,
            Err(error) => return Some(Err(error.to_string())),
        };
        if wants_auto || self.loader.is_some() {
            // LM Studio's own API says which model is loaded and with which context.
            match super::lmstudio::models(http, &self.root(), &headers).await {
                Ok(info) => return Some(Ok(info)),
                Err(refused) if self.loader.is_some() => return Some(Err(refused)),
                Err(_) => {}
            }
        }
        Some(list_models(http, &self.endpoint("/models"), headers).await)
    }
}

/// How long a models check may take.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `GET …/models` (OpenAI and Anthropic shapes both have `data[].id`).
pub async fn list_models(http: &Http, url: &str, headers: HeaderMap) -> Result<ModelInfo, String> {
    let response = http
        .get(url, headers, CHECK_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    if !response.status.is_success() {
        return Err(format!(
            "GET models answered HTTP {}",
            response.status.as_u16()
        ));
    }
    let body: Value = response
        .json()
        .ok_or_else(|| "GET models answered something that is not JSON".to_owned())?;
    let models: Vec<String> = body["data"]
        .as_array()
        .map(|data| {
            data.iter()
                .filter_map(|m| m["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(ModelInfo {
        loaded: models.first().cloned(),
        models,
        context_window: None,
        api: Some("models".to_owned()),
        ..ModelInfo::default()
    })
}

/// Largest completion (or error) body read whole.
const MAX_BODY: usize = 32 << 20;

/// Reads a whole body under the idle timeout.
async fn read_all(provider: &ProviderConfig, mut body: BodyStream) -> Result<Bytes, ProviderError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) if bytes.len() + chunk.len() <= MAX_BODY => bytes.extend_from_slice(&chunk),
            Ok(_) => {
                return Err(ProviderError::Failed {
                    provider: provider.name.clone(),
                    reason: format!("its answer is larger than {} MiB", MAX_BODY >> 20),
                })
            }
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {
                return Err(ProviderError::Stalled {
                    provider: provider.name.clone(),
                    after: provider.idle_timeout,
                })
            }
            Err(error) => {
                return Err(ProviderError::Failed {
                    provider: provider.name.clone(),
                    reason: format!("its answer broke off: {error}"),
                })
            }
        }
    }
    Ok(Bytes::from(bytes))
}

/// An upstream error as Anthropic's error answer (429 -> `rate_limit_error`, …).
async fn error_answer(
    provider: &ProviderConfig,
    status: StatusCode,
    retry_after: Option<HeaderValue>,
    body: BodyStream,
) -> Result<Upstream, ProviderError> {
    let body = read_all(provider, body).await?;
    let message = format!(
        "provider {} answered HTTP {}: {}",
        provider.name,
        status.as_u16(),
        error_message(&body)
    );
    let error = ApiError::new(status, error_type(status.as_u16()), message);
    let mut upstream = Upstream::error(&error);
    if let Some(retry_after) = retry_after {
        upstream.headers.insert("retry-after", retry_after);
    }
    Ok(upstream)
}

/// The completion stream translated into Anthropic events as chunks arrive.
fn translated_stream(body: BodyStream, model: &str, input_tokens: u64, thinking: bool) -> Upstream {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    let translator = StreamTranslator::new(model, input_tokens).with_thinking(thinking);
    let state = (body, translator, false);
    let body =
        futures_util::stream::unfold(state, |(mut inner, mut translator, ended)| async move {
            if ended {
                return None;
            }
            loop {
                let (out, ended) = match inner.next().await {
                    Some(Ok(chunk)) => (translator.feed(&chunk), translator.is_done()),
                    Some(Err(error)) => {
                        let kind = if error.kind() == std::io::ErrorKind::TimedOut {
                            "overloaded_error"
                        } else {
                            "api_error"
                        };
                        let message = format!("the upstream stream broke off: {error}");
                        (translator.fail(kind, &message), true)
                    }
                    None => (translator.finish(), true),
                };
                if !out.is_empty() || ended {
                    return Some((Ok(Bytes::from(out)), (inner, translator, ended)));
                }
            }
        });
    Upstream {
        status: StatusCode::OK,
        headers,
        body: Box::pin(body),
    }
}
