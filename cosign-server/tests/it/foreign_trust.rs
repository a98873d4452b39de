//! Verifying other producers' PDFs against external CAs (issue 7): a hospital uploads another
//! CA's root (ECDSA P-256 or RSA, made here by the OpenSSL CLI) and its CRL; a PDF that pyHanko
//! signed with a certificate of that CA then verifies with a valid path through
//! `POST /api/v1/documents/verify`, and is reported revoked once the uploaded CRL says so.

use std::path::{Path, PathBuf};

use crate::both_backends;
use crate::documents::simple_pdf;
use crate::support::{Backend, TestServer};
use crate::tools::{openssl, run};

/// A root made with `newkey` and a document-signing certificate it issued (`signer.pem`), plus
/// `openssl ca`'s state to revoke it later.
fn foreign_pki(dir: &Path, newkey: &[&str]) {
    let mut root = vec!["req", "-x509"];
    root.extend_from_slice(newkey);
    root.extend_from_slice(&[
        "-nodes",
        "-keyout",
        "root.key",
        "-out",
        "root.pem",
        "-days",
        "3650",
        "-subj",
        "/CN=Other Hospital Root CA/O=Other Hospital",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &root);
    let mut req = vec!["req", "-new"];
    req.extend_from_slice(newkey);
    req.extend_from_slice(&[
        "-nodes",
        "-keyout",
        "signer.key",
        "-out",
        "signer.csr",
        "-subj",
        "/CN=Other Doctor/O=Other Hospital",
    ]);
    openssl(dir, &req);
    std::fs::write(
        dir.join("signer.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "signer.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "365",
            "-sha256",
            "-extfile",
            "signer.ext",
            "-out",
            "signer.pem",
        ],
    );
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
         default_md = sha256\ndefault_crl_days = 30\n",
    )
    .unwrap();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
}

/// The root's CRL (PEM), after revoking `signer.pem` when asked.
fn crl(dir: &Path, revoke_signer: bool) -> String {
    let ca = [
        "-config", "ca.cnf", "-keyfile", "root.key", "-cert", "root.pem",
    ];
    if revoke_signer {
        let mut a = vec!["ca", "-revoke", "signer.pem"];
        a.extend_from_slice(&ca);
        openssl(dir, &a);
    }
    let mut a = vec!["ca", "-gencrl", "-out", "crl.pem"];
    a.extend_from_slice(&ca);
    openssl(dir, &a);
    std::fs::read_to_string(dir.join("crl.pem")).unwrap()
}

fn pyhanko_sign(dir: &Path) -> Vec<u8> {
    std::fs::write(
        dir.join("in.pdf"),
        simple_pdf(&["Referral letter", "from another hospital"]),
    )
    .unwrap();
    let script: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/doc-sign/tests/py/pyhanko_sign.py");
    let python = std::env::var("YIQIAN_PYTHON").unwrap_or_else(|_| "python3".into());
    let o = run(
        dir,
        &python,
        &[
            script.to_str().unwrap(),
            "in.pdf",
            "out.pdf",
            "signer.key",
            "signer.pem",
        ],
    );
    assert!(o.ok, "pyhanko_sign.py: {}", o.text);
    std::fs::read(dir.join("out.pdf")).unwrap()
}

async fn post_json(s: &TestServer, token: &str, path: &str, body: serde_json::Value) -> u16 {
    let r = s
        .client
        .post(s.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert!(status < 300, "{path}: {status} {}", r.text().await.unwrap());
    status
}

async fn path_of(s: &TestServer, token: &str, pdf: &[u8]) -> serde_json::Value {
    let r = s
        .client
        .post(s.url("/api/v1/documents/verify"))
        .bearer_auth(token)
        .body(pdf.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let sig = &v["signatures"][0];
    assert_eq!(sig["signature_ok"], true, "{v}");
    sig["path"].clone()
}

async fn foreign_pdf_against_external_anchor(
    s: &TestServer,
    token: &str,
    tag: &str,
    newkey: &[&str],
) {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    foreign_pki(dir, newkey);
    let pdf = pyhanko_sign(dir);

    // Before the other hospital's root is trusted: intact, but no path.
    let p = path_of(s, token, &pdf).await;
    assert_eq!(p["valid"], false, "{tag}: {p}");

    let root = std::fs::read_to_string(dir.join("root.pem")).unwrap();
    post_json(
        s,
        token,
        "/api/v1/pki/external/anchors",
        serde_json::json!({ "certificates": root }),
    )
    .await;
    let p = path_of(s, token, &pdf).await;
    assert_eq!(p["valid"], true, "{tag}: {p}");
    assert!(
        p["chain"].to_string().contains("Other Hospital Root CA"),
        "{p}"
    );

    // Its CRL, uploaded: first empty (still valid), then revoking the signer.
    post_json(
        s,
        token,
        "/api/v1/pki/external/crls",
        serde_json::json!({ "crls": crl(dir, false) }),
    )
    .await;
    assert_eq!(path_of(s, token, &pdf).await["valid"], true, "{tag}");
    // A stored CRL is replaced only by one with a later thisUpdate (whole seconds).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    post_json(
        s,
        token,
        "/api/v1/pki/external/crls",
        serde_json::json!({ "crls": crl(dir, true) }),
    )
    .await;
    let p = path_of(s, token, &pdf).await;
    assert_eq!(p["valid"], false, "{tag}: {p}");
    assert!(
        p["error"].as_str().unwrap_or("").contains("revoked"),
        "{tag}: {p}"
    );
}

async fn foreign_pdfs_verify_against_external_cas(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    foreign_pdf_against_external_anchor(
        &s,
        &token,
        "ECDSA P-256",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    )
    .await;
    foreign_pdf_against_external_anchor(&s, &token, "RSA-2048", &["-newkey", "rsa:2048"]).await;
    s.stop().await;
}
both_backends!(foreign_pdfs_verify_against_external_cas);
