//! Store-level behaviour on both backends: migrations, the audit chain and tampering.

use cosign_server::audit::{AuditLog, Event};
use cosign_server::error::Error;
use cosign_server::store::{Db, MigrationState};

use crate::both_backends;
use crate::support::{Backend, TestData};

fn event(n: usize) -> Event<'static> {
    Event {
        actor: "cli",
        action: "test.event",
        target: "t",
        outcome: "ok",
        detail: serde_json::json!({ "n": n }),
        request_id: "",
    }
}

async fn audit_chain_detects_tampering(backend: Backend) {
    let data = TestData::new(backend).await;
    let db = Db::open(&data.config().database_url).await.unwrap();
    assert_eq!(db.readiness().await.unwrap(), MigrationState::Current);
    let log = AuditLog::new();
    for n in 0..5 {
        assert_eq!(
            log.append(
                &db,
                1_700_000_000_000 + i64::try_from(n).unwrap(),
                &event(n)
            )
            .await
            .unwrap(),
            i64::try_from(n).unwrap() + 1
        );
    }
    let (entries, head) = AuditLog::verify(&db).await.unwrap();
    assert_eq!(entries, 5);
    assert_eq!(head.len(), 64);

    // Rewriting history is detected at the edited entry.
    sqlx::query("UPDATE audit_log SET outcome = 'denied' WHERE seq = 3")
        .execute(db.pool())
        .await
        .unwrap();
    match AuditLog::verify(&db).await {
        Err(Error::AuditBroken { seq: 3, .. }) => {}
        other => panic!("tampering not detected: {other:?}"),
    }
    sqlx::query("UPDATE audit_log SET outcome = 'ok' WHERE seq = 3")
        .execute(db.pool())
        .await
        .unwrap();
    AuditLog::verify(&db).await.unwrap();

    // So is deleting an entry: the missing sequence number is named.
    sqlx::query("DELETE FROM audit_log WHERE seq = 2")
        .execute(db.pool())
        .await
        .unwrap();
    assert!(matches!(
        AuditLog::verify(&db).await,
        Err(Error::AuditBroken { seq: 2, .. })
    ));
    db.close().await;
}
both_backends!(audit_chain_detects_tampering);

async fn concurrent_appends_keep_one_chain(backend: Backend) {
    let data = TestData::new(backend).await;
    let url = data.config().database_url;
    let db = Db::open(&url).await.unwrap();
    // Two writers standing for two server instances sharing one database.
    let (a, b) = (
        std::sync::Arc::new(AuditLog::new()),
        std::sync::Arc::new(AuditLog::new()),
    );
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (db, log) = (db.clone(), if i % 2 == 0 { a.clone() } else { b.clone() });
        tasks.push(tokio::spawn(
            async move { log.append(&db, 1, &event(i)).await },
        ));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(AuditLog::verify(&db).await.unwrap().0, 20);
    db.close().await;
}
both_backends!(concurrent_appends_keep_one_chain);
