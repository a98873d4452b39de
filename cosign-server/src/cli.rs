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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
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
            db.close().await;
            print_initial_password(&created?);
            Ok(())
        }
        Command::Audit(AuditCommand::Verify(data)) => {
            let config = load(&cli.config, None, data)?;
            let (db, _, _) = open(&config).await?;
            let verified = crate::audit::AuditLog::verify(&db).await;
            db.close().await;
            let (entries, head) = verified?;
            println!("审计日志完整 / audit log intact: {entries} entries, head {head}");
            Ok(())
        }
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

impl From<std::convert::Infallible> for Error {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}
