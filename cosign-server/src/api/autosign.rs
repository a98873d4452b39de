//! Auto-sign authorisations (phones and administrators) and the administration of client
//! systems' permissions and rate limits (issue 6). Logic: `crate::signing::autosign`,
//! `crate::signing::clients`; design: docs/cosign-service.md.
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /api/v1/phone/autosign` | phone | ask for an authorisation → its document inside a signing request to co-sign |
//! | `GET /api/v1/phone/autosign/list` | phone | the doctor's authorisations |
//! | `GET /api/v1/phone/autosign/{id}` | phone | one of them |
//! | `POST /api/v1/phone/autosign/{id}/activate` | phone | activate after co-signing (idempotent; the round's result already tries) |
//! | `POST /api/v1/phone/autosign/{id}/revoke` | phone | revoke at once |
//! | `GET /api/v1/admin/autosign?staff_id=` | administrators | list |
//! | `GET /api/v1/admin/autosign/{id}` | administrators | one |
//! | `POST /api/v1/admin/autosign/{id}/revoke` | sysadmin / secadmin | revoke at once |
//! | `GET /api/v1/autosign/{id}` | client systems (`sign_request:read`) | an authorisation an auto-signature names (relying parties) |
//! | `GET /api/v1/admin/apps/list` | administrators | client systems |
//! | `GET /api/v1/admin/apps/{id}` | administrators | one |
//! | `POST /api/v1/admin/apps/{id}/update` | sysadmin / secadmin | permissions, rate limit, enabled |

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::cosign::{CreateAuthorisation, RevokeAuthorisation, UpdateClientApp};
use serde::Deserialize;

use super::auth::Admin;
use super::cosign::{AppCall, DeviceCall, audit, audit_outcome, parse, require_manager};
use super::{ApiFailure, ApiJson, AppState, RequestId};
use crate::clock::now_ms;
use crate::pki::Actor;
use crate::signing::autosign::{self, Ctx};
use crate::signing::{clients, rounds};

/// The routes.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/phone/autosign", post(phone_create))
        .route("/api/v1/phone/autosign/list", get(phone_list))
        .route("/api/v1/phone/autosign/{id}", get(phone_view))
        .route("/api/v1/phone/autosign/{id}/activate", post(phone_activate))
        .route("/api/v1/phone/autosign/{id}/revoke", post(phone_revoke))
        .route("/api/v1/admin/autosign", get(admin_list))
        .route("/api/v1/admin/autosign/{id}", get(admin_view))
        .route("/api/v1/admin/autosign/{id}/revoke", post(admin_revoke))
        .route("/api/v1/autosign/{id}", get(app_view))
        .route("/api/v1/admin/apps/list", get(list_apps))
        .route("/api/v1/admin/apps/{id}", get(get_app))
        .route("/api/v1/admin/apps/{id}/update", post(update_app))
}

fn ctx<'a>(
    state: &'a AppState,
    device: &'a std::sync::Arc<dyn crypto_device::CryptoDevice>,
) -> Ctx<'a> {
    Ctx {
        db: &state.db,
        device,
        pki: &state.pki,
        hospital: &state.config.pki.organisation,
        public_url: &state.config.public_url,
        max_window: state.config.autosign.max_window,
        policy_oid: &state.config.autosign.policy_oid,
    }
}

/// Activates the authorisation carried by `request_id` if there is one (called after a
/// round completes it). Failures are logged: the phone's `activate` call retries.
pub(super) async fn activate_carried(
    state: &AppState,
    request_id: &str,
    staff_id: &str,
    rid: &str,
) {
    let id = match autosign::authorisation_of_request(&state.db, request_id).await {
        Ok(Some(id)) => id,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(code = ?e.code(), "auto-sign authorisation lookup failed");
            return;
        }
    };
    if let Err(e) = activate_audited(state, &id, staff_id, rid).await {
        tracing::warn!(code = ?e.code(), authorisation = %id, "auto-sign activation failed; the phone can retry");
    }
}

async fn activate_audited(
    state: &AppState,
    id: &str,
    staff_id: &str,
    rid: &str,
) -> Result<cosign_proto::v1::cosign::AuthorisationView, ApiFailure> {
    let device = state.keys.device();
    let actor = format!("staff:{staff_id}");
    let was_active = autosign::view(&state.db, id, now_ms())
        .await
        .is_ok_and(|v| v.state != "pending");
    let view = autosign::activate(
        ctx(state, &device),
        id,
        &Actor {
            name: &actor,
            request_id: rid,
        },
        now_ms(),
    )
    .await?;
    if !was_active && view.state == "active" {
        audit(
            state,
            &actor,
            "autosign.activate",
            id,
            rid,
            serde_json::json!({
                "certificate": view.delegated_certificate_serial,
                "doc_types": view.doc_types,
                "departments": view.departments,
                "not_before": view.not_before,
                "not_after": view.not_after,
                "document_sm3": view.document_sm3,
            }),
        )
        .await?;
    }
    Ok(view)
}

async fn phone_create(
    State(state): State<AppState>,
    rid: RequestId,
    call: DeviceCall,
) -> Result<impl IntoResponse, ApiFailure> {
    let req: CreateAuthorisation = parse(&call.body)?;
    let device = state.keys.device();
    let view = autosign::create(ctx(&state, &device), &call.device, &req, now_ms()).await?;
    state.hub.announce(&state.db, &view.request_id).await;
    audit(
        &state,
        &format!("staff:{}", call.device.staff_id),
        "autosign.create",
        &view.authorisation_id,
        &rid.0,
        serde_json::json!({
            "device": call.device.device_id,
            "doc_types": view.doc_types,
            "departments": view.departments,
            "not_before": view.not_before,
            "not_after": view.not_after,
            "request": view.request_id,
        }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn phone_list(
    State(state): State<AppState>,
    call: DeviceCall,
) -> Result<impl IntoResponse, ApiFailure> {
    rounds::active(&call.device)?;
    let device = state.keys.device();
    Ok(Json(
        autosign::list(&state.db, &*device, Some(&call.device.staff_id), now_ms()).await?,
    ))
}

async fn phone_view(
    State(state): State<AppState>,
    Path(id): Path<String>,
    call: DeviceCall,
) -> Result<impl IntoResponse, ApiFailure> {
    rounds::active(&call.device)?;
    Ok(Json(
        autosign::view_own(&state.db, &call.device.staff_id, &id, now_ms()).await?,
    ))
}

async fn phone_activate(
    State(state): State<AppState>,
    rid: RequestId,
    Path(id): Path<String>,
    call: DeviceCall,
) -> Result<impl IntoResponse, ApiFailure> {
    rounds::active(&call.device)?;
    // Someone else's authorisation is reported as absent.
    autosign::view_own(&state.db, &call.device.staff_id, &id, now_ms()).await?;
    Ok(Json(
        activate_audited(&state, &id, &call.device.staff_id, &rid.0).await?,
    ))
}

#[allow(clippy::too_many_arguments)] // the parts of one audited revocation
pub(super) async fn revoke_audited(
    state: &AppState,
    id: &str,
    owner: Option<&str>,
    actor: &str,
    reason: Option<&str>,
    rid: &str,
) -> Result<cosign_proto::v1::cosign::AuthorisationView, ApiFailure> {
    let device = state.keys.device();
    let result = autosign::revoke(ctx(state, &device), id, owner, actor, reason, now_ms()).await;
    let outcome = if result.is_ok() { "ok" } else { "denied" };
    audit_outcome(
        state,
        actor,
        "autosign.revoke",
        id,
        outcome,
        rid,
        serde_json::json!({
            "reason": reason,
            "certificate": result.as_ref().ok().map(|v| v.delegated_certificate_serial.clone()),
            "code": result.as_ref().err().map(ApiFailure::code),
        }),
    )
    .await?;
    let view = result?;
    state.hub.announce(&state.db, &view.request_id).await;
    Ok(view)
}

async fn phone_revoke(
    State(state): State<AppState>,
    rid: RequestId,
    Path(id): Path<String>,
    call: DeviceCall,
) -> Result<impl IntoResponse, ApiFailure> {
    rounds::active(&call.device)?;
    let req: RevokeAuthorisation = if call.body.is_empty() {
        RevokeAuthorisation::default()
    } else {
        parse(&call.body)?
    };
    let staff_id = call.device.staff_id.clone();
    Ok(Json(
        revoke_audited(
            &state,
            &id,
            Some(&staff_id),
            &format!("staff:{staff_id}"),
            req.reason.as_deref(),
            &rid.0,
        )
        .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    staff_id: Option<String>,
}

async fn admin_list(
    State(state): State<AppState>,
    _admin: Admin,
    Query(q): Query<ListQuery>,
) -> Result<impl IntoResponse, ApiFailure> {
    if q.staff_id.as_ref().is_some_and(|s| s.len() > 64) {
        return Err(ApiFailure::new(ErrorCode::InvalidArgument));
    }
    let device = state.keys.device();
    Ok(Json(
        autosign::list(&state.db, &*device, q.staff_id.as_deref(), now_ms()).await?,
    ))
}

async fn admin_view(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiFailure> {
    Ok(Json(autosign::view(&state.db, &id, now_ms()).await?))
}

async fn admin_revoke(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RevokeAuthorisation>,
) -> Result<impl IntoResponse, ApiFailure> {
    let actor = require_manager(&admin)?;
    Ok(Json(
        revoke_audited(&state, &id, None, &actor, req.reason.as_deref(), &rid.0).await?,
    ))
}

/// A relying party checking an auto-signature fetches the authorisation it names: the
/// document (whose SM3 the signature's attribute carries), its state and the certificate.
async fn app_view(
    State(state): State<AppState>,
    Path(id): Path<String>,
    call: AppCall,
) -> Result<impl IntoResponse, ApiFailure> {
    call.app.require("sign_request:read")?;
    Ok(Json(autosign::view(&state.db, &id, now_ms()).await?))
}

async fn list_apps(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<impl IntoResponse, ApiFailure> {
    Ok(Json(clients::list(&state.db).await?))
}

async fn get_app(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiFailure> {
    Ok(Json(clients::view(&state.db, &id).await?))
}

async fn update_app(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateClientApp>,
) -> Result<impl IntoResponse, ApiFailure> {
    let actor = require_manager(&admin)?;
    let (before, after) = state.clients.update(&state.db, &id, &req).await?;
    audit(
        &state,
        &actor,
        "cosign.app.update",
        &id,
        &rid.0,
        serde_json::json!({
            "before": { "permissions": before.permissions, "rate_per_minute": before.rate_per_minute, "burst": before.burst, "enabled": before.enabled },
            "after": { "permissions": after.permissions, "rate_per_minute": after.rate_per_minute, "burst": after.burst, "enabled": after.enabled },
        }),
    )
    .await?;
    Ok(Json(after))
}
