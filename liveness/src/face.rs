//! Face detection, landmarks and matching with dlib (Debian's `libdlib-dev` through the
//! `dlib-face-recognition` crate): HOG frontal-face detector (built into dlib, no model file),
//! 5-point landmarks to align a face, the ResNet encoder that maps it to 128 numbers, and the
//! 68-point landmarks that active liveness reads eyes, mouth and head turn from.
//!
//! Two faces are judged the same person when the Euclidean distance between their encodings is
//! at most the threshold ([`DEFAULT_THRESHOLD`], 0.6, dlib's own operating point; calibration
//! and the trade-off are in docs/identity/README.md).

// Pixel geometry: coordinates are bounded by the image limits (≤ 8000 px); the casts between
// i32, i64, f32 and f64 below are exact or rounded on purpose.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use dlib_face_recognition::{
    FaceDetector, FaceDetectorCnn, FaceDetectorTrait, FaceEncoderNetwork, FaceEncoderTrait,
    ImageMatrix, LandmarkPredictor, LandmarkPredictorTrait, Rectangle,
};
use image024::{ImageBuffer, Rgb};
use opencv::core::{self, Mat, Rect, Size};
use opencv::imgproc;
use opencv::prelude::*;
use serde::Serialize;

use crate::models::{Model, ModelDir};
use crate::{Error, Result};

/// Encoding distance at or below which two faces are taken for the same person. dlib's
/// operating point for this encoder (99.38 % on LFW); lower it to accept fewer strangers at the
/// cost of rejecting more true matches.
pub const DEFAULT_THRESHOLD: f32 = 0.6;

/// Long side of the copy that face match detects on: small portraits (an ID card's is about
/// 260 × 320 px) are enlarged, since the HOG detector finds faces of 80 px and more; not
/// more, since enlarging a photo much makes the detector find "faces" in texture (measured:
/// a badge on the astronaut's suit at 900 and 1024 px, nothing from 400 to 768 px).
const MATCH_SIDE: i32 = 640;
/// Long side of the copy a liveness frame is analysed at: a selfie's face fills much of the
/// frame, and 60 frames must fit the request deadline.
pub(crate) const LIVE_SIDE: i32 = 480;
/// At most this enlargement (a tiny image does not become a large one).
const MAX_UPSCALE: f64 = 4.0;
/// Side of the square crop around a HOG find that the CNN detector confirms it on (the face
/// is then about half of it, above the CNN's 80 px minimum).
const CONFIRM_SIDE: i32 = 200;
/// Idle dlib instances kept for reuse (one per concurrent request up to this).
const POOL: usize = 8;

/// A face found in an image, in that image's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FaceBox {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub w: i32,
    /// Height.
    pub h: i32,
}

impl FaceBox {
    /// Area in pixels.
    pub fn area(&self) -> i64 {
        i64::from(self.w) * i64::from(self.h)
    }
}

/// Landmark points of one face, in the image's pixels (x, y). 68 points in the iBUG 300-W
/// order from [`FaceEngine::landmarks68`]: jaw 0–16, brows 17–26, nose 27–35, eyes 36–47,
/// mouth 48–67.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Landmarks {
    /// The points.
    pub points: Vec<[f32; 2]>,
}

/// A face encoding: 128 numbers; faces of one person lie close together.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Euclidean distance (0 for the same image; dlib's scale, threshold about 0.6).
    pub fn distance(&self, other: &Self) -> f32 {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            .sqrt()
    }

    /// The numbers.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }
}

/// The answer of [`FaceEngine::compare`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaceMatch {
    /// Encoding distance between the probe's face and the reference's largest face.
    pub distance: f32,
    /// The threshold applied.
    pub threshold: f32,
    /// `distance <= threshold`.
    pub same_person: bool,
    /// Faces found in the probe (always 1 in an answer: otherwise an error).
    pub probe_faces: usize,
    /// Faces found in the reference (the largest was used).
    pub reference_faces: usize,
}

/// The dlib objects; cloned for each concurrent user (their calls are not thread-safe).
#[derive(Clone)]
struct Dlib {
    detector: FaceDetector,
    cnn: FaceDetectorCnn,
    landmarks5: LandmarkPredictor,
    landmarks68: Option<LandmarkPredictor>,
    encoder: FaceEncoderNetwork,
}

/// An image prepared for dlib: an RGB copy scaled by `scale` (copy = original × scale).
pub(crate) struct Work {
    rgb: Mat,
    matrix: ImageMatrix,
    scale: f64,
}

/// Detector, landmarks and encoder. `Send + Sync`: each call borrows its own copy of the dlib
/// objects from a small pool, so concurrent requests run in parallel.
pub struct FaceEngine {
    proto: Mutex<Dlib>,
    idle: Mutex<Vec<Dlib>>,
    threshold: f32,
    /// Where the 68-point model was looked for (named when liveness needs it).
    landmarks68_path: PathBuf,
}

impl std::fmt::Debug for FaceEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceEngine")
            .field("threshold", &self.threshold)
            .field("landmarks68", &self.has_landmarks68())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data is never left half-changed, so a panic elsewhere does not spoil it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A borrowed set of dlib objects, given back to the pool when dropped.
struct Lease<'a> {
    engine: &'a FaceEngine,
    dlib: Option<Dlib>,
}

impl std::ops::Deref for Lease<'_> {
    type Target = Dlib;
    fn deref(&self) -> &Dlib {
        // Some from creation until drop.
        self.dlib.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(d) = self.dlib.take() {
            let mut idle = lock(&self.engine.idle);
            if idle.len() < POOL {
                idle.push(d);
            }
        }
    }
}

impl FaceEngine {
    /// Loads the encoder and the 5-point model (required) and the 68-point model when present
    /// (liveness needs it; face match does not). A missing required file is named with its path.
    pub fn load(models: &ModelDir) -> Result<Self> {
        models.require(&Model::FACE)?;
        let open_lp = |m: Model| {
            LandmarkPredictor::open(models.path(m))
                .map_err(|e| Error::Internal(format!("{}: {e}", m.name())))
        };
        let landmarks5 = open_lp(Model::Landmarks5)?;
        let landmarks68 = if models.path(Model::Landmarks68).is_file() {
            Some(open_lp(Model::Landmarks68)?)
        } else {
            None
        };
        let encoder = FaceEncoderNetwork::open(models.path(Model::FaceEncoder))
            .map_err(|e| Error::Internal(format!("{}: {e}", Model::FaceEncoder.name())))?;
        let cnn = FaceDetectorCnn::open(models.path(Model::FaceDetectorCnn))
            .map_err(|e| Error::Internal(format!("{}: {e}", Model::FaceDetectorCnn.name())))?;
        Ok(Self {
            proto: Mutex::new(Dlib {
                detector: FaceDetector::new(),
                cnn,
                landmarks5,
                landmarks68,
                encoder,
            }),
            idle: Mutex::new(Vec::new()),
            threshold: DEFAULT_THRESHOLD,
            landmarks68_path: models.path(Model::Landmarks68),
        })
    }

    /// The same engine with another match threshold (in (0, 2)).
    pub fn with_threshold(mut self, threshold: f32) -> Result<Self> {
        if threshold.is_nan() || threshold <= 0.0 || threshold >= 2.0 {
            return Err(Error::Invalid(format!(
                "face threshold {threshold} is not in (0, 2)"
            )));
        }
        self.threshold = threshold;
        Ok(self)
    }

    /// The match threshold in use.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Whether the 68-point model (active liveness) is loaded.
    pub fn has_landmarks68(&self) -> bool {
        lock(&self.proto).landmarks68.is_some()
    }

    fn lease(&self) -> Lease<'_> {
        let reused = lock(&self.idle).pop();
        let dlib = reused.unwrap_or_else(|| lock(&self.proto).clone());
        Lease {
            engine: self,
            dlib: Some(dlib),
        }
    }

    /// Faces in the image, largest first.
    pub fn faces(&self, img: &Mat) -> Result<Vec<FaceBox>> {
        let work = Work::new(img, MATCH_SIDE)?;
        let dlib = self.lease();
        Ok(detect(&dlib, &work)?
            .iter()
            .map(|r| work.to_box(r))
            .collect())
    }

    /// The 68 landmarks of a face found by [`FaceEngine::faces`] in the same image.
    pub fn landmarks68(&self, img: &Mat, face: &FaceBox) -> Result<Landmarks> {
        self.require_landmarks68()?;
        let work = Work::new(img, MATCH_SIDE)?;
        let dlib = self.lease();
        let rect = work.to_rect(face);
        let mut l = landmarks68(&dlib, &work, &rect)?;
        let k = (1.0 / work.scale) as f32;
        for p in &mut l.points {
            p[0] *= k;
            p[1] *= k;
        }
        Ok(l)
    }

    /// The encoding of a face found by [`FaceEngine::faces`] in the same image.
    pub fn embed(&self, img: &Mat, face: &FaceBox) -> Result<Embedding> {
        let work = Work::new(img, MATCH_SIDE)?;
        let dlib = self.lease();
        embed(&dlib, &work, &work.to_rect(face))
    }

    /// Compares the one face in `probe` (a selfie or a liveness frame) with the largest face
    /// in `reference` (the ID portrait or a photo on record).
    pub fn compare(&self, probe: &Mat, reference: &Mat) -> Result<FaceMatch> {
        let (pw, rw) = (
            Work::new(probe, MATCH_SIDE)?,
            Work::new(reference, MATCH_SIDE)?,
        );
        let dlib = self.lease();
        let pf = detect(&dlib, &pw)?;
        match pf.len() {
            0 => return Err(Error::NoFace("probe")),
            1 => {}
            count => {
                return Err(Error::SeveralFaces {
                    which: "probe",
                    count,
                });
            }
        }
        let rf = detect(&dlib, &rw)?;
        let Some(rbox) = rf.first() else {
            return Err(Error::NoFace("reference"));
        };
        let a = embed(&dlib, &pw, &pf[0])?;
        let b = embed(&dlib, &rw, rbox)?;
        let distance = a.distance(&b);
        Ok(FaceMatch {
            distance,
            threshold: self.threshold,
            same_person: distance <= self.threshold,
            probe_faces: pf.len(),
            reference_faces: rf.len(),
        })
    }

    /// For liveness: the largest face of a frame analysed at [`LIVE_SIDE`], its 68 landmarks
    /// (in the analysed copy's pixels: only ratios are used) and, when asked, its encoding.
    pub(crate) fn frame_face(
        &self,
        frame: &Mat,
        with_embedding: bool,
    ) -> Result<Option<FrameFace>> {
        self.require_landmarks68()?;
        let work = Work::new(frame, LIVE_SIDE)?;
        let dlib = self.lease();
        // Speed (up to 60 frames a request): a lone HOG find is taken as it is; among several,
        // the largest one the CNN confirms.
        let mut finds: Vec<Rectangle> = dlib.detector.face_locations(&work.matrix).to_vec();
        finds.sort_by_key(|r| std::cmp::Reverse(r.width() * r.height()));
        let face = if finds.len() == 1 {
            finds.pop()
        } else {
            let mut chosen = None;
            for r in finds {
                if confirmed(&dlib, &work, &r)? {
                    chosen = Some(r);
                    break;
                }
            }
            chosen
        };
        let Some(face) = face else {
            return Ok(None);
        };
        let landmarks = landmarks68(&dlib, &work, &face)?;
        let embedding = if with_embedding {
            Some(embed(&dlib, &work, &face)?)
        } else {
            None
        };
        Ok(Some(FrameFace {
            face: work.to_box(&face),
            landmarks,
            embedding,
        }))
    }

    /// `ModelMissing` naming the 68-point model's path when it was not loaded.
    pub(crate) fn require_landmarks68(&self) -> Result<()> {
        if self.has_landmarks68() {
            Ok(())
        } else {
            Err(Error::ModelMissing {
                name: Model::Landmarks68.name(),
                path: self.landmarks68_path.clone(),
            })
        }
    }
}

/// One liveness frame's face.
pub(crate) struct FrameFace {
    /// In the frame's pixels.
    pub face: FaceBox,
    /// In the analysed copy's pixels.
    pub landmarks: Landmarks,
    pub embedding: Option<Embedding>,
}

/// Detections in the work copy, largest first. The HOG detector is fast but finds "faces" in
/// some textures (a badge on a suit, measured); each find is kept only when dlib's CNN detector
/// also finds a face there, on a small crop around it (cheap, unlike the CNN on the whole image).
fn detect(dlib: &Dlib, work: &Work) -> Result<Vec<Rectangle>> {
    let mut found = Vec::new();
    for r in dlib.detector.face_locations(&work.matrix).iter() {
        if confirmed(dlib, work, r)? {
            found.push(*r);
        }
    }
    found.sort_by_key(|r| std::cmp::Reverse(r.width() * r.height()));
    Ok(found)
}

/// Whether the CNN detector finds a face whose centre lies in `r`, on a crop twice its size.
fn confirmed(dlib: &Dlib, work: &Work, r: &Rectangle) -> Result<bool> {
    let (w, h) = (work.rgb.cols(), work.rgb.rows());
    let side = (r.width().max(r.height()) * 2) as i32;
    let (cx, cy) = (r.center_x() as i32, r.center_y() as i32);
    let x0 = (cx - side / 2).clamp(0, w - 1);
    let y0 = (cy - side / 2).clamp(0, h - 1);
    let x1 = (cx + side / 2).clamp(x0 + 1, w);
    let y1 = (cy + side / 2).clamp(y0 + 1, h);
    let crop = Mat::roi(&work.rgb, Rect::new(x0, y0, x1 - x0, y1 - y0))?;
    let k = f64::from(CONFIRM_SIDE) / f64::from((x1 - x0).max(y1 - y0));
    let mut small = Mat::default();
    imgproc::resize(
        &crop,
        &mut small,
        Size::new(0, 0),
        k,
        k,
        imgproc::INTER_AREA,
    )?;
    let m = matrix_of(&small)?;
    Ok(dlib.cnn.face_locations(&m).iter().any(|d| {
        let (dx, dy) = (
            f64::from(x0) + d.center_x() / k,
            f64::from(y0) + d.center_y() / k,
        );
        dx >= r.left as f64 && dx <= r.right as f64 && dy >= r.top as f64 && dy <= r.bottom as f64
    }))
}

/// dlib's copy of a continuous RGB image.
fn matrix_of(rgb: &Mat) -> Result<ImageMatrix> {
    let copy;
    let rgb = if rgb.is_continuous() {
        rgb
    } else {
        copy = rgb.try_clone()?;
        &copy
    };
    let buf = ImageBuffer::<Rgb<u8>, Vec<u8>>::from_raw(
        rgb.cols() as u32,
        rgb.rows() as u32,
        rgb.data_bytes()?.to_vec(),
    )
    .ok_or_else(|| Error::Internal("image buffer size".into()))?;
    Ok(ImageMatrix::from_image(&buf))
}

fn landmarks68(dlib: &Dlib, work: &Work, face: &Rectangle) -> Result<Landmarks> {
    // Callers check `require_landmarks68` first.
    let Some(lp) = &dlib.landmarks68 else {
        return Err(Error::Internal("the 68-point model is not loaded".into()));
    };
    let points = lp
        .face_landmarks(&work.matrix, face)
        .iter()
        .map(|p| [p.x() as f32, p.y() as f32])
        .collect::<Vec<_>>();
    if points.len() != 68 {
        return Err(Error::Internal(format!(
            "the 68-point model gave {} points",
            points.len()
        )));
    }
    Ok(Landmarks { points })
}

fn embed(dlib: &Dlib, work: &Work, face: &Rectangle) -> Result<Embedding> {
    let shape = dlib.landmarks5.face_landmarks(&work.matrix, face);
    let encodings = dlib
        .encoder
        .get_face_encodings(&work.matrix, std::slice::from_ref(&shape), 0);
    let e = encodings
        .first()
        .ok_or_else(|| Error::Internal("the face encoder gave no encoding".into()))?;
    Ok(Embedding(e.as_ref().iter().map(|&v| v as f32).collect()))
}

impl Work {
    /// An RGB copy of a BGR (or grey, or BGRA) image whose long side is `side` (enlarged at
    /// most [`MAX_UPSCALE`] times).
    pub(crate) fn new(img: &Mat, side: i32) -> Result<Self> {
        let (w, h) = (img.cols(), img.rows());
        if img.empty() || w < 1 || h < 1 {
            return Err(Error::Invalid("empty image".into()));
        }
        let code = match img.channels() {
            1 => imgproc::COLOR_GRAY2RGB,
            3 => imgproc::COLOR_BGR2RGB,
            4 => imgproc::COLOR_BGRA2RGB,
            n => return Err(Error::Invalid(format!("{n}-channel image"))),
        };
        if img.depth() != core::CV_8U {
            return Err(Error::Invalid("image is not 8 bits a channel".into()));
        }
        let scale = (f64::from(side) / f64::from(w.max(h))).min(MAX_UPSCALE);
        let (sw, sh) = (
            ((f64::from(w) * scale).round() as i32).max(1),
            ((f64::from(h) * scale).round() as i32).max(1),
        );
        let mut resized = Mat::default();
        let interp = if scale < 1.0 {
            imgproc::INTER_AREA
        } else {
            imgproc::INTER_LINEAR
        };
        imgproc::resize(img, &mut resized, Size::new(sw, sh), 0.0, 0.0, interp)?;
        let mut rgb = Mat::default();
        imgproc::cvt_color(&resized, &mut rgb, code, 0)?;
        Ok(Self {
            matrix: matrix_of(&rgb)?,
            rgb,
            scale: f64::from(sw) / f64::from(w),
        })
    }

    fn to_box(&self, r: &Rectangle) -> FaceBox {
        let f = |v: std::os::raw::c_long| (v as f64 / self.scale).round() as i32;
        FaceBox {
            x: f(r.left),
            y: f(r.top),
            w: f(r.right) - f(r.left),
            h: f(r.bottom) - f(r.top),
        }
    }

    fn to_rect(&self, b: &FaceBox) -> Rectangle {
        let f = |v: i32| (f64::from(v) * self.scale).round() as std::os::raw::c_long;
        Rectangle {
            left: f(b.x),
            top: f(b.y),
            right: f(b.x + b.w),
            bottom: f(b.y + b.h),
        }
    }
}
