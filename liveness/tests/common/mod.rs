//! What the face and liveness tests share: the engine, the public-domain test photos (fetched
//! by scripts/setup.sh; see docs/identity/models.md) and liveness frames synthesised from a
//! photo with its own landmarks by `liveness::synth::live` (a plumbing test of the liveness
//! logic, not of accuracy on real people), camera noise per frame.

// Each test crate uses only some of these; test helpers fail loudly (expect).
#![allow(dead_code, clippy::expect_used)]

use liveness::face::FaceEngine;
use liveness::live::Action;
use liveness::models::ModelDir;
use liveness::synth::live::{self, Portrait};
use opencv::core::{self, Mat, Rect, Scalar};
use opencv::imgcodecs;
use opencv::prelude::*;
use rand::{SeedableRng, rngs::StdRng};

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

/// A test photo's face and its landmarks.
pub fn subject(engine: &FaceEngine, img: Mat) -> Portrait {
    Portrait::find(engine, img).expect("a face and its landmarks")
}

/// Camera noise, different in every frame.
pub fn noisy(img: &Mat, rng: &mut StdRng) -> Mat {
    live::noisy(img, rng).expect("noise")
}

/// The frames of one step of `action`: neutral, the action twice, neutral again.
pub fn frames(s: &Portrait, action: Action, rng: &mut StdRng) -> Vec<Mat> {
    let acted = s.acted(action).expect("acted");
    [&s.img, &acted, &acted, &s.img]
        .into_iter()
        .map(|f| noisy(f, rng))
        .collect()
}

pub fn sequence(s: &Portrait, actions: &[Action], seed: u64) -> Vec<Vec<Mat>> {
    let mut rng = StdRng::seed_from_u64(seed);
    actions.iter().map(|&a| frames(s, a, &mut rng)).collect()
}
