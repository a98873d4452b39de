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
    pad_task_path(task_id, "open")
}

/// The inner path that shows a task's QR code for the signer's own phone (扫码一名一签).
pub fn pad_handoff_path(task_id: &str) -> Option<String> {
    pad_task_path(task_id, "handoff")
}

/// `/pad/tasks/{id}/{action}` for a task id as the queue lists them (never a path of its own).
fn pad_task_path(task_id: &str, action: &str) -> Option<String> {
    let ok = !task_id.is_empty()
        && task_id.len() <= 64
        && task_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| format!("/pad/tasks/{task_id}/{action}"))
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

/// The identity checks' wire types and step rule, shared with the server.
pub use cosign_proto::v1::identity::{
    CameraCheck, FacePhoto, IdCardPhoto, IdentityCheckResult, LivenessChallenge, LivenessFrames,
    LivenessStep, camera_checks_for_task,
};

/// Photos at most this large in one of these types go to the server as they are; anything
/// else (a 12-megapixel phone photo, HEIC) is redrawn smaller as JPEG first. 2 MB keeps a
/// photo sent from a bedside pad (base64 twice, inside the envelope) under the channel's 6 MB.
pub const PHOTO_AS_IS_MAX_BYTES: f64 = 2.0 * 1024.0 * 1024.0;
const PHOTO_AS_IS_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "image/bmp"];

/// Whether a chosen photo can be sent unchanged.
pub fn photo_as_is(media_type: &str, size: f64) -> bool {
    PHOTO_AS_IS_TYPES.contains(&media_type) && size > 0.0 && size <= PHOTO_AS_IS_MAX_BYTES
}

/// `(width, height)` scaled so the longer side is at most `max`, never enlarged, never 0.
pub fn fit_within(width: u32, height: u32, max: u32) -> (u32, u32) {
    let longer = width.max(height);
    if longer <= max || longer == 0 {
        return (width.max(1), height.max(1));
    }
    let scale = |side: u32| {
        let scaled = u64::from(side) * u64::from(max) / u64::from(longer);
        u32::try_from(scaled).unwrap_or(max).max(1)
    };
    (scale(width), scale(height))
}

/// The base64 payload of a `data:…;base64,` URL (what `canvas.toDataURL` gives).
pub fn data_url_payload(url: &str) -> Option<&str> {
    let (head, payload) = url.split_once(";base64,")?;
    (head.starts_with("data:image/") && !payload.is_empty()).then_some(payload)
}

/// The server's time from a clock refusal of `POST /api/v1/pad/call` (401 `PAD_CLOCK` with
/// `server_time_ms`); `None` for every other answer.
pub fn pad_clock_refusal(status: u16, body: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct ClockRefusal {
        code: String,
        server_time_ms: u64,
    }
    if status != 401 {
        return None;
    }
    let r: ClockRefusal = serde_json::from_slice(body).ok()?;
    (r.code == "PAD_CLOCK").then_some(r.server_time_ms)
}

/// How far the server's clock is ahead of the pad's (milliseconds, negative when behind),
/// from a request sent at `sent` and answered at `received` (both pad clock) that the server
/// stamped `server`: the server read its clock at some point in between, so the midpoint is
/// off by at most half the round trip. A `received` before `sent` (the pad's clock was set
/// back meanwhile) counts as a zero round trip.
pub fn clock_offset(sent: u64, received: u64, server: u64) -> i64 {
    let received = received.max(sent);
    let midpoint = sent + (received - sent) / 2;
    #[allow(clippy::cast_possible_wrap)] // both are milliseconds since 1970, far below 2^62
    let offset = server as i64 - midpoint as i64;
    offset
}

/// The pad's clock corrected by `offset` (never before 1970).
pub fn corrected_now(pad_now: u64, offset: i64) -> u64 {
    pad_now.saturating_add_signed(offset)
}

/// The pad routes' wire types and the enrolment message, shared with the server.
pub use cosign_proto::v1::pad::{
    PadEnrol, PadEnrolled, PadHandoff, PadOpened, PadQueue, PadQueueItem, enrol_message,
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
        assert_eq!(
            pad_handoff_path("t-1_a").as_deref(),
            Some("/pad/tasks/t-1_a/handoff")
        );
        assert_eq!(pad_handoff_path("a/open"), None);
        // The contract's normalisation: upper case, no dashes or spaces.
        let code = clean_enrol_code("abcd-efgh-jkmn").unwrap();
        assert_eq!(
            enrol_message(&code, "04ff"),
            b"yiqian-pad-enrol:ABCDEFGHJKMN:04ff"
        );
    }

    #[test]
    fn clock_refusals_and_offsets() {
        let refusal = br#"{"code":"PAD_CLOCK","message":"x","server_time_ms":1700000000000}"#;
        assert_eq!(pad_clock_refusal(401, refusal), Some(1_700_000_000_000));
        // Another status, another code, or no server time: not a clock refusal.
        assert_eq!(pad_clock_refusal(400, refusal), None);
        assert_eq!(
            pad_clock_refusal(401, br#"{"code":"PAD_REPLAY","server_time_ms":1}"#),
            None
        );
        assert_eq!(pad_clock_refusal(401, br#"{"code":"PAD_CLOCK"}"#), None);
        assert_eq!(pad_clock_refusal(401, b"not json"), None);
        // A pad ten minutes slow, a 200 ms round trip.
        assert_eq!(clock_offset(1_000, 1_200, 601_100), 600_000);
        // A pad ahead of the server.
        assert_eq!(clock_offset(900_000, 900_100, 300_050), -600_000);
        // The pad's clock went back during the call: counted as no round trip.
        assert_eq!(clock_offset(5_000, 4_000, 5_000), 0);
        assert_eq!(corrected_now(1_000, -5_000), 0);
        assert_eq!(corrected_now(1_000, 600_000), 601_000);
    }

    proptest::proptest! {
        /// Whenever the server stamped its time between sending and receiving, the corrected
        /// pad clock is within half the round trip of the server's.
        #[test]
        fn corrected_clock_is_within_half_the_round_trip(
            sent in 0u64..4_000_000_000_000,
            trip in 0u64..120_000,
            at in 0.0f64..=1.0,
            skew in -86_400_000i64..86_400_000,
        ) {
            let received = sent + trip;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
            let stamped_pad_time = sent + (trip as f64 * at) as u64;
            let server = stamped_pad_time.saturating_add_signed(skew);
            proptest::prop_assume!(server > 0 && stamped_pad_time.checked_add_signed(skew).is_some());
            let offset = clock_offset(sent, received, server);
            let corrected = corrected_now(stamped_pad_time, offset);
            proptest::prop_assert!(corrected.abs_diff(server) <= trip / 2 + 1);
        }
    }

    #[test]
    fn photos_and_data_urls() {
        assert!(photo_as_is("image/jpeg", 2.0e6));
        assert!(!photo_as_is("image/jpeg", 2.2e6));
        assert!(!photo_as_is("image/heic", 1.0e5));
        assert!(!photo_as_is("image/png", 0.0));
        assert_eq!(fit_within(4000, 3000, 2000), (2000, 1500));
        assert_eq!(fit_within(3000, 4000, 2000), (1500, 2000));
        assert_eq!(fit_within(800, 600, 2000), (800, 600));
        assert_eq!(fit_within(10_000, 1, 100), (100, 1));
        assert_eq!(fit_within(0, 0, 100), (1, 1));
        assert_eq!(
            data_url_payload("data:image/jpeg;base64,AAAA"),
            Some("AAAA")
        );
        assert_eq!(data_url_payload("data:image/jpeg;base64,"), None);
        assert_eq!(data_url_payload("data:,"), None);
        assert_eq!(data_url_payload("data:text/html;base64,AAAA"), None);
    }

    proptest::proptest! {
        /// Scaled sizes keep within the bound, never grow, and keep the aspect ratio to a pixel.
        #[test]
        fn fitted_sizes_keep_the_shape(w in 1u32..20_000, h in 1u32..20_000, max in 1u32..5_000) {
            let (fw, fh) = fit_within(w, h, max);
            proptest::prop_assert!(fw >= 1 && fh >= 1 && fw <= w && fh <= h);
            proptest::prop_assert!(fw.max(fh) <= max.max(1) || w.max(h) <= max);
            // Aspect ratio: the cross products differ by at most one pixel's worth.
            let (a, b) = (u64::from(fw) * u64::from(h), u64::from(fh) * u64::from(w));
            proptest::prop_assert!(a.abs_diff(b) <= u64::from(w.max(h)));
        }
    }
}
