//! Upstream providers: where a request can go. One file per kind.

pub mod anthropic;
mod health;

use std::time::Duration;

pub use health::{Health, HealthBoard, HealthReport};

use crate::proxy::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("provider {provider} is unreachable: {reason}")]
    Unreachable { provider: String, reason: String },
    #[error("provider {provider} sent no response headers within {}s", after.as_secs())]
    Timeout { provider: String, after: Duration },
    #[error("provider {provider}: the request failed: {reason}")]
    Failed { provider: String, reason: String },
    #[error("provider {provider}: its API key is not a valid header value")]
    BadKey { provider: String },
}

impl ProviderError {
    /// Classifies a transport error without its URL, which could carry a key in a query.
    pub fn from_reqwest(provider: &str, error: &reqwest::Error) -> ProviderError {
        let provider = provider.to_owned();
        let reason = describe(error);
        if error.is_connect() {
            ProviderError::Unreachable { provider, reason }
        } else if error.is_timeout() {
            ProviderError::Timeout {
                provider,
                after: Duration::ZERO,
            }
        } else {
            ProviderError::Failed { provider, reason }
        }
    }

    /// The error as the client sees it.
    pub fn to_api_error(&self) -> ApiError {
        match self {
            ProviderError::Timeout { .. } => ApiError::timeout(self.to_string()),
            _ => ApiError::bad_gateway(self.to_string()),
        }
    }
}

/// The innermost cause of a transport error, e.g. "Connection refused (os error 111)";
/// never the URL, which could carry a key.
pub fn root_cause(error: &reqwest::Error) -> String {
    describe(error)
}

fn describe(error: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    let text = source.to_string();
    if text.is_empty() {
        "connection failed".to_owned()
    } else {
        text
    }
}
