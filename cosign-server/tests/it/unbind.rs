//! Unbinding a phone (`POST /api/v1/phone/unbind`, `yiqian_phone::enroll::unbind`, the app's
//! 解绑本机): the device is revoked at once (its push socket closes, every later call is
//! refused), the server's key share and OPRF key are destroyed in the crypto device; the
//! certificate stays valid unless the doctor also asked to revoke it, and then OCSP (OpenSSL's
//! client) says revoked and the auto-sign authorisations granted under it are revoked too.

use std::time::Duration;

use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::cosign::UnbindDevice;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use yiqian_phone::{PhoneState, enroll, sign};

use crate::autosign::{audit_actions, authorise_prescriptions, get_pem};
use crate::both_backends;
use crate::cosign::{code, enrolled, refuse_audit, replayed_post, slow_poll};
use crate::support::{Backend, TestServer};
use crate::tools::{cert_pem, openssl};

/// State of a crypto-device key by id.
async fn key_state(s: &TestServer, id: &str) -> String {
    sqlx::query_scalar("SELECT state FROM crypto_keys WHERE id = $1")
        .bind(id)
        .fetch_one(s.db.pool())
        .await
        .unwrap()
}

/// The server's share and OPRF key ids of a device.
async fn device_keys(s: &TestServer, phone: &PhoneState) -> [String; 2] {
    let (share, oprf): (String, String) =
        sqlx::query_as("SELECT share_key, oprf_key FROM devices WHERE device_id = $1")
            .bind(&phone.device_id)
            .fetch_one(s.db.pool())
            .await
            .unwrap();
    [share, oprf]
}

/// `openssl ocsp` on the phone's certificate: `good` or `revoked`.
fn ocsp_status(s: &TestServer, d: &std::path::Path, phone: &PhoneState) -> String {
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(&phone.certificate)
        .unwrap();
    cert_pem(d, "doctor", &der);
    let out = openssl(
        d,
        &[
            "ocsp",
            "-issuer",
            "staff.pem",
            "-cert",
            "doctor.pem",
            "-url",
            &s.url("/ocsp"),
            "-noverify",
        ],
    );
    for status in ["good", "revoked"] {
        if out.contains(&format!("doctor.pem: {status}")) {
            return status.to_owned();
        }
    }
    panic!("no status in {out}");
}

/// Waits until the server closes the push socket (a close frame or the end of the stream),
/// skipping the task lists before it.
async fn closed<S>(ws: &mut S)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None | Some(Err(_) | Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("the revoked device's push socket closes at once");
}

async fn unbinding_revokes_the_device_and_on_request_the_certificate(backend: Backend) {
    // No polling: only the revocation's announcement can close the socket in time.
    let s = TestServer::start_with(backend, slow_poll).await;
    let token = s.admin_token().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    get_pem(&s, d, "staff").await;

    // Unbound without the certificate (moving to a new phone).
    let phone = enrolled(&s, &token, "D301", "冯医生").await;
    let client = sign::client(&phone).unwrap();
    let keys = device_keys(&s, &phone).await;
    let mut ws = sign::task_events(&client).await.unwrap();
    let e = enroll::unbind(&client, false, Some("x".repeat(201)))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidArgument);
    // A replayed call, and a call whose audit entry cannot be written, change nothing.
    let asked = UnbindDevice {
        revoke_certificate: true,
        reason: None,
    };
    replayed_post(&s, &phone, "/api/v1/phone/unbind", &asked).await;
    refuse_audit(&s, backend, Some("cosign.device.unbind")).await;
    let e = enroll::unbind(&client, false, None).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::Internal);
    refuse_audit(&s, backend, None).await;
    assert!(sign::tasks(&client).await.is_ok(), "still bound");
    for key in &keys {
        assert_eq!(key_state(&s, key).await, "active");
    }
    let unbound = enroll::unbind(&client, false, None).await.unwrap();
    assert_eq!(unbound.device_id, phone.device_id);
    assert_eq!(unbound.certificate_serial.as_deref(), Some(&*phone.serial));
    assert!(!unbound.certificate_revoked);
    assert_eq!(unbound.authorisations_revoked, 0);
    closed(&mut ws).await;
    for key in &keys {
        assert_eq!(key_state(&s, key).await, "destroyed");
    }
    assert_eq!(ocsp_status(&s, d, &phone), "good");
    // The device is gone for every call, a second unbind included.
    for e in [
        sign::tasks(&client).await.unwrap_err(),
        enroll::unbind(&client, true, None).await.unwrap_err(),
    ] {
        assert_eq!(code(&e), ErrorCode::BadSignature);
    }
    assert!(sign::task_events(&client).await.is_err());
    assert_eq!(audit_actions(&s, "cosign.device.unbind").await, 1);

    // A doctor who leaves: unbound with the certificate, which takes the auto-sign
    // authorisation granted under it along.
    let phone = enrolled(&s, &token, "D302", "褚医生").await;
    let client = sign::client(&phone).unwrap();
    let auth = authorise_prescriptions(&client, &phone).await;
    assert_eq!(auth.state, "active");
    assert_eq!(ocsp_status(&s, d, &phone), "good");
    let mut ws = sign::task_events(&client).await.unwrap();
    let unbound = enroll::unbind(&client, true, Some("离职".into()))
        .await
        .unwrap();
    assert!(unbound.certificate_revoked);
    assert_eq!(unbound.authorisations_revoked, 1);
    closed(&mut ws).await;
    assert_eq!(ocsp_status(&s, d, &phone), "revoked");
    let after: String =
        sqlx::query_scalar("SELECT state FROM autosign_authorisations WHERE authorisation_id = $1")
            .bind(&auth.authorisation_id)
            .fetch_one(s.db.pool())
            .await
            .unwrap();
    assert_eq!(after, "revoked");
    assert_eq!(audit_actions(&s, "cosign.device.unbind").await, 2);
    assert_eq!(audit_actions(&s, "autosign.revoke").await, 1);
    s.stop().await;
}
both_backends!(unbinding_revokes_the_device_and_on_request_the_certificate);
