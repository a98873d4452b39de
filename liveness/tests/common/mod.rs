//! What the face and liveness tests share: the engine, the public-domain test photos (fetched
//! by scripts/setup.sh; see docs/identity/models.md) and liveness frames synthesised from a
//! photo with its own landmarks (a plumbing test of the liveness logic, not of accuracy on
//! real people): eyes painted shut with skin colour, a dark open mouth painted over the lips,
//! the face warped sideways so the nose moves towards one jaw end, camera noise per frame.

// Each test crate uses only some of these; test helpers fail loudly (expect) and do pixel
// geometry on a 512 px photo (the casts are exact or rounded on purpose).
#![allow(
    dead_code,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use liveness::face::{FaceEngine, Landmarks};
use liveness::live::Action;
use liveness::models::ModelDir;
use opencv::core::{self, Mat, Point, Rect, Scalar, Size, Vector};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// The engine from the fetched models.
pub fn engine() -> FaceEngine {
    FaceEngine::load(&ModelDir::from_env()).expect("face models (run scripts/setup.sh)")
}

/// A test photo, BGR.
pub fn photo(name: &str) -> Mat {
    let path = ModelDir::from_env().test_image(name);
    let img = imgcodecs::imread(&path, imgcodecs::IMREAD_COLOR).expect("imread");
    assert!(!img.empty(), "{} (run scripts/setup.sh)", path.display());
    img
}

/// A flat grey picture: no face, no card.
pub fn grey(w: i32, h: i32) -> Mat {
    Mat::new_rows_cols_with_default(h, w, core::CV_8UC3, Scalar::all(128.0)).expect("mat")
}

/// Two photos side by side on a grey canvas.
pub fn side_by_side(a: &Mat, b: &Mat) -> Mat {
    let mut canvas = grey(a.cols() + b.cols(), a.rows().max(b.rows()));
    for (img, x) in [(a, 0), (b, a.cols())] {
        let mut roi =
            Mat::roi_mut(&mut canvas, Rect::new(x, 0, img.cols(), img.rows())).expect("roi");
        img.copy_to(&mut roi).expect("copy");
    }
    canvas
}

/// The astronaut and her landmarks.
pub struct Subject {
    /// The photo.
    pub img: Mat,
    /// Its 68 landmarks.
    pub marks: Landmarks,
}

pub fn subject(engine: &FaceEngine, img: Mat) -> Subject {
    let face = engine.faces(&img).expect("faces")[0];
    let marks = engine.landmarks68(&img, &face).expect("landmarks");
    Subject { img, marks }
}

fn pt(p: [f32; 2]) -> Point {
    Point::new(p[0].round() as i32, p[1].round() as i32)
}

fn centroid(ps: &[[f32; 2]]) -> [f32; 2] {
    let n = ps.len() as f32;
    [
        ps.iter().map(|p| p[0]).sum::<f32>() / n,
        ps.iter().map(|p| p[1]).sum::<f32>() / n,
    ]
}

/// Mean colour of a small square around `at`.
fn colour_at(img: &Mat, at: [f32; 2]) -> Scalar {
    let r = core::Rect::new(at[0] as i32 - 4, at[1] as i32 - 4, 9, 9);
    core::mean(&Mat::roi(img, r).expect("roi"), &core::no_array()).expect("mean")
}

/// Eyes painted shut: each eye's outline, enlarged, filled with the skin just below it, and
/// a dark lash line across.
pub fn eyes_closed(s: &Subject) -> Mat {
    let mut img = s.img.try_clone().expect("clone");
    let p = &s.marks.points;
    for eye in [&p[36..42], &p[42..48]] {
        let c = centroid(eye);
        let w = (eye[3][0] - eye[0][0]).abs();
        let skin = colour_at(&s.img, [c[0], c[1] + w * 0.9]);
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
        )
        .expect("fill");
        imgproc::line(
            &mut img,
            pt(eye[0]),
            pt(eye[3]),
            Scalar::new(40.0, 35.0, 45.0, 0.0),
            2,
            imgproc::LINE_AA,
            0,
        )
        .expect("line");
    }
    img
}

/// The mouth opened: everything below the lips' meeting line, between the mouth corners
/// (fading out beside them), is pulled down by 0.45 of the mouth width (the chin and jaw
/// squeezed to make room), and the gap is painted dark.
pub fn mouth_open(s: &Subject) -> Mat {
    let p = &s.marks.points;
    let c = centroid(&p[60..68]);
    let w = (p[54][0] - p[48][0]).abs();
    let open = w * 0.45;
    let bottom = p[8][1] + w * 0.4;
    let (l, r) = (p[48][0], p[54][0]);
    let fade = w * 0.6;
    let mut img = warped(&s.img, |xf, yf| {
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
    });
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
    )
    .expect("ellipse");
    img
}

/// The face warped sideways: columns are remapped so that the nose tip moves by `shift` of
/// the face width (positive: towards the image's right, the person's left) while the jaw
/// ends stay nearly put — what a head turn does to a 2-D picture, roughly.
pub fn turned(s: &Subject, shift: f32) -> Mat {
    let p = &s.marks.points;
    let (j0, j16, nose) = (p[0][0], p[16][0], p[30][0]);
    let margin = (j16 - j0) * 0.15;
    let (left, right) = (j0 - margin, j16 + margin);
    let to = nose + shift * (j16 - j0);
    warped(&s.img, |xf, yf| {
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

/// `img` resampled: output pixel (x, y) comes from `source(x, y)`.
fn warped(img: &Mat, source: impl Fn(f32, f32) -> (f32, f32)) -> Mat {
    let (w, h) = (img.cols(), img.rows());
    let mut map_x =
        Mat::new_rows_cols_with_default(h, w, core::CV_32FC1, Scalar::all(0.0)).expect("map");
    let mut map_y = map_x.try_clone().expect("map");
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = source(x as f32, y as f32);
            *map_x.at_2d_mut::<f32>(y, x).expect("at") = sx;
            *map_y.at_2d_mut::<f32>(y, x).expect("at") = sy;
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
    )
    .expect("remap");
    out
}

/// Camera noise: Gaussian (Box–Muller), σ 2 grey levels, different in every frame.
pub fn noisy(img: &Mat, rng: &mut StdRng) -> Mat {
    let mut out = img.try_clone().expect("clone");
    for p in out.data_bytes_mut().expect("bytes") {
        let (u1, u2): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.r#gen());
        let n = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * 2.0;
        *p = (f64::from(*p) + n).round().clamp(0.0, 255.0) as u8;
    }
    out
}

/// The frames of one step of `action`: neutral, the action twice, neutral again.
pub fn frames(s: &Subject, action: Action, rng: &mut StdRng) -> Vec<Mat> {
    let acted = match action {
        Action::Blink => eyes_closed(s),
        Action::OpenMouth => mouth_open(s),
        Action::TurnLeft => turned(s, 0.22),
        Action::TurnRight => turned(s, -0.22),
    };
    [&s.img, &acted, &acted, &s.img]
        .into_iter()
        .map(|f| noisy(f, rng))
        .collect()
}

pub fn sequence(s: &Subject, actions: &[Action], seed: u64) -> Vec<Vec<Mat>> {
    let mut rng = StdRng::seed_from_u64(seed);
    actions.iter().map(|&a| frames(s, a, &mut rng)).collect()
}
