//! First-start initialisation: the data directory, the database schema and the first
//! administrator, whose one-time password is returned exactly once for the operator to see.
//! (Crypto-device keys and the CA hierarchy join this step with issues 4 and 5.)

use zeroize::Zeroizing;

use crate::audit::{AuditLog, Event};
use crate::auth::password;
use crate::clock::now_ms;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::{Db, sqlite_path};

/// What initialisation created.
#[derive(Debug)]
pub struct Initialised {
    /// Login name of the first administrator.
    pub admin_username: String,
    /// Its one-time password (must be changed at first login). Zeroized on drop.
    pub admin_password: Zeroizing<String>,
}

/// Creates the data directory (mode 0700) and, for SQLite, the database file's directory.
pub fn prepare_data_dir(config: &Config) -> Result<()> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| Error::io(&config.data_dir, e))?;
    restrict(&config.data_dir)?;
    if let Some(parent) = sqlite_path(&config.database_url)
        .as_deref()
        .and_then(std::path::Path::parent)
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    Ok(())
}

#[cfg(unix)]
fn restrict(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io(dir, e))
}

#[cfg(not(unix))]
fn restrict(_dir: &std::path::Path) -> Result<()> {
    Ok(())
}

/// Initialises an empty installation. Fails with [`Error::AlreadyInitialised`] if an
/// administrator already exists, so it never overwrites anything.
pub async fn initialise(
    db: &Db,
    audit: &AuditLog,
    config: &Config,
    admin_username: &str,
) -> Result<Initialised> {
    if db.count_accounts().await? > 0 {
        return Err(Error::AlreadyInitialised(format!(
            "the database behind {} already has administrators",
            config.data_dir.display()
        )));
    }
    let admin_password = password::generate();
    let verifier = password::hash(&admin_password, config.security.password_iterations);
    let now = now_ms();
    db.create_account(admin_username, "sysadmin", &verifier, now)
        .await?;
    audit
        .append(
            db,
            now,
            &Event {
                actor: "system",
                action: "system.init",
                target: admin_username,
                outcome: "ok",
                detail: serde_json::json!({ "version": env!("CARGO_PKG_VERSION"), "database": db.kind().name() }),
                request_id: "",
            },
        )
        .await?;
    Ok(Initialised {
        admin_username: admin_username.to_owned(),
        admin_password,
    })
}
