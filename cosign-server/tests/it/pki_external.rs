//! Certificates from an external CA: a real SM2 CA built with the OpenSSL CLI (`openssl ca`,
//! root → intermediate) signs the CSR our server made for a key in its crypto device; the
//! root and intermediate are uploaded as trust anchors, the certificate imported, listed,
//! served and checked by `openssl verify`. Each refusal has its typed code, and a refused
//! import writes nothing.

use std::path::Path;

use base64::Engine;

use crate::both_backends;
use crate::support::{Backend, TestServer, assert_api_error};
use crate::tools::{openssl, openssl_csr};

const ID: &str = "distid:1234567812345678";

/// An `openssl ca` directory set-up: one database for every CA of the test (unique_subject
/// off), `ca_ext` / `int_ext` / `ee_ext` / `enc_ext` extension sections.
fn ca_config(d: &Path) {
    std::fs::write(
        d.join("ca.cnf"),
        "[ ca ]\ndefault_ca = ext\n[ ext ]\ndir = .\npreserve = yes\ndatabase = index.txt\nnew_certs_dir = .\n\
         serial = serial\ndefault_md = sm3\npolicy = any\nunique_subject = no\ncopy_extensions = none\n\
         default_crl_days = 7\n\
         [ any ]\ncommonName = supplied\n\
         [ ca_ext ]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n\
         [ int_ext ]\nbasicConstraints = critical,CA:TRUE,pathlen:0\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n\
         [ ee_ext ]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,nonRepudiation\nauthorityKeyIdentifier = keyid\n\
         [ enc_ext ]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,keyEncipherment\nauthorityKeyIdentifier = keyid\n",
    )
    .unwrap();
    std::fs::write(d.join("index.txt"), "").unwrap();
    std::fs::write(d.join("serial"), "1000\n").unwrap();
}

fn sm2_key(d: &Path, stem: &str) {
    openssl(
        d,
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
}

/// `openssl ca` signs `csr` with CA `ca` (`ca.pem`/`ca.key`; `None`: self-signed with
/// `self_key`), with an extension section and optional start/end dates.
#[allow(clippy::too_many_arguments)]
fn ca_sign(
    d: &Path,
    csr: &str,
    ca: Option<&str>,
    self_key: Option<&str>,
    ext: &str,
    dates: Option<(&str, &str)>,
    out: &str,
) {
    let mut args: Vec<String> = ["ca", "-config", "ca.cnf", "-batch", "-notext", "-in", csr]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    match (ca, self_key) {
        (Some(ca), _) => args.extend([
            "-cert".into(),
            format!("{ca}.pem"),
            "-keyfile".into(),
            format!("{ca}.key"),
        ]),
        (None, Some(k)) => args.extend(["-selfsign".into(), "-keyfile".into(), format!("{k}.key")]),
        (None, None) => unreachable!(),
    }
    match dates {
        Some((start, end)) => args.extend([
            "-startdate".into(),
            start.into(),
            "-enddate".into(),
            end.into(),
        ]),
        None => args.extend(["-days".into(), "30".into()]),
    }
    args.extend([
        "-extensions".into(),
        ext.into(),
        "-sigopt".into(),
        ID.into(),
        "-vfyopt".into(),
        ID.into(),
        "-out".into(),
        out.into(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    openssl(d, &refs);
}

fn csr_for(d: &Path, key: &str, subject: &str, out: &str) {
    openssl(
        d,
        &[
            "req", "-new", "-key", key, "-sm3", "-sigopt", ID, "-subj", subject, "-utf8", "-out",
            out,
        ],
    );
}

/// A CA: `<stem>.key`, `<stem>.pem`, signed by `issuer` (or self-signed), with dates.
fn make_ca(d: &Path, stem: &str, issuer: Option<&str>, cn: &str, dates: Option<(&str, &str)>) {
    sm2_key(d, stem);
    csr_for(
        d,
        &format!("{stem}.key"),
        &format!("/C=CN/O=CFCA Test/CN={cn}"),
        &format!("{stem}.csr"),
    );
    let (ext, self_key) = if issuer.is_some() {
        ("int_ext", None)
    } else {
        ("ca_ext", Some(stem))
    };
    ca_sign(
        d,
        &format!("{stem}.csr"),
        issuer,
        self_key,
        ext,
        dates,
        &format!("{stem}.pem"),
    );
}

fn read(d: &Path, f: &str) -> String {
    std::fs::read_to_string(d.join(f)).unwrap()
}

/// The DER of the first certificate in a PEM file.
fn der_of(d: &Path, f: &str) -> Vec<u8> {
    gm_pki::pem_decode_all("CERTIFICATE", &read(d, f))
        .unwrap()
        .remove(0)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn post(
    s: &TestServer,
    token: &str,
    path: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    s.client
        .post(s.url(path))
        .bearer_auth(token)
        .json(body)
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

/// Asks the server for a key + CSR; writes `<stem>.csr`; returns the request id.
async fn server_csr(s: &TestServer, token: &str, d: &Path, stem: &str, cn: &str) -> String {
    let r = post(
        s,
        token,
        "/api/v1/pki/external/requests",
        &serde_json::json!({"subject": {"common_name": cn, "organisational_unit": "信息科"}}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["status"], "pending");
    std::fs::write(
        d.join(format!("{stem}.csr")),
        v["csr_pem"].as_str().unwrap(),
    )
    .unwrap();
    // OpenSSL accepts our request's proof of possession (with the SM2 ID).
    let out = openssl(
        d,
        &[
            "req",
            "-in",
            &format!("{stem}.csr"),
            "-verify",
            "-vfyopt",
            ID,
            "-noout",
        ],
    );
    assert!(out.contains("verify OK"), "{out}");
    v["id"].as_str().unwrap().to_owned()
}

async fn import(s: &TestServer, token: &str, body: serde_json::Value) -> reqwest::Response {
    post(s, token, "/api/v1/pki/external/certificates", &body).await
}

async fn count(s: &TestServer, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(s.db.pool())
        .await
        .unwrap()
}

async fn audit_actions(s: &TestServer) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_log ORDER BY seq")
        .fetch_all(s.db.pool())
        .await
        .unwrap()
}

async fn external_ca_certificates_are_validated_and_imported(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca_config(d);
    make_ca(d, "root", None, "CFCA SM2 Test Root", None);
    make_ca(d, "int", Some("root"), "CFCA SM2 Test OCA", None);
    let req1 = server_csr(&s, &token, d, "ours", "第一人民医院 电子签章").await;
    ca_sign(d, "ours.csr", Some("int"), None, "ee_ext", None, "ours.pem");

    // No anchor yet: the chain cannot end anywhere we trust.
    let chain = format!("{}{}", read(d, "ours.pem"), read(d, "int.pem"));
    assert_api_error(
        import(&s, &token, serde_json::json!({"certificates": chain})).await,
        422,
        "UNKNOWN_TRUST_ANCHOR",
    )
    .await;

    // Anchor upload refusals.
    for (body, status, code) in [
        (read(d, "ours.pem"), 400, "NOT_A_CA_CERTIFICATE"),
        ("garbage".to_owned(), 400, "INVALID_CERTIFICATE"),
        (b64(b"\x30\x82\x01"), 400, "INVALID_CERTIFICATE"),
        (
            b64(&der_of(d, "root.pem")[..200]),
            400,
            "INVALID_CERTIFICATE",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_owned(),
            400,
            "INVALID_CERTIFICATE",
        ),
        // The intermediate alone: nothing it could chain to.
        (read(d, "int.pem"), 422, "UNKNOWN_TRUST_ANCHOR"),
    ] {
        let r = post(
            &s,
            &token,
            "/api/v1/pki/external/anchors",
            &serde_json::json!({ "certificates": body }),
        )
        .await;
        assert_api_error(r, status, code).await;
    }
    // An expired root and a root not valid yet.
    make_ca(
        d,
        "old",
        None,
        "Old Root",
        Some(("20200101000000Z", "20210101000000Z")),
    );
    make_ca(
        d,
        "future",
        None,
        "Future Root",
        Some(("20990101000000Z", "20991231000000Z")),
    );
    for (f, code) in [
        ("old.pem", "CERTIFICATE_EXPIRED"),
        ("future.pem", "CERTIFICATE_NOT_YET_VALID"),
    ] {
        let r = post(
            &s,
            &token,
            "/api/v1/pki/external/anchors",
            &serde_json::json!({ "certificates": read(d, f) }),
        )
        .await;
        assert_api_error(r, 422, code).await;
    }
    // A root whose self-signature was tampered with.
    let mut bad_root = der_of(d, "root.pem");
    let last = bad_root.len() - 1;
    bad_root[last] ^= 1;
    let r = post(
        &s,
        &token,
        "/api/v1/pki/external/anchors",
        &serde_json::json!({ "certificates": b64(&bad_root) }),
    )
    .await;
    assert_api_error(r, 422, "BROKEN_CHAIN").await;
    assert_eq!(count(&s, "pki_external_cas").await, 0);

    // Root + intermediate as one PEM bundle.
    let bundle = format!("{}{}", read(d, "root.pem"), read(d, "int.pem"));
    let r = post(
        &s,
        &token,
        "/api/v1/pki/external/anchors",
        &serde_json::json!({ "certificates": bundle }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    let kinds: Vec<&str> = v["anchors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["anchor", "intermediate"]);
    assert!(v["anchors"][0]["added"].as_bool().unwrap());
    let int_fp = v["anchors"][1]["fingerprint"].as_str().unwrap().to_owned();
    // Uploading again (as DER this time) changes nothing.
    let r = post(
        &s,
        &token,
        "/api/v1/pki/external/anchors",
        &serde_json::json!({ "certificates": b64(&der_of(d, "root.pem")) }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["anchors"][0]["added"], false);
    assert_eq!(count(&s, "pki_external_cas").await, 2);

    // A locally issued certificate, to be listed beside the external one.
    let local_csr = openssl_csr(d, "local", "/CN=local");
    let r = post(
        &s,
        &token,
        "/api/v1/pki/certificates",
        &serde_json::json!({
            "profile": "device",
            "subject": {"hospital": "第一人民医院", "ward": "心内科一病区", "device_id": "PAD-0001"},
            "csr": local_csr,
            "validity_days": 1,
        }),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // The import: the certificate alone (the intermediate is trusted), as PEM.
    let r = import(
        &s,
        &token,
        serde_json::json!({"certificates": read(d, "ours.pem")}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let imported: serde_json::Value = r.json().await.unwrap();
    assert_eq!(imported["external"], true);
    assert_eq!(imported["request_id"], req1);
    assert!(
        imported["subject"]
            .as_str()
            .unwrap()
            .contains("第一人民医院 电子签章")
    );
    let fp = imported["fingerprint"].as_str().unwrap().to_owned();
    // Served, with the chain, and OpenSSL agrees with the chain we validated.
    let served = get_json(
        &s,
        &token,
        &format!("/api/v1/pki/external/certificates/{fp}"),
    )
    .await;
    assert_eq!(
        served["certificate_pem"],
        read(d, "ours.pem").replace('\r', "")
    );
    let chain_pem = served["chain_pem"].as_str().unwrap();
    assert_eq!(chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
    std::fs::write(
        d.join("served.pem"),
        served["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    // The served chain is intermediate then root; OpenSSL applies the SM2 ID to the certificate
    // it verifies, so each link is checked on its own (as in tests/it/pki.rs).
    let issuers = gm_pki::pem_decode_all("CERTIFICATE", chain_pem).unwrap();
    assert_eq!(issuers[0], der_of(d, "int.pem"));
    assert_eq!(issuers[1], der_of(d, "root.pem"));
    std::fs::write(
        d.join("served-int.pem"),
        gm_pki::pem_encode("CERTIFICATE", &issuers[0]),
    )
    .unwrap();
    for (anchor, cert, partial) in [
        ("root.pem", "served-int.pem", false),
        ("served-int.pem", "served.pem", true),
    ] {
        let mut args = vec!["verify", "-vfyopt", ID];
        if partial {
            args.push("-partial_chain");
        }
        args.extend(["-CAfile", anchor, cert]);
        let out = openssl(d, &args);
        assert!(out.contains(&format!("{cert}: OK")), "{out}");
    }
    // Listed beside our own certificates, and in the external overview.
    let list = get_json(&s, &token, "/api/v1/pki/certificates/list").await;
    let list = list["certificates"].as_array().unwrap();
    assert!(
        list.iter()
            .any(|c| c["external"] == true && c["fingerprint"] == fp.as_str())
    );
    assert!(
        list.iter()
            .any(|c| c["external"] == false && c["profile"] == "device")
    );
    let overview = get_json(&s, &token, "/api/v1/pki/external").await;
    assert_eq!(overview["anchors"].as_array().unwrap().len(), 2);
    assert_eq!(overview["requests"][0]["status"], "issued");
    assert_eq!(overview["requests"][0]["certificate"], fp.as_str());
    assert_eq!(overview["certificates"].as_array().unwrap().len(), 1);
    // The same certificate again.
    assert_api_error(
        import(
            &s,
            &token,
            serde_json::json!({"certificates": b64(&der_of(d, "ours.pem"))}),
        )
        .await,
        409,
        "ALREADY_IMPORTED",
    )
    .await;

    // ---- Refusals; none of them writes anything. ----
    let before = count(&s, "pki_external_certificates").await;
    // Expired and not yet valid certificates for our key.
    ca_sign(
        d,
        "ours.csr",
        Some("int"),
        None,
        "ee_ext",
        Some(("20200101000000Z", "20200201000000Z")),
        "expired.pem",
    );
    ca_sign(
        d,
        "ours.csr",
        Some("int"),
        None,
        "ee_ext",
        Some(("20990101000000Z", "20990201000000Z")),
        "future-ee.pem",
    );
    // A certificate for a key we do not hold.
    sm2_key(d, "stranger");
    csr_for(d, "stranger.key", "/CN=stranger", "stranger.csr");
    ca_sign(
        d,
        "stranger.csr",
        Some("int"),
        None,
        "ee_ext",
        None,
        "stranger.pem",
    );
    // Key encipherment only: not a signing certificate.
    ca_sign(d, "ours.csr", Some("int"), None, "enc_ext", None, "enc.pem");
    // Another CA that nobody trusts, issuing for our key, with its root in the chain.
    make_ca(d, "rogue", None, "Rogue Root", None);
    ca_sign(
        d,
        "ours.csr",
        Some("rogue"),
        None,
        "ee_ext",
        None,
        "rogue-ee.pem",
    );
    // A tampered signature.
    let mut tampered = der_of(d, "ours.pem");
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    // Revoked: a second certificate for our key, revoked in the intermediate's CRL.
    ca_sign(
        d,
        "ours.csr",
        Some("int"),
        None,
        "ee_ext",
        None,
        "revoked.pem",
    );
    openssl(
        d,
        &[
            "ca",
            "-config",
            "ca.cnf",
            "-revoke",
            "revoked.pem",
            "-cert",
            "int.pem",
            "-keyfile",
            "int.key",
            "-crl_reason",
            "keyCompromise",
        ],
    );
    openssl(
        d,
        &[
            "ca", "-config", "ca.cnf", "-gencrl", "-cert", "int.pem", "-keyfile", "int.key",
            "-sigopt", ID, "-out", "int.crl",
        ],
    );
    let crl_pem = read(d, "int.crl");
    let other_request = server_csr(&s, &token, d, "other", "第二个签章").await;
    for (body, status, code) in [
        (
            serde_json::json!({"certificates": read(d, "expired.pem")}),
            422,
            "CERTIFICATE_EXPIRED",
        ),
        (
            serde_json::json!({"certificates": read(d, "future-ee.pem")}),
            422,
            "CERTIFICATE_NOT_YET_VALID",
        ),
        (
            serde_json::json!({"certificates": read(d, "stranger.pem")}),
            422,
            "KEY_MISMATCH",
        ),
        (
            serde_json::json!({"certificates": read(d, "revoked.pem"), "request_id": other_request}),
            422,
            "KEY_MISMATCH",
        ),
        (
            serde_json::json!({"certificates": read(d, "enc.pem")}),
            422,
            "WRONG_KEY_USAGE",
        ),
        (
            serde_json::json!({"certificates": read(d, "rogue-ee.pem"), "chain": read(d, "rogue.pem")}),
            422,
            "UNKNOWN_TRUST_ANCHOR",
        ),
        (
            serde_json::json!({"certificates": b64(&tampered)}),
            422,
            "BROKEN_CHAIN",
        ),
        (
            serde_json::json!({"certificates": read(d, "revoked.pem"), "crls": crl_pem}),
            422,
            "CERTIFICATE_REVOKED",
        ),
        (
            serde_json::json!({"certificates": read(d, "revoked.pem"), "crls": "not a CRL"}),
            400,
            "INVALID_CERTIFICATE",
        ),
        (
            serde_json::json!({"certificates": b64(&der_of(d, "ours.pem")[..300])}),
            400,
            "INVALID_CERTIFICATE",
        ),
        (
            serde_json::json!({"certificates": "%%%"}),
            400,
            "INVALID_CERTIFICATE",
        ),
        (
            serde_json::json!({"certificates": read(d, "revoked.pem"), "request_id": "7d0d3b9e-4e4b-4f0e-9d7e-0c0ffee00001"}),
            404,
            "NOT_FOUND",
        ),
        (
            serde_json::json!({"certificates": read(d, "revoked.pem"), "request_id": "x"}),
            400,
            "INVALID_ARGUMENT",
        ),
    ] {
        let r = import(&s, &token, body.clone()).await;
        let e = assert_api_error(r, status, code).await;
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .chars()
                .any(|c| c > '\u{2e80}'),
            "Chinese text: {e}"
        );
    }
    assert_eq!(count(&s, "pki_external_certificates").await, before);
    let overview = get_json(&s, &token, "/api/v1/pki/external").await;
    let pending = overview["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == other_request.as_str())
        .unwrap()
        .clone();
    assert_eq!(pending["status"], "pending");

    // CRLs stored for a trusted CA are used by later imports without being supplied.
    openssl(
        d,
        &[
            "ca",
            "-config",
            "ca.cnf",
            "-gencrl",
            "-cert",
            "rogue.pem",
            "-keyfile",
            "rogue.key",
            "-sigopt",
            ID,
            "-out",
            "rogue.crl",
        ],
    );
    for (crls, status, code) in [
        ("garbage".to_owned(), 400, "INVALID_CERTIFICATE"),
        (read(d, "rogue.crl"), 422, "UNKNOWN_TRUST_ANCHOR"),
        (read(d, "int.pem"), 400, "INVALID_CERTIFICATE"),
    ] {
        let r = post(
            &s,
            &token,
            "/api/v1/pki/external/crls",
            &serde_json::json!({ "crls": crls }),
        )
        .await;
        assert_api_error(r, status, code).await;
    }
    assert_eq!(count(&s, "pki_external_crls").await, 0);
    for expect_stored in [true, false] {
        let r = post(
            &s,
            &token,
            "/api/v1/pki/external/crls",
            &serde_json::json!({ "crls": crl_pem }),
        )
        .await;
        assert_eq!(r.status(), 201);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["crls"][0]["stored"], expect_stored);
        assert_eq!(v["crls"][0]["ca"], int_fp.as_str());
    }
    assert_api_error(
        import(
            &s,
            &token,
            serde_json::json!({"certificates": read(d, "revoked.pem")}),
        )
        .await,
        422,
        "CERTIFICATE_REVOKED",
    )
    .await;
    assert_eq!(count(&s, "pki_external_certificates").await, before);

    // Without the intermediate among the anchors the chain breaks, unless it is supplied.
    let r = post(
        &s,
        &token,
        &format!("/api/v1/pki/external/anchors/{int_fp}/remove"),
        &serde_json::json!({}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_api_error(
        post(
            &s,
            &token,
            &format!("/api/v1/pki/external/anchors/{int_fp}/remove"),
            &serde_json::json!({}),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    ca_sign(
        d,
        "other.csr",
        Some("int"),
        None,
        "ee_ext",
        None,
        "other.pem",
    );
    assert_api_error(
        import(
            &s,
            &token,
            serde_json::json!({"certificates": read(d, "other.pem")}),
        )
        .await,
        422,
        "BROKEN_CHAIN",
    )
    .await;
    let r = import(
        &s,
        &token,
        serde_json::json!({
            "certificates": read(d, "other.pem"),
            "chain": read(d, "int.pem"),
            "request_id": other_request,
            "crls": crl_pem,
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(count(&s, "pki_external_certificates").await, before + 1);

    // Every privileged step is in the audit chain, and the chain verifies.
    let actions = audit_actions(&s).await;
    for a in [
        "pki.external.request",
        "pki.external.trust",
        "pki.external.import",
        "pki.external.untrust",
        "pki.external.crl",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "pki.external.import")
            .count(),
        2
    );
    let r = s
        .client
        .get(s.url("/api/v1/audit/verify"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}
both_backends!(external_ca_certificates_are_validated_and_imported);

async fn external_routes_need_an_administrator(backend: Backend) {
    let s = TestServer::start(backend).await;
    for (method, path) in [
        ("GET", "/api/v1/pki/external"),
        ("POST", "/api/v1/pki/external/anchors"),
        ("POST", "/api/v1/pki/external/requests"),
        ("POST", "/api/v1/pki/external/certificates"),
        ("GET", "/api/v1/pki/certificates/list"),
    ] {
        let r = s
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                s.url(path),
            )
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_api_error(r, 401, "UNAUTHENTICATED").await;
    }
    let token = s.admin_token().await;
    for bad in [
        serde_json::json!({"subject": {"common_name": ""}}),
        serde_json::json!({"subject": {"common_name": "x".repeat(65)}}),
        serde_json::json!({"subject": {"common_name": "a\u{0}b"}}),
        serde_json::json!({"subject": {"common_name": " padded"}}),
    ] {
        let r = post(&s, &token, "/api/v1/pki/external/requests", &bad).await;
        assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    }
    assert_eq!(count(&s, "pki_external_requests").await, 0);
    for path in [
        "/api/v1/pki/external/certificates/zz",
        "/api/v1/pki/certificates/list?limit=0",
        "/api/v1/pki/certificates/list?limit=abc",
    ] {
        let r = s
            .client
            .get(s.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    }
    let r = s
        .client
        .get(s.url(&format!(
            "/api/v1/pki/external/certificates/{}",
            "ab".repeat(32)
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_api_error(r, 404, "NOT_FOUND").await;
    s.stop().await;
}
both_backends!(external_routes_need_an_administrator);
