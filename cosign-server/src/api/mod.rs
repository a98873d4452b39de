//! The HTTP surface. Handlers are thin: extract, call the store or a service, map errors through
//! [`ApiFailure`] (the one place errors become HTTP responses).

mod auth;
mod autosign;
mod cosign;
mod demo;
mod error;
mod extract;
mod middleware;
mod pad;
mod patient;
mod pki;
mod static_h5;
mod system;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use auth::Admin;
pub(crate) use cosign::audit_outcome;
pub use error::ApiFailure;
pub use extract::{ApiJson, RequestId};
pub(crate) use pki::{external_failure, pki_failure};

use crate::audit::AuditLog;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Db;

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The audit log writer.
    pub audit: Arc<AuditLog>,
    /// Runtime configuration.
    pub config: Arc<Config>,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
    /// The crypto device.
    pub keys: crate::keys::Keys,
    /// CA, TSA and OCSP services.
    pub pki: Arc<crate::pki::Pki>,
    /// Document archive and signing (issue 7).
    pub documents: Arc<crate::documents::Documents>,
    /// Client systems and their rate limits (issue 6).
    pub clients: Arc<crate::signing::clients::Clients>,
    /// Signing-request announcements to terminal WebSockets (issue 6).
    pub hub: crate::hub::Hub,
    /// The SMS gateway (`[sms] url`), if configured.
    pub sms: Option<Arc<dyn crate::identity::sms::SmsGateway>>,
    /// Patient signing: the SMS gateway (issue 8).
    pub patient: crate::patient::Patient,
    /// The identity service (`[identity] liveness_url`), if configured (issue 10).
    pub vision: Option<Arc<dyn crate::identity::vision::IdentityVision>>,
}

/// Builds the router with all middleware.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit;
    let timeout = state.config.request_timeout;
    let upload_limit = state.config.documents.max_upload;
    let routes = Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route("/api/v1/version", get(system::version))
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/auth/me", get(auth::me))
        .route("/api/v1/auth/password", post(auth::change_password))
        .route("/api/v1/audit/verify", get(auth::audit_verify))
        .merge(pki::routes())
        .merge(cosign::routes())
        .merge(demo::routes())
        .merge(autosign::routes())
        // The body limit wraps the routes above only; routes merged after it set their own.
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .merge(crate::documents::http::routes(upload_limit))
        .merge(patient::routes(upload_limit))
        .merge(pad::routes())
        .merge(cosign::identity_routes())
        .merge(static_h5::routes())
        .fallback(system::not_found);

    // Each `Router::layer` call wraps the previous result, so the last one is outermost:
    // request id, trace, metrics, error normalisation, then the guards whose bare responses
    // (panic, timeout, size) the normaliser turns into JSON errors.
    routes
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn(middleware::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::track_metrics,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(middleware::make_span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
        ]))
        .with_state(state)
}
