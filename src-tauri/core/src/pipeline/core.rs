//! The running core: everything a request needs, shared by the proxy, the jobs worker, the
//! admin API and the tray. One `Clone` value made of `Arc`s, built once at start.
//!
//! Knows nothing of HTTP servers or windows: the server adds what HTTP needs (listen
//! address, admin token), the app what the desktop needs.

use std::sync::Arc;

use arc_swap::ArcSwap;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::watch;
use tokio_stream::wrappers::{BroadcastStream, WatchStream};

use super::sessions::Sessions;
use super::Coalescer;
use crate::classify::Classifier;
use crate::config::Config;
use crate::providers::{Health, HealthBoard, Loads, Providers};
use crate::queue::Queue;
use crate::quota::{QuotaMonitor, QuotaSnapshot};
use crate::router::{Mode, ModeSwitch, Outcomes};
use crate::store::jobs::JobStore;
use crate::store::Recorder;

/// The running core; cloning it is one reference count (a request holds it for as long
/// as its answer streams).
#[derive(Clone)]
pub struct Core(Arc<Shared>);

/// What the core is made of, shared by every clone of [`Core`].
pub struct Shared {
    config: ArcSwap<Config>,
    /// The config's classification rules, compiled.
    classifier: ArcSwap<Classifier>,
    pub http: crate::net::Http,
    pub recorder: Recorder,
    pub health: HealthBoard,
    pub providers: Arc<ArcSwap<Providers>>,
    pub mode: ModeSwitch,
    pub outcomes: Outcomes,
    pub queue: Queue,
    pub coalescer: Coalescer,
    /// Async jobs; `None` when their store cannot be opened.
    pub jobs: Option<JobStore>,
    pub quota: QuotaMonitor,
    /// The target that answered the latest request (the tray shows it).
    pub last_route: watch::Sender<Option<String>>,
    /// The same, per Claude Code session (its status line shows it).
    pub sessions: Sessions,
    /// Which Claude model signed which thinking block the proxy relayed.
    pub signatures: crate::providers::Signatures,
    /// The models Anthropic serves now (tiers resolve to the newest of their family).
    pub models: crate::providers::claude::Catalog,
    /// What clients sent that the proxy has never seen.
    pub drift: super::drift::Drift,
    /// Which target issued which tool call (a tool loop continues there).
    pub tool_calls: super::sessions::ToolCalls,
    /// Counts config changes applied, so whoever shows the config knows to read it again.
    applied: watch::Sender<u64>,
}

impl std::ops::Deref for Core {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What changed in the core, for whoever shows it (the tray, the settings page): the core
/// says what happened; how to show it is theirs.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CoreEvent {
    /// The quota snapshot changed (its state, a window, a reset).
    Quota {
        snapshot: Box<QuotaSnapshot>,
    },
    /// A provider went down or came back.
    Provider {
        name: String,
        health: Health,
    },
    /// A request was answered by `route`, e.g. `lmstudio (simple)`.
    Route {
        route: String,
    },
    /// A model load began or ended (LM Studio): the loads under way now.
    Loading {
        loads: Loads,
    },
    /// Interactive requests waiting for the quota now.
    Waiting {
        count: usize,
    },
    Mode {
        mode: Mode,
    },
    /// A target was taken off a class of work for answers that did not work.
    Demoted {
        demotion: crate::router::Demotion,
    },
    /// An async job was queued, started, finished or cancelled.
    Jobs,
    /// A new config is in force.
    Config,
}

/// What the core is built from.
pub struct Parts {
    pub config: Config,
    pub http: crate::net::Http,
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
        Core(Arc::new(Shared {
            classifier: ArcSwap::from_pointee(Classifier::new(&config.classify)),
            config: ArcSwap::from_pointee(config),
            http,
            recorder,
            health,
            providers: Arc::new(ArcSwap::from_pointee(providers)),
            mode: ModeSwitch::default(),
            outcomes: Outcomes::default(),
            queue: Queue::default(),
            coalescer: Coalescer::default(),
            jobs,
            quota,
            last_route: watch::channel(None).0,
            sessions: Sessions::default(),
            signatures: crate::providers::Signatures::default(),
            models: crate::providers::claude::Catalog::default(),
            drift: super::drift::Drift::default(),
            tool_calls: super::sessions::ToolCalls::default(),
            applied: watch::channel(0).0,
        }))
    }

    /// Every change from now on, as it happens: a stream per subscriber, merged from the
    /// core's own channels (nothing runs while nobody listens).
    pub fn events(&self) -> impl Stream<Item = CoreEvent> + Send + 'static {
        let quota =
            WatchStream::from_changes(self.quota.subscribe()).map(|snapshot| CoreEvent::Quota {
                snapshot: Box::new(snapshot),
            });
        let providers = BroadcastStream::new(self.health.events())
            .filter_map(|event| async move { event.ok() })
            .map(|(name, health)| CoreEvent::Provider { name, health });
        let routes = WatchStream::from_changes(self.last_route.subscribe())
            .filter_map(|route| async move { route })
            .map(|route| CoreEvent::Route { route });
        let loads = WatchStream::from_changes(self.health.loads())
            .map(|loads| CoreEvent::Loading { loads });
        let waiting = WatchStream::from_changes(self.queue.waiting())
            .map(|count| CoreEvent::Waiting { count });
        let modes =
            WatchStream::from_changes(self.mode.subscribe()).map(|mode| CoreEvent::Mode { mode });
        let demotions = BroadcastStream::new(self.outcomes.demotions())
            .filter_map(|event| async move { event.ok() })
            .map(|demotion| CoreEvent::Demoted { demotion });
        let applied =
            WatchStream::from_changes(self.applied.subscribe()).map(|_| CoreEvent::Config);
        let jobs = match &self.jobs {
            Some(jobs) => WatchStream::from_changes(jobs.changes())
                .map(|_| CoreEvent::Jobs)
                .boxed(),
            None => futures_util::stream::pending().boxed(),
        };
        futures_util::stream::select_all([
            jobs,
            quota.boxed(),
            providers.boxed(),
            routes.boxed(),
            loads.boxed(),
            waiting.boxed(),
            modes.boxed(),
            demotions.boxed(),
            applied.boxed(),
        ])
    }

    /// The config in force now.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// The classification rules in force now, compiled.
    pub fn classifier(&self) -> Arc<Classifier> {
        self.classifier.load_full()
    }

    /// Applies a new config at once: providers rebuilt, quota thresholds and sources
    /// updated. The listen address stays the one in force (a new one needs a restart).
    pub fn apply_config(&self, mut config: Config) {
        config.server.listen = self.config().server.listen;
        self.quota.reconfigure(&config.quota);
        self.providers
            .store(Arc::new(Providers::from_config(&config, &self.health)));
        self.classifier
            .store(Arc::new(Classifier::new(&config.classify)));
        self.config.store(Arc::new(config));
        self.applied.send_modify(|n| *n += 1);
        tracing::info!("config applied");
    }
}
