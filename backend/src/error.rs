//! The JSON error envelope `{error, message}` and its status codes.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    Unauthorized(String),
    Forbidden(String),
    CsrfViolation(String),
    NotFound(String),
    MethodNotAllowed,
    Validation(String),
    PayloadTooLarge(String),
    StorageUnavailable(String),
    ServiceUnavailable(String),
    Internal(String),
}

impl ApiError {
    pub fn unauthorized() -> Self {
        ApiError::Unauthorized("authentication required".into())
    }

    pub fn forbidden() -> Self {
        ApiError::Forbidden("admin role required".into())
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::NotFound(what.into())
    }

    pub fn validation(msg: impl Into<String>) -> Self {
        ApiError::Validation(msg.into())
    }

    /// Logs the detail and keeps it in the message: this is a development backend, and a
    /// clear reason beats a bare "internal error" when someone debugs their stack.
    pub fn internal(msg: impl Into<String>) -> Self {
        let msg = msg.into();
        tracing::error!(error = %msg, "internal error");
        ApiError::Internal(msg)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::CsrfViolation(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::StorageUnavailable(_) | ApiError::ServiceUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::CsrfViolation(_) => "csrf_violation",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Validation(_) => "validation_error",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::StorageUnavailable(_) => "storage_unavailable",
            ApiError::ServiceUnavailable(_) => "service_unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ApiError::MethodNotAllowed => "method not allowed",
            ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::CsrfViolation(m)
            | ApiError::NotFound(m)
            | ApiError::Validation(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::StorageUnavailable(m)
            | ApiError::ServiceUnavailable(m)
            | ApiError::Internal(m) => m,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.code(), "message": self.message() });
        (self.status(), Json(body)).into_response()
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        ApiError::internal(format!("database error: {}", crate::db::db_detail(&e)))
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ApiError::internal(format!(
            "database unavailable: {}",
            crate::db::error_chain(&e)
        ))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        let cases = [
            (ApiError::unauthorized(), 401, "unauthorized"),
            (ApiError::forbidden(), 403, "forbidden"),
            (ApiError::CsrfViolation("x".into()), 403, "csrf_violation"),
            (ApiError::not_found("x"), 404, "not_found"),
            (ApiError::validation("x"), 422, "validation_error"),
            (ApiError::Internal("x".into()), 500, "internal"),
            (
                ApiError::StorageUnavailable("x".into()),
                503,
                "storage_unavailable",
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status().as_u16(), status);
            assert_eq!(e.code(), code);
        }
    }
}
