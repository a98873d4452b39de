//! `cosign-load`: drives simulated phones and terminals against a running cosign-server and
//! prints Markdown tables (see `scripts/bench-cosign.sh` and docs/performance.md).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Parser;
use cosign_load::{
    Admin, IdleKind, IdleTiming, Pacing, Via, idle, idle_table, level_table, run_level,
};

/// 协同签名压测 / co-signing load generator.
#[derive(Debug, Parser)]
#[command(name = "cosign-load", version)]
struct Args {
    /// 服务地址 / server base URL
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// 管理员 / administrator
    #[arg(long, default_value = "admin")]
    admin: String,
    /// 管理员密码（首次启动的一次性密码亦可）/ administrator password (the first start's one-time password is fine)
    #[arg(long, env = "COSIGN_LOAD_ADMIN_PASSWORD")]
    admin_password: String,
    /// 一次性密码须更换时使用的新密码 / new password if the server asks for one
    #[arg(long, default_value = "Load-test-ward-7-2026")]
    new_password: String,
    /// 并发手机数（逗号分隔）/ concurrency levels: phones signing at once
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    levels: Vec<usize>,
    /// 手机获知请求的方式 / how phones learn of requests
    #[arg(long, value_parser = ["scan", "push"], default_value = "scan")]
    via: String,
    /// 每台手机两次签名之间的停顿（毫秒；0 = 连续签名，服务满载）/ each phone's pause after a
    /// co-signature in ms (0: back to back, the server saturated; see `Pacing`)
    #[arg(long, default_value_t = 0)]
    pause_ms: u64,
    /// 预热秒数 / warm-up seconds per level (not counted)
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// 计量秒数 / measured seconds per level
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// 同时进行的注册数 / enrolments in flight during setup
    #[arg(long, default_value_t = 16)]
    enrol_parallel: usize,
    /// 工号前缀（同一数据库上重复运行时须不同）/ staff-id prefix (must differ between runs on one database)
    #[arg(long, default_value = "LD")]
    prefix: String,
    /// 空闲连接数（0 = 不测）/ idle WebSockets to open (0 = skip)
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// 空闲连接类型 / idle socket kinds (comma-separated)
    #[arg(long, value_delimiter = ',', default_value = "terminal")]
    idle_kind: Vec<String>,
    /// 建请求时不要二维码 SVG（终端自行绘制或取 qr.png）/ create requests with `qr_image: false`
    /// (terminals that draw the code from `qr_payload`)
    #[arg(long)]
    no_qr_image: bool,
    /// 每个请求的文档数，一轮一次 PIN 全部签完（批量签名）/ documents per request, all co-signed
    /// in one round with one PIN (batch signing); latency is then per request
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
    documents: u16,
    /// 服务器进程号（读取 /proc 内存）/ server PID (RSS and CPU from /proc)
    #[arg(long)]
    server_pid: Option<u32>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let via = if args.via == "push" {
        Via::Push
    } else {
        Via::Scan
    };
    let admin = Admin::login(
        &args.server,
        &args.admin,
        &args.admin_password,
        &args.new_password,
    )
    .await?;
    let mut terminal = admin.register_terminal().await?;
    terminal.qr_image = !args.no_qr_image;
    terminal.documents = usize::from(args.documents);
    let terminal = Arc::new(terminal);
    let needed = args.levels.iter().copied().max().unwrap_or(1).max(1);
    let t = std::time::Instant::now();
    let phones: Vec<Arc<_>> = admin
        .enrol_many(&args.prefix, needed, args.enrol_parallel)
        .await?
        .into_iter()
        .map(Arc::new)
        .collect();
    eprintln!(
        "enrolled {needed} doctors in {:.1} s ({:.1} per second, {} in flight)",
        t.elapsed().as_secs_f64(),
        cosign_load_rate(needed, t.elapsed()),
        args.enrol_parallel
    );
    let mut levels = Vec::new();
    for &n in &args.levels {
        let pacing = Pacing {
            warmup: Duration::from_secs(args.warmup),
            window: Duration::from_secs(args.duration),
            per_phone: None,
            pause: Duration::from_millis(args.pause_ms),
        };
        let report =
            run_level(terminal.clone(), &phones[..n], via, pacing, args.server_pid).await?;
        if let Some(e) = &report.first_error {
            eprintln!("level {n}: first error: {e}");
        }
        eprint!("{}", level_table(std::slice::from_ref(&report)));
        levels.push(report);
    }
    let mut idles = Vec::new();
    if args.idle > 0 {
        let Some(pid) = args.server_pid else {
            bail!("--idle needs --server-pid (the server's RSS is read from /proc)");
        };
        for kind in &args.idle_kind {
            let kind = match kind.as_str() {
                "terminal" => IdleKind::Terminal,
                "phone" => IdleKind::Phone,
                other => bail!("unknown idle kind {other:?} (terminal, phone)"),
            };
            let r = idle(
                &terminal,
                &phones,
                kind,
                args.idle,
                64,
                pid,
                IdleTiming {
                    settle: Duration::from_secs(5),
                    sample: Duration::from_secs(10),
                },
            )
            .await?;
            eprint!("{}", idle_table(std::slice::from_ref(&r)));
            idles.push(r);
        }
    }
    println!("{}", level_table(&levels));
    if !idles.is_empty() {
        println!("{}", idle_table(&idles));
    }
    Ok(())
}

#[allow(clippy::cast_precision_loss)]
fn cosign_load_rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}
