//! Typed extractors: the caller (by token), a JSON body, a query and path parameters,
//! each turning what it rejects into an [`ApiError`] that names the field.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::state::AppState;
use super::tokens;
use crate::catalog::Role;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// Whoever sent a valid token (any role).
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        // No Authorization header: the snapshots page's session cookie may stand for one.
        if header.is_none()
            && let Some(caller) = super::page::session::api_caller(parts, state).await?
        {
            return Ok(caller);
        }
        // The token is never logged: it lives only in this function and the hash.
        let Some(token) = header.and_then(tokens::bearer).map(str::to_string) else { return Err(ApiError::Unauthorized) };
        state
            .db(move |c| {
                let all = c.tokens()?;
                let found = tokens::find(&all, &token).map(|(name, role)| Caller { name: name.into(), role });
                found.ok_or(ApiError::Unauthorized)
            })
            .await
    }
}

/// A caller with the admin role.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl Admin {
    pub async fn check(parts: &mut Parts, state: &AppState, action: &'static str) -> Result<Admin, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.role {
            Role::Admin => Ok(Admin(caller)),
            Role::Reader => Err(ApiError::Forbidden { name: caller.name, action }),
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        let action = match (parts.method.as_str(), parts.uri.path()) {
            ("DELETE", _) => "delete snapshots",
            (_, p) if p.ends_with("/estimates") => "ask for estimates",
            _ => "create snapshots",
        };
        Admin::check(parts, state, action).await
    }
}

/// A JSON body: `application/json`, at most [`MAX_BODY`] bytes, every field known and
/// of the right type (the error names the field).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<JsonBody<T>, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge { limit: MAX_BODY }
            } else {
                ApiError::BadRequest(format!("cannot read the body: {e}"))
            }
        })?;
        // serde would take an array for a struct, field by field; the API's bodies are objects.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|&b| b != b'{')
            && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok()
        {
            return Err(ApiError::field("body", "must be a JSON object such as {\"job\": \"nightly\"}"));
        }
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses JSON with the path of a wrong field: `resources[1]`, `months`, ...
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest(format!("the body is not valid JSON: {inner}"));
        }
        let message = inner.to_string();
        // The path already ends with an unknown field's name.
        let field = if path == "." { "body".to_string() } else { path };
        ApiError::InvalidField { field, message: message.split(" at line ").next().unwrap_or(&message).to_string() }
    })?;
    de.end().map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// Query parameters, each checked like a body field.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<ApiQuery<T>, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(ApiQuery).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            let field = message.strip_prefix("unknown field `").and_then(|r| r.split('`').next()).map(str::to_string).unwrap_or(path);
            ApiError::InvalidField { field, message }
        })
    }
}

/// Path parameters; a segment that does not decode is a bad request naming it.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<ApiPath<T>, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::field("path", e.body_text()))
    }
}
