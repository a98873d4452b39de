//! The wire error: `{code, message, message_en}` with the status api.md gives each code. Every
//! failure of a request becomes one of these exactly once, here.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::Error;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// HTTP status (not serialised).
    #[serde(skip)]
    pub status: StatusCode,
    /// Stable machine-readable code (api.md).
    pub code: &'static str,
    /// Chinese message.
    pub message: String,
    /// English message.
    pub message_en: String,
}

impl ApiError {
    /// An error with a code and both messages; the status follows from the code.
    pub fn new(code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            status: status_of(code),
            code,
            message: zh.into(),
            message_en: en.into(),
        }
    }

    /// A malformed request (missing field, bad base64, wrong step list...).
    pub fn invalid(zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self::new("invalid_request", zh, en)
    }

    /// The request body is over the service's limit.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            "image_too_large",
            format!("请求过大：最多 {} MB。", limit / (1024 * 1024)),
            format!(
                "request body too large: at most {} MB",
                limit / (1024 * 1024)
            ),
        )
    }

    /// The per-request deadline passed while the request was being analysed.
    pub fn timeout() -> Self {
        Self::new(
            "timeout",
            "处理超时，请稍后重试。",
            "the analysis took too long; try again later",
        )
    }

    /// Every worker stayed busy until the deadline.
    pub fn busy() -> Self {
        Self::new(
            "busy",
            "服务繁忙，请稍后重试。",
            "the service is busy; try again later",
        )
    }

    /// A bug or resource failure on our side; the detail goes to the log, not to the caller.
    pub fn internal(detail: &str) -> Self {
        tracing::error!(detail, "internal error");
        Self::new(
            "internal",
            "服务内部错误。",
            "internal error in the identity service",
        )
    }
}

/// The status each code is answered with (api.md: 4xx for the caller's fault, 5xx for ours).
fn status_of(code: &str) -> StatusCode {
    match code {
        "empty_image" | "invalid_request" | "challenge_invalid" => StatusCode::BAD_REQUEST,
        "unauthorized" => StatusCode::UNAUTHORIZED,
        "challenge_used" => StatusCode::CONFLICT,
        "challenge_expired" => StatusCode::GONE,
        "image_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "not_an_image" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "no_card" | "no_face" | "several_faces" => StatusCode::UNPROCESSABLE_ENTITY,
        "model_missing" | "timeout" | "busy" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        if !e.is_client_error() && e.code() != "model_missing" {
            return Self::internal(&e.to_string());
        }
        Self::new(e.code(), e.message_zh(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        (status, Json(self)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_errors_keep_their_code_and_get_a_status() {
        let e = ApiError::from(Error::NoCard);
        assert_eq!(
            (e.code, e.status),
            ("no_card", StatusCode::UNPROCESSABLE_ENTITY)
        );
        let e = ApiError::from(Error::TooLarge("1×1".into()));
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        // Our own failures never leak their detail to the caller.
        let e = ApiError::from(Error::Internal("secret path /x".into()));
        assert_eq!(e.code, "internal");
        assert!(!e.message_en.contains("/x"));
    }
}
