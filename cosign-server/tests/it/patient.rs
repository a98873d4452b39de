//! Patient signing (issue 8), server side, through the real interfaces: a terminal creates
//! tasks with HMAC-SM3-signed calls; the page's calls (link token, SMS code read from a fake
//! SMS gateway on loopback, session) are made as the H5 page makes them. Signed PDFs are
//! checked with qpdf, poppler (pdftoppm) and OpenSSL besides our own verifier; every refusal
//! is checked to have stored nothing.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    clippy::items_after_statements
)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{Value, json};

use crate::both_backends;
use crate::cosign::Terminal;
use crate::documents::simple_pdf;
use crate::support::{Backend, TestServer, assert_api_error};
use crate::tools::{openssl, run};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const SMS_TOKEN: &str = "sms-gateway-token-for-tests";
/// GB 11643's published example number (valid check digit).
pub(crate) const ID_NUMBER: &str = "11010519491231002X";
const SESSION: &str = "x-yiqian-h5-session";

/// A fake hospital SMS gateway: records `{phone, text}` POSTs that carry the right token.
#[derive(Clone, Default)]
pub(crate) struct FakeSms {
    sent: Arc<Mutex<Vec<(String, String)>>>,
}

impl FakeSms {
    async fn start() -> (Self, String) {
        let me = Self::default();
        let sent = me.sent.clone();
        let app = axum::Router::new().route(
            "/send",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, axum::Json(v): axum::Json<Value>| {
                    let sent = sent.clone();
                    async move {
                        let auth = headers
                            .get("authorization")
                            .and_then(|h| h.to_str().ok())
                            .unwrap_or_default();
                        if auth != format!("Bearer {SMS_TOKEN}") {
                            return axum::http::StatusCode::UNAUTHORIZED;
                        }
                        sent.lock().unwrap().push((
                            v["phone"].as_str().unwrap().to_owned(),
                            v["text"].as_str().unwrap().to_owned(),
                        ));
                        axum::http::StatusCode::OK
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (me, format!("http://{addr}/send"))
    }

    pub(crate) fn count(&self) -> usize {
        self.sent.lock().unwrap().len()
    }

    /// The 6-digit code of the latest code message to `phone`.
    pub(crate) fn code(&self, phone: &str) -> String {
        let sent = self.sent.lock().unwrap();
        let (_, text) = sent
            .iter()
            .rev()
            .find(|(p, t)| p == phone && t.contains("验证码"))
            .expect("a code SMS was sent");
        let digits: Vec<char> = text.chars().collect();
        for w in digits.windows(6) {
            if w.iter().all(char::is_ascii_digit) {
                return w.iter().collect();
            }
        }
        panic!("no code in {text}")
    }
}

pub(crate) struct Kit {
    pub(crate) s: TestServer,
    pub(crate) term: Terminal,
    pub(crate) sms: FakeSms,
    pub(crate) token: String,
}

pub(crate) async fn kit(backend: Backend) -> Kit {
    kit_with(backend, |_| {}).await
}

/// A kit whose server configuration is tweaked further (identity tests).
pub(crate) async fn kit_with(
    backend: Backend,
    tweak: impl FnOnce(&mut cosign_server::config::Config),
) -> Kit {
    let (sms, url) = FakeSms::start().await;
    let s = TestServer::start_with(backend, |cfg| {
        cfg.sms.url = Some(url);
        cfg.sms.token = Some(zeroize::Zeroizing::new(SMS_TOKEN.to_owned()));
        tweak(cfg);
    })
    .await;
    let token = s.admin_token().await;
    let term = Terminal::register(
        &s,
        &token,
        &["patient_task:create", "patient_task:read"],
        None,
    )
    .await;
    Kit {
        s,
        term,
        sms,
        token,
    }
}

fn test_pdf() -> Vec<u8> {
    simple_pdf(&[
        "Informed consent for surgery",
        "I understand the risks explained to me.",
        "Patient signature:",
    ])
}

pub(crate) fn task_body(mode: &str, extra: &Value) -> Value {
    let mut v = json!({
        "document": {"title": "手术知情同意书", "pdf_base64": B64.encode(test_pdf())},
        "signer": {"role": "patient", "name": "张三", "phone": "13800000000", "id_number": ID_NUMBER},
        "patient_id": "P0001", "visit_id": "V0001", "doc_type": "consent", "department": "普外科",
        "identity": ["sms"],
        "sign_mode": mode,
        "require_read_to_end": true,
        "placement": {"page": 1, "x": 100, "y": 100, "width": 160, "height": 80},
        "delivery": "qr",
        "expires_in_s": 1800,
    });
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    v
}

impl Kit {
    pub(crate) async fn create(&self, body: &Value) -> (String, String) {
        let r = self
            .term
            .call("POST", "/api/v1/patient-tasks", Some(body))
            .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let v: Value = r.json().await.unwrap();
        let link = v["link"].as_str().unwrap();
        let token = link.rsplit_once("/h5/#/t/").unwrap().1.to_owned();
        assert_eq!(token.len(), 43, "32 bytes base64url");
        (v["task_id"].as_str().unwrap().to_owned(), token)
    }

    pub(crate) fn page(&self, method: &str, token: &str, rest: &str) -> reqwest::RequestBuilder {
        let url = self.s.url(&format!("/api/v1/h5/tasks/{token}{rest}"));
        match method {
            "GET" => self.s.client.get(url),
            _ => self.s.client.post(url),
        }
    }

    /// SMS + verify: the page session.
    pub(crate) async fn verify(&self, token: &str, phone: &str) -> String {
        let r = self.page("POST", token, "/sms").send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let code = self.sms.code(phone);
        let r = self
            .page("POST", token, "/verify")
            .json(&json!({ "code": code }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["session"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn submit(
        &self,
        token: &str,
        session: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.page("POST", token, "/submit")
            .header(SESSION, session)
            .header("user-agent", "Mozilla/5.0 (iPhone) MicroMessenger/8.0")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn view(&self, task_id: &str) -> Value {
        let r = self
            .term
            .call("GET", &format!("/api/v1/patient-tasks/{task_id}"), None)
            .await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub(crate) async fn signed_pdf(&self, task_id: &str) -> Vec<u8> {
        let r = self
            .term
            .call(
                "GET",
                &format!("/api/v1/patient-tasks/{task_id}/signed.pdf"),
                None,
            )
            .await;
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap().to_vec()
    }

    async fn verify_report(&self, pdf: &[u8]) -> Value {
        let r = self
            .s
            .client
            .post(self.s.url("/api/v1/documents/verify"))
            .bearer_auth(&self.token)
            .body(pdf.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub(crate) async fn count(&self, sql: &str) -> i64 {
        use sqlx::Row;
        sqlx::query(sql)
            .fetch_one(self.s.db.pool())
            .await
            .unwrap()
            .try_get::<i64, _>(0)
            .unwrap()
    }

    /// (patient tasks, documents, document versions, evidence rows, event certificates).
    pub(crate) async fn rows(&self) -> [i64; 5] {
        [
            self.count("SELECT COUNT(*) FROM patient_tasks").await,
            self.count("SELECT COUNT(*) FROM documents").await,
            self.count("SELECT COUNT(*) FROM document_versions").await,
            self.count("SELECT COUNT(*) FROM patient_evidence").await,
            self.count("SELECT COUNT(*) FROM pki_certificates WHERE profile = 'patient_event'")
                .await,
        ]
    }

    /// Checks a signed PDF with qpdf, our verifier (intact, time-stamped, chain to our root,
    /// signed by the task's event certificate) and OpenSSL (the certificate's policy and UID).
    pub(crate) async fn check_signed(&self, dir: &Path, task_id: &str, cn: &str) -> Vec<u8> {
        let view = self.view(task_id).await;
        assert_eq!(view["status"], "signed", "{view}");
        let sig = &view["signature"];
        assert_eq!(sig["signer_name"], cn);
        let pdf = self.signed_pdf(task_id).await;
        assert_eq!(sig["sm3"], cosign_server::documents::sm3_hex(&pdf));
        assert!(pdf.starts_with(&test_pdf()), "an incremental update");
        std::fs::write(dir.join("signed.pdf"), &pdf).unwrap();
        let o = run(dir, "qpdf", &["--check", "signed.pdf"]);
        assert!(
            o.ok && o.text.contains("No syntax or stream encoding errors found"),
            "{}",
            o.text
        );
        let rep = self.verify_report(&pdf).await;
        assert_eq!(rep["ok"], true, "{rep}");
        assert_eq!(rep["signature_count"], 1);
        let s = &rep["signatures"][0];
        assert_eq!(s["signer_serial"], sig["certificate_serial"], "{s}");
        assert!(s["signer"].as_str().unwrap().contains(cn), "{s}");
        assert!(s["signer"].as_str().unwrap().contains(task_id), "{s}");
        assert_eq!(s["timestamp"]["valid"], true, "{s}");
        assert_eq!(s["path"]["valid"], true, "{s}");
        assert_eq!(
            s["original_file_sm3"],
            cosign_server::documents::sm3_hex(&test_pdf())
        );
        // The event certificate, read with OpenSSL: policy, UID, validity of minutes.
        use sqlx::Row;
        let der: Vec<u8> = sqlx::query("SELECT der FROM pki_certificates WHERE serial = $1")
            .bind(sig["certificate_serial"].as_str().unwrap())
            .fetch_one(self.s.db.pool())
            .await
            .unwrap()
            .try_get("der")
            .unwrap();
        std::fs::write(dir.join("event.der"), der).unwrap();
        let text = openssl(
            dir,
            &[
                "x509",
                "-inform",
                "DER",
                "-in",
                "event.der",
                "-noout",
                "-text",
            ],
        );
        assert!(text.contains("1.2.156.112233.4.1"), "{text}");
        assert!(text.contains(task_id), "{text}");
        // The event key was destroyed after signing.
        let destroyed = self
            .count(&format!(
                "SELECT COUNT(*) FROM crypto_keys WHERE label = 'patient:event:{task_id}' AND state = 'destroyed'"
            ))
            .await;
        assert!(destroyed >= 1);
        let active = self
            .count(&format!(
                "SELECT COUNT(*) FROM crypto_keys WHERE label = 'patient:event:{task_id}' AND state <> 'destroyed'"
            ))
            .await;
        assert_eq!(active, 0);
        pdf
    }
}

/// Dark pixels of a 72-dpi rendering of page 1 inside a box in PDF points (y from the bottom).
pub(crate) fn ink_in(dir: &Path, file: &str, (x, y, w, h): (u32, u32, u32, u32)) -> usize {
    let o = run(
        dir,
        "pdftoppm",
        &[
            "-r",
            "72",
            "-png",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            file,
            "page",
        ],
    );
    assert!(o.ok, "{}", o.text);
    let bytes = std::fs::read(dir.join("page.png")).unwrap();
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let f = r.next_frame(&mut buf).unwrap();
    let ch = match f.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Grayscale => 1,
        other => panic!("unexpected {other:?}"),
    };
    let (pw, ph) = (f.width, f.height);
    let mut n = 0;
    for yy in (ph - y - h)..(ph - y) {
        for xx in x..(x + w).min(pw) {
            let i = ((yy * pw + xx) as usize) * ch;
            if buf[i] < 100 {
                n += 1;
            }
        }
    }
    n
}

/// A transparent PNG with a thick dark scribble.
fn signature_png(w: u32, h: u32) -> Vec<u8> {
    let mut rgba = vec![0u8; (w * h * 4) as usize];
    for x in 10..w - 10 {
        let y = h / 2 + ((x as f32 / 15.0).sin() * (h as f32 / 4.0)) as u32;
        for dy in 0..6 {
            let i = (((y + dy - 3) * w + x) * 4) as usize;
            rgba[i..i + 4].copy_from_slice(&[10, 10, 40, 255]);
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc.write_header().unwrap();
    wr.write_image_data(&rgba).unwrap();
    wr.finish().unwrap();
    out
}

fn strokes(n: usize, t0: f64) -> Value {
    let pts: Vec<Value> = (0..n)
        .map(|i| json!({"x": 10.0 + i as f64 * 3.0, "y": 40.0 + (i % 7) as f64, "t": t0 + i as f64 * 8.0, "p": 0.5}))
        .collect();
    json!([{ "points": pts }])
}

fn handwriting(id: &str) -> Value {
    json!({
        "submission_id": id,
        "read_to_end": true,
        "strokes": strokes(40, 0.0),
        "signature_png_base64": B64.encode(signature_png(300, 120)),
    })
}

/// The next JSON event of a watch socket; `None` once it closes.
async fn next_event<S>(ws: &mut S) -> Option<Value>
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    use futures_util::StreamExt;
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match ws.next().await? {
                Ok(tokio_tungstenite::tungstenite::Message::Text(t)) => {
                    return Some(serde_json::from_str(&t).unwrap());
                }
                Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap()
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Create → views → SMS (rate limit) → wrong then right code → page image → refused
/// submissions (nothing stored) → handwriting submission → idempotent resend → another
/// submission and the link refused → the signed PDF checked by qpdf, our verifier, OpenSSL
/// and pdftoppm.
async fn handwriting_end_to_end(backend: Backend) {
    let k = kit(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let (task_id, token) = k.create(&task_body("handwriting", &json!({}))).await;
    let v = k.view(&task_id).await;
    assert_eq!(v["status"], "pending");
    // The QR code carries the link (terminal-signed GET).
    let r = k
        .term
        .call(
            "GET",
            &format!("/api/v1/patient-tasks/{task_id}/qr.svg"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<svg"));
    // Another app cannot see the task.
    let other = Terminal::register(&k.s, &k.token, &["patient_task:read"], None).await;
    let r = other
        .call("GET", &format!("/api/v1/patient-tasks/{task_id}"), None)
        .await;
    assert_api_error(r, 404, "NOT_FOUND").await;
    // The link token is stored as a hash only.
    let plain = k
        .count(&format!(
            "SELECT COUNT(*) FROM patient_tasks WHERE token_hash = '{token}'"
        ))
        .await;
    assert_eq!(plain, 0);

    let r = k.page("GET", &token, "").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let pv: Value = r.json().await.unwrap();
    assert_eq!(pv["signer_name_masked"], "张*");
    assert_eq!(pv["phone_masked"], "138****0000");
    assert_eq!(pv["sign_mode"], "handwriting");
    assert_eq!(pv["page_count"], 1);
    assert_eq!(pv["verified"], false);
    assert_eq!(pv["require_read_to_end"], true);

    // Pages and submission need the session.
    let r = k.page("GET", &token, "/pages/1.png").send().await.unwrap();
    assert_api_error(r, 401, "SESSION_REQUIRED").await;
    let r = k.submit(&token, "forged", &handwriting(&uuid())).await;
    assert_api_error(r, 401, "SESSION_REQUIRED").await;

    // SMS: one code, then 429 within the minute.
    let r = k.page("POST", &token, "/sms").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let sent: Value = r.json().await.unwrap();
    assert_eq!(sent["resend_after_s"], 60);
    let r = k.page("POST", &token, "/sms").send().await.unwrap();
    assert_api_error(r, 429, "RATE_LIMITED").await;
    assert_eq!(k.sms.count(), 1);
    let code = k.sms.code("13800000000");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = k
        .page("POST", &token, "/verify")
        .json(&json!({ "code": wrong }))
        .send()
        .await
        .unwrap();
    let e = assert_api_error(r, 400, "OTP_INVALID").await;
    assert_eq!(e["attempts_left"], 4);
    let r = k
        .page("POST", &token, "/verify")
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let session = r.json::<Value>().await.unwrap()["session"]
        .as_str()
        .unwrap()
        .to_owned();
    // The code is single-use.
    let r = k
        .page("POST", &token, "/verify")
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_api_error(r, 400, "OTP_INVALID").await;
    let pv: Value = k
        .page("GET", &token, "")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pv["verified"], true);

    // The page image: a PNG about 1000 px wide; page 2 does not exist.
    let r = k
        .page("GET", &token, "/pages/1.png")
        .header(SESSION, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    let png = r.bytes().await.unwrap();
    let img = doc_sign::SignatureImage::from_png(&png).unwrap();
    assert_eq!(img.size().0, 1000);
    let r = k
        .page("GET", &token, "/pages/2.png")
        .header(SESSION, &session)
        .send()
        .await
        .unwrap();
    assert_api_error(r, 404, "NOT_FOUND").await;

    // Refusals store nothing.
    let before = k.rows().await;
    let mut not_read = handwriting(&uuid());
    not_read["read_to_end"] = json!(false);
    let mut backwards = handwriting(&uuid());
    backwards["strokes"][0]["points"][5]["t"] = json!(-1.0);
    let mut too_many = handwriting(&uuid());
    too_many["strokes"] = Value::Array((0..201).map(|_| strokes(2, 0.0)[0].clone()).collect());
    let mut too_many_points = handwriting(&uuid());
    too_many_points["strokes"] = strokes(20_001, 0.0);
    let mut huge_png = handwriting(&uuid());
    huge_png["signature_png_base64"] = json!(B64.encode(vec![7u8; 600 * 1024]));
    let mut not_png = handwriting(&uuid());
    not_png["signature_png_base64"] = json!(B64.encode(b"\x89PNG\r\n\x1a\nnot really"));
    let mut no_png = handwriting(&uuid());
    no_png["signature_png_base64"] = Value::Null;
    let mut out_of_range = handwriting(&uuid());
    out_of_range["strokes"][0]["points"][0]["x"] = json!(1e12);
    let mut pressure = handwriting(&uuid());
    pressure["strokes"][0]["points"][0]["p"] = json!(3.0);
    let mut bad_id = handwriting("not-a-uuid");
    bad_id["read_to_end"] = json!(true);
    for (body, status, code) in [
        (not_read, 400, "READ_REQUIRED"),
        (backwards, 400, "BAD_STROKES"),
        (too_many, 400, "BAD_STROKES"),
        (too_many_points, 400, "BAD_STROKES"),
        (huge_png, 413, "PAYLOAD_TOO_LARGE"),
        (not_png, 400, "BAD_STROKES"),
        (no_png, 400, "BAD_STROKES"),
        (out_of_range, 400, "BAD_STROKES"),
        (pressure, 400, "BAD_STROKES"),
        (bad_id, 400, "INVALID_ARGUMENT"),
        (json!({"strokes": "nope"}), 400, "MALFORMED_JSON"),
    ] {
        let r = k.submit(&token, &session, &body).await;
        assert_api_error(r, status, code).await;
    }
    assert_eq!(k.rows().await, before, "nothing stored on refusal");

    // The app's webhook is queued with the signature (in the finishing transaction).
    sqlx::query("UPDATE client_apps SET webhook_url = 'http://127.0.0.1:9/hook' WHERE app_id = $1")
        .bind(&k.term.app_id)
        .execute(k.s.db.pool())
        .await
        .unwrap();
    // The submission, twice with the same id: one signature, the same answer.
    let id = uuid();
    let r = k.submit(&token, &session, &handwriting(&id)).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["status"], "signed");
    let r = k.submit(&token, &session, &handwriting(&id)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), first);
    let after = k.rows().await;
    assert_eq!(after[2], before[2] + 1, "one signed version");
    assert_eq!(after[3], before[3] + 1, "one evidence record");
    assert_eq!(after[4], before[4] + 1, "one event certificate");
    // Another submission, and the link itself, are refused now.
    let r = k.submit(&token, &session, &handwriting(&uuid())).await;
    assert_api_error(r, 409, "TASK_USED").await;
    let r = k.page("GET", &token, "").send().await.unwrap();
    assert_api_error(r, 409, "TASK_USED").await;
    let r = k.page("POST", &token, "/sms").send().await.unwrap();
    assert_api_error(r, 409, "TASK_USED").await;
    assert_eq!(k.rows().await, after);

    let hooks = k
        .count("SELECT COUNT(*) FROM webhook_deliveries WHERE body LIKE '%patient_task.signed%'")
        .await;
    assert_eq!(hooks, 1);

    let pdf = k.check_signed(dir.path(), &task_id, "张三").await;
    // The evidence's SM3 is inside the signed CMS (a signed attribute; our verifier found the
    // signature intact, so it is covered by the signature).
    let evidence_sm3 = k.view(&task_id).await["signature"]["evidence_sm3"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(evidence_sm3.len(), 64);
    let text = String::from_utf8_lossy(&pdf).to_ascii_lowercase();
    assert!(text.contains(&evidence_sm3), "evidence SM3 in the CMS");
    // The handwriting is on the page where the task put it, and nowhere else was blank before.
    std::fs::write(dir.path().join("orig.pdf"), test_pdf()).unwrap();
    assert_eq!(ink_in(dir.path(), "orig.pdf", (100, 100, 160, 80)), 0);
    assert!(ink_in(dir.path(), "signed.pdf", (100, 100, 160, 80)) > 100);
    drop(pdf);

    // The evidence is stored encrypted: no stroke JSON in the clear.
    use sqlx::Row;
    let ct: Vec<u8> = sqlx::query("SELECT ciphertext FROM patient_evidence WHERE task_id = $1")
        .bind(&task_id)
        .fetch_one(k.s.db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert!(!String::from_utf8_lossy(&ct).contains("points"));
    // The audit chain holds the steps and still verifies.
    for action in [
        "patient.task.create",
        "patient.sms.send",
        "patient.sms.verify",
        "patient.submit",
        "patient.sign",
    ] {
        let n = k
            .count(&format!(
                "SELECT COUNT(*) FROM audit_log WHERE action = '{action}'"
            ))
            .await;
        assert!(n >= 1, "{action} audited");
    }
    let r =
        k.s.client
            .get(k.s.url("/api/v1/audit/verify"))
            .bearer_auth(&k.token)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    k.s.stop().await;
}
both_backends!(handwriting_end_to_end);

/// Long press (keyword placement), handwritten copy and proxy signing.
async fn long_press_copy_and_proxy(backend: Backend) {
    let k = kit(backend).await;
    let dir = tempfile::tempdir().unwrap();

    // Long press beside a keyword.
    let (task_id, token) = k
        .create(&task_body(
            "long_press",
            &json!({"placement": {"keyword": "Patient signature:"}, "require_read_to_end": false}),
        ))
        .await;
    let session = k.verify(&token, "13800000000").await;
    // The terminal watches the task over a WebSocket (HMAC-signed upgrade).
    let path = format!("/api/v1/patient-tasks/{task_id}/events");
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        k.s.url(&path).replace("http://", "ws://"),
    )
    .unwrap();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let ts = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    for (name, value) in k.term.headers("GET", &path, b"", ts, &nonce) {
        req.headers_mut().insert(name, value.parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let first = next_event(&mut ws).await.unwrap();
    assert_eq!(first["kind"], "patient_task");
    assert_eq!(first["task"]["status"], "verified", "{first}");
    let unsigned = k.s.url(&path).replace("http://", "ws://");
    assert!(tokio_tungstenite::connect_async(unsigned).await.is_err());
    let short = json!({"submission_id": uuid(), "held_ms": 1200});
    assert_api_error(
        k.submit(&token, &session, &short).await,
        400,
        "INVALID_ARGUMENT",
    )
    .await;
    let r = k
        .submit(
            &token,
            &session,
            &json!({"submission_id": uuid(), "held_ms": 3200}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let mut last = first;
    while let Some(v) = next_event(&mut ws).await {
        last = v;
    }
    assert_eq!(last["task"]["status"], "signed", "{last}");
    assert!(last["task"]["signature"]["certificate_serial"].is_string());
    k.check_signed(dir.path(), &task_id, "张三").await;

    // Handwritten copy: one entry per character, each with strokes.
    let text = "本人同意手术";
    let (task_id, token) = k
        .create(&task_body("copy", &json!({"copy_text": text, "signer": {"role": "patient", "name": "李四", "phone": "13900000001"}})))
        .await;
    let session = k.verify(&token, "13900000001").await;
    let chars = |n: usize| -> Value {
        Value::Array(
            text.chars()
                .take(n)
                .enumerate()
                .map(|(i, c)| json!({"char": c.to_string(), "strokes": strokes(12, i as f64 * 1000.0)}))
                .collect(),
        )
    };
    let before = k.rows().await;
    let missing = json!({"submission_id": uuid(), "read_to_end": true, "copy_chars": chars(5)});
    assert_api_error(
        k.submit(&token, &session, &missing).await,
        400,
        "BAD_STROKES",
    )
    .await;
    let mut wrong_char =
        json!({"submission_id": uuid(), "read_to_end": true, "copy_chars": chars(6)});
    wrong_char["copy_chars"][2]["char"] = json!("不");
    assert_api_error(
        k.submit(&token, &session, &wrong_char).await,
        400,
        "BAD_STROKES",
    )
    .await;
    let mut empty = json!({"submission_id": uuid(), "read_to_end": true, "copy_chars": chars(6)});
    empty["copy_chars"][3]["strokes"] = json!([]);
    assert_api_error(k.submit(&token, &session, &empty).await, 400, "BAD_STROKES").await;
    assert_eq!(k.rows().await, before);
    let ok = json!({"submission_id": uuid(), "read_to_end": true, "copy_chars": chars(6)});
    let r = k.submit(&token, &session, &ok).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    k.check_signed(dir.path(), &task_id, "李四").await;
    assert!(ink_in(dir.path(), "signed.pdf", (100, 100, 160, 80)) > 50);

    // Proxy (button): details required, checked, then the certificate names the proxy.
    let (task_id, token) = k
        .create(&task_body(
            "button",
            &json!({"signer": {"role": "proxy", "name": "王五", "phone": "13700000002"}, "require_read_to_end": false}),
        ))
        .await;
    let session = k.verify(&token, "13700000002").await;
    let consent = json!({"submission_id": uuid(), "consent": true});
    assert_api_error(
        k.submit(&token, &session, &consent).await,
        400,
        "PROXY_REQUIRED",
    )
    .await;
    let proxy = |id: &str| json!({"relationship": "spouse", "name": "赵六", "id_number": id, "reason": "患者术前镇静，无法签字"});
    // A birth date in the future (2090-01-01) with a correct check digit.
    let first = "11010520900101001";
    let future = format!(
        "{first}{}",
        cosign_proto::v1::patient::id_check_char(first.as_bytes()).unwrap() as char
    );
    for bad in [
        "110105194912310021",
        "11010519491331002X",
        "1234",
        future.as_str(),
    ] {
        let r = k
            .page("POST", &token, "/proxy")
            .header(SESSION, &session)
            .json(&proxy(bad))
            .send()
            .await
            .unwrap();
        assert_api_error(r, 400, "INVALID_ID_NUMBER").await;
    }
    let r = k
        .page("POST", &token, "/proxy")
        .header(SESSION, &session)
        .json(&json!({"relationship": "cousin", "name": "赵六", "id_number": ID_NUMBER, "reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_api_error(r, 400, "MALFORMED_JSON").await;
    let r = k
        .page("POST", &token, "/proxy")
        .header(SESSION, &session)
        .json(&proxy(ID_NUMBER))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let no_consent = json!({"submission_id": uuid(), "consent": false});
    assert_api_error(
        k.submit(&token, &session, &no_consent).await,
        400,
        "INVALID_ARGUMENT",
    )
    .await;
    let r = k.submit(&token, &session, &consent).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    k.check_signed(dir.path(), &task_id, "赵六").await;
    let view = k.view(&task_id).await;
    assert_eq!(view["signature"]["signer_role"], "proxy");

    // A patient task takes no proxy.
    let (_, token) = k.create(&task_body("button", &json!({}))).await;
    let session = k.verify(&token, "13800000000").await;
    let r = k
        .page("POST", &token, "/proxy")
        .header(SESSION, &session)
        .json(&proxy(ID_NUMBER))
        .send()
        .await
        .unwrap();
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    k.s.stop().await;
}
both_backends!(long_press_copy_and_proxy);

/// Wrong codes until the lock, the hourly SMS limit, expired, cancelled and unknown links,
/// refused task creations (nothing stored).
async fn locks_expiry_and_refusals(backend: Backend) {
    let k = kit(backend).await;
    let (_, token) = k.create(&task_body("button", &json!({}))).await;
    let r = k.page("POST", &token, "/sms").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let code = k.sms.code("13800000000");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (1..=4).rev() {
        let r = k
            .page("POST", &token, "/verify")
            .json(&json!({ "code": wrong }))
            .send()
            .await
            .unwrap();
        let e = assert_api_error(r, 400, "OTP_INVALID").await;
        assert_eq!(e["attempts_left"], left);
    }
    let r = k
        .page("POST", &token, "/verify")
        .json(&json!({ "code": wrong }))
        .send()
        .await
        .unwrap();
    assert_api_error(r, 423, "OTP_LOCKED").await;
    // Locked: even the right code and the view are refused.
    let r = k
        .page("POST", &token, "/verify")
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_api_error(r, 423, "OTP_LOCKED").await;
    assert_api_error(
        k.page("GET", &token, "").send().await.unwrap(),
        423,
        "OTP_LOCKED",
    )
    .await;
    let denied = k
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'patient.sms.verify' AND outcome = 'denied'")
        .await;
    assert_eq!(denied, 5);

    // Five codes an hour.
    let (task_id, token) = k.create(&task_body("button", &json!({}))).await;
    for _ in 0..5 {
        let r = k.page("POST", &token, "/sms").send().await.unwrap();
        assert_eq!(r.status(), 200);
        sqlx::query(
            "UPDATE patient_tasks SET otp_sent_at = otp_sent_at - 61000 WHERE task_id = $1",
        )
        .bind(&task_id)
        .execute(k.s.db.pool())
        .await
        .unwrap();
    }
    let e = assert_api_error(
        k.page("POST", &token, "/sms").send().await.unwrap(),
        429,
        "RATE_LIMITED",
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("一小时"), "{e}");

    // Expired link.
    let (task_id, token) = k
        .create(&task_body("button", &json!({"expires_in_s": 60})))
        .await;
    sqlx::query("UPDATE patient_tasks SET expires_at = 1 WHERE task_id = $1")
        .bind(&task_id)
        .execute(k.s.db.pool())
        .await
        .unwrap();
    assert_api_error(
        k.page("GET", &token, "").send().await.unwrap(),
        410,
        "TASK_EXPIRED",
    )
    .await;
    assert_api_error(
        k.page("POST", &token, "/sms").send().await.unwrap(),
        410,
        "TASK_EXPIRED",
    )
    .await;
    assert_eq!(k.view(&task_id).await["status"], "expired");

    // Cancelled by the terminal.
    let (task_id, token) = k.create(&task_body("button", &json!({}))).await;
    let r = k
        .term
        .call(
            "POST",
            &format!("/api/v1/patient-tasks/{task_id}/cancel"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_api_error(
        k.page("GET", &token, "").send().await.unwrap(),
        410,
        "TASK_CANCELLED",
    )
    .await;
    let r = k
        .term
        .call(
            "POST",
            &format!("/api/v1/patient-tasks/{task_id}/cancel"),
            None,
        )
        .await;
    assert_api_error(r, 410, "TASK_CANCELLED").await;

    // Unknown or malformed links.
    for t in [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "x",
        &"y".repeat(300),
    ] {
        assert_api_error(k.page("GET", t, "").send().await.unwrap(), 404, "NOT_FOUND").await;
    }

    // Refused creations store nothing.
    let before = k.rows().await;
    let not_pdf =
        json!({"document": {"title": "t", "pdf_base64": B64.encode(b"hello, not a PDF")}});
    let broken = json!({"document": {"title": "t", "pdf_base64": B64.encode(b"%PDF-1.7\nbroken")}});
    for (extra, status, code) in [
        (
            json!({"signer": {"role": "patient", "name": "张三", "phone": "13800000000", "id_number": "110105194912310021"}}),
            400,
            "INVALID_ID_NUMBER",
        ),
        (
            json!({"signer": {"role": "patient", "name": "张三", "phone": "12345"}}),
            400,
            "INVALID_ARGUMENT",
        ),
        (json!({"sign_mode": "copy"}), 400, "INVALID_ARGUMENT"),
        (json!({"copy_text": "本人同意"}), 400, "INVALID_ARGUMENT"),
        (
            json!({"sign_mode": "copy", "copy_text": "字".repeat(65)}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            json!({"placement": {"keyword": "no such words"}}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            json!({"placement": {"page": 3, "x": 1, "y": 1, "width": 10, "height": 10}}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            json!({"placement": {"page": 1, "x": 1, "y": 1, "width": -10, "height": 10}}),
            400,
            "INVALID_ARGUMENT",
        ),
        (json!({"expires_in_s": 10}), 400, "INVALID_ARGUMENT"),
        (json!({"identity": ["face"]}), 400, "INVALID_ARGUMENT"),
        (json!({"sign_mode": "stamp"}), 400, "MALFORMED_JSON"),
        (json!({"surprise": 1}), 400, "MALFORMED_JSON"),
        (not_pdf, 415, "UNSUPPORTED_DOCUMENT_TYPE"),
        (broken, 422, "INVALID_DOCUMENT"),
    ] {
        let r = k
            .term
            .call(
                "POST",
                "/api/v1/patient-tasks",
                Some(&task_body("handwriting", &extra)),
            )
            .await;
        assert_api_error(r, status, code).await;
    }
    assert_eq!(k.rows().await, before);
    // Without the permission.
    let reader = Terminal::register(&k.s, &k.token, &["patient_task:read"], None).await;
    let r = reader
        .call(
            "POST",
            "/api/v1/patient-tasks",
            Some(&task_body("button", &json!({}))),
        )
        .await;
    assert_api_error(r, 403, "FORBIDDEN").await;
    assert_eq!(k.rows().await, before);
    k.s.stop().await;
}
both_backends!(locks_expiry_and_refusals);

/// Crash recovery and concurrent resends: two identical submissions at once give one
/// signature; a task left in `signing` after its signature was archived (a crash before the
/// last step) is finished by the resend, again with one signature.
async fn resend_and_recovery(backend: Backend) {
    let k = kit(backend).await;
    let (task_id, token) = k.create(&task_body("handwriting", &json!({}))).await;
    let session = k.verify(&token, "13800000000").await;
    let body = handwriting(&uuid());
    let (a, b) = tokio::join!(
        k.submit(&token, &session, &body),
        k.submit(&token, &session, &body)
    );
    let (sa, sb) = (a.status(), b.status());
    assert_eq!((sa.as_u16(), sb.as_u16()), (200, 200));
    let (va, vb): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(va, vb);
    let versions = k
        .count(&format!(
            "SELECT COUNT(*) FROM document_versions v JOIN patient_tasks t ON t.document_id = v.document_id WHERE t.task_id = '{task_id}'"
        ))
        .await;
    assert_eq!(versions, 2, "one signed version");

    // Simulated crash between archiving and the finishing transaction.
    sqlx::query(
        "UPDATE patient_tasks SET status = 'signing', signed_at = NULL, signed_version = NULL, lease_until = 0 WHERE task_id = $1",
    )
    .bind(&task_id)
    .execute(k.s.db.pool())
    .await
    .unwrap();
    assert_eq!(k.view(&task_id).await["status"], "signing");
    let r = k.submit(&token, &session, &handwriting(&uuid())).await;
    assert_api_error(r, 409, "TASK_USED").await;
    let r = k.submit(&token, &session, &body).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let versions2 = k
        .count(&format!(
            "SELECT COUNT(*) FROM document_versions v JOIN patient_tasks t ON t.document_id = v.document_id WHERE t.task_id = '{task_id}'"
        ))
        .await;
    assert_eq!(versions2, 2, "still one signed version");
    let dir = tempfile::tempdir().unwrap();
    k.check_signed(dir.path(), &task_id, "张三").await;

    // A failure after the submission was accepted (here: the archived PDF is unreadable for a
    // moment) leaves the task `signing`; once the lease has passed, the resend redoes the
    // steps from the stored evidence with a new event certificate: one signature in the end,
    // every event key destroyed.
    let (task_id, token) = k.create(&task_body("handwriting", &json!({}))).await;
    let session = k.verify(&token, "13800000000").await;
    let blob =
        k.s.data_dir()
            .join("documents")
            .join(&cosign_server::documents::sm3_hex(&test_pdf())[..2])
            .join(cosign_server::documents::sm3_hex(&test_pdf()));
    let aside = blob.with_extension("aside");
    std::fs::rename(&blob, &aside).unwrap();
    let body = handwriting(&uuid());
    let r = k.submit(&token, &session, &body).await;
    assert_eq!(r.status(), 500, "{}", r.text().await.unwrap());
    assert_eq!(k.view(&task_id).await["status"], "signing");
    std::fs::rename(&aside, &blob).unwrap();
    // The failed attempt released its lease: the resend redoes the steps at once.
    let r = k.submit(&token, &session, &body).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let certs = k
        .count(&format!(
            "SELECT COUNT(*) FROM pki_certificates WHERE profile = 'patient_event' AND subject LIKE '%{task_id}%'"
        ))
        .await;
    assert_eq!(
        certs, 2,
        "the interrupted attempt's certificate and the redo's"
    );
    let dir = tempfile::tempdir().unwrap();
    k.check_signed(dir.path(), &task_id, "张三").await;
    k.s.stop().await;
}
both_backends!(resend_and_recovery);

/// The link goes out by SMS when the task says so; a gateway that refuses gives 503 and the
/// attempt is not counted against the limits (an immediate retry is not 429).
async fn sms_delivery_and_gateway_failure(backend: Backend) {
    let k = kit(backend).await;
    let (_, token) = k
        .create(&task_body("button", &json!({"delivery": "sms"})))
        .await;
    {
        let sent = k.sms.sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, "13800000000");
        assert!(
            sent[0].1.contains(&format!("/h5/#/t/{token}")),
            "{}",
            sent[0].1
        );
        assert!(sent[0].1.contains("手术知情同意书"));
    }
    k.s.stop().await;

    let (sms, url) = FakeSms::start().await;
    let s = TestServer::start_with(backend, |cfg| {
        cfg.sms.url = Some(url);
        cfg.sms.token = Some(zeroize::Zeroizing::new("wrong-token".to_owned()));
    })
    .await;
    let admin = s.admin_token().await;
    let term = Terminal::register(&s, &admin, &["patient_task:create"], None).await;
    let r = term
        .call(
            "POST",
            "/api/v1/patient-tasks",
            Some(&task_body("button", &json!({}))),
        )
        .await;
    assert_eq!(r.status(), 201);
    let link = r.json::<Value>().await.unwrap()["link"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = link.rsplit_once("/h5/#/t/").unwrap().1.to_owned();
    for _ in 0..2 {
        let r = s
            .client
            .post(s.url(&format!("/api/v1/h5/tasks/{token}/sms")))
            .send()
            .await
            .unwrap();
        assert_api_error(r, 503, "UNAVAILABLE").await;
    }
    assert_eq!(sms.count(), 0);
    use sqlx::Row;
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM patient_sms")
        .fetch_one(s.db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(n, 0);
    s.stop().await;
}
both_backends!(sms_delivery_and_gateway_failure);
