//! Signing requests from client systems: validation, storage (one transaction), the QR code,
//! and the view the terminal, the phone and the WebSocket share.

use base64::Engine;
use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::cosign::{
    CreateSignRequest, DocumentView, SignRequestCreated, SignRequestView, SignatureView,
    SignerState,
};
use cosign_proto::v1::qr::QrLink;
use crypto_device::CryptoDevice;
use sm3::{Digest, Sm3};
use sqlx::Row;

use super::clients::{Nonce, dev};
use crate::api::ApiFailure;
use crate::audit::{AuditLog, Event};
use crate::store::Db;

/// Most documents in one request (a nurse's batch).
pub const MAX_DOCUMENTS: usize = 1000;
/// Most signers of one request.
pub const MAX_SIGNERS: usize = 10;
/// Largest document content carried inline (the whole body is also bounded by
/// `http.body_limit`); larger files go through the documents API or are sent as digests.
pub const MAX_CONTENT: usize = 1024 * 1024;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn bad(field: &str, zh: &str, en: &str) -> ApiFailure {
    ApiFailure::with(
        ErrorCode::InvalidArgument,
        format!("字段 {field} 无效：{zh}"),
        format!("Invalid {field}: {en}"),
    )
}

fn check_text(field: &str, v: &str, max: usize) -> Result<(), ApiFailure> {
    let n = v.chars().count();
    if n == 0 || n > max || v.chars().any(char::is_control) {
        return Err(bad(
            field,
            &format!("须为 1–{max} 个字符，且不含控制字符"),
            &format!("must have 1–{max} characters and no control characters"),
        ));
    }
    Ok(())
}

struct NewDocument {
    name: String,
    digest: String,
    content: Option<Vec<u8>>,
    media_type: Option<String>,
}

fn documents_of(req: &CreateSignRequest) -> Result<Vec<NewDocument>, ApiFailure> {
    if req.documents.is_empty() || req.documents.len() > MAX_DOCUMENTS {
        return Err(bad(
            "documents",
            &format!("须有 1–{MAX_DOCUMENTS} 份文档"),
            &format!("must list 1–{MAX_DOCUMENTS} documents"),
        ));
    }
    req.documents
        .iter()
        .map(|d| {
            check_text("documents.name", &d.name, 128)?;
            let (digest, content) = match (&d.digest_sm3, &d.content) {
                (Some(h), None) => {
                    let ok = h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
                    if !ok {
                        return Err(bad(
                            "documents.digest_sm3",
                            "须为 64 位十六进制 SM3 摘要",
                            "must be a 64-character hex SM3 digest",
                        ));
                    }
                    (h.to_ascii_lowercase(), None)
                }
                (None, Some(c)) => {
                    let bytes = B64.decode(c).map_err(|_| {
                        bad(
                            "documents.content",
                            "不是有效的 Base64",
                            "is not valid base64",
                        )
                    })?;
                    if bytes.is_empty() || bytes.len() > MAX_CONTENT {
                        return Err(bad(
                            "documents.content",
                            "须为 1 字节至 1 MiB",
                            "must be 1 byte to 1 MiB",
                        ));
                    }
                    (hex::encode(Sm3::digest(&bytes)), Some(bytes))
                }
                _ => {
                    return Err(bad(
                        "documents",
                        "每份文档须且只须给出 digest_sm3 或 content 之一",
                        "give exactly one of digest_sm3 or content per document",
                    ));
                }
            };
            if let Some(m) = &d.media_type {
                // RFC 6838: type and subtype up to 127 characters each (the DOCX type alone
                // is 71), plus parameters such as `; charset=utf-8`.
                check_text("documents.media_type", m, 255)?;
            }
            Ok(NewDocument {
                name: d.name.clone(),
                digest,
                content,
                media_type: d.media_type.clone(),
            })
        })
        .collect()
}

/// Who creates a request, and what their call records in the request's transaction.
#[derive(Debug, Clone, Copy)]
pub struct Creator<'a> {
    /// The client system (or a built-in one: the demo, auto-sign carriers).
    pub app_id: &'a str,
    /// The signed call's nonce ([`Nonce`]), recorded with the request.
    pub nonce: Option<&'a Nonce>,
    /// The audit trail and the HTTP request id: the `cosign.request.create` entry (and
    /// `autosign.sign` for an auto-signed one) is appended with the request.
    pub audit: Option<(&'a AuditLog, &'a str)>,
}

impl<'a> Creator<'a> {
    /// A built-in creator: no signed call, audited by the caller.
    pub fn internal(app_id: &'a str) -> Self {
        Self {
            app_id,
            nonce: None,
            audit: None,
        }
    }
}

/// Creates a request for `by.app_id` (validated; stored in one transaction with the signed
/// call's nonce and the audit entries, if given, and announced to other instances:
/// [`crate::hub::Hub::notify`] it in this process). With `auto` (see `autosign::decide`)
/// every signer's signatures are made with the delegated keys first and stored in the same
/// transaction, which completes the request at once.
#[allow(clippy::too_many_arguments)] // services and inputs of one step
pub async fn create(
    db: &Db,
    device: &dyn CryptoDevice,
    public_url: &str,
    notifier_url: Option<&str>,
    by: Creator<'_>,
    req: &CreateSignRequest,
    now_ms: i64,
    auto: Option<&super::autosign::Plan>,
) -> Result<SignRequestCreated, ApiFailure> {
    let app_id = by.app_id;
    check_text("title", &req.title, 128)?;
    for (field, v) in [
        ("patient_id", &req.patient_id),
        ("visit_id", &req.visit_id),
        ("doc_type", &req.doc_type),
        ("department", &req.department),
    ] {
        if let Some(v) = v {
            check_text(field, v, 64)?;
        }
    }
    if req.signers.is_empty() || req.signers.len() > MAX_SIGNERS {
        return Err(bad(
            "signers",
            &format!("须有 1–{MAX_SIGNERS} 位签名人"),
            &format!("must list 1–{MAX_SIGNERS} signers"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if !req.signers.iter().all(|s| seen.insert(s.as_str())) {
        return Err(bad("signers", "签名人重复", "a signer is listed twice"));
    }
    let expires_in = i64::from(req.expires_in.unwrap_or(600));
    if !(60..=86_400).contains(&expires_in) {
        return Err(bad(
            "expires_in",
            "须为 60–86400 秒",
            "must be 60–86400 seconds",
        ));
    }
    let docs = documents_of(req)?;
    for s in &req.signers {
        if super::staff::load(db, s).await?.is_none() {
            return Err(ApiFailure::with(
                ErrorCode::NotFound,
                format!("没有工号为 {s} 的医护人员。"),
                format!("No staff member with id {s}."),
            ));
        }
    }
    let random = device.random(48).await.map_err(dev)?;
    let request_id = format!("req_{}", hex::encode(&random[..12]));
    let qr_nonce = hex::encode(&random[12..24]);
    let watch_token = hex::encode(&random[24..48]);
    let expires_at = now_ms + expires_in * 1000;
    let auto_signatures = match auto {
        Some(plan) => {
            let digests: Vec<String> = docs.iter().map(|d| d.digest.clone()).collect();
            Some(plan.sign(&digests, now_ms).await?)
        }
        None => None,
    };
    let completed_at = auto.map(|_| now_ms);

    let mut tx = db.begin_write().await?;
    if let Some(nonce) = by.nonce {
        nonce.spend_in(&mut tx).await?;
    }
    sqlx::query(
        "INSERT INTO sign_requests (request_id, app_id, qr_nonce, watch_token_hash, title, \
         ordered, status, patient_id, visit_id, doc_type, department, created_at, expires_at, \
         completed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&request_id)
    .bind(app_id)
    .bind(&qr_nonce)
    .bind(hex::encode(Sm3::digest(watch_token.as_bytes())))
    .bind(&req.title)
    .bind(i64::from(req.ordered))
    .bind(if auto.is_some() {
        "completed"
    } else {
        "pending"
    })
    .bind(&req.patient_id)
    .bind(&req.visit_id)
    .bind(&req.doc_type)
    .bind(&req.department)
    .bind(now_ms)
    .bind(expires_at)
    .bind(completed_at)
    .execute(&mut *tx)
    .await?;
    for (i, d) in docs.iter().enumerate() {
        sqlx::query(
            "INSERT INTO sign_request_documents (request_id, doc_index, name, digest, content, \
             media_type) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&request_id)
        .bind(i64::try_from(i).unwrap_or(i64::MAX))
        .bind(&d.name)
        .bind(&d.digest)
        .bind(d.content.as_deref())
        .bind(&d.media_type)
        .execute(&mut *tx)
        .await?;
    }
    for (i, s) in req.signers.iter().enumerate() {
        sqlx::query(
            "INSERT INTO sign_request_signers (request_id, position, staff_id, signed_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&request_id)
        .bind(i64::try_from(i).unwrap_or(i64::MAX))
        .bind(s)
        .bind(completed_at)
        .execute(&mut *tx)
        .await?;
    }
    if let (Some(plan), Some(signatures)) = (auto, &auto_signatures) {
        plan.record(&mut tx, &request_id, signatures, now_ms)
            .await?;
        super::webhooks::enqueue_completed(&mut tx, std::slice::from_ref(&request_id), now_ms)
            .await?;
    } else if let Some(url) = notifier_url {
        // The message platform tells the signers; queued with the request so it is never lost.
        let body = serde_json::json!({
            "event": "sign_request.created",
            "request_id": request_id,
            "title": req.title,
            "doc_type": req.doc_type,
            "department": req.department,
            "signers": req.signers,
            "expires_at": expires_at,
        });
        super::webhooks::enqueue(&mut tx, "", url, &body.to_string(), now_ms).await?;
    }
    crate::hub::Hub::announce_in(db.kind(), &mut tx, &request_id).await?;
    // Last, and kept until the commit (AuditLog::lock).
    let mut audit_lock = None;
    if let Some((log, rid)) = by.audit {
        let lock = audit_lock.insert(log.lock().await);
        let actor = format!("app:{app_id}");
        let mut event = Event {
            actor: &actor,
            action: "cosign.request.create",
            target: &request_id,
            outcome: "ok",
            detail: serde_json::json!({
                "documents": req.documents.len(),
                "signers": req.signers,
                "auto_signed": auto.is_some(),
            }),
            request_id: rid,
        };
        log.append_in(lock, &mut tx, now_ms, &event).await?;
        if let Some(plan) = auto {
            event.action = "autosign.sign";
            event.detail = serde_json::json!({
                "authorisations": plan.authorisations(),
                "documents": req.documents.len(),
            });
            log.append_in(lock, &mut tx, now_ms, &event).await?;
        }
    }
    tx.commit().await?;
    drop(audit_lock);
    if let Some(nonce) = by.nonce {
        nonce.committed();
    }

    let qr_payload = QrLink::Sign {
        server: public_url.to_owned(),
        request_id: request_id.clone(),
        nonce: qr_nonce,
    }
    .to_string();
    Ok(SignRequestCreated {
        qr_svg: if req.qr_image.unwrap_or(true) {
            Some(qr_svg(&qr_payload)?)
        } else {
            None
        },
        request_id,
        expires_at,
        qr_payload,
        watch_token,
    })
}

/// The QR code as SVG (error correction M).
pub fn qr_svg(payload: &str) -> Result<String, ApiFailure> {
    let code = qrcode::QrCode::with_error_correction_level(payload, qrcode::EcLevel::M)
        .map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .build())
}

/// The QR code as a PNG (8 pixels per module, 4-module quiet zone), drawn with `png`.
pub fn qr_png(payload: &str) -> Result<Vec<u8>, ApiFailure> {
    const SCALE: usize = 8;
    const QUIET: usize = 4;
    let code = qrcode::QrCode::with_error_correction_level(payload, qrcode::EcLevel::M)
        .map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    let n = code.width();
    let colors = code.to_colors();
    let side = (n + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (x, y) = (i % n + QUIET, i / n + QUIET);
            for dy in 0..SCALE {
                let row = (y * SCALE + dy) * side;
                pixels[row + x * SCALE..row + (x + 1) * SCALE].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    let side32 = u32::try_from(side).map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    let mut enc = png::Encoder::new(&mut out, side32, side32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc
        .write_header()
        .map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    w.write_image_data(&pixels)
        .map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    w.finish()
        .map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    Ok(out)
}

/// A stored request's header row.
#[derive(Debug, Clone)]
pub struct RequestRow {
    /// Id.
    pub request_id: String,
    /// Owning app.
    pub app_id: String,
    /// QR nonce.
    pub qr_nonce: String,
    /// SM3 of the watch token.
    pub watch_token_hash: String,
    /// Status as stored.
    pub status: String,
    /// Order enforced.
    pub ordered: bool,
    /// Unix ms.
    pub expires_at: i64,
}

impl RequestRow {
    /// The status a reader sees: a pending request past its expiry is `expired`.
    pub fn effective_status(&self, now_ms: i64) -> &str {
        if self.status == "pending" && self.expires_at < now_ms {
            "expired"
        } else {
            &self.status
        }
    }
}

/// The columns of [`RequestRow`] (a macro, for `concat!`), so a query can read more.
macro_rules! header_columns {
    () => {
        "request_id, app_id, qr_nonce, watch_token_hash, status, ordered, expires_at"
    };
}

fn header_of(r: &sqlx::any::AnyRow) -> Result<RequestRow, sqlx::Error> {
    Ok(RequestRow {
        request_id: r.try_get("request_id")?,
        app_id: r.try_get("app_id")?,
        qr_nonce: r.try_get("qr_nonce")?,
        watch_token_hash: r.try_get("watch_token_hash")?,
        status: r.try_get("status")?,
        ordered: r.try_get::<i64, _>("ordered")? != 0,
        expires_at: r.try_get("expires_at")?,
    })
}

/// Loads a request's header.
pub async fn load<'e, E>(db: E, request_id: &str) -> Result<Option<RequestRow>, ApiFailure>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    if request_id.is_empty() || request_id.len() > 64 {
        return Ok(None);
    }
    let row = sqlx::query(concat!(
        "SELECT ",
        header_columns!(),
        " FROM sign_requests WHERE request_id = $1"
    ))
    .bind(request_id)
    .fetch_optional(db)
    .await?;
    Ok(row.as_ref().map(header_of).transpose()?)
}

/// The full view of a request (`NOT_FOUND` if absent).
pub async fn view(db: &Db, request_id: &str, now_ms: i64) -> Result<SignRequestView, ApiFailure> {
    if request_id.is_empty() || request_id.len() > 64 {
        return Err(ApiFailure::new(ErrorCode::NotFound));
    }
    // Four reads on one connection: each acquire from the pool costs round trips of its own.
    let mut conn = db.pool().acquire().await?;
    // The header and the descriptive columns in one read.
    let r = sqlx::query(concat!(
        "SELECT ",
        header_columns!(),
        ", title, patient_id, visit_id, doc_type, department FROM sign_requests \
         WHERE request_id = $1"
    ))
    .bind(request_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    let head = header_of(&r)?;
    let signers = sqlx::query(
        "SELECT s.position, s.staff_id, s.signed_at, f.name FROM sign_request_signers s \
         JOIN staff f ON f.staff_id = s.staff_id WHERE s.request_id = $1 ORDER BY s.position",
    )
    .bind(request_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|s| {
        Ok(SignerState {
            position: u32::try_from(s.try_get::<i64, _>("position")?).unwrap_or(0),
            staff_id: s.try_get("staff_id")?,
            name: s.try_get("name")?,
            signed_at: s.try_get("signed_at")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let documents = sqlx::query(
        "SELECT doc_index, name, digest, content IS NOT NULL AS has_content \
         FROM sign_request_documents WHERE request_id = $1 ORDER BY doc_index",
    )
    .bind(request_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|d| {
        Ok(DocumentView {
            index: u32::try_from(d.try_get::<i64, _>("doc_index")?).unwrap_or(0),
            name: d.try_get("name")?,
            digest_sm3: d.try_get("digest")?,
            has_content: truthy(d, "has_content")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let signatures = sqlx::query(
        "SELECT s.doc_index, s.staff_id, s.cms, s.cert_serial, s.signed_at, a.authorisation_id \
         FROM signatures s LEFT JOIN autosign_signatures a ON a.request_id = s.request_id \
         AND a.doc_index = s.doc_index AND a.staff_id = s.staff_id \
         WHERE s.request_id = $1 ORDER BY s.signed_at, s.doc_index",
    )
    .bind(request_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|s| {
        Ok(SignatureView {
            document: u32::try_from(s.try_get::<i64, _>("doc_index")?).unwrap_or(0),
            staff_id: s.try_get("staff_id")?,
            cms: B64.encode(s.try_get::<Vec<u8>, _>("cms")?),
            certificate_serial: s.try_get("cert_serial")?,
            signed_at: s.try_get("signed_at")?,
            authorisation_id: s.try_get("authorisation_id")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(SignRequestView {
        status: head.effective_status(now_ms).to_owned(),
        request_id: head.request_id,
        title: r.try_get("title")?,
        ordered: head.ordered,
        signers,
        documents,
        signatures,
        expires_at: head.expires_at,
        patient_id: r.try_get("patient_id")?,
        visit_id: r.try_get("visit_id")?,
        doc_type: r.try_get("doc_type")?,
        department: r.try_get("department")?,
    })
}

/// A boolean expression column: SQLite gives an integer, PostgreSQL a bool.
fn truthy(row: &sqlx::any::AnyRow, col: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<bool, _>(col) {
        Ok(b) => Ok(b),
        Err(_) => Ok(row.try_get::<i64, _>(col)? != 0),
    }
}

/// Cancels a pending request (compare-and-set, so a signature stored at the same moment wins
/// or loses cleanly) and announces it to other instances in the same transaction
/// ([`crate::hub::Hub::notify`] it in this process): `REQUEST_CLOSED` if it is completed or
/// cancelled, `REQUEST_EXPIRED` if it expired.
pub async fn cancel(db: &Db, request_id: &str, now_ms: i64) -> Result<(), ApiFailure> {
    let mut tx = db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE sign_requests SET status = 'cancelled', completed_at = $1 WHERE request_id = $2 \
         AND status = 'pending' AND expires_at >= $1",
    )
    .bind(now_ms)
    .bind(request_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 1 {
        crate::hub::Hub::announce_in(db.kind(), &mut tx, request_id).await?;
        tx.commit().await?;
        return Ok(());
    }
    drop(tx);
    let head = load(db.pool(), request_id)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    Err(ApiFailure::new(
        if head.effective_status(now_ms) == "expired" {
            ErrorCode::RequestExpired
        } else {
            ErrorCode::RequestClosed
        },
    ))
}

/// A document's content, if it was sent inline.
pub async fn document_content(
    db: &Db,
    request_id: &str,
    index: u32,
) -> Result<Option<(Vec<u8>, Option<String>)>, ApiFailure> {
    let row = sqlx::query(
        "SELECT content, media_type FROM sign_request_documents WHERE request_id = $1 AND doc_index = $2",
    )
    .bind(request_id)
    .bind(i64::from(index))
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some(r) => r
            .try_get::<Option<Vec<u8>>, _>("content")?
            .map(|c| Ok::<_, sqlx::Error>((c, r.try_get("media_type")?)))
            .transpose()?,
        None => None,
    })
}

/// Pending requests where `staff_id` still has to sign, newest first (the phone's list).
pub async fn pending_for(db: &Db, staff_id: &str, now_ms: i64) -> Result<Vec<String>, ApiFailure> {
    let rows = sqlx::query(
        "SELECT r.request_id FROM sign_requests r JOIN sign_request_signers s \
         ON s.request_id = r.request_id WHERE s.staff_id = $1 AND s.signed_at IS NULL \
         AND r.status = 'pending' AND r.expires_at >= $2 ORDER BY r.created_at DESC LIMIT 200",
    )
    .bind(staff_id)
    .bind(now_ms)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| r.try_get("request_id").map_err(ApiFailure::from))
        .collect()
}
