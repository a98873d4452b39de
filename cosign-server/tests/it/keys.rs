//! The crypto device in the server: opened (or created) with the CA hierarchy inside it, reopened,
//! KEK rotation under live PKI keys, wrong unlock secrets refused and audited — on both backends —
//! and the `cosign-server keys ...` commands through the real binary.

use std::process::Command;
use std::sync::Arc;

use cosign_server::audit::AuditLog;
use cosign_server::keys::Keys;
use cosign_server::pki::Pki;
use cosign_server::store::Db;

use crate::both_backends;
use crate::support::{Backend, TestData};

async fn device_and_hierarchy_survive_reopen_and_rotation(backend: Backend) {
    let data = TestData::new(backend).await;
    let config = data.config();
    cosign_server::init::prepare_data_dir(&config).unwrap();
    let db = Db::open(&config.database_url).await.unwrap();
    let audit = Arc::new(AuditLog::new());

    let keys = Keys::open_or_init(&config, &db, audit.clone(), "test")
        .await
        .unwrap();
    assert!(config.data_dir.join("master-key.sealed").exists());
    assert!(config.keys.key_file.exists(), "embedded default: key file");
    let pki = Pki::load_or_create(&config, &db, keys.device(), &audit, "test")
        .await
        .unwrap();
    let serials: Vec<String> = pki.authorities().map(|a| a.cert.serial_hex()).collect();
    assert_eq!(serials.len(), 8);
    let kinds: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, state FROM crypto_keys ORDER BY kind")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(
        kinds
            .iter()
            .filter(|(k, s)| k == "sm2_sign" && s == "active")
            .count(),
        8,
        "every PKI key is a device key: {kinds:?}"
    );
    // Every authority key is in the device (its public key matches the certificate).
    for a in pki.authorities() {
        let pk = keys.device().public_key(a.signer.key_id()).await.unwrap();
        assert_eq!(*pk.as_inner(), a.cert.public_key().unwrap(), "{}", a.name);
    }
    drop(pki);
    drop(keys);

    // Reopen: same hierarchy, no new keys; rotate the KEK; the CA keys still sign (a CRL).
    let keys = Keys::open(&config, &db, audit.clone(), "test")
        .await
        .unwrap();
    let pki = Pki::load_or_create(&config, &db, keys.device(), &audit, "test")
        .await
        .unwrap();
    let again: Vec<String> = pki.authorities().map(|a| a.cert.serial_hex()).collect();
    assert_eq!(serials, again);
    let report = keys.soft().unwrap().rotate_kek().await.unwrap();
    // The 8 authority keys, the resident-ID HMAC secret and the audit MAC key.
    assert_eq!(report.rewrapped, 10);
    let crl = pki.crl(&db, "staff").await.unwrap().unwrap();
    let parsed = gm_pki::crl::ParsedCrl::from_der(&crl).unwrap();
    parsed
        .verify_signature(&pki.authority("staff").unwrap().cert.public_key().unwrap())
        .unwrap();
    assert_eq!(parsed.crl_number(), Some(1));
    assert!(
        pki.crl(&db, "tsa").await.unwrap().is_none(),
        "only CAs have CRLs"
    );

    // A wrong key file is refused, nothing changes, and the failure is audited.
    let mut wrong = config.clone();
    wrong.keys.key_file = data.dir.path().join("other.key");
    std::fs::write(&wrong.keys.key_file, [7u8; 32]).unwrap();
    let err = Keys::open(&wrong, &db, audit.clone(), "test")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("wrong passphrase"), "{err}");

    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY seq")
        .fetch_all(db.pool())
        .await
        .unwrap();
    for want in [
        "master.init",
        "key.generate",
        "pki.init",
        "kek.rotate",
        "master.unlock_failed",
    ] {
        assert!(
            actions.iter().any(|a| a == want),
            "{want} not in {actions:?}"
        );
    }
    AuditLog::verify(&db).await.unwrap();
    db.close().await;
}
both_backends!(device_and_hierarchy_survive_reopen_and_rotation);

const BIN: &str = env!("CARGO_BIN_EXE_cosign-server");

fn cli(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .current_dir(dir)
        .env_remove("COSIGN_DATA")
        .env_remove("COSIGN_LISTEN")
        .env_remove("COSIGN_DATABASE_URL")
        .env_remove("COSIGN_CONFIG")
        .env_remove("COSIGN_MASTER_PASSPHRASE")
        .env_remove("COSIGN_MASTER_KEY_FILE")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn keys_commands_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, out) = cli(d, &["init"]);
    assert!(ok, "{out}");
    assert!(out.contains("CA hierarchy created"), "{out}");
    for name in ["root", "staff", "patient", "seal", "tsa", "ocsp-staff"] {
        assert!(out.contains(name), "{name} missing:\n{out}");
    }

    let (ok, out) = cli(d, &["keys", "list"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("pki:root") && out.contains("sm2_sign"),
        "{out}"
    );
    // 8 authority keys + the resident-ID HMAC secret (pki:resident-id-key).
    assert_eq!(out.matches("pki:").count(), 9, "{out}");

    let (ok, out) = cli(d, &["keys", "status"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("keyfile-hmac-sm3") && out.contains("kek-000001") && out.contains("(current)"),
        "{out}"
    );
    assert!(out.contains("rotation_incomplete = false"), "{out}");

    let (ok, out) = cli(d, &["keys", "rotate-kek"]);
    assert!(
        ok && out.contains("kek-000002") && out.contains("re-wrapped 10"),
        "{out}"
    );

    let shares = d.join("shares");
    std::fs::create_dir(&shares).unwrap();
    let (ok, out) = cli(
        d,
        &[
            "keys",
            "backup",
            "--threshold",
            "2",
            "--custodian",
            "信息科",
            "--custodian",
            "保卫科",
            "--custodian",
            "医务处",
            "--out-dir",
            shares.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    let mut files: Vec<_> = std::fs::read_dir(&shares)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{out}");
    assert!(
        !out.contains("YQBK1"),
        "shares went to files, not stdout:\n{out}"
    );

    // Lose the sealed master key: the device no longer opens; two shares restore it.
    std::fs::rename(
        d.join("data/master-key.sealed"),
        d.join("master-key.sealed.lost"),
    )
    .unwrap();
    let (ok, out) = cli(d, &["keys", "status"]);
    assert!(!ok && out.contains("not initialised"), "{out}");
    let (ok, out) = cli(d, &["keys", "restore", files[0].to_str().unwrap()]);
    assert!(!ok, "one share of a 2-of-3 set must not restore:\n{out}");
    let (ok, out) = cli(
        d,
        &[
            "keys",
            "restore",
            files[0].to_str().unwrap(),
            files[2].to_str().unwrap(),
        ],
    );
    assert!(ok && out.contains("master key restored"), "{out}");
    let (ok, out) = cli(d, &["keys", "status"]);
    assert!(ok && out.contains("kek-000002"), "{out}");

    // Every operation is in the audit chain, which is intact.
    let (ok, out) = cli(d, &["audit", "verify"]);
    assert!(ok && out.contains("intact"), "{out}");
    let (ok, out) = cli(d, &["--help"]);
    assert!(
        ok && out.contains("keys") && out.contains("密钥管理"),
        "{out}"
    );
    let (ok, out) = cli(d, &["keys", "--help"]);
    assert!(
        ok && out.contains("rotate-kek") && out.contains("backup") && out.contains("restore"),
        "{out}"
    );
}
