//! `cosign-server keys list|status|rotate-kek|backup|restore`. Each operation is audited by the
//! device through the server's hash chain (actor `cli`); no output contains key material except
//! the backup shares, which go to stdout or to 0600 files as the operator chose.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crypto_device::soft::restore_master_key;
use crypto_device::store::SqlKeyStore;
use zeroize::Zeroizing;

use super::{Keys, ServerAuditSink, master_key_path, unlock};
use crate::audit::AuditLog;
use crate::error::{Error, Result};
use crate::store::Db;

/// Largest share file read by `keys restore`.
const MAX_SHARE_FILE: u64 = 64 * 1024;

/// What `cosign-server keys` was asked to do.
#[derive(Debug)]
pub enum KeysAction {
    /// `keys list`
    List {
        /// `--data`
        data_dir: Option<PathBuf>,
    },
    /// `keys status`
    Status {
        /// `--data`
        data_dir: Option<PathBuf>,
    },
    /// `keys rotate-kek`
    RotateKek {
        /// `--data`
        data_dir: Option<PathBuf>,
    },
    /// `keys backup --threshold M --custodian NAME...`
    Backup {
        /// `--data`
        data_dir: Option<PathBuf>,
        /// M
        threshold: u8,
        /// One share per custodian.
        custodians: Vec<String>,
        /// Write shares to files here instead of stdout.
        out_dir: Option<PathBuf>,
    },
    /// `keys restore SHARE_FILES...`
    Restore {
        /// `--data`
        data_dir: Option<PathBuf>,
        /// Share files.
        share_files: Vec<PathBuf>,
    },
}

fn data_dir(a: &KeysAction) -> Option<PathBuf> {
    match a {
        KeysAction::List { data_dir }
        | KeysAction::Status { data_dir }
        | KeysAction::RotateKek { data_dir }
        | KeysAction::Backup { data_dir, .. }
        | KeysAction::Restore { data_dir, .. } => data_dir.clone(),
    }
}

/// Runs one `keys` subcommand.
pub async fn run(config_path: &Path, action: KeysAction) -> Result<()> {
    let config = crate::cli::load_config(config_path, data_dir(&action))?;
    crate::init::prepare_data_dir(&config)?;
    let db = Db::open(&config.database_url).await?;
    let audit = Arc::new(AuditLog::new());
    let result = match action {
        KeysAction::Restore { share_files, .. } => {
            restore(&config, &db, &audit, &share_files).await
        }
        other => {
            let keys = Keys::open(&config, &db, audit, "cli").await;
            match keys {
                Ok(keys) => operate(&keys, other).await,
                Err(e) => Err(e),
            }
        }
    };
    db.close().await;
    result
}

async fn operate(keys: &Keys, action: KeysAction) -> Result<()> {
    let dev = keys.soft()?;
    match action {
        KeysAction::List { .. } => {
            let list = dev.keys_list().await?;
            println!("密钥 keys: {}", list.len());
            println!(
                "{:<26} {:<10} {:<10} {:<12} {:<20} label",
                "id", "kind", "state", "wrapped_by", "created"
            );
            for k in list {
                println!(
                    "{:<26} {:<10} {:<10} {:<12} {:<20} {}",
                    k.id.as_str(),
                    k.kind.as_str(),
                    k.state.as_str(),
                    k.wrapped_by,
                    crate::clock::rfc3339(k.created_at.saturating_mul(1000)),
                    k.label
                );
            }
        }
        KeysAction::Status { .. } => {
            let s = dev.keys_status().await?;
            println!("主密钥 master key: {}", s.master_key.path);
            println!(
                "  解封方式 unlock: {} ({} iterations)",
                s.master_key.kdf, s.master_key.iterations
            );
            println!("KEK:");
            for k in &s.keks {
                println!(
                    "  {} {} wraps {} keys{}",
                    k.id,
                    k.state.as_str(),
                    k.wraps,
                    if k.current { " (current)" } else { "" }
                );
            }
            println!("密钥统计 key counts:");
            for (kind, state, n) in &s.counts {
                println!("  {kind:<10} {state:<10} {n}");
            }
            println!("rotation_incomplete = {}", s.rotation_incomplete);
        }
        KeysAction::RotateKek { .. } => {
            let r = dev.rotate_kek().await?;
            println!(
                "KEK 已轮换 / KEK rotated: new {}, re-wrapped {} keys, destroyed {:?}",
                r.new_kek, r.rewrapped, r.destroyed_keks
            );
        }
        KeysAction::Backup {
            threshold,
            custodians,
            out_dir,
            ..
        } => {
            let report = dev.backup_master_key(threshold, &custodians).await?;
            println!(
                "备份集 backup set {}: 任意 {} 份可恢复 / any {} of {} shares restore the master key",
                report.set_id,
                report.threshold,
                report.threshold,
                report.shares.len()
            );
            for (i, (custodian, share)) in report.shares.iter().enumerate() {
                let share = Zeroizing::new(share.clone());
                match &out_dir {
                    Some(dir) => {
                        let path = dir.join(format!("{}-{}.share", report.set_id, i + 1));
                        write_private(&path, share.as_bytes())?;
                        println!("  保管人 custodian {custodian}: {}", path.display());
                    }
                    None => println!("  保管人 custodian {custodian}: {}", share.as_str()),
                }
            }
            println!(
                "请分别交付各保管人并销毁屏幕与临时副本 / hand each share to its custodian; keep no other copy."
            );
        }
        KeysAction::Restore { .. } => {
            return Err(Error::Internal("restore does not open the device"));
        }
    }
    Ok(())
}

async fn restore(
    config: &crate::config::Config,
    db: &Db,
    audit: &Arc<AuditLog>,
    files: &[PathBuf],
) -> Result<()> {
    let mut shares = Vec::new();
    for f in files {
        let meta = std::fs::metadata(f).map_err(|e| Error::io(f, e))?;
        if meta.len() > MAX_SHARE_FILE {
            return Err(Error::Config(format!(
                "{} is not a share file (too large)",
                f.display()
            )));
        }
        let text = Zeroizing::new(std::fs::read_to_string(f).map_err(|e| Error::io(f, e))?);
        shares.push(text.trim().to_owned());
    }
    let path = master_key_path(config);
    // A lost master key usually means a lost key file too: create a new one for the re-seal.
    let unlock = unlock(config, &|k| std::env::var(k).ok(), true)?;
    let store = SqlKeyStore::new(db.pool().clone());
    let sink = ServerAuditSink::new(db.clone(), audit.clone(), "cli");
    let report = restore_master_key(
        &shares,
        &path,
        &unlock,
        config.keys.passphrase_iterations,
        &store,
        &sink,
        crate::clock::now_ms() / 1000,
    )
    .await;
    shares.iter_mut().for_each(zeroize::Zeroize::zeroize);
    let report = report?;
    println!(
        "主密钥已恢复 / master key restored: set {}, custodians {}, {} KEKs verified, written to {}",
        report.set_id,
        report.custodians.join(", "),
        report.keks_verified,
        report.master_key_path
    );
    println!("请立即执行 keys rotate-kek / run `keys rotate-kek` now.");
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| Error::io(path, e))?;
    std::io::Write::write_all(&mut file, bytes).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}
