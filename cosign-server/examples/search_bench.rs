//! Search latency over many generated documents (docs/performance.md).
//!
//! `cargo run -p cosign-server --example search_bench -- [ROWS] [DATABASE_URL]`
//! (default 1,000,000 rows in a fresh SQLite file under the temp dir). Fills `documents` and
//! `document_signers` in batches, then times 1,000 searches of mixed filter combinations through
//! `Db::search_documents` (the query the API runs) and prints p50 / p99 / max.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_possible_wrap)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use cosign_server::documents::Search;
use cosign_server::store::Db;

const TYPES: [&str; 6] = [
    "知情同意书",
    "出院记录",
    "检查报告",
    "处方",
    "护理记录",
    "手术记录",
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args.get(1).map_or(1_000_000, |a| a.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let url = args.get(2).cloned().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        )
    });
    let db = Db::open(&url).await.unwrap();
    let base: i64 = 1_767_196_800_000; // 2026-01-01 00:00 Beijing
    let started = Instant::now();
    let batch = 500;
    let mut i = 0;
    while i < rows {
        let n = batch.min(rows - i);
        let mut sql = String::from(
            "INSERT INTO documents (id, patient_id, visit_id, doc_type, department, title, status, current_version, created_at, updated_at, created_by) VALUES ",
        );
        let mut signers = String::from(
            "INSERT INTO document_signers (document_id, version, signer, cert_serial, signed_at) VALUES ",
        );
        let mut any_signer = false;
        for k in i..i + n {
            // ~10 documents a minute for a year and more; 200,000 patients, 40 departments.
            let at = base + (k as i64) * 6_000;
            let sep = if k == i { "" } else { "," };
            let _ = write!(
                sql,
                "{sep}('{k:08x}-0000-4000-8000-000000000000', 'P{:06}', 'V{:07}', '{}', 'D{:02}', '', '{}', 1, {at}, {at}, 'bench')",
                k % 200_000,
                k % 600_000,
                TYPES[k % TYPES.len()],
                (k / 7) % 40,
                if k % 2 == 0 { "signed" } else { "uploaded" },
            );
            if k % 2 == 0 {
                let sep = if any_signer { "," } else { "" };
                any_signer = true;
                let _ = write!(
                    signers,
                    "{sep}('{k:08x}-0000-4000-8000-000000000000', 1, '医师{:03}', 'aa', {at})",
                    k % 997
                );
            }
        }
        let mut tx = db.pool().begin().await.unwrap();
        sqlx::query(&sql).execute(&mut *tx).await.unwrap();
        if any_signer {
            sqlx::query(&signers).execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
        i += n;
    }
    sqlx::query(if db.kind().name() == "sqlite" {
        "ANALYZE"
    } else {
        "ANALYZE documents"
    })
    .execute(db.pool())
    .await
    .unwrap();
    println!(
        "{} rows inserted in {:.1?} ({})",
        rows,
        started.elapsed(),
        db.kind().name()
    );

    let day = 86_400_000i64;
    let mut times: Vec<Duration> = Vec::new();
    let mut by_shape: Vec<Vec<Duration>> = vec![Vec::new(); 6];
    let mut found = 0usize;
    for q in 0..1000usize {
        let mut s = Search {
            limit: 50,
            ..Search::default()
        };
        match q % 6 {
            0 => s.patient_id = Some(format!("P{:06}", (q * 7919) % 200_000)),
            1 => s.visit_id = Some(format!("V{:07}", (q * 7919) % 600_000)),
            2 => {
                s.doc_type = Some(TYPES[q % TYPES.len()].to_owned());
                s.department = Some(format!("D{:02}", q % 40));
            }
            3 => {
                s.department = Some(format!("D{:02}", q % 40));
                s.from = Some(base + (q as i64 % 60) * day);
                s.to = Some(base + (q as i64 % 60 + 7) * day);
            }
            4 => {
                s.signer = Some(format!("医师{:03}", q % 997));
                s.status = Some("signed".into());
            }
            _ => {
                s.from = Some(base + (q as i64 % 60) * day);
                s.to = Some(base + (q as i64 % 60 + 1) * day);
            }
        }
        let t = Instant::now();
        let page = db.search_documents(&s).await.unwrap();
        times.push(t.elapsed());
        by_shape[q % 6].push(t.elapsed());
        found += page.len();
    }
    for (k, mut v) in by_shape.into_iter().enumerate() {
        v.sort();
        let name = [
            "patient",
            "visit",
            "type+department",
            "department+7 days",
            "signer+status",
            "1 day",
        ][k];
        println!(
            "  {name:<18} p50 {:.2?}  max {:.2?}",
            v[v.len() / 2],
            v[v.len() - 1]
        );
    }
    times.sort();
    let pct = |per_mille: usize| times[(times.len() * per_mille / 1000).min(times.len() - 1)];
    println!(
        "1000 searches (6 filter shapes, page of 50): p50 {:.2?}  p99 {:.2?}  max {:.2?}  ({found} rows returned)",
        pct(500),
        pct(990),
        times[times.len() - 1]
    );
}
