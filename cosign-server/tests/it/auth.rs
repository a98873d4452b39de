//! Administrator sign-in through the HTTP API: one-time password, forced change, lockout, audit.

use crate::both_backends;
use crate::support::{Backend, TestServer, assert_api_error};

async fn first_login_forces_password_change(backend: Backend) {
    let s = TestServer::start(backend).await;
    let login = |user: &str, pw: &str| {
        s.client
            .post(s.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": user, "password": pw}))
            .send()
    };
    assert_api_error(
        login("admin", "wrong-password-1").await.unwrap(),
        401,
        "BAD_CREDENTIALS",
    )
    .await;
    assert_api_error(
        login("nobody", "wrong-password-1").await.unwrap(),
        401,
        "BAD_CREDENTIALS",
    )
    .await;

    let r: serde_json::Value = login("admin", &s.admin_password)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["must_change_password"], true);
    let token = r["token"].as_str().unwrap().to_owned();
    let me: serde_json::Value = s
        .client
        .get(s.url("/api/v1/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "admin");
    assert_eq!(me["role"], "sysadmin");

    // Until the password is changed, administrative calls are refused.
    let r = s
        .client
        .get(s.url("/api/v1/audit/verify"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_api_error(r, 403, "PASSWORD_CHANGE_REQUIRED").await;

    let change = |old: &str, new: &str| {
        s.client
            .post(s.url("/api/v1/auth/password"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"old_password": old, "new_password": new}))
            .send()
    };
    assert_api_error(
        change(&s.admin_password, "short1").await.unwrap(),
        400,
        "WEAK_PASSWORD",
    )
    .await;
    assert_api_error(
        change("not-the-old-one-1", "Ward7-night-shift-2026")
            .await
            .unwrap(),
        401,
        "BAD_CREDENTIALS",
    )
    .await;
    assert_eq!(
        change(&s.admin_password, "Ward7-night-shift-2026")
            .await
            .unwrap()
            .status(),
        204
    );

    // The one-time password is gone; the new one works.
    assert_api_error(
        login("admin", &s.admin_password).await.unwrap(),
        401,
        "BAD_CREDENTIALS",
    )
    .await;
    assert_eq!(
        login("admin", "Ward7-night-shift-2026")
            .await
            .unwrap()
            .status(),
        200
    );

    let v: serde_json::Value = s
        .client
        .get(s.url("/api/v1/audit/verify"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["intact"], true, "{v}");
    // init, 2 denied logins, login, denied change, change, denied login, login = 8, after the
    // 12 first-start key/PKI entries (master.init, secret.import of the audit MAC key,
    // key.generate × 8, pki.init, secret.import of the resident-ID key)
    assert_eq!(v["entries"], 20, "{v}");

    assert_eq!(
        s.client
            .post(s.url("/api/v1/auth/logout"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let r = s
        .client
        .get(s.url("/api/v1/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_api_error(r, 401, "UNAUTHENTICATED").await;
    s.stop().await;
}
both_backends!(first_login_forces_password_change);

async fn repeated_failures_lock_the_account(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.security.max_failed_logins = 3).await;
    let login = |pw: &str| {
        s.client
            .post(s.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "admin", "password": pw}))
            .send()
    };
    for _ in 0..3 {
        assert_api_error(
            login("wrong-password-1").await.unwrap(),
            401,
            "BAD_CREDENTIALS",
        )
        .await;
    }
    // Even the right password is refused while locked, and the message says what to do.
    let body = assert_api_error(
        login(&s.admin_password).await.unwrap(),
        423,
        "ACCOUNT_LOCKED",
    )
    .await;
    assert!(
        body["message"].as_str().unwrap().contains("管理员"),
        "{body}"
    );
    let locks: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'auth.lock'")
            .fetch_one(s.db.pool())
            .await
            .unwrap();
    assert_eq!(locks, 1);
    s.stop().await;
}
both_backends!(repeated_failures_lock_the_account);
