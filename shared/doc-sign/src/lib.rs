//! Document signatures for Yiqian 医签 (issue 7), on top of `gm-pki`:
//!
//! * PDF signatures as incremental updates (PAdES B-B / B-T with an RFC 3161 signature time
//!   stamp, B-LT with a DSS dictionary), `/SubFilter /ETSI.CAdES.detached` or
//!   `adbe.pkcs7.detached`, SM2/SM3 CMS; any number of signatures in sequence; certification
//!   (DocMDP); invisible or visible (handwriting image, seal image, text block) appearances.
//! * Detached CMS (`.p7s`) for any file.
//! * Verification reports for both.
//!
//! Time and randomness are parameters; untrusted bytes never panic the library (errors are
//! [`Error`] variants).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::indexing_slicing)]

pub mod detached;
pub mod error;
pub mod pdf;
pub mod timestamp;

pub use error::{Error, Result};
pub use pdf::appearance::{Appearance, Layer, Rect, SignatureImage, TextBlock};
pub use pdf::doc::page_count;
pub use pdf::dss::{LtvMaterial, add_dss};
pub use pdf::keyword::{KeywordHit, find_keyword};
pub use pdf::sign::{
    DocMdp, FieldLock, PdfSignOptions, Placement, PreparedPdf, SignerIdentity, SubFilter,
    build_cms_with, complete_cms, external_cms, prepare, sign_pdf,
};
pub use pdf::sign::{P256SignerIdentity, build_cms_p256, sign_pdf_p256};
pub use pdf::verify::{
    PathCheck, PdfReport, SignatureReport, TrustOptions, verify_pdf, verify_pdf_trusted,
};
pub use timestamp::{LocalTsa, TimestampAuthority};
