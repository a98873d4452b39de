//! Passive anti-spoofing (is this frame a live face, not a print, a screen or a mask?) as an
//! interface only. No model of production quality is packaged anywhere this project can fetch
//! from, and a made-up score would be worse than none: the service reports `absent` until a
//! hospital plugs in a model it has licensed (the HTTP service's ONNX adapter implements this
//! trait), and never claims a check that did not run.

use opencv::core::Mat;
use opencv::prelude::*;

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

/// A passive anti-spoof model in ONNX format, supplied by the hospital (`liveness serve
/// --anti-spoof-model FILE`); nothing of the kind ships with Yiqian. The contract the file must
/// meet: one float input `[1, 3, H, W]` (H and W fixed in the model, else 128), RGB scaled to
/// 0..1, the face frame resized to fill it; the first output holds either one value (the
/// probability that the frame shows a live person) or two (logits or probabilities of
/// [spoof, live]; a softmax is taken). A frame passes when the live score ≥ the threshold.
pub struct OnnxAntiSpoof {
    name: String,
    session: std::sync::Mutex<ort::session::Session>,
    width: i32,
    height: i32,
    threshold: f32,
}

impl std::fmt::Debug for OnnxAntiSpoof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxAntiSpoof")
            .field("name", &self.name)
            .field("input", &(self.width, self.height))
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

/// Side used when the model leaves its input size open.
const DEFAULT_SIDE: i32 = 128;

impl OnnxAntiSpoof {
    /// Loads the model at `path` (ONNX Runtime from `models`); `threshold` in 0..=1.
    pub fn load(
        models: &crate::models::ModelDir,
        path: &std::path::Path,
        threshold: f32,
    ) -> Result<Self> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(crate::Error::Invalid(format!(
                "anti-spoof threshold {threshold} is not in 0..1"
            )));
        }
        if !path.is_file() {
            return Err(crate::Error::ModelMissing {
                name: "anti-spoof model (--anti-spoof-model)",
                path: path.to_owned(),
            });
        }
        crate::models::init_onnxruntime(models)?;
        let session = ort::session::Session::builder()?
            .with_intra_threads(1)?
            .with_inter_threads(1)?
            .commit_from_file(path)?;
        let dims: Vec<i64> = match session.inputs.first().map(|i| &i.input_type) {
            Some(ort::value::ValueType::Tensor { shape, .. }) => shape.iter().copied().collect(),
            _ => {
                return Err(crate::Error::Runtime(
                    "anti-spoof model has no tensor input".into(),
                ));
            }
        };
        if dims.len() != 4 || (dims[1] != 3 && dims[1] != -1) {
            return Err(crate::Error::Runtime(format!(
                "anti-spoof model input must be [1, 3, H, W], is {dims:?}"
            )));
        }
        let side = |d: i64| {
            i32::try_from(d)
                .ok()
                .filter(|d| (8..=1024).contains(d))
                .unwrap_or(DEFAULT_SIDE)
        };
        let name = path.file_name().map_or_else(
            || "anti-spoof".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Self {
            name,
            height: side(dims[2]),
            width: side(dims[3]),
            session: std::sync::Mutex::new(session),
            threshold,
        })
    }
}

impl AntiSpoof for OnnxAntiSpoof {
    fn name(&self) -> &str {
        &self.name
    }

    fn threshold(&self) -> f32 {
        self.threshold
    }

    fn score(&self, frame: &Mat) -> Result<f32> {
        let mut resized = Mat::default();
        opencv::imgproc::resize(
            frame,
            &mut resized,
            opencv::core::Size::new(self.width, self.height),
            0.0,
            0.0,
            opencv::imgproc::INTER_AREA,
        )?;
        let mut rgb = Mat::default();
        opencv::imgproc::cvt_color(&resized, &mut rgb, opencv::imgproc::COLOR_BGR2RGB, 0)?;
        let (w, h) = (
            usize::try_from(self.width).unwrap_or(0),
            usize::try_from(self.height).unwrap_or(0),
        );
        let bytes = rgb.data_bytes()?;
        let mut data = vec![0f32; 3 * w * h];
        for (i, px) in bytes.chunks_exact(3).enumerate().take(w * h) {
            for (c, v) in px.iter().enumerate() {
                data[c * w * h + i] = f32::from(*v) / 255.0;
            }
        }
        let input = ort::value::Tensor::from_array(([1usize, 3, h, w], data))?;
        let mut session = self
            .session
            .lock()
            .map_err(|_| crate::Error::Internal("anti-spoof lock poisoned".into()))?;
        let outputs = session.run(ort::inputs![input])?;
        let (_, out) = outputs[0].try_extract_tensor::<f32>()?;
        let score = match *out {
            [p] => p,
            [spoof, live] => {
                let m = spoof.max(live);
                let (es, el) = ((spoof - m).exp(), (live - m).exp());
                el / (es + el)
            }
            _ => {
                return Err(crate::Error::Runtime(format!(
                    "anti-spoof model output has {} values, expected 1 or 2",
                    out.len()
                )));
            }
        };
        if score.is_finite() {
            Ok(score.clamp(0.0, 1.0))
        } else {
            Err(crate::Error::Runtime(
                "anti-spoof score is not a number".into(),
            ))
        }
    }
}
