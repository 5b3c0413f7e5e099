//! Schedules (list, pause, resume) and a snapshot's notification attempts.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::snapshots::check_id;
use crate::catalog::{NotificationAttempt, timestamp};
use crate::service::error::{ApiError, ErrorBody};
use crate::service::extract::{Admin, ApiPath, Caller};
use crate::service::schedule::{self, ScheduleView};
use crate::service::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleView>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NotificationList {
    pub id: String,
    /// Every attempt, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub attempts: Vec<NotificationAttempt>,
}

/// The configured schedules, each with its next runs, pause state and last slot.
#[utoipa::path(get, path = "/api/v1/schedules",
    responses((status = 200, body = ScheduleList), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, _caller: Caller) -> Result<Json<ScheduleList>, ApiError> {
    let st = state.clone();
    let schedules = state.db(move |c| Ok(schedule::views(&st.config.schedules, c, &st.clock)?)).await?;
    Ok(Json(ScheduleList { schedules }))
}

fn find(state: &AppState, name: &str) -> Result<(), ApiError> {
    if state.config.schedules.iter().any(|s| s.name == name) {
        return Ok(());
    }
    let known: Vec<&str> = state.config.schedules.iter().map(|s| s.name.as_str()).collect();
    let name: String = name.chars().take(80).collect();
    Err(ApiError::NotFound(format!(
        "no schedule {name:?}; the configured ones are: {}",
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    )))
}

async fn set_paused(state: AppState, name: String, by: Option<String>) -> Result<Json<ScheduleView>, ApiError> {
    find(&state, &name)?;
    let st = state.clone();
    let pausing = by.is_some();
    let view = state
        .db(move |c| {
            let now = st.clock.now();
            c.set_schedule_paused(&name, &timestamp(now), by.as_deref())?;
            let s = st.config.schedules.iter().find(|s| s.name == name).expect("checked above");
            Ok(schedule::view(s, c, now)?)
        })
        .await?;
    tracing::info!(schedule = %view.name, paused = pausing, "schedule {}", if pausing { "paused" } else { "resumed" });
    Ok(Json(view))
}

/// Pauses a schedule: its slots are recorded `paused` and not run until it is resumed.
#[utoipa::path(post, path = "/api/v1/schedules/{name}/pause", params(("name" = String, Path, description = "the schedule's name")),
    responses((status = 200, body = ScheduleView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn pause(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    set_paused(state, name, Some(caller.name.clone())).await
}

/// Resumes a paused schedule from its next slot (slots passed while paused are not run).
#[utoipa::path(post, path = "/api/v1/schedules/{name}/resume", params(("name" = String, Path, description = "the schedule's name")),
    responses((status = 200, body = ScheduleView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn resume(State(state): State<AppState>, _admin: Admin, ApiPath(name): ApiPath<String>) -> Result<Json<ScheduleView>, ApiError> {
    set_paused(state, name, None).await
}

/// Every notification attempt about a snapshot (mails and webhooks, retries included).
#[utoipa::path(get, path = "/api/v1/snapshots/{id}/notifications", params(("id" = String, Path, description = "the snapshot's id")),
    responses((status = 200, body = NotificationList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn notifications(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<NotificationList>, ApiError> {
    check_id(&id)?;
    let list = state
        .db(move |c| {
            if c.request(&id)?.is_none() {
                return Err(ApiError::NotFound(format!("no snapshot {id}; `GET /api/v1/snapshots` lists them")));
            }
            let attempts = c.notifications(&id)?;
            Ok(NotificationList { id, attempts })
        })
        .await?;
    Ok(Json(list))
}
