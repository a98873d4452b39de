//! Bedside pads (issue 8, `docs/api/patient.md` §5) through the real interfaces: an admin
//! registers a pad; the pad enrols with a key made by `pad_channel` (the code its kiosk page
//! runs in wasm); its device certificate is checked with OpenSSL against our CAs; a terminal
//! creates a task for the pad; the pad lists, opens, reads and signs it entirely through
//! `POST /api/v1/pad/call` envelopes, and the answers are compared byte for byte with the direct
//! routes. Refusals: unknown serial, wrong key, revoked pad, replay, clock skew, paths outside
//! the allow-list, random bytes (never a 5xx), enrolment codes reused or expired. Channel-key
//! rotation.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::path::Path;

use base64::Engine;
use proptest::strategy::{Strategy, ValueTree};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::both_backends;
use crate::patient::{Kit, kit, task_body};
use crate::support::{Backend, assert_api_error};
use crate::tools::openssl;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A pad as its page is after enrolment: device key, certificate serial, channel key.
struct TestPad {
    pad: pad_channel::Pad,
    pad_id: String,
    serial: String,
    channel_public: Vec<u8>,
    secret: Zeroizing<Vec<u8>>,
    certificate_pem: String,
}

/// An answer from `/api/v1/pad/call`: refused in plain JSON, or the opened inner answer.
enum Answer {
    Refused(u16, Value),
    Inner {
        status: u16,
        content_type: String,
        body: Vec<u8>,
        /// The new channel key (hex) sent after a rotation.
        channel_key: Option<String>,
    },
}

impl Answer {
    fn inner(self) -> (u16, String, Vec<u8>) {
        match self {
            Self::Inner {
                status,
                content_type,
                body,
                ..
            } => (status, content_type, body),
            Self::Refused(status, body) => panic!("refused {status}: {body}"),
        }
    }

    /// The inner answer's JSON body, after checking its status.
    fn json(self, want: u16) -> Value {
        let (status, ct, body) = self.inner();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, want, "{v}");
        assert!(ct.starts_with("application/json"), "{ct}");
        v
    }

    /// The new channel key the answer announced (after a rotation), or `None`.
    fn channel_key(&self) -> Option<String> {
        match self {
            Self::Inner { channel_key, .. } => channel_key.clone(),
            Self::Refused(status, body) => panic!("refused {status}: {body}"),
        }
    }

    fn refused(self, status: u16, code: &str) -> Value {
        match self {
            Self::Refused(s, body) => {
                assert_eq!(s, status, "{body}");
                assert_eq!(body["code"], code, "{body}");
                assert!(!body["message"].as_str().unwrap_or("").is_empty());
                assert!(!body["message_en"].as_str().unwrap_or("").is_empty());
                body
            }
            Self::Inner { status, body, .. } => {
                panic!("accepted ({status}): {}", String::from_utf8_lossy(&body))
            }
        }
    }
}

fn inner(method: &str, path: &str, session: Option<&str>, body: Option<&Value>) -> Vec<u8> {
    let mut v = json!({ "method": method, "path": path });
    if let Some(s) = session {
        v["session"] = json!(s);
    }
    if let Some(b) = body {
        v["body_base64"] = json!(B64.encode(serde_json::to_vec(b).unwrap()));
    }
    serde_json::to_vec(&v).unwrap()
}

impl Kit {
    async fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> reqwest::Response {
        let url = self.s.url(path);
        let rb = match method {
            "GET" => self.s.client.get(url),
            _ => self.s.client.post(url),
        };
        let rb = rb.bearer_auth(&self.token);
        match body {
            Some(b) => rb.json(b),
            None => rb,
        }
        .send()
        .await
        .unwrap()
    }

    /// Registers a pad; returns (pad id, enrolment code).
    async fn new_pad(&self, name: &str) -> (String, String) {
        let r = self
            .admin(
                "POST",
                "/api/v1/pads",
                Some(&json!({"name": name, "ward": "5病区"})),
            )
            .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], "pending");
        let code = v["enrol_code"].as_str().unwrap().to_owned();
        assert_eq!(code.len(), 14, "{code}");
        assert_eq!(code.matches('-').count(), 2, "{code}");
        (v["pad_id"].as_str().unwrap().to_owned(), code)
    }

    async fn enrol_raw(&self, code: &str, secret: &[u8]) -> reqwest::Response {
        let public = hex::encode(pad_channel::public_of(secret).unwrap());
        let msg = cosign_proto::v1::pad::enrol_message(code, &public);
        let sig = hex::encode(pad_channel::sign(secret, &msg).unwrap());
        self.s
            .client
            .post(self.s.url("/api/v1/pad/enrol"))
            .json(&json!({"code": code, "public_key": public, "signature": sig}))
            .send()
            .await
            .unwrap()
    }

    async fn enrol(&self, code: &str) -> TestPad {
        let secret = pad_channel::generate_secret().unwrap();
        // Typed by staff: lower case and without dashes works too.
        let typed = code.replace('-', " ").to_lowercase();
        let r = self.enrol_raw(&typed, &secret).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let v: Value = r.json().await.unwrap();
        let serial = v["certificate_serial"].as_str().unwrap().to_owned();
        let channel_public = hex::decode(v["channel_public_key"].as_str().unwrap()).unwrap();
        assert_eq!(channel_public.len(), 65);
        TestPad {
            pad: pad_channel::Pad::new(&secret, &serial, &channel_public).unwrap(),
            pad_id: v["pad_id"].as_str().unwrap().to_owned(),
            serial,
            channel_public,
            secret,
            certificate_pem: v["certificate_pem"].as_str().unwrap().to_owned(),
        }
    }

    async fn post_envelope(&self, bytes: Vec<u8>) -> reqwest::Response {
        self.s
            .client
            .post(self.s.url("/api/v1/pad/call"))
            .header("content-type", "application/octet-stream")
            .header("user-agent", "Mozilla/5.0 (Linux; Android 12; kiosk)")
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    /// Sends sealed bytes; opens the answer with `key` / `nonce`.
    async fn send_sealed(
        &self,
        bytes: Vec<u8>,
        key: &pad_channel::SessionKey,
        nonce: &[u8; 16],
    ) -> Answer {
        let r = self.post_envelope(bytes).await;
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = r.bytes().await.unwrap().to_vec();
        if status != 200 {
            assert!(ct.starts_with("application/json"), "{status} {ct}");
            return Answer::Refused(status, serde_json::from_slice(&body).unwrap());
        }
        assert_eq!(ct, "application/octet-stream");
        let plain = pad_channel::Response::parse(&body)
            .unwrap()
            .open(key, nonce)
            .unwrap();
        let a: Value = serde_json::from_slice(&plain).unwrap();
        Answer::Inner {
            status: a["status"].as_u64().unwrap() as u16,
            content_type: a["content_type"].as_str().unwrap().to_owned(),
            body: B64.decode(a["body_base64"].as_str().unwrap()).unwrap(),
            channel_key: a["channel_public_key"].as_str().map(str::to_owned),
        }
    }

    async fn call_at(&self, pad: &pad_channel::Pad, time_ms: u64, inner: &[u8]) -> Answer {
        let (req, key) = pad.seal(time_ms, inner).unwrap();
        self.send_sealed(req.to_bytes(), &key, &req.nonce).await
    }

    async fn call(&self, pad: &TestPad, inner: &[u8]) -> Answer {
        self.call_at(&pad.pad, now_ms(), inner).await
    }

    /// `POST /pad/tasks/{id}/open` through the channel.
    async fn open_task(&self, pad: &TestPad, task_id: &str) -> Value {
        let path = format!("/pad/tasks/{task_id}/open");
        self.call(pad, &inner("POST", &path, None, None))
            .await
            .json(200)
    }

    async fn task_for(&self, pad_id: &str, identity: &str, mode: &str) -> String {
        let body = task_body(
            mode,
            &json!({"identity": [identity], "pad_id": pad_id, "require_read_to_end": false}),
        );
        self.create(&body).await.0
    }
}

/// The certificate, checked by OpenSSL: chains to the seal CA and the root, carries the pad
/// policy and clientAuth, names the pad, and certifies the pad's own key.
async fn check_certificate(k: &Kit, d: &Path, p: &TestPad) {
    for f in ["root", "seal"] {
        crate::pki::fetch(&k.s, &format!("/pki/{f}.pem"), d, &format!("{f}.pem")).await;
    }
    std::fs::write(d.join("pad.pem"), &p.certificate_pem).unwrap();
    crate::pki::verify_chain(d, "seal.pem", "pad.pem");
    let text = openssl(
        d,
        &[
            "x509",
            "-in",
            "pad.pem",
            "-noout",
            "-text",
            "-nameopt",
            "utf8,sep_comma_plus_space",
        ],
    );
    for want in [
        "1.2.156.112233.5.1",
        "TLS Web Client Authentication",
        &format!("CN=PAD-{}", p.pad_id),
        "OU=5病区",
    ] {
        assert!(text.contains(want), "missing {want:?}\n{text}");
    }
    let serial = openssl(d, &["x509", "-in", "pad.pem", "-noout", "-serial"]);
    let serial = serial.trim().trim_start_matches("serial=").to_lowercase();
    assert_eq!(
        serial.trim_start_matches('0'),
        p.serial.trim_start_matches('0')
    );
    let spki = openssl(d, &["x509", "-in", "pad.pem", "-pubkey", "-noout"]);
    let der = B64
        .decode(
            spki.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let public = pad_channel::public_of(&p.secret).unwrap();
    assert!(
        der.ends_with(&public),
        "the certificate certifies the pad's key"
    );
}

async fn independent_check(k: &Kit, d: &Path, p: &TestPad) {
    use sqlx::Row;
    let inner_bytes = inner("GET", "/pad/queue", None, None);
    let (req, key) = p.pad.seal(now_ms(), &inner_bytes).unwrap();
    let wire = req.to_bytes();
    let r = k.post_envelope(wire.clone()).await;
    assert_eq!(r.status(), 200);
    let answer_env = r.bytes().await.unwrap().to_vec();
    let answer = pad_channel::Response::parse(&answer_env)
        .unwrap()
        .open(&key, &req.nonce)
        .unwrap();
    let key_id: String = sqlx::query("SELECT key_id FROM pad_keys WHERE name = 'channel'")
        .fetch_one(k.s.db.pool())
        .await
        .unwrap()
        .try_get("key_id")
        .unwrap();
    let device = k.s.keys.device();
    let channel_hex = crypto_device::with_secret(&*device, &crypto_device::KeyId(key_id), |s| {
        Ok(hex::encode(s))
    })
    .await
    .unwrap();
    // The device's secret is the key whose public half the pad was given.
    assert_eq!(
        pad_channel::public_of(&hex::decode(&channel_hex).unwrap()).unwrap(),
        p.channel_public
    );
    let pad_pem = openssl(d, &["x509", "-in", "pad.pem", "-pubkey", "-noout"]);
    let dir = d.join("envelope");
    std::fs::create_dir_all(&dir).unwrap();
    for (file, bytes) in [
        ("channel.hex", channel_hex.as_bytes()),
        ("pad.pem", pad_pem.as_bytes()),
        ("request.bin", &wire[..]),
        ("response.bin", &answer_env[..]),
        ("inner.bin", &inner_bytes[..]),
        ("answer.bin", &answer[..]),
    ] {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/pad-channel/tests/py/check_envelope.py");
    let python = std::env::var("YIQIAN_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = crate::tools::run(
        d,
        &python,
        &[script.to_str().unwrap(), dir.to_str().unwrap()],
    );
    assert!(out.ok && out.text.trim() == "ok", "{}", out.text);
}

/// Register → enrol (certificate checked by OpenSSL) → a terminal creates a `["pad"]` task
/// for the pad → the pad lists its queue, opens the task (a session without SMS), reads the
/// task and page 1 (byte-identical to the direct routes) and submits a button-mode signature,
/// all through envelopes → the signed PDF verifies; an `["sms"]` pad task needs the SMS steps.
async fn pad_signs_through_the_channel(backend: Backend) {
    let k = kit(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let (pad_id, code) = k.new_pad("5病区-1号平板").await;
    let r = k.admin("GET", "/api/v1/pads", None).await;
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["pads"][0]["pad_id"], pad_id.as_str());
    assert_eq!(list["pads"][0]["status"], "pending");
    // Only the code's SM3 is stored.
    let plain = k
        .count(&format!(
            "SELECT COUNT(*) FROM pads WHERE code_hash LIKE '%{}%'",
            code.replace('-', "")
        ))
        .await;
    assert_eq!(plain, 0);

    let p = k.enrol(&code).await;
    assert_eq!(p.pad_id, pad_id);
    check_certificate(&k, dir.path(), &p).await;
    let r = k.admin("GET", "/api/v1/pads", None).await;
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["pads"][0]["status"], "active");
    assert_eq!(list["pads"][0]["certificate_serial"], p.serial.as_str());
    // The channel key lives in the crypto device; its public half is what the pad got.
    let keys = k
        .count("SELECT COUNT(*) FROM crypto_keys WHERE label = 'pad:channel'")
        .await;
    assert_eq!(keys, 1);

    // The terminal assigns two tasks to the pad, and one to nobody.
    let task_id = k.task_for(&pad_id, "pad", "button").await;
    let sms_task = k.task_for(&pad_id, "sms", "button").await;
    let (_, other_token) = k.create(&task_body("button", &json!({}))).await;

    let q = k
        .call(&p, &inner("GET", "/pad/queue", None, None))
        .await
        .json(200);
    assert_eq!(q["pad"]["pad_id"], pad_id.as_str());
    assert_eq!(q["pad"]["name"], "5病区-1号平板");
    let tasks = q["tasks"].as_array().unwrap();
    let mut ids: Vec<&str> = tasks
        .iter()
        .map(|t| t["task_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut want = [task_id.as_str(), sms_task.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);
    let first = tasks
        .iter()
        .find(|t| t["task_id"] == task_id.as_str())
        .unwrap();
    assert_eq!(first["identity"], json!(["pad"]));
    assert_eq!(first["signer_name_masked"], "张*");
    assert_eq!(first["status"], "pending");

    // Independently: Python gmssl unwraps the request's SM4 key with the server's channel key
    // (read from the crypto device), `cryptography` opens both bodies, OpenSSL verifies the
    // pad's signature with the key from its certificate (shared/pad-channel/tests/py).
    independent_check(&k, dir.path(), &p).await;

    // Open: the link token and, for ["pad"], a session at once.
    let opened = k.open_task(&p, &task_id).await;
    let token = opened["token"].as_str().unwrap().to_owned();
    let session = opened["session"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43);

    // The task view and page 1, byte for byte what the direct routes answer.
    let path = format!("/api/v1/h5/tasks/{token}");
    let (status, ct, via_pad) = k.call(&p, &inner("GET", &path, None, None)).await.inner();
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let direct = k.s.client.get(k.s.url(&path)).send().await.unwrap();
    assert_eq!(direct.bytes().await.unwrap().to_vec(), via_pad);
    let view: Value = serde_json::from_slice(&via_pad).unwrap();
    assert_eq!(view["verified"], true);
    assert_eq!(view["status"], "verified");
    let page1 = format!("{path}/pages/1.png");
    let (status, ct, png) = k
        .call(&p, &inner("GET", &page1, Some(&session), None))
        .await
        .inner();
    assert_eq!((status, ct.as_str()), (200, "image/png"));
    assert!(png.starts_with(b"\x89PNG"));
    let direct =
        k.s.client
            .get(k.s.url(&page1))
            .header("x-yiqian-h5-session", &session)
            .send()
            .await
            .unwrap();
    assert_eq!(direct.bytes().await.unwrap().to_vec(), png);
    // Without the session the route's own refusal comes back inside the envelope.
    let e = k
        .call(&p, &inner("GET", &page1, None, None))
        .await
        .json(401);
    assert_eq!(e["code"], "SESSION_REQUIRED");

    // Submit (button mode) through the channel.
    let submission = json!({"submission_id": uuid::Uuid::new_v4().to_string(), "consent": true});
    let done = k
        .call(
            &p,
            &inner(
                "POST",
                &format!("{path}/submit"),
                Some(&session),
                Some(&submission),
            ),
        )
        .await
        .json(200);
    assert_eq!(done["status"], "signed", "{done}");
    k.check_signed(dir.path(), &task_id, "张三").await;
    let by_pad = k
        .count(&format!(
            "SELECT COUNT(*) FROM patient_tasks WHERE task_id = '{task_id}' AND verified_by = 'pad'"
        ))
        .await;
    assert_eq!(by_pad, 1);
    // The signed task left the queue; the link is used up.
    let q = k
        .call(&p, &inner("GET", "/pad/queue", None, None))
        .await
        .json(200);
    assert_eq!(q["tasks"].as_array().unwrap().len(), 1);
    let e = k.call(&p, &inner("GET", &path, None, None)).await.json(409);
    assert_eq!(e["code"], "TASK_USED");

    // An ["sms"] pad task: open gives the token only; the SMS steps go through the channel.
    let opened = k.open_task(&p, &sms_task).await;
    assert!(opened["session"].is_null(), "{opened}");
    let sms_token = opened["token"].as_str().unwrap();
    let sent = k
        .call(
            &p,
            &inner(
                "POST",
                &format!("/api/v1/h5/tasks/{sms_token}/sms"),
                None,
                None,
            ),
        )
        .await
        .json(200);
    assert_eq!(sent["resend_after_s"], 60);
    assert_eq!(k.sms.count(), 1);

    // Another task's link (not this pad's) is not reachable through the channel.
    let e = k
        .call(
            &p,
            &inner(
                "GET",
                &format!("/api/v1/h5/tasks/{other_token}"),
                None,
                None,
            ),
        )
        .await
        .json(404);
    assert_eq!(e["code"], "NOT_FOUND");
    let e = k
        .call(
            &p,
            &inner("POST", "/pad/tasks/no-such-task/open", None, None),
        )
        .await
        .json(404);
    assert_eq!(e["code"], "NOT_FOUND");

    // 扫码一名一签: the SMS task's own link as a QR code; the staff-vouched task stays on the pad.
    let handoff = |id: &str| inner("POST", &format!("/pad/tasks/{id}/handoff"), None, None);
    let before = k.view(&sms_task).await;
    let code = k.call(&p, &handoff(&sms_task)).await.json(200);
    assert!(code["qr_svg"].as_str().unwrap().contains("<svg"), "{code}");
    assert_eq!(code["signer_name_masked"], "张*");
    assert_eq!(k.view(&sms_task).await["status"], before["status"]);
    let e = k.call(&p, &handoff(&task_id)).await.json(400);
    assert_eq!(e["code"], "INVALID_ARGUMENT");
    let e = k.call(&p, &handoff("no-such-task")).await.json(404);
    assert_eq!(e["code"], "NOT_FOUND");

    for action in [
        "pad.create",
        "pad.enrol",
        "pad.task.open",
        "pad.task.handoff",
        "pki.issue",
    ] {
        let n = k
            .count(&format!(
                "SELECT COUNT(*) FROM audit_log WHERE action = '{action}' AND outcome = 'ok'"
            ))
            .await;
        assert!(n >= 1, "{action} audited");
    }
    k.s.stop().await;
}
both_backends!(pad_signs_through_the_channel);

/// Every refusal, each checked to have stored nothing it should not.
async fn pad_refusals(backend: Backend) {
    let k = kit(backend).await;
    let (pad_id, code) = k.new_pad("5病区-2号平板").await;

    // Enrolment: a bad signature, a wrong code, then the right one, then the code again.
    let secret = pad_channel::generate_secret().unwrap();
    let public = hex::encode(pad_channel::public_of(&secret).unwrap());
    let other_sig = hex::encode(pad_channel::sign(&secret, b"something else").unwrap());
    let r =
        k.s.client
            .post(k.s.url("/api/v1/pad/enrol"))
            .json(&json!({"code": code, "public_key": public, "signature": other_sig}))
            .send()
            .await
            .unwrap();
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    let r = k.enrol_raw("ABCD-EFGH-JKMN", &secret).await;
    assert_api_error(r, 400, "PAD_CODE_INVALID").await;
    let r = k.enrol_raw("not a code", &secret).await;
    assert_api_error(r, 400, "PAD_CODE_INVALID").await;
    let p = k.enrol(&code).await;
    let r = k
        .enrol_raw(&code, &pad_channel::generate_secret().unwrap())
        .await;
    assert_api_error(r, 400, "PAD_CODE_INVALID").await;
    let certs = k
        .count("SELECT COUNT(*) FROM pki_certificates WHERE profile = 'device'")
        .await;
    assert_eq!(certs, 1, "one certificate per code");
    // A new code for an enrolled pad is refused.
    let r = k
        .admin("POST", &format!("/api/v1/pads/{pad_id}/code"), None)
        .await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;

    // An expired code; a fresh one for the same (pending) pad then works.
    let (late_id, late_code) = k.new_pad("5病区-3号平板").await;
    sqlx::query("UPDATE pads SET code_expires_at = 0 WHERE pad_id = $1")
        .bind(&late_id)
        .execute(k.s.db.pool())
        .await
        .unwrap();
    let r = k.enrol_raw(&late_code, &secret).await;
    assert_api_error(r, 400, "PAD_CODE_INVALID").await;
    let r = k
        .admin("POST", &format!("/api/v1/pads/{late_id}/code"), None)
        .await;
    assert_eq!(r.status(), 200);
    let renewed: Value = r.json().await.unwrap();
    let r = k.enrol_raw(&late_code, &secret).await;
    assert_api_error(r, 400, "PAD_CODE_INVALID").await;
    let late = k.enrol(renewed["enrol_code"].as_str().unwrap()).await;
    assert_eq!(late.pad_id, late_id);

    // Task creation: ["pad"] needs a pad; the pad must exist and be active.
    let r = k
        .term
        .call(
            "POST",
            "/api/v1/patient-tasks",
            Some(&task_body("button", &json!({"identity": ["pad"]}))),
        )
        .await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    let r = k
        .term
        .call(
            "POST",
            "/api/v1/patient-tasks",
            Some(&task_body("button", &json!({"pad_id": "no-such-pad"}))),
        )
        .await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;

    // Unknown serial; the right serial with another key.
    let stranger = pad_channel::Pad::new(&secret, "abcdef0123", &p.channel_public).unwrap();
    k.call_at(&stranger, now_ms(), &inner("GET", "/pad/queue", None, None))
        .await
        .refused(401, "PAD_UNKNOWN");
    let impostor = pad_channel::Pad::new(
        &pad_channel::generate_secret().unwrap(),
        &p.serial,
        &p.channel_public,
    )
    .unwrap();
    k.call_at(&impostor, now_ms(), &inner("GET", "/pad/queue", None, None))
        .await
        .refused(401, "PAD_UNKNOWN");

    // Clock skew either way; inside the window is fine.
    for skew in [-6 * 60_000_i64, 6 * 60_000] {
        let t = (now_ms() as i64 + skew) as u64;
        let body = k
            .call_at(&p.pad, t, &inner("GET", "/pad/queue", None, None))
            .await
            .refused(401, "PAD_CLOCK");
        let server = body["server_time_ms"].as_u64().unwrap();
        assert!(server.abs_diff(now_ms()) < 60_000);
    }
    k.call_at(
        &p.pad,
        now_ms() - 60_000,
        &inner("GET", "/pad/queue", None, None),
    )
    .await
    .json(200);
    let refused = k
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'pad.call' AND outcome = 'denied'")
        .await;
    assert_eq!(refused, 4, "each refusal audited");

    // Replay: the same submission envelope twice; the second is refused, nothing twice.
    let task_id = k.task_for(&p.pad_id, "pad", "button").await;
    let opened = k.open_task(&p, &task_id).await;
    let (token, session) = (
        opened["token"].as_str().unwrap().to_owned(),
        opened["session"].as_str().unwrap().to_owned(),
    );
    let submission = json!({"submission_id": uuid::Uuid::new_v4().to_string(), "consent": true});
    let (req, key) = p
        .pad
        .seal(
            now_ms(),
            &inner(
                "POST",
                &format!("/api/v1/h5/tasks/{token}/submit"),
                Some(&session),
                Some(&submission),
            ),
        )
        .unwrap();
    let wire = req.to_bytes();
    k.send_sealed(wire.clone(), &key, &req.nonce)
        .await
        .json(200);
    let after_first = k.rows().await;
    let versions = k.count("SELECT COUNT(*) FROM document_versions").await;
    k.send_sealed(wire, &key, &req.nonce)
        .await
        .refused(409, "PAD_REPLAY");
    assert_eq!(k.rows().await, after_first);
    assert_eq!(
        k.count("SELECT COUNT(*) FROM document_versions").await,
        versions
    );

    // Paths outside the allow-list are not dispatched; a malformed inner request is a 400.
    for (method, path) in [
        ("GET", "/api/v1/pads"),
        ("POST", "/api/v1/patient-tasks"),
        ("GET", &format!("/api/v1/patient-tasks/{task_id}") as &str),
        ("GET", "/api/v1/h5/tasks/../../pads"),
        ("DELETE", "/pad/queue"),
        ("GET", "/metrics"),
    ] {
        let e = k.call(&p, &inner(method, path, None, None)).await.json(403);
        assert_eq!(e["code"], "FORBIDDEN", "{method} {path}");
    }
    let e = k.call(&p, b"{not json").await.json(400);
    assert_eq!(e["code"], "MALFORMED_JSON");

    // Random bytes and damaged envelopes: always a 4xx JSON error, never a 5xx.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let junk = proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..600);
    let (valid, _) = p
        .pad
        .seal(now_ms(), &inner("GET", "/pad/queue", None, None))
        .unwrap();
    let valid = valid.to_bytes();
    for i in 0..48 {
        let mut bytes = junk.new_tree(&mut runner).unwrap().current();
        if i % 3 == 1 {
            // Behind a valid magic, so the parser goes further.
            let mut prefixed = b"YQP1\x01".to_vec();
            prefixed.extend_from_slice(&bytes);
            bytes = prefixed;
        } else if i % 3 == 2 {
            // One byte of a valid envelope changed.
            let mut damaged = valid.clone();
            let at = usize::from(bytes.first().copied().unwrap_or(0)) * 7 % damaged.len();
            damaged[at] ^= 1 | bytes.get(1).copied().unwrap_or(0x40);
            bytes = damaged;
        }
        let r = k.post_envelope(bytes).await;
        let status = r.status().as_u16();
        assert!((400..500).contains(&status), "case {i}: {status}");
        let body: Value = r.json().await.unwrap();
        assert!(body["code"].as_str().unwrap().starts_with("PAD_"), "{body}");
    }
    // Too large for any envelope.
    let (status, body) = crate::hostile_input::oversized_post(
        &k.s.base,
        "/api/v1/pad/call",
        "",
        pad_channel::MAX_CT + 8192,
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");

    // Revocation: the pad is refused, its certificate revoked, no task can be assigned.
    let r = k
        .admin(
            "POST",
            &format!("/api/v1/pads/{pad_id}/revoke"),
            Some(&json!({"reason": "keyCompromise"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "revoked");
    k.call(&p, &inner("GET", "/pad/queue", None, None))
        .await
        .refused(403, "PAD_REVOKED");
    let revoked = k
        .count(&format!(
            "SELECT COUNT(*) FROM pki_certificates WHERE serial = '{}' AND revoked_at IS NOT NULL \
             AND revocation_reason = 1",
            p.serial
        ))
        .await;
    assert_eq!(revoked, 1);
    let r = k
        .term
        .call(
            "POST",
            "/api/v1/patient-tasks",
            Some(&task_body("button", &json!({"pad_id": pad_id}))),
        )
        .await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    // Revoking again is harmless; the other pad still works.
    let r = k
        .admin(
            "POST",
            &format!("/api/v1/pads/{pad_id}/revoke"),
            Some(&json!({})),
        )
        .await;
    assert_eq!(r.status(), 200);
    k.call(&late, &inner("GET", "/pad/queue", None, None))
        .await
        .json(200);
    let n = k
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'pad.revoke' AND outcome = 'ok'")
        .await;
    assert_eq!(n, 2);
    let n = k
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'pad.enrol' AND outcome = 'denied'")
        .await;
    assert!(n >= 5, "{n}");
    k.s.stop().await;
}
both_backends!(pad_refusals);

/// Channel key rotation: the administrator's call makes a new key; envelopes sealed to the
/// previous one are still opened and each answer to one names the new key (inside the sealed
/// answer); envelopes to the new key carry no notice; new enrolments get the new key; after a
/// second rotation the first key is refused. Only issuing administrators may rotate; audited.
async fn pad_channel_key_rotation(backend: Backend) {
    let k = kit(backend).await;
    let (_, code) = k.new_pad("12床").await;
    let p = k.enrol(&code).await;
    let queue = inner("GET", "/pad/queue", None, None);
    let a = k.call(&p, &queue).await;
    assert_eq!(a.channel_key(), None);
    a.json(200);

    let r =
        k.s.client
            .post(k.s.url("/api/v1/pads/channel-key/rotate"))
            .send()
            .await
            .unwrap();
    assert_api_error(r, 401, "UNAUTHENTICATED").await;
    let rotate = || k.admin("POST", "/api/v1/pads/channel-key/rotate", None);
    let r = rotate().await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    let second = v["channel_public_key"].as_str().unwrap().to_owned();
    assert_ne!(hex::decode(&second).unwrap(), p.channel_public);
    assert!(
        v["previous_accepted_until"]
            .as_str()
            .unwrap()
            .ends_with('Z'),
        "{v}"
    );

    // The pad still sealing to the first key is served and told the second.
    let a = k.call(&p, &queue).await;
    assert_eq!(a.channel_key().as_deref(), Some(second.as_str()));
    a.json(200);
    let switched =
        pad_channel::Pad::new(&p.secret, &p.serial, &hex::decode(&second).unwrap()).unwrap();
    let a = k.call_at(&switched, now_ms(), &queue).await;
    assert_eq!(a.channel_key(), None);
    a.json(200);
    // A pad enrolled now gets the second key.
    let (_, code2) = k.new_pad("13床").await;
    let p2 = k.enrol(&code2).await;
    assert_eq!(hex::encode(&p2.channel_public), second);

    // A second rotation: the first key is forgotten; the second is now the previous one.
    let r = rotate().await;
    assert_eq!(r.status(), 200);
    let third = r.json::<Value>().await.unwrap()["channel_public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    k.call(&p, &queue)
        .await
        .refused(400, "PAD_ENVELOPE_INVALID");
    let a = k.call_at(&switched, now_ms(), &queue).await;
    assert_eq!(a.channel_key().as_deref(), Some(third.as_str()));
    a.json(200);
    assert_eq!(
        k.count("SELECT COUNT(*) FROM pad_keys").await,
        2,
        "the current key and the previous one"
    );
    assert_eq!(
        k.count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'pad.channel.rotate' AND outcome = 'ok'"
        )
        .await,
        2
    );
}
both_backends!(pad_channel_key_rotation);
