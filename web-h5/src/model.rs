//! The page's side of the patient signing API (docs/api/patient.md): response and request
//! bodies, the sign modes, and the submission id.

use serde::{Deserialize, Serialize};

/// `GET /api/v1/h5/tasks/{token}`. Lenient: unknown fields are ignored, missing ones default.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct TaskView {
    /// Document title, e.g. 手术知情同意书.
    pub title: String,
    /// Hospital name.
    pub hospital: String,
    /// Signer's masked name, e.g. 张*.
    pub signer_name_masked: String,
    /// `patient` or `proxy`.
    pub signer_role: String,
    /// `button`, `long_press`, `handwriting` or `copy`.
    pub sign_mode: String,
    /// The sentence to copy (sign mode `copy`).
    pub copy_text: Option<String>,
    /// Reading to the last page is required before signing.
    pub require_read_to_end: bool,
    /// Identity checks, e.g. `["sms"]`.
    pub identity: Vec<String>,
    /// `pending`, `verified`, `signed`, `expired`, `locked` or `cancelled`.
    pub status: String,
    /// Number of page images.
    pub page_count: u32,
    /// Masked phone number, e.g. 138****0000.
    pub phone_masked: String,
    /// The SMS step was passed (on some device).
    pub verified: bool,
    /// RFC 3339 expiry.
    pub expires_at: String,
}

impl TaskView {
    /// The signer is an authorised proxy (授权人代签).
    pub fn is_proxy(&self) -> bool {
        self.signer_role == "proxy"
    }

    /// The sign mode, if the page knows it.
    pub fn mode(&self) -> Option<SignMode> {
        SignMode::parse(&self.sign_mode)
    }

    /// The characters to copy, one per box (sign mode `copy`).
    pub fn copy_chars(&self) -> Vec<String> {
        self.copy_text
            .as_deref()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(String::from)
            .collect()
    }
}

/// How the patient signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMode {
    /// One tap on 确认签署.
    Button,
    /// Hold for [`LONG_PRESS_MS`].
    LongPress,
    /// Handwritten signature on a canvas.
    Handwriting,
    /// Copy a sentence by hand, character by character (逐字抄录).
    Copy,
}

impl SignMode {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "button" => Self::Button,
            "long_press" => Self::LongPress,
            "handwriting" => Self::Handwriting,
            "copy" => Self::Copy,
            _ => return None,
        })
    }
}

/// How long a long press must last (the server checks `held_ms >= 3000` too).
pub const LONG_PRESS_MS: u32 = 3000;

/// One sampled pen position: CSS pixels from the pad's top-left, milliseconds since the first
/// point of the signature, pressure 0..1 (0.5 when the device does not report it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Horizontal position.
    pub x: f64,
    /// Vertical position.
    pub y: f64,
    /// Milliseconds since the first point.
    pub t: u64,
    /// Pressure.
    pub p: f64,
}

impl Point {
    /// A point rounded to what the evidence needs (0.1 px, 0.01 pressure), so the stored JSON
    /// stays small.
    pub fn rounded(x: f64, y: f64, t: f64, p: f64) -> Self {
        let p = if p > 0.0 && p.is_finite() {
            p.min(1.0)
        } else {
            0.5
        };
        Self {
            x: (x * 10.0).round() / 10.0,
            y: (y * 10.0).round() / 10.0,
            t: if t.is_finite() && t > 0.0 {
                t.round() as u64
            } else {
                0
            },
            p: (p * 100.0).round() / 100.0,
        }
    }
}

/// One pen-down-to-pen-up stroke.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Stroke {
    /// Sampled points, in order.
    pub points: Vec<Point>,
}

/// One copied character (sign mode `copy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CopyChar {
    /// The character the patient was asked to write.
    #[serde(rename = "char")]
    pub ch: String,
    /// Its strokes.
    pub strokes: Vec<Stroke>,
    /// Its transparent PNG, base64.
    pub png_base64: String,
}

/// `POST /api/v1/h5/tasks/{token}/submit`. Built once per signature and kept (localStorage)
/// until acknowledged, so a retry re-sends exactly the same body and id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmitBody {
    /// Idempotency key (UUID v4 made by the page).
    pub submission_id: String,
    /// The patient scrolled to the last page.
    pub read_to_end: bool,
    /// The consent box was ticked / the button pressed.
    pub consent: bool,
    /// Long press: how long it was held.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub held_ms: Option<u64>,
    /// Handwriting: the strokes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub strokes: Option<Vec<Stroke>>,
    /// Handwriting: the rendered transparent PNG, base64.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub signature_png_base64: Option<String>,
    /// Copy: one entry per character.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub copy_chars: Option<Vec<CopyChar>>,
}

/// `POST …/submit` answer.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct SubmitResult {
    /// `signed`.
    pub status: String,
    /// RFC 3339.
    pub signed_at: String,
    /// The signed document's id.
    pub document_id: String,
}

/// `POST …/sms` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct SmsSent {
    /// Seconds until another code may be requested.
    pub resend_after_s: u32,
}

/// `POST …/verify` answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Verified {
    /// Opaque session, sent as `x-yiqian-h5-session`.
    pub session: String,
}

/// `POST …/proxy` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyBody {
    /// `spouse`, `parent`, `child`, `guardian` or `other`.
    pub relationship: String,
    /// The proxy's name.
    pub name: String,
    /// The proxy's resident ID number.
    pub id_number: String,
    /// Why the patient does not sign.
    pub reason: String,
}

/// The relationships offered, with their wire names.
pub const RELATIONSHIPS: [(&str, crate::i18n::T); 5] = [
    ("spouse", crate::i18n::T::RelSpouse),
    ("parent", crate::i18n::T::RelParent),
    ("child", crate::i18n::T::RelChild),
    ("guardian", crate::i18n::T::RelGuardian),
    ("other", crate::i18n::T::RelOther),
];

/// A server error body `{code, message, message_en}` (plus `attempts_left` for OTP_INVALID).
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

/// Formats 16 random bytes as a UUID version 4 (RFC 9562).
pub fn uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_has_version_and_variant() {
        let id = uuid_v4([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
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
    fn submit_body_matches_the_contract() {
        let body = SubmitBody {
            submission_id: "id".into(),
            read_to_end: true,
            consent: true,
            held_ms: None,
            strokes: Some(vec![Stroke {
                points: vec![Point::rounded(12.54, 30.0, 0.4, 0.0)],
            }]),
            signature_png_base64: Some("iVBOR".into()),
            copy_chars: None,
        };
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"submission_id": "id", "read_to_end": true, "consent": true,
                "strokes": [{"points": [{"x": 12.5, "y": 30.0, "t": 0, "p": 0.5}]}],
                "signature_png_base64": "iVBOR"})
        );
        let back: SubmitBody = serde_json::from_value(json).unwrap();
        assert_eq!(back, body);
        let c = CopyChar {
            ch: "本".into(),
            strokes: vec![],
            png_base64: String::new(),
        };
        assert_eq!(serde_json::to_value(&c).unwrap()["char"], "本");
    }

    #[test]
    fn task_view_is_lenient_and_splits_copy_text() {
        let v: TaskView = serde_json::from_str(
            r#"{"title":"手术知情同意书","sign_mode":"copy","copy_text":"本人 同意","signer_role":"proxy","extra":1}"#,
        )
        .unwrap();
        assert_eq!(v.copy_chars(), ["本", "人", "同", "意"]);
        assert_eq!(v.mode(), Some(SignMode::Copy));
        assert!(v.is_proxy());
        assert_eq!(SignMode::parse("face"), None);
    }
}
