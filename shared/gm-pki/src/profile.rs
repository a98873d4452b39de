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

/// Longest text in a name attribute (X.520 upper bound for CN, O, OU, serialNumber).
pub const MAX_NAME_CHARS: usize = 64;

fn bad(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidField {
        field,
        reason: reason.into(),
    }
}

/// Free text (Chinese allowed): 1–`max` characters, no control characters, no surrounding spaces.
fn check_text(field: &'static str, v: &str, max: usize) -> Result<()> {
    let n = v.chars().count();
    if n == 0 || n > max {
        return Err(bad(field, format!("must have 1 to {max} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(bad(field, "contains control characters"));
    }
    if v.trim() != v {
        return Err(bad(field, "has leading or trailing spaces"));
    }
    Ok(())
}

/// An identifier: 1–`max` ASCII letters, digits and `-_.:`.
fn check_code(field: &'static str, v: &str, max: usize) -> Result<()> {
    if v.is_empty() || v.len() > max {
        return Err(bad(field, format!("must have 1 to {max} characters")));
    }
    if !v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        return Err(bad(
            field,
            "may contain only ASCII letters, digits and - _ . :",
        ));
    }
    Ok(())
}

fn check_resident_id(id: &str) -> Result<()> {
    validate_resident_id(id).map_err(|e| match e {
        Error::InvalidArgument(reason) => bad("resident_id", reason),
        other => other,
    })
}

/// Validate an 18-character unified social credit code (统一社会信用代码, GB 32100-2015): the
/// alphabet `0-9A-HJ-NP-RTUWXY` and the MOD 31 check character.
pub fn validate_credit_code(code: &str) -> Result<()> {
    const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [usize; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];
    let bytes = code.as_bytes();
    if bytes.len() != 18 {
        return Err(bad("credit_code", "must have 18 characters"));
    }
    let value = |b: u8| ALPHABET.iter().position(|a| *a == b.to_ascii_uppercase());
    let mut sum = 0usize;
    for (b, w) in bytes.iter().take(17).zip(WEIGHTS) {
        let v =
            value(*b).ok_or_else(|| bad("credit_code", "contains a character outside GB 32100"))?;
        sum += v * w;
    }
    let expect = (31 - sum % 31) % 31;
    match bytes.get(17).and_then(|b| value(*b)) {
        Some(v) if v == expect => Ok(()),
        _ => Err(bad("credit_code", "check character is wrong")),
    }
}

/// A member of staff (doctor, nurse, pharmacist...).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(deny_unknown_fields)
)]
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
    /// Practising-licence number (执业证号), carried under the OID the caller passes to [`staff`]
    /// (no public OID exists; the server's is configurable).
    pub licence: Option<String>,
}

impl StaffInfo {
    /// Checks every field (lengths, characters, the ID number's check digit).
    pub fn validate(&self) -> Result<()> {
        check_text("name", &self.name, MAX_NAME_CHARS)?;
        check_code("staff_id", &self.staff_id, 32)?;
        check_text("department", &self.department, MAX_NAME_CHARS)?;
        check_text("hospital", &self.hospital, MAX_NAME_CHARS)?;
        if let Some(id) = &self.resident_id {
            check_resident_id(id)?;
        }
        if let Some(l) = &self.licence {
            check_code("licence", l, 32)?;
        }
        Ok(())
    }
}

/// The staff subject, C=CN, O=hospital, OU=department, CN=name, serialNumber=staff id, after
/// checking every field (also the subject of a staff member's CSR for an external CA).
pub fn staff_subject(info: &StaffInfo) -> Result<Name> {
    info.validate()?;
    DnBuilder::new()
        .country("CN")
        .organization(&info.hospital)
        .organizational_unit(&info.department)
        .common_name(&info.name)
        .serial_number(&info.staff_id)
        .build()
}

/// Staff signing certificate: C=CN, O=hospital, OU=department, CN=name, serialNumber=staff id;
/// the licence number (if any) as a UTF8String extension under `licence_oid`.
pub fn staff(
    info: &StaffInfo,
    licence_oid: ObjectIdentifier,
    public_key: PublicKey,
    period: Period,
    urls: &PkiUrls,
) -> Result<CertificateParams> {
    let subject = staff_subject(info)?;
    let mut p = end_entity(subject, public_key, period, urls);
    if let Some(id) = &info.resident_id {
        p.add_printable_extension(oid::GM_RESIDENT_ID, &id.to_ascii_uppercase())?;
    }
    if let Some(number) = &info.licence {
        p.add_utf8_extension(licence_oid, number)?;
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
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct OrganisationInfo {
    /// Organisation name (O).
    pub organisation: String,
    /// Seal or unit name (CN), e.g. "医务处公章".
    pub seal_name: String,
    /// Unified social credit code (GB 32100, check character validated), carried in extension
    /// 1.2.156.10260.4.1.4.
    pub credit_code: Option<String>,
}

impl OrganisationInfo {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        check_text("organisation", &self.organisation, MAX_NAME_CHARS)?;
        check_text("seal_name", &self.seal_name, MAX_NAME_CHARS)?;
        if let Some(code) = &self.credit_code {
            validate_credit_code(code)?;
        }
        Ok(())
    }
}

/// Organisation / seal certificate.
pub fn organisation(
    info: &OrganisationInfo,
    public_key: PublicKey,
    period: Period,
    urls: &PkiUrls,
) -> Result<CertificateParams> {
    info.validate()?;
    let subject = DnBuilder::new()
        .country("CN")
        .organization(&info.organisation)
        .common_name(&info.seal_name)
        .build()?;
    let mut p = end_entity(subject, public_key, period, urls);
    if let Some(code) = &info.credit_code {
        p.add_printable_extension(oid::GM_ORGANIZATION_CODE, &code.to_ascii_uppercase())?;
    }
    Ok(p)
}

/// A patient (or proxy) signing one event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct PatientEventInfo {
    /// Patient's name (CN).
    pub name: String,
    /// Resident ID number: validated, then only a keyed hash of it goes into the certificate
    /// (subject serialNumber). `None` when the signer's number is not known (the patient
    /// signing flow may identify by SMS only); the subject then has no serialNumber.
    #[cfg_attr(feature = "serde", serde(default))]
    pub resident_id: Option<String>,
    /// Signing event id (UID).
    pub event_id: String,
    /// Hospital (O).
    pub hospital: String,
}

impl PatientEventInfo {
    /// Checks every field (lengths, characters, the ID number's check digit).
    pub fn validate(&self) -> Result<()> {
        check_text("name", &self.name, MAX_NAME_CHARS)?;
        if let Some(id) = &self.resident_id {
            check_resident_id(id)?;
        }
        check_code("event_id", &self.event_id, MAX_NAME_CHARS)?;
        check_text("hospital", &self.hospital, MAX_NAME_CHARS)
    }
}

/// The keyed hash of an ID number carried in patient certificates:
/// `HMAC-SM3(key, upper(id))`. A plain SM3 would be reversible by enumeration (an ID number is
/// region + birth date + sequence: well under 2^40 candidates), so the key (a hospital secret
/// held in the crypto device) is what makes the value opaque. Call it where the key is
/// available, e.g. inside the device's secret callback.
pub fn keyed_resident_id(key: &[u8], id: &str) -> Result<[u8; 32]> {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sm3::Sm3> as KeyInit>::new_from_slice(key)
        .map_err(|_| Error::InvalidArgument("HMAC key".into()))?;
    mac.update(id.to_ascii_uppercase().as_bytes());
    Ok(mac.finalize().into_bytes().into())
}

/// Patient event certificate: one signing event, validity of `minutes`. Subject:
/// C=CN, O=hospital, CN=name, UID=event id, serialNumber=hex of `resident_id_mac` (from
/// [`keyed_resident_id`] over `info.resident_id`, when there is one) — never the ID itself;
/// certificatePolicies [`oid::PATIENT_EVENT_POLICY`] (not critical).
pub fn patient_event(
    info: &PatientEventInfo,
    resident_id_mac: Option<&[u8; 32]>,
    public_key: PublicKey,
    not_before: SystemTime,
    minutes: u32,
    urls: &PkiUrls,
) -> Result<CertificateParams> {
    if minutes == 0 || minutes > 24 * 60 {
        return Err(bad(
            "validity",
            "patient event certificates last 1 minute to 1 day",
        ));
    }
    info.validate()?;
    if info.resident_id.is_some() != resident_id_mac.is_some() {
        return Err(bad(
            "resident_id",
            "give the keyed hash exactly when there is an ID number",
        ));
    }
    let mut dn = DnBuilder::new()
        .country("CN")
        .organization(&info.hospital)
        .common_name(&info.name)
        .uid(&info.event_id);
    if let Some(mac) = resident_id_mac {
        dn = dn.serial_number(util::hex(mac));
    }
    let subject = dn.build()?;
    let period = Period::starting(not_before, Duration::from_secs(u64::from(minutes) * 60))?;
    let mut p = end_entity(subject, public_key, period, urls);
    let policies = x509_cert::ext::pkix::CertificatePolicies(vec![
        x509_cert::ext::pkix::certpolicy::PolicyInformation {
            policy_identifier: oid::PATIENT_EVENT_POLICY,
            policy_qualifiers: None,
        },
    ]);
    p.extra_extensions
        .push(extension(oid::EXT_CERTIFICATE_POLICIES, false, &policies)?);
    Ok(p)
}

/// A device (bedside pad) that authenticates to the server and countersigns captures.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct DeviceInfo {
    /// Device id (CN).
    pub device_id: String,
    /// Ward or location (OU).
    pub ward: String,
    /// Hospital (O).
    pub hospital: String,
}

impl DeviceInfo {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        check_code("device_id", &self.device_id, MAX_NAME_CHARS)?;
        check_text("ward", &self.ward, MAX_NAME_CHARS)?;
        check_text("hospital", &self.hospital, MAX_NAME_CHARS)
    }
}

/// Device certificate: digitalSignature, clientAuth.
pub fn device(
    info: &DeviceInfo,
    public_key: PublicKey,
    period: Period,
    urls: &PkiUrls,
) -> Result<CertificateParams> {
    info.validate()?;
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

/// Extensions [`crate::cert::issue_certificate`] writes itself from the parameters.
const GENERATED: [ObjectIdentifier; 7] = [
    oid::EXT_BASIC_CONSTRAINTS,
    oid::EXT_KEY_USAGE,
    oid::EXT_EXT_KEY_USAGE,
    oid::EXT_SUBJECT_KEY_ID,
    oid::EXT_AUTHORITY_KEY_ID,
    oid::EXT_CRL_DISTRIBUTION_POINTS,
    oid::EXT_AUTHORITY_INFO_ACCESS,
];

/// Renewal of an end-entity certificate: the same subject, key usages, extended key usages and
/// identity extensions (resident ID, licence, credit code...), with a new validity and
/// `public_key` (the old one for a plain renewal, a new one for a re-key).
pub fn renewal(
    old: &crate::ParsedCertificate,
    public_key: PublicKey,
    period: Period,
    urls: &PkiUrls,
) -> Result<CertificateParams> {
    if old.is_ca() {
        return Err(Error::InvalidArgument(
            "CA certificates are not renewed here".into(),
        ));
    }
    let mut p = end_entity(old.subject().clone(), public_key, period, urls);
    p.ee_basic_constraints = old.basic_constraints()?.is_some();
    p.key_usage = old
        .key_usage()?
        .map(|flags| flags.into_iter().collect())
        .unwrap_or_default();
    p.ext_key_usage = old.ext_key_usage()?;
    p.ext_key_usage_critical = old
        .extension(oid::EXT_EXT_KEY_USAGE)
        .is_some_and(|(critical, _)| critical);
    p.extra_extensions = old
        .extensions()
        .iter()
        .filter(|e| !GENERATED.contains(&e.extn_id))
        .cloned()
        .collect();
    Ok(p)
}
