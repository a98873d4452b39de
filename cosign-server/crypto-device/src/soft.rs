//! The software crypto device (the default).
//!
//! Key hierarchy:
//! ```text
//! operator passphrase / key file ──PBKDF2-HMAC-SM3 / HMAC-SM3──► sealing key
//!   └─ master key MK (32 B, sealed on disk with SM4-GCM, see crate::sealed)
//!        ├─ MK-wrap  = HMAC-SM3(MK, "yiqian/kek-wrap/v1")[..16]   wraps KEKs (SM4-GCM)
//!        ├─ MK-mac   = HMAC-SM3(MK, "yiqian/record-mac/v1")        authenticates every record
//!        └─ KEK (SM4-128, records kind=kek, ids kek-000001, kek-000002, ...)
//!             └─ data keys: SM2 private keys, SM4 keys, secrets (d2), wrapped with SM4-GCM
//! ```
//! A record's material is `nonce(12) ‖ SM4-GCM(wrapping key, nonce, aad, key)` with
//! `aad = "yiqian-key-v1|id|kind|wrapped_by"`, so a blob moved to another record fails.
//!
//! KEK rotation re-wraps data keys (the data they encrypt is untouched) one record per
//! write. Every record names the KEK that wraps it and an old KEK is destroyed only after
//! no record refers to it, so a crash after any write leaves every key usable; running the
//! rotation again completes it.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::audit::{AuditEvent, AuditSink};
use crate::device::{
    CryptoDevice, DeviceInfo, KeyId, KeyInfo, KeyKind, KeyState, SecretFn, SigningHandle, SymMode,
};
use crate::error::{Error, Result};
use crate::prims::{self, Sm2PublicKey, Sm2Secret, Sm2Signature};
use crate::sealed::{self, MasterKey, SealedInfo, Unlock};
use crate::shamir;
use crate::store::{KeyRecord, KeyStore};

/// Returns the current time in Unix seconds (injected so tests are deterministic).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    })
}

/// Largest secret accepted by [`CryptoDevice::import_secret`].
pub const MAX_SECRET_LEN: usize = 4096;
const WRAPPED_BY_MASTER: &str = "master";
const TRANSPORT_LABEL: &str = "yiqian/transport-wrapping-key";
const EXPORT_MAGIC: &[u8; 5] = b"YQWK1";

/// How to open (or create) a software device.
#[derive(Clone)]
pub struct SoftDeviceConfig {
    /// Path of the sealed master key file (in the data directory, e.g. `data/master-key.sealed`).
    pub master_key_path: PathBuf,
    /// Passphrase or key file.
    pub unlock: Unlock,
    /// PBKDF2-HMAC-SM3 iterations used when (re)sealing with a passphrase.
    pub iterations: u32,
    /// Key record store.
    pub store: Arc<dyn KeyStore>,
    /// Audit sink.
    pub audit: Arc<dyn AuditSink>,
    /// Clock.
    pub clock: Clock,
}

impl std::fmt::Debug for SoftDeviceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftDeviceConfig")
            .field("master_key_path", &self.master_key_path)
            .field("unlock", &self.unlock)
            .field("iterations", &self.iterations)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// File name of the sealed master key inside the data directory.
pub const MASTER_KEY_FILE: &str = "master-key.sealed";

impl SoftDeviceConfig {
    /// The usual layout: `<data_dir>/master-key.sealed`, system clock, default iterations.
    pub fn in_data_dir(
        data_dir: &std::path::Path,
        unlock: Unlock,
        store: Arc<dyn KeyStore>,
        audit: Arc<dyn AuditSink>,
    ) -> Self {
        Self::new(data_dir.join(MASTER_KEY_FILE), unlock, store, audit)
    }

    /// A config with the system clock and the default iteration count.
    pub fn new(
        master_key_path: impl Into<PathBuf>,
        unlock: Unlock,
        store: Arc<dyn KeyStore>,
        audit: Arc<dyn AuditSink>,
    ) -> Self {
        Self {
            master_key_path: master_key_path.into(),
            unlock,
            iterations: sealed::DEFAULT_ITERATIONS,
            store,
            audit,
            clock: system_clock(),
        }
    }
}

/// The software device. Cheap to share behind an `Arc`.
pub struct SoftDevice {
    cfg: SoftDeviceConfig,
    mk: MasterKey,
    mk_wrap: Zeroizing<[u8; 16]>,
    mk_mac: Zeroizing<[u8; 32]>,
    /// Creation/destruction take it shared, KEK rotation exclusively.
    lock: tokio::sync::RwLock<()>,
    /// Id of the KEK new keys are wrapped with (avoids listing every record per new key).
    current: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for SoftDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftDevice")
            .field("master_key_path", &self.cfg.master_key_path)
            .finish_non_exhaustive()
    }
}

/// Result of a KEK rotation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RotationReport {
    /// The new active KEK.
    pub new_kek: String,
    /// Data keys re-wrapped under it.
    pub rewrapped: usize,
    /// Old KEKs destroyed.
    pub destroyed_keks: Vec<String>,
}

/// One KEK in [`DeviceStatus`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KekStatus {
    /// KEK id.
    pub id: String,
    /// State.
    pub state: KeyState,
    /// Data keys it wraps.
    pub wraps: usize,
    /// Whether new keys are wrapped with it.
    pub current: bool,
}

/// `keys status` output.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeviceStatus {
    /// The sealed master key file.
    pub master_key: SealedInfo,
    /// KEKs.
    pub keks: Vec<KekStatus>,
    /// Counts per (kind, state), e.g. ("sm2_sign", "active", 12).
    pub counts: Vec<(String, String, usize)>,
    /// True when more than one non-destroyed KEK exists (an interrupted rotation: run
    /// `rotate-kek` again).
    pub rotation_incomplete: bool,
}

/// `keys backup` output: the shares to hand to the custodians (each printed / stored
/// separately; never all in one place).
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupReport {
    /// Backup set id (printed on every share).
    pub set_id: String,
    /// Threshold M.
    pub threshold: u8,
    /// (custodian, encoded share).
    pub shares: Vec<(String, String)>,
}

impl std::fmt::Debug for BackupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupReport")
            .field("set_id", &self.set_id)
            .field("threshold", &self.threshold)
            .field(
                "custodians",
                &self
                    .shares
                    .iter()
                    .map(|(c, _)| c.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// `keys restore` output.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RestoreReport {
    /// Backup set id the shares came from.
    pub set_id: String,
    /// Custodians whose shares were used.
    pub custodians: Vec<String>,
    /// The sealed master key file written.
    pub master_key_path: String,
    /// KEK records checked against the restored master key.
    pub keks_verified: usize,
}

fn wrap_aad(id: &str, kind: &str, wrapped_by: &str) -> Vec<u8> {
    format!("yiqian-key-v1|{id}|{kind}|{wrapped_by}").into_bytes()
}

/// A data key record's material unwrapped under its KEK's key.
fn unwrap_with(kek: &[u8], r: &KeyRecord) -> Result<Zeroizing<Vec<u8>>> {
    gcm_unwrap(kek, &wrap_aad(&r.id, &r.kind, &r.wrapped_by), &r.material)
}

fn gcm_wrap(key: &[u8], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
    let nonce = prims::random_vec(prims::GCM_NONCE_LEN)?;
    let mut out = nonce.clone();
    out.extend(prims::sm4_gcm_encrypt(key, &nonce, aad, plain)?);
    Ok(out)
}

fn gcm_unwrap(key: &[u8], aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if blob.len() < prims::GCM_NONCE_LEN + prims::GCM_TAG_LEN {
        return Err(Error::Integrity("wrapped key too short"));
    }
    let (nonce, ct) = blob.split_at(prims::GCM_NONCE_LEN);
    prims::sm4_gcm_decrypt(key, nonce, aad, ct)
        .map_err(|_| Error::Integrity("wrapped key failed authentication"))
}

fn new_id(prefix: &str) -> Result<String> {
    Ok(format!("{prefix}-{}", hex::encode(prims::random_vec(8)?)))
}

fn kind_name(k: KeyKind) -> &'static str {
    k.as_str()
}

/// Check state and kind before use.
pub(crate) fn check_usable(info: &KeyInfo, expected: KeyKind) -> Result<()> {
    match info.state {
        KeyState::Destroyed => return Err(Error::KeyDestroyed(info.id.0.clone())),
        KeyState::Suspended => return Err(Error::KeySuspended(info.id.0.clone())),
        KeyState::Active => {}
    }
    if info.kind != expected {
        return Err(Error::WrongKeyKind {
            id: info.id.0.clone(),
            expected: kind_name(expected),
            actual: kind_name(info.kind),
        });
    }
    Ok(())
}

impl SoftDevice {
    fn derive(mk: MasterKey, cfg: SoftDeviceConfig) -> Self {
        let w = prims::hmac_sm3(mk.bytes(), &[b"yiqian/kek-wrap/v1"]);
        let mut mk_wrap = Zeroizing::new([0u8; 16]);
        mk_wrap.copy_from_slice(&w[..16]);
        let mk_mac = Zeroizing::new(prims::hmac_sm3(mk.bytes(), &[b"yiqian/record-mac/v1"]));
        Self {
            cfg,
            mk,
            mk_wrap,
            mk_mac,
            lock: tokio::sync::RwLock::new(()),
            current: std::sync::Mutex::new(None),
        }
    }

    fn now(&self) -> i64 {
        (self.cfg.clock)()
    }

    async fn audit(
        &self,
        action: &'static str,
        key_id: Option<&str>,
        detail: impl Into<String>,
        success: bool,
    ) -> Result<()> {
        self.cfg
            .audit
            .record(AuditEvent {
                at: self.now(),
                action,
                key_id: key_id.map(str::to_owned),
                detail: detail.into(),
                success,
            })
            .await
    }

    /// Create a new device: a fresh master key sealed at `cfg.master_key_path` and the
    /// first KEK. Refuses when the file exists or the store already holds KEKs (restore
    /// the master key from backup shares in that case).
    pub async fn init(cfg: SoftDeviceConfig) -> Result<Self> {
        if cfg.master_key_path.exists() {
            return Err(Error::AlreadyInitialised(
                cfg.master_key_path.display().to_string(),
            ));
        }
        if cfg
            .store
            .list()
            .await?
            .iter()
            .any(|r| r.kind == KeyKind::Kek.as_str())
        {
            return Err(Error::AlreadyInitialised(
                "the key store already holds KEKs: restore the master key from its backup shares instead".into(),
            ));
        }
        let mk = MasterKey::generate()?;
        sealed::create(&cfg.master_key_path, &cfg.unlock, cfg.iterations, &mk)?;
        let dev = Self::derive(mk, cfg);
        let kek = dev.create_kek(1).await?;
        dev.audit(
            "master.init",
            Some(&kek),
            dev.cfg.master_key_path.display().to_string(),
            true,
        )
        .await?;
        Ok(dev)
    }

    /// Open an initialised device: unseal the master key and check every KEK record
    /// against it. A wrong passphrase is [`Error::WrongPassphrase`] (audited, nothing written).
    pub async fn open(cfg: SoftDeviceConfig) -> Result<Self> {
        let mk = match sealed::open(&cfg.master_key_path, &cfg.unlock) {
            Ok(mk) => mk,
            Err(Error::WrongPassphrase) => {
                let now = (cfg.clock)();
                cfg.audit
                    .record(AuditEvent {
                        at: now,
                        action: "master.unlock_failed",
                        key_id: None,
                        detail: cfg.master_key_path.display().to_string(),
                        success: false,
                    })
                    .await?;
                return Err(Error::WrongPassphrase);
            }
            Err(e) => return Err(e),
        };
        let dev = Self::derive(mk, cfg);
        let mut n = 0;
        for r in dev.cfg.store.list().await? {
            if r.kind == KeyKind::Kek.as_str() {
                dev.verify_mac(&r)?;
                n += 1;
            }
        }
        if n == 0 {
            return Err(Error::Integrity(
                "the key store holds no KEK for this master key",
            ));
        }
        Ok(dev)
    }

    /// [`SoftDevice::open`] if the sealed file exists, else [`SoftDevice::init`].
    pub async fn open_or_init(cfg: SoftDeviceConfig) -> Result<Self> {
        if cfg.master_key_path.exists() {
            Self::open(cfg).await
        } else {
            Self::init(cfg).await
        }
    }

    fn mac(&self, r: &KeyRecord) -> Vec<u8> {
        prims::hmac_sm3(&self.mk_mac[..], &[b"yiqian-record-v1", &r.mac_input()]).to_vec()
    }

    fn verify_mac(&self, r: &KeyRecord) -> Result<()> {
        if prims::ct_eq(&self.mac(r), &r.mac) {
            Ok(())
        } else {
            Err(Error::Integrity("key record MAC mismatch"))
        }
    }

    async fn write(&self, mut r: KeyRecord) -> Result<KeyRecord> {
        r.mac = self.mac(&r);
        self.cfg.store.put(&r).await?;
        Ok(r)
    }

    async fn load(&self, id: &str) -> Result<KeyRecord> {
        let r = self.cfg.store.get(id).await?;
        self.checked(id, r)
    }

    /// What the store answered for `id`: present, that record, and its MAC intact.
    fn checked(&self, id: &str, r: Option<KeyRecord>) -> Result<KeyRecord> {
        let r = r.ok_or_else(|| Error::KeyNotFound(id.to_owned()))?;
        if r.id != id {
            return Err(Error::Integrity("key store returned another record"));
        }
        self.verify_mac(&r)?;
        Ok(r)
    }

    async fn create_kek(&self, generation: u32) -> Result<String> {
        let id = format!("kek-{generation:06}");
        let mut kek = Zeroizing::new([0u8; 16]);
        prims::fill_random(&mut kek[..])?;
        let now = self.now();
        let material = gcm_wrap(
            &self.mk_wrap[..],
            &wrap_aad(&id, KeyKind::Kek.as_str(), WRAPPED_BY_MASTER),
            &kek[..],
        )?;
        self.write(KeyRecord {
            id: id.clone(),
            label: format!("KEK generation {generation}"),
            kind: KeyKind::Kek.as_str().into(),
            state: KeyState::Active.as_str().into(),
            wrapped_by: WRAPPED_BY_MASTER.into(),
            material,
            public_key: Vec::new(),
            created_at: now,
            updated_at: now,
            revision: 1,
            mac: Vec::new(),
        })
        .await?;
        Ok(id)
    }

    async fn kek_bytes(&self, id: &str) -> Result<Zeroizing<Vec<u8>>> {
        let r = self.load(id).await?;
        self.kek_of(&r)
    }

    /// A KEK record's key (the record already loaded and its MAC checked).
    fn kek_of(&self, r: &KeyRecord) -> Result<Zeroizing<Vec<u8>>> {
        if r.kind != KeyKind::Kek.as_str() || r.wrapped_by != WRAPPED_BY_MASTER {
            return Err(Error::Integrity(
                "a data key names a non-KEK as its wrapping key",
            ));
        }
        if r.state == KeyState::Destroyed.as_str() {
            return Err(Error::KeyDestroyed(r.id.clone()));
        }
        gcm_unwrap(
            &self.mk_wrap[..],
            &wrap_aad(&r.id, &r.kind, &r.wrapped_by),
            &r.material,
        )
    }

    /// Non-destroyed KEKs, newest (current) last.
    async fn live_keks(&self) -> Result<Vec<KeyRecord>> {
        let mut v = Vec::new();
        for r in self.cfg.store.list().await? {
            if r.kind == KeyKind::Kek.as_str() && r.state != KeyState::Destroyed.as_str() {
                self.verify_mac(&r)?;
                v.push(r);
            }
        }
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }

    fn set_current(&self, id: Option<String>) {
        if let Ok(mut g) = self.current.lock() {
            *g = id;
        }
    }

    async fn current_kek(&self) -> Result<(String, Zeroizing<Vec<u8>>)> {
        let cached = self.current.lock().ok().and_then(|g| g.clone());
        if let Some(id) = cached {
            // Another instance may have rotated meanwhile: then fall back to a fresh listing.
            if let Ok(bytes) = self.kek_bytes(&id).await {
                return Ok((id, bytes));
            }
        }
        let keks = self.live_keks().await?;
        let cur = keks
            .last()
            .ok_or(Error::Integrity("no live KEK in the key store"))?;
        let bytes = self.kek_bytes(&cur.id).await?;
        self.set_current(Some(cur.id.clone()));
        Ok((cur.id.clone(), bytes))
    }

    /// Unwrap a data key record's material (retrying once if a concurrent rotation
    /// re-wrapped it meanwhile).
    async fn unwrap_record(&self, r: &KeyRecord) -> Result<Zeroizing<Vec<u8>>> {
        match self.unwrap_once(r).await {
            Err(Error::KeyDestroyed(_) | Error::KeyNotFound(_))
                if r.kind != KeyKind::Kek.as_str() =>
            {
                let fresh = self.load(&r.id).await?;
                self.unwrap_once(&fresh).await
            }
            other => other,
        }
    }

    async fn unwrap_once(&self, r: &KeyRecord) -> Result<Zeroizing<Vec<u8>>> {
        let kek = self.kek_bytes(&r.wrapped_by).await?;
        unwrap_with(&kek, r)
    }

    /// A usable data key of `kind` and its plaintext: [`Self::usable`] and
    /// [`Self::unwrap_record`], with the record and its KEK read in one store call.
    async fn open_usable(
        &self,
        key: &KeyId,
        kind: KeyKind,
    ) -> Result<(KeyRecord, Zeroizing<Vec<u8>>)> {
        let (r, kek) = self.cfg.store.get_with_wrapper(key.as_str()).await?;
        let r = self.checked(key.as_str(), r)?;
        check_usable(&KeyInfo::from_record(&r)?, kind)?;
        let kek = kek
            .map(|k| self.checked(&r.wrapped_by, Some(k)))
            .transpose()?;
        let plain = match kek.as_ref().map(|k| self.kek_of(k)) {
            Some(Ok(kek)) => unwrap_with(&kek, &r)?,
            // No live KEK under that name: a rotation may have re-wrapped the record meanwhile.
            None | Some(Err(Error::KeyDestroyed(_))) => self.unwrap_record(&r).await?,
            Some(Err(e)) => return Err(e),
        };
        Ok((r, plain))
    }

    async fn usable(&self, key: &KeyId, kind: KeyKind) -> Result<KeyRecord> {
        let r = self.load(key.as_str()).await?;
        check_usable(&KeyInfo::from_record(&r)?, kind)?;
        Ok(r)
    }

    async fn create_data_key(
        &self,
        kind: KeyKind,
        label: &str,
        plain: &[u8],
        public: Vec<u8>,
        action: &'static str,
    ) -> Result<KeyId> {
        if label.len() > 256 {
            return Err(Error::InvalidInput("label longer than 256 bytes".into()));
        }
        let _g = self.lock.read().await;
        let (kek_id, kek) = self.current_kek().await?;
        let id = new_id("k")?;
        let material = gcm_wrap(&kek, &wrap_aad(&id, kind.as_str(), &kek_id), plain)?;
        let now = self.now();
        self.write(KeyRecord {
            id: id.clone(),
            label: label.to_owned(),
            kind: kind.as_str().into(),
            state: KeyState::Active.as_str().into(),
            wrapped_by: kek_id,
            material,
            public_key: public,
            created_at: now,
            updated_at: now,
            revision: 1,
            mac: Vec::new(),
        })
        .await?;
        self.audit(
            action,
            Some(&id),
            format!("{}: {label}", kind.as_str()),
            true,
        )
        .await?;
        Ok(KeyId(id))
    }

    async fn sm4_key(&self, key: &KeyId) -> Result<Zeroizing<Vec<u8>>> {
        let (_, k) = self.open_usable(key, KeyKind::Sm4).await?;
        if k.len() != prims::SM4_KEY_LEN {
            return Err(Error::Integrity("stored SM4 key has the wrong length"));
        }
        Ok(k)
    }

    // ---- `cosign-server keys` library functions -------------------------------------

    /// `keys list`: every key's public description (audited).
    pub async fn keys_list(&self) -> Result<Vec<KeyInfo>> {
        let v = self.list_keys().await?;
        self.audit("keys.list", None, format!("{} keys", v.len()), true)
            .await?;
        Ok(v)
    }

    /// `keys status`: master key file, KEKs and key counts (audited).
    pub async fn keys_status(&self) -> Result<DeviceStatus> {
        let records = self.cfg.store.list().await?;
        let mut keks = Vec::new();
        let mut counts: std::collections::BTreeMap<(String, String), usize> =
            std::collections::BTreeMap::new();
        for r in &records {
            self.verify_mac(r)?;
            *counts.entry((r.kind.clone(), r.state.clone())).or_default() += 1;
        }
        let live = self.live_keks().await?;
        let current = live.last().map(|r| r.id.clone());
        for r in records.iter().filter(|r| r.kind == KeyKind::Kek.as_str()) {
            let wraps = records
                .iter()
                .filter(|d| d.wrapped_by == r.id && d.state != KeyState::Destroyed.as_str())
                .count();
            keks.push(KekStatus {
                id: r.id.clone(),
                state: KeyState::parse(&r.state)?,
                wraps,
                current: current.as_deref() == Some(r.id.as_str()),
            });
        }
        let status = DeviceStatus {
            master_key: sealed::info(&self.cfg.master_key_path)?,
            keks,
            counts: counts.into_iter().map(|((k, s), n)| (k, s, n)).collect(),
            rotation_incomplete: live.len() > 1,
        };
        self.audit(
            "keys.status",
            None,
            format!("{} records", records.len()),
            true,
        )
        .await?;
        Ok(status)
    }

    /// `keys rotate-kek`: create a new KEK, re-wrap every data key under it (data
    /// encrypted with those keys is untouched), then destroy the old KEKs. Safe to
    /// interrupt at any point; run again to finish.
    pub async fn rotate_kek(&self) -> Result<RotationReport> {
        let _g = self.lock.write().await;
        self.set_current(None);
        let res = self.rotate_inner().await;
        self.set_current(None);
        match &res {
            Ok(r) => {
                self.audit(
                    "kek.rotate",
                    Some(&r.new_kek),
                    format!(
                        "rewrapped {} keys, destroyed {:?}",
                        r.rewrapped, r.destroyed_keks
                    ),
                    true,
                )
                .await?;
            }
            Err(e) => {
                // Best effort: the store may be what failed.
                let _ = self
                    .audit("kek.rotate", None, format!("failed: {e}"), false)
                    .await;
            }
        }
        res
    }

    async fn rotate_inner(&self) -> Result<RotationReport> {
        let all = self.cfg.store.list().await?;
        let mut max_gen = 0u32;
        for r in all.iter().filter(|r| r.kind == KeyKind::Kek.as_str()) {
            let g =
                r.id.strip_prefix("kek-")
                    .and_then(|s| s.parse::<u32>().ok())
                    .unwrap_or(0);
            max_gen = max_gen.max(g);
        }
        let gen_next = max_gen
            .checked_add(1)
            .ok_or(Error::Internal("KEK generation overflow"))?;
        // Step 1: the new KEK (one write).
        let new_id = self.create_kek(gen_next).await?;
        let new_kek = self.kek_bytes(&new_id).await?;
        // Step 2: re-wrap every live data key, one record per write.
        let mut rewrapped = 0;
        for r in self.cfg.store.list().await? {
            if r.kind == KeyKind::Kek.as_str()
                || r.state == KeyState::Destroyed.as_str()
                || r.wrapped_by == new_id
            {
                continue;
            }
            self.verify_mac(&r)?;
            let plain = self.unwrap_once(&r).await?;
            let material = gcm_wrap(&new_kek, &wrap_aad(&r.id, &r.kind, &new_id), &plain)?;
            let mut n = r.clone();
            n.wrapped_by.clone_from(&new_id);
            n.material = material;
            n.updated_at = self.now();
            n.revision = r.revision.saturating_add(1);
            self.write(n).await?;
            rewrapped += 1;
        }
        // Step 3: destroy the old KEKs that nothing refers to any more.
        let records = self.cfg.store.list().await?;
        let mut destroyed = Vec::new();
        for k in records.iter().filter(|r| {
            r.kind == KeyKind::Kek.as_str()
                && r.id != new_id
                && r.state != KeyState::Destroyed.as_str()
        }) {
            let still_used = records
                .iter()
                .any(|d| d.wrapped_by == k.id && d.state != KeyState::Destroyed.as_str());
            if still_used {
                return Err(Error::Internal(
                    "a data key still refers to an old KEK after re-wrapping",
                ));
            }
            let mut n = k.clone();
            n.state = KeyState::Destroyed.as_str().into();
            n.material = Vec::new();
            n.updated_at = self.now();
            n.revision = k.revision.saturating_add(1);
            self.write(n).await?;
            destroyed.push(k.id.clone());
        }
        Ok(RotationReport {
            new_kek: new_id,
            rewrapped,
            destroyed_keks: destroyed,
        })
    }

    /// `keys backup`: split the master key into `custodians.len()` shares, any `threshold`
    /// of which restore it (audited; the shares are returned, never logged).
    pub async fn backup_master_key(
        &self,
        threshold: u8,
        custodians: &[String],
    ) -> Result<BackupReport> {
        let set = shamir::split(self.mk.bytes(), threshold, custodians)?;
        self.audit(
            "master.backup",
            None,
            format!(
                "set {} threshold {threshold} custodians {}",
                set.set_id,
                custodians.join(",")
            ),
            true,
        )
        .await?;
        Ok(BackupReport {
            set_id: set.set_id.clone(),
            threshold,
            shares: set
                .shares
                .iter()
                .map(|s| (s.custodian.clone(), s.encode()))
                .collect(),
        })
    }

    /// Re-seal the master key under a new passphrase or key file (atomic replace).
    pub async fn change_unlock(&mut self, unlock: Unlock, iterations: u32) -> Result<()> {
        sealed::reseal(&self.cfg.master_key_path, &unlock, iterations, &self.mk)?;
        self.cfg.unlock = unlock;
        self.cfg.iterations = iterations;
        self.audit(
            "master.change_unlock",
            None,
            self.cfg.master_key_path.display().to_string(),
            true,
        )
        .await
    }
}

/// `keys restore`: rebuild the master key from at least M custodian shares, check it
/// against the KEK records in `store`, and write a new sealed master key file at `path`
/// under `unlock`. Refuses to overwrite an existing file (move it away first, after
/// checking it is really unusable).
pub async fn restore_master_key(
    shares: &[String],
    path: &std::path::Path,
    unlock: &Unlock,
    iterations: u32,
    store: &dyn KeyStore,
    audit: &dyn AuditSink,
    now: i64,
) -> Result<RestoreReport> {
    let res = async {
        let parsed = shares
            .iter()
            .map(|s| shamir::Share::decode(s))
            .collect::<Result<Vec<_>>>()?;
        let secret = shamir::combine(&parsed)?;
        let mk = MasterKey::from_bytes(&secret)?;
        let probe = SoftDevice::derive(
            mk,
            SoftDeviceConfig {
                master_key_path: path.to_path_buf(),
                unlock: unlock.clone(),
                iterations,
                store: Arc::new(crate::store::MemoryKeyStore::new()),
                audit: Arc::new(crate::audit::MemoryAuditSink::default()),
                clock: Arc::new(move || now),
            },
        );
        let mut n = 0;
        for r in store.list().await? {
            if r.kind == KeyKind::Kek.as_str() {
                probe.verify_mac(&r).map_err(|_| {
                    Error::Restore("the restored master key does not match the key store".into())
                })?;
                n += 1;
            }
        }
        sealed::create(path, unlock, iterations, &probe.mk)?;
        let first = parsed
            .first()
            .ok_or_else(|| Error::Restore("no shares".into()))?;
        Ok(RestoreReport {
            set_id: first.set_id.clone(),
            custodians: parsed.iter().map(|s| s.custodian.clone()).collect(),
            master_key_path: path.display().to_string(),
            keks_verified: n,
        })
    }
    .await;
    let (detail, ok) = match &res {
        Ok(r) => (
            format!("set {} from {}", r.set_id, r.custodians.join(",")),
            true,
        ),
        Err(e) => (format!("failed: {e}"), false),
    };
    audit
        .record(AuditEvent {
            at: now,
            action: "master.restore",
            key_id: None,
            detail,
            success: ok,
        })
        .await?;
    res
}

/// An SM2 key the software device opened for repeated signing: the private scalar as an
/// `sm2::SecretKey`, which zeroizes itself when dropped.
struct OpenSm2Key {
    key: KeyId,
    secret: sm2::SecretKey,
}

impl std::fmt::Debug for OpenSm2Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenSm2Key")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl SigningHandle for OpenSm2Key {
    fn key(&self) -> &KeyId {
        &self.key
    }

    fn sign_digest(&self, e: &[u8; 32]) -> Result<Sm2Signature> {
        let sig = sm2_cosign::plain::sign_digest(
            &mut getrandom::SysRng,
            &self.secret,
            &sm2_cosign::plain::Digest::from_bytes(*e),
        )
        .map_err(|_| Error::Internal("SM2 signing failed"))?;
        Ok(Sm2Signature {
            r: sig.r_bytes().into(),
            s: sig.s_bytes().into(),
        })
    }
}

#[async_trait]
impl CryptoDevice for SoftDevice {
    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            kind: "soft",
            description: format!(
                "software device, master key {}",
                self.cfg.master_key_path.display()
            ),
        }
    }

    async fn random(&self, len: usize) -> Result<Vec<u8>> {
        if len > 1 << 20 {
            return Err(Error::InvalidInput(
                "at most 1 MiB of random per call".into(),
            ));
        }
        prims::random_vec(len)
    }

    async fn generate_sm2(&self, label: &str) -> Result<(KeyId, Sm2PublicKey)> {
        let (sk, d) = Sm2Secret::generate()?;
        let public = sk.public();
        let id = self
            .create_data_key(
                KeyKind::Sm2Sign,
                label,
                &d,
                public.to_sec1_uncompressed(),
                "key.generate",
            )
            .await?;
        Ok((id, public))
    }

    async fn public_key(&self, key: &KeyId) -> Result<Sm2PublicKey> {
        let r = self.load(key.as_str()).await?;
        crate::device::signing_public_key(&r, key)
    }

    async fn sign_digest(&self, key: &KeyId, e: &[u8; 32]) -> Result<Sm2Signature> {
        let (r, d) = self.open_usable(key, KeyKind::Sm2Sign).await?;
        let sk = Sm2Secret::from_bytes(&d)?;
        if sk.public().to_sec1_uncompressed() != r.public_key {
            return Err(Error::Integrity(
                "stored SM2 key does not match its public key",
            ));
        }
        sk.sign_digest(e)
    }

    async fn open_signing_key(&self, key: &KeyId) -> Result<Option<Box<dyn SigningHandle>>> {
        let (r, d) = self.open_usable(key, KeyKind::Sm2Sign).await?;
        if Sm2Secret::from_bytes(&d)?.public().to_sec1_uncompressed() != r.public_key {
            return Err(Error::Integrity(
                "stored SM2 key does not match its public key",
            ));
        }
        let secret = sm2::SecretKey::from_slice(&d)
            .map_err(|_| Error::Integrity("stored SM2 private key is invalid"))?;
        self.audit("key.open", Some(key.as_str()), r.label.clone(), true)
            .await?;
        Ok(Some(Box::new(OpenSm2Key {
            key: key.clone(),
            secret,
        })))
    }

    async fn sm3(&self, data: &[u8]) -> Result<[u8; 32]> {
        Ok(prims::sm3(data))
    }

    async fn sm3_with_z(&self, public: &Sm2PublicKey, id: &[u8], msg: &[u8]) -> Result<[u8; 32]> {
        prims::sm2_digest(public, id, msg)
    }

    async fn generate_sm4(&self, label: &str) -> Result<KeyId> {
        let k = Zeroizing::new(prims::random_vec(prims::SM4_KEY_LEN)?);
        self.create_data_key(KeyKind::Sm4, label, &k, Vec::new(), "key.generate")
            .await
    }

    async fn encrypt(
        &self,
        key: &KeyId,
        mode: SymMode,
        iv: &[u8],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>> {
        let k = self.sm4_key(key).await?;
        match mode {
            SymMode::Ecb if iv.is_empty() => prims::sm4_ecb_encrypt(&k, data),
            SymMode::Ecb => Err(Error::InvalidInput("ECB takes no IV".into())),
            SymMode::Cbc => prims::sm4_cbc_encrypt(&k, iv, data),
            SymMode::Gcm => prims::sm4_gcm_encrypt(&k, iv, aad, data),
        }
    }

    async fn decrypt(
        &self,
        key: &KeyId,
        mode: SymMode,
        iv: &[u8],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let k = self.sm4_key(key).await?;
        match mode {
            SymMode::Ecb if iv.is_empty() => prims::sm4_ecb_decrypt(&k, data).map(Zeroizing::new),
            SymMode::Ecb => Err(Error::InvalidInput("ECB takes no IV".into())),
            SymMode::Cbc => prims::sm4_cbc_decrypt(&k, iv, data).map(Zeroizing::new),
            SymMode::Gcm => prims::sm4_gcm_decrypt(&k, iv, aad, data),
        }
    }

    async fn default_wrapping_key(&self) -> Result<KeyId> {
        for r in self.cfg.store.list().await? {
            if r.label == TRANSPORT_LABEL
                && r.kind == KeyKind::Sm4.as_str()
                && r.state == KeyState::Active.as_str()
            {
                self.verify_mac(&r)?;
                return Ok(KeyId(r.id));
            }
        }
        self.generate_sm4(TRANSPORT_LABEL).await
    }

    async fn export_wrapped(&self, key: &KeyId, wrapping: &KeyId) -> Result<Vec<u8>> {
        let r = self.load(key.as_str()).await?;
        let info = KeyInfo::from_record(&r)?;
        if info.kind == KeyKind::Kek {
            return Err(Error::NotSupported(
                "KEKs are never exported; back up the master key instead",
            ));
        }
        check_usable(&info, info.kind)?;
        let wk = self.sm4_key(wrapping).await?;
        let plain = self.unwrap_record(&r).await?;
        let kind = info.kind.as_str().as_bytes();
        let pub_len = u16::try_from(r.public_key.len())
            .map_err(|_| Error::Internal("public key too long"))?;
        let mut header = EXPORT_MAGIC.to_vec();
        header.push(u8::try_from(kind.len()).map_err(|_| Error::Internal("kind too long"))?);
        header.extend_from_slice(kind);
        header.extend_from_slice(&pub_len.to_be_bytes());
        header.extend_from_slice(&r.public_key);
        let wrapped = gcm_wrap(&wk, &header, &plain)?;
        let mut blob = header;
        blob.extend(wrapped);
        self.audit(
            "key.export",
            Some(key.as_str()),
            format!("wrapped under {wrapping}"),
            true,
        )
        .await?;
        Ok(blob)
    }

    async fn import_wrapped(&self, wrapping: &KeyId, label: &str, blob: &[u8]) -> Result<KeyId> {
        let bad = || Error::Integrity("malformed wrapped key blob");
        let rest = blob.strip_prefix(EXPORT_MAGIC.as_slice()).ok_or_else(bad)?;
        let (&klen, rest) = rest.split_first().ok_or_else(bad)?;
        let (kind, rest) = rest.split_at_checked(usize::from(klen)).ok_or_else(bad)?;
        let (plen, rest) = rest.split_at_checked(2).ok_or_else(bad)?;
        let plen = u16::from_be_bytes([
            plen.first().copied().unwrap_or(0),
            plen.get(1).copied().unwrap_or(0),
        ]);
        let (public, wrapped) = rest.split_at_checked(usize::from(plen)).ok_or_else(bad)?;
        let header_len = blob.len() - wrapped.len();
        let header = blob.get(..header_len).ok_or_else(bad)?;
        let kind = KeyKind::parse(std::str::from_utf8(kind).map_err(|_| bad())?)?;
        let wk = self.sm4_key(wrapping).await?;
        let plain = gcm_unwrap(&wk, header, wrapped)?;
        match kind {
            KeyKind::Sm2Sign => {
                let sk = Sm2Secret::from_bytes(&plain)?;
                if sk.public().to_sec1_uncompressed() != public {
                    return Err(Error::Integrity(
                        "wrapped SM2 key does not match its public key",
                    ));
                }
            }
            KeyKind::Sm4 if plain.len() != prims::SM4_KEY_LEN => return Err(bad()),
            KeyKind::Kek => return Err(Error::NotSupported("KEKs are never imported")),
            _ => {}
        }
        self.create_data_key(kind, label, &plain, public.to_vec(), "key.import")
            .await
    }

    async fn import_secret(&self, label: &str, secret: Zeroizing<Vec<u8>>) -> Result<KeyId> {
        if secret.is_empty() || secret.len() > MAX_SECRET_LEN {
            return Err(Error::InvalidInput(format!(
                "secret must be 1..={MAX_SECRET_LEN} bytes"
            )));
        }
        self.create_data_key(KeyKind::Secret, label, &secret, Vec::new(), "secret.import")
            .await
    }

    async fn use_secret(&self, key: &KeyId, f: SecretFn<'_>) -> Result<Vec<u8>> {
        let (_, s) = self.open_usable(key, KeyKind::Secret).await?;
        f(&s)
    }

    async fn replace_secret(&self, key: &KeyId, secret: Zeroizing<Vec<u8>>) -> Result<()> {
        if secret.is_empty() || secret.len() > MAX_SECRET_LEN {
            return Err(Error::InvalidInput(format!(
                "secret must be 1..={MAX_SECRET_LEN} bytes"
            )));
        }
        let _g = self.lock.read().await;
        let r = self.usable(key, KeyKind::Secret).await?;
        let (kek_id, kek) = self.current_kek().await?;
        let mut n = r.clone();
        n.material = gcm_wrap(&kek, &wrap_aad(&r.id, &r.kind, &kek_id), &secret)?;
        n.wrapped_by = kek_id;
        n.updated_at = self.now();
        n.revision = r.revision.saturating_add(1);
        self.write(n).await?;
        self.audit("secret.replace", Some(key.as_str()), r.label.clone(), true)
            .await
    }

    async fn set_state(&self, key: &KeyId, state: KeyState) -> Result<()> {
        let _g = self.lock.read().await;
        let r = self.load(key.as_str()).await?;
        let info = KeyInfo::from_record(&r)?;
        if info.kind == KeyKind::Kek {
            return Err(Error::NotSupported(
                "KEK states change only through rotation",
            ));
        }
        let Some(action) = crate::device::state_change(key, info.state, state)? else {
            return Ok(());
        };
        let mut n = r.clone();
        n.state = state.as_str().into();
        n.updated_at = self.now();
        n.revision = r.revision.saturating_add(1);
        self.write(n).await?;
        self.audit(action, Some(key.as_str()), r.label.clone(), true)
            .await
    }

    async fn destroy(&self, key: &KeyId) -> Result<()> {
        let _g = self.lock.read().await;
        let r = self.load(key.as_str()).await?;
        let info = KeyInfo::from_record(&r)?;
        if info.kind == KeyKind::Kek {
            return Err(Error::NotSupported("KEKs are destroyed only by rotation"));
        }
        if info.state == KeyState::Destroyed {
            return Err(Error::KeyDestroyed(key.0.clone()));
        }
        let mut n = r.clone();
        n.state = KeyState::Destroyed.as_str().into();
        n.material = Vec::new();
        n.updated_at = self.now();
        n.revision = r.revision.saturating_add(1);
        self.write(n).await?;
        self.audit("key.destroy", Some(key.as_str()), r.label.clone(), true)
            .await
    }

    async fn key_info(&self, key: &KeyId) -> Result<KeyInfo> {
        KeyInfo::from_record(&self.load(key.as_str()).await?)
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut v = Vec::new();
        for r in self.cfg.store.list().await? {
            self.verify_mac(&r)?;
            v.push(KeyInfo::from_record(&r)?);
        }
        Ok(v)
    }
}
