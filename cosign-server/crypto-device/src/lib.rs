//! Yiqian 医签 crypto device layer (issue 5).
//!
//! * [`CryptoDevice`]: a GM/T 0018 (SDF)-shaped interface: random, SM2 key pairs generated
//!   and used inside the device, SM3, SM4 (ECB/CBC/GCM), wrapped export/import, opaque
//!   wrapped secrets (the co-signing share d2), key states and destruction.
//! * [`soft::SoftDevice`]: the default software device: master key sealed on disk
//!   (PBKDF2-HMAC-SM3 passphrase or key file, SM4-GCM), master key → KEK → data keys,
//!   records authenticated with HMAC-SM3, KEK rotation that survives a crash at any write.
//! * [`sdf::SdfDevice`]: adapter over a vendor `libsdf.so` loaded at run time.
//! * [`store`]: the [`store::KeyStore`] trait with in-memory and sqlx (SQLite/PostgreSQL) stores.
//! * [`shamir`]: M-of-N master-key backup shares with integrity checks.
//! * [`conformance`]: the one test suite run against every device.
//!
//! Key-management policy: `docs/crypto/key-management.md`.
//!
//! # Wiring it into the server
//!
//! ```no_run
//! # async fn demo(pool: sqlx::AnyPool, audit: std::sync::Arc<dyn crypto_device::AuditSink>) -> crypto_device::Result<()> {
//! use std::sync::Arc;
//! use crypto_device::{CryptoDevice, sealed::Unlock, soft::{SoftDevice, SoftDeviceConfig}, store::SqlKeyStore};
//! use zeroize::Zeroizing;
//! // `pool` was created after `sqlx::any::install_default_drivers()`, and the server's
//! // migrator has run `migrations/<backend>/0002_crypto_device.sql` (table `crypto_keys`).
//! let store = Arc::new(SqlKeyStore::new(pool));
//! let cfg = SoftDeviceConfig::in_data_dir(
//!     std::path::Path::new("data"),
//!     Unlock::passphrase("operator passphrase from a prompt"), // or Unlock::KeyFile(path)
//!     store,
//!     audit,
//! );
//! let dev = SoftDevice::open_or_init(cfg).await?; // `keys init` = SoftDevice::init, `serve` = SoftDevice::open
//! // Co-signing share d2: stored wrapped, used only inside a closure.
//! let d2_id = dev.import_secret("d2:doctor-42", Zeroizing::new(vec![0u8; 32])).await?;
//! let partial = crypto_device::with_secret(&dev, &d2_id, |d2| Ok(d2.len())).await?;
//! # let _ = partial; Ok(()) }
//! ```

pub mod audit;
pub mod conformance;
pub mod device;
pub mod error;
pub mod prims;
pub mod sdf;
pub mod sealed;
pub mod shamir;
pub mod soft;
pub mod store;

pub use audit::{AuditEvent, AuditSink, MemoryAuditSink};
pub use device::{
    CryptoDevice, KeyId, KeyInfo, KeyKind, KeyState, SigningHandle, SymMode, with_secret,
};
pub use error::{Error, Result};
pub use prims::{Sm2PublicKey, Sm2Signature};
