//! Optional encrypted keeping of the images judged (`liveness serve --store-images DIR
//! --store-key-file FILE`). Off by default: under the personal-information law an image is
//! kept only where the hospital decided to. Each image is written as `<sha256>.sm4` =
//! IV (12 bytes) ‖ SM4-GCM ciphertext and tag, the SHA-256 of the plain image as associated
//! data, so a file cannot be renamed to pass for another image.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit as _, Payload};
use rand::RngCore;
use sha2::Digest as _;
use zeroize::Zeroizing;

use crate::{Error, Result};

type Sm4Gcm = aes_gcm::AesGcm<sm4::Sm4, aes_gcm::aead::consts::U12>;

const IV_LEN: usize = 12;

/// Hex SHA-256 of an image: its name in answers and in the store.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// An encrypted image directory.
pub struct ImageStore {
    dir: PathBuf,
    key: Zeroizing<[u8; 16]>,
}

impl std::fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ImageStore {
    /// Opens (creating) `dir` with the SM4 key in `key_file`: 32 hex digits (16 bytes).
    pub fn open(dir: &Path, key_file: &Path) -> Result<Self> {
        let text =
            Zeroizing::new(std::fs::read_to_string(key_file).map_err(|e| {
                Error::Invalid(format!("store key file {}: {e}", key_file.display()))
            })?);
        let mut key = Zeroizing::new([0u8; 16]);
        hex::decode_to_slice(text.trim(), &mut key[..]).map_err(|_| {
            Error::Invalid(format!(
                "store key file {} must hold 32 hex digits (16 bytes)",
                key_file.display()
            ))
        })?;
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Invalid(format!("store directory {}: {e}", dir.display())))?;
        Ok(Self {
            dir: dir.to_owned(),
            key,
        })
    }

    fn cipher(&self) -> Result<Sm4Gcm> {
        Sm4Gcm::new_from_slice(&self.key[..]).map_err(|_| Error::Internal("SM4 key".into()))
    }

    /// Where an image with this SHA-256 is kept.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.sm4"))
    }

    /// Encrypts and writes an image; returns its SHA-256 (hex). An image already kept is not
    /// written again.
    pub fn put(&self, image: &[u8]) -> Result<String> {
        let name = sha256_hex(image);
        let path = self.path_of(&name);
        if path.is_file() {
            return Ok(name);
        }
        let mut iv = [0u8; IV_LEN];
        rand::rngs::OsRng.fill_bytes(&mut iv);
        let ct = self
            .cipher()?
            .encrypt(
                (&iv).into(),
                Payload {
                    msg: image,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| Error::Internal("SM4-GCM encryption failed".into()))?;
        let mut out = iv.to_vec();
        out.extend_from_slice(&ct);
        // Written aside then renamed: a reader never sees half a file.
        let tmp = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, &out)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| Error::Internal(format!("store write {}: {e}", path.display())))?;
        Ok(name)
    }

    /// Reads back and decrypts an image (for audits and tests).
    pub fn get(&self, sha256: &str) -> Result<Vec<u8>> {
        let raw = std::fs::read(self.path_of(sha256))
            .map_err(|e| Error::Invalid(format!("stored image {sha256}: {e}")))?;
        if raw.len() < IV_LEN {
            return Err(Error::Invalid(format!(
                "stored image {sha256} is truncated"
            )));
        }
        let (iv, ct) = raw.split_at(IV_LEN);
        let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| Error::Internal("IV".into()))?;
        self.cipher()?
            .decrypt(
                (&iv).into(),
                Payload {
                    msg: ct,
                    aad: sha256.as_bytes(),
                },
            )
            .map_err(|_| Error::Invalid(format!("stored image {sha256} does not decrypt")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_encrypted_and_bound_to_its_name() {
        let dir = tempfile::tempdir().expect("tmp");
        let keyf = dir.path().join("key");
        std::fs::write(&keyf, "00112233445566778899aabbccddeeff\n").expect("key");
        let store = ImageStore::open(&dir.path().join("img"), &keyf).expect("open");
        let img = b"\x89PNG\r\n\x1a\n not really a png but bytes";
        let name = store.put(img).expect("put");
        assert_eq!(name, sha256_hex(img));
        let on_disk = std::fs::read(store.path_of(&name)).expect("file");
        assert!(
            !on_disk.windows(8).any(|w| w == &img[..8]),
            "stored in clear"
        );
        assert_eq!(store.get(&name).expect("get"), img);
        // Renamed to another image's name: refused.
        let other = sha256_hex(b"other");
        std::fs::rename(store.path_of(&name), store.path_of(&other)).expect("mv");
        assert!(store.get(&other).is_err());
        std::fs::write(&keyf, "short").expect("key");
        assert!(ImageStore::open(dir.path(), &keyf).is_err());
    }
}
