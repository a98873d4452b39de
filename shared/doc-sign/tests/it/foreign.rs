//! PDFs signed by another producer (pyHanko), with keys and certificates made by the OpenSSL
//! CLI: our verifier must accept ECDSA P-256 and RSA signers, name the right signer, and
//! report a changed byte in the signed range.

use super::{fixtures, python, run, tmpdir};
use doc_sign::verify_pdf;
use gm_pki::ParsedCertificate;
use std::path::Path;

/// `openssl req -x509` with `newkey` (e.g. `ec` + P-256 or `rsa:2048`), then pyHanko signs a
/// pdf-writer document with it. Returns the signed PDF and the signer certificate.
fn pyhanko_signed(tag: &str, newkey: &[&str], cn: &str) -> (Vec<u8>, ParsedCertificate) {
    let dir = tmpdir(tag);
    let mut args = vec!["req", "-x509"];
    args.extend_from_slice(newkey);
    let subj = format!("/CN={cn}/O=Other Producer");
    args.extend_from_slice(&[
        "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "3650", "-subj", &subj,
    ]);
    let o = run(&dir, "openssl", &args);
    assert!(o.ok, "openssl req: {}", o.text);
    std::fs::write(dir.join("in.pdf"), fixtures::pdf_writer_doc(1)).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/pyhanko_sign.py");
    let o = run(
        &dir,
        &python(),
        &[
            script.to_str().unwrap(),
            "in.pdf",
            "out.pdf",
            "key.pem",
            "cert.pem",
        ],
    );
    assert!(o.ok, "pyhanko_sign.py: {}", o.text);
    let cert = ParsedCertificate::from_pem(&std::fs::read_to_string(dir.join("cert.pem")).unwrap())
        .unwrap();
    let pdf = std::fs::read(dir.join("out.pdf")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (pdf, cert)
}

fn check_intact_then_flip(pdf: &[u8], cert: &ParsedCertificate, cn: &str, alg: &str) {
    let rep = verify_pdf(pdf).unwrap();
    assert_eq!(rep.signatures.len(), 1, "{rep:#?}");
    let s = &rep.signatures[0];
    assert!(s.ok(), "{alg} signature from pyHanko not verified: {s:#?}");
    assert!(s.byte_range_ok && s.digest_ok && s.signature_ok, "{s:#?}");
    // pyHanko writes signingCertificateV2: it must match the signer.
    assert_eq!(s.signing_certificate_ok, Some(true), "{s:#?}");
    let signer = s.signer_cert.as_ref().expect("signer certificate");
    assert_eq!(signer.der(), cert.der(), "wrong signer certificate");
    assert!(
        signer.subject_string().contains(cn),
        "{}",
        signer.subject_string()
    );
    assert_eq!(signer.signer_key().unwrap().algorithm_name(), alg);
    assert_eq!(s.field_name, "Foreign");

    // One byte inside the signed range: the header's version digit (the PDF still parses).
    let pos = b"%PDF-1.".len();
    assert!(pos < usize::try_from(s.byte_range[1]).unwrap());
    let mut t = pdf.to_vec();
    assert!(t[pos].is_ascii_digit());
    t[pos] = b'0' + (t[pos] - b'0' + 1) % 10;
    let rep = verify_pdf(&t).unwrap();
    let s = &rep.signatures[0];
    assert!(!s.ok(), "changed byte not reported: {s:#?}");
    assert!(!s.digest_ok, "{s:#?}");
    assert!(!rep.ok());

    // And the signature value (inside /Contents, outside the range): the digest still
    // matches, the signature does not.
    let cms = verify_pdf(pdf).unwrap().signatures[0].cms.clone();
    assert!(!cms.is_empty());
    let sig_hex = hex::encode_upper(&cms);
    let start = pdf
        .windows(sig_hex.len())
        .position(|w| w.eq_ignore_ascii_case(sig_hex.as_bytes()))
        .expect("CMS hex in /Contents");
    // The SignerInfo's signature value is the last element of the CMS for pyHanko (no
    // unsigned attributes): change the last hex digit of it.
    let mut t = pdf.to_vec();
    let at = start + sig_hex.len() - 1;
    t[at] = if t[at] == b'0' { b'1' } else { b'0' };
    let rep = verify_pdf(&t).unwrap();
    let s = &rep.signatures[0];
    assert!(s.digest_ok, "{s:#?}");
    assert!(
        !s.signature_ok && !s.ok(),
        "forged signature accepted: {s:#?}"
    );
}

#[test]
fn pyhanko_ecdsa_p256_signed_pdf_verifies_and_tampering_is_reported() {
    let cn = "Foreign ECDSA Signer";
    let (pdf, cert) = pyhanko_signed(
        "pyhanko-ecdsa",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        cn,
    );
    check_intact_then_flip(&pdf, &cert, cn, "ECDSA P-256");
}

#[test]
fn pyhanko_rsa2048_signed_pdf_verifies_and_tampering_is_reported() {
    let cn = "Foreign RSA Signer";
    let (pdf, cert) = pyhanko_signed("pyhanko-rsa", &["-newkey", "rsa:2048"], cn);
    check_intact_then_flip(&pdf, &cert, cn, "RSA");
}
