//! Identity checks through the `liveness` service (issues 8 and 10): patient tasks asking for
//! `id_ocr` / `face` / `liveness`, and staff activation under `activation_identity`.
//!
//! The end-to-end tests start the real `liveness serve` binary built from this workspace
//! (`cargo build -p liveness`; `LIVENESS_BIN` overrides the path) on a free loopback port with
//! the models in `$YIQIAN_CACHE/models`, and make ID cards of fictional people with
//! `liveness synth card`. The rest needs no service: creation rules, submission refused before
//! the checks, the service down or failing (503 `IDENTITY_SERVICE_UNAVAILABLE`, nothing
//! recorded as passed), forged portrait tickets.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use sqlx::Row;

use crate::both_backends;
use crate::cosign::code_of;
use crate::patient::{Kit, kit_with, task_body};
use crate::support::{Backend, assert_api_error};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const PHONE: &str = "13800000000";

/// A loopback URL nothing listens on.
async fn dead_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

fn button(id: &str) -> Value {
    json!({ "submission_id": id, "read_to_end": true, "consent": true })
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(crate) async fn checks(k: &Kit, outcome: &str) -> i64 {
    k.count(&format!(
        "SELECT COUNT(*) FROM identity_checks WHERE outcome = '{outcome}'"
    ))
    .await
}

async fn audited(k: &Kit, outcome: &str) -> i64 {
    k.count(&format!(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'identity.check' AND outcome = '{outcome}'"
    ))
    .await
}

/// A tiny PNG (not an ID card), base64.
fn small_png() -> String {
    B64.encode(small_png_bytes())
}

/// A tiny PNG (not an ID card), enough for the calls that fail before judging it.
fn small_png_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 2, 2);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()
            .unwrap()
            .write_image_data(&[0, 255, 255, 0])
            .unwrap();
    }
    out
}

async fn post_task(k: &Kit, body: Value) -> reqwest::Response {
    k.term
        .call("POST", "/api/v1/patient-tasks", Some(&body))
        .await
}

// ---------------------------------------------------------------------------------------
// without the service

/// `identity` at task creation: `sms` first, known methods once each; non-SMS methods need the
/// service configured and (for a patient) the ID number to compare with. Refusals store nothing.
async fn creation_rules(backend: Backend) {
    let k = kit_with(backend, |_| {}).await;
    let create = |identity: Value, extra: Value| {
        let mut body = task_body("button", &json!({ "identity": identity }));
        for (key, v) in extra.as_object().unwrap() {
            body["signer"][key] = v.clone();
        }
        body
    };
    let post = |body: Value| post_task(&k, body);
    // Without [identity] liveness_url: only SMS.
    let r = post(create(json!(["sms", "id_ocr"]), json!({}))).await;
    let e = assert_api_error(r, 400, "IDENTITY_NOT_CONFIGURED").await;
    assert!(e["message"].as_str().unwrap().contains("sms"), "{e}");
    for bad in [
        json!([]),
        json!(["id_ocr", "sms"]),
        json!(["sms", "sms"]),
        json!(["sms", "iris"]),
        json!(["sms", "face", "face"]),
    ] {
        let r = post(create(bad.clone(), json!({}))).await;
        let e = assert_api_error(r, 400, "INVALID_ARGUMENT").await;
        assert!(
            e["message"].as_str().unwrap().contains("identity"),
            "{bad}: {e}"
        );
    }
    assert_eq!(k.rows().await[0], 0, "nothing stored");
    k.create(&create(json!(["sms"]), json!({}))).await;

    // With a service configured (not even running: creation does not call it).
    let url = dead_url().await;
    let k = kit_with(backend, |c| c.identity.liveness_url = Some(url)).await;
    let post = |body: Value| post_task(&k, body);
    let (_, token) = k
        .create(&create(
            json!(["sms", "id_ocr", "face", "liveness"]),
            json!({}),
        ))
        .await;
    let r = k.page("GET", &token, "").send().await.unwrap();
    let view: Value = r.json().await.unwrap();
    assert_eq!(
        view["identity"],
        json!(["sms", "id_ocr", "face", "liveness"])
    );
    // A patient's card needs the number on record to compare with; a proxy's does not.
    let r = post(create(
        json!(["sms", "liveness"]),
        json!({ "id_number": null }),
    ))
    .await;
    let e = assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    assert!(
        e["message"].as_str().unwrap().contains("signer.id_number"),
        "{e}"
    );
    k.create(&create(
        json!(["sms", "id_ocr"]),
        json!({ "role": "proxy", "id_number": null }),
    ))
    .await;
    assert_eq!(k.rows().await[0], 2);
}
both_backends!(creation_rules);

/// The service down: submission refused until the checks pass; the identity calls answer 503
/// `IDENTITY_SERVICE_UNAVAILABLE` (audited), and nothing is recorded as passed. Forged
/// portrait tickets and calls the task does not ask for are refused before the service.
async fn service_down(backend: Backend) {
    let url = dead_url().await;
    let k = kit_with(backend, |c| c.identity.liveness_url = Some(url)).await;
    let (task_id, token) = k
        .create(&task_body(
            "button",
            &json!({ "identity": ["sms", "id_ocr", "face"] }),
        ))
        .await;
    // The identity calls need the page session like everything after the SMS code.
    let r = k
        .page("POST", &token, "/identity/id-card")
        .json(&json!({ "image": small_png() }))
        .send()
        .await
        .unwrap();
    assert_api_error(r, 401, "SESSION_REQUIRED").await;
    let session = k.verify(&token, PHONE).await;

    let r = k.submit(&token, &session, &button(&uuid())).await;
    let e = assert_api_error(r, 400, "IDENTITY_CHECK_REQUIRED").await;
    assert!(e["message_en"].as_str().unwrap().contains("id_card"), "{e}");
    assert!(e["message_en"].as_str().unwrap().contains("face"), "{e}");

    let r = id_card(&k, &token, &session, &small_png_bytes()).await;
    assert_api_error(r, 503, "IDENTITY_SERVICE_UNAVAILABLE").await;
    // A forged ticket is refused before the service is asked.
    let r = call(&k, &token, &session, "/identity/face", &json!({ "image": small_png(), "portrait_ticket": format!("{}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", uuid()) })).await;
    assert_api_error(r, 400, "IDENTITY_CHECK_REQUIRED").await;
    // Not asked for by this task.
    let r = challenge(&k, &token, &session).await;
    assert_api_error(r, 404, "NOT_FOUND").await;
    // Bad input is refused with our codes, never a 500.
    for (body, status, code) in [
        (json!({ "image": "***" }), 422, "IDENTITY_IMAGE_INVALID"),
        (json!({ "image": "" }), 422, "IDENTITY_IMAGE_INVALID"),
        (json!({ "picture": small_png() }), 400, "MALFORMED_JSON"),
    ] {
        let r = call(&k, &token, &session, "/identity/id-card", &body).await;
        assert_api_error(r, status, code).await;
    }
    // Past the route's limit: refused from the announced length (16 MiB for photos, 40 MiB
    // for liveness frames).
    for (rest, len) in [("/identity/id-card", 17), ("/identity/liveness", 41)] {
        let path = format!("/api/v1/h5/tasks/{token}{rest}");
        let (status, body) =
            crate::hostile_input::oversized_post(&k.s.base, &path, "x", len * 1024 * 1024).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (413, Some("PAYLOAD_TOO_LARGE")),
            "{body}"
        );
    }

    assert_eq!(checks(&k, "passed").await, 0);
    assert_eq!(checks(&k, "failed").await, 0);
    assert!(audited(&k, "denied").await >= 1, "the refusal is audited");
    let r = k.submit(&token, &session, &button(&uuid())).await;
    assert_api_error(r, 400, "IDENTITY_CHECK_REQUIRED").await;
    assert_eq!(k.view(&task_id).await["status"], "verified");

    // An SMS-only task signs without the service, and without the identity attribute.
    let (sms_task, token) = k.create(&task_body("button", &json!({}))).await;
    let session = k.verify(&token, PHONE).await;
    let r = k.submit(&token, &session, &button(&uuid())).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let pdf = k.signed_pdf(&sms_task).await;
    let text = String::from_utf8_lossy(&pdf).to_ascii_lowercase();
    assert!(text.contains(OID_7_3), "evidence SM3 attribute");
    assert!(
        !text.contains(OID_7_4),
        "no identity evidence attribute for SMS only"
    );
}
both_backends!(service_down);

/// A fake `liveness serve` whose ID card route answers what the test sets, recording the
/// bearer token it was called with.
#[derive(Clone, Default)]
struct FakeVision {
    answer: std::sync::Arc<std::sync::Mutex<(u16, String)>>,
    auth: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeVision {
    async fn start() -> (Self, String) {
        let me = Self::default();
        let (answer, auth) = (me.answer.clone(), me.auth.clone());
        let app = axum::Router::new().route(
            "/v1/idcard/front",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let (answer, auth) = (answer.clone(), auth.clone());
                async move {
                    auth.lock().unwrap().push(
                        headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned(),
                    );
                    let (status, body) = answer.lock().unwrap().clone();
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        [("content-type", "application/json")],
                        body,
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (me, format!("http://{addr}"))
    }

    fn set(&self, status: u16, body: &str) {
        *self.answer.lock().unwrap() = (status, body.to_owned());
    }
}

/// The service's answers map to our stable codes: its 5xx (model missing, busy, timeout,
/// internal), a wrong token and a malformed answer are 503 `IDENTITY_SERVICE_UNAVAILABLE`;
/// its 4xx input codes are 422 `IDENTITY_IMAGE_INVALID` with our own text. The configured
/// bearer token is sent; nothing is recorded for any of these.
async fn service_failures_map_to_our_codes(backend: Backend) {
    let (fake, url) = FakeVision::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("liveness.token");
    std::fs::write(&token_file, "vision-token-for-tests\n").unwrap();
    let k = kit_with(backend, |c| {
        c.identity.liveness_url = Some(url);
        c.identity.liveness_token_file = Some(token_file);
    })
    .await;
    let (_, token) = k
        .create(&task_body(
            "button",
            &json!({ "identity": ["sms", "id_ocr"] }),
        ))
        .await;
    let session = k.verify(&token, PHONE).await;
    for (status, body, ours, code) in [
        (
            503,
            r#"{"code":"model_missing","message":"缺少模型","message_en":"model missing"}"#,
            503,
            "IDENTITY_SERVICE_UNAVAILABLE",
        ),
        (
            503,
            r#"{"code":"busy","message":"忙","message_en":"busy"}"#,
            503,
            "IDENTITY_SERVICE_UNAVAILABLE",
        ),
        (
            500,
            r#"{"code":"internal","message":"内部错误","message_en":"internal"}"#,
            503,
            "IDENTITY_SERVICE_UNAVAILABLE",
        ),
        (
            401,
            r#"{"code":"unauthorized","message":"未授权","message_en":"unauthorized"}"#,
            503,
            "IDENTITY_SERVICE_UNAVAILABLE",
        ),
        (
            200,
            r#"{"surprise": true}"#,
            503,
            "IDENTITY_SERVICE_UNAVAILABLE",
        ),
        (
            502,
            "<html>bad gateway</html>",
            503,
            "IDENTITY_SERVICE_UNAVAILABLE",
        ),
        (
            422,
            r#"{"code":"no_card","message":"未找到身份证","message_en":"no card"}"#,
            422,
            "IDENTITY_IMAGE_INVALID",
        ),
        (
            400,
            r#"{"code":"not_an_image","message":"不是图片","message_en":"not an image"}"#,
            422,
            "IDENTITY_IMAGE_INVALID",
        ),
    ] {
        fake.set(status, body);
        let r = id_card(&k, &token, &session, &small_png_bytes()).await;
        let e = assert_api_error(r, ours, code).await;
        assert!(!e.to_string().contains("<html>"), "{e}");
    }
    let seen = fake.auth.lock().unwrap().clone();
    assert_eq!(seen.len(), 8);
    assert!(
        seen.iter().all(|a| a == "Bearer vision-token-for-tests"),
        "{seen:?}"
    );
    assert_eq!(checks(&k, "passed").await + checks(&k, "failed").await, 0);
}
both_backends!(service_failures_map_to_our_codes);

/// Staff activation under `activation_identity = "id_card"` with the service down: the
/// enrolment is refused with `IDENTITY_CHECK_REQUIRED`, the identity step with 503, a wrong
/// activation code with `ACTIVATION_INVALID`, and steps the policy does not ask for are 404.
async fn activation_policy_without_service(backend: Backend) {
    let url = dead_url().await;
    let k = kit_with(backend, |c| {
        c.identity.liveness_url = Some(url);
        c.cosign.activation_identity = cosign_server::config::ActivationIdentity::IdCard;
    })
    .await;
    let link = crate::cosign::add_staff(&k.s, &k.token, "S100", "核验医生").await;
    let (id, act) = code_of(&link);
    let e = yiqian_phone::enroll::enroll(&k.s.base, &id, &act, "手机", "246810")
        .await
        .unwrap_err();
    assert_eq!(
        crate::cosign::code(&e),
        cosign_proto::v1::ErrorCode::IdentityCheckRequired
    );
    let step = |name: &str, body: Value| {
        k.s.client
            .post(k.s.url(&format!("/api/v1/phone/enroll/identity/{name}")))
            .json(&body)
            .send()
    };
    let r = step(
        "id-card",
        json!({ "staff_id": id, "activation_code": act, "image": small_png() }),
    )
    .await
    .unwrap();
    assert_api_error(r, 503, "IDENTITY_SERVICE_UNAVAILABLE").await;
    let r = step(
        "id-card",
        json!({ "staff_id": id, "activation_code": "WRONGCODE234", "image": small_png() }),
    )
    .await
    .unwrap();
    assert_api_error(r, 400, "ACTIVATION_INVALID").await;
    for other in ["face", "liveness", "liveness-challenge", "iris"] {
        let r = step(other, json!({ "staff_id": id, "activation_code": act }))
            .await
            .unwrap();
        assert_api_error(r, 404, "NOT_FOUND").await;
    }
    assert_eq!(checks(&k, "passed").await, 0);
    // The activation code was not consumed by any of this.
    let r = step("id-card", json!({ "staff_id": id, "activation_code": act }))
        .await
        .unwrap();
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
}
both_backends!(activation_policy_without_service);

// ---------------------------------------------------------------------------------------
// with the real `liveness serve`

fn cache() -> PathBuf {
    PathBuf::from(std::env::var("YIQIAN_CACHE").unwrap_or_else(|_| "/var/cache/yiqian".into()))
}

pub(crate) fn models() -> PathBuf {
    cache().join("models")
}

/// The `liveness` binary of this workspace's build.
pub(crate) fn liveness_bin() -> PathBuf {
    if let Ok(p) = std::env::var("LIVENESS_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let bin = target.join("debug/liveness");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p liveness` first (or set LIVENESS_BIN)",
        bin.display()
    );
    bin
}

/// A running `liveness serve`, killed on drop.
pub(crate) struct Service {
    child: std::process::Child,
    pub(crate) url: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn start_service(token_file: Option<&Path>) -> Service {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let mut cmd = std::process::Command::new(liveness_bin());
    cmd.arg("serve")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--models")
        .arg(models())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(t) = token_file {
        cmd.arg("--token-file").arg(t);
    }
    let child = cmd.spawn().unwrap();
    let svc = Service {
        child,
        url: format!("http://{addr}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..240 {
        if let Ok(r) = client.get(format!("{}/v1/health", svc.url)).send().await
            && r.status() == 200
        {
            return svc;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("liveness serve did not answer /v1/health within 60 s");
}

/// The first string value under `key` anywhere in `v`.
fn find<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    match v {
        Value::Object(m) => {
            for k in keys {
                if let Some(s) = m.get(*k).and_then(Value::as_str) {
                    return Some(s);
                }
            }
            m.values().find_map(|x| find(x, keys))
        }
        Value::Array(a) => a.iter().find_map(|x| find(x, keys)),
        _ => None,
    }
}

/// A synthetic ID card photo (front, clean) of fictional person `seed`: (photo, name, number).
pub(crate) fn synth_card(dir: &Path, seed: u64) -> (Vec<u8>, String, String) {
    let (photo, v) = synth(dir, seed, "front");
    let name = find(&v, &["name"])
        .expect("a name in the synth JSON")
        .to_owned();
    let number = find(&v, &["id_number", "number"])
        .expect("an ID number in the synth JSON")
        .to_owned();
    (photo, name, number)
}

/// `liveness synth card --side SIDE --shot clean`: the photo and the JSON it printed.
pub(crate) fn synth(dir: &Path, seed: u64, side: &str) -> (Vec<u8>, Value) {
    let out = dir.join(format!("card-{seed}-{side}.png"));
    let o = std::process::Command::new(liveness_bin())
        .args(["synth", "card", "--seed", &seed.to_string()])
        .args(["--side", side, "--shot", "clean", "--json", "--out"])
        .arg(&out)
        .arg("--models")
        .arg(models())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "liveness synth card: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "synth --json output is not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    });
    (std::fs::read(&out).unwrap(), v)
}

/// A patient task for `(name, number)` asking for `identity`; the page session.
async fn task_for(k: &Kit, name: &str, number: &str, identity: Value) -> (String, String, String) {
    let mut body = task_body("button", &json!({ "identity": identity }));
    body["signer"]["name"] = json!(name);
    body["signer"]["id_number"] = json!(number);
    let (task_id, token) = k.create(&body).await;
    let session = k.verify(&token, PHONE).await;
    (task_id, token, session)
}

async fn id_card(k: &Kit, token: &str, session: &str, photo: &[u8]) -> reqwest::Response {
    call(
        k,
        token,
        session,
        "/identity/id-card",
        &json!({ "image": B64.encode(photo) }),
    )
    .await
}

/// The patient's own card passes and is recorded (with the service's image hash, without the
/// image); another person's card is refused and recorded as failed; the submission is refused
/// until the check passed, then signs; the token file's bearer token is used.
async fn id_card_end_to_end(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("liveness.token");
    std::fs::write(&token_file, "liveness-e2e-token\n").unwrap();
    let svc = start_service(Some(&token_file)).await;
    let url = svc.url.clone();
    let tf = token_file.clone();
    let k = kit_with(backend, |c| {
        c.identity.liveness_url = Some(url);
        c.identity.liveness_token_file = Some(tf);
    })
    .await;
    let (photo, name, number) = synth_card(dir.path(), 7);
    let (other, other_name, other_number) = synth_card(dir.path(), 8);
    assert!(other_name != name || other_number != number);
    let (task_id, token, session) = task_for(&k, &name, &number, json!(["sms", "id_ocr"])).await;

    // Before the check: refused.
    let r = k.submit(&token, &session, &button(&uuid())).await;
    assert_api_error(r, 400, "IDENTITY_CHECK_REQUIRED").await;
    // Someone else's card: refused and recorded as failed.
    let r = id_card(&k, &token, &session, &other).await;
    assert_api_error(r, 422, "IDENTITY_MISMATCH").await;
    assert_eq!(checks(&k, "failed").await, 1);
    assert_eq!(checks(&k, "passed").await, 0);
    let r = k.submit(&token, &session, &button(&uuid())).await;
    assert_api_error(r, 400, "IDENTITY_CHECK_REQUIRED").await;

    // The patient's own card.
    let r = id_card(&k, &token, &session, &photo).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["passed"], true);
    assert_eq!(done["method"], "id_card");
    assert!(done["portrait_ticket"].as_str().unwrap().len() > 100);
    let row = sqlx::query(
        "SELECT subject_id, outcome, image_sha256, portrait_sm3 FROM identity_checks WHERE check_id = $1",
    )
    .bind(done["check_id"].as_str().unwrap())
    .fetch_one(k.s.db.pool())
    .await
    .unwrap();
    assert_eq!(row.try_get::<String, _>("subject_id").unwrap(), task_id);
    assert_eq!(row.try_get::<String, _>("outcome").unwrap(), "passed");
    let hashes: Vec<String> =
        serde_json::from_str(&row.try_get::<String, _>("image_sha256").unwrap()).unwrap();
    assert_eq!(hashes.len(), 1);
    assert_eq!(hashes[0].len(), 64, "{hashes:?}");
    assert!(
        row.try_get::<Option<String>, _>("portrait_sm3")
            .unwrap()
            .is_some()
    );
    // No image kept (keep_portraits is off).
    assert_eq!(k.count("SELECT COUNT(*) FROM identity_portraits").await, 0);
    assert_eq!(audited(&k, "ok").await, 1);

    let r = k.submit(&token, &session, &button(&uuid())).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(k.view(&task_id).await["status"], "signed");
    // The signature's CMS carries the identity evidence's SM3 (1.2.156.112233.7.4) beside the
    // evidence SM3 (…7.3); the PDF's /Contents is hex.
    let pdf = k.signed_pdf(&task_id).await;
    let text = String::from_utf8_lossy(&pdf).to_ascii_lowercase();
    assert!(text.contains(OID_7_3), "evidence SM3 attribute");
    assert!(text.contains(OID_7_4), "identity evidence SM3 attribute");
    drop(svc);
}
both_backends!(id_card_end_to_end);

/// DER of the OIDs 1.2.156.112233.7.3 and …7.4, as hex in a PDF's /Contents.
const OID_7_3: &str = "06082a811c86ec690703";
pub(crate) const OID_7_4: &str = "06082a811c86ec690704";

/// The service stopping mid-flow: the next call is 503, nothing new is recorded as passed.
async fn service_stops(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let svc = start_service(None).await;
    let url = svc.url.clone();
    let k = kit_with(backend, |c| {
        c.identity.liveness_url = Some(url);
        c.identity.keep_portraits = true;
    })
    .await;
    let (photo, name, number) = synth_card(dir.path(), 11);
    let (_, token, session) = task_for(&k, &name, &number, json!(["sms", "id_ocr"])).await;
    let r = id_card(&k, &token, &session, &photo).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // keep_portraits: the portrait is kept, encrypted (not the PNG in clear).
    assert_eq!(k.count("SELECT COUNT(*) FROM identity_portraits").await, 1);
    drop(svc);
    let (_, token2, session2) = task_for(&k, &name, &number, json!(["sms", "id_ocr"])).await;
    let r = id_card(&k, &token2, &session2, &photo).await;
    assert_api_error(r, 503, "IDENTITY_SERVICE_UNAVAILABLE").await;
    assert_eq!(checks(&k, "passed").await, 1);
    let r = k.submit(&token2, &session2, &button(&uuid())).await;
    assert_api_error(r, 400, "IDENTITY_CHECK_REQUIRED").await;
}
both_backends!(service_stops);

/// Staff activation under `activation_identity = "id_card"`: refused before the check, the
/// staff member's own card passes, then the enrolment goes through; another person's card is
/// refused.
async fn activation_with_id_card(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let svc = start_service(None).await;
    let url = svc.url.clone();
    let k = kit_with(backend, |c| {
        c.identity.liveness_url = Some(url);
        c.cosign.activation_identity = cosign_server::config::ActivationIdentity::IdCard;
    })
    .await;
    let (photo, name, number) = synth_card(dir.path(), 21);
    let (other, _, _) = synth_card(dir.path(), 22);
    let r =
        k.s.client
            .post(k.s.url("/api/v1/admin/staff"))
            .bearer_auth(&k.token)
            .json(&json!({
                "staff_id": "S200", "name": name, "department": "心内科", "role": "医师",
                "phone": "13812345678", "id_number": number,
            }))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let link = crate::cosign::activation_link(&k.s, &k.token, "S200").await;
    let (id, act) = code_of(&link);
    let step = |photo: &[u8]| {
        k.s.client
            .post(k.s.url("/api/v1/phone/enroll/identity/id-card"))
            .json(&json!({ "staff_id": id, "activation_code": act, "image": B64.encode(photo) }))
            .send()
    };
    let r = step(&other).await.unwrap();
    assert_api_error(r, 422, "IDENTITY_MISMATCH").await;
    let e = yiqian_phone::enroll::enroll(&k.s.base, &id, &act, "手机", "246810")
        .await
        .unwrap_err();
    assert_eq!(
        crate::cosign::code(&e),
        cosign_proto::v1::ErrorCode::IdentityCheckRequired
    );
    let r = step(&photo).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    yiqian_phone::enroll::enroll(&k.s.base, &id, &act, "手机", "246810")
        .await
        .unwrap();
    drop(svc);
}
both_backends!(activation_with_id_card);

fn astronaut() -> Vec<u8> {
    let p = models().join("test-images/astronaut.png");
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (scripts/fetch-models.sh)", p.display()))
}

/// `…/identity/face` with a base64 image and a portrait ticket.
async fn face(k: &Kit, token: &str, session: &str, image: &str, ticket: &str) -> reqwest::Response {
    call(
        k,
        token,
        session,
        "/identity/face",
        &json!({ "image": image, "portrait_ticket": ticket }),
    )
    .await
}

async fn challenge(k: &Kit, token: &str, session: &str) -> reqwest::Response {
    call(
        k,
        token,
        session,
        "/identity/liveness/challenge",
        &json!({}),
    )
    .await
}

async fn call(k: &Kit, token: &str, session: &str, rest: &str, body: &Value) -> reqwest::Response {
    k.page("POST", token, rest)
        .header("x-yiqian-h5-session", session)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// ID card, then the face: the portrait's source photo (the synthetic cards print scikit-image's
/// astronaut) matches; a photo without a face is refused; a ticket of another task is refused.
/// Liveness: a still image repeated fails (`LIVENESS_FAILED`, recorded), the challenge cannot
/// be used twice, and the submission stays refused while liveness has not passed.
async fn face_and_liveness_end_to_end(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let svc = start_service(None).await;
    let url = svc.url.clone();
    let k = kit_with(backend, |c| c.identity.liveness_url = Some(url)).await;
    let (photo, name, number) = synth_card(dir.path(), 7);
    let (back, _) = synth(dir.path(), 7, "back");
    let all = json!(["sms", "id_ocr", "face", "liveness"]);
    let (_, token, session) = task_for(&k, &name, &number, all.clone()).await;
    let (_, token2, session2) = task_for(&k, &name, &number, all).await;

    let r = id_card(&k, &token, &session, &photo).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let ticket = r.json::<Value>().await.unwrap()["portrait_ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = id_card(&k, &token2, &session2, &photo).await;
    assert_eq!(r.status(), 200);
    let ticket2 = r.json::<Value>().await.unwrap()["portrait_ticket"]
        .as_str()
        .unwrap()
        .to_owned();

    // No face in the probe.
    let r = face(&k, &token, &session, &B64.encode(&back), &ticket).await;
    assert_api_error(r, 422, "IDENTITY_IMAGE_INVALID").await;
    // Another task's ticket.
    let r = face(&k, &token, &session, &B64.encode(astronaut()), &ticket2).await;
    assert_api_error(r, 400, "IDENTITY_CHECK_REQUIRED").await;
    // The portrait's source photo.
    let r = face(&k, &token, &session, &B64.encode(astronaut()), &ticket).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let face: Value = r.json().await.unwrap();
    assert_eq!(face["passed"], true);
    assert!(face["distance"].as_f64().unwrap() < 0.6, "{face}");

    let r = k.submit(&token, &session, &button(&uuid())).await;
    let e = assert_api_error(r, 400, "IDENTITY_CHECK_REQUIRED").await;
    assert!(
        e["message_en"].as_str().unwrap().contains("liveness"),
        "{e}"
    );
    assert!(!e["message_en"].as_str().unwrap().contains("face"), "{e}");

    let r = challenge(&k, &token, &session).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let ch: Value = r.json().await.unwrap();
    let actions = ch["actions"].as_array().unwrap();
    assert!((2..=4).contains(&actions.len()), "{ch}");
    let still = B64.encode(astronaut());
    let steps: Vec<Value> = actions
        .iter()
        .map(|a| json!({ "action": a, "frames": [still, still, still, still] }))
        .collect();
    let body = json!({ "challenge": ch["challenge"], "steps": steps, "portrait_ticket": ticket });
    let before = checks(&k, "failed").await;
    let r = call(&k, &token, &session, "/identity/liveness", &body).await;
    assert_api_error(r, 422, "LIVENESS_FAILED").await;
    assert_eq!(checks(&k, "failed").await, before + 1);
    let r = call(&k, &token, &session, "/identity/liveness", &body).await;
    assert_api_error(r, 400, "CHALLENGE_INVALID").await;
    let r = k.submit(&token, &session, &button(&uuid())).await;
    assert_api_error(r, 400, "IDENTITY_CHECK_REQUIRED").await;
    drop(svc);
}
both_backends!(face_and_liveness_end_to_end);
