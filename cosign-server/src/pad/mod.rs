//! Bedside pads (issue 8, `docs/api/patient.md` §5): an administrator registers a pad and gets
//! a one-time enrolment code; the pad's kiosk page generates an SM2 device key, proves it with
//! a signature and receives a device certificate (seal CA, policy
//! [`crate::pki::PAD_DEVICE_POLICY`]) and the server's channel public key. From then on
//! every call is one `pad_channel` envelope: signed by the device key, the body SM4-GCM under a
//! per-request key wrapped to the channel key (kept in the crypto device), with a time and a
//! nonce checked here. The HTTP side (routes, in-process dispatch) is `crate::api::pad`.

use std::time::Duration;

use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::pad::{PadCode, PadEnrol, PadEnrolled, PadView, normalise_code};
use crypto_device::{CryptoDevice, KeyId, with_secret};
use sqlx::Row;
use zeroize::Zeroizing;

use crate::api::{ApiFailure, AppState};
use crate::clock::rfc3339;
use crate::pki::{Actor, DeviceInfo};
use crate::signing::clients::dev;
use crate::store::Db;

/// How long an enrolment code works.
pub const CODE_VALIDITY_MS: i64 = 15 * 60 * 1000;
/// Largest difference between the pad's clock and ours.
pub const CLOCK_WINDOW_MS: i64 = 5 * 60 * 1000;
/// How long a nonce is remembered: any envelope still inside the window was seen within it.
pub const NONCE_KEEP_MS: i64 = 2 * CLOCK_WINDOW_MS;
/// Validity of a pad's device certificate (pads are revoked, not left to expire).
pub const CERT_VALIDITY: Duration = Duration::from_secs(730 * 24 * 3600);
/// Enrolment code alphabet: no 0/O, 1/I/L, so staff can type what they read.
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Code length (12 of 31 symbols: 59 bits).
const CODE_LEN: usize = 12;
/// The `pad_keys` row of the channel key.
const CHANNEL_KEY: &str = "channel";
/// The `pad_keys` row of the key it replaced at the last rotation.
const PREVIOUS_CHANNEL_KEY: &str = "channel.previous";
/// How long envelopes sealed to the previous channel key are still opened after a rotation.
/// A pad in use polls its queue every few seconds and learns the new key from the first
/// answer; a week covers pads left switched off over a holiday.
pub const PREVIOUS_KEY_GRACE_MS: i64 = 7 * 24 * 3600 * 1000;

/// A pad as stored.
#[derive(Debug, Clone)]
pub struct PadRow {
    /// Id (UUID).
    pub pad_id: String,
    /// Display name.
    pub name: String,
    /// Ward.
    pub ward: String,
    /// `pending`, `active` or `revoked`.
    pub status: String,
    /// SM3 of the enrolment code (pending pads).
    pub code_hash: Option<String>,
    /// Unix ms.
    pub code_expires_at: Option<i64>,
    /// SEC1 device key (once enrolled).
    pub public_key: Option<Vec<u8>>,
    /// Device certificate serial.
    pub cert_serial: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub enrolled_at: Option<i64>,
    /// Unix ms.
    pub revoked_at: Option<i64>,
    /// Unix ms.
    pub last_seen_at: Option<i64>,
}

const COLUMNS: &str = "pad_id, name, ward, status, code_hash, code_expires_at, public_key, \
    cert_serial, created_at, enrolled_at, revoked_at, last_seen_at";

fn row_of(r: &sqlx::any::AnyRow) -> Result<PadRow, sqlx::Error> {
    Ok(PadRow {
        pad_id: r.try_get("pad_id")?,
        name: r.try_get("name")?,
        ward: r.try_get("ward")?,
        status: r.try_get("status")?,
        code_hash: r.try_get("code_hash")?,
        code_expires_at: r.try_get("code_expires_at")?,
        public_key: r.try_get("public_key")?,
        cert_serial: r.try_get("cert_serial")?,
        created_at: r.try_get("created_at")?,
        enrolled_at: r.try_get("enrolled_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
    })
}

async fn load_where(db: &Db, column: &str, value: &str) -> Result<Option<PadRow>, ApiFailure> {
    let r = sqlx::query(&format!("SELECT {COLUMNS} FROM pads WHERE {column} = $1"))
        .bind(value)
        .fetch_optional(db.pool())
        .await?;
    Ok(r.as_ref().map(row_of).transpose()?)
}

/// Loads a pad by id.
pub async fn load(db: &Db, pad_id: &str) -> Result<Option<PadRow>, ApiFailure> {
    if pad_id.is_empty() || pad_id.len() > 64 {
        return Ok(None);
    }
    load_where(db, "pad_id", pad_id).await
}

/// Every pad, newest first.
pub async fn list(db: &Db) -> Result<Vec<PadRow>, ApiFailure> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM pads ORDER BY created_at DESC, pad_id"
    ))
    .fetch_all(db.pool())
    .await?;
    Ok(rows.iter().map(row_of).collect::<Result<Vec<_>, _>>()?)
}

/// The admin view.
pub fn view(p: &PadRow) -> PadView {
    PadView {
        pad_id: p.pad_id.clone(),
        name: p.name.clone(),
        ward: p.ward.clone(),
        status: p.status.clone(),
        certificate_serial: p.cert_serial.clone(),
        created_at: rfc3339(p.created_at),
        enrolled_at: p.enrolled_at.map(rfc3339),
        revoked_at: p.revoked_at.map(rfc3339),
        last_seen_at: p.last_seen_at.map(rfc3339),
    }
}

fn code_hash(normalised: &str) -> String {
    crate::documents::sm3_hex(format!("pad-code:{normalised}").as_bytes())
}

/// A fresh code from the device's generator (rejection sampling: no bias towards any symbol).
async fn new_code(device: &dyn CryptoDevice) -> Result<Zeroizing<String>, ApiFailure> {
    let n = u8::try_from(CODE_ALPHABET.len()).unwrap_or(u8::MAX);
    let limit = u8::MAX - u8::MAX % n; // 248: bytes at or above are skipped
    let mut code = Zeroizing::new(String::with_capacity(CODE_LEN));
    while code.len() < CODE_LEN {
        let bytes = Zeroizing::new(device.random(32).await.map_err(dev)?);
        for b in bytes.iter().filter(|b| **b < limit) {
            if code.len() == CODE_LEN {
                break;
            }
            code.push(char::from(CODE_ALPHABET[usize::from(b % n)]));
        }
    }
    Ok(code)
}

/// `ABCDEFGHJKMN` → `ABCD-EFGH-JKMN`.
fn grouped(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

fn code_answer(p: &PadRow, code: &str, expires_at: i64) -> PadCode {
    PadCode {
        pad_id: p.pad_id.clone(),
        name: p.name.clone(),
        ward: p.ward.clone(),
        status: p.status.clone(),
        enrol_code: grouped(code),
        enrol_expires_at: rfc3339(expires_at),
    }
}

/// Registers a pad (status `pending`) and returns its first enrolment code.
pub async fn create(
    state: &AppState,
    name: &str,
    ward: &str,
    created_by: &str,
    now_ms: i64,
) -> Result<PadCode, ApiFailure> {
    crate::patient::tasks::check_text("name", name, 32)?;
    crate::patient::tasks::check_text("ward", ward, 32)?;
    let device = state.keys.device();
    let code = new_code(&*device).await?;
    let pad_id = uuid::Uuid::new_v4().to_string();
    let expires_at = now_ms + CODE_VALIDITY_MS;
    sqlx::query(
        "INSERT INTO pads (pad_id, name, ward, status, code_hash, code_expires_at, created_by, \
         created_at) VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7)",
    )
    .bind(&pad_id)
    .bind(name)
    .bind(ward)
    .bind(code_hash(&code))
    .bind(expires_at)
    .bind(created_by)
    .bind(now_ms)
    .execute(state.db.pool())
    .await?;
    let pad = load(&state.db, &pad_id)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?;
    Ok(code_answer(&pad, &code, expires_at))
}

/// A new enrolment code for a pad that is still `pending` (the old code stops working).
pub async fn renew_code(
    state: &AppState,
    pad: &PadRow,
    now_ms: i64,
) -> Result<PadCode, ApiFailure> {
    let device = state.keys.device();
    let code = new_code(&*device).await?;
    let expires_at = now_ms + CODE_VALIDITY_MS;
    let moved = sqlx::query(
        "UPDATE pads SET code_hash = $1, code_expires_at = $2 WHERE pad_id = $3 AND \
         status = 'pending' AND cert_serial IS NULL",
    )
    .bind(code_hash(&code))
    .bind(expires_at)
    .bind(&pad.pad_id)
    .execute(state.db.pool())
    .await?
    .rows_affected();
    if moved != 1 {
        return Err(ApiFailure::with(
            ErrorCode::InvalidArgument,
            "只有尚未登记的平板可以重新生成登记码；已停用的平板请新建。",
            "Only a pad not enrolled yet gets a new code; register a new pad instead of a revoked one.",
        ));
    }
    Ok(code_answer(pad, &code, expires_at))
}

/// Revokes a pad (any state) and its device certificate. A pad already revoked is answered
/// again after retrying the certificate revocation (so a failure there can be repaired).
pub async fn revoke(
    state: &AppState,
    pad: &PadRow,
    reason: i64,
    now_ms: i64,
) -> Result<PadRow, ApiFailure> {
    sqlx::query(
        "UPDATE pads SET status = 'revoked', revoked_at = $1, code_hash = NULL, \
         code_expires_at = NULL WHERE pad_id = $2 AND status <> 'revoked'",
    )
    .bind(now_ms)
    .bind(&pad.pad_id)
    .execute(state.db.pool())
    .await?;
    let now = load(&state.db, &pad.pad_id)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    if let Some(serial) = &now.cert_serial {
        revoke_certificate(state, serial, reason).await?;
    }
    Ok(now)
}

async fn revoke_certificate(state: &AppState, serial: &str, reason: i64) -> Result<(), ApiFailure> {
    match state.pki.revoke(&state.db, serial, reason).await {
        Ok(_) | Err(crate::pki::PkiError::AlreadyRevoked) => Ok(()),
        Err(e) => Err(crate::api::pki_failure(e)),
    }
}

fn code_invalid() -> ApiFailure {
    ApiFailure::new(ErrorCode::PadCodeInvalid)
}

fn bad(field: &str, zh: &str, en: &str) -> ApiFailure {
    ApiFailure::with(
        ErrorCode::InvalidArgument,
        format!("字段 {field} 无效：{zh}"),
        format!("Invalid {field}: {en}"),
    )
}

/// The checked public key of an enrolment (SEC1 uncompressed, on the curve).
fn enrol_key(hex_key: &str) -> Result<(Vec<u8>, sm2::PublicKey), ApiFailure> {
    let refuse = || {
        bad(
            "public_key",
            "须为 65 字节未压缩 SM2 公钥的十六进制",
            "must be the hex of a 65-byte uncompressed SM2 public key",
        )
    };
    if hex_key.len() != 130 {
        return Err(refuse());
    }
    let bytes = hex::decode(hex_key).map_err(|_| refuse())?;
    if bytes.first() != Some(&4) {
        return Err(refuse());
    }
    let key = sm2::PublicKey::from_sec1_bytes(&bytes).map_err(|_| refuse())?;
    Ok((bytes, key))
}

/// Enrolment: checks the proof of possession and the code, claims the code (single use), has
/// the seal CA issue the device certificate and activates the pad. Returns the answer and the
/// pad id (`None` when no pad matched the code) for the audit entry.
pub async fn enrol(
    state: &AppState,
    req: &PadEnrol,
    request_id: &str,
    now_ms: i64,
) -> (Option<String>, Result<PadEnrolled, ApiFailure>) {
    let code = normalise_code(&req.code);
    if code.len() != CODE_LEN || !code.bytes().all(|b| CODE_ALPHABET.contains(&b)) {
        return (None, Err(code_invalid()));
    }
    let (public_bytes, public_key) = match enrol_key(&req.public_key) {
        Ok(k) => k,
        Err(e) => return (None, Err(e)),
    };
    let signature_ok = req.signature.len() <= 2 * pad_channel::MAX_SIG
        && hex::decode(&req.signature).is_ok_and(|sig| {
            let msg = cosign_proto::v1::pad::enrol_message(&code, &req.public_key);
            pad_channel::verify(&public_bytes, &msg, &sig).is_ok()
        });
    if !signature_ok {
        let e = bad(
            "signature",
            "不是该公钥对登记信息的 SM2 签名",
            "is not this key's SM2 signature of the enrolment message",
        );
        return (None, Err(e));
    }
    let hash = code_hash(&code);
    let pad = match load_where(&state.db, "code_hash", &hash).await {
        Ok(Some(p)) => p,
        Ok(None) => return (None, Err(code_invalid())),
        Err(e) => return (None, Err(e)),
    };
    let id = Some(pad.pad_id.clone());
    (
        id,
        activate(
            state,
            &pad,
            &hash,
            &public_bytes,
            &public_key,
            request_id,
            now_ms,
        )
        .await,
    )
}

async fn activate(
    state: &AppState,
    pad: &PadRow,
    hash: &str,
    public_bytes: &[u8],
    public_key: &sm2::PublicKey,
    request_id: &str,
    now_ms: i64,
) -> Result<PadEnrolled, ApiFailure> {
    // The claim: the code works once, even for two enrolments at the same moment.
    let claimed = sqlx::query(
        "UPDATE pads SET code_hash = NULL, code_expires_at = NULL, public_key = $1 WHERE \
         pad_id = $2 AND status = 'pending' AND code_hash = $3 AND code_expires_at >= $4",
    )
    .bind(public_bytes)
    .bind(&pad.pad_id)
    .bind(hash)
    .bind(now_ms)
    .execute(state.db.pool())
    .await?
    .rows_affected();
    if claimed != 1 {
        return Err(code_invalid());
    }
    let info = DeviceInfo {
        device_id: format!("PAD-{}", pad.pad_id),
        ward: pad.ward.clone(),
        hospital: state.config.pki.organisation.clone(),
    };
    let actor_name = format!("pad:{}", pad.pad_id);
    let actor = Actor {
        name: &actor_name,
        request_id,
    };
    let issued = state
        .pki
        .issue_pad(&state.db, public_key, &info, CERT_VALIDITY, &actor)
        .await
        .map_err(crate::api::pki_failure)?;
    let serial = issued.serial();
    let active = sqlx::query(
        "UPDATE pads SET status = 'active', cert_serial = $1, enrolled_at = $2 WHERE \
         pad_id = $3 AND status = 'pending' AND cert_serial IS NULL",
    )
    .bind(&serial)
    .bind(now_ms)
    .bind(&pad.pad_id)
    .execute(state.db.pool())
    .await?
    .rows_affected();
    if active != 1 {
        // Revoked while the certificate was being made: it must not stay valid.
        revoke_certificate(
            state,
            &serial,
            crate::pki::reason_code("cessationOfOperation").unwrap_or(5),
        )
        .await?;
        return Err(ApiFailure::new(ErrorCode::PadRevoked));
    }
    let device = state.keys.device();
    let (_, channel_public) = channel_key(&state.db, &*device).await?;
    Ok(PadEnrolled {
        pad_id: pad.pad_id.clone(),
        name: pad.name.clone(),
        ward: pad.ward.clone(),
        hospital: state.config.pki.organisation.clone(),
        certificate_serial: serial,
        certificate_pem: issued.cert.to_pem(),
        channel_public_key: hex::encode(channel_public),
    })
}

/// A channel key as recorded: its device key id, SEC1 public key and when it was made.
#[derive(Debug, Clone)]
struct ChannelKey {
    key: KeyId,
    public: Vec<u8>,
    created_at: i64,
}

async fn recorded_key(db: &Db, name: &str) -> Result<Option<ChannelKey>, ApiFailure> {
    let r = sqlx::query("SELECT key_id, public_key, created_at FROM pad_keys WHERE name = $1")
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    Ok(match r {
        Some(r) => Some(ChannelKey {
            key: KeyId(r.try_get("key_id")?),
            public: r.try_get("public_key")?,
            created_at: r.try_get("created_at")?,
        }),
        None => None,
    })
}

/// A fresh channel key pair: the private key drawn from the device's generator and imported
/// into it as a secret (like cosign's d2); the caller records it or destroys it.
async fn new_channel_key(device: &dyn CryptoDevice) -> Result<(KeyId, Vec<u8>), ApiFailure> {
    let (secret, public) = loop {
        let secret = Zeroizing::new(device.random(32).await.map_err(dev)?);
        // A scalar outside [1, n-1] (probability ~2^-128) is drawn again.
        if let Ok(public) = pad_channel::public_of(&secret) {
            break (secret, public);
        }
    };
    let key = device
        .import_secret("pad:channel", secret)
        .await
        .map_err(dev)?;
    Ok((key, public))
}

/// The channel key: its device key id and SEC1 public key. Made on first use and recorded in
/// `pad_keys`; when two instances race, the first recorded wins and the other destroys its own.
pub async fn channel_key(
    db: &Db,
    device: &dyn CryptoDevice,
) -> Result<(KeyId, Vec<u8>), ApiFailure> {
    if let Some(k) = recorded_key(db, CHANNEL_KEY).await? {
        return Ok((k.key, k.public));
    }
    let (key, public) = new_channel_key(device).await?;
    let won = sqlx::query(
        "INSERT INTO pad_keys (name, key_id, public_key, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(CHANNEL_KEY)
    .bind(key.as_str())
    .bind(&public)
    .bind(crate::clock::now_ms())
    .execute(db.pool())
    .await?
    .rows_affected()
        == 1;
    if !won {
        let _ = device.destroy(&key).await;
    }
    let k = recorded_key(db, CHANNEL_KEY)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?;
    Ok((k.key, k.public))
}

/// Replaces the channel key (administrators, `POST /api/v1/pads/channel-key/rotate`): the
/// current key becomes the previous one, still opened for [`PREVIOUS_KEY_GRACE_MS`]; the key
/// before it is forgotten and destroyed in the device. Returns the new public key and until
/// when the previous one is accepted (unix ms).
pub async fn rotate_channel_key(
    db: &Db,
    device: &dyn CryptoDevice,
    now_ms: i64,
) -> Result<(Vec<u8>, i64), ApiFailure> {
    // Make sure a current key exists, so a first rotation also leaves a previous one.
    channel_key(db, device).await?;
    let (key, public) = new_channel_key(device).await?;
    let swapped = async {
        let mut tx = db.begin_write().await?;
        let retired: Option<String> =
            sqlx::query_scalar("SELECT key_id FROM pad_keys WHERE name = $1")
                .bind(PREVIOUS_CHANNEL_KEY)
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM pad_keys WHERE name = $1")
            .bind(PREVIOUS_CHANNEL_KEY)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE pad_keys SET name = $1 WHERE name = $2")
            .bind(PREVIOUS_CHANNEL_KEY)
            .bind(CHANNEL_KEY)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO pad_keys (name, key_id, public_key, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(CHANNEL_KEY)
        .bind(key.as_str())
        .bind(&public)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(retired)
    }
    .await;
    match swapped {
        Ok(retired) => {
            if let Some(old) = retired {
                // Nothing refers to it any more; a failure here leaves only an unused key.
                if let Err(e) = device.destroy(&KeyId(old)).await {
                    tracing::warn!(error = %e, "retired pad channel key not destroyed");
                }
            }
            Ok((public, now_ms + PREVIOUS_KEY_GRACE_MS))
        }
        Err(e) => {
            let _ = device.destroy(&key).await;
            Err(e.into())
        }
    }
}

/// The keys an envelope may be sealed to now: the current one, then the previous one while
/// its grace period (counted from the rotation, i.e. the current key's creation) lasts.
async fn open_keys(
    db: &Db,
    device: &dyn CryptoDevice,
    now_ms: i64,
) -> Result<Vec<ChannelKey>, ApiFailure> {
    let current = if let Some(k) = recorded_key(db, CHANNEL_KEY).await? {
        k
    } else {
        let (key, public) = channel_key(db, device).await?;
        ChannelKey {
            key,
            public,
            created_at: now_ms,
        }
    };
    let previous = recorded_key(db, PREVIOUS_CHANNEL_KEY)
        .await?
        .filter(|_| now_ms < current.created_at.saturating_add(PREVIOUS_KEY_GRACE_MS));
    Ok(std::iter::once(current).chain(previous).collect())
}

/// An envelope that passed every check: the pad, the answer key and the inner request.
pub struct Accepted {
    /// The pad.
    pub pad: PadRow,
    /// The per-request key (answers are sealed with it).
    pub key: pad_channel::SessionKey,
    /// The request nonce (the answer is bound to it).
    pub nonce: [u8; pad_channel::NONCE_LEN],
    /// The inner request (JSON).
    pub plain: Zeroizing<Vec<u8>>,
    /// The current channel public key, when the envelope was sealed to the previous one: the
    /// answer tells the pad to switch.
    pub switch_to: Option<Vec<u8>>,
}

impl std::fmt::Debug for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the inner plaintext.
        f.debug_struct("Accepted")
            .field("pad_id", &self.pad.pad_id)
            .finish_non_exhaustive()
    }
}

/// Why an envelope was refused, and which pad it named (when one did).
#[derive(Debug)]
pub struct Refused {
    /// The error code answered.
    pub code: ErrorCode,
    /// The pad (once the serial matched one).
    pub pad_id: Option<String>,
    /// The serial as sent (once the envelope parsed).
    pub serial: Option<String>,
}

/// Checks an envelope, in the order that leaks least: format, pad by serial, signature, pad
/// state, time window, nonce (recorded in a transaction: a second use is a replay), then the
/// key unwrap in the device and the decryption.
pub async fn accept(
    state: &AppState,
    bytes: &[u8],
    now_ms: i64,
) -> Result<Result<Accepted, Refused>, ApiFailure> {
    let refuse = |code, pad_id: Option<&str>, serial: Option<&str>| {
        Ok(Err(Refused {
            code,
            pad_id: pad_id.map(str::to_owned),
            serial: serial.map(str::to_owned),
        }))
    };
    let Ok(req) = pad_channel::Request::parse(bytes) else {
        return refuse(ErrorCode::PadEnvelopeInvalid, None, None);
    };
    let serial = req.serial.to_ascii_lowercase();
    let s = Some(serial.as_str());
    let Some(pad) = load_where(&state.db, "cert_serial", &serial).await? else {
        return refuse(ErrorCode::PadUnknown, None, s);
    };
    let id = Some(pad.pad_id.as_str());
    let key_ok = pad
        .public_key
        .as_deref()
        .is_some_and(|k| req.verify(k).is_ok());
    if !key_ok {
        return refuse(ErrorCode::PadUnknown, id, s);
    }
    if pad.status != "active" {
        return refuse(ErrorCode::PadRevoked, id, s);
    }
    let in_window = i64::try_from(req.time_ms).is_ok_and(|t| (t - now_ms).abs() <= CLOCK_WINDOW_MS);
    if !in_window {
        return refuse(ErrorCode::PadClock, id, s);
    }
    let mut tx = state.db.pool().begin().await?;
    sqlx::query("DELETE FROM pad_nonces WHERE expires_at < $1")
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
    let fresh = sqlx::query(
        "INSERT INTO pad_nonces (pad_id, nonce, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (pad_id, nonce) DO NOTHING",
    )
    .bind(&pad.pad_id)
    .bind(hex::encode(req.nonce))
    .bind(now_ms + NONCE_KEEP_MS)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !fresh {
        tx.rollback().await?;
        return refuse(ErrorCode::PadReplay, id, s);
    }
    sqlx::query("UPDATE pads SET last_seen_at = $1 WHERE pad_id = $2")
        .bind(now_ms)
        .bind(&pad.pad_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let device = state.keys.device();
    let keys = open_keys(&state.db, &*device, now_ms).await?;
    for (i, channel) in keys.iter().enumerate() {
        let wrapped = req.wrapped_key.clone();
        // The channel private key is seen only inside the device's callback.
        let unwrapped = with_secret(&*device, &channel.key, move |secret| {
            Ok(pad_channel::unwrap_key(secret, &wrapped))
        })
        .await
        .map_err(dev)?;
        if unwrapped.is_err() {
            // Sealed to another key (SM2 decryption checks C3): try the previous one.
            continue;
        }
        return match req.open(|_| unwrapped) {
            Ok((key, plain)) => Ok(Ok(Accepted {
                pad,
                key,
                nonce: req.nonce,
                plain,
                switch_to: (i > 0).then(|| keys[0].public.clone()),
            })),
            Err(_) => refuse(ErrorCode::PadEnvelopeInvalid, id, s),
        };
    }
    refuse(ErrorCode::PadEnvelopeInvalid, id, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_and_hashed_normalised() {
        assert_eq!(grouped("ABCDEFGHJKMN"), "ABCD-EFGH-JKMN");
        assert_eq!(
            code_hash(&normalise_code("abcd-efgh-jkmn")),
            code_hash("ABCDEFGHJKMN")
        );
        assert_eq!(NONCE_KEEP_MS, 600_000);
    }
}
