//! A minimal W3C WebDriver client (the few calls the app-window test needs), talking to
//! `tauri-driver`, which drives the real app's WebKitGTK window.

use std::time::Duration;

use serde_json::{json, Value};

pub struct Session {
    http: reqwest::Client,
    base: String,
    id: String,
}

/// Every call is bounded: a hidden window makes some WebDriver calls hang forever.
const CALL_LIMIT: Duration = Duration::from_secs(30);

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Value {
    let request = http.request(method, &url).json(&body.unwrap_or(json!({})));
    let response = tokio::time::timeout(CALL_LIMIT, request.send())
        .await
        .unwrap_or_else(|_| panic!("WebDriver call {url} took over 30 s"))
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer["value"].get("error").is_none(),
        "WebDriver {url}: {answer}"
    );
    answer["value"].clone()
}

impl Session {
    pub async fn start(driver: &str, application: &str, args: &[String]) -> Session {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "wry",
            "tauri:options": {"application": application, "args": args}}}});
        let value = call(
            &http,
            reqwest::Method::POST,
            format!("{driver}/session"),
            Some(caps),
        )
        .await;
        Session {
            http,
            base: driver.to_owned(),
            id: value["sessionId"].as_str().unwrap().to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.id)
    }

    /// Finds an element by CSS selector, waiting for it to appear.
    pub async fn find(&self, css: &str) -> String {
        let deadline = tokio::time::Instant::now() + CALL_LIMIT;
        loop {
            let response = self
                .http
                .post(self.url("/element"))
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .unwrap();
            let answer: Value = response.json().await.unwrap();
            if let Some(id) = answer["value"]
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(Value::as_str)
            {
                if answer["value"].get("error").is_none() {
                    return id.to_owned();
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no element {css}: {answer}"
            );
            tokio::task::yield_now().await;
        }
    }

    pub async fn text(&self, element: &str) -> String {
        call(
            &self.http,
            reqwest::Method::GET,
            self.url(&format!("/element/{element}/text")),
            None,
        )
        .await
        .as_str()
        .unwrap_or("")
        .to_owned()
    }

    pub async fn click(&self, element: &str) {
        call(
            &self.http,
            reqwest::Method::POST,
            self.url(&format!("/element/{element}/click")),
            Some(json!({})),
        )
        .await;
    }

    pub async fn clear(&self, element: &str) {
        call(
            &self.http,
            reqwest::Method::POST,
            self.url(&format!("/element/{element}/clear")),
            Some(json!({})),
        )
        .await;
    }

    pub async fn type_text(&self, element: &str, text: &str) {
        call(
            &self.http,
            reqwest::Method::POST,
            self.url(&format!("/element/{element}/value")),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Runs a script in the page and returns its value.
    pub async fn script(&self, script: &str) -> Value {
        call(
            &self.http,
            reqwest::Method::POST,
            self.url("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// A PNG of the window.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let value = call(
            &self.http,
            reqwest::Method::GET,
            self.url("/screenshot"),
            None,
        )
        .await;
        base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap_or(""))
            .unwrap_or_default()
    }

    pub async fn quit(self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.id))
            .send()
            .await;
    }
}
