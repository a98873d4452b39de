//! Rollover of the TSA and OCSP responder certificates: a new device key certified by the same
//! parent, switched in one transaction, loaded on the next start; tokens from the new TSA carry
//! the new certificate, which OpenSSL verifies against the root. CAs are refused.

use std::process::Command;
use std::sync::Arc;

use cosign_server::audit::AuditLog;
use cosign_server::config::Config;
use cosign_server::keys::Keys;
use cosign_server::pki::{Actor, Pki, PkiError};
use cosign_server::store::Db;

use crate::both_backends;
use crate::support::{Backend, TestData};
use crate::tools::openssl;

async fn open_pki(config: &Config, db: &Db) -> (Keys, Pki) {
    let audit = Arc::new(AuditLog::new());
    let keys = Keys::open_or_init(config, db, audit.clone(), "test")
        .await
        .unwrap();
    let pki = Pki::load_or_create(config, db, keys.device(), &audit, "test")
        .await
        .unwrap();
    (keys, pki)
}

/// Keys in the device that are not destroyed.
async fn key_count(keys: &Keys) -> usize {
    keys.device()
        .list_keys()
        .await
        .unwrap()
        .iter()
        .filter(|k| k.state != crypto_device::KeyState::Destroyed)
        .count()
}

async fn tsa_and_ocsp_certificates_roll_over(backend: Backend) {
    let data = TestData::new(backend).await;
    let config = data.config();
    cosign_server::init::prepare_data_dir(&config).unwrap();
    let db = Db::open(&config.database_url).await.unwrap();
    let (keys, pki) = open_pki(&config, &db).await;
    let old_tsa = pki.authority("tsa").unwrap().cert.clone();
    let old_ocsp = pki.authority("ocsp-staff").unwrap().cert.clone();
    let certs_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pki_certificates")
        .fetch_one(db.pool())
        .await
        .unwrap();

    for (name, refused) in [
        ("root", "NotRenewable"),
        ("staff", "NotRenewable"),
        ("nope", "NotFound"),
    ] {
        let e = pki.rollover(&db, name, &Actor::CLI).await.unwrap_err();
        assert!(format!("{e:?}").starts_with(refused), "{name}: {e:?}");
    }

    let done = pki.rollover(&db, "tsa", &Actor::CLI).await.unwrap();
    assert_eq!(done.old_serial, old_tsa.serial_hex());
    assert_ne!(done.new_serial, done.old_serial);
    let keys_after_first = key_count(&keys).await;
    // The same (now stale) instance again: another instance "won"; nothing is written and the
    // key it generated is destroyed.
    let e = pki.rollover(&db, "tsa", &Actor::CLI).await.unwrap_err();
    assert!(matches!(e, PkiError::Invalid(_)), "{e:?}");
    assert_eq!(key_count(&keys).await, keys_after_first);
    pki.rollover(&db, "ocsp-staff", &Actor::CLI).await.unwrap();
    let certs_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pki_certificates")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(certs_after, certs_before + 2);
    // The old certificates stay recorded.
    assert!(
        db.certificate_by_serial(&old_tsa.serial_hex())
            .await
            .unwrap()
            .is_some()
    );

    // The next start loads the new TSA and responder.
    let (_keys, pki) = open_pki(&config, &db).await;
    let tsa = pki.authority("tsa").unwrap();
    assert_eq!(tsa.cert.serial_hex(), done.new_serial);
    assert_ne!(
        tsa.cert.public_key().unwrap(),
        old_tsa.public_key().unwrap()
    );
    assert_eq!(tsa.cert.subject(), old_tsa.subject());
    let ocsp = pki.authority("ocsp-staff").unwrap();
    assert_ne!(ocsp.cert.serial_hex(), old_ocsp.serial_hex());
    assert_eq!(
        ocsp.cert.ext_key_usage().unwrap(),
        old_ocsp.ext_key_usage().unwrap()
    );
    // A token from the new TSA carries and is signed by the new certificate.
    let req = gm_pki::tsp::build_request(
        gm_pki::cms::HashAlg::Sm3,
        &[7u8; 32],
        None,
        Some(&[1, 2, 3]),
        true,
    )
    .unwrap();
    let resp = gm_pki::tsp::parse_response(&pki.timestamp(req).await).unwrap();
    let token = resp.token.expect("granted");
    let view = gm_pki::tsp::verify_token(&token, None).unwrap();
    assert_eq!(
        view.tsa_cert.unwrap().serial_hex(),
        done.new_serial,
        "token signed by the new TSA certificate"
    );
    // OpenSSL: new TSA and responder certificates chain to the root and the staff CA.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (file, cert) in [
        ("root.pem", &pki.authority("root").unwrap().cert),
        ("staff.pem", &pki.authority("staff").unwrap().cert),
        ("tsa.pem", &tsa.cert),
        ("ocsp.pem", &ocsp.cert),
    ] {
        std::fs::write(d.join(file), cert.to_pem()).unwrap();
    }
    for (anchor, cert) in [("root.pem", "tsa.pem"), ("staff.pem", "ocsp.pem")] {
        let out = openssl(
            d,
            &[
                "verify",
                "-vfyopt",
                "distid:1234567812345678",
                "-partial_chain",
                "-purpose",
                "any",
                "-CAfile",
                anchor,
                cert,
            ],
        );
        assert!(out.contains(&format!("{cert}: OK")), "{out}");
    }
    let (serials, actors): (Vec<String>, Vec<String>) = sqlx::query_as::<_, (String, String)>(
        "SELECT target, actor FROM audit_log WHERE action = 'pki.rollover' ORDER BY seq",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    .into_iter()
    .unzip();
    assert_eq!(serials, ["tsa", "ocsp-staff"]);
    assert!(actors.iter().all(|a| a == "cli"));
    cosign_server::audit::AuditLog::verify(&db).await.unwrap();
    db.close().await;
}
both_backends!(tsa_and_ocsp_certificates_roll_over);

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
fn rollover_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, out) = cli(d, &["init"]);
    assert!(ok, "{out}");
    for _ in 0..2 {
        let (ok, out) = cli(d, &["pki", "rollover", "tsa"]);
        assert!(ok && out.contains("rolled over"), "{out}");
    }
    let (ok, out) = cli(d, &["pki", "rollover", "root"]);
    assert!(!ok && out.contains("not rolled over"), "{out}");
    let (ok, out) = cli(d, &["audit", "verify"]);
    assert!(ok, "{out}");
}
