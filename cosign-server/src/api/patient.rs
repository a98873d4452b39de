//! Patient signing routes (issue 8, `docs/api/patient.md`): terminals create and follow tasks
//! with HMAC-SM3-signed calls; the H5 page calls with the link token (the capability) and,
//! after SMS verification, the page session. Logic lives in `crate::patient`.

use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::identity::{FacePhoto, IdCardPhoto, LivenessFrames};
use cosign_proto::v1::patient::{
    CreatePatientTask, H5Session, HEADER_H5_SESSION, ProxyDetails, SmsSent, Submission, VerifyCode,
};
use tower_http::limit::RequestBodyLimitLayer;

use super::cosign::{AppCall, audit_outcome, parse, relay};
use super::{ApiFailure, ApiJson, AppState, RequestId};
use crate::clock::now_ms;
use crate::patient::tasks::{self, CodeOutcome, TaskRow};

/// Largest page submission (strokes, the signature PNG and copy characters).
pub const SUBMIT_LIMIT: usize = 4 * 1024 * 1024;
/// Largest ID card or selfie call: one image in base64 plus a portrait ticket.
pub const IDENTITY_PHOTO_LIMIT: usize = 16 * 1024 * 1024;
/// Largest liveness call: up to 60 frames in base64 plus a portrait ticket.
pub const IDENTITY_FRAMES_LIMIT: usize = 40 * 1024 * 1024;

/// The patient routes; task creation carries the PDF (base64) so its limit follows
/// `documents.max_upload`.
pub fn routes(max_upload: usize) -> axum::Router<AppState> {
    let create_limit = max_upload / 3 * 4 + 64 * 1024;
    let create = axum::Router::new()
        .route("/api/v1/patient-tasks", post(create))
        .layer(DefaultBodyLimit::max(create_limit))
        .layer(RequestBodyLimitLayer::new(create_limit));
    let submit = axum::Router::new()
        .route("/api/v1/h5/tasks/{token}/submit", post(submit))
        .layer(DefaultBodyLimit::max(SUBMIT_LIMIT))
        .layer(RequestBodyLimitLayer::new(SUBMIT_LIMIT));
    let small = axum::Router::new()
        .route("/api/v1/patient-tasks/{id}", get(get_task))
        .route("/api/v1/patient-tasks/{id}/qr.svg", get(qr_svg))
        .route("/api/v1/patient-tasks/{id}/signed.pdf", get(signed_pdf))
        .route("/api/v1/patient-tasks/{id}/cancel", post(cancel))
        .route("/api/v1/patient-tasks/{id}/events", get(watch))
        .route("/api/v1/h5/tasks/{token}", get(page_task))
        .route("/api/v1/h5/tasks/{token}/sms", post(sms))
        .route("/api/v1/h5/tasks/{token}/verify", post(verify))
        .route("/api/v1/h5/tasks/{token}/pages/{file}", get(page_image))
        .route("/api/v1/h5/tasks/{token}/proxy", post(proxy))
        .route(
            "/api/v1/h5/tasks/{token}/identity/liveness/challenge",
            post(liveness_challenge),
        )
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(RequestBodyLimitLayer::new(64 * 1024));
    let photos = axum::Router::new()
        .route("/api/v1/h5/tasks/{token}/identity/id-card", post(id_card))
        .route("/api/v1/h5/tasks/{token}/identity/face", post(face))
        .layer(DefaultBodyLimit::max(IDENTITY_PHOTO_LIMIT))
        .layer(RequestBodyLimitLayer::new(IDENTITY_PHOTO_LIMIT));
    let frames = axum::Router::new()
        .route("/api/v1/h5/tasks/{token}/identity/liveness", post(liveness))
        .layer(DefaultBodyLimit::max(IDENTITY_FRAMES_LIMIT))
        .layer(RequestBodyLimitLayer::new(IDENTITY_FRAMES_LIMIT));
    create
        .merge(submit)
        .merge(small)
        .merge(photos)
        .merge(frames)
}

fn patient_actor(task: &TaskRow) -> String {
    format!("patient:{}", task.task_id)
}

async fn audit(
    state: &AppState,
    actor: &str,
    action: &str,
    target: &str,
    outcome: &str,
    rid: &str,
    detail: serde_json::Value,
) -> Result<(), ApiFailure> {
    audit_outcome(state, actor, action, target, outcome, rid, detail).await
}

/// Audits a refusal (`denied`) with its code and passes the error on.
async fn denied<T>(
    state: &AppState,
    task: &TaskRow,
    action: &str,
    rid: &str,
    e: ApiFailure,
) -> Result<T, ApiFailure> {
    audit(
        state,
        &patient_actor(task),
        action,
        &task.task_id,
        "denied",
        rid,
        serde_json::json!({ "code": e.code() }),
    )
    .await?;
    Err(e)
}

// ---------------------------------------------------------------------------------------
// terminal

async fn create(
    State(state): State<AppState>,
    rid: RequestId,
    call: AppCall,
) -> Result<impl IntoResponse, ApiFailure> {
    call.app.require("patient_task:create")?;
    let req: CreatePatientTask = parse(&call.body)?;
    let (created, document_id) = tasks::create(&state, &call.app.app_id, &req, now_ms()).await?;
    audit(
        &state,
        &format!("app:{}", call.app.app_id),
        "patient.task.create",
        &created.task_id,
        "ok",
        &rid.0,
        serde_json::json!({
            "document_id": document_id,
            "sign_mode": req.sign_mode.as_str(),
            "signer_role": req.signer.role.as_str(),
            "delivery": req.delivery.as_str(),
        }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn own_task(state: &AppState, call: &AppCall, id: &str) -> Result<TaskRow, ApiFailure> {
    call.app.require("patient_task:read")?;
    match tasks::load(&state.db, id).await? {
        // Another app's task is reported as absent, not forbidden.
        Some(t) if t.app_id == call.app.app_id => Ok(t),
        _ => Err(ApiFailure::new(ErrorCode::NotFound)),
    }
}

async fn get_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
    call: AppCall,
) -> Result<impl IntoResponse, ApiFailure> {
    let task = own_task(&state, &call, &id).await?;
    Ok(Json(tasks::view(&task, now_ms())))
}

async fn qr_svg(
    State(state): State<AppState>,
    Path(id): Path<String>,
    call: AppCall,
) -> Result<Response, ApiFailure> {
    let task = own_task(&state, &call, &id).await?;
    let link = tasks::link_of(&state, &task.task_id).await?;
    let svg = crate::signing::requests::qr_svg(&link)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg,
    )
        .into_response())
}

async fn signed_pdf(
    State(state): State<AppState>,
    Path(id): Path<String>,
    call: AppCall,
) -> Result<Response, ApiFailure> {
    let task = own_task(&state, &call, &id).await?;
    let Some(version) = task.signed_version.filter(|_| task.status == "signed") else {
        return Err(ApiFailure::with(
            ErrorCode::NotFound,
            "文书尚未签署。",
            "The document is not signed yet.",
        ));
    };
    let (_, pdf) = state
        .documents
        .version_bytes(&state.db, &task.document_id, Some(version))
        .await
        .map_err(crate::documents::http::failure)?;
    Ok(([(header::CONTENT_TYPE, "application/pdf")], pdf).into_response())
}

async fn cancel(
    State(state): State<AppState>,
    rid: RequestId,
    Path(id): Path<String>,
    call: AppCall,
) -> Result<impl IntoResponse, ApiFailure> {
    call.app.require("patient_task:create")?;
    let task = own_task(&state, &call, &id).await?;
    tasks::cancel(&state, &task, now_ms()).await?;
    state.hub.announce(&state.db, &task.task_id).await;
    audit(
        &state,
        &format!("app:{}", call.app.app_id),
        "patient.task.cancel",
        &task.task_id,
        "ok",
        &rid.0,
        serde_json::json!({}),
    )
    .await?;
    let task = own_task(&state, &call, &id).await?;
    Ok(Json(tasks::view(&task, now_ms())))
}

/// `GET /api/v1/patient-tasks/{id}/events` (HMAC-signed upgrade): a WebSocket that sends
/// `{"kind": "patient_task", "task": <view>}` now and after every change (hub announcements,
/// polling as a fallback), and closes once the task is signed, expired, cancelled or locked.
async fn watch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ws: axum::extract::ws::WebSocketUpgrade,
    call: AppCall,
) -> Result<Response, ApiFailure> {
    let task = own_task(&state, &call, &id).await?;
    Ok(ws.on_upgrade(move |socket| async move {
        let id = task.task_id;
        relay(&state, &id, socket, || async {
            let task = tasks::load(&state.db, &id).await.ok()??;
            let view = tasks::view(&task, now_ms());
            let finished = !matches!(view.status.as_str(), "pending" | "verified" | "signing");
            let event =
                serde_json::to_string(&serde_json::json!({ "kind": "patient_task", "task": view }))
                    .ok()?;
            Some((event, finished))
        })
        .await;
    }))
}

// ---------------------------------------------------------------------------------------
// H5 page

fn session(headers: &HeaderMap) -> Option<&str> {
    headers.get(HEADER_H5_SESSION).and_then(|v| v.to_str().ok())
}

async fn page_task(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<impl IntoResponse, ApiFailure> {
    let now = now_ms();
    let task = tasks::open_link(&state, &token, now, false).await?;
    Ok(Json(tasks::page_view(&state, &task, now)))
}

async fn sms(
    State(state): State<AppState>,
    rid: RequestId,
    Path(token): Path<String>,
) -> Result<impl IntoResponse, ApiFailure> {
    let now = now_ms();
    let task = tasks::open_link(&state, &token, now, false).await?;
    match tasks::send_code(&state, &task, now).await {
        Ok(resend_after_s) => {
            audit(
                &state,
                &patient_actor(&task),
                "patient.sms.send",
                &task.task_id,
                "ok",
                &rid.0,
                serde_json::json!({ "phone": cosign_proto::v1::patient::mask_phone(&task.phone) }),
            )
            .await?;
            Ok(Json(SmsSent { resend_after_s }))
        }
        Err(e) => denied(&state, &task, "patient.sms.send", &rid.0, e).await,
    }
}

async fn verify(
    State(state): State<AppState>,
    rid: RequestId,
    Path(token): Path<String>,
    ApiJson(body): ApiJson<VerifyCode>,
) -> Result<Response, ApiFailure> {
    let now = now_ms();
    let task = tasks::open_link(&state, &token, now, false).await?;
    let outcome = tasks::verify_code(&state, &task, body.code.trim(), now).await?;
    let (result, detail) = match &outcome {
        CodeOutcome::Verified(_) => ("ok", serde_json::json!({})),
        CodeOutcome::Wrong(left) => ("denied", serde_json::json!({ "attempts_left": left })),
        CodeOutcome::Locked => ("denied", serde_json::json!({ "locked": true })),
        CodeOutcome::Expired => ("denied", serde_json::json!({ "expired": true })),
    };
    audit(
        &state,
        &patient_actor(&task),
        "patient.sms.verify",
        &task.task_id,
        result,
        &rid.0,
        detail,
    )
    .await?;
    if matches!(outcome, CodeOutcome::Verified(_) | CodeOutcome::Locked) {
        state.hub.announce(&state.db, &task.task_id).await;
    }
    match outcome {
        CodeOutcome::Verified(session) => Ok(Json(H5Session {
            session: session.to_string(),
        })
        .into_response()),
        CodeOutcome::Wrong(left) => {
            // The error body plus the attempts left, so the page can say how many remain.
            let body = serde_json::json!({
                "code": ErrorCode::OtpInvalid,
                "message": format!("验证码错误，还可尝试 {left} 次。"),
                "message_en": format!("Wrong code; {left} attempts left."),
                "attempts_left": left,
            });
            Ok((StatusCode::BAD_REQUEST, Json(body)).into_response())
        }
        CodeOutcome::Locked => Err(ApiFailure::new(ErrorCode::OtpLocked)),
        CodeOutcome::Expired => Err(ApiFailure::with(
            ErrorCode::OtpInvalid,
            "验证码已过期或尚未发送，请重新获取验证码。",
            "The code has expired or was not sent; ask for a new one.",
        )),
    }
}

async fn page_image(
    State(state): State<AppState>,
    Path((token, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let now = now_ms();
    let task = tasks::open_link(&state, &token, now, false).await?;
    tasks::check_session(&task, session(&headers))?;
    let n: u32 = file
        .strip_suffix(".png")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    let png = tasks::page_png(&state, &task, n).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        png,
    )
        .into_response())
}

async fn proxy(
    State(state): State<AppState>,
    rid: RequestId,
    Path(token): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ProxyDetails>,
) -> Result<impl IntoResponse, ApiFailure> {
    let now = now_ms();
    let task = tasks::open_link(&state, &token, now, false).await?;
    tasks::check_session(&task, session(&headers))?;
    if let Err(e) = tasks::set_proxy(&state, &task, &body, now).await {
        return denied(&state, &task, "patient.proxy", &rid.0, e).await;
    }
    audit(
        &state,
        &patient_actor(&task),
        "patient.proxy",
        &task.task_id,
        "ok",
        &rid.0,
        serde_json::json!({ "relationship": body.relationship }),
    )
    .await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

async fn submit(
    State(state): State<AppState>,
    rid: RequestId,
    Path(token): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Submission>,
) -> Result<impl IntoResponse, ApiFailure> {
    let now = now_ms();
    let task = tasks::open_link(&state, &token, now, true).await?;
    tasks::check_session(&task, session(&headers))?;
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(512)
        .collect::<String>();
    match crate::patient::submit::submit(&state, &task, &body, &agent, &rid.0).await {
        Ok(done) => Ok(Json(done)),
        Err(e) => denied(&state, &task, "patient.submit", &rid.0, e).await,
    }
}

// ---------------------------------------------------------------------------------------
// identity checks (issue 10): ID card, face, liveness through the `liveness` service

/// The task behind the link, with a session, if it asks for `method` (`id_ocr` for the ID
/// card, which face and liveness also need).
async fn identity_task(
    state: &AppState,
    token: &str,
    headers: &HeaderMap,
    method: &str,
) -> Result<TaskRow, ApiFailure> {
    let task = tasks::open_link(state, token, now_ms(), false).await?;
    tasks::check_session(&task, session(headers))?;
    let asked = cosign_proto::v1::identity::camera_checks_for_task(&task.identity)
        .iter()
        .any(|m| m.as_str() == method);
    if !asked {
        return Err(ApiFailure::with(
            ErrorCode::NotFound,
            "该签署任务不需要此项身份核验。",
            "This task does not ask for this identity check.",
        ));
    }
    Ok(task)
}

async fn id_card(
    State(state): State<AppState>,
    rid: RequestId,
    Path(token): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<IdCardPhoto>,
) -> Result<impl IntoResponse, ApiFailure> {
    let task = identity_task(&state, &token, &headers, "id_card").await?;
    let subject = crate::patient::identity::subject(&task);
    let expected = crate::patient::identity::expected(&state, &task).await?;
    let done =
        crate::identity::checks::id_card(&state, &subject, &expected, &body.image, &rid.0).await?;
    Ok(Json(done))
}

async fn face(
    State(state): State<AppState>,
    rid: RequestId,
    Path(token): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<FacePhoto>,
) -> Result<impl IntoResponse, ApiFailure> {
    let task = identity_task(&state, &token, &headers, "face").await?;
    let subject = crate::patient::identity::subject(&task);
    let done =
        crate::identity::checks::face(&state, &subject, &body.image, &body.portrait_ticket, &rid.0)
            .await?;
    Ok(Json(done))
}

async fn liveness_challenge(
    State(state): State<AppState>,
    rid: RequestId,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiFailure> {
    let task = identity_task(&state, &token, &headers, "liveness").await?;
    let subject = crate::patient::identity::subject(&task);
    Ok(Json(
        crate::identity::checks::challenge(&state, &subject, &rid.0).await?,
    ))
}

async fn liveness(
    State(state): State<AppState>,
    rid: RequestId,
    Path(token): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LivenessFrames>,
) -> Result<impl IntoResponse, ApiFailure> {
    let task = identity_task(&state, &token, &headers, "liveness").await?;
    let subject = crate::patient::identity::subject(&task);
    let done = crate::identity::checks::liveness(
        &state,
        &subject,
        &body.challenge,
        &body.steps,
        &body.portrait_ticket,
        &rid.0,
    )
    .await?;
    Ok(Json(done))
}
