//! Refuses requests a web page could have sent: a browser `Origin` that is not allowed,
//! or a `Host` that is not loopback (DNS rebinding). Without this, any page the user
//! visits could spend their quota through the proxy with a `text/plain` simple request.

use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::middleware::Next;
use axum::response::Response;

use super::ProxyState;
use crate::rejection::error_response;
use pai_core::config::is_loopback_host;
use pai_core::wire::ApiError;

pub async fn refuse_foreign(
    State(state): State<ProxyState>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(origin) = request.headers().get(ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        let config = state.config();
        let origin_trimmed = origin.trim_end_matches('/');
        let allowed = is_own_origin(origin_trimmed, state.listen.port())
            || config
                .server
                .allowed_origins
                .iter()
                .any(|o| o == origin_trimmed);
        if !allowed {
            return error_response(ApiError::permission(format!(
                "requests from the browser origin {origin:?} are refused; add it to [server].allowed_origins to allow it"
            )));
        }
    }
    if let Some(host) = request.headers().get(HOST) {
        let host = String::from_utf8_lossy(host.as_bytes());
        if !is_loopback_host(&host) {
            return error_response(ApiError::permission(format!(
                "Host {host:?} is not a loopback name; the proxy answers only 127.0.0.1, ::1 and localhost"
            )));
        }
    }
    next.run(request).await
}

/// The settings page served by this proxy calls it from its own origin.
fn is_own_origin(origin: &str, port: u16) -> bool {
    origin
        .strip_prefix("http://")
        .and_then(|host| host.rsplit_once(':'))
        .is_some_and(|(_, p)| p == port.to_string())
        && origin.strip_prefix("http://").is_some_and(is_loopback_host)
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_origin() {
        use super::is_own_origin;
        assert!(is_own_origin("http://127.0.0.1:8766", 8766));
        assert!(is_own_origin("http://localhost:8766", 8766));
        assert!(!is_own_origin("http://localhost:8767", 8766));
        assert!(!is_own_origin("http://evil.example:8766", 8766));
        assert!(!is_own_origin("https://127.0.0.1:8766", 8766));
        assert!(!is_own_origin("null", 8766));
    }
}
