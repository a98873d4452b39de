//! Extractors that fail with our JSON errors instead of axum's plain-text rejections.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use cosign_proto::v1::ErrorCode;
use serde::de::DeserializeOwned;

use super::ApiFailure;

/// JSON body whose rejections map to `MALFORMED_JSON`, `UNSUPPORTED_MEDIA_TYPE` or
/// `PAYLOAD_TOO_LARGE`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiFailure {
    match rejection.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiFailure::new(ErrorCode::UnsupportedMediaType),
        StatusCode::PAYLOAD_TOO_LARGE => ApiFailure::new(ErrorCode::PayloadTooLarge),
        _ => {
            // serde's message names the field and position; it never contains server state.
            let detail = rejection.body_text();
            ApiFailure::with(
                ErrorCode::MalformedJson,
                format!("请求内容不是有效的 JSON 或字段不符合接口说明：{detail}"),
                format!("Malformed JSON body: {detail}"),
            )
        }
    }
}

/// The request id set by the middleware (`x-request-id`), for audit entries.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Ok(Self(id.chars().take(64).collect()))
    }
}
