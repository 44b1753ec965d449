//! Schema versions, applied in order; `PRAGMA user_version` records the last applied.
//! Append new versions; never edit one that has shipped.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: the request log. Never headers or bodies: they carry secrets and user data.
    "CREATE TABLE requests (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        model TEXT,
        stream INTEGER NOT NULL,
        target TEXT,
        status INTEGER,
        outcome TEXT NOT NULL,
        ttfb_ms REAL,
        latency_ms REAL NOT NULL,
        input_tokens INTEGER,
        output_tokens INTEGER,
        request_bytes INTEGER NOT NULL,
        response_bytes INTEGER NOT NULL
    );
    CREATE INDEX requests_started_at ON requests(started_at);",
    // 2: quota history, one row per reading (throttled), pruned after 30 days.
    "CREATE TABLE quota_readings (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        source TEXT NOT NULL,
        window TEXT NOT NULL,
        percent REAL NOT NULL,
        resets_at TEXT
    );
    CREATE INDEX quota_readings_at ON quota_readings(at);",
    // 3: the routing decision of each request.
    "ALTER TABLE requests ADD COLUMN complexity TEXT;
    ALTER TABLE requests ADD COLUMN quota_state TEXT;
    ALTER TABLE requests ADD COLUMN route_reason TEXT;",
    // 4: model qualification results, the full report as JSON.
    "CREATE TABLE qualifications (
        id INTEGER PRIMARY KEY,
        provider TEXT NOT NULL,
        at TEXT NOT NULL,
        verdict TEXT NOT NULL,
        report TEXT NOT NULL
    );
    CREATE INDEX qualifications_provider ON qualifications(provider, id);",
    // 5: async jobs (POST /v1/queue/messages). Never credentials: those stay in memory.
    "CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        priority INTEGER NOT NULL,
        not_before TEXT,
        deadline TEXT,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        request TEXT NOT NULL,
        headers TEXT NOT NULL,
        response TEXT,
        error TEXT
    );
    CREATE INDEX jobs_ready ON jobs(status, priority, seq);",
    // 6: a job's tie to the client credential that submitted it: a salted fingerprint,
    // never the credential. The salt is this database's own.
    "ALTER TABLE jobs ADD COLUMN credential TEXT;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
];

pub(super) fn apply(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > known {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            known,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_refuse_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let mut conn = Connection::open(&path).unwrap();
        apply(&mut conn, &path).unwrap();
        apply(&mut conn, &path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        conn.pragma_update(None, "user_version", 999).unwrap();
        assert!(matches!(
            apply(&mut conn, &path),
            Err(StoreError::TooNew { found: 999, .. })
        ));
    }
}
