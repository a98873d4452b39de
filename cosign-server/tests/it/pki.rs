//! PKI services over HTTP, checked with tools we did not write: `openssl ts` requests answered
//! by `POST /tsa` and the replies read by `openssl ts -reply` and verified with asn1crypto +
//! `openssl pkeyutl`; `openssl ocsp` against `/ocsp` for good and revoked certificates; issued
//! chains verified by `openssl verify` link by link; CRLs fetched over HTTP read by `openssl crl`.

use std::path::Path;

use base64::Engine;

use crate::both_backends;
use crate::support::{Backend, TestServer, assert_api_error};
use crate::tools::{json_field, openssl, openssl_csr, py, run};

async fn fetch(s: &TestServer, path: &str, dir: &Path, file: &str) -> Vec<u8> {
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

async fn issue(s: &TestServer, token: &str, ca: &str, csr: &str) -> serde_json::Value {
    let r = s
        .client
        .post(s.url("/api/v1/pki/certificates"))
        .bearer_auth(token)
        .json(&serde_json::json!({"ca": ca, "csr": csr, "validity_days": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
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
        "staff",
        &openssl_csr(d, "good", "/C=CN/O=第一人民医院/OU=心内科/CN=李医生"),
    )
    .await;
    let bad = issue(
        &s,
        &token,
        "staff",
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
        let out = openssl(
            d,
            &[
                "ocsp",
                "-issuer",
                "staff.pem",
                "-cert",
                cert,
                "-url",
                &url,
                "-noverify",
                "-respout",
                &format!("{cert}.ocsp"),
            ],
        );
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

    // Refusals: bad CSR, unknown CA, unknown serial, auditors cannot issue (covered by role check).
    let r = s
        .client
        .post(s.url("/api/v1/pki/certificates"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"ca": "staff", "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}))
        .send()
        .await
        .unwrap();
    assert_api_error(r, 400, "INVALID_CSR").await;
    let r = s
        .client
        .post(s.url("/api/v1/pki/certificates"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"ca": "root", "csr": good["certificate_pem"]}))
        .send()
        .await
        .unwrap();
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
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
