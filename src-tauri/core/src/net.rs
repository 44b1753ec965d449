//! The HTTP client the core reaches every upstream with, and how its errors are told:
//! without URLs, which could carry a key in a query string.
//!
//! Imports nothing of the crate.

/// The HTTP client used for every upstream: no overall timeout (streams can run for
/// minutes; time to headers and silences are bounded per provider), no automatic
/// decompression (bytes pass through as sent), TCP_NODELAY, idle connections kept.
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .tcp_nodelay(true)
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .no_proxy()
        .build()
}

/// The innermost cause of a transport error, e.g. "Connection refused (os error 111)";
/// never the URL, which could carry a key.
pub fn root_cause(error: &reqwest::Error) -> String {
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
