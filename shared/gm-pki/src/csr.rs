//! PKCS#10 certification requests (RFC 2986) with SM2 keys: build through [`Sm2Signer`] (so a
//! two-party or device key can sign its own request) and parse with proof-of-possession check.

use crate::error::{Error, Result};
use crate::name::display_name;
use crate::oid;
use crate::signer::{self, Sm2Signer};
use crate::util::first_inner_tlv;
use der::asn1::SetOfVec;
use der::{Decode, Encode};
use sm2::PublicKey;
use x509_cert::attr::Attribute;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq, Version};

/// Build a DER CSR for `subject`, signed by `signer` (its public key goes into the request).
/// `extensions` become a PKCS#9 extensionRequest attribute when not empty.
pub fn build_csr(
    subject: &Name,
    signer: &dyn Sm2Signer,
    extensions: &[Extension],
) -> Result<Vec<u8>> {
    crate::cert::sign_and_wrap(
        &request_info_der(subject, &signer.public_key(), extensions)?,
        signer,
    )
}

/// The DER `CertificationRequestInfo` for `subject` and `public_key`: the bytes a CSR's
/// signature covers. With [`assemble_csr`] this is [`build_csr`] in two steps, for a key whose
/// signature is made elsewhere (the two-party co-signing protocol: the server sends these
/// bytes to the phone, which hashes them itself before committing).
pub fn request_info_der(
    subject: &Name,
    public_key: &PublicKey,
    extensions: &[Extension],
) -> Result<Vec<u8>> {
    let mut attributes = SetOfVec::new();
    if !extensions.is_empty() {
        let mut values = SetOfVec::new();
        values.insert(der::Any::encode_from(&ExtensionReq(extensions.to_vec()))?)?;
        attributes.insert(Attribute {
            oid: oid::PKCS9_EXTENSION_REQUEST,
            values,
        })?;
    }
    let info = CertReqInfo {
        version: Version::V1,
        subject: subject.clone(),
        public_key: signer::spki_for(public_key)?,
        attributes,
    };
    Ok(info.to_der()?)
}

/// Completes a CSR from its `CertificationRequestInfo` (from [`request_info_der`]) and an SM2
/// signature over it (`e = SM3(Z ‖ info)` with the default ID), then checks the result as any
/// received CSR is checked: a signature that does not verify with the request's key is refused.
pub fn assemble_csr(info_der: &[u8], signature: &sm2::dsa::Signature) -> Result<ParsedCsr> {
    let der = crate::cert::wrap_signed(info_der, signature.to_der().as_bytes())?;
    ParsedCsr::from_der(&der)
}

/// A `CertificationRequestInfo` received for signing (what a co-signing phone is asked to
/// sign): parsed strictly (no trailing bytes), SM2 key, its subject readable.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    info: CertReqInfo,
    public_key: PublicKey,
}

impl RequestInfo {
    /// Parses DER; never panics on hostile input.
    pub fn from_der(der_bytes: &[u8]) -> Result<Self> {
        let info = CertReqInfo::from_der(der_bytes).map_err(|e| Error::malformed("CSR info", e))?;
        let public_key = signer::public_key_from_spki(&info.public_key)?;
        Ok(Self { info, public_key })
    }
    /// The key the request is for.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }
    /// The requested subject.
    pub fn subject(&self) -> &Name {
        &self.info.subject
    }
    /// Subject as text.
    pub fn subject_string(&self) -> String {
        display_name(&self.info.subject)
    }
    /// The first value of subject attribute `oid` (e.g. serialNumber = the staff id).
    pub fn subject_attr(&self, attr: der::asn1::ObjectIdentifier) -> Option<String> {
        crate::name::name_attr(&self.info.subject, attr)
    }
    /// Whether the request carries attributes (an extensionRequest, a challenge password…).
    pub fn has_attributes(&self) -> bool {
        !self.info.attributes.is_empty()
    }
}

/// A parsed CSR whose proof of possession has been verified.
#[derive(Debug, Clone)]
pub struct ParsedCsr {
    der: Vec<u8>,
    req: CertReq,
    public_key: PublicKey,
}

impl ParsedCsr {
    /// Parse a DER CSR and verify its self-signature with the default distinguishing ID.
    pub fn from_der(der_bytes: &[u8]) -> Result<Self> {
        Self::from_der_with_distid(der_bytes, signer::DEFAULT_DISTID)
    }

    /// Parse a PEM CSR (`CERTIFICATE REQUEST`) and verify it.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let ders = crate::pem_decode_all("CERTIFICATE REQUEST", pem)?;
        let first = ders
            .first()
            .ok_or_else(|| Error::malformed("CSR PEM", "no CERTIFICATE REQUEST block"))?;
        Self::from_der(first)
    }

    /// Parse and verify with a specific distinguishing ID.
    pub fn from_der_with_distid(der_bytes: &[u8], distid: &str) -> Result<Self> {
        let req = CertReq::from_der(der_bytes).map_err(|e| Error::malformed("CSR", e))?;
        signer::check_sm2_sig_alg(&req.algorithm)?;
        let public_key = signer::public_key_from_spki(&req.info.public_key)?;
        let sig = req.signature.as_bytes().ok_or(Error::BadSignature(
            "CSR signature BIT STRING has unused bits",
        ))?;
        signer::verify_der(&public_key, distid, first_inner_tlv(der_bytes)?, sig)?;
        Ok(Self {
            der: der_bytes.to_vec(),
            req,
            public_key,
        })
    }

    /// DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// PEM.
    pub fn to_pem(&self) -> String {
        crate::pem_encode("CERTIFICATE REQUEST", &self.der)
    }
    /// Requested subject.
    pub fn subject(&self) -> &Name {
        &self.req.info.subject
    }
    /// Subject as text.
    pub fn subject_string(&self) -> String {
        display_name(&self.req.info.subject)
    }
    /// The key whose possession was proven.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }
    /// Extensions asked for in an extensionRequest attribute.
    pub fn requested_extensions(&self) -> Result<Vec<Extension>> {
        let mut out = Vec::new();
        for attr in self
            .req
            .info
            .attributes
            .iter()
            .filter(|a| a.oid == oid::PKCS9_EXTENSION_REQUEST)
        {
            for v in attr.values.iter() {
                let req: ExtensionReq = v
                    .decode_as()
                    .map_err(|e| Error::malformed("extensionRequest", e))?;
                out.extend(req.0);
            }
        }
        Ok(out)
    }
}
