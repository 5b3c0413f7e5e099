//! `POST /api/v1/estimates`: what `ferry plan` says of a request, nothing run.

use std::process::Stdio;

use axum::Json;
use axum::extract::State;

use super::snapshots::{job_file, validated, write_private};
use super::views::CreateSnapshot;
use crate::service::error::{ApiError, ErrorBody};
use crate::service::extract::{Admin, JsonBody};
use crate::service::state::AppState;

/// The plan of a request (same body as creating one): rows per resource, estimated
/// bytes, files, parts, time and storage cost. Counted by a `ferry plan --json` child.
#[utoipa::path(post, path = "/api/v1/estimates", request_body = CreateSnapshot,
    responses((status = 200, description = "`ferry plan --json` of the request", body = Object),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 504, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn estimate(
    State(state): State<AppState>,
    _admin: Admin,
    JsonBody(body): JsonBody<CreateSnapshot>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (job, narrowing) = validated(&state, &body)?;
    let path = job_file(&state.config.output_dir, "estimates", &uuid::Uuid::new_v4().to_string());
    let (text, _) = job
        .derive(&narrowing, body.name.as_deref(), body.description.as_deref(), &state.config.output_dir, &path)
        .map_err(|r| ApiError::field(r.field, r.message))?;
    write_private(&path, &text).map_err(|e| ApiError::Internal(format!("cannot write {}: {e}", path.display())))?;
    let child = tokio::process::Command::new(&state.exe)
        .arg("plan")
        .arg(&path)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let result = match child {
        Ok(child) => tokio::time::timeout(state.config.estimate_timeout, child.wait_with_output()).await,
        Err(e) => Ok(Err(e)),
    };
    let _ = std::fs::remove_file(&path);
    let output = result
        .map_err(|_| {
            ApiError::Timeout(format!("the estimate took longer than {:?}; raise `limits.estimate_timeout`", state.config.estimate_timeout))
        })?
        .map_err(|e| ApiError::Internal(format!("cannot run `ferry plan`: {e}")))?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        return Err(ApiError::Internal(format!("`ferry plan` failed: {}", err.trim().trim_start_matches("error: "))));
    }
    serde_json::from_slice(&output.stdout).map(Json).map_err(|e| ApiError::Internal(format!("`ferry plan` printed no plan: {e}")))
}
