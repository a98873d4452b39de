//! RFC 3161: requests from `openssl ts -query`, answered by our TSA, checked with asn1crypto +
//! `openssl pkeyutl` and printed by `openssl ts -reply -text`.

use crate::testca::TestCa;
use crate::{openssl, py, run, tmpdir};
use gm_pki::cms::HashAlg;
use gm_pki::tsp::{self, FailureInfo, PkiStatus, Tsa};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MON: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

pub const POLICY: &str = "1.2.156.112233.2.1";

pub fn tsa(ca: &TestCa) -> Tsa<'_> {
    Tsa {
        cert: &ca.tsa.cert,
        chain: std::slice::from_ref(&ca.int.cert),
        signer: &ca.tsa.key,
        policy: POLICY.parse().unwrap(),
        accuracy_seconds: 1,
    }
}

fn json_field<'a>(json: &'a str, key: &str) -> &'a str {
    let k = format!("\"{key}\": ");
    let start = json
        .find(&k)
        .unwrap_or_else(|| panic!("{key} not in {json}"))
        + k.len();
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap();
    rest[..end].trim_matches('"')
}

#[test]
fn openssl_request_answered_and_checked_independently() {
    let ca = TestCa::new(SystemTime::now());
    let d = tmpdir("tsp");
    ca.write(&d);
    std::fs::write(d.join("msg"), "病历 2026-11-27 张三 签名").unwrap();
    openssl(
        &d,
        &[
            "ts", "-query", "-data", "msg", "-sm3", "-cert", "-out", "q.tsq",
        ],
    );
    let q = std::fs::read(d.join("q.tsq")).unwrap();
    let req = tsp::parse_request(&q).unwrap();
    assert_eq!(req.imprint_alg, HashAlg::Sm3);
    assert!(req.cert_req);
    let nonce = req.nonce.clone().expect("openssl sends a nonce");

    // Whole seconds (TSTInfo genTime has no fraction here), inside the TSA certificate validity.
    let gen_at =
        UNIX_EPOCH + Duration::from_secs(ca.now.duration_since(UNIX_EPOCH).unwrap().as_secs());
    let resp = tsa(&ca).respond(
        &q,
        gen_at,
        &[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef],
    );
    std::fs::write(d.join("r.tsr"), &resp).unwrap();

    let parsed = tsp::parse_response(&resp).unwrap();
    assert_eq!(parsed.status, PkiStatus::Granted);
    let token = parsed.token.unwrap();
    let view =
        tsp::verify_token_for_data(&token, &std::fs::read(d.join("msg")).unwrap(), None).unwrap();
    assert_eq!(view.gen_time, gen_at);
    assert_eq!(view.serial_hex, "0123456789abcdef");
    assert_eq!(view.nonce.as_deref(), Some(nonce.as_slice()));
    assert_eq!(view.chain.len(), 2, "certReq: TSA certificate and its CA");
    assert!(view.tsa_name.contains("时间戳服务"));

    let json = py(
        &d,
        "check_cms.py",
        &[
            "--tsr",
            "r.tsr",
            "--pub",
            "tsa.pub.pem",
            "--imprint-of",
            "msg",
        ],
    );
    assert!(json.contains("\"ok\": true"), "{json}");
    assert_eq!(json_field(&json, "imprint_alg"), "1.2.156.10197.1.401");
    assert_eq!(json_field(&json, "policy"), POLICY);
    assert_eq!(json_field(&json, "serial"), "81985529216486895");
    assert_eq!(json_field(&json, "certificates"), "2");
    assert_eq!(json_field(&json, "accuracy_seconds"), "1");
    assert!(
        json.contains("1.2.840.113549.1.9.16.2.47"),
        "ESS signingCertificateV2: {json}"
    );
    let dt = der::DateTime::from_system_time(gen_at).unwrap();
    let iso = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minutes(),
        dt.seconds()
    );
    assert!(
        json_field(&json, "gen_time").starts_with(&iso),
        "{json} vs {iso}"
    );
    let nonce_py: u128 = json_field(&json, "nonce").parse().unwrap();
    let nonce_ours = nonce.iter().fold(0u128, |a, b| (a << 8) | u128::from(*b));
    assert_eq!(nonce_py, nonce_ours);

    let text = openssl(&d, &["ts", "-reply", "-in", "r.tsr", "-text"]);
    for want in [
        "Status: Granted.",
        "Policy OID: 1.2.156.112233.2.1",
        "Serial number: 0x0123456789ABCDEF",
        "Accuracy: 0x01 seconds",
    ] {
        assert!(text.contains(want), "missing {want:?}:\n{text}");
    }
    let when = format!(
        "Time stamp: {} {:>2} {:02}:{:02}:{:02} {} GMT",
        MON[usize::from(dt.month()) - 1],
        dt.day(),
        dt.hour(),
        dt.minutes(),
        dt.seconds(),
        dt.year()
    );
    assert!(text.contains(&when), "missing {when:?}:\n{text}");
    // OpenSSL 3.0 cannot verify SM2 time-stamp replies (crypto-notes.md); asn1crypto + pkeyutl did it above.
}

#[test]
fn sha256_accepted_other_algorithms_and_garbage_rejected() {
    let ca = TestCa::new(SystemTime::now());
    let d = tmpdir("tsp-rej");
    std::fs::write(d.join("msg"), "x").unwrap();
    let now = SystemTime::now();
    openssl(
        &d,
        &[
            "ts",
            "-query",
            "-data",
            "msg",
            "-sha256",
            "-no_nonce",
            "-out",
            "sha256.tsq",
        ],
    );
    let resp = tsa(&ca).respond(&std::fs::read(d.join("sha256.tsq")).unwrap(), now, &[1]);
    let p = tsp::parse_response(&resp).unwrap();
    assert_eq!(p.status, PkiStatus::Granted);
    let view = tsp::verify_token_for_data(&p.token.unwrap(), b"x", Some(&ca.tsa.cert)).unwrap();
    assert_eq!(view.imprint_alg, HashAlg::Sha256);
    assert!(view.chain.is_empty(), "no certReq: no certificates");
    assert!(view.nonce.is_none());

    for alg in ["-sha1", "-sha512"] {
        openssl(
            &d,
            &["ts", "-query", "-data", "msg", alg, "-out", "bad.tsq"],
        );
        let resp = tsa(&ca).respond(&std::fs::read(d.join("bad.tsq")).unwrap(), now, &[1]);
        std::fs::write(d.join("bad.tsr"), &resp).unwrap();
        let p = tsp::parse_response(&resp).unwrap();
        assert_eq!(p.status, PkiStatus::Rejection);
        assert_eq!(p.failure, vec![FailureInfo::BadAlg]);
        assert!(p.token.is_none());
        let text = openssl(&d, &["ts", "-reply", "-in", "bad.tsr", "-text"]);
        assert!(
            text.contains("Status: Rejected.")
                && text.contains("unrecognized or unsupported algorithm"),
            "{text}"
        );
    }
    // Wrong policy.
    openssl(
        &d,
        &[
            "ts",
            "-query",
            "-data",
            "msg",
            "-sm3",
            "-tspolicy",
            "1.2.3.4",
            "-out",
            "pol.tsq",
        ],
    );
    let p = tsp::parse_response(&tsa(&ca).respond(
        &std::fs::read(d.join("pol.tsq")).unwrap(),
        now,
        &[1],
    ))
    .unwrap();
    assert_eq!(p.failure, vec![FailureInfo::UnacceptedPolicy]);
    // Garbage and truncation: a rejection, never a panic.
    for junk in [
        &b""[..],
        b"\x30\x03\x02\x01",
        b"hello world",
        &[0x30, 0x80, 0, 0][..],
    ] {
        let p = tsp::parse_response(&tsa(&ca).respond(junk, now, &[1])).unwrap();
        assert_eq!(p.status, PkiStatus::Rejection);
        assert_eq!(p.failure, vec![FailureInfo::BadDataFormat]);
    }
    // Outside the TSA certificate's validity: timeNotAvailable.
    let late = now + crate::testca::days(3650);
    let p = tsp::parse_response(&tsa(&ca).respond(
        &std::fs::read(d.join("sha256.tsq")).unwrap(),
        late,
        &[1],
    ))
    .unwrap();
    assert_eq!(p.failure, vec![FailureInfo::TimeNotAvailable]);
    // Wrong imprint length for its algorithm.
    let req = tsp::build_request(HashAlg::Sm3, &[0u8; 20], None, None, false).unwrap();
    let p = tsp::parse_response(&tsa(&ca).respond(&req, now, &[1])).unwrap();
    assert_eq!(p.failure, vec![FailureInfo::BadDataFormat]);
    let rej = std::fs::read(d.join("bad.tsr")).unwrap();
    let _ = run(&d, "true", &[]);
    assert!(!rej.is_empty());
}

#[test]
fn token_tampering_is_detected() {
    let ca = TestCa::new(SystemTime::now());
    let req = tsp::build_request(
        HashAlg::Sm3,
        &gm_pki::signer::sm3(b"doc"),
        None,
        Some(&[0x42; 8]),
        true,
    )
    .unwrap();
    let p = tsp::parse_response(&tsa(&ca).respond(&req, SystemTime::now(), &[7])).unwrap();
    let token = p.token.unwrap();
    tsp::verify_token_for_data(&token, b"doc", None).unwrap();
    assert!(matches!(
        tsp::verify_token_for_data(&token, b"doc2", None),
        Err(gm_pki::Error::DigestMismatch(_))
    ));
    // Flip one byte of the imprint inside the TSTInfo.
    let imprint = gm_pki::signer::sm3(b"doc");
    let pos = token.windows(32).position(|w| w == imprint).unwrap();
    let mut bad = token.clone();
    bad[pos] ^= 0x01;
    assert!(tsp::verify_token(&bad, None).is_err());
    // A token signed by a non-TSA certificate (staff key, no timeStamping EKU) is refused.
    let wrong = Tsa {
        cert: &ca.staff.cert,
        chain: &[],
        signer: &ca.staff.key,
        policy: POLICY.parse().unwrap(),
        accuracy_seconds: 0,
    };
    let p = tsp::parse_response(&wrong.respond(&req, SystemTime::now(), &[8])).unwrap();
    assert!(matches!(
        tsp::verify_token(&p.token.unwrap(), None),
        Err(gm_pki::Error::Path(gm_pki::PathError::WrongUsage { .. }))
    ));
}
