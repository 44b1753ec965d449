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

/// `GET url` as JSON, as the holder of `key` (jobs are their submitter's alone).
pub async fn get_json_as(url: &str, key: &str) -> Value {
    client()
        .get(url)
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
