//! The HTTP client the tests use, and the one-liners they repeat.

use serde_json::Value;

/// A client that never goes through a system proxy (tests talk to loopback only).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// `GET url` as JSON.
pub async fn get_json(url: &str) -> Value {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
