//! Documents over HTTP (issue 7): upload, sign with the organisation seal, fetch versions,
//! verify, search — on SQLite and PostgreSQL. Signed files are checked with tools we did not
//! write: qpdf, poppler (pdftoppm), pyHanko + asn1crypto + `openssl pkeyutl` (doc-sign's
//! check_pdf.py).
#![allow(clippy::format_push_string, clippy::cast_possible_wrap)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::both_backends;
use crate::support::{Backend, TestServer, assert_api_error};
use crate::tools::{openssl, run};

/// A one-page A4 PDF with a few lines of Helvetica text, xref offsets computed.
pub fn simple_pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 12 Tf 72 770 Td 14 TL\n");
    for l in lines {
        content.push_str(&format!("({l}) Tj T*\n"));
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>".to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
    ];
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn python() -> String {
    std::env::var("YIQIAN_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn check_pdf_py(dir: &Path, file: &str, pubs: &[&str]) -> serde_json::Value {
    let script: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/doc-sign/tests/py/check_pdf.py");
    let mut args = vec![script.to_str().unwrap().to_owned(), file.to_owned()];
    for p in pubs {
        args.push("--pub".into());
        args.push((*p).to_owned());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(dir, &python(), &argv);
    assert!(o.ok, "check_pdf.py {file}:\n{}", o.text);
    serde_json::from_str(o.text.trim()).unwrap()
}

fn qpdf_check(dir: &Path, file: &str) {
    let o = run(dir, "qpdf", &["--check", file]);
    assert!(
        o.ok && o.text.contains("No syntax or stream encoding errors found"),
        "qpdf --check {file}:\n{}",
        o.text
    );
}

/// Strongly red pixels of a 72-dpi rendering inside a box given in PDF points (y from the bottom).
fn red_pixels_in(png_path: &Path, page_h: u32, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> usize {
    let bytes = std::fs::read(png_path).unwrap();
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let f = r.next_frame(&mut buf).unwrap();
    let ch = match f.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected {other:?}"),
    };
    let w = f.width;
    let mut n = 0;
    for y in (page_h - y1)..(page_h - y0) {
        for x in x0..x1 {
            let i = ((y * w + x) as usize) * ch;
            if buf[i] > 180 && buf[i + 1] < 90 && buf[i + 2] < 90 {
                n += 1;
            }
        }
    }
    n
}

pub async fn upload(s: &TestServer, token: &str, query: &str, body: Vec<u8>) -> reqwest::Response {
    s.client
        .post(s.url(&format!("/api/v1/documents?{query}")))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn get_json(s: &TestServer, token: &str, path: &str) -> serde_json::Value {
    let r = s
        .client
        .get(s.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

async fn get_bytes(s: &TestServer, token: &str, path: &str) -> Vec<u8> {
    let r = s
        .client
        .get(s.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.bytes().await.unwrap().to_vec()
}

fn sm3_hex(b: &[u8]) -> String {
    cosign_server::documents::sm3_hex(b)
}

async fn verify_json(s: &TestServer, token: &str, pdf: &[u8]) -> serde_json::Value {
    let r = s
        .client
        .post(s.url("/api/v1/documents/verify"))
        .bearer_auth(token)
        .body(pdf.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn upload_sign_verify_fetch(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let original = simple_pdf(&["Discharge summary", "Patient P-0001", "Doctor signature:"]);
    let r = upload(
        &s,
        &token,
        "doc_type=%E5%87%BA%E9%99%A2%E8%AE%B0%E5%BD%95&patient_id=P-0001&visit_id=V-77&department=cardiology&filename=summary.pdf",
        original.clone(),
    )
    .await;
    assert_eq!(r.status(), 201);
    let doc: serde_json::Value = r.json().await.unwrap();
    let id = doc["id"].as_str().unwrap().to_owned();
    assert_eq!(doc["doc_type"], "出院记录");
    assert_eq!(doc["status"], "uploaded");
    assert_eq!(doc["versions"].as_array().unwrap().len(), 1);
    assert_eq!(doc["versions"][0]["sm3"], sm3_hex(&original));

    // Sign with the organisation seal, visibly, at (330, 90) 200×110 on page 1.
    let r = s
        .client
        .post(s.url(&format!("/api/v1/documents/{id}/sign")))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "placement": {"type": "coordinates", "page": 1, "x": 330, "y": 90, "width": 200, "height": 110},
            "reason": "机构盖章",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let signed_doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(signed_doc["status"], "signed");
    assert_eq!(signed_doc["current_version"], 2);
    assert_eq!(signed_doc["signed"]["version"], 2);
    assert!(
        signed_doc["signers"][0]
            .as_str()
            .unwrap()
            .contains("电子签章"),
        "{signed_doc}"
    );

    // Version 1 is the upload, unchanged; version 2 the signed PDF, an incremental update of it.
    let v1 = get_bytes(&s, &token, &format!("/api/v1/documents/{id}/versions/1")).await;
    assert_eq!(v1, original);
    let v2 = get_bytes(
        &s,
        &token,
        &format!("/api/v1/documents/{id}/versions/current"),
    )
    .await;
    assert!(v2.starts_with(&original));
    assert_eq!(sm3_hex(&v2), signed_doc["signed"]["sm3"].as_str().unwrap());

    // Our own report: integrity, time stamp, chain to our root, B-LT material, original SM3.
    let rep = verify_json(&s, &token, &v2).await;
    assert_eq!(rep["ok"], true, "{rep}");
    assert_eq!(rep["signature_count"], 1);
    let sig = &rep["signatures"][0];
    assert_eq!(sig["timestamp"]["valid"], true, "{sig}");
    assert_eq!(sig["path"]["valid"], true, "{sig}");
    assert_eq!(sig["original_file_sm3"], sm3_hex(&original));
    assert!(rep["dss"]["ocsp_responses"].as_u64().unwrap() >= 1, "{rep}");
    // The GB/T 38540 seal signature inside the CMS: valid, over the same bytes.
    assert_eq!(sig["electronic_seal"]["valid"], true, "{sig}");
    assert!(
        sig["electronic_seal"]["seal_name"]
            .as_str()
            .unwrap()
            .contains("电子签章"),
        "{sig}"
    );
    assert_eq!(
        sig["electronic_seal"]["property_info"],
        format!("document:{id};version:2")
    );
    assert!(rep["dss"]["crls"].as_u64().unwrap() >= 2, "{rep}");

    // Chinese text and HTML forms.
    for (format, want) in [
        ("text", "全部 1 个签名验证通过"),
        ("html", "<html lang=\"zh-CN\">"),
    ] {
        let r = s
            .client
            .post(s.url(&format!("/api/v1/documents/verify?format={format}")))
            .bearer_auth(&token)
            .body(v2.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(text.contains(want), "{text}");
    }

    // The Chinese report as a PDF: a valid file whose text pdftotext extracts (the verdict,
    // the title), for the signed document and for a tampered copy.
    let mut tampered = v2.clone();
    let at = v2
        .windows(17)
        .position(|w| w == b"Discharge summary")
        .expect("text in the content stream");
    tampered[at] = b'd';
    for (name, file, want) in [
        ("report-ok.pdf", &v2, "结论：全部 1 个签名验证通过。"),
        ("report-bad.pdf", &tampered, "结论：验证未通过"),
    ] {
        let r = s
            .client
            .post(s.url("/api/v1/documents/verify?format=pdf"))
            .bearer_auth(&token)
            .body(file.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/pdf");
        std::fs::write(dir.join(name), r.bytes().await.unwrap()).unwrap();
        qpdf_check(dir, name);
        let o = run(dir, "pdftotext", &["-enc", "UTF-8", name, "-"]);
        assert!(o.ok, "{}", o.text);
        assert!(o.text.contains("医签 文档签名验证报告"), "{}", o.text);
        assert!(o.text.contains(want), "{name}: {}", o.text);
        assert!(o.text.contains(&sm3_hex(file)[..16]), "{}", o.text);
    }

    // Tools we did not write.
    std::fs::write(dir.join("s.pdf"), &v2).unwrap();
    qpdf_check(dir, "s.pdf");
    let seal = get_json(&s, &token, "/api/v1/documents/seal").await;
    std::fs::write(
        dir.join("seal.pem"),
        seal["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    let pubkey = openssl(dir, &["x509", "-in", "seal.pem", "-pubkey", "-noout"]);
    std::fs::write(dir.join("seal.pub.pem"), pubkey).unwrap();
    // Seal and seal signature exported, checked by asn1crypto + openssl (gm-pki's
    // check_seal.py): the seal CA made the seal, the seal key signed the byte ranges' SM3.
    let seseal = <base64::engine::GeneralPurpose as base64::Engine>::decode(
        &base64::engine::general_purpose::STANDARD,
        seal["seseal"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("seal.der"), &seseal).unwrap();
    let ses = get_bytes(
        &s,
        &token,
        &format!("/api/v1/documents/{id}/versions/2/ses-signature"),
    )
    .await;
    std::fs::write(dir.join("ses.der"), &ses).unwrap();
    let seal_ca = s
        .client
        .get(s.url("/pki/seal.pem"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(dir.join("sealca.pem"), seal_ca).unwrap();
    let ca_pub = openssl(dir, &["x509", "-in", "sealca.pem", "-pubkey", "-noout"]);
    std::fs::write(dir.join("sealca.pub.pem"), ca_pub).unwrap();
    let br: Vec<usize> = rep["signatures"][0]["byte_range"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| usize::try_from(v.as_u64().unwrap()).unwrap())
        .collect();
    let mut covered = v2[br[0]..br[0] + br[1]].to_vec();
    covered.extend_from_slice(&v2[br[2]..br[2] + br[3]]);
    let script: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/gm-pki/tests/py/check_seal.py");
    let o = run(
        dir,
        &python(),
        &[
            script.to_str().unwrap(),
            "seal.der",
            "ses.der",
            "sealca.pub.pem",
            "seal.pub.pem",
            &hex::encode(gm_pki::signer::sm3(&covered)),
        ],
    );
    assert!(o.ok && o.text.contains("\"ok\": true"), "{}", o.text);
    let py = check_pdf_py(dir, "s.pdf", &["seal.pub.pem"]);
    assert_eq!(py["ok"], true);
    let attrs = py["signatures"][0]["signed_attrs"].to_string();
    assert!(
        attrs.contains("1.2.156.112233.7.1"),
        "original-file SM3 attribute: {attrs}"
    );
    assert!(
        attrs.contains("1.2.156.112233.7.2"),
        "SES_Signature attribute: {attrs}"
    );
    assert!(
        py["signatures"][0]["unsigned_attrs"]
            .to_string()
            .contains("1.2.840.113549.1.9.16.2.14"),
        "signature time stamp: {py}"
    );
    let o = run(
        dir,
        "pdftoppm",
        &["-png", "-r", "72", "-f", "1", "-l", "1", "s.pdf", "page"],
    );
    assert!(o.ok, "{}", o.text);
    let page = dir.join("page-1.png");
    assert!(
        red_pixels_in(&page, 842, (330, 90, 530, 200)) > 200,
        "seal drawn in its box"
    );
    assert_eq!(
        red_pixels_in(&page, 842, (20, 90, 320, 200)),
        0,
        "nothing red beside it"
    );

    // Tampering with one signed byte is reported.
    let mut bad = v2.clone();
    let at = original.len() / 2;
    bad[at] ^= 0x01;
    let rep = verify_json(&s, &token, &bad).await;
    assert_eq!(rep["ok"], false);

    // Unknown document and version.
    let r = s
        .client
        .get(s.url(&format!("/api/v1/documents/{id}/versions/9")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_api_error(r, 404, "NOT_FOUND").await;

    // The audit chain holds the upload and the signature.
    let audit = get_json(&s, &token, "/api/v1/audit/verify").await;
    assert_eq!(audit["intact"], true, "{audit}");
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY seq")
        .fetch_all(s.db.pool())
        .await
        .unwrap();
    for want in ["documents.upload", "documents.sign"] {
        assert!(
            actions.iter().any(|a| a == want),
            "{want} audited: {actions:?}"
        );
    }
    s.stop().await;
}
both_backends!(upload_sign_verify_fetch);

/// Every file under `root` except empty directories.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

async fn document_count(s: &TestServer) -> i64 {
    use sqlx::Row;
    sqlx::query("SELECT COUNT(*) FROM documents")
        .fetch_one(s.db.pool())
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

async fn bad_uploads_are_refused_and_nothing_is_stored(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.documents.max_upload = 1024 * 1024).await;
    let token = s.admin_token().await;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let good = simple_pdf(&["x"]);
    std::fs::write(dir.join("plain.pdf"), &good).unwrap();
    let o = run(
        dir,
        "qpdf",
        &[
            "--encrypt",
            "user",
            "owner",
            "256",
            "--",
            "plain.pdf",
            "enc.pdf",
        ],
    );
    assert!(o.ok, "{}", o.text);
    let encrypted = std::fs::read(dir.join("enc.pdf")).unwrap();
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 2);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("empty", Vec::new(), 422, "INVALID_DOCUMENT"),
        (
            "garbage",
            b"hello, not a document".to_vec(),
            415,
            "UNSUPPORTED_DOCUMENT_TYPE",
        ),
        ("truncated", truncated, 422, "INVALID_DOCUMENT"),
        ("encrypted", encrypted, 422, "INVALID_DOCUMENT"),
        (
            "header only",
            b"%PDF-1.7\n%%EOF\n".to_vec(),
            422,
            "INVALID_DOCUMENT",
        ),
    ];
    for (what, body, status, code) in cases {
        let started = Instant::now();
        let r = upload(&s, &token, "doc_type=x", body).await;
        let e = assert_api_error(r, status, code).await;
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
        assert!(!e["message"].as_str().unwrap().is_empty(), "{what}");
    }
    // Missing doc_type, unknown parameter.
    assert_api_error(
        upload(&s, &token, "", good.clone()).await,
        400,
        "INVALID_ARGUMENT",
    )
    .await;
    assert_api_error(
        upload(&s, &token, "doc_type=x&colour=red", good.clone()).await,
        400,
        "INVALID_ARGUMENT",
    )
    .await;
    // Over the limit: refused from Content-Length, before the body is read (only 1 KiB sent).
    let started = Instant::now();
    let r = oversized_announced(&s, &token, 200 * 1024 * 1024).await;
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
    assert!(r.contains("PAYLOAD_TOO_LARGE"), "{r}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Over the limit, chunked (no length announced): cut off once past it.
    let r = oversized_chunked(&s, &token, 2 * 1024 * 1024).await;
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
    // No session: 401 before anything.
    let r = s
        .client
        .post(s.url("/api/v1/documents?doc_type=x"))
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_api_error(r, 401, "UNAUTHENTICATED").await;

    assert_eq!(document_count(&s).await, 0);
    let stored: Vec<PathBuf> = files_under(&s.data_dir().join("documents"));
    assert!(stored.is_empty(), "nothing stored: {stored:?}");
    s.stop().await;
}
both_backends!(bad_uploads_are_refused_and_nothing_is_stored);

/// Sends headers announcing `len` bytes and 1 KiB of body over a raw socket; returns what the
/// server answered.
async fn oversized_announced(s: &TestServer, token: &str, len: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/documents?doc_type=x HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/pdf\r\nContent-Length: {len}\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let _ = sock.write_all(&[b'%'; 1024]).await;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf))
        .await
        .expect("answered before the body was sent")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Sends `total` bytes chunked (no Content-Length), ignoring write errors once the server has
/// answered; returns the answer.
async fn oversized_chunked(s: &TestServer, token: &str, total: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://");
    let sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = sock.into_split();
    let head = format!(
        "POST /api/v1/documents?doc_type=x HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/pdf\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let chunk = vec![b'%'; 64 * 1024];
        let mut sent = 0;
        while sent < total {
            wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            wr.write_all(&chunk).await?;
            wr.write_all(b"\r\n").await?;
            sent += chunk.len();
        }
        wr.write_all(b"0\r\n\r\n").await
    });
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), rd.read(&mut buf))
        .await
        .expect("answered")
        .unwrap();
    writer.abort();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

const TYPES: [&str; 5] = ["知情同意书", "出院记录", "检查报告", "处方", "护理记录"];
const DEPTS: [&str; 8] = [
    "心内科",
    "呼吸科",
    "骨科",
    "儿科",
    "妇产科",
    "急诊科",
    "肿瘤科",
    "眼科",
];

/// One generated record: (id, patient, visit, type, department, status, signer, created_at).
struct Gen {
    id: String,
    patient: String,
    visit: String,
    doc_type: &'static str,
    dept: &'static str,
    status: &'static str,
    signer: Option<String>,
    at: i64,
}

fn generate(n: usize, base: i64) -> Vec<Gen> {
    (0..n)
        .map(|i| Gen {
            id: format!("{:08x}-0000-4000-8000-{:012x}", i * 7919 % 1_000_003, i),
            patient: format!("P-{:04}", i % 500),
            visit: format!("V-{:05}", i % 2000),
            doc_type: TYPES[i % TYPES.len()],
            dept: DEPTS[(i / 3) % DEPTS.len()],
            status: if i % 3 == 0 { "signed" } else { "uploaded" },
            signer: (i % 3 == 0).then(|| format!("医师{:02}", i % 50)),
            // One record a minute, some sharing a millisecond so the cursor's id tiebreak matters.
            at: base + (i as i64 / 2) * 60_000,
        })
        .collect()
}

/// Bulk insert in transactions of 10,000 rows, 1,000 rows a statement (8,000 parameters:
/// under SQLite's 32,766 and PostgreSQL's 65,535).
async fn insert_generated(s: &TestServer, rows: &[Gen]) {
    for part in rows.chunks(10_000) {
        insert_generated_tx(s, part).await;
    }
}

async fn insert_generated_tx(s: &TestServer, rows: &[Gen]) {
    let mut tx = s.db.pool().begin().await.unwrap();
    for chunk in rows.chunks(1000) {
        let mut sql = String::from(
            "INSERT INTO documents (id, patient_id, visit_id, doc_type, department, title, status, current_version, created_at, updated_at, created_by) VALUES ",
        );
        for (k, _) in chunk.iter().enumerate() {
            let b = k * 8;
            if k > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, '', ${}, 1, ${}, ${}, 'gen')",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8
            ));
        }
        let mut q = sqlx::query(&sql);
        for g in chunk {
            q = q
                .bind(&g.id)
                .bind(&g.patient)
                .bind(&g.visit)
                .bind(g.doc_type)
                .bind(g.dept)
                .bind(g.status)
                .bind(g.at)
                .bind(g.at);
        }
        q.execute(&mut *tx).await.unwrap();
        let signed: Vec<&Gen> = chunk.iter().filter(|g| g.signer.is_some()).collect();
        if !signed.is_empty() {
            let mut sql = String::from(
                "INSERT INTO document_signers (document_id, version, signer, cert_serial, signed_at) VALUES ",
            );
            for (k, _) in signed.iter().enumerate() {
                let b = k * 3;
                if k > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("(${}, 1, ${}, 'aa', ${})", b + 1, b + 2, b + 3));
            }
            let mut q = sqlx::query(&sql);
            for g in signed {
                q = q.bind(&g.id).bind(g.signer.as_deref().unwrap()).bind(g.at);
            }
            q.execute(&mut *tx).await.unwrap();
        }
    }
    tx.commit().await.unwrap();
}

/// All ids a search returns, following the cursor page by page.
async fn search_all(s: &TestServer, token: &str, query: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut path = format!("/api/v1/documents?{query}&limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let v = get_json(s, token, &path).await;
        let items = v["items"].as_array().unwrap();
        assert!(items.len() <= limit);
        ids.extend(items.iter().map(|d| d["id"].as_str().unwrap().to_owned()));
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return ids,
        }
    }
    panic!("pagination does not end");
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// 100,000 generated records (multi-row INSERTs in transactions), searched through the API by
/// combinations of patient, visit, type, department, status, signer and date range; every
/// result list, followed page by page, must equal the list computed here from the generated
/// rows (newest first, id descending).
async fn search_over_100k_generated_records(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    // 2026-01-01T00:00:00+08:00.
    let base = 1_767_196_800_000;
    let t0 = std::time::Instant::now();
    let rows = generate(100_000, base);
    insert_generated(&s, &rows).await;
    let inserted = t0.elapsed();
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM documents")
        .fetch_one(s.db.pool())
        .await
        .unwrap();
    assert_eq!(count, 100_000);
    // Expected: newest first, then id descending.
    let expect = |f: &dyn Fn(&Gen) -> bool| {
        let mut v: Vec<&Gen> = rows.iter().filter(|g| f(g)).collect();
        v.sort_by(|a, b| (b.at, &b.id).cmp(&(a.at, &a.id)));
        v.into_iter().map(|g| g.id.clone()).collect::<Vec<_>>()
    };
    let day = 86_400_000;
    let cases: Vec<(String, Vec<String>, usize)> = vec![
        (
            "patient_id=P-0042".into(),
            expect(&|g| g.patient == "P-0042"),
            37,
        ),
        (
            "visit_id=V-00042".into(),
            expect(&|g| g.visit == "V-00042"),
            50,
        ),
        (
            "patient_id=P-0042&visit_id=V-00042".into(),
            expect(&|g| g.patient == "P-0042" && g.visit == "V-00042"),
            20,
        ),
        (
            format!("patient_id=P-0007&doc_type={}", enc("检查报告")),
            expect(&|g| g.patient == "P-0007" && g.doc_type == "检查报告"),
            500,
        ),
        (
            format!("doc_type={}&department={}", enc("知情同意书"), enc("骨科")),
            expect(&|g| g.doc_type == "知情同意书" && g.dept == "骨科"),
            500,
        ),
        (
            format!("visit_id=V-01999&department={}", enc("眼科")),
            expect(&|g| g.visit == "V-01999" && g.dept == "眼科"),
            3,
        ),
        (
            format!("status=signed&signer={}", enc("医师12")),
            expect(&|g| g.signer.as_deref() == Some("医师12")),
            100,
        ),
        (
            format!(
                "signer={}&doc_type={}&from=2026-01-05&to=2026-01-20",
                enc("医师30"),
                enc("知情同意书")
            ),
            expect(&|g| {
                g.signer.as_deref() == Some("医师30")
                    && g.doc_type == "知情同意书"
                    && g.at >= base + 4 * day
                    && g.at < base + 19 * day
            }),
            7,
        ),
        (
            // A date range in Beijing days: 2026-01-02 ≤ t < 2026-01-03.
            "from=2026-01-02&to=2026-01-03".into(),
            expect(&|g| g.at >= base + day && g.at < base + 2 * day),
            500,
        ),
        (
            format!(
                "department={}&from={}&to={}",
                enc("儿科"),
                base + 3 * day,
                base + 5 * day
            ),
            expect(&|g| g.dept == "儿科" && g.at >= base + 3 * day && g.at < base + 5 * day),
            41,
        ),
        (
            format!(
                "patient_id=P-0123&department={}&doc_type={}&from={}",
                enc("眼科"),
                enc("处方"),
                base + 10 * day
            ),
            expect(&|g| {
                g.patient == "P-0123"
                    && g.dept == "眼科"
                    && g.doc_type == "处方"
                    && g.at >= base + 10 * day
            }),
            2,
        ),
        (
            format!("status=uploaded&to={}", base + day / 2),
            expect(&|g| g.status == "uploaded" && g.at < base + day / 2),
            250,
        ),
        (
            format!("from={}", base + 34 * day),
            expect(&|g| g.at >= base + 34 * day),
            333,
        ),
        // Contradictory filters and unknown values select nothing.
        ("patient_id=P-0043&visit_id=V-00042".into(), Vec::new(), 10),
        ("patient_id=nobody".into(), Vec::new(), 10),
    ];
    let t1 = std::time::Instant::now();
    let mut pages = 0usize;
    for (query, want, limit) in cases {
        assert!(
            !want.is_empty() || query.contains("nobody") || query.contains("P-0043"),
            "{query} selects something"
        );
        let got = search_all(&s, &token, &query, limit).await;
        pages += got.len() / limit + 1;
        assert_eq!(got.len(), want.len(), "{query}");
        assert_eq!(got, want, "{query}");
    }
    eprintln!(
        "{backend:?}: 100,000 records inserted in {inserted:?}; {pages} result pages checked in {:?}",
        t1.elapsed()
    );
    // Bad parameters.
    for q in [
        "limit=0",
        "limit=501",
        "from=yesterday",
        "cursor=nope",
        "colour=red",
    ] {
        let r = s
            .client
            .get(s.url(&format!("/api/v1/documents?{q}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    }
    s.stop().await;
}
both_backends!(search_over_100k_generated_records);

/// `cosign-server verify FILE`: JSON and Chinese text reports, exit status, no server needed.
async fn cli_verify_prints_reports(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let r = upload(&s, &token, "doc_type=report", simple_pdf(&["CLI"])).await;
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .client
        .post(s.url(&format!("/api/v1/documents/{id}/sign")))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let signed = get_bytes(
        &s,
        &token,
        &format!("/api/v1/documents/{id}/versions/current"),
    )
    .await;
    let root = s
        .client
        .get(s.url("/pki/root.pem"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("s.pdf"), &signed).unwrap();
    std::fs::write(d.path().join("root.pem"), root).unwrap();
    let bin = env!("CARGO_BIN_EXE_cosign-server");
    let o = std::process::Command::new(bin)
        .current_dir(d.path())
        .args(["verify", "s.pdf", "--anchor", "root.pem"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["signatures"][0]["path"]["valid"], true, "{v}");
    let o = std::process::Command::new(bin)
        .current_dir(d.path())
        .args(["verify", "s.pdf", "--format", "text"])
        .output()
        .unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(o.status.success() && text.contains("验证通过"), "{text}");
    // The same report as a PDF on stdout; pdftotext reads the Chinese verdict back.
    let o = std::process::Command::new(bin)
        .current_dir(d.path())
        .args(["verify", "s.pdf", "--format", "pdf"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.starts_with(b"%PDF-"));
    std::fs::write(d.path().join("report.pdf"), &o.stdout).unwrap();
    qpdf_check(d.path(), "report.pdf");
    let t = run(d.path(), "pdftotext", &["-enc", "UTF-8", "report.pdf", "-"]);
    assert!(
        t.ok && t.text.contains("结论：全部 1 个签名验证通过。"),
        "{}",
        t.text
    );
    assert!(t.text.contains("签名 1：有效"), "{}", t.text);
    // An unsigned PDF and a non-PDF: non-zero exit, a reason on stderr.
    std::fs::write(d.path().join("plain.pdf"), simple_pdf(&["x"])).unwrap();
    std::fs::write(d.path().join("junk.pdf"), b"junk").unwrap();
    for f in ["plain.pdf", "junk.pdf"] {
        let o = std::process::Command::new(bin)
            .current_dir(d.path())
            .args(["verify", f])
            .output()
            .unwrap();
        assert!(!o.status.success(), "{f}");
        assert!(!o.stderr.is_empty(), "{f}");
    }
    s.stop().await;
}
both_backends!(cli_verify_prints_reports);

/// A DOCX and a DOC made by LibreOffice from a Chinese text (the independent producer), in `dir`.
pub fn office_files(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    std::fs::write(
        dir.join("record.txt"),
        "知情同意书\n\n患者姓名：王五\n手术名称：阑尾切除术\n\n医师签名：\n",
    )
    .unwrap();
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    for filter in ["docx:MS Word 2007 XML", "doc:MS Word 97"] {
        let o = std::process::Command::new("soffice")
            .args([
                "--headless",
                "--norestore",
                "--convert-to",
                filter,
                "record.txt",
            ])
            .env("HOME", &home)
            .current_dir(dir)
            .output()
            .expect("libreoffice-writer-nogui is required");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    (
        std::fs::read(dir.join("record.docx")).unwrap(),
        std::fs::read(dir.join("record.doc")).unwrap(),
    )
}

/// A 300×200 RGB PNG recorded at 150 dpi (pHYs), red square in the middle.
fn png_150dpi() -> Vec<u8> {
    let (w, h) = (300u32, 200u32);
    let mut px = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let inside = (100..200).contains(&x) && (50..150).contains(&y);
            px.extend_from_slice(if inside {
                &[220, 20, 20]
            } else {
                &[255, 255, 255]
            });
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_pixel_dims(Some(png::PixelDimensions {
        xppu: 5906, // 150 dpi = 5905.5 px/m
        yppu: 5906,
        unit: png::Unit::Meter,
    }));
    enc.write_header().unwrap().write_image_data(&px).unwrap();
    out
}

/// Uploads, checks the versions (original + converted PDF), signs, verifies; returns the PDF.
async fn round_trip(s: &TestServer, token: &str, name: &str, bytes: &[u8], media: &str) -> Vec<u8> {
    let r = upload(
        s,
        token,
        &format!("doc_type=consent&filename={name}"),
        bytes.to_vec(),
    )
    .await;
    assert_eq!(r.status(), 201, "{name}: {}", r.text().await.unwrap());
    let doc: serde_json::Value = r.json().await.unwrap();
    let v = doc["versions"].as_array().unwrap();
    assert_eq!(v.len(), 2, "{doc}");
    assert_eq!(v[0]["kind"], "original");
    assert_eq!(v[0]["media_type"], media);
    assert_eq!(v[0]["sm3"], sm3_hex(bytes));
    assert_eq!(v[1]["kind"], "converted");
    assert_eq!(v[1]["media_type"], "application/pdf");
    let id = doc["id"].as_str().unwrap();
    let r = s
        .client
        .post(s.url(&format!("/api/v1/documents/{id}/sign")))
        .bearer_auth(token)
        // Bottom left, clear of the test image's red square (its text, whose width varies with
        // the random serial, must not cover pixels the image check counts).
        .json(&serde_json::json!({"placement": {"type": "coordinates", "page": 1, "x": 5, "y": 5, "width": 40, "height": 30}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{name}: {}", r.text().await.unwrap());
    let signed = get_bytes(
        s,
        token,
        &format!("/api/v1/documents/{id}/versions/current"),
    )
    .await;
    let rep = verify_json(s, token, &signed).await;
    assert_eq!(rep["ok"], true, "{name}: {rep}");
    // The signature records the SM3 of the file as uploaded, not of the PDF.
    assert_eq!(
        rep["signatures"][0]["original_file_sm3"],
        sm3_hex(bytes),
        "{name}"
    );
    assert_eq!(
        get_bytes(s, token, &format!("/api/v1/documents/{id}/versions/1")).await,
        bytes
    );
    signed
}

async fn office_and_image_uploads_become_signed_pdfs(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let (docx, doc) = office_files(dir);
    let media_docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
    for (name, bytes, media) in [
        ("record.docx", &docx, media_docx),
        ("record.doc", &doc, "application/msword"),
    ] {
        let signed = round_trip(&s, &token, name, bytes, media).await;
        std::fs::write(dir.join("s.pdf"), &signed).unwrap();
        qpdf_check(dir, "s.pdf");
        // The Chinese text survived the conversion.
        let o = run(dir, "pdftotext", &["s.pdf", "-"]);
        assert!(o.text.contains("阑尾切除术"), "{name}: {}", o.text);
    }
    let png = png_150dpi();
    let signed = round_trip(&s, &token, "scan.png", &png, "image/png").await;
    std::fs::write(dir.join("p.pdf"), &signed).unwrap();
    qpdf_check(dir, "p.pdf");
    // 300×200 px at 150 dpi is a 144×96 pt page; the red square renders where it was.
    let info = run(dir, "pdfinfo", &["p.pdf"]);
    let size: Vec<f64> = info
        .text
        .lines()
        .find(|l| l.starts_with("Page size:"))
        .unwrap()
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    assert!(
        (size[0] - 144.0).abs() < 0.1 && (size[1] - 96.0).abs() < 0.1,
        "{}",
        info.text
    );
    let o = run(dir, "pdftoppm", &["-png", "-r", "150", "p.pdf", "page"]);
    assert!(o.ok, "{}", o.text);
    let page = dir.join("page-1.png");
    // At 150 dpi the page is 300×200 px again: pixels 110..190 × 60..140 are red (the seal
    // sits at 10..94 × 127..190).
    assert!(
        red_pixels_in(&page, 200, (110, 60, 190, 140)) > 6000,
        "image kept its place"
    );
    s.stop().await;
}
both_backends!(office_and_image_uploads_become_signed_pdfs);

/// A DOCX whose word/document.xml inflates 1000× (50 MB of zeros), made with Python's zipfile.
pub fn zip_bomb_docx(dir: &Path) -> Vec<u8> {
    let script = [
        "import zipfile, sys",
        "z = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED)",
        "z.writestr('[Content_Types].xml', '<Types/>')",
        "with z.open('word/document.xml', 'w') as f:",
        "    for _ in range(50): f.write(b'0' * (1 << 20))",
        "z.close()",
    ]
    .join("\n");
    std::fs::write(dir.join("bomb.py"), script).unwrap();
    let o = run(dir, &python(), &["bomb.py", "bomb.docx"]);
    assert!(o.ok, "{}", o.text);
    std::fs::read(dir.join("bomb.docx")).unwrap()
}

async fn unsafe_office_files_are_refused(backend: Backend) {
    let s = TestServer::start_with(backend, |c| {
        c.documents.convert.timeout = Duration::from_millis(300);
    })
    .await;
    let token = s.admin_token().await;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let bomb = zip_bomb_docx(dir);
    assert!(
        bomb.len() < 1024 * 1024,
        "the bomb is small: {}",
        bomb.len()
    );
    let started = Instant::now();
    let e = assert_api_error(
        upload(&s, &token, "doc_type=x", bomb).await,
        422,
        "INVALID_DOCUMENT",
    )
    .await;
    assert!(
        e["message_en"].as_str().unwrap().contains("zip bomb"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // A ZIP that is not a Word document, a broken OLE file.
    let mut not_word = b"PK\x03\x04".to_vec();
    not_word.extend_from_slice(&[0; 40]);
    assert_api_error(
        upload(&s, &token, "doc_type=x", not_word).await,
        422,
        "INVALID_DOCUMENT",
    )
    .await;
    // A real DOCX, but the converter gets 300 ms: refused as timed out, and the whole
    // LibreOffice process group is gone afterwards.
    let (docx, _) = office_files(dir);
    let e = assert_api_error(
        upload(&s, &token, "doc_type=x", docx).await,
        422,
        "INVALID_DOCUMENT",
    )
    .await;
    assert!(
        e["message_en"].as_str().unwrap().contains("timed out"),
        "{e}"
    );
    let profile = s.data_dir().join("converter");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let survivors = processes_mentioning(&profile.to_string_lossy());
    assert!(
        survivors.is_empty(),
        "converter processes left: {survivors:?}"
    );
    assert_eq!(document_count(&s).await, 0);
    assert!(
        files_under(&s.data_dir().join("documents")).is_empty(),
        "nothing stored"
    );
    s.stop().await;
}
both_backends!(unsafe_office_files_are_refused);

/// Command lines of running processes that contain `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                out.push(cmd);
            }
        }
    }
    out
}
