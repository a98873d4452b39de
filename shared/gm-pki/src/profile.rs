//! Certificate profiles after 卫生系统数字证书格式规范 (health-sector certificate format) and
//! GM/T 0015: which names, key usages and extensions each kind of certificate carries.
//!
//! | profile | keyUsage (critical) | extKeyUsage | basicConstraints |
//! |---|---|---|---|
//! | root CA | keyCertSign, cRLSign | – | cA, no path length (critical) |
//! | issuing CA (staff / patient-event / seal) | keyCertSign, cRLSign | – | cA, pathLen 0 (critical) |
//! | TSA | digitalSignature, nonRepudiation | timeStamping (critical) | – |
//! | OCSP signer | digitalSignature | OCSPSigning; + id-pkix-ocsp-nocheck | – |
//! | staff | digitalSignature, nonRepudiation | – | cA=FALSE |
//! | organisation / seal | digitalSignature, nonRepudiation | – | cA=FALSE |
//! | patient event | digitalSignature, nonRepudiation | – | cA=FALSE, validity of minutes |
//! | device (bedside pad) | digitalSignature | clientAuth | cA=FALSE |

use crate::cert::{CertificateParams, KeyUsageBit as K};
use crate::error::{Error, Result};
use crate::name::{DnBuilder, validate_resident_id};
use crate::oid;
use crate::signer::sm3;
use crate::util::{self, extension};
use const_oid::ObjectIdentifier;
use der::asn1::Null;
use sm2::PublicKey;
use std::time::{Duration, SystemTime};
use x509_cert::name::Name;

/// Where relying parties find CRLs, OCSP and the issuer certificate.
#[derive(Debug, Clone, Default)]
pub struct PkiUrls {
    /// CRL distribution point URLs.
    pub crl: Vec<String>,
    /// OCSP responder URLs (AIA).
    pub ocsp: Vec<String>,
    /// Issuer certificate URLs (AIA caIssuers).
    pub ca_issuers: Vec<String>,
}

impl PkiUrls {
    fn apply(&self, p: &mut CertificateParams) {
        p.crl_urls.clone_from(&self.crl);
        p.ocsp_urls.clone_from(&self.ocsp);
        p.ca_issuers_urls.clone_from(&self.ca_issuers);
    }
}

/// Validity period.
#[derive(Debug, Clone, Copy)]
pub struct Period {
    /// Start.
    pub not_before: SystemTime,
    /// End.
    pub not_after: SystemTime,
}

impl Period {
    /// `not_before` plus a duration.
    pub fn starting(not_before: SystemTime, length: Duration) -> Result<Self> {
        let not_after = not_before
            .checked_add(length)
            .ok_or_else(|| Error::InvalidArgument("validity overflows".into()))?;
        Ok(Self {
            not_before,
            not_after,
        })
    }
}

/// What an issuing CA issues (carried in its OU and used by the server to pick the CA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssuingCaKind {
    /// Staff (doctor, nurse) signing certificates.
    Staff,
    /// One-event patient certificates.
    PatientEvent,
    /// Organisation / electronic seal certificates.
    Seal,
    /// Devices (bedside pads).
    Device,
}

fn ca_params(
    subject: Name,
    pk: PublicKey,
    period: Period,
    path_len: Option<u8>,
) -> CertificateParams {
    let mut p = CertificateParams::new(subject, pk, period.not_before, period.not_after);
    p.ca = Some(path_len);
    p.key_usage = vec![K::KeyCertSign, K::CRLSign];
    p
}

/// Root CA: self-signed, keyCertSign + cRLSign, no path length limit.
pub fn root_ca(subject: Name, public_key: PublicKey, period: Period) -> CertificateParams {
    ca_params(subject, public_key, period, None)
}

/// Issuing (intermediate) CA below the root: pathLen 0, so it issues end-entity certificates only.
pub fn issuing_ca(
    subject: Name,
    public_key: PublicKey,
    period: Period,
    _kind: IssuingCaKind,
    urls: &PkiUrls,
) -> CertificateParams {
    let mut p = ca_params(subject, public_key, period, Some(0));
    urls.apply(&mut p);
    p
}

/// RFC 3161 time-stamping authority: extKeyUsage timeStamping only, critical (RFC 3161 §2.3).
pub fn tsa(
    subject: Name,
    public_key: PublicKey,
    period: Period,
    urls: &PkiUrls,
) -> CertificateParams {
    let mut p = CertificateParams::new(subject, public_key, period.not_before, period.not_after);
    p.key_usage = vec![K::DigitalSignature, K::NonRepudiation];
    p.ext_key_usage = vec![oid::KP_TIME_STAMPING];
    p.ext_key_usage_critical = true;
    urls.apply(&mut p);
    p
}

/// Delegated OCSP responder (RFC 6960 §4.2.2.2): OCSPSigning, plus id-pkix-ocsp-nocheck.
pub fn ocsp_signer(
    subject: Name,
    public_key: PublicKey,
    period: Period,
) -> Result<CertificateParams> {
    let mut p = CertificateParams::new(subject, public_key, period.not_before, period.not_after);
    p.key_usage = vec![K::DigitalSignature];
    p.ext_key_usage = vec![oid::KP_OCSP_SIGNING];
    p.extra_extensions
        .push(extension(oid::OCSP_NOCHECK, false, &Null)?);
    Ok(p)
}

/// A member of staff (doctor, nurse, pharmacist...).
#[derive(Debug, Clone)]
pub struct StaffInfo {
    /// Person's name (CN).
    pub name: String,
    /// Hospital staff number (subject serialNumber).
    pub staff_id: String,
    /// Department (OU).
    pub department: String,
    /// Hospital (O).
    pub hospital: String,
    /// Resident ID number (GB 11643, check digit validated), in extension 1.2.156.10260.4.1.1.
    pub resident_id: Option<String>,
    /// Practising-licence number (执业证号) and the OID to carry it under (not public; configurable).
    pub licence: Option<(ObjectIdentifier, String)>,
}

/// Staff signing certificate: C=CN, O=hospital, OU=department, CN=name, serialNumber=staff id.
pub fn staff(
    info: &StaffInfo,
    public_key: PublicKey,
    period: Period,
    urls: &PkiUrls,
) -> Result<CertificateParams> {
    let subject = DnBuilder::new()
        .country("CN")
        .organization(&info.hospital)
        .organizational_unit(&info.department)
        .common_name(&info.name)
        .serial_number(&info.staff_id)
        .build()?;
    let mut p = end_entity(subject, public_key, period, urls);
    if let Some(id) = &info.resident_id {
        validate_resident_id(id)?;
        p.add_printable_extension(oid::GM_RESIDENT_ID, id)?;
    }
    if let Some((licence_oid, number)) = &info.licence {
        p.add_utf8_extension(*licence_oid, number)?;
    }
    Ok(p)
}

fn end_entity(
    subject: Name,
    public_key: PublicKey,
    period: Period,
    urls: &PkiUrls,
) -> CertificateParams {
    let mut p = CertificateParams::new(subject, public_key, period.not_before, period.not_after);
    p.ee_basic_constraints = true;
    p.key_usage = vec![K::DigitalSignature, K::NonRepudiation];
    urls.apply(&mut p);
    p
}

/// An organisation or electronic seal (单位 / 电子印章).
#[derive(Debug, Clone)]
pub struct OrganisationInfo {
    /// Organisation name (O).
    pub organisation: String,
    /// Seal or unit name (CN), e.g. "医务处公章".
    pub seal_name: String,
    /// Unified social credit code, carried in extension 1.2.156.10260.4.1.4.
    pub credit_code: Option<String>,
}

/// Organisation / seal certificate.
pub fn organisation(
    info: &OrganisationInfo,
    public_key: PublicKey,
    period: Period,
    urls: &PkiUrls,
) -> Result<CertificateParams> {
    let subject = DnBuilder::new()
        .country("CN")
        .organization(&info.organisation)
        .common_name(&info.seal_name)
        .build()?;
    let mut p = end_entity(subject, public_key, period, urls);
    if let Some(code) = &info.credit_code {
        p.add_printable_extension(oid::GM_ORGANIZATION_CODE, code)?;
    }
    Ok(p)
}

/// A patient (or proxy) signing one event.
#[derive(Debug, Clone)]
pub struct PatientEventInfo {
    /// Patient's name (CN).
    pub name: String,
    /// Resident ID number: validated, then only its SM3 hash goes into the certificate.
    pub resident_id: String,
    /// Signing event id (UID).
    pub event_id: String,
    /// Hospital (O).
    pub hospital: String,
}

/// SM3 of an ID number as carried in patient certificates: hex of `SM3(upper(id))`.
pub fn hashed_resident_id(id: &str) -> String {
    util::hex(&sm3(id.to_ascii_uppercase().as_bytes()))
}

/// Patient event certificate: one signing event, validity of `minutes`. Subject:
/// C=CN, O=hospital, CN=name, UID=event id, serialNumber=hex SM3(ID number) — never the ID itself.
pub fn patient_event(
    info: &PatientEventInfo,
    public_key: PublicKey,
    not_before: SystemTime,
    minutes: u32,
    urls: &PkiUrls,
) -> Result<CertificateParams> {
    if minutes == 0 || minutes > 24 * 60 {
        return Err(Error::InvalidArgument(
            "patient event certificates last 1 minute to 1 day".into(),
        ));
    }
    validate_resident_id(&info.resident_id)?;
    let subject = DnBuilder::new()
        .country("CN")
        .organization(&info.hospital)
        .common_name(&info.name)
        .uid(&info.event_id)
        .serial_number(hashed_resident_id(&info.resident_id))
        .build()?;
    let period = Period::starting(not_before, Duration::from_secs(u64::from(minutes) * 60))?;
    Ok(end_entity(subject, public_key, period, urls))
}

/// A device (bedside pad) that authenticates to the server and countersigns captures.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// Device id (CN and UID).
    pub device_id: String,
    /// Ward or location (OU).
    pub ward: String,
    /// Hospital (O).
    pub hospital: String,
}

/// Device certificate: digitalSignature, clientAuth.
pub fn device(
    info: &DeviceInfo,
    public_key: PublicKey,
    period: Period,
    urls: &PkiUrls,
) -> Result<CertificateParams> {
    let subject = DnBuilder::new()
        .country("CN")
        .organization(&info.hospital)
        .organizational_unit(&info.ward)
        .common_name(&info.device_id)
        .build()?;
    let mut p = end_entity(subject, public_key, period, urls);
    p.key_usage = vec![K::DigitalSignature];
    p.ext_key_usage = vec![oid::KP_CLIENT_AUTH];
    Ok(p)
}
