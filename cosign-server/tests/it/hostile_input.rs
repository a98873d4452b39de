//! Garbage to every route: wrong methods, content types, malformed and random bodies, oversized
//! bodies, forged tokens, odd paths. Every answer must be a 4xx JSON error, never a 500 or a
//! dropped connection, and the server must keep serving afterwards.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use reqwest::Method;

use crate::support::{Backend, TestServer, assert_api_error};

/// Every route added so far: (method, path, takes a JSON body, needs a session).
const ROUTES: &[(&str, &str, bool, bool)] = &[
    ("GET", "/healthz", false, false),
    ("GET", "/readyz", false, false),
    ("GET", "/metrics", false, false),
    ("GET", "/api/v1/version", false, false),
    ("GET", "/api/v1/auth/me", false, true),
    ("GET", "/api/v1/audit/verify", false, true),
    ("POST", "/api/v1/auth/login", true, false),
    ("POST", "/api/v1/auth/logout", false, true),
    ("POST", "/api/v1/auth/password", true, true),
    ("GET", "/pki", false, false),
    ("GET", "/pki/root.crt", false, false),
    ("GET", "/pki/staff.pem", false, false),
    ("GET", "/pki/seal.crl", false, false),
    ("GET", "/api/v1/tsa/tokens/0a", false, false),
    ("POST", "/api/v1/pki/certificates", true, true),
    ("POST", "/api/v1/pki/certificates/0a/revoke", true, true),
    ("POST", "/api/v1/pki/certificates/0a/renew", true, true),
    ("POST", "/api/v1/admin/apps", true, true),
    ("POST", "/api/v1/admin/staff", true, true),
    ("POST", "/api/v1/admin/staff/import", false, true),
    ("GET", "/api/v1/admin/staff/D001", false, true),
    ("POST", "/api/v1/admin/staff/D001/activation", false, true),
    ("POST", "/api/v1/admin/staff/D001/unlock", false, true),
    ("GET", "/api/v1/admin/apps/list", false, true),
    ("GET", "/api/v1/admin/apps/app_00", false, true),
    ("POST", "/api/v1/admin/apps/app_00/update", true, true),
    ("GET", "/api/v1/admin/autosign", false, true),
    ("GET", "/api/v1/admin/autosign/asa_00", false, true),
    ("POST", "/api/v1/admin/autosign/asa_00/revoke", true, true),
    ("POST", "/api/v1/phone/enroll", true, false),
    ("POST", "/api/v1/phone/enroll/sms", true, false),
    ("GET", "/terminal/demo", false, false),
    ("GET", "/terminal/demo/demo.js", false, false),
    ("GET", "/api/v1/demo/staff", false, true),
    ("POST", "/api/v1/demo/sign-requests", true, true),
    // Signed routes (HMAC or device signature) answer garbage with BAD_SIGNATURE: cosign.rs.
    ("POST", "/api/v1/sign-requests", false, false),
    ("GET", "/api/v1/sign-requests/req_00", false, false),
    ("GET", "/api/v1/sign-requests/req_00/qr.png", false, false),
    ("GET", "/api/v1/sign-requests/req_00/events", false, false),
    ("POST", "/api/v1/phone/enroll/keygen", false, false),
    ("POST", "/api/v1/phone/enroll/finish", false, false),
    ("GET", "/api/v1/phone/tasks", false, false),
    ("GET", "/api/v1/phone/events", false, false),
    ("POST", "/api/v1/sign-requests/req_00/cancel", false, false),
    ("POST", "/api/v1/phone/pin", false, false),
    ("POST", "/api/v1/phone/rounds", false, false),
    ("POST", "/api/v1/phone/rounds/rnd_00/commit", false, false),
    ("POST", "/api/v1/phone/rounds/rnd_00/result", false, false),
    ("POST", "/api/v1/phone/autosign", false, false),
    ("GET", "/api/v1/phone/autosign/list", false, false),
    ("GET", "/api/v1/phone/autosign/asa_00", false, false),
    (
        "POST",
        "/api/v1/phone/autosign/asa_00/activate",
        false,
        false,
    ),
    ("POST", "/api/v1/phone/autosign/asa_00/revoke", false, false),
    ("GET", "/api/v1/autosign/asa_00", false, false),
    ("GET", "/api/v1/pki/certificates/list", false, true),
    ("GET", "/api/v1/pki/external", false, true),
    ("POST", "/api/v1/pki/external/anchors", true, true),
    (
        "POST",
        "/api/v1/pki/external/anchors/0000000000000000000000000000000000000000000000000000000000000000/remove",
        false,
        true,
    ),
    ("POST", "/api/v1/pki/external/requests", true, true),
    ("POST", "/api/v1/pki/external/crls", true, true),
    ("POST", "/api/v1/pki/external/certificates", true, true),
    (
        "GET",
        "/api/v1/pki/external/certificates/0000000000000000000000000000000000000000000000000000000000000000",
        false,
        true,
    ),
    // POST (upload) and GET (search) /api/v1/documents share a path: tests/it/documents.rs.
    ("GET", "/api/v1/documents/seal", false, true),
    ("POST", "/api/v1/documents/verify", false, true),
    (
        "GET",
        "/api/v1/documents/7d0d3b9e-4e4b-4f0e-9d7e-0c0ffee00001",
        false,
        true,
    ),
    (
        "GET",
        "/api/v1/documents/7d0d3b9e-4e4b-4f0e-9d7e-0c0ffee00001/versions/1",
        false,
        true,
    ),
    (
        "POST",
        "/api/v1/documents/7d0d3b9e-4e4b-4f0e-9d7e-0c0ffee00001/sign",
        true,
        true,
    ),
    // Patient signing (issue 8): terminal routes are HMAC-signed (BAD_SIGNATURE); page routes
    // take the link token in the path (unknown: NOT_FOUND) and the page session; submit's
    // own 4 MiB limit is checked in patient.rs.
    ("POST", "/api/v1/patient-tasks", false, false),
    (
        "GET",
        "/api/v1/patient-tasks/00000000-0000-0000-0000-000000000000",
        false,
        false,
    ),
    (
        "GET",
        "/api/v1/patient-tasks/00000000-0000-0000-0000-000000000000/qr.svg",
        false,
        false,
    ),
    (
        "GET",
        "/api/v1/patient-tasks/00000000-0000-0000-0000-000000000000/signed.pdf",
        false,
        false,
    ),
    (
        "POST",
        "/api/v1/patient-tasks/00000000-0000-0000-0000-000000000000/cancel",
        false,
        false,
    ),
    (
        "GET",
        "/api/v1/patient-tasks/00000000-0000-0000-0000-000000000000/events",
        false,
        false,
    ),
    ("GET", "/api/v1/h5/tasks/AAAA", false, false),
    ("POST", "/api/v1/h5/tasks/AAAA/sms", false, false),
    ("POST", "/api/v1/h5/tasks/AAAA/verify", true, false),
    ("GET", "/api/v1/h5/tasks/AAAA/pages/1.png", false, false),
    ("POST", "/api/v1/h5/tasks/AAAA/proxy", true, false),
    ("POST", "/api/v1/h5/tasks/AAAA/submit", false, false),
    // Bedside pads (issue 8): admin routes, enrolment (JSON), the envelope channel (binary;
    // refusals are JSON). `GET/POST /api/v1/pads` share a path, so neither is a wrong method.
    (
        "POST",
        "/api/v1/pads/00000000-0000-0000-0000-000000000000/code",
        false,
        true,
    ),
    (
        "POST",
        "/api/v1/pads/00000000-0000-0000-0000-000000000000/revoke",
        false,
        true,
    ),
    ("POST", "/api/v1/pad/enrol", true, false),
    ("POST", "/api/v1/pad/call", false, false),
    // The patient page (static files, api::static_h5).
    ("GET", "/h5/", false, false),
    ("GET", "/h5/app.js", false, false),
];

/// Protocol endpoints: garbage gets an answer in the protocol's own format (200 with a
/// TimeStampResp rejection / an OCSP malformedRequest), wrong methods and oversized bodies a
/// JSON 4xx. (method, path, reply content type)
const PROTOCOL_ROUTES: &[(&str, &str, &str)] = &[
    ("POST", "/tsa", "application/timestamp-reply"),
    ("POST", "/ocsp", "application/ocsp-response"),
    ("GET", "/ocsp/MAo%3D", "application/ocsp-response"),
];

/// The PKIStatus of a DER TimeStampResp / the responseStatus of an OCSPResponse.
fn protocol_status(content_type: &str, body: &[u8]) -> u8 {
    if content_type == "application/timestamp-reply" {
        let parsed = gm_pki::tsp::parse_response(body).expect("a DER TimeStampResp");
        assert_eq!(parsed.status, gm_pki::tsp::PkiStatus::Rejection);
        assert!(!parsed.failure.is_empty(), "failInfo set");
        2
    } else {
        // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED (..) } with no responseBytes.
        assert_eq!(&body[..4], &[0x30, 0x03, 0x0a, 0x01], "{body:02x?}");
        body[4]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_routes_answer_garbage_in_their_own_format() {
    let s = TestServer::start(Backend::Sqlite).await;
    for &(method, path, ct) in PROTOCOL_ROUTES {
        let url = s.url(path);
        for wrong in [
            "PUT",
            "DELETE",
            "PATCH",
            if method == "GET" { "POST" } else { "GET" },
        ] {
            if path == "/ocsp" && wrong == "GET" {
                continue; // GET /ocsp/<request> is the GET form; bare GET /ocsp is 405 below
            }
            let r = s
                .client
                .request(Method::from_bytes(wrong.as_bytes()).unwrap(), &url)
                .body("garbage")
                .send()
                .await
                .unwrap();
            assert!(r.headers().contains_key("allow"), "{wrong} {path}");
            assert_api_error(r, 405, "METHOD_NOT_ALLOWED").await;
        }
        for body in [
            &b""[..],
            b"garbage",
            b"{\"json\": true}",
            b"\x30\x80\x00\x00",
            b"\x30\x03\x02\x01\x01",
            &[0x30, 0x82, 0xff, 0xff, 0x01][..],
        ] {
            let req = s
                .client
                .request(Method::from_bytes(method.as_bytes()).unwrap(), &url)
                .header("content-type", "application/json");
            let req = if method == "POST" {
                req.body(body.to_vec())
            } else {
                req
            };
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200, "{method} {path} {body:?}");
            assert_eq!(r.headers()["content-type"].to_str().unwrap(), ct);
            let bytes = r.bytes().await.unwrap();
            let status = protocol_status(ct, &bytes);
            if ct == "application/ocsp-response" {
                assert_eq!(status, 1, "malformedRequest");
            }
        }
        if method == "POST" {
            let r = s
                .client
                .post(&url)
                .body(vec![0x30; 100 * 1024])
                .send()
                .await
                .unwrap();
            assert_api_error(r, 413, "PAYLOAD_TOO_LARGE").await;
        }
    }
    for path in ["/ocsp/%%%", "/ocsp/!!!!", "/ocsp/AAAA"] {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let bytes = r.bytes().await.unwrap();
        assert_eq!(
            protocol_status("application/ocsp-response", &bytes),
            1,
            "{path}"
        );
    }
    assert_api_error(
        s.client.get(s.url("/ocsp")).send().await.unwrap(),
        405,
        "METHOD_NOT_ALLOWED",
    )
    .await;
    for path in [
        "/pki/nothing.crt",
        "/pki/tsa.crl",
        "/pki/root.exe",
        "/pki/root",
    ] {
        assert_api_error(
            s.client.get(s.url(path)).send().await.unwrap(),
            404,
            "NOT_FOUND",
        )
        .await;
    }
    // Random bytes to the protocol routes never give a 5xx.
    let mut runner = TestRunner::new(PropConfig {
        cases: 48,
        ..PropConfig::default()
    });
    let cases: Vec<Vec<u8>> = (0..48)
        .map(|_| {
            prop::collection::vec(any::<u8>(), 0..600)
                .new_tree(&mut runner)
                .unwrap()
                .current()
        })
        .collect();
    for (i, body) in cases.into_iter().enumerate() {
        let (_, path, ct) = PROTOCOL_ROUTES[i % 2];
        let r = s.client.post(s.url(path)).body(body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"].to_str().unwrap(), ct);
    }
    s.stop().await;
}

/// Announces a body of `len` bytes and sends none of it: the server must refuse from the
/// announced length alone. (Sending the body with a normal client races the server's early 413 and
/// close, which a real client sees as a broken pipe: that is HTTP, not a server fault.)
pub(crate) async fn oversized_post(
    base: &str,
    path: &str,
    token: &str,
    len: usize,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        conn.read_to_end(&mut raw),
    )
    .await
    .unwrap()
    .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let json = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // The body may be chunk-encoded: take the JSON object inside.
    let json = json
        .find('{')
        .zip(json.rfind('}'))
        .map_or("null", |(a, b)| &json[a..=b]);
    (
        status,
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    )
}

async fn assert_4xx_json(resp: reqwest::Response) -> u16 {
    let status = resp.status().as_u16();
    assert!((400..500).contains(&status), "expected 4xx, got {status}");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        ct.starts_with("application/json"),
        "status {status} content-type {ct:?}"
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    for field in ["code", "message", "message_en"] {
        assert!(
            body[field].as_str().is_some_and(|s| !s.is_empty()),
            "missing {field}: {body}"
        );
    }
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_rejects_garbage_with_json_4xx() {
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s.admin_token().await;
    for &(method, path, json_body, needs_session) in ROUTES {
        let url = s.url(path);
        // Wrong methods: 405 with an Allow header and a JSON body.
        for wrong in [
            "PUT",
            "DELETE",
            "PATCH",
            if method == "GET" { "POST" } else { "GET" },
        ] {
            let r = s
                .client
                .request(Method::from_bytes(wrong.as_bytes()).unwrap(), &url)
                .body("garbage")
                .send()
                .await
                .unwrap();
            assert!(r.headers().contains_key("allow"), "{wrong} {path}");
            let body = assert_api_error(r, 405, "METHOD_NOT_ALLOWED").await;
            assert!(body["message"].as_str().unwrap().contains("请求方法"));
        }
        // Forged, malformed and foreign credentials.
        if needs_session {
            for auth in [
                "Bearer",
                "Bearer x",
                "Basic YWRtaW46YWRtaW4=",
                &format!("Bearer {}", "ab".repeat(32)),
                &format!("Bearer {}", "é".repeat(40)),
            ] {
                let r = s
                    .client
                    .request(Method::from_bytes(method.as_bytes()).unwrap(), &url)
                    .header("authorization", auth)
                    .send()
                    .await
                    .unwrap();
                assert_api_error(r, 401, "UNAUTHENTICATED").await;
            }
        }
        if json_body {
            let post = || s.client.post(&url).bearer_auth(&token);
            assert_api_error(
                post().body("{\"username\":1}").send().await.unwrap(),
                415,
                "UNSUPPORTED_MEDIA_TYPE",
            )
            .await;
            assert_api_error(
                post()
                    .header("content-type", "text/plain")
                    .body("hello")
                    .send()
                    .await
                    .unwrap(),
                415,
                "UNSUPPORTED_MEDIA_TYPE",
            )
            .await;
            for bad in [
                &b"{"[..],
                b"null",
                b"[]",
                b"{\"username\": \"a\", \"password\": \"b\", \"extra\": 1}",
                b"{\"old_password\": 5}",
                b"\xff\xfe\x00garbage",
                "[".repeat(5000).as_bytes(),
            ] {
                let r = post()
                    .header("content-type", "application/json")
                    .body(bad.to_vec())
                    .send()
                    .await
                    .unwrap();
                assert_api_error(r, 400, "MALFORMED_JSON").await;
            }
            let (status, body) = oversized_post(&s.base, path, &token, 3 * 1024 * 1024).await;
            assert_eq!(status, 413, "{path}: {body}");
            assert_eq!(body["code"], "PAYLOAD_TOO_LARGE", "{path}: {body}");
            assert!(
                body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{body}"
            );
        }
    }
    // Odd paths.
    for path in [
        "/",
        "/api",
        "/api/v1/",
        "/../../etc/passwd",
        "/%00",
        "/api/v1/auth/login/extra",
        &format!("/{}", "a".repeat(2000)),
    ] {
        assert_api_error(
            s.client.get(s.url(path)).send().await.unwrap(),
            404,
            "NOT_FOUND",
        )
        .await;
    }
    // Field values out of bounds.
    let r = s
        .client
        .post(s.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "a".repeat(65), "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    // Still healthy after all that.
    assert_eq!(
        s.client
            .get(s.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    s.stop().await;
}

#[test]
fn random_bodies_never_cause_5xx() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(TestServer::start(Backend::Sqlite));
    let token = rt.block_on(s.admin_token());
    let mut runner = TestRunner::new(PropConfig {
        cases: 96,
        ..PropConfig::default()
    });
    let strategy = (
        0..ROUTES.len(),
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512).boxed(),
            "[ -~]{0,200}".prop_map(String::into_bytes).boxed(),
            // Plausible JSON with random values.
            ("[a-z_]{0,12}", "[^\"\\\\]{0,40}")
                .prop_map(|(k, v)| format!("{{\"{k}\": \"{v}\"}}").into_bytes())
                .boxed(),
        ],
        any::<bool>(),
    );
    runner
        .run(&strategy, |(route, body, with_token)| {
            let (method, path, _, _) = ROUTES[route];
            let mut req = s
                .client
                .request(Method::from_bytes(method.as_bytes()).unwrap(), s.url(path))
                .header("content-type", "application/json")
                .body(body);
            if with_token {
                req = req.bearer_auth(&token);
            }
            let resp = rt.block_on(async { req.send().await }).unwrap();
            let status = resp.status().as_u16();
            prop_assert!(status < 500, "{method} {path}: {status}");
            if status >= 400 {
                rt.block_on(assert_4xx_json(resp));
            }
            Ok(())
        })
        .unwrap();
    rt.block_on(s.stop());
}
