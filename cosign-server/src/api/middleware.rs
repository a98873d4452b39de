//! Cross-cutting request handling: JSON for every error, metrics, tracing spans, panics.

use std::any::Any;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Response, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use cosign_proto::v1::ErrorCode;

use super::AppState;
use super::error::response_for;

/// Replaces any error response that is not already JSON (axum's 405, the body-limit 413, the
/// timeout 408, a panic's 500) with the JSON error for its status, keeping headers like `Allow`.
pub async fn json_errors(req: Request, next: Next) -> axum::response::Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    // The one deliberate HTML error: /h5/ explaining that the page is not built.
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json || is_page {
        return response;
    }
    let code = code_for_status(status);
    let (mut parts, _) = response.into_parts();
    let mut replacement = response_for(code);
    // Keep informative headers (Allow, Retry-After, x-request-id); the body and its type change.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    *replacement.headers_mut() = parts.headers;
    *replacement.status_mut() = status;
    replacement
}

fn code_for_status(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::REQUEST_TIMEOUT => ErrorCode::Timeout,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
        s if s.is_client_error() => ErrorCode::InvalidArgument,
        _ => ErrorCode::Internal,
    }
}

/// Counts requests and latencies by matched route (unmatched paths share one label).
pub async fn track_metrics(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    state.metrics.record(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The tracing span of a request: method, matched route and request id; never headers or bodies.
pub fn make_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path(), MatchedPath::as_str);
    tracing::info_span!("http", method = %req.method(), route = %route, request_id = %request_id)
}

/// A handler panicked: log it and answer 500 JSON; the process keeps serving.
#[allow(clippy::needless_pass_by_value)] // the signature CatchPanicLayer requires
pub fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response<axum::body::Body> {
    let detail = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = %detail, "handler panicked");
    response_for(ErrorCode::Internal).into_response()
}
