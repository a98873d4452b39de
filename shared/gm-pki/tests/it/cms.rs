//! CMS SignedData: ours checked with asn1crypto + openssl pkeyutl; theirs (asn1crypto + openssl
//! pkeyutl -sign) verified with ours; CAdES-T time stamps.

use crate::testca::TestCa;
use crate::tsp::tsa;
use crate::{py, tmpdir};
use gm_pki::cms::{self, HashAlg, OidFlavor, SignOptions};
use gm_pki::tsp;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn opts(flavor: OidFlavor, detached: bool) -> SignOptions {
    SignOptions {
        flavor,
        detached,
        signing_time: Some(UNIX_EPOCH + Duration::from_secs(1_790_000_000)),
    }
}

#[test]
fn our_cms_checked_by_asn1crypto_and_openssl() {
    let ca = TestCa::new(SystemTime::now());
    let d = tmpdir("cms");
    ca.write(&d);
    let data = "住院病历：患者李四，2026-11-27 入院。".as_bytes();
    std::fs::write(d.join("doc"), data).unwrap();
    for (flavor, detached, name) in [
        (OidFlavor::Rfc5652, false, "att.der"),
        (OidFlavor::Rfc5652, true, "det.der"),
        (OidFlavor::GbT35275, false, "gm.der"),
    ] {
        let der = cms::sign(
            data,
            &ca.staff.cert,
            std::slice::from_ref(&ca.int.cert),
            &ca.staff.key,
            &opts(flavor, detached),
        )
        .unwrap();
        std::fs::write(d.join(name), &der).unwrap();
        let mut args = vec!["--cms", name, "--pub", "staff.pub.pem"];
        if detached {
            args.extend(["--data", "doc"]);
        }
        let json = py(&d, "check_cms.py", &args);
        assert!(json.contains("\"ok\": true"), "{json}");
        assert!(
            json.contains("1.2.840.113549.1.9.16.2.47") && json.contains("1.2.840.113549.1.9.5"),
            "{json}"
        );
        let want_ct = if flavor == OidFlavor::GbT35275 {
            "1.2.156.10197.6.1.4.2.2"
        } else {
            "1.2.840.113549.1.7.2"
        };
        assert!(json.contains(want_ct), "{json}");

        let rep = cms::verify(&der, detached.then_some(data), &[]).unwrap();
        assert!(rep.ok(), "{rep:?}");
        assert_eq!(rep.flavor, flavor);
        assert_eq!(rep.attached, !detached);
        let s = &rep.signers[0];
        assert_eq!(s.signer_cert.as_ref().unwrap(), &ca.staff.cert);
        assert_eq!(
            s.signing_time,
            Some(UNIX_EPOCH + Duration::from_secs(1_790_000_000))
        );
        assert_eq!(s.signing_certificate_ok, Some(true));
        assert!(s.timestamp.is_none());
        // Wrong detached content: digest fails, reported, not an error.
        if detached {
            let bad = cms::verify(&der, Some(b"other"), &[]).unwrap();
            assert!(!bad.ok() && !bad.signers[0].digest_ok);
        }
    }
}

#[test]
fn cms_from_another_implementation_verifies_with_ours() {
    let ca = TestCa::new(SystemTime::now());
    let d = tmpdir("cms-ext");
    ca.write(&d);
    std::fs::write(d.join("doc"), "外部实现签名的数据").unwrap();
    py(
        &d,
        "make_cms.py",
        &[
            "--cert",
            "staff.pem",
            "--key",
            "staff.key.pem",
            "--data",
            "doc",
            "--out",
            "ext.der",
        ],
    );
    py(
        &d,
        "make_cms.py",
        &[
            "--cert",
            "staff.pem",
            "--key",
            "staff.key.pem",
            "--data",
            "doc",
            "--out",
            "extdet.der",
            "--detached",
        ],
    );
    py(
        &d,
        "make_cms.py",
        &[
            "--cert",
            "staff.pem",
            "--key",
            "staff.key.pem",
            "--data",
            "doc",
            "--out",
            "extgm.der",
            "--gm",
        ],
    );
    let doc = std::fs::read(d.join("doc")).unwrap();
    for (f, detached, flavor) in [
        ("ext.der", false, OidFlavor::Rfc5652),
        ("extdet.der", true, OidFlavor::Rfc5652),
        ("extgm.der", false, OidFlavor::GbT35275),
    ] {
        let der = std::fs::read(d.join(f)).unwrap();
        let rep = cms::verify(&der, detached.then_some(doc.as_slice()), &[]).unwrap();
        assert!(rep.ok(), "{f}: {rep:?}");
        assert_eq!(rep.flavor, flavor);
        assert_eq!(rep.content, doc);
        assert!(rep.signers[0].signing_certificate_ok.is_none());
        assert!(rep.signers[0].signing_time.is_some());
        // Flip a byte of the signature: signature_ok false.
        let sig = {
            let v = cms::signature_value(&der).unwrap();
            v[v.len() - 8..].to_vec()
        };
        let pos = der.windows(8).position(|w| w == sig.as_slice()).unwrap();
        let mut bad = der.clone();
        bad[pos] ^= 0x80;
        match cms::verify(&bad, detached.then_some(doc.as_slice()), &[]) {
            Ok(r) => assert!(!r.ok() && !r.signers[0].signature_ok, "{f}"),
            Err(e) => assert!(matches!(e, gm_pki::Error::Malformed { .. }), "{e}"),
        }
    }
}

#[test]
fn cades_t_timestamp_added_and_checked() {
    let ca = TestCa::new(SystemTime::now());
    let d = tmpdir("cades");
    ca.write(&d);
    let data = b"nursing record 42";
    let der = cms::sign(
        data,
        &ca.staff.cert,
        &[],
        &ca.staff.key,
        &opts(OidFlavor::Rfc5652, false),
    )
    .unwrap();
    let sigval = cms::signature_value(&der).unwrap();
    let req = tsp::build_request(
        HashAlg::Sm3,
        &gm_pki::signer::sm3(&sigval),
        None,
        Some(&[9; 8]),
        true,
    )
    .unwrap();
    let resp = tsa(&ca).respond(&req, SystemTime::now(), &[0x11, 0x22]);
    let token = tsp::parse_response(&resp).unwrap().token.unwrap();
    let with_ts = cms::add_signature_timestamp(&der, &token).unwrap();
    std::fs::write(d.join("t.der"), &with_ts).unwrap();
    let json = py(
        &d,
        "check_cms.py",
        &["--cms", "t.der", "--pub", "staff.pub.pem"],
    );
    assert!(json.contains("1.2.840.113549.1.9.16.2.14"), "{json}");
    let rep = cms::verify(&with_ts, None, &[]).unwrap();
    assert!(rep.ok(), "{rep:?}");
    let ts = rep.signers[0].timestamp.as_ref().unwrap();
    assert!(ts.valid && ts.gen_time.is_some());
    // A token over something else is refused when attaching.
    let other =
        tsp::build_request(HashAlg::Sm3, &gm_pki::signer::sm3(b"x"), None, None, true).unwrap();
    let other = tsp::parse_response(&tsa(&ca).respond(&other, SystemTime::now(), &[3]))
        .unwrap()
        .token
        .unwrap();
    assert!(matches!(
        cms::add_signature_timestamp(&der, &other),
        Err(gm_pki::Error::DigestMismatch(_))
    ));
}

#[test]
fn a_cosigning_party_reads_the_digest_it_is_asked_to_sign() {
    use proptest::prelude::*;
    let ca = TestCa::new(SystemTime::now());
    let digest = [0x5a; 32];
    let prepared = cms::prepare_detached(
        &digest,
        &ca.staff.cert,
        std::slice::from_ref(&ca.int.cert),
        &opts(OidFlavor::Rfc5652, true),
        &[],
    )
    .unwrap();
    let attrs = prepared.to_be_signed();
    assert_eq!(
        cms::signed_attributes_message_digest(attrs).unwrap(),
        digest
    );
    // Truncated, extended or altered bytes never yield a digest silently.
    assert!(cms::signed_attributes_message_digest(&attrs[..attrs.len() - 1]).is_err());
    let mut longer = attrs.to_vec();
    longer.push(0);
    assert!(cms::signed_attributes_message_digest(&longer).is_err());
    let at = attrs.windows(32).position(|w| w == digest).unwrap();
    proptest!(|(i in 0..attrs.len(), flip in 1u8..=255)| {
        let mut bad = attrs.to_vec();
        bad[i] ^= flip;
        // Never a panic; a change inside the digest value reads as another digest (the phone
        // then refuses), and other attributes are covered by the signature itself.
        if let Ok(d) = cms::signed_attributes_message_digest(&bad)
            && (at..at + 32).contains(&i)
        {
            prop_assert_ne!(d, digest);
        }
    });
}
