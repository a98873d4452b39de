//! Passive anti-spoofing (is this frame a live face, not a print, a screen or a mask?) as an
//! interface only. No model of production quality is packaged anywhere this project can fetch
//! from, and a made-up score would be worse than none: the service reports `absent` until a
//! hospital plugs in a model it has licensed (the HTTP service's ONNX adapter implements this
//! trait), and never claims a check that did not run.

use opencv::core::Mat;

use crate::Result;

/// A passive anti-spoofing model.
pub trait AntiSpoof: Send + Sync {
    /// Name and version of the model, as reported to callers and recorded in evidence.
    fn name(&self) -> &str;
    /// Liveness score of one BGR frame, higher meaning more likely live.
    fn score(&self, frame: &Mat) -> Result<f32>;
    /// Scores at or above this pass.
    fn threshold(&self) -> f32;
}
