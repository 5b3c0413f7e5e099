//! The snapshot catalog: every snapshot of an output root, with its life.
//!
//! One SQLite database per output root (`<out>/catalog.db`). It is written in WAL mode
//! with full syncs and a busy timeout, and every change is one `BEGIN IMMEDIATE`
//! transaction, so two ferry processes on one root take turns instead of failing, and a
//! crash leaves the last committed state. The snapshot directories stay the truth about
//! files: a snapshot is recorded `completed` only after its manifest and every part and
//! file were found in place, and a run that died is reconciled from what is on disk the
//! next time anyone opens the catalog (see [`Catalog::reconcile`]).
//!
//! ```text
//! pending ──▶ in_progress ──▶ completed
//!    │             │
//!    └─────────────┴────────▶ failed        (error details; a killed run too)
//! ```

mod disk;
mod recorder;
mod schedules;
mod service;

pub use disk::{PublishedSnapshot, inspect_published};

use disk::Identity;
pub use recorder::Recorder;
pub use schedules::{NotificationAttempt, ScheduleRecord, SlotRecord};
pub use service::{NewRequest, RequestRecord, RequestState, Role, TokenRecord};

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use crate::package::{ProcessId, SnapshotLayout};

/// The catalog's file name inside an output root.
pub const CATALOG_FILE: &str = "catalog.db";
/// Bumped when the tables change; an older ferry refuses a newer catalog. Version 2 added
/// the service's tokens and requests (created on open: a version 1 catalog gains them);
/// version 3 its schedules, their slots and notification attempts.
const SCHEMA_VERSION: i64 = 3;
/// How long a write waits for another ferry process holding the catalog.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot create the output directory {path}: {source}; check that it is writable or change `[output] dir`")]
    CreateRoot { path: PathBuf, source: std::io::Error },
    #[error("cannot open the snapshot catalog {path}: {source}; check that the output directory is writable{}", io_hint(source))]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error(
        "the snapshot catalog {path} is not a file (a directory?); move it aside: ferry then rebuilds the catalog from the snapshots' manifests"
    )]
    NotAFile { path: PathBuf },
    #[error(
        "the snapshot catalog {path} is not a readable SQLite database (corrupt or overwritten: {source}); move it aside (`mv {path} {path}.bad`): ferry then rebuilds the catalog from the snapshots' manifests"
    )]
    Corrupt { path: PathBuf, source: rusqlite::Error },
    #[error("no snapshot catalog at {path}; run a job whose `[output] dir` is {}, or pass the right --dir", path.parent().map(|p| p.display().to_string()).unwrap_or_default())]
    Missing { path: PathBuf },
    #[error("snapshot catalog {path}: {source}{}", io_hint(source))]
    Sql { path: PathBuf, source: rusqlite::Error },
    #[error("the snapshot catalog {path} has schema version {found}, newer than this ferry's {SCHEMA_VERSION}; use a newer ferry")]
    Newer { path: PathBuf, found: i64 },
    #[error("no snapshot {id:?} in {path}; `ferry snapshots list` shows the ids")]
    NotFound { id: String, path: PathBuf },
    #[error("{id:?} matches {count} snapshots in {path}; give more of the id")]
    Ambiguous { id: String, count: usize, path: PathBuf },
    #[error("snapshot {id} is still being written by ferry process {pid}; wait for it to finish, or stop that process first")]
    Running { id: String, pid: u32 },
    #[error("snapshot {id} was already deleted at {at}")]
    Deleted { id: String, at: String },
    #[error("cannot remove {path}: {source}; check its permissions and run the command again")]
    Remove { path: PathBuf, source: std::io::Error },
    #[error("snapshot {id} was published but is not whole: {reason}; it is recorded as failed")]
    NotWhole { id: String, reason: String },
    #[error("a token named {name:?} already exists; revoke it first (`ferry tokens revoke {name}`) or choose another name")]
    TokenExists { name: String },
    #[error("no active token named {name:?}; `ferry tokens list` shows the names")]
    NoToken { name: String },
}

/// SQLite's answer for a file that is not a database, or a damaged one.
fn is_not_a_database(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt))
}

/// SQLite says "disk I/O error" for a full disk or a file-size limit alike; say what to check.
fn io_hint(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::DiskFull) => {
            " (the disk may be full, or a file-size limit reached); free space in the output directory and run again"
        }
        _ => "",
    }
}

/// Where a snapshot is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotStatus {
    /// Recorded; plugins are being loaded.
    Pending,
    /// Its staging directory exists and resources are being exported.
    InProgress,
    /// Published: the manifest and every part and file are in place.
    Completed,
    /// Nothing was published; `error` says why.
    Failed,
}

impl SnapshotStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotStatus::Pending => "pending",
            SnapshotStatus::InProgress => "in_progress",
            SnapshotStatus::Completed => "completed",
            SnapshotStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> SnapshotStatus {
        match s {
            "pending" => SnapshotStatus::Pending,
            "in_progress" => SnapshotStatus::InProgress,
            "completed" => SnapshotStatus::Completed,
            // The CHECK constraint admits nothing else.
            _ => SnapshotStatus::Failed,
        }
    }
}

/// One snapshot as the catalog knows it.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotRecord {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub status: SnapshotStatus,
    /// Why it failed, or (completed but incomplete) which resources were left out.
    pub error: Option<String>,
    /// Published under `on_error = "continue"` with resources left out.
    pub incomplete: bool,
    pub resources: Vec<String>,
    pub records: Option<u64>,
    pub files: Option<u64>,
    pub parts: Option<u64>,
    /// Bytes on disk: the parts, or the files when the snapshot is not packed.
    pub bytes: Option<u64>,
    pub as_of: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub expires_at: String,
    pub retention_seconds: u64,
    pub deleted_at: Option<String>,
    /// The process writing it, while pending or in progress.
    pub pid: Option<u32>,
    /// The published directory.
    pub path: PathBuf,
    pub job: Option<String>,
}

/// One step of a snapshot's history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    /// A status, or `deleted` / `purged`.
    pub event: String,
    pub at: String,
    pub detail: Option<String>,
}

/// A part or file of a published snapshot (MX's "list snapshot file URLs").
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotFile {
    /// `part` (a tar part) or `file` (a resource file; inside `archive` when packed).
    pub kind: String,
    pub resource: Option<String>,
    /// The file's name in the snapshot (the member name inside its part when packed).
    pub name: String,
    pub archive: Option<String>,
    pub records: Option<u64>,
    pub bytes: u64,
    pub sha256: String,
    /// Where it is on disk: the part holding it when packed.
    pub path: PathBuf,
    pub url: String,
}

/// What past runs measured for a resource: the basis of `ferry plan`'s estimates.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceStats {
    pub snapshot_id: String,
    pub records: u64,
    pub bytes: u64,
    pub wall_seconds: f64,
}

/// The current time in the catalog's format: RFC 3339, UTC, microseconds, so text order
/// is time order.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// `t + d`, saturating at the latest time chrono holds: callers refuse retentions over
/// [`crate::job::MAX_RETENTION`], and an out-of-range sum must still never panic.
fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d).ok().and_then(|d| t.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// An open catalog.
pub struct Catalog {
    root: PathBuf,
    path: PathBuf,
    conn: Connection,
    /// Snapshots found on disk that the catalog had no record of, recorded again from
    /// their manifests by [`Catalog::reconcile`].
    rebuilt: Vec<String>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'in_progress', 'completed', 'failed')),
    error TEXT,
    incomplete INTEGER NOT NULL DEFAULT 0,
    resources TEXT NOT NULL,
    records INTEGER,
    files INTEGER,
    parts INTEGER,
    bytes INTEGER,
    as_of TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    completed_at TEXT,
    retention_seconds INTEGER NOT NULL,
    expires_at TEXT NOT NULL,
    deleted_at TEXT,
    pid INTEGER,
    pid_start INTEGER,
    job TEXT
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    snapshot_id TEXT NOT NULL REFERENCES snapshots(id),
    event TEXT NOT NULL,
    at TEXT NOT NULL,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS files (
    snapshot_id TEXT NOT NULL REFERENCES snapshots(id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('part', 'file')),
    resource TEXT,
    name TEXT NOT NULL,
    archive TEXT,
    records INTEGER,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (snapshot_id, seq)
);
CREATE TABLE IF NOT EXISTS resource_runs (
    snapshot_id TEXT NOT NULL REFERENCES snapshots(id),
    resource TEXT NOT NULL,
    format TEXT NOT NULL,
    gzip INTEGER NOT NULL,
    records INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    wall_seconds REAL NOT NULL,
    finished_at TEXT NOT NULL,
    PRIMARY KEY (snapshot_id, resource)
);
CREATE INDEX IF NOT EXISTS snapshots_by_time ON snapshots (created_at);
CREATE INDEX IF NOT EXISTS history_by_snapshot ON history (snapshot_id, seq);
";

const COLUMNS: &str = "id, name, description, status, error, incomplete, resources, records, files, parts, bytes, as_of, \
    created_at, started_at, completed_at, retention_seconds, expires_at, deleted_at, pid, job";

impl Catalog {
    /// Opens the catalog of an output root, creating the root and the catalog if needed.
    pub fn open(root: &Path) -> Result<Catalog, CatalogError> {
        let path = root.join(CATALOG_FILE);
        std::fs::create_dir_all(root).map_err(|source| CatalogError::CreateRoot { path: root.into(), source })?;
        if path.symlink_metadata().is_ok_and(|m| !m.is_file()) {
            return Err(CatalogError::NotAFile { path });
        }
        Self::connect(root, path)
    }

    /// Opens the catalog of an output root that must already have one.
    pub fn open_existing(root: &Path) -> Result<Catalog, CatalogError> {
        let path = root.join(CATALOG_FILE);
        match path.symlink_metadata() {
            Err(_) => return Err(CatalogError::Missing { path }),
            Ok(m) if !m.is_file() => return Err(CatalogError::NotAFile { path }),
            Ok(_) => {}
        }
        Self::connect(root, path)
    }

    fn connect(root: &Path, path: PathBuf) -> Result<Catalog, CatalogError> {
        // Two runs starting together on a new output root can deadlock creating the
        // catalog (one switching it to WAL while the other holds a lock): SQLite then
        // answers "database is locked" at once instead of waiting, so the setup is
        // retried, up to the busy timeout.
        let started = std::time::Instant::now();
        loop {
            match Self::try_connect(root, path.clone()) {
                Err(CatalogError::Open { source: rusqlite::Error::SqliteFailure(e, _), .. })
                    if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                        && started.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(CatalogError::Open { path, source }) if is_not_a_database(&source) => {
                    return Err(CatalogError::Corrupt { path, source });
                }
                other => return other,
            }
        }
    }

    fn try_connect(root: &Path, path: PathBuf) -> Result<Catalog, CatalogError> {
        let open = |source| CatalogError::Open { path: path.clone(), source };
        let mut conn = Connection::open(&path).map_err(open)?;
        // The timeout first: switching to WAL itself waits for a lock another process may hold.
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open)?;
        // Small pages (only a new database takes them): the catalog holds a few rows per
        // snapshot, and each commit then appends a few KiB to the WAL, so a failure on a
        // nearly full disk is still recorded, and fails the data write first.
        conn.pragma_update(None, "page_size", 1024).map_err(open)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(open)?;
        // FULL: a commit survives a power cut, not only a crash of the process.
        conn.pragma_update(None, "synchronous", "FULL").map_err(open)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(open)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(open)?;
        let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(open)?;
        if found > SCHEMA_VERSION {
            return Err(CatalogError::Newer { path, found });
        }
        tx.execute_batch(SCHEMA).map_err(open)?;
        tx.execute_batch(service::SCHEMA).map_err(open)?;
        tx.execute_batch(schedules::SCHEMA).map_err(open)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(open)?;
        tx.commit().map_err(open)?;
        Ok(Catalog { root: root.into(), path, conn, rebuilt: Vec::new() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> CatalogError + '_ {
        |source| CatalogError::Sql { path: self.path.clone(), source }
    }

    /// Runs `f` in one write transaction (taken at once, so two writers queue up).
    fn write<T>(&mut self, f: impl FnOnce(&Transaction) -> rusqlite::Result<T>) -> Result<T, CatalogError> {
        let path = self.path.clone();
        let err = |source| CatalogError::Sql { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let value = f(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(value)
    }

    fn row(&self, r: &rusqlite::Row) -> rusqlite::Result<SnapshotRecord> {
        let id: String = r.get(0)?;
        let resources: String = r.get(6)?;
        let u = |i: usize| -> rusqlite::Result<Option<u64>> { Ok(r.get::<_, Option<i64>>(i)?.map(|n| n as u64)) };
        Ok(SnapshotRecord {
            path: self.root.join(&id),
            id,
            name: r.get(1)?,
            description: r.get(2)?,
            status: SnapshotStatus::parse(&r.get::<_, String>(3)?),
            error: r.get(4)?,
            incomplete: r.get(5)?,
            resources: serde_json::from_str(&resources).unwrap_or_default(),
            records: u(7)?,
            files: u(8)?,
            parts: u(9)?,
            bytes: u(10)?,
            as_of: r.get(11)?,
            created_at: r.get(12)?,
            started_at: r.get(13)?,
            completed_at: r.get(14)?,
            retention_seconds: r.get::<_, i64>(15)? as u64,
            expires_at: r.get(16)?,
            deleted_at: r.get(17)?,
            pid: r.get::<_, Option<i64>>(18)?.map(|p| p as u32),
            job: r.get(19)?,
        })
    }

    /// Every snapshot, oldest first; deleted ones only when asked.
    pub fn list(&self, include_deleted: bool) -> Result<Vec<SnapshotRecord>, CatalogError> {
        let filter = if include_deleted { "" } else { "WHERE deleted_at IS NULL" };
        let mut stmt =
            self.conn.prepare(&format!("SELECT {COLUMNS} FROM snapshots {filter} ORDER BY created_at, id")).map_err(self.sql())?;
        let rows = stmt.query_map([], |r| self.row(r)).and_then(|rows| rows.collect::<Result<Vec<_>, _>>()).map_err(self.sql())?;
        Ok(rows)
    }

    /// A snapshot by its id or a unique prefix of it.
    pub fn get(&self, id: &str) -> Result<SnapshotRecord, CatalogError> {
        let pattern = format!("{}%", id.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM snapshots WHERE id = ?1 OR id LIKE ?2 ESCAPE '\\' ORDER BY id = ?1 DESC"))
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![id, pattern], |r| self.row(r))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.sql())?;
        match rows.len() {
            0 => Err(CatalogError::NotFound { id: id.into(), path: self.path.clone() }),
            1 => Ok(rows.into_iter().next().expect("one row")),
            // An exact id wins over ids it happens to prefix.
            _ if rows[0].id == id => Ok(rows.into_iter().next().expect("rows")),
            count => Err(CatalogError::Ambiguous { id: id.into(), count, path: self.path.clone() }),
        }
    }

    /// A snapshot's status changes and removals, in order.
    pub fn history(&self, id: &str) -> Result<Vec<HistoryEntry>, CatalogError> {
        let mut stmt =
            self.conn.prepare("SELECT event, at, detail FROM history WHERE snapshot_id = ?1 ORDER BY seq").map_err(self.sql())?;
        let rows = stmt
            .query_map([id], |r| Ok(HistoryEntry { event: r.get(0)?, at: r.get(1)?, detail: r.get(2)? }))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.sql())?;
        Ok(rows)
    }

    /// The parts and files of a completed snapshot, parts first. A snapshot delivered to
    /// S3 has `s3://` URLs (its local `path`s are where the files were staged).
    pub fn files(&self, id: &str) -> Result<Vec<SnapshotFile>, CatalogError> {
        let dir = self.root.join(id);
        let delivered = std::fs::read(dir.join(crate::package::DELIVERY_RECORD))
            .ok()
            .and_then(|text| serde_json::from_slice::<crate::package::DeliveryRecord>(&text).ok());
        let mut stmt = self
            .conn
            .prepare("SELECT kind, resource, name, archive, records, bytes, sha256 FROM files WHERE snapshot_id = ?1 ORDER BY kind = 'file', seq")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([id], |r| {
                let name: String = r.get(2)?;
                let archive: Option<String> = r.get(3)?;
                let path = dir.join(archive.as_deref().unwrap_or(&name));
                let abs = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
                Ok(SnapshotFile {
                    kind: r.get(0)?,
                    resource: r.get(1)?,
                    url: match &delivered {
                        Some(d) => {
                            format!("{}{}", d.url, archive.as_deref().map(|a| format!("{a}#{name}")).unwrap_or_else(|| name.clone()))
                        }
                        None => format!("file://{}{}", abs.display(), archive.as_ref().map(|_| format!("#{name}")).unwrap_or_default()),
                    },
                    name,
                    archive,
                    records: r.get::<_, Option<i64>>(4)?.map(|n| n as u64),
                    bytes: r.get::<_, i64>(5)? as u64,
                    sha256: r.get(6)?,
                    path,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.sql())?;
        Ok(rows)
    }

    /// The most recent measurement of a resource exported in this format, for estimates.
    pub fn resource_stats(&self, resource: &str, format: &str, gzip: bool) -> Result<Option<ResourceStats>, CatalogError> {
        self.conn
            .query_row(
                "SELECT snapshot_id, records, bytes, wall_seconds FROM resource_runs \
                 WHERE resource = ?1 AND format = ?2 AND gzip = ?3 AND records > 0 ORDER BY finished_at DESC LIMIT 1",
                params![resource, format, gzip],
                |r| {
                    Ok(ResourceStats {
                        snapshot_id: r.get(0)?,
                        records: r.get::<_, i64>(1)? as u64,
                        bytes: r.get::<_, i64>(2)? as u64,
                        wall_seconds: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(self.sql())
    }

    /// Finds runs that died (their process is gone while the snapshot is pending or in
    /// progress) and settles them from what is on disk: a run killed after its rename
    /// published a whole snapshot, which is recorded completed; any other is recorded
    /// failed with the reason, and its staging directory removed. Also finishes deletes
    /// a crash interrupted. Returns the ids it settled.
    pub fn reconcile(&mut self) -> Result<Vec<String>, CatalogError> {
        self.rebuild_lost()?;
        let mut stmt =
            self.conn.prepare("SELECT id, pid, pid_start FROM snapshots WHERE status IN ('pending', 'in_progress')").map_err(self.sql())?;
        let open: Vec<(String, Option<i64>, Option<i64>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.sql())?;
        drop(stmt);
        let mut settled = Vec::new();
        for (id, pid, start) in open {
            let pid = pid.map(|p| p as u32);
            if pid.is_some_and(|pid| ProcessId { pid, start: start.map(|s| s as u64) }.is_alive()) {
                continue;
            }
            let now = timestamp(Utc::now());
            let who = pid.map(|p| format!("ferry process {p}")).unwrap_or_else(|| "its ferry process".into());
            match inspect_published(&self.root.join(&id)) {
                Some(Ok(published)) => self.complete(&id, &published, &format!("{who} stopped after publishing; found whole on disk"))?,
                other => {
                    let why = match other {
                        Some(Err(reason)) => format!("{who} stopped after publishing an unusable snapshot ({reason})"),
                        _ => format!("{who} stopped before publishing (killed or crashed); its staging directory was removed"),
                    };
                    let _ = std::fs::remove_dir_all(SnapshotLayout::new(&self.root).staging_dir(&id));
                    self.fail_at(&id, &why, &now)?;
                }
            }
            settled.push(id);
        }
        disk::remove_leftover_deletes(&self.root);
        Ok(settled)
    }

    /// Snapshot ids this catalog recorded again from their manifests (see
    /// [`Catalog::reconcile`]): a catalog that was emptied or replaced lost them.
    pub fn rebuilt(&self) -> &[String] {
        &self.rebuilt
    }

    /// Records again every published snapshot directory the catalog has no record of: a
    /// `catalog.db` that was emptied or replaced must not hide snapshots from `list`,
    /// `delete` and `purge`. Each comes back completed (failed when its files do not
    /// match its manifest) with the default retention, and its history says why.
    fn rebuild_lost(&mut self) -> Result<(), CatalogError> {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return Ok(()) };
        let known: std::collections::HashSet<String> = {
            let mut stmt = self.conn.prepare("SELECT id FROM snapshots").map_err(self.sql())?;
            stmt.query_map([], |r| r.get(0)).and_then(|rows| rows.collect::<Result<_, _>>()).map_err(self.sql())?
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || known.contains(&name) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let dir = entry.path();
            let Some(identity) = disk::identity(&dir) else { continue };
            let published = inspect_published(&dir);
            self.record_found(&identity, published)?;
            self.rebuilt.push(identity.snapshot_id);
        }
        Ok(())
    }

    /// Records a snapshot `ferry assemble` just made of its shards in `dir` (a folder of
    /// this catalog's root), completed (or failed when its files do not match its
    /// manifest); a snapshot assembled again (after a shard reran) is recorded anew.
    pub fn record_assembled(&mut self, dir: &Path, shards: u32) -> Result<(), CatalogError> {
        let Some(identity) = disk::identity(dir) else { return Ok(()) };
        let id = identity.snapshot_id.clone();
        self.write(|tx| {
            tx.execute("DELETE FROM files WHERE snapshot_id = ?1", [&id])?;
            tx.execute("DELETE FROM resource_runs WHERE snapshot_id = ?1", [&id])?;
            tx.execute("DELETE FROM history WHERE snapshot_id = ?1", [&id])?;
            tx.execute("DELETE FROM snapshots WHERE id = ?1", [&id])?;
            Ok(())
        })?;
        self.record_found_because(&identity, inspect_published(dir), &format!("assembled from {shards} shards (ferry assemble)"))?;
        // The service's API lists and serves requests: the assembled snapshot gets a
        // finished one of its own id, linked as a run links its request (`snapshots.job`).
        let link = format!("assembled:{id}");
        let at = timestamp(Utc::now());
        self.write(|tx| {
            tx.execute("UPDATE snapshots SET job = ?2 WHERE id = ?1", params![id, link])?;
            tx.execute("DELETE FROM requests WHERE id = ?1", [&id])?;
            tx.execute(
                "INSERT INTO requests (id, job, params, name, description, requested_by, created_at, state, job_file, started_at, finished_at) \
                 VALUES (?1, ?2, '{}', ?2, ?3, 'ferry assemble', ?4, 'finished', ?5, ?4, ?4)",
                params![id, identity.name, identity.description, at, link],
            )?;
            Ok(())
        })
    }

    fn record_found(&mut self, id: &Identity, published: Option<Result<PublishedSnapshot, String>>) -> Result<(), CatalogError> {
        let why = "rebuilt from its manifest: the catalog had no record of it (catalog.db emptied or replaced?); retention set to the default 30 days";
        self.record_found_because(id, published, why)
    }

    fn record_found_because(
        &mut self,
        id: &Identity,
        published: Option<Result<PublishedSnapshot, String>>,
        why: &str,
    ) -> Result<(), CatalogError> {
        let now = timestamp(Utc::now());
        let created = if parse_time(&id.created_at).is_some() { id.created_at.clone() } else { now.clone() };
        let new = NewSnapshot {
            id: id.snapshot_id.clone(),
            name: id.name.clone(),
            description: id.description.clone(),
            resources: id.resources.iter().map(|r| r.name.clone()).collect(),
            as_of: id.as_of.clone(),
            retention: crate::job::DEFAULT_RETENTION,
            job: None,
        };
        let expires = timestamp(add(parse_time(&created).unwrap_or_else(Utc::now), crate::job::DEFAULT_RETENTION));
        self.write(|tx| {
            tx.execute(
                "INSERT INTO snapshots (id, name, description, status, resources, as_of, created_at, retention_seconds, expires_at) \
                 VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?8)",
                params![
                    new.id,
                    new.name,
                    new.description,
                    serde_json::to_string(&new.resources).unwrap_or_default(),
                    new.as_of,
                    created,
                    new.retention.as_secs() as i64,
                    expires
                ],
            )?;
            Ok(())
        })?;
        match published {
            Some(Ok(p)) => self.complete(&new.id, &p, why),
            Some(Err(reason)) => self.fail_at(&new.id, &format!("{why}; its files do not match its manifest ({reason})"), &now),
            None => self.fail_at(&new.id, why, &now),
        }
    }

    fn insert_pending(&mut self, new: &NewSnapshot) -> Result<(), CatalogError> {
        let now = Utc::now();
        let at = timestamp(now);
        let expires = timestamp(add(now, new.retention));
        let ProcessId { pid, start } = ProcessId::current();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO snapshots (id, name, description, status, resources, as_of, created_at, retention_seconds, expires_at, pid, pid_start, job) \
                 VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    new.id,
                    new.name,
                    new.description,
                    serde_json::to_string(&new.resources).unwrap_or_default(),
                    new.as_of,
                    at,
                    new.retention.as_secs() as i64,
                    expires,
                    pid,
                    start.map(|s| s as i64),
                    new.job,
                ],
            )?;
            tx.execute("INSERT INTO history (snapshot_id, event, at) VALUES (?1, 'pending', ?2)", params![new.id, at])?;
            Ok(())
        })
    }

    /// Runs `create` (which makes the staging directory) while holding the catalog's
    /// write lock, and records the snapshot in progress in the same transaction.
    ///
    /// Holding the lock serialises staging creation across ferry processes: creating a
    /// staging directory also removes directories of dead runs, judged by a pid file
    /// written just after the directory, and another process must not judge a
    /// directory in that gap.
    fn set_in_progress<T, E: From<CatalogError>>(&mut self, id: &str, create: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let path = self.path.clone();
        let err = |source| CatalogError::Sql { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let value = create()?;
        let at = timestamp(Utc::now());
        let n = tx
            .execute("UPDATE snapshots SET status = 'in_progress', started_at = ?2 WHERE id = ?1 AND status = 'pending'", params![id, at])
            .map_err(err)?;
        if n == 1 {
            tx.execute("INSERT INTO history (snapshot_id, event, at) VALUES (?1, 'in_progress', ?2)", params![id, at]).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(value)
    }

    fn fail_at(&mut self, id: &str, error: &str, at: &str) -> Result<(), CatalogError> {
        let at_time = parse_time(at).unwrap_or_else(Utc::now);
        self.write(|tx| {
            let retention: i64 = tx.query_row("SELECT retention_seconds FROM snapshots WHERE id = ?1", [id], |r| r.get(0))?;
            let expires = timestamp(add(at_time, Duration::from_secs(retention as u64)));
            let n = tx.execute(
                "UPDATE snapshots SET status = 'failed', error = ?2, completed_at = ?3, expires_at = ?4, pid = NULL, pid_start = NULL \
                 WHERE id = ?1 AND status IN ('pending', 'in_progress')",
                params![id, error, at, expires],
            )?;
            if n == 1 {
                tx.execute("INSERT INTO history (snapshot_id, event, at, detail) VALUES (?1, 'failed', ?2, ?3)", params![id, at, error])?;
            }
            Ok(())
        })
    }

    /// Records a snapshot completed from what [`inspect_published`] found on disk.
    fn complete(&mut self, id: &str, p: &PublishedSnapshot, detail: &str) -> Result<(), CatalogError> {
        let now = Utc::now();
        let at = timestamp(now);
        let completed_at = p.completed_at.clone().unwrap_or_else(|| at.clone());
        let completed_time = parse_time(&completed_at).unwrap_or(now);
        self.write(|tx| {
            let retention: i64 = tx.query_row("SELECT retention_seconds FROM snapshots WHERE id = ?1", [id], |r| r.get(0))?;
            let expires = timestamp(add(completed_time, Duration::from_secs(retention as u64)));
            let n = tx.execute(
                "UPDATE snapshots SET status = 'completed', error = ?2, incomplete = ?3, records = ?4, files = ?5, parts = ?6, bytes = ?7, \
                 completed_at = ?8, expires_at = ?9, pid = NULL, pid_start = NULL WHERE id = ?1 AND status IN ('pending', 'in_progress')",
                params![
                    id,
                    p.error,
                    p.incomplete,
                    p.records as i64,
                    p.files.iter().filter(|f| f.kind == "file").count() as i64,
                    p.files.iter().filter(|f| f.kind == "part").count() as i64,
                    p.bytes as i64,
                    completed_at,
                    expires,
                ],
            )?;
            if n != 1 {
                return Ok(());
            }
            for (seq, f) in p.files.iter().enumerate() {
                tx.execute(
                    "INSERT INTO files (snapshot_id, seq, kind, resource, name, archive, records, bytes, sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![id, seq as i64, f.kind, f.resource, f.name, f.archive, f.records.map(|r| r as i64), f.bytes as i64, f.sha256],
                )?;
            }
            for r in &p.resources {
                tx.execute(
                    "INSERT OR REPLACE INTO resource_runs (snapshot_id, resource, format, gzip, records, bytes, wall_seconds, finished_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![id, r.name, r.format, r.gzip, r.records as i64, r.bytes as i64, r.wall_seconds, completed_at],
                )?;
            }
            tx.execute("INSERT INTO history (snapshot_id, event, at, detail) VALUES (?1, 'completed', ?2, ?3)", params![id, at, detail])?;
            Ok(())
        })
    }

    /// Deletes a snapshot's files and marks it deleted (its record stays, for history).
    pub fn delete(&mut self, id: &str) -> Result<SnapshotRecord, CatalogError> {
        self.reconcile()?;
        let record = self.get(id)?;
        if let Some(at) = record.deleted_at {
            return Err(CatalogError::Deleted { id: record.id, at });
        }
        self.remove(&record, "deleted", None)?;
        self.get(&record.id)
    }

    fn remove(&mut self, record: &SnapshotRecord, event: &str, detail: Option<&str>) -> Result<(), CatalogError> {
        if matches!(record.status, SnapshotStatus::Pending | SnapshotStatus::InProgress) {
            return Err(CatalogError::Running { id: record.id.clone(), pid: record.pid.unwrap_or(0) });
        }
        // Renamed first, in one step: a crash mid-removal leaves a `.deleting-*`
        // directory the next reconcile removes, never a half-deleted snapshot that
        // still looks published.
        let doomed = self.root.join(format!(".deleting-{}", record.id));
        if record.path.exists() {
            std::fs::rename(&record.path, &doomed).map_err(|source| CatalogError::Remove { path: record.path.clone(), source })?;
        }
        let at = timestamp(Utc::now());
        let id = record.id.clone();
        self.write(|tx| {
            let n = tx.execute("UPDATE snapshots SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL", params![id, at])?;
            if n == 1 {
                tx.execute("INSERT INTO history (snapshot_id, event, at, detail) VALUES (?1, ?2, ?3, ?4)", params![id, event, at, detail])?;
            }
            Ok(())
        })?;
        if doomed.exists() {
            std::fs::remove_dir_all(&doomed).map_err(|source| CatalogError::Remove { path: doomed.clone(), source })?;
        }
        Ok(())
    }

    /// Snapshots past their retention at `now`: expired when `now >= expiry`. With
    /// `retention`, expiry is recomputed as completion (or creation) plus it; otherwise
    /// each snapshot's own expiry, set from its job's retention, applies. Pending and
    /// in-progress runs are never expired.
    pub fn expired(&mut self, now: DateTime<Utc>, retention: Option<Duration>) -> Result<Vec<SnapshotRecord>, CatalogError> {
        self.reconcile()?;
        Ok(self
            .list(false)?
            .into_iter()
            .filter(|r| matches!(r.status, SnapshotStatus::Completed | SnapshotStatus::Failed))
            .filter_map(|mut r| {
                let expiry = match retention {
                    Some(d) => r.completed_at.as_deref().or(Some(&r.created_at)).and_then(parse_time).map(|t| add(t, d)),
                    None => parse_time(&r.expires_at),
                }?;
                // The expiry that applied, not the one the snapshot was recorded with.
                if retention.is_some() {
                    r.expires_at = timestamp(expiry);
                }
                (now >= expiry).then_some(r)
            })
            .collect())
    }

    /// Deletes every expired snapshot (see [`Catalog::expired`]); returns them.
    pub fn purge(&mut self, now: DateTime<Utc>, retention: Option<Duration>) -> Result<Vec<SnapshotRecord>, CatalogError> {
        let expired = self.expired(now, retention)?;
        for r in &expired {
            self.remove(r, "purged", Some(&format!("past its retention (expired {})", r.expires_at)))?;
        }
        Ok(expired)
    }
}

/// What a run records when it starts.
#[derive(Debug, Clone)]
pub struct NewSnapshot {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub resources: Vec<String>,
    pub as_of: String,
    pub retention: Duration,
    pub job: Option<String>,
}
