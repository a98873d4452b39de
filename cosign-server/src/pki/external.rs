//! Certificates issued by accredited external CAs (issue 4).
//!
//! 1. An administrator uploads the external CA's root (a trust anchor) and intermediates
//!    ([`Pki::trust_external`]); each must be a current SM2 CA certificate, and an intermediate
//!    must chain to an anchor (path validation for certificate signing).
//! 2. The server generates a key in its crypto device and a PKCS#10 request for it
//!    ([`Pki::external_request`]); the request is recorded and handed to the external CA.
//! 3. What the CA issues is imported ([`Pki::import_external`]): the path to a configured anchor
//!    is validated with `gm_pki::path::validate_path` (signatures, validity now, CA flags and
//!    keyCertSign, path length, unknown critical extensions, leaf usage for document signing,
//!    revocation by CRLs supplied with the import), and the certificate's key must be the key of
//!    one of our recorded requests, still present in the device. The certificate, its chain and
//!    the link to the request are written in one transaction; every step is audited.

use std::time::SystemTime;

use crypto_device::KeyId;
use gm_pki::ParsedCertificate;
use gm_pki::PathError;
use gm_pki::cert::KeyUsageBit;
use gm_pki::crl::ParsedCrl;
use gm_pki::path::{Options, Purpose, Revocation, validate_path};
use serde::Deserialize;
use sm3::{Digest, Sm3};

use super::{DeviceSigner, Pki, blocking, now_seconds, unix_ms};
use crate::audit::Event;
use crate::clock::{now_ms, rfc3339};
use crate::error::Error;
use crate::store::Db;
use crate::store::pki_external::{
    ExternalCaRow, ExternalCertificateRow, ExternalCrlRow, ExternalRequestRow, ImportOutcome,
};

/// Largest certificate or CRL upload (PEM text or DER bytes).
pub const MAX_UPLOAD: usize = 256 * 1024;
/// Most certificates in one upload (a leaf and its chain, or a CA bundle).
pub const MAX_CERTIFICATES: usize = 10;
/// Most CRLs in one import.
pub const MAX_CRLS: usize = 10;

/// Why an external-trust or import request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    /// Not PEM / DER X.509 (or CRL) data, truncated, not SM2, too large or too many.
    #[error("invalid certificate data: {0}")]
    Garbage(String),
    /// An uploaded CA certificate is not a CA (cA flag, keyCertSign).
    #[error("not a CA certificate: {0}")]
    NotCa(String),
    /// A certificate has expired.
    #[error("{0}")]
    Expired(String),
    /// A certificate is not valid yet.
    #[error("{0}")]
    NotYetValid(String),
    /// The chain does not end at a configured anchor.
    #[error("{0}")]
    UnknownAnchor(String),
    /// The chain is incomplete, a signature does not verify, or a constraint is broken.
    #[error("{0}")]
    BrokenChain(String),
    /// Key usage / CA flag does not allow the use.
    #[error("{0}")]
    WrongUsage(String),
    /// Revoked by a supplied CRL.
    #[error("{0}")]
    Revoked(String),
    /// The key is not one of our recorded requests (or left the device).
    #[error("{0}")]
    KeyMismatch(String),
    /// Already imported.
    #[error("already imported")]
    AlreadyImported,
    /// No such trust anchor / request.
    #[error("not found")]
    NotFound,
    /// A parameter is refused (subject fields).
    #[error("{0}")]
    Invalid(String),
    /// A server-side failure.
    #[error(transparent)]
    Server(#[from] Error),
}

impl From<gm_pki::Error> for ExternalError {
    fn from(e: gm_pki::Error) -> Self {
        Self::Server(e.into())
    }
}

impl From<sqlx::Error> for ExternalError {
    fn from(e: sqlx::Error) -> Self {
        Self::Server(e.into())
    }
}

impl From<crypto_device::Error> for ExternalError {
    fn from(e: crypto_device::Error) -> Self {
        Self::Server(e.into())
    }
}

fn when(t: SystemTime) -> String {
    rfc3339(unix_ms(t))
}

/// Maps a path-validation refusal to the typed error the API reports.
pub fn from_path(e: PathError) -> ExternalError {
    match e {
        PathError::Expired { subject, not_after } => ExternalError::Expired(format!(
            "certificate {subject} expired at {}",
            when(not_after)
        )),
        PathError::NotYetValid {
            subject,
            not_before,
        } => ExternalError::NotYetValid(format!(
            "certificate {subject} is not valid before {}",
            when(not_before)
        )),
        PathError::Revoked {
            subject,
            reason,
            time,
        } => ExternalError::Revoked(format!(
            "certificate {subject} was revoked at {} ({})",
            when(time),
            reason.map_or_else(|| "no reason given".to_owned(), |r| format!("{r:?}"))
        )),
        PathError::WrongUsage { subject, purpose } => ExternalError::WrongUsage(format!(
            "certificate {subject} may not be used for {purpose}"
        )),
        // The chain reached a self-signed certificate that is not one of our anchors.
        PathError::BrokenChain { subject, issuer } if subject == issuer => {
            ExternalError::UnknownAnchor(format!(
                "the chain ends at {subject}, which is not a configured external trust anchor"
            ))
        }
        PathError::BrokenChain { subject, issuer } => ExternalError::BrokenChain(format!(
            "no issuer certificate {issuer} found for {subject}: supply the intermediate CA certificates, or have the root uploaded as a trust anchor"
        )),
        PathError::UnsupportedAlgorithm { subject } => {
            ExternalError::Garbage(format!("certificate {subject} is not SM2 / SM3withSM2"))
        }
        other => ExternalError::BrokenChain(other.to_string()),
    }
}

/// Lowercase hex SM3 of `der`.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sm3::digest(der))
}

/// Splits concatenated DER TLVs (each must be a SEQUENCE with a definite DER length).
fn split_der(mut bytes: &[u8], what: &str) -> Result<Vec<Vec<u8>>, ExternalError> {
    let bad = |why: &str| ExternalError::Garbage(format!("{what}: {why}"));
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if bytes.first() != Some(&0x30) {
            return Err(bad("not a DER SEQUENCE"));
        }
        let first = *bytes.get(1).ok_or_else(|| bad("truncated"))?;
        let (header, len) = if first < 0x80 {
            (2usize, usize::from(first))
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 3 {
                return Err(bad("unsupported length encoding"));
            }
            let mut len = 0usize;
            for i in 0..n {
                len = (len << 8) | usize::from(*bytes.get(2 + i).ok_or_else(|| bad("truncated"))?);
            }
            (2 + n, len)
        };
        let total = header
            .checked_add(len)
            .ok_or_else(|| bad("length overflow"))?;
        let one = bytes.get(..total).ok_or_else(|| bad("truncated"))?;
        out.push(one.to_vec());
        bytes = bytes.get(total..).unwrap_or(&[]);
        if out.len() > MAX_CERTIFICATES.max(MAX_CRLS) {
            return Err(bad("too many objects"));
        }
    }
    Ok(out)
}

/// PEM blocks labelled `label`, or concatenated DER.
fn objects(
    bytes: &[u8],
    label: &str,
    what: &str,
    max: usize,
) -> Result<Vec<Vec<u8>>, ExternalError> {
    if bytes.is_empty() {
        return Err(ExternalError::Garbage(format!("no {what}")));
    }
    if bytes.len() > MAX_UPLOAD {
        return Err(ExternalError::Garbage(format!(
            "{what} larger than {} KiB",
            MAX_UPLOAD / 1024
        )));
    }
    let ders = match std::str::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN") => gm_pki::pem_decode_all(label, text)
            .map_err(|e| ExternalError::Garbage(format!("{what}: {e}")))?,
        _ => split_der(bytes, what)?,
    };
    if ders.is_empty() {
        return Err(ExternalError::Garbage(format!(
            "no {label} PEM block in the {what}"
        )));
    }
    if ders.len() > max {
        return Err(ExternalError::Garbage(format!(
            "more than {max} objects in the {what}"
        )));
    }
    Ok(ders)
}

/// Parses certificates: PEM (any number of `CERTIFICATE` blocks) or DER (one certificate or
/// several concatenated). Each must be a well-formed X.509 certificate with a key we can verify
/// with (SM2, ECDSA P-256 or RSA: other hospitals' CAs are not always SM2); at most
/// [`MAX_CERTIFICATES`], at most [`MAX_UPLOAD`] bytes. Never panics.
pub fn parse_certificates(bytes: &[u8]) -> Result<Vec<ParsedCertificate>, ExternalError> {
    objects(bytes, "CERTIFICATE", "certificate data", MAX_CERTIFICATES)?
        .iter()
        .map(|der| {
            let cert = ParsedCertificate::from_der(der)
                .map_err(|e| ExternalError::Garbage(e.to_string()))?;
            if let Err(e) = cert.signer_key() {
                return Err(ExternalError::Garbage(format!(
                    "certificate {}: {e}",
                    cert.subject_string()
                )));
            }
            Ok(cert)
        })
        .collect()
}

/// Parses CRLs: PEM `X509 CRL` blocks or DER (one or several concatenated).
pub fn parse_crls(bytes: &[u8]) -> Result<Vec<ParsedCrl>, ExternalError> {
    objects(bytes, "X509 CRL", "CRL data", MAX_CRLS)?
        .iter()
        .map(|der| ParsedCrl::from_der(der).map_err(|e| ExternalError::Garbage(e.to_string())))
        .collect()
}

fn is_ca(c: &ParsedCertificate) -> bool {
    matches!(c.basic_constraints(), Ok(Some((true, _))))
        && c.allows_key_usage(KeyUsageBit::KeyCertSign)
}

fn check_current(c: &ParsedCertificate, now: SystemTime) -> Result<(), ExternalError> {
    if now < c.not_before() {
        return Err(ExternalError::NotYetValid(format!(
            "certificate {} is not valid before {}",
            c.subject_string(),
            when(c.not_before())
        )));
    }
    if now > c.not_after() {
        return Err(ExternalError::Expired(format!(
            "certificate {} expired at {}",
            c.subject_string(),
            when(c.not_after())
        )));
    }
    Ok(())
}

/// The subject of a request made for an external CA (the CA may replace it with what it
/// verified; it is only a proposal).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalSubject {
    /// CN, e.g. the hospital's or the seal's name.
    pub common_name: String,
    /// O; default: the configured organisation (`pki.organisation`).
    pub organisation: Option<String>,
    /// OU, optional.
    pub organisational_unit: Option<String>,
}

fn check_field(field: &str, v: &str) -> Result<(), ExternalError> {
    let n = v.chars().count();
    if n == 0 || n > 64 || v.trim() != v || v.chars().any(char::is_control) {
        return Err(ExternalError::Invalid(format!(
            "{field}: 1–64 characters, no control characters or surrounding spaces"
        )));
    }
    Ok(())
}

fn parse_stored(
    rows: &[ExternalCaRow],
) -> Result<(Vec<ParsedCertificate>, Vec<ParsedCertificate>), ExternalError> {
    let mut anchors = Vec::new();
    let mut intermediates = Vec::new();
    for r in rows {
        let c = ParsedCertificate::from_der(&r.der)?;
        if r.kind == "anchor" {
            anchors.push(c);
        } else {
            intermediates.push(c);
        }
    }
    Ok((anchors, intermediates))
}

/// Trust material for verifying documents ([`Pki::verification_trust`]).
#[derive(Debug, Clone, Default)]
pub struct VerificationTrust {
    /// This server's root first, then the external anchors.
    pub anchors: Vec<ParsedCertificate>,
    /// External intermediate CAs.
    pub intermediates: Vec<ParsedCertificate>,
    /// CRLs uploaded for external CAs (their signatures were checked at upload).
    pub crls: Vec<ParsedCrl>,
}

/// What an import brings: the certificate (optionally followed by its chain), more chain
/// certificates, CRLs, and optionally the request it answers.
#[derive(Debug, Clone, Copy)]
pub struct ImportInput<'a> {
    /// The end-entity certificate first, then optionally its issuers (PEM or DER).
    pub certificates: &'a [u8],
    /// More chain certificates (PEM or DER).
    pub chain: Option<&'a [u8]>,
    /// CRLs of the chain's CAs (PEM or DER), used for revocation checking.
    pub crls: Option<&'a [u8]>,
    /// The request id it answers; without it the request is found by the certificate's key.
    pub request_id: Option<&'a str>,
}

impl Pki {
    /// Trusts external CA certificates (PEM or DER, a bundle allowed): self-signed ones become
    /// anchors, the others intermediates that must chain to an anchor (already trusted or in the
    /// same upload). Each must be a current SM2 CA certificate. All rows are written in one
    /// transaction (fingerprints already trusted are left as they are) and audited as
    /// `pki.external.trust`. Returns each row and whether it was new.
    pub async fn trust_external(
        &self,
        db: &Db,
        bytes: &[u8],
        actor: &super::Actor<'_>,
    ) -> Result<Vec<(ExternalCaRow, bool)>, ExternalError> {
        let certs = parse_certificates(bytes)?;
        let now = now_seconds();
        let (mut anchors, mut intermediates) = parse_stored(&db.external_cas().await?)?;
        let mut kinds = Vec::with_capacity(certs.len());
        for c in &certs {
            if !is_ca(c) {
                return Err(ExternalError::NotCa(format!(
                    "{} is not a CA certificate (basicConstraints cA and keyUsage keyCertSign are required)",
                    c.subject_string()
                )));
            }
            check_current(c, now)?;
            if c.subject() == c.issuer() {
                let own = c.signer_key()?;
                if c.verify_signature_by(&own).is_err() {
                    return Err(ExternalError::BrokenChain(format!(
                        "the self-signature of {} does not verify",
                        c.subject_string()
                    )));
                }
                anchors.push(c.clone());
                kinds.push("anchor");
            } else {
                intermediates.push(c.clone());
                kinds.push("intermediate");
            }
        }
        if anchors.is_empty() {
            return Err(ExternalError::UnknownAnchor(
                "no external trust anchor is configured: upload the root CA certificate (with the intermediates, or first)".into(),
            ));
        }
        for (c, kind) in certs.iter().zip(&kinds) {
            if *kind == "intermediate" {
                validate_path(
                    c,
                    &intermediates,
                    &anchors,
                    &Options::new(now, Purpose::CertSigning),
                )
                .map_err(from_path)?;
            }
        }
        let at = now_ms();
        let rows: Vec<ExternalCaRow> = certs
            .iter()
            .zip(&kinds)
            .map(|(c, kind)| ExternalCaRow {
                fingerprint: fingerprint(c.der()),
                kind: (*kind).to_owned(),
                subject: c.subject_string(),
                issuer: c.issuer_string(),
                serial: c.serial_hex(),
                not_before: unix_ms(c.not_before()),
                not_after: unix_ms(c.not_after()),
                der: c.der().to_vec(),
                added_by: actor.name.to_owned(),
                created_at: at,
            })
            .collect();
        let added = db.insert_external_cas(&rows).await?;
        let detail: Vec<serde_json::Value> = rows
            .iter()
            .zip(&added)
            .map(|(r, new)| {
                serde_json::json!({
                    "fingerprint": r.fingerprint, "kind": r.kind, "subject": r.subject, "added": new,
                })
            })
            .collect();
        self.audit
            .append(
                db,
                at,
                &Event {
                    actor: actor.name,
                    action: "pki.external.trust",
                    target: rows.first().map_or("", |r| r.fingerprint.as_str()),
                    outcome: "ok",
                    detail: serde_json::json!({ "certificates": detail }),
                    request_id: actor.request_id,
                },
            )
            .await?;
        Ok(rows.into_iter().zip(added).collect())
    }

    /// Stops trusting an external CA certificate (audited as `pki.external.untrust`).
    /// Certificates imported under it stay recorded; new imports no longer chain to it.
    pub async fn untrust_external(
        &self,
        db: &Db,
        fingerprint: &str,
        actor: &super::Actor<'_>,
    ) -> Result<ExternalCaRow, ExternalError> {
        let row = db
            .delete_external_ca(fingerprint)
            .await?
            .ok_or(ExternalError::NotFound)?;
        self.audit
            .append(
                db,
                now_ms(),
                &Event {
                    actor: actor.name,
                    action: "pki.external.untrust",
                    target: &row.fingerprint,
                    outcome: "ok",
                    detail: serde_json::json!({ "kind": row.kind, "subject": row.subject }),
                    request_id: actor.request_id,
                },
            )
            .await?;
        Ok(row)
    }

    /// Records CRLs of trusted external CAs (PEM or DER, several allowed): each must be signed
    /// by a trusted external CA's key and not past its nextUpdate. Each replaces its CA's
    /// stored CRL when newer; all in one transaction, audited as `pki.external.crl`. Imports
    /// then check revocation against them. Returns each row and whether it was stored.
    pub async fn add_external_crls(
        &self,
        db: &Db,
        bytes: &[u8],
        actor: &super::Actor<'_>,
    ) -> Result<Vec<(ExternalCrlRow, bool)>, ExternalError> {
        let crls = parse_crls(bytes)?;
        let cas: Vec<(String, ParsedCertificate)> = db
            .external_cas()
            .await?
            .iter()
            .map(|r| Ok((r.fingerprint.clone(), ParsedCertificate::from_der(&r.der)?)))
            .collect::<Result<_, ExternalError>>()?;
        let now = now_seconds();
        let at = now_ms();
        let mut rows = Vec::with_capacity(crls.len());
        for crl in &crls {
            let signer = cas.iter().find(|(_, ca)| {
                ca.subject() == crl.issuer()
                    && ca
                        .signer_key()
                        .is_ok_and(|k| crl.verify_signature_by(&k).is_ok())
            });
            let Some((fp, _)) = signer else {
                return Err(ExternalError::UnknownAnchor(format!(
                    "the CRL of {} is not signed by a trusted external CA",
                    crl.issuer_string()
                )));
            };
            if crl.next_update().is_some_and(|n| n < now) {
                return Err(ExternalError::Expired(format!(
                    "the CRL of {} is past its nextUpdate",
                    crl.issuer_string()
                )));
            }
            if crl.this_update() > now {
                return Err(ExternalError::NotYetValid(format!(
                    "the CRL of {} has a thisUpdate in the future",
                    crl.issuer_string()
                )));
            }
            rows.push(ExternalCrlRow {
                ca: fp.clone(),
                issuer: crl.issuer_string(),
                this_update: unix_ms(crl.this_update()),
                next_update: crl.next_update().map_or(i64::MAX, unix_ms),
                der: crl.der().to_vec(),
                added_by: actor.name.to_owned(),
                created_at: at,
            });
        }
        let stored = db.upsert_external_crls(&rows).await?;
        let detail: Vec<serde_json::Value> = rows
            .iter()
            .zip(&stored)
            .map(|(r, s)| serde_json::json!({ "ca": r.ca, "issuer": r.issuer, "this_update": rfc3339(r.this_update), "stored": s }))
            .collect();
        self.audit
            .append(
                db,
                at,
                &Event {
                    actor: actor.name,
                    action: "pki.external.crl",
                    target: rows.first().map_or("", |r| r.ca.as_str()),
                    outcome: "ok",
                    detail: serde_json::json!({ "crls": detail }),
                    request_id: actor.request_id,
                },
            )
            .await?;
        Ok(rows.into_iter().zip(stored).collect())
    }

    /// Generates an SM2 key in the crypto device and a PKCS#10 request for it, to hand to an
    /// external CA; records it (audited as `pki.external.request`). If recording fails the key
    /// is destroyed.
    pub async fn external_request(
        &self,
        db: &Db,
        subject: &ExternalSubject,
        actor: &super::Actor<'_>,
    ) -> Result<ExternalRequestRow, ExternalError> {
        let org = subject
            .organisation
            .clone()
            .unwrap_or_else(|| self.cfg.organisation.clone());
        check_field("common_name", &subject.common_name)?;
        check_field("organisation", &org)?;
        let mut dn = gm_pki::DnBuilder::new().country("CN").organization(org);
        if let Some(ou) = &subject.organisational_unit {
            check_field("organisational_unit", ou)?;
            dn = dn.organizational_unit(ou.clone());
        }
        let name = dn
            .common_name(subject.common_name.clone())
            .build()
            .map_err(|e| ExternalError::Invalid(e.to_string()))?;
        let id = uuid::Uuid::new_v4().to_string();
        let (key, _) = self
            .device
            .generate_sm2(&format!("pki:external:{id}"))
            .await?;
        let made = async {
            let signer = DeviceSigner::new(self.device.clone(), key.clone()).await?;
            let public_key = gm_pki::Sm2Signer::public_key(&signer);
            let subject_text = gm_pki::name::display_name(&name);
            let csr = blocking(move || gm_pki::csr::build_csr(&name, &signer, &[])).await??;
            let row = ExternalRequestRow {
                id: id.clone(),
                key_id: key.0.clone(),
                public_key: hex::encode(gm_pki::signer::public_key_der(&public_key)?),
                subject: subject_text,
                csr,
                certificate: None,
                requested_by: actor.name.to_owned(),
                created_at: now_ms(),
            };
            db.insert_external_request(&row).await?;
            Ok::<_, Error>(row)
        }
        .await;
        let row = match made {
            Ok(row) => row,
            Err(e) => {
                if let Err(d) = self.device.destroy(&key).await {
                    tracing::warn!(error = %d, key = %key.0, "could not destroy an unused external-request key");
                }
                return Err(e.into());
            }
        };
        self.audit
            .append(
                db,
                row.created_at,
                &Event {
                    actor: actor.name,
                    action: "pki.external.request",
                    target: &row.id,
                    outcome: "ok",
                    detail: serde_json::json!({ "subject": row.subject, "key_id": row.key_id }),
                    request_id: actor.request_id,
                },
            )
            .await?;
        Ok(row)
    }

    /// What documents are verified against: this server's root, the trusted external anchors
    /// and intermediates, and the CRLs uploaded for them.
    pub async fn verification_trust(&self, db: &Db) -> Result<VerificationTrust, ExternalError> {
        let (mut anchors, intermediates) = parse_stored(&db.external_cas().await?)?;
        if let Some(root) = self.authority("root") {
            anchors.insert(0, root.cert.clone());
        }
        let crls = db
            .external_crls()
            .await?
            .iter()
            .map(|r| ParsedCrl::from_der(&r.der))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(VerificationTrust {
            anchors,
            intermediates,
            crls,
        })
    }

    /// Imports a certificate an external CA issued for one of our requests: validates the path
    /// to a configured anchor now (for document signing, with the supplied CRLs), checks the key
    /// is a recorded request's key still held in the device, and records the certificate with
    /// its chain in one transaction (audited as `pki.external.import`).
    pub async fn import_external(
        &self,
        db: &Db,
        input: ImportInput<'_>,
        actor: &super::Actor<'_>,
    ) -> Result<ExternalCertificateRow, ExternalError> {
        let mut supplied = parse_certificates(input.certificates)?;
        if let Some(chain) = input.chain {
            supplied.extend(parse_certificates(chain)?);
        }
        if supplied.len() > MAX_CERTIFICATES {
            return Err(ExternalError::Garbage(format!(
                "more than {MAX_CERTIFICATES} certificates"
            )));
        }
        let mut crls = match input.crls {
            Some(bytes) => parse_crls(bytes)?,
            None => Vec::new(),
        };
        // CRLs uploaded earlier for trusted external CAs (their signatures were checked then;
        // validate_path checks them again against the issuer it finds).
        for stored in db.external_crls().await? {
            crls.push(ParsedCrl::from_der(&stored.der)?);
        }
        let leaf = supplied.remove(0);
        // Certificates we sign with must be SM2 (the key is in our device); the CAs above may
        // use any algorithm the path validation knows.
        if leaf.public_key().is_err() {
            return Err(ExternalError::Garbage(format!(
                "certificate {} does not carry an SM2 public key: only SM2 certificates can be \
                 imported for signing",
                leaf.subject_string()
            )));
        }
        let (anchors, stored_intermediates) = parse_stored(&db.external_cas().await?)?;
        if anchors.is_empty() {
            return Err(ExternalError::UnknownAnchor(
                "no external trust anchor is configured: an administrator must upload the issuing CA's root first".into(),
            ));
        }
        let mut intermediates = supplied;
        intermediates.extend(stored_intermediates);
        let now = now_seconds();
        let path = blocking(move || {
            let revocation = Revocation {
                crls: &crls,
                ocsp: &[],
                require: false,
            };
            validate_path(
                &leaf,
                &intermediates,
                &anchors,
                &Options::new(now, Purpose::DocumentSigning).with_revocation(revocation),
            )
        })
        .await?
        .map_err(from_path)?;
        let leaf = path
            .chain
            .first()
            .ok_or(Error::Internal("empty validated path"))?;
        let anchor = path
            .chain
            .last()
            .ok_or(Error::Internal("empty validated path"))?;
        let public_key = leaf.public_key()?;
        let key_hex = hex::encode(gm_pki::signer::public_key_der(&public_key)?);
        let request = match input.request_id {
            Some(id) => {
                let r = db
                    .external_request(id)
                    .await?
                    .ok_or(ExternalError::NotFound)?;
                if r.public_key != key_hex {
                    return Err(ExternalError::KeyMismatch(format!(
                        "the certificate's public key is not the key of request {id}"
                    )));
                }
                r
            }
            None => db.external_request_by_key(&key_hex).await?.ok_or_else(|| {
                ExternalError::KeyMismatch(
                    "the certificate's public key matches none of our certification requests"
                        .into(),
                )
            })?,
        };
        match DeviceSigner::new(self.device.clone(), KeyId(request.key_id.clone())).await {
            Ok(signer) if gm_pki::Sm2Signer::public_key(&signer) == public_key => {}
            _ => {
                return Err(ExternalError::KeyMismatch(format!(
                    "the key of request {} is no longer in the crypto device",
                    request.id
                )));
            }
        }
        let chain: String = path
            .chain
            .iter()
            .skip(1)
            .map(ParsedCertificate::to_pem)
            .collect();
        let row = ExternalCertificateRow {
            fingerprint: fingerprint(leaf.der()),
            request_id: request.id.clone(),
            key_id: request.key_id.clone(),
            serial: leaf.serial_hex(),
            subject: leaf.subject_string(),
            issuer: leaf.issuer_string(),
            anchor: fingerprint(anchor.der()),
            not_before: unix_ms(leaf.not_before()),
            not_after: unix_ms(leaf.not_after()),
            der: leaf.der().to_vec(),
            chain,
            imported_by: actor.name.to_owned(),
            created_at: now_ms(),
        };
        match db.insert_external_certificate(&row).await? {
            ImportOutcome::Imported => {}
            ImportOutcome::AlreadyImported => return Err(ExternalError::AlreadyImported),
            ImportOutcome::RequestGone => return Err(ExternalError::NotFound),
        }
        self.audit
            .append(
                db,
                row.created_at,
                &Event {
                    actor: actor.name,
                    action: "pki.external.import",
                    target: &row.fingerprint,
                    outcome: "ok",
                    detail: serde_json::json!({
                        "request": row.request_id,
                        "serial": row.serial,
                        "subject": row.subject,
                        "issuer": row.issuer,
                        "anchor": row.anchor,
                        "not_after": rfc3339(row.not_after),
                        "crls": input.crls.is_some(),
                    }),
                    request_id: actor.request_id,
                },
            )
            .await?;
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use proptest::prelude::*;

    fn sample_der() -> Vec<u8> {
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        let key = gm_pki::SoftwareSigner::generate(&mut rng).unwrap();
        let name = gm_pki::DnBuilder::new()
            .country("CN")
            .common_name("External test CA")
            .build()
            .unwrap();
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let params = gm_pki::profile::root_ca(
            name,
            gm_pki::Sm2Signer::public_key(&key),
            gm_pki::profile::Period::starting(now, std::time::Duration::from_secs(86_400)).unwrap(),
        );
        gm_pki::cert::issue_certificate(&params, None, &key, &mut rng)
            .unwrap()
            .der()
            .to_vec()
    }

    #[test]
    fn der_pem_and_bundles_parse() {
        let der = sample_der();
        assert_eq!(parse_certificates(&der).unwrap().len(), 1);
        let mut two = der.clone();
        two.extend_from_slice(&der);
        assert_eq!(parse_certificates(&two).unwrap().len(), 2);
        let pem = format!(
            "junk before\n{}{}",
            gm_pki::pem_encode("CERTIFICATE", &der),
            gm_pki::pem_encode("CERTIFICATE", &der)
        );
        assert_eq!(parse_certificates(pem.as_bytes()).unwrap().len(), 2);
        assert_eq!(fingerprint(&der).len(), 64);
    }

    #[test]
    fn garbage_truncation_and_limits_are_typed() {
        let der = sample_der();
        for bad in [
            &b""[..],
            b"garbage",
            &der[..der.len() - 1],
            &der[..10],
            b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ] {
            assert!(matches!(
                parse_certificates(bad),
                Err(ExternalError::Garbage(_))
            ));
        }
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(matches!(
            parse_certificates(&trailing),
            Err(ExternalError::Garbage(_))
        ));
        let many: Vec<u8> = std::iter::repeat_n(der.as_slice(), MAX_CERTIFICATES + 1)
            .flatten()
            .copied()
            .collect();
        assert!(matches!(
            parse_certificates(&many),
            Err(ExternalError::Garbage(_))
        ));
        assert!(matches!(
            parse_certificates(&vec![0x30; MAX_UPLOAD + 1]),
            Err(ExternalError::Garbage(_))
        ));
        assert!(matches!(
            parse_crls(b"nope"),
            Err(ExternalError::Garbage(_))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parser_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_certificates(&bytes);
            let _ = parse_crls(&bytes);
        }

        #[test]
        fn mutated_certificates_are_refused_or_parsed_without_panic(
            cut in 0usize..600, flip in 0usize..600, bit in 0u8..8,
        ) {
            let der = sample_der();
            let cut = cut.min(der.len() - 1);
            prop_assert!(parse_certificates(&der[..cut]).is_err());
            let mut flipped = der.clone();
            if let Some(b) = flipped.get_mut(flip % der.len()) {
                *b ^= 1 << bit;
            }
            let _ = parse_certificates(&flipped);
        }
    }
}
