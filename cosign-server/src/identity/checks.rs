//! Identity checks as evidence (issues 8 and 10): the ID card, face and liveness steps shared
//! by the patient page and phone activation, each recorded in `identity_checks` (migration
//! 0012) with its outcome, scores and the SHA-256 values of the images judged — not the images.
//!
//! The steps:
//! 1. **ID card** — OCR of the front; name and number must equal the expected person's (the
//!    task's signer or proxy, the staff record). The answer carries a *portrait ticket*: the
//!    printed portrait SM4-GCM-sealed under the device key `identity` with the check id and the
//!    binding as associated data, so the next step can use it without the server keeping it
//!    (and without the page being able to swap it).
//! 2. **Face** — a selfie against the ticket's portrait.
//! 3. **Liveness** — a challenge from the service, the frames judged, then the best frame
//!    against the ticket's portrait.
//!
//! A check counts for a binding (a task, or the activation code in force) only while its
//! `subject_digest` — SM3 over the binding, name and ID number — equals the one computed from
//! the current record, so a proxy who changes their details must scan their card again.
//! Writes are transactional (the check and, when `[identity] keep_portraits`, its portrait).

use base64::Engine;
use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::identity::{
    IdentityCheckResult, LivenessChallenge, LivenessStep, MAX_FRAME_BYTES, MAX_FRAMES_PER_STEP,
    MAX_IMAGE_BYTES, MAX_STEPS,
};
use sm3::{Digest, Sm3};
use sqlx::Row;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::vision::{Frames, IdentityVision};
use crate::api::{ApiFailure, AppState};
use crate::clock::now_ms;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Checks recorded per binding at most (bounds the use of the service through one link).
pub const MAX_CHECKS: i64 = 30;
/// Device key (in `patient_keys`) sealing portrait tickets and kept portraits.
pub const KEY_NAME: &str = "identity";
/// Longest portrait ticket accepted.
const MAX_TICKET: usize = 4 * 1024 * 1024;

/// A check method (the stored word); the same enum as the page's, from the wire types.
pub use cosign_proto::v1::identity::CameraCheck as Method;

/// Whom a check is about.
#[derive(Debug, Clone)]
pub struct Subject {
    /// `patient_task` or `staff`.
    pub kind: &'static str,
    /// Task id or staff id.
    pub id: String,
    /// What the checks count for: the task id, or the activation code's hash.
    pub binding: String,
    /// Audit actor.
    pub actor: String,
}

/// The person the ID card must show.
pub struct Expected {
    /// `signer`, `proxy` or `staff`.
    pub role: &'static str,
    /// Name on record.
    pub name: String,
    /// ID number on record (upper case).
    pub id_number: Zeroizing<String>,
}

impl std::fmt::Debug for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Expected")
            .field("role", &self.role)
            .field("name", &self.name)
            .field("id_number", &"***")
            .finish()
    }
}

impl Expected {
    /// SM3 over the binding, name and number: what a check counts for.
    pub fn digest(&self, binding: &str) -> String {
        let mut h = Sm3::new();
        h.update(b"YQIDCHK1\n");
        h.update(binding.as_bytes());
        h.update(b"\n");
        h.update(self.name.as_bytes());
        h.update(b"\n");
        h.update(self.id_number.as_bytes());
        hex::encode(h.finalize())
    }
}

/// Methods required by the activation policy.
pub fn required_for_activation(p: crate::config::ActivationIdentity) -> Vec<Method> {
    use crate::config::ActivationIdentity as A;
    match p {
        A::None => vec![],
        A::IdCard => vec![Method::IdCard],
        A::Face => vec![Method::IdCard, Method::Face],
        A::Liveness => vec![Method::IdCard, Method::Liveness],
    }
}

/// The configured service, or `IDENTITY_NOT_CONFIGURED`.
pub fn service(state: &AppState) -> Result<&dyn IdentityVision, ApiFailure> {
    state
        .vision
        .as_deref()
        .ok_or_else(|| ApiFailure::new(ErrorCode::IdentityNotConfigured))
}

fn image_bad(zh: &str, en: &str) -> ApiFailure {
    ApiFailure::with(ErrorCode::IdentityImageInvalid, zh, en)
}

/// Decodes a base64 image of at most `max` bytes.
pub fn image_bytes(b64: &str, max: usize) -> Result<Zeroizing<Vec<u8>>, ApiFailure> {
    if b64.len() > max / 3 * 4 + 8 {
        return Err(ApiFailure::with(
            ErrorCode::PayloadTooLarge,
            format!("照片过大（最多 {} MB），请降低分辨率。", max / 1024 / 1024),
            format!("The photo is too large (at most {} MB).", max / 1024 / 1024),
        ));
    }
    let bytes = B64
        .decode(b64.trim().as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| {
            image_bad(
                "照片数据不是有效的 Base64。",
                "The photo is not valid base64.",
            )
        })?;
    if bytes.is_empty() {
        return Err(image_bad(
            "照片为空，请重新拍摄。",
            "The photo is empty; take it again.",
        ));
    }
    Ok(bytes)
}

/// One check to record.
struct NewCheck<'a> {
    method: Method,
    passed: bool,
    reason: Option<&'a str>,
    subject_digest: Option<&'a str>,
    ref_check_id: Option<&'a str>,
    distance: Option<f64>,
    threshold: Option<f64>,
    scores: serde_json::Value,
    image_sha256: Vec<String>,
    portrait: Option<&'a [u8]>,
}

/// Refuses a new check once the binding has [`MAX_CHECKS`].
async fn check_budget(state: &AppState, subject: &Subject) -> Result<(), ApiFailure> {
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM identity_checks WHERE binding = $1")
        .bind(&subject.binding)
        .fetch_one(state.db.pool())
        .await?
        .try_get("n")?;
    if n >= MAX_CHECKS {
        return Err(ApiFailure::with(
            ErrorCode::RateLimited,
            "身份核验次数过多，请联系医护人员或管理员。",
            "Too many identity checks; ask the ward staff or an administrator.",
        ));
    }
    Ok(())
}

/// Records a check (and its portrait when kept) in one transaction, then audits it.
async fn record(
    state: &AppState,
    subject: &Subject,
    c: &NewCheck<'_>,
    rid: &str,
) -> Result<String, ApiFailure> {
    let check_id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    let portrait_sm3 = c.portrait.map(crate::documents::sm3_hex);
    let kept = match (c.portrait, state.config.identity.keep_portraits) {
        (Some(p), true) => {
            let device = state.keys.device();
            let key = crate::patient::named_key(&state.db, &*device, KEY_NAME).await?;
            let (nonce, ct) =
                crate::patient::seal(&*device, &key, &format!("portrait-kept:{check_id}"), p)
                    .await?;
            Some((key, nonce, ct))
        }
        _ => None,
    };
    let mut tx = state.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO identity_checks (check_id, subject_kind, subject_id, binding, method, \
         outcome, reason, subject_digest, ref_check_id, distance, threshold, scores, \
         image_sha256, portrait_sm3, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11, $12, $13, $14, $15)",
    )
    .bind(&check_id)
    .bind(subject.kind)
    .bind(&subject.id)
    .bind(&subject.binding)
    .bind(c.method.as_str())
    .bind(if c.passed { "passed" } else { "failed" })
    .bind(c.reason)
    .bind(c.subject_digest)
    .bind(c.ref_check_id)
    .bind(c.distance.map(|d| d.to_string()))
    .bind(c.threshold.map(|t| t.to_string()))
    .bind(c.scores.to_string())
    .bind(serde_json::to_string(&c.image_sha256).unwrap_or_default())
    .bind(&portrait_sm3)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if let Some((key, nonce, ct)) = kept {
        sqlx::query(
            "INSERT INTO identity_portraits (check_id, key_id, nonce, ciphertext, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&check_id)
        .bind(key.as_str())
        .bind(nonce)
        .bind(ct)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    audit(
        state,
        subject,
        rid,
        if c.passed { "ok" } else { "denied" },
        serde_json::json!({
            "method": c.method.as_str(),
            "check_id": check_id,
            "reason": c.reason,
            "distance": c.distance,
        }),
    )
    .await?;
    Ok(check_id)
}

async fn audit(
    state: &AppState,
    subject: &Subject,
    rid: &str,
    outcome: &str,
    detail: serde_json::Value,
) -> Result<(), ApiFailure> {
    crate::api::audit_outcome(
        state,
        &subject.actor,
        "identity.check",
        &subject.id,
        outcome,
        rid,
        detail,
    )
    .await
}

/// Audits a step that ended without a recorded check (service down, bad photo) and passes
/// the error on.
pub async fn refused<T>(
    state: &AppState,
    subject: &Subject,
    method: Method,
    rid: &str,
    e: ApiFailure,
) -> Result<T, ApiFailure> {
    audit(
        state,
        subject,
        rid,
        "denied",
        serde_json::json!({ "method": method.as_str(), "code": e.code() }),
    )
    .await?;
    Err(e)
}

async fn seal_ticket(
    state: &AppState,
    subject: &Subject,
    check_id: &str,
    portrait: &[u8],
) -> Result<String, ApiFailure> {
    let device = state.keys.device();
    let key = crate::patient::named_key(&state.db, &*device, KEY_NAME).await?;
    let (nonce, ct) = crate::patient::seal(
        &*device,
        &key,
        &format!("portrait:{}:{check_id}", subject.binding),
        portrait,
    )
    .await?;
    let mut sealed = nonce;
    sealed.extend_from_slice(&ct);
    Ok(format!("{check_id}.{}", B64URL.encode(sealed)))
}

fn ticket_bad() -> ApiFailure {
    ApiFailure::with(
        ErrorCode::IdentityCheckRequired,
        "请先完成身份证识别，再进行人脸核验。",
        "Scan the ID card first; the face check compares with its portrait.",
    )
}

/// Opens a portrait ticket of this binding: the passed ID card check behind it (its id and
/// subject digest) and the portrait.
async fn open_ticket(
    state: &AppState,
    subject: &Subject,
    ticket: &str,
) -> Result<(String, String, Zeroizing<Vec<u8>>), ApiFailure> {
    if ticket.len() > MAX_TICKET {
        return Err(ticket_bad());
    }
    let (check_id, sealed) = ticket.split_once('.').ok_or_else(ticket_bad)?;
    if uuid::Uuid::parse_str(check_id).is_err() {
        return Err(ticket_bad());
    }
    let sealed = B64URL.decode(sealed.as_bytes()).map_err(|_| ticket_bad())?;
    if sealed.len() <= 12 {
        return Err(ticket_bad());
    }
    let row = sqlx::query(
        "SELECT subject_digest, portrait_sm3 FROM identity_checks WHERE check_id = $1 AND \
         binding = $2 AND method = 'id_card' AND outcome = 'passed'",
    )
    .bind(check_id)
    .bind(&subject.binding)
    .fetch_optional(state.db.pool())
    .await?
    .ok_or_else(ticket_bad)?;
    let digest: Option<String> = row.try_get("subject_digest")?;
    let portrait_sm3: Option<String> = row.try_get("portrait_sm3")?;
    let device = state.keys.device();
    let key = crate::patient::named_key(&state.db, &*device, KEY_NAME).await?;
    let (nonce, ct) = sealed.split_at(12);
    // A forged or foreign ticket fails authentication: the page's fault, not ours.
    let portrait = device
        .decrypt(
            &key,
            crypto_device::SymMode::Gcm,
            nonce,
            format!("portrait:{}:{check_id}", subject.binding).as_bytes(),
            ct,
        )
        .await
        .map_err(|_| ticket_bad())?;
    let same = portrait_sm3.is_some_and(|h| {
        bool::from(
            crate::documents::sm3_hex(&portrait)
                .as_bytes()
                .ct_eq(h.as_bytes()),
        )
    });
    match digest {
        Some(d) if same => Ok((check_id.to_owned(), d, portrait)),
        _ => Err(ticket_bad()),
    }
}

fn normalise_name(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Step 1: the ID card's front, compared with `expected`.
pub async fn id_card(
    state: &AppState,
    subject: &Subject,
    expected: &Expected,
    image_b64: &str,
    rid: &str,
) -> Result<IdentityCheckResult, ApiFailure> {
    let vision = service(state)?;
    check_budget(state, subject).await?;
    let image = image_bytes(image_b64, MAX_IMAGE_BYTES)?;
    let card = match vision.id_card_front(&image).await {
        Ok(c) => c,
        Err(e) => return refused(state, subject, Method::IdCard, rid, e.failure()).await,
    };
    let name = card.name.value.as_deref().map(normalise_name);
    let number = card.id_number.value.as_deref().map(str::to_ascii_uppercase);
    let name_ok = name.as_deref() == Some(normalise_name(&expected.name).as_str());
    let number_ok = number
        .as_deref()
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(expected.id_number.as_bytes())));
    let reason = if name.is_none() || number.is_none() || card.portrait_png.is_empty() {
        Some("unreadable")
    } else if !card.inconsistencies.is_empty() {
        Some("inconsistent")
    } else if !number_ok {
        Some("number_mismatch")
    } else if !name_ok {
        Some("name_mismatch")
    } else {
        None
    };
    let digest = expected.digest(&subject.binding);
    let passed = reason.is_none();
    let check_id = record(
        state,
        subject,
        &NewCheck {
            method: Method::IdCard,
            passed,
            reason,
            subject_digest: passed.then_some(digest.as_str()),
            ref_check_id: None,
            distance: None,
            threshold: None,
            scores: serde_json::json!({
                "expected": expected.role,
                "name_confidence": card.name.confidence,
                "id_number_confidence": card.id_number.confidence,
                "inconsistencies": card.inconsistencies,
                "complete": card.complete,
            }),
            image_sha256: vec![card.image_sha256.clone()],
            portrait: passed.then_some(card.portrait_png.as_slice()),
        },
        rid,
    )
    .await?;
    match reason {
        None => Ok(IdentityCheckResult {
            portrait_ticket: Some(
                seal_ticket(state, subject, &check_id, &card.portrait_png).await?,
            ),
            check_id,
            method: Method::IdCard.as_str().into(),
            passed: true,
            reason: None,
            distance: None,
        }),
        Some("unreadable" | "inconsistent") => Err(image_bad(
            "身份证信息未能完整识别，请将人像面放平、对焦清晰、避免反光后重新拍摄。",
            "The ID card could not be read completely; lay it flat, focus and avoid glare, then take it again.",
        )),
        Some(_) => Err(ApiFailure::with(
            ErrorCode::IdentityMismatch,
            match expected.role {
                "proxy" => "身份证姓名或号码与填写的代签人信息不符。",
                "staff" => "身份证姓名或号码与人事登记信息不符，请联系管理员核对。",
                _ => "身份证姓名或号码与签署人登记信息不符，请由本人签署或联系医护人员。",
            },
            "The ID card's name or number does not match the person on record.",
        )),
    }
}

/// Step 2: a selfie against the ID portrait.
pub async fn face(
    state: &AppState,
    subject: &Subject,
    image_b64: &str,
    ticket: &str,
    rid: &str,
) -> Result<IdentityCheckResult, ApiFailure> {
    let vision = service(state)?;
    check_budget(state, subject).await?;
    let image = image_bytes(image_b64, MAX_IMAGE_BYTES)?;
    let (ref_id, digest, portrait) = open_ticket(state, subject, ticket).await?;
    let m = match vision.face_match(&image, &portrait).await {
        Ok(m) => m,
        Err(e) => return refused(state, subject, Method::Face, rid, e.failure()).await,
    };
    let passed = m.same_person && m.distance < m.threshold;
    let reason = (!passed).then_some("not_same_person");
    let check_id = record(
        state,
        subject,
        &NewCheck {
            method: Method::Face,
            passed,
            reason,
            subject_digest: Some(&digest),
            ref_check_id: Some(&ref_id),
            distance: Some(m.distance),
            threshold: Some(m.threshold),
            scores: serde_json::json!({}),
            image_sha256: vec![m.image_sha256.0.clone(), m.image_sha256.1.clone()],
            portrait: None,
        },
        rid,
    )
    .await?;
    if !passed {
        return Err(face_mismatch());
    }
    Ok(IdentityCheckResult {
        check_id,
        method: Method::Face.as_str().into(),
        passed,
        reason: None,
        distance: Some(m.distance),
        portrait_ticket: None,
    })
}

fn face_mismatch() -> ApiFailure {
    ApiFailure::with(
        ErrorCode::IdentityMismatch,
        "人脸与身份证照片不符，请由本人正对镜头重新拍摄。",
        "The face does not match the ID card portrait; the person in question must face the camera and try again.",
    )
}

/// A liveness challenge from the service.
pub async fn challenge(
    state: &AppState,
    subject: &Subject,
    rid: &str,
) -> Result<LivenessChallenge, ApiFailure> {
    let vision = service(state)?;
    check_budget(state, subject).await?;
    match vision.liveness_challenge(None).await {
        Ok(c) => Ok(LivenessChallenge {
            challenge: c.challenge,
            actions: c.actions,
            expires_at: c.expires_at,
            max_frames_per_step: c.max_frames_per_step,
        }),
        Err(e) => refused(state, subject, Method::Liveness, rid, e.failure()).await,
    }
}

/// Step 3: the liveness frames, then the best frame against the ID portrait.
pub async fn liveness(
    state: &AppState,
    subject: &Subject,
    challenge: &str,
    steps: &[LivenessStep],
    ticket: &str,
    rid: &str,
) -> Result<IdentityCheckResult, ApiFailure> {
    let vision = service(state)?;
    check_budget(state, subject).await?;
    if challenge.is_empty() || challenge.len() > 4096 {
        return Err(ApiFailure::new(ErrorCode::ChallengeInvalid));
    }
    if steps.is_empty() || steps.len() > MAX_STEPS {
        return Err(image_bad(
            "活体检测的动作数不符，请重新开始检测。",
            "Wrong number of liveness steps; start again.",
        ));
    }
    let mut frames = Vec::with_capacity(steps.len());
    for s in steps {
        if s.frames.is_empty() || s.frames.len() > MAX_FRAMES_PER_STEP || s.action.len() > 32 {
            return Err(image_bad(
                &format!("每个动作须有 1–{MAX_FRAMES_PER_STEP} 帧画面。"),
                &format!("Each action needs 1–{MAX_FRAMES_PER_STEP} frames."),
            ));
        }
        let mut f = Vec::with_capacity(s.frames.len());
        for b in &s.frames {
            f.push(image_bytes(b, MAX_FRAME_BYTES)?.to_vec());
        }
        frames.push(Frames {
            action: s.action.clone(),
            frames: f,
        });
    }
    let (ref_id, digest, portrait) = open_ticket(state, subject, ticket).await?;
    let live = match vision.liveness_check(challenge, &frames).await {
        Ok(l) => l,
        Err(e) => return refused(state, subject, Method::Liveness, rid, e.failure()).await,
    };
    // The live face must be the card's: the best frame against the portrait.
    let matched = match (&live.best_frame, live.passed) {
        (Some(best), true) => match vision.face_match(best, &portrait).await {
            Ok(m) => Some(m),
            Err(e) => return refused(state, subject, Method::Liveness, rid, e.failure()).await,
        },
        _ => None,
    };
    let same = matched
        .as_ref()
        .is_some_and(|m| m.same_person && m.distance < m.threshold);
    let reason = if !live.passed {
        Some(live.reason.clone().unwrap_or_else(|| "not_passed".into()))
    } else if same {
        None
    } else {
        Some("not_same_person".to_owned())
    };
    let passed = reason.is_none();
    let mut hashes = live.image_sha256.clone();
    if let Some(m) = &matched {
        hashes.push(m.image_sha256.1.clone());
    }
    let check_id = record(
        state,
        subject,
        &NewCheck {
            method: Method::Liveness,
            passed,
            reason: reason.as_deref(),
            subject_digest: Some(&digest),
            ref_check_id: Some(&ref_id),
            distance: matched.as_ref().map(|m| m.distance),
            threshold: matched.as_ref().map(|m| m.threshold),
            scores: serde_json::json!({ "steps": live.steps, "anti_spoof": live.anti_spoof }),
            image_sha256: hashes,
            portrait: None,
        },
        rid,
    )
    .await?;
    match reason.as_deref() {
        None => Ok(IdentityCheckResult {
            check_id,
            method: Method::Liveness.as_str().into(),
            passed: true,
            reason: None,
            distance: matched.map(|m| m.distance),
            portrait_ticket: None,
        }),
        Some("not_same_person") => Err(face_mismatch()),
        Some(r) => Err(ApiFailure::with(
            ErrorCode::LivenessFailed,
            format!("活体检测未通过（{}），请按提示动作重新检测。", reason_zh(r)),
            format!("The liveness check failed ({r}); follow the prompts and try again."),
        )),
    }
}

fn reason_zh(r: &str) -> &'static str {
    match r {
        "static_sequence" => "画面静止",
        "action_not_seen" => "未检测到要求的动作",
        "face_lost" => "画面中人脸丢失",
        "face_changed" => "检测过程中人脸发生变化",
        _ => "未通过",
    }
}

/// The evidence of every required check for `binding` and the current `digest`, or
/// `IDENTITY_CHECK_REQUIRED` naming what is missing.
pub async fn satisfied(
    db: &crate::store::Db,
    binding: &str,
    digest: &str,
    required: &[Method],
) -> Result<Vec<serde_json::Value>, ApiFailure> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for m in required {
        let row = sqlx::query(
            "SELECT check_id, ref_check_id, distance, threshold, scores, image_sha256, \
             created_at FROM identity_checks WHERE binding = $1 AND method = $2 AND \
             outcome = 'passed' AND subject_digest = $3 ORDER BY created_at DESC LIMIT 1",
        )
        .bind(binding)
        .bind(m.as_str())
        .bind(digest)
        .fetch_optional(db.pool())
        .await?;
        let Some(r) = row else {
            missing.push(m.as_str());
            continue;
        };
        let scores: String = r.try_get("scores")?;
        let hashes: String = r.try_get("image_sha256")?;
        out.push(serde_json::json!({
            "method": m.as_str(),
            "check_id": r.try_get::<String, _>("check_id")?,
            "ref_check_id": r.try_get::<Option<String>, _>("ref_check_id")?,
            "distance": decimal(r.try_get("distance")?),
            "threshold": decimal(r.try_get("threshold")?),
            "scores": serde_json::from_str::<serde_json::Value>(&scores).unwrap_or_default(),
            "image_sha256": serde_json::from_str::<serde_json::Value>(&hashes).unwrap_or_default(),
            "checked_at": crate::clock::rfc3339(r.try_get("created_at")?),
        }));
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        let list = missing.join(", ");
        Err(ApiFailure::with(
            ErrorCode::IdentityCheckRequired,
            format!("请先完成身份核验：{}。", missing_zh(&missing)),
            format!("Complete the identity checks first: {list}."),
        ))
    }
}

/// A stored decimal (distance, threshold) back as a number.
fn decimal(v: Option<String>) -> Option<f64> {
    v.and_then(|s| s.parse().ok())
}

fn missing_zh(missing: &[&str]) -> String {
    missing
        .iter()
        .map(|m| match *m {
            "id_card" => "身份证识别",
            "face" => "人脸比对",
            _ => "活体检测",
        })
        .collect::<Vec<_>>()
        .join("、")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_bind_person_and_binding() {
        let e = |name: &str, id: &str| Expected {
            role: "signer",
            name: name.into(),
            id_number: Zeroizing::new(id.into()),
        };
        let a = e("张三", "11010519491231002X").digest("task-1");
        assert_eq!(a, e("张三", "11010519491231002X").digest("task-1"));
        assert_ne!(a, e("张三", "110105194912310021").digest("task-1"));
        assert_ne!(a, e("李四", "11010519491231002X").digest("task-1"));
        assert_ne!(a, e("张三", "11010519491231002X").digest("task-2"));
    }

    #[test]
    fn images_are_bounded_and_decoded() {
        assert!(image_bytes("", 100).is_err());
        assert!(image_bytes("!!!", 100).is_err());
        assert_eq!(
            image_bytes(&"A".repeat(1000), 100).unwrap_err().code(),
            ErrorCode::PayloadTooLarge
        );
        assert_eq!(image_bytes("aGVsbG8=", 100).unwrap().as_slice(), b"hello");
    }
}
