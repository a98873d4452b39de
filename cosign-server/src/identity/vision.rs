//! ID-card OCR, face match and liveness through the hospital's `liveness serve`
//! (`docs/identity/api.md`), so this server never links the native vision stack.
//!
//! [`IdentityVision`] is the seam the patient and activation flows call; [`HttpVision`] is the
//! adapter to the service: JSON bodies with base64 images, an optional bearer token, a timeout
//! per call. Its failures map onto our own stable codes ([`VisionError::failure`]): the service
//! down, timing out or answering 5xx is `IDENTITY_SERVICE_UNAVAILABLE` (503, retry), never a
//! 500; its 4xx codes become `IDENTITY_IMAGE_INVALID` or `CHALLENGE_INVALID` with a text that
//! says what to do.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use cosign_proto::v1::ErrorCode;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::api::ApiFailure;
use crate::config::IdentityConfig;
use crate::error::{Error, Result};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A field read from the card.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CardField {
    /// The value, if read.
    #[serde(default)]
    pub value: Option<String>,
    /// 0–1.
    #[serde(default)]
    pub confidence: Option<f64>,
}

/// The front of an ID card as read by the service.
#[derive(Debug, Clone)]
pub struct IdCardFront {
    /// 姓名.
    pub name: CardField,
    /// 公民身份号码.
    pub id_number: CardField,
    /// `number_invalid`, `birth_date_mismatch`, `sex_mismatch`.
    pub inconsistencies: Vec<String>,
    /// Every field read and no inconsistency.
    pub complete: bool,
    /// The printed portrait (PNG); personal data, zeroized when dropped.
    pub portrait_png: Zeroizing<Vec<u8>>,
    /// SHA-256 (hex) of the photo judged.
    pub image_sha256: String,
}

/// The back of an ID card.
#[derive(Debug, Clone, Deserialize)]
pub struct IdCardBack {
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub valid_from: Option<String>,
    /// `YYYY-MM-DD`, or none for long-term cards.
    #[serde(default)]
    pub valid_until: Option<String>,
    /// 长期.
    #[serde(default)]
    pub long_term: bool,
    /// Past its validity.
    #[serde(default)]
    pub expired: bool,
    /// SHA-256 (hex) of the photo judged.
    pub image_sha256: String,
}

/// A face comparison.
#[derive(Debug, Clone)]
pub struct FaceMatch {
    /// Embedding distance.
    pub distance: f64,
    /// The service's threshold.
    pub threshold: f64,
    /// `distance` below `threshold`.
    pub same_person: bool,
    /// SHA-256 of the probe and of the reference.
    pub image_sha256: (String, String),
}

/// A liveness challenge.
#[derive(Debug, Clone, Deserialize)]
pub struct Challenge {
    /// Opaque token.
    pub challenge: String,
    /// Actions in order.
    pub actions: Vec<String>,
    /// RFC 3339.
    pub expires_at: String,
    /// Frames per step at most.
    pub max_frames_per_step: u32,
}

/// One step's frames (raw image bytes).
#[derive(Debug, Clone)]
pub struct Frames {
    /// The action performed.
    pub action: String,
    /// The frames, in order.
    pub frames: Vec<Vec<u8>>,
}

/// A liveness verdict.
#[derive(Debug, Clone)]
pub struct Liveness {
    /// Every step passed and the anti-spoof model (if any) did not fail.
    pub passed: bool,
    /// Why not.
    pub reason: Option<String>,
    /// Per-step details as the service gave them.
    pub steps: serde_json::Value,
    /// `{"status": "absent"}` or the model's verdict.
    pub anti_spoof: serde_json::Value,
    /// The most frontal neutral frame (PNG), to match against the ID portrait.
    pub best_frame: Option<Zeroizing<Vec<u8>>>,
    /// SHA-256 of every frame judged.
    pub image_sha256: Vec<String>,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// Unreachable, timed out, overloaded, misconfigured or answering 5xx.
    #[error("identity service unavailable: {0}")]
    Unavailable(String),
    /// The service refused the input (4xx) with its code.
    #[error("identity service refused the input: {code}")]
    Refused {
        /// The service's code (`no_face`, `challenge_expired`…).
        code: String,
        /// Its Chinese text.
        message: String,
    },
}

impl VisionError {
    /// Our wire error for it.
    pub fn failure(&self) -> ApiFailure {
        let invalid =
            |zh: &str, en: &str| ApiFailure::with(ErrorCode::IdentityImageInvalid, zh, en);
        match self {
            Self::Unavailable(cause) => {
                tracing::warn!(%cause, "identity service unavailable");
                ApiFailure::new(ErrorCode::IdentityServiceUnavailable)
            }
            Self::Refused { code, .. } => match code.as_str() {
                "empty_image" => invalid(
                    "照片为空，请重新拍摄。",
                    "The photo is empty; take it again.",
                ),
                "not_an_image" => invalid(
                    "文件不是照片（仅支持 JPG、PNG、BMP、WebP），请重新拍摄。",
                    "The file is not a photo (JPG, PNG, BMP or WebP); take it again.",
                ),
                "image_too_large" => invalid(
                    "照片过大，请降低分辨率后重新拍摄。",
                    "The photo is too large; take it at a lower resolution.",
                ),
                "no_card" => invalid(
                    "未识别到身份证，请将身份证人像面完整放入取景框，避免反光后重新拍摄。",
                    "No ID card found; fit the portrait side of the card in the frame, avoid glare and take it again.",
                ),
                "no_face" => invalid(
                    "未检测到人脸，请正对镜头、光线充足后重新拍摄。",
                    "No face found; face the camera in good light and take it again.",
                ),
                "several_faces" => invalid(
                    "检测到多张人脸，请确保画面中只有本人。",
                    "Several faces found; make sure only you are in the picture.",
                ),
                "challenge_invalid" | "challenge_expired" | "challenge_used" => {
                    ApiFailure::new(ErrorCode::ChallengeInvalid)
                }
                "invalid_request" => invalid(
                    "提交的照片或动作与活体检测要求不符，请重新开始检测。",
                    "The photos or actions do not fit the liveness challenge; start again.",
                ),
                // `unauthorized` means our token is wrong: the hospital's configuration, not
                // the patient's input.
                other => {
                    tracing::warn!(code = %other, "identity service refused our call");
                    ApiFailure::new(ErrorCode::IdentityServiceUnavailable)
                }
            },
        }
    }
}

/// What the flows need from the identity service.
#[async_trait]
pub trait IdentityVision: Send + Sync + std::fmt::Debug {
    /// Reads the front (portrait side) of an ID card.
    async fn id_card_front(&self, image: &[u8]) -> Result<IdCardFront, VisionError>;
    /// Reads the back (national emblem side) of an ID card.
    async fn id_card_back(&self, image: &[u8]) -> Result<IdCardBack, VisionError>;
    /// Compares the one face in `probe` with the largest face in `reference`.
    async fn face_match(&self, probe: &[u8], reference: &[u8]) -> Result<FaceMatch, VisionError>;
    /// A new challenge of `steps` actions (service default when `None`).
    async fn liveness_challenge(&self, steps: Option<u8>) -> Result<Challenge, VisionError>;
    /// Judges the frames of a challenge.
    async fn liveness_check(
        &self,
        challenge: &str,
        steps: &[Frames],
    ) -> Result<Liveness, VisionError>;
}

/// The HTTP adapter to `liveness serve`.
pub struct HttpVision {
    base: String,
    token: Option<Zeroizing<String>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for HttpVision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpVision")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ServiceError {
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct FrontBody {
    card: FrontCard,
    #[serde(default)]
    inconsistencies: Vec<String>,
    #[serde(default)]
    complete: bool,
    portrait_png: Option<String>,
    image_sha256: String,
}

#[derive(Deserialize)]
struct FrontCard {
    #[serde(default)]
    name: CardField,
    #[serde(default)]
    id_number: CardField,
}

#[derive(Deserialize)]
struct MatchBody {
    distance: f64,
    threshold: f64,
    same_person: bool,
    image_sha256: MatchHashes,
}

#[derive(Deserialize)]
struct MatchHashes {
    probe: String,
    reference: String,
}

#[derive(Deserialize)]
struct LivenessBody {
    passed: bool,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    steps: serde_json::Value,
    #[serde(default)]
    anti_spoof: serde_json::Value,
    #[serde(default)]
    best_frame: Option<String>,
    #[serde(default)]
    image_sha256: Vec<String>,
}

fn decode(b64: &str, what: &str) -> Result<Zeroizing<Vec<u8>>, VisionError> {
    B64.decode(b64.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| VisionError::Unavailable(format!("the service sent a malformed {what}")))
}

impl HttpVision {
    /// The service of `[identity]`, or `None` when no URL is configured. The token file is
    /// read now, so a wrong path stops the start-up rather than the first patient.
    pub fn from_config(cfg: &IdentityConfig) -> Result<Option<Self>> {
        let Some(base) = cfg.liveness_url.clone() else {
            return Ok(None);
        };
        let token = match &cfg.liveness_token_file {
            Some(path) => {
                let text =
                    Zeroizing::new(std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?);
                let t = text.trim();
                if t.is_empty() {
                    return Err(Error::Config(format!(
                        "identity.liveness_token_file {} is empty",
                        path.display()
                    )));
                }
                Some(Zeroizing::new(t.to_owned()))
            }
            None => None,
        };
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Error::Config(format!("identity client: {e}")))?;
        Ok(Some(Self { base, token, http }))
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        route: &str,
        body: &serde_json::Value,
    ) -> Result<T, VisionError> {
        let mut req = self.http.post(format!("{}{route}", self.base)).json(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.as_str());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| VisionError::Unavailable(e.without_url().to_string()))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| VisionError::Unavailable(e.without_url().to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| VisionError::Unavailable(format!("{route}: unexpected answer: {e}")));
        }
        let err: Option<ServiceError> = serde_json::from_slice(&bytes).ok();
        match err {
            Some(e) if status.is_client_error() => Err(VisionError::Refused {
                code: e.code,
                message: e.message,
            }),
            Some(e) => Err(VisionError::Unavailable(format!(
                "{route}: HTTP {status} {}",
                e.code
            ))),
            None => Err(VisionError::Unavailable(format!("{route}: HTTP {status}"))),
        }
    }
}

#[async_trait]
impl IdentityVision for HttpVision {
    async fn id_card_front(&self, image: &[u8]) -> Result<IdCardFront, VisionError> {
        let b: FrontBody = self
            .post(
                "/v1/idcard/front",
                &serde_json::json!({ "image": B64.encode(image) }),
            )
            .await?;
        let portrait_png = match &b.portrait_png {
            Some(p) => decode(p, "portrait")?,
            None => Zeroizing::new(Vec::new()),
        };
        Ok(IdCardFront {
            name: b.card.name,
            id_number: b.card.id_number,
            inconsistencies: b.inconsistencies,
            complete: b.complete,
            portrait_png,
            image_sha256: b.image_sha256,
        })
    }

    async fn id_card_back(&self, image: &[u8]) -> Result<IdCardBack, VisionError> {
        self.post(
            "/v1/idcard/back",
            &serde_json::json!({ "image": B64.encode(image) }),
        )
        .await
    }

    async fn face_match(&self, probe: &[u8], reference: &[u8]) -> Result<FaceMatch, VisionError> {
        let b: MatchBody = self
            .post(
                "/v1/face/match",
                &serde_json::json!({ "probe": B64.encode(probe), "reference": B64.encode(reference) }),
            )
            .await?;
        if !b.distance.is_finite() || !b.threshold.is_finite() {
            return Err(VisionError::Unavailable(
                "face match: non-finite distance".into(),
            ));
        }
        Ok(FaceMatch {
            distance: b.distance,
            threshold: b.threshold,
            same_person: b.same_person,
            image_sha256: (b.image_sha256.probe, b.image_sha256.reference),
        })
    }

    async fn liveness_challenge(&self, steps: Option<u8>) -> Result<Challenge, VisionError> {
        let body = match steps {
            Some(n) => serde_json::json!({ "steps": n }),
            None => serde_json::json!({}),
        };
        self.post("/v1/liveness/challenges", &body).await
    }

    async fn liveness_check(
        &self,
        challenge: &str,
        steps: &[Frames],
    ) -> Result<Liveness, VisionError> {
        let steps: Vec<serde_json::Value> = steps
            .iter()
            .map(|s| {
                serde_json::json!({
                    "action": s.action,
                    "frames": s.frames.iter().map(|f| B64.encode(f)).collect::<Vec<_>>(),
                })
            })
            .collect();
        let b: LivenessBody = self
            .post(
                "/v1/liveness/checks",
                &serde_json::json!({ "challenge": challenge, "steps": steps }),
            )
            .await?;
        let best_frame = match &b.best_frame {
            Some(f) => Some(decode(f, "best frame")?),
            None => None,
        };
        Ok(Liveness {
            passed: b.passed,
            reason: b.reason,
            steps: b.steps,
            anti_spoof: b.anti_spoof,
            best_frame,
            image_sha256: b.image_sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_codes_map_to_stable_codes() {
        let refused = |code: &str| VisionError::Refused {
            code: code.into(),
            message: String::new(),
        };
        for (code, ours) in [
            ("no_card", ErrorCode::IdentityImageInvalid),
            ("no_face", ErrorCode::IdentityImageInvalid),
            ("several_faces", ErrorCode::IdentityImageInvalid),
            ("not_an_image", ErrorCode::IdentityImageInvalid),
            ("empty_image", ErrorCode::IdentityImageInvalid),
            ("image_too_large", ErrorCode::IdentityImageInvalid),
            ("invalid_request", ErrorCode::IdentityImageInvalid),
            ("challenge_expired", ErrorCode::ChallengeInvalid),
            ("challenge_used", ErrorCode::ChallengeInvalid),
            ("challenge_invalid", ErrorCode::ChallengeInvalid),
            ("unauthorized", ErrorCode::IdentityServiceUnavailable),
            ("something_new", ErrorCode::IdentityServiceUnavailable),
        ] {
            assert_eq!(refused(code).failure().code(), ours, "{code}");
        }
        assert_eq!(
            VisionError::Unavailable("connection refused".into())
                .failure()
                .code(),
            ErrorCode::IdentityServiceUnavailable
        );
    }

    #[test]
    fn token_file_is_read_and_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret-token\n").unwrap();
        let mut cfg = IdentityConfig {
            liveness_url: Some("http://127.0.0.1:8090".into()),
            liveness_token_file: Some(path.clone()),
            timeout: Duration::from_secs(3),
            keep_portraits: false,
        };
        let v = HttpVision::from_config(&cfg).unwrap().unwrap();
        assert_eq!(v.token.as_deref().map(String::as_str), Some("s3cret-token"));
        assert!(!format!("{v:?}").contains("s3cret"));
        std::fs::write(&path, "  \n").unwrap();
        assert!(HttpVision::from_config(&cfg).is_err(), "empty token file");
        cfg.liveness_token_file = Some(dir.path().join("missing"));
        assert!(HttpVision::from_config(&cfg).is_err(), "missing token file");
        cfg.liveness_url = None;
        assert!(HttpVision::from_config(&cfg).unwrap().is_none());
    }
}
