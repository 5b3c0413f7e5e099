//! What the API returns and accepts, as JSON (and in the OpenAPI document).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::catalog::{HistoryEntry, RequestRecord, RequestState, SnapshotRecord, SnapshotStatus};
use crate::job::Content;

/// `POST /api/v1/snapshots` and `POST /api/v1/estimates`: a configured job, narrowed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshot {
    /// The configured job to run (`[[job]] name` in the service config).
    pub job: String,
    /// The snapshot's name; default: the job's.
    pub name: Option<String>,
    /// A longer description, kept in the manifest.
    pub description: Option<String>,
    /// A subset of the job's resources; default: all of them.
    pub resources: Option<Vec<String>>,
    /// Window of the resources that have one: 1, 2, 3, 6, 12, 24 or "all"; never wider
    /// than the job's.
    #[schema(value_type = Option<Object>, example = 12)]
    pub months: Option<serde_json::Value>,
    /// Tables, attachments or both, within the job's content.
    pub content: Option<ContentChoice>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContentChoice {
    Tables,
    Attachments,
    Both,
}

impl From<ContentChoice> for Content {
    fn from(c: ContentChoice) -> Content {
        match c {
            ContentChoice::Tables => Content::Tables,
            ContentChoice::Attachments => Content::Attachments,
            ContentChoice::Both => Content::Both,
        }
    }
}

/// `GET /api/v1/snapshots` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// pending, in_progress, completed, failed or deleted.
    pub status: Option<StatusFilter>,
    /// 1-based page number (default 1).
    pub page: Option<u64>,
    /// Snapshots per page, 1 to 100 (default 20).
    pub per_page: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusFilter {
    Pending,
    InProgress,
    Completed,
    Failed,
    Deleted,
}

impl StatusFilter {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusFilter::Pending => "pending",
            StatusFilter::InProgress => "in_progress",
            StatusFilter::Completed => "completed",
            StatusFilter::Failed => "failed",
            StatusFilter::Deleted => "deleted",
        }
    }
}

/// A snapshot as the API shows it: the request and the run it started.
#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotView {
    /// The request's id (a UUID); every URL of this snapshot uses it.
    pub id: String,
    pub job: String,
    pub name: String,
    pub description: Option<String>,
    /// pending, in_progress, completed, failed or deleted.
    pub status: String,
    /// Every status change with its time (only in `GET /api/v1/snapshots/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_history: Option<Vec<StatusChange>>,
    pub error: Option<RunError>,
    /// While running: records, bytes, expected records and ETA, in total and per resource.
    #[schema(value_type = Option<Object>)]
    pub progress: Option<serde_json::Value>,
    /// Published under `on_error = "continue"` with resources left out.
    pub incomplete: bool,
    pub resources: Vec<String>,
    /// The narrowing asked for.
    #[schema(value_type = Object)]
    pub request: serde_json::Value,
    pub requested_by: Option<String>,
    pub records: Option<u64>,
    pub files: Option<u64>,
    pub parts: Option<u64>,
    pub bytes: Option<u64>,
    pub as_of: Option<String>,
    pub created: String,
    pub started: Option<String>,
    pub completed: Option<String>,
    pub expires: Option<String>,
    pub deleted: Option<String>,
    /// The id the run recorded in the catalog (`ferry snapshots show`).
    pub snapshot_id: Option<String>,
    /// `GET` it for the file list.
    pub files_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusChange {
    pub status: String,
    pub at: String,
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunError {
    /// `killed`, `run_failed`, `start_failed` or `incomplete`.
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotList {
    pub snapshots: Vec<SnapshotView>,
    pub page: u64,
    pub per_page: u64,
    pub total: u64,
}

/// One downloadable file: a tar part, a loose file, or the manifest.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileView {
    pub name: String,
    /// `part`, `file` or `manifest`.
    pub kind: String,
    pub resource: Option<String>,
    pub bytes: u64,
    pub sha256: String,
    /// Where to download it (this API).
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FileList {
    pub id: String,
    /// Where the snapshot lives: `disk`, or the `s3://` URL it was delivered to.
    pub stored: String,
    pub files: Vec<FileView>,
}

/// The status the API shows for a request and its snapshot.
pub fn status(r: &RequestRecord, s: Option<&SnapshotRecord>) -> &'static str {
    match s {
        Some(s) if s.deleted_at.is_some() => "deleted",
        Some(s) => s.status.as_str(),
        None if r.deleted_at.is_some() => "deleted",
        None if r.state == RequestState::Finished => "failed",
        None => "pending",
    }
}

fn error(r: &RequestRecord, s: Option<&SnapshotRecord>) -> Option<RunError> {
    match s {
        Some(s) => s.error.as_ref().map(|m| RunError {
            kind: if s.status == SnapshotStatus::Completed {
                "incomplete"
            } else if m.contains("killed") || m.contains("stopped before publishing") {
                "killed"
            } else {
                "run_failed"
            }
            .into(),
            message: m.clone(),
        }),
        None if r.deleted_at.is_none() => r.error.as_ref().map(|m| RunError { kind: "start_failed".into(), message: m.clone() }),
        None => None,
    }
}

pub fn snapshot_view(r: RequestRecord, s: Option<&SnapshotRecord>, history: Option<&[HistoryEntry]>) -> SnapshotView {
    let status = status(&r, s).to_string();
    let status_history = history.map(|h| {
        let mut changes = vec![StatusChange {
            status: "pending".into(),
            at: r.created_at.clone(),
            detail: r.requested_by.as_ref().map(|n| format!("requested with token {n:?}")),
        }];
        // The run's own `pending` (loading its plugins) is the request's, already shown.
        changes.extend(h.iter().filter(|e| e.event != "pending").map(|e| StatusChange {
            status: e.event.clone(),
            at: e.at.clone(),
            detail: e.detail.clone(),
        }));
        if s.is_none()
            && let Some(at) = &r.finished_at
        {
            let deleted = r.deleted_at.is_some();
            changes.push(StatusChange {
                status: if deleted { "deleted" } else { "failed" }.into(),
                at: at.clone(),
                detail: r.error.clone(),
            });
        }
        changes
    });
    let in_flight = matches!(status.as_str(), "pending" | "in_progress");
    SnapshotView {
        files_url: format!("/api/v1/snapshots/{}/files", r.id),
        error: error(&r, s),
        progress: r.progress.clone().filter(|_| in_flight || s.is_some()),
        incomplete: s.is_some_and(|s| s.incomplete),
        resources: s.map(|s| s.resources.clone()).unwrap_or_default(),
        request: r.params.clone(),
        records: s.and_then(|s| s.records),
        files: s.and_then(|s| s.files),
        parts: s.and_then(|s| s.parts),
        bytes: s.and_then(|s| s.bytes),
        as_of: s.map(|s| s.as_of.clone()),
        started: s.and_then(|s| s.started_at.clone()).or(r.started_at.clone()),
        completed: s.and_then(|s| s.completed_at.clone()).or_else(|| r.finished_at.clone().filter(|_| s.is_none())),
        expires: s.map(|s| s.expires_at.clone()),
        deleted: s.and_then(|s| s.deleted_at.clone()).or(r.deleted_at.clone()),
        snapshot_id: r.snapshot_id.clone(),
        status_history,
        status,
        id: r.id,
        job: r.job,
        name: r.name,
        description: r.description,
        requested_by: r.requested_by,
        created: r.created_at,
    }
}
