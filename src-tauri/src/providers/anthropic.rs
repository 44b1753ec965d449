//! The `anthropic` provider: Anthropic's Messages API, or any server that speaks it
//! (LM Studio ≥ 0.4.1, Ollama, llama.cpp). Requests and responses pass through untouched.

use axum::http::{HeaderMap, HeaderValue, Method};
use bytes::Bytes;

use super::ProviderError;
use crate::config::{Credentials, ProviderConfig};
use crate::proxy::headers;

/// Sends one request upstream and returns as soon as the response headers arrived; the
/// body is streamed by the caller.
pub async fn send(
    http: &reqwest::Client,
    provider: &ProviderConfig,
    method: Method,
    path_and_query: &str,
    client_headers: &HeaderMap,
    body: Bytes,
) -> Result<reqwest::Response, ProviderError> {
    let url = upstream_url(provider, path_and_query);
    let pass = provider.credentials == Credentials::PassThrough;
    let mut headers = headers::upstream_request(client_headers, pass);
    if let Credentials::Env { key: Some(key), .. } = &provider.credentials {
        let mut value = HeaderValue::from_str(key.expose()).map_err(|_| ProviderError::BadKey {
            provider: provider.name.clone(),
        })?;
        value.set_sensitive(true);
        headers.insert("x-api-key", value);
    }
    let request = http.request(method, url).headers(headers).body(body);
    match tokio::time::timeout(provider.timeout, request.send()).await {
        Err(_) => Err(ProviderError::Timeout {
            provider: provider.name.clone(),
            after: provider.timeout,
        }),
        Ok(Err(source)) => Err(ProviderError::from_reqwest(&provider.name, &source)),
        Ok(Ok(response)) => Ok(response),
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
