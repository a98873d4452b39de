//! Health, readiness, metrics, version and the JSON 404.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use cosign_proto::v1::{ErrorCode, HealthStatus, VersionInfo};

use super::{ApiFailure, AppState};
use crate::store::MigrationState;

/// `GET /healthz`: the process is up (no dependencies checked).
pub async fn healthz() -> Json<HealthStatus> {
    Json(HealthStatus {
        status: "ok".into(),
        checks: vec![],
    })
}

/// `GET /readyz`: the database answers and its schema is current; 503 otherwise.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<HealthStatus>) {
    let (status, checks) = match state.db.readiness().await {
        Ok(MigrationState::Current) => (
            StatusCode::OK,
            vec![
                ("database".into(), "ok".into()),
                ("migrations".into(), "current".into()),
            ],
        ),
        Ok(MigrationState::Pending(v)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            vec![
                ("database".into(), "ok".into()),
                ("migrations".into(), format!("pending {v:?}")),
            ],
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                vec![("database".into(), "unavailable".into())],
            )
        }
    };
    let word = if status == StatusCode::OK {
        "ok"
    } else {
        "unavailable"
    };
    (
        status,
        Json(HealthStatus {
            status: word.into(),
            checks,
        }),
    )
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// `GET /api/v1/version`.
pub async fn version(State(state): State<AppState>) -> Json<VersionInfo> {
    Json(VersionInfo {
        product: "Yiqian 医签 cosign-server".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        database: state.db.kind().name().into(),
    })
}

/// Any unknown path.
pub async fn not_found() -> ApiFailure {
    ApiFailure::new(ErrorCode::NotFound)
}
