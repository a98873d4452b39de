//! The second factor at phone activation (issue 6): an SMS one-time code to the staff member's
//! phone on record, sent through the HTTP SMS adapter to a local fake gateway; attempts are
//! counted, bounded and audited; `activation_second_factor = "none"` keeps the old flow.

use std::sync::{Arc, Mutex};

use cosign_proto::v1::ErrorCode;
use cosign_server::config::SecondFactor;
use serde_json::Value;
use sqlx::Row;
use yiqian_phone::enroll;

use crate::both_backends;
use crate::cosign::{add_staff, code, code_of};
use crate::support::{Backend, TestServer};

type Seen = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// A fake SMS gateway: records every POST (Authorization header, JSON body); answers 503
/// while `failing` is set.
async fn fake_gateway(failing: Arc<Mutex<bool>>) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = {
        let seen = seen.clone();
        axum::Router::new().route(
            "/sms/send",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let (seen, failing) = (seen.clone(), failing.clone());
                    async move {
                        let auth = headers
                            .get("authorization")
                            .map(|v| v.to_str().unwrap().to_owned());
                        seen.lock()
                            .unwrap()
                            .push((auth, serde_json::from_slice(&body).unwrap()));
                        if *failing.lock().unwrap() {
                            axum::http::StatusCode::SERVICE_UNAVAILABLE
                        } else {
                            axum::http::StatusCode::OK
                        }
                    }
                },
            ),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms/send", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn last_code(seen: &Seen) -> String {
    let s = seen.lock().unwrap();
    let (_, body) = s.last().unwrap();
    body["params"]["code"].as_str().unwrap().to_owned()
}

async fn allow_resend(s: &TestServer, staff_id: &str) {
    sqlx::query("UPDATE staff SET sms_sent_at = sms_sent_at - 61000 WHERE staff_id = $1")
        .bind(staff_id)
        .execute(s.db.pool())
        .await
        .unwrap();
}

async fn activation_needs_the_sms_code(backend: Backend) {
    let failing = Arc::new(Mutex::new(false));
    let (url, seen) = fake_gateway(failing.clone()).await;
    let s = TestServer::start_with(backend, |c| {
        c.sms.url = Some(url);
        c.sms.token = Some(zeroize::Zeroizing::new("sms-token".into()));
        c.cosign.activation_second_factor = SecondFactor::Sms;
    })
    .await;
    let token = s.admin_token().await;
    let link = add_staff(&s, &token, "S001", "短信医生").await;
    let (id, act) = code_of(&link);

    // Without the SMS code, enrolment is refused (and nothing was consumed).
    let e = enroll::enroll(&s.base, &id, &act, "手机", "246810")
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::SmsCodeRequired);
    // A wrong activation code sends nothing (and is counted as an activation failure).
    let e = enroll::request_sms_code(&s.base, &id, "WRONGCODE234")
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::ActivationInvalid);
    assert!(seen.lock().unwrap().is_empty());

    // The code goes to the phone on record through the gateway, with the Bearer token.
    let sent = enroll::request_sms_code(&s.base, &id, &act).await.unwrap();
    assert_eq!(sent.phone_masked, "138****5678");
    {
        let s = seen.lock().unwrap();
        let (auth, body) = &s[0];
        assert_eq!(auth.as_deref(), Some("Bearer sms-token"));
        assert_eq!(body["phone"], "13812345678");
        assert_eq!(body["template"], "staff.activation");
        let c = body["params"]["code"].as_str().unwrap();
        assert!(
            c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()),
            "{body}"
        );
        let text = body["text"].as_str().unwrap();
        assert!(text.starts_with("【医签】") && text.contains(c), "{text}");
    }
    // At most one code a minute.
    let e = enroll::request_sms_code(&s.base, &id, &act)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::RateLimited);

    // Five wrong codes void it: the right one then fails too.
    let right = last_code(&seen);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        let e = enroll::enroll_with_sms(&s.base, &id, &act, Some(wrong), "手机", "246810")
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::SmsCodeInvalid);
    }
    let e = enroll::enroll_with_sms(&s.base, &id, &act, Some(&right), "手机", "246810")
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::SmsCodeInvalid);

    // A gateway failure is a clear 503 and voids nothing but that send.
    allow_resend(&s, &id).await;
    *failing.lock().unwrap() = true;
    let e = enroll::request_sms_code(&s.base, &id, &act)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::Unavailable);
    *failing.lock().unwrap() = false;

    // A fresh code enrols the phone; the SMS code and the activation code are then used up.
    allow_resend(&s, &id).await;
    enroll::request_sms_code(&s.base, &id, &act).await.unwrap();
    let fresh = last_code(&seen);
    let phone = enroll::enroll_with_sms(&s.base, &id, &act, Some(&fresh), "手机", "246810")
        .await
        .unwrap();
    assert!(!phone.serial.is_empty());
    let e = enroll::enroll_with_sms(&s.base, &id, &act, Some(&fresh), "手机2", "246810")
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::ActivationInvalid);

    // Sends are bounded per activation code (5 were claimed: ok, ok-after-void, failed, ok
    // + the refused ones do not count) and a new activation code resets the count.
    let link = crate::cosign::activation_link(&s, &token, "S001").await;
    let (_, act2) = code_of(&link);
    for i in 0..5 {
        if i > 0 {
            allow_resend(&s, &id).await;
        }
        enroll::request_sms_code(&s.base, &id, &act2).await.unwrap();
    }
    allow_resend(&s, &id).await;
    let e = enroll::request_sms_code(&s.base, &id, &act2)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::RateLimited);

    // Every attempt is in the audit log.
    let rows = sqlx::query(
        "SELECT action, outcome, detail FROM audit_log WHERE action LIKE 'cosign.enroll.%' ORDER BY seq",
    )
    .fetch_all(s.db.pool())
    .await
    .unwrap();
    let count = |action: &str, outcome: &str, needle: &str| {
        rows.iter()
            .filter(|r| {
                r.try_get::<String, _>(0).unwrap() == action
                    && r.try_get::<String, _>(1).unwrap() == outcome
                    && r.try_get::<String, _>(2).unwrap().contains(needle)
            })
            .count()
    };
    assert_eq!(
        count("cosign.enroll.begin", "denied", "SMS_CODE_INVALID"),
        6
    );
    assert_eq!(
        count("cosign.enroll.begin", "denied", "SMS_CODE_REQUIRED"),
        1
    );
    assert_eq!(count("cosign.enroll.begin", "ok", "sms"), 1);
    assert_eq!(count("cosign.enroll.sms", "ok", "138****5678"), 7);
    assert!(count("cosign.enroll.sms", "denied", "RATE_LIMITED") >= 2);
    assert_eq!(count("cosign.enroll.sms", "denied", "UNAVAILABLE"), 1);
    s.stop().await;
}
both_backends!(activation_needs_the_sms_code);

/// Without a gateway the second factor is off and the SMS route is absent; the old flow works.
#[tokio::test]
async fn without_a_gateway_activation_needs_the_code_only() {
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let link = add_staff(&s, &token, "S002", "无短信").await;
    let (id, act) = code_of(&link);
    let e = enroll::request_sms_code(&s.base, &id, &act)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::NotFound);
    enroll::enroll(&s.base, &id, &act, "手机", "246810")
        .await
        .unwrap();
    s.stop().await;
}
