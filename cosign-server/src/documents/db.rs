//! The documents tables (migration 0006): documents, their versions, signers and the seals the
//! server holds. Every multi-row write is one transaction.

use std::fmt::Write as _;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::store::Db;

/// Metadata given at upload.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Metadata {
    /// Patient id ('' if none).
    pub patient_id: String,
    /// Visit / admission number.
    pub visit_id: String,
    /// Document type (知情同意书, 病历, ...).
    pub doc_type: String,
    /// Department.
    pub department: String,
    /// Title shown in lists.
    pub title: String,
}

/// One stored version.
#[derive(Debug, Clone, Serialize)]
pub struct VersionRow {
    /// 1, 2, ...
    pub version: i64,
    /// `original`, `converted` or `signed`.
    pub kind: String,
    /// SM3 address of the file.
    pub sm3: String,
    /// Bytes.
    pub size: i64,
    /// MIME type.
    pub media_type: String,
    /// File name.
    pub filename: String,
    /// SM3 of the original upload.
    pub original_sm3: String,
    /// Unix ms.
    pub created_at: i64,
    /// Who made it.
    pub created_by: String,
}

/// A signature recorded for a version.
#[derive(Debug, Clone, Serialize)]
pub struct SignerRow {
    /// Version that carries it.
    pub version: i64,
    /// Name shown.
    pub signer: String,
    /// Certificate serial (hex).
    pub cert_serial: String,
    /// Unix ms.
    pub signed_at: i64,
}

/// A document with its versions and signers.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentRow {
    /// UUID.
    pub id: String,
    /// Metadata.
    #[serde(flatten)]
    pub meta: Metadata,
    /// `uploaded` or `signed`.
    pub status: String,
    /// Latest version number.
    pub current_version: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// Who uploaded it.
    pub created_by: String,
    /// Signer names (all versions), filled by [`Db::document`] and search.
    pub signers: Vec<String>,
}

/// Search filters; empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Exact patient id.
    pub patient_id: Option<String>,
    /// Exact visit id.
    pub visit_id: Option<String>,
    /// Exact document type.
    pub doc_type: Option<String>,
    /// Exact department.
    pub department: Option<String>,
    /// Exact status.
    pub status: Option<String>,
    /// A signer's name (exact).
    pub signer: Option<String>,
    /// created_at ≥ from (unix ms).
    pub from: Option<i64>,
    /// created_at < to (unix ms).
    pub to: Option<i64>,
    /// Keyset cursor: results strictly older than (created_at, id).
    pub before: Option<(i64, String)>,
    /// Page size.
    pub limit: i64,
}

/// A seal the server holds.
#[derive(Debug, Clone)]
pub struct SealRow {
    /// `org`.
    pub name: String,
    /// Device key id.
    pub key_id: String,
    /// Seal certificate serial.
    pub cert_serial: String,
    /// PNG.
    pub picture: Vec<u8>,
    /// DER SESeal.
    pub seseal: Vec<u8>,
}

const DOC_COLUMNS: &str = "d.id, d.patient_id, d.visit_id, d.doc_type, d.department, d.title, d.status, d.current_version, d.created_at, d.updated_at, d.created_by";

fn doc_from(r: &AnyRow) -> Result<DocumentRow> {
    Ok(DocumentRow {
        id: r.try_get(0)?,
        meta: Metadata {
            patient_id: r.try_get(1)?,
            visit_id: r.try_get(2)?,
            doc_type: r.try_get(3)?,
            department: r.try_get(4)?,
            title: r.try_get(5)?,
        },
        status: r.try_get(6)?,
        current_version: r.try_get(7)?,
        created_at: r.try_get(8)?,
        updated_at: r.try_get(9)?,
        created_by: r.try_get(10)?,
        signers: Vec::new(),
    })
}

fn version_from(r: &AnyRow) -> Result<VersionRow> {
    Ok(VersionRow {
        version: r.try_get(0)?,
        kind: r.try_get(1)?,
        sm3: r.try_get(2)?,
        size: r.try_get(3)?,
        media_type: r.try_get(4)?,
        filename: r.try_get(5)?,
        original_sm3: r.try_get(6)?,
        created_at: r.try_get(7)?,
        created_by: r.try_get(8)?,
    })
}

const INSERT_VERSION: &str = "INSERT INTO document_versions (document_id, version, kind, sm3, size, media_type, filename, original_sm3, created_at, created_by) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// A new version to record.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    /// `original`, `converted`, `signed`.
    pub kind: &'a str,
    /// Address.
    pub sm3: &'a str,
    /// Bytes.
    pub size: usize,
    /// MIME type.
    pub media_type: &'a str,
    /// File name.
    pub filename: &'a str,
}

impl Db {
    /// Creates a document with its first versions (the upload, and its PDF conversion if any),
    /// in one transaction.
    pub async fn insert_document(
        &self,
        id: &str,
        meta: &Metadata,
        versions: &[NewVersion<'_>],
        actor: &str,
        at: i64,
    ) -> Result<()> {
        let original = versions.first().map_or("", |v| v.sm3);
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO documents (id, patient_id, visit_id, doc_type, department, title, status, current_version, created_at, updated_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, 'uploaded', $7, $8, $8, $9)",
        )
        .bind(id)
        .bind(&meta.patient_id)
        .bind(&meta.visit_id)
        .bind(&meta.doc_type)
        .bind(&meta.department)
        .bind(&meta.title)
        .bind(i64::try_from(versions.len()).unwrap_or(1))
        .bind(at)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        for (n, v) in (1i64..).zip(versions) {
            sqlx::query(INSERT_VERSION)
                .bind(id)
                .bind(n)
                .bind(v.kind)
                .bind(v.sm3)
                .bind(i64::try_from(v.size).unwrap_or(i64::MAX))
                .bind(v.media_type)
                .bind(v.filename)
                .bind(original)
                .bind(at)
                .bind(actor)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Appends a signed version on top of `expected_version` (optimistic: returns `None` if
    /// another signature got there first), records its signer, marks the document signed.
    pub async fn add_signed_version(
        &self,
        id: &str,
        expected_version: i64,
        version: &NewVersion<'_>,
        signer: (&str, &str),
        actor: &str,
        at: i64,
    ) -> Result<Option<i64>> {
        let mut tx = self.pool().begin().await?;
        let next = expected_version + 1;
        let moved = sqlx::query(
            "UPDATE documents SET current_version = $1, status = 'signed', updated_at = $2 WHERE id = $3 AND current_version = $4",
        )
        .bind(next)
        .bind(at)
        .bind(id)
        .bind(expected_version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved != 1 {
            return Ok(None);
        }
        let original: String = sqlx::query(
            "SELECT original_sm3 FROM document_versions WHERE document_id = $1 AND version = 1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        sqlx::query(INSERT_VERSION)
            .bind(id)
            .bind(next)
            .bind(version.kind)
            .bind(version.sm3)
            .bind(i64::try_from(version.size).unwrap_or(i64::MAX))
            .bind(version.media_type)
            .bind(version.filename)
            .bind(&original)
            .bind(at)
            .bind(actor)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO document_signers (document_id, version, signer, cert_serial, signed_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(next)
        .bind(signer.0)
        .bind(signer.1)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(next))
    }

    /// A document with its signer names.
    pub async fn document(&self, id: &str) -> Result<Option<DocumentRow>> {
        let row = sqlx::query(&format!(
            "SELECT {DOC_COLUMNS} FROM documents d WHERE d.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut doc = doc_from(&row)?;
        doc.signers = self.signer_names(id).await?;
        Ok(Some(doc))
    }

    async fn signer_names(&self, id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT signer FROM document_signers WHERE document_id = $1 ORDER BY signed_at, version",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>(0)?))
            .collect()
    }

    /// Every version of a document, oldest first.
    pub async fn document_versions(&self, id: &str) -> Result<Vec<VersionRow>> {
        let rows = sqlx::query(
            "SELECT version, kind, sm3, size, media_type, filename, original_sm3, created_at, created_by \
             FROM document_versions WHERE document_id = $1 ORDER BY version",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(version_from).collect()
    }

    /// Every signature recorded for a document.
    pub async fn document_signers(&self, id: &str) -> Result<Vec<SignerRow>> {
        let rows = sqlx::query(
            "SELECT version, signer, cert_serial, signed_at FROM document_signers WHERE document_id = $1 ORDER BY version",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SignerRow {
                    version: r.try_get(0)?,
                    signer: r.try_get(1)?,
                    cert_serial: r.try_get(2)?,
                    signed_at: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// Documents matching every given filter, newest first, at most `limit` (keyset pages).
    pub async fn search_documents(&self, s: &Search) -> Result<Vec<DocumentRow>> {
        let mut sql = format!("SELECT {DOC_COLUMNS} FROM documents d WHERE 1 = 1");
        // Values in placeholder order; `arg` numbers the next placeholder.
        let mut binds: Vec<Bound> = Vec::new();
        let arg = |binds: &mut Vec<Bound>, v: Bound| {
            binds.push(v);
            format!("${}", binds.len())
        };
        for (col, val) in [
            ("patient_id", &s.patient_id),
            ("visit_id", &s.visit_id),
            ("doc_type", &s.doc_type),
            ("department", &s.department),
            ("status", &s.status),
        ] {
            if let Some(v) = val {
                let p = arg(&mut binds, Bound::Text(v.clone()));
                let _ = write!(sql, " AND d.{col} = {p}");
            }
        }
        // A signer's documents come from the signers index (IN), not from probing every row.
        if let Some(signer) = &s.signer {
            let p = arg(&mut binds, Bound::Text(signer.clone()));
            let _ = write!(
                sql,
                " AND d.id IN (SELECT s.document_id FROM document_signers s WHERE s.signer = {p})"
            );
        }
        if let Some(from) = s.from {
            let p = arg(&mut binds, Bound::Int(from));
            let _ = write!(sql, " AND d.created_at >= {p}");
        }
        if let Some(to) = s.to {
            let p = arg(&mut binds, Bound::Int(to));
            let _ = write!(sql, " AND d.created_at < {p}");
        }
        if let Some((at, id)) = &s.before {
            // (created_at, id) < (at, id), spelled out for portability.
            let a = arg(&mut binds, Bound::Int(*at));
            let b = arg(&mut binds, Bound::Int(*at));
            let c = arg(&mut binds, Bound::Text(id.clone()));
            let _ = write!(
                sql,
                " AND (d.created_at < {a} OR (d.created_at = {b} AND d.id < {c}))"
            );
        }
        let p = arg(&mut binds, Bound::Int(s.limit));
        let _ = write!(sql, " ORDER BY d.created_at DESC, d.id DESC LIMIT {p}");
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                Bound::Int(v) => q.bind(v),
                Bound::Text(t) => q.bind(t),
            };
        }
        let rows = q.fetch_all(self.pool()).await?;
        let mut docs: Vec<DocumentRow> = rows.iter().map(doc_from).collect::<Result<_>>()?;
        for d in &mut docs {
            if d.status == "signed" {
                d.signers = self.signer_names(&d.id).await?;
            }
        }
        Ok(docs)
    }

    /// A seal by name.
    pub async fn seal(&self, name: &str) -> Result<Option<SealRow>> {
        let row = sqlx::query(
            "SELECT name, key_id, cert_serial, picture, seseal FROM document_seals WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(SealRow {
                name: r.try_get(0)?,
                key_id: r.try_get(1)?,
                cert_serial: r.try_get(2)?,
                picture: r.try_get(3)?,
                seseal: r.try_get(4)?,
            })
        })
        .transpose()
    }

    /// Records a seal; `false` if one with this name exists already (a concurrent creator won).
    pub async fn insert_seal(&self, seal: &SealRow, at: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO document_seals (name, key_id, cert_serial, picture, seseal, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&seal.name)
        .bind(&seal.key_id)
        .bind(&seal.cert_serial)
        .bind(&seal.picture)
        .bind(&seal.seseal)
        .bind(at)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(done == 1)
    }
}

enum Bound {
    Int(i64),
    Text(String),
}
