//! What the phone stores between runs. The share is sealed under the PIN and the server's
//! OPRF key; the device key signs API calls. The CLI and the desktop app keep it as a 0600 JSON
//! file ([`PhoneState::save`]); on Android and iOS the app wraps the same JSON bytes
//! ([`PhoneState::to_json`]) under a hardware-backed key before writing them
//! ([`write_private_atomic`]).

use serde::{Deserialize, Serialize};
use sm2_cosign::seal::SealedShare;
use zeroize::Zeroizing;

use crate::{PhoneError, Result};

/// The phone's persistent state.
#[derive(Clone, Serialize, Deserialize)]
pub struct PhoneState {
    /// Server base URL.
    pub server: String,
    /// Staff number.
    pub staff_id: String,
    /// Device id.
    pub device_id: String,
    /// Device SM2 secret key (32 bytes hex).
    pub device_key: String,
    /// The sealed share `d1`.
    pub sealed_share: SealedShare,
    /// Signing certificate, DER base64.
    pub certificate: String,
    /// Certificate serial.
    pub serial: String,
}

impl std::fmt::Debug for PhoneState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneState")
            .field("server", &self.server)
            .field("staff_id", &self.staff_id)
            .field("device_id", &self.device_id)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

impl PhoneState {
    /// The OPRF context binding the PIN to this enrolment.
    pub fn pin_context(staff_id: &str, device_id: &str) -> Vec<u8> {
        format!("yiqian/pin/v1|{staff_id}|{device_id}").into_bytes()
    }

    /// Reads the state file.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let bytes = Zeroizing::new(
            std::fs::read(path)
                .map_err(|e| PhoneError::State(format!("{}: {e}", path.display())))?,
        );
        Self::from_json(&bytes)
    }

    /// Writes the state file (owner-only permissions, replaced atomically).
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        write_private_atomic(path, &self.to_json()?)
    }

    /// The state as the JSON [`save`](Self::save) writes.
    pub fn to_json(&self) -> Result<Zeroizing<Vec<u8>>> {
        serde_json::to_vec_pretty(self)
            .map(Zeroizing::new)
            .map_err(|e| PhoneError::State(e.to_string()))
    }

    /// Reads the state from the JSON [`to_json`](Self::to_json) gives.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| PhoneError::State(e.to_string()))
    }
}

/// Writes `bytes` to `path` with owner-only permissions, replacing it atomically (through
/// `path` with the extension `tmp`).
pub fn write_private_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    write_private(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| PhoneError::State(format!("{}: {e}", path.display())))
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state with a well-formed (meaningless) sealed share.
    fn sample() -> PhoneState {
        let h = |n: usize| "ab".repeat(n);
        serde_json::from_value(serde_json::json!({
            "server": "http://127.0.0.1:1", "staff_id": "D1", "device_id": "dev_1",
            "device_key": h(32), "certificate": "", "serial": "01",
            "sealed_share": { "version": 1, "salt": h(32), "public": h(199), "ciphertext": h(32), "tag": h(32) },
        }))
        .unwrap()
    }

    #[test]
    fn json_bytes_and_file_round_trip() {
        let state = sample();
        let json = state.to_json().unwrap();
        let back = PhoneState::from_json(&json).unwrap();
        assert_eq!(back.sealed_share, state.sealed_share);
        assert_eq!(back.device_key, state.device_key);
        assert!(PhoneState::from_json(b"\x00not json").is_err());

        let path = std::env::temp_dir().join(format!("yiqian-state-{}.json", std::process::id()));
        state.save(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), *json);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(PhoneState::load(&path).unwrap().staff_id, "D1");
        std::fs::remove_file(&path).unwrap();
    }
}
