//! The crypto device (issue 5): opened at `serve` and `init`, audited through the server's
//! hash-chained log, and operated by `cosign-server keys ...`.
//!
//! The default is crypto-device's software device: a master key sealed in
//! `<data_dir>/master-key.sealed`, key records (wrapped) in the `crypto_keys` table. The master
//! key is unlocked by `COSIGN_MASTER_PASSPHRASE` when set (production), otherwise by a key file
//! (`keys.key_file`, default `<data_dir>/master.key`) created with 32 random bytes on first start
//! — the embedded default, only as safe as the data directory. See
//! `docs/crypto/key-management.md`.

pub mod cli;
mod sink;

use std::path::Path;
use std::sync::Arc;

use crypto_device::CryptoDevice;
use crypto_device::sdf::{SdfConfig, SdfDevice};
use crypto_device::sealed::Unlock;
use crypto_device::soft::{MASTER_KEY_FILE, SoftDevice, SoftDeviceConfig};
use crypto_device::store::SqlKeyStore;
use rand::RngCore;
use zeroize::Zeroizing;

pub use sink::ServerAuditSink;

use crate::audit::AuditLog;
use crate::config::{Config, DeviceKind};
use crate::error::{Error, Result};
use crate::store::Db;

/// Environment variable holding the master-key passphrase (production).
pub const PASSPHRASE_VAR: &str = "COSIGN_MASTER_PASSPHRASE";

/// Environment variable holding an SDF device's private-key access password, if it needs one.
pub const SDF_PASSWORD_VAR: &str = "COSIGN_SDF_KEY_PASSWORD";

/// The opened crypto device.
#[derive(Debug, Clone)]
pub struct Keys {
    device: Device,
}

#[derive(Debug, Clone)]
enum Device {
    Soft(Arc<SoftDevice>),
    Sdf(Arc<SdfDevice>),
}

/// Where the sealed master key lives.
pub fn master_key_path(config: &Config) -> std::path::PathBuf {
    config.data_dir.join(MASTER_KEY_FILE)
}

/// How the master key is unlocked: the passphrase from the environment if set, else the key
/// file, which is created (32 random bytes, mode 0600) only when `create_key_file` is true.
pub fn unlock(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    create_key_file: bool,
) -> Result<Unlock> {
    if let Some(p) = env(PASSPHRASE_VAR).filter(|p| !p.is_empty()) {
        let p = Zeroizing::new(p);
        if p.chars().count() < 12 {
            return Err(Error::Config(format!(
                "{PASSPHRASE_VAR} must have at least 12 characters"
            )));
        }
        return Ok(Unlock::Passphrase(p));
    }
    let path = &config.keys.key_file;
    if !path.exists() {
        if !create_key_file {
            return Err(Error::Config(format!(
                "master key file {} not found: set {PASSPHRASE_VAR} or keys.key_file to the unlock secret used when the device was created",
                path.display()
            )));
        }
        write_key_file(path)?;
        tracing::warn!(
            path = %path.display(),
            "created a master key file beside the data: fine for development; in production use {PASSPHRASE_VAR} or a key file on removable media"
        );
    }
    Ok(Unlock::KeyFile(path.clone()))
}

fn write_key_file(path: &Path) -> Result<()> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut bytes[..]);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| Error::io(path, e))?;
    std::io::Write::write_all(&mut file, &bytes[..]).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}

/// The device configuration for this server: SQL key store on the server's pool (record
/// reads on `Db::key_pool`), audit through the server's hash chain under `actor` (`system`
/// for serve, `cli` for commands).
pub fn device_config(
    config: &Config,
    db: &Db,
    audit: Arc<AuditLog>,
    actor: &str,
    unlock: Unlock,
) -> SoftDeviceConfig {
    let store = Arc::new(SqlKeyStore::new(db.pool().clone()).with_read_pool(db.key_pool().clone()));
    let sink = Arc::new(ServerAuditSink::new(db.clone(), audit, actor));
    let mut cfg = SoftDeviceConfig::in_data_dir(&config.data_dir, unlock, store, sink);
    cfg.iterations = config.keys.passphrase_iterations;
    cfg
}

impl Keys {
    /// Opens the device, creating it (master key, first KEK) on a fresh installation.
    pub async fn open_or_init(
        config: &Config,
        db: &Db,
        audit: Arc<AuditLog>,
        actor: &str,
    ) -> Result<Self> {
        let keys = if let DeviceKind::Sdf { .. } = &config.keys.device {
            Self::open_sdf(config, db, audit.clone(), actor)?
        } else {
            let fresh = !master_key_path(config).exists();
            let unlock = unlock(config, &|k| std::env::var(k).ok(), fresh)?;
            let cfg = device_config(config, db, audit.clone(), actor, unlock);
            let soft = SoftDevice::open_or_init(cfg).await?;
            Self {
                device: Device::Soft(Arc::new(soft)),
            }
        };
        audit.attach_mac_key(db, keys.device()).await?;
        Ok(keys)
    }

    /// Opens an existing device (the `keys` commands never create one).
    pub async fn open(config: &Config, db: &Db, audit: Arc<AuditLog>, actor: &str) -> Result<Self> {
        let keys = if let DeviceKind::Sdf { .. } = &config.keys.device {
            Self::open_sdf(config, db, audit.clone(), actor)?
        } else {
            let path = master_key_path(config);
            if !path.exists() {
                return Err(Error::Device(crypto_device::Error::NotInitialised(
                    path.display().to_string(),
                )));
            }
            let unlock = unlock(config, &|k| std::env::var(k).ok(), false)?;
            let soft =
                SoftDevice::open(device_config(config, db, audit.clone(), actor, unlock)).await?;
            Self {
                device: Device::Soft(Arc::new(soft)),
            }
        };
        // Every entry from here on carries an HMAC-SM3 under the audit key (crate::audit).
        audit.attach_mac_key(db, keys.device()).await?;
        Ok(keys)
    }

    /// Opens a GM/T 0018 device through its vendor library: keys are generated and used inside
    /// it; our store keeps only index allocations and KEK-wrapped records.
    fn open_sdf(config: &Config, db: &Db, audit: Arc<AuditLog>, actor: &str) -> Result<Self> {
        let DeviceKind::Sdf {
            library,
            sign_key_indices,
            kek_index,
        } = &config.keys.device
        else {
            return Err(Error::Internal("open_sdf without an SDF configuration"));
        };
        let key_password = std::env::var(SDF_PASSWORD_VAR)
            .ok()
            .filter(|p| !p.is_empty())
            .map(Zeroizing::new);
        let sdf = SdfDevice::open(SdfConfig {
            library: library.clone(),
            sign_key_indices: sign_key_indices.clone(),
            kek_index: *kek_index,
            key_password,
            store: Arc::new(
                SqlKeyStore::new(db.pool().clone()).with_read_pool(db.key_pool().clone()),
            ),
            audit: Arc::new(ServerAuditSink::new(db.clone(), audit, actor)),
            clock: crypto_device::soft::system_clock(),
        })?;
        Ok(Self {
            device: Device::Sdf(Arc::new(sdf)),
        })
    }

    /// The device as the trait object the PKI services use.
    pub fn device(&self) -> Arc<dyn CryptoDevice> {
        match &self.device {
            Device::Soft(d) => d.clone(),
            Device::Sdf(d) => d.clone(),
        }
    }

    /// `soft` or `sdf`, for logs and status.
    pub fn kind(&self) -> &'static str {
        match &self.device {
            Device::Soft(_) => "soft",
            Device::Sdf(_) => "sdf",
        }
    }

    /// The software device's management operations (`keys list|status|rotate-kek|backup`).
    /// An SDF device manages its own keys and backups with the vendor's tools.
    pub fn soft(&self) -> Result<&SoftDevice> {
        match &self.device {
            Device::Soft(d) => Ok(d),
            Device::Sdf(_) => Err(Error::Config(
                "keys 子命令管理软件密码设备；SDF 密码机的密钥与备份请使用厂商管理工具 / the keys commands manage the software device; use the vendor's tools for an SDF device".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrase_wins_and_short_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::for_test(dir.path(), None);
        let long = |k: &str| (k == PASSPHRASE_VAR).then(|| "correct horse battery".to_owned());
        assert!(matches!(
            unlock(&config, &long, true).unwrap(),
            Unlock::Passphrase(_)
        ));
        assert!(
            !config.keys.key_file.exists(),
            "no key file with a passphrase"
        );
        let short = |k: &str| (k == PASSPHRASE_VAR).then(|| "short".to_owned());
        assert!(unlock(&config, &short, true).is_err());
        // Without a passphrase: refused unless creating, then a 32-byte 0600 file.
        assert!(unlock(&config, &|_| None, false).is_err());
        assert!(matches!(
            unlock(&config, &|_| None, true).unwrap(),
            Unlock::KeyFile(_)
        ));
        let meta = std::fs::metadata(&config.keys.key_file).unwrap();
        assert_eq!(meta.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
    }
}
