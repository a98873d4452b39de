//! Certificates from CSRs (staff, patient-event and seal CAs) and revocation, both audited by
//! the API layer.

use std::time::Duration;

use gm_pki::cert::KeyUsageBit;
use gm_pki::crl::RevocationReason;
use gm_pki::csr::ParsedCsr;
use gm_pki::{CertificateParams, ParsedCertificate};

use super::{Pki, blocking, rng, unix_ms, urls_for};
use crate::clock::now_ms;
use crate::error::Error;
use crate::store::Db;
use crate::store::pki::{CertificateRow, RevokeOutcome};

/// Largest CSR accepted (PEM or DER).
pub const MAX_CSR: usize = 16 * 1024;

/// Why an issuance or revocation was refused.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// No such issuing CA.
    #[error("unknown CA {0:?}: use staff, patient or seal")]
    UnknownCa(String),
    /// The CSR does not parse or its signature does not verify.
    #[error("invalid CSR: {0}")]
    InvalidCsr(String),
    /// A parameter is out of range.
    #[error("{0}")]
    Invalid(String),
    /// No certificate with this serial.
    #[error("no certificate with this serial")]
    NotFound,
    /// Already revoked.
    #[error("already revoked")]
    AlreadyRevoked,
    /// A server-side failure.
    #[error(transparent)]
    Server(#[from] Error),
}

const REASONS: [(&str, i64, RevocationReason); 9] = [
    ("unspecified", 0, RevocationReason::Unspecified),
    ("keyCompromise", 1, RevocationReason::KeyCompromise),
    ("cACompromise", 2, RevocationReason::CaCompromise),
    (
        "affiliationChanged",
        3,
        RevocationReason::AffiliationChanged,
    ),
    ("superseded", 4, RevocationReason::Superseded),
    (
        "cessationOfOperation",
        5,
        RevocationReason::CessationOfOperation,
    ),
    ("certificateHold", 6, RevocationReason::CertificateHold),
    (
        "privilegeWithdrawn",
        9,
        RevocationReason::PrivilegeWithdrawn,
    ),
    ("aACompromise", 10, RevocationReason::AaCompromise),
];

/// RFC 5280 reason name → code.
pub fn reason_code(name: &str) -> Option<i64> {
    REASONS.iter().find(|r| r.0 == name).map(|r| r.1)
}

/// Code → RFC 5280 reason name.
pub fn reason_name(code: i64) -> &'static str {
    REASONS
        .iter()
        .find(|r| r.1 == code)
        .map_or("unspecified", |r| r.0)
}

/// Code → gm-pki reason.
pub fn reason_from_code(code: i64) -> RevocationReason {
    REASONS
        .iter()
        .find(|r| r.1 == code)
        .map_or(RevocationReason::Unspecified, |r| r.2)
}

/// Parses a CSR given as PEM text or DER bytes (proof of possession is verified).
pub fn parse_csr(bytes: &[u8]) -> Result<ParsedCsr, PkiError> {
    if bytes.len() > MAX_CSR {
        return Err(PkiError::InvalidCsr("larger than 16 KiB".into()));
    }
    let parsed = match std::str::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN") => ParsedCsr::from_pem(text),
        _ => ParsedCsr::from_der(bytes),
    };
    parsed.map_err(|e| PkiError::InvalidCsr(e.to_string()))
}

impl Pki {
    /// Issues an end-entity certificate from `csr` under CA `ca` (`staff`, `patient`, `seal`),
    /// valid for `validity_days` (patient-event certificates: at most one day).
    pub async fn issue_from_csr(
        &self,
        db: &Db,
        ca: &str,
        csr: &[u8],
        validity_days: u32,
    ) -> Result<ParsedCertificate, PkiError> {
        let profile = match ca {
            "staff" => "staff",
            "patient" => "patient_event",
            "seal" => "seal",
            other => return Err(PkiError::UnknownCa(other.chars().take(32).collect())),
        };
        let max_days = if ca == "patient" { 1 } else { 1825 };
        if validity_days == 0 || validity_days > max_days {
            return Err(PkiError::Invalid(format!(
                "validity_days must be 1..={max_days} for the {ca} CA"
            )));
        }
        let csr = parse_csr(csr)?;
        if csr.subject_string().is_empty() {
            return Err(PkiError::InvalidCsr("the subject is empty".into()));
        }
        let auth = self.must(ca)?;
        let not_before = super::now_seconds();
        let not_after = not_before
            .checked_add(Duration::from_secs(u64::from(validity_days) * 24 * 3600))
            .ok_or_else(|| PkiError::Invalid("validity overflows".into()))?;
        let mut params = CertificateParams::new(
            csr.subject().clone(),
            csr.public_key(),
            not_before,
            not_after,
        );
        params.key_usage = vec![KeyUsageBit::DigitalSignature, KeyUsageBit::NonRepudiation];
        params.ee_basic_constraints = true;
        let urls = urls_for(&self.public_url, ca);
        params.crl_urls = urls.crl;
        params.ocsp_urls = urls.ocsp;
        params.ca_issuers_urls = urls.ca_issuers;
        let signer_auth = auth.clone();
        let cert = blocking(move || {
            gm_pki::cert::issue_certificate(
                &params,
                Some(&signer_auth.cert),
                &signer_auth.signer,
                &mut rng(),
            )
        })
        .await?
        .map_err(Error::from)?;
        db.insert_certificate(
            &CertificateRow {
                issuer: ca.to_owned(),
                serial: cert.serial_hex(),
                subject: cert.subject_string(),
                profile: profile.to_owned(),
                not_before: unix_ms(cert.not_before()),
                not_after: unix_ms(cert.not_after()),
                der: cert.der().to_vec(),
            },
            now_ms(),
        )
        .await?;
        Ok(cert)
    }

    /// Revokes the certificate with `serial` (lowercase hex). Returns the issuing CA.
    pub async fn revoke(&self, db: &Db, serial: &str, reason: i64) -> Result<String, PkiError> {
        if self
            .authority("root")
            .is_some_and(|root| root.cert.serial_hex() == serial)
        {
            return Err(PkiError::Invalid(
                "the root CA certificate cannot be revoked; re-initialise the PKI instead".into(),
            ));
        }
        match db.revoke_certificate(serial, now_ms(), reason).await? {
            RevokeOutcome::Revoked(issuer) => Ok(issuer),
            RevokeOutcome::AlreadyRevoked => Err(PkiError::AlreadyRevoked),
            RevokeOutcome::NotFound => Err(PkiError::NotFound),
        }
    }
}
