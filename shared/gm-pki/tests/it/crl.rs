//! CRLs: `openssl crl -text` reads ours; the signature is checked with asn1crypto + pkeyutl.

use crate::testca::TestCa;
use crate::{openssl, py, run, tmpdir};
use gm_pki::Sm2Signer;
use gm_pki::crl::{CrlParams, ParsedCrl, RevocationReason, RevokedEntry, build_crl};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[test]
fn crl_built_parsed_and_checked_by_openssl() {
    let ca = TestCa::new(SystemTime::now());
    let d = tmpdir("crl");
    ca.write(&d);
    let t = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    let params = CrlParams {
        this_update: t,
        next_update: t + Duration::from_secs(7 * 86_400),
        crl_number: 42,
        entries: vec![
            RevokedEntry {
                serial: ca.staff.cert.serial().to_vec(),
                time: t - Duration::from_secs(60),
                reason: Some(RevocationReason::KeyCompromise),
            },
            RevokedEntry {
                serial: vec![0x12, 0x34],
                time: t - Duration::from_secs(120),
                reason: None,
            },
            RevokedEntry {
                serial: vec![0x56],
                time: t,
                reason: Some(RevocationReason::CertificateHold),
            },
        ],
    };
    let crl = build_crl(&params, &ca.int.cert, &ca.int.key).unwrap();
    std::fs::write(d.join("crl.pem"), crl.to_pem()).unwrap();
    std::fs::write(d.join("crl.der"), crl.der()).unwrap();
    let text = openssl(&d, &["crl", "-in", "crl.pem", "-noout", "-text"]);
    for want in [
        "Version 2 (0x1)",
        "Signature Algorithm: SM2-with-SM3",
        "X509v3 CRL Number: \n                42",
        "X509v3 Authority Key Identifier",
        "Key Compromise",
        "Certificate Hold",
        &format!(
            "Serial Number: {}",
            ca.staff.cert.serial_hex().to_uppercase()
        ),
        "Serial Number: 1234",
    ] {
        assert!(text.contains(want), "missing {want:?}:\n{text}");
    }
    // `openssl crl -verify` cannot take the SM2 ID in OpenSSL 3.0 (it uses the empty ID), so it
    // must fail on our correct signature; the real check is asn1crypto + pkeyutl below.
    let o = run(
        &d,
        "openssl",
        &[
            "crl", "-in", "crl.pem", "-CAfile", "int.pem", "-noout", "-verify",
        ],
    );
    assert!(
        !o.text.contains("verify OK"),
        "OpenSSL now verifies SM2 CRLs with an empty ID?\n{}",
        o.text
    );
    let json = py(&d, "check_crl.py", &["crl.der", "int.pub.pem"]);
    assert!(
        json.contains("\"signature_ok\": true") && json.contains("\"crl_number\": 42"),
        "{json}"
    );
    assert!(
        json.contains("key_compromise") && json.contains("certificate_hold"),
        "{json}"
    );

    let p = ParsedCrl::from_pem(&crl.to_pem()).unwrap();
    assert_eq!(p.crl_number(), Some(42));
    assert_eq!(p.this_update(), t);
    assert_eq!(p.next_update(), Some(t + Duration::from_secs(7 * 86_400)));
    assert_eq!(p.entries().unwrap().len(), 3);
    assert_eq!(
        p.find(ca.staff.cert.serial()).unwrap().unwrap().reason,
        Some(RevocationReason::KeyCompromise)
    );
    assert!(p.find(ca.tsa.cert.serial()).unwrap().is_none());
    p.verify_signature(&ca.int.key.public_key()).unwrap();
    assert!(p.verify_signature(&ca.root.key.public_key()).is_err());
    // Signing with a key that is not the issuer's is refused.
    assert!(build_crl(&params, &ca.int.cert, &ca.root.key).is_err());
}

#[test]
fn openssl_made_crl_parses() {
    // An empty SM2 CRL made by `openssl ca -gencrl` is parsed by us.
    let d = tmpdir("crl-openssl");
    openssl(
        &d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:SM2",
            "-out",
            "ca.key",
        ],
    );
    openssl(
        &d,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "ca.key",
            "-sm3",
            "-sigopt",
            "distid:1234567812345678",
            "-subj",
            "/CN=OpenSSL SM2 CA",
            "-days",
            "30",
            "-out",
            "ca.pem",
        ],
    );
    std::fs::create_dir_all(d.join("db")).unwrap();
    std::fs::write(d.join("db/index.txt"), "").unwrap();
    std::fs::write(d.join("db/crlnumber"), "1000\n").unwrap();
    std::fs::write(
        d.join("ca.cnf"),
        "[ca]\ndefault_ca=x\n[x]\ndatabase=db/index.txt\ncrlnumber=db/crlnumber\ndefault_md=sm3\ndefault_crl_days=7\n",
    )
    .unwrap();
    openssl(
        &d,
        &[
            "ca", "-config", "ca.cnf", "-gencrl", "-keyfile", "ca.key", "-cert", "ca.pem", "-out",
            "o.crl",
        ],
    );
    let p = ParsedCrl::from_pem(&std::fs::read_to_string(d.join("o.crl")).unwrap()).unwrap();
    assert_eq!(p.crl_number(), Some(0x1000));
    assert!(p.entries().unwrap().is_empty());
    assert!(p.issuer_string().contains("OpenSSL SM2 CA"));
}
