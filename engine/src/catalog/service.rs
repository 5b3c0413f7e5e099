//! The service's side of the catalog (`ferry serve`): API tokens and snapshot requests.
//!
//! Tokens are kept only as the sha256 of the token; the token itself is shown once, when
//! created, and never stored. A request is what an API client asked for; the run it
//! starts records its own snapshot, linked back through the job file the run was given
//! (`snapshots.job` is that file's absolute path, unique per request).

use chrono::Utc;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Catalog, CatalogError, timestamp};

/// Tables added in schema version 2 (created on open, so older catalogs gain them).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tokens (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'reader')),
    sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    job TEXT NOT NULL,
    params TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    requested_by TEXT,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'finished')),
    job_file TEXT NOT NULL,
    pid INTEGER,
    pid_start INTEGER,
    error TEXT,
    progress TEXT,
    started_at TEXT,
    finished_at TEXT,
    deleted_at TEXT
);
CREATE INDEX IF NOT EXISTS snapshots_by_job ON snapshots (job);
";

/// Who may do what with the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: create, delete, estimate, list, download.
    Admin,
    /// List and download only.
    Reader,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Reader => "reader",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "reader" => Some(Role::Reader),
            _ => None,
        }
    }
}

/// A token as the catalog keeps it: its hash, never the token.
#[derive(Debug, Clone, Serialize)]
pub struct TokenRecord {
    pub name: String,
    pub role: Role,
    #[serde(skip)]
    pub sha256: [u8; 32],
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// Where a request is: waiting for a run slot, its run going, or its run over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestState {
    Queued,
    Running,
    Finished,
}

impl RequestState {
    fn parse(s: &str) -> RequestState {
        match s {
            "queued" => RequestState::Queued,
            "running" => RequestState::Running,
            _ => RequestState::Finished,
        }
    }
}

/// A snapshot request, with the snapshot its run recorded (if it got that far).
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub id: String,
    /// The configured job's name.
    pub job: String,
    /// The narrowing the client asked for, as JSON.
    pub params: serde_json::Value,
    pub name: String,
    pub description: Option<String>,
    pub requested_by: Option<String>,
    pub created_at: String,
    pub state: RequestState,
    /// The job file the run was given (its absolute path links the snapshot).
    pub job_file: String,
    pub pid: Option<u32>,
    pub pid_start: Option<u64>,
    /// Why the run failed before it recorded a snapshot.
    pub error: Option<String>,
    /// The run's last progress report, as JSON.
    pub progress: Option<serde_json::Value>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub deleted_at: Option<String>,
    /// The snapshot the run recorded.
    pub snapshot_id: Option<String>,
}

/// A new request, as the API validated it.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub id: String,
    pub job: String,
    pub params: serde_json::Value,
    pub name: String,
    pub description: Option<String>,
    pub requested_by: Option<String>,
    pub job_file: String,
}

pub(super) const REQUEST_COLUMNS: &str = "r.id, r.job, r.params, r.name, r.description, r.requested_by, r.created_at, r.state, r.job_file, r.pid, \
    r.pid_start, r.error, r.progress, r.started_at, r.finished_at, r.deleted_at, \
    (SELECT s.id FROM snapshots s WHERE s.job = r.job_file ORDER BY s.created_at DESC LIMIT 1)";

pub(super) fn request_row(r: &rusqlite::Row) -> rusqlite::Result<RequestRecord> {
    let json = |i: usize| -> rusqlite::Result<Option<serde_json::Value>> {
        Ok(r.get::<_, Option<String>>(i)?.and_then(|t| serde_json::from_str(&t).ok()))
    };
    Ok(RequestRecord {
        id: r.get(0)?,
        job: r.get(1)?,
        params: json(2)?.unwrap_or(serde_json::Value::Null),
        name: r.get(3)?,
        description: r.get(4)?,
        requested_by: r.get(5)?,
        created_at: r.get(6)?,
        state: RequestState::parse(&r.get::<_, String>(7)?),
        job_file: r.get(8)?,
        pid: r.get::<_, Option<i64>>(9)?.map(|p| p as u32),
        pid_start: r.get::<_, Option<i64>>(10)?.map(|p| p as u64),
        error: r.get(11)?,
        progress: json(12)?,
        started_at: r.get(13)?,
        finished_at: r.get(14)?,
        deleted_at: r.get(15)?,
        snapshot_id: r.get(16)?,
    })
}

/// Records a request, queued, within a transaction (a schedule's slot is recorded in the same one).
pub(super) fn insert_request_in(tx: &rusqlite::Transaction, new: &NewRequest, at: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO requests (id, job, params, name, description, requested_by, created_at, state, job_file) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8)",
        params![new.id, new.job, new.params.to_string(), new.name, new.description, new.requested_by, at, new.job_file],
    )?;
    Ok(())
}

impl Catalog {
    /// Records a new token by its hash. Fails when an active token has that name.
    pub fn create_token(&mut self, name: &str, role: Role, sha256: &[u8; 32]) -> Result<(), CatalogError> {
        let at = timestamp(Utc::now());
        let hash = hex::encode(sha256);
        let taken = self.tokens()?.iter().any(|t| t.name == name && t.revoked_at.is_none());
        if taken {
            return Err(CatalogError::TokenExists { name: name.into() });
        }
        self.write(|tx| {
            tx.execute(
                "INSERT INTO tokens (name, role, sha256, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![name, role.as_str(), hash, at],
            )?;
            Ok(())
        })
    }

    /// Every token, revoked ones included, oldest first.
    pub fn tokens(&self) -> Result<Vec<TokenRecord>, CatalogError> {
        let mut stmt =
            self.conn.prepare("SELECT name, role, sha256, created_at, revoked_at FROM tokens ORDER BY seq").map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| {
                let hash: String = r.get(2)?;
                let mut sha256 = [0u8; 32];
                // A hash that does not decode matches nothing (all zeroes is no sha256 of a token).
                let _ = hex::decode_to_slice(&hash, &mut sha256);
                Ok(TokenRecord {
                    name: r.get(0)?,
                    role: Role::parse(&r.get::<_, String>(1)?).unwrap_or(Role::Reader),
                    sha256,
                    created_at: r.get(3)?,
                    revoked_at: r.get(4)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.sql())?;
        Ok(rows)
    }

    /// Revokes the active token of that name.
    pub fn revoke_token(&mut self, name: &str) -> Result<(), CatalogError> {
        let at = timestamp(Utc::now());
        let n =
            self.write(|tx| tx.execute("UPDATE tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL", params![name, at]))?;
        if n == 0 {
            return Err(CatalogError::NoToken { name: name.into() });
        }
        Ok(())
    }

    /// Records a request, queued.
    pub fn insert_request(&mut self, new: &NewRequest) -> Result<(), CatalogError> {
        let at = timestamp(Utc::now());
        self.write(|tx| insert_request_in(tx, new, &at))
    }

    /// One request by its exact id.
    pub fn request(&self, id: &str) -> Result<Option<RequestRecord>, CatalogError> {
        self.conn
            .query_row(&format!("SELECT {REQUEST_COLUMNS} FROM requests r WHERE r.id = ?1"), [id], request_row)
            .optional()
            .map_err(self.sql())
    }

    /// Requests, newest first: `(page of them, total)`. `status` filters on the status
    /// the API shows (the snapshot's, else `pending` while queued or `failed`).
    pub fn requests(&self, status: Option<&str>, offset: u64, limit: u64) -> Result<(Vec<RequestRecord>, u64), CatalogError> {
        let shown = "COALESCE((SELECT CASE WHEN s.deleted_at IS NOT NULL THEN 'deleted' ELSE s.status END FROM snapshots s \
                     WHERE s.job = r.job_file ORDER BY s.created_at DESC LIMIT 1), \
                     CASE WHEN r.deleted_at IS NOT NULL THEN 'deleted' WHEN r.state = 'finished' THEN 'failed' ELSE 'pending' END)";
        let filter = if status.is_some() { format!("WHERE {shown} = ?1") } else { "WHERE ?1 IS NULL".into() };
        let total: i64 =
            self.conn.query_row(&format!("SELECT COUNT(*) FROM requests r {filter}"), params![status], |r| r.get(0)).map_err(self.sql())?;
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {REQUEST_COLUMNS} FROM requests r {filter} ORDER BY r.seq DESC LIMIT ?2 OFFSET ?3"))
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![status, limit as i64, offset as i64], request_row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.sql())?;
        Ok((rows, total as u64))
    }

    /// Requests in a state, in request order.
    pub fn requests_in(&self, state: RequestState) -> Result<Vec<RequestRecord>, CatalogError> {
        let name = match state {
            RequestState::Queued => "queued",
            RequestState::Running => "running",
            RequestState::Finished => "finished",
        };
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {REQUEST_COLUMNS} FROM requests r WHERE r.state = ?1 AND r.deleted_at IS NULL ORDER BY r.seq"))
            .map_err(self.sql())?;
        let rows = stmt.query_map([name], request_row).and_then(|rows| rows.collect::<Result<Vec<_>, _>>()).map_err(self.sql())?;
        Ok(rows)
    }

    /// Takes a queued request for a run: `false` when it is no longer queued (deleted).
    pub fn claim_request(&mut self, id: &str) -> Result<bool, CatalogError> {
        let at = timestamp(Utc::now());
        let n = self.write(|tx| {
            tx.execute("UPDATE requests SET state = 'running', started_at = ?2 WHERE id = ?1 AND state = 'queued'", params![id, at])
        })?;
        Ok(n == 1)
    }

    /// A claimed request's run is process `pid` (with its start time, as `/proc` says).
    pub fn request_pid(&mut self, id: &str, pid: u32, pid_start: Option<u64>) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute("UPDATE requests SET pid = ?2, pid_start = ?3 WHERE id = ?1", params![id, pid, pid_start.map(|s| s as i64)])
        })?;
        Ok(())
    }

    /// The run's last progress report.
    pub fn request_progress(&mut self, id: &str, progress: &serde_json::Value) -> Result<(), CatalogError> {
        self.write(|tx| tx.execute("UPDATE requests SET progress = ?2 WHERE id = ?1", params![id, progress.to_string()]))?;
        Ok(())
    }

    /// The run ended; `error` says why when it recorded no snapshot of its own.
    pub fn request_finished(&mut self, id: &str, error: Option<&str>) -> Result<(), CatalogError> {
        let at = timestamp(Utc::now());
        self.write(|tx| {
            tx.execute(
                "UPDATE requests SET state = 'finished', pid = NULL, pid_start = NULL, finished_at = ?2, error = COALESCE(?3, error) WHERE id = ?1",
                params![id, at, error],
            )
        })?;
        Ok(())
    }

    /// Cancels a request that has not started: it will never run.
    pub fn cancel_request(&mut self, id: &str) -> Result<bool, CatalogError> {
        let at = timestamp(Utc::now());
        let n = self.write(|tx| {
            tx.execute(
                "UPDATE requests SET state = 'finished', deleted_at = ?2, finished_at = ?2, error = 'deleted before it ran' \
                 WHERE id = ?1 AND state = 'queued'",
                params![id, at],
            )
        })?;
        Ok(n == 1)
    }

    /// Counts of the service's snapshots by the status the API shows.
    pub fn request_counts(&self) -> Result<Vec<(String, u64)>, CatalogError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT COALESCE((SELECT CASE WHEN s.deleted_at IS NOT NULL THEN 'deleted' ELSE s.status END FROM snapshots s \
                 WHERE s.job = r.job_file ORDER BY s.created_at DESC LIMIT 1), \
                 CASE WHEN r.deleted_at IS NOT NULL THEN 'deleted' WHEN r.state = 'finished' THEN 'failed' ELSE 'pending' END) AS shown, COUNT(*) \
                 FROM requests r GROUP BY shown",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.sql())?;
        Ok(rows)
    }
}
