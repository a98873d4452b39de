//! Co-signatures checked by verifiers we did not write: the OpenSSL CLI and Python `gmssl`.
//! These tests FAIL (they do not skip) when `openssl`, Python or `gmssl` is missing: the
//! project's setup script installs them (`scripts/requirements-test.txt`); Python is
//! `$YIQIAN_PYTHON`, default `python3`.

use crate::common::*;
use proptest::prelude::*;
use sm2_cosign::plain;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn scratch_dir() -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sm2-cosign-it-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -digest sm3
///  -pkeyopt distid:1234567812345678 -in msg -sigfile sig.der`
fn openssl_verifies(pem: &str, msg: &[u8], sig_der: &[u8]) -> bool {
    let dir = scratch_dir();
    std::fs::write(dir.join("pub.pem"), pem).unwrap();
    std::fs::write(dir.join("msg"), msg).unwrap();
    std::fs::write(dir.join("sig.der"), sig_der).unwrap();
    let out = Command::new("openssl")
        .current_dir(&dir)
        .args([
            "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-digest", "sm3",
        ])
        .args([
            "-pkeyopt",
            "distid:1234567812345678",
            "-in",
            "msg",
            "-sigfile",
            "sig.der",
        ])
        .output()
        .expect("the openssl CLI is required for this test (apt-get install openssl)");
    std::fs::remove_dir_all(&dir).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ok = out.status.success() && stdout.contains("Signature Verified Successfully");
    // A failure must be a verification failure, not an OpenSSL usage error.
    if !ok {
        assert!(
            stdout.contains("Signature Verification Failure"),
            "openssl did not run as expected: {out:?}"
        );
    }
    ok
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Random key (fresh key generation) and random message: OpenSSL accepts the
    /// co-signature and rejects it for a modified message.
    #[test]
    fn openssl_accepts_cosignatures(msg in proptest::collection::vec(any::<u8>(), 1..2000)) {
        let (c, s) = keygen();
        let sig = cosign(&c, &s, &[&msg]).pop().unwrap();
        let pem = plain::public_key_to_pem(&c.public().public_key()).unwrap();
        let der = plain::signature_to_der(&sig);
        prop_assert!(openssl_verifies(&pem, &msg, &der));
        let mut bad = msg.clone();
        bad[0] ^= 0x80;
        prop_assert!(!openssl_verifies(&pem, &bad, &der));
    }
}

const GMSSL_SCRIPT: &str = r#"
import json, sys
from gmssl import sm2
cases = json.load(open(sys.argv[1]))
bad = []
for i, c in enumerate(cases):
    v = sm2.CryptSM2(private_key=None, public_key="00" * 64)
    # crypto-notes pitfall: the constructor's lstrip("04") corrupts some keys; set it directly.
    v.public_key = c["pk"]
    ok = bool(v.verify_with_sm3(c["sig"], bytes.fromhex(c["msg"])))
    if ok != c["expect"]:
        bad.append(i)
print("gmssl checked", len(cases), "mismatches", bad)
sys.exit(1 if bad else 0)
"#;

/// 40 co-signatures (random keys and messages, including empty ones) and their tampered
/// twins, checked by Python gmssl 3.2.2 in one process.
#[test]
fn gmssl_accepts_cosignatures() {
    let python = std::env::var("YIQIAN_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cases = Vec::new();
    for i in 0..40usize {
        let (c, s) = keygen();
        let msg: Vec<u8> = (0..(i * 37 % 500)).map(|j| (j * 7 + i) as u8).collect();
        let sig = cosign(&c, &s, &[&msg]).pop().unwrap();
        let pk = hex::encode(&c.public().public_key_bytes()[1..]);
        let sig_hex = hex::encode(sig.to_bytes());
        cases.push(
            serde_json::json!({"pk": pk, "sig": sig_hex, "msg": hex::encode(&msg), "expect": true}),
        );
        let mut bad = msg.clone();
        bad.push(1);
        cases.push(serde_json::json!({"pk": pk, "sig": sig_hex, "msg": hex::encode(&bad), "expect": false}));
    }
    let dir = scratch_dir();
    let path = dir.join("cases.json");
    std::fs::write(&path, serde_json::to_vec(&cases).unwrap()).unwrap();
    let out = Command::new(&python)
        .arg("-c")
        .arg(GMSSL_SCRIPT)
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("{python} is required for this test: {e}"));
    std::fs::remove_dir_all(&dir).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("gmssl checked 80 mismatches []"),
        "gmssl verification failed (is gmssl==3.2.2 installed for {python}?): {out:?}"
    );
}
