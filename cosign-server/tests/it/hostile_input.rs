//! Garbage to every route: wrong methods, content types, malformed and random bodies, oversized
//! bodies, forged tokens, odd paths. Every answer must be a 4xx JSON error, never a 500 or a
//! dropped connection, and the server must keep serving afterwards.

use proptest::prelude::*;
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
];

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
            let huge = vec![b' '; 3 * 1024 * 1024];
            let r = post()
                .header("content-type", "application/json")
                .body(huge)
                .send()
                .await
                .unwrap();
            assert_api_error(r, 413, "PAYLOAD_TOO_LARGE").await;
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
