//! SQLite storage: the request log and the quota history; queue and outcomes as they arrive.
//!
//! One database file in the data dir, WAL mode, schema versions applied in order on open.
//! Hot-path writes (the request log) go through a bounded channel to a writer thread that
//! owns its own connection, so a slow disk never stalls a proxied request.
//!
//! All the SQL is here. Imports `fsutil` only: the store keeps records, it does not
//! know what they mean.

pub mod jobs;
mod migrations;
mod recorder;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

pub use recorder::{
    quota_history, recent, stats_by_class_and_target, QuotaRow, Recorder, RequestRecord, StatsRow,
    QUOTA_HISTORY_DAYS,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database {path} has schema version {found}, newer than this program knows ({known}); upgrade PAI Orchestrator")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Stores a qualification report (JSON) for `provider`.
pub fn put_qualification(
    conn: &Connection,
    provider: &str,
    verdict: &str,
    report: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO qualifications (provider, at, verdict, report) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![provider, chrono::Utc::now().to_rfc3339(), verdict, report],
    )?;
    Ok(())
}

/// The latest qualification report (JSON) of every provider.
pub fn latest_qualifications(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT provider, report FROM qualifications
         WHERE id IN (SELECT MAX(id) FROM qualifications GROUP BY provider)",
    )?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

/// A journal file beside the database (`-wal`, `-shm`).
fn journal(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The database file inside a data dir.
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("pai-orchestrator.sqlite3")
}

/// Opens (creating if needed) the database and brings its schema up to date. The data
/// dir is 0700 and the database files 0600: job prompts and answers are the user's.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent() {
        crate::fsutil::private_dir(dir).map_err(|source| StoreError::DataDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })?;
    for file in [
        path.to_owned(),
        journal(path, "-wal"),
        journal(path, "-shm"),
    ] {
        crate::fsutil::private_file(&file).map_err(|source| StoreError::DataDir {
            path: file.clone(),
            source,
        })?;
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    migrations::apply(&mut conn, path)?;
    Ok(conn)
}
