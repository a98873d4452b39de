//! Bedside pads (issue 8, `docs/api/patient.md` §5): the admin API that registers pads, the
//! enrolment call, and the plaintext inside the `POST /api/v1/pad/call` envelopes
//! (`shared/pad-channel`). Instants are RFC 3339 text.

use serde::{Deserialize, Serialize};

/// The prefix of the message a pad signs at enrolment: the message is
/// `ENROL_PREFIX ‖ CODE ‖ ":" ‖ public_key_hex` (UTF-8), see [`enrol_message`].
pub const ENROL_PREFIX: &str = "yiqian-pad-enrol:";

/// The enrolment code as compared: upper case, without `-` and white space.
pub fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The bytes a pad signs with its new device key to prove it holds it.
pub fn enrol_message(code: &str, public_key_hex: &str) -> Vec<u8> {
    format!(
        "{ENROL_PREFIX}{}:{}",
        normalise_code(code),
        public_key_hex.to_ascii_lowercase()
    )
    .into_bytes()
}

/// `POST /api/v1/pads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePad {
    /// Display name, 1–32 characters (e.g. `5病区-1号平板`).
    pub name: String,
    /// Ward, 1–32 characters (the certificate's OU).
    pub ward: String,
}

/// Answer to [`CreatePad`] and to `POST /api/v1/pads/{id}/code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PadCode {
    /// Pad id (UUID).
    pub pad_id: String,
    /// Name.
    pub name: String,
    /// Ward.
    pub ward: String,
    /// `pending`.
    pub status: String,
    /// One-time code staff type on the pad, `XXXX-XXXX-XXXX`.
    pub enrol_code: String,
    /// When the code stops working (15 minutes).
    pub enrol_expires_at: String,
}

/// `POST /api/v1/pads/{id}/revoke`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokePad {
    /// RFC 5280 reason name (default `cessationOfOperation`).
    #[serde(default)]
    pub reason: Option<String>,
}

/// A pad as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PadView {
    /// Pad id.
    pub pad_id: String,
    /// Name.
    pub name: String,
    /// Ward.
    pub ward: String,
    /// `pending`, `active` or `revoked`.
    pub status: String,
    /// Device certificate serial (lowercase hex) once enrolled.
    pub certificate_serial: Option<String>,
    /// Created.
    pub created_at: String,
    /// Enrolled.
    pub enrolled_at: Option<String>,
    /// Revoked.
    pub revoked_at: Option<String>,
    /// Last accepted channel call.
    pub last_seen_at: Option<String>,
}

/// `GET /api/v1/pads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PadList {
    /// Newest first.
    pub pads: Vec<PadView>,
}

/// `POST /api/v1/pad/enrol`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PadEnrol {
    /// The one-time code (case and `-` do not matter).
    pub code: String,
    /// Hex of the 65-byte uncompressed SEC1 SM2 public key.
    pub public_key: String,
    /// Hex of the DER SM2 signature (default ID) over [`enrol_message`].
    pub signature: String,
}

/// Answer to [`PadEnrol`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PadEnrolled {
    /// Pad id.
    pub pad_id: String,
    /// Name.
    pub name: String,
    /// Ward.
    pub ward: String,
    /// Hospital.
    pub hospital: String,
    /// The device certificate's serial (lowercase hex): the envelope's `serial`.
    pub certificate_serial: String,
    /// The device certificate.
    pub certificate_pem: String,
    /// Hex of the server's 65-byte SEC1 channel public key (the envelopes' recipient).
    pub channel_public_key: String,
}

/// The plaintext of a request envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PadInnerRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// An allowed path (no query string).
    pub path: String,
    /// The H5 page session (sent as `x-yiqian-h5-session`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Standard base64 of the exact JSON body bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

/// The plaintext of a response envelope: what the route answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PadInnerAnswer {
    /// HTTP status.
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: String,
    /// Standard base64 of the body bytes.
    pub body_base64: String,
    /// Hex of the server's new channel public key, sent when the envelope was made for the
    /// previous one (the key was rotated): the pad seals its next envelopes to this key. It
    /// arrives sealed under the pad's own request key, so only the server could have sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_public_key: Option<String>,
}

/// `POST /api/v1/pads/channel-key/rotate` (administrators): the new channel key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelKeyRotated {
    /// Hex of the new 65-byte SEC1 channel public key.
    pub channel_public_key: String,
    /// Envelopes sealed to the previous key are accepted until then (RFC 3339); each answer to
    /// one tells its pad the new key.
    pub previous_accepted_until: String,
}

/// The pad itself, in [`PadQueue`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PadInfo {
    /// Pad id.
    pub pad_id: String,
    /// Name.
    pub name: String,
    /// Ward.
    pub ward: String,
    /// Hospital.
    pub hospital: String,
}

/// One open task in a pad's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PadQueueItem {
    /// Task id.
    pub task_id: String,
    /// Document title.
    pub title: String,
    /// `张*`.
    pub signer_name_masked: String,
    /// `patient` or `proxy`.
    pub signer_role: String,
    /// Sign mode.
    pub sign_mode: String,
    /// Identity checks (`["pad"]`: no SMS on the pad).
    pub identity: Vec<String>,
    /// `pending` or `verified`.
    pub status: String,
    /// Created.
    pub created_at: String,
    /// Expires.
    pub expires_at: String,
}

/// Inner `GET /pad/queue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PadQueue {
    /// This pad.
    pub pad: PadInfo,
    /// Open tasks, oldest first (at most 50).
    pub tasks: Vec<PadQueueItem>,
}

/// Inner `POST /pad/tasks/{id}/open`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PadOpened {
    /// The task's link token (for the `/api/v1/h5/tasks/{token}` paths).
    pub token: String,
    /// The page session when the task's identity is `["pad"]`; otherwise the SMS steps follow.
    pub session: Option<String>,
}

/// Inner `POST /pad/tasks/{id}/handoff` (扫码一名一签): the task's own link as a QR code for
/// the signer to scan with their own phone, where they prove who they are and sign; the pad
/// only shows the code and watches its queue.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PadHandoff {
    /// The QR code of the task's link (SVG markup).
    pub qr_svg: String,
    /// The signer's masked name, shown above the code so each signer scans their own.
    pub signer_name_masked: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_normalise_and_the_message_is_fixed() {
        assert_eq!(normalise_code(" abcd-efgh-jkmn "), "ABCDEFGHJKMN");
        assert_eq!(
            enrol_message("abcd-EFGH jkmn", "04AB"),
            b"yiqian-pad-enrol:ABCDEFGHJKMN:04ab".to_vec()
        );
    }
}
