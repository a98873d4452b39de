//! Safe core of the test library: device state, sessions, session keys, SM3 contexts.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use crypto_device::device::{CryptoDevice, KeyId, SymMode};
use crypto_device::prims::{self, Sm2PublicKey, Sm2Signature};
use crypto_device::sdf::code;
use crypto_device::sealed::Unlock;
use crypto_device::soft::{SoftDevice, SoftDeviceConfig};
use crypto_device::store::SqlKeyStore;
use crypto_device::{Error, MemoryAuditSink};
use sm3::Digest as _;
use zeroize::Zeroizing;

/// SDF return code.
pub(crate) type Rv = u32;

/// Test library configuration, read from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory.
    pub dir: PathBuf,
    /// Number of internal SM2 signing keys.
    pub sign_keys: u32,
    /// Number of internal KEKs.
    pub keks: u32,
}

impl Config {
    /// From `SDF_SOFT_*` variables.
    pub fn from_env() -> Self {
        let num = |k: &str, d: u32| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(d)
        };
        let dir = std::env::var_os("SDF_SOFT_DIR").map_or_else(
            || {
                let r = prims::random_vec(8).map_or_else(|_| "0".into(), hex::encode);
                std::env::temp_dir().join(format!("sdf-soft-{}-{r}", std::process::id()))
            },
            PathBuf::from,
        );
        Self {
            dir,
            sign_keys: num("SDF_SOFT_SIGN_KEYS", 16),
            keks: num("SDF_SOFT_KEKS", 4),
        }
    }
}

pub(crate) struct Device {
    rt: tokio::runtime::Runtime,
    dev: SoftDevice,
    sign: Vec<KeyId>,
    keks: Vec<KeyId>,
    sessions: Mutex<HashMap<usize, Option<sm3::Sm3>>>,
    keys: Mutex<HashMap<usize, Zeroizing<[u8; 16]>>>,
    next: Mutex<usize>,
}

static DEVICE: OnceLock<Result<Arc<Device>, String>> = OnceLock::new();

pub(crate) fn map_err(e: &Error) -> Rv {
    match e {
        Error::KeyNotFound(_) | Error::KeyDestroyed(_) => code::SDR_KEYNOTEXIST,
        Error::InvalidInput(_) => code::SDR_INARGERR,
        Error::KeySuspended(_) => code::SDR_PARDENY,
        Error::Integrity(_) => code::SDR_SYMOPERR,
        Error::Random => code::SDR_RANDERR,
        _ => code::SDR_UNKNOWERR,
    }
}

/// Run a future to completion on the library's runtime, from a fresh thread, so that a
/// caller that is itself inside a tokio runtime (the adapter's async methods) works.
fn block<T: Send>(
    rt: &tokio::runtime::Runtime,
    fut: impl std::future::Future<Output = T> + Send,
) -> Result<T, Rv> {
    std::thread::scope(|s| s.spawn(|| rt.block_on(fut)).join()).map_err(|_| code::SDR_UNKNOWERR)
}

fn init() -> Result<Arc<Device>, String> {
    let cfg = Config::from_env();
    std::fs::create_dir_all(&cfg.dir).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let pass = std::env::var("SDF_SOFT_PASSPHRASE")
        .unwrap_or_else(|_| "sdf-soft test passphrase (not for production)".into());
    let db = cfg.dir.join("keys.db");
    let mk = cfg.dir.join("master-key.sealed");
    let (dev, sign, keks) = block(&rt, async {
        let store = SqlKeyStore::connect(&format!("sqlite://{}?mode=rwc", db.display())).await?;
        store.create_table().await?;
        let mut c = SoftDeviceConfig::new(
            mk,
            Unlock::passphrase(pass),
            Arc::new(store),
            Arc::new(MemoryAuditSink::default()),
        );
        c.iterations = 1000;
        let dev = SoftDevice::open_or_init(c).await?;
        let existing = dev.list_keys().await?;
        let find = |label: &str| {
            existing
                .iter()
                .find(|k| k.label == label)
                .map(|k| k.id.clone())
        };
        let mut sign = Vec::new();
        for i in 1..=cfg.sign_keys {
            let label = format!("sdf-soft internal sign key #{i}");
            sign.push(match find(&label) {
                Some(id) => id,
                None => dev.generate_sm2(&label).await?.0,
            });
        }
        let mut keks = Vec::new();
        for i in 1..=cfg.keks {
            let label = format!("sdf-soft internal KEK #{i}");
            keks.push(match find(&label) {
                Some(id) => id,
                None => dev.generate_sm4(&label).await?,
            });
        }
        Ok::<_, Error>((dev, sign, keks))
    })
    .map_err(|c| format!("runtime failure 0x{c:08X}"))?
    .map_err(|e| e.to_string())?;
    Ok(Arc::new(Device {
        rt,
        dev,
        sign,
        keks,
        sessions: Mutex::new(HashMap::new()),
        keys: Mutex::new(HashMap::new()),
        next: Mutex::new(1),
    }))
}

pub(crate) fn device() -> Result<Arc<Device>, Rv> {
    DEVICE
        .get_or_init(init)
        .as_ref()
        .map(Arc::clone)
        .map_err(|_| code::SDR_OPENDEVICE)
}

fn index(v: &[KeyId], i: u32) -> Result<&KeyId, Rv> {
    let i = usize::try_from(i).map_err(|_| code::SDR_KEYNOTEXIST)?;
    i.checked_sub(1)
        .and_then(|i| v.get(i))
        .ok_or(code::SDR_KEYNOTEXIST)
}

impl Device {
    fn next_id(&self) -> Result<usize, Rv> {
        let mut n = self.next.lock().map_err(|_| code::SDR_UNKNOWERR)?;
        *n += 1;
        Ok(*n)
    }

    fn run<T: Send>(
        &self,
        fut: impl std::future::Future<Output = crypto_device::Result<T>> + Send,
    ) -> Result<T, Rv> {
        block(&self.rt, fut)?.map_err(|e| map_err(&e))
    }

    pub(crate) fn open_session(&self) -> Result<usize, Rv> {
        let id = self.next_id()?;
        self.sessions
            .lock()
            .map_err(|_| code::SDR_UNKNOWERR)?
            .insert(id, None);
        Ok(id)
    }

    pub(crate) fn close_session(&self, s: usize) -> Result<(), Rv> {
        self.sessions
            .lock()
            .map_err(|_| code::SDR_UNKNOWERR)?
            .remove(&s)
            .map(|_| ())
            .ok_or(code::SDR_OPENSESSION)
    }

    pub(crate) fn check_session(&self, s: usize) -> Result<(), Rv> {
        if self
            .sessions
            .lock()
            .map_err(|_| code::SDR_UNKNOWERR)?
            .contains_key(&s)
        {
            Ok(())
        } else {
            Err(code::SDR_OPENSESSION)
        }
    }

    pub(crate) fn random(&self, n: usize) -> Result<Vec<u8>, Rv> {
        self.run(self.dev.random(n))
    }

    pub(crate) fn sign_public(&self, i: u32) -> Result<Sm2PublicKey, Rv> {
        let k = index(&self.sign, i)?;
        self.run(self.dev.public_key(k))
    }

    pub(crate) fn sign(&self, i: u32, e: &[u8; 32]) -> Result<Sm2Signature, Rv> {
        let k = index(&self.sign, i)?;
        self.run(self.dev.sign_digest(k, e))
    }

    fn put_key(&self, k: Zeroizing<[u8; 16]>) -> Result<usize, Rv> {
        let id = self.next_id()?;
        self.keys
            .lock()
            .map_err(|_| code::SDR_UNKNOWERR)?
            .insert(id, k);
        Ok(id)
    }

    /// New SM4 session key; returns (KEK-wrapped key, handle).
    pub(crate) fn generate_key_with_kek(&self, kek: u32) -> Result<(Vec<u8>, usize), Rv> {
        let kid = index(&self.keks, kek)?;
        let mut k = Zeroizing::new([0u8; 16]);
        prims::fill_random(&mut k[..]).map_err(|_| code::SDR_RANDERR)?;
        let wrapped = self.run(self.dev.encrypt(kid, SymMode::Ecb, &[], &[], &k[..]))?;
        Ok((wrapped, self.put_key(k)?))
    }

    pub(crate) fn import_key_with_kek(&self, kek: u32, wrapped: &[u8]) -> Result<usize, Rv> {
        let kid = index(&self.keks, kek)?;
        if wrapped.len() != 16 {
            return Err(code::SDR_INARGERR);
        }
        let plain = self.run(self.dev.decrypt(kid, SymMode::Ecb, &[], &[], wrapped))?;
        let mut k = Zeroizing::new([0u8; 16]);
        k.copy_from_slice(&plain);
        self.put_key(k)
    }

    pub(crate) fn destroy_key(&self, h: usize) -> Result<(), Rv> {
        self.keys
            .lock()
            .map_err(|_| code::SDR_UNKNOWERR)?
            .remove(&h)
            .map(|_| ())
            .ok_or(code::SDR_KEYNOTEXIST)
    }

    /// SM4 ECB/CBC with a session key. For CBC, returns the next IV (last ciphertext block).
    pub(crate) fn cipher(
        &self,
        enc: bool,
        h: usize,
        alg: u32,
        iv: Option<&[u8; 16]>,
        data: &[u8],
    ) -> Result<(Vec<u8>, Option<[u8; 16]>), Rv> {
        use crypto_device::sdf::alg as a;
        let keys = self.keys.lock().map_err(|_| code::SDR_UNKNOWERR)?;
        let k = keys.get(&h).ok_or(code::SDR_KEYNOTEXIST)?;
        if !data.len().is_multiple_of(16) {
            return Err(code::SDR_INARGERR);
        }
        let out = match (alg, enc, iv) {
            (a::SGD_SM4_ECB, true, _) => prims::sm4_ecb_encrypt(&k[..], data),
            (a::SGD_SM4_ECB, false, _) => prims::sm4_ecb_decrypt(&k[..], data),
            (a::SGD_SM4_CBC, true, Some(iv)) => prims::sm4_cbc_encrypt(&k[..], iv, data),
            (a::SGD_SM4_CBC, false, Some(iv)) => prims::sm4_cbc_decrypt(&k[..], iv, data),
            (a::SGD_SM4_CBC, _, None) => return Err(code::SDR_INARGERR),
            _ => return Err(code::SDR_ALGNOTSUPPORT),
        }
        .map_err(|e| map_err(&e))?;
        let next_iv = if alg == a::SGD_SM4_CBC {
            let ct = if enc { &out[..] } else { data };
            ct.len()
                .checked_sub(16)
                .and_then(|s| ct.get(s..))
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .or(iv.copied())
        } else {
            None
        };
        Ok((out, next_iv))
    }

    pub(crate) fn hash_init(&self, s: usize, z: Option<(&Sm2PublicKey, &[u8])>) -> Result<(), Rv> {
        let mut h = sm3::Sm3::new();
        if let Some((pk, id)) = z {
            h.update(prims::sm2_z(pk, id).map_err(|e| map_err(&e))?);
        }
        let mut sessions = self.sessions.lock().map_err(|_| code::SDR_UNKNOWERR)?;
        *sessions.get_mut(&s).ok_or(code::SDR_OPENSESSION)? = Some(h);
        Ok(())
    }

    pub(crate) fn hash_update(&self, s: usize, data: &[u8]) -> Result<(), Rv> {
        let mut sessions = self.sessions.lock().map_err(|_| code::SDR_UNKNOWERR)?;
        let h = sessions
            .get_mut(&s)
            .ok_or(code::SDR_OPENSESSION)?
            .as_mut()
            .ok_or(code::SDR_STEPERR)?;
        h.update(data);
        Ok(())
    }

    pub(crate) fn hash_final(&self, s: usize) -> Result<[u8; 32], Rv> {
        let mut sessions = self.sessions.lock().map_err(|_| code::SDR_UNKNOWERR)?;
        let h = sessions
            .get_mut(&s)
            .ok_or(code::SDR_OPENSESSION)?
            .take()
            .ok_or(code::SDR_STEPERR)?;
        Ok(h.finalize().into())
    }
}
