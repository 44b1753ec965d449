//! The recorder: rows written off the hot path — one per proxied request, and the quota
//! readings behind the quota history.

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::Serialize;

use super::StoreError;

/// How long the writer lets records gather after writing a batch.
const GATHER: Duration = Duration::from_millis(50);

/// How many records may wait for the writer before new ones are dropped (with a warning).
const QUEUE_DEPTH: usize = 4096;

/// What is logged of one request. Never headers or bodies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRecord {
    pub started_at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub model: Option<String>,
    pub stream: bool,
    /// The provider that answered (or was last tried).
    pub target: Option<String>,
    pub status: Option<u16>,
    /// `ok`, `upstream_error`, `client_closed`, `rejected`, …
    pub outcome: String,
    pub ttfb_ms: Option<f64>,
    pub latency_ms: f64,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub complexity: Option<String>,
    pub quota_state: Option<String>,
    /// The routing decision in words.
    pub route_reason: Option<String>,
}

impl RequestRecord {
    /// A record for a request that just arrived.
    pub fn new(method: &str, path: &str) -> RequestRecord {
        RequestRecord {
            started_at: Utc::now(),
            method: method.to_owned(),
            path: path.to_owned(),
            model: None,
            stream: false,
            target: None,
            status: None,
            outcome: String::new(),
            ttfb_ms: None,
            latency_ms: 0.0,
            input_tokens: None,
            output_tokens: None,
            request_bytes: 0,
            response_bytes: 0,
            complexity: None,
            quota_state: None,
            route_reason: None,
        }
    }
}

/// Outcomes of the logged requests for one class and target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsRow {
    pub complexity: Option<String>,
    pub target: Option<String>,
    pub requests: i64,
    pub successes: i64,
    pub avg_latency_ms: Option<f64>,
    pub avg_ttfb_ms: Option<f64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
}

/// Requests, successes, latency and tokens per class and target, from the request log.
pub fn stats_by_class_and_target(conn: &Connection) -> rusqlite::Result<Vec<StatsRow>> {
    let mut stmt = conn.prepare(
        "SELECT complexity, target, COUNT(*),
            SUM(CASE WHEN outcome = 'ok' AND status < 400 THEN 1 ELSE 0 END),
            AVG(latency_ms), AVG(ttfb_ms), SUM(input_tokens), SUM(output_tokens)
         FROM requests WHERE target IS NOT NULL
         GROUP BY complexity, target ORDER BY complexity, target",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok(StatsRow {
            complexity: row.get(0)?,
            target: row.get(1)?,
            requests: row.get(2)?,
            successes: row.get(3)?,
            avg_latency_ms: row.get(4)?,
            avg_ttfb_ms: row.get(5)?,
            input_tokens: row.get(6)?,
            output_tokens: row.get(7)?,
        })
    })?;
    rows.collect()
}

/// One quota reading for the history (pruned after 30 days).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuotaRow {
    pub at: DateTime<Utc>,
    pub source: String,
    pub window: String,
    pub percent: f64,
    pub resets_at: Option<DateTime<Utc>>,
}

/// How long quota history is kept.
pub const QUOTA_HISTORY_DAYS: i64 = 30;

enum Message {
    Record(Box<RequestRecord>),
    Quota(QuotaRow),
    /// Answered once every record queued before it is written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// A cheap, cloneable handle that queues records for the writer thread.
#[derive(Clone)]
pub struct Recorder {
    /// `None`: the database could not be opened; records are dropped.
    tx: Option<SyncSender<Message>>,
}

impl Recorder {
    /// Starts the writer thread on its own connection to the database at `path`.
    pub fn start(path: &Path) -> Result<Recorder, StoreError> {
        let conn = super::open(path)?;
        let (tx, rx) = sync_channel(QUEUE_DEPTH);
        std::thread::Builder::new()
            .name("request-log".into())
            .spawn(move || write_loop(conn, rx))
            .map_err(|source| StoreError::DataDir {
                path: path.to_owned(),
                source,
            })?;
        Ok(Recorder { tx: Some(tx) })
    }

    /// A recorder that keeps nothing, for a proxy whose database cannot be opened.
    pub fn disabled() -> Recorder {
        Recorder { tx: None }
    }

    /// Queues a record; never blocks. A full queue drops the record with a warning.
    pub fn record(&self, record: RequestRecord) {
        let Some(tx) = &self.tx else {
            return;
        };
        match tx.try_send(Message::Record(Box::new(record))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!("request log is behind; a record was dropped")
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::warn!("request log writer stopped; a record was dropped")
            }
        }
    }

    /// Queues a quota reading for the history; never blocks.
    pub fn quota_reading(&self, row: QuotaRow) {
        let Some(tx) = &self.tx else {
            return;
        };
        if tx.try_send(Message::Quota(row)).is_err() {
            tracing::debug!("quota history is behind; a reading was dropped");
        }
    }

    /// Waits until every record queued so far is in the database.
    pub async fn flush(&self) {
        let Some(tx) = self.tx.clone() else {
            return;
        };
        let (done, wait) = tokio::sync::oneshot::channel();
        let queued = tokio::task::spawn_blocking(move || tx.send(Message::Flush(done))).await;
        if matches!(queued, Ok(Ok(()))) {
            let _ = wait.await;
        }
    }
}

fn write_loop(mut conn: Connection, rx: Receiver<Message>) {
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::new();
        let mut quota = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Record(record) => batch.push(*record),
                Message::Quota(row) => quota.push(row),
                Message::Flush(done) => flushes.push(done),
            }
            if batch.len() < 1024 {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            if let Err(error) = insert_batch(&mut conn, &batch) {
                tracing::warn!(%error, records = batch.len(), "cannot write the request log");
            }
        }
        if !quota.is_empty() {
            if let Err(error) = insert_quota(&mut conn, &quota) {
                tracing::warn!(%error, "cannot write the quota history");
            }
        }
        let flushed = !flushes.is_empty();
        for done in flushes {
            let _ = done.send(());
        }
        if !flushed {
            // Let a busy proxy's records gather: one wake-up and one transaction per
            // pause instead of a context switch per request.
            std::thread::sleep(GATHER);
        }
    }
}

fn insert_batch(conn: &mut Connection, batch: &[RequestRecord]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO requests (started_at, method, path, model, stream, target, status,
                outcome, ttfb_ms, latency_ms, input_tokens, output_tokens, request_bytes,
                response_bytes, complexity, quota_state, route_reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )?;
        for r in batch {
            stmt.execute(params![
                r.started_at.to_rfc3339(),
                r.method,
                r.path,
                r.model,
                r.stream,
                r.target,
                r.status,
                r.outcome,
                r.ttfb_ms,
                r.latency_ms,
                r.input_tokens,
                r.output_tokens,
                r.request_bytes,
                r.response_bytes,
                r.complexity,
                r.quota_state,
                r.route_reason,
            ])?;
        }
    }
    tx.commit()
}

fn insert_quota(conn: &mut Connection, rows: &[QuotaRow]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO quota_readings (at, source, window, percent, resets_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for r in rows {
            stmt.execute(params![
                r.at.to_rfc3339(),
                r.source,
                r.window,
                r.percent,
                r.resets_at.map(|t| t.to_rfc3339()),
            ])?;
        }
        let cutoff = Utc::now() - chrono::Duration::days(QUOTA_HISTORY_DAYS);
        tx.execute(
            "DELETE FROM quota_readings WHERE at < ?1",
            [cutoff.to_rfc3339()],
        )?;
    }
    tx.commit()
}

/// Quota readings since `since`, oldest first.
pub fn quota_history(conn: &Connection, since: DateTime<Utc>) -> rusqlite::Result<Vec<QuotaRow>> {
    let mut stmt = conn.prepare(
        "SELECT at, source, window, percent, resets_at FROM quota_readings
         WHERE at >= ?1 ORDER BY at, id",
    )?;
    let parse = |text: String| {
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    };
    let rows = stmt.query_map([since.to_rfc3339()], |row| {
        Ok(QuotaRow {
            at: parse(row.get(0)?),
            source: row.get(1)?,
            window: row.get(2)?,
            percent: row.get(3)?,
            resets_at: row.get::<_, Option<String>>(4)?.map(parse),
        })
    })?;
    rows.collect()
}

/// The most recent records, newest first.
pub fn recent(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<RequestRecord>> {
    let mut stmt = conn.prepare(
        "SELECT started_at, method, path, model, stream, target, status, outcome, ttfb_ms,
            latency_ms, input_tokens, output_tokens, request_bytes, response_bytes,
            complexity, quota_state, route_reason
         FROM requests ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |row| {
        let started: String = row.get(0)?;
        Ok(RequestRecord {
            started_at: DateTime::parse_from_rfc3339(&started)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
            method: row.get(1)?,
            path: row.get(2)?,
            model: row.get(3)?,
            stream: row.get(4)?,
            target: row.get(5)?,
            status: row.get(6)?,
            outcome: row.get(7)?,
            ttfb_ms: row.get(8)?,
            latency_ms: row.get(9)?,
            input_tokens: row.get(10)?,
            output_tokens: row.get(11)?,
            request_bytes: row.get(12)?,
            response_bytes: row.get(13)?,
            complexity: row.get(14)?,
            quota_state: row.get(15)?,
            route_reason: row.get(16)?,
        })
    })?;
    rows.collect()
}
