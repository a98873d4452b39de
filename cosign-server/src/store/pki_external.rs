//! External-certificate tables (migration 0005): trusted external CAs, certification requests
//! for device keys, imported certificates. Multi-row writes run in one transaction.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::store::Db;

/// A trusted external CA certificate.
#[derive(Debug, Clone)]
pub struct ExternalCaRow {
    /// Lowercase hex SM3 of the DER.
    pub fingerprint: String,
    /// `anchor` (self-signed root) or `intermediate`.
    pub kind: String,
    /// Subject (display form).
    pub subject: String,
    /// Issuer (display form).
    pub issuer: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// Validity start (unix ms).
    pub not_before: i64,
    /// Validity end (unix ms).
    pub not_after: i64,
    /// DER.
    pub der: Vec<u8>,
    /// Who uploaded it (`admin:<name>`).
    pub added_by: String,
    /// When (unix ms).
    pub created_at: i64,
}

/// A certification request made for a key the server generated in its crypto device.
#[derive(Debug, Clone)]
pub struct ExternalRequestRow {
    /// UUID.
    pub id: String,
    /// Crypto-device key id.
    pub key_id: String,
    /// Lowercase hex of the key's SubjectPublicKeyInfo DER.
    pub public_key: String,
    /// Subject (display form).
    pub subject: String,
    /// DER PKCS#10.
    pub csr: Vec<u8>,
    /// Fingerprint of the latest certificate imported for it.
    pub certificate: Option<String>,
    /// Who asked (`admin:<name>`).
    pub requested_by: String,
    /// When (unix ms).
    pub created_at: i64,
}

/// An imported externally issued certificate.
#[derive(Debug, Clone)]
pub struct ExternalCertificateRow {
    /// Lowercase hex SM3 of the DER.
    pub fingerprint: String,
    /// The request whose key it certifies.
    pub request_id: String,
    /// Crypto-device key id.
    pub key_id: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// Subject (display form).
    pub subject: String,
    /// Issuer (display form).
    pub issuer: String,
    /// Fingerprint of the trust anchor the chain ended at.
    pub anchor: String,
    /// Validity start (unix ms).
    pub not_before: i64,
    /// Validity end (unix ms).
    pub not_after: i64,
    /// DER.
    pub der: Vec<u8>,
    /// PEM, issuer first, trust anchor last.
    pub chain: String,
    /// Who imported it.
    pub imported_by: String,
    /// When (unix ms).
    pub created_at: i64,
}

/// Outcome of recording an imported certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Recorded, and the request points at it.
    Imported,
    /// A certificate with this fingerprint is already recorded (nothing written).
    AlreadyImported,
    /// The request no longer exists (nothing written).
    RequestGone,
}

const CA_COLUMNS: &str =
    "fingerprint, kind, subject, issuer, serial, not_before, not_after, der, added_by, created_at";
const REQUEST_COLUMNS: &str =
    "id, key_id, public_key, subject, csr, certificate, requested_by, created_at";
const CERT_COLUMNS: &str = "fingerprint, request_id, key_id, serial, subject, issuer, anchor, not_before, not_after, der, chain, imported_by, created_at";

fn ca_row(r: &AnyRow) -> Result<ExternalCaRow> {
    Ok(ExternalCaRow {
        fingerprint: r.try_get(0)?,
        kind: r.try_get(1)?,
        subject: r.try_get(2)?,
        issuer: r.try_get(3)?,
        serial: r.try_get(4)?,
        not_before: r.try_get(5)?,
        not_after: r.try_get(6)?,
        der: r.try_get(7)?,
        added_by: r.try_get(8)?,
        created_at: r.try_get(9)?,
    })
}

fn request_row(r: &AnyRow) -> Result<ExternalRequestRow> {
    Ok(ExternalRequestRow {
        id: r.try_get(0)?,
        key_id: r.try_get(1)?,
        public_key: r.try_get(2)?,
        subject: r.try_get(3)?,
        csr: r.try_get(4)?,
        certificate: r.try_get(5)?,
        requested_by: r.try_get(6)?,
        created_at: r.try_get(7)?,
    })
}

fn cert_row(r: &AnyRow) -> Result<ExternalCertificateRow> {
    Ok(ExternalCertificateRow {
        fingerprint: r.try_get(0)?,
        request_id: r.try_get(1)?,
        key_id: r.try_get(2)?,
        serial: r.try_get(3)?,
        subject: r.try_get(4)?,
        issuer: r.try_get(5)?,
        anchor: r.try_get(6)?,
        not_before: r.try_get(7)?,
        not_after: r.try_get(8)?,
        der: r.try_get(9)?,
        chain: r.try_get(10)?,
        imported_by: r.try_get(11)?,
        created_at: r.try_get(12)?,
    })
}

impl Db {
    /// Records trusted external CA certificates in one transaction; a fingerprint already on
    /// record is left as it is. Returns, per row, whether it was new.
    pub async fn insert_external_cas(&self, rows: &[ExternalCaRow]) -> Result<Vec<bool>> {
        let mut tx = self.pool().begin().await?;
        let mut added = Vec::with_capacity(rows.len());
        for c in rows {
            let n = sqlx::query(&format!(
                "INSERT INTO pki_external_cas ({CA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (fingerprint) DO NOTHING"
            ))
            .bind(&c.fingerprint)
            .bind(&c.kind)
            .bind(&c.subject)
            .bind(&c.issuer)
            .bind(&c.serial)
            .bind(c.not_before)
            .bind(c.not_after)
            .bind(&c.der)
            .bind(&c.added_by)
            .bind(c.created_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            added.push(n == 1);
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Every trusted external CA certificate, oldest first.
    pub async fn external_cas(&self) -> Result<Vec<ExternalCaRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {CA_COLUMNS} FROM pki_external_cas ORDER BY created_at, fingerprint"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(ca_row).collect()
    }

    /// Removes a trusted external CA certificate; returns the removed row.
    pub async fn delete_external_ca(&self, fingerprint: &str) -> Result<Option<ExternalCaRow>> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {CA_COLUMNS} FROM pki_external_cas WHERE fingerprint = $1"
        ))
        .bind(fingerprint)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let row = ca_row(&row)?;
        sqlx::query("DELETE FROM pki_external_cas WHERE fingerprint = $1")
            .bind(fingerprint)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(row))
    }

    /// Records a certification request.
    pub async fn insert_external_request(&self, r: &ExternalRequestRow) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO pki_external_requests ({REQUEST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&r.id)
        .bind(&r.key_id)
        .bind(&r.public_key)
        .bind(&r.subject)
        .bind(&r.csr)
        .bind(&r.certificate)
        .bind(&r.requested_by)
        .bind(r.created_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Certification requests, newest first (at most `limit`).
    pub async fn external_requests(&self, limit: i64) -> Result<Vec<ExternalRequestRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM pki_external_requests ORDER BY created_at DESC, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(request_row).collect()
    }

    /// The request for a public key (hex SPKI DER).
    pub async fn external_request_by_key(
        &self,
        public_key: &str,
    ) -> Result<Option<ExternalRequestRow>> {
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM pki_external_requests WHERE public_key = $1"
        ))
        .bind(public_key)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(request_row).transpose()
    }

    /// The request with `id`.
    pub async fn external_request(&self, id: &str) -> Result<Option<ExternalRequestRow>> {
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM pki_external_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(request_row).transpose()
    }

    /// Records an imported certificate and points its request at it, in one transaction:
    /// either both happen or neither.
    pub async fn insert_external_certificate(
        &self,
        c: &ExternalCertificateRow,
    ) -> Result<ImportOutcome> {
        let mut tx = self.pool().begin().await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO pki_external_certificates ({CERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (fingerprint) DO NOTHING"
        ))
        .bind(&c.fingerprint)
        .bind(&c.request_id)
        .bind(&c.key_id)
        .bind(&c.serial)
        .bind(&c.subject)
        .bind(&c.issuer)
        .bind(&c.anchor)
        .bind(c.not_before)
        .bind(c.not_after)
        .bind(&c.der)
        .bind(&c.chain)
        .bind(&c.imported_by)
        .bind(c.created_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted != 1 {
            tx.rollback().await?;
            return Ok(ImportOutcome::AlreadyImported);
        }
        let updated =
            sqlx::query("UPDATE pki_external_requests SET certificate = $1 WHERE id = $2")
                .bind(&c.fingerprint)
                .bind(&c.request_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if updated != 1 {
            tx.rollback().await?;
            return Ok(ImportOutcome::RequestGone);
        }
        tx.commit().await?;
        Ok(ImportOutcome::Imported)
    }

    /// Imported certificates, newest first (at most `limit`).
    pub async fn external_certificates(&self, limit: i64) -> Result<Vec<ExternalCertificateRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {CERT_COLUMNS} FROM pki_external_certificates ORDER BY created_at DESC, fingerprint LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(cert_row).collect()
    }

    /// An imported certificate by fingerprint.
    pub async fn external_certificate(
        &self,
        fingerprint: &str,
    ) -> Result<Option<ExternalCertificateRow>> {
        let row = sqlx::query(&format!(
            "SELECT {CERT_COLUMNS} FROM pki_external_certificates WHERE fingerprint = $1"
        ))
        .bind(fingerprint)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(cert_row).transpose()
    }

    /// Certificates issued by our own CAs, newest first (at most `limit`): issuer, serial,
    /// subject, profile, notBefore, notAfter, revoked_at.
    pub async fn recent_certificates(&self, limit: i64) -> Result<Vec<LocalCertificateSummary>> {
        let rows = sqlx::query(
            "SELECT issuer, serial, subject, profile, not_before, not_after, revoked_at, created_at FROM pki_certificates ORDER BY created_at DESC, serial LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LocalCertificateSummary {
                    issuer: r.try_get(0)?,
                    serial: r.try_get(1)?,
                    subject: r.try_get(2)?,
                    profile: r.try_get(3)?,
                    not_before: r.try_get(4)?,
                    not_after: r.try_get(5)?,
                    revoked_at: r.try_get(6)?,
                    created_at: r.try_get(7)?,
                })
            })
            .collect()
    }
}

/// One certificate of our own CAs, for listings.
#[derive(Debug, Clone)]
pub struct LocalCertificateSummary {
    /// Issuing authority.
    pub issuer: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// Subject (display form).
    pub subject: String,
    /// Profile name.
    pub profile: String,
    /// Validity start (unix ms).
    pub not_before: i64,
    /// Validity end (unix ms).
    pub not_after: i64,
    /// Revocation time (unix ms), if revoked.
    pub revoked_at: Option<i64>,
    /// When recorded (unix ms).
    pub created_at: i64,
}

/// The newest uploaded CRL of a trusted external CA.
#[derive(Debug, Clone)]
pub struct ExternalCrlRow {
    /// Fingerprint of the external CA certificate whose key signed it.
    pub ca: String,
    /// Issuer (display form).
    pub issuer: String,
    /// thisUpdate (unix ms).
    pub this_update: i64,
    /// nextUpdate (unix ms).
    pub next_update: i64,
    /// DER.
    pub der: Vec<u8>,
    /// Who uploaded it.
    pub added_by: String,
    /// When (unix ms).
    pub created_at: i64,
}

impl Db {
    /// Records external CRLs in one transaction, each replacing its CA's stored CRL only if
    /// newer (thisUpdate). Returns, per row, whether it was stored.
    pub async fn upsert_external_crls(&self, rows: &[ExternalCrlRow]) -> Result<Vec<bool>> {
        let mut tx = self.pool().begin().await?;
        let mut stored = Vec::with_capacity(rows.len());
        for c in rows {
            let n = sqlx::query(
                "INSERT INTO pki_external_crls (ca, issuer, this_update, next_update, der, added_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (ca) DO UPDATE SET issuer = excluded.issuer, this_update = excluded.this_update, \
                 next_update = excluded.next_update, der = excluded.der, added_by = excluded.added_by, \
                 created_at = excluded.created_at \
                 WHERE pki_external_crls.this_update < excluded.this_update",
            )
            .bind(&c.ca)
            .bind(&c.issuer)
            .bind(c.this_update)
            .bind(c.next_update)
            .bind(&c.der)
            .bind(&c.added_by)
            .bind(c.created_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            stored.push(n == 1);
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// Every stored external CRL.
    pub async fn external_crls(&self) -> Result<Vec<ExternalCrlRow>> {
        let rows = sqlx::query(
            "SELECT ca, issuer, this_update, next_update, der, added_by, created_at FROM pki_external_crls ORDER BY created_at, ca",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ExternalCrlRow {
                    ca: r.try_get(0)?,
                    issuer: r.try_get(1)?,
                    this_update: r.try_get(2)?,
                    next_update: r.try_get(3)?,
                    der: r.try_get(4)?,
                    added_by: r.try_get(5)?,
                    created_at: r.try_get(6)?,
                })
            })
            .collect()
    }
}
