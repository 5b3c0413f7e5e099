//! Create, list, show and delete snapshots.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::views::{CreateSnapshot, ListQuery, SnapshotList, SnapshotView, snapshot_view};
use crate::catalog::{Catalog, NewRequest, RequestRecord, SnapshotRecord};
use crate::service::error::{ApiError, ErrorBody};
use crate::service::extract::{Admin, ApiPath, ApiQuery, Caller, JsonBody};
use crate::service::jobs::{Narrowing, ServiceJob};
use crate::service::state::AppState;

/// Longest `name` accepted, in characters.
const MAX_NAME: usize = 200;
/// Longest `description` accepted, in characters.
const MAX_DESCRIPTION: usize = 2000;
const MAX_PER_PAGE: u64 = 100;

/// A request id must be a UUID as this service writes them (lowercase, hyphenated).
pub fn check_id(id: &str) -> Result<(), ApiError> {
    match uuid::Uuid::parse_str(id) {
        Ok(u) if u.hyphenated().to_string() == id => Ok(()),
        _ => Err(ApiError::field(
            "id",
            format!("{:?} is not a snapshot id; ids are UUIDs such as 0f8e4a52-1c3b-4d7e-9a61-2b5c8d9e0f13", truncate(id, 80)),
        )),
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The request and the snapshot its run recorded.
pub fn lookup(c: &Catalog, id: &str) -> Result<(RequestRecord, Option<SnapshotRecord>), ApiError> {
    let r = c.request(id)?.ok_or_else(|| ApiError::NotFound(format!("no snapshot {id}; `GET /api/v1/snapshots` lists them")))?;
    let s = match &r.snapshot_id {
        Some(sid) => Some(c.get(sid)?),
        None => None,
    };
    Ok((r, s))
}

fn check_text(field: &str, value: Option<&str>, max: usize) -> Result<(), ApiError> {
    let Some(v) = value else { return Ok(()) };
    if v.trim().is_empty() {
        return Err(ApiError::field(field, "is empty; leave it out to use the job's"));
    }
    if v.chars().count() > max {
        return Err(ApiError::field(field, format!("is longer than {max} characters")));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ApiError::field(field, "holds control characters"));
    }
    Ok(())
}

/// Validates a create/estimate body against its job: the job and the narrowing.
pub fn validated<'a>(state: &'a AppState, body: &CreateSnapshot) -> Result<(&'a ServiceJob, Narrowing), ApiError> {
    let job = state.jobs.get(&body.job).ok_or_else(|| {
        ApiError::field(
            "job",
            format!("{:?} is not a configured job; the service runs: {}", truncate(&body.job, 80), state.jobs.names().join(", ")),
        )
    })?;
    check_text("name", body.name.as_deref(), MAX_NAME)?;
    check_text("description", body.description.as_deref(), MAX_DESCRIPTION)?;
    let narrowing = Narrowing { resources: body.resources.clone(), months: body.months.clone(), content: body.content.map(Into::into) };
    job.narrow(&narrowing).map_err(|r| ApiError::field(r.field, r.message))?;
    Ok((job, narrowing))
}

/// Writes `text` to `path` readable by this user only (it may hold the job's S3 keys),
/// through a temporary file, so the run never reads half a job.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Where the run of request `id` finds its job file.
pub fn job_file(root: &Path, dir: &str, id: &str) -> PathBuf {
    root.join(".service").join(dir).join(format!("{id}.toml"))
}

/// Request a snapshot of a configured job, optionally narrowed; it runs in the background.
#[utoipa::path(post, path = "/api/v1/snapshots", request_body = CreateSnapshot,
    responses((status = 202, description = "requested; poll its URL", body = SnapshotView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    JsonBody(body): JsonBody<CreateSnapshot>,
) -> Result<Response, ApiError> {
    let st = state.clone();
    let view = state
        .db(move |c| {
            let (job, narrowing) = validated(&st, &body)?;
            let id = uuid::Uuid::new_v4().to_string();
            let path = job_file(&st.config.output_dir, "jobs", &id);
            let (text, derived) = job
                .derive(&narrowing, body.name.as_deref(), body.description.as_deref(), &st.config.output_dir, &path)
                .map_err(|r| ApiError::field(r.field, r.message))?;
            write_private(&path, &text).map_err(|e| ApiError::Internal(format!("cannot write {}: {e}", path.display())))?;
            let params = serde_json::json!({"resources": body.resources, "months": body.months, "content": body.content});
            let new = NewRequest {
                id: id.clone(),
                job: job.name.clone(),
                params,
                name: derived.name.clone(),
                description: derived.description.clone(),
                requested_by: Some(caller.name.clone()),
                job_file: path.display().to_string(),
            };
            if let Err(e) = c.insert_request(&new) {
                let _ = std::fs::remove_file(&path);
                return Err(e.into());
            }
            let (r, s) = lookup(c, &id)?;
            Ok(snapshot_view(r, s.as_ref(), None))
        })
        .await?;
    state.runner.wake();
    tracing::info!(request = %view.id, job = %view.job, by = ?view.requested_by, "snapshot requested");
    let location = format!("/api/v1/snapshots/{}", view.id);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(view)).into_response())
}

/// The history of requested snapshots, newest first, paginated.
#[utoipa::path(get, path = "/api/v1/snapshots", params(ListQuery),
    responses((status = 200, body = SnapshotList), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<SnapshotList>, ApiError> {
    let page = q.page.unwrap_or(1);
    let per_page = q.per_page.unwrap_or(20);
    if page == 0 || page > 1_000_000 {
        return Err(ApiError::field("page", format!("{page} is out of range; pages start at 1")));
    }
    if per_page == 0 || per_page > MAX_PER_PAGE {
        return Err(ApiError::field("per_page", format!("{per_page} is out of range; use 1 to {MAX_PER_PAGE}")));
    }
    let status = q.status.map(|s| s.as_str());
    let list = state
        .db(move |c| {
            let (rows, total) = c.requests(status, (page - 1) * per_page, per_page)?;
            let mut snapshots = Vec::with_capacity(rows.len());
            for r in rows {
                let s = match &r.snapshot_id {
                    Some(sid) => Some(c.get(sid)?),
                    None => None,
                };
                snapshots.push(snapshot_view(r, s.as_ref(), None));
            }
            Ok(SnapshotList { snapshots, page, per_page, total })
        })
        .await?;
    Ok(Json(list))
}

/// One snapshot: status and its history, error, progress while running, counts, times.
#[utoipa::path(get, path = "/api/v1/snapshots/{id}", params(("id" = String, Path, description = "the snapshot's id")),
    responses((status = 200, body = SnapshotView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(State(state): State<AppState>, _caller: Caller, ApiPath(id): ApiPath<String>) -> Result<Json<SnapshotView>, ApiError> {
    check_id(&id)?;
    let view = state
        .db(move |c| {
            let (r, s) = lookup(c, &id)?;
            let history = match &s {
                Some(s) => c.history(&s.id)?,
                None => Vec::new(),
            };
            Ok(snapshot_view(r, s.as_ref(), Some(&history)))
        })
        .await?;
    Ok(Json(view))
}

/// Deletes a snapshot's files (its record stays, `deleted`), or cancels a request that
/// has not started. A run in progress cannot be deleted (409).
#[utoipa::path(delete, path = "/api/v1/snapshots/{id}", params(("id" = String, Path, description = "the snapshot's id")),
    responses((status = 204, description = "deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(State(state): State<AppState>, Admin(caller): Admin, ApiPath(id): ApiPath<String>) -> Result<StatusCode, ApiError> {
    check_id(&id)?;
    let id2 = id.clone();
    let st = state.clone();
    state
        .db(move |c| {
            let (r, s) = lookup(c, &id2)?;
            if r.deleted_at.is_some() {
                return Err(ApiError::Gone(format!("snapshot {id2} was already deleted")));
            }
            match s {
                Some(s) if s.deleted_at.is_some() => return Err(ApiError::Gone(format!("snapshot {id2} was already deleted"))),
                // Its delivered copy too: the same removal as the retention purge.
                Some(s) => {
                    crate::service::retention::remove(&st, c, &s, Some(&r.job), crate::service::retention::Why::Deleted)?;
                }
                None if c.cancel_request(&id2)? => {}
                None if r.state == crate::catalog::RequestState::Finished => {
                    return Err(ApiError::Conflict(format!(
                        "snapshot {id2} failed before it recorded anything; there is nothing to delete"
                    )));
                }
                None => return Err(ApiError::Conflict(format!("snapshot {id2} is starting; wait until it is in progress or done"))),
            }
            Ok(())
        })
        .await?;
    tracing::info!(request = %id, by = %caller.name, "snapshot deleted");
    Ok(StatusCode::NO_CONTENT)
}
