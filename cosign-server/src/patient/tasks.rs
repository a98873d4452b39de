//! Patient tasks: creation by a terminal (validated before anything is stored), the views,
//! the link and session checks of the page, SMS codes, proxy details and page images.

use crate::identity::sms::SmsMessage;
use base64::Engine;
use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::patient::{
    CreatePatientTask, Delivery, H5TaskView, MAX_COPY_CHARS, PatientSignatureView,
    PatientTaskCreated, PatientTaskView, ProxyDetails, SignMode, SignerRole, TaskPlacement,
    mask_name, mask_phone, validate_id_number,
};
use crypto_device::KeyId;
use sm3::{Digest, Sm3};
use sqlx::Row;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{data_key, random_token, seal, token_hash};
use crate::api::{ApiFailure, AppState};
use crate::clock::rfc3339;
use crate::signing::clients::dev;

/// How long an SMS code is valid.
pub const OTP_VALIDITY_MS: i64 = 5 * 60 * 1000;
/// Shortest gap between two codes for one task.
pub const OTP_RESEND_MS: i64 = 60 * 1000;
/// Most codes per task and hour.
pub const OTP_PER_HOUR: i64 = 5;
/// Wrong codes before the task locks.
pub const OTP_MAX_FAILURES: i64 = 5;
/// Page images are this many pixels wide.
pub const PAGE_WIDTH: u32 = 1000;
/// Most pages a task's document may have (each page is rendered on demand and cached).
pub const MAX_PAGES: u32 = 200;

fn bad(field: &str, zh: &str, en: &str) -> ApiFailure {
    ApiFailure::with(
        ErrorCode::InvalidArgument,
        format!("字段 {field} 无效：{zh}"),
        format!("Invalid {field}: {en}"),
    )
}

/// 1–`max` characters, no control characters, no surrounding spaces.
pub(crate) fn check_text(field: &str, v: &str, max: usize) -> Result<(), ApiFailure> {
    let n = v.chars().count();
    if n == 0 || n > max || v.chars().any(char::is_control) || v.trim() != v {
        return Err(bad(
            field,
            &format!("须为 1–{max} 个字符，不含控制字符，首尾无空格"),
            &format!("must have 1–{max} characters, no control characters, no surrounding spaces"),
        ));
    }
    Ok(())
}

/// A GB 11643 number whose birth date is not in the future, or `INVALID_ID_NUMBER` naming
/// the field.
pub fn check_id_number(field: &str, id: &str) -> Result<(), ApiFailure> {
    let refuse = |e: cosign_proto::v1::patient::IdNumberError| {
        ApiFailure::with(
            ErrorCode::InvalidIdNumber,
            format!("{field}：{}", e.message_zh()),
            format!("{field}: {}", e.message_en()),
        )
    };
    validate_id_number(id).map_err(refuse)?;
    let birth: u32 = id.get(6..14).and_then(|d| d.parse().ok()).unwrap_or(0);
    let today = time::OffsetDateTime::from_unix_timestamp(crate::clock::now_ms() / 1000).map_or(
        u32::MAX,
        |t| {
            t.year().unsigned_abs() * 10_000
                + u32::from(u8::from(t.month())) * 100
                + u32::from(t.day())
        },
    );
    if birth > today {
        return Err(refuse(cosign_proto::v1::patient::IdNumberError::BirthDate));
    }
    Ok(())
}

/// A task as stored.
#[derive(Debug, Clone)]
pub struct TaskRow {
    /// Id.
    pub task_id: String,
    /// Owning app.
    pub app_id: String,
    /// Title.
    pub title: String,
    /// `patient` | `proxy`.
    pub signer_role: String,
    /// Name from the terminal.
    pub signer_name: String,
    /// Phone.
    pub phone: String,
    /// Device key holding the patient's ID number.
    pub id_number_key: Option<String>,
    /// Identity checks.
    pub identity: Vec<String>,
    /// Sign mode.
    pub sign_mode: String,
    /// Copy text.
    pub copy_text: Option<String>,
    /// Read to the end first.
    pub require_read_to_end: bool,
    /// Placement JSON as sent.
    pub placement: String,
    /// Archive document.
    pub document_id: String,
    /// The version signed.
    pub base_version: i64,
    /// Pages.
    pub page_count: i64,
    /// Stored status.
    pub status: String,
    /// SM3 of the current code.
    pub otp_hash: Option<String>,
    /// Unix ms.
    pub otp_expires_at: Option<i64>,
    /// Unix ms.
    pub otp_sent_at: Option<i64>,
    /// Wrong codes so far.
    pub otp_failures: i64,
    /// SM3 of the page session.
    pub session_hash: Option<String>,
    /// Unix ms.
    pub verified_at: Option<i64>,
    /// Proxy JSON.
    pub proxy: Option<String>,
    /// Device key holding the proxy's ID number.
    pub proxy_id_key: Option<String>,
    /// Accepted submission.
    pub submission_id: Option<String>,
    /// Signing lease.
    pub lease_until: Option<i64>,
    /// Evidence SM3.
    pub evidence_sm3: Option<String>,
    /// Event certificate.
    pub cert_serial: Option<String>,
    /// Its CN.
    pub signer_cn: Option<String>,
    /// Signed version.
    pub signed_version: Option<i64>,
    /// Its SM3.
    pub signed_sm3: Option<String>,
    /// Unix ms.
    pub signed_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub expires_at: i64,
    /// The bedside pad the task is assigned to.
    pub pad_id: Option<String>,
    /// How the session was obtained: `sms`, or `pad` (ward staff at the bedside); `None` = sms.
    pub verified_by: Option<String>,
}

impl TaskRow {
    /// The status a reader sees: an open task past its expiry is `expired`.
    pub fn effective_status(&self, now_ms: i64) -> &str {
        if matches!(self.status.as_str(), "pending" | "verified") && self.expires_at < now_ms {
            "expired"
        } else {
            &self.status
        }
    }

    /// The sign mode.
    pub fn mode(&self) -> SignMode {
        match self.sign_mode.as_str() {
            "long_press" => SignMode::LongPress,
            "handwriting" => SignMode::Handwriting,
            "copy" => SignMode::Copy,
            _ => SignMode::Button,
        }
    }

    /// Signer role.
    pub fn role(&self) -> SignerRole {
        if self.signer_role == "proxy" {
            SignerRole::Proxy
        } else {
            SignerRole::Patient
        }
    }
}

const COLUMNS: &str = "task_id, app_id, title, signer_role, signer_name, phone, id_number_key, \
    identity, sign_mode, copy_text, require_read_to_end, placement, document_id, base_version, \
    page_count, status, otp_hash, otp_expires_at, otp_sent_at, otp_failures, session_hash, \
    verified_at, proxy, proxy_id_key, submission_id, lease_until, evidence_sm3, cert_serial, \
    signer_cn, signed_version, signed_sm3, signed_at, created_at, expires_at, pad_id, verified_by";

fn row_of(r: &sqlx::any::AnyRow) -> Result<TaskRow, sqlx::Error> {
    let identity: String = r.try_get("identity")?;
    Ok(TaskRow {
        task_id: r.try_get("task_id")?,
        app_id: r.try_get("app_id")?,
        title: r.try_get("title")?,
        signer_role: r.try_get("signer_role")?,
        signer_name: r.try_get("signer_name")?,
        phone: r.try_get("phone")?,
        id_number_key: r.try_get("id_number_key")?,
        identity: serde_json::from_str(&identity).unwrap_or_default(),
        sign_mode: r.try_get("sign_mode")?,
        copy_text: r.try_get("copy_text")?,
        require_read_to_end: r.try_get::<i64, _>("require_read_to_end")? != 0,
        placement: r.try_get("placement")?,
        document_id: r.try_get("document_id")?,
        base_version: r.try_get("base_version")?,
        page_count: r.try_get("page_count")?,
        status: r.try_get("status")?,
        otp_hash: r.try_get("otp_hash")?,
        otp_expires_at: r.try_get("otp_expires_at")?,
        otp_sent_at: r.try_get("otp_sent_at")?,
        otp_failures: r.try_get("otp_failures")?,
        session_hash: r.try_get("session_hash")?,
        verified_at: r.try_get("verified_at")?,
        proxy: r.try_get("proxy")?,
        proxy_id_key: r.try_get("proxy_id_key")?,
        submission_id: r.try_get("submission_id")?,
        lease_until: r.try_get("lease_until")?,
        evidence_sm3: r.try_get("evidence_sm3")?,
        cert_serial: r.try_get("cert_serial")?,
        signer_cn: r.try_get("signer_cn")?,
        signed_version: r.try_get("signed_version")?,
        signed_sm3: r.try_get("signed_sm3")?,
        signed_at: r.try_get("signed_at")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        pad_id: r.try_get("pad_id")?,
        verified_by: r.try_get("verified_by")?,
    })
}

/// Loads a task by id.
pub async fn load(db: &crate::store::Db, task_id: &str) -> Result<Option<TaskRow>, ApiFailure> {
    if task_id.is_empty() || task_id.len() > 64 {
        return Ok(None);
    }
    let r = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM patient_tasks WHERE task_id = $1"
    ))
    .bind(task_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(r.as_ref().map(row_of).transpose()?)
}

/// Loads a task by its link token.
pub async fn load_by_token(
    db: &crate::store::Db,
    token: &str,
) -> Result<Option<TaskRow>, ApiFailure> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let r = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM patient_tasks WHERE token_hash = $1"
    ))
    .bind(token_hash(token))
    .fetch_optional(db.pool())
    .await?;
    Ok(r.as_ref().map(row_of).transpose()?)
}

/// The refusal of a link that matches no task.
pub fn link_invalid() -> ApiFailure {
    ApiFailure::with(
        ErrorCode::NotFound,
        "签署链接无效，请核对短信中的链接或重新扫码。",
        "The signing link is not valid; check the link in the SMS or scan the code again.",
    )
}

/// The task behind a page link, refused with a clear error once it is signed, expired,
/// cancelled or locked. `allow_signing`: a task whose submission is being signed (only the
/// submit call, to resend the same submission).
pub async fn open_link(
    state: &AppState,
    token: &str,
    now_ms: i64,
    allow_signing: bool,
) -> Result<TaskRow, ApiFailure> {
    let task = load_by_token(&state.db, token)
        .await?
        .ok_or_else(link_invalid)?;
    match task.effective_status(now_ms) {
        "pending" | "verified" => Ok(task),
        "signing" | "signed" if allow_signing => Ok(task),
        "signing" | "signed" => Err(ApiFailure::new(ErrorCode::TaskUsed)),
        "expired" => Err(ApiFailure::new(ErrorCode::TaskExpired)),
        "cancelled" => Err(ApiFailure::new(ErrorCode::TaskCancelled)),
        "locked" => Err(ApiFailure::new(ErrorCode::OtpLocked)),
        _ => Err(ApiFailure::new(ErrorCode::Internal)),
    }
}

/// Checks the page session (header [`cosign_proto::v1::patient::HEADER_H5_SESSION`]).
pub fn check_session(task: &TaskRow, session: Option<&str>) -> Result<(), ApiFailure> {
    let ok = match (session, &task.session_hash) {
        (Some(s), Some(stored)) if !s.is_empty() && s.len() <= 128 => {
            bool::from(token_hash(s).as_bytes().ct_eq(stored.as_bytes()))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiFailure::new(ErrorCode::SessionRequired))
    }
}

/// Validated placement (the document's pages and keywords are checked at creation).
fn placement_of(p: &TaskPlacement) -> Result<(), ApiFailure> {
    let sane = |vals: &[f32]| vals.iter().all(|v| v.is_finite() && v.abs() < 100_000.0);
    match p {
        TaskPlacement::Keyword { keyword } => check_text("placement.keyword", keyword, 64),
        TaskPlacement::Coordinates {
            page,
            x,
            y,
            width,
            height,
        } => {
            if *page == 0 || !sane(&[*x, *y, *width, *height]) || *width <= 0.0 || *height <= 0.0 {
                return Err(bad(
                    "placement",
                    "页码从 1 起，坐标为有限数，宽高为正",
                    "page from 1, finite coordinates, positive size",
                ));
            }
            Ok(())
        }
    }
}

/// The signature placement for doc-sign (layers filled in by the signer).
pub fn doc_placement(task: &TaskRow) -> Result<crate::documents::Placement, ApiFailure> {
    let p: TaskPlacement =
        serde_json::from_str(&task.placement).map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    Ok(match p {
        TaskPlacement::Keyword { keyword } => crate::documents::Placement::Keyword {
            keyword,
            page: None,
            dx: 4.0,
            dy: -12.0,
            width: 140.0,
            height: 48.0,
            layers: Vec::new(),
        },
        TaskPlacement::Coordinates {
            page,
            x,
            y,
            width,
            height,
        } => crate::documents::Placement::Visible(doc_sign::Appearance {
            page,
            rect: doc_sign::Rect {
                x,
                y,
                width,
                height,
            },
            layers: Vec::new(),
        }),
    })
}

/// `identity`: `sms` first, then any of `id_ocr`, `face`, `liveness` once each; those need the
/// identity service, and a patient's ID card needs the number to compare with.
fn check_identity(req: &CreatePatientTask, vision_configured: bool) -> Result<(), ApiFailure> {
    use cosign_proto::v1::identity::PATIENT_METHODS;
    let ids = &req.identity;
    let known = ids.iter().all(|i| PATIENT_METHODS.contains(&i.as_str()));
    let unique = ids.iter().enumerate().all(|(n, i)| !ids[..n].contains(i));
    if ids.first().map(String::as_str) != Some("sms") || !known || !unique {
        return Err(bad(
            "identity",
            "须以 \"sms\" 开头，其后可选 \"id_ocr\"、\"face\"、\"liveness\"，各至多一次",
            "must start with \"sms\", then any of \"id_ocr\", \"face\", \"liveness\" once each",
        ));
    }
    if ids.len() > 1 && !vision_configured {
        return Err(ApiFailure::new(ErrorCode::IdentityNotConfigured));
    }
    if ids.len() > 1 && req.signer.role == SignerRole::Patient && req.signer.id_number.is_none() {
        return Err(bad(
            "signer.id_number",
            "身份证核验（id_ocr、face、liveness）须给出签署人身份证号以供比对",
            "is required to compare the ID card with (id_ocr, face, liveness)",
        ));
    }
    Ok(())
}

fn check_request(req: &CreatePatientTask, vision_configured: bool) -> Result<i64, ApiFailure> {
    check_text("document.title", &req.document.title, 128)?;
    check_text("signer.name", &req.signer.name, 32)?;
    let phone_ok = req.signer.phone.len() == 11
        && req.signer.phone.starts_with('1')
        && req.signer.phone.bytes().all(|b| b.is_ascii_digit());
    if !phone_ok {
        return Err(bad(
            "signer.phone",
            "须为 11 位手机号码",
            "must be an 11-digit mobile number",
        ));
    }
    if let Some(id) = &req.signer.id_number {
        check_id_number("signer.id_number", id)?;
    }
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
    // ["pad"]: ward staff vouch for the signer at a bedside pad (docs/api/patient.md §5).
    let pad_presence = req.identity.len() == 1 && req.identity[0] == "pad";
    if pad_presence && req.pad_id.is_none() {
        return Err(bad(
            "identity",
            "[\"pad\"]（床旁平板，医护人员在场核对）须同时给出 pad_id",
            "[\"pad\"] (bedside pad, staff present) needs a pad_id",
        ));
    }
    if !pad_presence {
        check_identity(req, vision_configured)?;
    }
    match (&req.sign_mode, &req.copy_text) {
        (SignMode::Copy, Some(t)) => {
            check_text("copy_text", t, MAX_COPY_CHARS)?;
            if t.chars().any(char::is_whitespace) {
                return Err(bad(
                    "copy_text",
                    "抄录内容不能含空白字符",
                    "must not contain white space",
                ));
            }
        }
        (SignMode::Copy, None) => {
            return Err(bad(
                "copy_text",
                "抄录模式须给出抄录内容",
                "is required when sign_mode is copy",
            ));
        }
        (_, Some(_)) => {
            return Err(bad(
                "copy_text",
                "仅抄录模式可给出",
                "is only allowed when sign_mode is copy",
            ));
        }
        (_, None) => {}
    }
    placement_of(&req.placement)?;
    let expires_in = i64::from(req.expires_in_s.unwrap_or(1800));
    if !(60..=86_400).contains(&expires_in) {
        return Err(bad(
            "expires_in_s",
            "须为 60–86400 秒",
            "must be 60–86400 seconds",
        ));
    }
    Ok(expires_in)
}

/// Creates a task for `app_id`: every field and the PDF (pages, keyword or page of the
/// placement) are checked before anything is stored; then the PDF goes into the archive and
/// the task row is written; the link is sent when `delivery` is `sms` (or queued to the
/// message platform for `push`).
pub async fn create(
    state: &AppState,
    app_id: &str,
    req: &CreatePatientTask,
    now_ms: i64,
) -> Result<(PatientTaskCreated, String), ApiFailure> {
    let expires_in = check_request(req, state.vision.is_some())?;
    if let Some(pad_id) = &req.pad_id {
        let active = crate::pad::load(&state.db, pad_id)
            .await?
            .is_some_and(|p| p.status == "active");
        if !active {
            return Err(bad(
                "pad_id",
                "没有该床旁平板，或平板未登记、已停用",
                "no such pad, or it is not enrolled or was revoked",
            ));
        }
    }
    let pdf = base64::engine::general_purpose::STANDARD
        .decode(req.document.pdf_base64.as_bytes())
        .map_err(|_| {
            bad(
                "document.pdf_base64",
                "不是有效的 Base64",
                "is not valid base64",
            )
        })?;
    if pdf.len() > state.config.documents.max_upload {
        return Err(ApiFailure::new(ErrorCode::PayloadTooLarge));
    }
    if crate::documents::FileKind::sniff(&pdf) != Some(crate::documents::FileKind::Pdf) {
        return Err(ApiFailure::with(
            ErrorCode::UnsupportedDocumentType,
            "患者签署只接受 PDF 文件。",
            "Patient signing takes PDF files only.",
        ));
    }
    let pdf = std::sync::Arc::new(pdf);
    let keyword = match &req.placement {
        TaskPlacement::Keyword { keyword } => Some(keyword.clone()),
        TaskPlacement::Coordinates { .. } => None,
    };
    let p = pdf.clone();
    let (pages, hits) = state
        .documents
        .cpu(move || -> Result<(u32, usize), doc_sign::Error> {
            let pages = doc_sign::page_count(&p)?;
            let hits = match keyword {
                Some(k) => doc_sign::find_keyword(&p, &k)?.len(),
                None => 1,
            };
            Ok((pages, hits))
        })
        .await?
        .map_err(|e| crate::documents::http::failure(e.into()))?;
    if pages > MAX_PAGES {
        return Err(ApiFailure::with(
            ErrorCode::InvalidDocument,
            format!("文书页数过多（最多 {MAX_PAGES} 页）。"),
            format!("The document has too many pages (at most {MAX_PAGES})."),
        ));
    }
    if hits == 0 {
        return Err(bad(
            "placement.keyword",
            "文书中找不到该关键字",
            "the keyword does not occur in the document",
        ));
    }
    if let TaskPlacement::Coordinates { page, .. } = &req.placement
        && *page > pages
    {
        return Err(bad(
            "placement.page",
            &format!("文书只有 {pages} 页"),
            &format!("the document has {pages} pages"),
        ));
    }

    let device = state.keys.device();
    let task_id = uuid::Uuid::new_v4().to_string();
    let token = Zeroizing::new(random_token(&*device).await?);
    let key = data_key(&state.db, &*device).await?;
    let (nonce, sealed) =
        seal(&*device, &key, &format!("link:{task_id}"), token.as_bytes()).await?;
    let mut token_sealed = nonce;
    token_sealed.extend_from_slice(&sealed);

    // Everything is checked: the archive copy, then the task.
    let meta = crate::documents::Metadata {
        patient_id: req.patient_id.clone().unwrap_or_default(),
        visit_id: req.visit_id.clone().unwrap_or_default(),
        doc_type: req.doc_type.clone().unwrap_or_default(),
        department: req.department.clone().unwrap_or_default(),
        title: req.document.title.clone(),
    };
    let pdf = std::sync::Arc::try_unwrap(pdf).unwrap_or_else(|a| a.to_vec());
    let doc = state
        .documents
        .upload(
            &state.db,
            pdf,
            &format!("{}.pdf", req.document.title),
            &meta,
            &format!("app:{app_id}"),
        )
        .await
        .map_err(crate::documents::http::failure)?;
    let id_number_key = match &req.signer.id_number {
        Some(id) => Some(
            device
                .import_secret(
                    &format!("patient:id:{task_id}"),
                    Zeroizing::new(id.to_ascii_uppercase().into_bytes()),
                )
                .await
                .map_err(dev)?,
        ),
        None => None,
    };
    let expires_at = now_ms + expires_in * 1000;
    let link = format!("{}/h5/#/t/{}", state.config.public_url, token.as_str());
    let mut tx = state.db.pool().begin().await?;
    sqlx::query(
        "INSERT INTO patient_tasks (task_id, app_id, token_hash, token_sealed, title, signer_role, \
         signer_name, phone, id_number_key, patient_id, visit_id, doc_type, department, identity, \
         sign_mode, copy_text, require_read_to_end, placement, delivery, document_id, base_version, \
         page_count, status, otp_failures, created_at, expires_at, updated_at, pad_id) VALUES ($1, \
         $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
         $21, $22, 'pending', 0, $23, $24, $23, $25)",
    )
    .bind(&task_id)
    .bind(app_id)
    .bind(token_hash(&token))
    .bind(token_sealed)
    .bind(&req.document.title)
    .bind(req.signer.role.as_str())
    .bind(&req.signer.name)
    .bind(&req.signer.phone)
    .bind(id_number_key.as_ref().map(KeyId::as_str))
    .bind(&req.patient_id)
    .bind(&req.visit_id)
    .bind(&req.doc_type)
    .bind(&req.department)
    .bind(serde_json::to_string(&req.identity).unwrap_or_default())
    .bind(req.sign_mode.as_str())
    .bind(&req.copy_text)
    .bind(i64::from(req.require_read_to_end))
    .bind(serde_json::to_string(&req.placement).unwrap_or_default())
    .bind(req.delivery.as_str())
    .bind(&doc.id)
    .bind(doc.current_version)
    .bind(i64::from(pages))
    .bind(now_ms)
    .bind(expires_at)
    .bind(&req.pad_id)
    .execute(&mut *tx)
    .await?;
    if req.delivery == Delivery::Push
        && let Some(url) = state.config.cosign.notifier_url.as_deref()
    {
        let body = serde_json::json!({
            "event": "patient_task.created",
            "task_id": task_id,
            "phone": req.signer.phone,
            "title": req.document.title,
            "link": link,
            "expires_at": expires_at,
        });
        crate::signing::webhooks::enqueue(&mut tx, "", url, &body.to_string(), now_ms).await?;
    }
    tx.commit().await?;
    if req.delivery == Delivery::Sms {
        let message = SmsMessage {
            phone: req.signer.phone.clone(),
            template: "patient.link",
            params: serde_json::json!({ "title": req.document.title, "link": link, "minutes": expires_in / 60 }),
            text: format!(
                "{}请您点击链接阅读并签署《{}》：{link} 链接 {} 分钟内有效，请勿转发他人。",
                state.config.pki.organisation,
                req.document.title,
                expires_in / 60
            ),
        };
        if let Err(e) = state.patient.sms.send(&message).await {
            // The task exists; the terminal can still show the QR code.
            tracing::warn!(error = %e, task = %task_id, "the signing link SMS was not sent");
        }
    }
    Ok((
        PatientTaskCreated {
            qr_svg: format!("/api/v1/patient-tasks/{task_id}/qr.svg"),
            task_id,
            link,
            expires_at: rfc3339(expires_at),
        },
        doc.id,
    ))
}

/// The link of a task (decrypted from its sealed copy), for the terminal's QR code.
pub async fn link_of(state: &AppState, task_id: &str) -> Result<Zeroizing<String>, ApiFailure> {
    let token = token_of(state, task_id).await?;
    Ok(Zeroizing::new(format!(
        "{}/h5/#/t/{}",
        state.config.public_url,
        token.as_str()
    )))
}

/// The link token of a task (decrypted from its sealed copy): the QR code, a bedside pad.
pub async fn token_of(state: &AppState, task_id: &str) -> Result<Zeroizing<String>, ApiFailure> {
    let r = sqlx::query("SELECT token_sealed FROM patient_tasks WHERE task_id = $1")
        .bind(task_id)
        .fetch_one(state.db.pool())
        .await?;
    let sealed: Vec<u8> = r.try_get("token_sealed")?;
    if sealed.len() < 12 {
        return Err(ApiFailure::new(ErrorCode::Internal));
    }
    let device = state.keys.device();
    let key = data_key(&state.db, &*device).await?;
    let (nonce, ct) = sealed.split_at(12);
    let token = super::open(&*device, &key, &format!("link:{task_id}"), nonce, ct).await?;
    Ok(Zeroizing::new(String::from_utf8_lossy(&token).into_owned()))
}

/// The open tasks assigned to a bedside pad, oldest first (at most 50).
pub async fn for_pad(
    db: &crate::store::Db,
    pad_id: &str,
    now_ms: i64,
) -> Result<Vec<TaskRow>, ApiFailure> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM patient_tasks WHERE pad_id = $1 AND status IN ('pending', \
         'verified') AND expires_at >= $2 ORDER BY created_at, task_id LIMIT 50"
    ))
    .bind(pad_id)
    .bind(now_ms)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.iter().map(row_of).collect::<Result<Vec<_>, _>>()?)
}

/// The terminal's view.
pub fn view(task: &TaskRow, now_ms: i64) -> PatientTaskView {
    let signed = task.status == "signed";
    PatientTaskView {
        task_id: task.task_id.clone(),
        status: task.effective_status(now_ms).to_owned(),
        signed_at: task.signed_at.map(rfc3339),
        document_id: Some(task.document_id.clone()),
        signature: signed
            .then(|| {
                Some(PatientSignatureView {
                    certificate_serial: task.cert_serial.clone()?,
                    signer_name: task.signer_cn.clone()?,
                    signer_role: task.signer_role.clone(),
                    version: task.signed_version?,
                    sm3: task.signed_sm3.clone()?,
                    evidence_sm3: task.evidence_sm3.clone()?,
                })
            })
            .flatten(),
        expires_at: rfc3339(task.expires_at),
    }
}

/// The page's view.
pub fn page_view(state: &AppState, task: &TaskRow, now_ms: i64) -> H5TaskView {
    H5TaskView {
        title: task.title.clone(),
        hospital: state.config.pki.organisation.clone(),
        signer_name_masked: mask_name(&task.signer_name),
        signer_role: task.signer_role.clone(),
        sign_mode: task.sign_mode.clone(),
        copy_text: task.copy_text.clone(),
        require_read_to_end: task.require_read_to_end,
        identity: task.identity.clone(),
        status: task.effective_status(now_ms).to_owned(),
        page_count: u32::try_from(task.page_count).unwrap_or(0),
        phone_masked: mask_phone(&task.phone),
        verified: task.session_hash.is_some(),
        expires_at: rfc3339(task.expires_at),
    }
}

/// Cancels an open task (compare-and-set against a signature at the same moment).
pub async fn cancel(state: &AppState, task: &TaskRow, now_ms: i64) -> Result<(), ApiFailure> {
    let done = sqlx::query(
        "UPDATE patient_tasks SET status = 'cancelled', updated_at = $1 WHERE task_id = $2 \
         AND status IN ('pending', 'verified', 'locked') AND expires_at >= $1",
    )
    .bind(now_ms)
    .bind(&task.task_id)
    .execute(state.db.pool())
    .await?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    let now = load(&state.db, &task.task_id)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    Err(ApiFailure::new(match now.effective_status(now_ms) {
        "expired" => ErrorCode::TaskExpired,
        "cancelled" => ErrorCode::TaskCancelled,
        _ => ErrorCode::TaskUsed,
    }))
}

fn otp_hash(task_id: &str, code: &str) -> String {
    hex::encode(Sm3::digest(format!("otp:{task_id}:{code}").as_bytes()))
}

/// Sends a new SMS code (rate-limited: one a minute, [`OTP_PER_HOUR`] an hour). Returns the
/// seconds until the next one may be asked for.
pub async fn send_code(state: &AppState, task: &TaskRow, now_ms: i64) -> Result<u32, ApiFailure> {
    let resend_after = |sent: i64| {
        let left = (sent + OTP_RESEND_MS - now_ms).max(0);
        u32::try_from((left + 999) / 1000).unwrap_or(60)
    };
    if let Some(sent) = task.otp_sent_at
        && now_ms - sent < OTP_RESEND_MS
    {
        let s = resend_after(sent);
        return Err(ApiFailure::with(
            ErrorCode::RateLimited,
            format!("验证码已发送，请 {s} 秒后再重新获取。"),
            format!("A code was just sent; ask again in {s} s."),
        ));
    }
    let hour: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM patient_sms WHERE task_id = $1 AND sent_at > $2")
            .bind(&task.task_id)
            .bind(now_ms - 3_600_000)
            .fetch_one(state.db.pool())
            .await?
            .try_get("n")?;
    if hour >= OTP_PER_HOUR {
        return Err(ApiFailure::with(
            ErrorCode::RateLimited,
            "一小时内获取验证码次数过多，请稍后再试或联系医护人员。",
            "Too many codes this hour; try later or ask the ward staff.",
        ));
    }
    let device = state.keys.device();
    let random = device.random(8).await.map_err(dev)?;
    let n = u64::from_le_bytes(random.try_into().unwrap_or([0; 8])) % 1_000_000;
    let code = Zeroizing::new(format!("{n:06}"));
    let mut tx = state.db.pool().begin().await?;
    // Compare-and-set on the last send time: two clicks at once send one code.
    let moved = sqlx::query(
        "UPDATE patient_tasks SET otp_hash = $1, otp_expires_at = $2, otp_sent_at = $3, \
         updated_at = $3 WHERE task_id = $4 AND status IN ('pending', 'verified') AND \
         (otp_sent_at IS NULL OR otp_sent_at <= $5)",
    )
    .bind(otp_hash(&task.task_id, &code))
    .bind(now_ms + OTP_VALIDITY_MS)
    .bind(now_ms)
    .bind(&task.task_id)
    .bind(now_ms - OTP_RESEND_MS)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if moved != 1 {
        return Err(ApiFailure::with(
            ErrorCode::RateLimited,
            "验证码已发送，请稍后再重新获取。",
            "A code was just sent; ask again later.",
        ));
    }
    sqlx::query("INSERT INTO patient_sms (task_id, sent_at) VALUES ($1, $2)")
        .bind(&task.task_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let message = SmsMessage {
        phone: task.phone.clone(),
        template: "patient.code",
        params: serde_json::json!({ "code": code.as_str(), "minutes": 5 }),
        text: format!(
            "您的签署验证码为 {}，5 分钟内有效。医护人员不会向您索要验证码，请勿告知他人。",
            code.as_str()
        ),
    };
    if let Err(e) = state.patient.sms.send(&message).await {
        tracing::warn!(error = %e, task = %task.task_id, "SMS code not sent");
        // Not sent: the attempt does not count and may be repeated at once.
        let mut tx = state.db.pool().begin().await?;
        sqlx::query(
            "UPDATE patient_tasks SET otp_hash = NULL, otp_expires_at = NULL, otp_sent_at = NULL \
             WHERE task_id = $1 AND otp_sent_at = $2",
        )
        .bind(&task.task_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM patient_sms WHERE task_id = $1 AND sent_at = $2")
            .bind(&task.task_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Err(ApiFailure::with(
            ErrorCode::Unavailable,
            "短信发送失败，请稍后重试或联系医护人员。",
            "The SMS could not be sent; retry later or ask the ward staff.",
        ));
    }
    Ok(resend_after(now_ms))
}

/// What a code check ended with.
#[derive(Debug)]
pub enum CodeOutcome {
    /// Right: the new page session.
    Verified(Zeroizing<String>),
    /// Wrong (counted), with the attempts left.
    Wrong(i64),
    /// Wrong, and the task is now locked.
    Locked,
    /// No code sent, or it expired (not counted).
    Expired,
}

/// Checks an SMS code.
pub async fn verify_code(
    state: &AppState,
    task: &TaskRow,
    code: &str,
    now_ms: i64,
) -> Result<CodeOutcome, ApiFailure> {
    let (Some(stored), Some(until)) = (&task.otp_hash, task.otp_expires_at) else {
        return Ok(CodeOutcome::Expired);
    };
    if until < now_ms {
        return Ok(CodeOutcome::Expired);
    }
    let well_formed = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
    let right = well_formed
        && bool::from(
            otp_hash(&task.task_id, code)
                .as_bytes()
                .ct_eq(stored.as_bytes()),
        );
    if right {
        let device = state.keys.device();
        let session = Zeroizing::new(random_token(&*device).await?);
        // The code is single-use: the row moves only if it is still the same code.
        let moved = sqlx::query(
            "UPDATE patient_tasks SET status = 'verified', session_hash = $1, otp_hash = NULL, \
             otp_expires_at = NULL, verified_at = $2, verified_by = 'sms', updated_at = $2 \
             WHERE task_id = $3 AND \
             otp_hash = $4 AND status IN ('pending', 'verified')",
        )
        .bind(token_hash(&session))
        .bind(now_ms)
        .bind(&task.task_id)
        .bind(stored)
        .execute(state.db.pool())
        .await?
        .rows_affected();
        return Ok(if moved == 1 {
            CodeOutcome::Verified(session)
        } else {
            CodeOutcome::Expired
        });
    }
    sqlx::query(
        "UPDATE patient_tasks SET otp_failures = otp_failures + 1, status = CASE WHEN \
         otp_failures + 1 >= $1 THEN 'locked' ELSE status END, updated_at = $2 \
         WHERE task_id = $3 AND status IN ('pending', 'verified')",
    )
    .bind(OTP_MAX_FAILURES)
    .bind(now_ms)
    .bind(&task.task_id)
    .execute(state.db.pool())
    .await?;
    let now = load(&state.db, &task.task_id)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    Ok(if now.status == "locked" {
        CodeOutcome::Locked
    } else {
        CodeOutcome::Wrong((OTP_MAX_FAILURES - now.otp_failures).max(0))
    })
}

/// Records a proxy's details (proxy tasks only; may be corrected until submission). The ID
/// number goes into the device; the row keeps a masked copy.
pub async fn set_proxy(
    state: &AppState,
    task: &TaskRow,
    p: &ProxyDetails,
    now_ms: i64,
) -> Result<(), ApiFailure> {
    if task.role() != SignerRole::Proxy {
        return Err(ApiFailure::with(
            ErrorCode::InvalidArgument,
            "该签署任务须由患者本人签署，不能代签。",
            "This task is for the patient in person; a proxy cannot sign it.",
        ));
    }
    check_text("name", &p.name, 32)?;
    check_text("reason", &p.reason, 200)?;
    check_id_number("id_number", &p.id_number)?;
    let id = p.id_number.to_ascii_uppercase();
    let masked = format!("{}{}{}", &id[..3], "*".repeat(11), &id[14..]);
    let json = serde_json::json!({
        "relationship": p.relationship,
        "relationship_zh": p.relationship.label_zh(),
        "name": p.name,
        "id_number_masked": masked,
        "reason": p.reason,
    });
    let device = state.keys.device();
    let key = device
        .import_secret(
            &format!("patient:proxy-id:{}", task.task_id),
            Zeroizing::new(id.into_bytes()),
        )
        .await
        .map_err(dev)?;
    let moved = sqlx::query(
        "UPDATE patient_tasks SET proxy = $1, proxy_id_key = $2, updated_at = $3 \
         WHERE task_id = $4 AND status = 'verified'",
    )
    .bind(json.to_string())
    .bind(key.as_str())
    .bind(now_ms)
    .bind(&task.task_id)
    .execute(state.db.pool())
    .await?
    .rows_affected();
    if moved != 1 {
        let _ = device.destroy(&key).await;
        return Err(ApiFailure::new(ErrorCode::TaskUsed));
    }
    if let Some(old) = &task.proxy_id_key {
        let _ = device.destroy(&KeyId(old.clone())).await;
    }
    Ok(())
}

/// Page `n` (from 1) as a PNG [`PAGE_WIDTH`] pixels wide: rendered once by `pdftoppm`, then
/// served from the cache table.
pub async fn page_png(state: &AppState, task: &TaskRow, n: u32) -> Result<Vec<u8>, ApiFailure> {
    if n == 0 || i64::from(n) > task.page_count {
        return Err(ApiFailure::with(
            ErrorCode::NotFound,
            format!("没有第 {n} 页，文书共 {} 页。", task.page_count),
            format!("No page {n}; the document has {} pages.", task.page_count),
        ));
    }
    if let Some(r) = sqlx::query("SELECT png FROM patient_pages WHERE task_id = $1 AND page = $2")
        .bind(&task.task_id)
        .bind(i64::from(n))
        .fetch_optional(state.db.pool())
        .await?
    {
        return Ok(r.try_get("png")?);
    }
    let (_, pdf) = state
        .documents
        .version_bytes(&state.db, &task.document_id, Some(task.base_version))
        .await
        .map_err(crate::documents::http::failure)?;
    let png = state
        .documents
        .render_page(&pdf, n, PAGE_WIDTH)
        .await
        .map_err(crate::documents::http::failure)?;
    sqlx::query(
        "INSERT INTO patient_pages (task_id, page, png) VALUES ($1, $2, $3) \
         ON CONFLICT (task_id, page) DO NOTHING",
    )
    .bind(&task.task_id)
    .bind(i64::from(n))
    .bind(&png)
    .execute(state.db.pool())
    .await?;
    Ok(png)
}
