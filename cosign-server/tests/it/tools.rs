//! External verifiers for the PKI tests: OpenSSL and Python asn1crypto (`$YIQIAN_PYTHON`,
//! default `python3`), plus gm-pki's helper scripts. A missing tool fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Output of a tool run.
pub struct Out {
    pub ok: bool,
    pub text: String,
}

pub fn run(dir: &Path, prog: &str, args: &[&str]) -> Out {
    let o = Command::new(prog)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog} (required by the PKI tests): {e}"));
    Out {
        ok: o.status.success(),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

/// Runs openssl and requires success.
pub fn openssl(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, "openssl", args);
    assert!(o.ok, "openssl {args:?} failed:\n{}", o.text);
    o.text
}

/// Writes a DER certificate as `{stem}.crt` in `dir` and, converted by OpenSSL, as `{stem}.pem`.
pub fn cert_pem(dir: &Path, stem: &str, der: &[u8]) {
    let (crt, pem) = (format!("{stem}.crt"), format!("{stem}.pem"));
    std::fs::write(dir.join(&crt), der).unwrap();
    openssl(dir, &["x509", "-inform", "DER", "-in", &crt, "-out", &pem]);
}

/// Runs one of gm-pki's independent checkers (`shared/gm-pki/tests/py/`) and requires success.
pub fn py(dir: &Path, script: &str, args: &[&str]) -> String {
    let script: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/gm-pki/tests/py")
        .join(script);
    let python = std::env::var("YIQIAN_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut all = vec![script.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = run(dir, &python, &all);
    assert!(o.ok, "{} {args:?} failed:\n{}", script.display(), o.text);
    o.text
}

/// The value of `"key": value` in a flat JSON line printed by the helper scripts.
pub fn json_field(json: &str, key: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"));
    v[key].clone()
}

/// An SM2 key and a CSR made by OpenSSL (with the SM2 ID), in `dir`.
pub fn openssl_csr(dir: &Path, stem: &str, subject: &str) -> String {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:SM2",
            "-out",
            &format!("{stem}.key"),
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &format!("{stem}.key"),
            "-subj",
            subject,
            "-utf8",
            "-sm3",
            "-sigopt",
            "distid:1234567812345678",
            "-out",
            &format!("{stem}.csr"),
        ],
    );
    std::fs::read_to_string(dir.join(format!("{stem}.csr"))).unwrap()
}

/// `libsdf_soft.so`, the SDF test library: next to the test binary (a dev-dependency makes cargo
/// build it there), or built on demand into the same target directory.
pub fn sdf_soft_library() -> std::path::PathBuf {
    const LIB: &str = "libsdf_soft.so";
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    let profile_dir = deps.parent().unwrap().to_path_buf();
    for d in [&deps, &profile_dir] {
        if d.join(LIB).is_file() {
            return d.join(LIB);
        }
    }
    let target = profile_dir.parent().unwrap();
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "-p", "sdf-soft", "--lib"])
            .env("CARGO_TARGET_DIR", target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
    assert!(status.success(), "cargo build -p sdf-soft failed");
    let p = target.join("debug").join(LIB);
    assert!(p.is_file(), "{} not found", p.display());
    p
}
