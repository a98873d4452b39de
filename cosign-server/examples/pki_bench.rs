//! PKI benchmark (docs/performance.md, "cosign-server: TSA over HTTP").
//!
//! `tsa` mode: a bounded HTTP load generator, loopback only. It POSTs one fixed `.tsq` file
//! (`openssl ts -query -data msg -sm3 -cert -out q.tsq`) to a running server's `/tsa` from N
//! concurrent connections until `--requests` or `--seconds` is reached, and reports granted
//! tokens per second and latency percentiles.
//!
//! ```text
//! cargo run --release -p cosign-server --example pki_bench -- tsa --url http://127.0.0.1:8080/tsa --tsq q.tsq --concurrency 32 --requests 30000 --seconds 20
//! cargo run --release -p cosign-server --example pki_bench -- issue --count 500
//! ```
//!
//! `issue` mode: certificate issuance from a CSR through the library (device-held staff CA key,
//! SQLite in a temporary directory), certificates per second.
//!
//! `sign` mode: the anchor, plain SM2 signatures (Z + SM3 + sign, `SoftwareSigner`) on one
//! thread, per second; run it in the same session as `tsa` so both see the same machine load.
//!
//! With `--server-pid PID`, `tsa` also reads the server's CPU time (utime + stime from
//! `/proc/PID/stat`) before and after the run and reports server CPU per token, which does not
//! depend on how busy the shared machine is.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("tsa") => tsa(&args).await,
        Some("issue") => issue(&args).await,
        Some("sign") => sign(&args),
        _ => eprintln!(
            "usage: pki_bench tsa --url URL --tsq FILE [--concurrency N] [--requests N] [--seconds S] [--server-pid PID] | issue [--count N] | sign [--count N]"
        ),
    }
}

async fn tsa(args: &[String]) {
    let url = arg(args, "--url", "http://127.0.0.1:8080/tsa");
    assert!(
        url.starts_with("http://127.0.0.1:") || url.starts_with("http://localhost:"),
        "loopback only"
    );
    let body = bytes_of(&arg(args, "--tsq", "q.tsq"));
    let concurrency: usize = arg(args, "--concurrency", "32").parse().unwrap();
    let requests: u64 = arg(args, "--requests", "30000").parse().unwrap();
    let seconds: u64 = arg(args, "--seconds", "20").parse().unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    // Warm-up (connections, caches).
    for _ in 0..50 {
        client.post(&url).body(body.clone()).send().await.unwrap();
    }
    let server_pid = arg(args, "--server-pid", "");
    let cpu_before = cpu_seconds(&server_pid);
    let issued = Arc::new(AtomicU64::new(0));
    let granted = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        let (issued, granted) = (issued.clone(), granted.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while issued.fetch_add(1, Ordering::Relaxed) < requests && Instant::now() < deadline {
                let t = Instant::now();
                let r = client.post(&url).body(body.clone()).send().await.unwrap();
                let ok = r.status() == 200;
                let bytes = r.bytes().await.unwrap();
                // TimeStampResp ::= SEQ { SEQ { INTEGER 0 (granted) } ... }
                if ok
                    && bytes
                        .windows(5)
                        .take(8)
                        .any(|w| w == [0x30, 0x03, 0x02, 0x01, 0x00])
                {
                    granted.fetch_add(1, Ordering::Relaxed);
                }
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let g = granted.load(Ordering::Relaxed);
    println!(
        "tsa: {} requests, {g} granted in {elapsed:.2} s = {:.0} tokens/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2}; concurrency {concurrency}",
        lat.len(),
        g as f64 / elapsed,
        pct(0.5),
        pct(0.9),
        pct(0.99)
    );
    if let (Some(before), Some(after)) = (cpu_before, cpu_seconds(&server_pid)) {
        println!(
            "tsa: server CPU {:.2} s for {g} tokens = {:.0} µs CPU per token",
            after - before,
            (after - before) * 1e6 / g.max(1) as f64
        );
    }
}

/// utime + stime of a process in seconds (Linux `/proc/PID/stat`, clock ticks of 1/100 s).
fn cpu_seconds(pid: &str) -> Option<f64> {
    if pid.is_empty() {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

fn sign(args: &[String]) {
    use gm_pki::Sm2Signer;
    let count: usize = arg(args, "--count", "5000").parse().unwrap();
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let key = gm_pki::SoftwareSigner::generate(&mut rng).unwrap();
    let msg = [0x5a_u8; 64];
    for _ in 0..200 {
        key.sign(&msg).unwrap();
    }
    let started = Instant::now();
    for _ in 0..count {
        std::hint::black_box(key.sign(std::hint::black_box(&msg)).unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "sign: {count} plain SM2 signatures (Z + SM3 + sign) on one thread in {elapsed:.2} s = {:.0} signatures/s, {:.0} µs each",
        count as f64 / elapsed,
        elapsed * 1e6 / count as f64
    );
}

fn bytes_of(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn issue(args: &[String]) {
    use gm_pki::Sm2Signer;
    let count: usize = arg(args, "--count", "500").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = cosign_server::config::Config::for_test(dir.path(), None);
    cosign_server::init::prepare_data_dir(&config).unwrap();
    let db = cosign_server::store::Db::open(&config.database_url)
        .await
        .unwrap();
    let audit = Arc::new(cosign_server::audit::AuditLog::new());
    let keys = cosign_server::keys::Keys::open_or_init(&config, &db, audit.clone(), "bench")
        .await
        .unwrap();
    let pki = cosign_server::pki::Pki::load_or_create(&config, &db, keys.device(), &audit, "bench")
        .await
        .unwrap();
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let mut csrs = Vec::new();
    for i in 0..count {
        let key = gm_pki::SoftwareSigner::generate(&mut rng).unwrap();
        let subject = gm_pki::DnBuilder::new()
            .country("CN")
            .organization("第一人民医院")
            .common_name(format!("医生 {i}"))
            .build()
            .unwrap();
        let _ = key.public_key();
        csrs.push(gm_pki::csr::build_csr(&subject, &key, &[]).unwrap());
    }
    let started = Instant::now();
    for (i, csr) in csrs.iter().enumerate() {
        let profile = cosign_server::pki::IssueProfile::Staff(cosign_server::pki::StaffInfo {
            name: format!("医生{i}"),
            staff_id: format!("E{i:05}"),
            department: "心内科".into(),
            hospital: "第一人民医院".into(),
            resident_id: Some("11010519491231002X".into()),
            licence: Some("110440000012345".into()),
        });
        pki.issue_from_csr(
            &db,
            "staff",
            csr,
            profile,
            Duration::from_secs(365 * 86_400),
            &cosign_server::pki::Actor::SYSTEM,
        )
        .await
        .unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "issue: {count} certificates from CSRs (parse + PoP check + staff profile + device signature + SQLite insert + audit) in {elapsed:.2} s = {:.0} certificates/s",
        count as f64 / elapsed
    );
    db.close().await;
}
