//! The patient signing page (web-h5) in Debian's headless Chromium, driven by Playwright
//! (cosign-server/tests/py/h5_flow.py), plus the `/h5/` static route.
//!
//! The page must be built first (`scripts/build-h5.sh`; `make test` does). The "contract" tests
//! serve the real page from a real server while the script answers the patient API exactly as
//! docs/api/patient.md describes and checks every body the page sends; screenshots of each
//! step at 390×844 land in `$CARGO_TARGET_DIR/artifacts/h5/`.

use std::path::{Path, PathBuf};

use crate::both_backends;
use crate::patient::{FakeSms, Kit, ink_in, kit, task_body};
use crate::support::{Backend, TestServer, assert_api_error};

/// Copy mode; the answer to the first submit is lost and the phone reloads before retrying.
const COPY_FLOW: &[&str] = &[
    "--mode",
    "copy",
    "--copy-text",
    "本人同意手术",
    "--cut-submit",
    "--reload-after-cut",
];

/// A token of the length the server issues (43 base64url characters for 256 bits).
const TOKEN: &str = "q2Jm4tV0l1b3c9YhR8sXkPzW6nA5eDfGuIoL7yT-_Qw";

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The built page; a clear failure when it is missing.
pub fn dist() -> PathBuf {
    let dist = repo().join("web-h5/dist");
    assert!(
        dist.join("index.html").is_file() && dist.join("app_bg.wasm").is_file(),
        "web-h5 is not built: run scripts/build-h5.sh (make test does) before these tests"
    );
    dist
}

/// `$CARGO_TARGET_DIR/artifacts/<sub>` (or beside the test binary's target dir).
pub fn artifacts(sub: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || {
            let exe = std::env::current_exe().unwrap();
            // target/debug/deps/it-… → target
            exe.ancestors().nth(3).unwrap().to_owned()
        },
        PathBuf::from,
    );
    let dir = target.join("artifacts").join(sub);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the Playwright script for the phone's flow; returns its JSON summary.
pub async fn run_flow(name: &str, link: &str, extra: &[&str]) -> serde_json::Value {
    run_py("h5_flow.py", name, link, extra).await
}

/// Runs a Playwright script of `cosign-server/tests/py/` with `--link`, `--name`, `--shots`
/// (screenshots `<name>-*.png` in `artifacts/h5/`) and `extra`; returns its JSON summary.
pub async fn run_py(file: &str, name: &str, link: &str, extra: &[&str]) -> serde_json::Value {
    let python = std::env::var("YIQIAN_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = repo().join("cosign-server/tests/py").join(file);
    let shots = artifacts("h5");
    // Screenshots of an earlier run of this flow would mix with this run's.
    for entry in std::fs::read_dir(&shots).unwrap().flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(&format!("{name}-"))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .args(["--link", link, "--name", name])
        .arg("--shots")
        .arg(&shots)
        .args(extra)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("cannot run {python} (needs the test venv with playwright): {e}")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{file} {name} failed ({}):\n{stderr}\n{stdout}\nscreenshots in {}",
        out.status,
        shots.display()
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{file} printed no JSON ({e}): {stdout}"))
}

async fn contract_flow(name: &str, extra: &[&str]) -> serde_json::Value {
    dist();
    let s = TestServer::start(Backend::Sqlite).await;
    let link = s.url(&format!("/h5/#/t/{TOKEN}"));
    let mut args = vec!["--mock"];
    args.extend_from_slice(extra);
    let summary = run_flow(name, &link, &args).await;
    s.stop().await;
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_handwriting_survives_a_network_cut() {
    let v = contract_flow(
        "contract-handwriting",
        &["--mode", "handwriting", "--cut-submit"],
    )
    .await;
    // One id, sent twice (the lost answer, then the retry), identical bodies (checked by the script).
    assert_eq!(v["submits"], 2, "{v}");
    assert!(v["points"].as_u64().unwrap() >= 10, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_long_press_by_a_proxy() {
    let v = contract_flow(
        "contract-long-press-proxy",
        &["--mode", "long_press", "--proxy"],
    )
    .await;
    assert!(v["held_ms"].as_u64().unwrap() >= 3000, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_copy_character_by_character() {
    let v = contract_flow("contract-copy", COPY_FLOW).await;
    assert_eq!(v["chars"], 6, "{v}");
    assert_eq!(v["submits"], 2, "{v}");
}

/// WeChat's built-in browser without Pointer Events (old X5 kernels, iOS before 13): the
/// strokes are CDP touch events, recorded by the touch fallback (every point's pressure is the
/// touch force), with `t` never decreasing; the long press works by touch too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_wechat_touch_without_pointer_events() {
    let v = contract_flow(
        "contract-wechat-handwriting",
        &["--wechat", "--mode", "handwriting"],
    )
    .await;
    assert_eq!(v["touch"], true, "{v}");
    assert!(v["points"].as_u64().unwrap() >= 10, "{v}");
    let v = contract_flow(
        "contract-wechat-long-press",
        &["--wechat", "--mode", "long_press"],
    )
    .await;
    assert!(v["held_ms"].as_u64().unwrap() >= 3000, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_button() {
    let v = contract_flow("contract-button", &["--mode", "button"]).await;
    assert_eq!(v["submits"], 1, "{v}");
}

async fn static_route(backend: Backend) {
    dist();
    let s = TestServer::start(backend).await;
    let r = s.client.get(s.url("/h5")).send().await.unwrap();
    // reqwest follows the redirect to /h5/.
    assert_eq!(r.status(), 200);
    assert_eq!(r.url().path(), "/h5/");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("script-src 'self' 'unsafe-inline'"),
        "{csp}"
    );
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    assert!(
        html.contains("boot.js") && !html.contains("<script>"),
        "no inline scripts: {html}"
    );
    for (file, kind) in [
        ("app.js", "text/javascript"),
        ("boot.js", "text/javascript"),
        ("app_bg.wasm", "application/wasm"),
        ("app.css", "text/css"),
    ] {
        let r = s
            .client
            .get(s.url(&format!("/h5/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{file}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{file}"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        let etag = r.headers()["etag"].clone();
        let again = s
            .client
            .get(s.url(&format!("/h5/{file}")))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{file} revalidation");
    }
    // Nothing outside the directory, no hidden or unknown files.
    for path in [
        "/h5/..%2F..%2FCargo.toml",
        "/h5/%2E%2E%2Fcosign.toml",
        "/h5/.gitignore",
        "/h5/nope.js",
        "/h5/a/b.js",
        "/h5/Cargo.toml",
    ] {
        assert_api_error(
            s.client.get(s.url(path)).send().await.unwrap(),
            404,
            "NOT_FOUND",
        )
        .await;
    }
    s.stop().await;
}
both_backends!(static_route);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbuilt_page_says_how_to_build_it() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_owned();
    let s = TestServer::start_with(Backend::Sqlite, move |c| c.web.h5_dir = dir).await;
    let r = s.client.get(s.url("/h5/")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = r.text().await.unwrap();
    assert!(
        body.contains("scripts/build-h5.sh") && body.contains("签署页面暂不可用"),
        "{body}"
    );
    assert_api_error(
        s.client.get(s.url("/h5/app.js")).send().await.unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
    s.stop().await;
}

// ---- The real thing: server API, fake SMS gateway, signed PDF checked afterwards. ----

/// Hands the fake gateway's latest code to the browser script:
/// `GET /code` → `{"code": "123456"}` (or `null` before any SMS reached the gateway).
pub(crate) async fn code_relay(sms: FakeSms, phone: &'static str) -> String {
    let app = axum::Router::new().route(
        "/code",
        axum::routing::get(move || {
            let sms = sms.clone();
            async move {
                let code = (sms.count() > 0).then(|| sms.code(phone));
                axum::Json(serde_json::json!({ "code": code }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/code")
}

/// Creates a task through the terminal API, signs it in the browser, checks the signed PDF
/// (qpdf, our verifier, OpenSSL on the event certificate: `Kit::check_signed`) and that
/// exactly one signature, one evidence record and one event certificate exist.
async fn browser_signs(
    backend: Backend,
    name: &str,
    task: serde_json::Value,
    phone: &'static str,
    signer_cn: &str,
    extra: &[&str],
) -> (Kit, tempfile::TempDir, serde_json::Value) {
    dist();
    let k = kit(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let before = k.rows().await;
    let (task_id, token) = k.create(&task).await;
    let relay = code_relay(k.sms.clone(), phone).await;
    // The link as the terminal got it, but on this test server's real port.
    let link = k.s.url(&format!("/h5/#/t/{token}"));
    let mut args = vec!["--sms-url", relay.as_str(), "--pages", "1"];
    args.extend_from_slice(extra);
    let summary = run_flow(name, &link, &args).await;
    k.check_signed(dir.path(), &task_id, signer_cn).await;
    let after = k.rows().await;
    // [tasks, documents, versions, evidence, event certificates]: one task, one evidence
    // record, one event certificate, however many times the page had to send.
    assert_eq!(after[0] - before[0], 1, "{before:?} → {after:?}");
    assert_eq!(
        after[3] - before[3],
        1,
        "one evidence record: {before:?} → {after:?}"
    );
    assert_eq!(
        after[4] - before[4],
        1,
        "one event certificate: {before:?} → {after:?}"
    );
    let view = k.view(&task_id).await;
    assert_eq!(view["status"], "signed", "{view}");
    // The link is spent: the page's API refuses it now.
    let r =
        k.s.client
            .get(k.s.url(&format!("/api/v1/h5/tasks/{token}")))
            .send()
            .await
            .unwrap();
    assert!(
        r.status().is_client_error(),
        "a used link still answers {}",
        r.status()
    );
    (k, dir, summary)
}

/// Handwriting with pointer events; the first submit's answer is lost (the request reaches the
/// server, the page sees a network error), the page retries with the same id: one signature.
async fn browser_handwriting_with_network_cut(backend: Backend) {
    let name = match backend {
        Backend::Sqlite => "real-handwriting-sqlite",
        Backend::Postgres => "real-handwriting-postgres",
    };
    let (k, dir, v) = browser_signs(
        backend,
        name,
        task_body("handwriting", &serde_json::json!({})),
        "13800000000",
        "张三",
        &["--mode", "handwriting", "--cut-submit"],
    )
    .await;
    assert_eq!(v["submits"], 2, "{v}");
    // The drawn signature is on the page where the task placed it.
    let ink = ink_in(dir.path(), "signed.pdf", (100, 100, 160, 80));
    assert!(ink > 100, "appearance region has {ink} dark pixels");
    k.s.stop().await;
}
both_backends!(browser_handwriting_with_network_cut);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_long_press_by_a_proxy() {
    let (k, _dir, v) = browser_signs(
        Backend::Sqlite,
        "real-long-press-proxy",
        task_body(
            "long_press",
            &serde_json::json!({"signer": {"role": "proxy", "name": "王五", "phone": "13700000002"}}),
        ),
        "13700000002",
        // The event certificate names the proxy who signed, as entered in the page.
        "张小明",
        &["--mode", "long_press", "--proxy"],
    )
    .await;
    assert!(v["held_ms"].as_u64().unwrap() >= 3000, "{v}");
    k.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_copy_character_by_character() {
    let (k, dir, v) = browser_signs(
        Backend::Postgres,
        "real-copy",
        task_body("copy", &serde_json::json!({"copy_text": "本人同意手术"})),
        "13800000000",
        "张三",
        COPY_FLOW,
    )
    .await;
    assert_eq!(v["chars"], 6, "{v}");
    assert_eq!(v["submits"], 2, "{v}");
    let ink = ink_in(dir.path(), "signed.pdf", (100, 100, 160, 80));
    assert!(ink > 50, "appearance region has {ink} dark pixels");
    k.s.stop().await;
}

/// The touch fallback against the real server: WeChat user agent, no Pointer Events, strokes
/// drawn with CDP touch events; the signed PDF verifies and carries the ink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_wechat_touch_handwriting() {
    let (k, dir, v) = browser_signs(
        Backend::Sqlite,
        "real-wechat-handwriting",
        task_body("handwriting", &serde_json::json!({})),
        "13800000000",
        "张三",
        &["--wechat", "--mode", "handwriting"],
    )
    .await;
    assert_eq!(v["touch"], true, "{v}");
    assert_eq!(v["submits"], 1, "{v}");
    let ink = ink_in(dir.path(), "signed.pdf", (100, 100, 160, 80));
    assert!(ink > 100, "appearance region has {ink} dark pixels");
    k.s.stop().await;
}
