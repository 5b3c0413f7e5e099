//! Logging in with an admin token, and out.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::error::PageError;
use super::form::{LoginForm, PageQuery, SessionForm};
use super::session::{self, COOKIE};
use super::{csrf, templates};
use crate::catalog::Role;
use crate::service::state::AppState;
use crate::service::tokens;

/// How long a login form may wait before it is sent.
const LOGIN_FORM_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginQuery {
    /// Set when a session expired or was ended.
    ended: Option<String>,
    /// Set after logging out.
    out: Option<String>,
}

/// The login form, with a fresh CSRF token in a cookie scoped to `/login`.
fn login_page(state: &AppState, status: StatusCode, error: Option<String>, notice: Option<&str>) -> Result<Response, PageError> {
    let token = csrf::generate();
    let html = templates::render("login.html", minijinja::context! { csrf => token.clone(), error, notice, title => "Log in" })?;
    let cookie = session::set_cookie(csrf::LOGIN_COOKIE, &token, "/login", LOGIN_FORM_TTL, session::secure(state));
    Ok((status, [(header::SET_COOKIE, cookie)], html).into_response())
}

pub async fn form(State(state): State<AppState>, headers: HeaderMap, PageQuery(q): PageQuery<LoginQuery>) -> Result<Response, PageError> {
    if let Some(id) = session::cookie(&headers, COOKIE)
        && state.sessions.get(id).is_some()
    {
        return Ok(Redirect::to("/").into_response());
    }
    let notice = match (q.ended, q.out) {
        (_, Some(_)) => Some("You are logged out."),
        (Some(_), None) => Some("Your session has ended. Log in again to continue."),
        (None, None) => None,
    };
    login_page(&state, StatusCode::OK, None, notice)
}

pub async fn submit(State(state): State<AppState>, LoginForm { fields }: LoginForm) -> Result<Response, PageError> {
    let token = fields.get("token").unwrap_or_default().trim().to_string();
    if token.is_empty() {
        return login_page(&state, StatusCode::UNPROCESSABLE_ENTITY, Some("Paste an admin token (it starts with ferry_).".into()), None);
    }
    let presented = token.clone();
    let found = state.db(move |c| Ok(tokens::find(&c.tokens()?, &presented).map(|(n, r)| (n.to_string(), r)))).await?;
    match found {
        Some((name, Role::Admin)) => {
            let (id, _) = state.sessions.open(&name, tokens::hash(&token));
            tracing::info!(token = %name, "page login");
            let secure = session::secure(&state);
            let mut response = Redirect::to("/").into_response();
            let h = response.headers_mut();
            for cookie in [
                session::set_cookie(COOKIE, &id, "/", state.sessions.ttl(), secure),
                session::clear_cookie(csrf::LOGIN_COOKIE, "/login", secure),
            ] {
                // Hex ids and fixed attributes: always a valid header value.
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    h.append(header::SET_COOKIE, v);
                }
            }
            Ok(response)
        }
        Some((name, Role::Reader)) => {
            tracing::info!(token = %name, "page login refused: reader token");
            let message = format!(
                "Token \u{201c}{name}\u{201d} has the reader role. The snapshots page is for admins: log in with an admin token \
                 (ferry tokens create --role admin). A reader token still lists and downloads snapshots through the API."
            );
            login_page(&state, StatusCode::FORBIDDEN, Some(message), None)
        }
        None => login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            Some(
                "This token is not valid: it is unknown or was revoked. Check it, or create one with ferry tokens create --role admin."
                    .into(),
            ),
            None,
        ),
    }
}

pub async fn logout(State(state): State<AppState>, SessionForm { session, .. }: SessionForm) -> Response {
    state.sessions.end(&session.id);
    let mut response = Redirect::to("/login?out=1").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(COOKIE, "/", session::secure(&state))) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}
