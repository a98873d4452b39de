//! [`SdfDevice`]: the [`CryptoDevice`] trait over a vendor GM/T 0018 library loaded at run
//! time with `libloading`. The only module of the crate with `unsafe` code.
//!
//! Mapping (standard SDF has no "generate an internal key" call, so):
//! * SM2 keys: internal signing key indices pre-provisioned by the vendor's admin tool;
//!   [`CryptoDevice::generate_sm2`] allocates the next unused index of
//!   [`SdfConfig::sign_key_indices`], reads its public key with
//!   `SDF_ExportSignPublicKey_ECC`, and records the allocation. Destroying retires the index
//!   for good (re-keying an index is a vendor admin operation).
//! * SM4 keys: `SDF_GenerateKeyWithKEK` under [`SdfConfig::kek_index`]; the record keeps the
//!   KEK-wrapped key plus an 8-byte key check value (KCV = first 8 bytes of
//!   E_K("yiqian-kcv-v1")) computed in the device, so a damaged blob is detected.
//!   Every use: `SDF_ImportKeyWithKEK` → `SDF_Encrypt`/`SDF_Decrypt` → `SDF_DestroyKey`.
//! * SM4-GCM: standard SDF offers ECB/CBC only, so GCM is computed on the host over the
//!   device's SM4-ECB (`prims::gcm_encrypt_with`); the key stays in the device.
//! * secrets (d2): a KEK-wrapped SM4 session key + SM4-GCM ciphertext of the secret.
//! * export/import: only under the device KEK ([`CryptoDevice::default_wrapping_key`],
//!   id `sdf:kek:<index>`); SM2 internal keys are not exportable.
//! * Records in this mode carry no MAC (there is no host master key).

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::os::raw::{c_int, c_uint};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::{EccRefPublicKey, EccSignature, alg, check, code};
use crate::audit::{AuditEvent, AuditSink};
use crate::device::{
    CryptoDevice, DeviceInfo, KeyId, KeyInfo, KeyKind, KeyState, SecretFn, SymMode,
};
use crate::error::{Error, Result};
use crate::prims::{self, Sm2PublicKey, Sm2Signature};
use crate::soft::{Clock, check_usable};
use crate::store::{KeyRecord, KeyStore};

type Handle = *mut c_void;

const WRAPPED_INTERNAL: &str = "sdf:internal-sign";
const KCV_BLOCK: &[u8; 16] = b"yiqian-kcv-v1\0\0\0";
const SECRET_AAD: &[u8] = b"yiqian-sdf-secret-v1";
const EXPORT_MAGIC: &[u8; 6] = b"YQSDF1";

/// How to open an [`SdfDevice`].
#[derive(Clone)]
pub struct SdfConfig {
    /// Path of the vendor library (e.g. `/opt/vendor/lib/libsdf.so`).
    pub library: PathBuf,
    /// Internal SM2 signing key indices this server may allocate.
    pub sign_key_indices: Vec<u32>,
    /// Internal KEK index used to wrap SM4 keys and secrets.
    pub kek_index: u32,
    /// Private key access password (`SDF_GetPrivateKeyAccessRight`), if the device needs one.
    pub key_password: Option<Zeroizing<String>>,
    /// Allocation and wrapped-key records.
    pub store: Arc<dyn KeyStore>,
    /// Audit sink.
    pub audit: Arc<dyn AuditSink>,
    /// Clock.
    pub clock: Clock,
}

impl std::fmt::Debug for SdfConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdfConfig")
            .field("library", &self.library)
            .field("sign_key_indices", &self.sign_key_indices.len())
            .field("kek_index", &self.kek_index)
            .field(
                "key_password",
                &self.key_password.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

type FnOpenDevice = unsafe extern "C" fn(*mut Handle) -> c_int;
type FnClose = unsafe extern "C" fn(Handle) -> c_int;
type FnOpenSession = unsafe extern "C" fn(Handle, *mut Handle) -> c_int;
type FnRandom = unsafe extern "C" fn(Handle, c_uint, *mut u8) -> c_int;
type FnAccessRight = unsafe extern "C" fn(Handle, c_uint, *mut u8, c_uint) -> c_int;
type FnExportPub = unsafe extern "C" fn(Handle, c_uint, *mut EccRefPublicKey) -> c_int;
type FnInternalSign =
    unsafe extern "C" fn(Handle, c_uint, *mut u8, c_uint, *mut EccSignature) -> c_int;
type FnGenKeyKek = unsafe extern "C" fn(
    Handle,
    c_uint,
    c_uint,
    c_uint,
    *mut u8,
    *mut c_uint,
    *mut Handle,
) -> c_int;
type FnImportKeyKek =
    unsafe extern "C" fn(Handle, c_uint, c_uint, *mut u8, c_uint, *mut Handle) -> c_int;
type FnDestroyKey = unsafe extern "C" fn(Handle, Handle) -> c_int;
type FnCipher = unsafe extern "C" fn(
    Handle,
    Handle,
    c_uint,
    *mut u8,
    *mut u8,
    c_uint,
    *mut u8,
    *mut c_uint,
) -> c_int;
type FnHashInit =
    unsafe extern "C" fn(Handle, c_uint, *mut EccRefPublicKey, *mut u8, c_uint) -> c_int;
type FnHashUpdate = unsafe extern "C" fn(Handle, *mut u8, c_uint) -> c_int;
type FnHashFinal = unsafe extern "C" fn(Handle, *mut u8, *mut c_uint) -> c_int;

struct Api {
    open_device: FnOpenDevice,
    close_device: FnClose,
    open_session: FnOpenSession,
    close_session: FnClose,
    random: FnRandom,
    access_right: Option<FnAccessRight>,
    export_sign_pub: FnExportPub,
    internal_sign: FnInternalSign,
    gen_key_kek: FnGenKeyKek,
    import_key_kek: FnImportKeyKek,
    destroy_key: FnDestroyKey,
    encrypt: FnCipher,
    decrypt: FnCipher,
    hash_init: FnHashInit,
    hash_update: FnHashUpdate,
    hash_final: FnHashFinal,
    // Last: the function pointers above are valid only while the library stays loaded.
    _lib: libloading::Library,
}

fn sym<T: Copy>(lib: &libloading::Library, name: &str) -> Result<T> {
    let cname = format!("{name}\0");
    // SAFETY: `T` is always one of the `Fn*` pointer types above, each matching the C
    // prototype of `name` in GM/T 0018-2012; the pointer is used only while `lib` lives
    // (it is stored next to the library in `Api`, which owns both).
    let s = unsafe { lib.get::<T>(cname.as_bytes()) }
        .map_err(|e| Error::Library(format!("symbol {name}: {e}")))?;
    Ok(*s)
}

impl Api {
    fn load(path: &std::path::Path) -> Result<Self> {
        // SAFETY: loading a shared library runs its initialisers; the operator configured
        // this path to a trusted vendor SDF library (or our sdf-soft test library).
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| Error::Library(format!("{}: {e}", path.display())))?;
        Ok(Self {
            open_device: sym(&lib, "SDF_OpenDevice")?,
            close_device: sym(&lib, "SDF_CloseDevice")?,
            open_session: sym(&lib, "SDF_OpenSession")?,
            close_session: sym(&lib, "SDF_CloseSession")?,
            random: sym(&lib, "SDF_GenerateRandom")?,
            access_right: sym(&lib, "SDF_GetPrivateKeyAccessRight").ok(),
            export_sign_pub: sym(&lib, "SDF_ExportSignPublicKey_ECC")?,
            internal_sign: sym(&lib, "SDF_InternalSign_ECC")?,
            gen_key_kek: sym(&lib, "SDF_GenerateKeyWithKEK")?,
            import_key_kek: sym(&lib, "SDF_ImportKeyWithKEK")?,
            destroy_key: sym(&lib, "SDF_DestroyKey")?,
            encrypt: sym(&lib, "SDF_Encrypt")?,
            decrypt: sym(&lib, "SDF_Decrypt")?,
            hash_init: sym(&lib, "SDF_HashInit")?,
            hash_update: sym(&lib, "SDF_HashUpdate")?,
            hash_final: sym(&lib, "SDF_HashFinal")?,
            _lib: lib,
        })
    }
}

/// An open device + session. All calls go through the `Mutex` around it: one SDF session
/// is never used by two threads at once.
struct Conn {
    api: Api,
    dev: Handle,
    sess: Handle,
}

// SAFETY: the handles are opaque tokens owned by this value; they are only used while the
// surrounding `Mutex` is held, so no two threads use the session concurrently (GM/T 0018
// sessions are single-threaded), and they are closed exactly once, in `Drop`.
unsafe impl Send for Conn {}

impl Drop for Conn {
    fn drop(&mut self) {
        // SAFETY: `sess` and `dev` came from successful SDF_OpenSession/SDF_OpenDevice calls
        // and are closed only here.
        unsafe {
            (self.api.close_session)(self.sess);
            (self.api.close_device)(self.dev);
        }
    }
}

fn len_u32(n: usize) -> Result<c_uint> {
    c_uint::try_from(n).map_err(|_| Error::InvalidInput("buffer longer than 4 GiB".into()))
}

impl Conn {
    fn open(api: Api) -> Result<Self> {
        let mut dev: Handle = std::ptr::null_mut();
        // SAFETY: valid out-pointer to a local.
        check("SDF_OpenDevice", unsafe { (api.open_device)(&raw mut dev) })?;
        let mut sess: Handle = std::ptr::null_mut();
        // SAFETY: `dev` is an open device handle; valid out-pointer.
        let rv = unsafe { (api.open_session)(dev, &raw mut sess) };
        if let Err(e) = check("SDF_OpenSession", rv) {
            // SAFETY: close the device we opened just above.
            unsafe { (api.close_device)(dev) };
            return Err(e);
        }
        Ok(Self { api, dev, sess })
    }

    fn random(&self, out: &mut [u8]) -> Result<()> {
        let n = len_u32(out.len())?;
        // SAFETY: `out` is writable for `n` bytes.
        check("SDF_GenerateRandom", unsafe {
            (self.api.random)(self.sess, n, out.as_mut_ptr())
        })
    }

    fn access_right(&self, index: u32, password: &str) -> Result<()> {
        let Some(f) = self.api.access_right else {
            return Err(Error::Library(
                "SDF_GetPrivateKeyAccessRight missing".into(),
            ));
        };
        let mut pw = Zeroizing::new(password.as_bytes().to_vec());
        let n = len_u32(pw.len())?;
        // SAFETY: `pw` is readable for `n` bytes (the prototype takes a non-const pointer).
        check("SDF_GetPrivateKeyAccessRight", unsafe {
            f(self.sess, index, pw.as_mut_ptr(), n)
        })
    }

    fn export_sign_pub(&self, index: u32) -> Result<Sm2PublicKey> {
        let mut k = EccRefPublicKey {
            bits: 0,
            x: [0; 64],
            y: [0; 64],
        };
        // SAFETY: `k` is a valid, writable ECCrefPublicKey.
        check("SDF_ExportSignPublicKey_ECC", unsafe {
            (self.api.export_sign_pub)(self.sess, index, &raw mut k)
        })?;
        k.to_sm2()
    }

    fn internal_sign(&self, index: u32, e: &[u8; 32]) -> Result<Sm2Signature> {
        let mut sig = EccSignature {
            r: [0; 64],
            s: [0; 64],
        };
        let mut data = *e;
        // SAFETY: `data` is 32 readable bytes; `sig` a writable ECCSignature.
        check("SDF_InternalSign_ECC", unsafe {
            (self.api.internal_sign)(self.sess, index, data.as_mut_ptr(), 32, &raw mut sig)
        })?;
        sig.to_sig()
    }

    fn gen_key_kek(&self, kek: u32) -> Result<(Vec<u8>, SymKey<'_>)> {
        let mut buf = [0u8; 256];
        let mut len: c_uint = 256;
        let mut h: Handle = std::ptr::null_mut();
        // SAFETY: `buf` is writable for 256 bytes, `len` and `h` are valid out-pointers.
        check("SDF_GenerateKeyWithKEK", unsafe {
            (self.api.gen_key_kek)(
                self.sess,
                128,
                alg::SGD_SM4_ECB,
                kek,
                buf.as_mut_ptr(),
                &raw mut len,
                &raw mut h,
            )
        })?;
        let key = SymKey { conn: self, h };
        let wrapped = buf
            .get(..len as usize)
            .ok_or(Error::Internal("SDF returned a longer key than its buffer"))?;
        Ok((wrapped.to_vec(), key))
    }

    fn import_key_kek(&self, kek: u32, wrapped: &[u8]) -> Result<SymKey<'_>> {
        let mut w = wrapped.to_vec();
        let n = len_u32(w.len())?;
        let mut h: Handle = std::ptr::null_mut();
        // SAFETY: `w` is readable for `n` bytes, `h` a valid out-pointer.
        check("SDF_ImportKeyWithKEK", unsafe {
            (self.api.import_key_kek)(
                self.sess,
                alg::SGD_SM4_ECB,
                kek,
                w.as_mut_ptr(),
                n,
                &raw mut h,
            )
        })?;
        Ok(SymKey { conn: self, h })
    }

    fn cipher(
        &self,
        enc: bool,
        key: &SymKey<'_>,
        alg_id: u32,
        iv: Option<&[u8]>,
        data: &[u8],
    ) -> Result<Vec<u8>> {
        let mut input = Zeroizing::new(data.to_vec());
        let n = len_u32(input.len())?;
        let mut out = vec![0u8; input.len() + 32];
        let mut out_len = len_u32(out.len())?;
        let mut ivbuf = [0u8; 16];
        let ivp = match iv {
            Some(v) => {
                if v.len() != 16 {
                    return Err(Error::InvalidInput("CBC IV must be 16 bytes".into()));
                }
                ivbuf.copy_from_slice(v);
                ivbuf.as_mut_ptr()
            }
            None => std::ptr::null_mut(),
        };
        let f = if enc {
            self.api.encrypt
        } else {
            self.api.decrypt
        };
        // SAFETY: `input` readable for `n` bytes; `out` writable for `out_len` bytes; `ivp`
        // null (ECB) or 16 writable bytes (the device may update the IV in place).
        let rv = unsafe {
            f(
                self.sess,
                key.h,
                alg_id,
                ivp,
                input.as_mut_ptr(),
                n,
                out.as_mut_ptr(),
                &raw mut out_len,
            )
        };
        check(if enc { "SDF_Encrypt" } else { "SDF_Decrypt" }, rv)?;
        out.truncate(out_len as usize);
        Ok(out)
    }

    fn hash(&self, z: Option<(&Sm2PublicKey, &[u8])>, msg: &[u8]) -> Result<[u8; 32]> {
        let rv = match z {
            Some((pk, id)) => {
                let mut k = EccRefPublicKey::from_sm2(pk);
                let mut idv = id.to_vec();
                let n = len_u32(idv.len())?;
                // SAFETY: valid ECCrefPublicKey and ID buffer of `n` bytes.
                unsafe {
                    (self.api.hash_init)(self.sess, alg::SGD_SM3, &raw mut k, idv.as_mut_ptr(), n)
                }
            }
            // SAFETY: null public key and ID are allowed by the standard (plain SM3).
            None => unsafe {
                (self.api.hash_init)(
                    self.sess,
                    alg::SGD_SM3,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    0,
                )
            },
        };
        check("SDF_HashInit", rv)?;
        for chunk in msg.chunks(1 << 20) {
            let mut c = chunk.to_vec();
            let n = len_u32(c.len())?;
            // SAFETY: `c` readable for `n` bytes.
            check("SDF_HashUpdate", unsafe {
                (self.api.hash_update)(self.sess, c.as_mut_ptr(), n)
            })?;
        }
        let mut out = [0u8; 64];
        let mut len: c_uint = 64;
        // SAFETY: `out` writable for 64 bytes, `len` a valid out-pointer.
        check("SDF_HashFinal", unsafe {
            (self.api.hash_final)(self.sess, out.as_mut_ptr(), &raw mut len)
        })?;
        if len != 32 {
            return Err(Error::Internal(
                "SDF_HashFinal returned a digest that is not 32 bytes",
            ));
        }
        let mut h = [0u8; 32];
        h.copy_from_slice(&out[..32]);
        Ok(h)
    }
}

/// A session key handle, destroyed (`SDF_DestroyKey`) on drop.
struct SymKey<'a> {
    conn: &'a Conn,
    h: Handle,
}

impl Drop for SymKey<'_> {
    fn drop(&mut self) {
        // SAFETY: `h` came from a successful key generation/import on this session and is
        // destroyed only here.
        unsafe { (self.conn.api.destroy_key)(self.conn.sess, self.h) };
    }
}

impl SymKey<'_> {
    fn ecb(&self, data: &[u8]) -> Result<Vec<u8>> {
        self.conn.cipher(true, self, alg::SGD_SM4_ECB, None, data)
    }
    fn kcv(&self) -> Result<[u8; 8]> {
        let e = self.ecb(KCV_BLOCK)?;
        let mut k = [0u8; 8];
        k.copy_from_slice(e.get(..8).ok_or(Error::Internal("short ECB output"))?);
        Ok(k)
    }
}

/// A KEK-wrapped SM4 key as kept in a record: kek index ‖ len ‖ wrapped ‖ KCV.
struct SymBlob {
    kek: u32,
    wrapped: Vec<u8>,
    kcv: [u8; 8],
}

impl SymBlob {
    fn encode(&self) -> Vec<u8> {
        let mut v = self.kek.to_be_bytes().to_vec();
        v.extend_from_slice(&u16::try_from(self.wrapped.len()).unwrap_or(0).to_be_bytes());
        v.extend_from_slice(&self.wrapped);
        v.extend_from_slice(&self.kcv);
        v
    }
    fn decode(b: &[u8]) -> Result<(Self, &[u8])> {
        let bad = || Error::Integrity("malformed SDF key blob");
        let (k, rest) = b.split_at_checked(4).ok_or_else(bad)?;
        let (l, rest) = rest.split_at_checked(2).ok_or_else(bad)?;
        let kek = u32::from_be_bytes(k.try_into().map_err(|_| bad())?);
        let l = u16::from_be_bytes(l.try_into().map_err(|_| bad())?);
        let (w, rest) = rest.split_at_checked(usize::from(l)).ok_or_else(bad)?;
        let (kcv, rest) = rest.split_at_checked(8).ok_or_else(bad)?;
        Ok((
            Self {
                kek,
                wrapped: w.to_vec(),
                kcv: kcv.try_into().map_err(|_| bad())?,
            },
            rest,
        ))
    }
}

/// The SDF adapter device.
pub struct SdfDevice {
    conn: Mutex<Conn>,
    cfg: SdfConfig,
    alloc: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for SdfDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdfDevice")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn new_id() -> Result<String> {
    Ok(format!("k-{}", hex::encode(prims::random_vec(8)?)))
}

impl SdfDevice {
    /// Load the library, `SDF_OpenDevice`, `SDF_OpenSession`.
    pub fn open(cfg: SdfConfig) -> Result<Self> {
        let api = Api::load(&cfg.library)?;
        let conn = Conn::open(api)?;
        Ok(Self {
            conn: Mutex::new(conn),
            cfg,
            alloc: tokio::sync::Mutex::new(()),
        })
    }

    fn with_conn<T>(&self, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        let g = self
            .conn
            .lock()
            .map_err(|_| Error::Internal("SDF session mutex poisoned"))?;
        f(&g)
    }

    fn kek_id(&self) -> String {
        format!("sdf:kek:{}", self.cfg.kek_index)
    }

    fn now(&self) -> i64 {
        (self.cfg.clock)()
    }

    async fn audit(
        &self,
        action: &'static str,
        key_id: Option<&str>,
        detail: impl Into<String>,
    ) -> Result<()> {
        self.cfg
            .audit
            .record(AuditEvent {
                at: self.now(),
                action,
                key_id: key_id.map(str::to_owned),
                detail: detail.into(),
                success: true,
            })
            .await
    }

    async fn load(&self, key: &KeyId) -> Result<KeyRecord> {
        self.cfg
            .store
            .get(key.as_str())
            .await?
            .ok_or_else(|| Error::KeyNotFound(key.0.clone()))
    }

    async fn usable(&self, key: &KeyId, kind: KeyKind) -> Result<KeyRecord> {
        let r = self.load(key).await?;
        check_usable(&KeyInfo::from_record(&r)?, kind)?;
        Ok(r)
    }

    fn sign_index(r: &KeyRecord) -> Result<u32> {
        let b: [u8; 4] = r
            .material
            .as_slice()
            .try_into()
            .map_err(|_| Error::Integrity("bad SDF key index record"))?;
        Ok(u32::from_be_bytes(b))
    }

    async fn put_new(
        &self,
        id: &str,
        label: &str,
        kind: KeyKind,
        wrapped_by: String,
        material: Vec<u8>,
        public: Vec<u8>,
    ) -> Result<()> {
        let now = self.now();
        self.cfg
            .store
            .put(&KeyRecord {
                id: id.to_owned(),
                label: label.to_owned(),
                kind: kind.as_str().into(),
                state: KeyState::Active.as_str().into(),
                wrapped_by,
                material,
                public_key: public,
                created_at: now,
                updated_at: now,
                revision: 1,
                mac: Vec::new(),
            })
            .await
    }

    fn new_sym(&self) -> Result<SymBlob> {
        let kek = self.cfg.kek_index;
        self.with_conn(|c| {
            let (wrapped, k) = c.gen_key_kek(kek)?;
            Ok(SymBlob {
                kek,
                wrapped,
                kcv: k.kcv()?,
            })
        })
    }

    /// Import a blob's key and run `f` with it (checks the KCV first).
    fn with_sym<T>(&self, blob: &SymBlob, f: impl FnOnce(&SymKey<'_>) -> Result<T>) -> Result<T> {
        self.with_conn(|c| {
            let k = c.import_key_kek(blob.kek, &blob.wrapped)?;
            if !prims::ct_eq(&k.kcv()?, &blob.kcv) {
                return Err(Error::Integrity(
                    "SDF key check value mismatch (damaged or foreign key blob)",
                ));
            }
            f(&k)
        })
    }
}

#[async_trait]
impl CryptoDevice for SdfDevice {
    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            kind: "sdf",
            description: format!("SDF library {}", self.cfg.library.display()),
        }
    }

    async fn random(&self, len: usize) -> Result<Vec<u8>> {
        if len > 1 << 20 {
            return Err(Error::InvalidInput(
                "at most 1 MiB of random per call".into(),
            ));
        }
        let mut v = vec![0u8; len];
        self.with_conn(|c| c.random(&mut v))?;
        Ok(v)
    }

    async fn generate_sm2(&self, label: &str) -> Result<(KeyId, Sm2PublicKey)> {
        let _g = self.alloc.lock().await;
        let used: Vec<u32> = self
            .cfg
            .store
            .list()
            .await?
            .iter()
            .filter(|r| r.wrapped_by == WRAPPED_INTERNAL)
            .filter_map(|r| Self::sign_index(r).ok())
            .collect();
        let index = *self
            .cfg
            .sign_key_indices
            .iter()
            .find(|i| !used.contains(i))
            .ok_or(Error::NotSupported(
                "no free internal SM2 key index left in the configured pool",
            ))?;
        let public = self.with_conn(|c| {
            if let Some(pw) = &self.cfg.key_password {
                c.access_right(index, pw)?;
            }
            c.export_sign_pub(index)
        })?;
        let id = new_id()?;
        self.put_new(
            &id,
            label,
            KeyKind::Sm2Sign,
            WRAPPED_INTERNAL.into(),
            index.to_be_bytes().to_vec(),
            public.to_sec1_uncompressed(),
        )
        .await?;
        self.audit(
            "key.generate",
            Some(&id),
            format!("sm2_sign: {label} (internal index {index})"),
        )
        .await?;
        Ok((KeyId(id), public))
    }

    async fn public_key(&self, key: &KeyId) -> Result<Sm2PublicKey> {
        let r = self.load(key).await?;
        crate::device::signing_public_key(&r, key)
    }

    async fn sign_digest(&self, key: &KeyId, e: &[u8; 32]) -> Result<Sm2Signature> {
        let r = self.usable(key, KeyKind::Sm2Sign).await?;
        let index = Self::sign_index(&r)?;
        self.with_conn(|c| c.internal_sign(index, e))
            .map_err(|err| match err {
                Error::Sdf {
                    code: code::SDR_KEYNOTEXIST,
                    ..
                } => Error::KeyNotFound(key.0.clone()),
                other => other,
            })
    }

    async fn sm3(&self, data: &[u8]) -> Result<[u8; 32]> {
        self.with_conn(|c| c.hash(None, data))
    }

    async fn sm3_with_z(&self, public: &Sm2PublicKey, id: &[u8], msg: &[u8]) -> Result<[u8; 32]> {
        self.with_conn(|c| c.hash(Some((public, id)), msg))
    }

    async fn generate_sm4(&self, label: &str) -> Result<KeyId> {
        let blob = self.new_sym()?;
        let id = new_id()?;
        self.put_new(
            &id,
            label,
            KeyKind::Sm4,
            self.kek_id(),
            blob.encode(),
            Vec::new(),
        )
        .await?;
        self.audit("key.generate", Some(&id), format!("sm4: {label}"))
            .await?;
        Ok(KeyId(id))
    }

    async fn encrypt(
        &self,
        key: &KeyId,
        mode: SymMode,
        iv: &[u8],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>> {
        let r = self.usable(key, KeyKind::Sm4).await?;
        let (blob, _) = SymBlob::decode(&r.material)?;
        self.with_sym(&blob, |k| match mode {
            SymMode::Ecb if iv.is_empty() => k.conn.cipher(true, k, alg::SGD_SM4_ECB, None, data),
            SymMode::Ecb => Err(Error::InvalidInput("ECB takes no IV".into())),
            SymMode::Cbc => {
                if !data.len().is_multiple_of(16) {
                    return Err(Error::InvalidInput(
                        "CBC data must be a multiple of 16 bytes".into(),
                    ));
                }
                k.conn.cipher(true, k, alg::SGD_SM4_CBC, Some(iv), data)
            }
            SymMode::Gcm => prims::gcm_encrypt_with(|b| k.ecb(b), iv, aad, data),
        })
    }

    async fn decrypt(
        &self,
        key: &KeyId,
        mode: SymMode,
        iv: &[u8],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let r = self.usable(key, KeyKind::Sm4).await?;
        let (blob, _) = SymBlob::decode(&r.material)?;
        self.with_sym(&blob, |k| match mode {
            SymMode::Ecb if iv.is_empty() => k
                .conn
                .cipher(false, k, alg::SGD_SM4_ECB, None, data)
                .map(Zeroizing::new),
            SymMode::Ecb => Err(Error::InvalidInput("ECB takes no IV".into())),
            SymMode::Cbc => {
                if !data.len().is_multiple_of(16) {
                    return Err(Error::InvalidInput(
                        "CBC data must be a multiple of 16 bytes".into(),
                    ));
                }
                k.conn
                    .cipher(false, k, alg::SGD_SM4_CBC, Some(iv), data)
                    .map(Zeroizing::new)
            }
            SymMode::Gcm => prims::gcm_decrypt_with(|b| k.ecb(b), iv, aad, data),
        })
    }

    async fn default_wrapping_key(&self) -> Result<KeyId> {
        Ok(KeyId(self.kek_id()))
    }

    async fn export_wrapped(&self, key: &KeyId, wrapping: &KeyId) -> Result<Vec<u8>> {
        if wrapping.as_str() != self.kek_id() {
            return Err(Error::NotSupported(
                "the SDF adapter exports keys only under its KEK index (default_wrapping_key)",
            ));
        }
        let r = self.load(key).await?;
        let info = KeyInfo::from_record(&r)?;
        check_usable(&info, info.kind)?;
        if info.kind == KeyKind::Sm2Sign {
            return Err(Error::NotSupported(
                "internal SM2 keys of an SDF device are not exportable",
            ));
        }
        let mut blob = EXPORT_MAGIC.to_vec();
        blob.push(u8::from(info.kind == KeyKind::Secret));
        blob.extend_from_slice(&r.material);
        self.audit(
            "key.export",
            Some(key.as_str()),
            format!("wrapped under {wrapping}"),
        )
        .await?;
        Ok(blob)
    }

    async fn import_wrapped(&self, wrapping: &KeyId, label: &str, blob: &[u8]) -> Result<KeyId> {
        if wrapping.as_str() != self.kek_id() {
            return Err(Error::NotSupported(
                "the SDF adapter imports keys only under its KEK index (default_wrapping_key)",
            ));
        }
        let bad = || Error::Integrity("malformed wrapped key blob");
        let rest = blob.strip_prefix(EXPORT_MAGIC.as_slice()).ok_or_else(bad)?;
        let (&is_secret, material) = rest.split_first().ok_or_else(bad)?;
        let (sym, tail) = SymBlob::decode(material)?;
        if sym.kek != self.cfg.kek_index {
            return Err(Error::Integrity("wrapped key blob names another KEK index"));
        }
        let kind = match is_secret {
            0 if tail.is_empty() => KeyKind::Sm4,
            1 => KeyKind::Secret,
            _ => return Err(bad()),
        };
        // Checks the KCV and, for secrets, the GCM tag.
        self.with_sym(&sym, |k| {
            if kind == KeyKind::Secret {
                let (nonce, ct) = tail
                    .split_at_checked(prims::GCM_NONCE_LEN)
                    .ok_or_else(bad)?;
                prims::gcm_decrypt_with(|b| k.ecb(b), nonce, SECRET_AAD, ct)?;
            }
            Ok(())
        })?;
        let id = new_id()?;
        self.put_new(
            &id,
            label,
            kind,
            self.kek_id(),
            material.to_vec(),
            Vec::new(),
        )
        .await?;
        self.audit(
            "key.import",
            Some(&id),
            format!("{}: {label}", kind.as_str()),
        )
        .await?;
        Ok(KeyId(id))
    }

    async fn import_secret(&self, label: &str, secret: Zeroizing<Vec<u8>>) -> Result<KeyId> {
        if secret.is_empty() || secret.len() > crate::soft::MAX_SECRET_LEN {
            return Err(Error::InvalidInput("secret must be 1..=4096 bytes".into()));
        }
        let sym = self.new_sym()?;
        let nonce = prims::random_vec(prims::GCM_NONCE_LEN)?;
        let ct = self.with_sym(&sym, |k| {
            prims::gcm_encrypt_with(|b| k.ecb(b), &nonce, SECRET_AAD, &secret)
        })?;
        let mut material = sym.encode();
        material.extend_from_slice(&nonce);
        material.extend(ct);
        let id = new_id()?;
        self.put_new(
            &id,
            label,
            KeyKind::Secret,
            self.kek_id(),
            material,
            Vec::new(),
        )
        .await?;
        self.audit("secret.import", Some(&id), format!("secret: {label}"))
            .await?;
        Ok(KeyId(id))
    }

    async fn use_secret(&self, key: &KeyId, f: SecretFn<'_>) -> Result<Vec<u8>> {
        let r = self.usable(key, KeyKind::Secret).await?;
        let (sym, tail) = SymBlob::decode(&r.material)?;
        let (nonce, ct) = tail
            .split_at_checked(prims::GCM_NONCE_LEN)
            .ok_or(Error::Integrity("malformed secret record"))?;
        let plain = self.with_sym(&sym, |k| {
            prims::gcm_decrypt_with(|b| k.ecb(b), nonce, SECRET_AAD, ct)
        })?;
        f(&plain)
    }

    async fn replace_secret(&self, key: &KeyId, secret: Zeroizing<Vec<u8>>) -> Result<()> {
        if secret.is_empty() || secret.len() > crate::soft::MAX_SECRET_LEN {
            return Err(Error::InvalidInput("secret must be 1..=4096 bytes".into()));
        }
        let r = self.usable(key, KeyKind::Secret).await?;
        let sym = self.new_sym()?;
        let nonce = prims::random_vec(prims::GCM_NONCE_LEN)?;
        let ct = self.with_sym(&sym, |k| {
            prims::gcm_encrypt_with(|b| k.ecb(b), &nonce, SECRET_AAD, &secret)
        })?;
        let mut n = r.clone();
        n.material = sym.encode();
        n.material.extend_from_slice(&nonce);
        n.material.extend(ct);
        n.updated_at = self.now();
        n.revision = r.revision.saturating_add(1);
        self.cfg.store.put(&n).await?;
        self.audit("secret.replace", Some(key.as_str()), r.label.clone())
            .await
    }

    async fn set_state(&self, key: &KeyId, state: KeyState) -> Result<()> {
        let r = self.load(key).await?;
        let info = KeyInfo::from_record(&r)?;
        let Some(action) = crate::device::state_change(key, info.state, state)? else {
            return Ok(());
        };
        let mut n = r.clone();
        n.state = state.as_str().into();
        n.updated_at = self.now();
        n.revision = r.revision.saturating_add(1);
        self.cfg.store.put(&n).await?;
        self.audit(action, Some(key.as_str()), r.label.clone())
            .await
    }

    async fn destroy(&self, key: &KeyId) -> Result<()> {
        let r = self.load(key).await?;
        if r.state == KeyState::Destroyed.as_str() {
            return Err(Error::KeyDestroyed(key.0.clone()));
        }
        let mut n = r.clone();
        n.state = KeyState::Destroyed.as_str().into();
        // SM2: keep the index so it is never allocated again; others: erase the wrapped key.
        if r.wrapped_by != WRAPPED_INTERNAL {
            n.material = Vec::new();
        }
        n.updated_at = self.now();
        n.revision = r.revision.saturating_add(1);
        self.cfg.store.put(&n).await?;
        self.audit("key.destroy", Some(key.as_str()), r.label.clone())
            .await
    }

    async fn key_info(&self, key: &KeyId) -> Result<KeyInfo> {
        KeyInfo::from_record(&self.load(key).await?)
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        self.cfg
            .store
            .list()
            .await?
            .iter()
            .map(KeyInfo::from_record)
            .collect()
    }
}
