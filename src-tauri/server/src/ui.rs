//! The settings page, served by the proxy itself (headless users open it in a browser).
//! The same files are the tray app's window. No build step: plain HTML, CSS and ES modules.

use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../../../ui/index.html");
const FILES: [(&str, &str, &str); 3] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../ui/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../ui/api.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../../ui/style.css"),
    ),
];

/// `GET /`: the settings page for a browser; a plain 200 for Claude Code's probe.
pub async fn root(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        page("text/html; charset=utf-8", INDEX)
    } else {
        (StatusCode::OK, "PAI Orchestrator proxy is running\n").into_response()
    }
}

/// `GET /{file}` for the page's scripts and styles.
pub async fn asset(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => page(content_type, body),
        None => crate::rejection::error_response(pai_core::wire::ApiError::not_found(format!(
            "GET /{file} is not a route of this proxy"
        ))),
    }
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            // The page only talks to its own origin.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
            ),
        ],
        body,
    )
        .into_response()
}
