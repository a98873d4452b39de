//! The real binary: first start, banner, SIGINT shutdown, init/migrate/audit/--help/--version.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cosign-server");

fn cmd(dir: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_remove("COSIGN_DATA")
        .env_remove("COSIGN_LISTEN")
        .env_remove("COSIGN_DATABASE_URL")
        .env_remove("COSIGN_CONFIG");
    c
}

#[test]
fn serve_initialises_prints_urls_and_stops_cleanly_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = cmd(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("COSIGN_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    let mut base = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.split("listening on ").nth(1) {
            base = Some(rest.trim().to_owned());
        }
        let done = line.contains("Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    let banner = banner.join("\n");
    let base = base.unwrap_or_else(|| panic!("no listen line in:\n{banner}"));
    assert!(banner.contains("one-time password"), "{banner}");
    assert!(
        banner.contains("/healthz") && banner.contains("/readyz"),
        "{banner}"
    );
    assert!(
        dir.path().join("cosign.toml").exists(),
        "config created with defaults on first start"
    );
    assert!(
        dir.path().join("data/yiqian.db").exists(),
        "SQLite database under ./data"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(
            reqwest::get(format!("{base}/healthz"))
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            reqwest::get(format!("{base}/readyz"))
                .await
                .unwrap()
                .status(),
            200
        );
    });

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);
    assert!(stderr.contains("shut down cleanly"), "{stderr}");
    assert!(
        stderr.lines().all(|l| l.starts_with('{')),
        "COSIGN_LOG_FORMAT=json gives JSON lines:\n{stderr}"
    );
    assert!(
        !stderr.contains(
            banner
                .split("one-time password: ")
                .nth(1)
                .unwrap_or("@@")
                .lines()
                .next()
                .unwrap_or("@@")
        ),
        "password never logged"
    );

    // Second start: no new administrator, audit chain intact.
    let out = cmd(dir.path()).args(["audit", "verify"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        // system.init, master.init, secret.import (audit MAC key), key.generate × 8, pki.init,
        // secret.import (resident-ID key)
        String::from_utf8_lossy(&out.stdout).contains("intact: 13 entries"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = cmd(dir.path()).args(["init"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already initialised"));
}

#[test]
fn init_migrate_help_version() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let out = cmd(dir.path())
        .args(["migrate", "--data", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cmd(dir.path())
        .args(["init", "--admin", "root", "--data", data.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("root") && stdout.contains("one-time password"),
        "{stdout}"
    );

    let out = cmd(dir.path()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "migrate", "init", "启动服务", "run the server"] {
        assert!(help.contains(word), "{word} missing in\n{help}");
    }
    let out = cmd(dir.path()).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));

    // A typo in the configuration file is refused with the key named, nothing started.
    std::fs::write(dir.path().join("cosign.toml"), "lissen = \"127.0.0.1:1\"\n").unwrap();
    let out = cmd(dir.path()).args(["migrate"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lissen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
