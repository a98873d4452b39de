//! Webhook callbacks: when a request completes, a delivery row is written in the same
//! transaction (so a completed request always has its callback queued, even across a crash),
//! and a background worker POSTs it to the app's URL with the same HMAC-SM3 headers the app
//! uses towards us (`docs/api/signing.md`; path = the URL's path and query). Failures are
//! retried with exponential backoff (1 s, 2 s, 4 s … at most 1 h, [`MAX_ATTEMPTS`] in all).
//! Several instances may run workers: a delivery is leased by a compare-and-set on `next_at`.

use std::sync::Arc;
use std::time::Duration;

use cosign_proto::v1::auth::{
    HEADER_APP_ID, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, canonical_request,
};
use crypto_device::{CryptoDevice, KeyId, with_secret};
use sm3::{Digest, Sm3};
use sqlx::Row;

use crate::clock::now_ms;
use crate::store::Db;

/// Deliveries are given up after this many attempts.
pub const MAX_ATTEMPTS: i64 = 12;
/// How long one attempt may take (also the lease).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks a webhook URL given at registration.
pub fn valid_url(url: &str) -> bool {
    url.len() <= 512
        && (url.starts_with("http://") || url.starts_with("https://"))
        && reqwest::Url::parse(url).is_ok_and(|u| u.host_str().is_some())
}

/// Queues `sign_request.completed` for every request in `request_ids` that is now completed
/// and whose app has a webhook URL (inside the caller's transaction).
pub async fn enqueue_completed(
    tx: &mut sqlx::AnyConnection,
    request_ids: &[String],
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    for id in request_ids {
        let row = sqlx::query(
            "SELECT a.app_id, a.webhook_url FROM sign_requests r JOIN client_apps a \
             ON a.app_id = r.app_id WHERE r.request_id = $1 AND r.status = 'completed' \
             AND r.completed_at = $2 AND a.webhook_url IS NOT NULL",
        )
        .bind(id)
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = row {
            let body = serde_json::json!({
                "event": "sign_request.completed",
                "request_id": id,
                "completed_at": now_ms,
            })
            .to_string();
            let app_id: String = r.try_get("app_id")?;
            let url: String = r.try_get("webhook_url")?;
            enqueue(tx, &app_id, &url, &body, now_ms).await?;
        }
    }
    Ok(())
}

/// Queues one delivery: to a client system (`app_id`, signed with its secret) or, with an
/// empty `app_id`, to the hospital message platform (Bearer token).
pub async fn enqueue(
    tx: &mut sqlx::AnyConnection,
    app_id: &str,
    url: &str,
    body: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (delivery_id, app_id, url, body, attempts, next_at, \
         created_at) VALUES ($1, $2, $3, $4, 0, $5, $5)",
    )
    .bind(format!("whd_{}", uuid::Uuid::new_v4().simple()))
    .bind(app_id)
    .bind(url)
    .bind(body)
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Runs the delivery worker until aborted; `notifier_token` authenticates deliveries to the
/// message platform.
pub fn spawn_worker(
    db: Db,
    device: Arc<dyn CryptoDevice>,
    notifier_token: Option<zeroize::Zeroizing<String>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .unwrap_or_default();
        loop {
            if let Err(e) = deliver_due(&db, &*device, &http, notifier_token.as_deref()).await {
                tracing::warn!(error = %e, "webhook worker");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

async fn deliver_due(
    db: &Db,
    device: &dyn CryptoDevice,
    http: &reqwest::Client,
    notifier_token: Option<&String>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let due = sqlx::query(
        "SELECT d.delivery_id, d.app_id, d.url, d.body, d.attempts, d.next_at, a.secret_key \
         FROM webhook_deliveries d LEFT JOIN client_apps a ON a.app_id = d.app_id \
         WHERE d.delivered_at IS NULL AND d.next_at <= $1 AND d.attempts < $2 \
         ORDER BY d.next_at LIMIT 20",
    )
    .bind(now)
    .bind(MAX_ATTEMPTS)
    .fetch_all(db.pool())
    .await?;
    for r in due {
        let id: String = r.try_get("delivery_id")?;
        let next_at: i64 = r.try_get("next_at")?;
        let attempts: i64 = r.try_get("attempts")?;
        // Lease: only the instance that moves next_at sends this attempt.
        let lease = i64::try_from(ATTEMPT_TIMEOUT.as_millis()).unwrap_or(10_000) * 2;
        let leased = sqlx::query(
            "UPDATE webhook_deliveries SET next_at = $1 WHERE delivery_id = $2 AND next_at = $3 \
             AND delivered_at IS NULL",
        )
        .bind(now + lease)
        .bind(&id)
        .bind(next_at)
        .execute(db.pool())
        .await?;
        if leased.rows_affected() != 1 {
            continue;
        }
        let app_id: String = r.try_get("app_id")?;
        let url: String = r.try_get("url")?;
        let body: String = r.try_get("body")?;
        let key: Option<String> = r.try_get("secret_key")?;
        let outcome = match key {
            Some(key) => send(http, device, &KeyId(key), &app_id, &url, body).await,
            None => notify(http, notifier_token, &url, body).await,
        };
        match outcome {
            Ok(()) => {
                sqlx::query(
                    "UPDATE webhook_deliveries SET delivered_at = $1, attempts = attempts + 1 \
                     WHERE delivery_id = $2",
                )
                .bind(now_ms())
                .bind(&id)
                .execute(db.pool())
                .await?;
            }
            Err(e) => {
                let backoff = 1000i64 << attempts.clamp(0, 12);
                sqlx::query(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, next_at = $1, \
                     last_error = $2 WHERE delivery_id = $3",
                )
                .bind(now_ms() + backoff.min(3_600_000))
                .bind(e.chars().take(300).collect::<String>())
                .bind(&id)
                .execute(db.pool())
                .await?;
            }
        }
    }
    Ok(())
}

/// A POST to the message platform with its Bearer token.
async fn notify(
    http: &reqwest::Client,
    token: Option<&String>,
    url: &str,
    body: String,
) -> Result<(), String> {
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t.as_str());
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", resp.status()))
    }
}

async fn send(
    http: &reqwest::Client,
    device: &dyn CryptoDevice,
    key: &KeyId,
    app_id: &str,
    url: &str,
    body: String,
) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    let path = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_owned(),
    };
    let ts = now_ms();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let canonical = canonical_request(
        "POST",
        &path,
        ts,
        &nonce,
        &hex::encode(Sm3::digest(body.as_bytes())),
    );
    let signature = with_secret(device, key, |secret| {
        Ok(super::clients::hmac_hex(secret, &canonical))
    })
    .await
    .map_err(|e| e.to_string())?;
    let resp = http
        .post(parsed)
        .header("content-type", "application/json")
        .header(HEADER_APP_ID, app_id)
        .header(HEADER_TIMESTAMP, ts.to_string())
        .header(HEADER_NONCE, nonce)
        .header(HEADER_SIGNATURE, signature)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", resp.status()))
    }
}
