//! The routes: small handlers over typed extractors; the OpenAPI document lists exactly
//! the `/api/v1` routes registered here.

pub mod estimates;
pub mod files;
pub mod meta;
pub mod schedules;
pub mod snapshots;
pub mod views;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::error::ApiError;
use super::extract::MAX_BODY;
use super::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "ferry snapshot service", description = "Request, track, list and download snapshots. Every call needs `Authorization: Bearer <token>`."),
    paths(snapshots::create, snapshots::list, snapshots::show, snapshots::delete, files::list, files::download, estimates::estimate, meta::openapi,
        schedules::list, schedules::pause, schedules::resume, schedules::notifications),
    modifiers(&Bearer)
)]
pub struct ApiDoc;

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/snapshots", post(snapshots::create).get(snapshots::list))
        .route("/api/v1/snapshots/{id}", get(snapshots::show).delete(snapshots::delete))
        .route("/api/v1/snapshots/{id}/files", get(files::list))
        .route("/api/v1/snapshots/{id}/files/{name}", get(files::download))
        .route("/api/v1/estimates", post(estimates::estimate))
        .route("/api/v1/openapi.json", get(meta::openapi))
        .route("/api/v1/schedules", get(schedules::list))
        .route("/api/v1/schedules/{name}/pause", post(schedules::pause))
        .route("/api/v1/schedules/{name}/resume", post(schedules::resume))
        .route("/api/v1/snapshots/{id}/notifications", get(schedules::notifications));
    api.merge(super::page::router())
        .route("/healthz", get(meta::healthz))
        .route("/metrics", get(meta::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!("no route {} {}; `GET /api/v1/openapi.json` lists the routes", req.method(), req.uri().path()))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{} is not allowed on {}; `GET /api/v1/openapi.json` lists the methods",
        req.method(),
        req.uri().path()
    ))
}

/// One structured log line per request (never its headers: they carry the token) and
/// its latency in the metrics.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.request(took, status);
    tracing::info!(target: "ferry::http", %method, %path, status, ms = (took.as_secs_f64() * 1e4).round() / 10.0, "request");
    response
}
