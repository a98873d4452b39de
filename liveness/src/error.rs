//! Errors with a stable code and Chinese and English messages (the HTTP layer maps them to
//! 4xx/5xx JSON bodies `{code, message, message_en}`).

use std::path::PathBuf;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file is not where the configuration says; names the model and the path.
    #[error(
        "model {name} is missing at {path} (run scripts/setup.sh; see docs/identity/models.md)"
    )]
    ModelMissing {
        /// Which model.
        name: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The upload is empty.
    #[error("the image is empty")]
    EmptyImage,
    /// The bytes are not an image OpenCV can decode (or not PNG/JPEG/BMP/WebP).
    #[error("not a supported image (PNG, JPEG, BMP or WebP)")]
    NotAnImage,
    /// More pixels or bytes than allowed.
    #[error("image too large: {0}")]
    TooLarge(String),
    /// No card-shaped object was found.
    #[error("no ID card found in the photo")]
    NoCard,
    /// No face was found (in the named image: `probe`, `reference`, a frame).
    #[error("no face found in the {0}")]
    NoFace(&'static str),
    /// More than one face where exactly one is required.
    #[error("{count} faces found in the {which}; exactly one is required")]
    SeveralFaces {
        /// Which image.
        which: &'static str,
        /// How many faces.
        count: usize,
    },
    /// A bad request parameter.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// OpenCV failed (a bug or resource exhaustion, not bad input).
    #[error("opencv: {0}")]
    OpenCv(#[from] opencv::Error),
    /// ONNX Runtime failed.
    #[error("onnx runtime: {0}")]
    Runtime(String),
    /// Anything else that is our fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ort::Error> for Error {
    fn from(e: ort::Error) -> Self {
        Self::Runtime(e.to_string())
    }
}

impl Error {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ModelMissing { .. } => "model_missing",
            Self::EmptyImage => "empty_image",
            Self::NotAnImage => "not_an_image",
            Self::TooLarge(_) => "image_too_large",
            Self::NoCard => "no_card",
            Self::NoFace(_) => "no_face",
            Self::SeveralFaces { .. } => "several_faces",
            Self::Invalid(_) => "invalid_request",
            Self::OpenCv(_) | Self::Runtime(_) | Self::Internal(_) => "internal",
        }
    }

    /// Whether the caller sent something wrong (4xx) rather than us failing (5xx).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Self::EmptyImage
                | Self::NotAnImage
                | Self::TooLarge(_)
                | Self::NoCard
                | Self::NoFace(_)
                | Self::SeveralFaces { .. }
                | Self::Invalid(_)
        )
    }

    /// Chinese message.
    pub fn message_zh(&self) -> String {
        match self {
            Self::ModelMissing { name, path } => {
                format!(
                    "缺少模型 {name}（{}），请运行 scripts/setup.sh。",
                    path.display()
                )
            }
            Self::EmptyImage => "图片为空。".into(),
            Self::NotAnImage => "不是可识别的图片（支持 PNG、JPEG、BMP、WebP）。".into(),
            Self::TooLarge(what) => format!("图片过大：{what}。"),
            Self::NoCard => "照片中未找到身份证，请将证件完整放入画面后重拍。".into(),
            Self::NoFace(which) => format!(
                "{}中未找到人脸，请正对镜头、光线充足后重拍。",
                which_zh(which)
            ),
            Self::SeveralFaces { which, count } => {
                format!("{}中有 {count} 张人脸，只能有一人入镜。", which_zh(which))
            }
            Self::Invalid(what) => format!("请求无效：{what}。"),
            Self::OpenCv(_) | Self::Runtime(_) | Self::Internal(_) => "服务内部错误。".into(),
        }
    }
}

/// The Chinese name of an image role used in face errors.
fn which_zh(which: &str) -> &'static str {
    match which {
        "probe" => "待比对照片",
        "reference" => "参照照片",
        "frame" => "视频帧",
        _ => "图片",
    }
}
