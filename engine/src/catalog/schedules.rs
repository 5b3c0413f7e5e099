//! The service's schedules and notifications in the catalog (schema version 3): each
//! schedule's pause state, every slot the scheduler acted on (one row per schedule and
//! slot: the key that keeps a slot from running twice), and every notification attempt.
//! Secrets (SMTP password, webhook secret) are never written here.

use chrono::Utc;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::service::NewRequest;
use super::{Catalog, CatalogError, timestamp};

/// Tables added in schema version 3 (created on open, so older catalogs gain them).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    first_seen TEXT NOT NULL,
    paused_at TEXT,
    paused_by TEXT
);
CREATE TABLE IF NOT EXISTS schedule_slots (
    schedule TEXT NOT NULL,
    slot TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('fired', 'caught_up', 'missed', 'busy', 'paused', 'error')),
    request_id TEXT,
    recorded_at TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (schedule, slot)
);
CREATE INDEX IF NOT EXISTS schedule_slots_by_request ON schedule_slots (request_id);
CREATE TABLE IF NOT EXISTS notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    snapshot_id TEXT NOT NULL,
    notification TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('email', 'webhook')),
    event TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'failed')),
    http_status INTEGER,
    error TEXT,
    final INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_by_snapshot ON notifications (snapshot_id, seq);
";

/// A schedule's state in the catalog.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleRecord {
    pub name: String,
    pub first_seen: String,
    pub paused_at: Option<String>,
    pub paused_by: Option<String>,
}

/// A slot the scheduler acted on.
#[derive(Debug, Clone, Serialize)]
pub struct SlotRecord {
    pub schedule: String,
    pub slot: String,
    /// `fired`, `caught_up`, `missed`, `busy`, `paused` or `error`.
    pub outcome: String,
    /// The request (the API's snapshot id) the slot started.
    pub snapshot_id: Option<String>,
    pub recorded_at: String,
    pub detail: Option<String>,
}

/// One attempt at one notification.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationAttempt {
    /// The configured `[[notification]] name`.
    pub notification: String,
    /// `email` or `webhook`.
    pub kind: String,
    /// `snapshot.completed` or `snapshot.failed`.
    pub event: String,
    /// The same for every attempt at one delivery (webhooks send it as `Ferry-Delivery`).
    pub delivery_id: String,
    pub attempt: u32,
    pub at: String,
    /// `delivered` or `failed`.
    pub outcome: String,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    /// No further attempt follows this one.
    #[serde(rename = "final")]
    pub last: bool,
}

fn slot_row(r: &rusqlite::Row) -> rusqlite::Result<SlotRecord> {
    Ok(SlotRecord {
        schedule: r.get(0)?,
        slot: r.get(1)?,
        outcome: r.get(2)?,
        snapshot_id: r.get(3)?,
        recorded_at: r.get(4)?,
        detail: r.get(5)?,
    })
}

impl Catalog {
    /// The schedule's record, created (first seen `now`) when it has none.
    pub fn schedule_seen(&mut self, name: &str, now: &str) -> Result<ScheduleRecord, CatalogError> {
        if let Some(known) = self.schedule_record(name)? {
            return Ok(known);
        }
        self.write(|tx| tx.execute("INSERT OR IGNORE INTO schedules (name, first_seen) VALUES (?1, ?2)", params![name, now]))?;
        self.schedule_record(name)?.ok_or_else(|| CatalogError::NotFound { id: name.into(), path: self.path.clone() })
    }

    /// Pauses (`Some(by)`) or resumes (`None`) a schedule; `false` when it already was.
    pub fn set_schedule_paused(&mut self, name: &str, now: &str, by: Option<&str>) -> Result<bool, CatalogError> {
        self.schedule_seen(name, now)?;
        let n = self.write(|tx| match by {
            Some(by) => tx.execute(
                "UPDATE schedules SET paused_at = ?2, paused_by = ?3 WHERE name = ?1 AND paused_at IS NULL",
                params![name, now, by],
            ),
            None => tx.execute("UPDATE schedules SET paused_at = NULL, paused_by = NULL WHERE name = ?1 AND paused_at IS NOT NULL", [name]),
        })?;
        Ok(n == 1)
    }

    /// The schedule's latest recorded slot.
    pub fn last_slot(&self, schedule: &str) -> Result<Option<SlotRecord>, CatalogError> {
        self.conn
            .query_row(
                "SELECT schedule, slot, outcome, request_id, recorded_at, detail FROM schedule_slots WHERE schedule = ?1 ORDER BY slot DESC LIMIT 1",
                [schedule],
                slot_row,
            )
            .optional()
            .map_err(self.sql())
    }

    /// The schedule's recorded slots, newest first.
    pub fn slots(&self, schedule: &str, limit: u64) -> Result<Vec<SlotRecord>, CatalogError> {
        let mut stmt = self
            .conn
            .prepare("SELECT schedule, slot, outcome, request_id, recorded_at, detail FROM schedule_slots WHERE schedule = ?1 ORDER BY slot DESC LIMIT ?2")
            .map_err(self.sql())?;
        let rows =
            stmt.query_map(params![schedule, limit as i64], slot_row).and_then(|r| r.collect::<Result<Vec<_>, _>>()).map_err(self.sql())?;
        Ok(rows)
    }

    /// The slot that started request `id`, if a schedule did.
    pub fn slot_of_request(&self, id: &str) -> Result<Option<SlotRecord>, CatalogError> {
        self.conn
            .query_row(
                "SELECT schedule, slot, outcome, request_id, recorded_at, detail FROM schedule_slots WHERE request_id = ?1",
                [id],
                slot_row,
            )
            .optional()
            .map_err(self.sql())
    }

    /// Records a slot and, when it runs, its request, in one transaction: `false` (and
    /// nothing written) when the slot was already recorded.
    pub fn record_slot(
        &mut self,
        schedule: &str,
        slot: &str,
        outcome: &str,
        request: Option<&NewRequest>,
        detail: Option<&str>,
    ) -> Result<bool, CatalogError> {
        let at = timestamp(Utc::now());
        self.write(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO schedule_slots (schedule, slot, outcome, request_id, recorded_at, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![schedule, slot, outcome, request.map(|r| r.id.as_str()), at, detail],
            )?;
            if n == 1
                && let Some(new) = request
            {
                super::service::insert_request_in(tx, new, &at)?;
            }
            Ok(n == 1)
        })
    }

    /// Whether a request of the job is queued or running.
    pub fn job_busy(&self, job: &str) -> Result<bool, CatalogError> {
        self.conn
            .query_row("SELECT EXISTS (SELECT 1 FROM requests WHERE job = ?1 AND state IN ('queued', 'running'))", [job], |r| r.get(0))
            .map_err(self.sql())
    }

    /// Records one notification attempt.
    pub fn record_notification(&mut self, snapshot_id: &str, a: &NotificationAttempt) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO notifications (snapshot_id, notification, kind, event, delivery_id, attempt, at, outcome, http_status, error, final) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    snapshot_id,
                    a.notification,
                    a.kind,
                    a.event,
                    a.delivery_id,
                    a.attempt,
                    a.at,
                    a.outcome,
                    a.http_status,
                    a.error,
                    a.last
                ],
            )?;
            Ok(())
        })
    }

    /// Every notification attempt for a snapshot (the API's id), in order.
    pub fn notifications(&self, snapshot_id: &str) -> Result<Vec<NotificationAttempt>, CatalogError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT notification, kind, event, delivery_id, attempt, at, outcome, http_status, error, final FROM notifications \
                 WHERE snapshot_id = ?1 ORDER BY seq",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([snapshot_id], |r| {
                Ok(NotificationAttempt {
                    notification: r.get(0)?,
                    kind: r.get(1)?,
                    event: r.get(2)?,
                    delivery_id: r.get(3)?,
                    attempt: r.get(4)?,
                    at: r.get(5)?,
                    outcome: r.get(6)?,
                    http_status: r.get(7)?,
                    error: r.get(8)?,
                    last: r.get(9)?,
                })
            })
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .map_err(self.sql())?;
        Ok(rows)
    }

    /// The request whose run was given job file `job_file` (a snapshot's `job`).
    pub fn request_by_job_file(&self, job_file: &str) -> Result<Option<super::RequestRecord>, CatalogError> {
        self.conn
            .query_row(
                &format!("SELECT {} FROM requests r WHERE r.job_file = ?1", super::service::REQUEST_COLUMNS),
                [job_file],
                super::service::request_row,
            )
            .optional()
            .map_err(self.sql())
    }

    /// A schedule's record, if the service has seen it.
    pub fn schedule_record(&self, name: &str) -> Result<Option<ScheduleRecord>, CatalogError> {
        self.conn
            .query_row("SELECT name, first_seen, paused_at, paused_by FROM schedules WHERE name = ?1", [name], |r| {
                Ok(ScheduleRecord { name: r.get(0)?, first_seen: r.get(1)?, paused_at: r.get(2)?, paused_by: r.get(3)? })
            })
            .optional()
            .map_err(self.sql())
    }

    /// Marks an expired snapshot purged (its files already removed by the caller, the
    /// delivered copy included); see [`Catalog::expired`].
    pub fn purge_one(&mut self, record: &super::SnapshotRecord) -> Result<(), CatalogError> {
        self.remove(record, "purged", Some(&format!("past its retention (expired {})", record.expires_at)))
    }
}
