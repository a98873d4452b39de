//! The page's side of the patient signing API (docs/api/patient.md). The wire types and the
//! resident ID check are cosign-proto's (`v1::patient`), shared with the server; this module
//! adds what only the page needs: reading the task view, rounding points, the submission id,
//! the link's token and the typed SMS code.

pub use cosign_proto::v1::patient::{
    CopyChar, H5Session, H5TaskView as TaskView, IdNumberError, MIN_HOLD_MS, ProxyDetails,
    Relationship, SignMode, SmsSent, Stroke, StrokePoint, Submission, Submitted,
    validate_id_number,
};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// A server error body `{code, message, message_en}` (plus `attempts_left` for OTP_INVALID).
/// Its own type rather than cosign-proto's `ApiError`: the page must show codes it does not
/// know yet, so `code` stays a string.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct ApiError {
    /// Stable code, e.g. `OTP_INVALID`.
    pub code: String,
    /// Chinese text.
    pub message: String,
    /// English text.
    pub message_en: String,
    /// Wrong SMS codes still allowed.
    pub attempts_left: Option<u32>,
}

/// The signer is an authorised proxy (授权人代签).
pub fn is_proxy(task: &TaskView) -> bool {
    task.signer_role == "proxy"
}

/// The task's sign mode, if the page knows it.
pub fn sign_mode(task: &TaskView) -> Option<SignMode> {
    serde_json::from_value(serde_json::Value::String(task.sign_mode.clone())).ok()
}

/// The characters to copy, one per box (sign mode `copy`).
pub fn copy_chars(task: &TaskView) -> Vec<String> {
    task.copy_text
        .as_deref()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(String::from)
        .collect()
}

/// A task view before the real one arrived (never shown: screens render after loading).
pub fn empty_task() -> TaskView {
    TaskView {
        title: String::new(),
        hospital: String::new(),
        signer_name_masked: String::new(),
        signer_role: String::new(),
        sign_mode: String::new(),
        copy_text: None,
        require_read_to_end: true,
        identity: Vec::new(),
        status: String::new(),
        page_count: 0,
        phone_masked: String::new(),
        verified: false,
        expires_at: String::new(),
    }
}

/// The relationships offered in the proxy form: wire name and label.
pub const RELATIONSHIPS: [(&str, crate::i18n::T); 5] = [
    ("spouse", crate::i18n::T::RelSpouse),
    ("parent", crate::i18n::T::RelParent),
    ("child", crate::i18n::T::RelChild),
    ("guardian", crate::i18n::T::RelGuardian),
    ("other", crate::i18n::T::RelOther),
];

/// Parses a relationship's wire name.
pub fn relationship(wire: &str) -> Option<Relationship> {
    serde_json::from_value(serde_json::Value::String(wire.to_owned())).ok()
}

/// One sampled pen position, rounded to what the evidence needs (0.1 px, whole milliseconds,
/// 0.01 pressure; 0.5 when the device reports none), so the stored JSON stays small.
pub fn point(x: f64, y: f64, t: f64, p: f64) -> StrokePoint {
    let p = if p > 0.0 && p.is_finite() {
        p.min(1.0)
    } else {
        0.5
    };
    StrokePoint {
        x: (x * 10.0).round() / 10.0,
        y: (y * 10.0).round() / 10.0,
        t: if t.is_finite() && t > 0.0 {
            t.round()
        } else {
            0.0
        },
        p: Some((p * 100.0).round() / 100.0),
    }
}

/// Formats 16 random bytes as a UUID version 4 (RFC 9562).
pub fn uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().fold(String::with_capacity(32), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    });
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The token from the page's hash route `#/t/<token>` (URL-safe characters only, bounded).
pub fn token_from_hash(hash: &str) -> Option<String> {
    let token = hash.strip_prefix("#/t/")?.split(['?', '/', '#']).next()?;
    let ok = (16..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| token.to_owned())
}

/// A six-digit SMS code, as typed (spaces removed).
pub fn clean_code(input: &str) -> Option<String> {
    let code: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

// ---- Bedside pad (kiosk mode, docs/api/patient.md §5) ----

/// Enrolment route (plain JSON: the pad has no channel yet).
pub const PAD_ENROL: &str = "/api/v1/pad/enrol";
/// The channel route: every later call is an envelope posted here.
pub const PAD_CALL: &str = "/api/v1/pad/call";
/// The pad's own queue (inner path, through the channel).
pub const PAD_QUEUE: &str = "/pad/queue";

/// The kiosk's hash route: `#/pad` (nothing else after it but an optional `/` or query).
pub fn is_pad_route(hash: &str) -> bool {
    hash.strip_prefix("#/pad")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
}

/// The inner path that opens a task of the queue on this pad.
pub fn pad_open_path(task_id: &str) -> Option<String> {
    let ok = !task_id.is_empty()
        && task_id.len() <= 64
        && task_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| format!("/pad/tasks/{task_id}/open"))
}

/// Stays on this device in `localStorage`: the pad's enrolment (kiosk mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PadDevice {
    /// The SM2 device private key, hex (see docs/api/patient.md §5 on why it can only live here).
    pub secret_hex: String,
    /// The device certificate's serial (lowercase hex), named in every envelope.
    pub serial: String,
    /// The server's channel public key, SEC1 hex.
    pub channel_public_hex: String,
    /// The pad's id.
    pub pad_id: String,
    /// The pad's name as the administrator registered it.
    pub name: String,
    /// Its ward.
    pub ward: String,
    /// The hospital.
    #[serde(default)]
    pub hospital: String,
}

/// The inner request sealed in an envelope: the route, the h5 session (sent on as the
/// `x-yiqian-h5-session` header) and the exact JSON body bytes in base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PadInner<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Route path, e.g. `/api/v1/h5/tasks/{token}/submit` or `/pad/queue`.
    pub path: &'a str,
    /// The h5 session, where the route needs one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<&'a str>,
    /// The JSON body, standard base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

impl PadInner<'_> {
    /// The inner request's bytes.
    pub fn encode(method: &str, path: &str, session: Option<&str>, body: Option<&str>) -> Vec<u8> {
        use base64::Engine as _;
        let inner = PadInner {
            method,
            path,
            session,
            body_base64: body.map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        };
        serde_json::to_vec(&inner).unwrap_or_default()
    }
}

/// The inner answer opened from the response envelope: what the direct route gave.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct PadAnswer {
    /// HTTP status the route gave.
    pub status: u16,
    /// Its content type.
    pub content_type: String,
    /// Its body, standard base64.
    pub body_base64: Option<String>,
    /// The server's new channel key (hex SEC1) after a rotation.
    pub channel_public_key: Option<String>,
}

/// A decoded [`PadAnswer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PadOpenedAnswer {
    /// The status and body bytes, as a direct call would have given them.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// The new channel public key (65 bytes SEC1, uncompressed) when the server rotated it.
    pub channel_public_key: Option<Vec<u8>>,
}

impl PadAnswer {
    /// Decodes the opened answer; `None` when it is not one. A new channel key that is not a
    /// 65-byte uncompressed point makes the whole answer invalid (never half-applied).
    pub fn decode(bytes: &[u8]) -> Option<PadOpenedAnswer> {
        use base64::Engine as _;
        let a: Self = serde_json::from_slice(bytes).ok()?;
        if !(100..600).contains(&a.status) {
            return None;
        }
        let body = match a.body_base64 {
            Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64).ok()?,
            None => Vec::new(),
        };
        let channel_public_key = match a.channel_public_key {
            Some(h) => {
                let k = hex::decode(h).ok()?;
                Some((k.len() == 65 && k[0] == 4).then_some(k)?)
            }
            None => None,
        };
        Some(PadOpenedAnswer {
            status: a.status,
            body,
            channel_public_key,
        })
    }
}

/// The pad routes' wire types and the enrolment message, shared with the server.
pub use cosign_proto::v1::pad::{
    PadEnrol, PadEnrolled, PadOpened, PadQueue, PadQueueItem, enrol_message,
};

/// The enrolment code as typed: spaces and dashes dropped, letters upper-cased; 6 to 32 of
/// `[A-Z0-9]`.
pub fn clean_enrol_code(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    ((6..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_has_version_and_variant() {
        assert_eq!(uuid_v4([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn token_route() {
        let t = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd";
        assert_eq!(token_from_hash(&format!("#/t/{t}")), Some(t.to_owned()));
        assert_eq!(token_from_hash(&format!("#/t/{t}?x=1")), Some(t.to_owned()));
        assert_eq!(token_from_hash("#/t/short"), None);
        assert_eq!(
            token_from_hash("#/t/<script>alert(1)</script>aaaaaaaa"),
            None
        );
        assert_eq!(token_from_hash(&format!("#/x/{t}")), None);
        assert_eq!(token_from_hash(""), None);
    }

    #[test]
    fn sms_code_input() {
        assert_eq!(clean_code(" 123 456 "), Some("123456".into()));
        assert_eq!(clean_code("12345"), None);
        assert_eq!(clean_code("12345a"), None);
        assert_eq!(clean_code("１２３４５６"), None);
    }

    #[test]
    fn points_are_rounded_with_a_default_pressure() {
        let p = point(12.54, 30.0, 0.4, 0.0);
        assert_eq!(
            serde_json::to_value(p).unwrap(),
            serde_json::json!({"x": 12.5, "y": 30.0, "t": 0.0, "p": 0.5})
        );
        assert_eq!(point(1.0, 1.0, 7.6, 3.0).p, Some(1.0));
    }

    #[test]
    fn task_view_helpers() {
        let mut v = empty_task();
        v.sign_mode = "copy".into();
        v.copy_text = Some("本人 同意".into());
        v.signer_role = "proxy".into();
        assert_eq!(copy_chars(&v), ["本", "人", "同", "意"]);
        assert_eq!(sign_mode(&v), Some(SignMode::Copy));
        assert!(is_proxy(&v));
        v.sign_mode = "face".into();
        assert_eq!(sign_mode(&v), None);
        for (wire, _) in RELATIONSHIPS {
            assert!(relationship(wire).is_some(), "{wire}");
        }
        assert_eq!(relationship("friend"), None);
    }

    #[test]
    fn the_shared_id_check_is_the_one_used() {
        assert_eq!(validate_id_number("11010519491231002X"), Ok(()));
        assert_eq!(
            validate_id_number("110105194912310021"),
            Err(IdNumberError::CheckDigit)
        );
    }

    fn short(bytes: &[u8]) -> Option<(u16, Vec<u8>)> {
        PadAnswer::decode(bytes).map(|o| (o.status, o.body))
    }

    #[test]
    fn pad_inner_and_answer() {
        let inner = PadInner::encode(
            "POST",
            "/api/v1/h5/tasks/abc/submit",
            Some("s1"),
            Some(r#"{"a":1}"#),
        );
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&inner).unwrap(),
            serde_json::json!({"method": "POST", "path": "/api/v1/h5/tasks/abc/submit", "session": "s1", "body_base64": "eyJhIjoxfQ=="})
        );
        let get = PadInner::encode("GET", PAD_QUEUE, None, None);
        assert_eq!(
            String::from_utf8(get).unwrap(),
            r#"{"method":"GET","path":"/pad/queue"}"#
        );

        assert_eq!(
            short(
                br#"{"status":200,"content_type":"application/json","body_base64":"eyJhIjoxfQ=="}"#
            ),
            Some((200, br#"{"a":1}"#.to_vec()))
        );
        assert_eq!(
            short(br#"{"status":200,"content_type":"image/png","body_base64":"iVBORw=="}"#),
            Some((200, vec![0x89, b'P', b'N', b'G']))
        );
        assert_eq!(short(br#"{"status":204}"#), Some((204, Vec::new())));
        // A rotated channel key comes with the answer; a malformed one spoils the answer.
        let point = format!("04{}", "ab".repeat(64));
        let with_key = format!(r#"{{"status":200,"channel_public_key":"{point}"}}"#);
        let opened = PadAnswer::decode(with_key.as_bytes()).unwrap();
        assert_eq!(
            opened.channel_public_key,
            Some(hex::decode(&point).unwrap())
        );
        for bad in ["02ab", "zz", &format!("03{}", "ab".repeat(64))] {
            let a = format!(r#"{{"status":200,"channel_public_key":"{bad}"}}"#);
            assert_eq!(PadAnswer::decode(a.as_bytes()), None, "{bad}");
        }
        assert_eq!(short(br#"{"status":0}"#), None);
        assert_eq!(short(br#"{"status":200,"body_base64":"%%"}"#), None);
        assert_eq!(short(b"garbage"), None);
    }

    #[test]
    fn pad_codes_and_paths() {
        assert!(is_pad_route("#/pad") && is_pad_route("#/pad/") && is_pad_route("#/pad?x"));
        assert!(!is_pad_route("#/padding") && !is_pad_route("#/t/abc") && !is_pad_route(""));
        assert_eq!(clean_enrol_code(" ab12-cd34 "), Some("AB12CD34".into()));
        assert_eq!(clean_enrol_code("12345"), None);
        assert_eq!(clean_enrol_code("1234567!"), None);
        assert_eq!(clean_enrol_code("１２３４５６"), None);
        assert_eq!(
            pad_open_path("t-1_a").as_deref(),
            Some("/pad/tasks/t-1_a/open")
        );
        assert_eq!(pad_open_path("../x"), None);
        assert_eq!(pad_open_path(""), None);
        // The contract's normalisation: upper case, no dashes or spaces.
        let code = clean_enrol_code("abcd-efgh-jkmn").unwrap();
        assert_eq!(
            enrol_message(&code, "04ff"),
            b"yiqian-pad-enrol:ABCDEFGHJKMN:04ff"
        );
    }
}
