//! Certificates, chains, profiles and CSRs checked with the OpenSSL CLI.

use crate::testca::{self, TestCa};
use crate::{openssl, run, tmpdir};
use gm_pki::cert::issue_certificate;
use gm_pki::csr::{ParsedCsr, build_csr};
use gm_pki::profile::{self, Period};
use gm_pki::{DnBuilder, ParsedCertificate, Sm2Signer, SoftwareSigner, oid};
use std::time::SystemTime;

const DISTID: &str = "distid:1234567812345678";

#[test]
fn three_level_chain_verifies_with_openssl() {
    let ca = TestCa::new(SystemTime::now());
    let d = tmpdir("chain");
    ca.write(&d);
    let out = openssl(
        &d,
        &[
            "verify", "-vfyopt", DISTID, "-CAfile", "root.pem", "int.pem",
        ],
    );
    assert!(out.contains("int.pem: OK"), "{out}");
    for leaf in ["staff.pem", "tsa.pem", "ocsp.pem"] {
        let out = openssl(
            &d,
            &[
                "verify",
                "-vfyopt",
                DISTID,
                "-partial_chain",
                "-CAfile",
                "int.pem",
                leaf,
            ],
        );
        assert!(out.contains(&format!("{leaf}: OK")), "{out}");
    }
    // OpenSSL 3.0 applies -vfyopt distid only to the leaf's signature, so a full 3-level
    // verification fails at depth 1 ("certificate signature failure"): hence link by link above.
    // Without the distinguishing ID OpenSSL uses an empty ID: our signatures must NOT verify.
    let o = run(&d, "openssl", &["verify", "-CAfile", "root.pem", "int.pem"]);
    assert!(!o.ok, "verified without distid?\n{}", o.text);
    // A leaf against the wrong CA fails.
    let o = run(
        &d,
        "openssl",
        &[
            "verify",
            "-vfyopt",
            DISTID,
            "-partial_chain",
            "-CAfile",
            "root.pem",
            "staff.pem",
        ],
    );
    assert!(!o.ok, "{}", o.text);
}

#[test]
fn openssl_shows_profile_extensions() {
    let ca = TestCa::new(SystemTime::now());
    let d = tmpdir("text");
    ca.write(&d);
    let root = openssl(&d, &["x509", "-in", "root.pem", "-noout", "-text"]);
    assert!(root.contains("Signature Algorithm: SM2-with-SM3"), "{root}");
    assert!(root.contains("CA:TRUE"), "{root}");
    assert!(root.contains("Certificate Sign, CRL Sign"), "{root}");
    assert!(root.contains("ASN1 OID: SM2"), "{root}");
    let int = openssl(&d, &["x509", "-in", "int.pem", "-noout", "-text"]);
    assert!(int.contains("CA:TRUE, pathlen:0"), "{int}");
    assert!(int.contains("X509v3 Authority Key Identifier"), "{int}");
    let staff = openssl(
        &d,
        &[
            "x509",
            "-in",
            "staff.pem",
            "-noout",
            "-text",
            "-nameopt",
            "utf8,sep_comma_plus_space",
        ],
    );
    for want in [
        "CA:FALSE",
        "Digital Signature, Non Repudiation",
        "http://pki.example-hospital.cn/crl/staff.crl",
        "OCSP - URI:http://pki.example-hospital.cn/ocsp",
        "CA Issuers - URI:http://pki.example-hospital.cn/ca/staff.cer",
        "1.2.156.10260.4.1.1",
        testca::RESIDENT_ID,
        testca::LICENCE_OID,
        "110440000012345",
        "CN=张三",
        "OU=心内科",
        "serialNumber=E00123",
        "X509v3 Subject Key Identifier",
    ] {
        assert!(staff.contains(want), "missing {want:?} in\n{staff}");
    }
    let tsa = openssl(&d, &["x509", "-in", "tsa.pem", "-noout", "-text"]);
    assert!(tsa.contains("X509v3 Extended Key Usage: critical"), "{tsa}");
    assert!(tsa.contains("Time Stamping"), "{tsa}");
    let ocsp = openssl(&d, &["x509", "-in", "ocsp.pem", "-noout", "-text"]);
    assert!(ocsp.contains("OCSP Signing"), "{ocsp}");
    assert!(ocsp.contains("OCSP No Check"), "{ocsp}");
    // Serial: at least 64 random bits, positive.
    let serial = openssl(&d, &["x509", "-in", "staff.pem", "-noout", "-serial"]);
    let hex = serial.trim().trim_start_matches("serial=");
    assert!(hex.len() >= 16, "{serial}");
    assert_eq!(ca.staff.cert.serial_hex(), hex.to_ascii_lowercase());
}

#[test]
fn parsed_accessors_read_back_profiles() {
    let ca = TestCa::new(SystemTime::now());
    let staff = &ca.staff.cert;
    assert_eq!(
        staff.subject_attr(oid::AT_COMMON_NAME).as_deref(),
        Some("张三")
    );
    assert_eq!(
        staff.string_extension(oid::GM_RESIDENT_ID).as_deref(),
        Some(testca::RESIDENT_ID)
    );
    assert_eq!(
        staff
            .string_extension(testca::LICENCE_OID.parse().unwrap())
            .as_deref(),
        Some("110440000012345")
    );
    assert_eq!(
        staff.ocsp_urls(),
        vec!["http://pki.example-hospital.cn/ocsp".to_owned()]
    );
    assert_eq!(staff.crl_urls().len(), 1);
    assert_eq!(staff.authority_key_id(), ca.int.cert.subject_key_id());
    assert!(!staff.is_ca());
    assert_eq!(
        ca.int.cert.basic_constraints().unwrap(),
        Some((true, Some(0)))
    );
    assert_eq!(
        ca.tsa.cert.ext_key_usage().unwrap(),
        vec![oid::KP_TIME_STAMPING]
    );
    staff.verify_signature(&ca.int.key.public_key()).unwrap();
    assert!(staff.verify_signature(&ca.root.key.public_key()).is_err());
    // PEM import of a chain.
    let pem = format!("{}{}", ca.int.cert.to_pem(), ca.root.cert.to_pem());
    let certs = ParsedCertificate::parse_many(pem.as_bytes()).unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[1], ca.root.cert);
}

#[test]
fn patient_device_seal_profiles_verify_with_openssl() {
    let ca = TestCa::new(SystemTime::now());
    let d = tmpdir("profiles");
    ca.write(&d);
    let mut rng = testca::rng();
    let key = SoftwareSigner::generate(&mut rng).unwrap();
    let info = profile::PatientEventInfo {
        name: "李四".into(),
        resident_id: testca::RESIDENT_ID.into(),
        event_id: "EV-2026-000042".into(),
        hospital: "示例医院".into(),
    };
    let p = profile::patient_event(
        &info,
        key.public_key(),
        SystemTime::now(),
        30,
        &testca::urls(),
    )
    .unwrap();
    let cert = issue_certificate(&p, Some(&ca.int.cert), &ca.int.key, &mut rng).unwrap();
    std::fs::write(d.join("patient.pem"), cert.to_pem()).unwrap();
    let text = openssl(
        &d,
        &[
            "x509",
            "-in",
            "patient.pem",
            "-noout",
            "-text",
            "-nameopt",
            "utf8,sep_comma_plus_space",
        ],
    );
    assert!(
        !text.contains(testca::RESIDENT_ID),
        "plain ID number leaked:\n{text}"
    );
    assert!(
        text.contains(&profile::hashed_resident_id(testca::RESIDENT_ID)),
        "{text}"
    );
    assert!(text.contains("EV-2026-000042"), "{text}");
    let secs = cert
        .not_after()
        .duration_since(cert.not_before())
        .unwrap()
        .as_secs();
    assert_eq!(secs, 30 * 60);
    let out = openssl(
        &d,
        &[
            "verify",
            "-vfyopt",
            DISTID,
            "-partial_chain",
            "-CAfile",
            "int.pem",
            "patient.pem",
        ],
    );
    assert!(out.contains("OK"), "{out}");

    let dev = profile::device(
        &profile::DeviceInfo {
            device_id: "PAD-0007".into(),
            ward: "5病区".into(),
            hospital: "示例医院".into(),
        },
        key.public_key(),
        Period::starting(SystemTime::now(), testca::days(365)).unwrap(),
        &testca::urls(),
    )
    .unwrap();
    let dev = issue_certificate(&dev, Some(&ca.int.cert), &ca.int.key, &mut rng).unwrap();
    std::fs::write(d.join("device.pem"), dev.to_pem()).unwrap();
    let text = openssl(&d, &["x509", "-in", "device.pem", "-noout", "-text"]);
    assert!(text.contains("TLS Web Client Authentication"), "{text}");

    let seal = profile::organisation(
        &profile::OrganisationInfo {
            organisation: "示例医院".into(),
            seal_name: "医务处公章".into(),
            credit_code: Some("12100000400000000X".into()),
        },
        key.public_key(),
        Period::starting(SystemTime::now(), testca::days(365)).unwrap(),
        &testca::urls(),
    )
    .unwrap();
    let seal = issue_certificate(&seal, Some(&ca.int.cert), &ca.int.key, &mut rng).unwrap();
    std::fs::write(d.join("seal.pem"), seal.to_pem()).unwrap();
    let out = openssl(
        &d,
        &[
            "verify",
            "-vfyopt",
            DISTID,
            "-partial_chain",
            "-CAfile",
            "int.pem",
            "seal.pem",
            "device.pem",
        ],
    );
    assert!(
        out.contains("seal.pem: OK") && out.contains("device.pem: OK"),
        "{out}"
    );
}

#[test]
fn bad_resident_id_is_refused() {
    let key = SoftwareSigner::generate(&mut testca::rng()).unwrap();
    let info = profile::PatientEventInfo {
        name: "王五".into(),
        resident_id: "110105194912310021".into(),
        event_id: "E1".into(),
        hospital: "H".into(),
    };
    assert!(matches!(
        profile::patient_event(
            &info,
            key.public_key(),
            SystemTime::now(),
            10,
            &testca::urls()
        ),
        Err(gm_pki::Error::InvalidArgument(_))
    ));
    gm_pki::name::validate_resident_id("11010519491231002X").unwrap();
    gm_pki::name::validate_resident_id("11010519491231002x").unwrap();
    assert!(gm_pki::name::validate_resident_id("1101051949123100").is_err());
}

#[test]
fn csr_built_by_us_verifies_with_openssl_and_openssl_csr_parses() {
    let d = tmpdir("csr");
    let key = SoftwareSigner::generate(&mut testca::rng()).unwrap();
    let dn = DnBuilder::new()
        .country("CN")
        .organization("示例医院")
        .common_name("赵六")
        .build()
        .unwrap();
    let der = build_csr(&dn, &key, &[]).unwrap();
    let csr = ParsedCsr::from_der(&der).unwrap();
    assert_eq!(csr.public_key(), key.public_key());
    std::fs::write(d.join("req.pem"), csr.to_pem()).unwrap();
    let out = openssl(
        &d,
        &[
            "req", "-in", "req.pem", "-noout", "-verify", "-vfyopt", DISTID,
        ],
    );
    assert!(
        out.contains("verify OK") && !out.contains("failure"),
        "{out}"
    );
    // Without the ID OpenSSL must report a failure (it exits 0, so read the text).
    let out = run(
        &d,
        "openssl",
        &["req", "-in", "req.pem", "-noout", "-verify"],
    )
    .text;
    assert!(out.contains("verify failure"), "{out}");

    // A CSR made by OpenSSL with an SM2 key and SM3, parsed and proof-of-possession checked by us.
    openssl(
        &d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:SM2",
            "-out",
            "k.pem",
        ],
    );
    openssl(
        &d,
        &[
            "req",
            "-new",
            "-key",
            "k.pem",
            "-sm3",
            "-sigopt",
            DISTID,
            "-subj",
            "/C=CN/O=Test/CN=openssl",
            "-out",
            "o.pem",
        ],
    );
    let ours = ParsedCsr::from_pem(&std::fs::read_to_string(d.join("o.pem")).unwrap()).unwrap();
    assert!(ours.subject_string().contains("CN=openssl"));
    // Tampered: flip a byte in the subject → PoP fails.
    let mut bad = ours.der().to_vec();
    let pos = bad.windows(7).position(|w| w == b"openssl").unwrap();
    bad[pos] ^= 1;
    assert!(matches!(
        ParsedCsr::from_der(&bad),
        Err(gm_pki::Error::BadSignature(_))
    ));
}

#[test]
fn signer_z_value_matches_rustcrypto_verifier() {
    use sm2::dsa::signature::Verifier;
    let key = SoftwareSigner::generate(&mut testca::rng()).unwrap();
    let sig = key.sign(b"hello").unwrap();
    let vk = sm2::dsa::VerifyingKey::new(gm_pki::DEFAULT_DISTID, key.public_key()).unwrap();
    vk.verify(b"hello", &sig).unwrap();
    assert!(vk.verify(b"hellp", &sig).is_err());
    // A different distinguishing ID gives a different Z, so the signature does not verify.
    assert!(gm_pki::signer::verify(&key.public_key(), "alice@example", b"hello", &sig).is_err());
}
