//! PKI services over HTTP, checked with tools we did not write: `openssl ts` requests answered
//! by `POST /tsa` and the replies read by `openssl ts -reply` and verified with asn1crypto +
//! `openssl pkeyutl`; `openssl ocsp` against `/ocsp` for good and revoked certificates; issued
//! chains verified by `openssl verify` link by link; CRLs fetched over HTTP read by `openssl crl`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use cosign_server::audit::AuditLog;
use cosign_server::config::Config;
use cosign_server::keys::Keys;
use cosign_server::pki::{
    Actor, IssueProfile, IssuedCertificate, PatientEventInfo, Pki, PkiError, StaffInfo,
};
use cosign_server::store::Db;

use crate::both_backends;
use crate::support::{Backend, TestData, TestServer, assert_api_error};
use crate::tools::{json_field, openssl, openssl_csr, py, run};

pub(crate) async fn fetch(s: &TestServer, path: &str, dir: &Path, file: &str) -> Vec<u8> {
    let r = s.client.get(s.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    let bytes = r.bytes().await.unwrap().to_vec();
    std::fs::write(dir.join(file), &bytes).unwrap();
    bytes
}

fn pubkey_of(dir: &Path, cert_pem: &str, out: &str) {
    let text = openssl(dir, &["x509", "-in", cert_pem, "-pubkey", "-noout"]);
    std::fs::write(dir.join(out), text).unwrap();
}

/// An `openssl ts -sm3` request answered by `/tsa`, read back by `openssl ts -reply` and the
/// token's SM2 signature checked with asn1crypto + `openssl pkeyutl`. Returns the serial (hex).
async fn openssl_timestamp_round_trip(s: &TestServer, d: &Path) -> String {
    std::fs::write(d.join("msg"), "门诊病历 2026-11-27 张三 签名").unwrap();
    openssl(
        d,
        &[
            "ts", "-query", "-data", "msg", "-sm3", "-cert", "-out", "q.tsq",
        ],
    );
    let r = s
        .client
        .post(s.url("/tsa"))
        .header("content-type", "application/timestamp-query")
        .body(std::fs::read(d.join("q.tsq")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/timestamp-reply"
    );
    std::fs::write(d.join("r.tsr"), r.bytes().await.unwrap()).unwrap();

    let text = openssl(d, &["ts", "-reply", "-in", "r.tsr", "-text"]);
    for want in [
        "Status: Granted.",
        "Policy OID: 1.2.156.112233.2.1",
        "Accuracy: 0x01 seconds",
        "Hash Algorithm: sm3",
    ] {
        assert!(text.contains(want), "missing {want:?}:\n{text}");
    }
    let serial = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Serial number: 0x"))
        .unwrap()
        .to_ascii_lowercase();

    // Independent check: asn1crypto parses, recomputes imprint and messageDigest, re-encodes
    // signedAttrs, openssl pkeyutl verifies the SM2 signature with the TSA certificate's key.
    fetch(s, "/pki/tsa.pem", d, "tsa.pem").await;
    pubkey_of(d, "tsa.pem", "tsa.pub.pem");
    let json = py(
        d,
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
    assert_eq!(json_field(&json, "ok"), true, "{json}");
    assert_eq!(json_field(&json, "signature_ok"), true, "{json}");
    assert_eq!(json_field(&json, "imprint_ok"), true, "{json}");
    assert_eq!(json_field(&json, "imprint_alg"), "1.2.156.10197.1.401");
    assert_eq!(json_field(&json, "certificates"), 2, "TSA + root: {json}");
    serial
}

async fn tsa_answers_openssl_requests_verified_independently(backend: Backend) {
    let s = TestServer::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let serial = openssl_timestamp_round_trip(&s, d).await;

    // The TSA certificate chains to the root (openssl verify with the SM2 ID).
    fetch(&s, "/pki/root.pem", d, "root.pem").await;
    let out = openssl(
        d,
        &[
            "verify",
            "-vfyopt",
            "distid:1234567812345678",
            "-CAfile",
            "root.pem",
            "tsa.pem",
        ],
    );
    assert!(out.contains("tsa.pem: OK"), "{out}");

    // The GM/T 0033 view of the recorded token.
    let r = s
        .client
        .get(s.url(&format!("/api/v1/tsa/tokens/{serial}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let view: serde_json::Value = r.json().await.unwrap();
    assert_eq!(view["serial"], serial.trim_start_matches('0'));
    assert_eq!(view["hash_algorithm"], "sm3");
    assert_eq!(view["signature_valid"], true);
    assert!(view["tsa_name"].as_str().unwrap().contains("时间戳服务"));
    let imprint = openssl(d, &["dgst", "-sm3", "-r", "msg"]);
    assert!(imprint.starts_with(view["message_imprint"].as_str().unwrap()));
    assert_eq!(s.db.count_tsa_tokens().await.unwrap(), 1);

    // A SHA-1 request and garbage are refused in RFC 3161 terms, not with a JSON/500.
    openssl(
        d,
        &["ts", "-query", "-data", "msg", "-sha1", "-out", "q1.tsq"],
    );
    for (name, body) in [
        ("sha1", std::fs::read(d.join("q1.tsq")).unwrap()),
        ("garbage", b"\x30\x03\x02\x01".to_vec()),
    ] {
        let r = s
            .client
            .post(s.url("/tsa"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
        std::fs::write(d.join(format!("{name}.tsr")), r.bytes().await.unwrap()).unwrap();
        let text = openssl(d, &["ts", "-reply", "-in", &format!("{name}.tsr"), "-text"]);
        assert!(text.contains("Status: Rejected"), "{name}: {text}");
    }
    assert_eq!(s.db.count_tsa_tokens().await.unwrap(), 1);
    assert_api_error(
        s.client
            .get(s.url("/api/v1/tsa/tokens/0badc0ffee"))
            .send()
            .await
            .unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
    s.stop().await;
}
both_backends!(tsa_answers_openssl_requests_verified_independently);

/// A valid GB 11643 number (ISO 7064 MOD 11-2 check character X).
const RESIDENT_ID: &str = "11010519491231002X";

fn staff_subject(name: &str, department: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "staff_id": "E00123",
        "department": department,
        "hospital": "第一人民医院",
        "resident_id": RESIDENT_ID,
        "licence": "110440000012345",
    })
}

async fn post_issue(s: &TestServer, token: &str, body: &serde_json::Value) -> reqwest::Response {
    s.client
        .post(s.url("/api/v1/pki/certificates"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Issues a staff certificate for an OpenSSL-made CSR's key.
async fn issue(s: &TestServer, token: &str, name: &str, csr: &str) -> serde_json::Value {
    let r = post_issue(
        s,
        token,
        &serde_json::json!({
            "profile": "staff",
            "subject": staff_subject(name, "心内科"),
            "csr": csr,
            "validity_days": 1,
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

/// `openssl ocsp` for a staff certificate against our responder. OpenSSL cannot check an SM2
/// signature with the ID: `-noverify`; the tests check signatures with asn1crypto + pkeyutl.
fn ocsp_query(d: &Path, cert: &str, url: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "ocsp",
        "-issuer",
        "staff.pem",
        "-cert",
        cert,
        "-url",
        url,
        "-noverify",
    ];
    args.extend_from_slice(extra);
    openssl(d, &args)
}

async fn ocsp_crl_and_chains_checked_with_openssl(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // Index lists each CA with certificate and CRL URLs.
    let index: serde_json::Value = s
        .client
        .get(s.url("/pki"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = index["authorities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for ca in ["root", "staff", "patient", "seal"] {
        assert!(names.contains(&ca), "{index}");
        let entry = index["authorities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == ca)
            .unwrap();
        assert_eq!(entry["crl"], s.url(&format!("/pki/{ca}.crl")));
        assert_eq!(entry["certificate"], s.url(&format!("/pki/{ca}.crt")));
    }
    for f in ["root", "staff", "ocsp-staff"] {
        fetch(&s, &format!("/pki/{f}.pem"), d, &format!("{f}.pem")).await;
    }
    let der = fetch(&s, "/pki/staff.crt", d, "staff.crt").await;
    assert_eq!(der[0], 0x30, "DER certificate");

    // Two staff certificates from OpenSSL-made CSRs; one is revoked.
    let good = issue(
        &s,
        &token,
        "李医生",
        &openssl_csr(d, "good", "/C=CN/O=第一人民医院/OU=心内科/CN=李医生"),
    )
    .await;
    let bad = issue(
        &s,
        &token,
        "王医生",
        &openssl_csr(d, "bad", "/C=CN/O=第一人民医院/OU=急诊科/CN=王医生"),
    )
    .await;
    std::fs::write(
        d.join("good.pem"),
        good["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(d.join("bad.pem"), bad["certificate_pem"].as_str().unwrap()).unwrap();
    let bad_serial = bad["serial"].as_str().unwrap();
    let r = s
        .client
        .post(s.url(&format!("/api/v1/pki/certificates/{bad_serial}/revoke")))
        .bearer_auth(&token)
        .json(&serde_json::json!({"reason": "keyCompromise"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .client
        .post(s.url(&format!("/api/v1/pki/certificates/{bad_serial}/revoke")))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_api_error(r, 409, "ALREADY_REVOKED").await;

    // Chains, link by link, with the SM2 ID.
    let vfy = |ca: &str, leaf: &str, partial: bool| {
        let mut args = vec!["verify", "-vfyopt", "distid:1234567812345678"];
        if partial {
            args.push("-partial_chain");
        }
        args.extend(["-CAfile", ca, leaf]);
        let out = openssl(d, &args);
        assert!(out.contains(&format!("{leaf}: OK")), "{out}");
    };
    vfy("root.pem", "staff.pem", false);
    vfy("staff.pem", "good.pem", true);
    vfy("staff.pem", "ocsp-staff.pem", true);
    let text = openssl(d, &["x509", "-in", "good.pem", "-noout", "-text"]);
    for want in [
        &s.url("/pki/staff.crl"),
        &s.url("/ocsp"),
        &s.url("/pki/staff.crt"),
    ] {
        assert!(text.contains(want.as_str()), "missing {want}:\n{text}");
    }

    // OCSP with openssl (POST). OpenSSL cannot check an SM2 signature with the ID: -noverify
    // here, the signature is verified with asn1crypto + pkeyutl below.
    let url = s.url("/ocsp");
    for (cert, want) in [
        ("good.pem", "good.pem: good"),
        ("bad.pem", "bad.pem: revoked"),
    ] {
        let out = ocsp_query(d, cert, &url, &["-respout", &format!("{cert}.ocsp")]);
        assert!(out.contains(want), "{out}");
        if cert == "bad.pem" {
            assert!(out.contains("Reason: keyCompromise"), "{out}");
        }
    }
    pubkey_of(d, "ocsp-staff.pem", "ocsp-staff.pub.pem");
    let json = py(d, "check_ocsp.py", &["bad.pem.ocsp", "ocsp-staff.pub.pem"]);
    assert!(json.contains("revoked"), "{json}");
    assert_eq!(json_field(&json, "signature_ok"), true, "{json}");

    // GET form: base64 of an OpenSSL-made request in the path.
    openssl(
        d,
        &[
            "ocsp",
            "-issuer",
            "staff.pem",
            "-cert",
            "good.pem",
            "-reqout",
            "req.der",
        ],
    );
    let b64 =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(d.join("req.der")).unwrap());
    let encoded = b64
        .replace('/', "%2F")
        .replace('+', "%2B")
        .replace('=', "%3D");
    let r = s
        .client
        .get(s.url(&format!("/ocsp/{encoded}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/ocsp-response"
    );
    std::fs::write(d.join("get.ocsp"), r.bytes().await.unwrap()).unwrap();
    let out = openssl(
        d,
        &[
            "ocsp",
            "-respin",
            "get.ocsp",
            "-issuer",
            "staff.pem",
            "-cert",
            "good.pem",
            "-noverify",
        ],
    );
    assert!(out.contains("good.pem: good"), "{out}");

    // CRL over HTTP: openssl reads it; asn1crypto + pkeyutl check its signature.
    fetch(&s, "/pki/staff.crl", d, "staff.crl").await;
    let text = openssl(
        d,
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "staff.crl",
            "-noout",
            "-text",
        ],
    );
    assert!(
        text.to_ascii_lowercase().contains(bad_serial),
        "revoked serial {bad_serial} missing:\n{text}"
    );
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(text.contains("X509v3 CRL Number"), "{text}");
    assert!(text.contains("Next Update"), "{text}");
    pubkey_of(d, "staff.pem", "staff.pub.pem");
    let json = py(d, "check_crl.py", &["staff.crl", "staff.pub.pem"]);
    assert_eq!(json_field(&json, "signature_ok"), true, "{json}");
    let number = json_field(&json, "crl_number");
    // A second fetch without a revocation in between serves the same CRL.
    fetch(&s, "/pki/staff.crl", d, "staff2.crl").await;
    let json2 = py(d, "check_crl.py", &["staff2.crl", "staff.pub.pem"]);
    assert_eq!(json_field(&json2, "crl_number"), number);
    let root_crl = fetch(&s, "/pki/root.crl", d, "root.crl").await;
    assert!(!root_crl.is_empty());
    let o = run(
        d,
        "openssl",
        &[
            "crl", "-inform", "DER", "-in", "root.crl", "-noout", "-issuer",
        ],
    );
    assert!(o.ok && o.text.contains("Root CA"), "{}", o.text);

    // Refusals: bad CSR, unknown serial (profile refusals: `profile_fields_are_refused_with_stable_codes`).
    let r = post_issue(
        &s,
        &token,
        &serde_json::json!({"profile": "staff", "subject": staff_subject("李医生", "心内科"), "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}),
    )
    .await;
    assert_api_error(r, 400, "INVALID_CSR").await;
    let r = s
        .client
        .post(s.url("/api/v1/pki/certificates/abcdef/revoke"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"reason": "superseded"}))
        .send()
        .await
        .unwrap();
    assert_api_error(r, 404, "NOT_FOUND").await;

    // Issue and revoke were audited; the chain is intact.
    let (entries, _) = cosign_server::audit::AuditLog::verify(&s.db).await.unwrap();
    assert!(entries >= 4, "{entries}");
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY seq")
        .fetch_all(s.db.pool())
        .await
        .unwrap();
    for want in [
        "pki.init",
        "pki.issue",
        "pki.revoke",
        "key.generate",
        "master.init",
    ] {
        assert!(
            actions.iter().any(|a| a == want),
            "{want} not in {actions:?}"
        );
    }
    s.stop().await;
}
both_backends!(ocsp_crl_and_chains_checked_with_openssl);

/// The server on a GM/T 0018 device: `keys.device = "sdf"` over the test library `sdf-soft`
/// (loaded through the same adapter a vendor's libsdf.so would be). The CA hierarchy is created
/// inside that device and a time stamp it signs verifies with OpenSSL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_runs_on_an_sdf_device() {
    let library = crate::tools::sdf_soft_library();
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.keys.device = cosign_server::config::DeviceKind::Sdf {
            library,
            sign_key_indices: (1..=16).collect(),
            kek_index: 1,
        };
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    openssl_timestamp_round_trip(&s, dir.path()).await;
    // Every CA, TSA and OCSP key sits at an SDF internal index.
    let sdf_keys: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%internal index%'")
            .fetch_one(s.db.pool())
            .await
            .unwrap();
    assert!(
        sdf_keys >= 8,
        "expected the hierarchy's keys in the SDF device, audit shows {sdf_keys}"
    );
    s.stop().await;
}

fn save(d: &Path, file: &str, issued: &serde_json::Value) {
    std::fs::write(d.join(file), issued["certificate_pem"].as_str().unwrap()).unwrap();
}

/// `openssl verify` with the SM2 ID: the issuing CA against the root, the leaf against its CA.
pub fn verify_chain(d: &Path, ca: &str, leaf: &str) {
    for (anchor, cert, partial) in [("root.pem", ca, false), (ca, leaf, true)] {
        let mut args = vec!["verify", "-vfyopt", "distid:1234567812345678"];
        if partial {
            args.push("-partial_chain");
        }
        args.extend(["-CAfile", anchor, cert]);
        let out = openssl(d, &args);
        assert!(out.contains(&format!("{cert}: OK")), "{out}");
    }
}

fn x509_text(d: &Path, file: &str) -> String {
    openssl(
        d,
        &[
            "x509",
            "-in",
            file,
            "-noout",
            "-text",
            "-nameopt",
            "utf8,sep_comma_plus_space",
        ],
    )
}

/// Each health-sector profile through the admin API, from OpenSSL-made CSRs, verified and read
/// back by OpenSSL; patient certificates carry a keyed hash of the ID number, never the number.
async fn profile_certificates_verify_with_openssl(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for f in ["root", "staff", "seal", "patient"] {
        fetch(&s, &format!("/pki/{f}.pem"), d, &format!("{f}.pem")).await;
    }

    // Staff: the subject comes from the profile, not from the CSR.
    let csr = openssl_csr(d, "doc", "/CN=whatever the CSR says");
    let staff = issue(&s, &token, "李医生", &csr).await;
    assert_eq!(staff["profile"], "staff");
    assert_eq!(staff["ca"], "staff");
    save(d, "doc.pem", &staff);
    verify_chain(d, "staff.pem", "doc.pem");
    let text = x509_text(d, "doc.pem");
    for want in [
        "CN=李医生",
        "OU=心内科",
        "O=第一人民医院",
        "serialNumber=E00123",
        "1.2.156.10260.4.1.1:",
        RESIDENT_ID,
        "1.2.156.112233.1.1:",
        "110440000012345",
        "Digital Signature, Non Repudiation",
        "CA:FALSE",
    ] {
        assert!(text.contains(want), "staff: missing {want:?}\n{text}");
    }
    assert!(!text.contains("whatever the CSR says"), "{text}");
    // The certified key is the CSR's (proof of possession checked by the server).
    let leaf_key = openssl(d, &["x509", "-in", "doc.pem", "-pubkey", "-noout"]);
    let csr_key = openssl(d, &["pkey", "-in", "doc.key", "-pubout"]);
    assert_eq!(leaf_key, csr_key);

    // Organisation / seal, from the seal CA by default.
    let r = post_issue(
        &s,
        &token,
        &serde_json::json!({
            "profile": "organisation",
            "subject": {"organisation": "第一人民医院", "seal_name": "医务处公章", "credit_code": "12100000400000000W"},
            "csr": openssl_csr(d, "seal-key", "/CN=seal"),
            "validity_days": 730,
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let seal: serde_json::Value = r.json().await.unwrap();
    assert_eq!(seal["ca"], "seal");
    save(d, "org.pem", &seal);
    verify_chain(d, "seal.pem", "org.pem");
    let text = x509_text(d, "org.pem");
    for want in [
        "CN=医务处公章",
        "1.2.156.10260.4.1.4:",
        "12100000400000000W",
    ] {
        assert!(text.contains(want), "seal: missing {want:?}\n{text}");
    }

    // Device (bedside pad): clientAuth.
    let r = post_issue(
        &s,
        &token,
        &serde_json::json!({
            "profile": "device",
            "subject": {"device_id": "PAD-0007", "ward": "5病区", "hospital": "第一人民医院"},
            "csr": openssl_csr(d, "pad", "/CN=pad"),
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let pad: serde_json::Value = r.json().await.unwrap();
    save(d, "pad.pem", &pad);
    verify_chain(d, "seal.pem", "pad.pem");
    let text = x509_text(d, "pad.pem");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(text.contains("CN=PAD-0007"), "{text}");

    // Patient event: minutes, keyed hash of the ID number.
    let event = |event_id: &str, stem: &str| {
        serde_json::json!({
            "profile": "patient_event",
            "subject": {"name": "张三", "resident_id": RESIDENT_ID, "event_id": event_id, "hospital": "第一人民医院"},
            "csr": openssl_csr(d, stem, "/CN=patient"),
            "validity_minutes": 15,
        })
    };
    let r = post_issue(&s, &token, &event("EV-2026-000042", "p1")).await;
    assert_eq!(r.status(), 201);
    let p1: serde_json::Value = r.json().await.unwrap();
    assert_eq!(p1["ca"], "patient");
    save(d, "p1.pem", &p1);
    verify_chain(d, "patient.pem", "p1.pem");
    let text = x509_text(d, "p1.pem");
    assert!(
        !text.contains(RESIDENT_ID),
        "plain ID number leaked:\n{text}"
    );
    std::fs::write(d.join("id.txt"), RESIDENT_ID).unwrap();
    let unkeyed = openssl(d, &["dgst", "-sm3", "-r", "id.txt"]);
    let unkeyed = unkeyed.split_whitespace().next().unwrap();
    assert!(!text.contains(unkeyed), "unkeyed SM3 of the ID:\n{text}");
    let hashed = |t: &str| {
        t.split("serialNumber=")
            .nth(1)
            .unwrap()
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect::<String>()
    };
    let h1 = hashed(&text);
    assert_eq!(h1.len(), 64, "{text}");
    assert!(text.contains("UID=EV-2026-000042"), "{text}");
    let cert =
        gm_pki::ParsedCertificate::from_pem(p1["certificate_pem"].as_str().unwrap()).unwrap();
    let lasts = cert.not_after().duration_since(cert.not_before()).unwrap();
    assert_eq!(lasts.as_secs(), 15 * 60);
    // The same person in another event carries the same value (the hospital can find its
    // patients' certificates); the value is what the server's key makes it.
    let r = post_issue(&s, &token, &event("EV-2026-000043", "p2")).await;
    let p2: serde_json::Value = r.json().await.unwrap();
    save(d, "p2.pem", &p2);
    assert_eq!(hashed(&x509_text(d, "p2.pem")), h1);

    // Audit: each issue recorded with its profile, never the ID number.
    let details: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'pki.issue' ORDER BY seq")
            .fetch_all(s.db.pool())
            .await
            .unwrap();
    assert_eq!(details.len(), 5, "{details:?}");
    for (detail, profile) in details.iter().zip([
        "staff",
        "organisation",
        "device",
        "patient_event",
        "patient_event",
    ]) {
        assert!(
            detail.contains(&format!("\"profile\":\"{profile}\"")),
            "{detail}"
        );
        assert!(!detail.contains(RESIDENT_ID), "{detail}");
    }
    cosign_server::audit::AuditLog::verify(&s.db).await.unwrap();
    s.stop().await;
}
both_backends!(profile_certificates_verify_with_openssl);

/// Every refusal of the issue API has a stable code; nothing is issued or audited.
async fn profile_fields_are_refused_with_stable_codes(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csr = openssl_csr(d, "k", "/CN=k");
    let staff = |subject: serde_json::Value| serde_json::json!({"profile": "staff", "subject": subject, "csr": csr});
    let with = |key: &str, value: serde_json::Value| {
        let mut subject = staff_subject("李医生", "心内科");
        subject[key] = value;
        staff(subject)
    };
    let mut cases = vec![
        // GB 11643: wrong check digit, wrong length, letters.
        (
            with("resident_id", "110105194912310021".into()),
            "INVALID_RESIDENT_ID",
        ),
        (
            with("resident_id", "1101051949123100".into()),
            "INVALID_RESIDENT_ID",
        ),
        (
            with("resident_id", "11010519491231ABCX".into()),
            "INVALID_RESIDENT_ID",
        ),
        // Lengths and characters.
        (with("name", "".into()), "INVALID_PROFILE"),
        (with("name", "张".repeat(65).into()), "INVALID_PROFILE"),
        (with("department", "心\n内科".into()), "INVALID_PROFILE"),
        (with("staff_id", "E 00123".into()), "INVALID_PROFILE"),
        (with("licence", "x".repeat(33).into()), "INVALID_PROFILE"),
        (with("name", 42.into()), "INVALID_PROFILE"),
        (with("unexpected", "x".into()), "INVALID_PROFILE"),
        (
            staff(serde_json::json!({"name": "李医生"})),
            "INVALID_PROFILE",
        ),
        // Unknown profile, profile/CA mismatch, unknown CA, validity out of range or in the
        // wrong unit.
        (
            serde_json::json!({"profile": "generic", "subject": {}, "csr": csr}),
            "INVALID_PROFILE",
        ),
        (
            serde_json::json!({"profile": "staff", "ca": "patient", "subject": staff_subject("李医生", "心内科"), "csr": csr}),
            "INVALID_PROFILE",
        ),
        (
            serde_json::json!({"profile": "staff", "ca": "root", "subject": staff_subject("李医生", "心内科"), "csr": csr}),
            "UNKNOWN_CA",
        ),
        (
            serde_json::json!({"profile": "staff", "ca": "nonesuch", "subject": staff_subject("李医生", "心内科"), "csr": csr}),
            "UNKNOWN_CA",
        ),
        (
            serde_json::json!({"profile": "staff", "subject": staff_subject("李医生", "心内科"), "csr": csr, "validity_days": 5000}),
            "INVALID_PROFILE",
        ),
        (
            serde_json::json!({"profile": "staff", "subject": staff_subject("李医生", "心内科"), "csr": csr, "validity_days": 0}),
            "INVALID_PROFILE",
        ),
        (
            serde_json::json!({"profile": "patient_event", "subject": {"name": "张三", "resident_id": RESIDENT_ID, "event_id": "E1", "hospital": "H"}, "csr": csr, "validity_days": 1}),
            "INVALID_PROFILE",
        ),
        (
            serde_json::json!({"profile": "patient_event", "subject": {"name": "张三", "resident_id": RESIDENT_ID, "event_id": "E1", "hospital": "H"}, "csr": csr, "validity_minutes": 1441}),
            "INVALID_PROFILE",
        ),
        (
            serde_json::json!({"profile": "patient_event", "subject": {"name": "张三", "resident_id": "11010519491231002Y", "event_id": "E1", "hospital": "H"}, "csr": csr}),
            "INVALID_RESIDENT_ID",
        ),
        (
            serde_json::json!({"profile": "organisation", "subject": {"organisation": "医院", "seal_name": "公章", "credit_code": "12100000400000000X"}, "csr": csr}),
            "INVALID_PROFILE",
        ),
        (
            serde_json::json!({"profile": "device", "subject": {"device_id": "PAD 7", "ward": "5病区", "hospital": "H"}, "csr": csr}),
            "INVALID_PROFILE",
        ),
    ];
    // A CSR whose signature does not match its key: proof of possession fails.
    let mut der = base64::engine::general_purpose::STANDARD
        .decode(
            csr.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let last = der.len() - 3;
    der[last] ^= 1;
    cases.push((
        serde_json::json!({"profile": "staff", "subject": staff_subject("李医生", "心内科"), "csr": base64::engine::general_purpose::STANDARD.encode(&der)}),
        "INVALID_CSR",
    ));
    for (body, code) in &cases {
        let r = post_issue(&s, &token, body).await;
        let e = assert_api_error(r, 400, code).await;
        assert!(
            !e.to_string().contains(RESIDENT_ID),
            "the ID number is not echoed: {e}"
        );
    }
    let issued: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pki_certificates WHERE profile NOT IN ('root_ca', 'issuing_ca', 'tsa', 'ocsp')",
    )
    .fetch_one(s.db.pool())
    .await
    .unwrap();
    assert_eq!(issued, 0);
    s.stop().await;
}
both_backends!(profile_fields_are_refused_with_stable_codes);

/// Renewal through the API: same subject and extensions, new key and validity; the old
/// certificate is revoked as superseded (OpenSSL's OCSP client sees it) and cannot be renewed
/// twice; patient event and CA certificates are not renewable.
async fn renewal_supersedes_the_old_certificate(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for f in ["root", "staff"] {
        fetch(&s, &format!("/pki/{f}.pem"), d, &format!("{f}.pem")).await;
    }
    let old = issue(&s, &token, "李医生", &openssl_csr(d, "old", "/CN=x")).await;
    save(d, "old.pem", &old);
    let old_serial = old["serial"].as_str().unwrap();
    let renew = |serial: &str, body: serde_json::Value| {
        s.client
            .post(s.url(&format!("/api/v1/pki/certificates/{serial}/renew")))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let r = renew(
        old_serial,
        serde_json::json!({"csr": openssl_csr(d, "new", "/CN=y"), "validity_days": 730}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let new: serde_json::Value = r.json().await.unwrap();
    assert_eq!(new["supersedes"], old_serial);
    assert_eq!(new["subject"], old["subject"]);
    assert_eq!(new["profile"], "staff");
    assert_ne!(new["serial"], old["serial"]);
    save(d, "new.pem", &new);
    verify_chain(d, "staff.pem", "new.pem");
    let text = x509_text(d, "new.pem");
    for want in [RESIDENT_ID, "110440000012345", "CN=李医生"] {
        assert!(text.contains(want), "renewal lost {want:?}\n{text}");
    }
    let new_key = openssl(d, &["x509", "-in", "new.pem", "-pubkey", "-noout"]);
    assert_eq!(new_key, openssl(d, &["pkey", "-in", "new.key", "-pubout"]));

    // The old one is revoked (superseded), the new one good: OpenSSL's OCSP client.
    let url = s.url("/ocsp");
    for (cert, want) in [
        ("old.pem", "old.pem: revoked"),
        ("new.pem", "new.pem: good"),
    ] {
        let out = ocsp_query(d, cert, &url, &[]);
        assert!(out.contains(want), "{out}");
        if cert == "old.pem" {
            assert!(out.contains("Reason: superseded"), "{out}");
        }
    }

    // A second renewal of the old one is refused; renewing without a CSR keeps the key.
    let r = renew(old_serial, serde_json::json!({})).await.unwrap();
    assert_api_error(r, 409, "ALREADY_REVOKED").await;
    let r = renew(new["serial"].as_str().unwrap(), serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let third: serde_json::Value = r.json().await.unwrap();
    save(d, "third.pem", &third);
    assert_eq!(
        openssl(d, &["x509", "-in", "third.pem", "-pubkey", "-noout"]),
        new_key
    );

    // Not renewable, unknown, bad input.
    let r = post_issue(
        &s,
        &token,
        &serde_json::json!({
            "profile": "patient_event",
            "subject": {"name": "张三", "resident_id": RESIDENT_ID, "event_id": "E1", "hospital": "H"},
            "csr": openssl_csr(d, "p", "/CN=p"),
        }),
    )
    .await;
    let patient: serde_json::Value = r.json().await.unwrap();
    let r = renew(patient["serial"].as_str().unwrap(), serde_json::json!({}))
        .await
        .unwrap();
    assert_api_error(r, 409, "NOT_RENEWABLE").await;
    let index: serde_json::Value = s
        .client
        .get(s.url("/pki"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let staff_ca_serial = index["authorities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "staff")
        .unwrap()["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = renew(&staff_ca_serial, serde_json::json!({}))
        .await
        .unwrap();
    assert_api_error(r, 409, "NOT_RENEWABLE").await;
    let r = renew("abcdef", serde_json::json!({})).await.unwrap();
    assert_api_error(r, 404, "NOT_FOUND").await;
    let r = renew(
        third["serial"].as_str().unwrap(),
        serde_json::json!({"validity_days": 4000}),
    )
    .await
    .unwrap();
    assert_api_error(r, 400, "INVALID_PROFILE").await;
    let r = renew(
        third["serial"].as_str().unwrap(),
        serde_json::json!({"csr": "garbage"}),
    )
    .await
    .unwrap();
    assert_api_error(r, 400, "INVALID_CSR").await;

    let renewals: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'pki.renew' ORDER BY seq")
            .fetch_all(s.db.pool())
            .await
            .unwrap();
    assert_eq!(renewals.len(), 2, "{renewals:?}");
    assert!(renewals[0].contains(old_serial), "{}", renewals[0]);
    assert!(renewals[0].contains("\"rekey\":true"), "{}", renewals[0]);
    assert!(renewals[1].contains("\"rekey\":false"), "{}", renewals[1]);
    s.stop().await;
}
both_backends!(renewal_supersedes_the_old_certificate);

async fn open_pki(config: &Config, actor: &str) -> (Db, Arc<AuditLog>, Pki) {
    let db = Db::open(&config.database_url).await.unwrap();
    let audit = Arc::new(AuditLog::new());
    let keys = Keys::open_or_init(config, &db, audit.clone(), actor)
        .await
        .unwrap();
    let pki = Pki::load_or_create(config, &db, keys.device(), &audit, actor)
        .await
        .unwrap();
    (db, audit, pki)
}

/// The server-side issuance other modules call (doctor enrollment certifies a two-party joint
/// key, the patient flow issues event certificates): audited under the caller's name and
/// request id, refusals typed.
async fn issue_for_key_is_audited_and_typed(backend: Backend) {
    let data = TestData::new(backend).await;
    let config = data.config();
    cosign_server::init::prepare_data_dir(&config).unwrap();
    let (db, _audit, pki) = open_pki(&config, "test").await;
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let key = gm_pki::Sm2Signer::public_key(&gm_pki::SoftwareSigner::generate(&mut rng).unwrap());
    let actor = Actor {
        name: "app:enrolment",
        request_id: "req-42",
    };
    let staff = StaffInfo {
        name: "李医生".into(),
        staff_id: "E00123".into(),
        department: "心内科".into(),
        hospital: "第一人民医院".into(),
        resident_id: Some(RESIDENT_ID.into()),
        licence: None,
    };
    let year = Duration::from_secs(365 * 86_400);
    let issued = pki
        .issue_for_key(
            &db,
            "staff",
            &key,
            IssueProfile::Staff(staff.clone()),
            year,
            &actor,
        )
        .await
        .unwrap();
    assert_eq!(issued.ca, "staff");
    assert_eq!(issued.profile, "staff");
    assert_eq!(issued.cert.public_key().unwrap(), key);
    let ca_key = pki.authority("staff").unwrap().cert.public_key().unwrap();
    issued.cert.verify_signature(&ca_key).unwrap();
    let row = db
        .certificate_by_serial(&issued.serial())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.profile, "staff");
    assert_eq!(row.der, issued.cert.der());
    let (who, rid, detail): (String, String, String) = sqlx::query_as(
        "SELECT actor, request_id, detail FROM audit_log WHERE action = 'pki.issue' AND target = $1",
    )
    .bind(issued.serial())
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!((who.as_str(), rid.as_str()), ("app:enrolment", "req-42"));
    assert!(detail.contains("\"profile\":\"staff\""), "{detail}");

    // A patient event certificate carries the keyed hash the server reports for the ID.
    let event = PatientEventInfo {
        name: "张三".into(),
        resident_id: Some(RESIDENT_ID.to_lowercase()),
        event_id: "EV-1".into(),
        hospital: "第一人民医院".into(),
    };
    let p = pki
        .issue_for_key(
            &db,
            "patient",
            &key,
            IssueProfile::PatientEvent(event.clone()),
            Duration::from_secs(600),
            &actor,
        )
        .await
        .unwrap();
    let digest = pki.resident_id_digest(RESIDENT_ID).await.unwrap();
    assert_eq!(
        p.cert.subject_attr(gm_pki::oid::AT_SERIAL_NUMBER).unwrap(),
        digest
    );
    assert_eq!(
        p.cert
            .not_after()
            .duration_since(p.cert.not_before())
            .unwrap(),
        Duration::from_secs(600)
    );

    // Typed refusals.
    let refused = |r: Result<IssuedCertificate, PkiError>| r.unwrap_err();
    let bad_id = StaffInfo {
        resident_id: Some("110105194912310021".into()),
        ..staff.clone()
    };
    assert!(matches!(
        refused(
            pki.issue_for_key(
                &db,
                "staff",
                &key,
                IssueProfile::Staff(bad_id),
                year,
                &actor
            )
            .await
        ),
        PkiError::InvalidField {
            field: "resident_id",
            ..
        }
    ));
    assert!(matches!(
        refused(
            pki.issue_for_key(
                &db,
                "nonesuch",
                &key,
                IssueProfile::Staff(staff.clone()),
                year,
                &actor
            )
            .await
        ),
        PkiError::UnknownCa(_)
    ));
    assert!(matches!(
        refused(
            pki.issue_for_key(
                &db,
                "patient",
                &key,
                IssueProfile::Staff(staff.clone()),
                year,
                &actor
            )
            .await
        ),
        PkiError::ProfileMismatch { .. }
    ));
    assert!(matches!(
        refused(
            pki.issue_for_key(
                &db,
                "patient",
                &key,
                IssueProfile::PatientEvent(event),
                year,
                &actor
            )
            .await
        ),
        PkiError::InvalidField {
            field: "validity",
            ..
        }
    ));
    assert!(matches!(
        pki.resident_id_digest("123").await.unwrap_err(),
        PkiError::InvalidField {
            field: "resident_id",
            ..
        }
    ));
    db.close().await;
}
both_backends!(issue_for_key_is_audited_and_typed);

/// Instances starting `init` together on one database end with ONE hierarchy: the losers
/// destroy the keys they generated and load the winner's (also forced: an instance that found
/// no hierarchy but lost the insert).
async fn concurrent_initialisation_ends_with_one_hierarchy(backend: Backend) {
    let data = TestData::new(backend).await;
    let config = data.config();
    cosign_server::init::prepare_data_dir(&config).unwrap();
    // The device exists first (instances share its master key: the same passphrase / key file).
    {
        let db = Db::open(&config.database_url).await.unwrap();
        Keys::open_or_init(&config, &db, Arc::new(AuditLog::new()), "test")
            .await
            .unwrap();
        db.close().await;
    }
    let start = Arc::new(tokio::sync::Barrier::new(3));
    let mut tasks = Vec::new();
    for i in 0..3 {
        let (config, start) = (config.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            let db = Db::open(&config.database_url).await.unwrap();
            let audit = Arc::new(AuditLog::new());
            let keys = Keys::open(&config, &db, audit.clone(), "test")
                .await
                .unwrap();
            start.wait().await;
            let pki = Pki::load_or_create(
                &config,
                &db,
                keys.device(),
                &audit,
                &format!("instance-{i}"),
            )
            .await
            .unwrap();
            let roots: Vec<String> = pki.authorities().map(|a| a.cert.serial_hex()).collect();
            db.close().await;
            roots
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");

    let db = Db::open(&config.database_url).await.unwrap();
    let audit = Arc::new(AuditLog::new());
    let keys = Keys::open(&config, &db, audit.clone(), "test")
        .await
        .unwrap();
    // The forced loser: creates, fails to record, cleans up, joins.
    let joined = Pki::create_or_join(&config, &db, keys.device(), &audit, "late")
        .await
        .unwrap();
    let roots: Vec<String> = joined.authorities().map(|a| a.cert.serial_hex()).collect();
    assert_eq!(roots, seen[0]);

    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(db.pool())
                .await
                .unwrap()
        }
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM pki_authorities WHERE kind <> 'secret'").await,
        8
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM pki_authorities WHERE kind = 'secret'").await,
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM audit_log WHERE action = 'pki.init'").await,
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM crypto_keys WHERE label LIKE 'pki:%' AND kind = 'sm2_sign' AND state = 'active'").await,
        8,
        "only the winner's keys stay usable"
    );
    assert!(
        count("SELECT COUNT(*) FROM crypto_keys WHERE label LIKE 'pki:%' AND kind = 'sm2_sign' AND state = 'destroyed'").await >= 8,
        "the forced loser destroyed its keys"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM crypto_keys WHERE label LIKE 'pki:%' AND kind = 'secret' AND state = 'active'").await,
        1
    );
    AuditLog::verify(&db).await.unwrap();
    db.close().await;
}
both_backends!(concurrent_initialisation_ends_with_one_hierarchy);
