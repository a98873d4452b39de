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

/// An ECDSA P-256 TSA run by pyHanko's (subclassed) DummyTimeStamper: `tests/py/ecdsa_tsa.py`.
struct PyEcdsaTsa {
    dir: std::path::PathBuf,
}

impl doc_sign::TimestampAuthority for PyEcdsaTsa {
    fn timestamp(&self, _imprint_sm3: &[u8; 32]) -> doc_sign::Result<Vec<u8>> {
        Err(doc_sign::Error::Timestamp("SHA-256 only".into()))
    }

    fn timestamp_sha256(&self, imprint: &[u8; 32]) -> doc_sign::Result<Vec<u8>> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/ecdsa_tsa.py");
        let h = hex::encode(imprint);
        let o = run(
            &self.dir,
            &python(),
            &[script.to_str().unwrap(), "tsa.key", "tsa.pem", &h],
        );
        assert!(o.ok, "ecdsa_tsa.py: {}", o.text);
        Ok(hex::decode(String::from_utf8(o.stdout).unwrap().trim()).unwrap())
    }
}

const P256_KEY: &[&str] = &[
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];
const RSA_KEY: &[&str] = &["-newkey", "rsa:2048", "-nodes"];

/// `openssl` in `dir`, which must succeed.
fn openssl_ok(dir: &Path, args: &[&str]) {
    let o = run(dir, "openssl", args);
    assert!(o.ok, "openssl {args:?}: {}", o.text);
}

/// OpenSSL CLI: an ECDSA P-256 root, a signer and a TSA certificate issued by it.
fn openssl_p256_pki(dir: &Path) {
    openssl_pki(dir, P256_KEY);
}

/// OpenSSL CLI: a root with keys made by `newkey` (P-256 or RSA), and a signer and a TSA
/// certificate issued by it.
fn openssl_pki(dir: &Path, newkey: &[&str]) {
    let ok = |args: &[&str]| openssl_ok(dir, args);
    let ec = newkey;
    let mut root = vec!["req", "-x509"];
    root.extend_from_slice(ec);
    root.extend_from_slice(&[
        "-keyout",
        "root.key",
        "-out",
        "root.pem",
        "-days",
        "3650",
        "-subj",
        "/CN=Test Foreign Root CA/O=Yiqian Test",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    ok(&root);
    for (name, cn, ext) in [
        (
            "signer",
            "/CN=ECDSA Doctor/O=Yiqian Test",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        ),
        (
            "tsa",
            "/CN=ECDSA TSA/O=Yiqian Test",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        ),
    ] {
        let (key, csr, pem, extf) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(dir.join(&extf), ext).unwrap();
        let mut req = vec!["req", "-new"];
        req.extend_from_slice(ec);
        req.extend_from_slice(&["-keyout", &key, "-out", &csr, "-subj", cn]);
        ok(&req);
        ok(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "365",
            "-sha256",
            "-extfile",
            &extf,
            "-out",
            &pem,
        ]);
    }
}

#[test]
fn ecdsa_p256_pdf_signed_by_us_validated_by_pyhanko_with_timestamp() {
    let dir = tmpdir("ecdsa-sign");
    openssl_p256_pki(&dir);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let cert = ParsedCertificate::from_pem(&read("signer.pem")).unwrap();
    let root = ParsedCertificate::from_pem(&read("root.pem")).unwrap();
    let key = gm_pki::sigalg::SoftwareP256Signer::from_pkcs8_pem(&read("signer.key")).unwrap();
    let signer = doc_sign::P256SignerIdentity {
        cert: &cert,
        chain: std::slice::from_ref(&root),
        key: &key,
    };
    let tsa = PyEcdsaTsa { dir: dir.clone() };
    // Real time: the OpenSSL certificates are valid from now, and pyHanko validates now.
    let mut opts = doc_sign::PdfSignOptions::new(std::time::SystemTime::now());
    opts.field_name = Some("DoctorECDSA".into());
    let pdf =
        doc_sign::sign_pdf_p256(&fixtures::pdf_writer_doc(2), &signer, &opts, Some(&tsa)).unwrap();
    std::fs::write(dir.join("signed.pdf"), &pdf).unwrap();

    // Our verifier: intact, signer, ESS, ECDSA time stamp valid.
    let rep = verify_pdf(&pdf).unwrap();
    let s = &rep.signatures[0];
    assert!(s.ok(), "{s:#?}");
    assert_eq!(s.signer_cert.as_ref().unwrap().der(), cert.der());
    assert_eq!(s.signing_certificate_ok, Some(true));
    let ts = s.timestamp.as_ref().expect("time stamp");
    assert!(ts.valid, "{ts:#?}");
    assert!(
        ts.tsa.as_deref().unwrap_or("").contains("ECDSA TSA"),
        "{ts:#?}"
    );

    // pyHanko: intact + valid + trusted (chain to the OpenSSL root) + time stamp valid/trusted.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/pyhanko_validate.py");
    let o = run(
        &dir,
        &python(),
        &[script.to_str().unwrap(), "signed.pdf", "root.pem"],
    );
    assert!(o.ok, "pyHanko validation failed:\n{}", o.text);
    eprintln!("pyHanko: {}", o.text);
    for want in [
        "\"intact\": true",
        "\"trusted\": true",
        "\"md_algorithm\": \"sha256\"",
        "ecdsa",
        "ECDSA Doctor",
        "ECDSA TSA",
        "ENTIRE_FILE",
        "INTACT:TRUSTED,TIMESTAMP_TOKEN<INTACT:TRUSTED>,UNTOUCHED",
    ] {
        assert!(o.text.contains(want), "{want} not in {}", o.text);
    }

    // The same check fails when a signed byte changes: pyHanko agrees the file is broken.
    let mut t = pdf.clone();
    let pos = b"%PDF-1.".len();
    t[pos] = b'0' + (t[pos] - b'0' + 1) % 10;
    std::fs::write(dir.join("tampered.pdf"), &t).unwrap();
    let o = run(
        &dir,
        &python(),
        &[script.to_str().unwrap(), "tampered.pdf", "root.pem"],
    );
    assert!(!o.ok, "pyHanko accepted a tampered file:\n{}", o.text);
    assert!(o.text.contains("\"intact\": false"), "{}", o.text);
    assert!(!verify_pdf(&t).unwrap().ok());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `openssl ca`'s minimal state in `dir` for the root made by [`openssl_pki`]: revoke
/// `revoke` (a certificate file) if given, then write a DER CRL and a DER OCSP response about
/// `signer.pem`, both signed by the root itself.
fn openssl_revocation(dir: &Path, revoke: Option<&str>) -> (Vec<u8>, Vec<u8>) {
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
         default_md = sha256\ndefault_crl_days = 30\n",
    )
    .unwrap();
    if !dir.join("index.txt").exists() {
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
    }
    let ca = [
        "-config", "ca.cnf", "-keyfile", "root.key", "-cert", "root.pem",
    ];
    if !dir.join("index.txt.attr").exists() {
        // Known to the CA as valid, so its OCSP answer is "good" rather than "unknown".
        let mut args = vec!["ca", "-valid", "signer.pem"];
        args.extend_from_slice(&ca);
        openssl_ok(dir, &args);
    }
    if let Some(cert) = revoke {
        let mut args = vec!["ca", "-revoke", cert, "-crl_reason", "keyCompromise"];
        args.extend_from_slice(&ca);
        openssl_ok(dir, &args);
    }
    let mut args = vec!["ca", "-gencrl", "-out", "crl.pem"];
    args.extend_from_slice(&ca);
    openssl_ok(dir, &args);
    openssl_ok(
        dir,
        &[
            "crl", "-in", "crl.pem", "-outform", "DER", "-out", "crl.der",
        ],
    );
    openssl_ok(
        dir,
        &[
            "ocsp",
            "-issuer",
            "root.pem",
            "-cert",
            "signer.pem",
            "-no_nonce",
            "-reqout",
            "req.der",
        ],
    );
    openssl_ok(
        dir,
        &[
            "ocsp",
            "-index",
            "index.txt",
            "-rsigner",
            "root.pem",
            "-rkey",
            "root.key",
            "-CA",
            "root.pem",
            "-reqin",
            "req.der",
            "-respout",
            "resp.der",
            "-ndays",
            "7",
        ],
    );
    (
        std::fs::read(dir.join("crl.der")).unwrap(),
        std::fs::read(dir.join("resp.der")).unwrap(),
    )
}

/// A PDF signed by pyHanko with an OpenSSL-made `newkey` PKI validates to its root with the
/// root's own CRL and OCSP response in the DSS; once the root revokes the signer, both say so;
/// another root does not anchor it.
fn foreign_path_and_revocation(tag: &str, newkey: &[&str]) {
    let dir = tmpdir(tag);
    openssl_pki(&dir, newkey);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let root = ParsedCertificate::from_pem(&read("root.pem")).unwrap();
    std::fs::write(dir.join("in.pdf"), fixtures::pdf_writer_doc(1)).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/pyhanko_sign.py");
    let o = run(
        &dir,
        &python(),
        &[
            script.to_str().unwrap(),
            "in.pdf",
            "out.pdf",
            "signer.key",
            "signer.pem",
        ],
    );
    assert!(o.ok, "pyhanko_sign.py: {}", o.text);
    let signed = std::fs::read(dir.join("out.pdf")).unwrap();
    let strict = doc_sign::TrustOptions {
        anchors: std::slice::from_ref(&root),
        intermediates: &[],
        crls: &[],
        time: std::time::SystemTime::now(),
        require_revocation: true,
    };
    let with_dss = |crl: Vec<u8>, ocsp: Vec<u8>| {
        doc_sign::add_dss(
            &signed,
            &doc_sign::LtvMaterial {
                certs: vec![],
                ocsps: vec![ocsp],
                crls: vec![crl],
            },
        )
        .unwrap()
    };
    // Validated now: the CRLs made during the test are newer than the test's start.
    let path_of = |pdf: &[u8], trust: &doc_sign::TrustOptions<'_>| {
        let now = doc_sign::TrustOptions {
            time: std::time::SystemTime::now(),
            ..*trust
        };
        let rep = doc_sign::verify_pdf_trusted(pdf, &now).unwrap();
        rep.signatures[0].path.clone().expect("path checked")
    };

    // No revocation data while it is required: not valid, and the reason says so.
    let p = path_of(&signed, &strict);
    assert!(!p.valid, "{p:?}");
    assert!(
        p.error.as_deref().unwrap_or("").contains("revocation"),
        "{p:?}"
    );

    // The root's CRL and OCSP response (both "good"): a valid path to the root.
    let (crl, ocsp) = openssl_revocation(&dir, None);
    let good = with_dss(crl.clone(), ocsp.clone());
    let p = path_of(&good, &strict);
    assert!(p.valid, "{tag}: {p:?}");
    assert_eq!(p.chain.len(), 2, "{p:?}");
    assert!(p.chain[1].contains("Test Foreign Root CA"), "{p:?}");
    // At the time of checking, as `path_of`: with the test's start time, a CRL made in a later
    // second is not yet valid (this failed CI once).
    let now = doc_sign::TrustOptions {
        time: std::time::SystemTime::now(),
        ..strict
    };
    assert!(
        doc_sign::verify_pdf_trusted(&good, &now)
            .unwrap()
            .signatures[0]
            .ok()
    );
    // Each source alone covers the signer.
    for (source, crls, ocsps) in [("CRL", vec![crl], vec![]), ("OCSP", vec![], vec![ocsp])] {
        let pdf = doc_sign::add_dss(
            &signed,
            &doc_sign::LtvMaterial {
                certs: vec![],
                ocsps,
                crls,
            },
        )
        .unwrap();
        let p = path_of(&pdf, &strict);
        assert!(p.valid, "{tag}, {source} alone: {p:?}");
    }

    // A root with the same name but another key does not anchor it.
    let other = tmpdir(&format!("{tag}-other"));
    openssl_pki(&other, newkey);
    let impostor =
        ParsedCertificate::from_pem(&std::fs::read_to_string(other.join("root.pem")).unwrap())
            .unwrap();
    let p = path_of(
        &good,
        &doc_sign::TrustOptions {
            anchors: std::slice::from_ref(&impostor),
            ..strict
        },
    );
    assert!(!p.valid, "{p:?}");

    // Revoked by the root: the CRL alone and the OCSP response alone each report it.
    let (crl, ocsp) = openssl_revocation(&dir, Some("signer.pem"));
    for (crls, ocsps) in [(vec![crl], vec![]), (vec![], vec![ocsp])] {
        let pdf = doc_sign::add_dss(
            &signed,
            &doc_sign::LtvMaterial {
                certs: vec![],
                ocsps,
                crls,
            },
        )
        .unwrap();
        let p = path_of(&pdf, &strict);
        assert!(!p.valid, "{p:?}");
        assert!(
            p.error.as_deref().unwrap_or("").contains("revoked"),
            "{p:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other);
}

#[test]
fn pyhanko_ecdsa_p256_signer_path_and_revocation_from_openssl_ca() {
    foreign_path_and_revocation("path-p256", P256_KEY);
}

#[test]
fn pyhanko_rsa2048_signer_path_and_revocation_from_openssl_ca() {
    foreign_path_and_revocation("path-rsa", RSA_KEY);
}
