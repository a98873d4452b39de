//! Auto-sign through the real interfaces: a doctor enrols, authorises a scope by co-signing the
//! authorisation document with the phone library, a terminal's requests inside the scope are
//! signed at once with the delegated key (checked by asn1crypto + OpenSSL, the policy OID by
//! `openssl x509 -text`, the authorisation attribute by `openssl cms -cmsout -print`), requests
//! outside it are not, and revocation stops it (OCSP says revoked, the key is destroyed).
//! Also client systems' permissions and token-bucket rate limits.

use std::time::Duration;

use base64::Engine;
use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::cosign::{AuthorisationDocument, AuthorisationView, CreateAuthorisation};
use serde_json::{Value, json};
use sm3::{Digest, Sm3};
use yiqian_phone::{PhoneError, autosign, sign};

use crate::both_backends;
use crate::cosign::{PIN, Terminal, check_independently, enrolled, now_ms};
use crate::support::{Backend, TestServer, assert_api_error};
use crate::tools::{cert_pem, openssl};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const HOUR: i64 = 3_600_000;

fn code(e: &PhoneError) -> ErrorCode {
    match e {
        PhoneError::Server(api) => api.code,
        other => panic!("expected a server refusal, got {other}"),
    }
}

fn request(doc_type: &str, department: &str, auto: Option<bool>, content: &[u8]) -> Value {
    let mut v = json!({
        "signers": ["D101"], "title": "检验报告", "patient_id": "P0101",
        "doc_type": doc_type, "department": department,
        "documents": [{"name": "报告 1", "content": B64.encode(content), "media_type": "text/plain"}]
    });
    if let Some(a) = auto {
        v["auto_sign"] = json!(a);
    }
    v
}

pub async fn get_pem(s: &TestServer, d: &std::path::Path, name: &str) {
    let der = s
        .client
        .get(s.url(&format!("/pki/{name}.crt")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    cert_pem(d, name, &der);
}

pub async fn audit_actions(s: &TestServer, action: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1")
        .bind(action)
        .fetch_one(s.db.pool())
        .await
        .unwrap()
}

async fn autosign_inside_outside_and_revoked(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let his = Terminal::register(
        &s,
        &token,
        &["sign_request:create", "sign_request:read", "auto_sign"],
        None,
    )
    .await;
    let plain = Terminal::signing(&s, &token).await;
    let phone = enrolled(&s, &token, "D101", "王医生").await;
    let client = sign::client(&phone).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let now = now_ms();

    // Windows longer than the configured maximum (7 days), in the past, or an empty scope.
    for bad in [
        CreateAuthorisation {
            doc_types: vec!["处方".into()],
            departments: vec!["心内科".into()],
            not_before: None,
            not_after: now + 8 * 24 * HOUR,
        },
        CreateAuthorisation {
            doc_types: vec!["处方".into()],
            departments: vec!["心内科".into()],
            not_before: Some(now - 2 * HOUR),
            not_after: now - HOUR,
        },
        CreateAuthorisation {
            doc_types: vec![],
            departments: vec!["心内科".into()],
            not_before: None,
            not_after: now + HOUR,
        },
    ] {
        let e = autosign::create(&client, &bad).await.unwrap_err();
        assert_eq!(code(&e), ErrorCode::InvalidArgument, "{bad:?}");
    }

    // The doctor authorises 检验报告 and 处方 in 心内科 for two hours, co-signing the document.
    let req = CreateAuthorisation {
        doc_types: vec!["检验报告".into(), "处方".into()],
        departments: vec!["心内科".into()],
        not_before: None,
        not_after: now + 2 * HOUR,
    };
    let auth = autosign::authorise(&client, &phone, PIN, &req)
        .await
        .unwrap();
    assert_eq!(auth.state, "active", "{auth:?}");
    let doc: AuthorisationDocument = serde_json::from_str(&auth.document).unwrap();
    assert_eq!(doc.doctor.staff_id, "D101");
    assert_eq!(doc.doctor.signing_certificate_serial, phone.serial);
    assert_eq!(
        doc.delegated_certificate_serial,
        auth.delegated_certificate_serial
    );
    assert_eq!(doc.scope.doc_types, vec!["处方", "检验报告"]);
    // Canonical form: re-serialising the parsed document gives the same bytes, keys sorted.
    assert_eq!(serde_json::to_string(&doc).unwrap(), auth.document);
    assert!(
        auth.document.starts_with("{\"authorisation_id\":"),
        "{}",
        auth.document
    );
    let doc_sm3: [u8; 32] = Sm3::digest(auth.document.as_bytes()).into();
    assert_eq!(hex::encode(doc_sm3), auth.document_sm3);
    // The doctor's co-signature over the document is stored like any signature.
    let carrier: Value = s
        .client
        .get(s.url(&format!("/api/v1/admin/autosign/{}", auth.authorisation_id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(carrier["state"], "active");
    let cosig: Vec<u8> = sqlx::query_scalar(
        "SELECT cms FROM signatures WHERE request_id = $1 AND staff_id = 'D101'",
    )
    .bind(&auth.request_id)
    .fetch_one(s.db.pool())
    .await
    .unwrap();
    check_independently(
        d,
        "authorisation",
        &B64.encode(&cosig),
        auth.document.as_bytes(),
        &B64.decode(&phone.certificate).unwrap(),
    );
    // Activating again is a no-op.
    let again = autosign::activate(&client, &auth.authorisation_id)
        .await
        .unwrap();
    assert_eq!(
        again.delegated_certificate_serial,
        auth.delegated_certificate_serial
    );

    // The delegated certificate: staff CA, the doctor's subject, the auto-sign policy OID,
    // validity = the window; checked by OpenSSL.
    let cert_der = B64
        .decode(auth.delegated_certificate.as_ref().unwrap())
        .unwrap();
    cert_pem(d, "delegated", &cert_der);
    get_pem(&s, d, "staff").await;
    get_pem(&s, d, "root").await;
    crate::pki::verify_chain(d, "staff.pem", "delegated.pem");
    let text = openssl(
        d,
        &[
            "x509",
            "-in",
            "delegated.pem",
            "-noout",
            "-text",
            "-nameopt",
            "utf8,sep_comma_plus_space",
        ],
    );
    assert!(text.contains("X509v3 Certificate Policies"), "{text}");
    assert!(text.contains("Policy: 1.2.156.112233.3.1"), "{text}");
    assert!(text.contains("CN=王医生"), "{text}");
    assert!(text.contains("serialNumber=D101"), "{text}");
    assert!(text.contains("OU=心内科"), "{text}");
    let parsed = gm_pki::ParsedCertificate::from_der(&cert_der).unwrap();
    assert_eq!(parsed.serial_hex(), auth.delegated_certificate_serial);
    assert_eq!(
        cosign_server::pki::unix_ms(parsed.not_after()),
        auth.not_after
    );
    assert_eq!(
        cosign_server::pki::unix_ms(parsed.not_before()),
        auth.not_before
    );
    // The phone's own co-signing certificate carries no such policy.
    assert_ne!(phone.serial, auth.delegated_certificate_serial);

    // Inside the scope, auto-sign required: signed at once.
    let report = "检验报告\n患者：赵六\n血常规：白细胞 6.1×10^9/L".as_bytes();
    let created = his
        .create(&request("检验报告", "心内科", Some(true), report))
        .await;
    let id = created["request_id"].as_str().unwrap();
    let view = his.view(id).await;
    assert_eq!(view["status"], "completed", "{view}");
    assert!(view["signers"][0]["signed_at"].is_i64());
    let sig = &view["signatures"][0];
    assert_eq!(sig["authorisation_id"], auth.authorisation_id.as_str());
    assert_eq!(
        sig["certificate_serial"],
        auth.delegated_certificate_serial.as_str()
    );
    let cms = B64.decode(sig["cms"].as_str().unwrap()).unwrap();
    check_independently(d, "auto", sig["cms"].as_str().unwrap(), report, &cert_der);
    let verified = gm_pki::cms::verify(&cms, Some(report), &[]).unwrap();
    assert!(verified.ok(), "{verified:?}");
    assert!(
        verified.signers[0]
            .timestamp
            .as_ref()
            .is_some_and(|t| t.valid),
        "CAdES-T token: {verified:?}"
    );
    // The signed attribute references the authorisation: its id and the document's SM3.
    let extra = gm_pki::cms::extra_signed_attributes(&cms).unwrap();
    assert_eq!(extra.len(), 1);
    assert_eq!(extra[0].oid.to_string(), "1.2.156.112233.3.2");
    assert_eq!(
        extra[0].value_der,
        cosign_server::signing::autosign::attribute_value(&auth.authorisation_id, &doc_sm3)
    );
    std::fs::write(d.join("auto.der"), &cms).unwrap();
    let printed = openssl(
        d,
        &[
            "cms", "-cmsout", "-print", "-inform", "DER", "-in", "auto.der",
        ],
    );
    assert!(printed.contains("1.2.156.112233.3.2"), "{printed}");
    assert!(printed.contains(&auth.authorisation_id), "{printed}");
    // The database links the signature to the authorisation.
    let linked: String = sqlx::query_scalar(
        "SELECT authorisation_id FROM autosign_signatures WHERE request_id = $1",
    )
    .bind(id)
    .fetch_one(s.db.pool())
    .await
    .unwrap();
    assert_eq!(linked, auth.authorisation_id);

    // The server decides when the terminal does not say: covered → signed at once.
    let decided = his.create(&request("处方", "心内科", None, b"Rx 1")).await;
    let decided = his.view(decided["request_id"].as_str().unwrap()).await;
    assert_eq!(decided["status"], "completed");
    // An app without the auto_sign permission: a normal pending request, or 403 if it insists.
    let p = plain
        .create(&request("处方", "心内科", None, b"Rx 2"))
        .await;
    assert_eq!(
        plain.view(p["request_id"].as_str().unwrap()).await["status"],
        "pending"
    );
    assert_api_error(
        plain
            .call(
                "POST",
                "/api/v1/sign-requests",
                Some(&request("处方", "心内科", Some(true), b"Rx 3")),
            )
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
    // auto_sign: false is never auto-signed.
    let never = his
        .create(&request("处方", "心内科", Some(false), b"Rx 4"))
        .await;
    assert_eq!(
        his.view(never["request_id"].as_str().unwrap()).await["status"],
        "pending"
    );

    // Outside the scope: wrong document type, wrong department; refused when required (nothing
    // stored), pending when the server decides.
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sign_requests")
        .fetch_one(s.db.pool())
        .await
        .unwrap();
    for (doc_type, dept, why) in [("病历", "心内科", "文书类型"), ("处方", "呼吸科", "科室")]
    {
        let body = assert_api_error(
            his.call(
                "POST",
                "/api/v1/sign-requests",
                Some(&request(doc_type, dept, Some(true), b"x")),
            )
            .await,
            403,
            "AUTO_SIGN_NOT_AUTHORISED",
        )
        .await;
        assert!(body["message"].as_str().unwrap().contains(why), "{body}");
        let pending = his.create(&request(doc_type, dept, None, b"y")).await;
        assert_eq!(
            his.view(pending["request_id"].as_str().unwrap()).await["status"],
            "pending"
        );
    }
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sign_requests")
        .fetch_one(s.db.pool())
        .await
        .unwrap();
    assert_eq!(after, before + 2, "refused requests store nothing");

    // Outside the window: an authorisation for 病历 that starts in an hour.
    let later = autosign::authorise(
        &client,
        &phone,
        PIN,
        &CreateAuthorisation {
            doc_types: vec!["病历".into()],
            departments: vec!["心内科".into()],
            not_before: Some(now + HOUR),
            not_after: now + 3 * HOUR,
        },
    )
    .await
    .unwrap();
    assert_eq!(later.state, "active");
    let body = assert_api_error(
        his.call(
            "POST",
            "/api/v1/sign-requests",
            Some(&request("病历", "心内科", Some(true), b"z")),
        )
        .await,
        403,
        "AUTO_SIGN_NOT_AUTHORISED",
    )
    .await;
    assert!(
        body["message"].as_str().unwrap().contains("时间窗"),
        "{body}"
    );
    let mine = autosign::list(&client).await.unwrap();
    assert_eq!(mine.len(), 2);
    assert_eq!(
        mine[1].uses, 2,
        "two auto-signatures under the first: {mine:?}"
    );

    // The doctor revokes the first from the phone: refused at once afterwards.
    let key_id: String = sqlx::query_scalar(
        "SELECT key_id FROM autosign_authorisations WHERE authorisation_id = $1",
    )
    .bind(&auth.authorisation_id)
    .fetch_one(s.db.pool())
    .await
    .unwrap();
    let revoked = autosign::revoke(&client, &auth.authorisation_id, Some("门诊结束".into()))
        .await
        .unwrap();
    assert_eq!(revoked.state, "revoked");
    assert_eq!(revoked.revoked_by.as_deref(), Some("staff:D101"));
    let twice = autosign::revoke(&client, &auth.authorisation_id, None)
        .await
        .unwrap_err();
    assert_eq!(code(&twice), ErrorCode::AlreadyRevoked);
    let body = assert_api_error(
        his.call(
            "POST",
            "/api/v1/sign-requests",
            Some(&request("检验报告", "心内科", Some(true), report)),
        )
        .await,
        403,
        "AUTO_SIGN_NOT_AUTHORISED",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("撤销"), "{body}");
    // The delegated key is destroyed in the device.
    let key_state: String = sqlx::query_scalar("SELECT state FROM crypto_keys WHERE id = $1")
        .bind(&key_id)
        .fetch_one(s.db.pool())
        .await
        .unwrap();
    assert_eq!(key_state, "destroyed");
    // OCSP (openssl ocsp against /ocsp) says revoked.
    let out = openssl(
        d,
        &[
            "ocsp",
            "-issuer",
            "staff.pem",
            "-cert",
            "delegated.pem",
            "-url",
            &s.url("/ocsp"),
            "-noverify",
        ],
    );
    assert!(out.contains("delegated.pem: revoked"), "{out}");
    // privilegeWithdrawn (9): OpenSSL 3.0 names reasons up to 8 only and prints "(UNKNOWN)".
    assert!(out.contains("Reason:"), "{out}");

    // A window that has ended (moved into the past here): listed as expired, its key destroyed.
    let later_key: String = sqlx::query_scalar(
        "SELECT key_id FROM autosign_authorisations WHERE authorisation_id = $1",
    )
    .bind(&later.authorisation_id)
    .fetch_one(s.db.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE autosign_authorisations SET not_after = $1 WHERE authorisation_id = $2")
        .bind(now_ms() - 1000)
        .bind(&later.authorisation_id)
        .execute(s.db.pool())
        .await
        .unwrap();
    let listed = autosign::list(&client).await.unwrap();
    assert_eq!(listed[0].authorisation_id, later.authorisation_id);
    assert_eq!(listed[0].state, "expired");
    let later_state: String = sqlx::query_scalar("SELECT state FROM crypto_keys WHERE id = $1")
        .bind(&later_key)
        .fetch_one(s.db.pool())
        .await
        .unwrap();
    assert_eq!(later_state, "destroyed");

    // An administrator revokes the other one; a doctor cannot touch someone else's.
    let other = enrolled(&s, &token, "D102", "孙医生").await;
    let other_client = sign::client(&other).unwrap();
    let e = autosign::revoke(&other_client, &later.authorisation_id, None)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::NotFound);
    let r = s
        .client
        .post(s.url(&format!(
            "/api/v1/admin/autosign/{}/revoke",
            later.authorisation_id
        )))
        .bearer_auth(&token)
        .json(&json!({"reason": "医师调岗"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "revoked");
    assert_eq!(v["revoked_by"], "admin:admin");

    // Everything audited, and the chain intact.
    assert_eq!(audit_actions(&s, "autosign.create").await, 2);
    assert_eq!(audit_actions(&s, "autosign.activate").await, 2);
    assert_eq!(
        audit_actions(&s, "autosign.revoke").await,
        4,
        "two revocations, a repeat and a foreign try"
    );
    assert!(audit_actions(&s, "autosign.sign").await >= 2);
    let verify: Value = s
        .client
        .get(s.url("/api/v1/audit/verify"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verify["intact"], true, "{verify}");
    s.stop().await;
}

both_backends!(autosign_inside_outside_and_revoked);

async fn app_permissions_and_rate_limits(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    enrolled(&s, &token, "D101", "王医生").await;
    let r = s
        .client
        .post(s.url("/api/v1/admin/apps"))
        .bearer_auth(&token)
        .json(&json!({"name": "LIS", "permissions": ["sign_request:read"], "rate_per_second": 2, "burst": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["rate_per_minute"], 120);
    assert_eq!(created["burst"], 3);
    let app_id = created["app_id"].as_str().unwrap().to_owned();
    let lis = Terminal::from_created(&s, &created);
    let body = request("处方", "心内科", None, b"Rx");

    // Without the permission: 403 FORBIDDEN naming it.
    let refused = assert_api_error(
        lis.call("POST", "/api/v1/sign-requests", Some(&body)).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("sign_request:create"),
        "{refused}"
    );

    // Administrators grant it with a wildcard; unknown permissions are refused.
    let update = |v: Value| {
        s.client
            .post(s.url(&format!("/api/v1/admin/apps/{app_id}/update")))
            .bearer_auth(&token)
            .json(&v)
            .send()
    };
    assert_api_error(
        update(json!({"permissions": ["sign_request:delete"]}))
            .await
            .unwrap(),
        400,
        "INVALID_ARGUMENT",
    )
    .await;
    assert_api_error(
        update(json!({"rate_per_second": 1, "rate_per_minute": 60}))
            .await
            .unwrap(),
        400,
        "INVALID_ARGUMENT",
    )
    .await;
    let r = update(json!({"permissions": ["sign_request:*"]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["permissions"], json!(["sign_request:*"]));
    assert_eq!(v["burst"], 3, "the limit is kept");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let ok = lis.call("POST", "/api/v1/sign-requests", Some(&body)).await;
    assert_eq!(ok.status(), 201, "{}", ok.text().await.unwrap());
    let listed: Value = s
        .client
        .get(s.url("/api/v1/admin/apps/list"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["app_id"] == app_id.as_str())
    );

    // A burst over the limit (3 at once, 2 a second) gets 429 with Retry-After.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = (0..12).map(|_| lis.call("GET", "/api/v1/sign-requests/req_none", None));
    let answers = futures_util::future::join_all(calls).await;
    let mut limited = 0;
    let mut retry_after = 0;
    for a in answers {
        match a.status().as_u16() {
            404 => {}
            429 => {
                limited += 1;
                retry_after = a.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap();
                let v: Value = a.json().await.unwrap();
                assert_eq!(v["code"], "RATE_LIMITED");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(limited >= 7, "{limited} of 12 limited");
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    // The server recovers once the bucket refills.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let r = lis
        .call("GET", "/api/v1/sign-requests/req_none", None)
        .await;
    assert_eq!(r.status(), 404);

    // Disabled: its calls are refused like an unknown app's.
    assert_eq!(
        update(json!({"enabled": false})).await.unwrap().status(),
        200
    );
    assert_api_error(
        lis.call("GET", "/api/v1/sign-requests/req_none", None)
            .await,
        401,
        "BAD_SIGNATURE",
    )
    .await;
    assert_eq!(audit_actions(&s, "cosign.app.update").await, 2);
    s.stop().await;
}

both_backends!(app_permissions_and_rate_limits);

/// The doctor authorises 处方 in 心内科 for the next hour.
pub async fn authorise_prescriptions(
    client: &yiqian_phone::Client,
    phone: &yiqian_phone::PhoneState,
) -> AuthorisationView {
    autosign::authorise(
        client,
        phone,
        PIN,
        &CreateAuthorisation {
            doc_types: vec!["处方".into()],
            departments: vec!["心内科".into()],
            not_before: None,
            not_after: now_ms() + HOUR,
        },
    )
    .await
    .unwrap()
}

/// Auto-signs racing a revocation: every auto-signature stored was made before the revocation
/// took effect, and every request after it is refused; nothing half-stored.
async fn revocation_races_auto_signs(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let his = Terminal::register(&s, &token, &["sign_request:*", "auto_sign"], None).await;
    let phone = enrolled(&s, &token, "D101", "王医生").await;
    let client = sign::client(&phone).unwrap();
    let auth = authorise_prescriptions(&client, &phone).await;
    let bodies: Vec<Value> = (0..12)
        .map(|i| request("处方", "心内科", Some(true), format!("Rx {i}").as_bytes()))
        .collect();
    let signs = futures_util::future::join_all(
        bodies
            .iter()
            .map(|b| his.call("POST", "/api/v1/sign-requests", Some(b))),
    );
    let revoke = async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        autosign::revoke(&client, &auth.authorisation_id, None).await
    };
    let (answers, revoked) = tokio::join!(signs, revoke);
    let revoked = revoked.unwrap();
    let revoked_at = revoked.revoked_at.unwrap();
    let mut made = 0;
    for a in answers {
        match a.status().as_u16() {
            201 => made += 1,
            403 => {
                let v: Value = a.json().await.unwrap();
                assert_eq!(v["code"], "AUTO_SIGN_NOT_AUTHORISED", "{v}");
            }
            other => panic!("unexpected {other}: {}", a.text().await.unwrap()),
        }
    }
    eprintln!("{made} of 12 auto-signed before the revocation");
    let rows: Vec<(i64,)> =
        sqlx::query_as("SELECT signed_at FROM autosign_signatures WHERE authorisation_id = $1")
            .bind(&auth.authorisation_id)
            .fetch_all(s.db.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), made, "one stored signature per 201");
    assert!(
        rows.iter().all(|(t,)| *t <= revoked_at),
        "{rows:?} vs {revoked_at}"
    );
    let completed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sign_requests WHERE app_id = $1 AND status = 'completed'",
    )
    .bind(&his.app_id)
    .fetch_one(s.db.pool())
    .await
    .unwrap();
    assert_eq!(
        usize::try_from(completed).unwrap(),
        made,
        "no request without its signature"
    );
    let uses = autosign::get(&client, &auth.authorisation_id)
        .await
        .unwrap()
        .uses;
    assert_eq!(usize::try_from(uses).unwrap(), made);
    assert_api_error(
        his.call(
            "POST",
            "/api/v1/sign-requests",
            Some(&request("处方", "心内科", Some(true), b"after")),
        )
        .await,
        403,
        "AUTO_SIGN_NOT_AUTHORISED",
    )
    .await;
    s.stop().await;
}

both_backends!(revocation_races_auto_signs);
