//! End-entity certificates with the health-sector profiles (staff, organisation / seal,
//! patient event, device), for a public key the caller already trusts ([`Pki::issue_for_key`]:
//! a two-party joint key, a key from a verified CSR), renewal, and revocation. Every issuance,
//! renewal and revocation is audited here.

use std::time::Duration;

use gm_pki::crl::RevocationReason;
use gm_pki::csr::ParsedCsr;
use gm_pki::profile::{self, Period};
pub use gm_pki::profile::{DeviceInfo, OrganisationInfo, PatientEventInfo, StaffInfo};
use gm_pki::{CertificateParams, ParsedCertificate};

use super::{Pki, blocking, rng, unix_ms, urls_for};
use crate::audit::Event;
use crate::clock::now_ms;
use crate::error::Error;
use crate::store::Db;
use crate::store::pki::{CertificateRow, RenewOutcome, RevokeOutcome};

/// Largest CSR accepted (PEM or DER).
pub const MAX_CSR: usize = 16 * 1024;

/// Longest validity of staff, organisation and device certificates (5 years).
pub const MAX_VALIDITY: Duration = Duration::from_secs(1825 * 24 * 3600);

/// Longest validity of a patient event certificate (one day; usually minutes).
pub const MAX_EVENT_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// Why an issuance, renewal or revocation was refused.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// No such issuing CA.
    #[error("unknown CA {0:?}: use staff, patient or seal")]
    UnknownCa(String),
    /// The profile cannot be issued by this CA (e.g. a staff certificate from the patient CA).
    #[error("the {ca} CA does not issue {profile} certificates")]
    ProfileMismatch {
        /// The CA asked for.
        ca: String,
        /// The profile asked for.
        profile: &'static str,
    },
    /// The CSR does not parse or its signature (proof of possession) does not verify.
    #[error("invalid CSR: {0}")]
    InvalidCsr(String),
    /// A profile field is refused (`field` names it; `resident_id` for a bad GB 11643 number).
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Why (English; never the value).
        reason: String,
    },
    /// A parameter is out of range.
    #[error("{0}")]
    Invalid(String),
    /// No certificate with this serial.
    #[error("no certificate with this serial")]
    NotFound,
    /// Already revoked (or superseded).
    #[error("already revoked")]
    AlreadyRevoked,
    /// This certificate cannot be renewed (a CA, TSA or OCSP certificate, a patient event).
    #[error("not renewable: {0}")]
    NotRenewable(String),
    /// A server-side failure.
    #[error(transparent)]
    Server(#[from] Error),
}

impl From<gm_pki::Error> for PkiError {
    fn from(e: gm_pki::Error) -> Self {
        match e {
            gm_pki::Error::InvalidField { field, reason } => Self::InvalidField { field, reason },
            gm_pki::Error::InvalidArgument(text) => Self::Invalid(text),
            other => Self::Server(other.into()),
        }
    }
}

/// What an end-entity certificate certifies, with the profile's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueProfile {
    /// A doctor, nurse, pharmacist (staff CA).
    Staff(StaffInfo),
    /// An organisation or electronic seal (seal CA).
    Organisation(OrganisationInfo),
    /// A patient signing one event (patient CA; validity of minutes). The resident ID number
    /// goes into the certificate only as HMAC-SM3 under the hospital key.
    PatientEvent(PatientEventInfo),
    /// A bedside pad or other device (seal CA, or staff CA).
    Device(DeviceInfo),
}

impl IssueProfile {
    /// The profile's name as stored and as the admin API spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Staff(_) => "staff",
            Self::Organisation(_) => "organisation",
            Self::PatientEvent(_) => "patient_event",
            Self::Device(_) => "device",
        }
    }

    /// The CA that issues this profile unless the caller names another allowed one.
    pub fn default_ca(&self) -> &'static str {
        self.allowed_cas().first().copied().unwrap_or("staff")
    }

    /// The CAs allowed to issue this profile.
    pub fn allowed_cas(&self) -> &'static [&'static str] {
        match self {
            Self::Staff(_) => &["staff"],
            Self::Organisation(_) => &["seal"],
            Self::PatientEvent(_) => &["patient"],
            Self::Device(_) => &["seal", "staff"],
        }
    }

    /// Longest validity for this profile.
    pub fn max_validity(&self) -> Duration {
        match self {
            Self::PatientEvent(_) => MAX_EVENT_VALIDITY,
            _ => MAX_VALIDITY,
        }
    }

    /// Checks every field without issuing anything.
    pub fn validate(&self) -> Result<(), PkiError> {
        match self {
            Self::Staff(i) => i.validate(),
            Self::Organisation(i) => i.validate(),
            Self::PatientEvent(i) => i.validate(),
            Self::Device(i) => i.validate(),
        }
        .map_err(PkiError::from)
    }
}

/// Who asked, for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// `admin:<name>`, `system`, `app:<id>`...
    pub name: &'a str,
    /// The HTTP request id, or empty.
    pub request_id: &'a str,
}

impl Actor<'static> {
    /// The server itself (no request).
    pub const SYSTEM: Self = Self {
        name: "system",
        request_id: "",
    };
    /// The command line (`cosign-server pki ...`).
    pub const CLI: Self = Self {
        name: "cli",
        request_id: "",
    };
}

/// A certificate just issued and recorded.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// Issuing CA (`staff`, `patient`, `seal`).
    pub ca: String,
    /// Profile name (`staff`, `organisation`, `patient_event`, `device`).
    pub profile: String,
    /// The certificate (DER, PEM, serial, subject...).
    pub cert: ParsedCertificate,
    /// Serial of the certificate this one replaced (renewals).
    pub supersedes: Option<String>,
}

impl IssuedCertificate {
    /// Serial, lowercase hex.
    pub fn serial(&self) -> String {
        self.cert.serial_hex()
    }
}

const REASONS: [(&str, i64, RevocationReason); 9] = [
    ("unspecified", 0, RevocationReason::Unspecified),
    ("keyCompromise", 1, RevocationReason::KeyCompromise),
    ("cACompromise", 2, RevocationReason::CaCompromise),
    (
        "affiliationChanged",
        3,
        RevocationReason::AffiliationChanged,
    ),
    ("superseded", 4, RevocationReason::Superseded),
    (
        "cessationOfOperation",
        5,
        RevocationReason::CessationOfOperation,
    ),
    ("certificateHold", 6, RevocationReason::CertificateHold),
    (
        "privilegeWithdrawn",
        9,
        RevocationReason::PrivilegeWithdrawn,
    ),
    ("aACompromise", 10, RevocationReason::AaCompromise),
];

/// RFC 5280 reason code of `superseded`.
pub const SUPERSEDED: i64 = 4;

/// RFC 5280 reason name → code.
pub fn reason_code(name: &str) -> Option<i64> {
    REASONS.iter().find(|r| r.0 == name).map(|r| r.1)
}

/// Code → RFC 5280 reason name.
pub fn reason_name(code: i64) -> &'static str {
    REASONS
        .iter()
        .find(|r| r.1 == code)
        .map_or("unspecified", |r| r.0)
}

/// Code → gm-pki reason.
pub fn reason_from_code(code: i64) -> RevocationReason {
    REASONS
        .iter()
        .find(|r| r.1 == code)
        .map_or(RevocationReason::Unspecified, |r| r.2)
}

/// Parses a CSR given as PEM text or DER bytes (proof of possession is verified).
pub fn parse_csr(bytes: &[u8]) -> Result<ParsedCsr, PkiError> {
    if bytes.len() > MAX_CSR {
        return Err(PkiError::InvalidCsr("larger than 16 KiB".into()));
    }
    let parsed = match std::str::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN") => ParsedCsr::from_pem(text),
        _ => ParsedCsr::from_der(bytes),
    };
    parsed.map_err(|e| PkiError::InvalidCsr(e.to_string()))
}

/// Certificate policy of bedside pads' device certificates (project arc 1.2.156.112233, `.5` =
/// pads).
pub const PAD_DEVICE_POLICY: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.156.112233.5.1");

/// A non-critical certificatePolicies extension with `policy` alone.
fn policy_extension(
    policy: const_oid::ObjectIdentifier,
) -> Result<x509_cert::ext::Extension, PkiError> {
    let policies = x509_cert::ext::pkix::CertificatePolicies(vec![
        x509_cert::ext::pkix::certpolicy::PolicyInformation {
            policy_identifier: policy,
            policy_qualifiers: None,
        },
    ]);
    Ok(x509_cert::ext::Extension {
        extn_id: const_oid::db::rfc5280::ID_CE_CERTIFICATE_POLICIES,
        critical: false,
        extn_value: der::asn1::OctetString::new(
            der::Encode::to_der(&policies).map_err(gm_pki::Error::from)?,
        )
        .map_err(gm_pki::Error::from)?,
    })
}

fn check_validity(validity: Duration, max: Duration, profile: &str) -> Result<(), PkiError> {
    if validity < Duration::from_secs(60) || validity > max {
        return Err(PkiError::InvalidField {
            field: "validity",
            reason: format!(
                "{profile} certificates last 1 minute to {} days",
                max.as_secs() / 86_400
            ),
        });
    }
    Ok(())
}

impl Pki {
    /// Issues an end-entity certificate with `profile` for `public_key` under CA `ca`, valid
    /// from now for `validity`, records it and audits it (`pki.issue`). The caller vouches for
    /// the key: a two-party joint key it generated, or the key of a CSR whose proof of
    /// possession was verified ([`Pki::issue_from_csr`]).
    ///
    /// Limits: `validity` from 1 minute to 5 years (patient events: to 1 day, rounded down to
    /// whole minutes); `ca` must be one of [`IssueProfile::allowed_cas`].
    pub async fn issue_for_key(
        &self,
        db: &Db,
        ca: &str,
        public_key: &sm2::PublicKey,
        profile: IssueProfile,
        validity: Duration,
        actor: &Actor<'_>,
    ) -> Result<IssuedCertificate, PkiError> {
        if !super::CAS.contains(&ca) || ca == "root" {
            return Err(PkiError::UnknownCa(ca.chars().take(32).collect()));
        }
        if !profile.allowed_cas().contains(&ca) {
            return Err(PkiError::ProfileMismatch {
                ca: ca.to_owned(),
                profile: profile.name(),
            });
        }
        check_validity(validity, profile.max_validity(), profile.name())?;
        profile.validate()?;
        let not_before = super::now_seconds();
        let urls = urls_for(&self.public_url, ca);
        let period = Period::starting(not_before, validity)?;
        let params = match &profile {
            IssueProfile::Staff(info) => {
                profile::staff(info, self.licence_oid, *public_key, period, &urls)?
            }
            IssueProfile::Organisation(info) => {
                profile::organisation(info, *public_key, period, &urls)?
            }
            IssueProfile::Device(info) => profile::device(info, *public_key, period, &urls)?,
            IssueProfile::PatientEvent(info) => {
                let mac = match &info.resident_id {
                    Some(id) => Some(self.resident_id_mac(id).await?),
                    None => None,
                };
                let minutes = u32::try_from(validity.as_secs() / 60).unwrap_or(u32::MAX);
                profile::patient_event(info, mac.as_ref(), *public_key, not_before, minutes, &urls)?
            }
        };
        let issued = self.sign_and_record(db, ca, profile.name(), params).await?;
        self.audit_issue(db, "pki.issue", &issued, actor, serde_json::json!({}))
            .await?;
        Ok(issued)
    }

    /// Issues a delegated (auto-sign) certificate from the staff CA: the staff profile's
    /// subject and extensions for `info`, plus a certificatePolicies extension with
    /// `policy` alone (which marks the certificate as one whose key the server holds for the
    /// doctor), and the serial the caller reserved (named in the authorisation the doctor
    /// co-signed), valid for exactly `period` (the authorised window). Recorded with profile
    /// `auto_sign` and audited as `pki.issue`.
    #[allow(clippy::too_many_arguments)] // the parts of one issuance
    pub async fn issue_delegated(
        &self,
        db: &Db,
        public_key: &sm2::PublicKey,
        info: &StaffInfo,
        policy: const_oid::ObjectIdentifier,
        serial: &[u8],
        period: Period,
        actor: &Actor<'_>,
    ) -> Result<IssuedCertificate, PkiError> {
        let validity = period
            .not_after
            .duration_since(period.not_before)
            .unwrap_or_default();
        check_validity(validity, MAX_VALIDITY, "auto_sign")?;
        let urls = urls_for(&self.public_url, "staff");
        let mut params = profile::staff(info, self.licence_oid, *public_key, period, &urls)?;
        params.serial = Some(serial.to_vec());
        params.extra_extensions.push(policy_extension(policy)?);
        let issued = self
            .sign_and_record(db, "staff", "auto_sign", params)
            .await?;
        self.audit_issue(
            db,
            "pki.issue",
            &issued,
            actor,
            serde_json::json!({ "policy": policy.to_string() }),
        )
        .await?;
        Ok(issued)
    }

    /// Issues a bedside pad's device certificate (issue 8, `docs/api/patient.md` §5) from the
    /// seal CA: the device profile (digitalSignature, clientAuth) plus a certificatePolicies
    /// extension with [`PAD_DEVICE_POLICY`] alone, so a relying party can tell a pad enrolled
    /// through `POST /api/v1/pad/enrol` (key proven by the pad's signature) from other devices.
    /// Recorded with profile `device` and audited as `pki.issue`.
    pub async fn issue_pad(
        &self,
        db: &Db,
        public_key: &sm2::PublicKey,
        info: &DeviceInfo,
        validity: Duration,
        actor: &Actor<'_>,
    ) -> Result<IssuedCertificate, PkiError> {
        check_validity(validity, MAX_VALIDITY, "device")?;
        info.validate()?;
        let urls = urls_for(&self.public_url, "seal");
        let period = Period::starting(super::now_seconds(), validity)?;
        let mut params = profile::device(info, *public_key, period, &urls)?;
        params
            .extra_extensions
            .push(policy_extension(PAD_DEVICE_POLICY)?);
        let issued = self.sign_and_record(db, "seal", "device", params).await?;
        self.audit_issue(
            db,
            "pki.issue",
            &issued,
            actor,
            serde_json::json!({ "policy": PAD_DEVICE_POLICY.to_string() }),
        )
        .await?;
        Ok(issued)
    }

    /// Issues from a PKCS#10 request: its signature (proof of possession) is verified and its
    /// key certified with `profile`; the CSR's own subject is not used (the profile's fields
    /// make the subject). Audited like [`Pki::issue_for_key`].
    pub async fn issue_from_csr(
        &self,
        db: &Db,
        ca: &str,
        csr: &[u8],
        profile: IssueProfile,
        validity: Duration,
        actor: &Actor<'_>,
    ) -> Result<IssuedCertificate, PkiError> {
        let csr = parse_csr(csr)?;
        self.issue_for_key(db, ca, &csr.public_key(), profile, validity, actor)
            .await
    }

    /// Renews certificate `serial`: a new certificate for the same subject with the same
    /// profile extensions, valid from now for `validity`, for `new_key` (a re-key) or the old
    /// key. The old certificate is revoked with reason `superseded` in the same transaction,
    /// and the renewal is audited (`pki.renew`). CA, TSA and OCSP certificates and patient
    /// event certificates (one event each) are not renewable.
    pub async fn renew(
        &self,
        db: &Db,
        serial: &str,
        new_key: Option<&sm2::PublicKey>,
        validity: Duration,
        actor: &Actor<'_>,
    ) -> Result<IssuedCertificate, PkiError> {
        let old = db
            .certificate_by_serial(serial)
            .await?
            .ok_or(PkiError::NotFound)?;
        if !["staff", "organisation", "device", "seal"].contains(&old.profile.as_str()) {
            return Err(PkiError::NotRenewable(format!(
                "{} certificates are not renewed",
                old.profile
            )));
        }
        check_validity(validity, MAX_VALIDITY, &old.profile)?;
        if matches!(
            db.certificate_status(&old.issuer, serial).await?,
            Some(Some(_))
        ) {
            return Err(PkiError::AlreadyRevoked);
        }
        let old_cert = ParsedCertificate::from_der(&old.der).map_err(Error::from)?;
        let key = match new_key {
            Some(k) => *k,
            None => old_cert.public_key().map_err(Error::from)?,
        };
        let period = Period::starting(super::now_seconds(), validity)?;
        let params = profile::renewal(
            &old_cert,
            key,
            period,
            &urls_for(&self.public_url, &old.issuer),
        )?;
        let cert = self.sign(&old.issuer, params).await?;
        let row = row_for(&old.issuer, &old.profile, &cert);
        match db
            .renew_certificate(&row, serial, now_ms(), SUPERSEDED)
            .await?
        {
            RenewOutcome::Renewed => {}
            RenewOutcome::AlreadyRevoked => return Err(PkiError::AlreadyRevoked),
            RenewOutcome::NotFound => return Err(PkiError::NotFound),
        }
        let issued = IssuedCertificate {
            ca: old.issuer,
            profile: old.profile,
            cert,
            supersedes: Some(serial.to_owned()),
        };
        self.audit_issue(
            db,
            "pki.renew",
            &issued,
            actor,
            serde_json::json!({ "supersedes": serial, "rekey": new_key.is_some() }),
        )
        .await?;
        Ok(issued)
    }

    /// Revokes the certificate with `serial` (lowercase hex). Returns the issuing CA.
    pub async fn revoke(&self, db: &Db, serial: &str, reason: i64) -> Result<String, PkiError> {
        if self
            .authority("root")
            .is_some_and(|root| root.cert.serial_hex() == serial)
        {
            return Err(PkiError::Invalid(
                "the root CA certificate cannot be revoked; re-initialise the PKI instead".into(),
            ));
        }
        match db.revoke_certificate(serial, now_ms(), reason).await? {
            RevokeOutcome::Revoked(issuer) => Ok(issuer),
            RevokeOutcome::AlreadyRevoked => Err(PkiError::AlreadyRevoked),
            RevokeOutcome::NotFound => Err(PkiError::NotFound),
        }
    }

    /// The value patient event certificates carry for resident ID `id` (subject
    /// serialNumber): hex HMAC-SM3 under the hospital key. Lets other modules find a patient's
    /// certificates without storing the ID.
    pub async fn resident_id_digest(&self, id: &str) -> Result<String, PkiError> {
        gm_pki::name::validate_resident_id(id).map_err(|e| PkiError::InvalidField {
            field: "resident_id",
            reason: e.to_string(),
        })?;
        Ok(hex::encode(self.resident_id_mac(id).await?))
    }

    async fn resident_id_mac(&self, id: &str) -> Result<[u8; 32], PkiError> {
        let id = id.to_owned();
        let mac = crypto_device::with_secret(&*self.device, &self.resident_id_key, move |key| {
            profile::keyed_resident_id(key, &id)
                .map_err(|e| crypto_device::Error::InvalidInput(e.to_string()))
        })
        .await
        .map_err(Error::from)?;
        Ok(mac)
    }

    async fn sign(
        &self,
        ca: &str,
        params: CertificateParams,
    ) -> Result<ParsedCertificate, PkiError> {
        let auth = self.must(ca)?;
        let cert = blocking(move || {
            gm_pki::cert::issue_certificate(&params, Some(&auth.cert), &auth.signer, &mut rng())
        })
        .await?
        .map_err(Error::from)?;
        Ok(cert)
    }

    async fn sign_and_record(
        &self,
        db: &Db,
        ca: &str,
        profile: &str,
        params: CertificateParams,
    ) -> Result<IssuedCertificate, PkiError> {
        let cert = self.sign(ca, params).await?;
        db.insert_certificate(&row_for(ca, profile, &cert), now_ms())
            .await?;
        Ok(IssuedCertificate {
            ca: ca.to_owned(),
            profile: profile.to_owned(),
            cert,
            supersedes: None,
        })
    }

    async fn audit_issue(
        &self,
        db: &Db,
        action: &str,
        issued: &IssuedCertificate,
        actor: &Actor<'_>,
        mut detail: serde_json::Value,
    ) -> Result<(), PkiError> {
        // The subject holds no plain ID number (staff: extension; patients: keyed hash).
        detail["ca"] = issued.ca.clone().into();
        detail["profile"] = issued.profile.clone().into();
        detail["subject"] = issued.cert.subject_string().into();
        detail["not_after"] = crate::clock::rfc3339(unix_ms(issued.cert.not_after())).into();
        self.audit
            .append(
                db,
                now_ms(),
                &Event {
                    actor: actor.name,
                    action,
                    target: &issued.serial(),
                    outcome: "ok",
                    detail,
                    request_id: actor.request_id,
                },
            )
            .await?;
        Ok(())
    }
}

pub(super) fn row_for(ca: &str, profile: &str, cert: &ParsedCertificate) -> CertificateRow {
    CertificateRow {
        issuer: ca.to_owned(),
        serial: cert.serial_hex(),
        subject: cert.subject_string(),
        profile: profile.to_owned(),
        not_before: unix_ms(cert.not_before()),
        not_after: unix_ms(cert.not_after()),
        der: cert.der().to_vec(),
    }
}
