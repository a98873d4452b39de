//! Doctor co-signing through the real interfaces: administrators register a client system and
//! staff, a phone (the `yiqian_phone` library, as the app and `cosign-phone` use it) enrols and
//! co-signs, a terminal creates requests with HMAC-SM3-signed calls and watches them over the
//! WebSocket. Signatures are checked by verifiers we did not write (asn1crypto + OpenSSL).

use std::time::Duration;

use base64::Engine;
use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::auth::canonical_request;
use cosign_proto::v1::cosign::RoundItem;
use futures_util::StreamExt;
use serde_json::{Value, json};
use sm3::{Digest, Sm3};
use yiqian_phone::{PhoneError, PhoneState, enroll, sign};

use crate::both_backends;
use crate::support::{Backend, TestServer, assert_api_error};
use crate::tools::{cert_pem, json_field, openssl, py};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// The PIN [`enrolled`] sets.
pub const PIN: &str = "246810";
/// GB 11643's published example number (valid check digit).
const ID_NUMBER: &str = "11010519491231002X";

/// A client system calling with HMAC-SM3-signed requests.
pub struct Terminal {
    pub app_id: String,
    secret: Vec<u8>,
    base: String,
    http: reqwest::Client,
}

pub fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

impl Terminal {
    /// A terminal with the usual HIS permissions: create and read sign requests.
    pub async fn signing(s: &TestServer, token: &str) -> Self {
        Self::register(
            s,
            token,
            &["sign_request:create", "sign_request:read"],
            None,
        )
        .await
    }

    pub async fn register(
        s: &TestServer,
        token: &str,
        permissions: &[&str],
        rate: Option<u32>,
    ) -> Self {
        let r = s
            .client
            .post(s.url("/api/v1/admin/apps"))
            .bearer_auth(token)
            .json(&json!({"name": "HIS 门诊", "permissions": permissions, "rate_per_minute": rate}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        Self::from_created(s, &v)
    }

    /// The terminal of an app registered by the caller (`POST /api/v1/admin/apps` answer).
    pub fn from_created(s: &TestServer, v: &Value) -> Self {
        Self {
            app_id: v["app_id"].as_str().unwrap().to_owned(),
            secret: hex::decode(v["secret"].as_str().unwrap()).unwrap(),
            base: s.base.clone(),
            http: s.client.clone(),
        }
    }

    /// The headers of a signed call (so tests can replay or alter them).
    pub fn headers(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        ts: i64,
        nonce: &str,
    ) -> Vec<(&'static str, String)> {
        let canonical = canonical_request(method, path, ts, nonce, &hex::encode(Sm3::digest(body)));
        vec![
            ("x-yiqian-app-id", self.app_id.clone()),
            ("x-yiqian-timestamp", ts.to_string()),
            ("x-yiqian-nonce", nonce.to_owned()),
            (
                "x-yiqian-signature",
                cosign_server::signing::clients::hmac_hex(&self.secret, &canonical),
            ),
        ]
    }

    pub async fn send_with(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &[(&'static str, String)],
    ) -> reqwest::Response {
        let mut req = self
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", self.base),
            )
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        req.send().await.unwrap()
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> reqwest::Response {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let headers = self.headers(method, path, &bytes, now_ms(), &nonce);
        self.send_with(method, path, &bytes, &headers).await
    }

    pub async fn create(&self, body: &Value) -> Value {
        let r = self.call("POST", "/api/v1/sign-requests", Some(body)).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        r.json().await.unwrap()
    }

    pub async fn view(&self, id: &str) -> Value {
        let r = self
            .call("GET", &format!("/api/v1/sign-requests/{id}"), None)
            .await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

pub async fn add_staff(s: &TestServer, token: &str, staff_id: &str, name: &str) -> String {
    let r = s
        .client
        .post(s.url("/api/v1/admin/staff"))
        .bearer_auth(token)
        .json(&json!({
            "staff_id": staff_id, "name": name, "department": "心内科", "role": "医师",
            "phone": "13812345678", "id_number": ID_NUMBER, "licence_no": "110110000012345"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    activation_link(s, token, staff_id).await
}

pub async fn activation_link(s: &TestServer, token: &str, staff_id: &str) -> String {
    let r = s
        .client
        .post(s.url(&format!("/api/v1/admin/staff/{staff_id}/activation")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    v["qr_payload"].as_str().unwrap().to_owned()
}

pub fn code_of(link: &str) -> (String, String) {
    match link.parse().unwrap() {
        cosign_proto::v1::qr::QrLink::Activate { staff_id, code, .. } => (staff_id, code),
        other @ cosign_proto::v1::qr::QrLink::Sign { .. } => panic!("{other:?}"),
    }
}

pub async fn enrolled(s: &TestServer, token: &str, staff_id: &str, name: &str) -> PhoneState {
    let link = add_staff(s, token, staff_id, name).await;
    let (id, code) = code_of(&link);
    enroll::enroll(&s.base, &id, &code, "测试手机", PIN)
        .await
        .unwrap()
}

/// A server with a signing terminal and one enrolled phone (`staff_id`) and its client: the
/// set-up of most signing tests.
async fn one_signer(
    backend: Backend,
    staff_id: &str,
    name: &str,
) -> (TestServer, Terminal, PhoneState, yiqian_phone::Client) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let terminal = Terminal::signing(&s, &token).await;
    let phone = enrolled(&s, &token, staff_id, name).await;
    let client = sign::client(&phone).unwrap();
    (s, terminal, phone, client)
}

/// The next JSON text message on `ws` that satisfies `wanted`, within 10 s.
async fn next_event<S>(
    ws: &mut S,
    wanted: impl Fn(&Value) -> bool,
) -> Result<Value, tokio::time::error::Elapsed>
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let msg = ws.next().await.unwrap().unwrap();
            if let Ok(t) = msg.to_text()
                && !t.is_empty()
            {
                let v: Value = serde_json::from_str(t).unwrap();
                if wanted(&v) {
                    return v;
                }
            }
        }
    })
    .await
}

pub fn code(e: &PhoneError) -> ErrorCode {
    match e {
        PhoneError::Server(api) => api.code,
        other => panic!("expected a server refusal, got {other}"),
    }
}

async fn staff_view(s: &TestServer, token: &str, id: &str) -> Value {
    s.client
        .get(s.url(&format!("/api/v1/admin/staff/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Writes the CMS, the document and the signer's public key, and checks the signature with
/// asn1crypto + `openssl pkeyutl` (tests/py/check_cms.py).
pub fn check_independently(
    dir: &std::path::Path,
    stem: &str,
    cms_b64: &str,
    content: &[u8],
    cert_der: &[u8],
) {
    std::fs::write(
        dir.join(format!("{stem}.p7s")),
        B64.decode(cms_b64).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join(format!("{stem}.bin")), content).unwrap();
    std::fs::write(dir.join(format!("{stem}.crt")), cert_der).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            &format!("{stem}.crt"),
            "-pubkey",
            "-noout",
            "-out",
            &format!("{stem}.pub.pem"),
        ],
    );
    let out = py(
        dir,
        "check_cms.py",
        &[
            "--cms",
            &format!("{stem}.p7s"),
            "--pub",
            &format!("{stem}.pub.pem"),
            "--data",
            &format!("{stem}.bin"),
        ],
    );
    assert_eq!(json_field(&out, "ok"), true, "{out}");
    assert_eq!(json_field(&out, "signature_ok"), true, "{out}");
}

async fn scan_to_sign_end_to_end(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let terminal = Terminal::signing(&s, &token).await;
    let phone = enrolled(&s, &token, "D001", "张医生").await;
    let dir = tempfile::tempdir().unwrap();

    // The certificate chains to our root with the staff profile, checked by OpenSSL.
    let cert_der = B64.decode(&phone.certificate).unwrap();
    cert_pem(dir.path(), "doctor", &cert_der);
    for name in ["staff", "root"] {
        crate::autosign::get_pem(&s, dir.path(), name).await;
    }
    // Link by link with the SM2 ID (OpenSSL applies -vfyopt to one link at a time).
    crate::pki::verify_chain(dir.path(), "staff.pem", "doctor.pem");
    let text = openssl(
        dir.path(),
        &["x509", "-in", "doctor.pem", "-noout", "-text"],
    );
    assert!(
        text.contains("1.2.156.10260.4.1.1"),
        "resident ID extension: {text}"
    );

    // The terminal asks for a signature over a prescription it sends inline.
    let prescription =
        "门诊处方\n患者：李四\n阿莫西林胶囊 0.25g×24 粒，每次 2 粒，每日 3 次".as_bytes();
    let created = terminal
        .create(&json!({
            "signers": ["D001"], "title": "门诊处方", "patient_id": "P0001", "visit_id": "V0001",
            "doc_type": "处方", "department": "心内科",
            "documents": [{"name": "处方 20261127-001", "content": B64.encode(prescription), "media_type": "text/plain"}]
        }))
        .await;
    let id = created["request_id"].as_str().unwrap();
    assert!(created["qr_svg"].as_str().unwrap().starts_with("<?xml"));
    let png = terminal
        .call("GET", &format!("/api/v1/sign-requests/{id}/qr.png"), None)
        .await;
    assert_eq!(png.status(), 200);
    assert_eq!(&png.bytes().await.unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    // A terminal that draws the code itself asks for no SVG; the payload and qr.svg remain.
    let bare = terminal
        .create(&json!({
            "signers": ["D001"], "title": "门诊处方", "qr_image": false,
            "documents": [{"name": "处方 20261127-002", "digest_sm3": hex::encode(Sm3::digest(b"rx-2"))}]
        }))
        .await;
    assert!(bare.get("qr_svg").is_none(), "{bare}");
    assert!(
        bare["qr_payload"]
            .as_str()
            .unwrap()
            .starts_with("yiqian://sign?")
    );
    let bare_id = bare["request_id"].as_str().unwrap();
    let svg = terminal
        .call(
            "GET",
            &format!("/api/v1/sign-requests/{bare_id}/qr.svg"),
            None,
        )
        .await;
    assert_eq!(svg.status(), 200);
    let wrong = terminal
        .call(
            "POST",
            "/api/v1/sign-requests",
            Some(&json!({
                "signers": ["D001"], "title": "门诊处方", "qr_image": "no",
                "documents": [{"name": "处方", "digest_sm3": hex::encode(Sm3::digest(b"rx-3"))}]
            })),
        )
        .await;
    assert_api_error(wrong, 400, "MALFORMED_JSON").await;

    // The terminal watches; the first event is the pending state.
    let ws_url = format!(
        "{}/api/v1/sign-requests/{id}/events?token={}",
        s.base.replace("http://", "ws://"),
        created["watch_token"].as_str().unwrap()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    let first: Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(first["type"], "status");
    assert_eq!(first["request"]["status"], "pending");
    // A wrong watch token gets no socket.
    let bad = ws_url.replace("token=", "token=0");
    assert!(tokio_tungstenite::connect_async(&bad).await.is_err());

    // The doctor scans and signs.
    let outcome = sign::sign_link(&phone, created["qr_payload"].as_str().unwrap(), PIN)
        .await
        .unwrap();
    assert!(outcome.items.iter().all(|i| i.ok), "{outcome:?}");

    // The terminal hears it at once (the hub), not after the 2 s poll.
    let started = std::time::Instant::now();
    let done = next_event(&mut ws, |v| v["request"]["status"] == "completed")
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(done["request"]["signers"][0]["staff_id"], "D001");
    assert!(done["request"]["signers"][0]["signed_at"].is_i64());

    let view = terminal.view(id).await;
    assert_eq!(view["status"], "completed");
    let sig = &view["signatures"][0];
    assert_eq!(sig["certificate_serial"], phone.serial.as_str());
    check_independently(
        dir.path(),
        "rx",
        sig["cms"].as_str().unwrap(),
        prescription,
        &cert_der,
    );
    // CAdES-T: our verifier finds the TSA token over the signature value.
    let report = gm_pki::cms::verify(
        &B64.decode(sig["cms"].as_str().unwrap()).unwrap(),
        Some(prescription),
        &[],
    )
    .unwrap();
    assert!(report.ok(), "{report:?}");
    assert!(
        report.signers[0]
            .timestamp
            .as_ref()
            .is_some_and(|t| t.valid),
        "{report:?}"
    );

    // Signing again is refused: nothing is left to sign.
    let again = sign::sign_link(&phone, created["qr_payload"].as_str().unwrap(), PIN)
        .await
        .unwrap_err();
    assert_eq!(code(&again), ErrorCode::RequestClosed);

    // Every step is in the audit chain, which still verifies.
    let audit: Value = s
        .client
        .get(s.url("/api/v1/audit/verify"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["intact"], true, "{audit}");
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log")
        .fetch_all(s.db.pool())
        .await
        .unwrap();
    for a in [
        "cosign.app.create",
        "cosign.staff.create",
        "cosign.staff.activation",
        "cosign.enroll.begin",
        "cosign.enroll.finish",
        "cosign.request.create",
        "cosign.sign",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} missing from {actions:?}"
        );
    }
    s.stop().await;
}
both_backends!(scan_to_sign_end_to_end);

async fn wrong_pins_lock_the_key_until_an_administrator_unlocks(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let terminal = Terminal::register(&s, &token, &["sign_request:create"], None).await;
    let phone = enrolled(&s, &token, "N007", "王护士").await;
    let client = sign::client(&phone).unwrap();
    let created = terminal
        .create(&json!({"signers": ["N007"], "title": "护理记录", "documents": [{"name": "护理记录单", "digest_sm3": hex::encode(Sm3::digest(b"record"))}]}))
        .await;
    let id = created["request_id"].as_str().unwrap().to_owned();
    let items = || {
        vec![RoundItem {
            request_id: id.clone(),
            document: 0,
        }]
    };

    // One wrong PIN, then the right one: the good signature clears the count.
    let e = sign::sign_items(&client, &phone, "999999", items(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, PhoneError::WrongPin { attempts_left: 4 }),
        "{e}"
    );
    assert_eq!(staff_view(&s, &token, "N007").await["pin_failures"], 1);

    // Five wrong PINs lock the key; even the right PIN is then refused.
    for left in (0..4).rev() {
        let e = sign::sign_items(&client, &phone, "000000", items(), None)
            .await
            .unwrap_err();
        assert!(
            matches!(e, PhoneError::WrongPin { attempts_left } if attempts_left == left),
            "{e}"
        );
    }
    let e = sign::sign_items(&client, &phone, PIN, items(), None)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::KeyLocked);
    assert_eq!(staff_view(&s, &token, "N007").await["status"], "locked");

    // The administrator unlocks (audited); the right PIN signs and resets the count.
    let r = s
        .client
        .post(s.url("/api/v1/admin/staff/N007/unlock"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let outcome = sign::sign_items(&client, &phone, PIN, items(), None)
        .await
        .unwrap();
    assert!(outcome.items[0].ok);
    let v = staff_view(&s, &token, "N007").await;
    assert_eq!(v["pin_failures"], 0);
    assert_eq!(v["status"], "active");
    s.stop().await;
}
both_backends!(wrong_pins_lock_the_key_until_an_administrator_unlocks);

async fn order_is_enforced_and_only_signers_sign(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let terminal = Terminal::signing(&s, &token).await;
    let first = enrolled(&s, &token, "D100", "主治医师").await;
    let second = enrolled(&s, &token, "D200", "主任医师").await;
    let outsider = enrolled(&s, &token, "D300", "其他医师").await;
    let digest = hex::encode(Sm3::digest(b"discharge summary"));
    let created = terminal
        .create(
            &json!({"signers": ["D100", "D200"], "ordered": true, "title": "出院小结",
            "documents": [{"name": "出院小结", "digest_sm3": digest}]}),
        )
        .await;
    let id = created["request_id"].as_str().unwrap().to_owned();
    let items = || {
        vec![RoundItem {
            request_id: id.clone(),
            document: 0,
        }]
    };

    let e = sign::sign_items(&sign::client(&second).unwrap(), &second, PIN, items(), None)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::NotYourTurn);
    let e = sign::sign_items(
        &sign::client(&outsider).unwrap(),
        &outsider,
        PIN,
        items(),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, PhoneError::Server(_)), "{e}");
    // The task list says whose turn it is.
    let tasks = sign::tasks(&sign::client(&second).unwrap()).await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert!(!tasks[0].my_turn);

    // A round started in turn is still checked when it stores: start the second signer's
    // round only after the first signed, and both succeed in order.
    assert!(
        sign::sign_items(&sign::client(&first).unwrap(), &first, PIN, items(), None)
            .await
            .unwrap()
            .items[0]
            .ok
    );
    assert!(sign::tasks(&sign::client(&second).unwrap()).await.unwrap()[0].my_turn);
    assert!(
        sign::sign_items(&sign::client(&second).unwrap(), &second, PIN, items(), None)
            .await
            .unwrap()
            .items[0]
            .ok
    );
    let view = terminal.view(&id).await;
    assert_eq!(view["status"], "completed");
    assert_eq!(view["signatures"].as_array().unwrap().len(), 2);

    // Unordered: any order works.
    let created = terminal
        .create(&json!({"signers": ["D100", "D200"], "title": "会诊记录",
            "documents": [{"name": "会诊记录", "digest_sm3": digest}]}))
        .await;
    let id2 = created["request_id"].as_str().unwrap().to_owned();
    let items2 = || {
        vec![RoundItem {
            request_id: id2.clone(),
            document: 0,
        }]
    };
    assert!(
        sign::sign_items(
            &sign::client(&second).unwrap(),
            &second,
            PIN,
            items2(),
            None
        )
        .await
        .unwrap()
        .items[0]
            .ok
    );
    assert!(
        sign::sign_items(&sign::client(&first).unwrap(), &first, PIN, items2(), None)
            .await
            .unwrap()
            .items[0]
            .ok
    );
    assert_eq!(terminal.view(&id2).await["status"], "completed");
    s.stop().await;
}
both_backends!(order_is_enforced_and_only_signers_sign);

async fn batch_round_survives_a_second_instance(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let terminal = Terminal::signing(&s, &token).await;
    let nurse = enrolled(&s, &token, "N100", "李护士").await;
    let records: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("体温单 第{i}床 36.{}℃", i % 10).into_bytes())
        .collect();
    let docs: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"name": format!("体温单 {i}"), "digest_sm3": hex::encode(Sm3::digest(r))}))
        .collect();
    let created = terminal
        .create(&json!({"signers": ["N100"], "title": "体温单批量签名", "documents": docs}))
        .await;
    let id = created["request_id"].as_str().unwrap().to_owned();
    let items: Vec<RoundItem> = (0..200)
        .map(|i| RoundItem {
            request_id: id.clone(),
            document: i,
        })
        .collect();

    // A second instance on the same data directory and database (behind one load balancer):
    // the round starts on the first, is answered by the second, and finishes on the first.
    let (other, other_stop, other_handle) = {
        let (server, _) = cosign_server::serve::Server::bind(s.config())
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        (format!("http://{addr}"), tx, handle)
    };
    let here = sign::client(&nurse).unwrap();
    let there = sign::client_at(&nurse, &other).unwrap();
    let round = sign::begin_round(&here, &nurse, PIN, items, None)
        .await
        .unwrap();
    let outcome = round.complete_via(&there, &here).await.unwrap();
    assert_eq!(outcome.items.len(), 200);
    assert!(outcome.items.iter().all(|i| i.ok));
    let _ = other_stop.send(());
    other_handle.await.unwrap().unwrap();

    let view = terminal.view(&id).await;
    assert_eq!(view["status"], "completed");
    let sigs = view["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 200);
    for sig in sigs {
        let i = usize::try_from(sig["document"].as_u64().unwrap()).unwrap();
        let cms = B64.decode(sig["cms"].as_str().unwrap()).unwrap();
        let report = gm_pki::cms::verify(&cms, Some(&records[i]), &[]).unwrap();
        assert!(report.ok(), "document {i}: {report:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    check_independently(
        dir.path(),
        "b7",
        sigs[7]["cms"].as_str().unwrap(),
        &records[usize::try_from(sigs[7]["document"].as_u64().unwrap()).unwrap()],
        &B64.decode(&nurse.certificate).unwrap(),
    );
    s.stop().await;
}
both_backends!(batch_round_survives_a_second_instance);

/// A round over documents of several requests, some already partly signed: each document is
/// judged on its own (a request's state is read once per round, so this pins down that the
/// per-request reading still refuses per document), and one request closing between the
/// commitments and the result refuses only its items.
async fn batch_round_judges_each_document(backend: Backend) {
    let (s, terminal, nurse, client) = one_signer(backend, "N200", "王护士").await;
    let mut records = std::collections::HashMap::new();
    let mut create = async |name: &str, n: u32| {
        let docs: Vec<Value> = (0..n)
            .map(|i| {
                let record = format!("{name} 第{i}页").into_bytes();
                let doc = json!({"name": format!("{name} {i}"), "digest_sm3": hex::encode(Sm3::digest(&record))});
                records.insert((name.to_owned(), i), record);
                doc
            })
            .collect();
        let created = terminal
            .create(&json!({"signers": ["N200"], "title": name, "documents": docs}))
            .await;
        created["request_id"].as_str().unwrap().to_owned()
    };
    let a = create("护理记录", 3).await;
    let b = create("医嘱执行单", 1).await;
    let c = create("体温单", 2).await;
    let item = |request_id: &str, document: u32| RoundItem {
        request_id: request_id.to_owned(),
        document,
    };
    let stored = async || -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM signatures")
            .fetch_one(s.db.pool())
            .await
            .unwrap()
    };

    // One page of three: the nurse is not done, the request stays pending.
    let first = sign::sign_items(&client, &nurse, PIN, vec![item(&a, 0)], None)
        .await
        .unwrap();
    assert!(first.items[0].ok, "{first:?}");
    let view = terminal.view(&a).await;
    assert_eq!(view["status"], "pending");
    assert!(view["signers"][0]["signed_at"].is_null());

    // A round naming a page already signed is refused whole, before any nonce is spent.
    let e = sign::begin_round(&client, &nurse, PIN, vec![item(&a, 1), item(&a, 0)], None)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::RequestClosed);
    let e = sign::begin_round(&client, &nurse, PIN, vec![item(&a, 3)], None)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::NotFound);
    assert_eq!(stored().await, 1);

    // The rest of A, all of B and C in one round; B is cancelled before the result.
    let items = vec![
        item(&a, 1),
        item(&b, 0),
        item(&c, 0),
        item(&a, 2),
        item(&c, 1),
    ];
    let round = sign::begin_round(&client, &nurse, PIN, items, None)
        .await
        .unwrap();
    let r = terminal
        .call("POST", &format!("/api/v1/sign-requests/{b}/cancel"), None)
        .await;
    assert_eq!(r.status(), 200);
    let outcome = round.complete(&client).await.unwrap();
    let judged: Vec<(String, u32, bool, Option<ErrorCode>)> = outcome
        .items
        .iter()
        .map(|i| (i.request_id.clone(), i.document, i.ok, i.code))
        .collect();
    assert_eq!(
        judged,
        vec![
            (a.clone(), 1, true, None),
            (b.clone(), 0, false, Some(ErrorCode::RequestClosed)),
            (c.clone(), 0, true, None),
            (a.clone(), 2, true, None),
            (c.clone(), 1, true, None),
        ]
    );
    assert_eq!(stored().await, 5);
    assert_eq!(terminal.view(&a).await["status"], "completed");
    assert_eq!(terminal.view(&b).await["status"], "cancelled");
    assert_eq!(terminal.view(&c).await["status"], "completed");

    // Every stored signature verifies over its own page and carries its own time stamp.
    let mut serials = std::collections::HashSet::new();
    for (id, name) in [(&a, "护理记录"), (&c, "体温单")] {
        for sig in terminal.view(id).await["signatures"].as_array().unwrap() {
            let i = u32::try_from(sig["document"].as_u64().unwrap()).unwrap();
            let cms = B64.decode(sig["cms"].as_str().unwrap()).unwrap();
            let record = &records[&(name.to_owned(), i)];
            let report = gm_pki::cms::verify(&cms, Some(record), &[]).unwrap();
            assert!(report.ok(), "{name} {i}: {report:?}");
            let stamp = report.signers[0].timestamp.as_ref().expect("CAdES-T");
            assert!(stamp.valid, "{name} {i}: {stamp:?}");
            assert!(serials.insert(stamp.token.as_ref().unwrap().serial_hex.clone()));
        }
    }
    assert_eq!(serials.len(), 5);
    s.stop().await;
}
both_backends!(batch_round_judges_each_document);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_calls_refuse_forgery_replay_skew_and_missing_rights() {
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let reader = Terminal::register(&s, &token, &["sign_request:read"], Some(4)).await;
    let writer = Terminal::signing(&s, &token).await;
    add_staff(&s, &token, "D001", "张医生").await;
    let body = serde_json::to_vec(&json!({"signers": ["D001"], "title": "t", "documents": [{"name": "n", "digest_sm3": "a".repeat(64)}]})).unwrap();
    let path = "/api/v1/sign-requests";

    // An independent HMAC-SM3 (Python gmssl's SM3, HMAC by hand as RFC 2104 says) is accepted:
    // what a HIS vendor writes from docs/api/signing.md works.
    let dir = tempfile::tempdir().unwrap();
    let ts = now_ms();
    let nonce = "py-nonce-0123456789";
    let canonical = canonical_request("POST", path, ts, nonce, &hex::encode(Sm3::digest(&body)));
    std::fs::write(dir.path().join("canonical.txt"), &canonical).unwrap();
    let mac = py(
        dir.path(),
        "hmac_sm3.py",
        &[&hex::encode(&writer.secret), "canonical.txt"],
    );
    let mut headers = writer.headers("POST", path, &body, ts, nonce);
    headers[3].1 = mac.trim().to_owned();
    let r = writer.send_with("POST", path, &body, &headers).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let id = {
        let v: Value = writer
            .call("POST", path, Some(&serde_json::from_slice(&body).unwrap()))
            .await
            .json()
            .await
            .unwrap();
        v["request_id"].as_str().unwrap().to_owned()
    };

    // The same headers again: replay.
    assert_api_error(
        writer.send_with("POST", path, &body, &headers).await,
        401,
        "REPLAYED",
    )
    .await;
    // A changed body under the old signature.
    let other = writer.headers("POST", path, &body, now_ms(), "fresh-nonce-000000001");
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert_api_error(
        writer.send_with("POST", path, &tampered, &other).await,
        401,
        "BAD_SIGNATURE",
    )
    .await;
    // Another path under the signature of this one.
    let h = writer.headers("GET", path, b"", now_ms(), "fresh-nonce-000000002");
    assert_api_error(
        writer
            .send_with("GET", &format!("/api/v1/sign-requests/{id}"), b"", &h)
            .await,
        401,
        "BAD_SIGNATURE",
    )
    .await;
    // Ten minutes off.
    let h = writer.headers(
        "POST",
        path,
        &body,
        now_ms() - 600_000,
        "fresh-nonce-000000003",
    );
    assert_api_error(
        writer.send_with("POST", path, &body, &h).await,
        401,
        "BAD_SIGNATURE",
    )
    .await;
    // A short nonce, a missing header, an unknown app.
    let h = writer.headers("POST", path, &body, now_ms(), "short");
    assert_api_error(
        writer.send_with("POST", path, &body, &h).await,
        401,
        "BAD_SIGNATURE",
    )
    .await;
    let h = writer.headers("POST", path, &body, now_ms(), "fresh-nonce-000000004");
    assert_api_error(
        writer.send_with("POST", path, &body, &h[..3]).await,
        401,
        "BAD_SIGNATURE",
    )
    .await;
    let mut h = writer.headers("POST", path, &body, now_ms(), "fresh-nonce-000000005");
    h[0].1 = "app_0000000000000000".into();
    assert_api_error(
        writer.send_with("POST", path, &body, &h).await,
        401,
        "BAD_SIGNATURE",
    )
    .await;

    // Rights: the reader may not create, and sees another app's request as absent.
    assert_api_error(
        reader
            .call("POST", path, Some(&serde_json::from_slice(&body).unwrap()))
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_api_error(
        reader
            .call("GET", &format!("/api/v1/sign-requests/{id}"), None)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    // Its limit is 4 calls a minute: the two above, two more, then 429.
    for _ in 0..2 {
        reader
            .call("GET", "/api/v1/sign-requests/req_x", None)
            .await;
    }
    assert_api_error(
        reader
            .call("GET", "/api/v1/sign-requests/req_x", None)
            .await,
        429,
        "RATE_LIMITED",
    )
    .await;

    // Bad requests from a good app: clear 400s, nothing stored.
    for bad in [
        json!({"signers": [], "title": "t", "documents": [{"name": "n", "digest_sm3": "a".repeat(64)}]}),
        json!({"signers": ["D001"], "title": "t", "documents": []}),
        json!({"signers": ["D001", "D001"], "title": "t", "documents": [{"name": "n", "digest_sm3": "a".repeat(64)}]}),
        json!({"signers": ["D001"], "title": "t", "documents": [{"name": "n", "digest_sm3": "xyz"}]}),
        json!({"signers": ["D001"], "title": "t", "documents": [{"name": "n", "content": "!!"}]}),
        json!({"signers": ["D001"], "title": "t", "documents": [{"name": "n"}]}),
        json!({"signers": ["D001"], "title": "", "documents": [{"name": "n", "digest_sm3": "a".repeat(64)}]}),
        json!({"signers": ["D001"], "title": "t", "expires_in": 5, "documents": [{"name": "n", "digest_sm3": "a".repeat(64)}]}),
        json!({"signers": ["D001"], "title": "t", "documents": [{"name": "n", "content": "AA==", "media_type": format!("application/{}", "x".repeat(244))}]}),
        json!({"signers": ["D001"], "title": "t", "documents": [{"name": "n", "content": "AA==", "media_type": "text/plain\n"}]}),
    ] {
        assert_api_error(
            writer.call("POST", path, Some(&bad)).await,
            400,
            "INVALID_ARGUMENT",
        )
        .await;
    }
    assert_api_error(
        writer.call("POST", path, Some(&json!({"signers": ["NOPE"], "title": "t", "documents": [{"name": "n", "digest_sm3": "a".repeat(64)}]}))).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sign_requests")
        .fetch_one(s.db.pool())
        .await
        .unwrap();
    assert_eq!(n, 2);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_codes_are_single_use_and_counted() {
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let link = add_staff(&s, &token, "D001", "张医生").await;
    let (id, first_code) = code_of(&link);
    // Wrong codes are counted; the fifth voids the code even for the right one.
    for _ in 0..5 {
        let e = enroll::enroll(&s.base, &id, "WRONGCODE234", "p", PIN)
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::ActivationInvalid);
    }
    let e = enroll::enroll(&s.base, &id, &first_code, "p", PIN)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::ActivationInvalid);
    // A new code works once (case and dashes do not matter); the second use fails.
    let link = activation_link(&s, &token, "D001").await;
    let (_, code2) = code_of(&link);
    let first = enroll::enroll(&s.base, &id, &code2.to_lowercase(), "p1", PIN)
        .await
        .unwrap();
    let e = enroll::enroll(&s.base, &id, &code2, "p2", PIN)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::ActivationInvalid);
    // A phone that started enrolment but did not finish it sees nothing.
    let link = activation_link(&s, &token, "D001").await;
    let (_, pending_code) = code_of(&link);
    let (key, _) = yiqian_phone::client::DeviceKey::generate().unwrap();
    let begun: cosign_proto::v1::cosign::EnrollBegun = yiqian_phone::Client::new(&s.base)
        .post(
            "/api/v1/phone/enroll",
            &cosign_proto::v1::cosign::EnrollBegin {
                staff_id: id.clone(),
                activation_code: pending_code,
                device_name: "半途".into(),
                device_public_key: key.public_hex(),
                sms_code: None,
            },
        )
        .await
        .unwrap();
    let half = yiqian_phone::Client::new(&s.base).with_device(&begun.device_id, key);
    let e = sign::tasks(&half).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::Forbidden);
    // A short PIN never reaches the server.
    assert!(matches!(
        enroll::enroll(&s.base, &id, &code2, "p", "12").await,
        Err(PhoneError::State(_))
    ));
    // Re-enrolling on a new phone revokes the old phone and its certificate.
    let link = activation_link(&s, &token, "D001").await;
    let (_, code3) = code_of(&link);
    let second = enroll::enroll(&s.base, &id, &code3, "p3", PIN)
        .await
        .unwrap();
    assert_ne!(first.serial, second.serial);
    let view = staff_view(&s, &token, "D001").await;
    assert_eq!(view["device_id"], second.device_id.as_str());
    let e = sign::tasks(&sign::client(&first).unwrap())
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::BadSignature);
    let revoked: Option<i64> =
        sqlx::query_scalar("SELECT revoked_at FROM pki_certificates WHERE serial = $1")
            .bind(&first.serial)
            .fetch_one(s.db.pool())
            .await
            .unwrap();
    assert!(revoked.is_some());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_csv_import_reports_each_bad_row() {
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let csv = "\u{feff}staff_id,name,department,role,phone,id_number\n\
               D001,张医生,心内科,医师,13812345678,11010519491231002X\n\
               D002,李医生,外科,医师,13812345679,\n\
               D003,王医生,外科,医师,12345,\n\
               D004,赵医生,外科,医师,13812345670,110105194912310021\n\
               D001,重复,外科,医师,13812345671,\n\
               D005,缺列\n";
    let r = s
        .client
        .post(s.url("/api/v1/admin/staff/import"))
        .bearer_auth(&token)
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["created"], 2, "{report}");
    let errors: Vec<(u64, &str)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        [
            (4, "INVALID_ARGUMENT"),
            (5, "INVALID_RESIDENT_ID"),
            (6, "ALREADY_EXISTS"),
            (7, "INVALID_ARGUMENT")
        ],
        "{report}"
    );
    let r = s
        .client
        .post(s.url("/api/v1/admin/staff/import"))
        .bearer_auth(&token)
        .body("name,phone\n")
        .send()
        .await
        .unwrap();
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    s.stop().await;
}

/// The phone loses replies and resends; the server restarts between protocol messages; a
/// tampered or out-of-step message is refused without harm. Every path ends with exactly one
/// stored signature.
async fn lost_replies_restarts_and_bad_messages_end_in_one_signature(backend: Backend) {
    let (s, terminal, phone, client) = one_signer(backend, "D001", "张医生").await;
    let created = terminal
        .create(&json!({"signers": ["D001"], "title": "检验报告",
            "documents": [{"name": "血常规", "digest_sm3": hex::encode(Sm3::digest(b"CBC"))}]}))
        .await;
    let id = created["request_id"].as_str().unwrap().to_owned();
    let items = vec![RoundItem {
        request_id: id.clone(),
        document: 0,
    }];

    let round = sign::begin_round(&client, &phone, PIN, items.clone(), None)
        .await
        .unwrap();
    let round_id = round.id().to_owned();
    // A result before the commitments is out of step.
    let early = cosign_proto::v1::cosign::RoundResult {
        result: sm2_cosign::sign::SignResult {
            version: 1,
            session: sm2_cosign::SessionId::random_os().unwrap(),
            signatures: vec![],
        },
    };
    let e = sign::send_result(&client, &round_id, &early)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::ProtocolViolation);
    // The commitments twice (the first reply was lost): the same answer both times.
    let p1 = round.send_commit(&client).await.unwrap();
    let p2 = round.send_commit(&client).await.unwrap();
    assert_eq!(p1, p2);
    // Different commitments for an answered round are refused (no second set of nonces).
    let other = sign::begin_round(&client, &phone, PIN, items.clone(), None)
        .await
        .unwrap();
    let stray = other.send_commit(&client).await.unwrap();
    let wrong = cosign_proto::v1::cosign::RoundCommit {
        commit: sm2_cosign::sign::SignCommit {
            version: 1,
            session: p1.session,
            items: vec![],
        },
    };
    let e = client
        .post::<_, sm2_cosign::sign::SignPartial>(
            &format!("/api/v1/phone/rounds/{round_id}/commit"),
            &wrong,
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::ProtocolViolation);
    let (_, mut result) = round.finish(&p1).unwrap();

    // The server restarts between the commitments and the result.
    let config = s.config();
    let (restarted, addr) = {
        let (server, _) = cosign_server::serve::Server::bind(config.clone())
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        ((tx, handle), format!("http://{addr}"))
    };
    let there = sign::client_at(&phone, &addr).unwrap();

    // A tampered signature is refused and changes nothing; the genuine one then stores.
    let good = result.clone();
    result.result.signatures[0].0[40] ^= 1;
    let e = sign::send_result(&there, &round_id, &result)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::ProtocolViolation);
    assert_eq!(terminal.view(&id).await["status"], "pending");
    let o1 = sign::send_result(&there, &round_id, &good).await.unwrap();
    assert!(o1.items[0].ok);
    // Sent again (lost reply): the same outcome, nothing stored twice.
    let o2 = sign::send_result(&client, &round_id, &good).await.unwrap();
    assert_eq!(o1, o2);
    // A different result for the finished round is refused.
    let e = sign::send_result(&client, &round_id, &result)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::ProtocolViolation);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signatures")
        .fetch_one(s.db.pool())
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(terminal.view(&id).await["status"], "completed");
    // The other round, answered but never finished, cannot store a second signature.
    let (other_id, other_result) = other.finish(&stray).unwrap();
    let late = sign::send_result(&client, &other_id, &other_result)
        .await
        .unwrap();
    assert!(!late.items[0].ok);
    assert_eq!(late.items[0].code, Some(ErrorCode::RequestClosed));
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signatures")
        .fetch_one(s.db.pool())
        .await
        .unwrap();
    assert_eq!(n, 1);
    // The terminal cancels a pending request: watchers see the final state, phones cannot
    // sign it, and a second cancel or a cancel of a completed request is refused.
    let created = terminal
        .create(&json!({"signers": ["D001"], "title": "撤销",
            "documents": [{"name": "y", "digest_sm3": hex::encode(Sm3::digest(b"y"))}]}))
        .await;
    let cid = created["request_id"].as_str().unwrap().to_owned();
    let url = format!(
        "{}/api/v1/sign-requests/{cid}/events?token={}",
        s.base.replace("http://", "ws://"),
        created["watch_token"].as_str().unwrap()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.next().await.unwrap().unwrap();
    let r = terminal
        .call("POST", &format!("/api/v1/sign-requests/{cid}/cancel"), None)
        .await;
    assert_eq!(r.status(), 200);
    let last: Value = tokio::time::timeout(Duration::from_secs(10), async {
        let msg = ws.next().await.unwrap().unwrap();
        serde_json::from_str(msg.to_text().unwrap()).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(last["request"]["status"], "cancelled");
    let e = sign::sign_items(
        &client,
        &phone,
        PIN,
        vec![RoundItem {
            request_id: cid.clone(),
            document: 0,
        }],
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), ErrorCode::RequestClosed);
    let again = terminal
        .call("POST", &format!("/api/v1/sign-requests/{cid}/cancel"), None)
        .await;
    assert_api_error(again, 409, "REQUEST_CLOSED").await;
    let done = terminal
        .call("POST", &format!("/api/v1/sign-requests/{id}/cancel"), None)
        .await;
    assert_api_error(done, 409, "REQUEST_CLOSED").await;
    let (stop, handle) = restarted;
    let _ = stop.send(());
    handle.await.unwrap().unwrap();

    // An expired request refuses to start a round.
    let created = terminal
        .create(
            &json!({"signers": ["D001"], "title": "过期", "expires_in": 60,
            "documents": [{"name": "x", "digest_sm3": hex::encode(Sm3::digest(b"x"))}]}),
        )
        .await;
    let old = created["request_id"].as_str().unwrap().to_owned();
    sqlx::query("UPDATE sign_requests SET expires_at = 1 WHERE request_id = $1")
        .bind(&old)
        .execute(s.db.pool())
        .await
        .unwrap();
    let e = sign::sign_items(
        &client,
        &phone,
        PIN,
        vec![RoundItem {
            request_id: old.clone(),
            document: 0,
        }],
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), ErrorCode::RequestExpired);
    assert_eq!(terminal.view(&old).await["status"], "expired");
    s.stop().await;
}
both_backends!(lost_replies_restarts_and_bad_messages_end_in_one_signature);

/// Hub re-reads only once a minute: within a test, only an announcement delivers a change.
pub fn slow_poll(c: &mut cosign_server::config::Config) {
    c.hub_poll_interval = Duration::from_secs(60);
    c.hub_fallback_poll = Duration::from_secs(60);
}

/// Sends a device-signed POST whose nonce the server already recorded (as if the call had
/// been captured and sent before), and expects `REPLAYED`.
pub async fn replayed_post<B: serde::Serialize>(
    s: &TestServer,
    phone: &PhoneState,
    path: &str,
    body: &B,
) {
    let client = sign::client(phone).unwrap();
    let bytes = serde_json::to_vec(body).unwrap();
    let headers = client.signed_headers("POST", path, &bytes).unwrap();
    let nonce = &headers
        .iter()
        .find(|(k, _)| *k == cosign_proto::v1::auth::HEADER_NONCE)
        .unwrap()
        .1;
    sqlx::query("INSERT INTO request_nonces (caller, nonce, expires_at) VALUES ($1, $2, $3)")
        .bind(format!("dev:{}", phone.device_id))
        .bind(nonce)
        .bind(now_ms() + 600_000)
        .execute(s.db.pool())
        .await
        .unwrap();
    let mut req = s
        .client
        .post(s.url(path))
        .header("content-type", "application/json")
        .body(bytes);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    assert_api_error(req.send().await.unwrap(), 401, "REPLAYED").await;
}

/// Makes the audit trail refuse entries with `action` (a trigger), or accept them again.
pub async fn refuse_audit(s: &TestServer, backend: Backend, action: Option<&str>) {
    let sql: Vec<String> = match (backend, action) {
        (Backend::Sqlite, Some(a)) => vec![format!(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log WHEN NEW.action = '{a}' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )],
        (Backend::Postgres, Some(a)) => vec![
            "CREATE OR REPLACE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN \
             RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql"
                .to_owned(),
            format!(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW \
                 WHEN (NEW.action = '{a}') EXECUTE FUNCTION refuse_audit()"
            ),
        ],
        (Backend::Sqlite, None) => vec!["DROP TRIGGER refuse_audit".to_owned()],
        (Backend::Postgres, None) => vec!["DROP TRIGGER refuse_audit ON audit_log".to_owned()],
    };
    for q in sql {
        sqlx::raw_sql(&q).execute(s.db.pool()).await.unwrap();
    }
}

/// Each protocol call is one transaction: the nonce, the call's writes and (request creation,
/// result) its audit entry. A call whose nonce was already recorded is refused and none of its
/// writes stay (no PIN attempt charged, no round started, no answer stored, no signature
/// stored); a request or result whose audit entry cannot be written stores nothing. (Were the
/// nonce or the audit entry written apart from the call's writes, a check below would fail.)
async fn each_protocol_call_is_one_transaction(backend: Backend) {
    use sm2_cosign::seal::{OprfClient, open_share};
    use sm2_cosign::sign::ClientSignSession;

    let (s, terminal, phone, client) = one_signer(backend, "D001", "张医生").await;
    let body = json!({"signers": ["D001"], "title": "检验报告",
        "documents": [{"name": "血常规", "digest_sm3": hex::encode(Sm3::digest(b"CBC"))}]});
    // A request whose audit entry cannot be written is not stored.
    refuse_audit(&s, backend, Some("cosign.request.create")).await;
    let r = terminal
        .call("POST", "/api/v1/sign-requests", Some(&body))
        .await;
    assert_eq!(r.status(), 500);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sign_requests")
        .fetch_one(s.db.pool())
        .await
        .unwrap();
    assert_eq!(n, 0);
    refuse_audit(&s, backend, None).await;
    let created = terminal.create(&body).await;
    let id = created["request_id"].as_str().unwrap().to_owned();
    let items = vec![RoundItem {
        request_id: id.clone(),
        document: 0,
    }];
    let scalar = |sql: &'static str| {
        let pool = s.db.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let round_state = |round_id: String| {
        let pool = s.db.pool().clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT state FROM sign_rounds WHERE round_id = $1")
                .bind(round_id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };

    // The PIN call: no attempt charged.
    let context = PhoneState::pin_context(&phone.staff_id, &phone.device_id);
    let (blind, oprf) =
        OprfClient::blind(&mut sm2_cosign::OsRng, &context, PIN.as_bytes()).unwrap();
    let pin = cosign_proto::v1::cosign::PinUnlock { oprf };
    replayed_post(&s, &phone, "/api/v1/phone/pin", &pin).await;
    let failures = "SELECT pin_failures FROM staff WHERE staff_id = 'D001'";
    assert_eq!(scalar(failures).await, 0);
    let answer: cosign_proto::v1::cosign::PinUnlocked =
        client.post("/api/v1/phone/pin", &pin).await.unwrap();
    assert_eq!(scalar(failures).await, 1);
    let share = open_share(&blind.finalize(&answer.oprf).unwrap(), &phone.sealed_share).unwrap();

    // Round start: no round stored.
    let start = cosign_proto::v1::cosign::StartRound {
        items,
        qr_nonce: None,
    };
    replayed_post(&s, &phone, "/api/v1/phone/rounds", &start).await;
    assert_eq!(scalar("SELECT COUNT(*) FROM sign_rounds").await, 0);
    let started: cosign_proto::v1::cosign::RoundStarted =
        client.post("/api/v1/phone/rounds", &start).await.unwrap();
    let round_id = started.round_id.clone();
    assert_eq!(round_state(round_id.clone()).await, "started");

    // Commitments: the round stays `started`, no answer stored.
    let z = sm2_cosign::plain::compute_z(sm2_cosign::DEFAULT_ID, share.public().public_point())
        .unwrap();
    let expected: Vec<_> = started
        .items
        .iter()
        .map(|i| sm2_cosign::plain::digest_with_z(&z, &B64.decode(&i.signed_attributes).unwrap()))
        .collect();
    let (session, commit) =
        ClientSignSession::commit_os(&share, &started.request, &expected).unwrap();
    let commit = cosign_proto::v1::cosign::RoundCommit { commit };
    let commit_path = format!("/api/v1/phone/rounds/{round_id}/commit");
    replayed_post(&s, &phone, &commit_path, &commit).await;
    assert_eq!(round_state(round_id.clone()).await, "started");
    let partial: sm2_cosign::sign::SignPartial = client.post(&commit_path, &commit).await.unwrap();
    assert_eq!(round_state(round_id.clone()).await, "answered");

    // Result: nothing signed, the round still `answered`, the PIN charge still counted.
    let (_, result) = session.finish(&share, &partial).unwrap();
    let result = cosign_proto::v1::cosign::RoundResult { result };
    replayed_post(
        &s,
        &phone,
        &format!("/api/v1/phone/rounds/{round_id}/result"),
        &result,
    )
    .await;
    assert_eq!(scalar("SELECT COUNT(*) FROM signatures").await, 0);
    assert_eq!(round_state(round_id.clone()).await, "answered");
    assert_eq!(scalar(failures).await, 1);
    assert_eq!(terminal.view(&id).await["status"], "pending");
    // A result whose audit entry cannot be written stores nothing either.
    refuse_audit(&s, backend, Some("cosign.sign")).await;
    let e = sign::send_result(&client, &round_id, &result)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::Internal);
    assert_eq!(scalar("SELECT COUNT(*) FROM signatures").await, 0);
    assert_eq!(round_state(round_id.clone()).await, "answered");
    assert_eq!(scalar(failures).await, 1);
    assert_eq!(terminal.view(&id).await["status"], "pending");
    refuse_audit(&s, backend, None).await;
    let outcome = sign::send_result(&client, &round_id, &result)
        .await
        .unwrap();
    assert!(outcome.items[0].ok);
    assert_eq!(scalar(failures).await, 0);
    assert_eq!(round_state(round_id).await, "finished");
    assert_eq!(terminal.view(&id).await["status"], "completed");
    let report = cosign_server::audit::AuditLog::check(&s.db, Some(&*s.keys.device()), None)
        .await
        .unwrap();
    assert!(report.intact(), "{:?}", report.broken);
}

both_backends!(each_protocol_call_is_one_transaction);

/// A terminal watching on instance B hears a signature made through instance A at once: the
/// announcement crosses instances by PostgreSQL LISTEN/NOTIFY (the fallback poll is set to a
/// minute here, so only the notification can deliver it in time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_on_another_instance_hears_the_signature() {
    let a = TestServer::start_with(Backend::Postgres, slow_poll).await;
    let token = a.admin_token().await;
    let terminal = Terminal::signing(&a, &token).await;
    let phone = enrolled(&a, &token, "D001", "张医生").await;
    let mut config = a.config();
    slow_poll(&mut config);
    let (server, _) = cosign_server::serve::Server::bind(config).await.unwrap();
    let b = format!("ws://{}", server.local_addr().unwrap());
    let (stop_b, rx) = tokio::sync::oneshot::channel::<()>();
    let handle_b = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    // Give B's listener a moment to subscribe.
    tokio::time::sleep(Duration::from_millis(500)).await;

    for round in 0..2 {
        let created = terminal
            .create(
                &json!({"signers": ["D001"], "title": format!("处方 {round}"),
                "documents": [{"name": "处方", "digest_sm3": hex::encode(Sm3::digest([round]))}]}),
            )
            .await;
        let id = created["request_id"].as_str().unwrap();
        let url = format!(
            "{b}/api/v1/sign-requests/{id}/events?token={}",
            created["watch_token"].as_str().unwrap()
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let first: Value =
            serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
        assert_eq!(first["request"]["status"], "pending");
        let outcome = sign::sign_link(&phone, created["qr_payload"].as_str().unwrap(), PIN)
            .await
            .unwrap();
        assert!(outcome.items[0].ok);
        let done = next_event(&mut ws, |v| v["request"]["status"] == "completed")
            .await
            .expect("instance B must relay A's announcement well before its 60 s poll");
        assert_eq!(done["request"]["request_id"], id);
    }
    let _ = stop_b.send(());
    handle_b.await.unwrap().unwrap();
    a.stop().await;
}

/// The client system's webhook hears the completion, signed with its own HMAC-SM3 secret; a
/// failing endpoint is retried.
async fn completion_webhooks_are_signed_and_retried(backend: Backend) {
    use std::sync::{Arc, Mutex};
    type Seen = Arc<Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;
    let seen: Seen = Arc::default();
    let receiver = {
        let seen = seen.clone();
        axum::Router::new().route(
            "/his/callback",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let seen = seen.clone();
                    async move {
                        let mut s = seen.lock().unwrap();
                        s.push((headers, body.to_vec()));
                        // The HIS is down the first time.
                        if s.len() == 1 {
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR
                        } else {
                            axum::http::StatusCode::OK
                        }
                    }
                },
            ),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!(
        "http://{}/his/callback?site=1",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let r = s
        .client
        .post(s.url("/api/v1/admin/apps"))
        .bearer_auth(&token)
        .json(&json!({"name": "EMR", "permissions": ["sign_request:create"], "webhook_url": hook}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let app: Value = r.json().await.unwrap();
    let terminal = Terminal {
        app_id: app["app_id"].as_str().unwrap().to_owned(),
        secret: hex::decode(app["secret"].as_str().unwrap()).unwrap(),
        base: s.base.clone(),
        http: s.client.clone(),
    };
    // A bad URL is refused at registration.
    let r = s
        .client
        .post(s.url("/api/v1/admin/apps"))
        .bearer_auth(&token)
        .json(&json!({"name": "x", "permissions": ["sign_request:create"], "webhook_url": "ftp://his"}))
        .send()
        .await
        .unwrap();
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;

    let phone = enrolled(&s, &token, "D001", "张医生").await;
    let created = terminal
        .create(&json!({"signers": ["D001"], "title": "病历",
            "documents": [{"name": "病程记录", "digest_sm3": hex::encode(Sm3::digest(b"note"))}]}))
        .await;
    let id = created["request_id"].as_str().unwrap().to_owned();
    sign::sign_link(&phone, created["qr_payload"].as_str().unwrap(), PIN)
        .await
        .unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no retry: {:?}",
            seen.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let calls = seen.lock().unwrap().clone();
    for (headers, body) in &calls {
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["event"], "sign_request.completed");
        assert_eq!(v["request_id"], id.as_str());
        let h = |k: &str| headers.get(k).unwrap().to_str().unwrap().to_owned();
        assert_eq!(h("x-yiqian-app-id"), terminal.app_id);
        let canonical = canonical_request(
            "POST",
            "/his/callback?site=1",
            h("x-yiqian-timestamp").parse().unwrap(),
            &h("x-yiqian-nonce"),
            &hex::encode(Sm3::digest(body)),
        );
        assert_eq!(
            h("x-yiqian-signature"),
            cosign_server::signing::clients::hmac_hex(&terminal.secret, &canonical)
        );
    }
    assert_ne!(
        calls[0].0.get("x-yiqian-nonce"),
        calls[1].0.get("x-yiqian-nonce")
    );
    // Delivered once it succeeded: recorded, and not sent again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(seen.lock().unwrap().len(), 2);
    let (attempts, delivered): (i64, Option<i64>) =
        sqlx::query_as("SELECT attempts, delivered_at FROM webhook_deliveries")
            .fetch_one(s.db.pool())
            .await
            .unwrap();
    assert_eq!(attempts, 2);
    assert!(delivered.is_some());
    s.stop().await;
}
both_backends!(completion_webhooks_are_signed_and_retried);

/// Push: the phone's WebSocket receives a new task as soon as a terminal creates it, and the
/// list empties once it is signed; an unsigned upgrade gets no socket.
async fn tasks_are_pushed_to_the_phone(backend: Backend) {
    let s = TestServer::start_with(backend, slow_poll).await;
    let token = s.admin_token().await;
    let terminal = Terminal::register(&s, &token, &["sign_request:create"], None).await;
    let phone = enrolled(&s, &token, "D001", "张医生").await;
    let client = sign::client(&phone).unwrap();
    assert!(
        tokio_tungstenite::connect_async(format!(
            "{}/api/v1/phone/events",
            s.base.replace("http", "ws")
        ))
        .await
        .is_err()
    );
    let mut ws = sign::task_events(&client).await.unwrap();
    let mut next_tasks = async || -> Value {
        let v = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let msg = ws.next().await.unwrap().unwrap();
                if let Ok(t) = msg.to_text()
                    && !t.is_empty()
                {
                    return serde_json::from_str::<Value>(t).unwrap();
                }
            }
        })
        .await
        .expect("pushed well before the 60 s poll");
        assert_eq!(v["type"], "tasks");
        v["tasks"].clone()
    };
    assert_eq!(next_tasks().await.as_array().unwrap().len(), 0);
    let created = terminal
        .create(&json!({"signers": ["D001"], "title": "会诊单",
            "documents": [{"name": "会诊单", "digest_sm3": hex::encode(Sm3::digest(b"c"))}]}))
        .await;
    let tasks = next_tasks().await;
    assert_eq!(tasks[0]["request"]["request_id"], created["request_id"]);
    assert_eq!(tasks[0]["my_turn"], true);
    sign::sign_link(&phone, created["qr_payload"].as_str().unwrap(), PIN)
        .await
        .unwrap();
    assert_eq!(next_tasks().await.as_array().unwrap().len(), 0);
    drop(ws);
    s.stop().await;
}
both_backends!(tasks_are_pushed_to_the_phone);

/// The hospital message platform hears of every new request (Bearer token, queued with the
/// request, retried); the PIN limit follows `cosign.max_pin_failures`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifier_and_configured_pin_limit() {
    use std::sync::{Arc, Mutex};
    type Seen = Arc<Mutex<Vec<(Option<String>, Value)>>>;
    let seen: Seen = Arc::default();
    let platform = {
        let seen = seen.clone();
        axum::Router::new().route(
            "/wecom/notify",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let seen = seen.clone();
                    async move {
                        let auth = headers
                            .get("authorization")
                            .map(|v| v.to_str().unwrap().to_owned());
                        let mut s = seen.lock().unwrap();
                        s.push((auth, serde_json::from_slice(&body).unwrap()));
                        if s.len() == 1 {
                            axum::http::StatusCode::SERVICE_UNAVAILABLE
                        } else {
                            axum::http::StatusCode::OK
                        }
                    }
                },
            ),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/wecom/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, platform).await.unwrap() });
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.cosign.notifier_url = Some(url);
        c.cosign.notifier_token = Some(zeroize::Zeroizing::new("wecom-token".into()));
        c.cosign.max_pin_failures = 2;
    })
    .await;
    let token = s.admin_token().await;
    let terminal = Terminal::register(&s, &token, &["sign_request:create"], None).await;
    let phone = enrolled(&s, &token, "D001", "张医生").await;
    let created = terminal
        .create(
            &json!({"signers": ["D001"], "title": "手术记录", "department": "普外科",
            "documents": [{"name": "手术记录", "digest_sm3": hex::encode(Sm3::digest(b"op"))}]}),
        )
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the platform was not retried"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (auth, body) in seen.lock().unwrap().iter() {
        assert_eq!(auth.as_deref(), Some("Bearer wecom-token"));
        assert_eq!(body["event"], "sign_request.created");
        assert_eq!(body["request_id"], created["request_id"]);
        assert_eq!(body["signers"], json!(["D001"]));
        assert_eq!(body["department"], "普外科");
    }

    // Two wrong PINs lock the key with this configuration.
    let client = sign::client(&phone).unwrap();
    let items = || {
        vec![RoundItem {
            request_id: created["request_id"].as_str().unwrap().to_owned(),
            document: 0,
        }]
    };
    let e = sign::sign_items(&client, &phone, "111111", items(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, PhoneError::WrongPin { attempts_left: 1 }),
        "{e}"
    );
    let e = sign::sign_items(&client, &phone, "111111", items(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, PhoneError::WrongPin { attempts_left: 0 }),
        "{e}"
    );
    let e = sign::sign_items(&client, &phone, PIN, items(), None)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::KeyLocked);
    s.stop().await;
}

/// A Word document of a request is converted to PDF for the phone to show (LibreOffice, the
/// text checked with poppler's `pdftotext`); only its signers get it; anything that is not a
/// Word file, a zip bomb, a missing document and another doctor's request are refused with a
/// stable code and Chinese text, and the request stays as it was.
async fn word_documents_are_converted_for_the_phone(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let terminal = Terminal::signing(&s, &token).await;
    let phone = enrolled(&s, &token, "D081", "孙医生").await;
    let other = enrolled(&s, &token, "D082", "周医生").await;
    let dir = tempfile::tempdir().unwrap();
    let (docx, doc) = crate::documents::office_files(dir.path());
    let bomb = crate::documents::zip_bomb_docx(dir.path());
    // The registered DOCX media type, 71 characters (a 64-character limit once refused it).
    let docx_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
    let word = "application/msword";
    let created = terminal
        .create(
            &json!({"signers": ["D081"], "title": "知情同意书", "qr_image": false,
            "documents": [
                {"name": "a.docx", "content": B64.encode(&docx), "media_type": docx_type},
                {"name": "b.doc", "content": B64.encode(&doc), "media_type": word},
                {"name": "c.txt", "content": B64.encode("知情同意书"), "media_type": "text/plain"},
                {"name": "d.docx", "content": B64.encode(&bomb), "media_type": docx_type},
            ]}),
        )
        .await;
    let id = created["request_id"].as_str().unwrap();
    let client = sign::client(&phone).unwrap();
    for index in [0, 1] {
        let pdf = sign::word_as_pdf(&client, id, index).await.unwrap();
        let file = format!("converted{index}.pdf");
        std::fs::write(dir.path().join(&file), &pdf).unwrap();
        let text = crate::tools::run(dir.path(), "pdftotext", &[&file, "-"]);
        assert!(text.ok && text.text.contains("阑尾切除术"), "{}", text.text);
    }
    let refused = |e: PhoneError| {
        if let PhoneError::Server(api) = &e {
            assert!(
                api.message
                    .chars()
                    .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{api:?}"
            );
        }
        code(&e)
    };
    let e = sign::word_as_pdf(&client, id, 2).await.unwrap_err();
    assert_eq!(refused(e), ErrorCode::UnsupportedDocumentType);
    let e = sign::word_as_pdf(&client, id, 3).await.unwrap_err();
    assert_eq!(refused(e), ErrorCode::InvalidDocument);
    let e = sign::word_as_pdf(&client, id, 9).await.unwrap_err();
    assert_eq!(refused(e), ErrorCode::NotFound);
    let e = sign::word_as_pdf(&sign::client(&other).unwrap(), id, 0)
        .await
        .unwrap_err();
    assert_eq!(refused(e), ErrorCode::NotFound);
    let view = terminal.view(id).await;
    assert_eq!(view["status"], "pending", "{view}");
    assert_eq!(view["documents"].as_array().unwrap().len(), 4);
    s.stop().await;
}
both_backends!(word_documents_are_converted_for_the_phone);

/// The phone previews and signs only what it shows: a document's content is given only when it
/// has the digest on the screen, and a round is checked against the request as the phone
/// showed it to the doctor (the view it reviewed, not a fresh read): a round over other content — here the shown view carries
/// another digest, as if the document changed after the doctor read it — is refused before
/// any commitment is sent, and nothing is signed. With the view as the server gave it, it signs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_signs_only_what_it_showed() {
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let terminal = Terminal::signing(&s, &token).await;
    let phone = enrolled(&s, &token, "D071", "钱医生").await;
    let created = terminal
        .create(&json!({"signers": ["D071"], "title": "检验报告", "qr_image": false,
            "documents": [{"name": "报告", "content": B64.encode(b"report-1"), "media_type": "text/plain"}]}))
        .await;
    let id = created["request_id"].as_str().unwrap();
    let client = sign::client(&phone).unwrap();
    let mut shown = sign::request(&client, id).await.unwrap();
    // The content previewed is the content of the digest shown, or nothing.
    let real = shown.documents[0].digest_sm3.clone();
    assert_eq!(
        sign::document(&client, id, 0, &real).await.unwrap(),
        b"report-1"
    );
    shown.documents[0].digest_sm3 = hex::encode(Sm3::digest(b"report-2"));
    let e = sign::document(&client, id, 0, &shown.documents[0].digest_sm3)
        .await
        .unwrap_err();
    assert!(matches!(e, PhoneError::Mismatch(_)), "{e:?}");
    let e = sign::sign_reviewed(&client, &phone, PIN, &[shown], None)
        .await
        .unwrap_err();
    assert!(matches!(e, PhoneError::Mismatch(_)), "{e:?}");
    assert_eq!(terminal.view(id).await["status"], "pending");
    let shown = sign::request(&client, id).await.unwrap();
    let outcome = sign::sign_reviewed(&client, &phone, PIN, &[shown], None)
        .await
        .unwrap();
    assert!(outcome.items.iter().all(|i| i.ok), "{outcome:?}");
    assert_eq!(terminal.view(id).await["status"], "completed");
    s.stop().await;
}
