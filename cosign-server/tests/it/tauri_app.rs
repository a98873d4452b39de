//! The doctor / nurse app (`mobile-app/src-tauri`, binary `yiqian-doctor`, UI from
//! `mobile-app/ui`) end to end: the real desktop build driven over W3C WebDriver by
//! `tauri-driver` (Debian's WebKitWebDriver underneath) under Xvfb, against a real server on
//! loopback. The app reaches the server through a loopback relay the test can cut, to show a
//! batch failing cleanly while the server is unreachable and succeeding on retry, and restarts
//! the app with a `yiqian://` link as its argument (a deep link, as the system opens it).
//!
//! Needs the UI built (`scripts/build-app.sh`; `make test` does), `tauri-driver`
//! (`scripts/setup.sh test` installs it) and `xvfb-run`. Screenshots of every screen at
//! 390×844 and 1024×768 land in `$CARGO_TARGET_DIR/artifacts/tauri/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};

use crate::cosign::{Terminal, add_staff, check_independently, enrolled};
use crate::documents::{office_files, simple_pdf};
use crate::h5_page::{artifacts, repo};
use crate::phone_cli::workspace_bin;
use crate::support::{Backend, TestServer};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const PIN: &str = "482916";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A TCP relay to the server that the test can cut (connections refused and open ones closed)
/// and restore.
struct Relay {
    url: String,
    up: Arc<AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    async fn start() -> (Self, Arc<tokio::sync::OnceCell<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let target = Arc::new(tokio::sync::OnceCell::<String>::new());
        let (up2, target2, gen2) = (up.clone(), target.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let Some(addr) = target2.get().cloned() else {
                    continue;
                };
                let mut cut = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(addr).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        (
            Self {
                url,
                up,
                generation,
            },
            target,
        )
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// A minimal W3C WebDriver client (the few commands the test needs).
struct Driver {
    http: reqwest::Client,
    /// tauri-driver's base URL.
    base: String,
    session: String,
    shots: PathBuf,
    /// tauri-driver's log (shown when a session does not start).
    log: PathBuf,
    /// The app binary.
    app: PathBuf,
}

impl Driver {
    /// Sends one WebDriver command. tauri-driver 2.1.0 forwards to WebKitWebDriver over pooled
    /// keep-alive connections with hyper's retry of cancelled requests turned off, so now and
    /// then (about one call in several hundred here) it forwards onto a connection
    /// WebKitWebDriver has just closed and drops ours without an answer. Such a request never
    /// reached the page, so it is sent again (an HTTP answer, error or not, is never retried).
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut attempt = 0;
        loop {
            let mut req = self.http.request(method.clone(), url);
            if let Some(b) = body {
                req = req.json(b);
            }
            match req.send().await {
                Ok(r) => return r,
                Err(e) if attempt < 3 && !e.is_timeout() => {
                    attempt += 1;
                    eprintln!("tauri-driver dropped {method} {url} ({e}); sending it again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("{method} {url}: {e}"),
            }
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let r = self.send(method, &url, body.as_ref()).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{url}: {status} {v}");
        v["value"].clone()
    }

    async fn try_find(&self, css: &str) -> Option<String> {
        let url = format!("{}/element", self.session);
        let r = self
            .send(
                reqwest::Method::POST,
                &url,
                Some(&json!({"using": "css selector", "value": css})),
            )
            .await;
        if !r.status().is_success() {
            return None;
        }
        let v: Value = r.json().await.unwrap();
        v["value"][ELEMENT].as_str().map(str::to_owned)
    }

    /// Waits (up to `secs`) for an element.
    async fn wait(&self, css: &str, secs: u64) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(e) = self.try_find(css).await {
                return e;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {css} after {secs} s; page: {}",
                self.page_text().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn click(&self, css: &str) {
        let e = self.wait(css, 20).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_in(&self, css: &str, text: &str) {
        let e = self.wait(css, 20).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/clear"),
            Some(json!({})),
        )
        .await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let e = self.wait(css, 20).await;
        self.cmd(reqwest::Method::GET, &format!("/element/{e}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn page_text(&self) -> String {
        let url = format!("{}/execute/sync", self.session);
        let script = json!({"script": "return document.body.innerText", "args": []});
        self.send(reqwest::Method::POST, &url, Some(&script))
            .await
            .text()
            .await
            .unwrap_or_default()
    }

    /// How many pixels of the first canvas matching `css` are ink (visibly darker than white
    /// paper, anti-aliased edges included).
    async fn ink_pixels(&self, css: &str) -> u64 {
        let script = "const c = document.querySelector(arguments[0]); if (!c) return -1; \
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
            let n = 0; for (let i = 0; i < d.length; i += 4) { if (d[i + 3] > 0 && d[i] < 200) n++; } \
            return n;";
        u64::try_from(self.script(script, css).await.as_i64().unwrap_or(-1)).unwrap_or(0)
    }

    /// Runs `script` in the page with `css` as its one argument; what it returns.
    async fn script(&self, script: &str, css: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": [css]})),
        )
        .await
    }

    /// Waits until `css`'s text satisfies `ok`.
    async fn wait_text(&self, css: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if self.try_find(css).await.is_some() {
                let t = self.text(css).await;
                if ok(&t) {
                    return t;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{css} never matched after {secs} s; page: {}",
                self.page_text().await
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Quits the app and starts it again with `args` as its program arguments (how Linux
    /// hands a `yiqian://` link to the app it is registered for).
    async fn relaunch(&mut self, args: &[&str]) {
        let _ = self
            .send(reqwest::Method::DELETE, &self.session, None)
            .await;
        self.session = new_session(&self.http, &self.base, &self.app, args, &self.log).await;
        self.size(390, 844).await;
    }

    async fn size(&self, width: u32, height: u32) {
        self.cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    /// Pastes a signing link the app must refuse (before the PIN, or at signing); the message.
    async fn refused_link(&self, link: &str) -> String {
        self.type_in("#sign-link", link).await;
        self.click("#sign-open").await;
        self.wait("#error, #sign-confirm", 30).await;
        if self.try_find("#error").await.is_none() {
            self.type_in("#sign-pin", PIN).await;
            self.click("#sign-confirm").await;
        }
        self.wait_text("#error", 30, |t| !t.is_empty()).await
    }

    /// Drags the mouse `dy` pixels down from the middle of `css` (W3C actions), as a finger
    /// pulls a list down.
    async fn pull_down(&self, css: &str, dy: i32) {
        let el = self.wait(css, 10).await;
        let actions = json!({"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [
                {"type": "pointerMove", "duration": 0, "origin": {ELEMENT: el}, "x": 0, "y": 0},
                {"type": "pointerDown", "button": 0},
                {"type": "pointerMove", "duration": 300, "origin": "pointer", "x": 0, "y": dy / 2},
                {"type": "pointerMove", "duration": 300, "origin": "pointer", "x": 0, "y": dy - dy / 2},
                {"type": "pointerUp", "button": 0}
            ]
        }]});
        self.cmd(reqwest::Method::POST, "/actions", Some(actions))
            .await;
        self.cmd(reqwest::Method::DELETE, "/actions", None).await;
    }

    /// Screenshots of the current screen at phone and tablet size.
    async fn shots(&self, name: &str) {
        for (w, h) in [(390, 844), (1024, 768)] {
            self.size(w, h).await;
            let png = self
                .cmd(reqwest::Method::GET, "/screenshot", None)
                .await
                .as_str()
                .map(|b| B64.decode(b).unwrap())
                .unwrap();
            assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
            std::fs::write(self.shots.join(format!("{name}-{w}x{h}.png")), png).unwrap();
        }
        self.size(390, 844).await;
    }
}

/// `xvfb-run tauri-driver` in its own process group (killed as a whole on drop).
struct DriverProcess(Child);

impl Drop for DriverProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tauri_driver() -> PathBuf {
    let out = Command::new(repo().join("scripts/setup.sh"))
        .arg("tauri-driver-path")
        .output()
        .unwrap();
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(
        path.is_file(),
        "tauri-driver missing at {}: run scripts/setup.sh test (make test does)",
        path.display()
    );
    path
}

/// Starts the app in a new WebDriver session (waiting for tauri-driver to answer); the
/// session's URL.
async fn new_session(
    http: &reqwest::Client,
    base: &str,
    app: &Path,
    args: &[&str],
    log: &Path,
) -> String {
    let caps = json!({"capabilities": {"alwaysMatch": {"tauri:options": {"application": app, "args": args}}}});
    for _ in 0..100 {
        if let Ok(r) = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
        {
            let v: Value = r.json().await.unwrap();
            let id = v["value"]["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no session: {v}"));
            return format!("{base}/session/{id}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!(
        "tauri-driver did not answer: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    )
}

async fn start_app(app_dir: &Path) -> (DriverProcess, Driver) {
    use std::os::unix::process::CommandExt;
    let ui = repo().join("mobile-app/ui/dist");
    assert!(
        ui.join("app_bg.wasm").is_file(),
        "mobile-ui is not built: run scripts/build-app.sh (make test does) before this test"
    );
    let (port, native) = (free_port(), free_port());
    std::fs::create_dir_all(app_dir).unwrap();
    let log = std::fs::File::create(app_dir.join("driver.log")).unwrap();
    let child = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x1024x24"])
        .arg(tauri_driver())
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env("YIQIAN_APP_DIR", app_dir)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .process_group(0)
        .spawn()
        .expect("xvfb-run (Debian xvfb) must be installed");
    let guard = DriverProcess(child);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let log = app_dir.join("driver.log");
    let app = workspace_bin("yiqian-doctor");
    let session = new_session(&http, &base, &app, &[], &log).await;
    let driver = Driver {
        http,
        base,
        session,
        shots: artifacts("tauri"),
        log,
        app,
    };
    driver.size(390, 844).await;
    (guard, driver)
}

fn request_body(staff: &str, title: &str, patient: &str, content: &[u8]) -> Value {
    json!({
        "signers": [staff], "title": title, "doc_type": "处方", "department": "心内科",
        "patient_id": patient,
        "documents": [{"name": title, "content": B64.encode(content), "media_type": "text/plain"}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_app_end_to_end() {
    let (relay, target) = Relay::start().await;
    let relay_url = relay.url.clone();
    let s = TestServer::start_with(Backend::Sqlite, move |c| c.public_url = relay_url).await;
    target
        .set(s.base.trim_start_matches("http://").to_owned())
        .unwrap();
    let token = s.admin_token().await;
    let terminal = Terminal::signing(&s, &token).await;
    let dir = tempfile::tempdir().unwrap();
    let app_dir = dir.path().join("app");
    let (_proc, mut d) = start_app(&app_dir).await;

    // Activation: paste the administrator's link, set the PIN, keys generated, certificate shown.
    let link = add_staff(&s, &token, "D901", "李医生").await;
    d.wait("#screen-activate", 60).await;
    d.shots("01-activate").await;
    d.type_in("#activation-link", &link).await;
    d.click("#activation-next").await;
    assert_eq!(d.text("#act-staff").await, "D901");
    d.type_in("#new-pin", PIN).await;
    d.type_in("#new-pin2", "111111").await;
    d.click("#activate").await;
    d.wait_text("#error", 10, |t| t.contains("不一致")).await;
    d.type_in("#new-pin2", PIN).await;
    d.shots("02-activate-pin").await;
    d.click("#activate").await;
    d.wait("#activated", 60).await;
    let serial = d.text("#cert-serial").await;
    assert!(d.text("#cert-subject").await.contains("李医生"));
    assert!(!d.text("#cert-issuer").await.is_empty());
    d.shots("03-certificate").await;
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(app_dir.join("phone.json")).unwrap())
            .unwrap();
    assert_eq!(state["serial"].as_str().unwrap(), serial);
    // The share is stored sealed, never in the clear.
    assert!(state["sealed_share"].is_object(), "{state}");
    let cert_der = B64.decode(state["certificate"].as_str().unwrap()).unwrap();
    d.click("#enter").await;
    d.wait_text("#net", 20, |t| t.contains("在线")).await;

    // Scan to sign by pasting the terminal's link: what is signed is shown, then the PIN.
    let content = "处方\n患者：周七\n阿司匹林 100mg".as_bytes();
    let created = terminal
        .create(&request_body("D901", "门诊处方", "P-0001", content))
        .await;
    let id = created["request_id"].as_str().unwrap().to_owned();
    let qr = created["qr_payload"].as_str().unwrap().to_owned();
    d.wait_text("#task-count", 20, |t| t == "1").await;
    d.shots("04-tasks-one").await;
    d.click("#tab-scan").await;
    d.type_in("#sign-link", &qr).await;
    d.click("#sign-open").await;
    assert_eq!(d.text("#req-type").await, "处方");
    assert_eq!(d.text("#req-patient").await, "P-0001");
    assert!(d.text("#req-docs").await.contains("门诊处方"));
    // The content itself is shown before the PIN (checked against the SM3 on the screen).
    d.click("#preview-0").await;
    let shown = d
        .wait_text("#preview-text-0", 20, |t| t.contains("阿司匹林"))
        .await;
    assert!(shown.contains("周七"), "{shown}");
    d.shots("05-scan-review").await;
    // A wrong PIN signs nothing and says so in Chinese.
    d.type_in("#sign-pin", "000000").await;
    d.click("#sign-confirm").await;
    d.wait_text("#error", 30, |t| t.contains("PIN 码错误"))
        .await;
    d.shots("06-scan-wrong-pin").await;
    assert_eq!(terminal.view(&id).await["status"], "pending");
    d.type_in("#sign-pin", PIN).await;
    d.click("#sign-confirm").await;
    d.wait("#sign-done", 60).await;
    d.shots("07-scan-signed").await;
    let view = terminal.view(&id).await;
    assert_eq!(view["status"], "completed", "{view}");
    let sig = &view["signatures"][0];
    assert_eq!(sig["certificate_serial"].as_str().unwrap(), serial);
    check_independently(
        dir.path(),
        "scan",
        sig["cms"].as_str().unwrap(),
        content,
        &cert_der,
    );

    // A PDF is drawn on the phone (pdf.js) from the checked bytes; a Word file through the
    // server's PDF of it, said to be a conversion. Both are then signed as they are.
    let pdf = simple_pdf(&[
        "Prescription 2026-11-29",
        "Patient: P-0007",
        "Aspirin 100 mg",
    ]);
    let (docx, _) = office_files(dir.path());
    let broken: &[u8] = b"%PDF-1.7\nnot a PDF after all";
    let created = terminal
        .create(&json!({
            "signers": ["D901"], "title": "门诊病历", "doc_type": "病历", "patient_id": "P-0007",
            "documents": [
                {"name": "处方.pdf", "content": B64.encode(&pdf), "media_type": "application/pdf"},
                {"name": "知情同意书.docx", "content": B64.encode(&docx),
                 "media_type": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
                {"name": "损坏.pdf", "content": B64.encode(broken), "media_type": "application/pdf"}
            ]
        }))
        .await;
    let pdf_id = created["request_id"].as_str().unwrap().to_owned();
    d.type_in("#sign-link", created["qr_payload"].as_str().unwrap())
        .await;
    d.click("#sign-open").await;
    d.click("#preview-0").await;
    d.wait_text("#preview-pdf-0-pages", 60, |t| t.contains('1'))
        .await;
    assert!(d.try_find("#preview-converted-0").await.is_none());
    d.click("#preview-1").await;
    d.wait_text("#preview-pdf-1-pages", 90, |t| t.contains('1'))
        .await;
    assert!(d.text("#preview-converted-1").await.contains("服务器转换"));
    // A "PDF" pdf.js cannot read says so, and what to do, instead of a page.
    d.click("#preview-2").await;
    let failed = d
        .wait_text("#preview-pdf-2-failed", 60, |t| !t.is_empty())
        .await;
    assert!(failed.contains("终端"), "{failed}");
    assert!(d.text("#preview-pdf-2").await.is_empty());
    d.shots("05b-scan-pdf-word").await;
    // Both pages really carry ink (a blank canvas would mean nothing was drawn; a few short
    // lines at phone width are a few hundred grey pixels).
    for i in 0..2 {
        let ink = d.ink_pixels(&format!("#preview-pdf-{i} canvas")).await;
        assert!(ink > 60, "document {i}: {ink} pixels of ink");
    }
    // Small print is read zoomed: the page is drawn again twice as wide (not scaled up).
    let width = "const c = document.querySelector(arguments[0]); return c ? c.width : 0;";
    let before = d
        .script(width, "#preview-pdf-1 canvas")
        .await
        .as_u64()
        .unwrap();
    d.click("#preview-pdf-1-zoom").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = d
            .script(width, "#preview-pdf-1 canvas")
            .await
            .as_u64()
            .unwrap();
        if now >= before * 19 / 10 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{before} → {now} px");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.shots("05c-scan-word-zoomed").await;
    d.type_in("#sign-pin", PIN).await;
    d.click("#sign-confirm").await;
    d.wait("#sign-done", 60).await;
    let view = terminal.view(&pdf_id).await;
    assert_eq!(view["status"], "completed", "{view}");
    let signatures = view["signatures"].as_array().unwrap();
    assert_eq!(signatures.len(), 3, "{view}");
    for sig in signatures {
        let i = sig["document"].as_u64().unwrap();
        let content: &[u8] = [&pdf[..], &docx, broken][usize::try_from(i).unwrap()];
        let cms = sig["cms"].as_str().unwrap();
        check_independently(dir.path(), &format!("doc{i}"), cms, content, &cert_der);
    }

    // Refusals with clear Chinese messages: an expired request, another doctor's request.
    let expired = terminal
        .create(&request_body("D901", "过期处方", "P-0002", b"expired"))
        .await;
    sqlx::query("UPDATE sign_requests SET expires_at = 1 WHERE request_id = $1")
        .bind(expired["request_id"].as_str().unwrap())
        .execute(s.db.pool())
        .await
        .unwrap();
    let msg = d
        .refused_link(expired["qr_payload"].as_str().unwrap())
        .await;
    assert!(msg.contains("过期") || msg.contains("失效"), "{msg}");
    d.shots("08-scan-expired").await;
    let _other_phone = enrolled(&s, &token, "D902", "赵医生").await;
    let other = terminal
        .create(&request_body("D902", "他人处方", "P-0003", b"other"))
        .await;
    let msg = d.refused_link(other["qr_payload"].as_str().unwrap()).await;
    assert!(
        msg.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{msg}"
    );
    d.shots("09-scan-other-doctor").await;
    assert_eq!(
        terminal.view(other["request_id"].as_str().unwrap()).await["status"],
        "pending"
    );

    // Batch: 50 tasks pushed over the WebSocket (no refresh), one PIN, all signed.
    let mut batch = Vec::new();
    for i in 0..50 {
        let content = format!("检验报告 {i}\n患者：P-{i:04}");
        let c = terminal
            .create(&request_body(
                "D901",
                &format!("检验报告 {i}"),
                &format!("P-{i:04}"),
                content.as_bytes(),
            ))
            .await;
        batch.push((c["request_id"].as_str().unwrap().to_owned(), content));
    }
    d.click("#tab-tasks").await;
    d.wait_text("#task-count", 60, |t| t == "50").await;
    d.shots("10-tasks-fifty").await;

    // Server unreachable during the batch: every request fails with a message, none is signed,
    // and the app says it will sign them when the connection is back; back again, it does so
    // by itself (the confirmation was given with the PIN before the network failed).
    d.click("#select-all").await;
    d.click("#batch-start").await;
    let selected: usize = d.text("#batch-count").await.parse().unwrap();
    assert!(selected >= 50, "{selected}");
    relay.cut();
    d.type_in("#batch-pin", PIN).await;
    d.click("#batch-sign").await;
    d.wait_text("#batch-failed", 120, |t| t == selected.to_string())
        .await;
    assert_eq!(d.text("#batch-ok").await, "0");
    assert!(
        d.text("#batch-results")
            .await
            .contains("无法连接签名服务器")
    );
    d.wait_text("#net", 20, |t| t.contains("离线")).await;
    let queued = d.text("#batch-queued").await;
    assert!(
        queued.contains(&selected.to_string()) && queued.contains("自动"),
        "{queued}"
    );
    d.shots("11-batch-offline").await;
    for (id, _) in &batch {
        assert_eq!(
            terminal.view(id).await["status"],
            "pending",
            "half-signed {id}"
        );
    }
    relay.restore();
    d.wait_text("#batch-ok", 300, |t| {
        t.parse::<usize>().is_ok_and(|n| n >= 50)
    })
    .await;
    d.shots("12-batch-done").await;
    assert!(d.try_find("#batch-queued").await.is_none());
    // Anything still failing is the request that expired above, with its reason.
    let failed = d.text("#batch-failed").await;
    if failed != "0" {
        assert_eq!(failed, "1");
        assert!(d.text("#batch-results li.error").await.contains("过期"));
    }
    for (i, (id, content)) in batch.iter().enumerate() {
        let view = terminal.view(id).await;
        assert_eq!(view["status"], "completed", "{view}");
        // Independent verification of the first, a middle and the last signature.
        if [0, 25, 49].contains(&i) {
            check_independently(
                dir.path(),
                &format!("batch{i}"),
                view["signatures"][0]["cms"].as_str().unwrap(),
                content.as_bytes(),
                &cert_der,
            );
        }
    }
    d.click("#tab-tasks").await;
    d.wait_text("#task-count", 30, |t| t == "0").await;
    // Pull to refresh: dragging the list down from its top reads it again from the server.
    let before = d.wait_text("#refreshed-at", 20, |t| !t.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    d.pull_down("#refreshed-at", 120).await;
    d.wait_text("#refreshed-at", 20, |t| t != before).await;

    // History and certificate details.
    d.click("#tab-history").await;
    // The scanned prescription, the PDF and Word request, and the batch of 50.
    d.wait_text("#history-count", 20, |t| t == "52").await;
    d.type_in("#history-search", "P-0025").await;
    d.wait_text("#history-count", 20, |t| t == "1").await;
    d.shots("13-history").await;
    d.click("#tab-me").await;
    assert_eq!(d.text("#screen-me #cert-serial").await, serial);
    d.shots("14-me").await;

    // Auto-sign: create (co-signed with the PIN), see it active, revoke it.
    d.click("#tab-autosign").await;
    d.type_in("#as-types", "检验报告").await;
    d.type_in("#as-depts", "心内科").await;
    d.type_in("#as-hours", "8").await;
    d.type_in("#as-pin", PIN).await;
    d.click("#as-create").await;
    let asa = d.wait_text("#as-created", 60, |t| t.contains("asa_")).await;
    let asa = asa[asa.find("asa_").unwrap()..].trim().to_owned();
    d.wait(
        &format!("li.auth[data-id='{asa}'][data-state='active']"),
        20,
    )
    .await;
    d.shots("15-autosign-active").await;
    d.click(&format!("li.auth[data-id='{asa}'] .as-revoke"))
        .await;
    d.wait(
        &format!("li.auth[data-id='{asa}'][data-state='revoked']"),
        20,
    )
    .await;
    d.shots("16-autosign-revoked").await;

    // A deep link: the system starts the app with the terminal's `yiqian://sign` link as its
    // argument; the app opens that request's review at once (no camera on the desktop), and
    // signing still takes the PIN.
    let linked = terminal
        .create(&request_body("D901", "会诊记录", "P-0077", b"deep link"))
        .await;
    d.relaunch(&[linked["qr_payload"].as_str().unwrap()]).await;
    d.wait_text("#screen-scan #req-patient", 60, |t| t == "P-0077")
        .await;
    assert!(d.try_find("#sign-camera").await.is_none());
    d.shots("17-deep-link").await;
    d.type_in("#sign-pin", PIN).await;
    d.click("#sign-confirm").await;
    d.wait("#sign-done", 60).await;
    let view = terminal.view(linked["request_id"].as_str().unwrap()).await;
    assert_eq!(view["status"], "completed", "{view}");
    check_independently(
        dir.path(),
        "deeplink",
        view["signatures"][0]["cms"].as_str().unwrap(),
        b"deep link",
        &cert_der,
    );
    // A link that is not one of ours opens nothing but the task list.
    d.relaunch(&["yiqian://wipe?v=1&all=1"]).await;
    d.wait("#tab-tasks", 60).await;
    // (The app takes a link right after reading its state; give a wrongly accepted one time
    // to show.)
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(d.try_find("#screen-scan").await.is_none());

    // The lock screen hides patient data until the PIN is entered.
    d.click("#tab-me").await;
    d.click("#lock-now").await;
    d.wait("#screen-lock", 10).await;
    assert!(!d.page_text().await.contains("P-00"));
    // No fingerprint / face on the desktop: the PIN unlocks.
    assert!(d.try_find("#unlock-biometric").await.is_none());
    d.shots("18-locked").await;
    d.type_in("#unlock-pin", PIN).await;
    d.click("#unlock").await;
    d.wait("#tab-tasks", 30).await;

    // Wrong PIN until the key locks: each attempt says how many are left, then that the key is
    // locked; nothing is signed.
    let last = terminal
        .create(&request_body("D901", "最后处方", "P-0099", b"last"))
        .await;
    d.click("#tab-scan").await;
    d.type_in("#sign-link", last["qr_payload"].as_str().unwrap())
        .await;
    d.click("#sign-open").await;
    let mut locked = false;
    let mut previous = String::new();
    for _ in 0..12 {
        d.type_in("#sign-pin", "135791").await;
        d.click("#sign-confirm").await;
        // Each answer differs from the one before (fewer attempts left, then locked).
        let msg = d
            .wait_text("#error", 30, |t| {
                t != previous && (t.contains("PIN") || t.contains("锁定"))
            })
            .await;
        if msg.contains("锁定") && !msg.contains("还可尝试") {
            locked = true;
            break;
        }
        assert!(msg.contains("还可尝试"), "{msg}");
        previous = msg;
    }
    assert!(locked, "the key never locked");
    d.shots("19-key-locked").await;
    assert_eq!(
        terminal.view(last["request_id"].as_str().unwrap()).await["status"],
        "pending"
    );
    drop(d);
    s.stop().await;
}
