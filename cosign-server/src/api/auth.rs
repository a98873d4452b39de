//! Administrator sign-in: `POST /api/v1/auth/login`, `GET /api/v1/auth/me`,
//! `POST /api/v1/auth/password`, `POST /api/v1/auth/logout`.
//!
//! Failures never say whether the user name exists; consecutive failures lock the account;
//! every outcome is audited. Only SM3 hashes of bearer tokens are stored.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use cosign_proto::v1::{ChangePasswordRequest, ErrorCode, LoginRequest, LoginResponse, Me};
use rand::RngCore;
use rand::rngs::OsRng;
use sm3::{Digest, Sm3};

use super::{ApiFailure, ApiJson, AppState, RequestId};
use crate::audit::Event;
use crate::auth::password;
use crate::clock::now_ms;
use crate::store::accounts::Account;

const MAX_USERNAME: usize = 64;
const MAX_PASSWORD: usize = 128;

fn token_hash(token: &str) -> String {
    hex::encode(Sm3::digest(token.as_bytes()))
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

async fn audit(
    state: &AppState,
    rid: &RequestId,
    actor: &str,
    action: &str,
    target: &str,
    outcome: &str,
) -> Result<(), ApiFailure> {
    let event = Event {
        actor,
        action,
        target,
        outcome,
        detail: serde_json::json!({}),
        request_id: &rid.0,
    };
    state.audit.append(&state.db, now_ms(), &event).await?;
    Ok(())
}

/// `POST /api/v1/auth/login`.
pub async fn login(
    State(state): State<AppState>,
    rid: RequestId,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiFailure> {
    if req.username.is_empty()
        || req.username.len() > MAX_USERNAME
        || req.password.len() > MAX_PASSWORD
    {
        return Err(ApiFailure::with(
            ErrorCode::InvalidArgument,
            format!("用户名须为 1–{MAX_USERNAME} 个字符，密码不超过 {MAX_PASSWORD} 个字符。"),
            format!(
                "username must be 1–{MAX_USERNAME} characters and password at most {MAX_PASSWORD}."
            ),
        ));
    }
    let sec = state.config.security.clone();
    let now = now_ms();
    let account = state.db.account_by_name(&req.username).await?;
    let actor = format!("admin:{}", req.username);
    if let Some(until) = account
        .as_ref()
        .and_then(|a| a.locked_until)
        .filter(|until| *until > now)
    {
        audit(&state, &rid, &actor, "auth.login", &req.username, "locked").await?;
        return Err(ApiFailure::with(
            ErrorCode::AccountLocked,
            format!(
                "账号因多次登录失败已被锁定，请于 {} 后再试或联系系统管理员解锁。",
                crate::clock::rfc3339(until)
            ),
            format!(
                "The account is locked until {}; wait or ask an administrator to unlock it.",
                crate::clock::rfc3339(until)
            ),
        ));
    }
    // Verify even for unknown names so timing does not reveal which names exist.
    let stored = account.as_ref().map_or_else(
        || password::hash("", sec.password_iterations),
        |a| a.password_hash.clone(),
    );
    let candidate = zeroize::Zeroizing::new(req.password.clone());
    let ok = tokio::task::spawn_blocking(move || password::verify(&candidate, &stored))
        .await
        .map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    let Some(account) = account.filter(|_| ok) else {
        if let Some(a) = state.db.account_by_name(&req.username).await? {
            let locked = state
                .db
                .record_login_failure(&a.id, sec.max_failed_logins, now + ms(sec.lockout), now)
                .await?;
            if locked {
                audit(&state, &rid, &actor, "auth.lock", &req.username, "ok").await?;
            }
        }
        audit(&state, &rid, &actor, "auth.login", &req.username, "denied").await?;
        return Err(ApiFailure::new(ErrorCode::BadCredentials));
    };
    state.db.record_login_success(&account.id, now).await?;
    let mut raw = [0u8; 32];
    OsRng.fill_bytes(&mut raw);
    let token = hex::encode(raw);
    let ttl = sec.session_ttl;
    state
        .db
        .create_session(&token_hash(&token), &account.id, now, now + ms(ttl))
        .await?;
    audit(&state, &rid, &actor, "auth.login", &req.username, "ok").await?;
    Ok(Json(LoginResponse {
        token,
        expires_in: ttl.as_secs(),
        must_change_password: account.must_change_password,
    }))
}

/// A signed-in administrator, whether or not the password still has to be changed.
#[derive(Debug)]
pub struct Session {
    account: Account,
    token_hash: String,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiFailure;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| ApiFailure::new(ErrorCode::Unauthenticated))?;
        let token_hash = token_hash(token);
        let account = state
            .db
            .session_account(&token_hash, now_ms())
            .await?
            .ok_or_else(|| ApiFailure::new(ErrorCode::Unauthenticated))?;
        Ok(Self {
            account,
            token_hash,
        })
    }
}

impl Session {
    /// The signed-in account's login name.
    pub fn username(&self) -> &str {
        &self.account.username
    }

    /// The signed-in account's role (`sysadmin`, `secadmin`, `auditor`).
    pub fn role(&self) -> &str {
        &self.account.role
    }
}

/// A signed-in administrator who has already replaced the one-time password.
#[derive(Debug)]
pub struct Admin(pub Session);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiFailure;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        if session.account.must_change_password {
            return Err(ApiFailure::new(ErrorCode::PasswordChangeRequired));
        }
        Ok(Self(session))
    }
}

/// `GET /api/v1/auth/me`.
pub async fn me(session: Session) -> Json<Me> {
    let a = session.account;
    Json(Me {
        username: a.username,
        role: a.role,
        must_change_password: a.must_change_password,
    })
}

/// `POST /api/v1/auth/password`: replaces the password and ends the account's other sessions.
pub async fn change_password(
    State(state): State<AppState>,
    rid: RequestId,
    session: Session,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiFailure> {
    let actor = format!("admin:{}", session.account.username);
    if req.old_password.len() > MAX_PASSWORD || req.new_password.len() > MAX_PASSWORD {
        return Err(ApiFailure::new(ErrorCode::InvalidArgument));
    }
    let stored = session.account.password_hash.clone();
    let old = zeroize::Zeroizing::new(req.old_password.clone());
    let ok = tokio::task::spawn_blocking(move || password::verify(&old, &stored))
        .await
        .map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    if !ok {
        audit(
            &state,
            &rid,
            &actor,
            "auth.password_change",
            &session.account.username,
            "denied",
        )
        .await?;
        return Err(ApiFailure::new(ErrorCode::BadCredentials));
    }
    if !password::acceptable(&req.new_password) || req.new_password == req.old_password {
        return Err(ApiFailure::new(ErrorCode::WeakPassword));
    }
    let iterations = state.config.security.password_iterations;
    let new = zeroize::Zeroizing::new(req.new_password.clone());
    let verifier = tokio::task::spawn_blocking(move || password::hash(&new, iterations))
        .await
        .map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    state
        .db
        .set_password(
            &session.account.id,
            &verifier,
            &session.token_hash,
            now_ms(),
        )
        .await?;
    audit(
        &state,
        &rid,
        &actor,
        "auth.password_change",
        &session.account.username,
        "ok",
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/auth/logout`.
pub async fn logout(
    State(state): State<AppState>,
    rid: RequestId,
    session: Session,
) -> Result<StatusCode, ApiFailure> {
    state.db.delete_session(&session.token_hash).await?;
    let actor = format!("admin:{}", session.account.username);
    audit(
        &state,
        &rid,
        &actor,
        "auth.logout",
        &session.account.username,
        "ok",
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/audit/verify`: recomputes the audit hash chain, checks every entry's HMAC-SM3
/// in the crypto device and every time-stamp anchor. Reveals only counts, the head hash and the
/// first broken entry, so every administrative role may ask (reading entries is the auditor's).
pub async fn audit_verify(
    State(state): State<AppState>,
    Admin(_session): Admin,
) -> Result<Json<serde_json::Value>, ApiFailure> {
    let device = state.keys.device();
    let root = state.pki.authority("root").map(|a| a.cert.clone());
    let r = crate::audit::AuditLog::check(&state.db, Some(&*device), root.as_ref()).await?;
    let mut out = serde_json::json!({
        "intact": r.intact(),
        "entries": r.entries,
        "head": r.head,
        "authenticated": r.authenticated,
        "legacy_unauthenticated": r.legacy,
        "unauthenticated_locked_device": r.unauthenticated,
        "anchors": r.anchors,
        "last_anchor": r.last_anchor,
    });
    if let Some(b) = &r.broken {
        tracing::error!(seq = b.seq, problem = ?b.problem, reason = %b.reason, "audit log broken");
        out["first_bad_entry"] = b.seq.into();
        out["problem"] = serde_json::to_value(b.problem).unwrap_or_default();
        out["reason"] = b.reason.clone().into();
        out["reason_zh"] = b.problem.zh().into();
    }
    Ok(Json(out))
}
