//! REST routes of the documents service (administrator sessions; terminals' app credentials
//! come with the signing workflows):
//!
//! | route | what |
//! |---|---|
//! | `POST /api/v1/documents?doc_type=&patient_id=&visit_id=&department=&title=&filename=` | upload (raw body: PDF, DOCX, DOC, JPG, PNG) → 201 document |
//! | `GET /api/v1/documents?patient_id=&visit_id=&doc_type=&department=&status=&signer=&from=&to=&limit=&cursor=` | search, newest first, keyset pages |
//! | `GET /api/v1/documents/{id}` | metadata, versions, signers |
//! | `GET /api/v1/documents/{id}/versions/{n}` | the bytes of version n (`current` for the latest) |
//! | `POST /api/v1/documents/{id}/sign` | sign the current PDF with the organisation seal (B-LT) |
//! | `POST /api/v1/documents/verify?format=json\|text\|html\|pdf` | verify any PDF (raw body) |
//! | `GET /api/v1/documents/seal` | the organisation seal: certificate, chain, picture, GB/T 38540 SESeal |
//! | `GET /api/v1/documents/{id}/versions/{n}/ses-signature` | the GB/T 38540 SES_Signature (DER) of the last signature of version n |
//!
//! Uploads have their own body limit (`documents.max_upload`): a larger request is answered
//! 413 from its `Content-Length` before any of it is read, a chunked one as soon as it passes
//! the limit.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cosign_proto::v1::ErrorCode;
use serde::Deserialize;
use tower_http::limit::RequestBodyLimitLayer;

use super::{DocError, Metadata, Placement, Search, SignContext, SignRequest};
use crate::api::{Admin, ApiFailure, ApiJson, AppState, RequestId};
use crate::audit::Event;
use crate::clock::now_ms;

/// Longest metadata value (characters).
const MAX_FIELD: usize = 128;
/// Largest search page.
const MAX_LIMIT: i64 = 500;

/// The routes, with the upload body limit applied to the routes that take files.
pub fn routes(max_upload: usize) -> axum::Router<AppState> {
    let files = axum::Router::new()
        .route("/api/v1/documents", post(upload))
        .route("/api/v1/documents/verify", post(verify))
        .layer(DefaultBodyLimit::max(max_upload))
        .layer(RequestBodyLimitLayer::new(max_upload));
    let small = axum::Router::new()
        .route("/api/v1/documents", get(search))
        .route("/api/v1/documents/{id}", get(document))
        .route("/api/v1/documents/{id}/versions/{version}", get(version))
        .route(
            "/api/v1/documents/{id}/versions/{version}/ses-signature",
            get(ses_signature),
        )
        .route("/api/v1/documents/{id}/sign", post(sign))
        .route("/api/v1/documents/seal", get(seal))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(RequestBodyLimitLayer::new(64 * 1024));
    files.merge(small)
}

pub(crate) fn failure(e: DocError) -> ApiFailure {
    match e {
        DocError::Invalid(m) => ApiFailure::with(
            ErrorCode::InvalidDocument,
            format!("文件无效：{}", zh_reason(&m)),
            format!("Invalid document: {m}"),
        ),
        DocError::UnsupportedType(m) => ApiFailure::with(
            ErrorCode::UnsupportedDocumentType,
            "不支持的文件类型，请上传 PDF、DOCX、DOC、JPG 或 PNG 文件。",
            format!("Unsupported file type: {m}"),
        ),
        DocError::Argument(m) => ApiFailure::with(
            ErrorCode::InvalidArgument,
            format!("请求参数无效：{m}"),
            format!("Invalid parameter: {m}"),
        ),
        DocError::NotFound => ApiFailure::with(
            ErrorCode::NotFound,
            "没有该文档或版本，请核对文档编号与版本号。",
            "No such document or version; check the id and version.",
        ),
        DocError::Conflict => ApiFailure::new(ErrorCode::DocumentConflict),
        DocError::Server(e) => e.into(),
    }
}

/// A Chinese gloss for the common refusal reasons (the English text keeps the detail).
fn zh_reason(m: &str) -> &'static str {
    if m.contains("empty") {
        "文件为空（0 字节）。"
    } else if m.contains("encrypt") {
        "PDF 已加密，请上传未加密的文件。"
    } else if m.contains("zip") || m.contains("uncompressed") {
        "压缩文档解压后过大或结构异常，已拒绝。"
    } else if m.contains("timed out") {
        "文档转换超时，请检查文件。"
    } else {
        "文件已损坏或格式不正确。"
    }
}

fn query_failure(rejection: &QueryRejection) -> ApiFailure {
    let detail = rejection.body_text();
    ApiFailure::with(
        ErrorCode::InvalidArgument,
        format!("查询参数无效：{detail}"),
        format!("Invalid query parameters: {detail}"),
    )
}

fn field(name: &str, v: Option<String>, required: bool) -> Result<String, ApiFailure> {
    let v = v.unwrap_or_default();
    let bad = v.chars().count() > MAX_FIELD || v.chars().any(char::is_control);
    if bad || (required && v.trim().is_empty()) {
        return Err(ApiFailure::with(
            ErrorCode::InvalidArgument,
            format!(
                "参数 {name} 无效：须为不超过 {MAX_FIELD} 个字符的文本{}。",
                if required { "且不能为空" } else { "" }
            ),
            format!(
                "Parameter {name} must be text of at most {MAX_FIELD} characters{}.",
                if required { " and not empty" } else { "" }
            ),
        ));
    }
    Ok(v.trim().to_owned())
}

/// Query of `POST /api/v1/documents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    doc_type: Option<String>,
    patient_id: Option<String>,
    visit_id: Option<String>,
    department: Option<String>,
    title: Option<String>,
    filename: Option<String>,
}

async fn document_json(
    state: &AppState,
    doc: super::DocumentRow,
) -> Result<serde_json::Value, ApiFailure> {
    let versions = state.db.document_versions(&doc.id).await?;
    let signatures = state.db.document_signers(&doc.id).await?;
    let mut v = serde_json::to_value(&doc).map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    v["created_at_text"] = crate::clock::rfc3339(doc.created_at).into();
    v["versions"] =
        serde_json::to_value(&versions).map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    v["signatures"] =
        serde_json::to_value(&signatures).map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    Ok(v)
}

/// `POST /api/v1/documents`: upload.
async fn upload(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    query: Result<Query<UploadQuery>, QueryRejection>,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiFailure> {
    let Query(q) = query.map_err(|r| query_failure(&r))?;
    let meta = Metadata {
        doc_type: field("doc_type", q.doc_type, true)?,
        patient_id: field("patient_id", q.patient_id, false)?,
        visit_id: field("visit_id", q.visit_id, false)?,
        department: field("department", q.department, false)?,
        title: field("title", q.title, false)?,
    };
    let filename = field("filename", q.filename, false)?;
    let filename = if filename.is_empty() {
        "document".to_owned()
    } else {
        filename.replace(['/', '\\'], "_")
    };
    let actor = format!("admin:{}", admin.0.username());
    let docs = state.documents.clone();
    let doc = docs
        .upload(&state.db, body.to_vec(), &filename, &meta, &actor)
        .await
        .map_err(failure)?;
    state
        .audit
        .append(
            &state.db,
            now_ms(),
            &Event {
                actor: &actor,
                action: "documents.upload",
                target: &doc.id,
                outcome: "ok",
                detail: serde_json::json!({ "doc_type": meta.doc_type, "patient_id": meta.patient_id, "bytes": body.len() }),
                request_id: &rid.0,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(document_json(&state, doc).await?)))
}

/// Query of `GET /api/v1/documents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    patient_id: Option<String>,
    visit_id: Option<String>,
    doc_type: Option<String>,
    department: Option<String>,
    status: Option<String>,
    signer: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Unix ms, or a date `YYYY-MM-DD` taken as midnight Beijing time (UTC+8).
fn parse_instant(name: &str, v: &str) -> Result<i64, ApiFailure> {
    let bad = || {
        ApiFailure::with(
            ErrorCode::InvalidArgument,
            format!("参数 {name} 须为毫秒时间戳或 YYYY-MM-DD 日期（北京时间）。"),
            format!("{name} must be unix milliseconds or a YYYY-MM-DD date (Beijing time)."),
        )
    };
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(ms);
    }
    let parts: Vec<&str> = v.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    let (y, m, d) = (
        y.parse::<i32>().map_err(|_| bad())?,
        m.parse::<u8>().map_err(|_| bad())?,
        d.parse::<u8>().map_err(|_| bad())?,
    );
    let month = time::Month::try_from(m).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(y, month, d).map_err(|_| bad())?;
    let utc = date.midnight().assume_utc().unix_timestamp() - 8 * 3600;
    Ok(utc * 1000)
}

fn opt(name: &str, v: Option<String>) -> Result<Option<String>, ApiFailure> {
    let v = field(name, v, false)?;
    Ok((!v.is_empty()).then_some(v))
}

/// `GET /api/v1/documents`: search.
async fn search(
    State(state): State<AppState>,
    _admin: Admin,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiFailure> {
    let Query(q) = query.map_err(|r| query_failure(&r))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiFailure::with(
            ErrorCode::InvalidArgument,
            format!("limit 须在 1 到 {MAX_LIMIT} 之间。"),
            format!("limit must be 1..={MAX_LIMIT}."),
        ));
    }
    let before = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => {
            let parsed = c
                .split_once('_')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_owned())))
                .filter(|(_, id)| id.len() <= 64);
            Some(parsed.ok_or_else(|| {
                ApiFailure::with(
                    ErrorCode::InvalidArgument,
                    "分页游标无效，请使用上一页返回的 next_cursor。",
                    "Invalid cursor; pass the next_cursor of the previous page.",
                )
            })?)
        }
    };
    let s = Search {
        patient_id: opt("patient_id", q.patient_id)?,
        visit_id: opt("visit_id", q.visit_id)?,
        doc_type: opt("doc_type", q.doc_type)?,
        department: opt("department", q.department)?,
        status: opt("status", q.status)?,
        signer: opt("signer", q.signer)?,
        from: q
            .from
            .as_deref()
            .map(|v| parse_instant("from", v))
            .transpose()?,
        to: q
            .to
            .as_deref()
            .map(|v| parse_instant("to", v))
            .transpose()?,
        before,
        limit,
    };
    let items = state.db.search_documents(&s).await?;
    let next_cursor = (i64::try_from(items.len()).unwrap_or(0) == limit)
        .then(|| items.last().map(|d| format!("{}_{}", d.created_at, d.id)))
        .flatten();
    Ok(Json(serde_json::json!({
        "items": items,
        "next_cursor": next_cursor,
    })))
}

fn check_id(id: &str) -> Result<(), ApiFailure> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(failure(DocError::NotFound));
    }
    Ok(())
}

/// `GET /api/v1/documents/{id}`.
async fn document(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiFailure> {
    check_id(&id)?;
    let doc = state
        .db
        .document(&id)
        .await?
        .ok_or_else(|| failure(DocError::NotFound))?;
    Ok(Json(document_json(&state, doc).await?))
}

/// Version `n` (or `current`) of document `id`, with its bytes.
async fn fetch_version(
    state: &AppState,
    id: &str,
    version: &str,
) -> Result<(super::VersionRow, Vec<u8>), ApiFailure> {
    check_id(id)?;
    let n = if version == "current" {
        None
    } else {
        Some(
            version
                .parse::<i64>()
                .map_err(|_| failure(DocError::NotFound))?,
        )
    };
    state
        .documents
        .version_bytes(&state.db, id, n)
        .await
        .map_err(failure)
}

/// `GET /api/v1/documents/{id}/versions/{n|current}/ses-signature`: the GB/T 38540 seal
/// signature embedded in the last PDF signature of that version (DER).
async fn ses_signature(
    State(state): State<AppState>,
    _admin: Admin,
    Path((id, version)): Path<(String, String)>,
) -> Result<Response, ApiFailure> {
    let (_, bytes) = fetch_version(&state, &id, &version).await?;
    let der = state
        .documents
        .cpu(move || {
            let report = doc_sign::verify_pdf(&bytes).ok()?;
            report
                .signatures
                .iter()
                .rev()
                .find_map(super::report::ses_signature_of)
        })
        .await?
        .ok_or_else(|| {
            ApiFailure::with(
                ErrorCode::NotFound,
                "该版本没有电子签章。",
                "This version carries no electronic seal signature.",
            )
        })?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], der).into_response())
}

/// `GET /api/v1/documents/{id}/versions/{n|current}`: the file.
async fn version(
    State(state): State<AppState>,
    _admin: Admin,
    Path((id, version)): Path<(String, String)>,
) -> Result<Response, ApiFailure> {
    let (row, bytes) = fetch_version(&state, &id, &version).await?;
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&row.media_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&row.sm3) {
        h.insert("x-content-sm3", v);
    }
    if let Ok(v) = HeaderValue::from_str(&row.version.to_string()) {
        h.insert("x-document-version", v);
    }
    Ok(resp)
}

/// Body of `POST /api/v1/documents/{id}/sign`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignBody {
    placement: Option<PlacementBody>,
    reason: Option<String>,
    location: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum PlacementBody {
    Invisible,
    Coordinates {
        page: u32,
        x: f32,
        y: f32,
        width: f32,
        height: f32,
    },
    Keyword {
        keyword: String,
        page: Option<u32>,
        #[serde(default)]
        dx: f32,
        #[serde(default)]
        dy: f32,
        width: f32,
        height: f32,
    },
    Field {
        name: String,
    },
}

fn placement(p: Option<PlacementBody>) -> Result<Placement, ApiFailure> {
    let bad = |m: &str| failure(DocError::Argument(m.to_owned()));
    let sane = |vals: &[f32]| vals.iter().all(|v| v.is_finite() && v.abs() < 100_000.0);
    Ok(match p.unwrap_or(PlacementBody::Invisible) {
        PlacementBody::Invisible => Placement::Invisible,
        PlacementBody::Coordinates {
            page,
            x,
            y,
            width,
            height,
        } => {
            if !sane(&[x, y, width, height]) || width <= 0.0 || height <= 0.0 || page == 0 {
                return Err(bad(
                    "placement: page ≥ 1, finite coordinates, positive size",
                ));
            }
            Placement::Visible(doc_sign::Appearance {
                page,
                rect: doc_sign::Rect {
                    x,
                    y,
                    width,
                    height,
                },
                layers: Vec::new(),
            })
        }
        PlacementBody::Keyword {
            keyword,
            page,
            dx,
            dy,
            width,
            height,
        } => {
            if keyword.is_empty() || keyword.chars().count() > 64 {
                return Err(bad("keyword must be 1..=64 characters"));
            }
            if !sane(&[dx, dy, width, height]) || width <= 0.0 || height <= 0.0 {
                return Err(bad("placement: finite offsets, positive size"));
            }
            Placement::Keyword {
                keyword,
                page,
                dx,
                dy,
                width,
                height,
                layers: Vec::new(),
            }
        }
        PlacementBody::Field { name } => {
            if name.is_empty() || name.len() > 256 {
                return Err(bad("field name must be 1..=256 bytes"));
            }
            Placement::Field {
                name,
                layers: Vec::new(),
            }
        }
    })
}

/// `POST /api/v1/documents/{id}/sign`: the organisation seal (administrators; audited).
async fn sign(
    State(state): State<AppState>,
    rid: RequestId,
    admin: Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SignBody>,
) -> Result<Json<serde_json::Value>, ApiFailure> {
    if !matches!(admin.0.role(), "sysadmin" | "secadmin") {
        return Err(ApiFailure::new(ErrorCode::Forbidden));
    }
    check_id(&id)?;
    let req = SignRequest {
        placement: placement(body.placement)?,
        reason: opt("reason", body.reason)?,
        location: opt("location", body.location)?,
    };
    let ctx = SignContext {
        db: state.db.clone(),
        pki: state.pki.clone(),
        device: state.keys.device(),
        organisation: state.config.pki.organisation.clone(),
    };
    let actor = format!("admin:{}", admin.0.username());
    let (doc, signed) = state
        .documents
        .sign_with_seal(&ctx, &id, &req, &actor)
        .await
        .map_err(failure)?;
    state
        .audit
        .append(
            &state.db,
            now_ms(),
            &Event {
                actor: &actor,
                action: "documents.sign",
                target: &id,
                outcome: "ok",
                detail: serde_json::json!({ "seal": "org", "version": signed.version, "sm3": signed.sm3, "cert_serial": signed.cert_serial }),
                request_id: &rid.0,
            },
        )
        .await?;
    let mut v = document_json(&state, doc).await?;
    v["signed"] =
        serde_json::to_value(&signed).map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    Ok(Json(v))
}

/// Query of `POST /api/v1/documents/verify`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyQuery {
    format: Option<String>,
}

/// `POST /api/v1/documents/verify`: any PDF; signer paths are checked against this server's
/// root CA at the time-stamp time (other producers' signatures report an unknown chain).
async fn verify(
    State(state): State<AppState>,
    _admin: Admin,
    query: Result<Query<VerifyQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiFailure> {
    let Query(q) = query.map_err(|r| query_failure(&r))?;
    let format = q.format.unwrap_or_else(|| "json".into());
    if !matches!(format.as_str(), "json" | "text" | "html" | "pdf") {
        return Err(failure(DocError::Argument(
            "format must be json, text, html or pdf".into(),
        )));
    }
    if body.is_empty() {
        return Err(failure(DocError::Invalid(
            "the file is empty (0 bytes)".into(),
        )));
    }
    let anchors: Vec<gm_pki::ParsedCertificate> = state
        .pki
        .authority("root")
        .map(|a| vec![a.cert.clone()])
        .unwrap_or_default();
    let pdf = body.to_vec();
    let (report, pdf) = state
        .documents
        .cpu(move || {
            let trust = doc_sign::TrustOptions {
                anchors: &anchors,
                time: crate::pki::now_seconds(),
                require_revocation: false,
            };
            (doc_sign::verify_pdf_trusted(&pdf, &trust), pdf)
        })
        .await?;
    let report = report.map_err(|e| failure(e.into()))?;
    if format == "pdf" {
        let rendered = state
            .documents
            .cpu(move || super::report::to_pdf_zh(&report, &pdf))
            .await?;
        let bytes = rendered.map_err(|e| {
            tracing::error!(error = %e, "PDF report");
            ApiFailure::new(ErrorCode::Internal)
        })?;
        return Ok(([(header::CONTENT_TYPE, "application/pdf")], bytes).into_response());
    }
    Ok(match format.as_str() {
        "text" => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            super::report::to_text_zh(&report, &pdf),
        )
            .into_response(),
        "html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            super::report::to_html_zh(&report, &pdf),
        )
            .into_response(),
        _ => Json(super::report::to_json(&report, &pdf)).into_response(),
    })
}

/// `GET /api/v1/documents/seal`: the organisation seal's certificate, chain and picture
/// (created on first use).
async fn seal(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<serde_json::Value>, ApiFailure> {
    use base64::Engine;
    let seal = state
        .documents
        .org_seal(
            &state.db,
            &state.pki,
            state.keys.device(),
            &state.config.pki.organisation,
        )
        .await?;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(Json(serde_json::json!({
        "name": "org",
        "subject": seal.cert.subject_string(),
        "serial": seal.cert.serial_hex(),
        "certificate_pem": seal.cert.to_pem(),
        "chain_pem": seal.chain.iter().map(gm_pki::ParsedCertificate::to_pem).collect::<Vec<_>>(),
        "picture_png": b64.encode(&seal.picture),
        "seseal": b64.encode(&seal.seseal),
    })))
}
