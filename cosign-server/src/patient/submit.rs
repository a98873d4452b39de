//! Submission: checks per sign mode (before anything is stored), the evidence, and the
//! signing steps.
//!
//! Steps and crash recovery. The accepting transaction moves the task `verified → signing`
//! (compare-and-set) with the submission id, a lease, the evidence's SM3, and stores the
//! evidence (SM4-GCM under a device key). Everything after it is redone from the stored
//! evidence if it is interrupted:
//!
//! 1. an event key is generated in the device and a patient event certificate issued for it
//!    (validity [`EVENT_VALIDITY`], subject CN = signer, UID = task id, certificate policy
//!    1.2.156.112233.4.1); its serial is recorded on the task;
//! 2. the PDF is signed (visible appearance, signed attributes: original-file SM3 and the
//!    evidence SM3 under [`EVIDENCE_SM3_OID`], signature time stamp from the local TSA, then
//!    the DSS for B-LT); the event key is destroyed whatever the outcome;
//! 3. the signed PDF goes into the archive as the next version (compare-and-set on the
//!    document version: at most one signed version per task);
//! 4. the finishing transaction marks the task `signed` and queues the webhook; then the hub
//!    is told.
//!
//! The steps run in their own task (a dropped request does not cut them). A failed attempt
//! releases its lease; a crash leaves the task `signing` with the lease running out after
//! [`LEASE_MS`]. The page resends the same submission (it keeps the strokes until
//! acknowledged); a resend during a live lease waits up to 20 s and then answers 503; once the
//! lease is free, the resend redoes the steps. If the
//! archive already holds the signed version (crash between 3 and 4), only step 4 is redone; an
//! event certificate of an interrupted attempt is left to expire (its key is destroyed or
//! never used). A different submission id is refused with `TASK_USED`.

use std::time::Duration;

use base64::Engine;
use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::patient::{
    MAX_COPY_CHARS, MAX_PNG_BYTES, MAX_POINTS, MAX_STROKES, MIN_HOLD_MS, SignMode, SignerRole,
    Stroke, Submission, Submitted, mask_phone,
};
use crypto_device::KeyId;
use sqlx::Row;

use super::tasks::{self, TaskRow};
use super::{data_key, open, seal, secret_text};
use crate::api::{ApiFailure, AppState};
use crate::clock::{now_ms, rfc3339};
use crate::documents::{DocError, Placement, ServerTsa, sm3_hex};
use crate::pki::{Actor, DeviceSigner, IssueProfile, PatientEventInfo};
use crate::signing::clients::dev;

/// Signed attribute carrying the SM3 of the evidence plaintext (JSON): `1.2.156.112233.7.3`
/// (project arc, beside the original-file SM3 `…7.1` and the seal signature `…7.2`); value
/// `OCTET STRING` (32 bytes).
pub const EVIDENCE_SM3_OID: &str = "1.2.156.112233.7.3";
/// Signed attribute carrying the SM3 of the evidence's `identity` array (its JSON as stored in
/// the evidence) when the task asked for checks beyond the SMS code (ID card, face, liveness):
/// `1.2.156.112233.7.4`, `OCTET STRING` (32 bytes). The array names the recorded checks
/// (`identity_checks`), so a verifier holding the evidence can find them.
pub const IDENTITY_SM3_OID: &str = "1.2.156.112233.7.4";
/// Validity of a patient event certificate.
pub const EVENT_VALIDITY: Duration = Duration::from_secs(30 * 60);
/// How long a signing attempt holds the task before a resend may redo it (an attempt that
/// fails releases it at once; only a crashed process leaves it to run out).
pub const LEASE_MS: i64 = 60_000;
/// How long a resend waits for the attempt holding the lease before answering 503 (below the
/// HTTP request timeout; the page simply resends).
const RESEND_WAIT_MS: i64 = 20_000;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn strokes_bad(zh: &str, en: &str) -> ApiFailure {
    ApiFailure::with(
        ErrorCode::BadStrokes,
        format!("签名笔迹数据无效：{zh}"),
        format!("Invalid handwriting data: {en}"),
    )
}

/// Bounds and shape of strokes: at most [`MAX_STROKES`] strokes and [`MAX_POINTS`] points
/// (counted across all characters), finite coordinates within ±100 000, pressure 0..=1, time
/// never going backwards (across strokes too).
fn check_strokes(
    strokes: &[Stroke],
    counts: &mut (usize, usize),
    last_t: &mut f64,
) -> Result<(), ApiFailure> {
    counts.0 += strokes.len();
    if counts.0 > MAX_STROKES {
        return Err(strokes_bad(
            &format!("笔画过多（最多 {MAX_STROKES} 笔）"),
            &format!("more than {MAX_STROKES} strokes"),
        ));
    }
    for s in strokes {
        if s.points.is_empty() {
            return Err(strokes_bad("有空笔画", "a stroke has no points"));
        }
        counts.1 += s.points.len();
        if counts.1 > MAX_POINTS {
            return Err(strokes_bad(
                &format!("采样点过多（最多 {MAX_POINTS} 个）"),
                &format!("more than {MAX_POINTS} points"),
            ));
        }
        for p in &s.points {
            let finite = [p.x, p.y, p.t]
                .iter()
                .all(|v| v.is_finite() && v.abs() <= 100_000_000.0)
                && p.x.abs() <= 100_000.0
                && p.y.abs() <= 100_000.0;
            if !finite || p.p.is_some_and(|q| !(0.0..=1.0).contains(&q)) {
                return Err(strokes_bad(
                    "坐标、时间或压力超出范围",
                    "a coordinate, time or pressure is out of range",
                ));
            }
            if p.t < *last_t {
                return Err(strokes_bad("时间戳倒退", "timestamps go backwards"));
            }
            *last_t = p.t;
        }
    }
    Ok(())
}

/// A base64 PNG: at most [`MAX_PNG_BYTES`] (`budget` shared by several images), decodable.
fn check_png(b64: &str, budget: &mut usize) -> Result<Vec<u8>, ApiFailure> {
    if b64.len() > MAX_PNG_BYTES / 3 * 4 + 8 {
        return Err(too_large());
    }
    let bytes = B64.decode(b64.as_bytes()).map_err(|_| {
        strokes_bad(
            "签名图片不是有效的 Base64",
            "the signature image is not base64",
        )
    })?;
    if bytes.len() > *budget {
        return Err(too_large());
    }
    *budget -= bytes.len();
    doc_sign::SignatureImage::from_png(&bytes).map_err(|_| {
        strokes_bad(
            "签名图片不是有效的 PNG",
            "the signature image is not a valid PNG",
        )
    })?;
    Ok(bytes)
}

fn too_large() -> ApiFailure {
    ApiFailure::with(
        ErrorCode::PayloadTooLarge,
        format!("签名图片过大（最多 {} KiB）。", MAX_PNG_BYTES / 1024),
        format!(
            "The signature image is too large (at most {} KiB).",
            MAX_PNG_BYTES / 1024
        ),
    )
}

/// Checks a submission against its task; nothing is stored.
pub fn check(task: &TaskRow, s: &Submission) -> Result<(), ApiFailure> {
    if task.require_read_to_end && !s.read_to_end {
        return Err(ApiFailure::new(ErrorCode::ReadRequired));
    }
    if task.role() == SignerRole::Proxy && task.proxy.is_none() {
        return Err(ApiFailure::new(ErrorCode::ProxyRequired));
    }
    let mut counts = (0, 0);
    let mut last_t = f64::MIN;
    let mut budget = MAX_PNG_BYTES;
    match task.mode() {
        SignMode::Button => {
            if !s.consent {
                return Err(ApiFailure::with(
                    ErrorCode::InvalidArgument,
                    "请勾选并确认同意后再签署。",
                    "Confirm your consent before signing.",
                ));
            }
        }
        SignMode::LongPress => {
            if s.held_ms.unwrap_or(0) < MIN_HOLD_MS {
                return Err(ApiFailure::with(
                    ErrorCode::InvalidArgument,
                    "请按住签署按钮 3 秒。",
                    "Hold the sign button for 3 seconds.",
                ));
            }
        }
        SignMode::Handwriting => {
            if s.strokes.is_empty() {
                return Err(strokes_bad("没有笔画", "no strokes"));
            }
            check_strokes(&s.strokes, &mut counts, &mut last_t)?;
            let png = s
                .signature_png_base64
                .as_deref()
                .ok_or_else(|| strokes_bad("缺少签名图片", "the signature PNG is missing"))?;
            check_png(png, &mut budget)?;
        }
        SignMode::Copy => {
            let text: Vec<char> = task
                .copy_text
                .as_deref()
                .unwrap_or_default()
                .chars()
                .collect();
            if s.copy_chars.len() != text.len() || text.len() > MAX_COPY_CHARS {
                return Err(strokes_bad(
                    &format!("须逐字抄录 {} 个字", text.len()),
                    &format!("copy each of the {} characters", text.len()),
                ));
            }
            for (c, want) in s.copy_chars.iter().zip(&text) {
                let mut it = c.ch.chars();
                if it.next() != Some(*want) || it.next().is_some() {
                    return Err(strokes_bad(
                        &format!("抄录的字与原文“{want}”不符"),
                        &format!("a copied character does not match {want:?}"),
                    ));
                }
                if c.strokes.is_empty() {
                    return Err(strokes_bad(
                        &format!("“{want}”没有笔画"),
                        &format!("{want:?} has no strokes"),
                    ));
                }
                check_strokes(&c.strokes, &mut counts, &mut last_t)?;
                if let Some(png) = &c.png_base64 {
                    check_png(png, &mut budget)?;
                }
            }
        }
    }
    Ok(())
}

fn submission_id_ok(id: &str) -> Result<(), ApiFailure> {
    if id.len() <= 64 && uuid::Uuid::parse_str(id).is_ok() {
        Ok(())
    } else {
        Err(ApiFailure::with(
            ErrorCode::InvalidArgument,
            "submission_id 须为 UUID。",
            "submission_id must be a UUID.",
        ))
    }
}

fn submitted(task: &TaskRow) -> Submitted {
    Submitted {
        status: "signed".into(),
        signed_at: rfc3339(task.signed_at.unwrap_or(0)),
        document_id: task.document_id.clone(),
    }
}

/// Handles a page submission: a new one is checked, accepted and signed; the same one again
/// returns the first result (or resumes an interrupted signing); another is `TASK_USED`.
pub async fn submit(
    state: &AppState,
    task: &TaskRow,
    s: &Submission,
    user_agent: &str,
    rid: &str,
) -> Result<Submitted, ApiFailure> {
    submission_id_ok(&s.submission_id)?;
    let same = task.submission_id.as_deref() == Some(s.submission_id.as_str());
    match task.status.as_str() {
        "signed" if same => return Ok(submitted(task)),
        "signing" if same => return resume(state, &task.task_id, rid).await,
        "signed" | "signing" => return Err(ApiFailure::new(ErrorCode::TaskUsed)),
        "verified" => {}
        _ => return Err(ApiFailure::new(ErrorCode::SessionRequired)),
    }
    check(task, s)?;
    // Every identity check the task asks for must have passed for the current signer/proxy.
    let identity = super::identity::evidence(state, task).await?;
    let now = now_ms();
    let evidence = evidence_json(state, task, s, user_agent, now, identity);
    let plain = serde_json::to_vec(&evidence).map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    let evidence_sm3 = sm3_hex(&plain);
    let device = state.keys.device();
    let key = data_key(&state.db, &*device).await?;
    let (nonce, ct) = seal(
        &*device,
        &key,
        &format!("evidence:{}", task.task_id),
        &plain,
    )
    .await?;
    let mut tx = state.db.pool().begin().await?;
    let moved = sqlx::query(
        "UPDATE patient_tasks SET status = 'signing', submission_id = $1, lease_until = $2, \
         evidence_sm3 = $3, updated_at = $4 WHERE task_id = $5 AND status = 'verified' \
         AND expires_at >= $4",
    )
    .bind(&s.submission_id)
    .bind(now + LEASE_MS)
    .bind(&evidence_sm3)
    .bind(now)
    .bind(&task.task_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if moved != 1 {
        drop(tx);
        // Someone else's submission (or this one, twice at once) got there first.
        let now_task = tasks::load(&state.db, &task.task_id)
            .await?
            .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
        return match now_task.effective_status(now_ms()) {
            "signing" | "signed" if now_task.submission_id == task.submission_id => {
                Err(ApiFailure::new(ErrorCode::TaskUsed))
            }
            "signing" | "signed"
                if now_task.submission_id.as_deref() == Some(s.submission_id.as_str()) =>
            {
                resume(state, &task.task_id, rid).await
            }
            "expired" => Err(ApiFailure::new(ErrorCode::TaskExpired)),
            "cancelled" => Err(ApiFailure::new(ErrorCode::TaskCancelled)),
            _ => Err(ApiFailure::new(ErrorCode::TaskUsed)),
        };
    }
    sqlx::query(
        "INSERT INTO patient_evidence (task_id, submission_id, key_id, nonce, ciphertext, \
         plain_sm3, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&task.task_id)
    .bind(&s.submission_id)
    .bind(key.as_str())
    .bind(nonce)
    .bind(ct)
    .bind(&evidence_sm3)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    run_detached(state, &task.task_id, rid).await
}

/// Runs the signing steps in their own task, so a client that goes away (or the request
/// timeout) cannot cut them in the middle; a failed attempt releases its lease so the next
/// resend redoes the steps at once.
async fn run_detached(state: &AppState, task_id: &str, rid: &str) -> Result<Submitted, ApiFailure> {
    let (state, task_id, rid) = (state.clone(), task_id.to_owned(), rid.to_owned());
    tokio::spawn(async move {
        let outcome = run(&state, &task_id, &rid).await;
        if outcome.is_err() {
            let released = sqlx::query(
                "UPDATE patient_tasks SET lease_until = 0 WHERE task_id = $1 AND status = 'signing'",
            )
            .bind(&task_id)
            .execute(state.db.pool())
            .await;
            if let Err(e) = released {
                tracing::warn!(error = %e, task = %task_id, "could not release the signing lease");
            }
        }
        outcome
    })
    .await
    .map_err(|_| ApiFailure::new(ErrorCode::Internal))?
}

fn evidence_json(
    state: &AppState,
    task: &TaskRow,
    s: &Submission,
    user_agent: &str,
    now: i64,
    checks: Vec<serde_json::Value>,
) -> serde_json::Value {
    let first = if task.verified_by.as_deref() == Some("pad") {
        // Ward staff vouched at the bedside pad the task was assigned to.
        serde_json::json!({
            "method": "pad",
            "pad_id": task.pad_id,
            "verified_at": task.verified_at.map(rfc3339),
        })
    } else {
        serde_json::json!({
            "method": "sms",
            "phone_masked": mask_phone(&task.phone),
            "verified_at": task.verified_at.map(rfc3339),
            "failed_attempts": task.otp_failures,
        })
    };
    let mut identity = vec![first];
    identity.extend(checks);
    serde_json::json!({
        "version": 1,
        "task_id": task.task_id,
        "document_id": task.document_id,
        "document_version": task.base_version,
        "hospital": state.config.pki.organisation,
        "submission_id": s.submission_id,
        "sign_mode": task.sign_mode,
        "read_to_end": s.read_to_end,
        "consent": s.consent,
        "held_ms": s.held_ms,
        "strokes": s.strokes,
        "signature_png_base64": s.signature_png_base64,
        "copy_text": task.copy_text,
        "copy_chars": s.copy_chars,
        "signer": { "role": task.signer_role, "name": task.signer_name },
        "proxy": task.proxy.as_deref().and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok()),
        "identity": identity,
        "pad_id": task.pad_id,
        "user_agent": user_agent,
        "times": {
            "created_at": rfc3339(task.created_at),
            "verified_at": task.verified_at.map(rfc3339),
            "submitted_at": rfc3339(now),
        },
    })
}

/// The same submission again while it is being signed: waits for the attempt holding the
/// lease, or takes over after the lease has passed (the holder crashed).
async fn resume(state: &AppState, task_id: &str, rid: &str) -> Result<Submitted, ApiFailure> {
    let deadline = now_ms() + RESEND_WAIT_MS;
    loop {
        let task = tasks::load(&state.db, task_id)
            .await?
            .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
        if task.status == "signed" {
            return Ok(submitted(&task));
        }
        if task.status != "signing" {
            return Err(ApiFailure::new(ErrorCode::TaskUsed));
        }
        let now = now_ms();
        let lease = task.lease_until.unwrap_or(0);
        if lease < now {
            let took = sqlx::query(
                "UPDATE patient_tasks SET lease_until = $1 WHERE task_id = $2 AND \
                 status = 'signing' AND lease_until = $3",
            )
            .bind(now + LEASE_MS)
            .bind(task_id)
            .bind(lease)
            .execute(state.db.pool())
            .await?
            .rows_affected();
            if took == 1 {
                return run_detached(state, task_id, rid).await;
            }
        }
        if now > deadline {
            return Err(ApiFailure::with(
                ErrorCode::Unavailable,
                "签署正在处理中，请稍后重新提交（签名不会重复）。",
                "Signing is in progress; submit again shortly (it will not be signed twice).",
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn doc_failure(e: DocError) -> ApiFailure {
    crate::documents::http::failure(e)
}

/// The signing steps for a task in `signing` whose lease this caller holds.
async fn run(state: &AppState, task_id: &str, rid: &str) -> Result<Submitted, ApiFailure> {
    let task = tasks::load(&state.db, task_id)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    let doc = state
        .db
        .document(&task.document_id)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?;
    if doc.current_version > task.base_version {
        // An earlier attempt archived its signature and stopped before the last step.
        return finish_archived(state, &task, rid).await;
    }
    let evidence = load_evidence(state, &task).await?;
    let (cn, resident_id) = signer_identity(state, &task).await?;
    let device = state.keys.device();
    let (key, public) = device
        .generate_sm2(&format!("patient:event:{}", task.task_id))
        .await
        .map_err(dev)?;
    let signed =
        sign_with_event_key(state, &task, &evidence, &cn, resident_id, &key, public, rid).await;
    // The event key signs once: destroyed whatever happened.
    if let Err(e) = device.destroy(&key).await {
        tracing::error!(error = %e, task = %task.task_id, "the event key could not be destroyed");
    }
    let (pdf, serial) = signed?;
    let size = pdf.len();
    let sm3 = state.documents.store().put(pdf).await?;
    let filename = format!("{}.pdf", task.title);
    let at = now_ms();
    let archived = state
        .db
        .add_signed_version(
            &task.document_id,
            task.base_version,
            &crate::documents::db::NewVersion {
                kind: "signed",
                sm3: &sm3,
                size,
                media_type: "application/pdf",
                filename: &filename,
            },
            (&cn, &serial),
            &format!("patient:{}", task.task_id),
            at,
        )
        .await?;
    if archived.is_none() {
        // Another attempt archived first; finish with its signature.
        return finish_archived(state, &task, rid).await;
    }
    finish(
        state,
        &task,
        task.base_version + 1,
        &serial,
        &cn,
        &sm3,
        at,
        rid,
    )
    .await
}

/// Finishes with the signed version already in the archive.
async fn finish_archived(
    state: &AppState,
    task: &TaskRow,
    rid: &str,
) -> Result<Submitted, ApiFailure> {
    let version = task.base_version + 1;
    let signer = state
        .db
        .document_signers(&task.document_id)
        .await?
        .into_iter()
        .find(|s| s.version == version)
        .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?;
    let row = state
        .db
        .document_versions(&task.document_id)
        .await?
        .into_iter()
        .find(|v| v.version == version)
        .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?;
    finish(
        state,
        task,
        version,
        &signer.cert_serial,
        &signer.signer,
        &row.sm3,
        signer.signed_at,
        rid,
    )
    .await
}

async fn load_evidence(state: &AppState, task: &TaskRow) -> Result<serde_json::Value, ApiFailure> {
    let r = sqlx::query(
        "SELECT key_id, nonce, ciphertext, plain_sm3 FROM patient_evidence WHERE task_id = $1",
    )
    .bind(&task.task_id)
    .fetch_one(state.db.pool())
    .await?;
    let device = state.keys.device();
    let plain = open(
        &*device,
        &KeyId(r.try_get("key_id")?),
        &format!("evidence:{}", task.task_id),
        &r.try_get::<Vec<u8>, _>("nonce")?,
        &r.try_get::<Vec<u8>, _>("ciphertext")?,
    )
    .await?;
    if sm3_hex(&plain) != r.try_get::<String, _>("plain_sm3")? {
        return Err(ApiFailure::new(ErrorCode::Internal));
    }
    serde_json::from_slice(&plain).map_err(|_| ApiFailure::new(ErrorCode::Internal))
}

/// The certificate's CN and ID number: the proxy's for a proxy task, else the patient's.
async fn signer_identity(
    state: &AppState,
    task: &TaskRow,
) -> Result<(String, Option<String>), ApiFailure> {
    let device = state.keys.device();
    if task.role() == SignerRole::Proxy {
        let proxy: serde_json::Value = task
            .proxy
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .ok_or_else(|| ApiFailure::new(ErrorCode::ProxyRequired))?;
        let name = proxy["name"].as_str().unwrap_or_default().to_owned();
        let key = task
            .proxy_id_key
            .clone()
            .ok_or_else(|| ApiFailure::new(ErrorCode::ProxyRequired))?;
        Ok((name, Some(secret_text(&*device, &KeyId(key)).await?)))
    } else {
        let id = match &task.id_number_key {
            Some(k) => Some(secret_text(&*device, &KeyId(k.clone())).await?),
            None => None,
        };
        Ok((task.signer_name.clone(), id))
    }
}

/// The appearance: the handwriting PNG, the copied characters drawn from their strokes, or a
/// text block for button and long press.
fn layers(
    task: &TaskRow,
    evidence: &serde_json::Value,
    cert: &gm_pki::ParsedCertificate,
    time: std::time::SystemTime,
) -> Result<Vec<doc_sign::Layer>, ApiFailure> {
    let image = |png: &[u8]| {
        doc_sign::SignatureImage::from_png(png)
            .map(doc_sign::Layer::Handwriting)
            .map_err(|e| doc_failure(e.into()))
    };
    Ok(match task.mode() {
        SignMode::Handwriting => {
            let png = evidence["signature_png_base64"]
                .as_str()
                .and_then(|b| B64.decode(b).ok())
                .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?;
            vec![image(&png)?]
        }
        SignMode::Copy => {
            let chars: Vec<cosign_proto::v1::patient::CopyChar> =
                serde_json::from_value(evidence["copy_chars"].clone())
                    .map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
            let strokes: Vec<&[Stroke]> = chars.iter().map(|c| c.strokes.as_slice()).collect();
            let png =
                super::ink::row_png(&strokes).map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
            vec![image(&png)?]
        }
        SignMode::Button | SignMode::LongPress => {
            let mut text = doc_sign::TextBlock::signer_time_serial(cert, time);
            let role = if task.role() == SignerRole::Proxy {
                "代签"
            } else {
                "患者"
            };
            text.lines.insert(0, format!("{role}已确认签署"));
            vec![doc_sign::Layer::Text(text)]
        }
    })
}

fn with_layers(mut p: Placement, layers: Vec<doc_sign::Layer>) -> Placement {
    match &mut p {
        Placement::Visible(app) => app.layers = layers,
        Placement::Keyword { layers: l, .. } | Placement::Field { layers: l, .. } => *l = layers,
        _ => {}
    }
    p
}

/// Issues the event certificate for `key`, records its serial on the task and signs the PDF
/// (B-T by the local TSA, then the DSS). Returns the signed bytes and the serial.
#[allow(clippy::too_many_arguments)]
async fn sign_with_event_key(
    state: &AppState,
    task: &TaskRow,
    evidence: &serde_json::Value,
    cn: &str,
    resident_id: Option<String>,
    key: &KeyId,
    public: crypto_device::Sm2PublicKey,
    rid: &str,
) -> Result<(Vec<u8>, String), ApiFailure> {
    let actor_name = format!("patient:{}", task.task_id);
    let issued = state
        .pki
        .issue_for_key(
            &state.db,
            "patient",
            public.as_inner(),
            IssueProfile::PatientEvent(PatientEventInfo {
                name: cn.to_owned(),
                resident_id,
                event_id: task.task_id.clone(),
                hospital: state.config.pki.organisation.clone(),
            }),
            EVENT_VALIDITY,
            &Actor {
                name: &actor_name,
                request_id: rid,
            },
        )
        .await
        .map_err(crate::api::pki_failure)?;
    let cert = issued.cert;
    let serial = cert.serial_hex();
    sqlx::query(
        "UPDATE patient_tasks SET cert_serial = $1, signer_cn = $2, updated_at = $3 \
         WHERE task_id = $4 AND status = 'signing'",
    )
    .bind(&serial)
    .bind(cn)
    .bind(now_ms())
    .bind(&task.task_id)
    .execute(state.db.pool())
    .await?;

    let (_, pdf) = state
        .documents
        .version_bytes(&state.db, &task.document_id, Some(task.base_version))
        .await
        .map_err(doc_failure)?;
    let original = state
        .db
        .document_versions(&task.document_id)
        .await?
        .first()
        .and_then(|v| hex::decode(&v.original_sm3).ok())
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?;
    let evidence_sm3 = task
        .evidence_sm3
        .as_deref()
        .and_then(|h| hex::decode(h).ok())
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?;
    let mut extra = vec![
        crate::documents::original_file_attribute(&original)?,
        crate::documents::sm3_attribute(EVIDENCE_SM3_OID, &evidence_sm3)?,
    ];
    if let Some(checks) = evidence["identity"].as_array().filter(|a| a.len() > 1) {
        let json = serde_json::to_vec(checks).map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
        extra.push(crate::documents::sm3_attribute(
            IDENTITY_SM3_OID,
            &gm_pki::signer::sm3(&json),
        )?);
    }
    let time = crate::documents::signing_time();
    let placement = with_layers(
        tasks::doc_placement(task)?,
        layers(task, evidence, &cert, time)?,
    );
    let mut opts = doc_sign::PdfSignOptions::new(time);
    opts.placement = placement;
    opts.signer_name = Some(cn.to_owned());
    opts.reason = Some(if task.role() == SignerRole::Proxy {
        "授权人代签".to_owned()
    } else {
        "患者本人签署".to_owned()
    });
    opts.location = Some(state.config.pki.organisation.clone());
    opts.contents_reserve = 48 * 1024;
    let chain: Vec<gm_pki::ParsedCertificate> = ["patient", "root"]
        .iter()
        .filter_map(|n| state.pki.authority(n))
        .map(|a| a.cert.clone())
        .collect();
    let signer = DeviceSigner::new(state.keys.device(), key.clone()).await?;
    let tsa = ServerTsa::new(state.pki.clone());
    let signing_cert = cert.clone();
    let signed = state
        .documents
        .cpu(move || -> Result<Vec<u8>, DocError> {
            let prepared = doc_sign::prepare(&pdf, &opts)?;
            let identity = doc_sign::SignerIdentity {
                cert: &signing_cert,
                chain: &chain,
                key: &signer,
            };
            let cms = doc_sign::build_cms_with(&prepared, &identity, Some(&tsa), &extra)?;
            Ok(prepared.finish(&cms)?)
        })
        .await?
        .map_err(doc_failure)?;
    let ltv = state
        .documents
        .ltv_material(&state.db, &state.pki, &cert, "patient")
        .await?;
    let signed = state
        .documents
        .cpu(move || doc_sign::add_dss(&signed, &ltv))
        .await?
        .map_err(|e| doc_failure(e.into()))?;
    Ok((signed, serial))
}

/// The finishing transaction: `signed`, the webhook queued; then the hub and the audit log.
#[allow(clippy::too_many_arguments)]
async fn finish(
    state: &AppState,
    task: &TaskRow,
    version: i64,
    serial: &str,
    cn: &str,
    sm3: &str,
    at: i64,
    rid: &str,
) -> Result<Submitted, ApiFailure> {
    let mut tx = state.db.pool().begin().await?;
    let moved = sqlx::query(
        "UPDATE patient_tasks SET status = 'signed', signed_at = $1, signed_version = $2, \
         signed_sm3 = $3, cert_serial = $4, signer_cn = $5, lease_until = NULL, updated_at = $1 \
         WHERE task_id = $6 AND status = 'signing'",
    )
    .bind(at)
    .bind(version)
    .bind(sm3)
    .bind(serial)
    .bind(cn)
    .bind(&task.task_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if moved == 1 {
        let hook = sqlx::query("SELECT webhook_url FROM client_apps WHERE app_id = $1")
            .bind(&task.app_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get::<Option<String>, _>("webhook_url"))
            .transpose()?
            .flatten();
        if let Some(url) = hook {
            let body = serde_json::json!({
                "event": "patient_task.signed",
                "kind": "patient_task",
                "task_id": task.task_id,
                "status": "signed",
                "document_id": task.document_id,
                "version": version,
                "signed_at": at,
            })
            .to_string();
            crate::signing::webhooks::enqueue(&mut tx, &task.app_id, &url, &body, at).await?;
        }
    }
    tx.commit().await?;
    if moved == 1 {
        state.hub.announce(&state.db, &task.task_id).await;
        state
            .audit
            .append(
                &state.db,
                now_ms(),
                &crate::audit::Event {
                    actor: &format!("patient:{}", task.task_id),
                    action: "patient.sign",
                    target: &task.task_id,
                    outcome: "ok",
                    detail: serde_json::json!({
                        "certificate": serial,
                        "document_id": task.document_id,
                        "version": version,
                        "sm3": sm3,
                        "sign_mode": task.sign_mode,
                        "signer_role": task.signer_role,
                    }),
                    request_id: rid,
                },
            )
            .await?;
    }
    let done = tasks::load(&state.db, &task.task_id)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    if done.status == "signed" {
        Ok(submitted(&done))
    } else {
        Err(ApiFailure::new(ErrorCode::TaskUsed))
    }
}
