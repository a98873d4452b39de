//! Identity checks through the hospital's `liveness` service (issues 8 and 10): the bodies of
//! the patient page's routes `POST /api/v1/h5/tasks/{token}/identity/…` and of the phone's
//! activation routes `POST /api/v1/phone/enroll/identity/…` (`docs/api/patient.md`,
//! `docs/identity/api.md`).
//!
//! Images travel as standard base64. The ID card step answers with a `portrait_ticket`: the
//! printed portrait, SM4-GCM-sealed by the server for this task (or activation), which the
//! page hands back with the selfie or the liveness frames. The server keeps no image between
//! the steps unless the hospital configured it to.

use serde::{Deserialize, Serialize};

/// Identity methods a patient task may ask for (`identity`), besides the SMS code.
pub const PATIENT_METHODS: [&str; 4] = ["sms", "id_ocr", "face", "liveness"];
/// A camera check, in the order a signer runs them (stored with its result as [`Self::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraCheck {
    /// The ID card's portrait side: OCR, name and number must be the signer's.
    IdCard,
    /// A selfie against the ID card's portrait.
    Face,
    /// Active liveness (blink, open the mouth, turn the head), best frame against the portrait.
    Liveness,
}

impl CameraCheck {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IdCard => "id_card",
            Self::Face => "face",
            Self::Liveness => "liveness",
        }
    }
}

/// The camera checks a patient task's `identity` list asks for, in the order they run. One
/// rule for the server (which enforces it) and the page (which shows the steps): face and
/// liveness compare with the ID card's portrait, so the card comes first whenever either is
/// asked.
pub fn camera_checks_for_task(identity: &[String]) -> Vec<CameraCheck> {
    let has = |m: &str| identity.iter().any(|i| i == m);
    let mut out = Vec::new();
    if has("id_ocr") || has("face") || has("liveness") {
        out.push(CameraCheck::IdCard);
    }
    if has("face") {
        out.push(CameraCheck::Face);
    }
    if has("liveness") {
        out.push(CameraCheck::Liveness);
    }
    out
}

/// Largest image (decoded bytes) the server forwards.
pub const MAX_IMAGE_BYTES: usize = 8 * 1024 * 1024;
/// Largest liveness frame (decoded bytes), as the service's limit.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;
/// Most frames per liveness step, as the service's limit.
pub const MAX_FRAMES_PER_STEP: usize = 15;
/// Most steps of a liveness challenge.
pub const MAX_STEPS: usize = 4;

/// `…/identity/id-card`: a photo of the front of the ID card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdCardPhoto {
    /// Base64 PNG, JPEG, BMP or WebP.
    pub image: String,
}

/// `…/identity/face`: a selfie against the portrait of the ID card step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacePhoto {
    /// Base64 image.
    pub image: String,
    /// From the ID card step.
    pub portrait_ticket: String,
}

/// One step of a liveness answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LivenessStep {
    /// The challenge's action (`blink`, `open_mouth`, `turn_left`, `turn_right`).
    pub action: String,
    /// Base64 frames, in order.
    pub frames: Vec<String>,
}

/// `…/identity/liveness`: the frames for a challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LivenessFrames {
    /// The challenge token from `…/liveness/challenge`.
    pub challenge: String,
    /// The steps, in the challenge's order.
    pub steps: Vec<LivenessStep>,
    /// From the ID card step: the best frame must match it.
    pub portrait_ticket: String,
}

/// A liveness challenge to perform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LivenessChallenge {
    /// Opaque token to send back with the frames.
    pub challenge: String,
    /// Actions in order.
    pub actions: Vec<String>,
    /// RFC 3339.
    pub expires_at: String,
    /// Frames per step at most.
    pub max_frames_per_step: u32,
}

/// The outcome of one identity check (also when it did not pass: `passed = false`, `reason`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityCheckResult {
    /// The recorded check (evidence).
    pub check_id: String,
    /// `id_card`, `face` or `liveness`.
    pub method: String,
    /// Whether it passed.
    pub passed: bool,
    /// Why not (stable word: `name_mismatch`, `number_mismatch`, `incomplete`, `not_same_person`,
    /// a liveness reason...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Face distance (face and liveness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance: Option<f64>,
    /// ID card step only: the sealed portrait for the face or liveness step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portrait_ticket: Option<String>,
}

/// Activation's identity calls carry the activation code like `enroll/sms` does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollIdentity {
    /// Staff number.
    pub staff_id: String,
    /// Activation code.
    pub activation_code: String,
    /// The photo (id-card, face); absent for the challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// From the ID card step (face, liveness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portrait_ticket: Option<String>,
    /// Liveness only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    /// Liveness only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<LivenessStep>,
}

#[cfg(test)]
mod camera_check_tests {
    use super::*;

    #[test]
    fn task_methods_imply_the_id_card_first() {
        use CameraCheck::*;
        let v = |xs: &[&str]| xs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(camera_checks_for_task(&v(&["sms"])).is_empty());
        assert_eq!(camera_checks_for_task(&v(&["sms", "id_ocr"])), [IdCard]);
        assert_eq!(camera_checks_for_task(&v(&["face", "sms"])), [IdCard, Face]);
        assert_eq!(
            camera_checks_for_task(&v(&["sms", "liveness"])),
            [IdCard, Liveness]
        );
        assert_eq!(
            camera_checks_for_task(&v(&["liveness", "id_ocr", "face", "sms"])),
            [IdCard, Face, Liveness]
        );
        assert_eq!(
            camera_checks_for_task(&v(&["pad", "liveness"])),
            [IdCard, Liveness]
        );
    }
}
