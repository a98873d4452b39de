//! The handlers of docs/identity/api.md.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use opencv::core::Mat;
use serde::Serialize;
use serde_json::{Value, json};

use super::AppState;
use super::challenge::{MAX_FRAMES_PER_STEP, MAX_STEPS, MIN_STEPS};
use super::error::ApiError;
use super::input::Upload;
use crate::image::{ImageLimits, decode};
use crate::live::{Action, check_sequence, random_actions};
use crate::ocr::{CardReader, Field, rectify};

/// Liveness frames: 1 MB and 1920 px a side each, at most a 1080p frame's pixels (60 decoded
/// frames then stay under 400 MB).
const FRAME_LIMITS: ImageLimits = ImageLimits {
    max_bytes: 1024 * 1024,
    max_pixels: 1920 * 1080,
    max_side: 1920,
};

type Answer = Result<Json<Value>, ApiError>;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn date((y, m, d): (u32, u32, u32)) -> String {
    format!("{y:04}-{m:02}-{d:02}")
}

/// A field as `{value, raw, confidence}`.
fn field<T: Serialize>(f: &Field<T>) -> Value {
    json!({"value": f.value, "raw": f.raw, "confidence": f.confidence})
}

/// A date field with its value as `YYYY-MM-DD`.
fn date_field(f: &Field<(u32, u32, u32)>) -> Value {
    json!({"value": f.value.map(date), "raw": f.raw, "confidence": f.confidence})
}

fn one(mut images: Vec<Bytes>) -> Result<Bytes, ApiError> {
    images
        .pop()
        .ok_or_else(|| ApiError::internal("image list shorter than asked"))
}

fn anti_spoof_absent() -> Value {
    json!({"status": "absent"})
}

/// `GET /v1/health`.
pub async fn health(State(st): State<Arc<AppState>>) -> Json<Value> {
    let anti_spoof = st.anti_spoof.as_ref().map_or_else(
        anti_spoof_absent,
        |a| json!({"status": "configured", "name": a.name()}),
    );
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        // Start-up refuses to run without any of them, so a running service has them all.
        "models": {"ocr": true, "face": true, "landmarks": st.face.has_landmarks68()},
        "anti_spoof": anti_spoof,
        "face_threshold": st.face.threshold(),
    }))
}

/// `POST /v1/idcard/front`.
pub async fn idcard_front(State(st): State<Arc<AppState>>, req: Request) -> Answer {
    let image = one(Upload::read(req).await?.images(&["image"])?)?;
    st.run(move |st| {
        let photo = decode(&image, &ImageLimits::default())?;
        let sha = st.keep(&image)?;
        let card = rectify(&photo)?;
        let r = st.readers.take()?.read_front(&card)?;
        let portrait = CardReader::portrait_png(&card)?;
        let complete = r.card().is_some() && r.inconsistencies.is_empty();
        Ok(Json(json!({
            "card": {
                "name": field(&r.name),
                "sex": field(&r.sex),
                "ethnicity": field(&r.ethnicity),
                "birth_date": date_field(&r.birth),
                "address": field(&r.address),
                "id_number": field(&r.number),
            },
            "inconsistencies": r.inconsistencies,
            "complete": complete,
            "portrait_png": STANDARD.encode(portrait),
            "image_sha256": sha,
        })))
    })
    .await
}

/// Today in China (UTC+8), as (year, month, day): a card's validity is a Beijing-time date.
fn today_in_china() -> (u32, u32, u32) {
    let offset = time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC);
    let d = time::OffsetDateTime::now_utc().to_offset(offset).date();
    (
        u32::try_from(d.year()).unwrap_or(0),
        u32::from(u8::from(d.month())),
        u32::from(d.day()),
    )
}

/// `POST /v1/idcard/back`.
pub async fn idcard_back(State(st): State<Arc<AppState>>, req: Request) -> Answer {
    let image = one(Upload::read(req).await?.images(&["image"])?)?;
    st.run(move |st| {
        let photo = decode(&image, &ImageLimits::default())?;
        let sha = st.keep(&image)?;
        let card = rectify(&photo)?;
        let r = st.readers.take()?.read_back(&card)?;
        let expired = !r.long_term && r.valid_until.is_some_and(|u| u < today_in_china());
        Ok(Json(json!({
            "authority": field(&r.authority),
            "validity": field(&r.validity),
            "valid_from": r.valid_from.map(date),
            "valid_until": r.valid_until.map(date),
            "long_term": r.long_term,
            "expired": expired,
            "image_sha256": sha,
        })))
    })
    .await
}

/// `POST /v1/face/match`.
pub async fn face_match(State(st): State<Arc<AppState>>, req: Request) -> Answer {
    let mut images = Upload::read(req).await?.images(&["probe", "reference"])?;
    let reference = one(images.split_off(1))?;
    let probe = one(images)?;
    st.run(move |st| {
        let limits = ImageLimits::default();
        let p = decode(&probe, &limits)?;
        let r = decode(&reference, &limits)?;
        let (ps, rs) = (st.keep(&probe)?, st.keep(&reference)?);
        let m = st.face.compare(&p, &r)?;
        Ok(Json(json!({
            "distance": m.distance,
            "threshold": m.threshold,
            "same_person": m.same_person,
            "probe_faces": m.probe_faces,
            "reference_faces": m.reference_faces,
            "image_sha256": {"probe": ps, "reference": rs},
        })))
    })
    .await
}

/// `POST /v1/liveness/challenges` — body `{}`, `{"steps": n}` or empty.
pub async fn new_challenge(State(st): State<Arc<AppState>>, req: Request) -> Answer {
    let body = axum::body::to_bytes(req.into_body(), 4096)
        .await
        .map_err(|_| ApiError::body_too_large(4096))?;
    let steps = if body.iter().all(u8::is_ascii_whitespace) {
        3
    } else {
        let v: Value = serde_json::from_slice(&body).map_err(|_| {
            ApiError::invalid("请求不是有效的 JSON。", "the body is not valid JSON")
        })?;
        match v.get("steps") {
            None | Some(Value::Null) => 3,
            Some(n) => n
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (MIN_STEPS..=MAX_STEPS).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(
                        format!("steps 应为 {MIN_STEPS} 到 {MAX_STEPS} 之间的整数。"),
                        format!("steps must be an integer from {MIN_STEPS} to {MAX_STEPS}"),
                    )
                })?,
        }
    };
    let actions = random_actions(&mut rand::thread_rng(), steps);
    let (token, expires) = st.challenges.issue(&actions, unix_now());
    let expires_at = time::OffsetDateTime::from_unix_timestamp(i64::try_from(expires).unwrap_or(0))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .ok_or_else(|| ApiError::internal("expiry out of range"))?;
    Ok(Json(json!({
        "challenge": token,
        "actions": actions,
        "expires_at": expires_at,
        "max_frames_per_step": MAX_FRAMES_PER_STEP,
    })))
}

/// `POST /v1/liveness/checks`.
pub async fn liveness_check(State(st): State<Arc<AppState>>, req: Request) -> Answer {
    let (token, steps) = Upload::read(req).await?.liveness()?;
    let now = unix_now();
    let challenge = st.challenges.verify(&token, now)?;
    // The steps must be the challenge's actions in order (multipart steps are by position).
    let follows = steps.len() == challenge.actions.len()
        && steps
            .iter()
            .zip(&challenge.actions)
            .all(|((claimed, _), want)| {
                claimed
                    .as_deref()
                    .is_none_or(|c| Action::parse(c) == Some(*want))
            });
    if !follows {
        return Err(ApiError::invalid(
            "步骤与挑战的动作不一致（数量或顺序）。",
            "the steps do not follow the challenge's actions (count or order)",
        ));
    }
    // Used once, whatever follows: a failed answer cannot be retried with other frames.
    st.challenges.consume(&challenge, now)?;
    let actions = challenge.actions;
    st.run(move |st| {
        let mut shas = Vec::new();
        let mut mats: Vec<Vec<Mat>> = Vec::with_capacity(steps.len());
        for (_, frames) in &steps {
            let mut step = Vec::with_capacity(frames.len());
            for f in frames {
                step.push(decode(f, &FRAME_LIMITS)?);
                shas.push(st.keep(f)?);
            }
            mats.push(step);
        }
        let outcome = check_sequence(&st.face, &actions, &mats)?;
        let best = outcome
            .best_frame
            .and_then(|b| mats.get(b.step)?.get(b.frame));
        let anti_spoof = match (&st.anti_spoof, best) {
            (None, _) => anti_spoof_absent(),
            (Some(a), Some(frame)) => {
                let score = a.score(frame)?;
                let ok = score >= a.threshold();
                json!({"status": if ok { "passed" } else { "failed" }, "score": score, "name": a.name()})
            }
            // No usable frame: nothing to judge, and the check has failed already.
            (Some(a), None) => json!({"status": "failed", "score": null, "name": a.name()}),
        };
        let spoof_failed = anti_spoof["status"] == "failed";
        let best_png = best
            .map(|m| crate::synth::encode(m, None))
            .transpose()?
            .map(|b| STANDARD.encode(b));
        Ok(Json(json!({
            "passed": outcome.passed && !spoof_failed,
            "steps": outcome.steps,
            "reason": outcome.reason,
            "anti_spoof": anti_spoof,
            "best_frame": best_png,
            "image_sha256": shas,
        })))
    })
    .await
}

/// Unknown path.
pub async fn not_found() -> ApiError {
    let mut e = ApiError::invalid("没有这个接口。", "no such route");
    e.status = StatusCode::NOT_FOUND;
    e
}

/// Known path, wrong method.
pub async fn method_not_allowed() -> ApiError {
    let mut e = ApiError::invalid("请求方法不被允许。", "method not allowed on this route");
    e.status = StatusCode::METHOD_NOT_ALLOWED;
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso() {
        assert_eq!(date((2035, 3, 7)), "2035-03-07");
        let (y, m, d) = today_in_china();
        assert!(y >= 2024 && (1..=12).contains(&m) && (1..=31).contains(&d));
    }
}
