//! Auto-sign (issue 6): a doctor authorises a scope (document types, departments, a time
//! window) by co-signing an authorisation document with the normal two-party flow; on
//! acceptance the server generates a delegated SM2 key for that doctor inside the crypto device
//! and the staff CA certifies it with the auto-sign certificate policy; terminals' requests
//! inside the scope are then signed at once with that key, each signature carrying a signed
//! attribute that names the authorisation and its document's SM3. Revocation (the doctor's
//! phone or an administrator) stops it at once: state, CA revocation, key destroyed.
//!
//! States: `pending` (document waiting for the doctor's co-signature) → `active` →
//! `revoked`; an active authorisation past its window reads as `expired`. Activation is
//! claimed with a lease and each step (key, certificate, switch) is recorded before the next,
//! so a crash or a second instance resumes instead of making a second key or certificate.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::cosign::{
    AuthorisationDoctor, AuthorisationDocument, AuthorisationScope, AuthorisationView,
    AuthorisationWindow, CreateAuthorisation, CreateSignRequest, DocumentToSign,
};
use crypto_device::{CryptoDevice, KeyId};
use gm_pki::cert::ParsedCertificate;
use gm_pki::cms::{ExtraAttribute, SignOptions};
use sm3::{Digest, Sm3};
use sqlx::Row;

use super::clients::{ClientApp, dev};
use super::devices::Device;
use super::requests;
use crate::api::ApiFailure;
use crate::pki::{Actor, DeviceSigner, Pki};
use crate::store::Db;

/// Signed attribute of every auto-signature (project arc 1.2.156.112233, `.3` = auto-sign):
/// `SEQUENCE { authorisationId UTF8String, documentSm3 OCTET STRING (32) }`.
pub const AUTHORISATION_ATTR_OID: &str = "1.2.156.112233.3.2";
/// `app_id` of the signing requests that carry authorisation documents.
pub const SYSTEM_APP: &str = "system:autosign";
/// `doc_type` of those requests.
pub const AUTHORISATION_DOC_TYPE: &str = "自动签名授权书";
/// Most document types or departments in one authorisation.
pub const MAX_SCOPE_ITEMS: usize = 32;
/// How long one instance may take to activate before another may take over.
const ACTIVATION_LEASE_MS: i64 = 60_000;
/// How far in the past a window may start (clock differences between phone and server).
const PAST_START_MS: i64 = 5 * 60 * 1000;
/// RFC 5280 reason of a revoked delegated certificate: privilegeWithdrawn.
const PRIVILEGE_WITHDRAWN: i64 = 9;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn not_authorised(zh: impl Into<String>, en: impl Into<String>) -> ApiFailure {
    ApiFailure::with(ErrorCode::AutoSignNotAuthorised, zh, en)
}

fn invalid(zh: impl Into<String>, en: impl Into<String>) -> ApiFailure {
    ApiFailure::with(ErrorCode::InvalidArgument, zh, en)
}

fn internal<E>(_: E) -> ApiFailure {
    ApiFailure::new(ErrorCode::Internal)
}

/// The DER value of the authorisation attribute.
pub fn attribute_value(authorisation_id: &str, document_sm3: &[u8; 32]) -> Vec<u8> {
    let id = authorisation_id.as_bytes();
    // Ids are `asa_` + 24 hex characters: every length fits in one byte.
    let inner_len = 2 + id.len() + 2 + 32;
    let mut out = Vec::with_capacity(2 + inner_len);
    out.extend_from_slice(&[0x30, u8::try_from(inner_len).unwrap_or(0x7f)]);
    out.extend_from_slice(&[0x0c, u8::try_from(id.len()).unwrap_or(0x7f)]);
    out.extend_from_slice(id);
    out.extend_from_slice(&[0x04, 32]);
    out.extend_from_slice(document_sm3);
    out
}

fn check_list(field: &str, items: &[String]) -> Result<Vec<String>, ApiFailure> {
    if items.is_empty() || items.len() > MAX_SCOPE_ITEMS {
        return Err(invalid(
            format!("{field} 须列出 1–{MAX_SCOPE_ITEMS} 项。"),
            format!("{field} must list 1–{MAX_SCOPE_ITEMS} entries."),
        ));
    }
    for v in items {
        let n = v.chars().count();
        if n == 0 || n > 64 || v.chars().any(char::is_control) || v.trim() != v {
            return Err(invalid(
                format!("{field} 的每一项须为 1–64 个字符，不含控制字符和首尾空格。"),
                format!(
                    "Each {field} entry must have 1–64 characters, no control characters or surrounding spaces."
                ),
            ));
        }
    }
    let mut sorted = items.to_vec();
    sorted.sort();
    sorted.dedup();
    Ok(sorted)
}

/// A stored authorisation.
#[derive(Debug, Clone)]
struct Stored {
    id: String,
    staff_id: String,
    doc_types: Vec<String>,
    departments: Vec<String>,
    not_before: i64,
    not_after: i64,
    cert_serial: String,
    document: String,
    document_sm3: String,
    request_id: String,
    state: String,
    key_id: Option<String>,
    uses: i64,
    created_at: i64,
    activated_at: Option<i64>,
    revoked_at: Option<i64>,
    revoked_by: Option<String>,
}

const COLUMNS: &str = "authorisation_id, staff_id, doc_types, departments, not_before, \
     not_after, cert_serial, document, document_sm3, request_id, state, key_id, uses, \
     created_at, activated_at, revoked_at, revoked_by";

fn stored_of(r: &sqlx::any::AnyRow) -> Result<Stored, ApiFailure> {
    let list = |col: &str| -> Result<Vec<String>, ApiFailure> {
        serde_json::from_str(&r.try_get::<String, _>(col)?).map_err(internal)
    };
    Ok(Stored {
        id: r.try_get("authorisation_id")?,
        staff_id: r.try_get("staff_id")?,
        doc_types: list("doc_types")?,
        departments: list("departments")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
        cert_serial: r.try_get("cert_serial")?,
        document: r.try_get("document")?,
        document_sm3: r.try_get("document_sm3")?,
        request_id: r.try_get("request_id")?,
        state: r.try_get("state")?,
        key_id: r.try_get("key_id")?,
        uses: r.try_get("uses")?,
        created_at: r.try_get("created_at")?,
        activated_at: r.try_get("activated_at")?,
        revoked_at: r.try_get("revoked_at")?,
        revoked_by: r.try_get("revoked_by")?,
    })
}

async fn load(db: &Db, id: &str) -> Result<Option<Stored>, ApiFailure> {
    if id.is_empty() || id.len() > 64 {
        return Ok(None);
    }
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM autosign_authorisations WHERE authorisation_id = $1"
    ))
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(stored_of).transpose()
}

impl Stored {
    fn effective_state(&self, now_ms: i64) -> &str {
        if self.state == "active" && self.not_after < now_ms {
            "expired"
        } else {
            &self.state
        }
    }

    async fn view(&self, db: &Db, now_ms: i64) -> Result<AuthorisationView, ApiFailure> {
        let cert = if self.activated_at.is_some() {
            db.certificate_by_serial(&self.cert_serial)
                .await?
                .map(|c| B64.encode(c.der))
        } else {
            None
        };
        Ok(AuthorisationView {
            authorisation_id: self.id.clone(),
            staff_id: self.staff_id.clone(),
            state: self.effective_state(now_ms).to_owned(),
            doc_types: self.doc_types.clone(),
            departments: self.departments.clone(),
            not_before: self.not_before,
            not_after: self.not_after,
            delegated_certificate_serial: self.cert_serial.clone(),
            delegated_certificate: cert,
            request_id: self.request_id.clone(),
            document: self.document.clone(),
            document_sm3: self.document_sm3.clone(),
            uses: u64::try_from(self.uses).unwrap_or(0),
            created_at: self.created_at,
            activated_at: self.activated_at,
            revoked_at: self.revoked_at,
            revoked_by: self.revoked_by.clone(),
        })
    }
}

/// Services an authorisation step needs.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// Database.
    pub db: &'a Db,
    /// Crypto device.
    pub device: &'a Arc<dyn CryptoDevice>,
    /// CA.
    pub pki: &'a Pki,
    /// Hospital name (O).
    pub hospital: &'a str,
    /// `public_url` (the QR payload of the carrying request).
    pub public_url: &'a str,
    /// Longest window.
    pub max_window: Duration,
    /// Certificate policy OID of delegated certificates.
    pub policy_oid: &'a str,
}

/// Creates an authorisation for the phone's doctor: validates the scope and window, reserves
/// the delegated certificate's serial, writes the canonical document and a signing request
/// that carries it (signer: this doctor). The phone then co-signs that request.
pub async fn create(
    ctx: Ctx<'_>,
    d: &Device,
    req: &CreateAuthorisation,
    now_ms: i64,
) -> Result<AuthorisationView, ApiFailure> {
    super::rounds::active(d)?;
    let doc_types = check_list("doc_types", &req.doc_types)?;
    let departments = check_list("departments", &req.departments)?;
    if doc_types.iter().any(|t| t == AUTHORISATION_DOC_TYPE) {
        // Authorisations are signed by the doctor on the phone, never by a delegated key.
        return Err(invalid(
            format!("自动签名授权不能包含文书类型“{AUTHORISATION_DOC_TYPE}”。"),
            format!("An authorisation cannot cover the document type {AUTHORISATION_DOC_TYPE:?}."),
        ));
    }
    // Whole seconds, as the certificate carries them.
    let not_before = req.not_before.unwrap_or(now_ms) / 1000 * 1000;
    let not_after = req.not_after / 1000 * 1000;
    let max_ms = i64::try_from(ctx.max_window.as_millis()).unwrap_or(i64::MAX);
    if not_before < now_ms - PAST_START_MS || not_after <= now_ms {
        return Err(invalid(
            "授权时间窗须从现在（最多提前 5 分钟）或将来开始，并在将来结束。",
            "The window must start now (at most 5 minutes ago) or later, and end in the future.",
        ));
    }
    let length = not_after - not_before;
    if length < 60_000 || length > max_ms {
        return Err(invalid(
            format!(
                "授权时间窗须为 1 分钟至 {} 小时。",
                ctx.max_window.as_secs() / 3600
            ),
            format!(
                "The window must last 1 minute to {} hours.",
                ctx.max_window.as_secs() / 3600
            ),
        ));
    }
    let staff = super::staff::load(ctx.db, &d.staff_id)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    let random = ctx.device.random(12 + 16).await.map_err(dev)?;
    let id = format!("asa_{}", hex::encode(&random[..12]));
    // A positive 16-byte serial without a leading zero octet, like the CA's own.
    let mut serial = random[12..].to_vec();
    serial[0] = (serial[0] & 0x7f) | 0x40;
    let serial_hex = hex::encode(&serial);
    let document = AuthorisationDocument {
        authorisation_id: id.clone(),
        created_at: now_ms,
        delegated_certificate_serial: serial_hex.clone(),
        doctor: AuthorisationDoctor {
            department: staff.department.clone(),
            name: staff.name.clone(),
            signing_certificate_serial: d.cert_serial.clone().unwrap_or_default(),
            staff_id: staff.staff_id.clone(),
        },
        hospital: ctx.hospital.to_owned(),
        scope: AuthorisationScope {
            departments: departments.clone(),
            doc_types: doc_types.clone(),
        },
        kind: "yiqian.autosign.authorisation".into(),
        version: 1,
        window: AuthorisationWindow {
            not_after,
            not_before,
        },
    };
    // Fields are declared in sorted order and hold only strings and integers: this is the
    // RFC 8785 canonical form.
    let text = serde_json::to_string(&document).map_err(internal)?;
    let sm3 = hex::encode(Sm3::digest(text.as_bytes()));
    let carrier = CreateSignRequest {
        signers: vec![staff.staff_id.clone()],
        ordered: false,
        documents: vec![DocumentToSign {
            name: format!("自动签名授权书 {id}"),
            digest_sm3: None,
            content: Some(B64.encode(text.as_bytes())),
            media_type: Some("application/json".into()),
        }],
        title: "自动签名授权书".into(),
        patient_id: None,
        visit_id: None,
        doc_type: Some(AUTHORISATION_DOC_TYPE.into()),
        department: Some(staff.department.chars().take(64).collect()),
        expires_in: Some(900),
        auto_sign: Some(false),
        // The phone co-signs the authorisation in the app; nobody scans this request.
        qr_image: Some(false),
    };
    let created = requests::create(
        ctx.db,
        &**ctx.device,
        ctx.public_url,
        None,
        requests::Creator::internal(SYSTEM_APP),
        &carrier,
        now_ms,
        None,
    )
    .await?;
    sqlx::query(
        "INSERT INTO autosign_authorisations (authorisation_id, staff_id, device_id, doc_types, \
         departments, not_before, not_after, cert_serial, document, document_sm3, request_id, \
         state, uses, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         'pending', 0, $12)",
    )
    .bind(&id)
    .bind(&staff.staff_id)
    .bind(&d.device_id)
    .bind(serde_json::to_string(&doc_types).map_err(internal)?)
    .bind(serde_json::to_string(&departments).map_err(internal)?)
    .bind(not_before)
    .bind(not_after)
    .bind(&serial_hex)
    .bind(&text)
    .bind(&sm3)
    .bind(&created.request_id)
    .bind(now_ms)
    .execute(ctx.db.pool())
    .await?;
    load(ctx.db, &id)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?
        .view(ctx.db, now_ms)
        .await
}

/// The authorisation `id` of `staff_id` (`NOT_FOUND` for someone else's).
pub async fn view_own(
    db: &Db,
    staff_id: &str,
    id: &str,
    now_ms: i64,
) -> Result<AuthorisationView, ApiFailure> {
    match load(db, id).await? {
        Some(a) if a.staff_id == staff_id => a.view(db, now_ms).await,
        _ => Err(ApiFailure::new(ErrorCode::NotFound)),
    }
}

/// Any authorisation (administrators, relying parties).
pub async fn view(db: &Db, id: &str, now_ms: i64) -> Result<AuthorisationView, ApiFailure> {
    load(db, id)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?
        .view(db, now_ms)
        .await
}

/// Authorisations, newest first: of one staff member, or all (at most 500).
pub async fn list(
    db: &Db,
    device: &dyn CryptoDevice,
    staff_id: Option<&str>,
    now_ms: i64,
) -> Result<Vec<AuthorisationView>, ApiFailure> {
    retire_expired(db, device, staff_id, now_ms).await?;
    let rows =
        match staff_id {
            Some(s) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM autosign_authorisations WHERE staff_id = $1 \
                 ORDER BY created_at DESC LIMIT 500"
                ))
                .bind(s)
                .fetch_all(db.pool())
                .await?
            }
            None => sqlx::query(&format!(
                "SELECT {COLUMNS} FROM autosign_authorisations ORDER BY created_at DESC LIMIT 500"
            ))
            .fetch_all(db.pool())
            .await?,
        };
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(stored_of(r)?.view(db, now_ms).await?);
    }
    Ok(out)
}

/// Activates the pending authorisation carried by `request_id`, if any (after the round that
/// completed it). Returns the authorisation id when there is one.
pub async fn authorisation_of_request(
    db: &Db,
    request_id: &str,
) -> Result<Option<String>, ApiFailure> {
    Ok(sqlx::query(
        "SELECT authorisation_id FROM autosign_authorisations WHERE request_id = $1 \
         AND state = 'pending'",
    )
    .bind(request_id)
    .fetch_optional(db.pool())
    .await?
    .map(|r| r.try_get("authorisation_id"))
    .transpose()?)
}

/// Activates authorisation `id` once the doctor's co-signature over its document is stored:
/// delegated key generated in the device, certificate issued for the window, state `active`.
/// Idempotent; another instance's activation in progress leaves it `pending` (retry).
pub async fn activate(
    ctx: Ctx<'_>,
    id: &str,
    actor: &Actor<'_>,
    now_ms: i64,
) -> Result<AuthorisationView, ApiFailure> {
    let a = load(ctx.db, id)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    match a.state.as_str() {
        "active" => return a.view(ctx.db, now_ms).await,
        "revoked" => {
            return Err(not_authorised(
                "该自动签名授权已撤销。",
                "This auto-sign authorisation was revoked.",
            ));
        }
        _ => {}
    }
    if a.not_after <= now_ms {
        return Err(not_authorised(
            "该自动签名授权的时间窗已结束，请重新授权。",
            "The authorisation's window has ended; authorise again.",
        ));
    }
    // The doctor's co-signature over the document (verified when the round stored it).
    let signed = sqlx::query(
        "SELECT s.cms FROM signatures s JOIN sign_request_documents d ON d.request_id = \
         s.request_id AND d.doc_index = s.doc_index WHERE s.request_id = $1 AND s.doc_index = 0 \
         AND s.staff_id = $2 AND d.digest = $3",
    )
    .bind(&a.request_id)
    .bind(&a.staff_id)
    .bind(&a.document_sm3)
    .fetch_optional(ctx.db.pool())
    .await?;
    if signed.is_none() {
        return Err(not_authorised(
            "授权书尚未由医师用手机协同签名，请先签署授权书。",
            "The doctor has not co-signed the authorisation document yet; sign it first.",
        ));
    }
    let claimed = sqlx::query(
        "UPDATE autosign_authorisations SET activation_lease = $1 WHERE authorisation_id = $2 \
         AND state = 'pending' AND (activation_lease IS NULL OR activation_lease < $3)",
    )
    .bind(now_ms + ACTIVATION_LEASE_MS)
    .bind(id)
    .bind(now_ms)
    .execute(ctx.db.pool())
    .await?;
    if claimed.rows_affected() != 1 {
        // Another instance is at it (or it just finished): report what is stored.
        return view(ctx.db, id, now_ms).await;
    }
    // 1. The delegated key, recorded before anything is certified for it.
    let key = if let Some(k) = &a.key_id {
        KeyId(k.clone())
    } else {
        let (key, _) = ctx
            .device
            .generate_sm2(&format!("autosign:{id}"))
            .await
            .map_err(dev)?;
        let kept = sqlx::query(
            "UPDATE autosign_authorisations SET key_id = $1 WHERE authorisation_id = $2 \
             AND key_id IS NULL AND state = 'pending'",
        )
        .bind(key.as_str())
        .bind(id)
        .execute(ctx.db.pool())
        .await?;
        if kept.rows_affected() != 1 {
            let _ = ctx.device.destroy(&key).await;
            return view(ctx.db, id, now_ms).await;
        }
        key
    };
    let signer = DeviceSigner::new(ctx.device.clone(), key.clone()).await?;
    let public = gm_pki::Sm2Signer::public_key(&signer);
    // 2. The certificate with the reserved serial (kept if an earlier attempt issued it).
    let existing = ctx.db.certificate_by_serial(&a.cert_serial).await?;
    if let Some(row) = existing {
        let cert = ParsedCertificate::from_der(&row.der).map_err(internal)?;
        if cert.public_key().map_err(internal)? != public {
            return Err(ApiFailure::new(ErrorCode::Internal));
        }
    } else {
        let staff = super::staff::load(ctx.db, &a.staff_id)
            .await?
            .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
        let info = super::staff::certificate_info(&**ctx.device, ctx.hospital, &staff).await?;
        let policy: const_oid::ObjectIdentifier = ctx.policy_oid.parse().map_err(internal)?;
        let serial = hex::decode(&a.cert_serial).map_err(internal)?;
        let period = gm_pki::profile::Period {
            not_before: crate::pki::system_time(a.not_before),
            not_after: crate::pki::system_time(a.not_after),
        };
        ctx.pki
            .issue_delegated(ctx.db, &public, &info, policy, &serial, period, actor)
            .await
            .map_err(crate::api::pki_failure)?;
    }
    // 3. The switch; a revocation that came meanwhile wins and takes key and certificate.
    let switched = sqlx::query(
        "UPDATE autosign_authorisations SET state = 'active', activated_at = $1, \
         activation_lease = NULL WHERE authorisation_id = $2 AND state = 'pending'",
    )
    .bind(now_ms)
    .bind(id)
    .execute(ctx.db.pool())
    .await?;
    if switched.rows_affected() != 1 {
        let _ = ctx
            .pki
            .revoke(ctx.db, &a.cert_serial, PRIVILEGE_WITHDRAWN)
            .await;
        let _ = ctx.device.destroy(&key).await;
        return Err(not_authorised(
            "该自动签名授权已撤销。",
            "This auto-sign authorisation was revoked.",
        ));
    }
    view(ctx.db, id, now_ms).await
}

/// Revokes authorisation `id` at once: state `revoked` (so no further auto-signature can be
/// stored), its carrying request cancelled if still pending, the delegated certificate revoked
/// (privilegeWithdrawn; CRL and OCSP show it), the delegated key destroyed in the device.
/// `owner` restricts it to that staff member's authorisations (the phone).
pub async fn revoke(
    ctx: Ctx<'_>,
    id: &str,
    owner: Option<&str>,
    by: &str,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<AuthorisationView, ApiFailure> {
    let a = load(ctx.db, id)
        .await?
        .filter(|a| owner.is_none_or(|o| o == a.staff_id))
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    super::check_reason(reason)?;
    let done = sqlx::query(
        "UPDATE autosign_authorisations SET state = 'revoked', revoked_at = $1, revoked_by = $2, \
         revoke_reason = $3 WHERE authorisation_id = $4 AND state <> 'revoked'",
    )
    .bind(now_ms)
    .bind(by)
    .bind(reason)
    .bind(id)
    .execute(ctx.db.pool())
    .await?;
    if done.rows_affected() != 1 {
        return Err(ApiFailure::with(
            ErrorCode::AlreadyRevoked,
            "该自动签名授权已撤销，无需重复操作。",
            "This authorisation is already revoked; nothing to do.",
        ));
    }
    // The update above waited for any auto-sign transaction holding the row; those committed
    // with a signing time read before now. Record the revocation time after them, so no stored
    // auto-signature is dated after its authorisation's revocation (same for the CA's
    // revocation time, read later still).
    sqlx::query("UPDATE autosign_authorisations SET revoked_at = $1 WHERE authorisation_id = $2")
        .bind(crate::clock::now_ms().max(now_ms))
        .bind(id)
        .execute(ctx.db.pool())
        .await?;
    if a.state == "pending" {
        // The document can no longer be signed.
        let _ = requests::cancel(ctx.db, &a.request_id, now_ms).await;
    }
    // Read the key again: an activation may have recorded it after `a` was loaded.
    let key = load(ctx.db, id).await?.and_then(|s| s.key_id);
    match ctx
        .pki
        .revoke(ctx.db, &a.cert_serial, PRIVILEGE_WITHDRAWN)
        .await
    {
        Ok(_) | Err(crate::pki::PkiError::NotFound | crate::pki::PkiError::AlreadyRevoked) => {}
        Err(e) => return Err(crate::api::pki_failure(e)),
    }
    if let Some(k) = key {
        ctx.device.destroy(&KeyId(k)).await.map_err(dev)?;
    }
    view(ctx.db, id, now_ms).await
}

/// Destroys the delegated keys of active authorisations whose window has ended (of one staff
/// member, or any; at most 50 per call), so an expired authorisation leaves no usable key in
/// the device. The certificate simply expires; the destruction is audited by the device sink.
/// Runs opportunistically (listings, auto-sign decisions); each key is claimed by a
/// compare-and-set, so concurrent sweeps destroy it once.
pub async fn retire_expired(
    db: &Db,
    device: &dyn CryptoDevice,
    staff_id: Option<&str>,
    now_ms: i64,
) -> Result<usize, ApiFailure> {
    let rows = sqlx::query(
        "SELECT authorisation_id, key_id FROM autosign_authorisations WHERE state = 'active' \
         AND not_after < $1 AND key_id IS NOT NULL AND ($2 = '' OR staff_id = $2) LIMIT 50",
    )
    .bind(now_ms)
    .bind(staff_id.unwrap_or(""))
    .fetch_all(db.pool())
    .await?;
    let mut retired = 0;
    for r in &rows {
        let id: String = r.try_get("authorisation_id")?;
        let key: String = r.try_get("key_id")?;
        let claimed = sqlx::query(
            "UPDATE autosign_authorisations SET key_id = NULL WHERE authorisation_id = $1 \
             AND key_id = $2",
        )
        .bind(&id)
        .bind(&key)
        .execute(db.pool())
        .await?;
        if claimed.rows_affected() == 1 {
            device.destroy(&KeyId(key)).await.map_err(dev)?;
            retired += 1;
        }
    }
    Ok(retired)
}

// ---------------------------------------------------------------------------------------
// signing under an authorisation

/// One signer's active authorisation covering a request.
struct Cover {
    staff_id: String,
    authorisation_id: String,
    document_sm3: [u8; 32],
    key: KeyId,
    cert: ParsedCertificate,
}

/// The auto-signatures to make for a new request: one covering authorisation per signer.
pub struct Plan {
    covers: Vec<Cover>,
    chain: Vec<ParsedCertificate>,
    device: Arc<dyn CryptoDevice>,
    pki: Arc<Pki>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field(
                "authorisations",
                &self
                    .covers
                    .iter()
                    .map(|c| &c.authorisation_id)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// One auto-signature made, waiting to be stored with its request.
#[derive(Debug)]
pub struct AutoSignature {
    staff_id: String,
    doc_index: usize,
    cms: Vec<u8>,
    cert_serial: String,
    authorisation_id: String,
}

/// Why `staff_id` has no covering authorisation (`Ok(cover)` when one covers).
async fn cover_for(
    db: &Db,
    staff_id: &str,
    doc_type: Option<&str>,
    department: Option<&str>,
    now_ms: i64,
) -> Result<Result<Cover, ApiFailure>, ApiFailure> {
    let (Some(doc_type), Some(department)) = (doc_type, department) else {
        return Ok(Err(not_authorised(
            "自动签名须在请求中给出文书类型（doc_type）和科室（department）。",
            "Auto-sign needs the request's doc_type and department.",
        )));
    };
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM autosign_authorisations WHERE staff_id = $1 \
         AND state IN ('active', 'revoked') ORDER BY created_at DESC LIMIT 100"
    ))
    .bind(staff_id)
    .fetch_all(db.pool())
    .await?;
    let all = rows.iter().map(stored_of).collect::<Result<Vec<_>, _>>()?;
    let covers = |a: &Stored| {
        a.not_before <= now_ms
            && now_ms <= a.not_after
            && a.doc_types.iter().any(|t| t == doc_type)
            && a.departments.iter().any(|d| d == department)
    };
    let active: Vec<&Stored> = all.iter().filter(|a| a.state == "active").collect();
    let found = active.iter().find(|a| covers(a));
    let Some(a) = found else {
        // The most specific reason first: one that would cover it was revoked.
        let why = if all.iter().any(|a| a.state == "revoked" && covers(a)) {
            not_authorised(
                format!("医师 {staff_id} 的自动签名授权已撤销，请改为扫码签名。"),
                format!(
                    "Staff {staff_id}'s auto-sign authorisation was revoked; use normal signing."
                ),
            )
        } else if active.is_empty() {
            not_authorised(
                format!("医师 {staff_id} 没有有效的自动签名授权。"),
                format!("Staff {staff_id} has no active auto-sign authorisation."),
            )
        } else if !active
            .iter()
            .any(|a| a.doc_types.iter().any(|t| t == doc_type))
        {
            not_authorised(
                format!("医师 {staff_id} 的自动签名授权不包含文书类型“{doc_type}”。"),
                format!(
                    "Staff {staff_id}'s authorisations do not cover document type {doc_type:?}."
                ),
            )
        } else if !active
            .iter()
            .any(|a| a.departments.iter().any(|d| d == department))
        {
            not_authorised(
                format!("医师 {staff_id} 的自动签名授权不包含科室“{department}”。"),
                format!(
                    "Staff {staff_id}'s authorisations do not cover department {department:?}."
                ),
            )
        } else {
            not_authorised(
                format!("当前时间不在医师 {staff_id} 的自动签名授权时间窗内。"),
                format!("Now is outside staff {staff_id}'s authorised window."),
            )
        };
        return Ok(Err(why));
    };
    let row = db
        .certificate_by_serial(&a.cert_serial)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?;
    Ok(Ok(Cover {
        staff_id: staff_id.to_owned(),
        authorisation_id: a.id.clone(),
        document_sm3: hex::decode(&a.document_sm3)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?,
        key: KeyId(
            a.key_id
                .clone()
                .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?,
        ),
        cert: ParsedCertificate::from_der(&row.der).map_err(internal)?,
    }))
}

/// Decides whether a new request is auto-signed. `auto_sign: true` requires the `auto_sign`
/// permission and a covering authorisation for every signer (else `FORBIDDEN` /
/// `AUTO_SIGN_NOT_AUTHORISED`, nothing stored); absent, the request is auto-signed when the app
/// holds `auto_sign` and every signer is covered, else it is an ordinary pending request;
/// `false` never.
pub async fn decide(
    db: &Db,
    device: &Arc<dyn CryptoDevice>,
    pki: &Arc<Pki>,
    app: &ClientApp,
    req: &CreateSignRequest,
    now_ms: i64,
) -> Result<Option<Plan>, ApiFailure> {
    let required = match req.auto_sign {
        Some(false) => return Ok(None),
        Some(true) => {
            app.require("auto_sign")?;
            true
        }
        None => {
            if !app.has("auto_sign") {
                return Ok(None);
            }
            false
        }
    };
    // Oversized or empty signer lists are refused by the request validation.
    if req.signers.is_empty() || req.signers.len() > requests::MAX_SIGNERS {
        return Ok(None);
    }
    let mut covers = Vec::with_capacity(req.signers.len());
    for s in &req.signers {
        retire_expired(db, &**device, Some(s), now_ms).await?;
        match cover_for(
            db,
            s,
            req.doc_type.as_deref(),
            req.department.as_deref(),
            now_ms,
        )
        .await?
        {
            Ok(c) => covers.push(c),
            Err(why) if required => return Err(why),
            Err(_) => return Ok(None),
        }
    }
    let chain = ["staff", "root"]
        .iter()
        .filter_map(|n| pki.authority(n))
        .map(|a| a.cert.clone())
        .collect();
    Ok(Some(Plan {
        covers,
        chain,
        device: device.clone(),
        pki: pki.clone(),
    }))
}

impl Plan {
    /// The authorisations used, one per signer in order.
    pub fn authorisations(&self) -> Vec<String> {
        self.covers
            .iter()
            .map(|c| c.authorisation_id.clone())
            .collect()
    }

    /// Signs every document (SM3 digests, hex) for every signer with the delegated keys:
    /// detached CMS with the authorisation attribute, then the local TSA's token (CAdES-T).
    pub async fn sign(
        &self,
        digests: &[String],
        now_ms: i64,
    ) -> Result<Vec<AutoSignature>, ApiFailure> {
        let signing_time = crate::pki::system_time(now_ms - now_ms % 1000);
        let mut out = Vec::with_capacity(self.covers.len() * digests.len());
        for c in &self.covers {
            let signer = DeviceSigner::new(self.device.clone(), c.key.clone())
                .await
                .map_err(|_| {
                    not_authorised(
                        "该医师的自动签名密钥已销毁（授权已撤销）。",
                        "The doctor's delegated key was destroyed (authorisation revoked).",
                    )
                })?;
            let oid: const_oid::ObjectIdentifier =
                AUTHORISATION_ATTR_OID.parse().map_err(internal)?;
            let extra = [ExtraAttribute {
                oid,
                value_der: attribute_value(&c.authorisation_id, &c.document_sm3),
            }];
            for (i, digest_hex) in digests.iter().enumerate() {
                let digest: [u8; 32] = hex::decode(digest_hex)
                    .ok()
                    .and_then(|d| d.try_into().ok())
                    .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?;
                let opts = SignOptions {
                    detached: true,
                    signing_time: Some(signing_time),
                    ..Default::default()
                };
                let prepared =
                    gm_pki::cms::prepare_detached(&digest, &c.cert, &self.chain, &opts, &extra)
                        .map_err(internal)?;
                let tbs = prepared.to_be_signed().to_vec();
                let s = signer.clone();
                let sig = crate::pki::blocking(move || gm_pki::signer::sign_der(&s, &tbs))
                    .await?
                    .map_err(|_| {
                        not_authorised(
                            "该医师的自动签名密钥不可用（授权可能刚被撤销）。",
                            "The doctor's delegated key is unavailable (the authorisation may have just been revoked).",
                        )
                    })?;
                let cms = prepared
                    .finish(&sig, gm_pki::DEFAULT_DISTID)
                    .map_err(internal)?;
                out.push(AutoSignature {
                    staff_id: c.staff_id.clone(),
                    doc_index: i,
                    cms,
                    cert_serial: c.cert.serial_hex(),
                    authorisation_id: c.authorisation_id.clone(),
                });
            }
        }
        let unstamped = out.iter_mut().map(|a| std::mem::take(&mut a.cms)).collect();
        let stamped = super::rounds::timestamped_all(&self.pki, unstamped).await?;
        for (a, cms) in out.iter_mut().zip(stamped) {
            a.cms = cms;
        }
        Ok(out)
    }

    /// Stores the signatures inside the transaction that creates the request. Each
    /// authorisation is re-checked there (active, inside its window) by the update that counts
    /// its use, whose row lock orders it against a concurrent revocation.
    pub async fn record(
        &self,
        tx: &mut sqlx::AnyConnection,
        request_id: &str,
        signatures: &[AutoSignature],
        now_ms: i64,
    ) -> Result<(), ApiFailure> {
        for c in &self.covers {
            let n = signatures
                .iter()
                .filter(|s| s.authorisation_id == c.authorisation_id)
                .count();
            let counted = sqlx::query(
                "UPDATE autosign_authorisations SET uses = uses + $1 WHERE authorisation_id = $2 \
                 AND state = 'active' AND not_before <= $3 AND not_after >= $3",
            )
            .bind(i64::try_from(n).unwrap_or(i64::MAX))
            .bind(&c.authorisation_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            if counted.rows_affected() != 1 {
                return Err(not_authorised(
                    format!("医师 {} 的自动签名授权刚被撤销或已到期。", c.staff_id),
                    format!(
                        "Staff {}'s authorisation was just revoked or ended.",
                        c.staff_id
                    ),
                ));
            }
        }
        for s in signatures {
            let doc = i64::try_from(s.doc_index).unwrap_or(i64::MAX);
            sqlx::query(
                "INSERT INTO signatures (request_id, doc_index, staff_id, cms, cert_serial, \
                 round_id, signed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(request_id)
            .bind(doc)
            .bind(&s.staff_id)
            .bind(&s.cms)
            .bind(&s.cert_serial)
            .bind(format!("autosign:{}", s.authorisation_id))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO autosign_signatures (request_id, doc_index, staff_id, \
                 authorisation_id, signed_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(request_id)
            .bind(doc)
            .bind(&s.staff_id)
            .bind(&s.authorisation_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_is_a_der_sequence_of_id_and_hash() {
        let v = attribute_value("asa_0123456789abcdef01234567", &[7; 32]);
        assert_eq!(v[0], 0x30);
        assert_eq!(usize::from(v[1]), v.len() - 2);
        assert_eq!(&v[2..4], &[0x0c, 28]);
        assert_eq!(&v[4..32], b"asa_0123456789abcdef01234567");
        assert_eq!(&v[32..34], &[0x04, 32]);
        assert_eq!(&v[34..], &[7; 32]);
    }

    #[test]
    fn scope_lists_are_bounded_sorted_and_deduplicated() {
        let ok = check_list("doc_types", &["病历".into(), "处方".into(), "病历".into()]).unwrap();
        assert_eq!(ok, vec!["处方".to_owned(), "病历".to_owned()]);
        assert!(check_list("doc_types", &[]).is_err());
        assert!(check_list("doc_types", &[" 处方".into()]).is_err());
        assert!(check_list("doc_types", &["x".repeat(65)]).is_err());
        assert!(check_list("doc_types", &vec!["a".into(); 33]).is_err());
    }
}
