//! The bedside pad's kiosk page (web-h5 at `/h5/#/pad`, issue 8) in Debian's headless Chromium
//! against the real server (cosign-server/tests/py/h5_pad.py drives the page): an administrator
//! creates a pad, the page enrols with the one-time code (its own SM2 device key), a terminal
//! assigns a task to the pad, the page shows it and the patient signs by handwriting — every
//! call sealed in the pad channel, across two channel-key rotations the page must follow — then
//! the signed PDF is checked like the phone's, and a revoked pad shows the revoked screen. Screenshots at 1024×768 in `artifacts/h5/`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::h5_page::{code_relay, dist, run_py};
use crate::patient::{Kit, ink_in, kit, task_body};
use crate::support::Backend;

const PAD_NAME: &str = "5病区-1号平板";
const WARD: &str = "5病区";
/// The second signer's phone (扫码一名一签: signs on it, not on the pad).
const PHONE_SIGNER: &str = "13900000001";

async fn admin(k: &Kit, path: &str, body: &Value) -> Value {
    let r =
        k.s.client
            .post(k.s.url(path))
            .bearer_auth(&k.token)
            .json(body)
            .send()
            .await
            .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

/// Polls `check` every 200 ms until it returns something (at most `secs` seconds); `None` when
/// the page script ended first (its own failure is then the one to report).
async fn wait_for<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    secs: u64,
    page: &tokio::task::JoinHandle<Value>,
    mut check: impl FnMut() -> F,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if page.is_finished() {
            return None;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A field of the pad in the administrators' list (`Null` when the pad is not listed).
async fn pad_field(k: &Kit, pad_id: &str, field: &str) -> Value {
    let v: Value =
        k.s.client
            .get(k.s.url("/api/v1/pads"))
            .bearer_auth(&k.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    v["pads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pad_id"] == pad_id)
        .map(|p| p[field].clone())
        .unwrap_or_default()
}

async fn pad_status(k: &Kit, pad_id: &str) -> String {
    pad_field(k, pad_id, "status")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until the server has answered `n` more envelopes of the pad (its `last_seen_at`
/// changed `n` times).
async fn polls_seen(k: &Kit, pad_id: &str, n: usize, page: &tokio::task::JoinHandle<Value>) {
    let last_seen = || pad_field(k, pad_id, "last_seen_at");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (mut seen, mut changes) = (last_seen().await, 0);
    while changes < n {
        assert!(!page.is_finished(), "the page script ended early");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pad stopped polling"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = last_seen().await;
        if now != seen {
            (seen, changes) = (now, changes + 1);
        }
    }
}

async fn kiosk(backend: Backend) {
    dist();
    let k = kit(backend).await;
    let before = k.rows().await;
    let pad = admin(&k, "/api/v1/pads", &json!({"name": PAD_NAME, "ward": WARD})).await;
    let pad_id = pad["pad_id"].as_str().unwrap().to_owned();
    let code = pad["enrol_code"].as_str().unwrap().to_owned();
    let name = match backend {
        Backend::Sqlite => "pad-kiosk-sqlite",
        Backend::Postgres => "pad-kiosk-postgres",
    };
    // The page runs while the server side plays its part below.
    let link = k.s.url("/h5/#/pad");
    let marks = tempfile::tempdir().unwrap();
    let back = marks.path().join("back");
    let back_arg = back.to_str().unwrap().to_owned();
    let done = marks.path().join("done");
    let done_arg = done.to_str().unwrap().to_owned();
    let relay = code_relay(k.sms.clone(), PHONE_SIGNER).await;
    let page = tokio::spawn(async move {
        run_py(
            "h5_pad.py",
            name,
            &link,
            &[
                "--code",
                &code,
                "--pad-name",
                PAD_NAME,
                "--ward",
                WARD,
                "--back-file",
                &back_arg,
                "--done-file",
                &done_arg,
                "--sms-url",
                &relay,
                // Ten minutes slow: the server refuses the first envelope (its window is five)
                // and the page must correct its clock from the refusal.
                "--clock-skew-ms",
                "600000",
            ],
        )
        .await
    });

    let (kr, pid) = (&k, pad_id.as_str());
    let Some(()) = wait_for("the page enrols the pad", 90, &page, || async move {
        (pad_status(kr, pid).await == "active").then_some(())
    })
    .await
    else {
        panic!("the page script ended early: {}", page.await.unwrap());
    };
    // The server rotates its channel key twice while the page polls its queue. The page must
    // take the new key from a sealed answer after the first rotation: after the second, the
    // key it enrolled with is refused and nothing below would work.
    admin(&k, "/api/v1/pads/channel-key/rotate", &json!({})).await;
    polls_seen(&k, &pad_id, 2, &page).await;
    admin(&k, "/api/v1/pads/channel-key/rotate", &json!({})).await;
    // Identity "pad": staff at the bedside vouch for the patient, so no SMS on the pad.
    let (task_id, _token) = k
        .create(&task_body(
            "handwriting",
            &json!({"pad_id": pad_id, "identity": ["pad"]}),
        ))
        .await;
    let tid = task_id.as_str();
    let Some(()) = wait_for("the patient signs on the pad", 120, &page, || async move {
        (kr.view(tid).await["status"] == "signed").then_some(())
    })
    .await
    else {
        panic!("the page script ended early: {}", page.await.unwrap());
    };
    // Revoked only once the page is back in its queue (so the revoked screen is what the next
    // poll shows, not a race with the end of the signing flow).
    let back = back.as_path();
    let Some(()) = wait_for("the page returns to its queue", 60, &page, || async move {
        back.exists().then_some(())
    })
    .await
    else {
        panic!("the page script ended early: {}", page.await.unwrap());
    };
    // 扫码一名一签: a signer who proves who they are by SMS signs on their own phone, from the
    // QR code the pad shows.
    let (phone_task, _token) = k
        .create(&task_body(
            "button",
            &json!({"pad_id": pad_id, "identity": ["sms"],
                    "signer": {"role": "patient", "name": "李四", "phone": PHONE_SIGNER,
                               "id_number": crate::patient::ID_NUMBER}}),
        ))
        .await;
    let ptid = phone_task.as_str();
    let Some(()) = wait_for("the signer signs on the phone", 120, &page, || async move {
        (kr.view(ptid).await["status"] == "signed").then_some(())
    })
    .await
    else {
        panic!("the page script ended early: {}", page.await.unwrap());
    };
    let done = done.as_path();
    let Some(()) = wait_for("the pad lets the code go", 60, &page, || async move {
        done.exists().then_some(())
    })
    .await
    else {
        panic!("the page script ended early: {}", page.await.unwrap());
    };
    admin(&k, &format!("/api/v1/pads/{pad_id}/revoke"), &json!({})).await;

    let summary = page.await.unwrap();
    assert!(summary["sealed_calls"].as_u64().unwrap() >= 5, "{summary}");
    let dir = tempfile::tempdir().unwrap();
    k.check_signed(dir.path(), &task_id, "张三").await;
    let ink = ink_in(dir.path(), "signed.pdf", (100, 100, 160, 80));
    assert!(ink > 100, "appearance region has {ink} dark pixels");
    let phone_dir = tempfile::tempdir().unwrap();
    k.check_signed(phone_dir.path(), &phone_task, "李四").await;
    // The pad showing the code is audited under the pad, against that task.
    let handoffs = k
        .count(&format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'pad.task.handoff' \
             AND actor = 'pad:{pad_id}' AND target = '{phone_task}'"
        ))
        .await;
    assert_eq!(handoffs, 1);
    let after = k.rows().await;
    // Two tasks, each with one evidence record and one event certificate.
    assert_eq!(after[0] - before[0], 2, "{before:?} → {after:?}");
    assert_eq!(after[3] - before[3], 2, "{before:?} → {after:?}");
    assert_eq!(after[4] - before[4], 2, "{before:?} → {after:?}");
    assert_eq!(pad_status(&k, &pad_id).await, "revoked");
    k.s.stop().await;
}

both_backends!(kiosk);
