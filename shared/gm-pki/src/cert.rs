//! X.509 v3 certificates with SM2 keys signed with SM3withSM2: issuance and parsing.

use crate::error::{Error, Result};
use crate::name::{display_name, name_attr};
use crate::oid;
use crate::signer::{self, Sm2Signer};
use crate::util::{self, extension, first_inner_tlv, x509_time};
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, Ia5String, OctetString, Utf8StringRef};
use der::{Decode, Encode, Sequence};
use sm2::PublicKey;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::time::SystemTime;
use x509_cert::Certificate;
use x509_cert::certificate::Version;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

pub use x509_cert::ext::pkix::KeyUsages as KeyUsageBit;

/// Everything a certificate says except the issuer (which comes from the issuing certificate).
/// The [`crate::profile`] functions fill this for each of our certificate kinds.
#[derive(Debug, Clone)]
pub struct CertificateParams {
    /// Subject name.
    pub subject: Name,
    /// Subject's SM2 public key.
    pub public_key: PublicKey,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// Serial number (positive, big-endian). `None`: 16 random bytes (>= 120 random bits).
    pub serial: Option<Vec<u8>>,
    /// `Some(path_len)` makes a CA certificate (basicConstraints cA=TRUE, critical);
    /// `None` an end-entity certificate (basicConstraints omitted... see `ee_basic_constraints`).
    pub ca: Option<Option<u8>>,
    /// Emit `basicConstraints cA=FALSE` (non-critical) on end-entity certificates.
    pub ee_basic_constraints: bool,
    /// keyUsage bits (critical). Empty: no keyUsage extension.
    pub key_usage: Vec<KeyUsages>,
    /// extKeyUsage purposes. Empty: no extension.
    pub ext_key_usage: Vec<ObjectIdentifier>,
    /// Mark extKeyUsage critical (RFC 3161 requires it for TSA certificates).
    pub ext_key_usage_critical: bool,
    /// CRL distribution point URLs.
    pub crl_urls: Vec<String>,
    /// AIA OCSP responder URLs.
    pub ocsp_urls: Vec<String>,
    /// AIA caIssuers URLs.
    pub ca_issuers_urls: Vec<String>,
    /// Further extensions (GM/T 0015 identity codes, licence numbers, OCSP no-check...).
    pub extra_extensions: Vec<Extension>,
}

impl CertificateParams {
    /// Minimal end-entity parameters; profiles add the rest.
    pub fn new(
        subject: Name,
        public_key: PublicKey,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Self {
        Self {
            subject,
            public_key,
            not_before,
            not_after,
            serial: None,
            ca: None,
            ee_basic_constraints: false,
            key_usage: Vec::new(),
            ext_key_usage: Vec::new(),
            ext_key_usage_critical: false,
            crl_urls: Vec::new(),
            ocsp_urls: Vec::new(),
            ca_issuers_urls: Vec::new(),
            extra_extensions: Vec::new(),
        }
    }

    /// Add an extension whose value is a UTF8String (licence numbers and similar).
    pub fn add_utf8_extension(&mut self, oid: ObjectIdentifier, value: &str) -> Result<()> {
        let ext = extension(oid, false, &Utf8StringRef::new(value)?)?;
        self.extra_extensions.push(ext);
        Ok(())
    }

    /// Add an extension whose value is a PrintableString (GM/T 0015 identity codes).
    pub fn add_printable_extension(&mut self, oid: ObjectIdentifier, value: &str) -> Result<()> {
        let v = der::asn1::PrintableStringRef::new(value).map_err(|_| {
            Error::InvalidArgument(format!("{oid}: value is not a PrintableString"))
        })?;
        self.extra_extensions.push(extension(oid, false, &v)?);
        Ok(())
    }
}

/// TBSCertificate as we write it (RFC 5280 §4.1), with x509-cert's field types.
#[derive(Sequence)]
struct TbsOut {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: Version,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<Vec<Extension>>,
}

/// `SEQUENCE { tbs, signatureAlgorithm, signatureValue }`: the common shape of signed objects.
#[derive(Sequence)]
pub(crate) struct SignedOut<'a> {
    pub tbs: der::asn1::AnyRef<'a>,
    pub alg: AlgorithmIdentifierOwned,
    pub sig: BitString,
}

/// Sign DER `tbs` with `signer` and wrap it as `SEQUENCE { tbs, SM3withSM2, BIT STRING }`.
pub(crate) fn sign_and_wrap(tbs: &[u8], signer: &dyn Sm2Signer) -> Result<Vec<u8>> {
    wrap_signed(tbs, &signer::sign_der(signer, tbs)?)
}

/// Wraps DER `tbs` and a DER SM2 signature over it (made elsewhere, e.g. by two parties) as
/// `SEQUENCE { tbs, SM3withSM2, BIT STRING }`.
pub(crate) fn wrap_signed(tbs: &[u8], sig: &[u8]) -> Result<Vec<u8>> {
    let out = SignedOut {
        tbs: der::asn1::AnyRef::try_from(tbs)?,
        alg: signer::sm3_with_sm2_alg(),
        sig: BitString::from_bytes(sig)?,
    };
    Ok(out.to_der()?)
}

/// Key identifier: the first 20 bytes of SM3 over the subjectPublicKey bits (RFC 5280 §4.2.1.2
/// method 1, with SM3 in place of SHA-1).
pub fn key_identifier(public_key: &PublicKey) -> Result<Vec<u8>> {
    let spki = signer::spki_for(public_key)?;
    let h = signer::sm3(spki.subject_public_key.raw_bytes());
    Ok(h.get(..20).unwrap_or(&h).to_vec())
}

fn uri(s: &str) -> Result<GeneralName> {
    Ok(GeneralName::UniformResourceIdentifier(
        Ia5String::new(s).map_err(|_| Error::InvalidArgument(format!("URL {s:?} is not IA5")))?,
    ))
}

/// Issue a certificate. `issuer = None` makes a self-signed certificate (the signer's public key
/// must be `params.public_key`). `rng` is used for the serial number only.
pub fn issue_certificate<R: rand_core::CryptoRng + ?Sized>(
    params: &CertificateParams,
    issuer: Option<&ParsedCertificate>,
    signer: &dyn Sm2Signer,
    rng: &mut R,
) -> Result<ParsedCertificate> {
    if params.not_after <= params.not_before {
        return Err(Error::InvalidArgument(
            "notAfter must be after notBefore".into(),
        ));
    }
    let issuer_key = match issuer {
        Some(i) => i.public_key()?,
        None => params.public_key,
    };
    if signer.public_key() != issuer_key {
        return Err(Error::InvalidArgument(
            "signer key does not match the issuer certificate".into(),
        ));
    }
    let serial_bytes = match &params.serial {
        Some(s) => {
            if s.first().is_none_or(|b| *b & 0x80 != 0)
                || util::strip_int(s).iter().all(|b| *b == 0)
            {
                return Err(Error::InvalidArgument(
                    "serial must be a positive integer".into(),
                ));
            }
            s.clone()
        }
        None => util::random_serial(rng, 16),
    };
    let serial_number = SerialNumber::new(&serial_bytes)?;
    let issuer_name = issuer.map_or_else(|| params.subject.clone(), |i| i.subject().clone());

    let mut exts = Vec::new();
    if let Some(path_len) = params.ca {
        exts.push(extension(
            oid::EXT_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca: true,
                path_len_constraint: path_len,
            },
        )?);
    } else if params.ee_basic_constraints {
        exts.push(extension(
            oid::EXT_BASIC_CONSTRAINTS,
            false,
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
        )?);
    }
    if !params.key_usage.is_empty() {
        let mut flags = der::flagset::FlagSet::<KeyUsages>::default();
        for k in &params.key_usage {
            flags |= *k;
        }
        exts.push(extension(oid::EXT_KEY_USAGE, true, &KeyUsage(flags))?);
    }
    if !params.ext_key_usage.is_empty() {
        exts.push(extension(
            oid::EXT_EXT_KEY_USAGE,
            params.ext_key_usage_critical,
            &ExtendedKeyUsage(params.ext_key_usage.clone()),
        )?);
    }
    let ski = key_identifier(&params.public_key)?;
    exts.push(extension(
        oid::EXT_SUBJECT_KEY_ID,
        false,
        &SubjectKeyIdentifier(OctetString::new(ski.clone())?),
    )?);
    let aki = match issuer {
        Some(i) => match i.subject_key_id() {
            Some(k) => k,
            None => key_identifier(&issuer_key)?,
        },
        None => ski,
    };
    exts.push(extension(
        oid::EXT_AUTHORITY_KEY_ID,
        false,
        &AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(aki)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
    )?);
    if !params.crl_urls.is_empty() {
        let dps = params
            .crl_urls
            .iter()
            .map(|u| {
                Ok(DistributionPoint {
                    distribution_point: Some(DistributionPointName::FullName(vec![uri(u)?])),
                    reasons: None,
                    crl_issuer: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        exts.push(extension(
            oid::EXT_CRL_DISTRIBUTION_POINTS,
            false,
            &CrlDistributionPoints(dps),
        )?);
    }
    if !params.ocsp_urls.is_empty() || !params.ca_issuers_urls.is_empty() {
        let mut ads = Vec::new();
        for u in &params.ocsp_urls {
            ads.push(AccessDescription {
                access_method: oid::AD_OCSP,
                access_location: uri(u)?,
            });
        }
        for u in &params.ca_issuers_urls {
            ads.push(AccessDescription {
                access_method: oid::AD_CA_ISSUERS,
                access_location: uri(u)?,
            });
        }
        exts.push(extension(
            oid::EXT_AUTHORITY_INFO_ACCESS,
            false,
            &AuthorityInfoAccessSyntax(ads),
        )?);
    }
    exts.extend(params.extra_extensions.iter().cloned());

    let tbs = TbsOut {
        version: Version::V3,
        serial_number,
        signature: signer::sm3_with_sm2_alg(),
        issuer: issuer_name,
        validity: Validity::new(x509_time(params.not_before)?, x509_time(params.not_after)?),
        subject: params.subject.clone(),
        subject_public_key_info: signer::spki_for(&params.public_key)?,
        extensions: Some(exts),
    };
    let der = sign_and_wrap(&tbs.to_der()?, signer)?;
    ParsedCertificate::from_der(&der)
}

/// A parsed certificate with its original DER and typed accessors for the extensions we use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCertificate {
    der: Vec<u8>,
    cert: Certificate,
}

impl ParsedCertificate {
    /// Parse DER (trailing data rejected).
    pub fn from_der(der_bytes: &[u8]) -> Result<Self> {
        let cert =
            Certificate::from_der(der_bytes).map_err(|e| Error::malformed("certificate", e))?;
        Ok(Self {
            der: der_bytes.to_vec(),
            cert,
        })
    }

    /// Parse the first `CERTIFICATE` PEM block.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let ders = crate::pem_decode_all("CERTIFICATE", pem)?;
        let first = ders
            .first()
            .ok_or_else(|| Error::malformed("certificate PEM", "no CERTIFICATE block"))?;
        Self::from_der(first)
    }

    /// Import certificates from PEM (any number of blocks) or a single DER certificate.
    pub fn parse_many(bytes: &[u8]) -> Result<Vec<Self>> {
        if let Ok(text) = std::str::from_utf8(bytes)
            && text.contains("-----BEGIN CERTIFICATE-----")
        {
            return crate::pem_decode_all("CERTIFICATE", text)?
                .iter()
                .map(|d| Self::from_der(d))
                .collect();
        }
        Ok(vec![Self::from_der(bytes)?])
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// PEM encoding.
    pub fn to_pem(&self) -> String {
        crate::pem_encode("CERTIFICATE", &self.der)
    }
    /// The x509-cert structure.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }
    /// The signed part's original bytes.
    pub fn tbs_der(&self) -> Result<&[u8]> {
        first_inner_tlv(&self.der)
    }
    /// Subject name.
    pub fn subject(&self) -> &Name {
        self.cert.tbs_certificate().subject()
    }
    /// Issuer name.
    pub fn issuer(&self) -> &Name {
        self.cert.tbs_certificate().issuer()
    }
    /// Subject as text, for reports and errors.
    pub fn subject_string(&self) -> String {
        display_name(self.subject())
    }
    /// Issuer as text, for reports.
    pub fn issuer_string(&self) -> String {
        display_name(self.issuer())
    }
    /// A subject attribute as text.
    pub fn subject_attr(&self, attr: ObjectIdentifier) -> Option<String> {
        name_attr(self.subject(), attr)
    }
    /// Serial number bytes (as encoded, big-endian).
    pub fn serial(&self) -> &[u8] {
        self.cert.tbs_certificate().serial_number().as_bytes()
    }
    /// Serial number in lower-case hex.
    pub fn serial_hex(&self) -> String {
        util::hex(util::strip_int(self.serial()))
    }
    /// notBefore.
    pub fn not_before(&self) -> SystemTime {
        self.cert
            .tbs_certificate()
            .validity()
            .not_before
            .to_system_time()
    }
    /// notAfter.
    pub fn not_after(&self) -> SystemTime {
        self.cert
            .tbs_certificate()
            .validity()
            .not_after
            .to_system_time()
    }
    /// The SM2 public key (error for other algorithms).
    pub fn public_key(&self) -> Result<PublicKey> {
        signer::public_key_from_spki(self.cert.tbs_certificate().subject_public_key_info())
    }
    /// The public key in any algorithm CMS verification accepts (SM2, ECDSA P-256, RSA).
    pub fn signer_key(&self) -> Result<crate::sigalg::SignerKey> {
        crate::sigalg::SignerKey::from_spki(self.cert.tbs_certificate().subject_public_key_info())
    }
    /// All extensions.
    pub fn extensions(&self) -> &[Extension] {
        self.cert
            .tbs_certificate()
            .extensions()
            .map_or(&[], |v| v.as_slice())
    }
    /// An extension's criticality and value bytes.
    pub fn extension(&self, ext_oid: ObjectIdentifier) -> Option<(bool, &[u8])> {
        self.extensions()
            .iter()
            .find(|e| e.extn_id == ext_oid)
            .map(|e| (e.critical, e.extn_value.as_bytes()))
    }
    fn ext_as<'a, T: Decode<'a>>(&'a self, ext_oid: ObjectIdentifier) -> Result<Option<T>> {
        match self.extension(ext_oid) {
            None => Ok(None),
            Some((_, v)) => T::from_der(v)
                .map(Some)
                .map_err(|_| Error::malformed("certificate extension", ext_oid)),
        }
    }
    /// basicConstraints: `(cA, pathLenConstraint)`, `None` when absent.
    pub fn basic_constraints(&self) -> Result<Option<(bool, Option<u8>)>> {
        Ok(self
            .ext_as::<BasicConstraints>(oid::EXT_BASIC_CONSTRAINTS)?
            .map(|b| (b.ca, b.path_len_constraint)))
    }
    /// Whether this is a CA certificate (basicConstraints cA=TRUE).
    pub fn is_ca(&self) -> bool {
        matches!(self.basic_constraints(), Ok(Some((true, _))))
    }
    /// keyUsage, `None` when absent.
    pub fn key_usage(&self) -> Result<Option<der::flagset::FlagSet<KeyUsages>>> {
        Ok(self.ext_as::<KeyUsage>(oid::EXT_KEY_USAGE)?.map(|k| k.0))
    }
    /// Whether keyUsage is absent or contains `bit`.
    pub fn allows_key_usage(&self, bit: KeyUsages) -> bool {
        match self.key_usage() {
            Ok(None) => true,
            Ok(Some(f)) => f.contains(bit),
            Err(_) => false,
        }
    }
    /// extKeyUsage purposes (empty when absent).
    pub fn ext_key_usage(&self) -> Result<Vec<ObjectIdentifier>> {
        Ok(self
            .ext_as::<ExtendedKeyUsage>(oid::EXT_EXT_KEY_USAGE)?
            .map(|e| e.0)
            .unwrap_or_default())
    }
    /// subjectKeyIdentifier.
    pub fn subject_key_id(&self) -> Option<Vec<u8>> {
        self.ext_as::<SubjectKeyIdentifier>(oid::EXT_SUBJECT_KEY_ID)
            .ok()
            .flatten()
            .map(|s| s.0.as_bytes().to_vec())
    }
    /// authorityKeyIdentifier keyIdentifier.
    pub fn authority_key_id(&self) -> Option<Vec<u8>> {
        self.ext_as::<AuthorityKeyIdentifier>(oid::EXT_AUTHORITY_KEY_ID)
            .ok()
            .flatten()
            .and_then(|a| a.key_identifier.map(|k| k.as_bytes().to_vec()))
    }
    /// CRL distribution point URLs.
    pub fn crl_urls(&self) -> Vec<String> {
        let Ok(Some(dps)) = self.ext_as::<CrlDistributionPoints>(oid::EXT_CRL_DISTRIBUTION_POINTS)
        else {
            return Vec::new();
        };
        dps.0
            .iter()
            .filter_map(|dp| match &dp.distribution_point {
                Some(DistributionPointName::FullName(names)) => {
                    Some(names.iter().filter_map(gn_uri).collect::<Vec<_>>())
                }
                _ => None,
            })
            .flatten()
            .collect()
    }
    fn aia(&self, method: ObjectIdentifier) -> Vec<String> {
        let Ok(Some(aia)) =
            self.ext_as::<AuthorityInfoAccessSyntax>(oid::EXT_AUTHORITY_INFO_ACCESS)
        else {
            return Vec::new();
        };
        aia.0
            .iter()
            .filter(|a| a.access_method == method)
            .filter_map(|a| gn_uri(&a.access_location))
            .collect()
    }
    /// AIA OCSP URLs.
    pub fn ocsp_urls(&self) -> Vec<String> {
        self.aia(oid::AD_OCSP)
    }
    /// AIA caIssuers URLs.
    pub fn ca_issuers_urls(&self) -> Vec<String> {
        self.aia(oid::AD_CA_ISSUERS)
    }
    /// A string-valued private extension (UTF8String / PrintableString / IA5String), e.g. the
    /// GM/T 0015 resident ID (1.2.156.10260.4.1.1) or a licence number.
    pub fn string_extension(&self, ext_oid: ObjectIdentifier) -> Option<String> {
        let (_, v) = self.extension(ext_oid)?;
        let any = der::Any::from_der(v).ok()?;
        crate::name::any_to_string(&any)
    }

    /// Verify this certificate's signature with `issuer_key` (default distinguishing ID).
    pub fn verify_signature(&self, issuer_key: &PublicKey) -> Result<()> {
        self.verify_signature_with_distid(issuer_key, signer::DEFAULT_DISTID)
    }

    /// Verify this certificate's signature with `issuer_key` and a specific distinguishing ID.
    pub fn verify_signature_with_distid(&self, issuer_key: &PublicKey, distid: &str) -> Result<()> {
        signer::check_sm2_sig_alg(self.cert.signature_algorithm())?;
        if self.cert.signature_algorithm() != self.cert.tbs_certificate().signature() {
            return Err(Error::BadSignature("signature algorithm fields differ"));
        }
        let sig = self
            .cert
            .signature()
            .as_bytes()
            .ok_or(Error::BadSignature("signature BIT STRING has unused bits"))?;
        signer::verify_der(issuer_key, distid, self.tbs_der()?, sig)
    }

    /// Verify this certificate's signature with an issuer key of any supported algorithm (SM2,
    /// ECDSA P-256, RSA): certificates from external CAs are not always SM2.
    pub fn verify_signature_by(&self, issuer_key: &crate::sigalg::SignerKey) -> Result<()> {
        if let crate::sigalg::SignerKey::Sm2(pk) = issuer_key {
            return self.verify_signature(pk);
        }
        if self.cert.signature_algorithm() != self.cert.tbs_certificate().signature() {
            return Err(Error::BadSignature("signature algorithm fields differ"));
        }
        let sig = self
            .cert
            .signature()
            .as_bytes()
            .ok_or(Error::BadSignature("signature BIT STRING has unused bits"))?;
        crate::sigalg::verify_x509_signature(
            issuer_key,
            self.cert.signature_algorithm(),
            self.tbs_der()?,
            sig,
        )
    }

    /// Whether `issuer` names and keys match as this certificate's issuer (no signature check).
    pub fn issuer_matches(&self, issuer: &ParsedCertificate) -> bool {
        if self.issuer() != issuer.subject() {
            return false;
        }
        match (self.authority_key_id(), issuer.subject_key_id()) {
            (Some(a), Some(s)) => a == s,
            _ => true,
        }
    }
}

fn gn_uri(g: &GeneralName) -> Option<String> {
    match g {
        GeneralName::UniformResourceIdentifier(s) => Some(s.to_string()),
        _ => None,
    }
}
