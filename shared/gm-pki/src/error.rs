//! The crate's one error type, split by who is at fault.

use std::time::SystemTime;

/// Every failure `gm-pki` reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Untrusted input is not well-formed DER / PEM / base64 for the structure expected
    /// (truncated, trailing data, wrong tags, values out of range).
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which structure was being read.
        what: &'static str,
        /// Decoder detail (safe to log, contains no secrets).
        detail: String,
    },
    /// Well-formed input names an algorithm this crate does not accept (only SM2/SM3, and
    /// SHA-1/SHA-256 where a protocol needs them).
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// A signature did not verify.
    #[error("signature verification failed: {0}")]
    BadSignature(&'static str),
    /// A digest carried by a structure does not match the data (CMS messageDigest, TSP imprint,
    /// ESS certificate hash).
    #[error("digest mismatch: {0}")]
    DigestMismatch(&'static str),
    /// Certificate path validation refused the path; the reason is typed.
    #[error("certificate path rejected: {0}")]
    Path(#[from] PathError),
    /// The caller passed values that cannot be used (bad ID number check digit, empty name,
    /// validity ending before it starts...). Never caused by untrusted bytes.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A certificate-profile field (name, staff id, resident ID number...) was refused: `field`
    /// is the field's name as callers spell it (`resident_id`, `name`...), so an API can say
    /// which one and branch on the resident-ID checksum.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Why (English, no secret values).
        reason: String,
    },
    /// The signing device (`Sm2Signer`) failed.
    #[error("signer failed: {0}")]
    Signer(String),
    /// A state that should be impossible; a bug in this crate.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    /// Shorthand for [`Error::Malformed`].
    pub(crate) fn malformed(what: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Malformed {
            what,
            detail: detail.to_string(),
        }
    }
}

impl From<der::Error> for Error {
    fn from(e: der::Error) -> Self {
        Self::malformed("DER", e)
    }
}

/// Why a certificate path was refused ([`crate::path::validate_path`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// A certificate's notAfter is before the validation time.
    #[error("certificate {subject} expired at {not_after:?}")]
    Expired {
        /// Subject of the expired certificate.
        subject: String,
        /// Its notAfter.
        not_after: SystemTime,
    },
    /// A certificate's notBefore is after the validation time.
    #[error("certificate {subject} not valid before {not_before:?}")]
    NotYetValid {
        /// Subject of the certificate.
        subject: String,
        /// Its notBefore.
        not_before: SystemTime,
    },
    /// A certificate was found revoked by a supplied CRL or OCSP response.
    #[error("certificate {subject} revoked ({reason:?}) at {time:?}")]
    Revoked {
        /// Subject of the revoked certificate.
        subject: String,
        /// Revocation reason, when the CRL entry / OCSP response gives one.
        reason: Option<crate::crl::RevocationReason>,
        /// Revocation time.
        time: SystemTime,
    },
    /// A certificate's key usage / extended key usage / CA flag does not allow its use here.
    #[error("certificate {subject} may not be used for {purpose}")]
    WrongUsage {
        /// Subject of the certificate.
        subject: String,
        /// What it was used for.
        purpose: &'static str,
    },
    /// No issuer for a certificate could be found among the intermediates and anchors.
    #[error("no issuer found for {subject} (issuer {issuer})")]
    BrokenChain {
        /// Certificate whose issuer is missing.
        subject: String,
        /// Issuer name it names.
        issuer: String,
    },
    /// A certificate's signature does not verify with its issuer's key.
    #[error("signature on {subject} does not verify")]
    BadSignature {
        /// Subject of the certificate.
        subject: String,
    },
    /// An issuing certificate's basicConstraints path length is exceeded.
    #[error("path length constraint of {subject} exceeded")]
    PathLengthExceeded {
        /// Subject of the constraining CA.
        subject: String,
    },
    /// The path is longer than the validator allows (loop protection).
    #[error("path longer than {0} certificates")]
    TooLong(usize),
    /// Revocation status was required but no usable CRL or OCSP response covered the certificate.
    #[error("revocation status of {subject} unknown")]
    RevocationUnknown {
        /// Subject of the certificate.
        subject: String,
    },
    /// A certificate carries a critical extension this validator does not understand.
    #[error("certificate {subject} has unknown critical extension {oid}")]
    UnknownCriticalExtension {
        /// Subject of the certificate.
        subject: String,
        /// The extension OID.
        oid: String,
    },
    /// A certificate in the path is not an SM2 certificate signed with SM3withSM2.
    #[error("certificate {subject}: unsupported algorithm")]
    UnsupportedAlgorithm {
        /// Subject of the certificate.
        subject: String,
    },
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
