//! The load generator (`tools/cosign-load`) at N = 2 against a test server, so it cannot rot:
//! enrolment through the real API, co-signing by scan and by push with the terminal hearing
//! `completed`, three-document requests signed as one round each, and the idle-socket memory
//! probe. The benchmark itself is
//! `scripts/bench-cosign.sh` (docs/performance.md).

use std::sync::Arc;
use std::time::Duration;

use cosign_load::{Admin, IdleKind, IdleTiming, Pacing, Via, idle, run_level};

use crate::both_backends;
use crate::support::{Backend, TestServer};

async fn load_generator_smoke(backend: Backend) {
    let s = TestServer::start(backend).await;
    let admin = Admin::login(
        &s.base,
        "admin",
        &s.admin_password,
        "Ward7-night-shift-2026",
    )
    .await
    .unwrap();
    let terminal = Arc::new(admin.register_terminal().await.unwrap());
    let phones: Vec<_> = admin
        .enrol_many("SMK", 2, 2)
        .await
        .unwrap()
        .into_iter()
        .map(Arc::new)
        .collect();
    for via in [Via::Scan, Via::Push] {
        let pacing = Pacing {
            per_phone: Some(3),
            // Push runs paced (three pauses per phone), scan back to back.
            pause: Duration::from_millis(if via == Via::Push { 400 } else { 0 }),
            ..Pacing::default()
        };
        let r = run_level(terminal.clone(), &phones, via, pacing, None)
            .await
            .unwrap();
        assert_eq!(r.errors, 0, "{via:?}: {:?}", r.first_error);
        assert_eq!(r.completed, 6, "{via:?}");
        assert!(r.quantile(0.5) > Duration::ZERO && r.quantile(0.99) >= r.quantile(0.5));
        assert!(r.per_second() > 0.0);
        if via == Via::Push {
            assert!(r.window >= Duration::from_millis(1200), "{:?}", r.window);
        }
    }
    // Batch: requests of three documents, each signed in one round, counted per document.
    let mut batch_terminal = admin.register_terminal().await.unwrap();
    batch_terminal.documents = 3;
    let pacing = Pacing {
        per_phone: Some(2),
        ..Pacing::default()
    };
    let r = run_level(Arc::new(batch_terminal), &phones, Via::Scan, pacing, None)
        .await
        .unwrap();
    assert_eq!(r.errors, 0, "batch: {:?}", r.first_error);
    assert_eq!((r.completed, r.documents, r.cosignatures()), (4, 3, 12));
    let rounds: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT round_id) FROM signatures WHERE request_id IN \
         (SELECT request_id FROM sign_request_documents GROUP BY request_id HAVING COUNT(*) = 3)",
    )
    .fetch_one(s.db.pool())
    .await
    .unwrap();
    assert_eq!(rounds, 4, "one round per three-document request");
    // Every co-signature is stored: 12 single and 12 batched signatures by the two doctors.
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signatures")
        .fetch_one(s.db.pool())
        .await
        .unwrap();
    assert_eq!(stored, 24);
    // The load left the audit trail intact (hash chain and MACs), as the benchmark checks too.
    let (intact, report) = crate::audit_mac::verify_cli(&s);
    assert!(intact, "{report}");
    for kind in [IdleKind::Terminal, IdleKind::Phone] {
        let r = idle(
            &terminal,
            &phones,
            kind,
            20,
            8,
            std::process::id(),
            IdleTiming {
                settle: Duration::from_millis(100),
                sample: Duration::from_millis(300),
            },
        )
        .await
        .unwrap();
        assert_eq!(r.sockets, 20);
        assert!(r.rss_before_kib > 0 && r.rss_after_kib > 0);
    }
    s.stop().await;
}
both_backends!(load_generator_smoke);
