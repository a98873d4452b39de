//! Bedside-pad routes (issue 8, `docs/api/patient.md` §5): the admin API that registers and
//! revokes pads, the pad's enrolment, and `POST /api/v1/pad/call`, which opens an envelope,
//! dispatches the inner request in process to an allow-listed H5 route (the very router the
//! page uses directly) or to the pad's own queue/open calls, and seals the whole answer.
//! Logic lives in `crate::pad`.

use std::sync::Mutex;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::pad::{
    ChannelKeyRotated, CreatePad, PadEnrol, PadHandoff, PadInfo, PadInnerAnswer, PadInnerRequest,
    PadList, PadOpened, PadQueue, PadQueueItem, RevokePad,
};
use cosign_proto::v1::patient::{HEADER_H5_SESSION, mask_name};
use tower::ServiceExt as _;
use tower_http::limit::RequestBodyLimitLayer;
use zeroize::Zeroizing;

use super::auth::Admin;
use super::cosign::audit_outcome;
use super::{ApiFailure, ApiJson, AppState, RequestId};
use crate::clock::{now_ms, rfc3339};
use crate::pad::{self, PadRow, Refused};
use crate::patient::tasks;

/// Largest envelope: the largest ciphertext plus the header and signature.
pub const CALL_LIMIT: usize = pad_channel::MAX_CT + 4096;
/// Largest inner answer body read back from a route (page images are well below).
const ANSWER_LIMIT: usize = 4 * 1024 * 1024;
/// Refused envelopes and enrolments audited per minute (the rest only logged), so junk cannot
/// flood the audit log.
const REFUSALS_AUDITED_PER_MINUTE: u32 = 60;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The pad routes.
pub fn routes() -> axum::Router<AppState> {
    let call = axum::Router::new()
        .route("/api/v1/pad/call", post(call))
        .layer(DefaultBodyLimit::max(CALL_LIMIT))
        .layer(RequestBodyLimitLayer::new(CALL_LIMIT));
    let small = axum::Router::new()
        .route("/api/v1/pads", post(create).get(list))
        .route("/api/v1/pads/{id}/code", post(new_code))
        .route("/api/v1/pads/{id}/revoke", post(revoke))
        .route("/api/v1/pads/channel-key/rotate", post(rotate_channel_key))
        .route("/api/v1/pad/enrol", post(enrol))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(RequestBodyLimitLayer::new(16 * 1024));
    call.merge(small)
}

// ---------------------------------------------------------------------------------------
// admin

fn admin_actor(admin: &Admin) -> String {
    format!("admin:{}", admin.0.username())
}

async fn own_pad(state: &AppState, id: &str) -> Result<PadRow, ApiFailure> {
    pad::load(&state.db, id).await?.ok_or_else(|| {
        ApiFailure::with(
            ErrorCode::NotFound,
            "没有该床旁平板。",
            "No such bedside pad.",
        )
    })
}

async fn create(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    ApiJson(req): ApiJson<CreatePad>,
) -> Result<impl IntoResponse, ApiFailure> {
    super::pki::require_issuer_role(&admin)?;
    let actor = admin_actor(&admin);
    let created = pad::create(&state, &req.name, &req.ward, &actor, now_ms()).await?;
    audit_outcome(
        &state,
        &actor,
        "pad.create",
        &created.pad_id,
        "ok",
        &rid.0,
        serde_json::json!({ "name": created.name, "ward": created.ward }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// A new channel key (a suspected leak, or the hospital's key-change schedule); audited.
async fn rotate_channel_key(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
) -> Result<Json<ChannelKeyRotated>, ApiFailure> {
    super::pki::require_issuer_role(&admin)?;
    let device = state.keys.device();
    let (public, until) = pad::rotate_channel_key(&state.db, &*device, now_ms()).await?;
    let public = hex::encode(public);
    audit_outcome(
        &state,
        &admin_actor(&admin),
        "pad.channel.rotate",
        "pad:channel",
        "ok",
        &rid.0,
        serde_json::json!({ "channel_public_key": public, "previous_accepted_until": until }),
    )
    .await?;
    Ok(Json(ChannelKeyRotated {
        channel_public_key: public,
        previous_accepted_until: rfc3339(until),
    }))
}

async fn list(State(state): State<AppState>, _admin: Admin) -> Result<Json<PadList>, ApiFailure> {
    let pads = pad::list(&state.db).await?;
    Ok(Json(PadList {
        pads: pads.iter().map(pad::view).collect(),
    }))
}

async fn new_code(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiFailure> {
    super::pki::require_issuer_role(&admin)?;
    let p = own_pad(&state, &id).await?;
    let code = pad::renew_code(&state, &p, now_ms()).await?;
    audit_outcome(
        &state,
        &admin_actor(&admin),
        "pad.code",
        &p.pad_id,
        "ok",
        &rid.0,
        serde_json::json!({}),
    )
    .await?;
    Ok(Json(code))
}

async fn revoke(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RevokePad>,
) -> Result<impl IntoResponse, ApiFailure> {
    use crate::pki::{reason_code, reason_name};
    super::pki::require_issuer_role(&admin)?;
    let reason_text = req
        .reason
        .unwrap_or_else(|| "cessationOfOperation".to_owned());
    let reason = reason_code(&reason_text).ok_or_else(|| {
        ApiFailure::with(
            ErrorCode::InvalidArgument,
            "吊销原因无效，可用 RFC 5280 原因名，如 keyCompromise、cessationOfOperation。",
            "Unknown revocation reason; use an RFC 5280 name such as keyCompromise or cessationOfOperation.",
        )
    })?;
    let p = own_pad(&state, &id).await?;
    let now = pad::revoke(&state, &p, reason, now_ms()).await?;
    audit_outcome(
        &state,
        &admin_actor(&admin),
        "pad.revoke",
        &p.pad_id,
        "ok",
        &rid.0,
        serde_json::json!({
            "certificate_serial": now.cert_serial,
            "reason": reason_name(reason),
            "was": p.status,
        }),
    )
    .await?;
    Ok(Json(pad::view(&now)))
}

// ---------------------------------------------------------------------------------------
// enrolment

async fn enrol(
    State(state): State<AppState>,
    rid: RequestId,
    ApiJson(req): ApiJson<PadEnrol>,
) -> Result<impl IntoResponse, ApiFailure> {
    let (pad_id, outcome) = pad::enrol(&state, &req, &rid.0, now_ms()).await;
    let target = pad_id.unwrap_or_default();
    let actor = if target.is_empty() {
        "pad:unknown".to_owned()
    } else {
        format!("pad:{target}")
    };
    match outcome {
        Ok(done) => {
            audit_outcome(
                &state,
                &actor,
                "pad.enrol",
                &target,
                "ok",
                &rid.0,
                serde_json::json!({ "certificate_serial": done.certificate_serial }),
            )
            .await?;
            Ok((StatusCode::CREATED, Json(done)))
        }
        Err(e) => {
            // Unauthenticated: refusals share the envelope refusals' audit budget.
            if audit_budget(now_ms()) {
                audit_outcome(
                    &state,
                    &actor,
                    "pad.enrol",
                    &target,
                    "denied",
                    &rid.0,
                    serde_json::json!({ "code": e.code() }),
                )
                .await?;
            } else {
                tracing::warn!(code = ?e.code(), "pad enrolment refused (audit budget spent)");
            }
            Err(e)
        }
    }
}

// ---------------------------------------------------------------------------------------
// the channel

/// Whether this refusal may still be audited this minute (process-wide counter).
fn audit_budget(now_ms: i64) -> bool {
    static WINDOW: Mutex<(i64, u32)> = Mutex::new((0, 0));
    let minute = now_ms / 60_000;
    let Ok(mut w) = WINDOW.lock() else {
        return false;
    };
    if w.0 != minute {
        *w = (minute, 0);
    }
    w.1 = w.1.saturating_add(1);
    w.1 <= REFUSALS_AUDITED_PER_MINUTE
}

async fn refused(state: &AppState, rid: &str, r: Refused, now: i64) -> Response {
    let actor = format!("pad:{}", r.pad_id.as_deref().unwrap_or("unknown"));
    if audit_budget(now) {
        let detail = serde_json::json!({ "code": r.code, "serial": r.serial });
        let target = r.pad_id.clone().unwrap_or_default();
        if let Err(e) =
            audit_outcome(state, &actor, "pad.call", &target, "denied", rid, detail).await
        {
            return e.into_response();
        }
    } else {
        tracing::warn!(code = ?r.code, pad = %actor, "pad envelope refused (audit budget spent)");
    }
    let e = cosign_proto::v1::ApiError::new(r.code);
    let status = StatusCode::from_u16(r.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut body = serde_json::to_value(&e).unwrap_or_default();
    if r.code == ErrorCode::PadClock {
        // The page can say how far off it is.
        body["server_time_ms"] = serde_json::json!(now);
    }
    (status, Json(body)).into_response()
}

async fn call(
    State(state): State<AppState>,
    rid: RequestId,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = now_ms();
    let accepted = match pad::accept(&state, &body, now).await {
        Ok(Ok(a)) => a,
        Ok(Err(r)) => return refused(&state, &rid.0, r, now).await,
        Err(e) => return e.into_response(),
    };
    let outer_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let agent = format!("yiqian-pad/{} {outer_agent}", accepted.pad.pad_id);
    let answer = match serde_json::from_slice::<PadInnerRequest>(&accepted.plain) {
        Ok(inner) => dispatch(&state, &accepted.pad, inner, &rid.0, &agent).await,
        Err(e) => ApiFailure::with(
            ErrorCode::MalformedJson,
            format!("平板内层请求不是有效的 JSON：{e}"),
            format!("The pad's inner request is not valid JSON: {e}"),
        )
        .into_response(),
    };
    let mut inner = inner_answer(answer).await;
    inner.channel_public_key = accepted.switch_to.as_deref().map(hex::encode);
    let plain = Zeroizing::new(serde_json::to_vec(&inner).unwrap_or_default());
    match pad_channel::Response::seal(&accepted.key, accepted.nonce, &plain) {
        Ok(sealed) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            sealed.to_bytes(),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "could not seal a pad answer");
            ApiFailure::new(ErrorCode::Internal).into_response()
        }
    }
}

/// A route's answer as the pad sees it: status, content type, the exact body bytes.
async fn inner_answer(resp: Response) -> PadInnerAnswer {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    match axum::body::to_bytes(resp.into_body(), ANSWER_LIMIT).await {
        Ok(bytes) => PadInnerAnswer {
            status,
            content_type,
            body_base64: B64.encode(&bytes),
            channel_public_key: None,
        },
        Err(e) => {
            tracing::error!(error = %e, "a pad answer body could not be read");
            let body = serde_json::to_vec(&cosign_proto::v1::ApiError::new(ErrorCode::Internal))
                .unwrap_or_default();
            PadInnerAnswer {
                status: 500,
                content_type: "application/json".into(),
                body_base64: B64.encode(body),
                channel_public_key: None,
            }
        }
    }
}

/// What an inner path may reach.
#[derive(Debug, PartialEq, Eq)]
enum Allowed<'a> {
    /// `GET /pad/queue`.
    Queue,
    /// `POST /pad/tasks/{id}/open`.
    Open(&'a str),
    /// `POST /pad/tasks/{id}/handoff`.
    Handoff(&'a str),
    /// An H5 page route of the task with this link token.
    Page(&'a str),
}

/// The allow-list. Paths are plain (letters, digits, `-_./`), without query, `..` or empty
/// segments, so what is checked here is what the router matches.
fn allowed<'a>(method: &Method, path: &'a str) -> Option<Allowed<'a>> {
    let plain = path.len() <= 256
        && path.starts_with('/')
        && path[1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if !plain {
        return None;
    }
    let segs: Vec<&str> = path[1..].split('/').collect();
    if segs.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return None;
    }
    let get = method == Method::GET;
    let post = method == Method::POST;
    match segs.as_slice() {
        ["pad", "queue"] if get => Some(Allowed::Queue),
        ["pad", "tasks", id, "open"] if post => Some(Allowed::Open(id)),
        ["pad", "tasks", id, "handoff"] if post => Some(Allowed::Handoff(id)),
        ["api", "v1", "h5", "tasks", token, rest @ ..] => {
            let ok = match rest {
                [] => get,
                // The same `{n}.png` the route parses (case-sensitive there too).
                ["pages", file] => get && file.strip_suffix(".png").is_some(),
                // The identity checks are helper idclient's routes (404 until they exist).
                ["sms" | "verify" | "proxy" | "submit"]
                | ["identity", "id-card" | "face" | "liveness"]
                | ["identity", "liveness", "challenge"] => post,
                _ => false,
            };
            ok.then_some(Allowed::Page(token))
        }
        _ => None,
    }
}

fn forbidden() -> Response {
    ApiFailure::with(
        ErrorCode::Forbidden,
        "床旁平板通道不允许访问该接口。",
        "The bedside-pad channel does not allow this path.",
    )
    .into_response()
}

async fn dispatch(
    state: &AppState,
    pad: &PadRow,
    inner: PadInnerRequest,
    rid: &str,
    agent: &str,
) -> Response {
    let method = match inner.method.as_str() {
        "GET" => Method::GET,
        "POST" => Method::POST,
        _ => return forbidden(),
    };
    let Some(target) = allowed(&method, &inner.path) else {
        return forbidden();
    };
    let result = match target {
        Allowed::Queue => queue(state, pad).await.map(IntoResponse::into_response),
        Allowed::Open(task_id) => open(state, pad, task_id, rid)
            .await
            .map(IntoResponse::into_response),
        Allowed::Handoff(task_id) => handoff(state, pad, task_id, rid)
            .await
            .map(IntoResponse::into_response),
        Allowed::Page(token) => page(state, pad, &method, token, &inner, rid, agent).await,
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The H5 routes, exactly as mounted for the page (same handlers, limits and error bodies).
fn h5_router(state: &AppState) -> axum::Router {
    super::patient::routes(state.config.documents.max_upload)
        .fallback(super::system::not_found)
        .layer(axum::middleware::from_fn(super::middleware::json_errors))
        .with_state(state.clone())
}

async fn page(
    state: &AppState,
    pad: &PadRow,
    method: &Method,
    token: &str,
    inner: &PadInnerRequest,
    rid: &str,
    agent: &str,
) -> Result<Response, ApiFailure> {
    // Only this pad's tasks: the channel is not a proxy for other links.
    let mine = tasks::load_by_token(&state.db, token)
        .await?
        .is_some_and(|t| t.pad_id.as_deref() == Some(pad.pad_id.as_str()));
    if !mine {
        return Err(tasks::link_invalid());
    }
    let body = match &inner.body_base64 {
        Some(b) => B64.decode(b).map_err(|_| {
            ApiFailure::with(
                ErrorCode::MalformedJson,
                "平板内层请求的 body_base64 不是有效的 Base64。",
                "The inner request's body_base64 is not valid base64.",
            )
        })?,
        None => Vec::new(),
    };
    let mut req = axum::http::Request::builder()
        .method(method.clone())
        .uri(inner.path.as_str())
        .header("x-request-id", rid)
        .header(
            header::USER_AGENT,
            HeaderValue::from_str(agent).unwrap_or_else(|_| HeaderValue::from_static("yiqian-pad")),
        );
    if let Some(s) = inner
        .session
        .as_deref()
        .and_then(|s| HeaderValue::from_str(s).ok())
    {
        req = req.header(HEADER_H5_SESSION, s);
    }
    if !body.is_empty() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Body::from(body))
        .map_err(|_| ApiFailure::new(ErrorCode::InvalidArgument))?;
    Ok(match h5_router(state).oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    })
}

async fn queue(state: &AppState, pad: &PadRow) -> Result<Json<PadQueue>, ApiFailure> {
    let now = now_ms();
    let rows = tasks::for_pad(&state.db, &pad.pad_id, now).await?;
    Ok(Json(PadQueue {
        pad: PadInfo {
            pad_id: pad.pad_id.clone(),
            name: pad.name.clone(),
            ward: pad.ward.clone(),
            hospital: state.config.pki.organisation.clone(),
        },
        tasks: rows
            .iter()
            .map(|t| PadQueueItem {
                task_id: t.task_id.clone(),
                title: t.title.clone(),
                signer_name_masked: mask_name(&t.signer_name),
                signer_role: t.signer_role.clone(),
                sign_mode: t.sign_mode.clone(),
                identity: t.identity.clone(),
                status: t.effective_status(now).to_owned(),
                created_at: rfc3339(t.created_at),
                expires_at: rfc3339(t.expires_at),
            })
            .collect(),
    }))
}

/// A task assigned to this pad (the same refusal for other pads' tasks as for unknown ones).
async fn pad_task(
    state: &AppState,
    pad: &PadRow,
    task_id: &str,
) -> Result<tasks::TaskRow, ApiFailure> {
    match tasks::load(&state.db, task_id).await? {
        Some(t) if t.pad_id.as_deref() == Some(pad.pad_id.as_str()) => Ok(t),
        _ => Err(ApiFailure::with(
            ErrorCode::NotFound,
            "该平板没有这个签署任务。",
            "This pad has no such signing task.",
        )),
    }
}

/// `POST /pad/tasks/{id}/open`: the link token of one of this pad's open tasks, and, when the
/// task's identity is `["pad"]` (staff vouch at the bedside), a page session without SMS.
async fn open(
    state: &AppState,
    pad: &PadRow,
    task_id: &str,
    rid: &str,
) -> Result<Json<PadOpened>, ApiFailure> {
    let now = now_ms();
    let task = pad_task(state, pad, task_id).await?;
    let token = tasks::token_of(state, &task.task_id).await?;
    // The same status checks (and errors) as the page's own link.
    let task = tasks::open_link(state, &token, now, false).await?;
    let presence = task.identity.len() == 1 && task.identity[0] == "pad";
    let session = if presence {
        Some(pad_session(state, &task, &pad.pad_id, now).await?)
    } else {
        None
    };
    audit_outcome(
        state,
        &format!("pad:{}", pad.pad_id),
        "pad.task.open",
        &task.task_id,
        "ok",
        rid,
        serde_json::json!({ "verified_by_pad": presence }),
    )
    .await?;
    if presence {
        state.hub.announce(&state.db, &task.task_id).await;
    }
    Ok(Json(PadOpened {
        token: token.to_string(),
        session: session.map(|s| s.to_string()),
    }))
}

/// 扫码一名一签: the task's link as a QR code for the signer's own phone. Only for tasks whose
/// signer proves who they are on the phone (SMS, ID card, face): a `["pad"]` task relies on
/// the staff at the bedside, so it is signed on the pad itself.
async fn handoff(
    state: &AppState,
    pad: &PadRow,
    task_id: &str,
    rid: &str,
) -> Result<Json<PadHandoff>, ApiFailure> {
    let now = now_ms();
    let task = pad_task(state, pad, task_id).await?;
    if task.identity.iter().all(|i| i == "pad") {
        return Err(ApiFailure::with(
            ErrorCode::InvalidArgument,
            "该任务由床旁医护人员核验身份，请直接在平板上签署。",
            "Staff at the bedside vouch for this signer: sign on the pad itself.",
        ));
    }
    let token = tasks::token_of(state, &task.task_id).await?;
    // The same status checks (and errors) as opening the link.
    let task = tasks::open_link(state, &token, now, false).await?;
    let link = tasks::link_of(state, &task.task_id).await?;
    let qr_svg = crate::signing::requests::qr_svg(&link)?;
    audit_outcome(
        state,
        &format!("pad:{}", pad.pad_id),
        "pad.task.handoff",
        &task.task_id,
        "ok",
        rid,
        serde_json::json!({}),
    )
    .await?;
    Ok(Json(PadHandoff {
        qr_svg,
        signer_name_masked: mask_name(&task.signer_name),
    }))
}

/// A page session for a `["pad"]` task: the staff at the bedside stand in for the SMS code.
async fn pad_session(
    state: &AppState,
    task: &tasks::TaskRow,
    pad_id: &str,
    now: i64,
) -> Result<Zeroizing<String>, ApiFailure> {
    let device = state.keys.device();
    let session = Zeroizing::new(crate::patient::random_token(&*device).await?);
    let moved = sqlx::query(
        "UPDATE patient_tasks SET status = 'verified', session_hash = $1, verified_at = $2, \
         verified_by = 'pad', updated_at = $2 WHERE task_id = $3 AND pad_id = $4 AND \
         status IN ('pending', 'verified')",
    )
    .bind(crate::patient::token_hash(&session))
    .bind(now)
    .bind(&task.task_id)
    .bind(pad_id)
    .execute(state.db.pool())
    .await?
    .rows_affected();
    if moved != 1 {
        return Err(ApiFailure::new(ErrorCode::TaskUsed));
    }
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_is_exact() {
        let g = Method::GET;
        let p = Method::POST;
        assert_eq!(allowed(&g, "/pad/queue"), Some(Allowed::Queue));
        assert_eq!(allowed(&p, "/pad/queue"), None);
        assert_eq!(
            allowed(&p, "/pad/tasks/abc/open"),
            Some(Allowed::Open("abc"))
        );
        assert_eq!(
            allowed(&g, "/api/v1/h5/tasks/T-_9"),
            Some(Allowed::Page("T-_9"))
        );
        assert_eq!(
            allowed(&p, "/api/v1/h5/tasks/T/submit"),
            Some(Allowed::Page("T"))
        );
        assert_eq!(
            allowed(&g, "/api/v1/h5/tasks/T/pages/1.png"),
            Some(Allowed::Page("T"))
        );
        assert_eq!(
            allowed(&p, "/api/v1/h5/tasks/T/identity/liveness/challenge"),
            Some(Allowed::Page("T"))
        );
        for (m, bad) in [
            (&g, "/api/v1/pads"),
            (&p, "/api/v1/pads/x/revoke"),
            (&g, "/api/v1/patient-tasks/x"),
            (&g, "/api/v1/h5/tasks/T/submit"),
            (&p, "/api/v1/h5/tasks/T/pages/1.png"),
            (&g, "/api/v1/h5/tasks/T/pages/1.svg"),
            (&g, "/api/v1/h5/tasks/T/../../pads"),
            (&g, "/api/v1/h5/tasks//"),
            (&g, "/api/v1/h5/tasks/T?x=1"),
            (&g, "/api/v1/h5/tasks/%2e%2e"),
            (&g, "api/v1/h5/tasks/T"),
            (&g, ""),
            (&Method::DELETE, "/pad/queue"),
        ] {
            assert_eq!(allowed(m, bad), None, "{m} {bad}");
        }
    }
}
