//! Where signature time stamps come from: a trait, and an in-process TSA over `gm-pki`.

use crate::error::{Error, Result};
use std::time::SystemTime;

/// Something that returns an RFC 3161 time-stamp token (DER ContentInfo) for an SM3 imprint.
pub trait TimestampAuthority {
    /// Time-stamp `imprint` (SM3 of the signature value, for CAdES-T).
    fn timestamp(&self, imprint_sm3: &[u8; 32]) -> Result<Vec<u8>>;

    /// Time-stamp a SHA-256 `imprint` (of an ECDSA signature value: the P-256 signing
    /// variant, for verifiers without SM3). By default refused.
    fn timestamp_sha256(&self, imprint_sha256: &[u8; 32]) -> Result<Vec<u8>> {
        let _ = imprint_sha256;
        Err(Error::Timestamp(
            "this time-stamp authority takes SM3 imprints only".into(),
        ))
    }
}

/// A TSA in this process (`gm_pki::tsp::Tsa`), with the trusted time and serial passed in.
#[derive(Debug)]
pub struct LocalTsa<'a> {
    /// The TSA.
    pub tsa: gm_pki::tsp::Tsa<'a>,
    /// genTime to put into the token.
    pub time: SystemTime,
    /// Positive serial number (big-endian, first byte < 0x80, non-empty).
    pub serial: Vec<u8>,
}

impl TimestampAuthority for LocalTsa<'_> {
    fn timestamp(&self, imprint_sm3: &[u8; 32]) -> Result<Vec<u8>> {
        let req =
            gm_pki::tsp::build_request(gm_pki::cms::HashAlg::Sm3, imprint_sm3, None, None, true)?;
        let resp = self.tsa.respond(&req, self.time, &self.serial);
        token_from_response(&resp)
    }
}

/// The token of a granted TimeStampResp (as a remote TSA returns it), or why it was refused.
pub fn token_from_response(resp_der: &[u8]) -> Result<Vec<u8>> {
    let parsed = gm_pki::tsp::parse_response(resp_der)?;
    parsed.token.ok_or_else(|| {
        Error::Timestamp(format!(
            "TSA answered {:?} {:?} {}",
            parsed.status,
            parsed.failure,
            parsed.status_text.join("; ")
        ))
    })
}
