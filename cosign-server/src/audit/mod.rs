//! The audit trail: append-only and hash-chained with SM3, so any edit, insertion or deletion of
//! an earlier entry breaks the chain that `cosign-server audit verify` recomputes.
//!
//! Entry n stores `hash_n = SM3(hash_{n-1} || canonical(entry_n))` with `hash_0` the all-zero
//! genesis value. The canonical form is JSON with a fixed field order. Appends are serialised in
//! process and retried on a sequence conflict, so several server instances can share one
//! database. (An HMAC-SM3 under a crypto-device key and periodic timestamp anchoring are added
//! with the key-management work; see docs/architecture.md.)

use serde::Serialize;
use sm3::{Digest, Sm3};
use sqlx::Row;
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::store::Db;

/// Hash that precedes the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, in one entry.
#[derive(Debug, Clone, Serialize)]
pub struct Event<'a> {
    /// Who did it: `admin:<name>`, `app:<id>`, `system`, `cli`.
    pub actor: &'a str,
    /// Stable dotted action name, e.g. `auth.login`.
    pub action: &'a str,
    /// What it was done to.
    pub target: &'a str,
    /// `ok`, `denied`, `failed`.
    pub outcome: &'a str,
    /// Extra facts as a JSON object (never secrets).
    pub detail: serde_json::Value,
    /// The HTTP request id, or empty.
    pub request_id: &'a str,
}

#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    at: i64,
    actor: &'a str,
    action: &'a str,
    target: &'a str,
    outcome: &'a str,
    detail: &'a str,
    request_id: &'a str,
}

fn chain_hash(prev: &str, c: &Canonical<'_>) -> Result<String> {
    let body = serde_json::to_vec(c).map_err(|_| Error::Internal("audit entry serialisation"))?;
    let mut h = Sm3::new();
    h.update(prev.as_bytes());
    h.update(&body);
    Ok(hex::encode(h.finalize()))
}

/// Appends entries and verifies the chain.
#[derive(Debug, Default)]
pub struct AuditLog {
    append_lock: Mutex<()>,
}

impl AuditLog {
    /// A log writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one entry at time `at` (unix ms) and returns its sequence number.
    pub async fn append(&self, db: &Db, at: i64, event: &Event<'_>) -> Result<i64> {
        let _guard = self.append_lock.lock().await;
        let detail = event.detail.to_string();
        let mut last_err = None;
        for attempt in 0..8u64 {
            if attempt > 0 {
                // Back off so the other writer can commit (SQLite reports a busy write lock at once).
                tokio::time::sleep(std::time::Duration::from_millis(
                    5 * attempt + rand::random::<u64>() % 10,
                ))
                .await;
            }
            // Write lock first (SQLite): reading the head and then writing in a deferred
            // transaction fails at once whenever any other write committed in between.
            let mut tx = db.begin_write().await?;
            let prev = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
            let (prev_seq, prev_hash) = match prev {
                Some(row) => (row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?),
                None => (0, GENESIS.to_owned()),
            };
            let seq = prev_seq + 1;
            let canonical = Canonical {
                seq,
                at,
                actor: event.actor,
                action: event.action,
                target: event.target,
                outcome: event.outcome,
                detail: &detail,
                request_id: event.request_id,
            };
            let hash = chain_hash(&prev_hash, &canonical)?;
            let inserted = sqlx::query(
                "INSERT INTO audit_log (seq, at, actor, action, target, outcome, detail, request_id, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(seq)
            .bind(at)
            .bind(event.actor)
            .bind(event.action)
            .bind(event.target)
            .bind(event.outcome)
            .bind(&detail)
            .bind(event.request_id)
            .bind(&prev_hash)
            .bind(&hash)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {
                    tx.commit().await?;
                    return Ok(seq);
                }
                // Another instance took this sequence number: read the new head and try again.
                Err(e) => {
                    tx.rollback().await.ok();
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.map_or(Error::Internal("audit append retries exhausted"), Error::Db))
    }

    /// Recomputes the whole chain. Returns the number of entries and the head hash.
    pub async fn verify(db: &Db) -> Result<(i64, String)> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, target, outcome, detail, request_id, prev_hash, hash FROM audit_log ORDER BY seq",
        )
        .fetch_all(db.pool())
        .await?;
        let mut expected_prev = GENESIS.to_owned();
        let mut expected_seq = 1;
        for row in &rows {
            let seq: i64 = row.try_get(0)?;
            let broken = |reason: &str| Error::AuditBroken {
                seq,
                reason: reason.to_owned(),
            };
            if seq != expected_seq {
                return Err(broken(&format!("sequence gap: expected {expected_seq}")));
            }
            let prev_hash: String = row.try_get(8)?;
            if prev_hash != expected_prev {
                return Err(broken("prev_hash does not match the previous entry"));
            }
            let (actor, action, target, outcome, detail, request_id): (
                String,
                String,
                String,
                String,
                String,
                String,
            ) = (
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
                row.try_get(5)?,
                row.try_get(6)?,
                row.try_get(7)?,
            );
            let canonical = Canonical {
                seq,
                at: row.try_get(1)?,
                actor: &actor,
                action: &action,
                target: &target,
                outcome: &outcome,
                detail: &detail,
                request_id: &request_id,
            };
            let stored: String = row.try_get(9)?;
            if chain_hash(&prev_hash, &canonical)? != stored {
                return Err(broken("content does not match its hash"));
            }
            expected_prev = stored;
            expected_seq += 1;
        }
        Ok((expected_seq - 1, expected_prev))
    }
}
