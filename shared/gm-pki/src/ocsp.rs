//! OCSP (RFC 6960): parse requests (DER or the base64 GET form), build SM2-signed
//! BasicOCSPResponses (good / revoked / unknown, nonce echoed) and error responses, and parse
//! responses for our own validator.

// `der_derive`'s Choice expansion trips this pedantic lint; nothing in our code does.
#![allow(clippy::unnested_or_patterns)]

use crate::cert::ParsedCertificate;
use crate::cms::HashAlg;
use crate::crl::RevocationReason;
use crate::error::{Error, Result};
use crate::oid;
use crate::signer::{self, Sm2Signer};
use crate::util::{self, first_inner_tlv, gen_time};
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, GeneralizedTime, Null, OctetString};
use der::{Choice, Decode, Encode, Enumerated, Sequence};
use spki::AlgorithmIdentifierOwned;
use std::time::SystemTime;
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

#[derive(Debug, Clone, Sequence, PartialEq, Eq)]
struct CertIdAsn {
    hash_algorithm: AlgorithmIdentifierOwned,
    issuer_name_hash: OctetString,
    issuer_key_hash: OctetString,
    serial_number: SerialNumber,
}

#[derive(Debug, Clone, Sequence)]
struct RequestAsn {
    req_cert: CertIdAsn,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    single_request_extensions: Option<Vec<Extension>>,
}

#[derive(Debug, Clone, Sequence)]
struct TbsRequestAsn {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    version: Option<u8>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    requestor_name: Option<GeneralName>,
    request_list: Vec<RequestAsn>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    request_extensions: Option<Vec<Extension>>,
}

#[derive(Debug, Clone, Sequence)]
struct SignatureAsn {
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    certs: Option<Vec<Certificate>>,
}

#[derive(Debug, Clone, Sequence)]
struct OcspRequestAsn {
    tbs_request: TbsRequestAsn,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    optional_signature: Option<SignatureAsn>,
}

#[derive(Debug, Clone, Sequence)]
struct RevokedInfoAsn {
    revocation_time: GeneralizedTime,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    revocation_reason: Option<CrlReason>,
}

#[derive(Debug, Clone, Choice)]
enum CertStatusAsn {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Good(Null),
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Revoked(RevokedInfoAsn),
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
    Unknown(Null),
}

#[derive(Debug, Clone, Sequence)]
struct SingleResponseAsn {
    cert_id: CertIdAsn,
    cert_status: CertStatusAsn,
    this_update: GeneralizedTime,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    next_update: Option<GeneralizedTime>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    single_extensions: Option<Vec<Extension>>,
}

#[derive(Debug, Clone, Choice)]
enum ResponderIdAsn {
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
    ByName(Name),
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    ByKey(OctetString),
}

#[derive(Debug, Clone, Sequence)]
struct ResponseDataAsn {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    version: Option<u8>,
    responder_id: ResponderIdAsn,
    produced_at: GeneralizedTime,
    responses: Vec<SingleResponseAsn>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    response_extensions: Option<Vec<Extension>>,
}

#[derive(Debug, Clone, Sequence)]
struct BasicOcspResponseAsn {
    tbs_response_data: ResponseDataAsn,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    certs: Option<Vec<Certificate>>,
}

#[derive(Debug, Clone, Sequence)]
struct ResponseBytesAsn {
    response_type: ObjectIdentifier,
    response: OctetString,
}

/// OCSPResponseStatus (RFC 6960 §4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enumerated)]
#[repr(u32)]
#[non_exhaustive]
pub enum ResponseStatus {
    /// Response has valid confirmations.
    Successful = 0,
    /// Illegal confirmation request.
    MalformedRequest = 1,
    /// Internal error in issuer.
    InternalError = 2,
    /// Try again later.
    TryLater = 3,
    /// Must sign the request.
    SigRequired = 5,
    /// Request unauthorized (e.g. a certificate of an issuer we do not serve).
    Unauthorized = 6,
}

#[derive(Debug, Clone, Sequence)]
struct OcspResponseAsn {
    response_status: ResponseStatus,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    response_bytes: Option<ResponseBytesAsn>,
}

/// A CertID: which certificate a request or response is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertId {
    /// Hash algorithm of the two issuer hashes (SHA-1 by default in OpenSSL, SHA-256, SM3).
    pub hash_alg: HashAlg,
    /// Hash of the issuer's DER subject name.
    pub issuer_name_hash: Vec<u8>,
    /// Hash of the issuer's subjectPublicKey BIT STRING value.
    pub issuer_key_hash: Vec<u8>,
    /// Serial number of the certificate (as encoded).
    pub serial: Vec<u8>,
}

impl CertId {
    /// The CertID of `cert` issued by `issuer`.
    pub fn for_cert(
        cert: &ParsedCertificate,
        issuer: &ParsedCertificate,
        hash_alg: HashAlg,
    ) -> Result<Self> {
        let (name_hash, key_hash) = issuer_hashes(issuer, hash_alg)?;
        Ok(Self {
            hash_alg,
            issuer_name_hash: name_hash,
            issuer_key_hash: key_hash,
            serial: cert.serial().to_vec(),
        })
    }

    /// Whether this CertID names `issuer` as the issuing CA.
    pub fn matches_issuer(&self, issuer: &ParsedCertificate) -> bool {
        issuer_hashes(issuer, self.hash_alg)
            .is_ok_and(|(n, k)| n == self.issuer_name_hash && k == self.issuer_key_hash)
    }

    /// Serial number as lower-case hex.
    pub fn serial_hex(&self) -> String {
        util::hex(util::strip_int(&self.serial))
    }

    fn from_asn(a: &CertIdAsn) -> Result<Self> {
        let hash_alg = HashAlg::from_oid(&a.hash_algorithm.oid).ok_or_else(|| {
            Error::UnsupportedAlgorithm(format!("CertID hash {}", a.hash_algorithm.oid))
        })?;
        Ok(Self {
            hash_alg,
            issuer_name_hash: a.issuer_name_hash.as_bytes().to_vec(),
            issuer_key_hash: a.issuer_key_hash.as_bytes().to_vec(),
            serial: a.serial_number.as_bytes().to_vec(),
        })
    }

    fn to_asn(&self) -> Result<CertIdAsn> {
        // RFC 6960 examples and OpenSSL put NULL parameters on SHA-1 / SHA-256.
        let parameters = match self.hash_alg {
            HashAlg::Sm3 => None,
            HashAlg::Sha1 | HashAlg::Sha256 => Some(der::Any::null()),
        };
        Ok(CertIdAsn {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: self.hash_alg.oid(),
                parameters,
            },
            issuer_name_hash: OctetString::new(self.issuer_name_hash.clone())?,
            issuer_key_hash: OctetString::new(self.issuer_key_hash.clone())?,
            serial_number: SerialNumber::new(&self.serial)?,
        })
    }
}

fn issuer_hashes(issuer: &ParsedCertificate, alg: HashAlg) -> Result<(Vec<u8>, Vec<u8>)> {
    let name = issuer.subject().to_der()?;
    let key = issuer
        .certificate()
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes();
    Ok((alg.digest(&name), alg.digest(key)))
}

/// A parsed OCSP request.
#[derive(Debug, Clone)]
pub struct OcspRequest {
    /// The certificates asked about.
    pub cert_ids: Vec<CertId>,
    /// The nonce extension's extnValue, echoed verbatim in the response.
    pub nonce: Option<Vec<u8>>,
    /// Whether the request carried an (unchecked) signature.
    pub signed: bool,
}

/// Parse a DER OCSPRequest (trailing data rejected).
pub fn parse_request(der_bytes: &[u8]) -> Result<OcspRequest> {
    let r = OcspRequestAsn::from_der(der_bytes).map_err(|e| Error::malformed("OCSPRequest", e))?;
    if r.tbs_request.version.is_some_and(|v| v != 0) {
        return Err(Error::malformed("OCSPRequest", "unsupported version"));
    }
    if r.tbs_request.request_list.is_empty() {
        return Err(Error::malformed("OCSPRequest", "empty requestList"));
    }
    let cert_ids = r
        .tbs_request
        .request_list
        .iter()
        .map(|q| CertId::from_asn(&q.req_cert))
        .collect::<Result<Vec<_>>>()?;
    let nonce = r
        .tbs_request
        .request_extensions
        .as_ref()
        .and_then(|exts| exts.iter().find(|e| e.extn_id == oid::OCSP_NONCE))
        .map(|e| e.extn_value.as_bytes().to_vec());
    if nonce
        .as_ref()
        .is_some_and(|n| n.is_empty() || n.len() > 128)
    {
        return Err(Error::malformed("OCSPRequest", "nonce length out of range"));
    }
    Ok(OcspRequest {
        cert_ids,
        nonce,
        signed: r.optional_signature.is_some(),
    })
}

/// Parse the GET form (RFC 6960 appendix A.1): the URL path segment after the responder URL,
/// percent-encoded base64 of the DER request.
pub fn parse_get_request(path_segment: &str) -> Result<OcspRequest> {
    use base64::Engine;
    let decoded = percent_decode(path_segment)?;
    let der_bytes = base64::engine::general_purpose::STANDARD
        .decode(decoded.trim().as_bytes())
        .map_err(|e| Error::malformed("OCSP GET base64", e))?;
    parse_request(&der_bytes)
}

fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or_else(|| Error::malformed("OCSP GET", "truncated %-escape"))?;
            let hex = std::str::from_utf8(hex).map_err(|e| Error::malformed("OCSP GET", e))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|e| Error::malformed("OCSP GET", e))?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|e| Error::malformed("OCSP GET", e))
}

/// Build a DER OCSPRequest (our validator / tests). `nonce` is the raw nonce (wrapped as an
/// OCTET STRING in the extension, RFC 8954).
pub fn build_request(ids: &[CertId], nonce: Option<&[u8]>) -> Result<Vec<u8>> {
    let request_list = ids
        .iter()
        .map(|i| {
            Ok(RequestAsn {
                req_cert: i.to_asn()?,
                single_request_extensions: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let request_extensions = match nonce {
        Some(n) => Some(vec![util_ext(oid::OCSP_NONCE, &OctetString::new(n)?)?]),
        None => None,
    };
    let r = OcspRequestAsn {
        tbs_request: TbsRequestAsn {
            version: None,
            requestor_name: None,
            request_list,
            request_extensions,
        },
        optional_signature: None,
    };
    Ok(r.to_der()?)
}

fn util_ext(o: ObjectIdentifier, v: &impl Encode) -> Result<Extension> {
    crate::util::extension(o, false, v)
}

/// Status of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertStatus {
    /// Not revoked.
    Good,
    /// Revoked at `time`, with an optional reason.
    Revoked {
        /// Revocation time.
        time: SystemTime,
        /// Reason, if known.
        reason: Option<RevocationReason>,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleResponse {
    /// Which certificate.
    pub cert_id: CertId,
    /// Its status.
    pub status: CertStatus,
    /// thisUpdate.
    pub this_update: SystemTime,
    /// nextUpdate.
    pub next_update: Option<SystemTime>,
}

/// An OCSP responder: the issuing CA itself or a delegated OCSP-signing certificate it issued.
#[derive(Clone, Copy)]
pub struct Responder<'a> {
    /// Responder certificate (included in the response).
    pub cert: &'a ParsedCertificate,
    /// Its key.
    pub signer: &'a dyn Sm2Signer,
}

impl std::fmt::Debug for Responder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("cert", &self.cert.subject_string())
            .finish_non_exhaustive()
    }
}

impl Responder<'_> {
    /// A successful, signed response. `nonce` is the request's nonce extnValue (echoed).
    pub fn respond(
        &self,
        responses: &[SingleResponse],
        nonce: Option<&[u8]>,
        produced_at: SystemTime,
    ) -> Result<Vec<u8>> {
        if self.signer.public_key() != self.cert.public_key()? {
            return Err(Error::InvalidArgument(
                "signer key does not match the responder certificate".into(),
            ));
        }
        if responses.is_empty() {
            return Err(Error::InvalidArgument(
                "an OCSP response needs at least one SingleResponse".into(),
            ));
        }
        let mut singles = Vec::with_capacity(responses.len());
        for r in responses {
            let cert_status = match &r.status {
                CertStatus::Good => CertStatusAsn::Good(Null),
                CertStatus::Unknown => CertStatusAsn::Unknown(Null),
                CertStatus::Revoked { time, reason } => CertStatusAsn::Revoked(RevokedInfoAsn {
                    revocation_time: gen_time(*time)?,
                    revocation_reason: reason.map(RevocationReason::to_x509),
                }),
            };
            singles.push(SingleResponseAsn {
                cert_id: r.cert_id.to_asn()?,
                cert_status,
                this_update: gen_time(r.this_update)?,
                next_update: r.next_update.map(gen_time).transpose()?,
                single_extensions: None,
            });
        }
        let response_extensions = match nonce {
            Some(n) => Some(vec![Extension {
                extn_id: oid::OCSP_NONCE,
                critical: false,
                extn_value: OctetString::new(n)?,
            }]),
            None => None,
        };
        let key_hash = HashAlg::Sha1.digest(
            self.cert
                .certificate()
                .tbs_certificate()
                .subject_public_key_info()
                .subject_public_key
                .raw_bytes(),
        );
        let data = ResponseDataAsn {
            version: None,
            responder_id: ResponderIdAsn::ByKey(OctetString::new(key_hash)?),
            produced_at: gen_time(produced_at)?,
            responses: singles,
            response_extensions,
        };
        let tbs = data.to_der()?;
        let sig = signer::sign_der(self.signer, &tbs)?;
        let basic = BasicOcspResponseAsn {
            tbs_response_data: data,
            signature_algorithm: signer::sm3_with_sm2_alg(),
            signature: BitString::from_bytes(&sig)?,
            certs: Some(vec![self.cert.certificate().clone()]),
        };
        let resp = OcspResponseAsn {
            response_status: ResponseStatus::Successful,
            response_bytes: Some(ResponseBytesAsn {
                response_type: oid::OCSP_BASIC,
                response: OctetString::new(basic.to_der()?)?,
            }),
        };
        Ok(resp.to_der()?)
    }
}

impl Responder<'_> {
    /// Answer a DER request in one call, never failing: malformed input gives malformedRequest,
    /// CertIDs naming another issuer give unauthorized, a signing failure gives internalError.
    /// `status_of(serial)` looks a serial number up in the CA database; responses are valid from
    /// `now` to `now + validity`.
    pub fn answer(
        &self,
        request_der: &[u8],
        issuer: &ParsedCertificate,
        now: SystemTime,
        validity: std::time::Duration,
        mut status_of: impl FnMut(&[u8]) -> CertStatus,
    ) -> Vec<u8> {
        let fallback = |s: ResponseStatus| {
            error_response(s).unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, 0x02])
        };
        let Ok(req) = parse_request(request_der) else {
            return fallback(ResponseStatus::MalformedRequest);
        };
        if !req.cert_ids.iter().all(|id| id.matches_issuer(issuer)) {
            return fallback(ResponseStatus::Unauthorized);
        }
        let next = now.checked_add(validity);
        let singles: Vec<SingleResponse> = req
            .cert_ids
            .into_iter()
            .map(|id| {
                let status = status_of(util::strip_int(&id.serial));
                SingleResponse {
                    cert_id: id,
                    status,
                    this_update: now,
                    next_update: next,
                }
            })
            .collect();
        self.respond(&singles, req.nonce.as_deref(), now)
            .unwrap_or_else(|_| fallback(ResponseStatus::InternalError))
    }
}

/// An unsigned error response (malformedRequest, internalError, tryLater, sigRequired,
/// unauthorized). `Successful` is refused: successful responses must be signed.
pub fn error_response(status: ResponseStatus) -> Result<Vec<u8>> {
    if status == ResponseStatus::Successful {
        return Err(Error::InvalidArgument(
            "successful responses must carry a signed BasicOCSPResponse".into(),
        ));
    }
    Ok(OcspResponseAsn {
        response_status: status,
        response_bytes: None,
    }
    .to_der()?)
}

/// A parsed OCSP response.
#[derive(Debug, Clone)]
pub struct ParsedOcspResponse {
    /// responseStatus.
    pub status: ResponseStatus,
    /// SingleResponses (empty unless successful).
    pub responses: Vec<SingleResponse>,
    /// Nonce extnValue, if any.
    pub nonce: Option<Vec<u8>>,
    /// producedAt.
    pub produced_at: Option<SystemTime>,
    /// Certificates carried.
    pub certs: Vec<ParsedCertificate>,
    basic_der: Vec<u8>,
    signature_algorithm: Option<AlgorithmIdentifierOwned>,
    signature: Vec<u8>,
    responder_key_hash: Option<Vec<u8>>,
    responder_name: Option<Name>,
}

/// Parse a DER OCSPResponse (signature not checked: see [`ParsedOcspResponse::verify`]).
pub fn parse_response(der_bytes: &[u8]) -> Result<ParsedOcspResponse> {
    let r =
        OcspResponseAsn::from_der(der_bytes).map_err(|e| Error::malformed("OCSPResponse", e))?;
    let mut out = ParsedOcspResponse {
        status: r.response_status,
        responses: Vec::new(),
        nonce: None,
        produced_at: None,
        certs: Vec::new(),
        basic_der: Vec::new(),
        signature_algorithm: None,
        signature: Vec::new(),
        responder_key_hash: None,
        responder_name: None,
    };
    let Some(bytes) = r.response_bytes else {
        if out.status == ResponseStatus::Successful {
            return Err(Error::malformed(
                "OCSPResponse",
                "successful without responseBytes",
            ));
        }
        return Ok(out);
    };
    if bytes.response_type != oid::OCSP_BASIC {
        return Err(Error::UnsupportedAlgorithm(format!(
            "OCSP response type {}",
            bytes.response_type
        )));
    }
    let basic_der = bytes.response.as_bytes();
    let basic = BasicOcspResponseAsn::from_der(basic_der)
        .map_err(|e| Error::malformed("BasicOCSPResponse", e))?;
    out.signature_algorithm = Some(basic.signature_algorithm.clone());
    for s in &basic.tbs_response_data.responses {
        let status = match &s.cert_status {
            CertStatusAsn::Good(_) => CertStatus::Good,
            CertStatusAsn::Unknown(_) => CertStatus::Unknown,
            CertStatusAsn::Revoked(ri) => CertStatus::Revoked {
                time: ri.revocation_time.to_system_time(),
                reason: ri.revocation_reason.map(RevocationReason::from_x509),
            },
        };
        out.responses.push(SingleResponse {
            cert_id: CertId::from_asn(&s.cert_id)?,
            status,
            this_update: s.this_update.to_system_time(),
            next_update: s.next_update.map(|t| t.to_system_time()),
        });
    }
    out.nonce = basic
        .tbs_response_data
        .response_extensions
        .as_ref()
        .and_then(|e| e.iter().find(|x| x.extn_id == oid::OCSP_NONCE))
        .map(|e| e.extn_value.as_bytes().to_vec());
    out.produced_at = Some(basic.tbs_response_data.produced_at.to_system_time());
    for c in basic.certs.iter().flatten() {
        out.certs.push(ParsedCertificate::from_der(&c.to_der()?)?);
    }
    match &basic.tbs_response_data.responder_id {
        ResponderIdAsn::ByKey(k) => out.responder_key_hash = Some(k.as_bytes().to_vec()),
        ResponderIdAsn::ByName(n) => out.responder_name = Some(n.clone()),
    }
    out.signature = basic
        .signature
        .as_bytes()
        .ok_or(Error::BadSignature("OCSP signature has unused bits"))?
        .to_vec();
    out.basic_der = basic_der.to_vec();
    Ok(out)
}

impl ParsedOcspResponse {
    /// Verify the response signature for certificates issued by `issuer`: signed either by the
    /// issuer itself or by a carried certificate that `issuer` issued with extKeyUsage
    /// OCSPSigning (RFC 6960 §4.2.2.2). Returns the signing certificate.
    pub fn verify(&self, issuer: &ParsedCertificate) -> Result<ParsedCertificate> {
        if self.status != ResponseStatus::Successful {
            return Err(Error::InvalidArgument(
                "only successful responses are signed".into(),
            ));
        }
        let tbs = first_inner_tlv(&self.basic_der)?;
        let alg = self
            .signature_algorithm
            .as_ref()
            .ok_or(Error::BadSignature("OCSP response without a signature"))?;
        let mut candidates = vec![issuer.clone()];
        candidates.extend(self.certs.iter().cloned());
        for c in candidates {
            if !self.responder_matches(&c) {
                continue;
            }
            let Ok(pk) = c.signer_key() else { continue };
            crate::sigalg::verify_x509_signature(&pk, alg, tbs, &self.signature)?;
            if c.der() == issuer.der() {
                return Ok(c);
            }
            if !c.issuer_matches(issuer) || c.verify_signature_by(&issuer.signer_key()?).is_err() {
                return Err(Error::BadSignature(
                    "OCSP responder certificate not issued by the CA",
                ));
            }
            if !c.ext_key_usage()?.contains(&oid::KP_OCSP_SIGNING) {
                return Err(Error::Path(crate::PathError::WrongUsage {
                    subject: c.subject_string(),
                    purpose: "OCSP signing",
                }));
            }
            return Ok(c);
        }
        Err(Error::BadSignature(
            "no certificate matches the OCSP responder id",
        ))
    }

    fn responder_matches(&self, c: &ParsedCertificate) -> bool {
        if let Some(h) = &self.responder_key_hash {
            return &HashAlg::Sha1.digest(
                c.certificate()
                    .tbs_certificate()
                    .subject_public_key_info()
                    .subject_public_key
                    .raw_bytes(),
            ) == h;
        }
        self.responder_name.as_ref() == Some(c.subject())
    }

    /// The answer about `cert` (issued by `issuer`), if the response has one.
    pub fn status_for(
        &self,
        cert: &ParsedCertificate,
        issuer: &ParsedCertificate,
    ) -> Option<&SingleResponse> {
        self.responses.iter().find(|r| {
            r.cert_id.matches_issuer(issuer)
                && util::strip_int(&r.cert_id.serial) == util::strip_int(cert.serial())
        })
    }
}
