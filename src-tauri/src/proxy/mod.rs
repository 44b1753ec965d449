//! The local proxy Claude Code talks to: Anthropic's Messages API on loopback.

pub(crate) mod chain;
pub mod error;
pub(crate) mod forward;
mod guard;
pub mod headers;
mod health;
pub mod inspect;
mod jobs;
mod relay;
mod ui;
mod usage;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use forward::MAX_BODY_BYTES;
pub use guard::is_loopback_host;
pub use health::HealthResponse;
pub use jobs::run_workers as run_job_workers;

use crate::config::Config;
use crate::providers::{HealthBoard, Providers};
use crate::quota::QuotaMonitor;
use crate::router::{ModeSwitch, Outcomes};
use crate::store::Recorder;

/// Everything a request handler needs; cheap to clone (all `Arc`s).
#[derive(Clone)]
pub struct ProxyState {
    pub config: Arc<ArcSwap<Config>>,
    pub http: reqwest::Client,
    pub recorder: Recorder,
    pub health: HealthBoard,
    pub providers: Arc<ArcSwap<Providers>>,
    pub mode: ModeSwitch,
    pub outcomes: Outcomes,
    pub queue: crate::queue::Queue,
    /// Async jobs; `None` when their store cannot be opened.
    pub jobs: Option<crate::queue::jobs::JobStore>,
    /// The config file, when there is one to save edits to.
    pub config_path: Option<std::path::PathBuf>,
    pub data_dir: std::path::PathBuf,
    /// The target that answered the latest request (the tray shows it).
    pub last_route: Arc<tokio::sync::watch::Sender<Option<String>>>,
    /// Guards the admin API and the settings page.
    pub admin_token: Arc<str>,
    pub quota: QuotaMonitor,
    pub started: Instant,
    /// The address actually bound (the config may say port 0).
    pub listen: SocketAddr,
}

impl ProxyState {
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Applies a new config at once: providers rebuilt, quota thresholds and sources
    /// updated. The listen address stays the one bound (a new one needs a restart).
    pub fn apply_config(&self, mut config: Config) {
        config.server.listen = self.config().server.listen;
        self.quota.reconfigure(&config.quota);
        self.providers
            .store(Arc::new(Providers::from_config(&config, &self.health)));
        self.config.store(Arc::new(config));
        tracing::info!("config applied");
    }

    /// Runs `read` on a fresh read connection off the async threads.
    pub async fn read_db<T: Send + 'static>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let path = crate::store::database_path(&self.data_dir);
        tokio::task::spawn_blocking(move || {
            let conn = crate::store::open(&path).map_err(|e| e.to_string())?;
            read(&conn).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// The HTTP client used for every upstream: no overall timeout (streams can run for
/// minutes; time to headers is bounded per provider), no automatic decompression (bytes
/// pass through as sent), TCP_NODELAY, idle connections kept for reuse.
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .tcp_nodelay(true)
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .no_proxy()
        .build()
}

pub fn router(state: ProxyState) -> Router {
    Router::new()
        .nest("/api", crate::admin::router(state.clone()))
        .route("/", get(ui::root).head(forward::root))
        .route("/{file}", get(ui::asset))
        .route("/health", get(health::health))
        .route("/v1/messages", post(forward::messages))
        .route("/v1/messages/count_tokens", post(forward::count_tokens))
        .route("/v1/queue/messages", post(jobs::enqueue))
        .route("/v1/queue", get(jobs::list))
        .route("/v1/queue/{id}", get(jobs::get).delete(jobs::cancel))
        .route("/v1/{*rest}", any(forward::passthrough))
        .fallback(forward::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::refuse_foreign,
        ))
        // The body limit is enforced while reading, with Anthropic's error shape.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` fires. Every accepted socket gets
/// TCP_NODELAY: without it a keep-alive response can stall ~40 ms on delayed ACKs.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}
