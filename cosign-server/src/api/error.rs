//! The one mapping from failures to HTTP responses: status from the stable code, body
//! `{code, message, message_en}`. Causes go to the log, never to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cosign_proto::v1::{ApiError, ErrorCode};

/// A handler failure: the wire error plus, for server-side faults, the logged cause.
#[derive(Debug)]
pub struct ApiFailure {
    body: ApiError,
    cause: Option<String>,
    /// Seconds for a `Retry-After` header (rate limits).
    retry_after: Option<u64>,
}

impl ApiFailure {
    /// A failure with the code's default texts.
    pub fn new(code: ErrorCode) -> Self {
        Self {
            body: ApiError::new(code),
            cause: None,
            retry_after: None,
        }
    }

    /// Adds a `Retry-After: seconds` header to the response.
    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// A failure with specific texts, e.g. naming the field at fault.
    pub fn with(code: ErrorCode, zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            body: ApiError::with_messages(code, zh, en),
            cause: None,
            retry_after: None,
        }
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.body.code
    }

    /// The Chinese text (for per-row reports such as a CSV import).
    pub fn message_zh(&self) -> &str {
        &self.body.message
    }
}

/// Builds the JSON error response for a code (used by middleware for bare framework errors).
pub fn response_for(code: ErrorCode) -> Response {
    ApiFailure::new(code).into_response()
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.body.code.status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Some(cause) = &self.cause {
            tracing::error!(code = ?self.body.code, %cause, "request failed");
        }
        let mut resp = (status, Json(self.body)).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        resp
    }
}

impl From<crate::error::Error> for ApiFailure {
    fn from(e: crate::error::Error) -> Self {
        let code = match &e {
            crate::error::Error::Db(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
            ) => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        };
        Self {
            body: ApiError::new(code),
            cause: Some(e.to_string()),
            retry_after: None,
        }
    }
}

impl From<sqlx::Error> for ApiFailure {
    fn from(e: sqlx::Error) -> Self {
        crate::error::Error::Db(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_codes() {
        for (code, status) in [
            (ErrorCode::MalformedJson, 400),
            (ErrorCode::BadCredentials, 401),
            (ErrorCode::PasswordChangeRequired, 403),
            (ErrorCode::NotFound, 404),
            (ErrorCode::PayloadTooLarge, 413),
            (ErrorCode::UnsupportedMediaType, 415),
            (ErrorCode::AccountLocked, 423),
            (ErrorCode::Unavailable, 503),
        ] {
            assert_eq!(
                ApiFailure::new(code).into_response().status().as_u16(),
                status,
                "{code:?}"
            );
        }
        let db_down: ApiFailure = sqlx::Error::PoolTimedOut.into();
        assert_eq!(db_down.code(), ErrorCode::Unavailable);
        let other: ApiFailure = sqlx::Error::RowNotFound.into();
        assert_eq!(other.code(), ErrorCode::Internal);
    }
}
