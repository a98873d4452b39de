//! gm-pki's synchronous [`Sm2Signer`] over the asynchronous crypto device: the digest
//! e = SM3(Z ‖ TBS) is computed here, the device signs e (its key never leaves it).
//!
//! `sign` blocks on the device, so gm-pki calls that sign run inside [`blocking`] (a tokio
//! blocking thread, where `Handle::block_on` is allowed).

use std::sync::Arc;

use crypto_device::{CryptoDevice, KeyId};
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
        })
    }

    /// The device key id.
    pub fn key_id(&self) -> &KeyId {
        &self.key
    }
}

impl Sm2Signer for DeviceSigner {
    fn public_key(&self) -> PublicKey {
        self.public
    }

    fn sign(&self, tbs: &[u8]) -> gm_pki::Result<dsa::Signature> {
        let e = gm_pki::signer::message_hash(self.distid(), &self.public, tbs)?;
        let sig = self
            .handle
            .block_on(self.device.sign_digest(&self.key, &e))
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
