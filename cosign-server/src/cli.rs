//! The command line (clap). Help texts are bilingual: Simplified Chinese, then English.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, LogFormat, Overrides};
use crate::error::{Error, Result};
use crate::serve::{Server, open, shutdown_signal};

/// Yiqian 医签 协同签名服务器 / co-signing server.
#[derive(Debug, Parser)]
#[command(
    name = "cosign-server",
    version,
    about = "医签协同签名服务器 / Yiqian co-signing server",
    long_about = "医签（Yiqian）协同签名服务器：医护人员 SM2 协同签名、患者事件证书签名、本地 CA/时间戳/OCSP、文档签章与审计。\n\
                  Yiqian co-signing server: two-party SM2 signing for clinicians, event-certificate signing for \
                  patients, local CA/TSA/OCSP, document signing and audit.\n\n\
                  配置顺序 / precedence: 命令行参数 flags > 环境变量 COSIGN_* > cosign.toml > 默认值 defaults."
)]
pub struct Cli {
    /// 配置文件路径（不存在时按默认值创建）/ configuration file (created with defaults if missing)
    #[arg(
        long,
        global = true,
        env = "COSIGN_CONFIG",
        default_value = "cosign.toml"
    )]
    config: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// 启动服务（首次启动时初始化数据目录）/ run the server (initialises a fresh data directory)
    Serve(ServeArgs),
    /// 仅执行数据库迁移 / apply database migrations and exit
    Migrate(DataArgs),
    /// 初始化数据目录与首个管理员，打印一次性密码 / create the data directory and first administrator; prints the one-time password
    Init(InitArgs),
    /// 审计日志操作 / audit log operations
    #[command(subcommand)]
    Audit(AuditCommand),
    /// 密码设备与密钥管理（每项操作均记入审计日志）/ crypto device and key management (every operation is audited)
    #[command(subcommand)]
    Keys(KeysCommand),
    /// 验证 PDF 文件中的签名，输出报告（JSON 或中文文本/HTML）/ verify the signatures of a PDF file and print a report
    Verify(VerifyArgs),
    /// 本院 PKI 维护（记入审计日志）/ local PKI maintenance (audited)
    #[command(subcommand)]
    Pki(PkiCommand),
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// 为时间戳或 OCSP 证书更换新密钥并重新签发（重启服务后生效）/ roll the TSA or an OCSP responder over to a new key and certificate (takes effect when the server restarts)
    Rollover(RolloverArgs),
}

#[derive(Debug, Args)]
struct RolloverArgs {
    /// 机构名：tsa、ocsp-staff、ocsp-patient、ocsp-seal / authority: tsa, ocsp-staff, ocsp-patient, ocsp-seal
    name: String,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// 待验证的 PDF 文件 / the PDF file
    file: PathBuf,
    /// 输出格式：json、text（中文）、html（中文）、pdf（中文，写到标准输出）/ output format
    #[arg(long, default_value = "json", value_parser = ["json", "text", "html", "pdf"])]
    format: String,
    /// 信任的根证书（PEM，可重复）；给出时校验签名证书链 / trusted root certificate (PEM, repeatable); enables chain validation
    #[arg(long = "anchor")]
    anchors: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// 列出全部密钥（不含密钥材料）/ list every key (no key material)
    List(DataArgs),
    /// 主密钥封装、KEK 与密钥统计 / master key sealing, KEKs and key counts
    Status(DataArgs),
    /// 轮换密钥加密密钥 KEK（可中断，重复执行即可完成）/ rotate the key-encryption key (safe to interrupt; run again to finish)
    RotateKek(DataArgs),
    /// 将主密钥拆分为 M-of-N 备份分量 / split the master key into M-of-N backup shares
    Backup(BackupArgs),
    /// 由备份分量恢复主密钥封装文件 / restore the sealed master key from backup shares
    Restore(RestoreArgs),
}

#[derive(Debug, Args)]
struct BackupArgs {
    #[command(flatten)]
    data: DataArgs,
    /// 恢复所需的最少分量数 M / shares needed to restore (M)
    #[arg(long)]
    threshold: u8,
    /// 保管人姓名（每人一份分量，可重复）/ custodian name, one share each (repeat the flag)
    #[arg(long = "custodian", required = true)]
    custodians: Vec<String>,
    /// 将每份分量写入此目录的单独文件（权限 0600），而不是打印 / write each share to its own file (mode 0600) in this directory instead of printing
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RestoreArgs {
    #[command(flatten)]
    data: DataArgs,
    /// 分量文件（每个文件一份分量）/ share files, one share per file
    #[arg(required = true)]
    share_files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct DataArgs {
    /// 数据目录 / data directory
    #[arg(long = "data", env = "COSIGN_DATA")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// 监听地址 / listen address, e.g. 127.0.0.1:8080
    #[arg(long, env = "COSIGN_LISTEN")]
    listen: Option<String>,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
struct InitArgs {
    #[command(flatten)]
    data: DataArgs,
    /// 首个管理员用户名 / first administrator's user name
    #[arg(long, default_value = "admin")]
    admin: String,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// 校验审计日志哈希链完整性 / verify the audit log's hash chain
    Verify(DataArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("错误 / error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("错误 / error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration (flags > env > file > defaults) and sets up logging.
pub(crate) fn load_config(
    cli_config: &std::path::Path,
    data_dir: Option<PathBuf>,
) -> Result<Config> {
    load(cli_config, None, DataArgs { data_dir })
}

fn load(cli_config: &std::path::Path, listen: Option<String>, data: DataArgs) -> Result<Config> {
    let config = Config::load_or_create(
        cli_config,
        &Overrides {
            listen,
            data_dir: data.data_dir,
        },
    )?;
    init_logging(&config);
    Ok(config)
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    // A second initialisation (tests) is harmless: keep the first subscriber.
    let _ = match config.log_format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = load(&cli.config, args.listen, args.data)?;
            let public = config.public_url.clone();
            let (server, created) = Server::bind(config.clone()).await?;
            let addr = server.local_addr()?;
            if let Some(created) = created {
                print_initial_password(&created);
            }
            println!(
                "医签 Yiqian cosign-server {} 已启动 / listening on http://{addr}",
                env!("CARGO_PKG_VERSION")
            );
            println!("  数据目录 data:      {}", config.data_dir.display());
            println!(
                "  数据库 database:    {}",
                crate::config::redact_url(&config.database_url)
            );
            println!("  健康 health:        {public}/healthz");
            println!("  就绪 ready:         {public}/readyz");
            println!("  指标 metrics:       {public}/metrics");
            println!("  接口 API:           {public}/api/v1/version");
            println!("  证书 PKI:           {public}/pki");
            println!("  时间戳 TSA:         {public}/tsa");
            println!("  OCSP:               {public}/ocsp");
            if config.cosign.demo_terminal {
                println!("  终端演示 demo:      {public}/terminal/demo");
            }
            println!("  按 Ctrl-C 停止 / press Ctrl-C to stop");
            server.run(shutdown_signal()).await
        }
        Command::Migrate(data) => {
            let config = load(&cli.config, None, data)?;
            crate::init::prepare_data_dir(&config)?;
            let db = crate::store::Db::open(&config.database_url).await?;
            println!("数据库已是最新 / database migrated ({})", db.kind().name());
            db.close().await;
            Ok(())
        }
        Command::Init(args) => {
            let config = load(&cli.config, None, args.data)?;
            crate::init::prepare_data_dir(&config)?;
            let db = crate::store::Db::open(&config.database_url).await?;
            let audit = crate::audit::AuditLog::new();
            let created = crate::init::initialise(&db, &audit, &config, &args.admin).await;
            let services = match &created {
                Ok(_) => {
                    let audit = std::sync::Arc::new(audit);
                    Some(crate::serve::open_services(&config, &db, &audit, "cli").await)
                }
                Err(_) => None,
            };
            db.close().await;
            let created = created?;
            if let Some(services) = services {
                let (_, pki) = services?;
                print_pki(&pki);
            }
            print_initial_password(&created);
            Ok(())
        }
        Command::Keys(command) => crate::keys::cli::run(&cli.config, command.into()).await,
        Command::Verify(args) => verify_file(&args),
        Command::Pki(PkiCommand::Rollover(args)) => {
            let config = load(&cli.config, None, args.data)?;
            let (db, audit, _) = open(&config).await?;
            let done = match crate::serve::open_services(&config, &db, &audit, "cli").await {
                Ok((_, pki)) => pki.rollover(&db, &args.name, &crate::pki::Actor::CLI).await,
                Err(e) => Err(e.into()),
            };
            db.close().await;
            let done = done.map_err(|e| match e {
                crate::pki::PkiError::Server(e) => e,
                other => crate::error::Error::CheckFailed(other.to_string()),
            })?;
            println!(
                "{} 已更换密钥与证书 / rolled over: serial {} -> {}, notAfter {}",
                done.name,
                done.old_serial,
                done.new_serial,
                crate::clock::rfc3339(done.not_after)
            );
            println!("请重启服务以启用新证书 / restart the server to use it");
            Ok(())
        }
        Command::Audit(AuditCommand::Verify(data)) => {
            let config = load(&cli.config, None, data)?;
            let (db, audit, _) = open(&config).await?;
            // The device checks the MACs, the root CA certificate the anchors' TSA.
            let report = match crate::serve::open_services(&config, &db, &audit, "cli").await {
                Ok((keys, pki)) => {
                    let root = pki.authority("root").map(|a| a.cert.clone());
                    crate::audit::AuditLog::check(&db, Some(&*keys.device()), root.as_ref()).await
                }
                Err(e) => Err(e),
            };
            db.close().await;
            let report = report?;
            if let Some(b) = &report.broken {
                return Err(Error::AuditBroken {
                    seq: b.seq,
                    reason: format!(
                        "{} / {} — {}",
                        b.problem.zh(),
                        serde_json::to_value(b.problem)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        b.reason
                    ),
                });
            }
            println!(
                "审计日志完整 / audit log intact: {} entries, head {}",
                report.entries, report.head
            );
            println!(
                "  MAC 已验证 / authenticated: {}; 未认证旧记录 / unauthenticated legacy: {}; 设备锁定时记录 / written while the device was locked: {}",
                report.authenticated, report.legacy, report.unauthenticated
            );
            println!(
                "  时间戳锚点 / anchors: {} (last at entry {})",
                report.anchors,
                report
                    .last_anchor
                    .map_or_else(|| "-".to_owned(), |s| s.to_string())
            );
            Ok(())
        }
    }
}

/// `verify FILE`: no configuration, database or key needed; exits non-zero when the report
/// is not ok (no signature, or any signature invalid).
fn verify_file(args: &VerifyArgs) -> Result<()> {
    let limit = crate::documents::Settings::default().max_upload as u64;
    let len = std::fs::metadata(&args.file)
        .map_err(|e| Error::io(&args.file, e))?
        .len();
    if len > limit * 8 {
        return Err(Error::Config(format!(
            "{} is larger than {} bytes",
            args.file.display(),
            limit * 8
        )));
    }
    let pdf = std::fs::read(&args.file).map_err(|e| Error::io(&args.file, e))?;
    let mut anchors = Vec::new();
    for a in &args.anchors {
        let text = std::fs::read_to_string(a).map_err(|e| Error::io(a, e))?;
        anchors.push(gm_pki::ParsedCertificate::from_pem(&text)?);
    }
    let report = if anchors.is_empty() {
        doc_sign::verify_pdf(&pdf)
    } else {
        doc_sign::verify_pdf_trusted(
            &pdf,
            &doc_sign::TrustOptions {
                anchors: &anchors,
                intermediates: &[],
                crls: &[],
                time: crate::pki::now_seconds(),
                require_revocation: false,
            },
        )
    }
    .map_err(|e| {
        Error::CheckFailed(format!(
            "{}：无法读取 / cannot read: {e}",
            args.file.display()
        ))
    })?;
    if args.format == "pdf" {
        use std::io::Write as _;
        let bytes = crate::documents::report::to_pdf_zh(&report, &pdf)
            .map_err(|e| Error::Config(e.to_string()))?;
        std::io::stdout()
            .write_all(&bytes)
            .map_err(|e| Error::io("<stdout>", e))?;
    }
    let out = match args.format.as_str() {
        "pdf" => String::new(),
        "text" => crate::documents::report::to_text_zh(&report, &pdf),
        "html" => crate::documents::report::to_html_zh(&report, &pdf),
        _ => format!("{:#}\n", crate::documents::report::to_json(&report, &pdf)),
    };
    print!("{out}");
    if report.ok() {
        Ok(())
    } else {
        Err(Error::CheckFailed(
            "验证未通过 / verification failed (see the report)".into(),
        ))
    }
}

fn print_pki(pki: &crate::pki::Pki) {
    println!("已在密码设备中创建 CA 体系 / CA hierarchy created with keys in the crypto device:");
    for a in pki.authorities() {
        println!(
            "  {:<13} {}  serial {}",
            a.name,
            a.cert.subject_string(),
            a.cert.serial_hex()
        );
    }
}

fn print_initial_password(created: &crate::init::Initialised) {
    println!("已创建首个管理员 / first administrator created:");
    println!("  用户名 user:     {}", created.admin_username);
    println!(
        "  一次性密码 one-time password: {}",
        created.admin_password.as_str()
    );
    println!(
        "  请立即登录并修改密码；此密码不会再次显示。/ Sign in and change it now; it is not shown again."
    );
}

impl From<KeysCommand> for crate::keys::cli::KeysAction {
    fn from(c: KeysCommand) -> Self {
        use crate::keys::cli::KeysAction as A;
        match c {
            KeysCommand::List(d) => A::List {
                data_dir: d.data_dir,
            },
            KeysCommand::Status(d) => A::Status {
                data_dir: d.data_dir,
            },
            KeysCommand::RotateKek(d) => A::RotateKek {
                data_dir: d.data_dir,
            },
            KeysCommand::Backup(b) => A::Backup {
                data_dir: b.data.data_dir,
                threshold: b.threshold,
                custodians: b.custodians,
                out_dir: b.out_dir,
            },
            KeysCommand::Restore(r) => A::Restore {
                data_dir: r.data.data_dir,
                share_files: r.share_files,
            },
        }
    }
}

impl From<std::convert::Infallible> for Error {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}
