//! Co-signing routes (issue 6): administrators register client systems and staff; client
//! systems create signing requests (HMAC-SM3-signed calls) and watch them over a WebSocket;
//! phones enrol and co-sign (SM2-device-signed calls). Logic lives in `crate::signing`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::auth::{
    HEADER_APP_ID, HEADER_DEVICE_ID, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use cosign_proto::v1::cosign::{
    CreateClientApp, CreateSignRequest, CreateStaff, EnrollBegin, EnrollFinish, EnrollKeygen,
    EnrollSms, PhoneTask, PinUnlock, RequestEvent, RoundCommit, RoundResult, SignRequestView,
    StartRound, UnbindDevice,
};
use cosign_proto::v1::qr::QrLink;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sm3::{Digest, Sm3};
use subtle::ConstantTimeEq;

use super::auth::Admin;
use super::{ApiFailure, ApiJson, AppState, RequestId};
use crate::audit::Event;
use crate::clock::now_ms;
use crate::documents::DocError;
use crate::signing::clients::{ClientApp, Nonce, SignedCall};
use crate::signing::devices::{self, Device};
use crate::signing::{requests, rounds, staff};

/// The co-signing routes.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/admin/apps", post(create_app))
        .route("/api/v1/admin/staff", post(create_staff))
        .route("/api/v1/admin/staff/import", post(import_staff))
        .route("/api/v1/admin/staff/{id}", get(get_staff))
        .route("/api/v1/admin/staff/{id}/activation", post(activation))
        .route("/api/v1/admin/staff/{id}/unlock", post(unlock))
        .route("/api/v1/sign-requests", post(create_request))
        .route("/api/v1/sign-requests/{id}", get(get_request))
        .route("/api/v1/sign-requests/{id}/qr.svg", get(qr_svg))
        .route("/api/v1/sign-requests/{id}/qr.png", get(qr_png))
        .route("/api/v1/sign-requests/{id}/events", get(watch))
        .route("/api/v1/sign-requests/{id}/cancel", post(cancel_request))
        .route("/api/v1/phone/enroll", post(enroll_begin))
        .route("/api/v1/phone/enroll/sms", post(enroll_sms))
        .route("/api/v1/phone/enroll/keygen", post(enroll_keygen))
        .route("/api/v1/phone/enroll/finish", post(enroll_finish))
        .route("/api/v1/phone/tasks", get(tasks))
        .route("/api/v1/phone/events", get(phone_events))
        .route("/api/v1/phone/requests/{id}", get(phone_request))
        .route(
            "/api/v1/phone/requests/{id}/documents/{index}",
            get(phone_document),
        )
        .route(
            "/api/v1/phone/requests/{id}/documents/{index}/pdf",
            get(phone_document_pdf),
        )
        .route("/api/v1/phone/pin", post(pin))
        .route("/api/v1/phone/unbind", post(unbind))
        .route("/api/v1/phone/rounds", post(start_round))
        .route("/api/v1/phone/rounds/{id}/commit", post(commit_round))
        .route("/api/v1/phone/rounds/{id}/result", post(finish_round))
}

/// The activation identity routes: photos and liveness frames need more than the JSON limit.
pub fn identity_routes() -> axum::Router<AppState> {
    let limit = super::patient::IDENTITY_FRAMES_LIMIT;
    axum::Router::new()
        .route(
            "/api/v1/phone/enroll/identity/{step}",
            post(enroll_identity),
        )
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(limit))
}

// ---------------------------------------------------------------------------------------
// signed calls

fn header<'a>(h: &'a HeaderMap, name: &str) -> Result<&'a str, ApiFailure> {
    h.get(name).and_then(|v| v.to_str().ok()).ok_or_else(|| {
        ApiFailure::with(
            ErrorCode::BadSignature,
            format!("缺少请求头 {name}，请按接口签名说明签名。"),
            format!("Missing header {name}; sign the request as documented."),
        )
    })
}

struct Raw {
    headers: HeaderMap,
    method: String,
    path_and_query: String,
    body: Bytes,
}

async fn raw(req: Request, state: &AppState) -> Result<Raw, ApiFailure> {
    let (parts, body) = req.into_parts();
    let body = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
        .await
        .map_err(|_| ApiFailure::new(ErrorCode::PayloadTooLarge))?;
    Ok(Raw {
        method: parts.method.as_str().to_owned(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: parts.headers,
        body,
    })
}

impl Raw {
    fn call<'a>(&'a self, id_header: &str) -> Result<SignedCall<'a>, ApiFailure> {
        Ok(SignedCall {
            caller: header(&self.headers, id_header)?,
            method: &self.method,
            path_and_query: &self.path_and_query,
            timestamp_ms: header(&self.headers, HEADER_TIMESTAMP)?
                .parse()
                .map_err(|_| ApiFailure::new(ErrorCode::BadSignature))?,
            nonce: header(&self.headers, HEADER_NONCE)?,
            signature: header(&self.headers, HEADER_SIGNATURE)?,
            body: &self.body,
        })
    }
}

/// A call from a client system, verified; the body is parsed by the handler.
pub(super) struct AppCall {
    pub(super) app: ClientApp,
    pub(super) body: Bytes,
}

impl FromRequest<AppState> for AppCall {
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiFailure> {
        let raw = raw(req, state).await?;
        let call = raw.call(HEADER_APP_ID)?;
        let device = state.keys.device();
        let app = state
            .clients
            .verify(&state.db, &*device, &call, now_ms())
            .await?;
        Ok(Self {
            app,
            body: raw.body,
        })
    }
}

/// A call from a client system, verified, whose nonce the call records in the transaction of
/// its own writes; the route must end with `call.nonce.settle(..)` on every path.
pub(super) struct AppWriteCall {
    pub(super) app: ClientApp,
    pub(super) nonce: Nonce,
    pub(super) body: Bytes,
}

impl FromRequest<AppState> for AppWriteCall {
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiFailure> {
        let raw = raw(req, state).await?;
        let call = raw.call(HEADER_APP_ID)?;
        let device = state.keys.device();
        let (app, nonce) = state
            .clients
            .verify_signature(&state.db, &*device, &call, now_ms())
            .await?;
        Ok(Self {
            app,
            nonce,
            body: raw.body,
        })
    }
}

/// A call from an enrolled (or enrolling) phone, verified.
pub(super) struct DeviceCall {
    pub(super) device: Device,
    pub(super) body: Bytes,
}

impl FromRequest<AppState> for DeviceCall {
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiFailure> {
        let raw = raw(req, state).await?;
        let call = raw.call(HEADER_DEVICE_ID)?;
        let device = devices::verify_call(&state.db, &call, now_ms()).await?;
        Ok(Self {
            device,
            body: raw.body,
        })
    }
}

/// A call from an enrolled phone, verified, whose nonce the call records in the transaction
/// of its own writes (one commit instead of two); the route must end with
/// `call.nonce.settle(..)` on every path ([`crate::signing::clients::Nonce`]).
pub(super) struct DeviceWriteCall {
    pub(super) device: Device,
    pub(super) nonce: Nonce,
    pub(super) body: Bytes,
}

impl FromRequest<AppState> for DeviceWriteCall {
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiFailure> {
        let raw = raw(req, state).await?;
        let call = raw.call(HEADER_DEVICE_ID)?;
        let (device, nonce) = devices::verify_signature(&state.db, &call, now_ms()).await?;
        Ok(Self {
            device,
            nonce,
            body: raw.body,
        })
    }
}

pub(super) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiFailure> {
    serde_json::from_slice(body).map_err(|e| {
        ApiFailure::with(
            ErrorCode::MalformedJson,
            format!("请求内容不是有效的 JSON 或字段不符合接口说明：{e}"),
            format!("Malformed JSON body: {e}"),
        )
    })
}

pub(super) async fn audit(
    state: &AppState,
    actor: &str,
    action: &str,
    target: &str,
    rid: &str,
    detail: serde_json::Value,
) -> Result<(), ApiFailure> {
    audit_outcome(state, actor, action, target, "ok", rid, detail).await
}

pub(crate) async fn audit_outcome(
    state: &AppState,
    actor: &str,
    action: &str,
    target: &str,
    outcome: &str,
    rid: &str,
    detail: serde_json::Value,
) -> Result<(), ApiFailure> {
    state
        .audit
        .append(
            &state.db,
            now_ms(),
            &Event {
                actor,
                action,
                target,
                outcome,
                detail,
                request_id: rid,
            },
        )
        .await?;
    Ok(())
}

pub(super) fn require_manager(admin: &Admin) -> Result<String, ApiFailure> {
    // 三权分立: the system and security administrators manage apps and staff; auditors read.
    if matches!(admin.0.role(), "sysadmin" | "secadmin") {
        Ok(format!("admin:{}", admin.0.username()))
    } else {
        Err(ApiFailure::new(ErrorCode::Forbidden))
    }
}

// ---------------------------------------------------------------------------------------
// administrators

async fn create_app(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    ApiJson(req): ApiJson<CreateClientApp>,
) -> Result<impl IntoResponse, ApiFailure> {
    let actor = require_manager(&admin)?;
    let device = state.keys.device();
    let created = state
        .clients
        .create(&state.db, &*device, &req, now_ms())
        .await?;
    audit(
        &state,
        &actor,
        "cosign.app.create",
        &created.app_id,
        &rid.0,
        serde_json::json!({ "name": created.name, "permissions": created.permissions }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn create_staff(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    ApiJson(req): ApiJson<CreateStaff>,
) -> Result<impl IntoResponse, ApiFailure> {
    let actor = require_manager(&admin)?;
    let device = state.keys.device();
    let view = staff::create(
        &state.db,
        &*device,
        &state.config.pki.organisation,
        &req,
        now_ms(),
    )
    .await?;
    audit(
        &state,
        &actor,
        "cosign.staff.create",
        &view.staff_id,
        &rid.0,
        serde_json::json!({}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn import_staff(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    body: Bytes,
) -> Result<impl IntoResponse, ApiFailure> {
    let actor = require_manager(&admin)?;
    let text = std::str::from_utf8(&body).map_err(|_| {
        ApiFailure::with(
            ErrorCode::InvalidArgument,
            "CSV 文件须为 UTF-8 编码（从 Excel 另存为“CSV UTF-8”）。",
            "The CSV file must be UTF-8 (in Excel: save as \"CSV UTF-8\").",
        )
    })?;
    let device = state.keys.device();
    let report = staff::import_csv(
        &state.db,
        &*device,
        &state.config.pki.organisation,
        text,
        now_ms(),
    )
    .await?;
    audit(
        &state,
        &actor,
        "cosign.staff.import",
        "csv",
        &rid.0,
        serde_json::json!({ "created": report.created, "refused": report.errors.len() }),
    )
    .await?;
    Ok(Json(report))
}

async fn get_staff(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiFailure> {
    Ok(Json(staff::view(&state.db, &id).await?))
}

async fn activation(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiFailure> {
    let actor = require_manager(&admin)?;
    let device = state.keys.device();
    let issued =
        staff::issue_activation(&state.db, &*device, &state.config.public_url, &id, now_ms())
            .await?;
    audit(
        &state,
        &actor,
        "cosign.staff.activation",
        &id,
        &rid.0,
        serde_json::json!({ "expires_at": issued.expires_at }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

async fn unlock(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiFailure> {
    let actor = require_manager(&admin)?;
    let view = staff::unlock(&state.db, &id, now_ms()).await?;
    audit(
        &state,
        &actor,
        "cosign.staff.unlock",
        &id,
        &rid.0,
        serde_json::json!({}),
    )
    .await?;
    Ok(Json(view))
}

// ---------------------------------------------------------------------------------------
// client systems

async fn create_request(
    State(state): State<AppState>,
    rid: RequestId,
    call: AppWriteCall,
) -> Result<impl IntoResponse, ApiFailure> {
    let device = state.keys.device();
    let now = now_ms();
    let actor = format!("app:{}", call.app.app_id);
    let made = async {
        call.app.require("sign_request:create")?;
        let req: CreateSignRequest = parse(&call.body)?;
        let plan =
            crate::signing::autosign::decide(&state.db, &device, &state.pki, &call.app, &req, now)
                .await?;
        let created = requests::create(
            &state.db,
            &*device,
            &state.config.public_url,
            state.config.cosign.notifier_url.as_deref(),
            requests::Creator {
                app_id: &call.app.app_id,
                nonce: Some(&call.nonce),
                audit: Some((&state.audit, &rid.0)),
            },
            &req,
            now,
            plan.as_ref(),
        )
        .await?;
        Ok(created)
    }
    .await;
    let created = match call.nonce.settle(&state.db, made).await {
        Ok(made) => made,
        Err(e) => {
            if e.code() == ErrorCode::AutoSignNotAuthorised {
                let signers = parse::<CreateSignRequest>(&call.body)
                    .map(|r| r.signers)
                    .unwrap_or_default();
                audit_outcome(
                    &state,
                    &actor,
                    "autosign.sign",
                    "",
                    "denied",
                    &rid.0,
                    serde_json::json!({ "signers": signers, "reason": e.message_zh() }),
                )
                .await?;
            }
            return Err(e);
        }
    };
    // Audited by `requests::create`, in the transaction that stored the request.
    state.hub.notify(&created.request_id);
    Ok((StatusCode::CREATED, Json(created)))
}

async fn own_request(
    state: &AppState,
    app: &ClientApp,
    id: &str,
) -> Result<requests::RequestRow, ApiFailure> {
    app.require("sign_request:read")?;
    match requests::load(state.db.pool(), id).await? {
        // Another app's request is reported as absent, not forbidden.
        Some(r) if r.app_id == app.app_id => Ok(r),
        _ => Err(ApiFailure::new(ErrorCode::NotFound)),
    }
}

async fn get_request(
    State(state): State<AppState>,
    Path(id): Path<String>,
    call: AppCall,
) -> Result<impl IntoResponse, ApiFailure> {
    own_request(&state, &call.app, &id).await?;
    Ok(Json(requests::view(&state.db, &id, now_ms()).await?))
}

/// `POST /api/v1/sign-requests/{id}/cancel`: the terminal withdraws a pending request; phones
/// can no longer sign it and watchers receive the final `cancelled` state.
async fn cancel_request(
    State(state): State<AppState>,
    rid: RequestId,
    Path(id): Path<String>,
    call: AppCall,
) -> Result<impl IntoResponse, ApiFailure> {
    call.app.require("sign_request:create")?;
    own_request(&state, &call.app, &id).await?;
    requests::cancel(&state.db, &id, now_ms()).await?;
    state.hub.notify(&id);
    audit(
        &state,
        &format!("app:{}", call.app.app_id),
        "cosign.request.cancel",
        &id,
        &rid.0,
        serde_json::json!({}),
    )
    .await?;
    Ok(Json(requests::view(&state.db, &id, now_ms()).await?))
}

fn qr_link(state: &AppState, r: &requests::RequestRow) -> String {
    QrLink::Sign {
        server: state.config.public_url.clone(),
        request_id: r.request_id.clone(),
        nonce: r.qr_nonce.clone(),
    }
    .to_string()
}

async fn qr_svg(
    State(state): State<AppState>,
    Path(id): Path<String>,
    call: AppCall,
) -> Result<Response, ApiFailure> {
    let r = own_request(&state, &call.app, &id).await?;
    let svg = requests::qr_svg(&qr_link(&state, &r))?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

async fn qr_png(
    State(state): State<AppState>,
    Path(id): Path<String>,
    call: AppCall,
) -> Result<Response, ApiFailure> {
    let r = own_request(&state, &call.app, &id).await?;
    let png = requests::qr_png(&qr_link(&state, &r))?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

#[derive(Debug, Deserialize)]
struct WatchQuery {
    token: String,
}

/// `GET /api/v1/sign-requests/{id}/events?token=`: a WebSocket that sends the request's state
/// now and after every change, and closes once it is completed, expired or cancelled.
/// Browsers cannot sign WebSocket requests, so the terminal presents the watch token it got
/// when it created the request.
async fn watch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<WatchQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiFailure> {
    let r = requests::load(state.db.pool(), &id)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    let given = hex::encode(Sm3::digest(q.token.as_bytes()));
    if !bool::from(given.as_bytes().ct_eq(r.watch_token_hash.as_bytes())) {
        return Err(ApiFailure::new(ErrorCode::Unauthenticated));
    }
    Ok(small_buffers(ws).on_upgrade(move |socket| watch_loop(state, id, socket)))
}

/// Terminals and phones send nothing but pongs and closes on these sockets, so they get small
/// buffers and a small message limit: the library's defaults (128 KiB read buffer, 64 MiB
/// messages) cost about 127 KiB of resident memory per idle socket (10,000 idle sockets:
/// 1.2 GiB; docs/performance.md).
fn small_buffers(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(64 * 1024)
        .max_frame_size(64 * 1024)
}

async fn watch_loop(state: AppState, id: String, socket: WebSocket) {
    let db = state.db.clone();
    // Every change of a request is announced; the only one that is not is time passing its
    // expiry, so the watcher wakes then. PostgreSQL adds a slow fallback re-read in case a
    // notification from another instance was lost (`hub` module).
    let fallback =
        (db.kind() == crate::store::DbKind::Postgres).then_some(state.config.hub_fallback_poll);
    relay_with(&state, &id, socket, fallback, || async {
        let view = requests::view(&db, &id, now_ms()).await.ok()?;
        let finished = view.status != "pending";
        let wake_at_ms = (!finished).then_some(view.expires_at);
        let event = serde_json::to_string(&RequestEvent::Status {
            request: Box::new(view),
        })
        .ok()?;
        Some(Rendered {
            event,
            finished,
            wake_at_ms,
        })
    })
    .await;
}

/// How long a watcher sleeps at most: until a little after `wake_at_ms` (unix ms, so the
/// re-read sees it passed) or one `poll`, whichever is sooner; "never" (a year) without either.
fn next_wait(wake_at_ms: Option<i64>, poll: Option<std::time::Duration>) -> std::time::Duration {
    let wake = wake_at_ms.map(|at| {
        let ms = u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0) + 50;
        std::time::Duration::from_millis(ms)
    });
    match (wake, poll) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a
            .or(b)
            .unwrap_or(std::time::Duration::from_secs(86_400 * 365)),
    }
}

/// What a watcher sends, whether it is the last, and when to re-read at the latest (unix ms;
/// e.g. an expiry, which no announcement reports).
pub(super) struct Rendered {
    pub(super) event: String,
    pub(super) finished: bool,
    pub(super) wake_at_ms: Option<i64>,
}

/// Sends `render()`'s event now and after every hub announcement of `id` (or poll tick,
/// every `hub_poll_interval`) that changes it, until it says the object is finished (then
/// closes), `render` fails, or the other side leaves. For objects with changes that are not
/// all announced (patient tasks).
pub(super) async fn relay<F, Fut>(state: &AppState, id: &str, socket: WebSocket, render: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<(String, bool)>>,
{
    let poll = Some(state.config.hub_poll_interval);
    relay_with(state, id, socket, poll, || async {
        render().await.map(|(event, finished)| Rendered {
            event,
            finished,
            wake_at_ms: None,
        })
    })
    .await;
}

/// [`relay`] for objects whose every change is announced: re-reads only on an announcement
/// of `id`, at `wake_at_ms`, and every `poll` if given.
pub(super) async fn relay_with<F, Fut>(
    state: &AppState,
    id: &str,
    mut socket: WebSocket,
    poll: Option<std::time::Duration>,
    render: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<Rendered>>,
{
    use tokio::time::{Instant, sleep_until};
    // Subscribed before the first read, so no change between the read and the wait is missed.
    let mut changes = state.hub.watch(id);
    let mut last = String::new();
    loop {
        let Some(Rendered {
            event,
            finished,
            wake_at_ms,
        }) = render().await
        else {
            break;
        };
        if event != last {
            if socket
                .send(Message::Text(event.clone().into()))
                .await
                .is_err()
            {
                return;
            }
            last = event;
        }
        if finished {
            break;
        }
        let deadline = Instant::now() + next_wait(wake_at_ms, poll);
        // Wait for an announcement of this id, the deadline, or the other side leaving.
        let keep_going = loop {
            tokio::select! {
                () = changes.changed() => break true,
                () = sleep_until(deadline) => break true,
                incoming = socket.recv() => match incoming {
                    None | Some(Err(_) | Ok(Message::Close(_))) => break false,
                    Some(Ok(_)) => {}
                },
            }
        };
        if !keep_going {
            return;
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

// ---------------------------------------------------------------------------------------
// phones

async fn enroll_begin(
    State(state): State<AppState>,
    rid: RequestId,
    ApiJson(req): ApiJson<EnrollBegin>,
) -> Result<impl IntoResponse, ApiFailure> {
    let device = state.keys.device();
    let second_factor = state.config.cosign.activation_second_factor;
    let identity = state.config.cosign.activation_identity;
    let begun = devices::begin(
        &state.db,
        &*device,
        &req,
        (second_factor, identity),
        now_ms(),
    )
    .await;
    let outcome = if begun.is_ok() { "ok" } else { "denied" };
    audit_outcome(
        &state,
        &format!(
            "staff:{}",
            req.staff_id.chars().take(64).collect::<String>()
        ),
        "cosign.enroll.begin",
        begun.as_ref().map_or("", |b| b.device_id.as_str()),
        outcome,
        &rid.0,
        serde_json::json!({
            "second_factor": format!("{second_factor:?}").to_lowercase(),
            "identity": identity.as_str(),
            "refused": begun.as_ref().err().map(ApiFailure::code),
        }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(begun?)))
}

/// `POST /api/v1/phone/enroll/sms`: the second factor of activation, a one-time code sent to
/// the staff member's phone on record (only when the server asks for one).
async fn enroll_sms(
    State(state): State<AppState>,
    rid: RequestId,
    ApiJson(req): ApiJson<EnrollSms>,
) -> Result<impl IntoResponse, ApiFailure> {
    let gateway = match (&state.sms, state.config.cosign.activation_second_factor) {
        (Some(g), crate::config::SecondFactor::Sms) => g.clone(),
        _ => return Err(ApiFailure::new(ErrorCode::NotFound)),
    };
    let device = state.keys.device();
    let sent = devices::send_sms(&state.db, &*device, &*gateway, &req, now_ms()).await;
    audit_outcome(
        &state,
        &format!(
            "staff:{}",
            req.staff_id.chars().take(64).collect::<String>()
        ),
        "cosign.enroll.sms",
        &req.staff_id.chars().take(64).collect::<String>(),
        if sent.is_ok() { "ok" } else { "denied" },
        &rid.0,
        serde_json::json!({
            "phone": sent.as_ref().ok().map(|s| s.phone_masked.clone()),
            "refused": sent.as_ref().err().map(ApiFailure::code),
        }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(sent?)))
}

/// `POST /api/v1/phone/enroll/identity/{id-card|face|liveness-challenge|liveness}`: the
/// identity checks `[cosign] activation_identity` asks for before `enroll` (only then).
async fn enroll_identity(
    State(state): State<AppState>,
    rid: RequestId,
    Path(step): Path<String>,
    ApiJson(req): ApiJson<cosign_proto::v1::identity::EnrollIdentity>,
) -> Result<Response, ApiFailure> {
    use crate::config::ActivationIdentity as A;
    use crate::identity::checks;
    let policy = state.config.cosign.activation_identity;
    let allowed = match step.as_str() {
        "id-card" => policy != A::None,
        "face" => policy == A::Face,
        "liveness-challenge" | "liveness" => policy == A::Liveness,
        _ => false,
    };
    if !allowed {
        return Err(ApiFailure::new(ErrorCode::NotFound));
    }
    let device = state.keys.device();
    let (subject, expected) = devices::identity_subject(
        &state.db,
        &*device,
        &req.staff_id,
        &req.activation_code,
        now_ms(),
    )
    .await?;
    let missing = |field: &str| {
        ApiFailure::with(
            ErrorCode::InvalidArgument,
            format!("缺少字段 {field}。"),
            format!("Missing field {field}."),
        )
    };
    let ticket = || {
        req.portrait_ticket
            .as_deref()
            .ok_or_else(|| missing("portrait_ticket"))
    };
    let image = || req.image.as_deref().ok_or_else(|| missing("image"));
    Ok(match step.as_str() {
        "id-card" => Json(checks::id_card(&state, &subject, &expected, image()?, &rid.0).await?)
            .into_response(),
        "face" => {
            Json(checks::face(&state, &subject, image()?, ticket()?, &rid.0).await?).into_response()
        }
        "liveness-challenge" => {
            Json(checks::challenge(&state, &subject, &rid.0).await?).into_response()
        }
        _ => {
            let challenge = req
                .challenge
                .as_deref()
                .ok_or_else(|| missing("challenge"))?;
            Json(
                checks::liveness(&state, &subject, challenge, &req.steps, ticket()?, &rid.0)
                    .await?,
            )
            .into_response()
        }
    })
}

async fn enroll_keygen(
    State(state): State<AppState>,
    call: DeviceCall,
) -> Result<impl IntoResponse, ApiFailure> {
    let req: EnrollKeygen = parse(&call.body)?;
    let device = state.keys.device();
    Ok(Json(
        devices::keygen(&state.db, &*device, &call.device, &req.keygen, now_ms()).await?,
    ))
}

async fn enroll_finish(
    State(state): State<AppState>,
    rid: RequestId,
    call: DeviceCall,
) -> Result<impl IntoResponse, ApiFailure> {
    let req: EnrollFinish = parse(&call.body)?;
    let device = state.keys.device();
    let done = devices::finish(
        &state.db,
        &*device,
        &state.pki,
        &state.config.pki.organisation,
        &call.device,
        &req,
        &rid.0,
        now_ms(),
    )
    .await?;
    audit(
        &state,
        &format!("staff:{}", call.device.staff_id),
        "cosign.enroll.finish",
        &call.device.device_id,
        &rid.0,
        serde_json::json!({ "certificate": done.serial }),
    )
    .await?;
    Ok(Json(done))
}

async fn pending_tasks(state: &AppState, staff_id: &str) -> Result<Vec<PhoneTask>, ApiFailure> {
    let now = now_ms();
    let mut out = Vec::new();
    for id in requests::pending_for(&state.db, staff_id, now).await? {
        let request = requests::view(&state.db, &id, now).await?;
        let mut my_turn = true;
        for s in &request.signers {
            if s.staff_id == staff_id {
                break;
            }
            my_turn &= !request.ordered || s.signed_at.is_some();
        }
        out.push(PhoneTask { request, my_turn });
    }
    Ok(out)
}

async fn tasks(
    State(state): State<AppState>,
    call: DeviceCall,
) -> Result<impl IntoResponse, ApiFailure> {
    rounds::active(&call.device)?;
    Ok(Json(pending_tasks(&state, &call.device.staff_id).await?))
}

/// `GET /api/v1/phone/events` (device-signed upgrade): pushes the phone's task list on connect
/// and whenever a request announcement may change it; pings every [`PHONE_PING`].
async fn phone_events(
    State(state): State<AppState>,
    ws: WebSocketUpgrade,
    call: DeviceCall,
) -> Result<Response, ApiFailure> {
    rounds::active(&call.device)?;
    let d = call.device;
    Ok(small_buffers(ws).on_upgrade(move |socket| phone_loop(state, d, socket)))
}

/// Heartbeat towards phones (mobile networks drop idle connections).
const PHONE_PING: std::time::Duration = std::time::Duration::from_secs(20);

async fn phone_loop(state: AppState, d: Device, mut socket: WebSocket) {
    use tokio::time::{Instant, sleep_until};
    let mut announcements = state.hub.subscribe();
    let (staff_id, revoked_id) = (d.staff_id, devices::hub_id(&d.device_id));
    // As for request watchers: every change of a task list is announced except a task
    // expiring, so the loop wakes at the earliest expiry; PostgreSQL adds the fallback re-read.
    let fallback = (state.db.kind() == crate::store::DbKind::Postgres)
        .then_some(state.config.hub_fallback_poll);
    let mut ping = tokio::time::interval(PHONE_PING);
    ping.tick().await;
    let mut last = String::new();
    loop {
        let Ok(tasks) = pending_tasks(&state, &staff_id).await else {
            break;
        };
        let first_expiry = tasks.iter().map(|t| t.request.expires_at).min();
        let event = serde_json::to_string(&RequestEvent::Tasks { tasks }).unwrap_or_default();
        if event != last {
            if socket
                .send(Message::Text(event.clone().into()))
                .await
                .is_err()
            {
                return;
            }
            last = event;
        }
        let deadline = Instant::now() + next_wait(first_expiry, fallback);
        let keep_going = loop {
            tokio::select! {
                // Any announcement may concern this signer (a new request, an earlier signer
                // done); the list is re-read and sent only if it changed.
                // The device's revocation (or a resync, which may hide one) ends the push:
                // a revoked phone sees no more tasks.
                announced = announcements.recv() => {
                    let id = announced.ok();
                    if id.as_deref().is_none_or(|id| id.is_empty() || *id == *revoked_id)
                        && !devices::is_active(&state.db, &d.device_id).await.unwrap_or(false)
                    {
                        let _ = socket.send(Message::Close(None)).await;
                        break false;
                    }
                    break true;
                }
                () = sleep_until(deadline) => break true,
                _ = ping.tick() => {
                    if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                        break false;
                    }
                }
                incoming = socket.recv() => match incoming {
                    None | Some(Err(_) | Ok(Message::Close(_))) => break false,
                    Some(Ok(_)) => {}
                },
            }
        };
        if !keep_going {
            return;
        }
    }
}

/// The request as `d`'s staff member may see it: only its signers do.
async fn signer_request(
    state: &AppState,
    d: &Device,
    id: &str,
) -> Result<SignRequestView, ApiFailure> {
    rounds::active(d)?;
    let view = requests::view(&state.db, id, now_ms()).await?;
    if view.signers.iter().any(|s| s.staff_id == d.staff_id) {
        Ok(view)
    } else {
        Err(ApiFailure::new(ErrorCode::NotFound))
    }
}

async fn phone_request(
    State(state): State<AppState>,
    Path(id): Path<String>,
    call: DeviceCall,
) -> Result<impl IntoResponse, ApiFailure> {
    Ok(Json(signer_request(&state, &call.device, &id).await?))
}

/// Document `index` of request `id` (content, media type), for one of its signers only.
async fn signer_document(
    state: &AppState,
    d: &Device,
    id: &str,
    index: u32,
) -> Result<(Vec<u8>, Option<String>), ApiFailure> {
    signer_request(state, d, id).await?;
    requests::document_content(&state.db, id, index)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))
}

async fn phone_document(
    State(state): State<AppState>,
    Path((id, index)): Path<(String, u32)>,
    call: DeviceCall,
) -> Result<Response, ApiFailure> {
    let (content, media) = signer_document(&state, &call.device, &id, index).await?;
    let media = media.unwrap_or_else(|| "application/octet-stream".to_owned());
    Ok(([(header::CONTENT_TYPE, media)], content).into_response())
}

/// A Word document of the request converted to PDF, for the phone to show before the PIN
/// (the phone draws PDFs itself; Word it cannot). The signed bytes stay the Word file.
async fn phone_document_pdf(
    State(state): State<AppState>,
    Path((id, index)): Path<(String, u32)>,
    call: DeviceCall,
) -> Result<Response, ApiFailure> {
    let (content, _) = signer_document(&state, &call.device, &id, index).await?;
    let pdf = state
        .documents
        .word_as_pdf(content)
        .await
        .map_err(|e| match e {
            DocError::UnsupportedType(_) => ApiFailure::with(
                ErrorCode::UnsupportedDocumentType,
                "该文档不是 Word 文件，无需转换；请直接预览。",
                "Not a Word document: nothing to convert; preview it directly.",
            ),
            e => crate::documents::http::failure(e),
        })?;
    Ok(([(header::CONTENT_TYPE, "application/pdf")], pdf).into_response())
}

async fn pin(
    State(state): State<AppState>,
    rid: RequestId,
    call: DeviceWriteCall,
) -> Result<impl IntoResponse, ApiFailure> {
    let device = state.keys.device();
    let unlocked = async {
        let req: PinUnlock = parse(&call.body)?;
        rounds::pin(
            &state.db,
            &*device,
            &call.device,
            &call.nonce,
            &req,
            state.config.cosign.max_pin_failures,
            now_ms(),
        )
        .await
    }
    .await;
    let unlocked = call.nonce.settle(&state.db, unlocked).await;
    if let Err(e) = &unlocked
        && e.code() == ErrorCode::KeyLocked
    {
        audit_outcome(
            &state,
            &format!("staff:{}", call.device.staff_id),
            "cosign.pin.locked",
            &call.device.device_id,
            "denied",
            &rid.0,
            serde_json::json!({}),
        )
        .await?;
    }
    Ok(Json(unlocked?))
}

/// `POST /api/v1/phone/unbind`: the phone gives up its enrolment. With the certificate, the
/// doctor's live auto-sign authorisations go too (they were granted under it, and a doctor who
/// revokes it expects nothing more signed in their name); both before the device itself, so a
/// retry after a lost answer can still finish (`devices::unbind_certificate`).
async fn unbind(
    State(state): State<AppState>,
    rid: RequestId,
    call: DeviceWriteCall,
) -> Result<impl IntoResponse, ApiFailure> {
    let device = state.keys.device();
    let d = &call.device;
    let unbound = async {
        let req: UnbindDevice = if call.body.is_empty() {
            UnbindDevice::default()
        } else {
            parse(&call.body)?
        };
        let cert = devices::unbind_certificate(&state.db, &state.pki, d, &call.nonce, &req).await?;
        let mut authorisations = 0;
        if cert {
            let live =
                crate::signing::autosign::list(&state.db, &*device, Some(&d.staff_id), now_ms())
                    .await?
                    .into_iter()
                    .filter(|a| a.state == "active" || a.state == "pending");
            for a in live {
                let revoked = super::autosign::revoke_audited(
                    &state,
                    &a.authorisation_id,
                    Some(&d.staff_id),
                    &format!("staff:{}", d.staff_id),
                    Some("解绑设备并吊销证书 / device unbound, certificate revoked"),
                    &rid.0,
                )
                .await;
                match revoked {
                    Ok(_) => authorisations += 1,
                    // Revoked meanwhile (the phone's retry, an administrator): already done.
                    Err(e) if e.code() == ErrorCode::AlreadyRevoked => {}
                    Err(e) => return Err(e),
                }
            }
        }
        devices::unbind(
            &state.db,
            &*device,
            (&state.audit, &rid.0),
            d,
            &call.nonce,
            &req,
            (cert, authorisations),
            now_ms(),
        )
        .await
    }
    .await;
    let unbound = call.nonce.settle(&state.db, unbound).await?;
    state.hub.notify(&devices::hub_id(&unbound.device_id));
    Ok(Json(unbound))
}

async fn start_round(
    State(state): State<AppState>,
    call: DeviceWriteCall,
) -> Result<impl IntoResponse, ApiFailure> {
    let device = state.keys.device();
    let started = async {
        let req: StartRound = parse(&call.body)?;
        rounds::start(
            &state.db,
            &*device,
            &state.pki,
            &call.device,
            &call.nonce,
            &req,
            now_ms(),
        )
        .await
    }
    .await;
    let started = call.nonce.settle(&state.db, started).await?;
    Ok((StatusCode::CREATED, Json(started)))
}

async fn commit_round(
    State(state): State<AppState>,
    Path(id): Path<String>,
    call: DeviceWriteCall,
) -> Result<impl IntoResponse, ApiFailure> {
    let device = state.keys.device();
    let partial = async {
        let req: RoundCommit = parse(&call.body)?;
        rounds::commit(
            &state.db,
            &*device,
            &call.device,
            &call.nonce,
            &id,
            &req,
            now_ms(),
        )
        .await
    }
    .await;
    Ok(Json(call.nonce.settle(&state.db, partial).await?))
}

async fn finish_round(
    State(state): State<AppState>,
    rid: RequestId,
    Path(id): Path<String>,
    call: DeviceWriteCall,
) -> Result<impl IntoResponse, ApiFailure> {
    let finished = async {
        let req: RoundResult = parse(&call.body)?;
        rounds::finish(
            &state.db,
            &state.pki,
            (&state.audit, &rid.0),
            &call.device,
            &call.nonce,
            &id,
            &req,
            now_ms(),
        )
        .await
    }
    .await;
    // Audited by `finish`, in the transaction that stored the signatures.
    let (outcome, touched) = call.nonce.settle(&state.db, finished).await?;
    for r in &touched {
        state.hub.notify(r);
        // A co-signed auto-sign authorisation becomes active now (the phone may also ask).
        super::autosign::activate_carried(&state, r, &call.device.staff_id, &rid.0).await;
    }
    Ok(Json(outcome))
}
