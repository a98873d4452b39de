//! RFC 3161 time-stamp protocol: parse TimeStampReq, answer with a TimeStampResp carrying an
//! SM2-signed token (CMS SignedData over TSTInfo, ESS signingCertificateV2), or a rejection with
//! PKIStatus / PKIFailureInfo. Never panics on a request. Also a parsed, verified "GM/T 0033
//! view" of a token.

use crate::cert::ParsedCertificate;
use crate::cms::{self, HashAlg, SignSpec};
use crate::error::{Error, Result};
use crate::oid;
use crate::signer::Sm2Signer;
use crate::util::{self, gen_time};
use ::cms::content_info::ContentInfo;
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, GeneralizedTime, Int, OctetString, Utf8StringRef};
use der::{Decode, Encode, Sequence};
use spki::AlgorithmIdentifierOwned;
use std::time::SystemTime;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;

/// MessageImprint.
#[derive(Debug, Clone, Sequence)]
pub struct MessageImprint {
    /// Hash algorithm.
    pub hash_algorithm: AlgorithmIdentifierOwned,
    /// Hash value.
    pub hashed_message: OctetString,
}

/// TimeStampReq (RFC 3161 §2.4.1).
#[derive(Debug, Clone, Sequence)]
struct TimeStampReqAsn {
    version: u8,
    message_imprint: MessageImprint,
    #[asn1(optional = "true")]
    req_policy: Option<ObjectIdentifier>,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
    #[asn1(default = "Default::default")]
    cert_req: bool,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    extensions: Option<Vec<Extension>>,
}

/// Accuracy (RFC 3161 §2.4.2).
#[derive(Debug, Clone, Copy, Sequence, Default)]
struct Accuracy {
    #[asn1(optional = "true")]
    seconds: Option<u32>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    millis: Option<u16>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    micros: Option<u16>,
}

/// TSTInfo (RFC 3161 §2.4.2).
#[derive(Debug, Clone, Sequence)]
struct TstInfo {
    version: u8,
    policy: ObjectIdentifier,
    message_imprint: MessageImprint,
    serial_number: Int,
    gen_time: GeneralizedTime,
    #[asn1(optional = "true")]
    accuracy: Option<Accuracy>,
    #[asn1(default = "Default::default")]
    ordering: bool,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    tsa: Option<GeneralName>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    extensions: Option<Vec<Extension>>,
}

/// PKIStatusInfo as decoded from untrusted input.
#[derive(Debug, Clone, Sequence)]
struct PkiStatusInfoIn {
    status: u8,
    #[asn1(optional = "true")]
    status_string: Option<Vec<String>>,
    #[asn1(optional = "true")]
    fail_info: Option<BitString>,
}

#[derive(Debug, Clone, Sequence)]
struct TimeStampRespIn {
    status: PkiStatusInfoIn,
    #[asn1(optional = "true")]
    time_stamp_token: Option<ContentInfo>,
}

/// PKIStatus values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PkiStatus {
    /// granted (0)
    Granted,
    /// grantedWithMods (1)
    GrantedWithMods,
    /// rejection (2)
    Rejection,
    /// waiting (3)
    Waiting,
    /// revocationWarning (4)
    RevocationWarning,
    /// revocationNotification (5)
    RevocationNotification,
}

impl PkiStatus {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Granted,
            1 => Self::GrantedWithMods,
            2 => Self::Rejection,
            3 => Self::Waiting,
            4 => Self::RevocationWarning,
            5 => Self::RevocationNotification,
            _ => return None,
        })
    }
}

/// PKIFailureInfo bits used by a TSA (RFC 3161 §2.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureInfo {
    /// badAlg (0): unrecognized or unsupported algorithm.
    BadAlg,
    /// badRequest (2): transaction not permitted or supported.
    BadRequest,
    /// badDataFormat (5): the data submitted has the wrong format.
    BadDataFormat,
    /// timeNotAvailable (14): the TSA's time source is not available.
    TimeNotAvailable,
    /// unacceptedPolicy (15): the requested TSA policy is not supported.
    UnacceptedPolicy,
    /// unacceptedExtension (16): the requested extension is not supported.
    UnacceptedExtension,
    /// addInfoNotAvailable (17).
    AddInfoNotAvailable,
    /// systemFailure (25): the request cannot be handled due to system failure.
    SystemFailure,
}

impl FailureInfo {
    /// Bit number.
    pub fn bit(self) -> u8 {
        match self {
            Self::BadAlg => 0,
            Self::BadRequest => 2,
            Self::BadDataFormat => 5,
            Self::TimeNotAvailable => 14,
            Self::UnacceptedPolicy => 15,
            Self::UnacceptedExtension => 16,
            Self::AddInfoNotAvailable => 17,
            Self::SystemFailure => 25,
        }
    }
    fn all() -> [Self; 8] {
        [
            Self::BadAlg,
            Self::BadRequest,
            Self::BadDataFormat,
            Self::TimeNotAvailable,
            Self::UnacceptedPolicy,
            Self::UnacceptedExtension,
            Self::AddInfoNotAvailable,
            Self::SystemFailure,
        ]
    }
    /// DER named-bit BIT STRING with only this bit set (trailing zero bits removed).
    fn to_bit_string(self) -> Result<BitString> {
        let bit = usize::from(self.bit());
        let mut bytes = vec![0u8; bit / 8 + 1];
        if let Some(b) = bytes.get_mut(bit / 8) {
            *b = 0x80 >> (bit % 8);
        }
        let unused = u8::try_from(7 - bit % 8).map_err(|_| Error::Internal("bit"))?;
        Ok(BitString::new(unused, bytes)?)
    }
    fn from_bit_string(b: &BitString) -> Vec<Self> {
        let raw = b.raw_bytes();
        Self::all()
            .into_iter()
            .filter(|f| {
                let bit = usize::from(f.bit());
                raw.get(bit / 8)
                    .is_some_and(|byte| byte & (0x80 >> (bit % 8)) != 0)
            })
            .collect()
    }
}

/// A TSA refusal: the failure bit and a human-readable statusString.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// PKIFailureInfo bit.
    pub failure: FailureInfo,
    /// statusString text.
    pub text: String,
}

impl Rejection {
    fn new(failure: FailureInfo, text: impl Into<String>) -> Self {
        Self {
            failure,
            text: text.into(),
        }
    }
}

/// A parsed, acceptable time-stamp request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeStampRequest {
    /// Imprint hash algorithm (SM3 or SHA-256).
    pub imprint_alg: HashAlg,
    /// Imprint value.
    pub imprint: Vec<u8>,
    /// reqPolicy.
    pub policy: Option<ObjectIdentifier>,
    /// Nonce INTEGER bytes (as encoded), echoed in the token.
    pub nonce: Option<Vec<u8>>,
    /// certReq: include the TSA certificate in the token.
    pub cert_req: bool,
}

/// Parse a DER TimeStampReq. Errors are [`Rejection`]s ready to answer with.
pub fn parse_request(der_bytes: &[u8]) -> std::result::Result<TimeStampRequest, Rejection> {
    let req = TimeStampReqAsn::from_der(der_bytes).map_err(|e| {
        Rejection::new(
            FailureInfo::BadDataFormat,
            format!("malformed TimeStampReq: {e}"),
        )
    })?;
    if req.version != 1 {
        return Err(Rejection::new(
            FailureInfo::BadDataFormat,
            "unsupported TimeStampReq version",
        ));
    }
    let alg = &req.message_imprint.hash_algorithm;
    let Some(imprint_alg @ (HashAlg::Sm3 | HashAlg::Sha256)) = HashAlg::from_oid(&alg.oid) else {
        return Err(Rejection::new(
            FailureInfo::BadAlg,
            format!("hash algorithm {} not accepted (SM3 or SHA-256)", alg.oid),
        ));
    };
    if alg.parameters.as_ref().is_some_and(|p| !p.is_null()) {
        return Err(Rejection::new(
            FailureInfo::BadAlg,
            "unexpected hash algorithm parameters",
        ));
    }
    let imprint = req.message_imprint.hashed_message.as_bytes().to_vec();
    if imprint.len() != imprint_alg.output_len() {
        return Err(Rejection::new(
            FailureInfo::BadDataFormat,
            "imprint length does not match its algorithm",
        ));
    }
    if req.extensions.as_ref().is_some_and(|e| !e.is_empty()) {
        return Err(Rejection::new(
            FailureInfo::UnacceptedExtension,
            "request extensions are not supported",
        ));
    }
    Ok(TimeStampRequest {
        imprint_alg,
        imprint,
        policy: req.req_policy,
        nonce: req.nonce.map(|n| n.as_bytes().to_vec()),
        cert_req: req.cert_req,
    })
}

/// Build a DER TimeStampReq (for our own clients and tests).
pub fn build_request(
    imprint_alg: HashAlg,
    imprint: &[u8],
    policy: Option<ObjectIdentifier>,
    nonce: Option<&[u8]>,
    cert_req: bool,
) -> Result<Vec<u8>> {
    let req = TimeStampReqAsn {
        version: 1,
        message_imprint: MessageImprint {
            hash_algorithm: imprint_alg.alg_id(),
            hashed_message: OctetString::new(imprint)?,
        },
        req_policy: policy,
        nonce: nonce.map(Int::new).transpose()?,
        cert_req,
        extensions: None,
    };
    Ok(req.to_der()?)
}

/// What [`Tsa::respond_to`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// DER TimeStampResp (granted or rejection).
    pub response: Vec<u8>,
    /// The token (DER ContentInfo) inside a granted response.
    pub token: Option<Vec<u8>>,
}

impl Answer {
    fn system_failure() -> Self {
        Self {
            response: FALLBACK_SYSTEM_FAILURE.to_vec(),
            token: None,
        }
    }
}

/// A time-stamping authority: certificate (extKeyUsage timeStamping), key, policy, accuracy.
#[derive(Clone, Copy)]
pub struct Tsa<'a> {
    /// TSA certificate.
    pub cert: &'a ParsedCertificate,
    /// CA certificates to include after it when certReq is set (may be empty).
    pub chain: &'a [ParsedCertificate],
    /// TSA key.
    pub signer: &'a dyn Sm2Signer,
    /// TSA policy OID (put in every TSTInfo; requests naming another policy are rejected).
    pub policy: ObjectIdentifier,
    /// Accuracy in seconds (0: omitted).
    pub accuracy_seconds: u32,
}

impl std::fmt::Debug for Tsa<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tsa")
            .field("cert", &self.cert.subject_string())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Tsa<'_> {
    /// Answer a DER request: always returns a DER TimeStampResp, granted with a token or a
    /// rejection. `gen_time` is the trusted time; `serial` a unique positive serial number.
    pub fn respond(&self, request_der: &[u8], gen_time: SystemTime, serial: &[u8]) -> Vec<u8> {
        match parse_request(request_der) {
            Ok(req) => self.respond_to(&req, gen_time, serial).response,
            Err(rej) => {
                rejection_response(&rej).unwrap_or_else(|_| FALLBACK_SYSTEM_FAILURE.to_vec())
            }
        }
    }

    /// Answer an already parsed request: the DER TimeStampResp, plus the token when granted
    /// (so a server can record it without parsing its own response again).
    pub fn respond_to(
        &self,
        req: &TimeStampRequest,
        gen_time: SystemTime,
        serial: &[u8],
    ) -> Answer {
        let outcome = if req.policy.is_some_and(|p| p != self.policy) {
            Err(Rejection::new(
                FailureInfo::UnacceptedPolicy,
                "requested policy is not this TSA's policy",
            ))
        } else if gen_time < self.cert.not_before() || gen_time > self.cert.not_after() {
            Err(Rejection::new(
                FailureInfo::TimeNotAvailable,
                "TSA certificate not valid at this time",
            ))
        } else {
            self.issue_token(req, gen_time, serial)
                .map_err(|e| match e {
                    Error::Signer(_) | Error::Internal(_) => {
                        Rejection::new(FailureInfo::SystemFailure, "time-stamp signing failed")
                    }
                    other => Rejection::new(FailureInfo::SystemFailure, other.to_string()),
                })
        };
        // Encoding our own fixed structures cannot fail in practice; if it does, answer with the
        // smallest valid rejection, written out by hand.
        match outcome {
            Ok(token) => match granted_response(&token) {
                Ok(response) => Answer {
                    response,
                    token: Some(token),
                },
                Err(_) => Answer::system_failure(),
            },
            Err(rej) => Answer {
                response: rejection_response(&rej)
                    .unwrap_or_else(|_| FALLBACK_SYSTEM_FAILURE.to_vec()),
                token: None,
            },
        }
    }

    /// Issue a token (DER ContentInfo) for an accepted request.
    pub fn issue_token(
        &self,
        req: &TimeStampRequest,
        gen_time_at: SystemTime,
        serial: &[u8],
    ) -> Result<Vec<u8>> {
        if let Some(p) = req.policy
            && p != self.policy
        {
            return Err(Error::InvalidArgument(format!(
                "policy {p} is not this TSA's policy"
            )));
        }
        if serial.first().is_none_or(|b| b & 0x80 != 0) {
            return Err(Error::InvalidArgument(
                "serial must be a positive integer".into(),
            ));
        }
        let tst = TstInfo {
            version: 1,
            policy: self.policy,
            message_imprint: MessageImprint {
                hash_algorithm: req.imprint_alg.alg_id(),
                hashed_message: OctetString::new(req.imprint.clone())?,
            },
            serial_number: Int::new(serial)?,
            gen_time: gen_time(gen_time_at)?,
            accuracy: (self.accuracy_seconds > 0).then_some(Accuracy {
                seconds: Some(self.accuracy_seconds),
                millis: None,
                micros: None,
            }),
            ordering: false,
            nonce: req.nonce.as_deref().map(Int::new).transpose()?,
            tsa: Some(GeneralName::DirectoryName(self.cert.subject().clone())),
            extensions: None,
        };
        let content = tst.to_der()?;
        let mut certs = Vec::new();
        if req.cert_req {
            certs.push(self.cert);
            certs.extend(self.chain.iter());
        }
        cms::sign_spec(
            &SignSpec {
                econtent_type: oid::CT_TST_INFO,
                content_type: oid::CMS_SIGNED_DATA,
                content: &content,
                attach: true,
                signer_cert: self.cert,
                certs,
                signing_time: Some(gen_time_at),
            },
            self.signer,
        )
    }
}

/// `TimeStampResp { status { rejection, failInfo systemFailure } }`, written out by hand.
pub const FALLBACK_SYSTEM_FAILURE: [u8; 14] = [
    0x30, 0x0c, 0x30, 0x0a, 0x02, 0x01, 0x02, 0x03, 0x05, 0x06, 0x00, 0x00, 0x00, 0x40,
];

fn granted_response(token: &[u8]) -> Result<Vec<u8>> {
    let status = der::asn1::AnyRef::new(der::Tag::Sequence, &0u8.to_der()?)?.to_der()?;
    let mut body = status;
    body.extend_from_slice(token);
    Ok(der::asn1::AnyRef::new(der::Tag::Sequence, &body)?.to_der()?)
}

/// A TimeStampResp with status rejection, the failure bit and a statusString.
pub fn rejection_response(rej: &Rejection) -> Result<Vec<u8>> {
    let text = if rej.text.is_empty() {
        Vec::new()
    } else {
        Utf8StringRef::new(&rej.text).map_or_else(|_| Ok(Vec::new()), |s| s.to_der())?
    };
    let mut status_body = 2u8.to_der()?;
    if !text.is_empty() {
        status_body.extend(der::asn1::AnyRef::new(der::Tag::Sequence, &text)?.to_der()?);
    }
    status_body.extend(rej.failure.to_bit_string()?.to_der()?);
    let status = der::asn1::AnyRef::new(der::Tag::Sequence, &status_body)?.to_der()?;
    Ok(der::asn1::AnyRef::new(der::Tag::Sequence, &status)?.to_der()?)
}

/// A parsed TimeStampResp.
#[derive(Debug, Clone)]
pub struct ParsedResponse {
    /// PKIStatus.
    pub status: PkiStatus,
    /// statusString entries.
    pub status_text: Vec<String>,
    /// PKIFailureInfo bits set.
    pub failure: Vec<FailureInfo>,
    /// The token (DER ContentInfo), when granted.
    pub token: Option<Vec<u8>>,
}

/// Parse a DER TimeStampResp (the token is not verified here: see [`verify_token`]).
pub fn parse_response(der_bytes: &[u8]) -> Result<ParsedResponse> {
    let r =
        TimeStampRespIn::from_der(der_bytes).map_err(|e| Error::malformed("TimeStampResp", e))?;
    let status = PkiStatus::from_u8(r.status.status)
        .ok_or_else(|| Error::malformed("TimeStampResp", "unknown PKIStatus"))?;
    Ok(ParsedResponse {
        status,
        status_text: r.status.status_string.unwrap_or_default(),
        failure: r
            .status
            .fail_info
            .as_ref()
            .map(FailureInfo::from_bit_string)
            .unwrap_or_default(),
        token: r.time_stamp_token.map(|t| t.to_der()).transpose()?,
    })
}

/// A token as GM/T 0033 presents it: issuer (TSA), time, imprint, serial, TSA chain.
#[derive(Debug, Clone)]
pub struct TimestampTokenView {
    /// TSA certificate subject (or the TSTInfo tsa name when no certificate was carried).
    pub tsa_name: String,
    /// genTime.
    pub gen_time: SystemTime,
    /// Imprint algorithm.
    pub imprint_alg: HashAlg,
    /// Imprint value.
    pub imprint: Vec<u8>,
    /// Serial number (hex).
    pub serial_hex: String,
    /// Policy OID.
    pub policy: ObjectIdentifier,
    /// Nonce bytes, if any.
    pub nonce: Option<Vec<u8>>,
    /// Accuracy in seconds, if given.
    pub accuracy_seconds: Option<u32>,
    /// TSA certificate that signed the token.
    pub tsa_cert: Option<ParsedCertificate>,
    /// All certificates carried in the token (TSA chain).
    pub chain: Vec<ParsedCertificate>,
}

/// Verify a token (DER ContentInfo): CMS signature with the TSA certificate (from the token or
/// `tsa_cert`), messageDigest over TSTInfo, ESS signingCertificateV2 binding, and the TSA
/// certificate's critical timeStamping extKeyUsage. Path validation of the TSA certificate is
/// separate ([`crate::path`]).
pub fn verify_token(
    token_der: &[u8],
    tsa_cert: Option<&ParsedCertificate>,
) -> Result<TimestampTokenView> {
    let dec = cms::decode(token_der)?;
    if dec.sd.encap_content_info.econtent_type != oid::CT_TST_INFO {
        return Err(Error::malformed(
            "time-stamp token",
            "eContentType is not id-ct-TSTInfo",
        ));
    }
    let content = dec
        .sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| Error::malformed("time-stamp token", "no TSTInfo"))?
        .decode_as::<OctetString>()
        .map_err(|e| Error::malformed("time-stamp token", e))?;
    let tst = TstInfo::from_der(content.as_bytes()).map_err(|e| Error::malformed("TSTInfo", e))?;
    let mut certs = cms::certs_of(&dec.sd)?;
    let chain = certs.clone();
    if let Some(c) = tsa_cert {
        certs.push(c.clone());
    }
    let si = dec
        .sd
        .signer_infos
        .0
        .iter()
        .next()
        .ok_or_else(|| Error::malformed("time-stamp token", "no SignerInfo"))?;
    if dec.sd.signer_infos.0.len() != 1 {
        return Err(Error::malformed(
            "time-stamp token",
            "more than one SignerInfo",
        ));
    }
    let raw = dec.raw_signed_attrs.first().and_then(|o| o.as_deref());
    let rep = cms::verify_signer_info(si, raw, content.as_bytes(), oid::CT_TST_INFO, &certs);
    if !rep.digest_ok {
        return Err(Error::DigestMismatch(
            "token messageDigest does not match TSTInfo",
        ));
    }
    if !rep.signature_ok {
        return Err(Error::BadSignature(
            "time-stamp token signature does not verify",
        ));
    }
    if rep.signing_certificate_ok != Some(true) {
        return Err(Error::BadSignature(
            "time-stamp token lacks a matching signingCertificate(V2)",
        ));
    }
    let cert = rep
        .signer_cert
        .ok_or(Error::Internal("verified without certificate"))?;
    let eku_ok = cert
        .extension(oid::EXT_EXT_KEY_USAGE)
        .is_some_and(|(crit, _)| crit)
        && cert
            .ext_key_usage()
            .is_ok_and(|v| v == [oid::KP_TIME_STAMPING]);
    if !eku_ok {
        return Err(Error::Path(crate::PathError::WrongUsage {
            subject: cert.subject_string(),
            purpose: "time stamping",
        }));
    }
    let imprint_alg =
        HashAlg::from_oid(&tst.message_imprint.hash_algorithm.oid).ok_or_else(|| {
            Error::UnsupportedAlgorithm(format!(
                "imprint algorithm {}",
                tst.message_imprint.hash_algorithm.oid
            ))
        })?;
    Ok(TimestampTokenView {
        tsa_name: cert.subject_string(),
        gen_time: tst.gen_time.to_system_time(),
        imprint_alg,
        imprint: tst.message_imprint.hashed_message.as_bytes().to_vec(),
        serial_hex: util::hex(util::strip_int(tst.serial_number.as_bytes())),
        policy: tst.policy,
        nonce: tst.nonce.map(|n| n.as_bytes().to_vec()),
        accuracy_seconds: tst.accuracy.and_then(|a| a.seconds),
        tsa_cert: Some(cert),
        chain,
    })
}

/// Verify a token and that it time-stamps `data` (hashing it with the imprint's algorithm).
pub fn verify_token_for_data(
    token_der: &[u8],
    data: &[u8],
    tsa_cert: Option<&ParsedCertificate>,
) -> Result<TimestampTokenView> {
    let view = verify_token(token_der, tsa_cert)?;
    if view.imprint_alg.digest(data) != view.imprint {
        return Err(Error::DigestMismatch(
            "time-stamp imprint does not match the data",
        ));
    }
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_rejection_is_what_the_encoder_writes() {
        let enc = rejection_response(&Rejection::new(FailureInfo::SystemFailure, "")).unwrap();
        assert_eq!(enc, FALLBACK_SYSTEM_FAILURE);
        let p = parse_response(&FALLBACK_SYSTEM_FAILURE).unwrap();
        assert_eq!(p.status, PkiStatus::Rejection);
        assert_eq!(p.failure, vec![FailureInfo::SystemFailure]);
    }

    #[test]
    fn failure_bits_round_trip() {
        for f in FailureInfo::all() {
            let b = f.to_bit_string().unwrap();
            assert_eq!(FailureInfo::from_bit_string(&b), vec![f]);
        }
    }
}
