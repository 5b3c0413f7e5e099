//! The OpenAPI document, health and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi as _;

use crate::service::error::{ApiError, ErrorBody};
use crate::service::extract::Caller;
use crate::service::state::AppState;

/// This document: every `/api/v1` route (OpenAPI 3.1).
#[utoipa::path(get, path = "/api/v1/openapi.json",
    responses((status = 200, description = "the OpenAPI document", body = Object), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn openapi(_caller: Caller) -> impl IntoResponse {
    Json(super::ApiDoc::openapi())
}

/// Liveness: 200 while the server answers (no token needed).
pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

/// Prometheus text: snapshots by status, bytes served, request latency.
pub async fn metrics(State(state): State<AppState>, _caller: Caller) -> Result<impl IntoResponse, ApiError> {
    let runs = state.db(|c| Ok(c.request_counts()?)).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render(&runs)))
}
