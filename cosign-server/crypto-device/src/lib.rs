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
pub use device::{CryptoDevice, KeyId, KeyInfo, KeyKind, KeyState, SymMode, with_secret};
pub use error::{Error, Result};
pub use prims::{Sm2PublicKey, Sm2Signature};
