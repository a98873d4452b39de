//! Small DER, time and randomness helpers shared by the modules.

use crate::error::{Error, Result};
use const_oid::ObjectIdentifier;
use der::asn1::{GeneralizedTime, OctetString};
use der::{DateTime, Decode, Encode, Reader, SliceReader};
use std::time::SystemTime;
use x509_cert::ext::Extension;
use x509_cert::time::Time;

/// The raw bytes of the first element inside an outer SEQUENCE (the signed part of a
/// Certificate, CertificateList, CertificationRequest, BasicOCSPResponse).
pub(crate) fn first_inner_tlv(der_bytes: &[u8]) -> Result<&[u8]> {
    let mut reader = SliceReader::new(der_bytes)?;
    let outer = der::Header::decode(&mut reader)?;
    if outer.tag() != der::Tag::Sequence {
        return Err(Error::malformed("signed object", "not a SEQUENCE"));
    }
    Ok(reader.tlv_bytes()?)
}

/// Certificate / CRL time: UTCTime before 2050, GeneralizedTime after (RFC 5280 §4.1.2.5).
pub(crate) fn x509_time(t: SystemTime) -> Result<Time> {
    let dt = DateTime::from_system_time(t)
        .map_err(|_| Error::InvalidArgument("time out of range".into()))?;
    Ok(Time::from(dt))
}

/// GeneralizedTime (whole seconds, as DER requires no fraction here).
pub(crate) fn gen_time(t: SystemTime) -> Result<GeneralizedTime> {
    GeneralizedTime::from_system_time(t)
        .map_err(|_| Error::InvalidArgument("time out of range".into()))
}

/// A positive serial number with `bytes` random bytes (top bit cleared, second bit set so the
/// length is fixed): at least 64 random bits for `bytes >= 9`.
pub(crate) fn random_serial<R: rand_core::CryptoRng + ?Sized>(
    rng: &mut R,
    bytes: usize,
) -> Vec<u8> {
    let mut v = vec![0u8; bytes.clamp(9, 20)];
    rng.fill_bytes(&mut v);
    if let Some(first) = v.first_mut() {
        *first = (*first & 0x7f) | 0x40;
    }
    v
}

/// An extension with a DER-encoded value.
pub(crate) fn extension(
    oid: ObjectIdentifier,
    critical: bool,
    value: &impl Encode,
) -> Result<Extension> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A positive INTEGER's magnitude without leading zero bytes (for comparisons).
pub(crate) fn strip_int(bytes: &[u8]) -> &[u8] {
    let mut b = bytes;
    while let [0, rest @ ..] = b {
        if rest.is_empty() {
            break;
        }
        b = rest;
    }
    b
}
