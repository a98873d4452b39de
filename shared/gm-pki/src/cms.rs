//! CMS SignedData (RFC 5652) with SM2/SM3: attached or detached content, signed attributes
//! contentType, messageDigest (SM3), signingTime, signingCertificateV2; CAdES-T signature time
//! stamps as the unsigned attribute id-aa-signatureTimeStampToken. RFC 5652 OIDs by default,
//! GB/T 35275 OIDs (1.2.156.10197.6.1.4.2.x) as an option; verification accepts both.

use crate::cert::ParsedCertificate;
use crate::error::{Error, Result};
use crate::oid;
use crate::signer::{self, Sm2Signer};
use crate::util::{self, x509_time};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{OctetString, SetOfVec};
use der::{Decode, Encode, Header, Reader, Sequence, SliceReader, Tag, TagNumber};
use spki::AlgorithmIdentifierOwned;
use std::time::SystemTime;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

/// Which OIDs the ContentInfo / eContentType use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OidFlavor {
    /// RFC 5652 (1.2.840.113549.1.7.x): what PDF readers and Tongsuo expect.
    #[default]
    Rfc5652,
    /// GB/T 35275 (1.2.156.10197.6.1.4.2.x): what GmSSL and some Chinese verifiers expect.
    GbT35275,
}

impl OidFlavor {
    fn signed_data(self) -> ObjectIdentifier {
        match self {
            Self::Rfc5652 => oid::CMS_SIGNED_DATA,
            Self::GbT35275 => oid::GM_SIGNED_DATA,
        }
    }
    fn data(self) -> ObjectIdentifier {
        match self {
            Self::Rfc5652 => oid::CMS_DATA,
            Self::GbT35275 => oid::GM_DATA,
        }
    }
}

/// Hash algorithms accepted in imprints and digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashAlg {
    /// SM3 (GB/T 32905).
    Sm3,
    /// SHA-256 (accepted in time-stamp imprints from non-GM clients).
    Sha256,
    /// SHA-1 (OCSP CertID only).
    Sha1,
}

impl HashAlg {
    /// The OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sm3 => oid::SM3,
            Self::Sha256 => oid::SHA256,
            Self::Sha1 => oid::SHA1,
        }
    }
    /// From an OID.
    pub fn from_oid(o: &ObjectIdentifier) -> Option<Self> {
        [Self::Sm3, Self::Sha256, Self::Sha1]
            .into_iter()
            .find(|h| h.oid() == *o)
    }
    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sm3 | Self::Sha256 => 32,
            Self::Sha1 => 20,
        }
    }
    /// Hash `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            Self::Sm3 => signer::sm3(data).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
        }
    }
    /// AlgorithmIdentifier with absent parameters.
    pub fn alg_id(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters: None,
        }
    }
}

/// ESSCertIDv2 (RFC 5035).
#[derive(Debug, Clone, Sequence)]
pub(crate) struct EssCertIdV2 {
    #[asn1(optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    pub cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

/// IssuerSerial (RFC 5035).
#[derive(Debug, Clone, Sequence)]
pub(crate) struct IssuerSerial {
    pub issuer: Vec<GeneralName>,
    pub serial_number: SerialNumber,
}

/// SigningCertificateV2 (RFC 5035), policies omitted.
#[derive(Debug, Clone, Sequence)]
pub(crate) struct SigningCertificateV2 {
    pub certs: Vec<EssCertIdV2>,
}

fn attr(oid: ObjectIdentifier, value: der::Any) -> Result<Attribute> {
    let mut values = SetOfVec::new();
    values.insert(value)?;
    Ok(Attribute { oid, values })
}

/// How to sign.
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    /// OID flavour of the output.
    pub flavor: OidFlavor,
    /// Leave the content out (detached signature).
    pub detached: bool,
    /// signingTime attribute; `None` omits it. Pass the time in: the library reads no clock.
    pub signing_time: Option<SystemTime>,
}

/// Everything needed to produce one SignedData.
pub(crate) struct SignSpec<'a> {
    pub econtent_type: ObjectIdentifier,
    pub content_type: ObjectIdentifier,
    pub content: &'a [u8],
    pub attach: bool,
    pub signer_cert: &'a ParsedCertificate,
    pub certs: Vec<&'a ParsedCertificate>,
    pub signing_time: Option<SystemTime>,
}

pub(crate) fn sign_spec(spec: &SignSpec<'_>, signer: &dyn Sm2Signer) -> Result<Vec<u8>> {
    if signer.public_key() != spec.signer_cert.public_key()? {
        return Err(Error::InvalidArgument(
            "signer key does not match the signer certificate".into(),
        ));
    }
    let prepared = prepare_spec(spec, &signer::sm3(spec.content), &[], HashAlg::Sm3)?;
    let signature = signer::sign_der(signer, prepared.to_be_signed())?;
    // Our own signer: no need to verify what it just made (the TSA signs thousands a second).
    prepared.assemble(&signature)
}

/// An extra signed attribute: its OID and the DER of its one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraAttribute {
    /// Attribute type.
    pub oid: ObjectIdentifier,
    /// DER of the single attribute value.
    pub value_der: Vec<u8>,
}

/// A SignedData whose signed attributes are built and wait for the signer's SM2 signature:
/// for keys that sign elsewhere (a crypto device, two-party SM2 on a phone) and for extra
/// signed attributes (a document's original-file hash, a GB/T 38540 seal).
#[derive(Debug, Clone)]
pub struct PreparedSignature {
    attrs: SetOfVec<Attribute>,
    attrs_der: Vec<u8>,
    /// SM2 (SM3 digests, the default) or ECDSA P-256 (SHA-256 digests).
    key: crate::sigalg::SignerKey,
    hash: HashAlg,
    signature_alg: ObjectIdentifier,
    signer_info_sid: IssuerAndSerialNumber,
    econtent_type: ObjectIdentifier,
    content_type: ObjectIdentifier,
    econtent: Option<Vec<u8>>,
    certs: Vec<x509_cert::Certificate>,
}

impl PreparedSignature {
    /// The DER of the signed attributes (a SET OF, RFC 5652 §5.4): what the SM2 key signs,
    /// i.e. e = SM3(Z ‖ these bytes).
    pub fn to_be_signed(&self) -> &[u8] {
        &self.attrs_der
    }

    /// Completes the SignedData with the DER SM2 signature over [`Self::to_be_signed`]; the
    /// signature is verified against the signer certificate first (SM2 ID `distid`, normally
    /// [`signer::DEFAULT_DISTID`]), so a wrong or forged signature is never embedded. For a
    /// [`prepare_detached_p256`] signature: the DER ECDSA signature over SHA-256 of
    /// [`Self::to_be_signed`] (`distid` is not used).
    pub fn finish(self, signature_der: &[u8], distid: &str) -> Result<Vec<u8>> {
        match &self.key {
            crate::sigalg::SignerKey::Sm2(pk) => {
                signer::verify_der(pk, distid, &self.attrs_der, signature_der)?;
            }
            key => crate::sigalg::verify_cms_signature(
                key,
                &AlgorithmIdentifierOwned {
                    oid: self.signature_alg,
                    parameters: None,
                },
                self.hash,
                &self.attrs_der,
                signature_der,
            )?,
        }
        self.assemble(signature_der)
    }

    fn assemble(self, signature_der: &[u8]) -> Result<Vec<u8>> {
        let signer_info = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(self.signer_info_sid),
            digest_alg: self.hash.alg_id(),
            signed_attrs: Some(self.attrs),
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: self.signature_alg,
                parameters: None,
            },
            signature: OctetString::new(signature_der)?,
            unsigned_attrs: None,
        };
        let certs: Vec<CertificateChoices> = self
            .certs
            .into_iter()
            .map(CertificateChoices::Certificate)
            .collect();
        let version = if self.econtent_type == oid::CMS_DATA || self.econtent_type == oid::GM_DATA {
            CmsVersion::V1
        } else {
            CmsVersion::V3
        };
        let sd = SignedData {
            version,
            digest_algorithms: SetOfVec::try_from(vec![self.hash.alg_id()])?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: self.econtent_type,
                econtent: match self.econtent {
                    Some(c) => Some(der::Any::encode_from(&OctetString::new(c)?)?),
                    None => None,
                },
            },
            certificates: if certs.is_empty() {
                None
            } else {
                Some(CertificateSet(SetOfVec::try_from(certs)?))
            },
            crls: None,
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info])?),
        };
        let ci = ContentInfo {
            content_type: self.content_type,
            content: der::Any::encode_from(&sd)?,
        };
        Ok(ci.to_der()?)
    }
}

fn prepare_spec(
    spec: &SignSpec<'_>,
    digest: &[u8; 32],
    extra: &[ExtraAttribute],
    hash: HashAlg,
) -> Result<PreparedSignature> {
    let (key, signature_alg) = match hash {
        HashAlg::Sm3 => (
            crate::sigalg::SignerKey::Sm2(spec.signer_cert.public_key()?),
            oid::SM2_SIGN,
        ),
        HashAlg::Sha256 => match spec.signer_cert.signer_key()? {
            k @ crate::sigalg::SignerKey::P256(_) => (k, oid::ECDSA_WITH_SHA256),
            other => {
                return Err(Error::UnsupportedAlgorithm(format!(
                    "SHA-256 signing needs a P-256 certificate, not {}",
                    other.algorithm_name()
                )));
            }
        },
        HashAlg::Sha1 => {
            return Err(Error::UnsupportedAlgorithm("SHA-1 signatures".into()));
        }
    };
    let tbs = spec.signer_cert.certificate().tbs_certificate();
    let mut attrs = SetOfVec::new();
    attrs.insert(attr(
        oid::ATTR_CONTENT_TYPE,
        der::Any::encode_from(&spec.econtent_type)?,
    )?)?;
    if let Some(t) = spec.signing_time {
        attrs.insert(attr(
            oid::ATTR_SIGNING_TIME,
            der::Any::encode_from(&x509_time(t)?)?,
        )?)?;
    }
    attrs.insert(attr(
        oid::ATTR_MESSAGE_DIGEST,
        der::Any::encode_from(&OctetString::new(digest.to_vec())?)?,
    )?)?;
    let ess = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            hash_algorithm: Some(hash.alg_id()),
            cert_hash: OctetString::new(hash.digest(spec.signer_cert.der()))?,
            issuer_serial: Some(IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(tbs.issuer().clone())],
                serial_number: tbs.serial_number().clone(),
            }),
        }],
    };
    attrs.insert(attr(
        oid::ATTR_SIGNING_CERTIFICATE_V2,
        der::Any::encode_from(&ess)?,
    )?)?;
    for x in extra {
        if attrs.iter().any(|a| a.oid == x.oid) {
            return Err(Error::InvalidArgument(format!(
                "signed attribute {} given twice",
                x.oid
            )));
        }
        let value = der::Any::from_der(&x.value_der)
            .map_err(|e| Error::InvalidArgument(format!("attribute {}: {e}", x.oid)))?;
        attrs.insert(attr(x.oid, value)?)?;
    }
    let attrs_der = attrs.to_der()?;
    Ok(PreparedSignature {
        attrs,
        attrs_der,
        key,
        hash,
        signature_alg,
        signer_info_sid: IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        },
        econtent_type: spec.econtent_type,
        content_type: spec.content_type,
        econtent: spec.attach.then(|| spec.content.to_vec()),
        certs: spec.certs.iter().map(|c| c.certificate().clone()).collect(),
    })
}

/// Builds the signed attributes of a detached SignedData over content whose SM3 digest is
/// `digest_sm3` (contentType, signingTime when `opts` has one, messageDigest,
/// signingCertificateV2, then `extra`); the signer certificate and `chain` go into the
/// SignedData. Sign [`PreparedSignature::to_be_signed`] anywhere, then
/// [`PreparedSignature::finish`].
pub fn prepare_detached(
    digest_sm3: &[u8; 32],
    signer_cert: &ParsedCertificate,
    chain: &[ParsedCertificate],
    opts: &SignOptions,
    extra: &[ExtraAttribute],
) -> Result<PreparedSignature> {
    let mut certs = vec![signer_cert];
    certs.extend(chain.iter());
    prepare_spec(
        &SignSpec {
            econtent_type: opts.flavor.data(),
            content_type: opts.flavor.signed_data(),
            content: &[],
            attach: false,
            signer_cert,
            certs,
            signing_time: opts.signing_time,
        },
        digest_sm3,
        extra,
        HashAlg::Sm3,
    )
}

/// As [`prepare_detached`] for an ECDSA P-256 signer certificate: SHA-256 messageDigest
/// (`digest_sha256`) and signingCertificateV2, signatureAlgorithm ecdsa-with-SHA256. Sign
/// [`PreparedSignature::to_be_signed`] with [`crate::sigalg::P256Signer`], then
/// [`PreparedSignature::finish`].
pub fn prepare_detached_p256(
    digest_sha256: &[u8; 32],
    signer_cert: &ParsedCertificate,
    chain: &[ParsedCertificate],
    opts: &SignOptions,
    extra: &[ExtraAttribute],
) -> Result<PreparedSignature> {
    let mut certs = vec![signer_cert];
    certs.extend(chain.iter());
    prepare_spec(
        &SignSpec {
            econtent_type: opts.flavor.data(),
            content_type: opts.flavor.signed_data(),
            content: &[],
            attach: false,
            signer_cert,
            certs,
            signing_time: opts.signing_time,
        },
        digest_sha256,
        extra,
        HashAlg::Sha256,
    )
}

/// The extra signed attributes of the first SignerInfo (those beyond contentType,
/// signingTime, messageDigest and signingCertificate(V2)), as (OID, DER value).
pub fn extra_signed_attributes(cms_der: &[u8]) -> Result<Vec<ExtraAttribute>> {
    let d = decode(cms_der)?;
    let si =
        d.sd.signer_infos
            .0
            .iter()
            .next()
            .ok_or_else(|| Error::malformed("CMS", "no SignerInfo"))?;
    let standard = [
        oid::ATTR_CONTENT_TYPE,
        oid::ATTR_SIGNING_TIME,
        oid::ATTR_MESSAGE_DIGEST,
        oid::ATTR_SIGNING_CERTIFICATE_V2,
    ];
    let mut out = Vec::new();
    for a in si.signed_attrs.iter().flat_map(|s| s.iter()) {
        if standard.contains(&a.oid) {
            continue;
        }
        if let Some(v) = a.values.iter().next() {
            out.push(ExtraAttribute {
                oid: a.oid,
                value_der: v.to_der()?,
            });
        }
    }
    Ok(out)
}

/// Sign `content` as CMS SignedData (DER ContentInfo). `chain` certificates are included after
/// the signer's certificate.
pub fn sign(
    content: &[u8],
    signer_cert: &ParsedCertificate,
    chain: &[ParsedCertificate],
    signer: &dyn Sm2Signer,
    opts: &SignOptions,
) -> Result<Vec<u8>> {
    let mut certs = vec![signer_cert];
    certs.extend(chain.iter());
    sign_spec(
        &SignSpec {
            econtent_type: opts.flavor.data(),
            content_type: opts.flavor.signed_data(),
            content,
            attach: !opts.detached,
            signer_cert,
            certs,
            signing_time: opts.signing_time,
        },
        signer,
    )
}

/// The parts of a SignedData needed to verify it.
pub(crate) struct Decoded {
    pub flavor: OidFlavor,
    pub sd: SignedData,
    /// Raw `[0] IMPLICIT SignedAttributes` of each SignerInfo, in order (None when absent).
    pub raw_signed_attrs: Vec<Option<Vec<u8>>>,
}

pub(crate) fn decode(cms_der: &[u8]) -> Result<Decoded> {
    let ci = ContentInfo::from_der(cms_der).map_err(|e| Error::malformed("CMS ContentInfo", e))?;
    let flavor = if ci.content_type == oid::CMS_SIGNED_DATA {
        OidFlavor::Rfc5652
    } else if ci.content_type == oid::GM_SIGNED_DATA {
        OidFlavor::GbT35275
    } else {
        return Err(Error::UnsupportedAlgorithm(format!(
            "CMS content type {} (only signedData)",
            ci.content_type
        )));
    };
    let sd_der = ci.content.to_der()?;
    let sd: SignedData =
        SignedData::from_der(&sd_der).map_err(|e| Error::malformed("CMS SignedData", e))?;
    let raw_signed_attrs = raw_signed_attrs(&sd_der)?;
    Ok(Decoded {
        flavor,
        sd,
        raw_signed_attrs,
    })
}

/// Walk SignedData's DER to the original bytes of every SignerInfo's signedAttrs, re-tagged as
/// SET OF (RFC 5652 §5.4: the signature is over the DER of the SET OF, not the [0] tag).
fn raw_signed_attrs(sd_der: &[u8]) -> Result<Vec<Option<Vec<u8>>>> {
    let mut r = SliceReader::new(sd_der)?;
    let _outer = Header::decode(&mut r)?;
    let _version = r.tlv_bytes()?;
    let _digest_algs = r.tlv_bytes()?;
    let _encap = r.tlv_bytes()?;
    let mut out = Vec::new();
    loop {
        let tag = Tag::peek(&r)?;
        if tag == Tag::Set {
            break;
        }
        let _certs_or_crls = r.tlv_bytes()?;
    }
    let _set_hdr = Header::decode(&mut r)?;
    while !r.is_finished() {
        let si = r.tlv_bytes()?;
        let mut sr = SliceReader::new(si)?;
        let _h = Header::decode(&mut sr)?;
        let _v = sr.tlv_bytes()?;
        let _sid = sr.tlv_bytes()?;
        let _dalg = sr.tlv_bytes()?;
        let next = Tag::peek(&sr)?;
        if next
            == (Tag::ContextSpecific {
                constructed: true,
                number: TagNumber(0),
            })
        {
            let raw = sr.tlv_bytes()?;
            let mut v = raw.to_vec();
            if let Some(first) = v.first_mut() {
                *first = 0x31;
            }
            out.push(Some(v));
        } else {
            out.push(None);
        }
    }
    Ok(out)
}

/// Result of checking one SignerInfo's time stamp (CAdES-T).
#[derive(Debug, Clone)]
pub struct TimestampCheck {
    /// Token signature, imprint (over the SignerInfo signature value) and ESS binding all verify.
    pub valid: bool,
    /// genTime of the token, when it parses.
    pub gen_time: Option<SystemTime>,
    /// Why it is not valid.
    pub error: Option<String>,
    /// The token's view.
    pub token: Option<crate::tsp::TimestampTokenView>,
}

/// What verification found for one signer.
#[derive(Debug, Clone)]
pub struct SignerReport {
    /// The signer's certificate (from the CMS or the extra certificates given).
    pub signer_cert: Option<ParsedCertificate>,
    /// signingTime attribute.
    pub signing_time: Option<SystemTime>,
    /// messageDigest equals the SM3 (or SHA-256) of the content.
    pub digest_ok: bool,
    /// The SM2 signature over the signed attributes verifies with the signer certificate.
    pub signature_ok: bool,
    /// signingCertificateV2 present and matching the signer certificate (`None`: absent).
    pub signing_certificate_ok: Option<bool>,
    /// Signature time stamp, when present.
    pub timestamp: Option<TimestampCheck>,
    /// First problem found, in words.
    pub error: Option<String>,
}

impl SignerReport {
    /// Digest and signature verified, ESS binding not contradicted, and a time stamp (if
    /// present) valid. (Path validation of `signer_cert` is separate: [`crate::path`].)
    pub fn ok(&self) -> bool {
        self.digest_ok
            && self.signature_ok
            && self.signing_certificate_ok != Some(false)
            && self.timestamp.as_ref().is_none_or(|t| t.valid)
    }
}

/// Verification report of a SignedData.
#[derive(Debug, Clone)]
pub struct CmsReport {
    /// Which OID flavour the input used.
    pub flavor: OidFlavor,
    /// eContentType.
    pub econtent_type: ObjectIdentifier,
    /// Whether the content was attached.
    pub attached: bool,
    /// The signed content (attached or the detached content given).
    pub content: Vec<u8>,
    /// One report per SignerInfo.
    pub signers: Vec<SignerReport>,
    /// All certificates carried.
    pub certificates: Vec<ParsedCertificate>,
}

impl CmsReport {
    /// At least one signer, and every signer ok.
    pub fn ok(&self) -> bool {
        !self.signers.is_empty() && self.signers.iter().all(SignerReport::ok)
    }
}

pub(crate) fn certs_of(sd: &SignedData) -> Result<Vec<ParsedCertificate>> {
    let mut out = Vec::new();
    if let Some(set) = &sd.certificates {
        for c in set.0.iter() {
            if let CertificateChoices::Certificate(cert) = c {
                out.push(ParsedCertificate::from_der(&cert.to_der()?)?);
            }
        }
    }
    Ok(out)
}

fn find_signer<'a>(
    sid: &SignerIdentifier,
    certs: &'a [ParsedCertificate],
) -> Option<&'a ParsedCertificate> {
    certs.iter().find(|c| match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            c.issuer() == &ias.issuer
                && util::strip_int(c.serial()) == util::strip_int(ias.serial_number.as_bytes())
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            c.subject_key_id().as_deref() == Some(ski.0.as_bytes())
        }
    })
}

/// The messageDigest value inside DER signed attributes (a SET OF Attribute, exactly as
/// signed): what a party that signs [`PreparedSignature::to_be_signed`] it did not build (a
/// phone in two-party signing) checks against the digest of the document it displays.
pub fn signed_attributes_message_digest(der_attrs: &[u8]) -> Result<Vec<u8>> {
    let attrs = SetOfVec::<Attribute>::from_der(der_attrs)
        .map_err(|e| Error::malformed("signed attributes", e))?;
    let n = attrs
        .iter()
        .filter(|a| a.oid == oid::ATTR_MESSAGE_DIGEST)
        .count();
    if n != 1 {
        return Err(Error::malformed(
            "signed attributes",
            "there must be exactly one messageDigest attribute",
        ));
    }
    single_attr(&attrs, oid::ATTR_MESSAGE_DIGEST)
        .and_then(|a| a.decode_as::<OctetString>().ok())
        .map(|m| m.as_bytes().to_vec())
        .ok_or_else(|| {
            Error::malformed("signed attributes", "messageDigest is not an OCTET STRING")
        })
}

fn single_attr(attrs: &SetOfVec<Attribute>, o: ObjectIdentifier) -> Option<&der::Any> {
    attrs
        .iter()
        .find(|a| a.oid == o)
        .and_then(|a| a.values.iter().next())
}

/// Verify one SignerInfo (signature, digest, ESS). `content` is the signed content.
pub(crate) fn verify_signer_info(
    si: &SignerInfo,
    raw_attrs: Option<&[u8]>,
    content: &[u8],
    econtent_type: ObjectIdentifier,
    certs: &[ParsedCertificate],
) -> SignerReport {
    let mut rep = SignerReport {
        signer_cert: None,
        signing_time: None,
        digest_ok: false,
        signature_ok: false,
        signing_certificate_ok: None,
        timestamp: None,
        error: None,
    };
    let Some(cert) = find_signer(&si.sid, certs) else {
        rep.error = Some("signer certificate not found".into());
        return rep;
    };
    rep.signer_cert = Some(cert.clone());
    let pk = match cert.signer_key() {
        Ok(k) => k,
        Err(e) => {
            rep.error = Some(format!("signer certificate key: {e}"));
            return rep;
        }
    };
    let Some(digest_alg) = HashAlg::from_oid(&si.digest_alg.oid).filter(|h| *h != HashAlg::Sha1)
    else {
        rep.error = Some(format!(
            "unsupported digest algorithm {}",
            si.digest_alg.oid
        ));
        return rep;
    };
    let sig = si.signature.as_bytes();
    let check = |msg: &[u8]| {
        crate::sigalg::verify_cms_signature(&pk, &si.signature_algorithm, digest_alg, msg, sig)
    };
    if let Err(e) = crate::sigalg::check_cms_algorithms(&pk, &si.signature_algorithm, digest_alg) {
        rep.error = Some(e.to_string());
        return rep;
    }
    match (&si.signed_attrs, raw_attrs) {
        (Some(attrs), Some(raw)) => {
            let md = single_attr(attrs, oid::ATTR_MESSAGE_DIGEST)
                .and_then(|a| a.decode_as::<OctetString>().ok());
            rep.digest_ok =
                md.is_some_and(|m| m.as_bytes() == digest_alg.digest(content).as_slice());
            let ct = single_attr(attrs, oid::ATTR_CONTENT_TYPE)
                .and_then(|a| a.decode_as::<ObjectIdentifier>().ok());
            if ct != Some(econtent_type) {
                rep.digest_ok = false;
                rep.error.get_or_insert_with(|| {
                    "contentType attribute missing or different from eContentType".into()
                });
            }
            rep.signing_time = single_attr(attrs, oid::ATTR_SIGNING_TIME)
                .and_then(|a| a.decode_as::<Time>().ok())
                .map(|t| t.to_system_time());
            rep.signature_ok = check(raw).is_ok();
            if let Some(v) = single_attr(attrs, oid::ATTR_SIGNING_CERTIFICATE_V2) {
                rep.signing_certificate_ok =
                    Some(v.decode_as::<SigningCertificateV2>().ok().is_some_and(|s| {
                        s.certs.first().is_some_and(|id| {
                            let alg = id
                                .hash_algorithm
                                .as_ref()
                                .map_or(Some(HashAlg::Sha256), |a| HashAlg::from_oid(&a.oid));
                            alg.is_some_and(|h| h.digest(cert.der()) == id.cert_hash.as_bytes())
                        })
                    }));
            }
        }
        (None, _) => {
            // No signed attributes: the signature is directly over the content (GB/T 35275 allows it).
            rep.digest_ok = true;
            rep.signature_ok = check(content).is_ok();
        }
        (Some(_), None) => {
            rep.error = Some("signed attributes could not be located".into());
            return rep;
        }
    }
    if !rep.digest_ok {
        rep.error
            .get_or_insert_with(|| "messageDigest does not match the content".into());
    }
    if !rep.signature_ok {
        rep.error
            .get_or_insert_with(|| "signature does not verify".into());
    }
    if rep.signing_certificate_ok == Some(false) {
        rep.error.get_or_insert_with(|| {
            "signingCertificateV2 does not match the signer certificate".into()
        });
    }
    rep
}

/// Verify a CMS SignedData. `detached_content` must be given when the content is not attached.
/// `extra_certs` are used to find signer certificates the CMS does not carry. Malformed input is
/// an error; verification failures are reported in the [`CmsReport`].
pub fn verify(
    cms_der: &[u8],
    detached_content: Option<&[u8]>,
    extra_certs: &[ParsedCertificate],
) -> Result<CmsReport> {
    let dec = decode(cms_der)?;
    let econtent_type = dec.sd.encap_content_info.econtent_type;
    let attached = dec
        .sd
        .encap_content_info
        .econtent
        .as_ref()
        .map(der::Any::decode_as::<OctetString>)
        .transpose()
        .map_err(|e| Error::malformed("CMS eContent", e))?;
    let content = match (&attached, detached_content) {
        (Some(c), _) => c.as_bytes().to_vec(),
        (None, Some(d)) => d.to_vec(),
        (None, None) => {
            return Err(Error::InvalidArgument(
                "detached signature: content must be supplied".into(),
            ));
        }
    };
    let mut certs = certs_of(&dec.sd)?;
    certs.extend(extra_certs.iter().cloned());
    let mut signers = Vec::new();
    for (i, si) in dec.sd.signer_infos.0.iter().enumerate() {
        let raw = dec.raw_signed_attrs.get(i).and_then(|o| o.as_deref());
        let mut rep = verify_signer_info(si, raw, &content, econtent_type, &certs);
        if let Some(ts_attr) = si
            .unsigned_attrs
            .as_ref()
            .and_then(|u| single_attr(u, oid::ATTR_SIGNATURE_TIMESTAMP))
        {
            rep.timestamp = Some(check_signature_timestamp(
                ts_attr,
                si.signature.as_bytes(),
                extra_certs,
            ));
        }
        signers.push(rep);
    }
    let certificates = certs_of(&dec.sd)?;
    Ok(CmsReport {
        flavor: dec.flavor,
        econtent_type,
        attached: attached.is_some(),
        content,
        signers,
        certificates,
    })
}

fn check_signature_timestamp(
    token: &der::Any,
    signature_value: &[u8],
    extra_certs: &[ParsedCertificate],
) -> TimestampCheck {
    // The TSA certificate is normally in the token (certReq); otherwise look among the extra
    // certificates the caller supplied.
    let res = token.to_der().map_err(Error::from).and_then(|der| {
        let first = crate::tsp::verify_token(&der, None);
        if first.is_ok() {
            return first;
        }
        extra_certs
            .iter()
            .filter(|c| {
                c.ext_key_usage()
                    .is_ok_and(|e| e.contains(&oid::KP_TIME_STAMPING))
            })
            .find_map(|c| crate::tsp::verify_token(&der, Some(c)).ok())
            .map_or(first, Ok)
    });
    match res {
        Ok(view) => {
            let expected = view.imprint_alg.digest(signature_value);
            let ok = expected == view.imprint;
            TimestampCheck {
                valid: ok,
                gen_time: Some(view.gen_time),
                error: if ok {
                    None
                } else {
                    Some("time-stamp imprint is not the hash of the signature value".into())
                },
                token: Some(view),
            }
        }
        Err(e) => TimestampCheck {
            valid: false,
            gen_time: None,
            error: Some(e.to_string()),
            token: None,
        },
    }
}

/// The first SignerInfo's signature value: what a CAdES-T time stamp's imprint covers.
pub fn signature_value(cms_der: &[u8]) -> Result<Vec<u8>> {
    let dec = decode(cms_der)?;
    let si = dec
        .sd
        .signer_infos
        .0
        .iter()
        .next()
        .ok_or_else(|| Error::malformed("CMS SignedData", "no SignerInfo"))?;
    Ok(si.signature.as_bytes().to_vec())
}

/// Add a time-stamp token (DER ContentInfo from a TSA) to the first SignerInfo as the unsigned
/// attribute id-aa-signatureTimeStampToken (CAdES-T). The token's imprint must cover the
/// signature value ([`signature_value`]); this is checked.
pub fn add_signature_timestamp(cms_der: &[u8], token_der: &[u8]) -> Result<Vec<u8>> {
    let ci = ContentInfo::from_der(cms_der).map_err(|e| Error::malformed("CMS ContentInfo", e))?;
    let dec = decode(cms_der)?;
    let mut sd = dec.sd;
    let view = crate::tsp::verify_token(token_der, None)?;
    let mut infos: Vec<SignerInfo> = sd.signer_infos.0.into_vec();
    let first = infos
        .first_mut()
        .ok_or_else(|| Error::malformed("CMS SignedData", "no SignerInfo"))?;
    if view.imprint_alg.digest(first.signature.as_bytes()) != view.imprint {
        return Err(Error::DigestMismatch(
            "time-stamp imprint does not cover this signature",
        ));
    }
    let token_any = der::Any::from_der(token_der)?;
    let mut unsigned = first.unsigned_attrs.take().unwrap_or_default();
    let existing: Vec<Attribute> = unsigned
        .iter()
        .filter(|a| a.oid != oid::ATTR_SIGNATURE_TIMESTAMP)
        .cloned()
        .collect();
    unsigned = SetOfVec::try_from(existing)?;
    unsigned.insert(attr(oid::ATTR_SIGNATURE_TIMESTAMP, token_any)?)?;
    first.unsigned_attrs = Some(unsigned);
    sd.signer_infos = SignerInfos(SetOfVec::try_from(infos)?);
    let out = ContentInfo {
        content_type: ci.content_type,
        content: der::Any::encode_from(&sd)?,
    };
    Ok(out.to_der()?)
}
