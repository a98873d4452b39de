//! gm-pki's synchronous [`Sm2Signer`] over the asynchronous crypto device: the digest
//! e = SM3(Z ‖ TBS) is computed here, the device signs e (its key never leaves it).
//!
//! `sign` blocks on the device, so gm-pki calls that sign run inside [`blocking`] (a tokio
//! blocking thread, where `Handle::block_on` is allowed) — except for a signer over an open key
//! ([`DeviceSigner::with_open_key`]), which signs in memory without blocking.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crypto_device::{CryptoDevice, KeyId, SigningHandle};
use gm_pki::Sm2Signer;
use sm2::{PublicKey, dsa};
use tokio::runtime::Handle;

use crate::error::{Error, Result};

/// A device-held SM2 key seen as a gm-pki signer.
#[derive(Clone)]
pub struct DeviceSigner {
    device: Arc<dyn CryptoDevice>,
    key: KeyId,
    public: PublicKey,
    handle: Handle,
    open: Option<Arc<dyn SigningHandle>>,
}

impl std::fmt::Debug for DeviceSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSigner")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl DeviceSigner {
    /// Wraps `key`, reading its public key from the device. Must run inside a tokio runtime.
    pub async fn new(device: Arc<dyn CryptoDevice>, key: KeyId) -> Result<Self> {
        let public = *device.public_key(&key).await?.as_inner();
        Ok(Self {
            device,
            key,
            public,
            handle: Handle::current(),
            open: None,
        })
    }

    /// The device key id.
    pub fn key_id(&self) -> &KeyId {
        &self.key
    }

    /// The same key signing through `open` (see [`OpenKeyCache`]).
    #[must_use]
    pub fn with_open_key(&self, open: Arc<dyn SigningHandle>) -> Self {
        Self {
            open: Some(open),
            ..self.clone()
        }
    }

    /// Whether it signs in memory (no device round trip, safe on an async worker).
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }
}

/// How long an open key is used before it is opened again, so a suspension or destruction of
/// the key in the device takes effect within this time.
pub const REOPEN_AFTER: Duration = Duration::from_secs(60);

/// A device key kept open for a hot path (the TSA): opened on first use and again every
/// [`REOPEN_AFTER`]; for devices that keep keys inside (`open_signing_key` gives `None`) the
/// plain per-call signer.
#[derive(Debug)]
pub struct OpenKeyCache {
    signer: DeviceSigner,
    current: RwLock<Option<(Instant, DeviceSigner)>>,
    /// One re-open at a time (the others wait and take its result).
    reopening: tokio::sync::Mutex<()>,
}

impl OpenKeyCache {
    /// A cache for `signer`'s key; nothing is opened yet.
    pub fn new(signer: DeviceSigner) -> Self {
        Self {
            signer,
            current: RwLock::new(None),
            reopening: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh(&self) -> Option<DeviceSigner> {
        let guard = self.current.read().ok()?;
        let (at, s) = guard.as_ref()?;
        (at.elapsed() < REOPEN_AFTER).then(|| s.clone())
    }

    /// The signer to use now: over the open key while it is fresh, else re-opened.
    pub async fn signer(&self) -> Result<DeviceSigner> {
        if let Some(s) = self.fresh() {
            return Ok(s);
        }
        let _one = self.reopening.lock().await;
        if let Some(s) = self.fresh() {
            return Ok(s);
        }
        let fresh = match self
            .signer
            .device
            .open_signing_key(&self.signer.key)
            .await?
        {
            Some(open) => self.signer.with_open_key(Arc::from(open)),
            None => self.signer.clone(),
        };
        if let Ok(mut guard) = self.current.write() {
            *guard = Some((Instant::now(), fresh.clone()));
        }
        Ok(fresh)
    }
}

impl Sm2Signer for DeviceSigner {
    fn public_key(&self) -> PublicKey {
        self.public
    }

    fn sign(&self, tbs: &[u8]) -> gm_pki::Result<dsa::Signature> {
        let e = gm_pki::signer::message_hash(self.distid(), &self.public, tbs)?;
        let sig = match &self.open {
            Some(open) => open.sign_digest(&e),
            None => self.handle.block_on(self.device.sign_digest(&self.key, &e)),
        }
        .map_err(|err| gm_pki::Error::Signer(err.to_string()))?;
        dsa::Signature::from_scalars(sig.r, sig.s)
            .map_err(|_| gm_pki::Error::Signer("device returned an out-of-range signature".into()))
    }
}

/// Runs signing work on a blocking thread (see the module note).
pub async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::Internal("signing task failed"))
}
