//! The terminal demo page (`/terminal/demo`, issue 6): hospital IT staff try the co-signing flow
//! in a browser — pick an enrolled doctor, create a request, show its QR code, watch it turn
//! "已签署" over the request's WebSocket.
//!
//! A browser cannot keep a client system's HMAC secret, so the page never holds one: it signs
//! in as an administrator (`/api/v1/auth/login`, bearer token in `sessionStorage`), and the
//! server creates requests for it under the built-in "demo terminal" app, which has no
//! permissions and is disabled for signed calls (its secret is never shown and would be
//! refused). Everything is off unless `[cosign] demo_terminal = true` (or
//! `COSIGN_DEMO_TERMINAL=true`, which `make run` sets): the routes then answer 404.
//! The page and its script are embedded in the binary; nothing is loaded from elsewhere.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::cosign::{CreateSignRequest, DocumentToSign};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use zeroize::Zeroizing;

use super::auth::Admin;
use super::{ApiFailure, ApiJson, AppState, RequestId};
use crate::audit::Event;
use crate::clock::now_ms;
use crate::signing::requests;

/// App id of the built-in demo terminal.
pub const DEMO_APP_ID: &str = "app_demo_terminal";
/// Longest demo document (characters).
const MAX_TEXT_CHARS: usize = 20_000;
/// Document types offered by the page (and accepted).
pub const DOC_TYPES: &[&str] = &["知情同意书", "门诊病历", "处方", "检查报告", "出院小结"];

const PAGE: &str = include_str!("demo/index.html");
const SCRIPT: &str = include_str!("demo/demo.js");
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data: blob:; connect-src 'self'; form-action 'none'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The demo routes (each answers 404 while the demo is disabled).
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/terminal/demo", get(page))
        .route("/terminal/demo/demo.js", get(script))
        .route("/api/v1/demo/staff", get(staff))
        .route("/api/v1/demo/sign-requests", post(create))
}

fn enabled(state: &AppState) -> Result<(), ApiFailure> {
    if state.config.cosign.demo_terminal {
        Ok(())
    } else {
        Err(ApiFailure::new(ErrorCode::NotFound))
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

async fn page(State(state): State<AppState>) -> Result<Response, ApiFailure> {
    enabled(&state)?;
    Ok(asset("text/html; charset=utf-8", PAGE))
}

async fn script(State(state): State<AppState>) -> Result<Response, ApiFailure> {
    enabled(&state)?;
    Ok(asset("text/javascript; charset=utf-8", SCRIPT))
}

/// An enrolled doctor the page may pick.
#[derive(Debug, Serialize)]
struct DemoStaff {
    staff_id: String,
    name: String,
    department: String,
}

/// `GET /api/v1/demo/staff`: staff members with an active phone (at most 500).
async fn staff(State(state): State<AppState>, admin: Admin) -> Result<Response, ApiFailure> {
    enabled(&state)?;
    super::cosign::require_manager(&admin)?;
    let rows = sqlx::query(
        "SELECT s.staff_id, s.name, s.department FROM staff s WHERE s.status = 'active' \
         AND EXISTS (SELECT 1 FROM devices d WHERE d.staff_id = s.staff_id AND d.status = 'active') \
         ORDER BY s.department, s.staff_id LIMIT 500",
    )
    .fetch_all(state.db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(DemoStaff {
            staff_id: r.try_get(0)?,
            name: r.try_get(1)?,
            department: r.try_get(2)?,
        });
    }
    Ok(Json(serde_json::json!({ "staff": out, "doc_types": DOC_TYPES })).into_response())
}

/// `POST /api/v1/demo/sign-requests` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoRequest {
    staff_id: String,
    doc_type: String,
    patient_id: String,
    text: String,
}

/// Registers the built-in demo app once: no permissions, disabled for signed calls; its
/// device secret is random and never shown.
async fn ensure_demo_app(state: &AppState) -> Result<(), ApiFailure> {
    let exists = sqlx::query("SELECT 1 FROM client_apps WHERE app_id = $1")
        .bind(DEMO_APP_ID)
        .fetch_optional(state.db.pool())
        .await?
        .is_some();
    if exists {
        return Ok(());
    }
    let device = state.keys.device();
    let secret = Zeroizing::new(
        device
            .random(32)
            .await
            .map_err(crate::signing::clients::dev)?,
    );
    let key = device
        .import_secret(&format!("client-app:{DEMO_APP_ID}"), secret)
        .await
        .map_err(crate::signing::clients::dev)?;
    let inserted = sqlx::query(
        "INSERT INTO client_apps (app_id, name, secret_key, permissions, rate_per_minute, \
         webhook_url, enabled, created_at) VALUES ($1, $2, $3, '', 1, NULL, 0, $4) \
         ON CONFLICT (app_id) DO NOTHING",
    )
    .bind(DEMO_APP_ID)
    .bind("演示终端 demo terminal")
    .bind(key.as_str())
    .bind(now_ms())
    .execute(state.db.pool())
    .await?;
    if inserted.rows_affected() == 0 {
        // Another instance registered it first.
        device
            .destroy(&key)
            .await
            .map_err(crate::signing::clients::dev)?;
    }
    Ok(())
}

fn invalid(zh: &str, en: &str) -> ApiFailure {
    ApiFailure::with(ErrorCode::InvalidArgument, zh.to_owned(), en.to_owned())
}

/// `POST /api/v1/demo/sign-requests`: a one-document request for one doctor, created under
/// the demo app (audited with the administrator as actor).
async fn create(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    ApiJson(req): ApiJson<DemoRequest>,
) -> Result<Response, ApiFailure> {
    enabled(&state)?;
    let actor = super::cosign::require_manager(&admin)?;
    if !DOC_TYPES.contains(&req.doc_type.as_str()) {
        return Err(invalid(
            "请选择列表中的文书类型。",
            "Choose a document type from the list.",
        ));
    }
    let text = req.text.trim();
    if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        return Err(invalid(
            "文档内容须为 1–20000 个字符。",
            "The document must have 1–20000 characters.",
        ));
    }
    ensure_demo_app(&state).await?;
    let patient = req.patient_id.trim();
    let create = CreateSignRequest {
        signers: vec![req.staff_id.clone()],
        ordered: false,
        documents: vec![DocumentToSign {
            name: format!("{}（演示）", req.doc_type),
            digest_sm3: None,
            content: Some(base64::engine::general_purpose::STANDARD.encode(text.as_bytes())),
            media_type: Some("text/plain; charset=utf-8".into()),
        }],
        title: format!("演示：{}", req.doc_type),
        patient_id: (!patient.is_empty()).then(|| patient.to_owned()),
        visit_id: None,
        doc_type: Some(req.doc_type.clone()),
        department: None,
        expires_in: Some(600),
        auto_sign: Some(false),
        // The demo page shows the SVG from this answer (demo.js).
        qr_image: Some(true),
    };
    let device = state.keys.device();
    let created = requests::create(
        &state.db,
        &*device,
        &state.config.public_url,
        state.config.cosign.notifier_url.as_deref(),
        requests::Creator::internal(DEMO_APP_ID),
        &create,
        now_ms(),
        None,
    )
    .await?;
    state.hub.notify(&created.request_id);
    state
        .audit
        .append(
            &state.db,
            now_ms(),
            &Event {
                actor: &actor,
                action: "cosign.demo.request",
                target: &created.request_id,
                outcome: "ok",
                detail: serde_json::json!({ "signer": req.staff_id, "doc_type": req.doc_type }),
                request_id: &rid.0,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}
