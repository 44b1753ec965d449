//! Async jobs: `POST /v1/queue/messages` takes a Messages body and answers `202` once the
//! job is on disk (SQLite, `synchronous=FULL`: the commit waited for the disk); a cancel
//! is as durable. Workers run jobs through the same router and quota rules (waiting while
//! the quota is critical) and retry with backoff; their bookkeeping (running, finished)
//! goes through a second connection that does not wait for the disk, so an enqueue never
//! queues behind a worker's sync. A job that was running when the process died — or whose
//! end was not yet on disk at a power cut — runs again after the restart (at least once,
//! with an `idempotency-key` upstream).
//!
//! Credentials are never written. A job keeps a salted fingerprint of the credential it
//! was submitted with; the credential itself stays in memory. After a restart such a job
//! waits (its status says why) until a request carrying a credential with the same
//! fingerprint reaches the proxy, and then runs with that credential — or with the key
//! configured for jobs (`[queue] jobs_api_key_env`), when there is one.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;

use sha2::{Digest, Sha256};

use super::StoreError;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// A status read from the database; one this version does not know is an error, not
    /// a guess (a guess of `queued` would run a finished job again).
    fn parse(text: &str) -> rusqlite::Result<JobStatus> {
        text.parse().map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                1,
                rusqlite::types::Type::Text,
                format!("unknown job status {text:?}").into(),
            )
        })
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
    /// Why a queued job is not running yet, when it waits for something.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    #[serde(skip)]
    pub request: Value,
    /// Non-secret headers to send with it (`anthropic-version`, `anthropic-beta`).
    #[serde(skip)]
    pub headers: Vec<(String, String)>,
    /// The fingerprint of the credential it was submitted with.
    #[serde(skip)]
    pub credential: Option<String>,
}

/// Header name/value pairs.
pub type Headers = Vec<(String, String)>;

/// The durable job table, and the credentials kept in memory for jobs still to run.
#[derive(Clone)]
pub struct JobStore {
    /// Reads and the workers' bookkeeping (`synchronous=NORMAL`).
    conn: Arc<Mutex<Connection>>,
    /// What a client is told is done: enqueue, cancel (`synchronous=FULL`).
    durable: Arc<Mutex<Connection>>,
    /// Credentials by fingerprint, in memory only.
    credentials: Arc<Mutex<Credentials>>,
    salt: Arc<[u8; 32]>,
    pub wake: Arc<Notify>,
    /// Counts changes (a job queued, started, finished, cancelled), so waiters (long
    /// polls, the settings page) know when to look again.
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn parse_ts(text: Option<String>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
}

const COLUMNS: &str =
    "id, status, priority, attempts, created_at, updated_at, not_before, deadline, response, error, request, headers, credential";

/// Which jobs a caller may see.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// Every job (the admin token: the settings page).
    All,
    /// Those submitted with this credential's fingerprint (`None`: no credential, no job).
    Of(Option<String>),
}

impl Seen {
    /// Whether `job` is one of them.
    pub fn sees(&self, job: &Job) -> bool {
        match self {
            Seen::All => true,
            Seen::Of(owner) => owner.is_some() && job.credential == *owner,
        }
    }
}

/// Credentials held for jobs, by fingerprint; and the fingerprints jobs on disk wait for.
#[derive(Default)]
struct Credentials {
    known: HashMap<String, Headers>,
    wanted: std::collections::HashSet<String>,
}

/// The credentials a job waits for, in words.
const WAITING_FOR_CREDENTIALS: &str = "the client's credentials: it was submitted before a restart, and keys are never stored; it runs when a request with the same key reaches the proxy (or set [queue] jobs_api_key_env)";

fn row_to_job(row: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let response: Option<String> = row.get(8)?;
    let request: String = row.get(10)?;
    let headers: String = row.get(11)?;
    Ok(Job {
        id: row.get(0)?,
        status: JobStatus::parse(&row.get::<_, String>(1)?)?,
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
        credential: row.get(12)?,
        waiting_for: None,
    })
}

/// This database's salt for credential fingerprints, made on first use.
fn salt(conn: &Connection) -> rusqlite::Result<[u8; 32]> {
    let stored: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'credential_salt'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let parse = |hex: &str| -> Option<[u8; 32]> {
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect();
        bytes?.try_into().ok()
    };
    if let Some(salt) = stored.as_deref().and_then(parse) {
        return Ok(salt);
    }
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.to_string().into()))?;
    let hex: String = salt.iter().map(|b| format!("{b:02x}")).collect();
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('credential_salt', ?1)",
        [hex],
    )?;
    Ok(salt)
}

impl JobStore {
    /// Opens the job table; jobs left `running` by a process that died are queued again.
    pub fn open(path: &Path) -> Result<JobStore, StoreError> {
        let conn = super::open(path)?;
        let durable = super::open(path)?;
        // An accepted job must survive a power cut: its commit reaches the disk.
        durable.pragma_update(None, "synchronous", "FULL")?;
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
        let salt = salt(&conn)?;
        let wanted = {
            let mut stmt = conn.prepare(
                "SELECT DISTINCT credential FROM jobs WHERE status = 'queued' AND credential IS NOT NULL",
            )?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<std::collections::HashSet<String>>>()?
        };
        if !wanted.is_empty() {
            tracing::info!(
                credentials = wanted.len(),
                "queued jobs wait for their client's credentials (never stored): they run when a request with the same key arrives"
            );
        }
        Ok(JobStore {
            conn: Arc::new(Mutex::new(conn)),
            durable: Arc::new(Mutex::new(durable)),
            credentials: Arc::new(Mutex::new(Credentials {
                known: HashMap::new(),
                wanted,
            })),
            salt: Arc::new(salt),
            wake: Arc::new(Notify::new()),
            changes: Arc::new(tokio::sync::watch::channel(0).0),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        Self::on(self.conn.clone(), work).await
    }

    /// Runs `work` on the connection whose commits wait for the disk.
    async fn durably<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        Self::on(self.durable.clone(), work).await
    }

    async fn on<T: Send + 'static>(
        conn: Arc<Mutex<Connection>>,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            work(&conn).map_err(|e| e.to_string())
        })
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
        let fingerprint = (!credentials.is_empty()).then(|| self.fingerprint(&credentials));
        if let Some(fingerprint) = &fingerprint {
            self.lock_credentials()
                .known
                .insert(fingerprint.clone(), credentials);
        }
        self.durably(move |conn| {
            conn.execute(
                "INSERT INTO jobs (id, seq, created_at, updated_at, priority, not_before, deadline, status, request, headers, credential)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs), ?2, ?2, ?3, ?4, ?5, 'queued', ?6, ?7, ?8)",
                params![row_id, ts(now), priority, not_before.map(ts), deadline.map(ts), request, headers, fingerprint],
            )
        })
        .await?;
        self.wake.notify_waiters();
        self.changes.send_modify(|n| *n += 1);
        Ok(id)
    }

    /// Follows changes of any job.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn lock_credentials(&self) -> MutexGuard<'_, Credentials> {
        self.credentials.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The salted fingerprint of a credential: of its secret, whichever header carried it
    /// (`x-api-key: K` and `authorization: Bearer K` are the same key — the Python SDK
    /// sends the second).
    fn fingerprint(&self, credentials: &[(String, String)]) -> String {
        let mut secrets: Vec<&str> = credentials
            .iter()
            .map(|(name, value)| {
                let value = value.trim();
                match name.eq_ignore_ascii_case("authorization") {
                    true => value
                        .strip_prefix("Bearer ")
                        .or_else(|| value.strip_prefix("bearer "))
                        .unwrap_or(value)
                        .trim(),
                    false => value,
                }
            })
            .collect();
        secrets.sort_unstable();
        secrets.dedup();
        let mut hash = Sha256::new();
        hash.update(self.salt.as_slice());
        for secret in secrets {
            hash.update(secret.as_bytes());
            hash.update([0]);
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whose jobs a request may see: the fingerprint of its credentials (`None` without
    /// any — such a request owns no job).
    pub fn owner(&self, credentials: &[(String, String)]) -> Option<String> {
        (!credentials.is_empty()).then(|| self.fingerprint(credentials))
    }

    /// A request's credentials went by: if queued jobs wait for exactly these, they are
    /// kept (in memory) and the jobs may run. Cheap when nothing waits.
    pub fn offer_credentials(&self, credentials: &[(String, String)]) {
        if credentials.is_empty() || self.lock_credentials().wanted.is_empty() {
            return;
        }
        let fingerprint = self.fingerprint(credentials);
        let mut held = self.lock_credentials();
        if held.wanted.remove(&fingerprint) {
            held.known.insert(fingerprint, credentials.to_vec());
            drop(held);
            tracing::info!(
                "a request brought the credentials queued jobs waited for; they run now"
            );
            self.wake.notify_waiters();
        }
    }

    /// The credentials to run `job` with, when they are in memory.
    pub fn credentials(&self, job: &Job) -> Option<Headers> {
        let fingerprint = job.credential.as_ref()?;
        self.lock_credentials().known.get(fingerprint).cloned()
    }

    /// Marks what a queued job still waits for.
    fn explain(&self, mut job: Job) -> Job {
        let waits = job.status == JobStatus::Queued
            && job
                .credential
                .as_ref()
                .is_some_and(|fp| !self.lock_credentials().known.contains_key(fp));
        if waits {
            job.waiting_for = Some(WAITING_FOR_CREDENTIALS.to_owned());
        }
        job
    }

    pub async fn get(&self, id: &str) -> Result<Option<Job>, String> {
        let id = id.to_owned();
        let job = self
            .blocking(move |conn| {
                conn.query_row(
                    &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
                    [id],
                    row_to_job,
                )
                .optional()
            })
            .await?;
        Ok(job.map(|job| self.explain(job)))
    }

    /// The latest jobs, of `owner` only when given (`Seen::All` for the settings page).
    pub async fn list(
        &self,
        status: Option<JobStatus>,
        limit: usize,
        seen: Seen,
    ) -> Result<Vec<Job>, String> {
        let owner = match seen {
            Seen::All => None,
            Seen::Of(owner) => Some(owner.unwrap_or_default()),
        };
        self.blocking(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE (?1 IS NULL OR status = ?1)
                 AND (?3 IS NULL OR credential = ?3) ORDER BY seq DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(
                params![status.map(JobStatus::name), limit as i64, owner],
                row_to_job,
            )?;
            rows.collect::<rusqlite::Result<Vec<Job>>>()
        })
        .await
        .map(|jobs| jobs.into_iter().map(|job| self.explain(job)).collect())
    }

    /// Cancels a job that has not ended. Returns its status after, and whether this call
    /// cancelled it.
    pub async fn cancel(&self, id: &str) -> Result<Option<(JobStatus, bool)>, String> {
        let row_id = id.to_owned();
        let found = self
            .durably(move |conn| {
                let changed = conn.execute(
                    "UPDATE jobs SET status = 'cancelled', updated_at = ?2
                     WHERE id = ?1 AND status IN ('queued', 'running')",
                    params![row_id, ts(Utc::now())],
                )?;
                conn.query_row(
                    "SELECT status, credential FROM jobs WHERE id = ?1",
                    [row_id],
                    |r| {
                        let status = JobStatus::parse(&r.get::<_, String>(0)?)?;
                        Ok(((status, changed > 0), r.get::<_, Option<String>>(1)?))
                    },
                )
                .optional()
            })
            .await?;
        self.changes.send_modify(|n| *n += 1);
        let Some((status, credential)) = found else {
            return Ok(None);
        };
        self.release(credential).await?;
        Ok(Some(status))
    }

    /// Takes the next job that may run now (priority, then arrival) and marks it running.
    /// A job tied to a credential runs only once that credential is in memory, unless
    /// `any_credential` (a key configured for jobs) lets every job run.
    pub async fn claim(
        &self,
        now: DateTime<Utc>,
        any_credential: bool,
    ) -> Result<Option<Job>, String> {
        let known = self.known_json();
        let claimed = self
            .blocking(move |conn| {
                conn.query_row(
                    &format!(
                    "UPDATE jobs SET status = 'running', attempts = attempts + 1, updated_at = ?1
                     WHERE id = (SELECT id FROM jobs WHERE status = 'queued'
                                 AND (not_before IS NULL OR not_before <= ?1)
                                 AND (credential IS NULL OR ?3
                                      OR credential IN (SELECT value FROM json_each(?2)))
                                 ORDER BY priority, seq LIMIT 1)
                     RETURNING {COLUMNS}"
                ),
                    params![ts(now), known, any_credential],
                    row_to_job,
                )
                .optional()
            })
            .await?;
        if claimed.is_some() {
            self.changes.send_modify(|n| *n += 1);
        }
        Ok(claimed)
    }

    /// When the next waiting job may run, if any waits.
    pub async fn next_due(&self, any_credential: bool) -> Result<Option<DateTime<Utc>>, String> {
        let known = self.known_json();
        self.blocking(move |conn| {
            conn.query_row(
                "SELECT MIN(COALESCE(not_before, created_at)) FROM jobs WHERE status = 'queued'
                 AND (credential IS NULL OR ?2 OR credential IN (SELECT value FROM json_each(?1)))",
                params![known, any_credential],
                |r| r.get::<_, Option<String>>(0),
            )
        })
        .await
        .map(parse_ts)
    }

    /// The fingerprints of the credentials in memory, as a JSON array for SQL.
    fn known_json(&self) -> String {
        let known: Vec<String> = self.lock_credentials().known.keys().cloned().collect();
        serde_json::to_string(&known).unwrap_or_else(|_| "[]".into())
    }

    /// Forgets a credential no unfinished job needs any more.
    async fn release(&self, fingerprint: Option<String>) -> Result<(), String> {
        let Some(fingerprint) = fingerprint else {
            return Ok(());
        };
        let key = fingerprint.clone();
        let needed: i64 = self
            .blocking(move |conn| {
                conn.query_row(
                    "SELECT COUNT(*) FROM jobs WHERE credential = ?1 AND status IN ('queued', 'running')",
                    [key],
                    |r| r.get(0),
                )
            })
            .await?;
        if needed == 0 {
            self.lock_credentials().known.remove(&fingerprint);
        }
        Ok(())
    }

    /// Records how a run ended, unless the job was cancelled meanwhile.
    pub async fn finish(&self, job: &Job, outcome: Finish) -> Result<(), String> {
        let row_id = job.id.clone();
        let ended = !matches!(outcome, Finish::Retry { .. });
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
        self.changes.send_modify(|n| *n += 1);
        if ended {
            self.release(job.credential.clone()).await?;
        }
        Ok(())
    }

    /// The job once it has ended (done, failed, cancelled), waiting at most `wait`.
    pub async fn wait_for_end(&self, id: &str, wait: Duration) -> Result<Option<Job>, String> {
        let mut finished = self.changes.subscribe();
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let claimed = store.claim(Utc::now(), false).await.unwrap().unwrap();
        assert_eq!(claimed.id, high);
        assert_eq!(claimed.attempts, 1);
        let key = vec![("x-api-key".to_owned(), "k".to_owned())];
        assert_eq!(store.credentials(&claimed), Some(key.clone()));
        // The process dies with `high` running; a new one queues it again.
        drop(store);
        let raw = std::fs::read(&db).unwrap();
        assert!(
            !raw.windows(2).any(|w| w == b"\"k"),
            "credentials never reach the disk"
        );
        let store = JobStore::open(&db).unwrap();
        // Its credential is not in memory: it waits, and says why; `low` runs first.
        let waiting = store.get(&high).await.unwrap().unwrap();
        assert!(waiting
            .waiting_for
            .as_ref()
            .unwrap()
            .contains("credentials"));
        assert!(store.credentials(&waiting).is_none());
        let other = store.claim(Utc::now(), false).await.unwrap().unwrap();
        assert_eq!(other.id, low);
        store.offer_credentials(&[("x-api-key".to_owned(), "another".to_owned())]);
        assert!(store.claim(Utc::now(), false).await.unwrap().is_none());
        store.offer_credentials(&key);
        let again = store.claim(Utc::now(), false).await.unwrap().unwrap();
        assert_eq!((again.id.as_str(), again.attempts), (high.as_str(), 2));
        assert_eq!(store.credentials(&again), Some(key));
        store
            .finish(&again, Finish::Done(serde_json::json!({"ok": true})))
            .await
            .unwrap();
        assert!(
            store.credentials(&again).is_none(),
            "forgotten once no job needs it"
        );
        assert!(
            store.claim(Utc::now(), false).await.unwrap().is_none(),
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
