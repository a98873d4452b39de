//! PKI tables (migration 0003): authorities, issued certificates and revocations, CRLs,
//! time-stamp tokens. Multi-row writes run in one transaction.

use std::fmt::Write as _;

use sqlx::Row;

use crate::error::Result;
use crate::store::Db;

/// One signing identity the server holds (a CA, the TSA, an OCSP responder).
#[derive(Debug, Clone)]
pub struct AuthorityRow {
    /// `root`, `staff`, `patient`, `seal`, `tsa`, `ocsp-staff`...
    pub name: String,
    /// `ca`, `tsa` or `ocsp`.
    pub kind: String,
    /// Parent authority (empty for the root).
    pub issuer: String,
    /// Crypto-device key id.
    pub key_id: String,
    /// Serial (hex) of its certificate.
    pub cert_serial: String,
}

/// An issued certificate as stored.
#[derive(Debug, Clone)]
pub struct CertificateRow {
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
    /// DER.
    pub der: Vec<u8>,
}

/// A revocation: serial (hex), time (unix ms), RFC 5280 reason code.
#[derive(Debug, Clone)]
pub struct Revocation {
    /// Serial, lowercase hex.
    pub serial: String,
    /// When (unix ms).
    pub at: i64,
    /// CRLReason code.
    pub reason: i64,
}

/// The stored CRL of a CA.
#[derive(Debug, Clone)]
pub struct CrlRow {
    /// cRLNumber.
    pub number: i64,
    /// thisUpdate (unix ms).
    pub this_update: i64,
    /// nextUpdate (unix ms).
    pub next_update: i64,
    /// Revocations since it was built (a counter, so a rebuild racing a revocation is noticed).
    pub stale: i64,
    /// DER.
    pub der: Vec<u8>,
}

/// Outcome of a revocation attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Revoked now; the issuing CA.
    Revoked(String),
    /// Was already revoked.
    AlreadyRevoked,
    /// No such serial.
    NotFound,
}

/// A granted time-stamp token as recorded.
#[derive(Debug, Clone)]
pub struct TsaTokenRow {
    /// Serial, lowercase hex.
    pub serial: String,
    /// genTime (unix ms).
    pub gen_time: i64,
    /// `sm3` or `sha256`.
    pub imprint_alg: String,
    /// Message imprint, lowercase hex.
    pub imprint: String,
    /// DER ContentInfo.
    pub token: Vec<u8>,
}

/// Outcome of a renewal's store step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewOutcome {
    /// The new certificate is recorded and the old one revoked as superseded.
    Renewed,
    /// The old certificate was revoked meanwhile (nothing recorded).
    AlreadyRevoked,
    /// No such serial (nothing recorded).
    NotFound,
}

const INSERT_CERT: &str = "INSERT INTO pki_certificates (issuer, serial, subject, profile, not_before, not_after, der, revoked_at, revocation_reason, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, $8)";

impl Db {
    /// All authorities.
    pub async fn pki_authorities(&self) -> Result<Vec<AuthorityRow>> {
        let rows = sqlx::query(
            "SELECT name, kind, issuer, key_id, cert_serial FROM pki_authorities ORDER BY created_at, name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuthorityRow {
                    name: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    issuer: r.try_get(2)?,
                    key_id: r.try_get(3)?,
                    cert_serial: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Creates the whole hierarchy in one transaction: every authority and its certificate,
    /// and an empty, stale CRL row for each CA (so the first fetch builds CRL number 1).
    pub async fn create_pki_hierarchy(
        &self,
        authorities: &[(AuthorityRow, CertificateRow)],
        cas: &[&str],
        now: i64,
    ) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        for ca in cas {
            sqlx::query(
                "INSERT INTO pki_crls (issuer, number, this_update, next_update, stale, der) VALUES ($1, 0, 0, 0, 1, $2)",
            )
            .bind(*ca)
            .bind(Vec::<u8>::new())
            .execute(&mut *tx)
            .await?;
        }
        for (a, c) in authorities {
            insert_cert(&mut tx, c, now).await?;
            sqlx::query(
                "INSERT INTO pki_authorities (name, kind, issuer, key_id, cert_serial, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&a.name)
            .bind(&a.kind)
            .bind(&a.issuer)
            .bind(&a.key_id)
            .bind(&a.cert_serial)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records an issued certificate.
    pub async fn insert_certificate(&self, c: &CertificateRow, now: i64) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        insert_cert(&mut tx, c, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A certificate by serial (serials are unique across our CAs).
    pub async fn certificate_by_serial(&self, serial: &str) -> Result<Option<CertificateRow>> {
        let row = sqlx::query(
            "SELECT issuer, serial, subject, profile, not_before, not_after, der FROM pki_certificates WHERE serial = $1",
        )
        .bind(serial)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(CertificateRow {
                issuer: r.try_get(0)?,
                serial: r.try_get(1)?,
                subject: r.try_get(2)?,
                profile: r.try_get(3)?,
                not_before: r.try_get(4)?,
                not_after: r.try_get(5)?,
                der: r.try_get(6)?,
            })
        })
        .transpose()
    }

    /// Status of a certificate of `issuer`: `None` if unknown, `Some(None)` if good,
    /// `Some(Some((at, reason)))` if revoked.
    pub async fn certificate_status(
        &self,
        issuer: &str,
        serial: &str,
    ) -> Result<Option<Option<(i64, i64)>>> {
        let row = sqlx::query(
            "SELECT revoked_at, revocation_reason FROM pki_certificates WHERE issuer = $1 AND serial = $2",
        )
        .bind(issuer)
        .bind(serial)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let at: Option<i64> = r.try_get(0)?;
        let reason: Option<i64> = r.try_get(1)?;
        Ok(Some(at.map(|at| (at, reason.unwrap_or(0)))))
    }

    /// Revokes a certificate and marks its CA's CRL stale, in one transaction.
    pub async fn revoke_certificate(
        &self,
        serial: &str,
        at: i64,
        reason: i64,
    ) -> Result<RevokeOutcome> {
        // Write first: on SQLite a deferred transaction that reads before it writes fails at
        // once (SQLITE_BUSY, no busy wait) when another connection wrote in between.
        let mut tx = self.pool().begin().await?;
        let changed = sqlx::query(
            "UPDATE pki_certificates SET revoked_at = $1, revocation_reason = $2 WHERE serial = $3 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(reason)
        .bind(serial)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed != 1 {
            tx.rollback().await?;
            let exists = sqlx::query("SELECT 1 FROM pki_certificates WHERE serial = $1")
                .bind(serial)
                .fetch_optional(self.pool())
                .await?;
            return Ok(if exists.is_some() {
                RevokeOutcome::AlreadyRevoked
            } else {
                RevokeOutcome::NotFound
            });
        }
        let issuer: String = sqlx::query("SELECT issuer FROM pki_certificates WHERE serial = $1")
            .bind(serial)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        sqlx::query("UPDATE pki_crls SET stale = stale + 1 WHERE issuer = $1")
            .bind(&issuer)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RevokeOutcome::Revoked(issuer))
    }

    /// Records the renewal `new` of certificate `old_serial` and revokes the old one with
    /// `reason` (superseded), in one transaction: either both happen or neither.
    pub async fn renew_certificate(
        &self,
        new: &CertificateRow,
        old_serial: &str,
        at: i64,
        reason: i64,
    ) -> Result<RenewOutcome> {
        let mut tx = self.pool().begin().await?;
        let changed = sqlx::query(
            "UPDATE pki_certificates SET revoked_at = $1, revocation_reason = $2 WHERE serial = $3 AND issuer = $4 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(reason)
        .bind(old_serial)
        .bind(&new.issuer)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed != 1 {
            let exists = sqlx::query("SELECT 1 FROM pki_certificates WHERE serial = $1")
                .bind(old_serial)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            tx.rollback().await?;
            return Ok(if exists {
                RenewOutcome::AlreadyRevoked
            } else {
                RenewOutcome::NotFound
            });
        }
        insert_cert(&mut tx, new, at).await?;
        sqlx::query("UPDATE pki_crls SET stale = stale + 1 WHERE issuer = $1")
            .bind(&new.issuer)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RenewOutcome::Renewed)
    }

    /// Records a server secret (kind `secret`, no certificate) under `name` unless one exists;
    /// returns the key id now on record (ours, or the one another instance stored first).
    pub async fn insert_pki_secret(&self, name: &str, key_id: &str, now: i64) -> Result<String> {
        sqlx::query(
            "INSERT INTO pki_authorities (name, kind, issuer, key_id, cert_serial, created_at) VALUES ($1, 'secret', '', $2, '', $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(key_id)
        .bind(now)
        .execute(self.pool())
        .await?;
        let row = sqlx::query("SELECT key_id FROM pki_authorities WHERE name = $1")
            .bind(name)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Every revocation by `issuer`.
    pub async fn revocations(&self, issuer: &str) -> Result<Vec<Revocation>> {
        let rows = sqlx::query(
            "SELECT serial, revoked_at, revocation_reason FROM pki_certificates WHERE issuer = $1 AND revoked_at IS NOT NULL ORDER BY revoked_at, serial",
        )
        .bind(issuer)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Revocation {
                    serial: r.try_get(0)?,
                    at: r.try_get(1)?,
                    reason: r.try_get::<Option<i64>, _>(2)?.unwrap_or(0),
                })
            })
            .collect()
    }

    /// The stored CRL of `issuer`.
    pub async fn crl(&self, issuer: &str) -> Result<Option<CrlRow>> {
        let row = sqlx::query(
            "SELECT number, this_update, next_update, stale, der FROM pki_crls WHERE issuer = $1",
        )
        .bind(issuer)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(CrlRow {
                number: r.try_get(0)?,
                this_update: r.try_get(1)?,
                next_update: r.try_get(2)?,
                stale: r.try_get(3)?,
                der: r.try_get(4)?,
            })
        })
        .transpose()
    }

    /// Replaces the CRL of `issuer` if the stored one is still number `previous` with the
    /// revocation counter `seen_stale` (read before the revocations were listed). Returns false
    /// when another writer or a revocation got there first: the caller re-reads and rebuilds.
    pub async fn store_crl(
        &self,
        issuer: &str,
        previous: i64,
        seen_stale: i64,
        crl: &CrlRow,
    ) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let changed = sqlx::query(
            "UPDATE pki_crls SET number = $1, this_update = $2, next_update = $3, stale = 0, der = $4 WHERE issuer = $5 AND number = $6 AND stale = $7",
        )
        .bind(crl.number)
        .bind(crl.this_update)
        .bind(crl.next_update)
        .bind(&crl.der)
        .bind(issuer)
        .bind(previous)
        .bind(seen_stale)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(changed == 1)
    }

    /// Records granted time-stamp tokens in one transaction (one commit for the batch), in
    /// multi-row INSERTs of at most 100 rows. All or nothing: on an error nothing is recorded.
    pub async fn insert_tsa_tokens(&self, rows: &[TsaTokenRow]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for chunk in rows.chunks(100) {
            let mut sql = String::from(
                "INSERT INTO pki_tsa_tokens (serial, gen_time, imprint_alg, imprint, token) VALUES ",
            );
            for i in 0..chunk.len() {
                let p = i * 5;
                if i > 0 {
                    sql.push(',');
                }
                let _ = write!(
                    sql,
                    "(${}, ${}, ${}, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5
                );
            }
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(&r.serial)
                    .bind(r.gen_time)
                    .bind(&r.imprint_alg)
                    .bind(&r.imprint)
                    .bind(&r.token);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A time-stamp token by serial (hex).
    pub async fn tsa_token(&self, serial: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT token FROM pki_tsa_tokens WHERE serial = $1")
            .bind(serial)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get::<Vec<u8>, _>(0)).transpose()?)
    }

    /// Number of time-stamp tokens granted (tests, status).
    pub async fn count_tsa_tokens(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM pki_tsa_tokens")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get(0)?)
    }
}

async fn insert_cert(tx: &mut sqlx::AnyConnection, c: &CertificateRow, now: i64) -> Result<()> {
    sqlx::query(INSERT_CERT)
        .bind(&c.issuer)
        .bind(&c.serial)
        .bind(&c.subject)
        .bind(&c.profile)
        .bind(c.not_before)
        .bind(c.not_after)
        .bind(&c.der)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

impl Db {
    /// Switches authority `name` from the certificate `old_serial` to a new key and
    /// certificate, recording the certificate in the same transaction. Returns false (nothing
    /// written) if the authority no longer has `old_serial` (another instance switched it).
    pub async fn switch_authority(
        &self,
        name: &str,
        old_serial: &str,
        key_id: &str,
        cert: &CertificateRow,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let changed = sqlx::query(
            "UPDATE pki_authorities SET key_id = $1, cert_serial = $2 WHERE name = $3 AND cert_serial = $4",
        )
        .bind(key_id)
        .bind(&cert.serial)
        .bind(name)
        .bind(old_serial)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_cert(&mut tx, cert, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}
