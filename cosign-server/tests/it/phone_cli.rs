//! The `cosign-phone` CLI run as a process, as an integrator runs it: enrol from an
//! activation link (PIN on standard input), sign a terminal's QR link, list tasks. The
//! signature it makes verifies independently (asn1crypto + `openssl pkeyutl`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::{Value, json};

use crate::cosign::{Terminal, add_staff, check_independently};
use crate::support::{Backend, TestServer};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The `cosign-phone` binary next to this test binary.
fn cosign_phone() -> PathBuf {
    workspace_bin("cosign-phone")
}

/// A workspace binary next to this test binary, brought up to date first (a test run does not
/// build other packages' binaries, and one left from an earlier build may be stale; cargo's
/// check takes a second when nothing changed). `--workspace` keeps the features of shared
/// dependencies those of the workspace test build, so nothing is compiled a second time.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "--workspace", "--bin", name, "--target-dir"])
        .arg(profile_dir.parent().unwrap())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cannot build {name}");
    profile_dir.join(name)
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// `cosign-phone --state STATE ARGS…` with `stdin` written to it.
async fn phone(state: &Path, args: &[&str], stdin: &str) -> Run {
    let (bin, state, stdin) = (cosign_phone(), state.to_owned(), stdin.to_owned());
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(bin)
            .arg("--state")
            .arg(&state)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The CLI may exit before reading its PIN (a refused link): a broken pipe here is
        // part of what is being tested, so only other write errors fail.
        if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        let out = child.wait_with_output().unwrap();
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosign_phone_cli_enrols_and_signs() {
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let terminal = Terminal::signing(&s, &token).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("phone.json");

    // Enrol from the administrator's activation link; the PIN comes from stdin.
    let link = add_staff(&s, &token, "D201", "王医生").await;
    let r = phone(&state, &["enroll", &link, "--name", "CLI 测试"], "135790\n").await;
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    let enrolled: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert!(
        enrolled["serial"].as_str().is_some_and(|s| !s.is_empty()),
        "{enrolled}"
    );
    assert!(state.exists());
    // The link is single use: a second enrolment fails with a message and a non-zero exit.
    let again = phone(
        &dir.path().join("other.json"),
        &["enroll", &link],
        "135790\n",
    )
    .await;
    assert!(
        !again.ok && again.stderr.starts_with("cosign-phone: "),
        "{}",
        again.stderr
    );
    assert!(!dir.path().join("other.json").exists());
    // Not an activation link at all.
    let junk = phone(
        &dir.path().join("x.json"),
        &["enroll", "https://example.org/"],
        "1\n",
    )
    .await;
    assert!(
        !junk.ok && junk.stderr.contains("not a yiqian://activate link"),
        "{}",
        junk.stderr
    );

    // A terminal's request shows up in the task list, then is signed from its QR link.
    let content = "出院小结\n患者：赵六".as_bytes();
    let created = terminal
        .create(&json!({
            "signers": ["D201"], "title": "出院小结", "doc_type": "出院小结", "department": "骨科",
            "documents": [{"name": "出院小结", "content": B64.encode(content), "media_type": "text/plain"}]
        }))
        .await;
    let id = created["request_id"].as_str().unwrap();
    let tasks = phone(&state, &["tasks"], "").await;
    assert!(tasks.ok, "{}", tasks.stderr);
    assert!(tasks.stdout.contains(id), "{}", tasks.stdout);
    let link = created["qr_payload"].as_str().unwrap();
    let wrong = phone(&state, &["sign", link], "000000\n").await;
    assert!(!wrong.ok, "a wrong PIN signed: {}", wrong.stdout);
    assert_eq!(terminal.view(id).await["status"], "pending");
    let signed = phone(&state, &["sign", link], "135790\n").await;
    assert!(signed.ok, "{}{}", signed.stdout, signed.stderr);
    let outcome: Value = serde_json::from_str(signed.stdout.trim()).unwrap();
    assert_eq!(outcome["items"][0]["ok"], true, "{outcome}");

    let view = terminal.view(id).await;
    assert_eq!(view["status"], "completed");
    let sig = &view["signatures"][0];
    assert_eq!(sig["certificate_serial"], enrolled["serial"]);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let cert_der = B64.decode(saved["certificate"].as_str().unwrap()).unwrap();
    check_independently(
        dir.path(),
        "cli",
        sig["cms"].as_str().unwrap(),
        content,
        &cert_der,
    );

    // Unbind: the state file goes, and a copy kept of it is refused by the server.
    let kept = dir.path().join("kept.json");
    std::fs::copy(&state, &kept).unwrap();
    let unbound = phone(&state, &["unbind", "--reason", "换机"], "").await;
    assert!(unbound.ok, "{}{}", unbound.stdout, unbound.stderr);
    let unbound: Value = serde_json::from_str(unbound.stdout.trim()).unwrap();
    assert_eq!(unbound["device_id"], enrolled["device_id"]);
    assert_eq!(unbound["certificate_revoked"], false);
    assert!(!state.exists());
    let after = phone(&kept, &["tasks"], "").await;
    assert!(!after.ok, "a revoked device listed tasks: {}", after.stdout);
    s.stop().await;
}
