//! `libsdf_soft.so`: a GM/T 0018 (SDF) compatible shared library over the crypto-device
//! software device. **Test support only**: it exists so the SDF adapter
//! (`crypto_device::sdf::SdfDevice`) can be exercised through real `dlopen` + C calls and
//! pass the same conformance suite as the software device. Never deploy it as a device.
//!
//! Configuration (environment, read at the first `SDF_OpenDevice`):
//! * `SDF_SOFT_DIR`: data directory (sealed master key + SQLite key store). Default: a fresh
//!   directory under the system temp dir, so every process starts with a new device.
//! * `SDF_SOFT_PASSPHRASE`: master key passphrase (default: a fixed test passphrase).
//! * `SDF_SOFT_SIGN_KEYS` (default 16) internal SM2 signing keys at indices 1..=N and
//!   `SDF_SOFT_KEKS` (default 4) internal KEKs at indices 1..=N, created on first open.
//!
//! Implemented entry points: `SDF_OpenDevice`, `SDF_CloseDevice`, `SDF_OpenSession`,
//! `SDF_CloseSession`, `SDF_GenerateRandom`, `SDF_GetPrivateKeyAccessRight`,
//! `SDF_ReleasePrivateKeyAccessRight`, `SDF_ExportSignPublicKey_ECC`, `SDF_InternalSign_ECC`,
//! `SDF_GenerateKeyWithKEK`, `SDF_ImportKeyWithKEK`, `SDF_DestroyKey`, `SDF_Encrypt`,
//! `SDF_Decrypt` (SM4 ECB/CBC), `SDF_HashInit`/`SDF_HashUpdate`/`SDF_HashFinal` (SM3, with Z
//! when a public key and ID are given).

mod ffi;
mod state;

pub use state::Config;
