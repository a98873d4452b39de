//! Identity verification: ID-card OCR, face match and active liveness as a local service, so the
//! signing server does not link OpenCV. Built under issue 10; see docs/identity/.
#![forbid(unsafe_code)]

pub mod antispoof;
mod error;
pub mod face;
pub mod idcard;
pub mod image;
pub mod imagestore;
pub mod layout;
pub mod live;
pub mod models;
pub mod ocr;
pub mod service;
pub mod synth;

pub use error::{Error, Result};
