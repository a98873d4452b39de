//! Integration tests: signed PDFs checked by tools we did not write (qpdf, poppler, pyHanko,
//! asn1crypto + OpenSSL), input PDFs from several producers (pdf-writer, LibreOffice, qpdf object
//! streams, forms, incremental updates), tampering, and hostile bytes. Every tool is required: a
//! missing one fails the tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::single_match_else,
    clippy::single_match,
    dead_code
)]

#[path = "../../../gm-pki/tests/it/testca.rs"]
#[allow(missing_debug_implementations)]
mod testca;

mod fieldmdp;
mod fixtures;
mod foreign;
mod fuzz;
mod sign;
mod tamper;
mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Fixed "now" for every test: time is a parameter.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

/// One test CA for the whole binary (key generation is the slow part).
pub fn ca() -> &'static testca::TestCa {
    static CA: OnceLock<testca::TestCa> = OnceLock::new();
    CA.get_or_init(|| testca::TestCa::new(now()))
}

pub fn tsa() -> doc_sign::LocalTsa<'static> {
    let ca = ca();
    doc_sign::LocalTsa {
        tsa: gm_pki::tsp::Tsa {
            cert: &ca.tsa.cert,
            chain: std::slice::from_ref(&ca.int.cert),
            signer: &ca.tsa.key,
            policy: "1.2.156.112233.9.1".parse().unwrap(),
            accuracy_seconds: 1,
        },
        time: now() + Duration::from_secs(2),
        serial: vec![0x01, 0x23],
    }
}

pub fn staff() -> doc_sign::SignerIdentity<'static> {
    let ca = ca();
    doc_sign::SignerIdentity {
        cert: &ca.staff.cert,
        chain: std::slice::from_ref(&ca.int.cert),
        key: &ca.staff.key,
    }
}

pub fn tmpdir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "doc-sign-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[derive(Debug)]
pub struct Out {
    pub ok: bool,
    pub text: String,
    pub stdout: Vec<u8>,
}

/// Run a program; a program that cannot be started fails the test (never skips).
pub fn run(dir: &Path, prog: &str, args: &[&str]) -> Out {
    let o = Command::new(prog)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog} (required by the doc-sign tests; see scripts/apt-packages-test.txt): {e}"));
    Out {
        ok: o.status.success(),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        stdout: o.stdout,
    }
}

pub fn python() -> String {
    std::env::var("YIQIAN_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// qpdf --check must pass (exit 0, or 3 = warnings only is NOT accepted).
pub fn qpdf_check(dir: &Path, file: &str) -> String {
    let o = run(dir, "qpdf", &["--check", file]);
    assert!(o.ok, "qpdf --check {file} failed:\n{}", o.text);
    assert!(
        o.text.contains("No syntax or stream encoding errors found"),
        "{}",
        o.text
    );
    o.text
}

/// Write the signer's public key and run tests/py/check_pdf.py with one key per signature.
pub fn check_pdf_py(dir: &Path, file: &str, signatures: usize) -> serde_json_lite::Value {
    let ca = ca();
    let pubpem =
        gm_pki::signer::public_key_pem(&gm_pki::Sm2Signer::public_key(&ca.staff.key)).unwrap();
    std::fs::write(dir.join("staff.pub.pem"), pubpem).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/check_pdf.py");
    let mut args = vec![script.to_str().unwrap().to_owned(), file.to_owned()];
    for _ in 0..signatures {
        args.push("--pub".into());
        args.push("staff.pub.pem".into());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(dir, &python(), &argv);
    assert!(o.ok, "check_pdf.py {file}:\n{}", o.text);
    serde_json_lite::Value(o.text)
}

/// Minimal holder for the script's JSON line (we only search it).
pub mod serde_json_lite {
    #[derive(Debug)]
    pub struct Value(pub String);
    impl Value {
        pub fn has(&self, s: &str) -> bool {
            self.0.contains(s)
        }
    }
}
