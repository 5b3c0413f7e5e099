//! The page's one error type, and the one place it becomes a response: a redirect to
//! the login form, or an HTML page that says what went wrong and what to do.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::session;
use crate::service::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No session cookie: the page asks for a token.
    #[error("log in with an admin token to see the snapshots")]
    LoggedOut,
    /// A session cookie that expired, was logged out, or whose token was revoked.
    #[error("your session has ended; log in again with an admin token")]
    SessionEnded,
    #[error("this form was sent without its security token, or with one from another session; go back, reload the page and send it again")]
    Csrf,
    /// A form or query field is wrong.
    #[error("`{field}`: {message}")]
    Invalid { field: String, message: String },
    #[error("send the form as application/x-www-form-urlencoded (a browser does); the body could not be read: {0}")]
    Form(String),
    /// What the API said of the request.
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("cannot render page {name}: {source}")]
    Template { name: &'static str, source: minijinja::Error },
}

impl PageError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> PageError {
        PageError::Invalid { field: field.into(), message: message.into() }
    }

    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            PageError::LoggedOut | PageError::SessionEnded => (StatusCode::SEE_OTHER, "Log in"),
            PageError::Csrf => (StatusCode::FORBIDDEN, "Refused: missing security token"),
            PageError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "Check the request"),
            PageError::Form(_) => (StatusCode::BAD_REQUEST, "Bad request"),
            PageError::Api(e) => {
                let status = api_status(e);
                let title = match status {
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::GONE => "Gone",
                    StatusCode::CONFLICT => "Not possible right now",
                    StatusCode::FORBIDDEN => "Refused",
                    s if s.is_server_error() => "Something went wrong",
                    _ => "Check the request",
                };
                (status, title)
            }
            PageError::Template { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong"),
        }
    }
}

/// The status the API answers `e` with.
fn api_status(e: &ApiError) -> StatusCode {
    e.status_and_code().0
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title) = self.status();
        match self {
            PageError::LoggedOut => return Redirect::to("/login").into_response(),
            PageError::SessionEnded => {
                let mut r = Redirect::to("/login?ended=1").into_response();
                // Secure is not known here; a cookie cleared without it still clears.
                if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(session::COOKIE, "/", false)) {
                    r.headers_mut().insert(header::SET_COOKIE, v);
                }
                return r;
            }
            _ => {}
        }
        if status.is_server_error() {
            tracing::error!(error = %self, "page error");
        }
        let message = self.to_string();
        match super::templates::render("message.html", minijinja::context! { title, message => message.clone(), status => status.as_u16() })
        {
            Ok(html) => (status, html).into_response(),
            Err(_) => (status, message).into_response(),
        }
    }
}
