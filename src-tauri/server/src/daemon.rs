//! The core, started: config, store, proxy. The same for `--headless` and the tray app.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ProxyState;
use pai_core::config::Config;
use pai_core::fsutil;
use pai_core::pipeline::{Core, Parts};
use pai_core::providers::HealthBoard;
use pai_core::quota::QuotaMonitor;
use pai_core::store::jobs::JobStore;
use pai_core::store::{self, Recorder};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {addr}: {source} (is another PAI Orchestrator running? see `pai-orchestrator status`)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create the admin token {path}: {source}")]
    Token {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How often providers are checked (models, loaded model, reachability).
const HEALTH_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Async jobs run this many at a time.
const JOB_WORKERS: usize = 2;

/// What the core needs to start.
pub struct DaemonOptions {
    pub config: Config,
    /// The config file edits are saved to (`None`: edits are refused).
    pub config_path: Option<PathBuf>,
    pub data_dir: PathBuf,
}

/// A running core. Dropping it does not stop it; call [`Daemon::shutdown`].
pub struct Daemon {
    pub local_addr: SocketAddr,
    pub state: ProxyState,
    /// The HTTP router, built once: the server serves it, the app window calls it.
    router: Router,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
}

/// The app window's one door to the running server: the same router and admin API the
/// settings page uses over HTTP, called in-process.
#[derive(Clone)]
pub struct Door {
    router: Router,
    state: ProxyState,
}

impl Door {
    /// Calls the admin API (or `/v1/queue`, `/health`) as the page would over HTTP.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        use tower::ServiceExt;
        let allowed =
            path.starts_with("/api/") || path.starts_with("/v1/queue") || path == "/health";
        let method = http::Method::from_bytes(method.as_bytes()).ok();
        let (true, Some(method)) = (allowed, method) else {
            return refused(&format!("{path} is not an admin path"));
        };
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, self.state.listen.to_string())
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.state.admin_token),
            )
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            ));
        let Ok(request) = request else {
            return refused("the request cannot be built");
        };
        let response = match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The core, for what the window follows (its events).
    pub fn core(&self) -> &pai_core::Core {
        &self.state.core
    }
}

fn refused(message: &str) -> (u16, Value) {
    (
        400,
        pai_core::wire::ApiError::invalid_request(message).body(),
    )
}

/// Client connections the process can afford: each may need a socket upstream too, and
/// the database, logs and health checks need some of their own. The open-file limit is
/// raised to its hard limit first; the cap stays within it, so the proxy answers `503`
/// beyond the cap instead of running out of descriptors and no longer accepting.
fn connection_limits(configured: usize) -> crate::ConnectionLimits {
    const RESERVED: u64 = 64;
    let files = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let budget = usize::try_from(files.saturating_sub(RESERVED)).unwrap_or(usize::MAX);
    crate::ConnectionLimits {
        open: configured.min(budget / 3).max(1),
        refused_at_once: (budget / 6).clamp(1, 64),
    }
}

/// How long in-flight requests may finish after a shutdown begins.
fn grace(state: &ProxyState) -> std::time::Duration {
    state.config().queue.grace
}

impl Daemon {
    /// Binds, opens the stores and starts serving. A store that cannot be opened (a full
    /// or read-only disk) does not stop the proxy: it serves without it, and `/health`,
    /// the tray and the log say what is off.
    pub async fn start(options: DaemonOptions) -> Result<Daemon, DaemonError> {
        let DaemonOptions {
            config,
            config_path,
            data_dir,
        } = options;
        let addr = config.server.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| DaemonError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| DaemonError::Bind { addr, source })?;
        let mut degraded = Vec::new();
        if let Err(error) = fsutil::private_dir(&data_dir) {
            degraded.push(format!("data dir {}: {error}", data_dir.display()));
        }
        let database = store::database_path(&data_dir);
        let recorder = Recorder::start(&database).unwrap_or_else(|error| {
            degraded.push(format!("request log and quota history are off: {error}"));
            Recorder::disabled()
        });
        let jobs = JobStore::open(&database)
            .map_err(|error| degraded.push(format!("async jobs are off: {error}")))
            .ok();
        let admin_token = crate::admin::token::load_or_create(&data_dir)
            .or_else(|error| {
                degraded.push(format!(
                    "the admin token cannot be saved ({error}): this run uses one of its own, so `settings-url` cannot print it"
                ));
                crate::admin::token::generate()
            })
            .map_err(|source| DaemonError::Token {
                path: crate::admin::token::path(&data_dir),
                source,
            })?;
        for problem in &degraded {
            tracing::error!("{problem}; the proxy serves without it");
        }
        let http = pai_core::net::Http::new();
        let shutdown = CancellationToken::new();
        let quota = QuotaMonitor::new(&config.quota, Some(recorder.clone()));
        quota.restore_from_state_file();
        quota.start(&config.quota, http.clone(), shutdown.clone());
        let health = HealthBoard::default();
        load_qualifications(&data_dir, &health);
        let server_config = config.server.clone();
        let core = Core::new(Parts {
            config,
            http: http.clone(),
            recorder,
            health: health.clone(),
            quota,
            jobs,
        });
        tokio::spawn(pai_core::providers::run_health_checks(
            core.providers.clone(),
            health,
            http,
            HEALTH_CHECK_EVERY,
            shutdown.clone(),
        ));
        let connections = crate::Connections::new(connection_limits(server_config.max_connections));
        let state = ProxyState::new(crate::Shared {
            core: core.clone(),
            config_path,
            data_dir,
            admin_token: admin_token.into(),
            started: Instant::now(),
            listen: local_addr,
            connections: connections.clone(),
            degraded,
        });
        tokio::spawn(pai_core::pipeline::jobs::run_workers(
            core,
            JOB_WORKERS,
            shutdown.clone(),
        ));
        let router = crate::router(state.clone());
        let server = tokio::spawn(crate::serve(
            listener,
            router.clone(),
            connections,
            server_config.idle_timeout,
            shutdown.clone(),
        ));
        tracing::info!(%local_addr, "proxy listening; point Claude Code at ANTHROPIC_BASE_URL=http://{local_addr}");
        Ok(Daemon {
            local_addr,
            state,
            router,
            shutdown,
            server,
        })
    }

    /// Waits until every request-log row recorded so far is written.
    pub async fn flush_log(&self) {
        self.state.core.recorder.flush().await;
    }

    /// The app window's way in.
    pub fn door(&self) -> Door {
        Door {
            router: self.router.clone(),
            state: self.state.clone(),
        }
    }

    /// Stops accepting connections; in-flight requests finish.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the server has stopped. After a shutdown begins, in-flight requests
    /// (streams included) get the grace period (`[queue].grace_secs`) to finish; then the
    /// rest are cut. Queued jobs are on disk already.
    pub async fn wait(self) -> std::io::Result<()> {
        let grace = grace(&self.state);
        let shutdown = self.shutdown.clone();
        let mut server = self.server;
        let finished = tokio::select! {
            result = &mut server => Some(result),
            _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => None,
        };
        match finished {
            Some(Ok(result)) => result,
            Some(Err(join)) => Err(std::io::Error::other(join)),
            None => {
                tracing::warn!(
                    grace_secs = grace.as_secs(),
                    "requests still running after the grace period are cut"
                );
                server.abort();
                Ok(())
            }
        }
    }
}

/// Puts the stored qualification reports on the health board.
fn load_qualifications(data_dir: &std::path::Path, board: &HealthBoard) {
    let stored = store::open(&store::database_path(data_dir))
        .map_err(|e| e.to_string())
        .and_then(|conn| store::latest_qualifications(&conn).map_err(|e| e.to_string()));
    match stored {
        Ok(rows) => {
            for (_, report) in rows {
                if let Ok(report) = serde_json::from_str(&report) {
                    board.set_qualification(report);
                }
            }
        }
        Err(error) => tracing::warn!(%error, "cannot read stored qualifications"),
    }
}
