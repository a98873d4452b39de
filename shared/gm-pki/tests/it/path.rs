//! Path validation: a good path, and each failure with its typed reason; import of an
//! OpenSSL-issued SM2 chain.

use crate::testca::{self, TestCa};
use crate::{openssl, tmpdir};
use gm_pki::cert::issue_certificate;
use gm_pki::crl::{CrlParams, RevocationReason, RevokedEntry, build_crl};
use gm_pki::ocsp::{self, CertId, CertStatus, Responder, SingleResponse};
use gm_pki::path::{Options, Purpose, Revocation, validate_path};
use gm_pki::profile::{self, IssuingCaKind, Period};
use gm_pki::{DnBuilder, ParsedCertificate, PathError, Sm2Signer, SoftwareSigner};
use std::time::{Duration, SystemTime};

fn leaf_under(
    ca: &TestCa,
    issuer: &ParsedCertificate,
    key: &SoftwareSigner,
    cn: &str,
) -> (SoftwareSigner, ParsedCertificate) {
    let mut rng = testca::rng();
    let k = SoftwareSigner::generate(&mut rng).unwrap();
    let info = profile::StaffInfo {
        name: cn.into(),
        staff_id: "X1".into(),
        department: "d".into(),
        hospital: "h".into(),
        resident_id: None,
        licence: None,
    };
    let p = profile::staff(
        &info,
        testca::LICENCE_OID.parse().unwrap(),
        k.public_key(),
        Period::starting(ca.now - Duration::from_secs(60), testca::days(30)).unwrap(),
        &testca::urls(),
    )
    .unwrap();
    let c = issue_certificate(&p, Some(issuer), key, &mut rng).unwrap();
    (k, c)
}

#[test]
fn good_paths() {
    let ca = TestCa::new(SystemTime::now());
    let roots = [ca.root.cert.clone()];
    let ints = [ca.int.cert.clone()];
    let p = validate_path(
        &ca.staff.cert,
        &ints,
        &roots,
        &Options::new(ca.now, Purpose::DocumentSigning),
    )
    .unwrap();
    assert_eq!(p.chain.len(), 3);
    assert_eq!(p.chain[2], ca.root.cert);
    validate_path(
        &ca.tsa.cert,
        &ints,
        &roots,
        &Options::new(ca.now, Purpose::TimeStamping),
    )
    .unwrap();
    validate_path(
        &ca.ocsp.cert,
        &ints,
        &roots,
        &Options::new(ca.now, Purpose::OcspSigning),
    )
    .unwrap();
    validate_path(
        &ca.int.cert,
        &[],
        &roots,
        &Options::new(ca.now, Purpose::CertSigning),
    )
    .unwrap();
    // Anchored at the intermediate directly.
    validate_path(
        &ca.staff.cert,
        &[],
        &ints,
        &Options::new(ca.now, Purpose::DocumentSigning),
    )
    .unwrap();
}

#[test]
fn each_failure_has_its_type() {
    let ca = TestCa::new(SystemTime::now());
    let roots = [ca.root.cert.clone()];
    let ints = [ca.int.cert.clone()];
    let opts = |t| Options::new(t, Purpose::DocumentSigning);

    // Expired / not yet valid.
    let later = ca.now + testca::days(400);
    assert!(
        matches!(validate_path(&ca.staff.cert, &ints, &roots, &opts(later)), Err(PathError::Expired { subject, .. }) if subject.contains("张三"))
    );
    let before = ca.now - Duration::from_secs(7200);
    assert!(matches!(
        validate_path(&ca.staff.cert, &ints, &roots, &opts(before)),
        Err(PathError::NotYetValid { .. })
    ));

    // Broken chain: intermediate missing.
    assert!(matches!(
        validate_path(&ca.staff.cert, &[], &roots, &opts(ca.now)),
        Err(PathError::BrokenChain { .. })
    ));

    // Bad signature: flip a bit in the signature value.
    let mut der = ca.staff.cert.der().to_vec();
    let n = der.len();
    der[n - 5] ^= 0x01;
    let tampered = ParsedCertificate::from_der(&der).unwrap();
    assert!(matches!(
        validate_path(&tampered, &ints, &roots, &opts(ca.now)),
        Err(PathError::BadSignature { .. })
    ));

    // Wrong usage: a staff certificate used for time stamping; a staff certificate as an issuer.
    assert!(matches!(
        validate_path(
            &ca.staff.cert,
            &ints,
            &roots,
            &Options::new(ca.now, Purpose::TimeStamping)
        ),
        Err(PathError::WrongUsage {
            purpose: "time stamping",
            ..
        })
    ));
    let (_, under_staff) = leaf_under(&ca, &ca.staff.cert, &ca.staff.key, "下级");
    let with_staff = [ca.int.cert.clone(), ca.staff.cert.clone()];
    assert!(matches!(
        validate_path(&under_staff, &with_staff, &roots, &opts(ca.now)),
        Err(PathError::WrongUsage { .. })
    ));

    // Path length: the issuing CA has pathLen 0, so a sub-CA below it cannot issue.
    let mut rng = testca::rng();
    let sub_key = SoftwareSigner::generate(&mut rng).unwrap();
    let sub_dn = DnBuilder::new().common_name("sub CA").build().unwrap();
    let sub_p = profile::issuing_ca(
        sub_dn,
        sub_key.public_key(),
        Period::starting(ca.now - Duration::from_secs(60), testca::days(30)).unwrap(),
        IssuingCaKind::Seal,
        &testca::urls(),
    );
    let sub = issue_certificate(&sub_p, Some(&ca.int.cert), &ca.int.key, &mut rng).unwrap();
    let (_, under_sub) = leaf_under(&ca, &sub, &sub_key, "too deep");
    let chain = [ca.int.cert.clone(), sub.clone()];
    assert!(
        matches!(validate_path(&under_sub, &chain, &roots, &opts(ca.now)), Err(PathError::PathLengthExceeded { subject }) if subject.contains("医护人员CA"))
    );

    // Unknown critical extension.
    let k = SoftwareSigner::generate(&mut rng).unwrap();
    let mut p = gm_pki::CertificateParams::new(
        DnBuilder::new().common_name("crit").build().unwrap(),
        k.public_key(),
        ca.now - Duration::from_secs(60),
        ca.now + testca::days(1),
    );
    p.extra_extensions.push(x509_cert::ext::Extension {
        extn_id: "1.2.3.4.5".parse().unwrap(),
        critical: true,
        extn_value: der::asn1::OctetString::new(vec![5, 0]).unwrap(),
    });
    let crit = issue_certificate(&p, Some(&ca.int.cert), &ca.int.key, &mut rng).unwrap();
    assert!(
        matches!(validate_path(&crit, &ints, &roots, &opts(ca.now)), Err(PathError::UnknownCriticalExtension { oid, .. }) if oid == "1.2.3.4.5")
    );
}

#[test]
fn revocation_by_crl_and_ocsp() {
    let ca = TestCa::new(SystemTime::now());
    let roots = [ca.root.cert.clone()];
    let ints = [ca.int.cert.clone()];
    let t = ca.now;
    let crl = build_crl(
        &CrlParams {
            this_update: t - Duration::from_secs(60),
            next_update: t + testca::days(1),
            crl_number: 1,
            entries: vec![RevokedEntry {
                serial: ca.staff.cert.serial().to_vec(),
                time: t - Duration::from_secs(30),
                reason: Some(RevocationReason::AffiliationChanged),
            }],
        },
        &ca.int.cert,
        &ca.int.key,
    )
    .unwrap();
    let root_crl = build_crl(
        &CrlParams {
            this_update: t - Duration::from_secs(60),
            next_update: t + testca::days(1),
            crl_number: 1,
            entries: vec![],
        },
        &ca.root.cert,
        &ca.root.key,
    )
    .unwrap();
    let crls = [crl.clone(), root_crl.clone()];
    let opts = Options::new(t, Purpose::DocumentSigning).with_revocation(Revocation {
        crls: &crls,
        ocsp: &[],
        require: true,
    });
    let err = validate_path(&ca.staff.cert, &ints, &roots, &opts).unwrap_err();
    assert!(
        matches!(
            err,
            PathError::Revoked {
                reason: Some(RevocationReason::AffiliationChanged),
                ..
            }
        ),
        "{err:?}"
    );
    // The TSA certificate is not on the CRL: fine.
    let opts_tsa = Options::new(t, Purpose::TimeStamping).with_revocation(Revocation {
        crls: &crls,
        ocsp: &[],
        require: true,
    });
    validate_path(&ca.tsa.cert, &ints, &roots, &opts_tsa).unwrap();
    // A stale CRL (validation after nextUpdate) does not count; with `require` that is RevocationUnknown.
    let stale =
        Options::new(t + testca::days(2), Purpose::TimeStamping).with_revocation(Revocation {
            crls: &crls,
            ocsp: &[],
            require: true,
        });
    assert!(matches!(
        validate_path(&ca.tsa.cert, &ints, &roots, &stale),
        Err(PathError::RevocationUnknown { .. })
    ));
    // A CRL signed by the wrong key is ignored.
    let forged = build_crl(
        &CrlParams {
            this_update: t - Duration::from_secs(60),
            next_update: t + testca::days(1),
            crl_number: 2,
            entries: vec![],
        },
        &ca.root.cert,
        &ca.root.key,
    )
    .unwrap();
    let only_forged = [forged, root_crl.clone()];
    let o = Options::new(t, Purpose::DocumentSigning).with_revocation(Revocation {
        crls: &only_forged,
        ocsp: &[],
        require: true,
    });
    assert!(matches!(
        validate_path(&ca.staff.cert, &ints, &roots, &o),
        Err(PathError::RevocationUnknown { .. })
    ));

    // OCSP: revoked staff certificate, via the delegated responder.
    let id = CertId::for_cert(&ca.staff.cert, &ca.int.cert, gm_pki::cms::HashAlg::Sha1).unwrap();
    let resp = Responder {
        cert: &ca.ocsp.cert,
        signer: &ca.ocsp.key,
    }
    .respond(
        &[SingleResponse {
            cert_id: id.clone(),
            status: CertStatus::Revoked {
                time: t - Duration::from_secs(10),
                reason: Some(RevocationReason::Superseded),
            },
            this_update: t - Duration::from_secs(5),
            next_update: Some(t + testca::days(1)),
        }],
        None,
        t,
    )
    .unwrap();
    let parsed = [ocsp::parse_response(&resp).unwrap()];
    let root_crls = [root_crl.clone()];
    let o = Options::new(t, Purpose::DocumentSigning).with_revocation(Revocation {
        crls: &root_crls,
        ocsp: &parsed,
        require: true,
    });
    assert!(matches!(
        validate_path(&ca.staff.cert, &ints, &roots, &o),
        Err(PathError::Revoked {
            reason: Some(RevocationReason::Superseded),
            ..
        })
    ));
    // And good.
    let good = Responder {
        cert: &ca.ocsp.cert,
        signer: &ca.ocsp.key,
    }
    .respond(
        &[SingleResponse {
            cert_id: id,
            status: CertStatus::Good,
            this_update: t - Duration::from_secs(5),
            next_update: Some(t + testca::days(1)),
        }],
        None,
        t,
    )
    .unwrap();
    let parsed = [ocsp::parse_response(&good).unwrap()];
    let o = Options::new(t, Purpose::DocumentSigning).with_revocation(Revocation {
        crls: &root_crls,
        ocsp: &parsed,
        require: true,
    });
    validate_path(&ca.staff.cert, &ints, &roots, &o).unwrap();
}

#[test]
fn import_openssl_issued_chain() {
    let d = tmpdir("import");
    let id = "distid:1234567812345678";
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
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:SM2",
            "-out",
            "ee.key",
        ],
    );
    std::fs::write(d.join("ca.ext"), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n").unwrap();
    std::fs::write(d.join("ee.ext"), "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\nauthorityKeyIdentifier=keyid\n").unwrap();
    openssl(
        &d,
        &[
            "req",
            "-new",
            "-key",
            "ca.key",
            "-sm3",
            "-sigopt",
            id,
            "-subj",
            "/C=CN/O=External CA/CN=External SM2 Root",
            "-out",
            "ca.csr",
        ],
    );
    openssl(
        &d,
        &[
            "x509", "-req", "-in", "ca.csr", "-key", "ca.key", "-sm3", "-sigopt", id, "-vfyopt",
            id, "-days", "30", "-extfile", "ca.ext", "-out", "ca.pem",
        ],
    );
    openssl(
        &d,
        &[
            "req",
            "-new",
            "-key",
            "ee.key",
            "-sm3",
            "-sigopt",
            id,
            "-subj",
            "/C=CN/O=External/CN=External Doctor",
            "-out",
            "ee.csr",
        ],
    );
    openssl(
        &d,
        &[
            "x509", "-req", "-in", "ee.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-sm3",
            "-sigopt", id, "-vfyopt", id, "-days", "30", "-extfile", "ee.ext", "-out", "ee.pem",
        ],
    );
    let bundle = format!(
        "{}{}",
        std::fs::read_to_string(d.join("ee.pem")).unwrap(),
        std::fs::read_to_string(d.join("ca.pem")).unwrap()
    );
    let certs = ParsedCertificate::parse_many(bundle.as_bytes()).unwrap();
    assert_eq!(certs.len(), 2);
    let der_ca = ParsedCertificate::parse_many(certs[1].der()).unwrap();
    assert_eq!(der_ca[0], certs[1]);
    let p = validate_path(
        &certs[0],
        &[],
        &der_ca,
        &Options::new(SystemTime::now(), Purpose::DocumentSigning),
    )
    .unwrap();
    assert_eq!(p.chain.len(), 2);
}
