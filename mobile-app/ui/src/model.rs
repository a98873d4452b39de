//! What the shell and the UI exchange over Tauri's IPC (one definition for both sides: the
//! shell `mobile-tauri` uses these types on the host, the UI in wasm), and the pure helpers the
//! screens use, unit-tested on the host.

use cosign_proto::v1::cosign::{PhoneTask, SignRequestView};
use serde::{Deserialize, Serialize};

/// An error as the screens show it: the server's stable code and texts when it refused,
/// otherwise the app's own code with a Chinese (and English) text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiError {
    /// Stable code (`NETWORK`, `WRONG_PIN`, `MISMATCH`, … or the server's).
    pub code: String,
    /// Simplified Chinese.
    pub message: String,
    /// English.
    pub message_en: String,
}

impl UiError {
    /// An app-side error.
    pub fn new(code: &str, message: impl Into<String>, message_en: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            message_en: message_en.into(),
        }
    }

    /// The app is not enrolled (or was unbound).
    pub fn not_enrolled() -> Self {
        Self::new(
            "NOT_ENROLLED",
            "本机尚未激活，请先扫描或粘贴激活码",
            "This device is not activated yet",
        )
    }

    /// Whether further rounds with the same PIN are pointless (wrong PIN, key locked).
    pub fn stops_batch(&self) -> bool {
        self.code == "WRONG_PIN" || self.code == "KEY_LOCKED"
    }
}

/// A `yiqian://` link that reached the app from outside (a deep link opened by the system, or
/// a QR code read by the camera) and where it leads: only the two link kinds the app knows are
/// accepted, anything else is ignored (a stranger controls these bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "link", rename_all = "snake_case")]
pub enum IncomingLink {
    /// Scan to sign: opens the request for review.
    Sign(String),
    /// Activation: fills in the activation screen.
    Activate(String),
}

impl IncomingLink {
    /// Classifies `raw`; `None` for anything that is not a well-formed `yiqian://sign` or
    /// `yiqian://activate` link (the parser bounds the length).
    pub fn classify(raw: &str) -> Option<Self> {
        use cosign_proto::v1::qr::QrLink;
        let raw = raw.trim();
        match raw.parse::<QrLink>().ok()? {
            QrLink::Sign { .. } => Some(Self::Sign(raw.to_owned())),
            QrLink::Activate { .. } => Some(Self::Activate(raw.to_owned())),
        }
    }

    /// The link when it is a sign link.
    pub fn sign(&self) -> Option<&str> {
        match self {
            Self::Sign(l) => Some(l),
            Self::Activate(_) => None,
        }
    }

    /// The link when it is an activation link.
    pub fn activation(&self) -> Option<&str> {
        match self {
            Self::Activate(l) => Some(l),
            Self::Sign(_) => None,
        }
    }
}

/// What this device offers beyond the desktop (the shell knows; the screens ask once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// The camera reads QR codes (Android, iOS).
    pub camera: bool,
    /// Fingerprint / face unlock of the inactivity lock (Android, iOS).
    pub biometric: bool,
}

/// A document as the review screen shows it before signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Preview {
    /// UTF-8 text (prescriptions, reports as text), possibly cut at [`PREVIEW_TEXT_MAX`].
    Text {
        /// The text.
        text: String,
        /// Whether it was cut.
        truncated: bool,
    },
    /// A PNG or JPEG image, as a `data:` URL.
    Image {
        /// `data:image/…;base64,…`.
        data_url: String,
    },
    /// A PDF, drawn on the phone (pdf.js) from these bytes.
    Pdf {
        /// The PDF, base64.
        data: String,
        /// Size of the signed document (bytes).
        size: usize,
        /// `true` when the signed document is a Word file and this PDF is the server's
        /// conversion of it, shown for reading: only the Word file's SM3 is signed.
        converted: bool,
    },
    /// A format the phone does not show (or a Word file the server could not convert): the
    /// terminal shows it.
    Other {
        /// What it is, for people (`PDF`, `Word`, `文件`).
        format: String,
        /// Bytes.
        size: usize,
    },
}

/// Longest text shown in a preview (bytes); the rest is signed all the same.
pub const PREVIEW_TEXT_MAX: usize = 64 * 1024;

/// The certificate as the activation and details screens show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial, hex.
    pub serial: String,
    /// Unix ms.
    pub not_before: i64,
    /// Unix ms.
    pub not_after: i64,
}

/// What the start screen needs to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Whether a sealed state file exists.
    pub enrolled: bool,
    /// Staff number.
    pub staff_id: Option<String>,
    /// Server.
    pub server: Option<String>,
}

/// One line of the signing history (kept on this device only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Unix ms.
    pub at: i64,
    /// Request id.
    pub request_id: String,
    /// Title.
    pub title: String,
    /// Document type.
    pub doc_type: Option<String>,
    /// Patient id.
    pub patient_id: Option<String>,
    /// Documents signed.
    pub documents: usize,
    /// `scan`, `batch` or `autosign`.
    pub how: String,
}

impl HistoryEntry {
    /// An entry for a signed request, signed at `at` (unix ms).
    pub fn signed(view: &SignRequestView, how: &str, at: i64) -> Self {
        Self {
            at,
            request_id: view.request_id.clone(),
            title: view.title.clone(),
            doc_type: view.doc_type.clone(),
            patient_id: view.patient_id.clone(),
            documents: view.documents.len(),
            how: how.to_owned(),
        }
    }

    /// Whether the entry matches a search (title, type, patient, request id).
    pub fn matches(&self, query: &str) -> bool {
        let q = query.trim();
        q.is_empty()
            || self.title.contains(q)
            || self.request_id.contains(q)
            || self.doc_type.as_deref().is_some_and(|d| d.contains(q))
            || self.patient_id.as_deref().is_some_and(|p| p.contains(q))
    }
}

/// One request's result in a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItem {
    /// Request id.
    pub request_id: String,
    /// Title (when it could be read).
    pub title: String,
    /// Whether every document of the request was signed.
    pub ok: bool,
    /// Why not.
    pub error: Option<UiError>,
}

/// `batch-progress` event: requests done (signed or failed) of the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Done.
    pub done: usize,
    /// Total.
    pub total: usize,
}

impl Progress {
    /// Percent done, 0–100.
    pub fn percent(self) -> usize {
        (self.done.min(self.total) * 100)
            .checked_div(self.total)
            .unwrap_or(100)
    }
}

/// Tasks waiting for this signer (the badge count).
pub fn badge(tasks: &[PhoneTask]) -> usize {
    tasks.iter().filter(|t| t.my_turn).count()
}

/// Who signed before (multi-signer requests), as "姓名（工号）".
pub fn signed_before(view: &SignRequestView) -> Vec<String> {
    view.signers
        .iter()
        .filter(|s| s.signed_at.is_some())
        .map(|s| format!("{}（{}）", s.name, s.staff_id))
        .collect()
}

/// Splits a comma / 、/ whitespace separated list typed by a person.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c == '，' || c == '、' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Chinese name of a request or authorisation state.
pub fn state_zh(state: &str) -> &'static str {
    match state {
        "pending" => "待签署",
        "completed" => "已完成",
        "expired" => "已过期",
        "cancelled" => "已取消",
        "active" => "生效中",
        "revoked" => "已撤销",
        "signed" => "已签署",
        _ => "未知状态",
    }
}

/// The IDs of the failed items of a batch, to retry.
pub fn failed_ids(items: &[BatchItem]) -> Vec<String> {
    items
        .iter()
        .filter(|i| !i.ok)
        .map(|i| i.request_id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_links_are_classified_and_strangers_ignored() {
        let sign = "yiqian://sign?v=1&r=req_1&n=abc&s=http%3A%2F%2F127.0.0.1%3A8080";
        assert_eq!(
            IncomingLink::classify(&format!("  {sign}\n")),
            Some(IncomingLink::Sign(sign.into()))
        );
        let act = "yiqian://activate?v=1&u=D901&c=123456&s=https%3A%2F%2Fsign.local";
        assert_eq!(
            IncomingLink::classify(act),
            Some(IncomingLink::Activate(act.into()))
        );
        // Other schemes, unknown kinds, missing fields and oversized links lead nowhere.
        for bad in [
            "",
            "https://evil.example/yiqian://sign",
            "yiqian://wipe?v=1",
            "yiqian://sign?v=1&r=a&n=b",
            "javascript:alert(1)",
        ] {
            assert_eq!(IncomingLink::classify(bad), None, "{bad}");
        }
        let long = format!("{sign}&pad={}", "x".repeat(600));
        assert_eq!(IncomingLink::classify(&long), None);
        // Each screen picks its own kind.
        let s = IncomingLink::Sign(sign.into());
        assert_eq!((s.sign(), s.activation()), (Some(sign), None));
        let a = IncomingLink::Activate(act.into());
        assert_eq!((a.sign(), a.activation()), (None, Some(act)));
        // The shape the shell emits and the UI reads.
        let json = serde_json::to_value(IncomingLink::Sign(sign.into())).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "sign", "link": sign}));
    }

    #[test]
    fn lists_typed_by_people_split() {
        assert_eq!(
            split_list(" 处方，检验报告、 病历 ,"),
            ["处方", "检验报告", "病历"]
        );
        assert!(split_list(" , ").is_empty());
    }

    #[test]
    fn progress_is_bounded() {
        assert_eq!(Progress { done: 0, total: 0 }.percent(), 100);
        assert_eq!(
            Progress {
                done: 25,
                total: 50
            }
            .percent(),
            50
        );
        assert_eq!(
            Progress {
                done: 60,
                total: 50
            }
            .percent(),
            100
        );
    }

    #[test]
    fn history_search() {
        let e = HistoryEntry {
            at: 0,
            request_id: "sr_1".into(),
            title: "门诊处方".into(),
            doc_type: Some("处方".into()),
            patient_id: Some("P001".into()),
            documents: 1,
            how: "scan".into(),
        };
        assert!(e.matches("") && e.matches("P001") && e.matches("门诊") && e.matches("sr_1"));
        assert!(!e.matches("检验"));
    }

    #[test]
    fn stop_codes() {
        assert!(UiError::new("WRONG_PIN", "", "").stops_batch());
        assert!(UiError::new("KEY_LOCKED", "", "").stops_batch());
        assert!(!UiError::new("NETWORK", "", "").stops_batch());
        let failed = failed_ids(&[
            BatchItem {
                request_id: "a".into(),
                title: String::new(),
                ok: true,
                error: None,
            },
            BatchItem {
                request_id: "b".into(),
                title: String::new(),
                ok: false,
                error: None,
            },
        ]);
        assert_eq!(failed, ["b"]);
    }
}
