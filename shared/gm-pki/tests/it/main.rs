//! Integration tests: our outputs checked with OpenSSL and Python asn1crypto, their outputs
//! parsed by us. OpenSSL and Python are required: a missing tool fails the tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod testca;

mod certs;
mod cms;
mod cosigned_csr;
mod crl;
mod foreign_cms;
mod fuzz;
mod ocsp;
mod path;
mod seal;
mod tsp;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir (kept on failure for inspection).
pub fn tmpdir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "gm-pki-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Output of a tool run: status, stdout + stderr.
#[derive(Debug)]
pub struct Out {
    pub ok: bool,
    pub text: String,
}

/// Run a command in `dir`; panics (fails the test) if the program cannot be started.
pub fn run(dir: &Path, prog: &str, args: &[&str]) -> Out {
    let o = Command::new(prog)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog} (required by the gm-pki tests): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    Out {
        ok: o.status.success(),
        text,
    }
}

/// Run openssl and require success.
pub fn openssl(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, "openssl", args);
    assert!(o.ok, "openssl {args:?} failed:\n{}", o.text);
    o.text
}

/// The Python interpreter with asn1crypto: `$YIQIAN_PYTHON` or `python3`.
pub fn python() -> String {
    std::env::var("YIQIAN_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Run one of the helper scripts in tests/py and require success.
pub fn py(dir: &Path, script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let mut all = vec![path.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = run(dir, &python(), &all);
    assert!(o.ok, "{script} {args:?} failed:\n{}", o.text);
    o.text
}
