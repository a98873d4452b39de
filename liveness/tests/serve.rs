//! `liveness serve` end to end (issue 10): the real binary on a free loopback port, real models,
//! synthetic cards made by `liveness synth card`, and every error a stranger can cause.
//! The random-body property test drives the router in-process (same code, no sockets).

// Test helpers (here and in the shared `common` module) stop on a broken set-up; pixel
// geometry in `common` casts between float and integer coordinates on purpose.
#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use liveness::imagestore::{ImageStore, sha256_hex};
use liveness::live::Action;
use liveness::models::ModelDir;
use liveness::synth::encode;
use opencv::core::{self, Mat, Scalar};
use serde_json::{Value, json};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_liveness");

/// A running `liveness serve`; killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(if extra.contains(&"--workers") {
                &[][..]
            } else {
                &["--workers", "2"][..]
            })
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn liveness serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("server did not start: {line:?}"))
            .to_owned();
        Self {
            child,
            base: format!("http://{addr}"),
        }
    }

    fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn models() -> ModelDir {
    ModelDir::from_env()
}

/// `liveness synth card`: the photo and the JSON describing the invented person.
fn synth_card(dir: &Path, seed: u64, side: &str, shot: &str) -> (Vec<u8>, Value) {
    let out = dir.join(format!("card-{seed}-{side}-{shot}"));
    let o = Command::new(BIN)
        .args(["synth", "card", "--seed", &seed.to_string(), "--side", side])
        .args(["--shot", shot, "--json", "--out"])
        .arg(&out)
        .output()
        .expect("run synth");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let person: Value = serde_json::from_slice(&o.stdout).expect("json");
    (std::fs::read(&out).expect("photo"), person)
}

/// A multipart/form-data body: (content type, bytes).
fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "yiqian-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, data) in parts {
        write!(
            body,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .expect("write");
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{boundary}--\r\n").expect("write");
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_json(url: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    answer(req.send().await.expect("send")).await
}

async fn post_multipart(url: &str, parts: &[(&str, &[u8])]) -> (u16, Value) {
    let (ctype, body) = multipart(parts);
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", ctype)
        .body(body)
        .send()
        .await
        .expect("send");
    answer(r).await
}

async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, v)
}

/// An error answer: status, code, and both messages present.
fn assert_error(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["code"], code, "{}", got.1);
    assert!(got.1["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(got.1["message_en"].as_str().is_some_and(|m| !m.is_empty()));
}

fn b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

/// A flat grey photo: no card, no face.
fn grey_photo() -> Vec<u8> {
    let m =
        Mat::new_rows_cols_with_default(480, 640, core::CV_8UC3, Scalar::all(128.0)).expect("mat");
    encode(&m, Some(85)).expect("jpeg")
}

/// A PNG whose header claims `w` × `h` pixels; the file is tiny (a decompression bomb's header).
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    for (kind, data) in [
        (*b"IHDR", ihdr.as_slice()),
        (
            *b"IDAT",
            &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01][..],
        ),
        (*b"IEND", &[][..]),
    ] {
        out.extend_from_slice(&u32::try_from(data.len()).expect("len").to_be_bytes());
        out.extend_from_slice(&kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&[0, 0, 0, 0]);
    }
    out
}

/// The front side read through the JSON route; must succeed.
async fn read_front(srv: &Server, photo: &[u8]) -> Value {
    let (status, v) = post_json(
        &srv.url("/v1/idcard/front"),
        &json!({"image": b64(photo)}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocr_of_a_synthetic_card_through_http() {
    let dir = tempfile::tempdir().expect("tmp");
    let srv = Server::start(&[]);
    let (front, person) = synth_card(dir.path(), 11, "front", "clean");
    // JSON with base64.
    let v = read_front(&srv, &front).await;
    let card = &v["card"];
    assert_eq!(card["name"]["value"], person["name"], "{v}");
    assert_eq!(card["id_number"]["value"], person["id_number"], "{v}");
    assert_eq!(card["birth_date"]["value"], person["birth_date"], "{v}");
    assert_eq!(card["sex"]["value"], person["sex"], "{v}");
    assert!(card["name"]["confidence"].as_f64().is_some_and(|c| c > 0.5));
    assert_eq!(v["inconsistencies"], json!([]));
    assert_eq!(v["complete"], true, "{v}");
    assert_eq!(v["image_sha256"], sha256_hex(&front));
    let portrait = STANDARD
        .decode(v["portrait_png"].as_str().expect("portrait"))
        .expect("b64");
    assert!(portrait.starts_with(b"\x89PNG"));

    // Multipart, the back side, degraded.
    let (back, person) = synth_card(dir.path(), 12, "back", "degraded");
    let (status, v) = post_multipart(&srv.url("/v1/idcard/back"), &[("image", &back)]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["authority"]["value"], person["authority"], "{v}");
    let validity = person["validity"].as_str().expect("validity");
    let from = validity[..10].replace('.', "-");
    assert_eq!(v["valid_from"], from, "{v}");
    assert_eq!(v["long_term"], validity.ends_with("长期"));
    assert!(v["expired"].is_boolean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stranger_input_gets_clear_errors() {
    let srv = Server::start(&[]);
    let front = srv.url("/v1/idcard/front");
    // Not an image, empty, bad base64, missing field, not JSON, wrong content type.
    assert_error(
        &post_json(&front, &json!({"image": b64(b"%PDF-1.7 hello")}), None).await,
        415,
        "not_an_image",
    );
    assert_error(
        &post_json(&front, &json!({"image": ""}), None).await,
        400,
        "empty_image",
    );
    assert_error(
        &post_multipart(&front, &[("image", b"")]).await,
        400,
        "empty_image",
    );
    assert_error(
        &post_json(&front, &json!({"image": "**not base64**"}), None).await,
        400,
        "invalid_request",
    );
    assert_error(
        &post_json(&front, &json!({}), None).await,
        400,
        "invalid_request",
    );
    assert_error(
        &post_multipart(&front, &[("photo", b"x")]).await,
        400,
        "invalid_request",
    );
    let r = reqwest::Client::new()
        .post(&front)
        .header("content-type", "application/json")
        .body("{\"image\": ")
        .send()
        .await
        .expect("send");
    assert_error(&answer(r).await, 400, "invalid_request");
    let r = reqwest::Client::new()
        .post(&front)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("send");
    assert_error(&answer(r).await, 400, "invalid_request");

    // A 100-megapixel PNG header: refused from the header, fast, nothing allocated.
    let bomb = png_header(10_000, 10_000);
    let t = Instant::now();
    assert_error(
        &post_json(&front, &json!({"image": b64(&bomb)}), None).await,
        413,
        "image_too_large",
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    // A body over 40 MB is refused from its Content-Length, before it is read.
    let mut s = std::net::TcpStream::connect(srv.addr()).expect("connect");
    write!(
        s,
        "POST /v1/idcard/front HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"image\": \"",
        41 * 1024 * 1024
    )
    .expect("write");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).expect("response before the body");
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("image_too_large"), "{head}");

    // No card on the photo; no face on the photo.
    let grey = grey_photo();
    assert_error(
        &post_json(&front, &json!({"image": b64(&grey)}), None).await,
        422,
        "no_card",
    );
    let astronaut = std::fs::read(models().test_image("astronaut.png")).expect("astronaut");
    assert_error(
        &post_multipart(
            &srv.url("/v1/face/match"),
            &[("probe", &grey), ("reference", &astronaut)],
        )
        .await,
        422,
        "no_face",
    );

    // Unknown route and wrong method: JSON too.
    let r = reqwest::get(srv.url("/v1/nothing")).await.expect("get");
    assert_eq!(answer(r).await.0, 404);
    let r = reqwest::get(srv.url("/v1/idcard/front"))
        .await
        .expect("get");
    assert_eq!(answer(r).await.0, 405);

    // Health says no anti-spoof model runs: it never pretends.
    let (status, h) = answer(reqwest::get(srv.url("/v1/health")).await.expect("get")).await;
    assert_eq!(status, 200);
    assert_eq!(h["status"], "ok");
    assert_eq!(h["anti_spoof"], json!({"status": "absent"}));
    assert!(h["face_threshold"].as_f64().is_some_and(|t| t > 0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_guards_every_route_but_health() {
    let dir = tempfile::tempdir().expect("tmp");
    let tok = dir.path().join("token");
    std::fs::write(&tok, "s3cret-token\n").expect("token");
    let srv = Server::start(&["--token-file", tok.to_str().expect("utf8")]);
    let r = reqwest::get(srv.url("/v1/health")).await.expect("get");
    assert_eq!(r.status().as_u16(), 200);
    for route in [
        "/v1/idcard/front",
        "/v1/idcard/back",
        "/v1/face/match",
        "/v1/liveness/challenges",
        "/v1/liveness/checks",
    ] {
        assert_error(
            &post_json(&srv.url(route), &json!({}), None).await,
            401,
            "unauthorized",
        );
        assert_error(
            &post_json(&srv.url(route), &json!({}), Some("s3cret-tokeN")).await,
            401,
            "unauthorized",
        );
    }
    // The right token passes the guard (and then the empty image is what is wrong).
    assert_error(
        &post_json(
            &srv.url("/v1/idcard/front"),
            &json!({"image": ""}),
            Some("s3cret-token"),
        )
        .await,
        400,
        "empty_image",
    );
    let (status, c) = post_json(
        &srv.url("/v1/liveness/challenges"),
        &json!({}),
        Some("s3cret-token"),
    )
    .await;
    assert_eq!(status, 200, "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_are_random_bounded_and_accepted_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let keyf = dir.path().join("challenge.key");
    let key = [0x5au8; 32];
    std::fs::write(&keyf, hex::encode(key)).expect("key");
    let srv = Server::start(&["--challenge-key-file", keyf.to_str().expect("utf8")]);
    let url = srv.url("/v1/liveness/challenges");
    for n in 2..=4 {
        let (status, c) = post_json(&url, &json!({"steps": n}), None).await;
        assert_eq!(status, 200, "{c}");
        let acts = c["actions"].as_array().expect("actions");
        assert_eq!(acts.len(), n);
        assert!(acts.windows(2).all(|w| w[0] != w[1]), "{c}");
        assert_eq!(c["max_frames_per_step"], 15);
        assert!(c["expires_at"].as_str().is_some_and(|e| e.ends_with('Z')));
    }
    for bad in [
        json!({"steps": 1}),
        json!({"steps": 5}),
        json!({"steps": "3"}),
    ] {
        assert_error(&post_json(&url, &bad, None).await, 400, "invalid_request");
    }
    let (_, c) = post_json(&url, &json!({}), None).await;
    let token = c["challenge"].as_str().expect("token").to_owned();
    let actions: Vec<Value> = c["actions"].as_array().expect("actions").clone();
    let checks = srv.url("/v1/liveness/checks");
    let not_image = b64(b"not an image");
    let steps: Vec<Value> = actions
        .iter()
        .map(|a| json!({"action": a, "frames": [not_image]}))
        .collect();

    // Forged, and the steps out of order.
    assert_error(
        &post_json(&checks, &json!({"challenge": "AAAA", "steps": steps}), None).await,
        400,
        "challenge_invalid",
    );
    let mut reversed = steps.clone();
    // Rotated, not reversed: a challenge like blink, turn_left, blink reads the same backwards.
    reversed.rotate_left(1);
    assert_error(
        &post_json(
            &checks,
            &json!({"challenge": token, "steps": reversed}),
            None,
        )
        .await,
        400,
        "invalid_request",
    );
    // First use is judged (the frames are not images), the second is refused as used.
    assert_error(
        &post_json(&checks, &json!({"challenge": token, "steps": steps}), None).await,
        415,
        "not_an_image",
    );
    assert_error(
        &post_json(&checks, &json!({"challenge": token, "steps": steps}), None).await,
        409,
        "challenge_used",
    );
    // Multipart replays are refused the same way.
    let parts: Vec<(String, &[u8])> = (0..actions.len())
        .map(|i| (format!("step{i}"), &b"x"[..]))
        .collect();
    let mut mp: Vec<(&str, &[u8])> = vec![("challenge", token.as_bytes())];
    mp.extend(parts.iter().map(|(n, d)| (n.as_str(), *d)));
    assert_error(&post_multipart(&checks, &mp).await, 409, "challenge_used");

    // Expired: minted with the shared key three minutes ago.
    let ch =
        liveness::service::challenge::Challenges::with_key(zeroize::Zeroizing::new(key.to_vec()))
            .expect("key");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let acts = [
        liveness::live::Action::Blink,
        liveness::live::Action::TurnLeft,
    ];
    let (old, _) = ch.issue(&acts, now - 180);
    let steps: Vec<Value> = ["blink", "turn_left"]
        .iter()
        .map(|a| json!({"action": a, "frames": [not_image]}))
        .collect();
    assert_error(
        &post_json(&checks, &json!({"challenge": old, "steps": steps}), None).await,
        410,
        "challenge_expired",
    );
    // Too many frames in a step.
    let (fresh, _) = ch.issue(&acts, now);
    let many: Vec<Value> = ["blink", "turn_left"]
        .iter()
        .map(|a| json!({"action": a, "frames": vec![not_image.clone(); 16]}))
        .collect();
    assert_error(
        &post_json(&checks, &json!({"challenge": fresh, "steps": many}), None).await,
        400,
        "invalid_request",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_gives_timeout_then_busy() {
    let dir = tempfile::tempdir().expect("tmp");
    // One worker, a 50 ms deadline: an OCR takes far longer.
    let srv = Server::start(&["--workers", "1", "--timeout-secs", "0.05"]);
    let (front, _) = synth_card(dir.path(), 21, "front", "clean");
    let url = srv.url("/v1/idcard/front");
    let body = json!({"image": b64(&front)});
    assert_error(&post_json(&url, &body, None).await, 503, "timeout");
    // The first analysis still holds the only worker: the next waits out its deadline.
    assert_error(&post_json(&url, &body, None).await, 503, "busy");
}

#[test]
fn start_up_names_every_missing_model() {
    let dir = tempfile::tempdir().expect("tmp");
    let o = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--models"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    for m in liveness::service::required_models() {
        let p: PathBuf = dir.path().join(m.relative_path());
        assert!(
            err.contains(&p.display().to_string()),
            "{m:?} not named: {err}"
        );
    }
    // Store without a key, unusable key: refused before anything starts.
    let o = Command::new(BIN)
        .args(["serve", "--store-images", "/tmp/x"])
        .output()
        .expect("run");
    assert!(!o.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_kept_only_when_configured_and_then_encrypted() {
    let dir = tempfile::tempdir().expect("tmp");
    let keyf = dir.path().join("store.key");
    std::fs::write(&keyf, "000102030405060708090a0b0c0d0e0f").expect("key");
    let store_dir = dir.path().join("kept");
    let srv = Server::start(&[
        "--store-images",
        store_dir.to_str().expect("utf8"),
        "--store-key-file",
        keyf.to_str().expect("utf8"),
    ]);
    let grey = grey_photo();
    // Judged (no card) and kept all the same: what was judged is what is kept.
    assert_error(
        &post_json(
            &srv.url("/v1/idcard/front"),
            &json!({"image": b64(&grey)}),
            None,
        )
        .await,
        422,
        "no_card",
    );
    let store = ImageStore::open(&store_dir, &keyf).expect("open");
    let name = sha256_hex(&grey);
    let raw = std::fs::read(store.path_of(&name)).expect("kept");
    assert!(!raw.windows(16).any(|w| w == &grey[..16]), "kept in clear");
    assert_eq!(store.get(&name).expect("decrypts"), grey);
    let files = std::fs::read_dir(&store_dir).expect("dir").count();
    assert_eq!(files, 1);
    drop(srv);
    // Without --store-images nothing is written anywhere we were given.
    let srv = Server::start(&[]);
    let _ = post_json(
        &srv.url("/v1/idcard/front"),
        &json!({"image": b64(&grey)}),
        None,
    )
    .await;
    assert_eq!(std::fs::read_dir(&store_dir).expect("dir").count(), 1);
}

mod random_bodies {
    use std::sync::{Arc, OnceLock};

    use axum::body::Body;
    use axum::http::Request;
    use liveness::service::{AppState, ServeConfig, router};
    use proptest::prelude::*;
    use tower::ServiceExt as _;

    use super::{b64, models, multipart};

    fn state() -> Arc<AppState> {
        static STATE: OnceLock<Arc<AppState>> = OnceLock::new();
        Arc::clone(STATE.get_or_init(|| {
            AppState::load(ServeConfig {
                listen: "127.0.0.1:0".parse().expect("addr"),
                models: models(),
                token: None,
                timeout: std::time::Duration::from_secs(20),
                workers: 1,
                challenge_key: None,
                store: None,
                anti_spoof: None,
            })
            .expect("models (run scripts/setup.sh)")
        }))
    }

    fn runtime() -> &'static tokio::runtime::Runtime {
        static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        RT.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime")
        })
    }

    const ROUTES: [&str; 6] = [
        "/v1/idcard/front",
        "/v1/idcard/back",
        "/v1/face/match",
        "/v1/liveness/challenges",
        "/v1/liveness/checks",
        "/v1/health",
    ];

    /// (content type, body): raw bytes, JSON with random base64 "images", JSON checks with a
    /// random token, multipart with random parts.
    fn bodies() -> impl Strategy<Value = (String, Vec<u8>)> {
        let bytes = proptest::collection::vec(any::<u8>(), 0..600);
        let names = prop::sample::select(vec![
            "image",
            "probe",
            "reference",
            "challenge",
            "step0",
            "step1",
            "step9",
            "x",
        ]);
        prop_oneof![
            (
                prop::sample::select(vec![
                    "application/json",
                    "multipart/form-data; boundary=b",
                    "multipart/form-data",
                    "text/plain",
                    "",
                ]),
                bytes.clone()
            )
                .prop_map(|(c, b)| (c.to_owned(), b)),
            (names.clone(), bytes.clone()).prop_map(|(n, b)| {
                let v = serde_json::json!({ n: b64(&b), "probe": b64(&b), "steps": 3 });
                ("application/json".to_owned(), v.to_string().into_bytes())
            }),
            (".{0,80}", 0usize..5, bytes.clone()).prop_map(|(tok, n, b)| {
                let steps: Vec<_> = (0..n)
                    .map(|_| serde_json::json!({"action": "blink", "frames": [b64(&b)]}))
                    .collect();
                let v = serde_json::json!({"challenge": tok, "steps": steps});
                ("application/json".to_owned(), v.to_string().into_bytes())
            }),
            proptest::collection::vec((names, bytes), 0..5).prop_map(|parts| {
                let refs: Vec<(&str, &[u8])> =
                    parts.iter().map(|(n, b)| (*n, b.as_slice())).collect();
                multipart(&refs)
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
        #[test]
        fn never_a_server_error(route in prop::sample::select(ROUTES.to_vec()),
                                get in any::<bool>(),
                                (ctype, body) in bodies()) {
            let mut req = Request::builder()
                .method(if get { "GET" } else { "POST" })
                .uri(route);
            if !ctype.is_empty() {
                req = req.header("content-type", ctype);
            }
            let req = req.body(Body::from(body)).expect("request");
            let (status, bytes) = runtime().block_on(async {
                let r = router(state()).oneshot(req).await.expect("infallible");
                let status = r.status();
                (status, axum::body::to_bytes(r.into_body(), 1 << 24).await.expect("body"))
            });
            prop_assert!(status.as_u16() < 500, "{status}: {}", String::from_utf8_lossy(&bytes));
            let v: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON answer");
            if !status.is_success() {
                prop_assert!(v["code"].is_string() && v["message"].is_string() && v["message_en"].is_string());
            }
        }
    }
}

/// Frames as the client sends them (PNG: lossless, so the per-frame noise survives).
fn encoded(steps: &[Vec<Mat>]) -> Vec<Vec<Vec<u8>>> {
    steps
        .iter()
        .map(|s| {
            s.iter()
                .map(|m| {
                    let png = encode(m, None).expect("png");
                    assert!(png.len() < 1024 * 1024, "frame over 1 MB");
                    png
                })
                .collect()
        })
        .collect()
}

async fn new_challenge(srv: &Server, steps: usize) -> (String, Vec<Action>) {
    let (status, c) = post_json(
        &srv.url("/v1/liveness/challenges"),
        &json!({"steps": steps}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{c}");
    let actions = c["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| Action::parse(a.as_str().expect("str")).expect("known action"))
        .collect();
    (c["challenge"].as_str().expect("token").to_owned(), actions)
}

fn check_body(token: &str, actions: &[Action], frames: &[Vec<Vec<u8>>]) -> Value {
    let steps: Vec<Value> = actions
        .iter()
        .zip(frames)
        .map(|(a, f)| json!({"action": a.as_str(), "frames": f.iter().map(|b| b64(b)).collect::<Vec<_>>()}))
        .collect();
    json!({"challenge": token, "steps": steps})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn face_match_and_liveness_through_http() {
    let dir = tempfile::tempdir().expect("tmp");
    let srv = Server::start(&[]);
    let astronaut = std::fs::read(models().test_image("astronaut.png")).expect("astronaut");
    let hopper = std::fs::read(models().test_image("grace_hopper.jpg")).expect("grace hopper");

    // The portrait printed on a synthetic card, as the OCR route returns it, against the photo
    // it was cut from: the same person. Another person: not.
    let (front, _) = synth_card(dir.path(), 31, "front", "clean");
    let card = read_front(&srv, &front).await;
    let portrait = STANDARD
        .decode(card["portrait_png"].as_str().expect("portrait"))
        .expect("b64");
    let (status, m) = post_multipart(
        &srv.url("/v1/face/match"),
        &[("probe", &astronaut), ("reference", &portrait)],
    )
    .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["same_person"], true, "{m}");
    assert!(m["distance"].as_f64().expect("distance") < m["threshold"].as_f64().expect("t"));
    assert_eq!(
        (m["probe_faces"].as_u64(), m["reference_faces"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(m["image_sha256"]["probe"], sha256_hex(&astronaut));
    assert_eq!(m["image_sha256"]["reference"], sha256_hex(&portrait));
    let (status, m) = post_json(
        &srv.url("/v1/face/match"),
        &json!({"probe": b64(&hopper), "reference": b64(&astronaut)}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["same_person"], false, "{m}");

    // Liveness: the actions the service asked for, synthesised on the astronaut's face.
    let engine = common::engine();
    let subject = common::subject(&engine, common::photo("astronaut.png"));
    let (token, actions) = new_challenge(&srv, 3).await;
    let frames = encoded(&common::sequence(&subject, &actions, 5));
    let (status, r) = post_json(
        &srv.url("/v1/liveness/checks"),
        &check_body(&token, &actions, &frames),
        None,
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["passed"], true, "{r}");
    assert_eq!(r["reason"], Value::Null);
    assert_eq!(r["anti_spoof"], json!({"status": "absent"}));
    assert_eq!(r["steps"].as_array().expect("steps").len(), actions.len());
    let total: usize = frames.iter().map(Vec::len).sum();
    assert_eq!(r["image_sha256"].as_array().expect("shas").len(), total);
    let best = STANDARD
        .decode(r["best_frame"].as_str().expect("best frame"))
        .expect("b64");
    // The best frame is a face the match route accepts as the same person.
    let (status, m) = post_multipart(
        &srv.url("/v1/face/match"),
        &[("probe", &best), ("reference", &portrait)],
    )
    .await;
    assert_eq!(
        (status, m["same_person"].clone()),
        (200, json!(true)),
        "{m}"
    );

    // The same still picture for every frame (multipart this time): static, refused.
    let (token, actions) = new_challenge(&srv, 2).await;
    let still = encode(&subject.img, None).expect("png");
    let mut parts: Vec<(String, Vec<u8>)> = vec![("challenge".into(), token.into_bytes())];
    for i in 0..actions.len() {
        for _ in 0..4 {
            parts.push((format!("step{i}"), still.clone()));
        }
    }
    let refs: Vec<(&str, &[u8])> = parts
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let (status, r) = post_multipart(&srv.url("/v1/liveness/checks"), &refs).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["passed"], false, "{r}");
    assert_eq!(r["reason"], "static_sequence", "{r}");
}

/// A tiny ONNX model written byte by byte (protobuf): input `x` float [1, 3, 64, 64], output
/// `y` = ReduceMean(x) (keepdims), i.e. the frame's mean brightness in 0..1. It stands in for a
/// hospital's anti-spoof model to test the adapter's plumbing, not anti-spoofing.
fn mean_brightness_onnx() -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push(u8::try_from(v & 0x7f).expect("7 bits") | 0x80);
            v >>= 7;
        }
        out.push(u8::try_from(v).expect("7 bits"));
    }
    fn bytes(out: &mut Vec<u8>, field: u64, data: &[u8]) {
        varint(out, field << 3 | 2);
        varint(out, data.len() as u64);
        out.extend_from_slice(data);
    }
    fn int(out: &mut Vec<u8>, field: u64, v: u64) {
        varint(out, field << 3);
        varint(out, v);
    }
    let tensor_type = |dims: &[u64]| {
        let mut shape = Vec::new();
        for d in dims {
            let mut dim = Vec::new();
            int(&mut dim, 1, *d);
            bytes(&mut shape, 1, &dim);
        }
        let mut tt = Vec::new();
        int(&mut tt, 1, 1); // FLOAT
        if !dims.is_empty() {
            bytes(&mut tt, 2, &shape);
        }
        let mut ty = Vec::new();
        bytes(&mut ty, 1, &tt);
        ty
    };
    let value_info = |name: &str, dims: &[u64]| {
        let mut vi = Vec::new();
        bytes(&mut vi, 1, name.as_bytes());
        bytes(&mut vi, 2, &tensor_type(dims));
        vi
    };
    let mut attr = Vec::new();
    bytes(&mut attr, 1, b"keepdims");
    int(&mut attr, 3, 1);
    int(&mut attr, 20, 2); // INT
    let mut node = Vec::new();
    bytes(&mut node, 1, b"x");
    bytes(&mut node, 2, b"y");
    bytes(&mut node, 4, b"ReduceMean");
    bytes(&mut node, 5, &attr);
    let mut graph = Vec::new();
    bytes(&mut graph, 1, &node);
    bytes(&mut graph, 2, b"mean_brightness");
    bytes(&mut graph, 11, &value_info("x", &[1, 3, 64, 64]));
    bytes(&mut graph, 12, &value_info("y", &[]));
    let mut opset = Vec::new();
    bytes(&mut opset, 1, b"");
    int(&mut opset, 2, 13);
    let mut model = Vec::new();
    int(&mut model, 1, 7);
    bytes(&mut model, 2, b"yiqian-test");
    bytes(&mut model, 7, &graph);
    bytes(&mut model, 8, &opset);
    model
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_anti_spoof_model_is_run_and_can_fail_the_check() {
    let dir = tempfile::tempdir().expect("tmp");
    let model = dir.path().join("mean-brightness.onnx");
    std::fs::write(&model, mean_brightness_onnx()).expect("model");
    let engine = common::engine();
    let subject = common::subject(&engine, common::photo("astronaut.png"));
    // Threshold 0: any score passes; 0.99: the astronaut photo (mean brightness well below)
    // fails, and so does the whole check although every action was seen.
    for (threshold, want) in [("0", "passed"), ("0.99", "failed")] {
        let srv = Server::start(&[
            "--anti-spoof-model",
            model.to_str().expect("utf8"),
            "--anti-spoof-threshold",
            threshold,
        ]);
        let (_, h) = answer(reqwest::get(srv.url("/v1/health")).await.expect("get")).await;
        assert_eq!(
            h["anti_spoof"],
            json!({"status": "configured", "name": "mean-brightness.onnx"})
        );
        let (token, actions) = new_challenge(&srv, 2).await;
        let frames = encoded(&common::sequence(&subject, &actions, 9));
        let (status, r) = post_json(
            &srv.url("/v1/liveness/checks"),
            &check_body(&token, &actions, &frames),
            None,
        )
        .await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["anti_spoof"]["status"], want, "{r}");
        assert_eq!(r["anti_spoof"]["name"], "mean-brightness.onnx");
        let score = r["anti_spoof"]["score"].as_f64().expect("score");
        assert!(score > 0.05 && score < 0.95, "{r}");
        assert_eq!(r["passed"], want == "passed", "{r}");
        assert!(
            r["steps"]
                .as_array()
                .expect("steps")
                .iter()
                .all(|s| s["passed"] == true),
            "{r}"
        );
    }
    // A model file that is not there: start-up names it.
    let o = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--anti-spoof-model"])
        .arg(dir.path().join("absent.onnx"))
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("absent.onnx"));
}
