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
        resident_id: Some(testca::RESIDENT_ID.into()),
        event_id: "EV-2026-000042".into(),
        hospital: "示例医院".into(),
    };
    let mac = profile::keyed_resident_id(b"hospital secret", testca::RESIDENT_ID).unwrap();
    let p = profile::patient_event(
        &info,
        Some(&mac),
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
    assert!(text.contains(&hex::encode(mac)), "{text}");
    // Not the unkeyed SM3 (enumerable), and the key changes the value.
    let plain = gm_pki::signer::sm3(testca::RESIDENT_ID.as_bytes());
    assert!(!text.contains(&hex::encode(plain)), "{text}");
    assert_ne!(
        profile::keyed_resident_id(b"another hospital", testca::RESIDENT_ID).unwrap(),
        mac
    );
    assert_eq!(
        profile::keyed_resident_id(b"hospital secret", &testca::RESIDENT_ID.to_lowercase())
            .unwrap(),
        mac,
        "the check character x/X hashes the same"
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
            credit_code: Some("12100000400000000W".into()),
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
        resident_id: Some("110105194912310021".into()),
        event_id: "E1".into(),
        hospital: "H".into(),
    };
    assert!(matches!(
        profile::patient_event(
            &info,
            Some(&[0; 32]),
            key.public_key(),
            SystemTime::now(),
            10,
            &testca::urls()
        ),
        Err(gm_pki::Error::InvalidField {
            field: "resident_id",
            ..
        })
    ));
    gm_pki::name::validate_resident_id("11010519491231002X").unwrap();
    gm_pki::name::validate_resident_id("11010519491231002x").unwrap();
    assert!(gm_pki::name::validate_resident_id("1101051949123100").is_err());
}

#[test]
fn profile_fields_are_validated() {
    let staff = profile::StaffInfo {
        name: "张三".into(),
        staff_id: "E00123".into(),
        department: "心内科".into(),
        hospital: "示例医院".into(),
        resident_id: Some(testca::RESIDENT_ID.into()),
        licence: Some("110440000012345".into()),
    };
    staff.validate().unwrap();
    let field_of = |r: gm_pki::Result<()>| match r {
        Err(gm_pki::Error::InvalidField { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let with = |f: &dyn Fn(&mut profile::StaffInfo)| {
        let mut s = staff.clone();
        f(&mut s);
        s.validate()
    };
    assert_eq!(field_of(with(&|s| s.name = String::new())), "name");
    assert_eq!(field_of(with(&|s| s.name = "张".repeat(65))), "name");
    with(&|s| s.name = "张".repeat(64)).unwrap();
    assert_eq!(field_of(with(&|s| s.name = " 张三".into())), "name");
    assert_eq!(
        field_of(with(&|s| s.department = "心\n内科".into())),
        "department"
    );
    assert_eq!(field_of(with(&|s| s.staff_id = "E 1".into())), "staff_id");
    assert_eq!(field_of(with(&|s| s.hospital = String::new())), "hospital");
    assert_eq!(
        field_of(with(&|s| s.resident_id = Some("110105194912310021".into()))),
        "resident_id"
    );
    assert_eq!(
        field_of(with(&|s| s.resident_id = Some("1101051949123100".into()))),
        "resident_id"
    );
    assert_eq!(
        field_of(with(&|s| s.licence = Some("许可证".into()))),
        "licence"
    );

    profile::validate_credit_code("91350100M000100Y43").unwrap();
    profile::validate_credit_code("12100000400000000W").unwrap();
    for bad in [
        "12100000400000000X",
        "91350100M000100Y4",
        "9135010OM000100Y43",
    ] {
        assert_eq!(
            field_of(profile::validate_credit_code(bad)),
            "credit_code",
            "{bad}"
        );
    }
    let device = profile::DeviceInfo {
        device_id: "PAD 7".into(),
        ward: "5病区".into(),
        hospital: "示例医院".into(),
    };
    assert_eq!(field_of(device.validate()), "device_id");
}

#[test]
fn renewal_keeps_subject_usages_and_identity_extensions() {
    let ca = TestCa::new(SystemTime::now());
    let mut rng = testca::rng();
    let new_key = SoftwareSigner::generate(&mut rng).unwrap();
    let start = SystemTime::now();
    let p = profile::renewal(
        &ca.staff.cert,
        new_key.public_key(),
        Period::starting(start, testca::days(30)).unwrap(),
        &testca::urls(),
    )
    .unwrap();
    let renewed = issue_certificate(&p, Some(&ca.int.cert), &ca.int.key, &mut rng).unwrap();
    assert_eq!(renewed.subject(), ca.staff.cert.subject());
    assert_ne!(renewed.serial(), ca.staff.cert.serial());
    assert_eq!(renewed.public_key().unwrap(), new_key.public_key());
    assert_eq!(
        renewed.key_usage().unwrap(),
        ca.staff.cert.key_usage().unwrap()
    );
    for ext in [
        gm_pki::oid::GM_RESIDENT_ID,
        testca::LICENCE_OID.parse().unwrap(),
    ] {
        assert_eq!(
            renewed.extension(ext),
            ca.staff.cert.extension(ext),
            "{ext}"
        );
    }
    // Generated extensions are regenerated, not duplicated.
    let skis = renewed
        .extensions()
        .iter()
        .filter(|e| e.extn_id == gm_pki::oid::EXT_SUBJECT_KEY_ID)
        .count();
    assert_eq!(skis, 1);
    assert_ne!(renewed.subject_key_id(), ca.staff.cert.subject_key_id());
    assert!(
        profile::renewal(
            &ca.int.cert,
            new_key.public_key(),
            Period::starting(start, testca::days(30)).unwrap(),
            &testca::urls(),
        )
        .is_err(),
        "CA certificates are not renewed"
    );
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
