//! Detached CMS signatures (`.p7s`) for any file: SM3 digest of the file in messageDigest,
//! SM2 signature, optional CAdES-T time stamp.

use crate::error::Result;
use crate::pdf::sign::SignerIdentity;
use crate::timestamp::TimestampAuthority;
use gm_pki::ParsedCertificate;
use std::time::SystemTime;

/// A detached signature and the SM3 of the file it signs.
#[derive(Debug, Clone)]
pub struct DetachedSignature {
    /// DER CMS SignedData without content.
    pub p7s: Vec<u8>,
    /// SM3 of the original file (also the CMS messageDigest).
    pub sm3: [u8; 32],
}

/// Sign `data` (any file type).
pub fn sign_detached(
    data: &[u8],
    signer: &SignerIdentity<'_>,
    signing_time: SystemTime,
    tsa: Option<&dyn TimestampAuthority>,
) -> Result<DetachedSignature> {
    let opts = gm_pki::cms::SignOptions {
        detached: true,
        signing_time: Some(signing_time),
        ..Default::default()
    };
    let mut p7s = gm_pki::cms::sign(data, signer.cert, signer.chain, signer.key, &opts)?;
    if let Some(t) = tsa {
        let sv = gm_pki::cms::signature_value(&p7s)?;
        let token = t.timestamp(&gm_pki::signer::sm3(&sv))?;
        p7s = gm_pki::cms::add_signature_timestamp(&p7s, &token)?;
    }
    Ok(DetachedSignature {
        p7s,
        sm3: gm_pki::signer::sm3(data),
    })
}

/// What verifying a detached signature found.
#[derive(Debug, Clone)]
pub struct DetachedReport {
    /// SM3 of the data given.
    pub sm3: [u8; 32],
    /// messageDigest equals that SM3.
    pub digest_ok: bool,
    /// SM2 signature verifies.
    pub signature_ok: bool,
    /// Signer certificate.
    pub signer_cert: Option<ParsedCertificate>,
    /// signingTime.
    pub signing_time: Option<SystemTime>,
    /// Time stamp valid (`None`: no time stamp).
    pub timestamp_valid: Option<bool>,
    /// Time-stamp genTime.
    pub timestamp_time: Option<SystemTime>,
    /// Problem, in words.
    pub error: Option<String>,
}

impl DetachedReport {
    /// Digest and signature verify and the time stamp, if present, is valid.
    pub fn ok(&self) -> bool {
        self.digest_ok && self.signature_ok && self.timestamp_valid != Some(false)
    }
}

/// Verify a `.p7s` over `data`.
pub fn verify_detached(data: &[u8], p7s: &[u8]) -> Result<DetachedReport> {
    let rep = gm_pki::cms::verify(p7s, Some(data), &[])?;
    let s = rep.signers.into_iter().next();
    Ok(DetachedReport {
        sm3: gm_pki::signer::sm3(data),
        digest_ok: s.as_ref().is_some_and(|s| s.digest_ok),
        signature_ok: s.as_ref().is_some_and(|s| s.signature_ok),
        signer_cert: s.as_ref().and_then(|s| s.signer_cert.clone()),
        signing_time: s.as_ref().and_then(|s| s.signing_time),
        timestamp_valid: s
            .as_ref()
            .and_then(|s| s.timestamp.as_ref().map(|t| t.valid)),
        timestamp_time: s
            .as_ref()
            .and_then(|s| s.timestamp.as_ref().and_then(|t| t.gen_time)),
        error: s.map_or_else(|| Some("no signer".into()), |s| s.error),
    })
}
