//! What the app does, without the window: the enrolled state (sealed file in the app's data
//! directory), the errors people see, batch signing in rounds, history and certificate details.
//! Every protocol step is `yiqian_phone`'s; this module only arranges them for the screens.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::cosign::ItemOutcome;
use cosign_proto::v1::qr::QrLink;
pub use mobile_ui::model::{
    BatchItem, Capabilities, CertInfo, HistoryEntry, IncomingLink, PREVIEW_TEXT_MAX, Preview,
    Progress, Status, UiError,
};
use yiqian_phone::state::write_private_atomic;
use yiqian_phone::{PhoneError, PhoneState, sign};
use zeroize::Zeroizing;

/// Requests signed per co-signing round in a batch (one PIN entry by the user; the app unlocks
/// the share once per round, so a lost connection costs at most one round).
pub const BATCH_ROUND: usize = 10;
/// History entries kept.
pub const HISTORY_MAX: usize = 2000;

fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Whether the local enrolment may be deleted after the server's answer to an unbind: yes when
/// the server unbound the device, or no longer accepts it (already revoked: re-enrolled on
/// another phone, or by an administrator), so only this device's copy is left; otherwise
/// (network, server error) the error, and the device stays bound on both sides.
pub fn unbind_outcome<T>(answer: yiqian_phone::Result<T>) -> UiResult<()> {
    match answer {
        Ok(_) => Ok(()),
        Err(e)
            if sign::is_code(&e, ErrorCode::BadSignature)
                || sign::is_code(&e, ErrorCode::Forbidden) =>
        {
            Ok(())
        }
        Err(PhoneError::Network(detail)) => Err(UiError::new(
            "NETWORK",
            "无法连接签名服务器，本机尚未解绑。请联网后重试。",
            format!("Cannot reach the signing server; this device is still bound ({detail})"),
        )),
        Err(e) => Err(ui(e)),
    }
}

/// The error people see for a phone-library error.
pub fn ui(e: PhoneError) -> UiError {
    match e {
        PhoneError::Server(api) => UiError {
            code: code_name(api.code),
            message: api.message,
            message_en: api.message_en,
        },
        PhoneError::Network(detail) => UiError::new(
            "NETWORK",
            "无法连接签名服务器，本次未签署任何内容。请检查网络后重试。",
            format!("Cannot reach the signing server; nothing was signed ({detail})"),
        ),
        PhoneError::WrongPin { attempts_left } => UiError::new(
            "WRONG_PIN",
            format!("PIN 码错误，还可尝试 {attempts_left} 次，用完后签名密钥将被锁定。"),
            format!("Wrong PIN, {attempts_left} attempts left before the key locks"),
        ),
        PhoneError::Mismatch(detail) => UiError::new(
            "MISMATCH",
            format!("服务器要求签署的内容与显示的不一致，已拒绝签署（{detail}）。"),
            format!("Refused to sign: {detail}"),
        ),
        PhoneError::Protocol(detail) => UiError::new(
            "PROTOCOL",
            "协同签名校验未通过，已拒绝签署。",
            format!("Co-signing check failed: {detail}"),
        ),
        PhoneError::State(detail) => UiError::new(
            "STATE",
            format!("本机数据不可用：{detail}"),
            format!("Local state: {detail}"),
        ),
    }
}

/// Result for commands.
pub type UiResult<T> = std::result::Result<T, UiError>;

fn unix_ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

/// Now, unix ms.
pub fn now_ms() -> i64 {
    unix_ms(std::time::SystemTime::now())
}

/// Reads the certificate the server issued at enrolment.
pub fn cert_info(state: &PhoneState) -> UiResult<CertInfo> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(&state.certificate)
        .map_err(|e| ui(PhoneError::State(e.to_string())))?;
    let cert = gm_pki::ParsedCertificate::from_der(&der)
        .map_err(|e| ui(PhoneError::State(e.to_string())))?;
    Ok(CertInfo {
        subject: cert.subject_string(),
        issuer: cert.issuer_string(),
        serial: cert.serial_hex(),
        not_before: unix_ms(cert.not_before()),
        not_after: unix_ms(cert.not_after()),
    })
}

/// Whether every document of `request_id` was signed in `outcome`, else the first refusal.
pub fn request_result(items: &[ItemOutcome], request_id: &str) -> Option<UiError> {
    let mut mine = items
        .iter()
        .filter(|i| i.request_id == request_id)
        .peekable();
    if mine.peek().is_none() {
        return Some(UiError::new(
            "MISSING",
            "服务器未返回该任务的签署结果，请重试。",
            "The server returned no result for this request",
        ));
    }
    mine.find(|i| !i.ok).map(|bad| {
        let code = bad.code.unwrap_or(ErrorCode::Internal);
        ui(PhoneError::Server(cosign_proto::v1::ApiError::new(code)))
    })
}

/// A `yiqian://sign` link for this phone's server: (request id, nonce).
pub fn sign_link_parts(state: &PhoneState, link: &str) -> UiResult<(String, String)> {
    match link.trim().parse::<QrLink>() {
        Ok(QrLink::Sign {
            server,
            request_id,
            nonce,
        }) => {
            if server.trim_end_matches('/') != state.server {
                return Err(UiError::new(
                    "OTHER_SERVER",
                    format!("此二维码来自其他签名服务器（{server}），本机未在该服务器激活。"),
                    "The link names another signing server",
                ));
            }
            Ok((request_id, nonce))
        }
        _ => Err(UiError::new(
            "BAD_LINK",
            "不是有效的签名二维码链接（应以 yiqian://sign 开头）。",
            "Not a yiqian://sign link",
        )),
    }
}

/// A `yiqian://activate` link: (server, staff id, code).
pub fn activation_parts(link: &str) -> UiResult<(String, String, String)> {
    match link.trim().parse::<QrLink>() {
        Ok(QrLink::Activate {
            server,
            staff_id,
            code,
        }) => Ok((server, staff_id, code)),
        _ => Err(UiError::new(
            "BAD_LINK",
            "不是有效的激活码链接（应以 yiqian://activate 开头）。",
            "Not a yiqian://activate link",
        )),
    }
}

/// A device-bound second layer around the state file. On Android and iOS the shell passes the
/// hardware key store (Android Keystore / iOS Secure Enclave, `tauri-plugin-yiqian-keystore`),
/// so a copied file is useless on another device even to someone who knows the PIN; on the
/// desktop there is none and the file is sealed under the PIN and the server's OPRF key only.
pub trait DeviceWrap: Send + Sync + std::fmt::Debug {
    /// Encrypts under the device's key (created on first use).
    fn wrap(&self, plain: &[u8]) -> Result<Vec<u8>, String>;
    /// Decrypts what [`wrap`](Self::wrap) gave.
    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, String>;
    /// Deletes the device's key (unbind).
    fn delete_key(&self) -> Result<(), String>;
}

/// The state file: `phone.json` as [`PhoneState::save`] writes it, or on a device with a
/// hardware key store `phone.wrapped`, the same JSON wrapped by it.
fn state_file(dir: &Path, wrap: Option<&dyn DeviceWrap>) -> PathBuf {
    dir.join(if wrap.is_some() {
        "phone.wrapped"
    } else {
        "phone.json"
    })
}

fn keystore_error(e: &str) -> UiError {
    UiError::new(
        "KEYSTORE",
        format!(
            "本机安全芯片无法解开签名密钥文件（{e}）。如更换过手机或从备份恢复过，请在新手机上重新激活。"
        ),
        format!("The device key store cannot open the key file ({e})"),
    )
}

/// The app's files: the state file (device key and the share sealed under the PIN; 0600, see
/// [`DeviceWrap`]) and `history.json`.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    wrap: Option<Box<dyn DeviceWrap>>,
    state: Mutex<Option<PhoneState>>,
    history: Mutex<()>,
}

impl Store {
    /// Opens (creating) the data directory and reads the state file when there is one.
    pub fn open(dir: &Path, wrap: Option<Box<dyn DeviceWrap>>) -> UiResult<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ui(PhoneError::State(format!("{}: {e}", dir.display()))))?;
        let path = state_file(dir, wrap.as_deref());
        let state = match (path.exists(), wrap.as_deref()) {
            (false, _) => None,
            (true, None) => Some(PhoneState::load(&path).map_err(ui)?),
            (true, Some(w)) => {
                let wrapped = std::fs::read(&path)
                    .map_err(|e| ui(PhoneError::State(format!("{}: {e}", path.display()))))?;
                let json = w.unwrap(&wrapped).map_err(|e| keystore_error(&e))?;
                Some(PhoneState::from_json(&json).map_err(ui)?)
            }
        };
        Ok(Self {
            dir: dir.to_owned(),
            wrap,
            state: Mutex::new(state),
            history: Mutex::new(()),
        })
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, Option<PhoneState>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The enrolled state.
    pub fn state(&self) -> UiResult<PhoneState> {
        self.lock_state().clone().ok_or_else(UiError::not_enrolled)
    }

    /// Start-screen status.
    pub fn status(&self) -> Status {
        let s = self.lock_state();
        Status {
            enrolled: s.is_some(),
            staff_id: s.as_ref().map(|s| s.staff_id.clone()),
            server: s.as_ref().map(|s| s.server.clone()),
        }
    }

    /// Saves a new state (enrolment, PIN change).
    pub fn save(&self, state: PhoneState) -> UiResult<()> {
        let path = state_file(&self.dir, self.wrap.as_deref());
        match self.wrap.as_deref() {
            None => state.save(&path).map_err(ui)?,
            Some(w) => {
                let wrapped = w
                    .wrap(&state.to_json().map_err(ui)?)
                    .map_err(|e| keystore_error(&e))?;
                write_private_atomic(&path, &wrapped).map_err(ui)?;
            }
        }
        *self.lock_state() = Some(state);
        Ok(())
    }

    /// Forgets the enrolment and the history on this device.
    pub fn unbind(&self) -> UiResult<()> {
        let mut s = self.lock_state();
        for name in ["phone.json", "phone.wrapped", "history.json"] {
            let path = self.dir.join(name);
            if path.exists() {
                std::fs::remove_file(&path)
                    .map_err(|e| ui(PhoneError::State(format!("{}: {e}", path.display()))))?;
            }
        }
        *s = None;
        // The files are gone; a key left behind (the key store refused) wraps nothing.
        if let Some(w) = self.wrap.as_deref() {
            let _ = w.delete_key();
        }
        Ok(())
    }

    /// History, newest first, filtered by `query`.
    pub fn history(&self, query: &str) -> Vec<HistoryEntry> {
        let _g = self.history.lock();
        let mut all = self.read_history();
        all.retain(|e| e.matches(query));
        all.reverse();
        all
    }

    fn read_history(&self) -> Vec<HistoryEntry> {
        std::fs::read(self.dir.join("history.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Appends entries (oldest dropped beyond [`HISTORY_MAX`]).
    pub fn record(&self, entries: Vec<HistoryEntry>) {
        if entries.is_empty() {
            return;
        }
        let _g = self.history.lock();
        let mut all = self.read_history();
        all.extend(entries);
        let excess = all.len().saturating_sub(HISTORY_MAX);
        all.drain(..excess);
        if let Ok(bytes) = serde_json::to_vec(&all) {
            let tmp = self.dir.join("history.tmp");
            if std::fs::write(&tmp, bytes).is_ok() && private(&tmp).is_ok() {
                let _ = std::fs::rename(&tmp, self.dir.join("history.json"));
            }
        }
    }
}

/// Owner-only permissions (the history names patients).
#[cfg(unix)]
fn private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn private(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Largest image shown inline (bytes); larger ones are described like other formats.
const PREVIEW_IMAGE_MAX: usize = 4 * 1024 * 1024;

/// Largest PDF drawn on the phone (bytes); larger ones are named, and the terminal shows them.
const PREVIEW_PDF_MAX: usize = 16 * 1024 * 1024;

/// Whether `content` looks like a Word file (DOCX: a zip; DOC: an OLE compound file), which the
/// server converts to PDF for the review (`yiqian_phone::sign::word_as_pdf`).
pub fn is_word(content: &[u8]) -> bool {
    content.starts_with(b"PK\x03\x04") || content.starts_with(&[0xD0, 0xCF, 0x11, 0xE0])
}

/// The review of a Word file of `size` bytes through the server's PDF conversion of it.
pub fn converted_preview(pdf: &[u8], size: usize) -> Preview {
    if !pdf.starts_with(b"%PDF-") || pdf.len() > PREVIEW_PDF_MAX {
        return Preview::Other {
            format: "Word".to_owned(),
            size,
        };
    }
    Preview::Pdf {
        data: base64::engine::general_purpose::STANDARD.encode(pdf),
        size,
        converted: true,
    }
}

/// What the review screen shows of a document's content: text, PNG/JPEG images and PDF (drawn
/// by pdf.js in the UI) are shown; Word files are named here and converted by the caller
/// (see [`is_word`]); anything else is named, and the terminal shows it.
pub fn preview(content: &[u8]) -> Preview {
    let image = if content.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if content.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else {
        None
    };
    if let Some(media) = image
        && content.len() <= PREVIEW_IMAGE_MAX
    {
        return Preview::Image {
            data_url: format!(
                "data:{media};base64,{}",
                base64::engine::general_purpose::STANDARD.encode(content)
            ),
        };
    }
    let pdf = content.starts_with(b"%PDF-");
    if pdf && content.len() <= PREVIEW_PDF_MAX {
        return Preview::Pdf {
            data: base64::engine::general_purpose::STANDARD.encode(content),
            size: content.len(),
            converted: false,
        };
    }
    let format = if image.is_some() {
        "图片"
    } else if pdf {
        "PDF"
    } else if is_word(content) {
        "Word"
    } else if let Ok(text) = std::str::from_utf8(content) {
        let mut end = text.len().min(PREVIEW_TEXT_MAX);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        return Preview::Text {
            text: text[..end].to_owned(),
            truncated: end < text.len(),
        };
    } else {
        "文件"
    };
    Preview::Other {
        format: format.to_owned(),
        size: content.len(),
    }
}

/// The requests of a batch that failed only because the server could not be reached (to sign
/// again when the connection is back).
pub fn network_failures(items: &[BatchItem]) -> Vec<String> {
    items
        .iter()
        .filter(|i| i.error.as_ref().is_some_and(|e| e.code == "NETWORK"))
        .map(|i| i.request_id.clone())
        .collect()
}

/// Signs `request_ids` in rounds of [`BATCH_ROUND`] with one PIN; `progress(done, total)` after
/// each round. A round is all-or-nothing on the server, so a failed round leaves its requests
/// unsigned (marked failed, to retry); a wrong PIN or a locked key stops the batch at once.
pub async fn sign_batch(
    store: &Store,
    request_ids: &[String],
    pin: &str,
    mut progress: impl FnMut(usize, usize),
) -> UiResult<Vec<BatchItem>> {
    let state = store.state()?;
    let client = sign::client(&state).map_err(ui)?;
    let total = request_ids.len();
    let mut results: Vec<BatchItem> = Vec::with_capacity(total);
    let mut stop: Option<UiError> = None;
    for chunk in request_ids.chunks(BATCH_ROUND) {
        if let Some(e) = &stop {
            results.extend(chunk.iter().map(|id| BatchItem {
                request_id: id.clone(),
                title: String::new(),
                ok: false,
                error: Some(e.clone()),
            }));
            continue;
        }
        let mut views = Vec::new();
        for id in chunk {
            match sign::request(&client, id).await {
                // One closed request would fail its whole round: it is left out with its reason.
                Ok(v) if v.status != "pending" || v.expires_at < now_ms() => {
                    let code = if v.status == "pending" || v.status == "expired" {
                        ErrorCode::RequestExpired
                    } else {
                        ErrorCode::RequestClosed
                    };
                    results.push(BatchItem {
                        request_id: id.clone(),
                        title: v.title.clone(),
                        ok: false,
                        error: Some(ui(PhoneError::Server(cosign_proto::v1::ApiError::new(
                            code,
                        )))),
                    });
                }
                Ok(v) => views.push(v),
                Err(e) => results.push(BatchItem {
                    request_id: id.clone(),
                    title: String::new(),
                    ok: false,
                    error: Some(ui(e)),
                }),
            }
        }
        if !views.is_empty() {
            match sign::sign_reviewed(&client, &state, pin, &views, None).await {
                Ok(outcome) => {
                    let mut signed = Vec::new();
                    for v in &views {
                        let error = request_result(&outcome.items, &v.request_id);
                        if error.is_none() {
                            signed.push(HistoryEntry::signed(v, "batch", now_ms()));
                        }
                        results.push(BatchItem {
                            request_id: v.request_id.clone(),
                            title: v.title.clone(),
                            ok: error.is_none(),
                            error,
                        });
                    }
                    store.record(signed);
                }
                Err(e) => {
                    let e = ui(e);
                    results.extend(views.iter().map(|v| BatchItem {
                        request_id: v.request_id.clone(),
                        title: v.title.clone(),
                        ok: false,
                        error: Some(e.clone()),
                    }));
                    if e.stops_batch() {
                        stop = Some(e);
                    }
                }
            }
        }
        progress(results.len(), total);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(request_id: &str, ok: bool, code: Option<ErrorCode>) -> ItemOutcome {
        ItemOutcome {
            request_id: request_id.into(),
            document: 0,
            ok,
            code,
        }
    }

    #[test]
    fn request_result_needs_every_document() {
        let items = [
            item("a", true, None),
            item("a", false, Some(ErrorCode::RequestExpired)),
            item("b", true, None),
        ];
        let err = request_result(&items, "a").unwrap();
        assert_eq!(err.code, "REQUEST_EXPIRED");
        assert!(!err.message.is_empty());
        assert!(request_result(&items, "b").is_none());
        assert_eq!(request_result(&items, "c").unwrap().code, "MISSING");
    }

    #[test]
    fn previews_show_text_and_images_and_name_the_rest() {
        let rx = "处方\n患者：周七\n阿司匹林 100mg".as_bytes();
        assert_eq!(
            preview(rx),
            Preview::Text {
                text: "处方\n患者：周七\n阿司匹林 100mg".into(),
                truncated: false
            }
        );
        // Cut on a character boundary, said so.
        let long = "药".repeat(PREVIEW_TEXT_MAX);
        let Preview::Text { text, truncated } = preview(long.as_bytes()) else {
            panic!("not text");
        };
        assert!(truncated && text.len() <= PREVIEW_TEXT_MAX && text.chars().all(|c| c == '药'));
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let Preview::Image { data_url } = preview(png) else {
            panic!("not an image");
        };
        assert!(data_url.starts_with("data:image/png;base64,iVBORw0KGgo"));
        // PDF is drawn by the UI from the same bytes; too large a one is only named.
        assert_eq!(
            preview(b"%PDF-1.7\n"),
            Preview::Pdf {
                data: "JVBERi0xLjcK".into(),
                size: 9,
                converted: false
            }
        );
        let huge_pdf = [&b"%PDF-1.7\n"[..], &vec![b' '; PREVIEW_PDF_MAX]].concat();
        assert!(matches!(preview(&huge_pdf), Preview::Other { format, .. } if format == "PDF"));
        // Word is named here (the shell asks the server for a PDF of it).
        for (bytes, format) in [
            (&b"PK\x03\x04word/"[..], "Word"),
            (&[0xD0, 0xCF, 0x11, 0xE0, 0xA1][..], "Word"),
            (&[0xFF, 0xFE, 0x00, 0x80][..], "文件"),
        ] {
            assert_eq!(
                preview(bytes),
                Preview::Other {
                    format: format.into(),
                    size: bytes.len()
                }
            );
        }
        let huge = [&[0xFF, 0xD8, 0xFF][..], &vec![0; PREVIEW_IMAGE_MAX]].concat();
        assert!(matches!(preview(&huge), Preview::Other { format, .. } if format == "图片"));
    }

    #[test]
    fn a_word_file_is_shown_through_a_real_pdf_only() {
        assert!(is_word(b"PK\x03\x04rest") && is_word(&[0xD0, 0xCF, 0x11, 0xE0, 0]));
        assert!(!is_word(b"%PDF-1.7") && !is_word(b"PK\x05\x06"));
        assert_eq!(
            converted_preview(b"%PDF-1.4\n", 1234),
            Preview::Pdf {
                data: "JVBERi0xLjQK".into(),
                size: 1234,
                converted: true
            }
        );
        // Whatever else the server answered, the phone names the Word file and shows nothing.
        for answer in [&b"<html>error</html>"[..], b""] {
            assert_eq!(
                converted_preview(answer, 7),
                Preview::Other {
                    format: "Word".into(),
                    size: 7
                }
            );
        }
    }

    #[test]
    fn only_network_failures_wait_for_the_network() {
        let item = |id: &str, error: Option<UiError>| BatchItem {
            request_id: id.into(),
            title: String::new(),
            ok: error.is_none(),
            error,
        };
        let items = [
            item("a", None),
            item("b", Some(ui(PhoneError::Network("refused".into())))),
            item("c", Some(ui(PhoneError::WrongPin { attempts_left: 2 }))),
            item("d", Some(ui(PhoneError::Network("reset".into())))),
        ];
        assert_eq!(network_failures(&items), ["b", "d"]);
    }

    #[test]
    fn errors_people_see_are_chinese() {
        let e = ui(PhoneError::WrongPin { attempts_left: 2 });
        assert!(e.message.contains("PIN 码错误") && e.message.contains('2'));
        assert!(e.stops_batch());
        let e = ui(PhoneError::Network("refused".into()));
        assert!(e.message.contains("未签署任何内容"));
        assert!(!e.stops_batch());
        let locked = ui(PhoneError::Server(cosign_proto::v1::ApiError::new(
            ErrorCode::KeyLocked,
        )));
        assert_eq!(locked.code, "KEY_LOCKED");
        assert!(locked.stops_batch());
    }

    #[test]
    fn unbind_deletes_locally_only_when_the_server_let_go() {
        let server = |code| Err::<(), _>(PhoneError::Server(cosign_proto::v1::ApiError::new(code)));
        assert!(unbind_outcome(Ok(())).is_ok());
        assert!(unbind_outcome(server(ErrorCode::BadSignature)).is_ok());
        assert!(unbind_outcome(server(ErrorCode::Forbidden)).is_ok());
        let offline = unbind_outcome::<()>(Err(PhoneError::Network("refused".into())));
        assert!(offline.unwrap_err().message.contains("尚未解绑"));
        assert_eq!(
            unbind_outcome(server(ErrorCode::Internal))
                .unwrap_err()
                .code,
            "INTERNAL"
        );
    }

    #[test]
    fn links_are_checked() {
        assert_eq!(activation_parts("https://x").unwrap_err().code, "BAD_LINK");
        let link = QrLink::Activate {
            server: "http://127.0.0.1:1".into(),
            staff_id: "D1".into(),
            code: "abc".into(),
        }
        .to_string();
        assert_eq!(
            activation_parts(&link).unwrap(),
            ("http://127.0.0.1:1".into(), "D1".into(), "abc".into())
        );
    }

    #[test]
    fn history_is_bounded_searchable_and_removed_by_unbind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), None).unwrap();
        assert!(!store.status().enrolled);
        assert_eq!(store.state().unwrap_err().code, "NOT_ENROLLED");
        let entry = |i: usize| HistoryEntry {
            at: i64::try_from(i).unwrap(),
            request_id: format!("sr_{i}"),
            title: format!("处方 {i}"),
            doc_type: Some("处方".into()),
            patient_id: Some(format!("P{i}")),
            documents: 1,
            how: "batch".into(),
        };
        store.record((0..HISTORY_MAX + 5).map(entry).collect());
        let all = store.history("");
        assert_eq!(all.len(), HISTORY_MAX);
        assert_eq!(all[0].request_id, format!("sr_{}", HISTORY_MAX + 4));
        // P7, P70–P79, P700–P799
        assert_eq!(store.history("P7").len(), 111);
        store.unbind().unwrap();
        assert!(store.history("").is_empty());
    }

    /// Stands in for the phone's hardware key store (Android Keystore / Secure Enclave), which
    /// cannot run here: a keyed transformation with the same contract (opaque bytes out,
    /// refusal after the key is gone).
    #[derive(Debug, Default)]
    struct FakeKeystore {
        deleted: std::sync::atomic::AtomicBool,
    }

    impl DeviceWrap for FakeKeystore {
        fn wrap(&self, plain: &[u8]) -> Result<Vec<u8>, String> {
            Ok(std::iter::once(1u8)
                .chain(plain.iter().map(|b| b ^ 0xA5))
                .collect())
        }
        fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
            if self.deleted.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("key permanently invalidated".into());
            }
            match wrapped.split_first() {
                Some((1, body)) => Ok(Zeroizing::new(body.iter().map(|b| b ^ 0xA5).collect())),
                _ => Err("bad wrapped data".into()),
            }
        }
        fn delete_key(&self) -> Result<(), String> {
            self.deleted
                .store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
    }

    fn sample_state() -> PhoneState {
        PhoneState::from_json(
            serde_json::json!({
                "server": "http://127.0.0.1:8080",
                "staff_id": "D901",
                "device_id": "dev_1",
                "device_key": "11".repeat(32),
                "sealed_share": {
                    "version": 1,
                    "salt": "22".repeat(32),
                    "public": "33".repeat(199),
                    "ciphertext": "44".repeat(32),
                    "tag": "55".repeat(32),
                },
                "certificate": "MA==",
                "serial": "0a0b",
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn a_device_key_store_wraps_the_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Some(Box::<FakeKeystore>::default())).unwrap();
        store.save(sample_state()).unwrap();
        // Only the wrapped file is written, and it is not the JSON.
        assert!(!dir.path().join("phone.json").exists());
        let on_disk = std::fs::read(dir.path().join("phone.wrapped")).unwrap();
        assert!(!String::from_utf8_lossy(&on_disk).contains("D901"));
        // Read back on the next start through the key store.
        let again = Store::open(dir.path(), Some(Box::<FakeKeystore>::default())).unwrap();
        assert_eq!(again.state().unwrap().staff_id, "D901");
        // A file the key store cannot open (another device, key invalidated) says what to do
        // instead of pretending the app was never activated.
        std::fs::write(dir.path().join("phone.wrapped"), b"\x02garbage").unwrap();
        let e = Store::open(dir.path(), Some(Box::<FakeKeystore>::default())).unwrap_err();
        assert_eq!(e.code, "KEYSTORE");
        assert!(e.message.contains("重新激活"), "{}", e.message);
        // Unbind removes the file and the device key.
        again.unbind().unwrap();
        assert!(!dir.path().join("phone.wrapped").exists());
        assert!(again.wrap.as_deref().unwrap().unwrap(&on_disk).is_err());
        // Without a key store (desktop) the plain sealed JSON file is used.
        let desktop = Store::open(dir.path(), None).unwrap();
        desktop.save(sample_state()).unwrap();
        assert!(dir.path().join("phone.json").exists());
        assert_eq!(
            Store::open(dir.path(), None)
                .unwrap()
                .state()
                .unwrap()
                .serial,
            "0a0b"
        );
    }
}
