//! The server's error type for everything that is not an HTTP response (CLI, start-up, store).
//! HTTP handlers use [`crate::api::ApiFailure`], which maps to the wire error exactly once.

use thiserror::Error;

/// What can go wrong outside a request.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration file or an environment variable is invalid.
    #[error("configuration error: {0}")]
    Config(String),
    /// A file or directory could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The data directory was already initialised.
    #[error("already initialised: {0}")]
    AlreadyInitialised(String),
    /// The audit log failed verification.
    #[error("audit log integrity failure at entry {seq}: {reason}")]
    AuditBroken {
        /// The first entry that does not verify.
        seq: i64,
        /// Why.
        reason: String,
    },
    /// The crypto device failed (wrong passphrase, key store, integrity check...).
    #[error("crypto device: {0}")]
    Device(#[from] crypto_device::Error),
    /// Building or parsing a PKI object failed.
    #[error("PKI: {0}")]
    Pki(#[from] gm_pki::Error),
    /// A command's check failed (e.g. `verify FILE` found no valid signature); the text says why.
    #[error("{0}")]
    CheckFailed(String),
    /// An invariant the code relies on did not hold.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

/// Result alias for the server.
pub type Result<T, E = Error> = std::result::Result<T, E>;
