//! Share sealing: OPRF-derived unlock key, wrong PIN, attempt counting, hash-to-curve.

use crate::common::*;
use sm2_cosign::seal::*;
use sm2_cosign::{Error, OsRng};

const CTX: &[u8] = b"hospital-1/staff-42/device-7";

/// Server and client run the OPRF; returns the unlock key.
fn unlock(server: &OprfKey, counter: &mut AttemptCounter, pin: &[u8]) -> Result<UnlockKey, Error> {
    let (client, req) = OprfClient::blind(&mut OsRng, CTX, pin)?;
    counter.begin(5)?;
    let resp = server.evaluate(&req)?;
    client.finalize(&resp)
}

#[test]
fn seal_open_and_sign_after_unlock() {
    let (c, s) = keygen();
    let server_key = OprfKey::generate(&mut OsRng).unwrap();
    let mut counter = AttemptCounter::default();
    let key = unlock(&server_key, &mut counter, b"246810").unwrap();
    let sealed = seal_share(&mut OsRng, &key, &c).unwrap();
    // The blob survives JSON (device storage) and carries no d1 in clear.
    let json = serde_json::to_string(&sealed).unwrap();
    assert!(!json.contains(&hex::encode(c.secret_scalar_for_tests().to_bytes())));
    let sealed: SealedShare = serde_json::from_str(&json).unwrap();

    // Later: unlock with the right PIN, co-sign, and the server resets the counter.
    let key2 = unlock(&server_key, &mut counter, b"246810").unwrap();
    assert_eq!(counter.failures, 2);
    let opened = open_share(&key2, &sealed).unwrap();
    assert_eq!(opened.public(), c.public());
    let sig = cosign(&opened, &s, &[b"unlocked"]).pop().unwrap();
    assert!(verify_rustcrypto(&c, b"unlocked", &sig));
    counter.success();
    assert_eq!(counter.failures, 0);
}

#[test]
fn wrong_pin_is_a_typed_error_and_guesses_are_counted_and_locked() {
    let (c, _s) = keygen();
    let server_key = OprfKey::generate(&mut OsRng).unwrap();
    let mut counter = AttemptCounter::default();
    let key = unlock(&server_key, &mut counter, b"135790").unwrap();
    let sealed = seal_share(&mut OsRng, &key, &c).unwrap();
    counter.success();
    // A thief with the phone: every guess needs the server, which counts.
    for guess in 0..5u32 {
        let k = unlock(&server_key, &mut counter, format!("{guess:06}").as_bytes()).unwrap();
        assert_eq!(open_share(&k, &sealed).unwrap_err(), Error::WrongPin);
    }
    assert_eq!(counter.remaining(5), 0);
    assert_eq!(
        unlock(&server_key, &mut counter, b"135790").unwrap_err(),
        Error::Locked
    );
    // Without the server's key (another key = a guess at k) the right PIN does not open it.
    let other = OprfKey::generate(&mut OsRng).unwrap();
    let k = unlock(&other, &mut AttemptCounter::default(), b"135790").unwrap();
    assert_eq!(open_share(&k, &sealed).unwrap_err(), Error::WrongPin);
    // Tampering with the blob is detected the same way.
    let key = unlock(&server_key, &mut AttemptCounter::default(), b"135790").unwrap();
    let mut t = sealed.clone();
    t.public.0[100] ^= 1;
    assert_eq!(open_share(&key, &t).unwrap_err(), Error::WrongPin);
    assert!(open_share(&key, &sealed).is_ok());
    assert_eq!(
        AttemptCounter::default().begin(0).unwrap_err(),
        Error::ApiMisuse("max_failures must be at least 1")
    );
}

#[test]
fn oprf_is_blind_and_bound_to_context() {
    let server_key = OprfKey::generate(&mut OsRng).unwrap();
    // Two blindings of the same PIN look unrelated to the server but give the same key.
    let (c1, r1) = OprfClient::blind(&mut OsRng, CTX, b"1234").unwrap();
    let (c2, r2) = OprfClient::blind(&mut OsRng, CTX, b"1234").unwrap();
    assert_ne!(r1.blinded, r2.blinded);
    let k1 = c1.finalize(&server_key.evaluate(&r1).unwrap()).unwrap();
    let k2 = c2.finalize(&server_key.evaluate(&r2).unwrap()).unwrap();
    assert_eq!(format!("{k1:?}"), "UnlockKey(<redacted>)");
    let (c, _) = keygen();
    let sealed = seal_share(&mut OsRng, &k1, &c).unwrap();
    assert!(open_share(&k2, &sealed).is_ok());
    // Same PIN, another account context: another key.
    let (c3, r3) = OprfClient::blind(&mut OsRng, b"hospital-1/staff-43/device-7", b"1234").unwrap();
    let k3 = c3.finalize(&server_key.evaluate(&r3).unwrap()).unwrap();
    assert_eq!(open_share(&k3, &sealed).unwrap_err(), Error::WrongPin);
    // Malformed points are refused on both sides.
    let mut bad = r1.clone();
    bad.blinded.0[64] ^= 1;
    assert!(matches!(
        server_key.evaluate(&bad),
        Err(Error::InvalidPoint { .. })
    ));
    let (c4, r4) = OprfClient::blind(&mut OsRng, CTX, b"1234").unwrap();
    let mut resp = server_key.evaluate(&r4).unwrap();
    resp.evaluated.0 = [0u8; 65];
    assert!(matches!(
        c4.finalize(&resp),
        Err(Error::InvalidPoint { .. })
    ));
    // Key round trip.
    let again = OprfKey::from_bytes(&server_key.to_bytes()).unwrap();
    let (c5, r5) = OprfClient::blind(&mut OsRng, CTX, b"1234").unwrap();
    let k5 = c5.finalize(&again.evaluate(&r5).unwrap()).unwrap();
    assert!(open_share(&k5, &sealed).is_ok());
}

/// hash_to_curve agrees with an independent Python implementation written from RFC 9380
/// (`tests/it/h2c_reference.py`, SM3 from gmssl). Fails if Python/gmssl are missing.
#[test]
fn hash_to_curve_matches_python_reference() {
    // Output of: h2c_reference.py 616263 TEST-DST
    let kat = "043087e39ab9c0bdddef2df576c181c8cf48e18cdacc60b05515486d84b83836d092ceea583b14ec8e733cbb1a5b45947b9db9d6f2d33845557e6e4f93b009ee7a";
    let enc = |p: sm2::ProjectivePoint| {
        hex::encode(
            sm2::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&p.to_affine(), false).as_bytes(),
        )
    };
    assert_eq!(enc(hash_to_curve(&[b"abc"], b"TEST-DST").unwrap()), kat);
    let python = std::env::var("YIQIAN_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/h2c_reference.py");
    for msg in [&b""[..], b"abc", b"1234567812345678/000000", &[0xffu8; 200]] {
        let out = std::process::Command::new(&python)
            .arg(script)
            .arg(hex::encode(msg))
            .arg("YIQIAN-TEST")
            .output()
            .unwrap_or_else(|e| panic!("{python} is required: {e}"));
        assert!(out.status.success(), "reference failed: {out:?}");
        let expected = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            enc(hash_to_curve(&[msg], b"YIQIAN-TEST").unwrap()),
            expected.trim()
        );
    }
}
