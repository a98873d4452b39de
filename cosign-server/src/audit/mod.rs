//! The audit trail: append-only, hash-chained with SM3, authenticated with HMAC-SM3 under a key
//! held in the crypto device, and anchored by time-stamp tokens from the local TSA.
//!
//! Entry n stores `hash_n = SM3(hash_{n-1} || canonical(entry_n))` with `hash_0` the all-zero
//! genesis value, and `mac_n = HMAC-SM3(K, "YQAUDIT-MAC1\n" || hash_{n-1} || "\n" ||
//! canonical(entry_n) || "\n" || hash_n)` where K is the `audit-mac` secret in the crypto device
//! (created on the first start after migration 0009; it never leaves the device). Because each
//! MAC covers the chain hash, which covers every earlier entry, someone with write access to the
//! database but not the device can neither edit an entry nor re-forge the chain after it: the
//! first rewritten entry's MAC no longer matches. The canonical form is JSON with a fixed field
//! order.
//!
//! Entries without a MAC are accepted only before the first authenticated entry ("legacy":
//! written before migration 0009 or before the key existed; they are chain-checked, and every
//! later MAC covers them) and for the device events written while it is still locked
//! ([`UNAUTHENTICATED_ACTIONS`]). Anywhere else a missing MAC is a break.
//!
//! Anchors (`audit_anchors`): every `anchor_every_entries` entries or `anchor_every_minutes`
//! minutes, a token from the local TSA over `SM3("YQAUDIT1\n" || seq || "\n" || hash_seq)`;
//! verification checks each token's signature (TSA certificate issued by our root) and that the
//! anchored entry still exists with that hash, which also reveals a truncated tail.
//!
//! Appends are serialised in process ([`AuditLog::lock`]) and an append whose sequence number
//! another instance took meanwhile reads the head again, so several server instances can share
//! one database. An entry is appended in the transaction of the change it records
//! ([`AuditLog::append_in`]) or in one of its own ([`AuditLog::append`]).

use std::sync::Arc;

use crypto_device::{CryptoDevice, KeyId, with_secret};
use serde::Serialize;
use sm3::{Digest, Sm3};
use sqlx::Row;
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::store::Db;

/// Hash that precedes the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Name of the MAC key's row in `audit_keys`.
pub const MAC_KEY_NAME: &str = "audit-mac";

/// The advisory lock key that orders appends across instances on PostgreSQL ("YQAUDIT").
const PG_APPEND_LOCK_KEY: i64 = 0x0059_5141_5544_4954;

/// `AnyConnection::backend_name` of sqlx's PostgreSQL driver.
const POSTGRES_BACKEND: &str = "PostgreSQL";

/// The actions that may lack a MAC after authentication began: the crypto device writes them
/// while it is still locked (a failed unlock, a master-key restore from backup shares).
pub const UNAUTHENTICATED_ACTIONS: &[&str] = &["master.unlock_failed", "master.restore"];

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

fn canonical_bytes(c: &Canonical<'_>) -> Result<Vec<u8>> {
    serde_json::to_vec(c).map_err(|_| Error::Internal("audit entry serialisation"))
}

fn chain_hash(prev: &str, body: &[u8]) -> String {
    let mut h = Sm3::new();
    h.update(prev.as_bytes());
    h.update(body);
    hex::encode(h.finalize())
}

/// The MAC of one entry (hex), given the key bytes.
fn entry_mac(key: &[u8], prev: &str, body: &[u8], hash: &str) -> String {
    hex::encode(crypto_device::prims::hmac_sm3(
        key,
        &[
            b"YQAUDIT-MAC1\n",
            prev.as_bytes(),
            b"\n",
            body,
            b"\n",
            hash.as_bytes(),
        ],
    ))
}

/// The bytes an anchor's time-stamp token covers (its imprint is their SM3).
pub fn anchor_data(seq: i64, hash: &str) -> Vec<u8> {
    format!("YQAUDIT1\n{seq}\n{hash}").into_bytes()
}

/// The MAC key: the device and the key id in it.
#[derive(Clone)]
struct MacKey {
    device: Arc<dyn CryptoDevice>,
    key: KeyId,
}

/// The append lock held by a transaction that appends ([`AuditLog::lock`]).
#[derive(Debug)]
pub struct AppendLock<'a> {
    _guard: tokio::sync::MutexGuard<'a, ()>,
}

/// A computed entry, ready to insert.
struct Entry {
    seq: i64,
    at: i64,
    actor: String,
    action: String,
    target: String,
    outcome: String,
    detail: String,
    request_id: String,
    prev_hash: String,
    hash: String,
    mac: Option<String>,
}

impl Entry {
    /// The insert, doing nothing if the sequence number is taken.
    fn insert(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, target, outcome, detail, request_id, \
             prev_hash, hash, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (seq) DO NOTHING",
        )
        .bind(self.seq)
        .bind(self.at)
        .bind(&self.actor)
        .bind(&self.action)
        .bind(&self.target)
        .bind(&self.outcome)
        .bind(&self.detail)
        .bind(&self.request_id)
        .bind(&self.prev_hash)
        .bind(&self.hash)
        .bind(&self.mac)
    }
}

/// Appends entries and verifies the chain.
#[derive(Default)]
pub struct AuditLog {
    append_lock: Mutex<()>,
    mac: std::sync::RwLock<Option<MacKey>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("authenticated", &self.mac_key().is_some())
            .finish()
    }
}

/// Why verification stopped at an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// An entry is missing (or sequence numbers jump).
    Gap,
    /// The entry's content or `prev_hash` does not match its chain hash.
    HashMismatch,
    /// The entry's HMAC-SM3 does not match (content re-forged by someone without the key).
    MacMismatch,
    /// An entry after the first authenticated one carries no MAC.
    MacMissing,
    /// An anchor's token is invalid, or its entry is gone or no longer has the anchored hash.
    AnchorMismatch,
}

impl Problem {
    /// Chinese text for reports.
    pub fn zh(self) -> &'static str {
        match self {
            Self::Gap => "记录缺失（序号不连续）",
            Self::HashMismatch => "哈希不符（内容或链被改动）",
            Self::MacMismatch => "MAC 不符（无密钥者伪造或改动）",
            Self::MacMissing => "缺少 MAC",
            Self::AnchorMismatch => "时间戳锚点不符",
        }
    }
}

/// The first broken entry.
#[derive(Debug, Clone, Serialize)]
pub struct Broken {
    /// Its sequence number (for a gap: the first missing one).
    pub seq: i64,
    /// What is wrong.
    pub problem: Problem,
    /// Details in English.
    pub reason: String,
}

/// What [`AuditLog::check`] found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Entries read.
    pub entries: i64,
    /// Hash of the last entry read (the chain head).
    pub head: String,
    /// MAC-less entries before the first authenticated one (chain-checked only).
    pub legacy: i64,
    /// MAC-less entries after the first authenticated one that the rules allow
    /// ([`UNAUTHENTICATED_ACTIONS`]; covered by any later MAC, not by their own).
    pub unauthenticated: i64,
    /// Entries whose MAC was checked (0 when no device was given).
    pub authenticated: i64,
    /// Whether MACs were checked (a device and the key were available).
    pub macs_checked: bool,
    /// Anchors checked.
    pub anchors: i64,
    /// Sequence number of the newest anchor.
    pub last_anchor: Option<i64>,
    /// The first broken entry, or `None` when everything verifies.
    pub broken: Option<Broken>,
}

impl Report {
    /// Whether the log verified.
    pub fn intact(&self) -> bool {
        self.broken.is_none()
    }
}

struct Row2 {
    seq: i64,
    prev: String,
    body: Vec<u8>,
    hash: String,
    mac: Option<String>,
    action: String,
}

impl AuditLog {
    /// A log writer (entries carry no MAC until [`AuditLog::attach_mac_key`]).
    pub fn new() -> Self {
        Self::default()
    }

    fn mac_key(&self) -> Option<MacKey> {
        self.mac.read().ok().and_then(|g| g.clone())
    }

    /// Loads the audit MAC key recorded in `audit_keys` (creating it in the device when none
    /// is recorded; if another instance records one first, ours is destroyed) and MACs every
    /// later entry with it.
    pub async fn attach_mac_key(&self, db: &Db, device: Arc<dyn CryptoDevice>) -> Result<()> {
        let key = if let Some(k) = mac_key_id(db).await? {
            k
        } else {
            let bytes = zeroize::Zeroizing::new(device.random(32).await?);
            let ours = device.import_secret(MAC_KEY_NAME, bytes).await?;
            sqlx::query(
                "INSERT INTO audit_keys (name, key_id, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(MAC_KEY_NAME)
            .bind(ours.as_str())
            .bind(crate::clock::now_ms())
            .execute(db.pool())
            .await?;
            let recorded = mac_key_id(db)
                .await?
                .ok_or(Error::Internal("audit MAC key not recorded"))?;
            if recorded != ours {
                device.destroy(&ours).await?;
            }
            recorded
        };
        // Fails now, not at the first append, if the key is unusable.
        with_secret(&*device, &key, |_| Ok(())).await?;
        if let Ok(mut g) = self.mac.write() {
            *g = Some(MacKey { device, key });
        }
        Ok(())
    }

    /// Appends one entry at time `at` (unix ms) and returns its sequence number, in a
    /// transaction of its own ([`AuditLog::append_in`]).
    pub async fn append(&self, db: &Db, at: i64, event: &Event<'_>) -> Result<i64> {
        let mut tx = db.begin_write().await?;
        let lock = self.lock().await;
        let seq = self.append_in(&lock, &mut tx, at, event).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// The append lock, held from the head read of [`AuditLog::append_in`] until the
    /// transaction that appends committed: entries are numbered in commit order (the next
    /// appender reads the head only once this entry is visible). Take it only while holding
    /// that transaction, after its other writes and right before appending: the holder then
    /// needs nothing but the key pool (`Db::key_pool`, for the MAC key) and its commit, so
    /// tasks waiting for the lock, whatever connections and row locks they hold, cannot
    /// block it. On SQLite the transaction holds the write lock first (`Db::begin_write`),
    /// so the lock is never contended there.
    pub async fn lock(&self) -> AppendLock<'_> {
        AppendLock {
            _guard: self.append_lock.lock().await,
        }
    }

    /// Appends one entry inside `tx`, which commits it with the change it records (one commit
    /// instead of two). `_lock` is [`AuditLog::lock`], taken after the transaction's other
    /// writes and kept until after its commit (asked for, not used: it proves the caller
    /// holds it).
    ///
    /// Instances sharing a PostgreSQL database also take turns, through a transaction-level
    /// advisory lock taken before the head read: without it, an appender that is slow between
    /// its head read and its insert (the MAC is made there, inside the device) lost the next
    /// number to the other instances again and again, and concurrent first starts exhausted
    /// the retries. The retry stays for an instance that does not take that lock (an older
    /// version during a rolling upgrade): if it took the sequence number meanwhile, the insert
    /// does nothing (it waited for that instance's commit) and the head is read again.
    pub async fn append_in(
        &self,
        _lock: &AppendLock<'_>,
        tx: &mut sqlx::AnyConnection,
        at: i64,
        event: &Event<'_>,
    ) -> Result<i64> {
        if tx.backend_name() == POSTGRES_BACKEND {
            // Released by the commit (or rollback), after the entry is visible to the next holder.
            sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
                .bind(PG_APPEND_LOCK_KEY)
                .execute(&mut *tx)
                .await?;
        }
        let detail = event.detail.to_string();
        for _ in 0..8 {
            let entry = self.next_entry(&mut *tx, at, event, &detail).await?;
            let inserted = entry.insert().execute(&mut *tx).await?;
            if inserted.rows_affected() == 1 {
                return Ok(entry.seq);
            }
        }
        Err(Error::Internal("audit append retries exhausted"))
    }

    /// The entry after the current head: chain hash and (inside the device) MAC.
    async fn next_entry<'e, E>(
        &self,
        db: E,
        at: i64,
        event: &Event<'_>,
        detail: &str,
    ) -> Result<Entry>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let prev = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(db)
            .await?;
        let (prev_seq, prev_hash) = match prev {
            Some(row) => (row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?),
            None => (0, GENESIS.to_owned()),
        };
        let seq = prev_seq + 1;
        let body = canonical_bytes(&Canonical {
            seq,
            at,
            actor: event.actor,
            action: event.action,
            target: event.target,
            outcome: event.outcome,
            detail,
            request_id: event.request_id,
        })?;
        let hash = chain_hash(&prev_hash, &body);
        let mac = match self.mac_key() {
            Some(k) => Some(
                with_secret(&*k.device, &k.key, |key| {
                    Ok(entry_mac(key, &prev_hash, &body, &hash))
                })
                .await?,
            ),
            None => None,
        };
        Ok(Entry {
            seq,
            at,
            actor: event.actor.to_owned(),
            action: event.action.to_owned(),
            target: event.target.to_owned(),
            outcome: event.outcome.to_owned(),
            detail: detail.to_owned(),
            request_id: event.request_id.to_owned(),
            prev_hash,
            hash,
            mac,
        })
    }

    /// Recomputes the hash chain only (no MACs, no anchors). Returns the number of entries
    /// and the head hash, or [`Error::AuditBroken`] naming the first bad entry.
    pub async fn verify(db: &Db) -> Result<(i64, String)> {
        let report = Self::check(db, None, None).await?;
        match report.broken {
            None => Ok((report.entries, report.head)),
            Some(b) => Err(Error::AuditBroken {
                seq: b.seq,
                reason: b.reason,
            }),
        }
    }

    /// Full verification: the chain; with `device`, every entry's MAC under the recorded audit
    /// key (and that no entry after the first authenticated one lacks a MAC); with `root` (the
    /// root CA certificate), every anchor's time-stamp token and the entry it anchors.
    pub async fn check(
        db: &Db,
        device: Option<&dyn CryptoDevice>,
        root: Option<&gm_pki::ParsedCertificate>,
    ) -> Result<Report> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, target, outcome, detail, request_id, prev_hash, hash, mac \
             FROM audit_log ORDER BY seq",
        )
        .fetch_all(db.pool())
        .await?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: i64 = row.try_get(0)?;
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
            let body = canonical_bytes(&Canonical {
                seq,
                at: row.try_get(1)?,
                actor: &actor,
                action: &action,
                target: &target,
                outcome: &outcome,
                detail: &detail,
                request_id: &request_id,
            })?;
            entries.push(Row2 {
                seq,
                prev: row.try_get(8)?,
                body,
                hash: row.try_get(9)?,
                mac: row.try_get(10)?,
                action,
            });
        }
        drop(rows);
        let mut report = Report {
            entries: 0,
            head: GENESIS.to_owned(),
            legacy: 0,
            unauthenticated: 0,
            authenticated: 0,
            macs_checked: false,
            anchors: 0,
            last_anchor: None,
            broken: None,
        };
        // MACs, computed in one pass inside the device.
        let key = match device {
            Some(_) => mac_key_id(db).await?,
            None => None,
        };
        let macs: Option<Vec<String>> = match (device, &key) {
            (Some(device), Some(key)) => {
                let inputs: Vec<(&str, &[u8], &str)> = entries
                    .iter()
                    .map(|e| (e.prev.as_str(), e.body.as_slice(), e.hash.as_str()))
                    .collect();
                Some(
                    with_secret(device, key, move |k| {
                        Ok(inputs
                            .iter()
                            .map(|(p, b, h)| entry_mac(k, p, b, h))
                            .collect())
                    })
                    .await?,
                )
            }
            _ => None,
        };
        report.macs_checked = macs.is_some();
        let mut expected_prev = GENESIS.to_owned();
        let mut expected_seq = 1;
        let mut seen_mac = false;
        for (i, e) in entries.iter().enumerate() {
            let broken = |seq: i64, problem: Problem, reason: String| Broken {
                seq,
                problem,
                reason,
            };
            if e.seq != expected_seq {
                report.broken = Some(broken(
                    expected_seq,
                    Problem::Gap,
                    format!(
                        "entry {expected_seq} is missing (the next entry present is {})",
                        e.seq
                    ),
                ));
                break;
            }
            if e.prev != expected_prev {
                report.broken = Some(broken(
                    e.seq,
                    Problem::HashMismatch,
                    "prev_hash does not match the previous entry".into(),
                ));
                break;
            }
            if chain_hash(&e.prev, &e.body) != e.hash {
                report.broken = Some(broken(
                    e.seq,
                    Problem::HashMismatch,
                    "content does not match its hash".into(),
                ));
                break;
            }
            match (&e.mac, &macs) {
                (Some(stored), Some(macs)) => {
                    let ok: bool =
                        subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), macs[i].as_bytes()).into();
                    if !ok {
                        report.broken = Some(broken(
                            e.seq,
                            Problem::MacMismatch,
                            "HMAC-SM3 does not match: the entry was rewritten without the audit key".into(),
                        ));
                        break;
                    }
                    report.authenticated += 1;
                    seen_mac = true;
                }
                (Some(_), None) => seen_mac = true,
                (None, _) if !seen_mac => report.legacy += 1,
                (None, _) if UNAUTHENTICATED_ACTIONS.contains(&e.action.as_str()) => {
                    report.unauthenticated += 1;
                }
                (None, _) => {
                    report.broken = Some(broken(
                        e.seq,
                        Problem::MacMissing,
                        "no MAC after authentication began".into(),
                    ));
                    break;
                }
            }
            if device.is_some() && key.is_none() && e.mac.is_some() {
                report.broken = Some(broken(
                    e.seq,
                    Problem::MacMismatch,
                    "entry carries a MAC but no audit key is recorded".into(),
                ));
                break;
            }
            expected_prev.clone_from(&e.hash);
            expected_seq += 1;
        }
        report.entries = expected_seq - 1;
        report.head = expected_prev;
        if let Some(root) = root {
            check_anchors(db, &entries, root, &mut report).await?;
        }
        Ok(report)
    }

    /// Anchors the current chain head with a token from the local TSA, unless it is anchored
    /// already. Returns the anchored sequence number.
    pub async fn anchor_now(db: &Db, pki: &crate::pki::Pki) -> Result<Option<i64>> {
        let Some(row) = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(db.pool())
            .await?
        else {
            return Ok(None);
        };
        let (seq, hash): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
        let imprint = gm_pki::signer::sm3(&anchor_data(seq, &hash));
        let query =
            gm_pki::tsp::build_request(gm_pki::cms::HashAlg::Sm3, &imprint, None, None, true)?;
        let reply = pki.timestamp(query).await;
        let token = doc_sign::timestamp::token_from_response(&reply)
            .map_err(|_| Error::Internal("the local TSA refused an audit anchor"))?;
        sqlx::query(
            "INSERT INTO audit_anchors (seq, hash, token, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (seq) DO NOTHING",
        )
        .bind(seq)
        .bind(&hash)
        .bind(token)
        .bind(crate::clock::now_ms())
        .execute(db.pool())
        .await?;
        Ok(Some(seq))
    }

    /// Anchors when `every_entries` entries were added since the last anchor, or
    /// `every_ms` passed and the head moved. Without any anchor yet, time counts from
    /// `started_ms` (this instance's start), so a fresh server does not anchor at once.
    pub async fn anchor_if_due(
        db: &Db,
        pki: &crate::pki::Pki,
        every_entries: i64,
        every_ms: i64,
        now_ms: i64,
        started_ms: i64,
    ) -> Result<Option<i64>> {
        let head: Option<i64> = sqlx::query("SELECT MAX(seq) FROM audit_log")
            .fetch_one(db.pool())
            .await?
            .try_get(0)?;
        let Some(head) = head else { return Ok(None) };
        let last =
            sqlx::query("SELECT seq, created_at FROM audit_anchors ORDER BY seq DESC LIMIT 1")
                .fetch_optional(db.pool())
                .await?;
        let due = match last {
            None => head >= every_entries || now_ms - started_ms >= every_ms,
            Some(r) => {
                let (seq, at): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
                head > seq && (head - seq >= every_entries || now_ms - at >= every_ms)
            }
        };
        if due {
            Self::anchor_now(db, pki).await
        } else {
            Ok(None)
        }
    }
}

/// Starts the anchoring task of one instance (checks every 15 s or `every_ms`, if shorter).
pub fn spawn_anchoring(
    db: Db,
    pki: Arc<crate::pki::Pki>,
    every_entries: i64,
    every_ms: i64,
) -> tokio::task::JoinHandle<()> {
    let tick = std::time::Duration::from_millis(
        u64::try_from(every_ms.clamp(200, 15_000)).unwrap_or(15_000),
    );
    let started = crate::clock::now_ms();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        loop {
            interval.tick().await;
            let now = crate::clock::now_ms();
            if let Err(e) =
                AuditLog::anchor_if_due(&db, &pki, every_entries, every_ms, now, started).await
            {
                tracing::warn!(error = %e, "audit anchoring failed; retrying later");
            }
        }
    })
}

async fn mac_key_id(db: &Db) -> Result<Option<KeyId>> {
    Ok(sqlx::query("SELECT key_id FROM audit_keys WHERE name = $1")
        .bind(MAC_KEY_NAME)
        .fetch_optional(db.pool())
        .await?
        .map(|r| r.try_get::<String, _>(0))
        .transpose()?
        .map(KeyId))
}

async fn check_anchors(
    db: &Db,
    entries: &[Row2],
    root: &gm_pki::ParsedCertificate,
    report: &mut Report,
) -> Result<()> {
    let rows = sqlx::query("SELECT seq, hash, token FROM audit_anchors ORDER BY seq")
        .fetch_all(db.pool())
        .await?;
    let root_key = root.public_key()?;
    for r in &rows {
        let (seq, hash, token): (i64, String, Vec<u8>) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        if report.broken.as_ref().is_some_and(|b| b.seq <= seq) {
            break;
        }
        let token_ok = gm_pki::tsp::verify_token_for_data(&token, &anchor_data(seq, &hash), None)
            .ok()
            .and_then(|v| v.tsa_cert)
            .is_some_and(|c| c.verify_signature(&root_key).is_ok());
        let entry = usize::try_from(seq - 1).ok().and_then(|i| entries.get(i));
        let reason = if token_ok {
            match entry {
                None => Some(format!(
                    "anchored entry {seq} is gone: the log was truncated after it was anchored"
                )),
                Some(e) if e.seq != seq || e.hash != hash => {
                    Some("the entry no longer has the hash that was anchored".to_owned())
                }
                Some(_) => None,
            }
        } else {
            Some("the anchor's time-stamp token does not verify (TSA of our root)".to_owned())
        };
        if let Some(reason) = reason {
            report.broken = Some(Broken {
                seq,
                problem: Problem::AnchorMismatch,
                reason,
            });
            break;
        }
        report.anchors += 1;
        report.last_anchor = Some(seq);
    }
    Ok(())
}
