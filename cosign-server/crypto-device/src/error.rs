//! The crate's one error type.

/// Everything that can go wrong in the crypto device layer.
///
/// Messages never contain key material, passphrases or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The passphrase or key file did not open the sealed master key (the
    /// authentication tag did not verify). Nothing was changed on disk.
    #[error(
        "wrong passphrase or key file: the sealed master key did not open (nothing was changed)"
    )]
    WrongPassphrase,
    /// The sealed master key file does not exist: run the device initialisation first.
    #[error("the device is not initialised: sealed master key file {0} not found")]
    NotInitialised(String),
    /// Initialisation refused because a sealed master key already exists.
    #[error("the device is already initialised: {0} exists")]
    AlreadyInitialised(String),
    /// No key with this identifier exists in the device.
    #[error("key {0} does not exist")]
    KeyNotFound(String),
    /// The key was destroyed; its material is gone and it can never be used again.
    #[error("key {0} is destroyed")]
    KeyDestroyed(String),
    /// The key is suspended: resume it before use.
    #[error("key {0} is suspended")]
    KeySuspended(String),
    /// The key exists but is of the wrong kind for this operation (e.g. signing with an SM4 key).
    #[error("key {id} is a {actual} key, this operation needs {expected}")]
    WrongKeyKind {
        /// The key identifier.
        id: String,
        /// The kind the operation needs.
        expected: &'static str,
        /// The kind the key has.
        actual: &'static str,
    },
    /// Authenticated data (a key record, a wrapped key, a sealed file, a backup share,
    /// AEAD ciphertext) failed its integrity check.
    #[error("integrity check failed: {0}")]
    Integrity(&'static str),
    /// The caller passed malformed input (wrong length, bad encoding, out-of-range parameter).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The device does not support this operation or mode.
    #[error("not supported by this device: {0}")]
    NotSupported(&'static str),
    /// An SDF call returned an error code (GM/T 0018 `SDR_*`).
    #[error("SDF call {function} failed: {name} (0x{code:08X})")]
    Sdf {
        /// The SDF function that failed.
        function: &'static str,
        /// The raw return code.
        code: u32,
        /// The GM/T 0018 name of the code (`SDR_KEYNOTEXIST`, ...), or `SDR_UNKNOWN_CODE`.
        name: &'static str,
    },
    /// The vendor library could not be loaded or lacks a required symbol.
    #[error("cannot load SDF library: {0}")]
    Library(String),
    /// Not enough backup shares, or shares from different backups.
    #[error("backup restore failed: {0}")]
    Restore(String),
    /// The key store (database) failed.
    #[error("key store error: {0}")]
    Storage(String),
    /// The audit sink refused an event; the operation it describes may have completed.
    #[error("audit sink error: {0}")]
    Audit(String),
    /// A file system operation failed (sealed master key file).
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The operating system random generator failed.
    #[error("random generator failure")]
    Random,
    /// A state the code believes impossible; a bug, never caused by input values.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
