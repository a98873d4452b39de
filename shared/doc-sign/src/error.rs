//! The crate's one error type, split by who is at fault.

/// Every failure `doc-sign` reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not a PDF this crate can read (no header, broken cross-reference data,
    /// truncated, objects that do not parse). Untrusted input.
    #[error("malformed PDF: {0}")]
    MalformedPdf(String),
    /// A well-formed PDF uses a feature this crate does not handle (encryption, a page that does
    /// not exist, a signature dictionary of an unknown kind...).
    #[error("unsupported PDF: {0}")]
    Unsupported(String),
    /// The document's own permissions forbid the change (a DocMDP certification with P=1, or a
    /// field locked by FieldMDP).
    #[error("not permitted by the document: {0}")]
    NotPermitted(String),
    /// The CMS did not fit into the space reserved for `/Contents`.
    #[error("signature needs {needed} bytes but only {reserved} were reserved for /Contents")]
    ContentsTooSmall {
        /// DER length of the CMS.
        needed: usize,
        /// Bytes reserved.
        reserved: usize,
    },
    /// A signature image could not be decoded (not a PNG, unsupported colour type, too large).
    #[error("bad image: {0}")]
    Image(String),
    /// The caller passed values that cannot be used (empty field name, rectangle of zero size,
    /// a name already used). Never caused by untrusted document bytes.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The time-stamp authority refused or failed (the signature is then not made: B-T requires it).
    #[error("time stamp failed: {0}")]
    Timestamp(String),
    /// A certificate, CMS, OCSP or time-stamp structure failed in `gm-pki`.
    #[error(transparent)]
    Pki(#[from] gm_pki::Error),
    /// A state that should be impossible; a bug in this crate.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    pub(crate) fn malformed(detail: impl std::fmt::Display) -> Self {
        Self::MalformedPdf(detail.to_string())
    }
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;
