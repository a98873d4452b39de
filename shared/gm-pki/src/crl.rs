//! X.509 v2 certificate revocation lists (RFC 5280 §5) signed with SM3withSM2.

use crate::cert::ParsedCertificate;
use crate::error::{Error, Result};
use crate::name::display_name;
use crate::oid;
use crate::signer::{self, Sm2Signer};
use crate::util::{self, extension, first_inner_tlv, x509_time};
use der::asn1::{OctetString, Uint};
use der::{Decode, Encode};
use sm2::PublicKey;
use std::time::SystemTime;
use x509_cert::certificate::Version;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber, CrlReason};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

/// CRLReason (RFC 5280 §5.3.1), also used by OCSP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevocationReason {
    /// unspecified (0)
    Unspecified,
    /// keyCompromise (1)
    KeyCompromise,
    /// cACompromise (2)
    CaCompromise,
    /// affiliationChanged (3)
    AffiliationChanged,
    /// superseded (4)
    Superseded,
    /// cessationOfOperation (5)
    CessationOfOperation,
    /// certificateHold (6)
    CertificateHold,
    /// removeFromCRL (8)
    RemoveFromCrl,
    /// privilegeWithdrawn (9)
    PrivilegeWithdrawn,
    /// aACompromise (10)
    AaCompromise,
}

impl RevocationReason {
    pub(crate) fn to_x509(self) -> CrlReason {
        match self {
            Self::Unspecified => CrlReason::Unspecified,
            Self::KeyCompromise => CrlReason::KeyCompromise,
            Self::CaCompromise => CrlReason::CaCompromise,
            Self::AffiliationChanged => CrlReason::AffiliationChanged,
            Self::Superseded => CrlReason::Superseded,
            Self::CessationOfOperation => CrlReason::CessationOfOperation,
            Self::CertificateHold => CrlReason::CertificateHold,
            Self::RemoveFromCrl => CrlReason::RemoveFromCRL,
            Self::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
            Self::AaCompromise => CrlReason::AaCompromise,
        }
    }
    pub(crate) fn from_x509(r: CrlReason) -> Self {
        match r {
            CrlReason::Unspecified => Self::Unspecified,
            CrlReason::KeyCompromise => Self::KeyCompromise,
            CrlReason::CaCompromise => Self::CaCompromise,
            CrlReason::AffiliationChanged => Self::AffiliationChanged,
            CrlReason::Superseded => Self::Superseded,
            CrlReason::CessationOfOperation => Self::CessationOfOperation,
            CrlReason::CertificateHold => Self::CertificateHold,
            CrlReason::RemoveFromCRL => Self::RemoveFromCrl,
            CrlReason::PrivilegeWithdrawn => Self::PrivilegeWithdrawn,
            CrlReason::AaCompromise => Self::AaCompromise,
        }
    }
}

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial number (big-endian, as in the certificate).
    pub serial: Vec<u8>,
    /// Revocation time.
    pub time: SystemTime,
    /// Reason, if given.
    pub reason: Option<RevocationReason>,
}

/// What a CRL says.
#[derive(Debug, Clone)]
pub struct CrlParams {
    /// thisUpdate.
    pub this_update: SystemTime,
    /// nextUpdate.
    pub next_update: SystemTime,
    /// cRLNumber (monotonic per issuer).
    pub crl_number: u64,
    /// Revoked certificates.
    pub entries: Vec<RevokedEntry>,
}

/// Build and sign a CRL for `issuer` (a CA certificate whose key `signer` holds).
pub fn build_crl(
    params: &CrlParams,
    issuer: &ParsedCertificate,
    signer: &dyn Sm2Signer,
) -> Result<ParsedCrl> {
    if signer.public_key() != issuer.public_key()? {
        return Err(Error::InvalidArgument(
            "signer key does not match the CRL issuer".into(),
        ));
    }
    if params.next_update <= params.this_update {
        return Err(Error::InvalidArgument(
            "nextUpdate must be after thisUpdate".into(),
        ));
    }
    let mut revoked: Vec<RevokedCert> = Vec::with_capacity(params.entries.len());
    for e in &params.entries {
        let exts = match e.reason {
            Some(r) => Some(vec![extension(oid::EXT_CRL_REASON, false, &r.to_x509())?]),
            None => None,
        };
        revoked.push(RevokedCert {
            serial_number: SerialNumber::new(&e.serial)?,
            revocation_date: x509_time(e.time)?,
            crl_entry_extensions: exts,
        });
    }
    let aki = match issuer.subject_key_id() {
        Some(k) => k,
        None => crate::cert::key_identifier(&issuer.public_key()?)?,
    };
    let crl_number = CrlNumber(Uint::new(&params.crl_number.to_be_bytes())?);
    let tbs = TbsCertList {
        version: Version::V2,
        signature: signer::sm3_with_sm2_alg(),
        issuer: issuer.subject().clone(),
        this_update: x509_time(params.this_update)?,
        next_update: Some(x509_time(params.next_update)?),
        revoked_certificates: if revoked.is_empty() {
            None
        } else {
            Some(revoked)
        },
        crl_extensions: Some(vec![
            extension(
                oid::EXT_AUTHORITY_KEY_ID,
                false,
                &AuthorityKeyIdentifier {
                    key_identifier: Some(OctetString::new(aki)?),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                },
            )?,
            extension(oid::EXT_CRL_NUMBER, false, &crl_number)?,
        ]),
    };
    let der = crate::cert::sign_and_wrap(&tbs.to_der()?, signer)?;
    ParsedCrl::from_der(&der)
}

/// A parsed CRL.
#[derive(Debug, Clone)]
pub struct ParsedCrl {
    der: Vec<u8>,
    list: CertificateList,
}

impl ParsedCrl {
    /// Parse DER (trailing data rejected). The signature is not checked here: see
    /// [`ParsedCrl::verify_signature`].
    pub fn from_der(der_bytes: &[u8]) -> Result<Self> {
        let list = CertificateList::from_der(der_bytes).map_err(|e| Error::malformed("CRL", e))?;
        Ok(Self {
            der: der_bytes.to_vec(),
            list,
        })
    }
    /// Parse the first `X509 CRL` PEM block.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let ders = crate::pem_decode_all("X509 CRL", pem)?;
        let first = ders
            .first()
            .ok_or_else(|| Error::malformed("CRL PEM", "no X509 CRL block"))?;
        Self::from_der(first)
    }
    /// DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// PEM.
    pub fn to_pem(&self) -> String {
        crate::pem_encode("X509 CRL", &self.der)
    }
    /// Issuer name.
    pub fn issuer(&self) -> &Name {
        &self.list.tbs_cert_list.issuer
    }
    /// Issuer as text.
    pub fn issuer_string(&self) -> String {
        display_name(self.issuer())
    }
    /// thisUpdate.
    pub fn this_update(&self) -> SystemTime {
        self.list.tbs_cert_list.this_update.to_system_time()
    }
    /// nextUpdate.
    pub fn next_update(&self) -> Option<SystemTime> {
        self.list
            .tbs_cert_list
            .next_update
            .map(|t| t.to_system_time())
    }
    /// cRLNumber, if present and at most 64 bits.
    pub fn crl_number(&self) -> Option<u64> {
        let ext = self
            .list
            .tbs_cert_list
            .crl_extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id == oid::EXT_CRL_NUMBER)?;
        let n = CrlNumber::from_der(ext.extn_value.as_bytes()).ok()?;
        let b = util::strip_int(n.0.as_bytes());
        if b.len() > 8 {
            return None;
        }
        Some(b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
    }
    /// All entries.
    pub fn entries(&self) -> Result<Vec<RevokedEntry>> {
        let Some(list) = &self.list.tbs_cert_list.revoked_certificates else {
            return Ok(Vec::new());
        };
        list.iter()
            .map(|r| {
                let reason = match r
                    .crl_entry_extensions
                    .as_ref()
                    .and_then(|x| x.iter().find(|e| e.extn_id == oid::EXT_CRL_REASON))
                {
                    Some(ext) => Some(RevocationReason::from_x509(
                        CrlReason::from_der(ext.extn_value.as_bytes())
                            .map_err(|e| Error::malformed("CRL reason", e))?,
                    )),
                    None => None,
                };
                Ok(RevokedEntry {
                    serial: r.serial_number.as_bytes().to_vec(),
                    time: r.revocation_date.to_system_time(),
                    reason,
                })
            })
            .collect()
    }
    /// The entry for `serial`, if revoked.
    pub fn find(&self, serial: &[u8]) -> Result<Option<RevokedEntry>> {
        let want = util::strip_int(serial);
        Ok(self
            .entries()?
            .into_iter()
            .find(|e| util::strip_int(&e.serial) == want))
    }
    /// Verify the CRL signature with the issuer's SM2 key.
    pub fn verify_signature(&self, issuer_key: &PublicKey) -> Result<()> {
        self.verify_signature_by(&crate::sigalg::SignerKey::Sm2(*issuer_key))
    }
    /// Verify the CRL signature with the issuer's key of any supported algorithm (SM2, ECDSA
    /// P-256, RSA).
    pub fn verify_signature_by(&self, issuer_key: &crate::sigalg::SignerKey) -> Result<()> {
        let sig = self
            .list
            .signature
            .as_bytes()
            .ok_or(Error::BadSignature("CRL signature has unused bits"))?;
        crate::sigalg::verify_x509_signature(
            issuer_key,
            &self.list.signature_algorithm,
            first_inner_tlv(&self.der)?,
            sig,
        )
    }
}
