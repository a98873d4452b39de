//! Audit authentication (issue 6): every entry's HMAC-SM3 under the audit key in the crypto
//! device, time-stamp anchors from the local TSA, and verification through the API and the
//! binary naming the first broken entry — against an attacker with database write access but
//! without the device, who rewrites an entry and recomputes every later chain hash.

use std::process::Command;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use sm3::{Digest, Sm3};
use sqlx::Row;

use crate::both_backends;
use crate::support::{Backend, TestServer};

const BIN: &str = env!("CARGO_BIN_EXE_cosign-server");

/// The canonical form as docs/architecture.md states it (fixed field order), written here
/// independently of the server's code.
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

async fn entries(s: &TestServer) -> Vec<Entry> {
    sqlx::query(
        "SELECT seq, at, actor, action, target, outcome, detail, request_id, prev_hash, hash, mac \
         FROM audit_log ORDER BY seq",
    )
    .fetch_all(s.db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| Entry {
        seq: r.try_get(0).unwrap(),
        at: r.try_get(1).unwrap(),
        actor: r.try_get(2).unwrap(),
        action: r.try_get(3).unwrap(),
        target: r.try_get(4).unwrap(),
        outcome: r.try_get(5).unwrap(),
        detail: r.try_get(6).unwrap(),
        request_id: r.try_get(7).unwrap(),
        prev_hash: r.try_get(8).unwrap(),
        hash: r.try_get(9).unwrap(),
        mac: r.try_get(10).unwrap(),
    })
    .collect()
}

fn hash_of(prev: &str, e: &Entry) -> String {
    let body = serde_json::to_vec(&Canonical {
        seq: e.seq,
        at: e.at,
        actor: &e.actor,
        action: &e.action,
        target: &e.target,
        outcome: &e.outcome,
        detail: &e.detail,
        request_id: &e.request_id,
    })
    .unwrap();
    let mut h = Sm3::new();
    h.update(prev.as_bytes());
    h.update(&body);
    hex::encode(h.finalize())
}

/// Writes `list` back with every chain hash recomputed from the first entry on (what an
/// attacker with SQL access can do); MACs are left as they are (the attacker lacks the key).
async fn rewrite_chain(s: &TestServer, list: &mut [Entry]) {
    let mut prev = "0".repeat(64);
    for e in list.iter_mut() {
        e.prev_hash.clone_from(&prev);
        e.hash = hash_of(&prev, e);
        sqlx::query(
            "UPDATE audit_log SET detail = $1, prev_hash = $2, hash = $3, mac = $4 WHERE seq = $5",
        )
        .bind(&e.detail)
        .bind(&e.prev_hash)
        .bind(&e.hash)
        .bind(&e.mac)
        .bind(e.seq)
        .execute(s.db.pool())
        .await
        .unwrap();
        prev.clone_from(&e.hash);
    }
}

async fn verify_api(s: &TestServer, token: &str) -> Value {
    let r = s
        .client
        .get(s.url("/api/v1/audit/verify"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// `cosign-server audit verify` on the server's data directory and database.
pub(crate) fn verify_cli(s: &TestServer) -> (bool, String) {
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(cwd.path())
        .env_remove("COSIGN_LISTEN")
        .env_remove("COSIGN_CONFIG")
        .env_remove("COSIGN_MASTER_PASSPHRASE")
        .env("COSIGN_DATABASE_URL", &s.config().database_url)
        .args(["audit", "verify", "--data", s.data_dir().to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn anchors(s: &TestServer) -> Vec<i64> {
    sqlx::query("SELECT seq FROM audit_anchors ORDER BY seq")
        .fetch_all(s.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get(0).unwrap())
        .collect()
}

async fn audit_macs_and_anchors_name_the_first_forged_entry(backend: Backend) {
    let s = TestServer::start_with(backend, |c| {
        c.audit.anchor_every_entries = 3;
        c.audit.anchor_every = Duration::from_millis(300);
    })
    .await;
    let token = s.admin_token().await;
    for i in 0..6 {
        crate::cosign::add_staff(&s, &token, &format!("A{i:03}"), "审计测试").await;
    }
    // The anchoring task stamps the head (the test keeps the log still meanwhile).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let head: i64 = loop {
        let head: i64 = sqlx::query("SELECT MAX(seq) FROM audit_log")
            .fetch_one(s.db.pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        if anchors(&s).await.last() == Some(&head) {
            break head;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no anchor at the head"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Intact: every entry after the key was created carries a MAC that verifies; the few
    // written before it on first start (administrator, device creation) are legacy.
    let v = verify_api(&s, &token).await;
    assert_eq!(v["intact"], true, "{v}");
    assert!(v["entries"].as_i64().unwrap() >= head, "{v}");
    assert!(v["authenticated"].as_i64().unwrap() >= 12, "{v}");
    assert!(v["legacy_unauthenticated"].as_i64().unwrap() >= 1, "{v}");
    assert!(v["anchors"].as_i64().unwrap() >= 1, "{v}");
    let (ok, out) = verify_cli(&s);
    assert!(
        ok && out.contains("audit log intact") && out.contains("anchors"),
        "{out}"
    );

    let original = entries(&s).await;
    let first_mac = original.iter().position(|e| e.mac.is_some()).unwrap();
    assert!(original[first_mac..].iter().all(|e| e.mac.is_some()));
    let victim = original
        .iter()
        .find(|e| e.action == "cosign.staff.create" && e.target == "A002")
        .unwrap()
        .seq;

    // 1. Rewrite one entry's detail and recompute its hash and every later one: the chain is
    //    consistent again, but the entry's MAC no longer matches.
    let mut forged = entries(&s).await;
    forged[usize::try_from(victim - 1).unwrap()].detail = r#"{"forged":true}"#.into();
    rewrite_chain(&s, &mut forged).await;
    let v = verify_api(&s, &token).await;
    assert_eq!(v["intact"], false, "{v}");
    assert_eq!(v["first_bad_entry"], victim, "{v}");
    assert_eq!(v["problem"], "mac_mismatch", "{v}");
    let (ok, out) = verify_cli(&s);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("entry {victim}"))
            && out.contains("mac_mismatch")
            && out.contains("MAC 不符"),
        "{out}"
    );

    // 2. Dropping the MAC as well does not help: after authentication began a MAC is required.
    forged[usize::try_from(victim - 1).unwrap()].mac = None;
    rewrite_chain(&s, &mut forged).await;
    let v = verify_api(&s, &token).await;
    assert_eq!(
        (v["first_bad_entry"].as_i64(), v["problem"].as_str()),
        (Some(victim), Some("mac_missing")),
        "{v}"
    );

    // 3. Restored, the log verifies again.
    let mut restored = entries(&s).await;
    for (e, o) in restored.iter_mut().zip(&original) {
        e.detail.clone_from(&o.detail);
        e.mac.clone_from(&o.mac);
    }
    rewrite_chain(&s, &mut restored).await;
    assert_eq!(verify_api(&s, &token).await["intact"], true);

    // 4. A deleted entry is a gap named by its sequence number.
    sqlx::query("DELETE FROM audit_log WHERE seq = $1")
        .bind(victim)
        .execute(s.db.pool())
        .await
        .unwrap();
    let v = verify_api(&s, &token).await;
    assert_eq!(
        (v["first_bad_entry"].as_i64(), v["problem"].as_str()),
        (Some(victim), Some("gap")),
        "{v}"
    );
    let (ok, out) = verify_cli(&s);
    assert!(
        !ok && out.contains(&format!("entry {victim}")) && out.contains("gap"),
        "{out}"
    );

    // 5. Truncating the tail leaves a consistent chain, but the anchor over the old head
    //    names it.
    let o = original.iter().find(|e| e.seq == victim).unwrap();
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, action, target, outcome, detail, request_id, prev_hash, hash, mac) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(o.seq)
    .bind(o.at)
    .bind(&o.actor)
    .bind(&o.action)
    .bind(&o.target)
    .bind(&o.outcome)
    .bind(&o.detail)
    .bind(&o.request_id)
    .bind(&o.prev_hash)
    .bind(&o.hash)
    .bind(&o.mac)
    .execute(s.db.pool())
    .await
    .unwrap();
    assert_eq!(verify_api(&s, &token).await["intact"], true);
    sqlx::query("DELETE FROM audit_log WHERE seq >= $1")
        .bind(head)
        .execute(s.db.pool())
        .await
        .unwrap();
    let v = verify_api(&s, &token).await;
    assert_eq!(
        (v["first_bad_entry"].as_i64(), v["problem"].as_str()),
        (Some(head), Some("anchor_mismatch")),
        "{v}"
    );
    assert!(v["reason"].as_str().unwrap().contains("truncated"), "{v}");
    s.stop().await;
}
both_backends!(audit_macs_and_anchors_name_the_first_forged_entry);
