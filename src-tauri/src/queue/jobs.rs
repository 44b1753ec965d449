//! Async jobs: `POST /v1/queue/messages` takes a Messages body and answers `202` once the
//! job is on disk (SQLite, `synchronous=FULL`); workers run jobs through the same router
//! and quota rules (waiting while the quota is critical), retry with backoff, and a job
//! that was running when the process died runs again after the restart (at least once,
//! with an `idempotency-key` upstream). Credentials are never written: they stay in
//! memory, so a job recovered after a restart goes out without the client's key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;

use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> JobStatus {
        match text {
            "running" => JobStatus::Running,
            "done" => JobStatus::Done,
            "failed" => JobStatus::Failed,
            "cancelled" => JobStatus::Cancelled,
            _ => JobStatus::Queued,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub status: JobStatus,
    /// 0 runs first, 9 last.
    pub priority: u8,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub not_before: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    /// The full Anthropic response, when done.
    pub response: Option<Value>,
    pub error: Option<String>,
    #[serde(skip)]
    pub request: Value,
    /// Non-secret headers to send with it (`anthropic-version`, `anthropic-beta`).
    #[serde(skip)]
    pub headers: Vec<(String, String)>,
}

/// Header name/value pairs.
pub type Headers = Vec<(String, String)>;

/// The durable job table, and the credentials kept in memory for jobs still to run.
#[derive(Clone)]
pub struct JobStore {
    conn: Arc<Mutex<Connection>>,
    credentials: Arc<Mutex<HashMap<String, Headers>>>,
    pub wake: Arc<Notify>,
    /// Counts finished runs, so waiters (long polls) know when to look again.
    finished: Arc<tokio::sync::watch::Sender<u64>>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn parse_ts(text: Option<String>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
}

const COLUMNS: &str =
    "id, status, priority, attempts, created_at, updated_at, not_before, deadline, response, error, request, headers";

fn row_to_job(row: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let response: Option<String> = row.get(8)?;
    let request: String = row.get(10)?;
    let headers: String = row.get(11)?;
    Ok(Job {
        id: row.get(0)?,
        status: JobStatus::parse(&row.get::<_, String>(1)?),
        priority: row.get(2)?,
        attempts: row.get(3)?,
        created_at: parse_ts(row.get(4)?).unwrap_or_default(),
        updated_at: parse_ts(row.get(5)?).unwrap_or_default(),
        not_before: parse_ts(row.get(6)?),
        deadline: parse_ts(row.get(7)?),
        response: response.and_then(|r| serde_json::from_str(&r).ok()),
        error: row.get(9)?,
        request: serde_json::from_str(&request).unwrap_or(Value::Null),
        headers: serde_json::from_str(&headers).unwrap_or_default(),
    })
}

impl JobStore {
    /// Opens the job table; jobs left `running` by a process that died are queued again.
    pub fn open(path: &Path) -> Result<JobStore, StoreError> {
        let conn = crate::store::open(path)?;
        // An accepted job must survive a power cut: every commit reaches the disk.
        conn.pragma_update(None, "synchronous", "FULL")?;
        let requeued = conn.execute(
            "UPDATE jobs SET status = 'queued', updated_at = ?1 WHERE status = 'running'",
            [ts(Utc::now())],
        )?;
        if requeued > 0 {
            tracing::info!(
                jobs = requeued,
                "jobs interrupted by the last shutdown are queued again"
            );
        }
        Ok(JobStore {
            conn: Arc::new(Mutex::new(conn)),
            credentials: Arc::default(),
            wake: Arc::new(Notify::new()),
            finished: Arc::new(tokio::sync::watch::channel(0).0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(&store.lock()).map_err(|e| e.to_string()))
            .await
            .map_err(|e| e.to_string())?
    }

    /// Stores a new job durably; returns once it is on disk.
    pub async fn enqueue(
        &self,
        request: Value,
        headers: Vec<(String, String)>,
        credentials: Vec<(String, String)>,
        priority: u8,
        not_before: Option<DateTime<Utc>>,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<String, String> {
        let id = format!("job_{}", random_id());
        let now = Utc::now();
        let row_id = id.clone();
        let request = request.to_string();
        let headers = serde_json::to_string(&headers).unwrap_or_else(|_| "[]".into());
        self.blocking(move |conn| {
            conn.execute(
                "INSERT INTO jobs (id, seq, created_at, updated_at, priority, not_before, deadline, status, request, headers)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs), ?2, ?2, ?3, ?4, ?5, 'queued', ?6, ?7)",
                params![row_id, ts(now), priority, not_before.map(ts), deadline.map(ts), request, headers],
            )
        })
        .await?;
        if !credentials.is_empty() {
            self.credentials
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.clone(), credentials);
        }
        self.wake.notify_waiters();
        Ok(id)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Job>, String> {
        let id = id.to_owned();
        self.blocking(move |conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                row_to_job,
            )
            .optional()
        })
        .await
    }

    pub async fn list(&self, status: Option<JobStatus>, limit: usize) -> Result<Vec<Job>, String> {
        self.blocking(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE (?1 IS NULL OR status = ?1) ORDER BY seq DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![status.map(JobStatus::name), limit as i64], row_to_job)?;
            rows.collect()
        })
        .await
    }

    /// Cancels a job that has not ended. Returns its status after, and whether this call
    /// cancelled it.
    pub async fn cancel(&self, id: &str) -> Result<Option<(JobStatus, bool)>, String> {
        let row_id = id.to_owned();
        let status = self
            .blocking(move |conn| {
                let changed = conn.execute(
                    "UPDATE jobs SET status = 'cancelled', updated_at = ?2
                     WHERE id = ?1 AND status IN ('queued', 'running')",
                    params![row_id, ts(Utc::now())],
                )?;
                conn.query_row("SELECT status FROM jobs WHERE id = ?1", [row_id], |r| {
                    r.get::<_, String>(0)
                })
                .optional()
                .map(|status| status.map(|s| (JobStatus::parse(&s), changed > 0)))
            })
            .await?;
        self.forget_credentials(id);
        self.finished.send_modify(|n| *n += 1);
        Ok(status)
    }

    fn forget_credentials(&self, id: &str) {
        self.credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    pub fn credentials(&self, id: &str) -> Vec<(String, String)> {
        self.credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// Takes the next job that may run now (priority, then arrival) and marks it running.
    pub async fn claim(&self, now: DateTime<Utc>) -> Result<Option<Job>, String> {
        self.blocking(move |conn| {
            conn.query_row(
                &format!(
                    "UPDATE jobs SET status = 'running', attempts = attempts + 1, updated_at = ?1
                     WHERE id = (SELECT id FROM jobs WHERE status = 'queued'
                                 AND (not_before IS NULL OR not_before <= ?1)
                                 ORDER BY priority, seq LIMIT 1)
                     RETURNING {COLUMNS}"
                ),
                [ts(now)],
                row_to_job,
            )
            .optional()
        })
        .await
    }

    /// When the next waiting job may run, if any waits.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, String> {
        self.blocking(|conn| {
            conn.query_row(
                "SELECT MIN(COALESCE(not_before, created_at)) FROM jobs WHERE status = 'queued'",
                [],
                |r| r.get::<_, Option<String>>(0),
            )
        })
        .await
        .map(parse_ts)
    }

    /// Records how a run ended, unless the job was cancelled meanwhile.
    pub async fn finish(&self, id: &str, outcome: Finish) -> Result<(), String> {
        let row_id = id.to_owned();
        let final_state = !matches!(outcome, Finish::Retry { .. });
        self.blocking(move |conn| {
            let now = ts(Utc::now());
            match outcome {
                Finish::Done(response) => conn.execute(
                    "UPDATE jobs SET status = 'done', response = ?2, error = NULL, updated_at = ?3
                     WHERE id = ?1 AND status = 'running'",
                    params![row_id, response.to_string(), now],
                ),
                Finish::Failed(error) => conn.execute(
                    "UPDATE jobs SET status = 'failed', error = ?2, updated_at = ?3
                     WHERE id = ?1 AND status = 'running'",
                    params![row_id, error, now],
                ),
                Finish::Retry { error, not_before } => conn.execute(
                    "UPDATE jobs SET status = 'queued', error = ?2, not_before = ?3, updated_at = ?4
                     WHERE id = ?1 AND status = 'running'",
                    params![row_id, error, ts(not_before), now],
                ),
            }
        })
        .await?;
        if final_state {
            self.forget_credentials(id);
        }
        self.finished.send_modify(|n| *n += 1);
        Ok(())
    }

    /// The job once it has ended (done, failed, cancelled), waiting at most `wait`.
    pub async fn wait_for_end(&self, id: &str, wait: Duration) -> Result<Option<Job>, String> {
        let mut finished = self.finished.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            finished.borrow_and_update();
            let job = self.get(id).await?;
            let ended = job.as_ref().is_none_or(|j| {
                matches!(
                    j.status,
                    JobStatus::Done | JobStatus::Failed | JobStatus::Cancelled
                )
            });
            if ended {
                return Ok(job);
            }
            match tokio::time::timeout_at(deadline, finished.changed()).await {
                Ok(Ok(())) => continue,
                _ => return Ok(job),
            }
        }
    }
}

/// How one run of a job ended.
pub enum Finish {
    Done(Value),
    Failed(String),
    Retry {
        error: String,
        not_before: DateTime<Utc>,
    },
}

/// When to retry a job after its `attempt`-th failure, or `None` when it has had all its
/// attempts. `now` and `unit` (jitter) are parameters so this is tested without waiting.
pub fn retry_at(
    backoff: &super::backoff::Backoff,
    attempts_allowed: u32,
    attempt: u32,
    retry_after: Option<Duration>,
    now: DateTime<Utc>,
    unit: f64,
) -> Option<DateTime<Utc>> {
    if attempt >= attempts_allowed {
        return None;
    }
    let delay = backoff.delay(attempt, retry_after, unit);
    Some(now + chrono::Duration::from_std(delay).unwrap_or_default())
}

fn random_id() -> String {
    let mut bytes = [0u8; 12];
    if getrandom::fill(&mut bytes).is_err() {
        return Utc::now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .to_string();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The database path used for jobs (the shared database).
pub fn path(data_dir: &Path) -> PathBuf {
    crate::store::database_path(data_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::backoff::Backoff;
    use chrono::TimeZone;

    #[test]
    fn retries_honour_retry_after_and_stop_after_the_last_attempt() {
        let now = Utc.timestamp_opt(1_764_000_000, 0).unwrap();
        let backoff = Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            attempts: 3,
        };
        let at = retry_at(&backoff, 5, 1, Some(Duration::from_secs(30)), now, 0.1).unwrap();
        assert_eq!((at - now).num_seconds(), 30, "retry-after is a floor");
        let at = retry_at(&backoff, 5, 3, None, now, 0.5).unwrap();
        assert_eq!((at - now).num_milliseconds(), 2000, "half of 1s * 2^2");
        assert_eq!(retry_at(&backoff, 5, 5, None, now, 0.5), None);
    }

    #[tokio::test]
    async fn jobs_run_by_priority_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite3");
        let store = JobStore::open(&db).unwrap();
        let body = serde_json::json!({"model": "m", "messages": []});
        let low = store
            .enqueue(body.clone(), vec![], vec![], 9, None, None)
            .await
            .unwrap();
        let high = store
            .enqueue(
                body.clone(),
                vec![],
                vec![("x-api-key".into(), "k".into())],
                0,
                None,
                None,
            )
            .await
            .unwrap();
        let later = store
            .enqueue(
                body,
                vec![],
                vec![],
                0,
                Some(Utc::now() + chrono::Duration::hours(1)),
                None,
            )
            .await
            .unwrap();
        let claimed = store.claim(Utc::now()).await.unwrap().unwrap();
        assert_eq!(claimed.id, high);
        assert_eq!(claimed.attempts, 1);
        assert_eq!(
            store.credentials(&high),
            [("x-api-key".to_owned(), "k".to_owned())]
        );
        // The process dies with `high` running; a new one queues it again.
        drop(store);
        let store = JobStore::open(&db).unwrap();
        assert!(
            store.credentials(&high).is_empty(),
            "credentials never reach the disk"
        );
        let again = store.claim(Utc::now()).await.unwrap().unwrap();
        assert_eq!((again.id.as_str(), again.attempts), (high.as_str(), 2));
        store
            .finish(&high, Finish::Done(serde_json::json!({"ok": true})))
            .await
            .unwrap();
        assert_eq!(store.claim(Utc::now()).await.unwrap().unwrap().id, low);
        assert!(
            store.claim(Utc::now()).await.unwrap().is_none(),
            "{later} is not due"
        );
        assert_eq!(
            store.cancel(&later).await.unwrap(),
            Some((JobStatus::Cancelled, true))
        );
        assert_eq!(
            store.cancel(&later).await.unwrap(),
            Some((JobStatus::Cancelled, false))
        );
        let done = store.get(&high).await.unwrap().unwrap();
        assert_eq!(done.status, JobStatus::Done);
        assert_eq!(done.response.unwrap()["ok"], true);
    }
}
