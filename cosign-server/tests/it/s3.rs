//! The S3-compatible document store (`documents::S3Store`, object_store) against moto's S3
//! server (`moto[server]` from the test venv, started here on a loopback port, stopped at the
//! end): content addressing, idempotent puts, absent and malformed names, and a corrupted
//! object refused on read. A missing moto fails the test.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cosign_server::documents::{BlobStore, S3Settings, S3Store, sm3_hex};

/// A moto S3 server on 127.0.0.1, killed (by its own pid) when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let python = std::env::var("YIQIAN_PYTHON").unwrap_or_else(|_| "python3".into());
    let child = Command::new(&python)
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start moto ({python} -m moto.server; moto[server] is in scripts/requirements-test.txt): {e}"));
    let moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if client.get(&moto.url).send().await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "moto did not start on {}",
            moto.url
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    moto
}

/// boto3 (installed with moto) gets or puts one object, independently of object_store.
fn boto3(url: &str, op: &str, bucket: &str, key: &str, body: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write as _;
    let python = std::env::var("YIQIAN_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = "import boto3, sys\n\
c = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')\n\
if sys.argv[2] == 'get':\n    sys.stdout.buffer.write(c.get_object(Bucket=sys.argv[3], Key=sys.argv[4])['Body'].read())\n\
else:\n    c.put_object(Bucket=sys.argv[3], Key=sys.argv[4], Body=sys.stdin.buffer.read())\n";
    let mut child = Command::new(&python)
        .args(["-c", script, url, op, bucket, key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.unwrap_or_default())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "boto3 {op}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

fn settings(url: &str, bucket: &str) -> S3Settings {
    S3Settings {
        endpoint: url.to_owned(),
        bucket: bucket.to_owned(),
        region: "us-east-1".into(),
        access_key_id: "test".into(),
        secret_access_key: zeroize::Zeroizing::new("s3cr3t-value".into()),
        prefix: "documents".into(),
        allow_http: true,
    }
}

#[tokio::test]
async fn s3_store_against_moto() {
    let moto = start_moto().await;
    let client = reqwest::Client::new();
    // moto checks no signatures: a bare PUT creates the bucket.
    let r = client
        .put(format!("{}/yiqian-docs", moto.url))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "create bucket: {}", r.status());
    let store = S3Store::open(&settings(&moto.url, "yiqian-docs")).unwrap();

    let pdf = b"%PDF-1.7 a document".to_vec();
    let a = store.put(pdf.clone()).await.unwrap();
    assert_eq!(a, sm3_hex(&pdf));
    // The same bytes again: same address, no error (conditional create or overwrite with the
    // same bytes, depending on the server).
    assert_eq!(store.put(pdf.clone()).await.unwrap(), a);
    assert_eq!(store.get(&a).await.unwrap().unwrap(), pdf);
    // The object is where the layout says, with exactly these bytes (read by boto3, not by
    // our code).
    let key = format!("documents/{}/{a}", &a[..2]);
    assert_eq!(boto3(&moto.url, "get", "yiqian-docs", &key, None), pdf);
    // Absent and malformed names.
    assert!(store.get(&"0".repeat(64)).await.unwrap().is_none());
    assert!(store.get("../../etc/passwd").await.unwrap().is_none());
    assert!(store.get(&"A".repeat(64)).await.unwrap().is_none());
    // Larger file (4 MiB) round trip.
    let big: Vec<u8> = (0..4 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let b = store.put(big.clone()).await.unwrap();
    assert_eq!(store.get(&b).await.unwrap().unwrap(), big);
    // An object replaced behind our back is refused, not served.
    boto3(
        &moto.url,
        "put",
        "yiqian-docs",
        &key,
        Some(b"%PDF-1.7 a documenT"),
    );
    assert!(store.get(&a).await.is_err());
    // A bucket that does not exist is an error, not "absent".
    let missing = S3Store::open(&settings(&moto.url, "no-such-bucket")).unwrap();
    assert!(missing.put(b"x".to_vec()).await.is_err());
    // Settings are checked; the secret is not printed.
    let mut bad = settings(&moto.url, "yiqian-docs");
    bad.prefix = "a/../b".into();
    assert!(S3Store::open(&bad).is_err());
    assert!(!format!("{:?}", settings(&moto.url, "b")).contains("s3cr3t"));
}

/// The documents service configured with the S3 store: upload, sign with the organisation
/// seal, fetch; the original and the signed PDF are objects in the bucket, nothing is written to
/// `<data_dir>/documents`, and the fetched PDF verifies.
async fn documents_service_on_s3(backend: crate::support::Backend) {
    let moto = start_moto().await;
    let client = reqwest::Client::new();
    let r = client
        .put(format!("{}/yiqian-archive", moto.url))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let url = moto.url.clone();
    let s = crate::support::TestServer::start_with(backend, move |c| {
        c.documents.s3 = Some(settings(&url, "yiqian-archive"));
    })
    .await;
    let token = s.admin_token().await;
    let pdf = crate::documents::simple_pdf(&["Stored in S3"]);
    let r =
        crate::documents::upload(&s, &token, "doc_type=report&patient_id=P-1", pdf.clone()).await;
    assert_eq!(r.status(), 201);
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
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = s
        .client
        .get(s.url(&format!("/api/v1/documents/{id}/versions/current")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let signed = r.bytes().await.unwrap().to_vec();
    assert!(signed.starts_with(&pdf));
    assert!(doc_sign::verify_pdf(&signed).unwrap().ok());
    // Both files are objects in the bucket (listed by moto, not by our code).
    let list = client
        .get(format!(
            "{}/yiqian-archive?list-type=2&prefix=documents/",
            moto.url
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for f in [&pdf, &signed] {
        let h = sm3_hex(f);
        assert!(
            list.contains(&format!("documents/{}/{h}", &h[..2])),
            "{list}"
        );
    }
    assert!(
        !s.data_dir().join("documents").exists()
            || std::fs::read_dir(s.data_dir().join("documents"))
                .unwrap()
                .all(|e| e.unwrap().file_name() == "tmp"),
        "nothing stored locally"
    );
    s.stop().await;
}
crate::both_backends!(documents_service_on_s3);
