//! CMS with keys other than SM2: `openssl cms -sign` with ECDSA P-256 and RSA-2048 keys is
//! verified by ours; our ECDSA P-256 SignedData is verified by `openssl cms -verify`.

use super::{openssl, run, tmpdir};
use gm_pki::ParsedCertificate;
use gm_pki::cms::{self, HashAlg, SignOptions};
use gm_pki::sigalg::{P256Signer, SignerKey, SoftwareP256Signer, p256_sign_der};

const DATA: &[u8] = b"\xe7\x97\x85\xe5\x8e\x86 record 2026-0042: signed by another producer\n";

fn self_signed(dir: &std::path::Path, newkey: &[&str], cn: &str) -> ParsedCertificate {
    let mut args = vec!["req", "-x509"];
    args.extend_from_slice(newkey);
    let subj = format!("/CN={cn}");
    args.extend_from_slice(&[
        "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "30", "-subj", &subj,
    ]);
    openssl(dir, &args);
    ParsedCertificate::from_pem(&std::fs::read_to_string(dir.join("cert.pem")).unwrap()).unwrap()
}

fn openssl_signed_verifies_with_ours(tag: &str, newkey: &[&str], alg: &str) {
    let dir = tmpdir(tag);
    let cert = self_signed(&dir, newkey, tag);
    std::fs::write(dir.join("data.bin"), DATA).unwrap();
    openssl(
        &dir,
        &[
            "cms", "-sign", "-binary", "-md", "sha256", "-in", "data.bin", "-signer", "cert.pem",
            "-inkey", "key.pem", "-outform", "DER", "-out", "sig.p7s",
        ],
    );
    let p7s = std::fs::read(dir.join("sig.p7s")).unwrap();
    let rep = cms::verify(&p7s, Some(DATA), &[]).unwrap();
    assert!(rep.ok(), "{alg}: {:#?}", rep.signers);
    let s = &rep.signers[0];
    assert_eq!(s.signer_cert.as_ref().unwrap().der(), cert.der());
    assert_eq!(cert.signer_key().unwrap().algorithm_name(), alg);
    // Other content: messageDigest no longer matches.
    let rep = cms::verify(&p7s, Some(b"other content"), &[]).unwrap();
    assert!(!rep.ok() && !rep.signers[0].digest_ok);
    // Last byte of the signature value (the last element without unsigned attributes).
    let mut bad = p7s.clone();
    let n = bad.len();
    bad[n - 1] ^= 0x01;
    let rep = cms::verify(&bad, Some(DATA), &[]).unwrap();
    assert!(
        !rep.ok() && !rep.signers[0].signature_ok,
        "{:#?}",
        rep.signers
    );
    // Hostile bytes: every single-byte change is an error or a report, never a panic; inside
    // the signature value (the last bytes) never a valid one.
    for i in 0..n {
        let mut t = p7s.clone();
        t[i] ^= 0x5a;
        if let Ok(rep) = cms::verify(&t, Some(DATA), &[]) {
            assert!(i + 32 < n || !rep.ok(), "{alg}: change at {i}/{n} accepted");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn openssl_ecdsa_p256_cms_verifies_with_ours() {
    openssl_signed_verifies_with_ours(
        "cms-ecdsa",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "ECDSA P-256",
    );
}

#[test]
fn openssl_rsa2048_cms_verifies_with_ours() {
    openssl_signed_verifies_with_ours("cms-rsa", &["-newkey", "rsa:2048"], "RSA");
}

#[test]
fn our_ecdsa_p256_cms_verified_by_openssl() {
    let dir = tmpdir("cms-ours-ecdsa");
    let cert = self_signed(
        &dir,
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "Our ECDSA Signer",
    );
    let key =
        SoftwareP256Signer::from_pkcs8_pem(&std::fs::read_to_string(dir.join("key.pem")).unwrap())
            .unwrap();
    assert!(matches!(cert.signer_key().unwrap(), SignerKey::P256(k) if k == key.public_key()));
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&HashAlg::Sha256.digest(DATA));
    let opts = SignOptions {
        detached: true,
        ..Default::default()
    };
    let pending = cms::prepare_detached_p256(&digest, &cert, &[], &opts, &[]).unwrap();
    // A signature over something else is refused before it is embedded.
    let wrong = p256_sign_der(&key, b"not the attributes").unwrap();
    assert!(
        pending
            .clone()
            .finish(&wrong, gm_pki::DEFAULT_DISTID)
            .is_err()
    );
    let sig = p256_sign_der(&key, pending.to_be_signed()).unwrap();
    let p7s = pending.finish(&sig, gm_pki::DEFAULT_DISTID).unwrap();
    assert!(cms::verify(&p7s, Some(DATA), &[]).unwrap().ok());
    std::fs::write(dir.join("ours.p7s"), &p7s).unwrap();
    std::fs::write(dir.join("data.bin"), DATA).unwrap();
    openssl(
        &dir,
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "ours.p7s",
            "-content",
            "data.bin",
            "-CAfile",
            "cert.pem",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
    );
    std::fs::write(dir.join("other.bin"), b"other").unwrap();
    let o = run(
        &dir,
        "openssl",
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "ours.p7s",
            "-content",
            "other.bin",
            "-CAfile",
            "cert.pem",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
    );
    assert!(!o.ok, "openssl accepted other content: {}", o.text);
    // The P-256 variant needs a P-256 certificate.
    let sm2 = super::testca::TestCa::new(std::time::SystemTime::now());
    assert!(cms::prepare_detached_p256(&digest, &sm2.staff.cert, &[], &opts, &[]).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
