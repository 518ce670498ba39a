//! API errors: one enum, one JSON shape.
//!
//! `{"error": {"code": "...", "message": "...", "fields": {"name": "message"}}}` — 422 for
//! input that names a field, 401/403/404/409/413/415/429/503 as meant, 500 for everything we did
//! not expect (logged, never shown in detail to the client).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::FieldErrors;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug)]
pub enum ApiError {
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict(String),
    Invalid(FieldErrors),
    TooManyRequests {
        retry_after_secs: i64,
    },
    PayloadTooLarge,
    UnsupportedMediaType,
    /// 503 with `Retry-After`: the database could not take the write now
    /// (`store::Error::Unavailable`).
    Unavailable(String),
    Internal(String),
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`.
    pub code: String,
    /// A human-readable summary.
    pub message: String,
    /// For `validation_failed`: field name → what is wrong with it.
    pub fields: BTreeMap<String, String>,
}

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid(FieldErrors::single(field, message))
    }

    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            ApiError::Unauthorized => {
                (StatusCode::UNAUTHORIZED, "unauthorized", "log in or send a bearer token".into())
            }
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden", "your role may not do this".into()),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found", "no such resource".into()),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m.clone()),
            ApiError::Invalid(e) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", {
                let n = e.0.len();
                format!("{n} field{} failed validation: {e}", if n == 1 { "" } else { "s" })
            }),
            ApiError::TooManyRequests { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!("too many failed attempts; try again in {retry_after_secs} s"),
            ),
            ApiError::PayloadTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is too large".into())
            }
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json".into(),
            ),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m.clone()),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "an unexpected error occurred; it has been logged".into(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "internal error");
        }
        let (status, code, message) = self.parts();
        let fields = match &self {
            ApiError::Invalid(e) => e.0.clone(),
            _ => BTreeMap::new(),
        };
        let mut resp =
            (status, Json(ErrorBody { error: ErrorDetail { code: code.into(), message, fields } })).into_response();
        if let ApiError::TooManyRequests { retry_after_secs } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.max(1).to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if matches!(self, ApiError::Unavailable(_)) {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::NotFound => ApiError::NotFound,
            store::Error::Invalid(f) => ApiError::Invalid(f),
            store::Error::Conflict(m) => ApiError::Conflict(m),
            store::Error::Unavailable(m) => ApiError::Unavailable(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<FieldErrors> for ApiError {
    fn from(e: FieldErrors) -> Self {
        ApiError::Invalid(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
