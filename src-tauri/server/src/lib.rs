//! The local proxy Claude Code talks to: Anthropic's Messages API on loopback, the jobs
//! API, `/health`, the admin API and the settings page — the HTTP face of the core.
//!
//! Handlers only translate between HTTP and the core: a request is read ([`body`]) and
//! guarded ([`guard`]) here, then runs through the core's pipeline ([`messages`],
//! [`jobs`]). [`daemon`] starts it all; [`serve`] accepts the connections. May import
//! the core (`pai-core`); only the app imports this.

pub mod admin;
mod body;
pub mod daemon;
mod guard;
mod health;
mod jobs;
mod messages;
mod rejection;
mod serve;
mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use axum::Router;

pub use body::MAX_BODY_BYTES;
pub use health::HealthResponse;
pub use serve::{serve, ConnectionLimits, Connections};

use pai_core::config::Config;
use pai_core::pipeline::Core;

/// Everything a request handler needs: the core, and what HTTP adds to it. Every handler
/// gets a clone; cloning is one reference count.
#[derive(Clone)]
pub struct ProxyState(Arc<Shared>);

pub struct Shared {
    pub core: Core,
    /// The config file, when there is one to save edits to.
    pub config_path: Option<std::path::PathBuf>,
    pub data_dir: std::path::PathBuf,
    /// Guards the admin API and the settings page.
    pub admin_token: Arc<str>,
    pub started: Instant,
    /// The address actually bound (the config may say port 0).
    pub listen: SocketAddr,
    /// Client connections open now.
    pub connections: Connections,
    /// What does not work (a store that could not be opened), in words.
    pub degraded: Vec<String>,
}

impl ProxyState {
    pub fn new(shared: Shared) -> ProxyState {
        ProxyState(Arc::new(shared))
    }
}

impl std::ops::Deref for ProxyState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl ProxyState {
    pub fn config(&self) -> Arc<Config> {
        self.core.config()
    }

    /// Runs `read` on a fresh read connection off the async threads.
    pub async fn read_db<T: Send + 'static>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let path = pai_core::store::database_path(&self.data_dir);
        tokio::task::spawn_blocking(move || {
            let conn = pai_core::store::open(&path).map_err(|e| e.to_string())?;
            read(&conn).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

pub fn router(state: ProxyState) -> Router {
    Router::new()
        .nest("/api", crate::admin::router(state.clone()))
        .route("/", get(ui::root).head(messages::root))
        .route("/{file}", get(ui::asset))
        .route("/health", get(health::health))
        .route("/v1/messages", post(messages::messages))
        .route("/v1/messages/count_tokens", post(messages::count_tokens))
        .route("/v1/queue/messages", post(jobs::enqueue))
        .route("/v1/queue", get(jobs::list))
        .route("/v1/queue/{id}", get(jobs::get).delete(jobs::cancel))
        .route("/v1/{*rest}", any(messages::passthrough))
        .fallback(messages::not_found)
        .method_not_allowed_fallback(rejection::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::refuse_foreign,
        ))
        // The body limit is enforced while reading, with Anthropic's error shape.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}
