//! Liveness frames synthesised from one portrait and its own 68 landmarks, for tests and
//! demonstrations of the liveness plumbing (`liveness synth live`, `liveness/tests/live.rs`,
//! the page's browser test): eyes painted shut with skin colour (blink), a dark open mouth
//! painted over the lips (open mouth), the face warped sideways so the nose moves towards one
//! jaw end (head turn). What they show is that metrics, baseline and step logic work end to
//! end, not how accurate [`crate::live`] is on real people, which needs recorded (consented)
//! sessions.

// Pixel geometry on a photo of at most a few thousand pixels: the casts are exact or rounded on
// purpose.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use opencv::core::{self, Mat, Point, Rect, Scalar, Size, Vector};
use opencv::imgproc;
use opencv::prelude::*;
use rand::Rng;

use super::add_noise;
use crate::face::{FaceEngine, Landmarks};
use crate::live::Action;
use crate::{Error, Result};

/// How far a synthesised head turn moves the nose tip, as a share of the jaw width (the
/// checker's [`crate::live::TURN_DELTA`] is on a −1 … 1 scale, twice this share's).
pub const TURN_SHIFT: f32 = 0.22;
/// Camera noise added by [`noisy`], grey levels (σ).
pub const NOISE_SIGMA: f64 = 2.0;

/// A photo of one face and its 68 landmarks: the neutral pose every action is made from.
#[derive(Debug, Clone)]
pub struct Portrait {
    /// The photo, BGR.
    pub img: Mat,
    /// Its largest face's 68 landmarks.
    pub marks: Landmarks,
}

impl Portrait {
    /// The largest face of `img` (needs the 68-point model).
    pub fn find(engine: &FaceEngine, img: Mat) -> Result<Self> {
        let face = *engine
            .faces(&img)?
            .first()
            .ok_or(Error::NoFace("portrait"))?;
        let marks = engine.landmarks68(&img, &face)?;
        if marks.points.len() != 68 {
            return Err(Error::Internal(format!(
                "{} landmarks instead of 68",
                marks.points.len()
            )));
        }
        Ok(Self { img, marks })
    }

    /// The picture of the person doing `action` (at its most visible: eyes shut, mouth open,
    /// head turned).
    pub fn acted(&self, action: Action) -> Result<Mat> {
        match action {
            Action::Blink => self.eyes_closed(),
            Action::OpenMouth => self.mouth_open(),
            Action::TurnLeft => self.turned(TURN_SHIFT),
            Action::TurnRight => self.turned(-TURN_SHIFT),
        }
    }

    fn p(&self, i: usize) -> [f32; 2] {
        self.marks.points.get(i).copied().unwrap_or_default()
    }

    fn range(&self, r: std::ops::Range<usize>) -> &[[f32; 2]] {
        self.marks.points.get(r).unwrap_or_default()
    }

    /// Eyes painted shut: each eye's outline, enlarged, filled with the skin just below it, and
    /// a dark lash line across.
    pub fn eyes_closed(&self) -> Result<Mat> {
        let mut img = self.img.try_clone()?;
        for eye in [self.range(36..42), self.range(42..48)] {
            let [Some(&first), Some(&fourth)] = [eye.first(), eye.get(3)] else {
                continue;
            };
            let c = centroid(eye);
            let w = (fourth[0] - first[0]).abs();
            let skin = colour_at(&self.img, [c[0], c[1] + w * 0.9])?;
            let poly: Vector<Point> = eye
                .iter()
                .map(|q| pt([c[0] + (q[0] - c[0]) * 1.3, c[1] + (q[1] - c[1]) * 1.9]))
                .collect();
            let polys: Vector<Vector<Point>> = std::iter::once(poly).collect();
            imgproc::fill_poly(
                &mut img,
                &polys,
                skin,
                imgproc::LINE_AA,
                0,
                Point::default(),
            )?;
            imgproc::line(
                &mut img,
                pt(first),
                pt(fourth),
                Scalar::new(40.0, 35.0, 45.0, 0.0),
                2,
                imgproc::LINE_AA,
                0,
            )?;
        }
        Ok(img)
    }

    /// The mouth opened: everything below the lips' meeting line, between the mouth corners
    /// (fading out beside them), is pulled down by 0.45 of the mouth width (the chin and jaw
    /// squeezed to make room), and the gap is painted dark.
    pub fn mouth_open(&self) -> Result<Mat> {
        let c = centroid(self.range(60..68));
        let w = (self.p(54)[0] - self.p(48)[0]).abs();
        let open = w * 0.45;
        let bottom = self.p(8)[1] + w * 0.4;
        let (l, r) = (self.p(48)[0], self.p(54)[0]);
        let fade = w * 0.6;
        let mut img = warped(&self.img, |xf, yf| {
            // How much of the opening this column gets: all between the corners, fading beside.
            let k = if xf >= l && xf <= r {
                1.0
            } else {
                let out = if xf < l { l - xf } else { xf - r };
                (1.0 - out / fade).max(0.0)
            };
            let d = open * k;
            let src_y = if yf <= c[1] || yf >= bottom || d <= 0.0 {
                yf
            } else if yf <= c[1] + d {
                c[1]
            } else {
                c[1] + (yf - c[1] - d) * (bottom - c[1]) / (bottom - c[1] - d)
            };
            (xf, src_y)
        })?;
        imgproc::ellipse(
            &mut img,
            pt([c[0], c[1] + open / 2.0]),
            Size::new((w * 0.42) as i32, (open / 2.0) as i32),
            0.0,
            0.0,
            360.0,
            Scalar::new(35.0, 25.0, 50.0, 0.0),
            -1,
            imgproc::LINE_AA,
            0,
        )?;
        Ok(img)
    }

    /// The face warped sideways: columns are remapped so that the nose tip moves by `shift` of
    /// the face width (positive: towards the image's right, the person's left) while the jaw
    /// ends stay nearly put — what a head turn does to a 2-D picture, roughly.
    pub fn turned(&self, shift: f32) -> Result<Mat> {
        let (j0, j16, nose) = (self.p(0)[0], self.p(16)[0], self.p(30)[0]);
        let margin = (j16 - j0) * 0.15;
        let (left, right) = (j0 - margin, j16 + margin);
        let to = nose + shift * (j16 - j0);
        warped(&self.img, |xf, yf| {
            // Output column → source column, piecewise linear through (to → nose).
            let src = if xf <= left || xf >= right {
                xf
            } else if xf <= to {
                left + (xf - left) * (nose - left) / (to - left)
            } else {
                nose + (xf - to) * (right - nose) / (right - to)
            };
            (src, yf)
        })
    }
}

/// `img` with camera noise: Gaussian, σ [`NOISE_SIGMA`], different with every call.
pub fn noisy<R: Rng>(img: &Mat, rng: &mut R) -> Result<Mat> {
    let mut out = img.try_clone()?;
    add_noise(&mut out, NOISE_SIGMA, rng)?;
    Ok(out)
}

fn pt(p: [f32; 2]) -> Point {
    Point::new(p[0].round() as i32, p[1].round() as i32)
}

fn centroid(ps: &[[f32; 2]]) -> [f32; 2] {
    let n = ps.len().max(1) as f32;
    [
        ps.iter().map(|p| p[0]).sum::<f32>() / n,
        ps.iter().map(|p| p[1]).sum::<f32>() / n,
    ]
}

/// Mean colour of a small square around `at` (clipped to the image).
fn colour_at(img: &Mat, at: [f32; 2]) -> Result<Scalar> {
    let r = Rect::new(at[0] as i32 - 4, at[1] as i32 - 4, 9, 9)
        & Rect::new(0, 0, img.cols(), img.rows());
    if r.width <= 0 || r.height <= 0 {
        return Err(Error::Invalid(
            "the face is at the edge of the photo".into(),
        ));
    }
    Ok(core::mean(&Mat::roi(img, r)?, &core::no_array())?)
}

/// `img` resampled: output pixel (x, y) comes from `source(x, y)`.
fn warped(img: &Mat, source: impl Fn(f32, f32) -> (f32, f32)) -> Result<Mat> {
    let (w, h) = (img.cols(), img.rows());
    let mut map_x = Mat::new_rows_cols_with_default(h, w, core::CV_32FC1, Scalar::all(0.0))?;
    let mut map_y = map_x.try_clone()?;
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = source(x as f32, y as f32);
            *map_x.at_2d_mut::<f32>(y, x)? = sx;
            *map_y.at_2d_mut::<f32>(y, x)? = sy;
        }
    }
    let mut out = Mat::default();
    imgproc::remap(
        img,
        &mut out,
        &map_x,
        &map_y,
        imgproc::INTER_LINEAR,
        core::BORDER_REPLICATE,
        Scalar::default(),
    )?;
    Ok(out)
}
