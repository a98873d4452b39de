//! The conformance suite every [`CryptoDevice`] must pass: run against the software device
//! and against the SDF adapter over `libsdf_soft.so` (see the `sdf-soft` crate's tests).
//!
//! SM2 signatures are checked with an independent verifier, the OpenSSL CLI:
//! `openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -digest sm3 -pkeyopt distid:1234567812345678 -in msg -sigfile sig.der`.
//! Needs `openssl` (3.x) on `PATH`.

use std::path::PathBuf;
use std::process::Command;

use zeroize::Zeroizing;

use crate::device::{CryptoDevice, KeyId, KeyKind, KeyState, SymMode, with_secret};
use crate::error::Error;
use crate::prims::{self, DEFAULT_SM2_ID};

/// What the suite checked.
#[derive(Debug, Default, Clone)]
pub struct ConformanceReport {
    /// Names of the checks that passed, in order.
    pub passed: Vec<&'static str>,
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn is<T: std::fmt::Debug>(r: &Result<T, Error>, want: fn(&Error) -> bool) -> bool {
    matches!(r, Err(e) if want(e))
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Verify an SM2 signature with the OpenSSL CLI. `Ok(true)` when OpenSSL says
/// "Signature Verified Successfully".
pub fn openssl_verify(public_pem: &str, msg: &[u8], sig_der: &[u8]) -> Result<bool, String> {
    let dir = std::env::temp_dir().join(format!(
        "yiqian-conf-{}",
        hex::encode(prims::random_vec(8).map_err(|e| e.to_string())?)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let dir = TempDir(dir);
    let (p, m, s) = (
        dir.0.join("pub.pem"),
        dir.0.join("msg"),
        dir.0.join("sig.der"),
    );
    std::fs::write(&p, public_pem).map_err(|e| e.to_string())?;
    std::fs::write(&m, msg).map_err(|e| e.to_string())?;
    std::fs::write(&s, sig_der).map_err(|e| e.to_string())?;
    let out = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(&p)
        .args([
            "-rawin",
            "-digest",
            "sm3",
            "-pkeyopt",
            "distid:1234567812345678",
            "-in",
        ])
        .arg(&m)
        .arg("-sigfile")
        .arg(&s)
        .output()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(out.status.success() && text.contains("Signature Verified Successfully"))
}

/// Run every check against `dev`. Leaves a few keys behind (destroyed or not) in its store.
pub async fn conformance_suite<D: CryptoDevice + ?Sized>(
    dev: &D,
) -> Result<ConformanceReport, String> {
    let mut rep = ConformanceReport::default();
    let e = |x: Error| x.to_string();

    // Random.
    let a = dev.random(32).await.map_err(e)?;
    let b = dev.random(32).await.map_err(e)?;
    ensure!(
        a.len() == 32 && a != b,
        "random: two 32-byte draws must differ"
    );
    rep.passed.push("random");

    // SM3 known answer (GB/T 32905 appendix A, "abc").
    let h = dev.sm3(b"abc").await.map_err(e)?;
    ensure!(
        hex::encode(h) == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0",
        "sm3(abc) mismatch: {}",
        hex::encode(h)
    );
    rep.passed.push("sm3 known answer");

    // SM2: generate inside, e = SM3(Z||M) by the caller, internal sign, OpenSSL verifies.
    let (k1, pk1) = dev.generate_sm2("conformance sm2").await.map_err(e)?;
    ensure!(
        dev.public_key(&k1).await.map_err(e)? == pk1,
        "public_key differs from generate_sm2's"
    );
    let msg = "医签 conformance: 患者知情同意书 v1".as_bytes();
    let digest = dev.sm3_with_z(&pk1, DEFAULT_SM2_ID, msg).await.map_err(e)?;
    ensure!(
        digest == prims::sm2_digest(&pk1, DEFAULT_SM2_ID, msg).map_err(e)?,
        "device Z-digest differs from SM3(Z||M)"
    );
    let sig = dev.sign_digest(&k1, &digest).await.map_err(e)?;
    pk1.verify(DEFAULT_SM2_ID, msg, &sig)
        .map_err(|x| format!("own verifier rejects: {x}"))?;
    let pem = pk1.to_pem().map_err(e)?;
    let der = sig.to_der().map_err(e)?;
    ensure!(
        openssl_verify(&pem, msg, &der)?,
        "OpenSSL rejects the device's SM2 signature"
    );
    ensure!(
        !openssl_verify(&pem, b"tampered message", &der)?,
        "OpenSSL accepts a signature over another message"
    );
    let sig2 = dev.sign_digest(&k1, &digest).await.map_err(e)?;
    ensure!(
        sig2 != sig,
        "two signatures of one digest must use different nonces"
    );
    ensure!(
        openssl_verify(&pem, msg, &sig2.to_der().map_err(e)?)?,
        "OpenSSL rejects the second signature"
    );
    rep.passed.push("sm2 internal sign verified by openssl");

    // An open signing key (devices that offer one) signs like sign_digest.
    let opens_keys = dev.open_signing_key(&k1).await.map_err(e)?;
    if let Some(open) = &opens_keys {
        ensure!(open.key() == &k1, "open handle names another key");
        let sig3 = open.sign_digest(&digest).map_err(e)?;
        ensure!(
            openssl_verify(&pem, msg, &sig3.to_der().map_err(e)?)?,
            "OpenSSL rejects the open key's signature"
        );
        ensure!(sig3 != sig, "the open key must use fresh nonces");
        rep.passed.push("open signing key verified by openssl");
    }

    // SM4 modes.
    let k2 = dev.generate_sm4("conformance sm4").await.map_err(e)?;
    let data = prims::pkcs7_pad(b"medical record payload, 49 bytes of text here..");
    let ecb = dev
        .encrypt(&k2, SymMode::Ecb, &[], &[], &data)
        .await
        .map_err(e)?;
    ensure!(
        ecb != data
            && *dev
                .decrypt(&k2, SymMode::Ecb, &[], &[], &ecb)
                .await
                .map_err(e)?
                == data,
        "ECB round trip"
    );
    let iv = dev.random(16).await.map_err(e)?;
    let cbc = dev
        .encrypt(&k2, SymMode::Cbc, &iv, &[], &data)
        .await
        .map_err(e)?;
    ensure!(
        cbc != ecb
            && *dev
                .decrypt(&k2, SymMode::Cbc, &iv, &[], &cbc)
                .await
                .map_err(e)?
                == data,
        "CBC round trip"
    );
    ensure!(
        is(
            &dev.encrypt(&k2, SymMode::Cbc, &iv, &[], b"not a block")
                .await,
            |x| matches!(x, Error::InvalidInput(_))
        ),
        "CBC of a partial block must be refused"
    );
    let nonce = dev.random(12).await.map_err(e)?;
    let aad = b"record 42";
    let gcm = dev
        .encrypt(&k2, SymMode::Gcm, &nonce, aad, b"d2 share material?")
        .await
        .map_err(e)?;
    ensure!(
        gcm.len() == 18 + 16,
        "GCM output = ciphertext + 16-byte tag"
    );
    ensure!(
        *dev.decrypt(&k2, SymMode::Gcm, &nonce, aad, &gcm)
            .await
            .map_err(e)?
            == b"d2 share material?",
        "GCM round trip"
    );
    let mut bad = gcm.clone();
    if let Some(x) = bad.get_mut(3) {
        *x ^= 1;
    }
    ensure!(
        is(
            &dev.decrypt(&k2, SymMode::Gcm, &nonce, aad, &bad).await,
            |x| matches!(x, Error::Integrity(_))
        ),
        "GCM must reject a flipped ciphertext bit"
    );
    ensure!(
        is(
            &dev.decrypt(&k2, SymMode::Gcm, &nonce, b"record 43", &gcm)
                .await,
            |x| matches!(x, Error::Integrity(_))
        ),
        "GCM must reject other AAD"
    );
    rep.passed.push("sm4 ecb/cbc/gcm");

    // Wrapped export / import.
    let w = dev.default_wrapping_key().await.map_err(e)?;
    let blob = dev.export_wrapped(&k2, &w).await.map_err(e)?;
    let k3 = dev
        .import_wrapped(&w, "conformance sm4 re-imported", &blob)
        .await
        .map_err(e)?;
    ensure!(k3 != k2, "import creates a new key id");
    ensure!(
        *dev.decrypt(&k3, SymMode::Gcm, &nonce, aad, &gcm)
            .await
            .map_err(e)?
            == b"d2 share material?",
        "the re-imported key must decrypt what the original encrypted"
    );
    for pos in [blob.len() / 2, blob.len() - 1] {
        let mut t = blob.clone();
        if let Some(x) = t.get_mut(pos) {
            *x ^= 0x10;
        }
        let r = dev.import_wrapped(&w, "tampered", &t).await;
        ensure!(
            is(&r, |x| matches!(x, Error::Integrity(_))),
            "a tampered wrapped blob (byte {pos}) must be refused, got {r:?}"
        );
    }
    rep.passed.push("wrap/unwrap round trip, tamper detected");

    // Secrets (the d2 API).
    let d2 = Zeroizing::new(dev.random(32).await.map_err(e)?);
    let d2_hash = prims::sm3(&d2);
    let sk = dev
        .import_secret("d2:conformance", d2.clone())
        .await
        .map_err(e)?;
    let got = with_secret(dev, &sk, |s| Ok(prims::sm3(s)))
        .await
        .map_err(e)?;
    ensure!(got == d2_hash, "use_secret must see the imported bytes");
    let secret_blob = dev.export_wrapped(&sk, &w).await.map_err(e)?;
    ensure!(
        !secret_blob.windows(d2.len()).any(|win| win == &d2[..]),
        "exported secret blob contains the plain secret"
    );
    let d2b = Zeroizing::new(dev.random(32).await.map_err(e)?);
    dev.replace_secret(&sk, d2b.clone()).await.map_err(e)?;
    let got = with_secret(dev, &sk, |s| Ok(prims::sm3(s)))
        .await
        .map_err(e)?;
    ensure!(got == prims::sm3(&d2b), "replace_secret must take effect");
    let sk2 = dev
        .import_wrapped(&w, "d2 re-imported", &secret_blob)
        .await
        .map_err(e)?;
    let got = with_secret(dev, &sk2, |s| Ok(prims::sm3(s)))
        .await
        .map_err(e)?;
    ensure!(got == d2_hash, "re-imported secret must equal the original");
    ensure!(
        is(&dev.sign_digest(&sk, &digest).await, |x| matches!(
            x,
            Error::WrongKeyKind { .. }
        )),
        "signing with a secret must be a WrongKeyKind error"
    );
    rep.passed
        .push("secrets: import, use inside closure, replace, wrapped export");

    // States: suspend / resume.
    dev.set_state(&k1, KeyState::Suspended).await.map_err(e)?;
    ensure!(
        is(&dev.sign_digest(&k1, &digest).await, |x| matches!(
            x,
            Error::KeySuspended(_)
        )),
        "suspended key must not sign"
    );
    ensure!(
        opens_keys.is_none()
            || is(&dev.open_signing_key(&k1).await, |x| matches!(
                x,
                Error::KeySuspended(_)
            )),
        "a suspended key must not open"
    );
    ensure!(
        dev.key_info(&k1).await.map_err(e)?.state == KeyState::Suspended,
        "state suspended"
    );
    dev.set_state(&k1, KeyState::Active).await.map_err(e)?;
    dev.sign_digest(&k1, &digest).await.map_err(e)?;
    rep.passed.push("suspend/resume");

    // Destroy.
    dev.destroy(&k1).await.map_err(e)?;
    dev.destroy(&k2).await.map_err(e)?;
    dev.destroy(&sk).await.map_err(e)?;
    ensure!(
        is(&dev.sign_digest(&k1, &digest).await, |x| matches!(
            x,
            Error::KeyDestroyed(_)
        )),
        "destroyed SM2 key signs"
    );
    ensure!(
        is(&dev.public_key(&k1).await, |x| matches!(
            x,
            Error::KeyDestroyed(_)
        )),
        "destroyed SM2 key has a public key"
    );
    ensure!(
        is(
            &dev.encrypt(&k2, SymMode::Gcm, &nonce, aad, b"x").await,
            |x| matches!(x, Error::KeyDestroyed(_))
        ),
        "destroyed SM4 key encrypts"
    );
    ensure!(
        is(&with_secret(dev, &sk, |_| Ok(())).await, |x| matches!(
            x,
            Error::KeyDestroyed(_)
        )),
        "destroyed secret is usable"
    );
    ensure!(
        is(&dev.export_wrapped(&k2, &w).await, |x| matches!(
            x,
            Error::KeyDestroyed(_)
        )),
        "destroyed key exports"
    );
    ensure!(
        is(&dev.destroy(&k1).await, |x| matches!(
            x,
            Error::KeyDestroyed(_)
        )),
        "double destroy"
    );
    ensure!(
        is(&dev.set_state(&k1, KeyState::Active).await, |x| matches!(
            x,
            Error::KeyDestroyed(_)
        )),
        "destroyed key resumed"
    );
    // The copy imported before destruction is independent.
    ensure!(
        *dev.decrypt(&k3, SymMode::Gcm, &nonce, aad, &gcm)
            .await
            .map_err(e)?
            == b"d2 share material?",
        "the imported copy must survive the original's destruction"
    );
    let missing = KeyId("k-does-not-exist".into());
    ensure!(
        is(&dev.sign_digest(&missing, &digest).await, |x| matches!(
            x,
            Error::KeyNotFound(_)
        )),
        "unknown key"
    );
    rep.passed.push("destroyed keys unusable");

    // Listing.
    let list = dev.list_keys().await.map_err(e)?;
    let find = |id: &KeyId| list.iter().find(|i| &i.id == id).map(|i| (i.kind, i.state));
    ensure!(
        find(&k1) == Some((KeyKind::Sm2Sign, KeyState::Destroyed)),
        "list shows the destroyed SM2 key"
    );
    ensure!(
        find(&k3) == Some((KeyKind::Sm4, KeyState::Active)),
        "list shows the imported SM4 key"
    );
    ensure!(
        find(&sk2) == Some((KeyKind::Secret, KeyState::Active)),
        "list shows the secret"
    );
    rep.passed.push("list keys");
    Ok(rep)
}
