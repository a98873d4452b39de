//! Store-level behaviour on both backends: migrations, the audit chain and tampering.

use std::sync::Arc;

use cosign_server::audit::{AuditLog, Event};
use cosign_server::error::Error;
use cosign_server::keys::Keys;
use cosign_server::store::{Db, MigrationState};
use sqlx::Row;

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

/// Several instances, each with its own pool, log and MAC key handle, appending at once: none
/// gives up, and the result is one chain with every MAC valid. (On PostgreSQL a slow appender,
/// whose MAC is made between its head read and its insert, used to lose the next number to
/// the others until its retries ran out.) Each instance appends one entry at a time, so the
/// test holds about two connections per instance.
async fn instances_appending_at_once_all_succeed(backend: Backend) {
    const INSTANCES: usize = 6;
    const EACH: usize = 40;
    let data = TestData::new(backend).await;
    let config = data.config();
    cosign_server::init::prepare_data_dir(&config).unwrap();
    let first = Db::open(&config.database_url).await.unwrap();
    let keys = Keys::open_or_init(&config, &first, Arc::new(AuditLog::new()), "test")
        .await
        .unwrap();
    let before = AuditLog::verify(&first).await.unwrap().0;

    let start = Arc::new(tokio::sync::Barrier::new(INSTANCES));
    let mut instances = Vec::new();
    for i in 0..INSTANCES {
        let (config, start) = (config.clone(), start.clone());
        instances.push(tokio::spawn(async move {
            let db = Db::open(&config.database_url).await.unwrap();
            let log = Arc::new(AuditLog::new());
            Keys::open(&config, &db, log.clone(), "test").await.unwrap();
            start.wait().await;
            let mut failed = Vec::new();
            for n in 0..EACH {
                if let Err(e) = log.append(&db, 1, &event(i * EACH + n)).await {
                    failed.push(e.to_string());
                }
            }
            db.close().await;
            failed
        }));
    }
    let mut failed = Vec::new();
    for i in instances {
        failed.extend(i.await.unwrap());
    }
    assert!(
        failed.is_empty(),
        "{} appends failed: {failed:?}",
        failed.len()
    );
    let report = AuditLog::check(&first, Some(&*keys.device()), None)
        .await
        .unwrap();
    assert!(report.intact(), "{:?}", report.broken);
    let appended = i64::try_from(INSTANCES * EACH).unwrap();
    assert_eq!(report.entries, before + appended);
    assert!(report.macs_checked);
    assert!(report.authenticated >= appended);
    first.close().await;
}
both_backends!(instances_appending_at_once_all_succeed);

/// Writers queued behind a long write transaction leave the pool to readers. On SQLite they
/// wait for their turn (`Db::write_turn`) without a connection; before the queue, each waited
/// inside `BEGIN IMMEDIATE` (SQLite's busy handler) holding one of the pool's four
/// connections, so a reader found none until the writer ahead committed. Every queued write
/// lands once the first commits, and one that never commits (dropped) gives up its turn.
async fn queued_writers_leave_the_pool_to_readers(backend: Backend) {
    const WRITERS: usize = 6;
    let data = TestData::new(backend).await;
    let db = Db::open(&data.config().database_url).await.unwrap();
    let insert = |key: String| {
        sqlx::query("INSERT INTO server_meta (key, value) VALUES ($1, 'x')").bind(key)
    };

    let mut first = db.begin_write().await.unwrap();
    insert("queue-first".into())
        .execute(&mut *first)
        .await
        .unwrap();
    let mut writers = Vec::new();
    for n in 0..WRITERS {
        let db = db.clone();
        writers.push(tokio::spawn(async move {
            let mut tx = db.begin_write().await?;
            insert(format!("queue-{n}")).execute(&mut *tx).await?;
            tx.commit().await
        }));
    }
    // Let every writer reach its wait.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        sqlx::query("SELECT COUNT(*) FROM server_meta WHERE key LIKE 'queue-%'")
            .fetch_one(db.pool()),
    )
    .await
    .expect("a reader waited for a connection behind queued writers")
    .unwrap();
    if backend == Backend::Sqlite {
        // One writer at a time: the queued ones wait for the first's commit.
        assert_eq!(read.get::<i64, _>(0), 0, "a queued writer committed early");
    }
    first.commit().await.unwrap();
    for w in writers {
        w.await.unwrap().unwrap();
    }

    // A transaction dropped without a commit rolls back and lets the next writer in.
    let mut abandoned = db.begin_write().await.unwrap();
    insert("queue-abandoned".into())
        .execute(&mut *abandoned)
        .await
        .unwrap();
    drop(abandoned);
    let mut next = db.begin_write().await.unwrap();
    insert("queue-last".into())
        .execute(&mut *next)
        .await
        .unwrap();
    next.commit().await.unwrap();

    let mut rows: Vec<String> = sqlx::query("SELECT key FROM server_meta WHERE key LIKE 'queue-%'")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    rows.sort();
    let mut expected: Vec<String> = (0..WRITERS).map(|n| format!("queue-{n}")).collect();
    expected.extend(["queue-first".into(), "queue-last".into()]);
    expected.sort();
    assert_eq!(rows, expected);
    db.close().await;
}
both_backends!(queued_writers_leave_the_pool_to_readers);
