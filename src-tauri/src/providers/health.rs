//! What is known of each provider's health, updated by what the proxy sees.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Nothing tried yet.
    Unknown,
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub health: Health,
    /// Why it is unhealthy, in words (never a secret).
    pub last_error: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

/// Shared, cheap-to-clone health board for all providers.
#[derive(Clone, Default)]
pub struct HealthBoard {
    inner: Arc<Mutex<HashMap<String, HealthReport>>>,
}

impl HealthBoard {
    pub fn report(&self, provider: &str) -> HealthReport {
        self.lock().get(provider).cloned().unwrap_or(HealthReport {
            health: Health::Unknown,
            last_error: None,
            since: None,
        })
    }

    pub fn mark_healthy(&self, provider: &str) {
        self.set(provider, Health::Healthy, None);
    }

    pub fn mark_unhealthy(&self, provider: &str, error: String) {
        self.set(provider, Health::Unhealthy, Some(error));
    }

    fn set(&self, provider: &str, health: Health, last_error: Option<String>) {
        let mut map = self.lock();
        let entry = map.entry(provider.to_owned()).or_insert(HealthReport {
            health: Health::Unknown,
            last_error: None,
            since: None,
        });
        if entry.health != health {
            tracing::info!(
                provider,
                ?health,
                error = last_error.as_deref(),
                "provider health changed"
            );
            entry.since = Some(Utc::now());
        }
        entry.health = health;
        entry.last_error = last_error;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HealthReport>> {
        // A panic while holding this lock cannot leave the map inconsistent: recover it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
