//! The [`CryptoDevice`] trait, in the shape of GM/T 0018 (SDF).
//!
//! | trait method | SDF function(s) |
//! |---|---|
//! | device constructor (`SoftDevice::open`, `SdfDevice::open`) | `SDF_OpenDevice`, `SDF_OpenSession` |
//! | [`CryptoDevice::random`] | `SDF_GenerateRandom` |
//! | [`CryptoDevice::generate_sm2`] | internal key index allocation + `SDF_ExportSignPublicKey_ECC` |
//! | [`CryptoDevice::sign_digest`] | `SDF_InternalSign_ECC` (input e = SM3(Z‖M), computed by the caller) |
//! | [`CryptoDevice::sm3`], [`CryptoDevice::sm3_with_z`] | `SDF_HashInit` (with public key + ID for Z) / `SDF_HashUpdate` / `SDF_HashFinal` |
//! | [`CryptoDevice::generate_sm4`] | `SDF_GenerateKeyWithKEK` |
//! | [`CryptoDevice::encrypt`], [`CryptoDevice::decrypt`] | `SDF_ImportKeyWithKEK` + `SDF_Encrypt` / `SDF_Decrypt` + `SDF_DestroyKey` |
//! | [`CryptoDevice::export_wrapped`], [`CryptoDevice::import_wrapped`] | key wrapped under another device key |
//! | [`CryptoDevice::destroy`] | `SDF_DestroyKey` / key index retirement |
//!
//! **Signing input.** Like `SDF_InternalSign_ECC`, [`CryptoDevice::sign_digest`] signs a
//! 32-byte digest e that the CALLER computes as e = SM3(Z ‖ M), where
//! Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA) and ID is normally "1234567812345678".
//! Use [`CryptoDevice::sm3_with_z`] (or [`crate::prims::sm2_digest`]) to compute it. Passing
//! SM3(M) alone produces signatures that no standard verifier accepts.

use std::fmt;

use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::prims::{Sm2PublicKey, Sm2Signature};
use crate::store::KeyRecord;

/// A key identifier inside a device (opaque; stable across restarts).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct KeyId(pub String);

impl KeyId {
    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a key is.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyKind {
    /// Key-encryption key (SM4-128), wraps data keys; wrapped by the master key.
    Kek,
    /// SM2 signing key pair (private part never leaves the device unwrapped).
    Sm2Sign,
    /// SM4-128 data key.
    Sm4,
    /// Opaque secret bytes (e.g. the server's co-signing share d2), usable only inside a closure.
    Secret,
}

impl KeyKind {
    /// Stable text form stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Kek => "kek",
            KeyKind::Sm2Sign => "sm2_sign",
            KeyKind::Sm4 => "sm4",
            KeyKind::Secret => "secret",
        }
    }

    /// Parse the stored text form.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "kek" => KeyKind::Kek,
            "sm2_sign" => KeyKind::Sm2Sign,
            "sm4" => KeyKind::Sm4,
            "secret" => KeyKind::Secret,
            _ => return Err(Error::Integrity("unknown key kind in key record")),
        })
    }
}

/// Key life-cycle state.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyState {
    /// Usable.
    Active,
    /// Temporarily unusable (e.g. a doctor on leave, an investigation); can be resumed.
    Suspended,
    /// Material erased; terminal.
    Destroyed,
}

impl KeyState {
    /// Stable text form stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Suspended => "suspended",
            KeyState::Destroyed => "destroyed",
        }
    }

    /// Parse the stored text form.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "active" => KeyState::Active,
            "suspended" => KeyState::Suspended,
            "destroyed" => KeyState::Destroyed,
            _ => return Err(Error::Integrity("unknown key state in key record")),
        })
    }
}

/// Symmetric modes of [`CryptoDevice::encrypt`] / [`CryptoDevice::decrypt`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum SymMode {
    /// SM4-ECB, no padding, data a multiple of 16 bytes (SDF `SGD_SM4_ECB`). Not for data:
    /// for key wrapping and building other modes only. `iv` must be empty.
    Ecb,
    /// SM4-CBC, no padding (pad with [`crate::prims::pkcs7_pad`]), 16-byte IV (`SGD_SM4_CBC`).
    /// Confidentiality only.
    Cbc,
    /// SM4-GCM, 12-byte nonce (never reuse one with the same key), 16-byte tag appended;
    /// `aad` authenticated. The mode to use for data.
    Gcm,
}

/// Public description of a key (no secret material).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// Identifier.
    pub id: KeyId,
    /// Human label given at creation ("ca-root", "tsa-2026", "d2:doctor-42", ...).
    pub label: String,
    /// Kind.
    pub kind: KeyKind,
    /// State.
    pub state: KeyState,
    /// The key that wraps it (a KEK id, "master", or a device-internal reference).
    pub wrapped_by: String,
    /// SEC1 public key for SM2 keys, empty otherwise.
    pub public_key: Vec<u8>,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Last change (Unix seconds).
    pub updated_at: i64,
}

/// Static facts about a device.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeviceInfo {
    /// "soft" or "sdf".
    pub kind: &'static str,
    /// Free text: library path, master key file, ...
    pub description: String,
}

/// Callback receiving a secret inside [`CryptoDevice::use_secret`]. The slice is wiped after
/// the call returns; copy nothing out of it except derived public values.
pub type SecretFn<'a> = Box<dyn FnOnce(&[u8]) -> Result<Vec<u8>> + Send + 'a>;

/// An SM2 key held open for many signatures (see [`CryptoDevice::open_signing_key`]).
pub trait SigningHandle: Send + Sync + fmt::Debug {
    /// The key it signs with.
    fn key(&self) -> &KeyId;

    /// Sign the digest e = SM3(Z ‖ M), as [`CryptoDevice::sign_digest`] does, without going
    /// back to the key store.
    fn sign_digest(&self, e: &[u8; 32]) -> Result<Sm2Signature>;
}

/// A GM/T 0018-shaped crypto device. Object safe: the server holds `Arc<dyn CryptoDevice>`.
#[async_trait]
pub trait CryptoDevice: Send + Sync + fmt::Debug {
    /// What this device is.
    fn info(&self) -> DeviceInfo;

    /// `len` random bytes from the device generator (`SDF_GenerateRandom`).
    async fn random(&self, len: usize) -> Result<Vec<u8>>;

    /// Generate an SM2 key pair inside the device; returns its handle and public key.
    async fn generate_sm2(&self, label: &str) -> Result<(KeyId, Sm2PublicKey)>;

    /// The public key of an SM2 key (works for suspended keys, not destroyed ones).
    async fn public_key(&self, key: &KeyId) -> Result<Sm2PublicKey>;

    /// Sign the digest e = SM3(Z ‖ M) with an internal SM2 key (`SDF_InternalSign_ECC`).
    async fn sign_digest(&self, key: &KeyId, e: &[u8; 32]) -> Result<Sm2Signature>;

    /// Opens an SM2 key for a burst of signatures (a time-stamp authority signing thousands
    /// of tokens a second). The software device checks the key is active, unwraps it once and
    /// keeps the private scalar in memory until the handle is dropped (zeroized then), which
    /// saves the key-store reads and unwrapping [`CryptoDevice::sign_digest`] does per call. An
    /// open handle does not see a later suspension or destruction: holders re-open it at short
    /// intervals. Devices whose keys never leave them return `None` (sign per call); that is the
    /// default.
    async fn open_signing_key(&self, key: &KeyId) -> Result<Option<Box<dyn SigningHandle>>> {
        let _ = key;
        Ok(None)
    }

    /// SM3(data).
    async fn sm3(&self, data: &[u8]) -> Result<[u8; 32]>;

    /// e = SM3(Z ‖ msg) for `public` and distinguishing `id` (`SDF_HashInit` with a public key).
    async fn sm3_with_z(&self, public: &Sm2PublicKey, id: &[u8], msg: &[u8]) -> Result<[u8; 32]>;

    /// Generate an SM4 data key inside the device.
    async fn generate_sm4(&self, label: &str) -> Result<KeyId>;

    /// Encrypt with an SM4 device key. `iv`: empty for ECB, 16 bytes for CBC, 12 for GCM.
    async fn encrypt(
        &self,
        key: &KeyId,
        mode: SymMode,
        iv: &[u8],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>>;

    /// Decrypt with an SM4 device key. GCM failures are [`Error::Integrity`].
    async fn decrypt(
        &self,
        key: &KeyId,
        mode: SymMode,
        iv: &[u8],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>>;

    /// A device key suitable as the `wrapping` argument of export/import (the software
    /// device creates a dedicated transport key on first use; the SDF adapter returns its
    /// configured KEK index).
    async fn default_wrapping_key(&self) -> Result<KeyId>;

    /// Export `key` wrapped (encrypted and authenticated) under the device key `wrapping`.
    /// The plain key never leaves the device.
    async fn export_wrapped(&self, key: &KeyId, wrapping: &KeyId) -> Result<Vec<u8>>;

    /// Import a blob produced by [`CryptoDevice::export_wrapped`] as a new key.
    async fn import_wrapped(&self, wrapping: &KeyId, label: &str, blob: &[u8]) -> Result<KeyId>;

    /// Store opaque secret bytes (e.g. the co-signing share d2) as a device key. The caller
    /// should wipe its copy; the device keeps it only wrapped.
    async fn import_secret(&self, label: &str, secret: Zeroizing<Vec<u8>>) -> Result<KeyId>;

    /// Run `f` over the unwrapped secret; the plain bytes live only during the call and are
    /// wiped afterwards. Returns what `f` returns. See [`with_secret`] for a generic form.
    async fn use_secret(&self, key: &KeyId, f: SecretFn<'_>) -> Result<Vec<u8>>;

    /// Replace the bytes of a secret key in place (share refresh), keeping its id.
    async fn replace_secret(&self, key: &KeyId, secret: Zeroizing<Vec<u8>>) -> Result<()>;

    /// Suspend (`KeyState::Suspended`) or resume (`KeyState::Active`) a key. Destroying
    /// goes through [`CryptoDevice::destroy`].
    async fn set_state(&self, key: &KeyId, state: KeyState) -> Result<()>;

    /// Destroy a key: its material is erased and every later use fails with
    /// [`Error::KeyDestroyed`].
    async fn destroy(&self, key: &KeyId) -> Result<()>;

    /// One key's public description.
    async fn key_info(&self, key: &KeyId) -> Result<KeyInfo>;

    /// Every key's public description (including destroyed ones, for the audit trail).
    async fn list_keys(&self) -> Result<Vec<KeyInfo>>;
}

/// Generic wrapper over [`CryptoDevice::use_secret`]: `f` sees the secret bytes and may
/// return any value (e.g. a partial signature).
pub async fn with_secret<D, R, F>(device: &D, key: &KeyId, f: F) -> Result<R>
where
    D: CryptoDevice + ?Sized,
    R: Send,
    F: FnOnce(&[u8]) -> Result<R> + Send,
{
    let mut out: Option<R> = None;
    let slot = &mut out;
    device
        .use_secret(
            key,
            Box::new(move |s: &[u8]| {
                *slot = Some(f(s)?);
                Ok(Vec::new())
            }),
        )
        .await?;
    out.ok_or(Error::Internal("secret callback did not run"))
}

impl KeyInfo {
    /// The description of a stored key record (both devices keep the same record format).
    pub(crate) fn from_record(r: &KeyRecord) -> Result<Self> {
        Ok(Self {
            id: KeyId(r.id.clone()),
            label: r.label.clone(),
            kind: KeyKind::parse(&r.kind)?,
            state: KeyState::parse(&r.state)?,
            wrapped_by: r.wrapped_by.clone(),
            public_key: r.public_key.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// The public key of an SM2 signing key record: readable while active or suspended, not once
/// destroyed, and only for signing keys.
pub(crate) fn signing_public_key(r: &KeyRecord, key: &KeyId) -> Result<Sm2PublicKey> {
    let info = KeyInfo::from_record(r)?;
    if info.state == KeyState::Destroyed {
        return Err(Error::KeyDestroyed(key.0.clone()));
    }
    if info.kind != KeyKind::Sm2Sign {
        return Err(Error::WrongKeyKind {
            id: key.0.clone(),
            expected: "sm2_sign",
            actual: info.kind.as_str(),
        });
    }
    Sm2PublicKey::from_sec1(&r.public_key)
}

/// The audit action of a suspend/resume, `None` when the key is already in that state. A
/// destroyed key changes no more, and destruction goes through `destroy` (both devices agree).
pub(crate) fn state_change(
    key: &KeyId,
    from: KeyState,
    to: KeyState,
) -> Result<Option<&'static str>> {
    match (from, to) {
        (KeyState::Destroyed, _) => Err(Error::KeyDestroyed(key.0.clone())),
        (_, KeyState::Destroyed) => {
            Err(Error::InvalidInput("use destroy() to destroy a key".into()))
        }
        (KeyState::Active, KeyState::Suspended) => Ok(Some("key.suspend")),
        (KeyState::Suspended, KeyState::Active) => Ok(Some("key.resume")),
        _ => Ok(None),
    }
}
