//! `cosign-phone`: act as a doctor's phone from a terminal (integration tests, HIS vendors
//! trying the API, support staff). The PIN is read from standard input, never from the
//! command line (which other users can see in the process list).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cosign_proto::v1::qr::QrLink;
use yiqian_phone::{PhoneState, autosign, enroll, sign};

#[derive(Parser)]
#[command(name = "cosign-phone", about = "医签手机端命令行 / Yiqian phone CLI")]
struct Cli {
    /// State file (device key, sealed share, certificate).
    #[arg(long, default_value = "phone.json")]
    state: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// 激活本机 / enrol with a `yiqian://activate` link; reads the new PIN from stdin.
    Enroll {
        /// The activation link from the administrator.
        link: String,
        /// Device name shown to administrators.
        #[arg(long, default_value = "cosign-phone")]
        name: String,
        /// 短信验证码 / the SMS code (when the server asks for a second factor; get it with
        /// `cosign-phone sms-code LINK`).
        #[arg(long)]
        sms_code: Option<String>,
    },
    /// 获取激活短信验证码 / text the activation SMS code to the phone on record.
    SmsCode {
        /// The activation link from the administrator.
        link: String,
    },
    /// 扫码签名 / sign the request of a `yiqian://sign` link; reads the PIN from stdin.
    Sign {
        /// The link from the terminal's QR code.
        link: String,
    },
    /// 待签列表 / list pending tasks as JSON.
    Tasks,
    /// 批量签名 / sign every pending task whose turn it is, in one round; PIN from stdin.
    SignAll,
    /// 自动签名授权 / auto-sign authorisations.
    #[command(subcommand)]
    Autosign(AutosignCommand),
    /// 解绑本机 / unbind this phone on the server, then delete the state file.
    Unbind {
        /// Also revoke the signing certificate (and the auto-sign authorisations).
        #[arg(long)]
        revoke_certificate: bool,
        /// Reason, kept in the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand)]
enum AutosignCommand {
    /// 授权 / authorise a scope by co-signing its document; PIN from stdin.
    Create {
        /// Document type covered (repeat for several), e.g. 处方.
        #[arg(long = "doc-type", required = true)]
        doc_types: Vec<String>,
        /// Department covered (repeat for several).
        #[arg(long = "department", required = true)]
        departments: Vec<String>,
        /// Window length in hours from now.
        #[arg(long, default_value_t = 24)]
        hours: u32,
    },
    /// 授权列表 / list this doctor's authorisations as JSON.
    List,
    /// 撤销授权 / revoke an authorisation at once.
    Revoke {
        /// Authorisation id (asa_...).
        id: String,
        /// Reason, kept in the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
}

fn read_pin() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    Ok(line.trim().to_owned())
}

/// (server, staff id, activation code) of a `yiqian://activate` link.
fn activation(link: &str) -> Result<(String, String, String), String> {
    match link.parse::<QrLink>() {
        Ok(QrLink::Activate {
            server,
            staff_id,
            code,
        }) => Ok((server, staff_id, code)),
        _ => Err("not a yiqian://activate link".into()),
    }
}

async fn run(cli: Cli) -> Result<String, String> {
    match cli.command {
        Command::SmsCode { link } => {
            let (server, staff_id, code) = activation(&link)?;
            let sent = enroll::request_sms_code(&server, &staff_id, &code)
                .await
                .map_err(|e| e.to_string())?;
            serde_json::to_string(&sent).map_err(|e| e.to_string())
        }
        Command::Enroll {
            link,
            name,
            sms_code,
        } => {
            let (server, staff_id, code) = activation(&link)?;
            let pin = read_pin()?;
            let state = enroll::enroll_with_sms(
                &server,
                &staff_id,
                &code,
                sms_code.as_deref(),
                &name,
                &pin,
            )
            .await
            .map_err(|e| e.to_string())?;
            state.save(&cli.state).map_err(|e| e.to_string())?;
            Ok(
                serde_json::json!({ "device_id": state.device_id, "serial": state.serial })
                    .to_string(),
            )
        }
        Command::Sign { link } => {
            let state = PhoneState::load(&cli.state).map_err(|e| e.to_string())?;
            let pin = read_pin()?;
            let outcome = sign::sign_link(&state, &link, &pin)
                .await
                .map_err(|e| e.to_string())?;
            serde_json::to_string(&outcome).map_err(|e| e.to_string())
        }
        Command::Tasks => {
            let state = PhoneState::load(&cli.state).map_err(|e| e.to_string())?;
            let client = sign::client(&state).map_err(|e| e.to_string())?;
            let tasks = sign::tasks(&client).await.map_err(|e| e.to_string())?;
            serde_json::to_string(&tasks).map_err(|e| e.to_string())
        }
        Command::SignAll => {
            let state = PhoneState::load(&cli.state).map_err(|e| e.to_string())?;
            let client = sign::client(&state).map_err(|e| e.to_string())?;
            let mut items = Vec::new();
            for t in sign::tasks(&client).await.map_err(|e| e.to_string())? {
                if t.my_turn {
                    items.extend(
                        sign::items_of(&client, &t.request.request_id)
                            .await
                            .map_err(|e| e.to_string())?,
                    );
                }
            }
            if items.is_empty() {
                return Ok("{\"round_id\":null,\"items\":[]}".into());
            }
            let pin = read_pin()?;
            let outcome = sign::sign_items(&client, &state, &pin, items, None)
                .await
                .map_err(|e| e.to_string())?;
            serde_json::to_string(&outcome).map_err(|e| e.to_string())
        }
        Command::Unbind {
            revoke_certificate,
            reason,
        } => {
            let state = PhoneState::load(&cli.state).map_err(|e| e.to_string())?;
            let client = sign::client(&state).map_err(|e| e.to_string())?;
            let unbound = enroll::unbind(&client, revoke_certificate, reason)
                .await
                .map_err(|e| e.to_string())?;
            std::fs::remove_file(&cli.state).map_err(|e| e.to_string())?;
            serde_json::to_string(&unbound).map_err(|e| e.to_string())
        }
        Command::Autosign(cmd) => {
            let state = PhoneState::load(&cli.state).map_err(|e| e.to_string())?;
            let client = sign::client(&state).map_err(|e| e.to_string())?;
            let out = match cmd {
                AutosignCommand::Create {
                    doc_types,
                    departments,
                    hours,
                } => {
                    let req = autosign::request_for_hours(doc_types, departments, hours)
                        .map_err(|e| e.to_string())?;
                    let pin = read_pin()?;
                    serde_json::to_value(
                        autosign::authorise(&client, &state, &pin, &req)
                            .await
                            .map_err(|e| e.to_string())?,
                    )
                }
                AutosignCommand::List => {
                    serde_json::to_value(autosign::list(&client).await.map_err(|e| e.to_string())?)
                }
                AutosignCommand::Revoke { id, reason } => serde_json::to_value(
                    autosign::revoke(&client, &id, reason)
                        .await
                        .map_err(|e| e.to_string())?,
                ),
            };
            out.map(|v| v.to_string()).map_err(|e| e.to_string())
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cosign-phone: {e}");
            ExitCode::FAILURE
        }
    }
}
