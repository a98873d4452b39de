//! The master key sealed at rest.
//!
//! File format (JSON, version 1):
//! ```json
//! {"format":"yiqian-sealed-master-key","version":1,"kdf":"pbkdf2-hmac-sm3",
//!  "iterations":600000,"salt":"<hex 16>","nonce":"<hex 12>","sealed":"<hex 32+16>"}
//! ```
//! * passphrase: sealing key = PBKDF2-HMAC-SM3(passphrase, salt, iterations, 16 bytes)
//!   (GM/T 0091-2020 password-based key derivation with SM3);
//! * key file (`kdf = "keyfile-hmac-sm3"`): sealing key = HMAC-SM3(file bytes,
//!   "yiqian-mk-keyfile-v1" ‖ salt)[..16]; the file must hold at least 32 random bytes;
//! * seal: SM4-GCM(sealing key, nonce, aad = "yiqian-mk-v1|kdf|iterations|salt-hex", master key).
//!
//! A wrong passphrase or key file fails the GCM tag: [`Error::WrongPassphrase`], and the file is
//! never touched on that path. Writes are atomic: temp file in the same directory, fsync,
//! rename, fsync of the directory.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::prims;

/// Master key length (bytes). Sub-keys are derived from it with HMAC-SM3.
pub const MASTER_KEY_LEN: usize = 32;
/// Default PBKDF2-HMAC-SM3 iteration count for new seals.
pub const DEFAULT_ITERATIONS: u32 = 600_000;
const FORMAT: &str = "yiqian-sealed-master-key";
const KDF_PBKDF2: &str = "pbkdf2-hmac-sm3";
const KDF_KEYFILE: &str = "keyfile-hmac-sm3";
/// Minimum key file size in bytes.
pub const MIN_KEY_FILE_LEN: usize = 32;

/// How the operator unlocks the master key.
#[derive(Clone)]
pub enum Unlock {
    /// An operator passphrase (at least 12 characters when sealing).
    Passphrase(Zeroizing<String>),
    /// A key file holding at least 32 random bytes (e.g. on a USB key kept in a safe).
    KeyFile(PathBuf),
}

impl std::fmt::Debug for Unlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unlock::Passphrase(_) => f.write_str("Unlock::Passphrase(<redacted>)"),
            Unlock::KeyFile(p) => write!(f, "Unlock::KeyFile({})", p.display()),
        }
    }
}

impl Unlock {
    /// Passphrase from a string.
    pub fn passphrase(p: impl Into<String>) -> Self {
        Unlock::Passphrase(Zeroizing::new(p.into()))
    }
}

/// A master key in memory (wiped on drop, redacted in `Debug`).
pub struct MasterKey(pub(crate) Zeroizing<[u8; MASTER_KEY_LEN]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A fresh random master key.
    pub fn generate() -> Result<Self> {
        let mut k = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        prims::fill_random(&mut k[..])?;
        Ok(Self(k))
    }

    /// From raw bytes (restore from backup shares).
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        let mut k = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        if b.len() != MASTER_KEY_LEN {
            return Err(Error::InvalidInput("master key must be 32 bytes".into()));
        }
        k.copy_from_slice(b);
        Ok(Self(k))
    }

    /// Raw bytes; only for backup splitting.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0[..]
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SealedFile {
    format: String,
    version: u32,
    kdf: String,
    iterations: u32,
    salt: String,
    nonce: String,
    sealed: String,
}

/// Facts about a sealed file (no secrets), for `keys status`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SealedInfo {
    /// `pbkdf2-hmac-sm3` or `keyfile-hmac-sm3`.
    pub kdf: String,
    /// PBKDF2 iterations (0 for key files).
    pub iterations: u32,
    /// The file path.
    pub path: String,
}

fn aad(kdf: &str, iterations: u32, salt_hex: &str) -> Vec<u8> {
    format!("yiqian-mk-v1|{kdf}|{iterations}|{salt_hex}").into_bytes()
}

fn derive(unlock: &Unlock, kdf: &str, iterations: u32, salt: &[u8]) -> Result<Zeroizing<[u8; 16]>> {
    let mut out = Zeroizing::new([0u8; 16]);
    match (unlock, kdf) {
        (Unlock::Passphrase(p), KDF_PBKDF2) => {
            if iterations == 0 {
                return Err(Error::Integrity(
                    "sealed master key: zero PBKDF2 iterations",
                ));
            }
            prims::pbkdf2_sm3(p.as_bytes(), salt, iterations, &mut out[..]);
        }
        (Unlock::KeyFile(path), KDF_KEYFILE) => {
            let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| Error::io(path, e))?);
            if bytes.len() < MIN_KEY_FILE_LEN {
                return Err(Error::InvalidInput(format!(
                    "key file {} holds {} bytes, at least {MIN_KEY_FILE_LEN} needed",
                    path.display(),
                    bytes.len()
                )));
            }
            let mut k = prims::hmac_sm3(&bytes, &[b"yiqian-mk-keyfile-v1", salt]);
            out.copy_from_slice(&k[..16]);
            prims::wipe(&mut k);
        }
        (Unlock::Passphrase(_), _) => {
            return Err(Error::InvalidInput(
                "the master key is sealed with a key file, not a passphrase".into(),
            ));
        }
        (Unlock::KeyFile(_), _) => {
            return Err(Error::InvalidInput(
                "the master key is sealed with a passphrase, not a key file".into(),
            ));
        }
    }
    Ok(out)
}

/// Seal `mk` into a new JSON document.
fn seal_bytes(unlock: &Unlock, iterations: u32, mk: &MasterKey) -> Result<Vec<u8>> {
    let (kdf, iters) = match unlock {
        Unlock::Passphrase(p) => {
            if p.chars().count() < 12 {
                return Err(Error::InvalidInput(
                    "passphrase must have at least 12 characters".into(),
                ));
            }
            if iterations < 1000 {
                return Err(Error::InvalidInput(
                    "PBKDF2 iterations must be at least 1000".into(),
                ));
            }
            (KDF_PBKDF2, iterations)
        }
        Unlock::KeyFile(_) => (KDF_KEYFILE, 0),
    };
    let salt = prims::random_vec(16)?;
    let nonce = prims::random_vec(prims::GCM_NONCE_LEN)?;
    let salt_hex = hex::encode(&salt);
    let key = derive(unlock, kdf, iters, &salt)?;
    let ct = prims::sm4_gcm_encrypt(&key[..], &nonce, &aad(kdf, iters, &salt_hex), mk.bytes())?;
    let file = SealedFile {
        format: FORMAT.into(),
        version: 1,
        kdf: kdf.into(),
        iterations: iters,
        salt: salt_hex,
        nonce: hex::encode(nonce),
        sealed: hex::encode(ct),
    };
    serde_json::to_vec_pretty(&file).map_err(|_| Error::Internal("JSON encoding failed"))
}

fn parse(bytes: &[u8]) -> Result<SealedFile> {
    let f: SealedFile = serde_json::from_slice(bytes)
        .map_err(|_| Error::Integrity("sealed master key file is not valid JSON"))?;
    if f.format != FORMAT || f.version != 1 {
        return Err(Error::Integrity(
            "sealed master key file: unknown format or version",
        ));
    }
    Ok(f)
}

/// Create a new sealed master key file; refuses to overwrite an existing one.
pub fn create(path: &Path, unlock: &Unlock, iterations: u32, mk: &MasterKey) -> Result<()> {
    if path.exists() {
        return Err(Error::AlreadyInitialised(path.display().to_string()));
    }
    let doc = seal_bytes(unlock, iterations, mk)?;
    atomic_write(path, &doc)
}

/// Replace the seal (new passphrase / key file / iterations) of an existing file atomically.
pub fn reseal(path: &Path, unlock: &Unlock, iterations: u32, mk: &MasterKey) -> Result<()> {
    let doc = seal_bytes(unlock, iterations, mk)?;
    atomic_write(path, &doc)
}

/// Open the sealed master key file.
pub fn open(path: &Path, unlock: &Unlock) -> Result<MasterKey> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotInitialised(path.display().to_string()));
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let f = parse(&bytes)?;
    let salt = hex::decode(&f.salt).map_err(|_| Error::Integrity("sealed master key: bad salt"))?;
    let nonce =
        hex::decode(&f.nonce).map_err(|_| Error::Integrity("sealed master key: bad nonce"))?;
    let ct = hex::decode(&f.sealed)
        .map_err(|_| Error::Integrity("sealed master key: bad ciphertext"))?;
    let key = derive(unlock, &f.kdf, f.iterations, &salt)?;
    let pt = prims::sm4_gcm_decrypt(&key[..], &nonce, &aad(&f.kdf, f.iterations, &f.salt), &ct)
        .map_err(|_| Error::WrongPassphrase)?;
    MasterKey::from_bytes(&pt)
        .map_err(|_| Error::Integrity("sealed master key has the wrong length"))
}

/// Non-secret facts about a sealed file.
pub fn info(path: &Path) -> Result<SealedInfo> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let f = parse(&bytes)?;
    Ok(SealedInfo {
        kdf: f.kdf,
        iterations: f.iterations,
        path: path.display().to_string(),
    })
}

/// Write a file atomically: temp file in the same directory, fsync, rename, fsync directory.
/// Unix permissions 0600.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "sealed".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{name}.tmp-{}",
        hex::encode(prims::random_vec(6)?)
    ));
    let res = (|| -> std::io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            d.sync_all()?;
        }
        Ok(())
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}
