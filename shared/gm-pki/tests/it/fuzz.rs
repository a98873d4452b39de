//! Property tests: every parser on truncated, bit-flipped, extended and random DER never panics
//! and reports a typed error where the input is not the original.

use crate::testca::{self, TestCa};
use gm_pki::cms::{self, HashAlg, OidFlavor, SignOptions};
use gm_pki::crl::{CrlParams, ParsedCrl, RevocationReason, RevokedEntry, build_crl};
use gm_pki::csr::{ParsedCsr, RequestInfo, build_csr, request_info_der};
use gm_pki::ocsp::{self, CertId, CertStatus, Responder, SingleResponse};
use gm_pki::path::{Options, Purpose, validate_path};
use gm_pki::{DnBuilder, Error, ParsedCertificate, tsp};
use proptest::prelude::*;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

struct Samples {
    ca: TestCa,
    /// (name, DER) of every structure we parse.
    ders: Vec<(&'static str, Vec<u8>)>,
}

fn samples() -> &'static Samples {
    static S: OnceLock<Samples> = OnceLock::new();
    S.get_or_init(|| {
        let ca = TestCa::new(SystemTime::now());
        let now = ca.now;
        let crl = build_crl(
            &CrlParams {
                this_update: now,
                next_update: now + Duration::from_secs(3600),
                crl_number: 7,
                entries: vec![RevokedEntry {
                    serial: vec![1, 2, 3],
                    time: now,
                    reason: Some(RevocationReason::KeyCompromise),
                }],
            },
            &ca.int.cert,
            &ca.int.key,
        )
        .unwrap();
        let csr = build_csr(
            &DnBuilder::new().common_name("fuzz").build().unwrap(),
            &ca.staff.key,
            &[],
        )
        .unwrap();
        let csr_info = request_info_der(
            &DnBuilder::new().common_name("fuzz").build().unwrap(),
            &gm_pki::Sm2Signer::public_key(&ca.staff.key),
            &[],
        )
        .unwrap();
        let id = CertId::for_cert(&ca.staff.cert, &ca.int.cert, HashAlg::Sha1).unwrap();
        let oreq = ocsp::build_request(std::slice::from_ref(&id), Some(&[1; 16])).unwrap();
        let oresp = Responder {
            cert: &ca.ocsp.cert,
            signer: &ca.ocsp.key,
        }
        .respond(
            &[SingleResponse {
                cert_id: id,
                status: CertStatus::Good,
                this_update: now,
                next_update: None,
            }],
            Some(&[4, 2, 9, 9]),
            now,
        )
        .unwrap();
        let treq =
            tsp::build_request(HashAlg::Sm3, &[7; 32], None, Some(&[0x11; 8]), true).unwrap();
        let tsa = tsp::Tsa {
            cert: &ca.tsa.cert,
            chain: &[],
            signer: &ca.tsa.key,
            policy: "1.2.3.4".parse().unwrap(),
            accuracy_seconds: 1,
        };
        let tresp = tsa.respond(&treq, now, &[5]);
        let token = tsp::parse_response(&tresp).unwrap().token.unwrap();
        let cms_der = cms::sign(
            b"fuzz me",
            &ca.staff.cert,
            &[],
            &ca.staff.key,
            &SignOptions {
                flavor: OidFlavor::Rfc5652,
                detached: false,
                signing_time: Some(now),
            },
        )
        .unwrap();
        let ders = vec![
            ("cert", ca.staff.cert.der().to_vec()),
            ("crl", crl.der().to_vec()),
            ("csr", csr),
            ("ocsp-req", oreq),
            ("ocsp-resp", oresp),
            ("tsp-req", treq),
            ("tsp-resp", tresp),
            ("token", token),
            ("cms", cms_der),
            ("csr-info", csr_info),
        ];
        Samples { ca, ders }
    })
}

/// Run every parser on `input`; returns how many accepted it. Must never panic.
fn parse_all(input: &[u8]) -> usize {
    let s = samples();
    let mut ok = 0;
    if let Ok(c) = ParsedCertificate::from_der(input) {
        ok += 1;
        let _ = (
            c.public_key(),
            c.basic_constraints(),
            c.key_usage(),
            c.ext_key_usage(),
            c.subject_key_id(),
            c.authority_key_id(),
        );
        let _ = (
            c.crl_urls(),
            c.ocsp_urls(),
            c.ca_issuers_urls(),
            c.subject_string(),
            c.serial_hex(),
            c.not_after(),
        );
        let _ = c.string_extension(gm_pki::oid::GM_RESIDENT_ID);
        let _ = c.verify_signature(&gm_pki::Sm2Signer::public_key(&s.ca.int.key));
        let _ = validate_path(
            &c,
            std::slice::from_ref(&s.ca.int.cert),
            std::slice::from_ref(&s.ca.root.cert),
            &Options::new(s.ca.now, Purpose::DocumentSigning),
        );
    }
    let _ = ParsedCertificate::parse_many(input);
    if let Ok(c) = ParsedCrl::from_der(input) {
        ok += 1;
        let _ = (
            c.entries(),
            c.crl_number(),
            c.verify_signature(&gm_pki::Sm2Signer::public_key(&s.ca.int.key)),
        );
    }
    if ParsedCsr::from_der(input).is_ok() {
        ok += 1;
    }
    if let Ok(i) = RequestInfo::from_der(input) {
        ok += 1;
        let _ = (i.public_key(), i.subject_string(), i.has_attributes());
        let _ = i.subject_attr(gm_pki::oid::AT_SERIAL_NUMBER);
    }
    if ocsp::parse_request(input).is_ok() {
        ok += 1;
    }
    if let Ok(r) = ocsp::parse_response(input) {
        ok += 1;
        let _ = r.verify(&s.ca.int.cert);
        let _ = r.status_for(&s.ca.staff.cert, &s.ca.int.cert);
    }
    if tsp::parse_request(input).is_ok() {
        ok += 1;
    }
    if let Ok(r) = tsp::parse_response(input) {
        ok += 1;
        if let Some(t) = r.token {
            let _ = tsp::verify_token(&t, None);
        }
    }
    if tsp::verify_token(input, Some(&s.ca.tsa.cert)).is_ok() {
        ok += 1;
    }
    if let Ok(r) = cms::verify(input, Some(b"x"), &[]) {
        ok += usize::from(r.ok());
    }
    let _ = cms::add_signature_timestamp(input, input);
    let _ = cms::signature_value(input);
    let text = String::from_utf8_lossy(input);
    let _ = gm_pki::pem_decode_all("CERTIFICATE", &text);
    let _ = ocsp::parse_get_request(&text);
    // The TSA answers anything with a parseable response.
    let tsa = tsp::Tsa {
        cert: &s.ca.tsa.cert,
        chain: &[],
        signer: &s.ca.tsa.key,
        policy: "1.2.3.4".parse().unwrap(),
        accuracy_seconds: 0,
    };
    let resp = tsa.respond(input, s.ca.now, &[1]);
    assert!(tsp::parse_response(&resp).is_ok());
    ok
}

#[test]
fn originals_parse() {
    let s = samples();
    for (name, der) in &s.ders {
        assert!(parse_all(der) >= 1, "{name} not accepted by any parser");
    }
    let _ = testca::RESIDENT_ID;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn truncated_is_rejected(which in 0usize..10, cut in 1usize..4096) {
        let (name, der) = &samples().ders[which];
        let cut = cut % der.len();
        let t = &der[..cut];
        prop_assert_eq!(parse_all(t), 0, "{} truncated at {} accepted", name, cut);
        // and the typed error for the matching parser
        if *name == "cert" {
            let typed = matches!(ParsedCertificate::from_der(t), Err(Error::Malformed { .. }));
            prop_assert!(typed, "untyped error");
        }
    }

    #[test]
    fn trailing_data_is_rejected(which in 0usize..10, extra in proptest::collection::vec(any::<u8>(), 1..8)) {
        let (name, der) = &samples().ders[which];
        let mut v = der.clone();
        v.extend_from_slice(&extra);
        prop_assert_eq!(parse_all(&v), 0, "{} with trailing data accepted", name);
    }

    #[test]
    fn bit_flips_never_panic(which in 0usize..10, pos in any::<usize>(), bit in 0u8..8) {
        let (_, der) = &samples().ders[which];
        let mut v = der.clone();
        let i = pos % v.len();
        v[i] ^= 1 << bit;
        let _ = parse_all(&v);
    }

    #[test]
    fn random_bytes_never_panic(v in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_all(&v);
    }

    #[test]
    fn random_after_sequence_header_never_panics(len in 0u8..=255, body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut v = vec![0x30, 0x82, 0x01, len];
        v.extend(body);
        let _ = parse_all(&v);
    }
}
