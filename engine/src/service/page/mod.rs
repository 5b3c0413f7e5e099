//! The snapshots page (issue 16): an admin web page at `/`, served by `ferry serve` from
//! the same binary, offline.
//!
//! ```text
//! GET  /login ─form─▶ POST /login (admin token) ─▶ session cookie ─▶ GET /
//! GET  /                   history: filter, search, pages; in-flight rows poll the API
//! GET  /snapshots/new      the form; its estimate comes from POST /api/v1/estimates
//! POST /snapshots/new      ─▶ the API's create ─▶ 303 /?created=ID
//! GET  /snapshots/{id}     detail and downloads;  GET|POST /snapshots/{id}/delete
//! POST /logout
//! ```
//!
//! Server-rendered HTML (`templates/`, minijinja), one stylesheet and one script
//! (`static/`), all embedded. Every response here carries a strict
//! Content-Security-Policy (no inline script or style), `X-Frame-Options: DENY` and
//! `Referrer-Policy: no-referrer`. The page's handlers call the API's own handlers, so
//! what the page may do is exactly what the API allows an admin.

pub mod csrf;
pub mod error;
pub mod form;
pub mod format;
pub mod session;
pub mod templates;
pub mod views;

mod create;
mod detail;
mod history;
mod login;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::state::AppState;

/// The policy of every page response: this origin only, no inline code, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The page's routes, each response with the security headers.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(history::page))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", axum::routing::post(login::logout))
        .route("/snapshots/new", get(create::form).post(create::submit))
        .route("/snapshots/{id}", get(detail::page))
        .route("/snapshots/{id}/row", get(history::row_fragment))
        .route("/snapshots/{id}/delete", get(detail::confirm_delete).post(detail::delete))
        .route("/static/page.css", get(|| asset("text/css; charset=utf-8", include_str!("static/page.css"))))
        .route("/static/page.js", get(|| asset("text/javascript; charset=utf-8", include_str!("static/page.js"))))
        .route("/static/icon.svg", get(|| asset("image/svg+xml", include_str!("static/icon.svg"))))
        .route("/favicon.ico", get(|| asset("image/svg+xml", include_str!("static/icon.svg"))))
        .layer(axum::middleware::map_response(security_headers))
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Pages show tokens' names and CSRF tokens: never cached.
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// `http(s)://host` as the browser reached the service (for the download scripts).
fn origin(state: &AppState, headers: &axum::http::HeaderMap) -> String {
    let scheme = if session::secure(state) { "https" } else { "http" };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    format!("{scheme}://{host}")
}
