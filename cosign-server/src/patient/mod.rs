//! Patient signing (issue 8): a terminal creates a task (a PDF, the signer, the identity
//! checks, the sign mode, the placement); the patient (or a proxy) opens the link in the H5
//! page, proves the phone with an SMS code, reads the pages, confirms or signs by hand; the
//! server then signs the PDF with a one-event certificate whose key is generated in the crypto
//! device and destroyed afterwards. See `docs/api/patient.md` and the "Patient signing"
//! section of `docs/architecture.md`.
//!
//! * [`tasks`]: creation, the views, link/session checks, SMS codes, proxy details, pages.
//! * [`submit`]: submission checks, the evidence (SM4-GCM in the device), the signing steps
//!   and their crash recovery.
//! * [`ink`]: strokes rendered into a transparent PNG (copy mode's appearance).
//! * [`sms`]: the SMS gateway.
//! * [`identity`]: ID card, face and liveness checks (whom they must show, their evidence).

pub mod identity;
pub mod ink;
pub mod sms;
pub mod submit;
pub mod tasks;

use std::sync::Arc;

use crypto_device::{CryptoDevice, KeyId, SymMode};
use sqlx::Row;

use crate::api::ApiFailure;
use crate::signing::clients::dev;
use crate::store::Db;

/// The patient service's own state (besides the shared handler state).
#[derive(Debug, Clone)]
pub struct Patient {
    /// Where SMS go.
    pub sms: Arc<dyn crate::identity::sms::SmsGateway>,
}

impl Patient {
    /// The service on the server's one SMS gateway (`[sms]`), if any; without one, as
    /// `[patient]` says.
    pub fn new(
        gateway: Option<Arc<dyn crate::identity::sms::SmsGateway>>,
        cfg: &crate::config::PatientConfig,
    ) -> Self {
        Self {
            sms: sms::or_no_gateway(gateway, cfg),
        }
    }
}

/// 32 random bytes from the device, base64url without padding (link tokens, sessions).
pub async fn random_token(device: &dyn CryptoDevice) -> Result<String, ApiFailure> {
    use base64::Engine;
    let bytes = device.random(32).await.map_err(dev)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// SM3 hex of a token as stored.
pub fn token_hash(token: &str) -> String {
    crate::documents::sm3_hex(token.as_bytes())
}

/// The SM4 key of the patient service (`patient_keys.name = "data"`), generated in the device
/// on first use.
pub async fn data_key(db: &Db, device: &dyn CryptoDevice) -> Result<KeyId, ApiFailure> {
    named_key(db, device, "data").await
}

/// An SM4 key of the patient and identity services by name (`patient_keys`), generated in the
/// device on first use. Two instances racing both generate one; the loser destroys its own.
pub async fn named_key(
    db: &Db,
    device: &dyn CryptoDevice,
    name: &str,
) -> Result<KeyId, ApiFailure> {
    if let Some(r) = sqlx::query("SELECT key_id FROM patient_keys WHERE name = $1")
        .bind(name)
        .fetch_optional(db.pool())
        .await?
    {
        return Ok(KeyId(r.try_get("key_id")?));
    }
    let key = device
        .generate_sm4(&format!("patient:{name}"))
        .await
        .map_err(dev)?;
    let won = sqlx::query(
        "INSERT INTO patient_keys (name, key_id) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(key.as_str())
    .execute(db.pool())
    .await?
    .rows_affected()
        == 1;
    if won {
        return Ok(key);
    }
    let _ = device.destroy(&key).await;
    let r = sqlx::query("SELECT key_id FROM patient_keys WHERE name = $1")
        .bind(name)
        .fetch_one(db.pool())
        .await?;
    Ok(KeyId(r.try_get("key_id")?))
}

/// SM4-GCM under `key` with a fresh 12-byte nonce; `aad` binds the purpose and the task.
/// Returns (nonce, ciphertext ‖ tag).
pub async fn seal(
    device: &dyn CryptoDevice,
    key: &KeyId,
    aad: &str,
    plain: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), ApiFailure> {
    let nonce = device.random(12).await.map_err(dev)?;
    let ct = device
        .encrypt(key, SymMode::Gcm, &nonce, aad.as_bytes(), plain)
        .await
        .map_err(dev)?;
    Ok((nonce, ct))
}

/// Opens what [`seal`] made.
pub async fn open(
    device: &dyn CryptoDevice,
    key: &KeyId,
    aad: &str,
    nonce: &[u8],
    ct: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, ApiFailure> {
    device
        .decrypt(key, SymMode::Gcm, nonce, aad.as_bytes(), ct)
        .await
        .map_err(dev)
}

/// A secret kept in the device as its own key (ID numbers), read back as text.
pub async fn secret_text(device: &dyn CryptoDevice, key: &KeyId) -> Result<String, ApiFailure> {
    crypto_device::with_secret(device, key, |s| Ok(String::from_utf8_lossy(s).into_owned()))
        .await
        .map_err(dev)
}
