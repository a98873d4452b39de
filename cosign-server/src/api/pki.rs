//! PKI routes: `POST /tsa` (RFC 3161), `GET|POST /ocsp` (RFC 6960), `GET /pki` (index),
//! `GET /pki/<name>.crt|.pem|.crl`, the administrators' issue/revoke API and the GM/T 0033 view
//! of a recorded time-stamp token. /tsa and /ocsp answer protocol errors in their own formats
//! (PKIStatus rejection, OCSP malformedRequest); everything else errs in JSON.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use cosign_proto::v1::ErrorCode;
use serde::Deserialize;

use super::auth::Admin;
use super::{ApiFailure, ApiJson, AppState, RequestId};
use crate::audit::Event;
use crate::clock::now_ms;
use crate::pki::external::{ExternalError, ExternalSubject, ImportInput};
use crate::pki::{
    Actor, CAS, IssueProfile, IssuedCertificate, PkiError, reason_code, reason_name, unix_ms,
};
use crate::store::pki_external::{
    ExternalCaRow, ExternalCertificateRow, ExternalCrlRow, ExternalRequestRow,
};

/// Largest body accepted by /tsa and /ocsp (real requests are a few hundred bytes).
const PROTOCOL_BODY_LIMIT: usize = 64 * 1024;
const MAX_CSR_FIELD: usize = 16 * 1024;

/// The PKI routes.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/tsa",
            post(tsa).layer(DefaultBodyLimit::max(PROTOCOL_BODY_LIMIT)),
        )
        .route(
            "/ocsp",
            post(ocsp_post).layer(DefaultBodyLimit::max(PROTOCOL_BODY_LIMIT)),
        )
        .route("/ocsp/{*request}", get(ocsp_get))
        .route("/pki", get(index))
        .route("/pki/{file}", get(pki_file))
        .route("/api/v1/pki/certificates", post(issue))
        .route("/api/v1/pki/certificates/{serial}/revoke", post(revoke))
        .route("/api/v1/pki/certificates/{serial}/renew", post(renew))
        .route("/api/v1/tsa/tokens/{serial}", get(token))
        .merge(external_routes())
}

fn typed(content_type: &'static str, body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// `POST /tsa`: DER TimeStampReq → DER TimeStampResp (always; garbage gets a rejection).
async fn tsa(State(state): State<AppState>, body: Bytes) -> Response {
    let resp = state.pki.timestamp(body.to_vec()).await;
    typed("application/timestamp-reply", resp)
}

/// `POST /ocsp`: DER OCSPRequest → OCSPResponse.
async fn ocsp_post(State(state): State<AppState>, body: Bytes) -> Response {
    let resp = state.pki.ocsp(&state.db, body.to_vec()).await;
    typed("application/ocsp-response", resp)
}

/// `GET /ocsp/<base64 request>` (RFC 6960 A.1; the path is already percent-decoded).
async fn ocsp_get(State(state): State<AppState>, Path(request): Path<String>) -> Response {
    let resp = state.pki.ocsp_get(&state.db, &request).await;
    typed("application/ocsp-response", resp)
}

/// `GET /pki`: every CA's certificate and CRL URL, the TSA and OCSP certificates.
async fn index(State(state): State<AppState>) -> Json<serde_json::Value> {
    let base = state.pki.public_url().to_owned();
    let entries: Vec<serde_json::Value> = state
        .pki
        .authorities()
        .map(|a| {
            let mut v = serde_json::json!({
                "name": a.name,
                "kind": a.kind,
                "issuer": if a.issuer.is_empty() { a.name.as_str() } else { a.issuer.as_str() },
                "subject": a.cert.subject_string(),
                "serial": a.cert.serial_hex(),
                "not_before": crate::clock::rfc3339(unix_ms(a.cert.not_before())),
                "not_after": crate::clock::rfc3339(unix_ms(a.cert.not_after())),
                "certificate": format!("{base}/pki/{}.crt", a.name),
                "pem": format!("{base}/pki/{}.pem", a.name),
            });
            if a.kind == "ca" {
                v["crl"] = format!("{base}/pki/{}.crl", a.name).into();
            }
            v
        })
        .collect();
    Json(serde_json::json!({
        "authorities": entries,
        "tsa": format!("{base}/tsa"),
        "ocsp": format!("{base}/ocsp"),
    }))
}

/// `GET /pki/<name>.crt` (DER), `.pem`, `.crl` (DER, rebuilt when stale).
async fn pki_file(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, ApiFailure> {
    let (name, ext) = file
        .rsplit_once('.')
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    let authority = state
        .pki
        .authority(name)
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    match ext {
        "crt" | "cer" | "der" => Ok(typed(
            "application/pkix-cert",
            authority.cert.der().to_vec(),
        )),
        "pem" => Ok(typed(
            "application/x-pem-file",
            authority.cert.to_pem().into_bytes(),
        )),
        "crl" => match state.pki.crl(&state.db, name).await? {
            Some(der) => Ok(typed("application/pkix-crl", der)),
            None => Err(ApiFailure::new(ErrorCode::NotFound)),
        },
        _ => Err(ApiFailure::new(ErrorCode::NotFound)),
    }
}

pub(crate) fn pki_failure(e: PkiError) -> ApiFailure {
    match e {
        PkiError::UnknownCa(ca) => ApiFailure::with(
            ErrorCode::UnknownCa,
            format!(
                "未知的签发 CA：{ca}，请使用 staff（医护人员）、patient（患者事件）或 seal（机构印章）。"
            ),
            format!("Unknown issuing CA {ca:?}: use staff, patient or seal."),
        ),
        PkiError::ProfileMismatch { ca, profile } => ApiFailure::with(
            ErrorCode::InvalidProfile,
            format!("{ca} CA 不签发 {profile} 类证书，请更换 CA 或证书模板。"),
            format!(
                "The {ca} CA does not issue {profile} certificates; choose another CA or profile."
            ),
        ),
        PkiError::InvalidField { field, reason } => {
            let code = if field == "resident_id" {
                ErrorCode::InvalidResidentId
            } else {
                ErrorCode::InvalidProfile
            };
            ApiFailure::with(
                code,
                format!("字段 {field} 无效：{reason}"),
                format!("Invalid {field}: {reason}"),
            )
        }
        PkiError::Invalid(text) => ApiFailure::with(
            ErrorCode::InvalidArgument,
            format!("请求参数无效：{text}"),
            format!("Invalid parameter: {text}"),
        ),
        PkiError::InvalidCsr(text) => {
            let (zh, en) = ErrorCode::InvalidCsr.messages();
            ApiFailure::with(
                ErrorCode::InvalidCsr,
                format!("{zh}（{text}）"),
                format!("{en} ({text})"),
            )
        }
        PkiError::NotFound => ApiFailure::with(
            ErrorCode::NotFound,
            "没有该序列号的证书，请核对序列号（十六进制）。",
            "No certificate has this serial number; check the (hex) serial.",
        ),
        PkiError::AlreadyRevoked => ApiFailure::new(ErrorCode::AlreadyRevoked),
        PkiError::NotRenewable(text) => {
            let (zh, en) = ErrorCode::NotRenewable.messages();
            ApiFailure::with(
                ErrorCode::NotRenewable,
                format!("{zh}（{text}）"),
                format!("{en} ({text})"),
            )
        }
        PkiError::Server(e) => e.into(),
    }
}

pub(super) fn require_issuer_role(admin: &Admin) -> Result<(), ApiFailure> {
    // 三权分立: the auditor reads, the system and security administrators manage certificates.
    if matches!(admin.0.role(), "sysadmin" | "secadmin") {
        Ok(())
    } else {
        Err(ApiFailure::new(ErrorCode::Forbidden))
    }
}

/// Serial numbers in URLs: 1–40 hex digits, normalised to lowercase.
fn parse_serial(serial: &str) -> Result<String, ApiFailure> {
    if serial.is_empty() || serial.len() > 40 || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiFailure::with(
            ErrorCode::InvalidArgument,
            "序列号须为 1–40 位十六进制数字。",
            "The serial number must be 1–40 hex digits.",
        ));
    }
    Ok(serial.to_ascii_lowercase())
}

/// Body of `POST /api/v1/pki/certificates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueRequest {
    /// `staff`, `organisation`, `patient_event` or `device`.
    profile: String,
    /// The profile's fields (see `gm_pki::profile`): they make the subject.
    subject: serde_json::Value,
    /// Issuing CA; default: the profile's (staff, seal, patient, seal).
    ca: Option<String>,
    /// PKCS#10 request: PEM text, or base64 DER. Only its key is certified (after the
    /// proof-of-possession check); its subject is ignored.
    csr: String,
    /// Validity in days (staff, organisation, device; default 365, at most 1825).
    validity_days: Option<u32>,
    /// Validity in minutes (patient events; default 10, at most 1440).
    validity_minutes: Option<u32>,
}

fn invalid_profile(zh: String, en: String) -> ApiFailure {
    ApiFailure::with(ErrorCode::InvalidProfile, zh, en)
}

fn profile_from(name: &str, subject: serde_json::Value) -> Result<IssueProfile, ApiFailure> {
    fn fields<T: serde::de::DeserializeOwned>(
        name: &str,
        subject: serde_json::Value,
    ) -> Result<T, ApiFailure> {
        serde_json::from_value(subject).map_err(|e| {
            invalid_profile(
                format!("{name} 证书的 subject 字段有误：{e}"),
                format!("The subject fields of a {name} certificate are wrong: {e}"),
            )
        })
    }
    Ok(match name {
        "staff" => IssueProfile::Staff(fields(name, subject)?),
        "organisation" => IssueProfile::Organisation(fields(name, subject)?),
        "patient_event" => IssueProfile::PatientEvent(fields(name, subject)?),
        "device" => IssueProfile::Device(fields(name, subject)?),
        _ => {
            return Err(invalid_profile(
                "未知的证书模板，请使用 staff、organisation、patient_event 或 device。".into(),
                "Unknown certificate profile; use staff, organisation, patient_event or device."
                    .into(),
            ));
        }
    })
}

/// The validity a request asks for: days for long-lived profiles, minutes for patient events.
fn validity_of(
    profile: &IssueProfile,
    days: Option<u32>,
    minutes: Option<u32>,
) -> Result<Duration, ApiFailure> {
    let event = matches!(profile, IssueProfile::PatientEvent(_));
    let secs = match (days, minutes) {
        (None, None) if event => Some(10 * 60),
        (None, None) => Some(365 * 86_400),
        (Some(d), None) if !event => Some(u64::from(d) * 86_400),
        (None, Some(m)) if event => Some(u64::from(m) * 60),
        _ => None,
    };
    secs.map(Duration::from_secs).ok_or_else(|| {
        invalid_profile(
            "有效期：患者事件证书请用 validity_minutes，其他证书请用 validity_days（二者只能给一个）。"
                .into(),
            "Validity: patient event certificates take validity_minutes, the others validity_days (one of them)."
                .into(),
        )
    })
}

/// A CSR field: PEM text or base64 DER, at most 16 KiB.
fn csr_bytes(csr: &str) -> Result<Vec<u8>, ApiFailure> {
    if csr.len() > MAX_CSR_FIELD {
        return Err(pki_failure(PkiError::InvalidCsr(
            "larger than 16 KiB".into(),
        )));
    }
    if csr.contains("-----BEGIN") {
        return Ok(csr.as_bytes().to_vec());
    }
    let compact: String = csr.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| pki_failure(PkiError::InvalidCsr("neither PEM nor base64 DER".into())))
}

fn issued_json(state: &AppState, issued: &IssuedCertificate) -> serde_json::Value {
    let chain: Vec<String> = [issued.ca.as_str(), "root"]
        .iter()
        .filter_map(|n| state.pki.authority(n))
        .map(|a| a.cert.to_pem())
        .collect();
    serde_json::json!({
        "ca": issued.ca,
        "profile": issued.profile,
        "serial": issued.serial(),
        "subject": issued.cert.subject_string(),
        "not_before": crate::clock::rfc3339(unix_ms(issued.cert.not_before())),
        "not_after": crate::clock::rfc3339(unix_ms(issued.cert.not_after())),
        "certificate_pem": issued.cert.to_pem(),
        "chain_pem": chain,
        "supersedes": issued.supersedes,
    })
}

/// 201 with the certificate, or the mapped refusal.
fn created(
    state: &AppState,
    issued: Result<IssuedCertificate, PkiError>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiFailure> {
    let issued = issued.map_err(pki_failure)?;
    Ok((StatusCode::CREATED, Json(issued_json(state, &issued))))
}

/// `POST /api/v1/pki/certificates`: issue a profile certificate for a CSR's key
/// (administrators; audited as `pki.issue`).
async fn issue(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    ApiJson(req): ApiJson<IssueRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiFailure> {
    require_issuer_role(&admin)?;
    let profile = profile_from(&req.profile, req.subject)?;
    let validity = validity_of(&profile, req.validity_days, req.validity_minutes)?;
    let ca = req.ca.unwrap_or_else(|| profile.default_ca().to_owned());
    let csr = csr_bytes(&req.csr)?;
    let actor = format!("admin:{}", admin.0.username());
    let issued = state
        .pki
        .issue_from_csr(
            &state.db,
            &ca,
            &csr,
            profile,
            validity,
            &Actor {
                name: &actor,
                request_id: &rid.0,
            },
        )
        .await;
    created(&state, issued)
}

/// Body of `POST /api/v1/pki/certificates/<serial>/renew`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewRequest {
    /// A new key's PKCS#10 request (re-key); absent: the old key is certified again.
    csr: Option<String>,
    /// Validity in days (default 365, at most 1825).
    validity_days: Option<u32>,
}

/// `POST /api/v1/pki/certificates/<serial>/renew`: same subject and profile, new validity
/// (and key); the old certificate is revoked as superseded (administrators; audited as
/// `pki.renew`).
async fn renew(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    Path(serial): Path<String>,
    ApiJson(req): ApiJson<RenewRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiFailure> {
    require_issuer_role(&admin)?;
    let serial = parse_serial(&serial)?;
    let new_key = match &req.csr {
        Some(csr) => Some(
            crate::pki::parse_csr(&csr_bytes(csr)?)
                .map_err(pki_failure)?
                .public_key(),
        ),
        None => None,
    };
    let validity = Duration::from_secs(u64::from(req.validity_days.unwrap_or(365)) * 86_400);
    let actor = format!("admin:{}", admin.0.username());
    let issued = state
        .pki
        .renew(
            &state.db,
            &serial,
            new_key.as_ref(),
            validity,
            &Actor {
                name: &actor,
                request_id: &rid.0,
            },
        )
        .await;
    created(&state, issued)
}

/// Body of `POST /api/v1/pki/certificates/<serial>/revoke`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    /// RFC 5280 reason name (`keyCompromise`, `superseded`, ...); default `unspecified`.
    reason: Option<String>,
}

/// `POST /api/v1/pki/certificates/<serial>/revoke` (administrators; audited).
async fn revoke(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    Path(serial): Path<String>,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> Result<Json<serde_json::Value>, ApiFailure> {
    require_issuer_role(&admin)?;
    let serial = parse_serial(&serial)?;
    let reason_text = req.reason.unwrap_or_else(|| "unspecified".to_owned());
    let reason = reason_code(&reason_text).ok_or_else(|| {
        ApiFailure::with(
            ErrorCode::InvalidArgument,
            "吊销原因无效，可用：unspecified、keyCompromise、cACompromise、affiliationChanged、superseded、cessationOfOperation、certificateHold、privilegeWithdrawn、aACompromise。",
            "Unknown revocation reason; use unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn or aACompromise.",
        )
    })?;
    let issuer = state
        .pki
        .revoke(&state.db, &serial, reason)
        .await
        .map_err(pki_failure)?;
    let actor = format!("admin:{}", admin.0.username());
    state
        .audit
        .append(
            &state.db,
            now_ms(),
            &Event {
                actor: &actor,
                action: "pki.revoke",
                target: &serial,
                outcome: "ok",
                detail: serde_json::json!({ "ca": issuer, "reason": reason_name(reason) }),
                request_id: &rid.0,
            },
        )
        .await?;
    Ok(Json(serde_json::json!({
        "serial": serial,
        "ca": issuer,
        "revoked": true,
        "reason": reason_name(reason),
        "crl": CAS.contains(&issuer.as_str()).then(|| format!("{}/pki/{issuer}.crl", state.pki.public_url())),
    })))
}

/// `GET /api/v1/tsa/tokens/<serial>`: the GM/T 0033 view of a token this TSA granted.
async fn token(
    State(state): State<AppState>,
    Path(serial): Path<String>,
) -> Result<Json<serde_json::Value>, ApiFailure> {
    let serial = parse_serial(&serial)?;
    match state.pki.token_view(&state.db, &serial).await? {
        Some(view) => Ok(Json(view)),
        None => Err(ApiFailure::with(
            ErrorCode::NotFound,
            "没有该序列号的时间戳，请核对序列号（十六进制）。",
            "No time-stamp token has this serial number; check the (hex) serial.",
        )),
    }
}

// ---- Certificates from accredited external CAs (see docs/crypto/pki.md, "External CAs") ----

/// Largest certificate / CRL field in the external routes (PEM text or base64 DER).
const MAX_EXTERNAL_FIELD: usize = 256 * 1024;
/// Default and largest page of `GET /api/v1/pki/certificates/list`.
const LIST_DEFAULT: i64 = 100;
const LIST_MAX: i64 = 1000;

fn external_routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/pki/external", get(external_overview))
        .route("/api/v1/pki/external/anchors", post(trust_anchors))
        .route(
            "/api/v1/pki/external/anchors/{fingerprint}/remove",
            post(remove_anchor),
        )
        .route("/api/v1/pki/external/requests", post(external_request))
        .route("/api/v1/pki/external/crls", post(add_crls))
        .route(
            "/api/v1/pki/external/certificates",
            post(import_certificate),
        )
        .route(
            "/api/v1/pki/external/certificates/{fingerprint}",
            get(external_certificate),
        )
        .route("/api/v1/pki/certificates/list", get(list_certificates))
}

pub(crate) fn external_failure(e: ExternalError) -> ApiFailure {
    let with_detail = |code: ErrorCode, detail: &str| {
        let (zh, en) = code.messages();
        ApiFailure::with(
            code,
            format!("{zh}（{detail}）"),
            format!("{en} ({detail})"),
        )
    };
    match e {
        ExternalError::Garbage(d) => with_detail(ErrorCode::InvalidCertificate, &d),
        ExternalError::NotCa(d) => with_detail(ErrorCode::NotACaCertificate, &d),
        ExternalError::Expired(d) => with_detail(ErrorCode::CertificateExpired, &d),
        ExternalError::NotYetValid(d) => with_detail(ErrorCode::CertificateNotYetValid, &d),
        ExternalError::UnknownAnchor(d) => with_detail(ErrorCode::UnknownTrustAnchor, &d),
        ExternalError::BrokenChain(d) => with_detail(ErrorCode::BrokenChain, &d),
        ExternalError::WrongUsage(d) => with_detail(ErrorCode::WrongKeyUsage, &d),
        ExternalError::Revoked(d) => with_detail(ErrorCode::CertificateRevoked, &d),
        ExternalError::KeyMismatch(d) => with_detail(ErrorCode::KeyMismatch, &d),
        ExternalError::AlreadyImported => ApiFailure::new(ErrorCode::AlreadyImported),
        ExternalError::NotFound => ApiFailure::with(
            ErrorCode::NotFound,
            "没有该指纹的外部证书或该编号的证书请求，请核对后重试。",
            "No external certificate with this fingerprint, or no request with this id; check it.",
        ),
        ExternalError::Invalid(d) => ApiFailure::with(
            ErrorCode::InvalidArgument,
            format!("请求参数无效：{d}"),
            format!("Invalid parameter: {d}"),
        ),
        ExternalError::Server(e) => e.into(),
    }
}

/// A certificate or CRL field: PEM text, or base64 of DER (one object or several
/// concatenated), at most 256 KiB.
fn pem_or_base64(field: &str, value: &str) -> Result<Vec<u8>, ApiFailure> {
    if value.len() > MAX_EXTERNAL_FIELD {
        return Err(external_failure(ExternalError::Garbage(format!(
            "{field} larger than 256 KiB"
        ))));
    }
    if value.contains("-----BEGIN") {
        return Ok(value.as_bytes().to_vec());
    }
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| {
            external_failure(ExternalError::Garbage(format!(
                "{field} is neither PEM nor base64 DER"
            )))
        })
}

/// Fingerprints in URLs: 64 hex digits (SM3), normalised to lowercase.
fn parse_fingerprint(fp: &str) -> Result<String, ApiFailure> {
    if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiFailure::with(
            ErrorCode::InvalidArgument,
            "指纹须为 64 位十六进制数字（证书 DER 的 SM3 摘要）。",
            "The fingerprint must be 64 hex digits (SM3 of the certificate's DER).",
        ));
    }
    Ok(fp.to_ascii_lowercase())
}

fn ms(at: i64) -> String {
    crate::clock::rfc3339(at)
}

fn anchor_json(r: &ExternalCaRow) -> serde_json::Value {
    serde_json::json!({
        "fingerprint": r.fingerprint,
        "kind": r.kind,
        "subject": r.subject,
        "issuer": r.issuer,
        "serial": r.serial,
        "not_before": ms(r.not_before),
        "not_after": ms(r.not_after),
        "added_by": r.added_by,
        "added_at": ms(r.created_at),
        "certificate_pem": gm_pki::pem_encode("CERTIFICATE", &r.der),
    })
}

fn request_json(r: &ExternalRequestRow) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "subject": r.subject,
        "key_id": r.key_id,
        "csr_pem": gm_pki::pem_encode("CERTIFICATE REQUEST", &r.csr),
        "certificate": r.certificate,
        "status": if r.certificate.is_some() { "issued" } else { "pending" },
        "requested_by": r.requested_by,
        "created_at": ms(r.created_at),
    })
}

fn external_cert_json(r: &ExternalCertificateRow) -> serde_json::Value {
    serde_json::json!({
        "external": true,
        "fingerprint": r.fingerprint,
        "serial": r.serial,
        "subject": r.subject,
        "issuer": r.issuer,
        "anchor": r.anchor,
        "request_id": r.request_id,
        "key_id": r.key_id,
        "not_before": ms(r.not_before),
        "not_after": ms(r.not_after),
        "imported_by": r.imported_by,
        "imported_at": ms(r.created_at),
        "certificate_pem": gm_pki::pem_encode("CERTIFICATE", &r.der),
        "chain_pem": r.chain,
    })
}

fn actor_name(admin: &Admin) -> String {
    format!("admin:{}", admin.0.username())
}

/// `GET /api/v1/pki/external`: trusted external CAs, stored CRLs, the newest 1000 requests and
/// imported certificates (administrators, the auditor included).
async fn external_overview(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<serde_json::Value>, ApiFailure> {
    let anchors: Vec<_> = state
        .db
        .external_cas()
        .await?
        .iter()
        .map(anchor_json)
        .collect();
    let requests: Vec<_> = state
        .db
        .external_requests(LIST_MAX)
        .await?
        .iter()
        .map(request_json)
        .collect();
    let certificates: Vec<_> = state
        .db
        .external_certificates(LIST_MAX)
        .await?
        .iter()
        .map(external_cert_json)
        .collect();
    let crls: Vec<_> = state
        .db
        .external_crls()
        .await?
        .iter()
        .map(crl_json)
        .collect();
    Ok(Json(serde_json::json!({
        "anchors": anchors,
        "crls": crls,
        "requests": requests,
        "certificates": certificates,
    })))
}

/// Body of `POST /api/v1/pki/external/anchors`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustRequest {
    /// Root and intermediate CA certificates: PEM (a bundle allowed) or base64 DER.
    certificates: String,
}

/// `POST /api/v1/pki/external/anchors`: trust external CA certificates (audited).
async fn trust_anchors(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    ApiJson(req): ApiJson<TrustRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiFailure> {
    require_issuer_role(&admin)?;
    let bytes = pem_or_base64("certificates", &req.certificates)?;
    let actor = actor_name(&admin);
    let rows = state
        .pki
        .trust_external(
            &state.db,
            &bytes,
            &Actor {
                name: &actor,
                request_id: &rid.0,
            },
        )
        .await
        .map_err(external_failure)?;
    let out: Vec<_> = rows
        .iter()
        .map(|(r, added)| {
            let mut v = anchor_json(r);
            v["added"] = (*added).into();
            v
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "anchors": out })),
    ))
}

/// `POST /api/v1/pki/external/anchors/<fingerprint>/remove`: stop trusting one (audited).
async fn remove_anchor(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    Path(fingerprint): Path<String>,
) -> Result<Json<serde_json::Value>, ApiFailure> {
    require_issuer_role(&admin)?;
    let fingerprint = parse_fingerprint(&fingerprint)?;
    let actor = actor_name(&admin);
    let row = state
        .pki
        .untrust_external(
            &state.db,
            &fingerprint,
            &Actor {
                name: &actor,
                request_id: &rid.0,
            },
        )
        .await
        .map_err(external_failure)?;
    Ok(Json(serde_json::json!({
        "fingerprint": row.fingerprint,
        "kind": row.kind,
        "subject": row.subject,
        "removed": true,
    })))
}

fn crl_json(r: &ExternalCrlRow) -> serde_json::Value {
    serde_json::json!({
        "ca": r.ca,
        "issuer": r.issuer,
        "this_update": ms(r.this_update),
        "next_update": (r.next_update != i64::MAX).then(|| ms(r.next_update)),
        "added_by": r.added_by,
        "added_at": ms(r.created_at),
    })
}

/// Body of `POST /api/v1/pki/external/crls`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CrlUpload {
    /// CRLs of trusted external CAs: PEM (`X509 CRL` blocks) or base64 DER.
    crls: String,
}

/// `POST /api/v1/pki/external/crls`: store CRLs of trusted external CAs for the revocation
/// checks of later imports (audited).
async fn add_crls(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    ApiJson(req): ApiJson<CrlUpload>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiFailure> {
    require_issuer_role(&admin)?;
    let bytes = pem_or_base64("crls", &req.crls)?;
    let actor = actor_name(&admin);
    let rows = state
        .pki
        .add_external_crls(
            &state.db,
            &bytes,
            &Actor {
                name: &actor,
                request_id: &rid.0,
            },
        )
        .await
        .map_err(external_failure)?;
    let out: Vec<_> = rows
        .iter()
        .map(|(r, stored)| {
            let mut v = crl_json(r);
            v["stored"] = (*stored).into();
            v
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "crls": out })),
    ))
}

/// Body of `POST /api/v1/pki/external/requests`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExternalRequestBody {
    /// The proposed subject.
    subject: ExternalSubject,
}

/// `POST /api/v1/pki/external/requests`: a key in the crypto device and its PKCS#10 request,
/// to hand to an external CA (audited).
async fn external_request(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    ApiJson(req): ApiJson<ExternalRequestBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiFailure> {
    require_issuer_role(&admin)?;
    let actor = actor_name(&admin);
    let row = state
        .pki
        .external_request(
            &state.db,
            &req.subject,
            &Actor {
                name: &actor,
                request_id: &rid.0,
            },
        )
        .await
        .map_err(external_failure)?;
    Ok((StatusCode::CREATED, Json(request_json(&row))))
}

/// Body of `POST /api/v1/pki/external/certificates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportRequest {
    /// The certificate, optionally followed by its chain: PEM, or base64 DER.
    certificates: String,
    /// More chain certificates (PEM or base64 DER).
    chain: Option<String>,
    /// CRLs of the chain's CAs (PEM or base64 DER), checked for revocation.
    crls: Option<String>,
    /// The request it answers (default: found by the certificate's key).
    request_id: Option<String>,
}

/// `POST /api/v1/pki/external/certificates`: import a certificate an external CA issued for
/// one of our requests (path validated to a trusted anchor; audited).
async fn import_certificate(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    ApiJson(req): ApiJson<ImportRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiFailure> {
    require_issuer_role(&admin)?;
    let certificates = pem_or_base64("certificates", &req.certificates)?;
    let chain = req
        .chain
        .as_deref()
        .map(|c| pem_or_base64("chain", c))
        .transpose()?;
    let crls = req
        .crls
        .as_deref()
        .map(|c| pem_or_base64("crls", c))
        .transpose()?;
    if let Some(id) = &req.request_id
        && uuid::Uuid::parse_str(id).is_err()
    {
        return Err(ApiFailure::with(
            ErrorCode::InvalidArgument,
            "request_id 须为证书请求的编号（UUID）。",
            "request_id must be a certification request id (UUID).",
        ));
    }
    let actor = actor_name(&admin);
    let row = state
        .pki
        .import_external(
            &state.db,
            ImportInput {
                certificates: &certificates,
                chain: chain.as_deref(),
                crls: crls.as_deref(),
                request_id: req.request_id.as_deref(),
            },
            &Actor {
                name: &actor,
                request_id: &rid.0,
            },
        )
        .await
        .map_err(external_failure)?;
    Ok((StatusCode::CREATED, Json(external_cert_json(&row))))
}

/// `GET /api/v1/pki/external/certificates/<fingerprint>`: an imported certificate with its
/// chain (administrators).
async fn external_certificate(
    State(state): State<AppState>,
    _admin: Admin,
    Path(fingerprint): Path<String>,
) -> Result<Json<serde_json::Value>, ApiFailure> {
    let fingerprint = parse_fingerprint(&fingerprint)?;
    match state.db.external_certificate(&fingerprint).await? {
        Some(row) => Ok(Json(external_cert_json(&row))),
        None => Err(external_failure(ExternalError::NotFound)),
    }
}

/// Query of `GET /api/v1/pki/certificates/list`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Most rows of each kind (default 100, at most 1000).
    limit: Option<i64>,
}

/// `GET /api/v1/pki/certificates/list`: the newest certificates of our CAs and the imported
/// external ones together, newest first, each with `external` true/false (administrators).
async fn list_certificates(
    State(state): State<AppState>,
    _admin: Admin,
    query: Result<axum::extract::Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiFailure> {
    let bad_limit = || {
        ApiFailure::with(
            ErrorCode::InvalidArgument,
            "limit 须为 1–1000 的整数。",
            "limit must be an integer from 1 to 1000.",
        )
    };
    let axum::extract::Query(q) = query.map_err(|_| bad_limit())?;
    let limit = q.limit.unwrap_or(LIST_DEFAULT);
    if !(1..=LIST_MAX).contains(&limit) {
        return Err(bad_limit());
    }
    let mut all: Vec<(i64, serde_json::Value)> = state
        .db
        .recent_certificates(limit)
        .await?
        .into_iter()
        .map(|c| {
            (
                c.created_at,
                serde_json::json!({
                    "external": false,
                    "ca": c.issuer,
                    "profile": c.profile,
                    "serial": c.serial,
                    "subject": c.subject,
                    "not_before": ms(c.not_before),
                    "not_after": ms(c.not_after),
                    "revoked": c.revoked_at.is_some(),
                }),
            )
        })
        .collect();
    all.extend(
        state
            .db
            .external_certificates(limit)
            .await?
            .iter()
            .map(|r| (r.created_at, external_cert_json(r))),
    );
    all.sort_by_key(|e| std::cmp::Reverse(e.0));
    let certificates: Vec<serde_json::Value> = all
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(100))
        .map(|(_, v)| v)
        .collect();
    Ok(Json(serde_json::json!({ "certificates": certificates })))
}
