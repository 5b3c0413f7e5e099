//! The API's one error type, and the one place it becomes a response:
//! `{"error": {"code": "...", "message": "..."}}` with the status that fits.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::catalog::CatalogError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid token; send `Authorization: Bearer <token>` with a token from `ferry tokens create`")]
    Unauthorized,
    #[error("token {name:?} has the reader role, which may list and download but not {action}; use an admin token")]
    Forbidden { name: String, action: &'static str },
    /// A request authorized by the page's session cookie that changes something needs
    /// the session's CSRF token.
    #[error(
        "missing or wrong X-CSRF-Token header; a request authorized by the page's session cookie must send the page's CSRF token (or use `Authorization: Bearer <token>`)"
    )]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    /// A field of the request (body, query or path) is wrong.
    #[error("`{field}`: {message}")]
    InvalidField { field: String, message: String },
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("send the body as JSON with `Content-Type: application/json`")]
    UnsupportedMediaType,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Gone(String),
    #[error("{message}")]
    RangeNotSatisfiable { message: String, length: Option<u64> },
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::InvalidField { field: field.into(), message: message.into() }
    }

    /// The status and stable code of the error (the page maps them too).
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Csrf => (StatusCode::FORBIDDEN, "csrf"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::InvalidField { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Gone(_) => (StatusCode::GONE, "gone"),
            ApiError::RangeNotSatisfiable { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> ApiError {
        match e {
            CatalogError::NotFound { id, .. } => ApiError::NotFound(format!("no snapshot {id:?}")),
            CatalogError::Running { .. } => ApiError::Conflict(e.to_string()),
            CatalogError::Deleted { .. } => ApiError::Gone(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::service::retention::PurgeError> for ApiError {
    fn from(e: crate::service::retention::PurgeError) -> ApiError {
        use crate::service::retention::PurgeError;
        match e {
            PurgeError::Catalog(c) => c.into(),
            PurgeError::Delivered(crate::s3::RemovalError::S3 { .. }) => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs: `unauthorized`, `forbidden`, `invalid_field`, `not_found`, ...
    pub code: String,
    /// For people: what is wrong and what to do.
    pub message: String,
    /// The offending field, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "internal error");
        }
        let field = match &self {
            ApiError::InvalidField { field, .. } => Some(field.clone()),
            _ => None,
        };
        let length = match &self {
            ApiError::RangeNotSatisfiable { length, .. } => *length,
            _ => None,
        };
        let body = ErrorBody { error: ErrorDetail { code: code.into(), message: self.to_string(), field } };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(len) = length.and_then(|l| HeaderValue::from_str(&format!("bytes */{l}")).ok()) {
            response.headers_mut().insert(header::CONTENT_RANGE, len);
        }
        response
    }
}
