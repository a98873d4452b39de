//! Active liveness: the person is asked for 2–4 random actions (blink, open the mouth, turn the
//! head left or right) and sends a few frames of each; every frame's 68 landmarks give
//!
//! - the eye aspect ratio (EAR: eyelid gap over eye width, both eyes averaged) — a blink is a
//!   drop to [`BLINK_RATIO`] of the session's baseline with the eyes also seen open in the step;
//! - the mouth aspect ratio (MAR: inner-lip gap over mouth width) — open mouth is a rise of
//!   [`MOUTH_RISE`] over the baseline;
//! - a yaw proxy: where the nose tip lies between the two jaw ends (point 0 and 16), as
//!   −1 … 1 with 0 frontal — a turn is a change of [`TURN_DELTA`] from the baseline.
//!
//! The baseline of each metric is its median over all the session's frames with a face: eye
//! shape differs from one face to the next, so absolute thresholds would fail some people, and
//! each action moves one metric in a minority of the frames (a step may well start with its
//! action, so "the first frames" alone are not a safe baseline).
//!
//! Mirror convention: frames are as the camera recorded them, **not mirrored** (a front
//! camera's preview usually is mirrored; the capture page must send the unmirrored frames).
//! The person's left is then the image's right: `turn_left` means the person turns their head
//! to their own left, and the nose tip moves towards the image's right (the yaw proxy rises).
//!
//! Besides the actions the whole sequence must: keep a face in at least half the frames of
//! every step (else `face_lost`), not be one still picture (frames near-identical around the
//! face: `static_sequence`), and show one person throughout (encoding distance between the
//! first and the last frame with a face at most the face-match threshold, else
//! `face_changed`). This detects a replayed photo and a swapped person; it does not detect a
//! replayed video or a mask — that is what a passive anti-spoofing model
//! ([`crate::antispoof`]) is for.

// Pixel geometry and small counts: the casts below are exact or rounded on purpose.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use opencv::core::{self, Mat, Rect, Size};
use opencv::imgproc;
use opencv::prelude::*;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::face::{FaceBox, FaceEngine, Landmarks};
use crate::{Error, Result};

/// A blink: the EAR falls to this fraction of the baseline (or lower).
pub const BLINK_RATIO: f32 = 0.7;
/// … and, in the same step, the eyes are seen open: EAR at least this fraction of the baseline.
pub const OPEN_RATIO: f32 = 0.85;
/// Open mouth: the MAR rises by this much over the baseline (closed lips ≈ 0, a clearly open
/// mouth ≈ 0.4–0.8).
pub const MOUTH_RISE: f32 = 0.25;
/// A head turn: the yaw proxy moves this far from the baseline (about 20° of real rotation).
pub const TURN_DELTA: f32 = 0.2;
/// Near-identical frames: the face region (64 × 64 grey) differs from the first frame's by less
/// than this mean absolute grey level in every frame.
pub const STATIC_DIFF: f64 = 1.0;
/// Side of the grey face crop compared for `static_sequence`.
const STATIC_SIDE: i32 = 64;

/// An action the person is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Close and open the eyes.
    Blink,
    /// Open the mouth.
    OpenMouth,
    /// Turn the head to the person's own left.
    TurnLeft,
    /// Turn the head to the person's own right.
    TurnRight,
}

impl Action {
    /// Every action.
    pub const ALL: [Self; 4] = [
        Self::Blink,
        Self::OpenMouth,
        Self::TurnLeft,
        Self::TurnRight,
    ];

    /// The wire name (`blink`, `open_mouth`, `turn_left`, `turn_right`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blink => "blink",
            Self::OpenMouth => "open_mouth",
            Self::TurnLeft => "turn_left",
            Self::TurnRight => "turn_right",
        }
    }

    /// From the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The instruction shown to the person (Chinese).
    pub fn prompt_zh(self) -> &'static str {
        match self {
            Self::Blink => "请眨眨眼",
            Self::OpenMouth => "请张张嘴",
            Self::TurnLeft => "请向左转头",
            Self::TurnRight => "请向右转头",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `n` actions drawn at random, never the same one twice in a row.
pub fn random_actions<R: Rng + ?Sized>(rng: &mut R, n: usize) -> Vec<Action> {
    let mut out: Vec<Action> = Vec::with_capacity(n);
    for _ in 0..n {
        let choices: Vec<Action> = Action::ALL
            .into_iter()
            .filter(|a| out.last() != Some(a))
            .collect();
        out.push(choices[rng.gen_range(0..choices.len())]);
    }
    out
}

/// Why a sequence failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// The frames are one still picture.
    StaticSequence,
    /// An action was not seen in its step.
    ActionNotSeen,
    /// No face in too many frames of a step.
    FaceLost,
    /// The first and last faces are not the same person.
    FaceChanged,
}

impl FailReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StaticSequence => "static_sequence",
            Self::ActionNotSeen => "action_not_seen",
            Self::FaceLost => "face_lost",
            Self::FaceChanged => "face_changed",
        }
    }

    /// What to tell the person (Chinese).
    pub fn message_zh(self) -> &'static str {
        match self {
            Self::StaticSequence => "画面静止不动，请本人面对镜头按提示完成动作。",
            Self::ActionNotSeen => "未检测到提示的动作，请按提示重新完成。",
            Self::FaceLost => "画面中未持续检测到人脸，请保持面部在取景框内。",
            Self::FaceChanged => "检测过程中人脸发生变化，请本人重新完成检测。",
        }
    }
}

/// What was measured in one step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StepDetail {
    /// `eye_aspect_ratio`, `mouth_aspect_ratio` or `yaw`.
    pub metric: &'static str,
    /// The session's baseline value of the metric.
    pub baseline: f32,
    /// The most extreme value in the step, in the action's direction (lowest EAR, highest
    /// MAR, highest yaw for a left turn, lowest for a right turn); NaN-free: 0 without a face.
    pub extreme: f32,
    /// The value the extreme had to reach.
    pub required: f32,
    /// Frames of the step in which a face was found.
    pub frames_with_face: usize,
}

/// One step's result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StepOutcome {
    /// The action asked.
    pub action: Action,
    /// Whether it was seen (and a face kept).
    pub passed: bool,
    /// Frames sent for the step.
    pub frames: usize,
    /// The measurement.
    pub detail: StepDetail,
}

/// Where a frame is in the steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FrameRef {
    /// Step index.
    pub step: usize,
    /// Frame index within the step.
    pub frame: usize,
}

/// The result of [`check_sequence`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LivenessOutcome {
    /// Every step passed and nothing else failed.
    pub passed: bool,
    /// Per step, in order.
    pub steps: Vec<StepOutcome>,
    /// The first failure found (in the order face lost, static, face changed, action not
    /// seen); `None` when passed.
    pub reason: Option<FailReason>,
    /// The most frontal frame with open eyes and closed mouth (for face match); `None` when no
    /// frame had a face.
    pub best_frame: Option<FrameRef>,
    /// Encoding distance between the first and the last face (`None` with fewer than two).
    pub identity_distance: Option<f32>,
    /// Largest mean grey difference of a frame's face region from the first frame's.
    pub motion: f64,
}

/// Per-frame measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Metrics {
    ear: f32,
    mar: f32,
    yaw: f32,
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// Eye aspect ratio of the six points of one eye (corner, two upper, corner, two lower).
fn eye_ratio(p: &[[f32; 2]]) -> f32 {
    let w = dist(p[0], p[3]);
    if w <= f32::EPSILON {
        return 0.0;
    }
    (dist(p[1], p[5]) + dist(p[2], p[4])) / (2.0 * w)
}

impl Metrics {
    fn of(l: &Landmarks) -> Option<Self> {
        let p = &l.points;
        if p.len() != 68 {
            return None;
        }
        let ear = f32::midpoint(eye_ratio(&p[36..42]), eye_ratio(&p[42..48]));
        let mouth_w = dist(p[60], p[64]);
        let mar = if mouth_w > f32::EPSILON {
            (dist(p[61], p[67]) + dist(p[62], p[66]) + dist(p[63], p[65])) / (3.0 * mouth_w)
        } else {
            0.0
        };
        // The nose tip projected on the jaw-end axis: 0 at point 0, 1 at point 16 (robust to
        // head roll), mapped to −1 … 1.
        let (j0, j16, nose) = (p[0], p[16], p[30]);
        let axis = [j16[0] - j0[0], j16[1] - j0[1]];
        let len2 = axis[0] * axis[0] + axis[1] * axis[1];
        let yaw = if len2 > f32::EPSILON {
            let t = ((nose[0] - j0[0]) * axis[0] + (nose[1] - j0[1]) * axis[1]) / len2;
            2.0 * t - 1.0
        } else {
            0.0
        };
        Some(Self { ear, mar, yaw })
    }
}

fn median(mut v: Vec<f32>) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// A frame's face region as a small grey image, for the still-picture test.
fn face_patch(frame: &Mat, face: FaceBox) -> Result<Mat> {
    // The first frame's face box, enlarged by a quarter and clipped to the frame.
    let (fw, fh) = (frame.cols(), frame.rows());
    let (mx, my) = (face.w / 4, face.h / 4);
    let x0 = (face.x - mx).clamp(0, fw - 1);
    let y0 = (face.y - my).clamp(0, fh - 1);
    let x1 = (face.x + face.w + mx).clamp(x0 + 1, fw);
    let y1 = (face.y + face.h + my).clamp(y0 + 1, fh);
    let roi = Mat::roi(frame, Rect::new(x0, y0, x1 - x0, y1 - y0))?;
    let mut small = Mat::default();
    imgproc::resize(
        &roi,
        &mut small,
        Size::new(STATIC_SIDE, STATIC_SIDE),
        0.0,
        0.0,
        imgproc::INTER_AREA,
    )?;
    let mut grey = Mat::default();
    match small.channels() {
        1 => grey = small,
        4 => imgproc::cvt_color(&small, &mut grey, imgproc::COLOR_BGRA2GRAY, 0)?,
        _ => imgproc::cvt_color(&small, &mut grey, imgproc::COLOR_BGR2GRAY, 0)?,
    }
    Ok(grey)
}

fn mean_abs_diff(a: &Mat, b: &Mat) -> Result<f64> {
    let mut d = Mat::default();
    core::absdiff(a, b, &mut d)?;
    Ok(core::mean(&d, &core::no_array())?[0])
}

/// Checks frames recorded while the person did `actions`, one list of frames per action, in
/// order. Errors only for a malformed call (step count, an empty step) or a missing 68-point
/// model; everything about the person is in the outcome.
pub fn check_sequence(
    engine: &FaceEngine,
    actions: &[Action],
    steps: &[Vec<Mat>],
) -> Result<LivenessOutcome> {
    if actions.is_empty() || actions.len() != steps.len() {
        return Err(Error::Invalid(format!(
            "{} actions but {} steps of frames",
            actions.len(),
            steps.len()
        )));
    }
    if let Some(i) = steps.iter().position(Vec::is_empty) {
        return Err(Error::Invalid(format!("step {i} has no frames")));
    }
    engine.require_landmarks68()?;

    // Every frame: its metrics when a face was found.
    let mut measured: Vec<Vec<Option<Metrics>>> = Vec::with_capacity(steps.len());
    let mut first: Option<(FrameRef, FaceBox)> = None;
    let mut last: Option<FrameRef> = None;
    for (si, frames) in steps.iter().enumerate() {
        let mut row = Vec::with_capacity(frames.len());
        for (fi, frame) in frames.iter().enumerate() {
            let found = engine.frame_face(frame, false)?;
            let m = found.as_ref().and_then(|f| Metrics::of(&f.landmarks));
            if let Some(f) = &found {
                let here = FrameRef {
                    step: si,
                    frame: fi,
                };
                if first.is_none() {
                    first = Some((here, f.face));
                }
                last = Some(here);
            }
            row.push(m);
        }
        measured.push(row);
    }

    let with_face: Vec<Metrics> = measured.iter().flatten().flatten().copied().collect();
    let base = Metrics {
        ear: median(with_face.iter().map(|m| m.ear).collect()),
        mar: median(with_face.iter().map(|m| m.mar).collect()),
        yaw: median(with_face.iter().map(|m| m.yaw).collect()),
    };

    let outcomes: Vec<StepOutcome> = actions
        .iter()
        .zip(&measured)
        .map(|(&action, row)| judge_step(action, row, base))
        .collect();
    let face_lost = outcomes
        .iter()
        .any(|o| o.detail.frames_with_face * 2 < o.frames);

    // Still picture: the first frame's face region compared with every frame's.
    let mut motion = 0.0f64;
    if let Some((at, face)) = first {
        let reference = face_patch(&steps[at.step][at.frame], face)?;
        for frame in steps.iter().flatten() {
            if frame.cols() == steps[at.step][at.frame].cols()
                && frame.rows() == steps[at.step][at.frame].rows()
            {
                motion = motion.max(mean_abs_diff(&reference, &face_patch(frame, face)?)?);
            } else {
                // A change of frame size is not a still picture.
                motion = f64::INFINITY;
            }
        }
    }
    let still = first.is_some() && motion < STATIC_DIFF;

    // Same person at the start and the end.
    let mut identity_distance = None;
    if let (Some((a, _)), Some(b)) = (first, last)
        && a != b
    {
        let ea = engine.frame_face(&steps[a.step][a.frame], true)?;
        let eb = engine.frame_face(&steps[b.step][b.frame], true)?;
        if let (Some(ea), Some(eb)) = (ea.and_then(|f| f.embedding), eb.and_then(|f| f.embedding)) {
            identity_distance = Some(ea.distance(&eb));
        }
    }
    let changed = identity_distance.is_some_and(|d| d > engine.threshold());

    let all_seen = outcomes.iter().all(|o| o.passed);
    let reason = if face_lost || first.is_none() {
        Some(FailReason::FaceLost)
    } else if still {
        Some(FailReason::StaticSequence)
    } else if changed {
        Some(FailReason::FaceChanged)
    } else if !all_seen {
        Some(FailReason::ActionNotSeen)
    } else {
        None
    };

    Ok(LivenessOutcome {
        passed: reason.is_none(),
        steps: outcomes,
        reason,
        best_frame: best_frame(&measured, base),
        identity_distance,
        motion: if motion.is_finite() { motion } else { 255.0 },
    })
}

/// Judges one step against the baseline.
fn judge_step(action: Action, row: &[Option<Metrics>], base: Metrics) -> StepOutcome {
    let seen: Vec<Metrics> = row.iter().flatten().copied().collect();
    let extreme = |f: fn(&Metrics) -> f32, lowest: bool| {
        seen.iter()
            .map(f)
            .reduce(if lowest { f32::min } else { f32::max })
            .unwrap_or(0.0)
    };
    let (metric, baseline, extreme, required, seen_ok) = match action {
        Action::Blink => {
            let low = extreme(|m| m.ear, true);
            let high = extreme(|m| m.ear, false);
            let required = base.ear * BLINK_RATIO;
            // Eyes that were never measurably open cannot blink.
            let ok = base.ear > 0.05 && low <= required && high >= base.ear * OPEN_RATIO;
            ("eye_aspect_ratio", base.ear, low, required, ok)
        }
        Action::OpenMouth => {
            let high = extreme(|m| m.mar, false);
            let required = base.mar + MOUTH_RISE;
            (
                "mouth_aspect_ratio",
                base.mar,
                high,
                required,
                high >= required,
            )
        }
        Action::TurnLeft => {
            let high = extreme(|m| m.yaw, false);
            let required = base.yaw + TURN_DELTA;
            ("yaw", base.yaw, high, required, high >= required)
        }
        Action::TurnRight => {
            let low = extreme(|m| m.yaw, true);
            let required = base.yaw - TURN_DELTA;
            ("yaw", base.yaw, low, required, low <= required)
        }
    };
    let kept = seen.len() * 2 >= row.len();
    StepOutcome {
        action,
        passed: kept && !seen.is_empty() && seen_ok,
        frames: row.len(),
        detail: StepDetail {
            metric,
            baseline,
            extreme,
            required,
            frames_with_face: seen.len(),
        },
    }
}

/// The frame closest to frontal with eyes open and mouth closed.
fn best_frame(measured: &[Vec<Option<Metrics>>], base: Metrics) -> Option<FrameRef> {
    let mut best: Option<(f32, FrameRef)> = None;
    for (si, row) in measured.iter().enumerate() {
        for (fi, m) in row.iter().enumerate() {
            let Some(m) = m else { continue };
            let closed_eyes = if base.ear > f32::EPSILON {
                ((base.ear - m.ear) / base.ear).max(0.0)
            } else {
                0.0
            };
            let score = m.yaw.abs() + closed_eyes + (m.mar - base.mar).max(0.0);
            if best.is_none_or(|(b, _)| score < b) {
                best = Some((
                    score,
                    FrameRef {
                        step: si,
                        frame: fi,
                    },
                ));
            }
        }
    }
    best.map(|(_, at)| at)
}
