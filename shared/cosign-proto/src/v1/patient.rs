//! Patient signing (issue 8): the terminal's task API and the H5 page's API
//! (`docs/api/patient.md`), plus checks both sides share: the resident ID number
//! (GB 11643-1999, MOD 11-2 check digit and birth date) and the masks shown on the page.
//!
//! Pure Rust over serde, so the page (wasm) validates exactly as the server does.

use serde::{Deserialize, Serialize};

/// Longest copy text (`sign_mode = copy`), in characters.
pub const MAX_COPY_CHARS: usize = 64;
/// Most strokes in one submission (all copy characters together).
pub const MAX_STROKES: usize = 200;
/// Most points in one submission (all strokes together).
pub const MAX_POINTS: usize = 20_000;
/// Largest signature PNG (decoded bytes), and the largest of all copy-character PNGs together.
pub const MAX_PNG_BYTES: usize = 512 * 1024;
/// Shortest long press, in milliseconds.
pub const MIN_HOLD_MS: u64 = 3000;
/// Header carrying the session from SMS verification.
pub const HEADER_H5_SESSION: &str = "x-yiqian-h5-session";

/// Who signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignerRole {
    /// The patient.
    Patient,
    /// Someone signing for the patient (授权人代签); gives their own details on the page.
    Proxy,
}

impl SignerRole {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Patient => "patient",
            Self::Proxy => "proxy",
        }
    }
}

/// How the signer confirms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignMode {
    /// A confirm button (确认签署).
    Button,
    /// Hold for at least [`MIN_HOLD_MS`].
    LongPress,
    /// A handwritten signature (strokes plus a transparent PNG).
    Handwriting,
    /// Copy `copy_text` by hand, character by character (逐字抄录).
    Copy,
}

impl SignMode {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Button => "button",
            Self::LongPress => "long_press",
            Self::Handwriting => "handwriting",
            Self::Copy => "copy",
        }
    }
}

/// How the link reaches the signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// An SMS with the link.
    Sms,
    /// A QR code shown by the terminal.
    #[default]
    Qr,
    /// The hospital app's push (through the message platform).
    Push,
}

impl Delivery {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Qr => "qr",
            Self::Push => "push",
        }
    }
}

/// The document to sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDocument {
    /// Title shown to the signer (e.g. 手术知情同意书).
    pub title: String,
    /// The PDF, base64 (standard alphabet).
    pub pdf_base64: String,
}

/// The person the link is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSigner {
    /// Patient, or proxy.
    pub role: SignerRole,
    /// The patient's name (for a proxy task too: the proxy gives their own on the page).
    pub name: String,
    /// Mobile number the SMS code goes to (11 digits).
    pub phone: String,
    /// The patient's resident ID number (checked; carried in the event certificate as a
    /// keyed hash only).
    #[serde(default)]
    pub id_number: Option<String>,
}

/// Where the signature appears.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TaskPlacement {
    /// Right of the first occurrence of this text (e.g. `患者签名：`).
    Keyword {
        /// Text to find.
        keyword: String,
    },
    /// A box on a page, PDF points from the lower-left corner.
    Coordinates {
        /// Page, from 1.
        page: u32,
        /// Left.
        x: f32,
        /// Bottom.
        y: f32,
        /// Width.
        width: f32,
        /// Height.
        height: f32,
    },
}

/// `POST /api/v1/patient-tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePatientTask {
    /// The PDF.
    pub document: TaskDocument,
    /// Who signs.
    pub signer: TaskSigner,
    /// HIS patient id.
    #[serde(default)]
    pub patient_id: Option<String>,
    /// Visit / admission number.
    #[serde(default)]
    pub visit_id: Option<String>,
    /// Document type (e.g. `consent`).
    #[serde(default)]
    pub doc_type: Option<String>,
    /// Department.
    #[serde(default)]
    pub department: Option<String>,
    /// Identity checks, in order; today `["sms"]`.
    #[serde(default = "default_identity")]
    pub identity: Vec<String>,
    /// How the signer confirms.
    pub sign_mode: SignMode,
    /// The sentence to copy (`sign_mode = copy`, at most [`MAX_COPY_CHARS`]).
    #[serde(default)]
    pub copy_text: Option<String>,
    /// The signer must scroll to the end before signing.
    #[serde(default)]
    pub require_read_to_end: bool,
    /// Where the signature appears.
    pub placement: TaskPlacement,
    /// How the link is delivered.
    #[serde(default)]
    pub delivery: Delivery,
    /// Link lifetime in seconds, 60..=86400 (default 1800).
    #[serde(default)]
    pub expires_in_s: Option<u32>,
    /// The bedside pad that shows the task in its queue (an `active` pad's id; `docs/api/patient.md`
    /// §5). With a pad, `identity` may be `["pad"]`: ward staff vouch for the signer at the bedside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_id: Option<String>,
}

fn default_identity() -> Vec<String> {
    vec!["sms".to_owned()]
}

/// Answer to [`CreatePatientTask`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientTaskCreated {
    /// Task id (UUID).
    pub task_id: String,
    /// The signing link (`<public_url>/h5/#/t/<token>`); the token is the capability.
    pub link: String,
    /// RFC 3339.
    pub expires_at: String,
    /// Path of the link's QR code (SVG; terminal-signed GET).
    pub qr_svg: String,
}

/// The signature of a signed task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientSignatureView {
    /// Serial of the event certificate (hex).
    pub certificate_serial: String,
    /// The signer's name (the certificate's CN).
    pub signer_name: String,
    /// `patient` or `proxy`.
    pub signer_role: String,
    /// Version of the document that carries the signature.
    pub version: i64,
    /// SM3 of the signed PDF.
    pub sm3: String,
    /// SM3 of the evidence (strokes etc., before encryption), also a signed attribute.
    pub evidence_sm3: String,
}

/// `GET /api/v1/patient-tasks/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientTaskView {
    /// Task id.
    pub task_id: String,
    /// `pending`, `verified`, `signing`, `signed`, `expired`, `locked` or `cancelled`.
    pub status: String,
    /// RFC 3339, once signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
    /// The document in the archive (`/api/v1/documents/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
    /// Once signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<PatientSignatureView>,
    /// RFC 3339.
    pub expires_at: String,
}

/// `GET /api/v1/h5/tasks/{token}`: what the page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct H5TaskView {
    /// Document title.
    pub title: String,
    /// Hospital name.
    pub hospital: String,
    /// `张*`.
    pub signer_name_masked: String,
    /// `patient` or `proxy`.
    pub signer_role: String,
    /// `button`, `long_press`, `handwriting` or `copy`.
    pub sign_mode: String,
    /// The sentence to copy (copy mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_text: Option<String>,
    /// Scroll to the end first.
    pub require_read_to_end: bool,
    /// Identity checks.
    pub identity: Vec<String>,
    /// `pending` or `verified`.
    pub status: String,
    /// Pages (`pages/{n}.png`, n from 1).
    pub page_count: u32,
    /// `138****0000`.
    pub phone_masked: String,
    /// The SMS code was verified (a session was issued).
    pub verified: bool,
    /// RFC 3339.
    pub expires_at: String,
}

/// `POST /api/v1/h5/tasks/{token}/sms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsSent {
    /// Seconds until another code may be asked for.
    pub resend_after_s: u32,
}

/// `POST /api/v1/h5/tasks/{token}/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyCode {
    /// The six digits from the SMS.
    pub code: String,
}

/// Answer to [`VerifyCode`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct H5Session {
    /// Send as [`HEADER_H5_SESSION`] on the calls that follow.
    pub session: String,
}

/// A proxy's relationship to the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relationship {
    /// 配偶.
    Spouse,
    /// 父母.
    Parent,
    /// 子女.
    Child,
    /// 监护人.
    Guardian,
    /// 其他.
    Other,
}

impl Relationship {
    /// Chinese label.
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Spouse => "配偶",
            Self::Parent => "父母",
            Self::Child => "子女",
            Self::Guardian => "监护人",
            Self::Other => "其他",
        }
    }
}

/// `POST /api/v1/h5/tasks/{token}/proxy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyDetails {
    /// Relationship to the patient.
    pub relationship: Relationship,
    /// The proxy's name.
    pub name: String,
    /// The proxy's resident ID number ([`validate_id_number`]).
    pub id_number: String,
    /// Why the patient does not sign (e.g. 患者昏迷).
    pub reason: String,
}

/// One sampled point of a stroke.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StrokePoint {
    /// CSS pixels in the canvas.
    pub x: f64,
    /// CSS pixels in the canvas.
    pub y: f64,
    /// Milliseconds since the signature started.
    pub t: f64,
    /// Pressure 0..=1 (0.5 when the device has none).
    #[serde(default)]
    pub p: Option<f64>,
}

/// One pen-down..pen-up stroke.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stroke {
    /// Points in order.
    pub points: Vec<StrokePoint>,
}

/// One copied character.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CopyChar {
    /// The character of `copy_text` it copies.
    #[serde(rename = "char")]
    pub ch: String,
    /// Its strokes.
    pub strokes: Vec<Stroke>,
    /// Its box rendered (transparent PNG, base64), optional.
    #[serde(default)]
    pub png_base64: Option<String>,
}

/// `POST /api/v1/h5/tasks/{token}/submit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// UUID made by the page; the same id again returns the first result.
    pub submission_id: String,
    /// The signer scrolled to the end.
    #[serde(default)]
    pub read_to_end: bool,
    /// The signer confirmed (button mode).
    #[serde(default)]
    pub consent: bool,
    /// Long press duration.
    #[serde(default)]
    pub held_ms: Option<u64>,
    /// Handwriting strokes.
    #[serde(default)]
    pub strokes: Vec<Stroke>,
    /// Handwriting rendered as a transparent PNG, base64.
    #[serde(default)]
    pub signature_png_base64: Option<String>,
    /// Copy mode: one entry per character of `copy_text`.
    #[serde(default)]
    pub copy_chars: Vec<CopyChar>,
}

/// Answer to [`Submission`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    /// `signed`.
    pub status: String,
    /// RFC 3339.
    pub signed_at: String,
    /// The document in the archive.
    pub document_id: String,
}

/// Why an ID number is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdNumberError {
    /// Not 18 characters.
    Length,
    /// The first 17 are not all digits, or the last is not a digit or `X`.
    Characters,
    /// Characters 7..=14 are not a real date from 1900-01-01 on.
    BirthDate,
    /// The MOD 11-2 check character is wrong.
    CheckDigit,
}

impl IdNumberError {
    /// Chinese text.
    pub fn message_zh(self) -> &'static str {
        match self {
            Self::Length => "身份证号码须为 18 位。",
            Self::Characters => "身份证号码前 17 位须为数字，最后一位为数字或 X。",
            Self::BirthDate => "身份证号码中的出生日期无效。",
            Self::CheckDigit => "身份证号码校验码不正确，请核对。",
        }
    }

    /// English text.
    pub fn message_en(self) -> &'static str {
        match self {
            Self::Length => "The ID number must have 18 characters.",
            Self::Characters => "The first 17 characters must be digits, the last a digit or X.",
            Self::BirthDate => "The birth date in the ID number is not a valid date.",
            Self::CheckDigit => "The ID number's check digit is wrong.",
        }
    }
}

/// The GB 11643 check character of the first 17 digits (ISO 7064 MOD 11-2).
pub fn id_check_char(first17: &[u8]) -> Option<u8> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [u8; 11] = *b"10X98765432";
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (b, w) in first17.iter().zip(WEIGHTS) {
        if !b.is_ascii_digit() {
            return None;
        }
        sum += u32::from(b - b'0') * w;
    }
    CHECK.get((sum % 11) as usize).copied()
}

fn digits(b: &[u8]) -> u32 {
    b.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
}

/// Checks an 18-character resident ID number: digits, a real birth date (from 1900-01-01,
/// year at most 2099; whether it lies in the future is the caller's business) and the
/// MOD 11-2 check character (`x` accepted for `X`).
pub fn validate_id_number(id: &str) -> Result<(), IdNumberError> {
    let b = id.as_bytes();
    if b.len() != 18 {
        return Err(IdNumberError::Length);
    }
    let (first17, last) = b.split_at(17);
    if !first17.iter().all(u8::is_ascii_digit)
        || !(last[0].is_ascii_digit() || last[0] == b'X' || last[0] == b'x')
    {
        return Err(IdNumberError::Characters);
    }
    let (year, month, day) = (
        digits(&first17[6..10]),
        digits(&first17[10..12]),
        digits(&first17[12..14]),
    );
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    };
    if !(1900..=2099).contains(&year) || day == 0 || day > days {
        return Err(IdNumberError::BirthDate);
    }
    if id_check_char(first17) == Some(last[0].to_ascii_uppercase()) {
        Ok(())
    } else {
        Err(IdNumberError::CheckDigit)
    }
}

/// `张三` → `张*`, `欧阳小明` → `欧***`: the first character, then one `*` per other character.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// `13800000000` → `138****0000`; other shapes keep only their last 4 characters.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() == 11 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[7..].iter().collect();
        format!("{head}****{tail}")
    } else {
        let keep = chars.len().min(4);
        let tail: String = chars[chars.len() - keep..].iter().collect();
        format!("****{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn published_examples() {
        assert_eq!(validate_id_number("11010519491231002X"), Ok(()));
        assert_eq!(validate_id_number("11010519491231002x"), Ok(()));
        assert_eq!(
            validate_id_number("110105194912310021"),
            Err(IdNumberError::CheckDigit)
        );
        assert_eq!(
            validate_id_number("11010519491331002X"),
            Err(IdNumberError::BirthDate)
        );
        assert_eq!(
            validate_id_number("1101051949123"),
            Err(IdNumberError::Length)
        );
        assert_eq!(
            validate_id_number("1101051949123100AX"),
            Err(IdNumberError::Characters)
        );
        // 29 February only in leap years.
        let leap = "11010520000229001";
        let id = format!("{leap}{}", id_check_char(leap.as_bytes()).unwrap() as char);
        assert_eq!(validate_id_number(&id), Ok(()));
        let not_leap = "11010519000229001";
        let id = format!(
            "{not_leap}{}",
            id_check_char(not_leap.as_bytes()).unwrap() as char
        );
        assert_eq!(validate_id_number(&id), Err(IdNumberError::BirthDate));
    }

    #[test]
    fn masks() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳小明"), "欧***");
        assert_eq!(mask_phone("13800000000"), "138****0000");
        assert_eq!(mask_phone("12"), "****12");
    }

    #[test]
    fn submission_shape() {
        let s: Submission = serde_json::from_str(
            r#"{"submission_id":"x","strokes":[{"points":[{"x":1,"y":2,"t":0,"p":0.5}]}],
                "copy_chars":[{"char":"本","strokes":[]}]}"#,
        )
        .unwrap();
        assert_eq!(s.copy_chars[0].ch, "本");
        let p: TaskPlacement = serde_json::from_str(r#"{"keyword":"患者签名："}"#).unwrap();
        assert!(matches!(p, TaskPlacement::Keyword { .. }));
        let p: TaskPlacement =
            serde_json::from_str(r#"{"page":1,"x":1,"y":2,"width":3,"height":4}"#).unwrap();
        assert!(matches!(p, TaskPlacement::Coordinates { page: 1, .. }));
    }

    fn valid_id() -> impl Strategy<Value = String> {
        (
            110_000u32..=659_999,
            1900u32..=2099,
            1u32..=12,
            1u32..=28,
            0u32..=999,
        )
            .prop_map(|(region, y, m, d, seq)| {
                let first = format!("{region:06}{y:04}{m:02}{d:02}{seq:03}");
                let check = id_check_char(first.as_bytes()).unwrap() as char;
                format!("{first}{check}")
            })
    }

    proptest! {
        #[test]
        fn generated_numbers_pass(id in valid_id()) {
            prop_assert_eq!(validate_id_number(&id), Ok(()));
        }

        #[test]
        fn any_other_check_character_fails(id in valid_id(), c in "[0-9X]") {
            let mut wrong = id[..17].to_owned();
            wrong.push_str(&c);
            prop_assert_eq!(validate_id_number(&wrong).is_ok(), wrong == id);
        }

        #[test]
        fn one_changed_digit_fails(id in valid_id(), at in 0usize..17, delta in 1u8..10) {
            // MOD 11-2 catches every single-digit substitution (unless the date breaks first).
            let mut b = id.clone().into_bytes();
            b[at] = b'0' + (b[at] - b'0' + delta) % 10;
            let changed = String::from_utf8(b).unwrap();
            prop_assert!(validate_id_number(&changed).is_err());
        }

        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = validate_id_number(&s);
            let _ = mask_name(&s);
            let _ = mask_phone(&s);
        }
    }
}
