//! Where the model files are, and a check that names any missing one. The files are fetched by
//! `scripts/fetch-models.sh` (PyPI wheels, checksummed) into `$YIQIAN_CACHE/models`; their
//! sources and licences are listed in `docs/identity/models.md`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::{Error, Result};

/// A model (or runtime library) the service needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// ONNX Runtime shared library (PyPI `onnxruntime` 1.22.0 wheel, MIT).
    OnnxRuntime,
    /// PP-OCRv4 Chinese text recogniser (PyPI `rapidocr-onnxruntime` 1.4.4, Apache-2.0).
    OcrRecognizer,
    /// dlib ResNet face encoder, 128-d (PyPI `face-recognition-models` 0.3.0, CC0).
    FaceEncoder,
    /// dlib 5-point landmarks, for aligning faces before encoding (same package, CC0).
    Landmarks5,
    /// dlib CNN (MMOD) face detector, confirming the HOG detector's finds (same package, CC0).
    FaceDetectorCnn,
    /// dlib 68-point landmarks, for active liveness (same package; CC0 file, but its training
    /// data rules out commercial use: a configurable choice, see `ModelDir::with_landmarks68`).
    Landmarks68,
}

impl Model {
    /// Every model the OCR path needs.
    pub const OCR: [Self; 2] = [Self::OnnxRuntime, Self::OcrRecognizer];
    /// Every model face match needs (liveness also needs [`Model::Landmarks68`]).
    pub const FACE: [Self; 3] = [Self::FaceEncoder, Self::Landmarks5, Self::FaceDetectorCnn];

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Self::OnnxRuntime => "onnxruntime 1.22.0 (libonnxruntime.so)",
            Self::OcrRecognizer => "PP-OCRv4 recogniser (ch_PP-OCRv4_rec_infer.onnx)",
            Self::FaceEncoder => "dlib face encoder (dlib_face_recognition_resnet_model_v1.dat)",
            Self::Landmarks5 => "dlib 5-point landmarks (shape_predictor_5_face_landmarks.dat)",
            Self::FaceDetectorCnn => "dlib CNN face detector (mmod_human_face_detector.dat)",
            Self::Landmarks68 => "dlib 68-point landmarks (shape_predictor_68_face_landmarks.dat)",
        }
    }

    /// Path under the models directory.
    pub fn relative_path(self) -> &'static str {
        match self {
            Self::OnnxRuntime => "onnxruntime/libonnxruntime.so.1.22.0",
            Self::OcrRecognizer => "ppocr/ch_PP-OCRv4_rec_infer.onnx",
            Self::FaceEncoder => "dlib/dlib_face_recognition_resnet_model_v1.dat",
            Self::Landmarks5 => "dlib/shape_predictor_5_face_landmarks.dat",
            Self::FaceDetectorCnn => "dlib/mmod_human_face_detector.dat",
            Self::Landmarks68 => "dlib/shape_predictor_68_face_landmarks.dat",
        }
    }
}

/// The models directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDir {
    dir: PathBuf,
    /// Where the 68-point model is when not under `dir` (a deployment's own licensed model).
    landmarks68: Option<PathBuf>,
}

impl ModelDir {
    /// A given directory.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            landmarks68: None,
        }
    }

    /// The 68-point landmark model (dlib `shape_predictor` format) at `path` instead of the
    /// fetched one, e.g. a model the hospital is licensed to use commercially.
    #[must_use]
    pub fn with_landmarks68(mut self, path: impl Into<PathBuf>) -> Self {
        self.landmarks68 = Some(path.into());
        self
    }

    /// `$LIVENESS_MODELS`, else `$YIQIAN_CACHE/models`, else `/var/cache/yiqian/models`;
    /// `$LIVENESS_LANDMARKS68`, when set, is the 68-point model's path.
    pub fn from_env() -> Self {
        let dir = std::env::var_os("LIVENESS_MODELS").map_or_else(
            || {
                std::env::var_os("YIQIAN_CACHE")
                    .map_or_else(|| PathBuf::from("/var/cache/yiqian"), PathBuf::from)
                    .join("models")
            },
            PathBuf::from,
        );
        let me = Self::new(dir);
        match std::env::var_os("LIVENESS_LANDMARKS68") {
            Some(p) if !p.is_empty() => me.with_landmarks68(p),
            _ => me,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a model is.
    pub fn path(&self, model: Model) -> PathBuf {
        match (model, &self.landmarks68) {
            (Model::Landmarks68, Some(p)) => p.clone(),
            _ => self.dir.join(model.relative_path()),
        }
    }

    /// A test image fetched with the models (public domain; see docs/identity/models.md).
    pub fn test_image(&self, file: &str) -> PathBuf {
        self.dir.join("test-images").join(file)
    }

    /// Fails naming the first missing model.
    pub fn require(&self, models: &[Model]) -> Result<()> {
        for &m in models {
            let path = self.path(m);
            if !path.is_file() {
                return Err(Error::ModelMissing {
                    name: m.name(),
                    path,
                });
            }
        }
        Ok(())
    }
}

/// Loads ONNX Runtime from the models directory, once per process.
pub(crate) fn init_onnxruntime(models: &ModelDir) -> Result<()> {
    static INIT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    models.require(&[Model::OnnxRuntime])?;
    let path = models.path(Model::OnnxRuntime);
    INIT.get_or_init(|| {
        ort::init_from(path.to_string_lossy())
            .with_name("liveness")
            .commit()
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .clone()
    .map_err(Error::Runtime)
}
