//! Certificate path validation (after RFC 5280 §6, simplified to what a hospital PKI needs):
//! chain building from trust anchors and intermediates, signatures, validity at a given time,
//! basic constraints and path length, key usage / extended key usage for the purpose,
//! unknown critical extensions, and revocation by supplied CRLs and OCSP responses.
//! Every refusal is a typed [`PathError`]. The time is a parameter: nothing reads the clock.

use crate::cert::{KeyUsageBit, ParsedCertificate};
use crate::crl::ParsedCrl;
use crate::error::PathError;
use crate::ocsp::{CertStatus, ParsedOcspResponse};
use crate::oid;
use std::time::SystemTime;

/// What the end-entity certificate is going to be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Purpose {
    /// No usage check on the leaf.
    Any,
    /// Document / data signatures: keyUsage digitalSignature or nonRepudiation.
    DocumentSigning,
    /// RFC 3161 time stamps: extKeyUsage exactly timeStamping, critical.
    TimeStamping,
    /// OCSP responses: extKeyUsage OCSPSigning.
    OcspSigning,
    /// TLS / device client authentication: extKeyUsage clientAuth.
    ClientAuth,
    /// Issuing certificates or CRLs: a CA with keyCertSign.
    CertSigning,
}

impl Purpose {
    fn name(self) -> &'static str {
        match self {
            Self::Any => "any purpose",
            Self::DocumentSigning => "document signing",
            Self::TimeStamping => "time stamping",
            Self::OcspSigning => "OCSP signing",
            Self::ClientAuth => "client authentication",
            Self::CertSigning => "certificate signing",
        }
    }
}

/// Revocation information supplied by the caller (fetched elsewhere: the library does no I/O).
#[derive(Debug, Clone, Copy, Default)]
pub struct Revocation<'a> {
    /// CRLs (used when issued and signed by a certificate's issuer and current at the time).
    pub crls: &'a [ParsedCrl],
    /// OCSP responses (used when they verify for the certificate's issuer and are current).
    pub ocsp: &'a [ParsedOcspResponse],
    /// Refuse a certificate whose status no CRL or OCSP response covers.
    pub require: bool,
}

/// Validation parameters.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The time at which the path must be valid (e.g. now, or a trusted signing time).
    pub time: SystemTime,
    /// Leaf purpose.
    pub purpose: Purpose,
    /// Revocation information.
    pub revocation: Revocation<'a>,
    /// Longest path accepted (certificates, anchor included).
    pub max_len: usize,
}

impl<'a> Options<'a> {
    /// Defaults: no revocation information, max 8 certificates.
    pub fn new(time: SystemTime, purpose: Purpose) -> Self {
        Self {
            time,
            purpose,
            revocation: Revocation::default(),
            max_len: 8,
        }
    }
    /// With revocation information.
    #[must_use]
    pub fn with_revocation(mut self, revocation: Revocation<'a>) -> Self {
        self.revocation = revocation;
        self
    }
}

/// A validated path, leaf first, trust anchor last.
#[derive(Debug, Clone)]
pub struct ValidatedPath {
    /// The certificates.
    pub chain: Vec<ParsedCertificate>,
}

const KNOWN_CRITICAL: [const_oid::ObjectIdentifier; 7] = [
    oid::EXT_BASIC_CONSTRAINTS,
    oid::EXT_KEY_USAGE,
    oid::EXT_EXT_KEY_USAGE,
    oid::EXT_SUBJECT_ALT_NAME,
    oid::EXT_CERTIFICATE_POLICIES,
    oid::EXT_SUBJECT_KEY_ID,
    oid::EXT_AUTHORITY_KEY_ID,
];

/// Build and validate a path from `leaf` to one of `anchors`.
pub fn validate_path(
    leaf: &ParsedCertificate,
    intermediates: &[ParsedCertificate],
    anchors: &[ParsedCertificate],
    opts: &Options<'_>,
) -> Result<ValidatedPath, PathError> {
    let chain = build_chain(leaf, intermediates, anchors, opts.max_len)?;
    for c in &chain {
        check_cert(c, opts.time)?;
    }
    // Issuers: CA flag, keyCertSign, path length.
    for (i, issuer) in chain.iter().enumerate().skip(1) {
        let subject = issuer.subject_string();
        match issuer.basic_constraints() {
            Ok(Some((true, path_len))) => {
                let below = i.saturating_sub(1);
                if path_len.is_some_and(|p| below > usize::from(p)) {
                    return Err(PathError::PathLengthExceeded { subject });
                }
            }
            _ => {
                return Err(PathError::WrongUsage {
                    subject,
                    purpose: "certificate signing (not a CA)",
                });
            }
        }
        if !issuer.allows_key_usage(KeyUsageBit::KeyCertSign) {
            return Err(PathError::WrongUsage {
                subject,
                purpose: "certificate signing (keyUsage)",
            });
        }
    }
    check_purpose(leaf, opts.purpose)?;
    // Revocation of every certificate below the anchor.
    for pair in chain.windows(2) {
        if let [cert, issuer] = pair {
            check_revocation(cert, issuer, &opts.revocation, opts.time)?;
        }
    }
    Ok(ValidatedPath { chain })
}

fn build_chain(
    leaf: &ParsedCertificate,
    intermediates: &[ParsedCertificate],
    anchors: &[ParsedCertificate],
    max_len: usize,
) -> Result<Vec<ParsedCertificate>, PathError> {
    let mut chain = vec![leaf.clone()];
    loop {
        let Some(current) = chain.last() else {
            return Err(PathError::TooLong(0));
        };
        if anchors.iter().any(|a| a.der() == current.der()) {
            return Ok(chain);
        }
        if chain.len() >= max_len {
            return Err(PathError::TooLong(max_len));
        }
        let candidates: Vec<&ParsedCertificate> = anchors
            .iter()
            .chain(intermediates.iter())
            .filter(|c| current.issuer_matches(c) && !chain.iter().any(|x| x.der() == c.der()))
            .collect();
        if candidates.is_empty() {
            return Err(PathError::BrokenChain {
                subject: current.subject_string(),
                issuer: crate::name::display_name(current.issuer()),
            });
        }
        let subject = current.subject_string();
        if current.signer_key().is_err() {
            return Err(PathError::UnsupportedAlgorithm { subject });
        }
        let next = candidates.into_iter().find(|c| {
            c.signer_key()
                .is_ok_and(|pk| current.verify_signature_by(&pk).is_ok())
        });
        match next {
            Some(n) => chain.push(n.clone()),
            None => return Err(PathError::BadSignature { subject }),
        }
    }
}

fn check_cert(c: &ParsedCertificate, time: SystemTime) -> Result<(), PathError> {
    let subject = c.subject_string();
    if time < c.not_before() {
        return Err(PathError::NotYetValid {
            subject,
            not_before: c.not_before(),
        });
    }
    if time > c.not_after() {
        return Err(PathError::Expired {
            subject,
            not_after: c.not_after(),
        });
    }
    if c.signer_key().is_err() {
        return Err(PathError::UnsupportedAlgorithm { subject });
    }
    for e in c.extensions() {
        if e.critical && !KNOWN_CRITICAL.contains(&e.extn_id) {
            return Err(PathError::UnknownCriticalExtension {
                subject,
                oid: e.extn_id.to_string(),
            });
        }
    }
    Ok(())
}

fn check_purpose(leaf: &ParsedCertificate, purpose: Purpose) -> Result<(), PathError> {
    let eku = leaf.ext_key_usage().unwrap_or_default();
    let ok = match purpose {
        Purpose::Any => true,
        Purpose::DocumentSigning => {
            !leaf.is_ca()
                && (leaf.allows_key_usage(KeyUsageBit::NonRepudiation)
                    || leaf.allows_key_usage(KeyUsageBit::DigitalSignature))
        }
        Purpose::TimeStamping => {
            eku == [oid::KP_TIME_STAMPING]
                && leaf
                    .extension(oid::EXT_EXT_KEY_USAGE)
                    .is_some_and(|(critical, _)| critical)
                && leaf.allows_key_usage(KeyUsageBit::DigitalSignature)
        }
        Purpose::OcspSigning => {
            eku.contains(&oid::KP_OCSP_SIGNING)
                && leaf.allows_key_usage(KeyUsageBit::DigitalSignature)
        }
        Purpose::ClientAuth => {
            eku.contains(&oid::KP_CLIENT_AUTH)
                && leaf.allows_key_usage(KeyUsageBit::DigitalSignature)
        }
        Purpose::CertSigning => leaf.is_ca() && leaf.allows_key_usage(KeyUsageBit::KeyCertSign),
    };
    if ok {
        Ok(())
    } else {
        Err(PathError::WrongUsage {
            subject: leaf.subject_string(),
            purpose: purpose.name(),
        })
    }
}

fn check_revocation(
    cert: &ParsedCertificate,
    issuer: &ParsedCertificate,
    rev: &Revocation<'_>,
    time: SystemTime,
) -> Result<(), PathError> {
    let mut covered = false;
    let Ok(issuer_key) = issuer.signer_key() else {
        return Err(PathError::UnsupportedAlgorithm {
            subject: issuer.subject_string(),
        });
    };
    for crl in rev.crls {
        if crl.issuer() != issuer.subject() || crl.verify_signature_by(&issuer_key).is_err() {
            continue;
        }
        if crl.this_update() > time || crl.next_update().is_some_and(|n| n < time) {
            continue;
        }
        match crl.find(cert.serial()) {
            Ok(Some(entry)) => {
                return Err(PathError::Revoked {
                    subject: cert.subject_string(),
                    reason: entry.reason,
                    time: entry.time,
                });
            }
            Ok(None) => covered = true,
            Err(_) => {}
        }
    }
    for resp in rev.ocsp {
        if resp.verify(issuer).is_err() {
            continue;
        }
        let Some(single) = resp.status_for(cert, issuer) else {
            continue;
        };
        if single.this_update > time || single.next_update.is_some_and(|n| n < time) {
            continue;
        }
        match &single.status {
            CertStatus::Revoked { time: t, reason } => {
                return Err(PathError::Revoked {
                    subject: cert.subject_string(),
                    reason: *reason,
                    time: *t,
                });
            }
            CertStatus::Good => covered = true,
            CertStatus::Unknown => {}
        }
    }
    if rev.require && !covered {
        return Err(PathError::RevocationUnknown {
            subject: cert.subject_string(),
        });
    }
    Ok(())
}
