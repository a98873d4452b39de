//! What the phone stores between runs. The share is sealed under the PIN and the server's
//! OPRF key; the device key signs API calls (the Tauri app keeps this file inside the
//! platform keystore's protection, the CLI in a 0600 file).

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
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| PhoneError::State(format!("{}: {e}", path.display())))?,
        );
        serde_json::from_str(&text).map_err(|e| PhoneError::State(e.to_string()))
    }

    /// Writes the state file (owner-only permissions, replaced atomically).
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let text = Zeroizing::new(
            serde_json::to_string_pretty(self).map_err(|e| PhoneError::State(e.to_string()))?,
        );
        let tmp = path.with_extension("tmp");
        write_private(&tmp, text.as_bytes())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| PhoneError::State(format!("{}: {e}", path.display())))
    }
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
