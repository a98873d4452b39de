//! OCSP: requests from `openssl ocsp -reqout`, responses read back by `openssl ocsp -respin`
//! and checked with asn1crypto + openssl pkeyutl.

use crate::testca::TestCa;
use crate::{openssl, py, tmpdir};
use base64::Engine;
use gm_pki::cms::HashAlg;
use gm_pki::crl::RevocationReason;
use gm_pki::ocsp::{self, CertId, CertStatus, Responder, ResponseStatus, SingleResponse};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[test]
fn openssl_request_parsed_and_answered() {
    let ca = TestCa::new(SystemTime::now());
    let d = tmpdir("ocsp");
    ca.write(&d);
    openssl(
        &d,
        &[
            "ocsp",
            "-issuer",
            "int.pem",
            "-cert",
            "staff.pem",
            "-cert",
            "tsa.pem",
            "-reqout",
            "req.der",
        ],
    );
    let req_der = std::fs::read(d.join("req.der")).unwrap();
    let req = ocsp::parse_request(&req_der).unwrap();
    assert_eq!(req.cert_ids.len(), 2);
    assert_eq!(
        req.cert_ids[0].hash_alg,
        HashAlg::Sha1,
        "OpenSSL default CertID hash"
    );
    assert!(req.cert_ids.iter().all(|c| c.matches_issuer(&ca.int.cert)));
    assert!(!req.cert_ids[0].matches_issuer(&ca.root.cert));
    assert_eq!(req.cert_ids[0].serial_hex(), ca.staff.cert.serial_hex());
    let nonce = req.nonce.clone().expect("openssl adds a nonce");
    // GET form: base64 of the DER, percent-encoded.
    let b64 = base64::engine::general_purpose::STANDARD
        .encode(&req_der)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let via_get = ocsp::parse_get_request(&b64).unwrap();
    assert_eq!(via_get.cert_ids, req.cert_ids);

    let now = SystemTime::now();
    let revoked_at = UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    let responses = vec![
        SingleResponse {
            cert_id: req.cert_ids[0].clone(),
            status: CertStatus::Good,
            this_update: now,
            next_update: Some(now + Duration::from_secs(3600)),
        },
        SingleResponse {
            cert_id: req.cert_ids[1].clone(),
            status: CertStatus::Revoked {
                time: revoked_at,
                reason: Some(RevocationReason::KeyCompromise),
            },
            this_update: now,
            next_update: None,
        },
    ];
    let responder = Responder {
        cert: &ca.ocsp.cert,
        signer: &ca.ocsp.key,
    };
    let resp = responder
        .respond(&responses, req.nonce.as_deref(), now)
        .unwrap();
    std::fs::write(d.join("resp.der"), &resp).unwrap();

    let text = openssl(
        &d,
        &["ocsp", "-respin", "resp.der", "-resp_text", "-noverify"],
    );
    for want in [
        "OCSP Response Status: successful (0x0)",
        "Cert Status: good",
        "Cert Status: revoked",
        "Revocation Reason: keyCompromise (0x1)",
        "OCSP Nonce",
        "Signature Algorithm: SM2-with-SM3",
    ] {
        assert!(text.contains(want), "missing {want:?}:\n{text}");
    }
    // Status read back per certificate, and the nonce matched against the request.
    let text = openssl(
        &d,
        &[
            "ocsp",
            "-respin",
            "resp.der",
            "-reqin",
            "req.der",
            "-issuer",
            "int.pem",
            "-cert",
            "staff.pem",
            "-cert",
            "tsa.pem",
            "-noverify",
        ],
    );
    assert!(text.contains("staff.pem: good"), "{text}");
    assert!(text.contains("tsa.pem: revoked"), "{text}");
    // OpenSSL checks the nonce against the request only while verifying (and `-cert` would make
    // a fresh request), so: `-reqin` alone. The nonce check passes; the signature check then
    // fails because `openssl ocsp` cannot take the SM2 ID (checked with pkeyutl below instead).
    let o = crate::run(
        &d,
        "openssl",
        &[
            "ocsp", "-respin", "resp.der", "-reqin", "req.der", "-VAfile", "ocsp.pem",
        ],
    );
    assert!(
        !o.text.contains("Nonce Verify error") && !o.text.contains("no nonce"),
        "{}",
        o.text
    );
    assert!(
        o.text.contains("Response Verify Failure"),
        "OpenSSL verified an SM2 OCSP response without the ID?\n{}",
        o.text
    );
    let json = py(&d, "check_ocsp.py", &["resp.der", "ocsp.pub.pem"]);
    assert!(
        json.contains("\"signature_ok\": true") && json.contains("key_compromise"),
        "{json}"
    );
    assert!(
        json.contains(&gm_pki_hex(&nonce[2..])),
        "nonce echoed: {json}"
    );

    // Our own parser + verification (delegated responder issued by the CA with OCSPSigning).
    let parsed = ocsp::parse_response(&resp).unwrap();
    assert_eq!(parsed.status, ResponseStatus::Successful);
    assert_eq!(parsed.nonce.as_deref(), Some(nonce.as_slice()));
    assert_eq!(parsed.verify(&ca.int.cert).unwrap(), ca.ocsp.cert);
    assert_eq!(
        parsed
            .status_for(&ca.staff.cert, &ca.int.cert)
            .unwrap()
            .status,
        CertStatus::Good
    );
    assert!(matches!(
        parsed
            .status_for(&ca.tsa.cert, &ca.int.cert)
            .unwrap()
            .status,
        CertStatus::Revoked {
            reason: Some(RevocationReason::KeyCompromise),
            ..
        }
    ));
    // The same response does not verify for another CA.
    assert!(parsed.verify(&ca.root.cert).is_err());
    // A responder cert without OCSPSigning (the staff cert) is refused.
    let bad = Responder {
        cert: &ca.staff.cert,
        signer: &ca.staff.key,
    }
    .respond(&responses, None, now)
    .unwrap();
    assert!(
        ocsp::parse_response(&bad)
            .unwrap()
            .verify(&ca.int.cert)
            .is_err()
    );
}

fn gm_pki_hex(b: &[u8]) -> String {
    hex::encode(b)
}

#[test]
fn error_responses_and_own_requests() {
    let ca = TestCa::new(SystemTime::now());
    let d = tmpdir("ocsp-err");
    for (st, word) in [
        (ResponseStatus::MalformedRequest, "malformedrequest"),
        (ResponseStatus::Unauthorized, "unauthorized"),
        (ResponseStatus::TryLater, "trylater"),
        (ResponseStatus::InternalError, "internalerror"),
    ] {
        let der = ocsp::error_response(st).unwrap();
        std::fs::write(d.join("e.der"), &der).unwrap();
        let o = crate::run(
            &d,
            "openssl",
            &["ocsp", "-respin", "e.der", "-resp_text", "-noverify"],
        );
        assert!(o.text.to_lowercase().contains(word), "{word}: {}", o.text);
        let p = ocsp::parse_response(&der).unwrap();
        assert_eq!(p.status, st);
        assert!(p.responses.is_empty());
    }
    assert!(ocsp::error_response(ResponseStatus::Successful).is_err());
    // Our request builder with SM3 CertIDs, answered by the CA itself (no delegation).
    let id = CertId::for_cert(&ca.staff.cert, &ca.int.cert, HashAlg::Sm3).unwrap();
    let req =
        ocsp::build_request(std::slice::from_ref(&id), Some(&[1, 2, 3, 4, 5, 6, 7, 8])).unwrap();
    let parsed = ocsp::parse_request(&req).unwrap();
    assert_eq!(parsed.cert_ids, vec![id.clone()]);
    let now = SystemTime::now();
    let resp = Responder {
        cert: &ca.int.cert,
        signer: &ca.int.key,
    }
    .respond(
        &[SingleResponse {
            cert_id: id,
            status: CertStatus::Unknown,
            this_update: now,
            next_update: None,
        }],
        parsed.nonce.as_deref(),
        now,
    )
    .unwrap();
    let p = ocsp::parse_response(&resp).unwrap();
    assert_eq!(p.verify(&ca.int.cert).unwrap(), ca.int.cert);
    assert_eq!(p.responses[0].status, CertStatus::Unknown);
    // Malformed requests are typed errors.
    for junk in [&b""[..], b"\x30\x00", &req[..req.len() - 1]] {
        assert!(matches!(
            ocsp::parse_request(junk),
            Err(gm_pki::Error::Malformed { .. })
        ));
    }
    let mut trailing = req.clone();
    trailing.push(0);
    assert!(ocsp::parse_request(&trailing).is_err());
    assert!(ocsp::parse_get_request("%zz").is_err());
}

#[test]
fn one_call_answer_from_a_ca_database() {
    let ca = TestCa::new(SystemTime::now());
    let d = tmpdir("ocsp-answer");
    ca.write(&d);
    openssl(
        &d,
        &[
            "ocsp",
            "-issuer",
            "int.pem",
            "-cert",
            "staff.pem",
            "-cert",
            "tsa.pem",
            "-reqout",
            "req.der",
        ],
    );
    let req = std::fs::read(d.join("req.der")).unwrap();
    let responder = Responder {
        cert: &ca.ocsp.cert,
        signer: &ca.ocsp.key,
    };
    let staff_serial = ca.staff.cert.serial_hex();
    let now = SystemTime::now();
    let resp = responder.answer(
        &req,
        &ca.int.cert,
        now,
        Duration::from_secs(600),
        |serial| {
            if hex::encode(serial) == staff_serial {
                CertStatus::Revoked {
                    time: now,
                    reason: Some(RevocationReason::CessationOfOperation),
                }
            } else {
                CertStatus::Good
            }
        },
    );
    std::fs::write(d.join("resp.der"), &resp).unwrap();
    let text = openssl(
        &d,
        &[
            "ocsp",
            "-respin",
            "resp.der",
            "-reqin",
            "req.der",
            "-issuer",
            "int.pem",
            "-cert",
            "staff.pem",
            "-cert",
            "tsa.pem",
            "-noverify",
        ],
    );
    assert!(
        text.contains("staff.pem: revoked") && text.contains("tsa.pem: good"),
        "{text}"
    );
    // A request about certificates of another CA: unauthorized. Garbage: malformedRequest.
    let other = ocsp::build_request(
        &[CertId::for_cert(&ca.int.cert, &ca.root.cert, HashAlg::Sha256).unwrap()],
        None,
    )
    .unwrap();
    let p = ocsp::parse_response(&responder.answer(
        &other,
        &ca.int.cert,
        now,
        Duration::from_secs(600),
        |_| CertStatus::Good,
    ))
    .unwrap();
    assert_eq!(p.status, ResponseStatus::Unauthorized);
    let p = ocsp::parse_response(&responder.answer(
        b"junk",
        &ca.int.cert,
        now,
        Duration::from_secs(600),
        |_| CertStatus::Good,
    ))
    .unwrap();
    assert_eq!(p.status, ResponseStatus::MalformedRequest);
}
