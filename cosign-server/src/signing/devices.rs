//! Phones: enrolment (activation code → two-party key generation → certificate → OPRF key for
//! sealing the phone's share under its PIN) and the device signature on every later call.
//!
//! Every step's server state is in the database or the crypto device, never only in memory,
//! so the steps may reach different instances and survive a restart: the key-generation
//! session id is stored with the pending device; the server share `d2` is parked in the device
//! at the key-generation step and released by the confirmation (`ServerKeygen::park/resume`).

use std::time::Duration;

use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::cosign::{
    DeviceUnbound, EnrollBegin, EnrollBegun, EnrollFinish, EnrollFinished, EnrollSms,
    EnrollSmsSent, UnbindDevice,
};
use crypto_device::{CryptoDevice, KeyId, with_secret};
use sm2::dsa::Signature;
use sm2_cosign::keygen::{KeygenRequest, KeygenResponse, ServerKeygen};
use sm2_cosign::seal::OprfKey;
use sm2_cosign::{ServerKeyShare, SessionId};
use sqlx::Row;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::clients::{Nonce, SignedCall, dev};
use super::staff;
use crate::api::ApiFailure;
use crate::audit::{AuditLog, Event};
use crate::config::{ActivationIdentity, SecondFactor};
use crate::identity::checks::{self, Expected, Subject};
use crate::identity::sms::{self, SmsGateway, SmsMessage};
use crate::pki::{Actor, IssueProfile, Pki};
use crate::store::Db;

/// CRL reason of a certificate whose phone was unbound (RFC 5280 cessationOfOperation).
pub const CESSATION_OF_OPERATION: i64 = 5;

/// A pending enrolment must finish within this time.
pub const ENROLL_TTL_MS: i64 = 15 * 60 * 1000;
/// Validity of a staff signing certificate.
pub const STAFF_CERT_VALIDITY: Duration = Duration::from_secs(730 * 86_400);
/// SM2 user ID for device signatures (GB/T 35276 default).
pub const DEVICE_DISTID: &str = "1234567812345678";

/// A device row.
#[derive(Debug, Clone)]
pub struct Device {
    /// Device id.
    pub device_id: String,
    /// Owner.
    pub staff_id: String,
    /// `pending`, `active`, `revoked`.
    pub status: String,
    /// Device public key (hex SEC1).
    pub public_key: String,
    /// Key-generation session.
    pub keygen_session: String,
    /// d2 in the crypto device.
    pub share_key: Option<String>,
    /// OPRF key in the crypto device.
    pub oprf_key: Option<String>,
    /// Joint public key (hex SEC1).
    pub joint_public_key: Option<String>,
    /// Signing certificate serial.
    pub cert_serial: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

fn protocol(e: &sm2_cosign::Error) -> ApiFailure {
    ApiFailure::with(
        ErrorCode::ProtocolViolation,
        format!("协同签名消息无效：{e}"),
        format!("Invalid co-signing message: {e}"),
    )
}

/// Loads a device.
pub async fn load(db: &Db, device_id: &str) -> Result<Option<Device>, ApiFailure> {
    if device_id.is_empty() || device_id.len() > 64 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT device_id, staff_id, status, public_key, keygen_session, share_key, oprf_key, \
         joint_public_key, cert_serial, created_at FROM devices WHERE device_id = $1",
    )
    .bind(device_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some(r) => Some(Device {
            device_id: r.try_get("device_id")?,
            staff_id: r.try_get("staff_id")?,
            status: r.try_get("status")?,
            public_key: r.try_get("public_key")?,
            keygen_session: r.try_get("keygen_session")?,
            share_key: r.try_get("share_key")?,
            oprf_key: r.try_get("oprf_key")?,
            joint_public_key: r.try_get("joint_public_key")?,
            cert_serial: r.try_get("cert_serial")?,
            created_at: r.try_get("created_at")?,
        }),
        None => None,
    })
}

/// Verifies a device-signed call (SM2 over the canonical string) and consumes its nonce.
pub async fn verify_call(
    db: &Db,
    call: &SignedCall<'_>,
    now_ms: i64,
) -> Result<Device, ApiFailure> {
    let (device, nonce) = verify_signature(db, call, now_ms).await?;
    nonce.settle(db, Ok(device)).await
}

/// Verifies a device-signed call (SM2 over the canonical string) and hands back its nonce,
/// which the call records in its own transaction ([`Nonce`]).
pub async fn verify_signature(
    db: &Db,
    call: &SignedCall<'_>,
    now_ms: i64,
) -> Result<(Device, Nonce), ApiFailure> {
    call.check_shape(now_ms)?;
    let Some(device) = load(db, call.caller).await? else {
        return Err(ApiFailure::new(ErrorCode::BadSignature));
    };
    if device.status == "revoked" {
        return Err(ApiFailure::new(ErrorCode::BadSignature));
    }
    let key = hex::decode(&device.public_key)
        .ok()
        .and_then(|b| sm2::PublicKey::from_sec1_bytes(&b).ok())
        .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?;
    let sig = hex::decode(call.signature)
        .ok()
        .and_then(|b| Signature::try_from(b.as_slice()).ok())
        .ok_or_else(|| ApiFailure::new(ErrorCode::BadSignature))?;
    // sm2-cosign's verification (GB/T 32918.2 §7.1, the same check as the `sm2` crate's
    // `VerifyingKey`) with its own field arithmetic and per-key tables: about a fifth of the
    // instructions, and every phone call carries one (docs/performance.md).
    if sm2_cosign::plain::verify(
        &key,
        DEVICE_DISTID.as_bytes(),
        call.canonical().as_bytes(),
        &sig,
    )
    .is_err()
    {
        return Err(ApiFailure::new(ErrorCode::BadSignature));
    }
    let nonce = Nonce::new(format!("dev:{}", device.device_id), call, now_ms);
    Ok((device, nonce))
}

/// Lifetime of an activation SMS code.
pub const SMS_TTL_MS: i64 = 5 * 60 * 1000;
/// Least time between two SMS codes for one staff member.
pub const SMS_RESEND_MS: i64 = 60 * 1000;
/// SMS codes sent per activation code (a new activation code resets the count).
pub const MAX_SMS_SENDS: i64 = 5;
/// Wrong SMS codes before the code is void (a new one must be sent).
pub const MAX_SMS_FAILURES: i64 = 5;

/// The activation state of a staff member whose activation code was just checked.
struct Activation {
    hash: String,
    phone: String,
    sms_hash: Option<String>,
    sms_expires: Option<i64>,
    sms_failures: i64,
    sms_sent_at: Option<i64>,
    sms_sends: i64,
}

/// Checks the activation code (valid, unexpired, not voided by failures); a wrong code is
/// counted.
async fn check_activation(
    db: &Db,
    staff_id: &str,
    code: &str,
    now_ms: i64,
) -> Result<Activation, ApiFailure> {
    let row = sqlx::query(
        "SELECT status, phone, activation_hash, activation_expires, activation_failures, \
         sms_code_hash, sms_expires, sms_failures, sms_sent_at, sms_sends FROM staff \
         WHERE staff_id = $1",
    )
    .bind(staff_id)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else {
        return Err(ApiFailure::new(ErrorCode::ActivationInvalid));
    };
    let status: String = row.try_get("status")?;
    let hash: Option<String> = row.try_get("activation_hash")?;
    let expires: Option<i64> = row.try_get("activation_expires")?;
    let failures: i64 = row.try_get("activation_failures")?;
    let Some(hash) = hash else {
        return Err(ApiFailure::new(ErrorCode::ActivationInvalid));
    };
    if status == "disabled"
        || expires.is_none_or(|e| e < now_ms)
        || failures >= staff::MAX_ACTIVATION_FAILURES
    {
        return Err(ApiFailure::new(ErrorCode::ActivationInvalid));
    }
    let given = staff::code_hash(code);
    if !bool::from(given.as_bytes().ct_eq(hash.as_bytes())) {
        sqlx::query(
            "UPDATE staff SET activation_failures = activation_failures + 1 WHERE staff_id = $1",
        )
        .bind(staff_id)
        .execute(db.pool())
        .await?;
        return Err(ApiFailure::new(ErrorCode::ActivationInvalid));
    }
    Ok(Activation {
        hash,
        phone: row.try_get("phone")?,
        sms_hash: row.try_get("sms_code_hash")?,
        sms_expires: row.try_get("sms_expires")?,
        sms_failures: row.try_get("sms_failures")?,
        sms_sent_at: row.try_get("sms_sent_at")?,
        sms_sends: row.try_get("sms_sends")?,
    })
}

/// Sends the activation SMS code to the staff member's phone on record, after checking the
/// activation code. At most one code a minute and [`MAX_SMS_SENDS`] per activation code; a
/// new code replaces the previous one.
pub async fn send_sms(
    db: &Db,
    device: &dyn CryptoDevice,
    gateway: &dyn SmsGateway,
    req: &EnrollSms,
    now_ms: i64,
) -> Result<EnrollSmsSent, ApiFailure> {
    let a = check_activation(db, &req.staff_id, &req.activation_code, now_ms).await?;
    if a.sms_sends >= MAX_SMS_SENDS || a.sms_sent_at.is_some_and(|t| now_ms < t + SMS_RESEND_MS) {
        return Err(ApiFailure::new(ErrorCode::RateLimited));
    }
    let random = Zeroizing::new(device.random(8).await.map_err(dev)?);
    let code = Zeroizing::new(sms::new_code(&random));
    let expires_at = now_ms + SMS_TTL_MS;
    // Claim the send first (compare-and-set on the count), so two racing calls send one code.
    let claimed = sqlx::query(
        "UPDATE staff SET sms_code_hash = $1, sms_expires = $2, sms_failures = 0, \
         sms_sent_at = $3, sms_sends = sms_sends + 1 WHERE staff_id = $4 AND sms_sends = $5 \
         AND activation_hash = $6",
    )
    .bind(sms::code_hash(&req.staff_id, &code))
    .bind(expires_at)
    .bind(now_ms)
    .bind(&req.staff_id)
    .bind(a.sms_sends)
    .bind(&a.hash)
    .execute(db.pool())
    .await?;
    if claimed.rows_affected() != 1 {
        return Err(ApiFailure::new(ErrorCode::RateLimited));
    }
    let message = SmsMessage {
        phone: a.phone.clone(),
        template: "staff.activation",
        params: serde_json::json!({ "code": code.as_str(), "minutes": SMS_TTL_MS / 60_000 }),
        text: format!(
            "您的医签激活验证码为 {}，{} 分钟内有效。请勿告诉他人。",
            code.as_str(),
            SMS_TTL_MS / 60_000
        ),
    };
    if let Err(e) = gateway.send(&message).await {
        tracing::warn!(error = %e, "activation SMS not sent");
        // The code never reached the phone: void it, but keep the send counted.
        sqlx::query("UPDATE staff SET sms_code_hash = NULL WHERE staff_id = $1")
            .bind(&req.staff_id)
            .execute(db.pool())
            .await?;
        return Err(ApiFailure::with(
            ErrorCode::Unavailable,
            "短信网关暂不可用，请稍后重试或联系信息科。",
            "The SMS gateway is unavailable; retry later or contact IT.",
        ));
    }
    Ok(EnrollSmsSent {
        phone_masked: staff::mask_phone(&a.phone),
        expires_at,
        resend_after: now_ms + SMS_RESEND_MS,
    })
}

/// Checks the SMS code of an activation (counted; [`MAX_SMS_FAILURES`] wrong codes void it).
async fn check_sms(
    db: &Db,
    staff_id: &str,
    a: &Activation,
    given: Option<&str>,
    now_ms: i64,
) -> Result<(), ApiFailure> {
    let Some(given) = given.filter(|g| !g.trim().is_empty()) else {
        return Err(ApiFailure::new(ErrorCode::SmsCodeRequired));
    };
    let Some(stored) = &a.sms_hash else {
        return Err(ApiFailure::new(ErrorCode::SmsCodeInvalid));
    };
    if a.sms_expires.is_none_or(|e| e < now_ms) || a.sms_failures >= MAX_SMS_FAILURES {
        return Err(ApiFailure::new(ErrorCode::SmsCodeInvalid));
    }
    let hash = sms::code_hash(staff_id, given);
    if !bool::from(hash.as_bytes().ct_eq(stored.as_bytes())) {
        sqlx::query("UPDATE staff SET sms_failures = sms_failures + 1 WHERE staff_id = $1")
            .bind(staff_id)
            .execute(db.pool())
            .await?;
        return Err(ApiFailure::new(ErrorCode::SmsCodeInvalid));
    }
    Ok(())
}

/// The subject and expected person of an activation's identity checks, after checking the
/// activation code (counted like every use of it). The checks count for the activation code in
/// force (its hash): a new code needs new checks.
pub async fn identity_subject(
    db: &Db,
    device: &dyn CryptoDevice,
    staff_id: &str,
    activation_code: &str,
    now_ms: i64,
) -> Result<(Subject, Expected), ApiFailure> {
    let a = check_activation(db, staff_id, activation_code, now_ms).await?;
    let expected = staff_expected(db, device, staff_id).await?;
    Ok((
        Subject {
            kind: "staff",
            id: staff_id.to_owned(),
            binding: a.hash,
            actor: format!("staff:{staff_id}"),
        },
        expected,
    ))
}

/// The staff record's name and ID number, which the ID card must show.
async fn staff_expected(
    db: &Db,
    device: &dyn CryptoDevice,
    staff_id: &str,
) -> Result<Expected, ApiFailure> {
    let row = sqlx::query("SELECT name, id_number_key FROM staff WHERE staff_id = $1")
        .bind(staff_id)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::ActivationInvalid))?;
    let key: Option<String> = row.try_get("id_number_key")?;
    let key = key.ok_or_else(|| {
        ApiFailure::with(
            ErrorCode::IdentityMismatch,
            "人事登记信息中没有身份证号，无法核验身份证，请联系管理员补录。",
            "The staff record has no ID number to compare the ID card with; ask an administrator to add it.",
        )
    })?;
    let id_number = with_secret(device, &KeyId(key), |s| {
        Ok(Zeroizing::new(
            String::from_utf8_lossy(s).to_ascii_uppercase(),
        ))
    })
    .await
    .map_err(dev)?;
    Ok(Expected {
        role: "staff",
        name: row.try_get("name")?,
        id_number,
    })
}

/// Step 1: the activation code (single use, counted), the SMS code when `second_factor` asks
/// for one (counted), the identity checks `identity` asks for, and the device key → a pending
/// device.
pub async fn begin(
    db: &Db,
    device: &dyn CryptoDevice,
    req: &EnrollBegin,
    (second_factor, identity): (SecondFactor, ActivationIdentity),
    now_ms: i64,
) -> Result<EnrollBegun, ApiFailure> {
    let pk = hex::decode(&req.device_public_key)
        .ok()
        .filter(|b| b.len() == 65)
        .and_then(|b| sm2::PublicKey::from_sec1_bytes(&b).ok())
        .ok_or_else(|| {
            ApiFailure::with(
                ErrorCode::InvalidArgument,
                "设备公钥须为 130 位十六进制的 SM2 非压缩公钥。",
                "device_public_key must be an uncompressed SM2 point in hex (130 characters).",
            )
        })?;
    let name = req.device_name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiFailure::with(
            ErrorCode::InvalidArgument,
            "设备名称须为 1–64 个字符。",
            "device_name must have 1–64 characters.",
        ));
    }
    let a = check_activation(db, &req.staff_id, &req.activation_code, now_ms).await?;
    if second_factor == SecondFactor::Sms {
        check_sms(db, &req.staff_id, &a, req.sms_code.as_deref(), now_ms).await?;
    }
    let required = checks::required_for_activation(identity);
    if !required.is_empty() {
        let who = staff_expected(db, device, &req.staff_id).await?;
        checks::satisfied(db, &a.hash, &who.digest(&a.hash), &required).await?;
    }
    let hash = a.hash;
    let device_id = format!("dev_{}", hex::encode(device.random(12).await.map_err(dev)?));
    let session_bytes: [u8; 16] = device
        .random(16)
        .await
        .map_err(dev)?
        .try_into()
        .map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    let session = SessionId(sm2_cosign::wire::Hex(session_bytes));
    // Consume the code and create the pending device in one transaction: a code starts one
    // enrolment only, even when two phones race.
    let mut tx = db.begin_write().await?;
    let consumed = sqlx::query(
        "UPDATE staff SET activation_hash = NULL, sms_code_hash = NULL, updated_at = $1 \
         WHERE staff_id = $2 AND activation_hash = $3",
    )
    .bind(now_ms)
    .bind(&req.staff_id)
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    if consumed.rows_affected() != 1 {
        return Err(ApiFailure::new(ErrorCode::ActivationInvalid));
    }
    sqlx::query(
        "INSERT INTO devices (device_id, staff_id, name, public_key, status, keygen_session, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $6)",
    )
    .bind(&device_id)
    .bind(&req.staff_id)
    .bind(name)
    .bind(hex::encode(pk.to_sec1_bytes()))
    .bind(hex::encode(session_bytes))
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(EnrollBegun { device_id, session })
}

fn pending(d: &Device, now_ms: i64) -> Result<SessionId, ApiFailure> {
    if d.status != "pending" || d.created_at + ENROLL_TTL_MS < now_ms {
        return Err(ApiFailure::new(ErrorCode::ActivationInvalid));
    }
    let bytes: [u8; 16] = hex::decode(&d.keygen_session)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?;
    Ok(SessionId(sm2_cosign::wire::Hex(bytes)))
}

/// Step 2: two-party key generation; the server share is parked in the crypto device.
pub async fn keygen(
    db: &Db,
    device: &dyn CryptoDevice,
    d: &Device,
    req: &KeygenRequest,
    now_ms: i64,
) -> Result<KeygenResponse, ApiFailure> {
    let session = pending(d, now_ms)?;
    let (state, resp) = ServerKeygen::respond_os(session, req).map_err(|e| protocol(&e))?;
    let (_, parked) = state.park();
    let key = device
        .import_secret(&format!("cosign-d2:{}", d.device_id), parked.to_bytes())
        .await
        .map_err(dev)?;
    let updated = sqlx::query(
        "UPDATE devices SET share_key = $1, joint_public_key = $2, updated_at = $3 \
         WHERE device_id = $4 AND status = 'pending'",
    )
    .bind(key.as_str())
    .bind(hex::encode(resp.public_key.0))
    .bind(now_ms)
    .bind(&d.device_id)
    .execute(db.pool())
    .await;
    match updated {
        Ok(r) if r.rows_affected() == 1 => {}
        other => {
            let _ = device.destroy(&key).await;
            other?;
            return Err(ApiFailure::new(ErrorCode::ActivationInvalid));
        }
    }
    // A repeated key generation (the phone retried) replaces the earlier share.
    if let Some(old) = &d.share_key {
        let _ = device.destroy(&KeyId(old.clone())).await;
    }
    Ok(resp)
}

/// Step 3: the phone's confirmation releases the share; the certificate is issued for the
/// joint key (computed by the server itself, so it vouches for it); the PIN's OPRF key is
/// created and the blinded PIN evaluated; earlier phones of the staff member are revoked.
#[allow(clippy::too_many_arguments)] // each is a distinct service or input of this one step
pub async fn finish(
    db: &Db,
    device: &dyn CryptoDevice,
    pki: &Pki,
    hospital: &str,
    d: &Device,
    req: &EnrollFinish,
    request_id: &str,
    now_ms: i64,
) -> Result<EnrollFinished, ApiFailure> {
    let session = pending(d, now_ms)?;
    let share_key = KeyId(
        d.share_key
            .clone()
            .ok_or_else(|| ApiFailure::new(ErrorCode::ProtocolViolation))?,
    );
    let confirm = req.confirm.clone();
    let joint = with_secret(device, &share_key, move |bytes| {
        let parked = ServerKeyShare::from_bytes(bytes)
            .map_err(|_| crypto_device::Error::Internal("stored share unreadable"))?;
        Ok(ServerKeygen::resume(session, &parked)
            .confirm(&confirm)
            .map(|share| share.public().public_key()))
    })
    .await
    .map_err(dev)?
    .map_err(|e| protocol(&e))?;

    let oprf = OprfKey::generate(&mut sm2_cosign::OsRng).map_err(|e| protocol(&e))?;
    let oprf_answer = oprf.evaluate(&req.oprf).map_err(|e| protocol(&e))?;
    let oprf_key = device
        .import_secret(
            &format!("cosign-oprf:{}", d.device_id),
            Zeroizing::new(oprf.to_bytes().to_vec()),
        )
        .await
        .map_err(dev)?;

    let s = staff::load(db, &d.staff_id)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    let info = staff::certificate_info(device, hospital, &s).await?;
    let actor = format!("staff:{}", s.staff_id);
    let issued = pki
        .issue_for_key(
            db,
            "staff",
            &joint,
            IssueProfile::Staff(info),
            STAFF_CERT_VALIDITY,
            &Actor {
                name: &actor,
                request_id,
            },
        )
        .await
        .map_err(crate::api::pki_failure)?;
    let serial = issued.serial();

    let mut tx = db.begin_write().await?;
    let old: Vec<(String, Option<String>)> = sqlx::query(
        "SELECT device_id, cert_serial FROM devices WHERE staff_id = $1 AND status = 'active'",
    )
    .bind(&d.staff_id)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("device_id")?, r.try_get("cert_serial")?)))
    .collect::<Result<_, sqlx::Error>>()?;
    sqlx::query("UPDATE devices SET status = 'revoked', updated_at = $1 WHERE staff_id = $2 AND status = 'active'")
        .bind(now_ms)
        .bind(&d.staff_id)
        .execute(&mut *tx)
        .await?;
    let activated = sqlx::query(
        "UPDATE devices SET status = 'active', oprf_key = $1, cert_serial = $2, updated_at = $3 \
         WHERE device_id = $4 AND status = 'pending'",
    )
    .bind(oprf_key.as_str())
    .bind(&serial)
    .bind(now_ms)
    .bind(&d.device_id)
    .execute(&mut *tx)
    .await?;
    if activated.rows_affected() != 1 {
        return Err(ApiFailure::new(ErrorCode::ActivationInvalid));
    }
    sqlx::query(
        "UPDATE staff SET status = 'active', pin_failures = 0, updated_at = $1 WHERE staff_id = $2",
    )
    .bind(now_ms)
    .bind(&d.staff_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    // The replaced phones' certificates no longer represent the doctor's key.
    for (_, cert) in old {
        if let Some(serial) = cert {
            let _ = pki.revoke(db, &serial, 4).await;
        }
    }
    let chain = ["staff", "root"]
        .iter()
        .filter_map(|n| pki.authority(n))
        .map(|a| b64(a.cert.der()))
        .collect();
    Ok(EnrollFinished {
        certificate: b64(issued.cert.der()),
        chain,
        serial,
        oprf: oprf_answer,
    })
}

fn b64(der: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// The hub id announced when a device is revoked, so its open push socket closes at once (on
/// every instance: `Hub::announce_in`).
pub fn hub_id(device_id: &str) -> String {
    format!("device:{device_id}")
}

/// Whether `device_id` is still active (a push socket asks after each revocation
/// announcement and on resynchronisation).
pub async fn is_active(db: &Db, device_id: &str) -> Result<bool, ApiFailure> {
    Ok(load(db, device_id)
        .await?
        .is_some_and(|d| d.status == "active"))
}

/// The first step of a phone's unbind (解绑本机), before anything is revoked: the device is
/// active, the reason acceptable, the call not a replay; then, when asked, the certificate is
/// revoked (cessationOfOperation). Answers whether it is revoked now. Everything revoked before
/// [`unbind`] leaves the device active, so a retry after a lost answer finishes the job.
pub async fn unbind_certificate(
    db: &Db,
    pki: &Pki,
    d: &Device,
    nonce: &Nonce,
    req: &UnbindDevice,
) -> Result<bool, ApiFailure> {
    if d.status != "active" {
        return Err(ApiFailure::new(ErrorCode::Forbidden));
    }
    super::check_reason(req.reason.as_deref())?;
    // A replayed call must not revoke anything.
    if nonce.seen(db).await? {
        return Err(ApiFailure::new(ErrorCode::Replayed));
    }
    match (&d.cert_serial, req.revoke_certificate) {
        (Some(serial), true) => match pki.revoke(db, serial, CESSATION_OF_OPERATION).await {
            Ok(_) | Err(crate::pki::PkiError::AlreadyRevoked) => Ok(true),
            Err(e) => Err(crate::api::pki_failure(e)),
        },
        _ => Ok(false),
    }
}

/// The last step of a phone's unbind: the device is revoked (its later calls fail the
/// signature check, its push socket closes), with the call's nonce, the `cosign.device.unbind`
/// audit entry and the announcement in one transaction; then the server's share `d2` and the
/// PIN's OPRF key are destroyed in the crypto device, so no phone can ever co-sign with this
/// key again. `done` is what the earlier steps revoked: the certificate, authorisations.
#[allow(clippy::too_many_arguments)] // services and inputs of one step
pub async fn unbind(
    db: &Db,
    device: &dyn CryptoDevice,
    audit: (&AuditLog, &str),
    d: &Device,
    nonce: &Nonce,
    req: &UnbindDevice,
    done: (bool, u32),
    now_ms: i64,
) -> Result<DeviceUnbound, ApiFailure> {
    let (certificate_revoked, authorisations_revoked) = done;
    let mut tx = db.begin_write().await?;
    nonce.spend_in(&mut tx).await?;
    let moved = sqlx::query(
        "UPDATE devices SET status = 'revoked', updated_at = $1 \
         WHERE device_id = $2 AND status = 'active'",
    )
    .bind(now_ms)
    .bind(&d.device_id)
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() != 1 {
        // Revoked meanwhile (a re-enrolment, a concurrent unbind): nothing left to do here.
        return Err(ApiFailure::new(ErrorCode::Forbidden));
    }
    crate::hub::Hub::announce_in(db.kind(), &mut tx, &hub_id(&d.device_id)).await?;
    let actor = format!("staff:{}", d.staff_id);
    let audit_lock = audit.0.lock().await;
    audit
        .0
        .append_in(
            &audit_lock,
            &mut tx,
            now_ms,
            &Event {
                actor: &actor,
                action: "cosign.device.unbind",
                target: &d.device_id,
                outcome: "ok",
                detail: serde_json::json!({
                    "certificate": d.cert_serial,
                    "certificate_revoked": certificate_revoked,
                    "authorisations_revoked": authorisations_revoked,
                    "reason": req.reason,
                }),
                request_id: audit.1,
            },
        )
        .await?;
    tx.commit().await?;
    drop(audit_lock);
    nonce.committed();
    for key in [&d.share_key, &d.oprf_key].into_iter().flatten() {
        if let Err(e) = device.destroy(&KeyId(key.clone())).await {
            // The device row is revoked, so the key is unusable; the device's own audit sink
            // recorded the attempt.
            tracing::warn!(error = %e, key = %key, "could not destroy an unbound phone's key");
        }
    }
    Ok(DeviceUnbound {
        device_id: d.device_id.clone(),
        certificate_serial: d.cert_serial.clone(),
        certificate_revoked,
        authorisations_revoked,
    })
}
