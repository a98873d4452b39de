//! The terminal demo page (`/terminal/demo`) in a real headless Chromium (Playwright driving
//! Debian's /usr/bin/chromium, tests/py/terminal_demo.py): an administrator signs in, creates a
//! request, the test reads the QR link from the page and signs it with the phone library, and
//! the page turns to 已签署 over the WebSocket without a reload. Screenshots go to
//! `$CARGO_TARGET_DIR/artifacts/terminal-demo/`.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Row;
use tokio::io::{AsyncBufReadExt, BufReader};
use yiqian_phone::sign;

use crate::cosign::enrolled;
use crate::support::{Backend, TestServer, assert_api_error};

const PIN: &str = "246810";

fn artifacts() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
        .join("artifacts/terminal-demo")
}

#[tokio::test]
async fn demo_page_turns_signed_live_in_chromium() {
    let s = TestServer::start_with(Backend::Sqlite, |c| c.cosign.demo_terminal = true).await;
    let token = s.admin_token().await;
    let phone = enrolled(&s, &token, "D101", "王医生").await;

    let page = s.client.get(s.url("/terminal/demo")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(page.text().await.unwrap().contains("终端演示"));

    let shots = artifacts();
    let _ = std::fs::remove_dir_all(&shots);
    let python = std::env::var("YIQIAN_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/terminal_demo.py");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .args([
            s.base.as_str(),
            "admin",
            "Ward7-night-shift-2026",
            "D101",
            shots.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("Python with Playwright ($YIQIAN_PYTHON) is required");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the page showed no QR link within 60 s")
        .unwrap()
        .map(|l| serde_json::from_str(&l).unwrap())
        .expect("the browser script ended early");
    let link = first["qr_link"]
        .as_str()
        .unwrap_or_else(|| panic!("{first}"));

    // The phone scans the link shown in the browser and co-signs.
    let outcome = sign::sign_link(&phone, link, PIN).await.unwrap();
    assert!(outcome.items.iter().all(|i| i.ok), "{outcome:?}");

    let last: Value = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the page did not turn 已签署")
        .unwrap()
        .map(|l| serde_json::from_str(&l).unwrap())
        .expect("the browser script printed nothing");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success() && last["ok"] == true, "{last}");
    assert!(
        last["signer"].as_str().unwrap().contains("王医生"),
        "{last}"
    );
    // The downloaded signature is the stored CMS, and OpenSSL parses it as SignedData.
    let downloaded = std::fs::read(last["cms"].as_str().unwrap()).unwrap();
    let stored: Vec<u8> = sqlx::query("SELECT cms FROM signatures")
        .fetch_one(s.db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(downloaded, stored);
    let printed = crate::tools::openssl(
        &shots,
        &[
            "cms",
            "-cmsout",
            "-print",
            "-inform",
            "DER",
            "-in",
            "signature.p7s",
        ],
    );
    assert!(printed.contains("pkcs7-signedData"), "{printed}");
    for f in ["1-qr.png", "2-signed.png"] {
        let meta = std::fs::metadata(shots.join(f)).unwrap();
        assert!(meta.len() > 5_000, "{f}");
    }

    // The request belongs to the built-in demo app and the administrator is in the audit log.
    let row = sqlx::query("SELECT app_id, status FROM sign_requests")
        .fetch_one(s.db.pool())
        .await
        .unwrap();
    assert_eq!(row.try_get::<String, _>(0).unwrap(), "app_demo_terminal");
    assert_eq!(row.try_get::<String, _>(1).unwrap(), "completed");
    let actor: String =
        sqlx::query("SELECT actor FROM audit_log WHERE action = 'cosign.demo.request'")
            .fetch_one(s.db.pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
    assert_eq!(actor, "admin:admin");
    s.stop().await;
}

#[tokio::test]
async fn demo_is_off_by_default_and_needs_an_administrator() {
    let off = TestServer::start(Backend::Sqlite).await;
    let token = off.admin_token().await;
    for path in [
        "/terminal/demo",
        "/terminal/demo/demo.js",
        "/api/v1/demo/staff",
    ] {
        let r = off
            .client
            .get(off.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_api_error(r, 404, "NOT_FOUND").await;
    }
    off.stop().await;

    let s = TestServer::start_with(Backend::Sqlite, |c| c.cosign.demo_terminal = true).await;
    let r = s
        .client
        .get(s.url("/api/v1/demo/staff"))
        .send()
        .await
        .unwrap();
    assert_api_error(r, 401, "UNAUTHENTICATED").await;
    let r = s
        .client
        .post(s.url("/api/v1/demo/sign-requests"))
        .json(&json!({"staff_id": "D1", "doc_type": "处方", "patient_id": "", "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_api_error(r, 401, "UNAUTHENTICATED").await;
    let token = s.admin_token().await;
    let post = |body: Value| {
        s.client
            .post(s.url("/api/v1/demo/sign-requests"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let r = post(json!({"staff_id": "D1", "doc_type": "<script>", "patient_id": "", "text": "x"}))
        .await
        .unwrap();
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    let r = post(json!({"staff_id": "D1", "doc_type": "处方", "patient_id": "", "text": "  "}))
        .await
        .unwrap();
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    let r = post(
        json!({"staff_id": "D1", "doc_type": "处方", "patient_id": "", "text": "x", "extra": 1}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    // An unknown doctor is refused like any request for an unknown signer.
    let r = post(json!({"staff_id": "NOBODY", "doc_type": "处方", "patient_id": "", "text": "x"}))
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // The demo app can never be used for signed calls: it has no permissions and is disabled.
    let row = sqlx::query(
        "SELECT permissions, enabled FROM client_apps WHERE app_id = 'app_demo_terminal'",
    )
    .fetch_optional(s.db.pool())
    .await
    .unwrap();
    if let Some(row) = row {
        assert_eq!(row.try_get::<String, _>(0).unwrap(), "");
        assert_eq!(row.try_get::<i64, _>(1).unwrap(), 0);
    }
    s.stop().await;
}
