//! PKI routes: `POST /tsa` (RFC 3161), `GET|POST /ocsp` (RFC 6960), `GET /pki` (index),
//! `GET /pki/<name>.crt|.pem|.crl`, the administrators' issue/revoke API and the GM/T 0033 view
//! of a recorded time-stamp token. /tsa and /ocsp answer protocol errors in their own formats
//! (PKIStatus rejection, OCSP malformedRequest); everything else errs in JSON.

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
use crate::pki::{CAS, PkiError, reason_code, reason_name, unix_ms};

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
        .route("/api/v1/tsa/tokens/{serial}", get(token))
}

fn typed(content_type: &'static str, body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// `POST /tsa`: DER TimeStampReq → DER TimeStampResp (always; garbage gets a rejection).
async fn tsa(State(state): State<AppState>, body: Bytes) -> Response {
    let resp = state.pki.timestamp(&state.db, body.to_vec()).await;
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

fn pki_failure(e: PkiError) -> ApiFailure {
    match e {
        PkiError::UnknownCa(ca) => ApiFailure::with(
            ErrorCode::InvalidArgument,
            format!(
                "未知的签发 CA：{ca}，请使用 staff（医护人员）、patient（患者事件）或 seal（机构印章）。"
            ),
            format!("Unknown issuing CA {ca:?}: use staff, patient or seal."),
        ),
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
        PkiError::Server(e) => e.into(),
    }
}

fn require_issuer_role(admin: &Admin) -> Result<(), ApiFailure> {
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
    /// `staff`, `patient` or `seal`.
    ca: String,
    /// PKCS#10 request: PEM text, or base64 DER.
    csr: String,
    /// Validity in days (default 365; patient-event certificates: 1).
    validity_days: Option<u32>,
}

/// `POST /api/v1/pki/certificates`: issue from a CSR (administrators; audited).
async fn issue(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    ApiJson(req): ApiJson<IssueRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiFailure> {
    require_issuer_role(&admin)?;
    if req.csr.len() > MAX_CSR_FIELD {
        return Err(pki_failure(PkiError::InvalidCsr(
            "larger than 16 KiB".into(),
        )));
    }
    let csr_bytes = if req.csr.contains("-----BEGIN") {
        req.csr.clone().into_bytes()
    } else {
        let compact: String = req.csr.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| pki_failure(PkiError::InvalidCsr("neither PEM nor base64 DER".into())))?
    };
    let days = req
        .validity_days
        .unwrap_or(if req.ca == "patient" { 1 } else { 365 });
    let cert = state
        .pki
        .issue_from_csr(&state.db, &req.ca, &csr_bytes, days)
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
                action: "pki.issue",
                target: &cert.serial_hex(),
                outcome: "ok",
                detail: serde_json::json!({ "ca": req.ca, "subject": cert.subject_string(), "validity_days": days }),
                request_id: &rid.0,
            },
        )
        .await?;
    let chain: Vec<String> = [req.ca.as_str(), "root"]
        .iter()
        .filter_map(|n| state.pki.authority(n))
        .map(|a| a.cert.to_pem())
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "ca": req.ca,
            "serial": cert.serial_hex(),
            "subject": cert.subject_string(),
            "not_before": crate::clock::rfc3339(unix_ms(cert.not_before())),
            "not_after": crate::clock::rfc3339(unix_ms(cert.not_after())),
            "certificate_pem": cert.to_pem(),
            "chain_pem": chain,
        })),
    ))
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
