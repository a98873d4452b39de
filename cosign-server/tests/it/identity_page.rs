//! The page's camera checks (web-h5 `ui/identity.rs`, issue 8) in Debian's headless Chromium
//! against the real server and the real `liveness serve` (tests/py/h5_flow.py drives the page).
//!
//! - ID card and face: the signer photographs the back of the card first (no portrait: the
//!   server's Chinese advice is shown), then the photo side; a photo without a face is refused,
//!   then a selfie of the portrait's person — sent as a 2048-pixel PNG too large to send as it
//!   is, so the page redraws it as JPEG — passes; the patient signs and the signed PDF carries
//!   the identity evidence (exactly the two checks recorded as passed).
//! - Liveness refused: the camera is Chromium's fake device playing a still picture of the
//!   same face; the page prompts each action of the server's challenge in order, films frames,
//!   sends them with the portrait ticket, and shows the server's refusal (a still face performs
//!   no action) with “重新检测”; nothing is signed.
//! - Liveness passed: the camera is a stand-in person (the script's `getUserMedia` replacement,
//!   tests/py/h5_flow.py) showing the poses `liveness synth live` made from the portrait's face
//!   — the neutral face, and each action as it is prompted; the page films and sends its own
//!   frames, the real checker passes them (and matches the best frame with the card's
//!   portrait), the patient signs, and the PDF's identity evidence attribute is the SM3 of the
//!   evidence's checks, which include that liveness check.

use std::path::Path;

use serde_json::{Value, json};
use sqlx::Row;

use crate::both_backends;
use crate::h5_page::{code_relay, dist, run_flow};
use crate::identity::{OID_7_4, checks, liveness_bin, models, start_service, synth, synth_card};
use crate::patient::{Kit, kit_with, task_body};
use crate::support::Backend;

const PHONE: &str = "13800000000";

/// `liveness synth live`: the portrait's poses (neutral.png, blink.png, …) written to `dir`.
fn live_poses(dir: &Path, photo: &str) {
    let o = std::process::Command::new(liveness_bin())
        .args(["synth", "live", "--photo", photo, "--out"])
        .arg(dir)
        .arg("--models")
        .arg(models())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "liveness synth live: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The `identity` array of a task's evidence, opened as the server opens it.
async fn evidence_identity(k: &Kit, task_id: &str) -> Value {
    let r =
        sqlx::query("SELECT key_id, nonce, ciphertext FROM patient_evidence WHERE task_id = $1")
            .bind(task_id)
            .fetch_one(k.s.db.pool())
            .await
            .unwrap();
    let device = k.s.keys.device();
    let plain = cosign_server::patient::open(
        &*device,
        &crypto_device::KeyId(r.try_get("key_id").unwrap()),
        &format!("evidence:{task_id}"),
        &r.try_get::<Vec<u8>, _>("nonce").unwrap(),
        &r.try_get::<Vec<u8>, _>("ciphertext").unwrap(),
    )
    .await
    .unwrap();
    let evidence: Value = serde_json::from_slice(&plain).unwrap();
    evidence["identity"].clone()
}

async fn camera_checks(backend: Backend) {
    dist();
    let label = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let dir = tempfile::tempdir().unwrap();
    let svc = start_service(None).await;
    let url = svc.url.clone();
    let k = kit_with(backend, |c| c.identity.liveness_url = Some(url)).await;
    let (front, name, number) = synth_card(dir.path(), 11);
    let (back, _) = synth(dir.path(), 11, "back");
    let path = |file: &str, bytes: &[u8]| {
        let p = dir.path().join(file);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let (front, back) = (path("front.png", &front), path("back.png", &back));
    let face = models().join("test-images/astronaut.png");
    let face = face.to_str().unwrap();
    let relay = code_relay(k.sms.clone(), PHONE).await;
    let task = |identity| {
        let mut t = task_body("button", &json!({ "identity": identity }));
        t["signer"]["name"] = json!(name);
        t["signer"]["id_number"] = json!(number);
        t
    };
    let flow_args = [
        "--sms-url",
        relay.as_str(),
        "--pages",
        "1",
        "--mode",
        "button",
    ];
    let photos = [
        "--id-card-wrong",
        back.as_str(),
        "--id-card",
        front.as_str(),
        "--selfie-wrong",
        back.as_str(),
        "--selfie",
        face,
    ];

    // ID card and face, then signing.
    let (task_id, token) = k.create(&task(json!(["sms", "id_ocr", "face"]))).await;
    let link = k.s.url(&format!("/h5/#/t/{token}"));
    let mut args = flow_args.to_vec();
    args.extend_from_slice(&photos);
    let summary = run_flow(&format!("identity-{label}"), &link, &args).await;
    assert_eq!(summary["identity"]["refusals"], 2, "{summary}");
    assert!(
        summary["identity"]["selfie_redrawn"].as_bool().unwrap(),
        "{summary}"
    );
    k.check_signed(dir.path(), &task_id, &name).await;
    let pdf = k.signed_pdf(&task_id).await;
    assert!(
        String::from_utf8_lossy(&pdf)
            .to_ascii_lowercase()
            .contains(OID_7_4),
        "identity evidence SM3 attribute"
    );
    // Card and face passed (the refused photos were the service's refusals: audited as denied,
    // never recorded as passed).
    assert_eq!(checks(&k, "passed").await, 2);

    // Liveness with a still face: refused, shown, nothing signed.
    let (live_id, token) = k.create(&task(json!(["sms", "id_ocr", "liveness"]))).await;
    let link = k.s.url(&format!("/h5/#/t/{token}"));
    let camera = dir.path().join("face.y4m");
    let camera = camera.to_str().unwrap();
    let mut args = flow_args.to_vec();
    args.extend_from_slice(&[
        "--id-card",
        front.as_str(),
        "--camera",
        camera,
        "--camera-image",
        face,
    ]);
    let summary = run_flow(&format!("liveness-{label}"), &link, &args).await;
    let live = &summary["liveness"];
    let prompted = live["prompted"].as_array().unwrap();
    assert_eq!(
        prompted,
        live["challenge_actions"].as_array().unwrap(),
        "{summary}"
    );
    assert!((2..=4).contains(&prompted.len()), "{summary}");
    assert!(
        live["frames"].as_u64().unwrap() >= 2 * prompted.len() as u64,
        "{summary}"
    );
    let view = k.view(&live_id).await;
    assert_ne!(view["status"], "signed", "{view}");
    let failed_live = k
        .count(
            "SELECT COUNT(*) FROM identity_checks WHERE method = 'liveness' AND outcome = 'failed'",
        )
        .await;
    assert_eq!(failed_live, 1);

    // Liveness done by a stand-in person following the prompts: passed, then signed.
    let poses = dir.path().join("poses");
    live_poses(&poses, face);
    let (live_id, token) = k.create(&task(json!(["sms", "id_ocr", "liveness"]))).await;
    let link = k.s.url(&format!("/h5/#/t/{token}"));
    let mut args = flow_args.to_vec();
    args.extend_from_slice(&["--id-card", front.as_str(), "--live-poses"]);
    args.push(poses.to_str().unwrap());
    let summary = run_flow(&format!("liveness-passed-{label}"), &link, &args).await;
    let live = &summary["liveness"];
    assert_eq!(live["passed"], true, "{summary}");
    let actions = live["challenge_actions"].as_array().unwrap();
    assert_eq!(live["prompted"].as_array().unwrap(), actions, "{summary}");
    assert_eq!(
        live["frames"].as_u64().unwrap(),
        8 * actions.len() as u64,
        "{summary}"
    );
    // While each action was prompted the person showed it, and the neutral face around it.
    for (action, painted) in actions.iter().zip(live["painted"].as_array().unwrap()) {
        let painted = painted.as_array().unwrap();
        assert!(painted.contains(action), "{summary}");
        assert!(painted.contains(&json!("neutral")), "{summary}");
    }
    let pdf = k.check_signed(dir.path(), &live_id, &name).await;
    // The server recorded this task's liveness check as passed, once.
    let live_checks = sqlx::query(
        "SELECT check_id FROM identity_checks WHERE subject_id = $1 AND method = 'liveness' \
         AND outcome = 'passed'",
    )
    .bind(&live_id)
    .fetch_all(k.s.db.pool())
    .await
    .unwrap();
    assert_eq!(live_checks.len(), 1);
    let live_check: String = live_checks[0].try_get(0).unwrap();
    // The evidence names the SMS code, the card and this liveness check; the signature's
    // identity attribute (1.2.156.112233.7.4) is the SM3 of exactly that list.
    let identity = evidence_identity(&k, &live_id).await;
    let methods: Vec<&str> = identity
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["sms", "id_card", "liveness"], "{identity}");
    assert_eq!(identity[2]["check_id"], live_check.as_str(), "{identity}");
    let sm3 = cosign_server::documents::sm3_hex(&serde_json::to_vec(&identity).unwrap());
    // DER: the OID, then SET { OCTET STRING (32 bytes) } holding the SM3.
    let attribute = format!("{OID_7_4}31220420{sm3}");
    assert!(
        String::from_utf8_lossy(&pdf)
            .to_ascii_lowercase()
            .contains(&attribute),
        "identity evidence attribute with the liveness check"
    );
    drop(svc);
    k.s.stop().await;
}
both_backends!(camera_checks);
