//! Typed extractors of the page: a logged-in admin's form (its CSRF token checked), the
//! login form (checked against its cookie) and query parameters.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::csrf;
use super::error::PageError;
use super::session::{self, AdminSession};
use crate::service::state::AppState;

/// The fields of an `application/x-www-form-urlencoded` body, in order (a checkbox
/// group repeats its name).
#[derive(Debug, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Fields {
        Fields(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }
}

async fn read(req: Request, state: &AppState) -> Result<Fields, PageError> {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form {
        return Err(PageError::Form("the content type is not application/x-www-form-urlencoded".into()));
    }
    let body = Bytes::from_request(req, state).await.map_err(|e| PageError::Form(e.body_text()))?;
    Ok(Fields::parse(&body))
}

/// A form posted by a logged-in admin, with the session's CSRF token.
pub struct SessionForm {
    pub session: AdminSession,
    pub fields: Fields,
}

impl FromRequest<AppState> for SessionForm {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<SessionForm, PageError> {
        let (mut parts, body) = req.into_parts();
        let session = AdminSession::from_request_parts(&mut parts, state).await?;
        let fields = read(Request::from_parts(parts, body), state).await?;
        if !csrf::matches(&session.session.csrf, fields.get(csrf::FIELD)) {
            return Err(PageError::Csrf);
        }
        Ok(SessionForm { session, fields })
    }
}

/// The login form: its CSRF field must equal its cookie (there is no session yet).
pub struct LoginForm {
    pub fields: Fields,
}

impl FromRequest<AppState> for LoginForm {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<LoginForm, PageError> {
        let expected = session::cookie(req.headers(), csrf::LOGIN_COOKIE).unwrap_or_default().to_string();
        let fields = read(req, state).await?;
        if !csrf::matches(&expected, fields.get(csrf::FIELD)) {
            return Err(PageError::Csrf);
        }
        Ok(LoginForm { fields })
    }
}

/// Query parameters; a wrong one is a page naming it.
pub struct PageQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for PageQuery<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<PageQuery<T>, PageError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(PageQuery).map_err(|e| {
            let field = e.path().to_string();
            PageError::invalid(field, e.into_inner().to_string())
        })
    }
}
