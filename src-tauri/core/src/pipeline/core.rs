//! The running core: everything a request needs, shared by the proxy, the jobs worker, the
//! admin API and the tray. One `Clone` value made of `Arc`s, built once at start.
//!
//! Knows nothing of HTTP servers or windows: the server adds what HTTP needs (listen
//! address, admin token), the app what the desktop needs.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::Coalescer;
use crate::config::Config;
use crate::providers::{HealthBoard, Providers};
use crate::queue::Queue;
use crate::quota::QuotaMonitor;
use crate::router::{ModeSwitch, Outcomes};
use crate::store::jobs::JobStore;
use crate::store::Recorder;

#[derive(Clone)]
pub struct Core {
    config: Arc<ArcSwap<Config>>,
    pub http: reqwest::Client,
    pub recorder: Recorder,
    pub health: HealthBoard,
    pub providers: Arc<ArcSwap<Providers>>,
    pub mode: ModeSwitch,
    pub outcomes: Outcomes,
    pub queue: Queue,
    pub coalescer: Arc<Coalescer>,
    /// Async jobs; `None` when their store cannot be opened.
    pub jobs: Option<JobStore>,
    pub quota: QuotaMonitor,
    /// The target that answered the latest request (the tray shows it).
    pub last_route: Arc<watch::Sender<Option<String>>>,
}

/// What the core is built from.
pub struct Parts {
    pub config: Config,
    pub http: reqwest::Client,
    pub recorder: Recorder,
    pub health: HealthBoard,
    pub quota: QuotaMonitor,
    pub jobs: Option<JobStore>,
}

impl Core {
    pub fn new(parts: Parts) -> Core {
        let Parts {
            config,
            http,
            recorder,
            health,
            quota,
            jobs,
        } = parts;
        let providers = Providers::from_config(&config, &health);
        Core {
            config: Arc::new(ArcSwap::from_pointee(config)),
            http,
            recorder,
            health,
            providers: Arc::new(ArcSwap::from_pointee(providers)),
            mode: ModeSwitch::default(),
            outcomes: Outcomes::default(),
            queue: Queue::default(),
            coalescer: Arc::default(),
            jobs,
            quota,
            last_route: Arc::new(watch::channel(None).0),
        }
    }

    /// The config in force now.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Applies a new config at once: providers rebuilt, quota thresholds and sources
    /// updated. The listen address stays the one in force (a new one needs a restart).
    pub fn apply_config(&self, mut config: Config) {
        config.server.listen = self.config().server.listen;
        self.quota.reconfigure(&config.quota);
        self.providers
            .store(Arc::new(Providers::from_config(&config, &self.health)));
        self.config.store(Arc::new(config));
        tracing::info!("config applied");
    }
}
