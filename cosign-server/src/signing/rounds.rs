//! The phone's co-signing rounds: PIN unlock (counted), start (what to sign, checked against
//! signer lists and order), commit (the server's partial signatures), result (verified
//! signatures become CAdES-T CMS, stored in one transaction).
//!
//! A round is stored with the server's first protocol message, which holds no secret, so the
//! next message may reach any instance and a restart loses nothing: the state moves
//! `started → answered → finished` by compare-and-set updates, so each step happens once.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use base64::Engine;
use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::cosign::{
    ItemOutcome, PinUnlock, PinUnlocked, RoundCommit, RoundItem, RoundItemView, RoundOutcome,
    RoundResult, RoundStarted, StartRound,
};
use crypto_device::{CryptoDevice, KeyId, with_secret};
use gm_pki::cert::ParsedCertificate;
use gm_pki::cms::{PreparedSignature, SignOptions};
use serde::{Deserialize, Serialize};
use sm2_cosign::ServerKeyShare;
use sm2_cosign::seal::OprfKey;
use sm2_cosign::sign::{ServerAwaitingResult, ServerSignSession, SignPartial, SignRequest};
use sqlx::Row;

use super::clients::{Nonce, dev};
use super::devices::Device;
use super::requests;
use crate::api::ApiFailure;
use crate::audit::{AuditLog, Event};
use crate::pki::Pki;
use crate::store::Db;

/// A round must finish within this time.
pub const ROUND_TTL_MS: i64 = 5 * 60 * 1000;
/// Most items in one round.
pub const MAX_ROUND_ITEMS: usize = 1000;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn protocol(e: &sm2_cosign::Error) -> ApiFailure {
    ApiFailure::with(
        ErrorCode::ProtocolViolation,
        format!("协同签名消息无效：{e}"),
        format!("Invalid co-signing message: {e}"),
    )
}

/// Refuses devices that have not finished enrolment.
pub fn active(d: &Device) -> Result<(), ApiFailure> {
    if d.status == "active" {
        Ok(())
    } else {
        Err(ApiFailure::with(
            ErrorCode::Forbidden,
            "该设备尚未完成激活或已被停用。",
            "This device has not finished enrolment or was revoked.",
        ))
    }
}

/// Charges one PIN attempt, then evaluates the blinded PIN with the staff member's OPRF key.
/// The charge is undone only when a signature in a later round verifies (the proof that the
/// PIN was right), so a stolen phone gets `max_failures` (`cosign.max_pin_failures`) online
/// guesses in all. The call's nonce and the charge (or the lock) are one transaction, committed
/// before the evaluation.
pub async fn pin(
    db: &Db,
    device: &dyn CryptoDevice,
    d: &Device,
    nonce: &Nonce,
    req: &PinUnlock,
    max_failures: u32,
    now_ms: i64,
) -> Result<PinUnlocked, ApiFailure> {
    let max_failures = i64::from(max_failures);
    active(d)?;
    let mut tx = db.begin_write().await?;
    nonce.spend_in(&mut tx).await?;
    let charged = sqlx::query(
        "UPDATE staff SET pin_failures = pin_failures + 1, updated_at = $1 \
         WHERE staff_id = $2 AND status = 'active' AND pin_failures < $3 RETURNING pin_failures",
    )
    .bind(now_ms)
    .bind(&d.staff_id)
    .bind(max_failures)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(charged) = charged else {
        sqlx::query(
            "UPDATE staff SET status = 'locked', updated_at = $1 WHERE staff_id = $2 AND status = 'active'",
        )
        .bind(now_ms)
        .bind(&d.staff_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        nonce.committed();
        return Err(ApiFailure::new(ErrorCode::KeyLocked));
    };
    let failures: i64 = charged.try_get(0)?;
    tx.commit().await?;
    nonce.committed();
    let key = KeyId(
        d.oprf_key
            .clone()
            .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?,
    );
    let blinded = req.oprf.clone();
    let oprf = with_secret(device, &key, move |bytes| {
        let k: [u8; 32] = bytes
            .try_into()
            .map_err(|_| crypto_device::Error::Internal("OPRF key length"))?;
        Ok(OprfKey::from_bytes(&k).and_then(|k| k.evaluate(&blinded)))
    })
    .await
    .map_err(dev)?
    .map_err(|e| protocol(&e))?;
    Ok(PinUnlocked {
        oprf,
        attempts_left: u32::try_from(max_failures - failures).unwrap_or(0),
    })
}

/// What a stored round covers, per item.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredItem {
    request_id: String,
    document: u32,
    digest: String,
    signing_time_ms: i64,
    attrs: String,
}

/// A signer's standing on one request, read once per round however many of its documents
/// the round covers (a batch of hundreds would otherwise read the same rows hundreds of
/// times): the header, and the documents this signer has already signed.
struct Turn {
    head: requests::RequestRow,
    signed: HashSet<u32>,
}

/// Reads whether `staff_id` may sign in `request_id` now: pending, not expired, a signer who
/// has not finished, and (ordered requests) every earlier signer done. The outer error is the
/// database's; the inner one is the refusal.
async fn turn_of(
    db: &mut sqlx::AnyConnection,
    request_id: &str,
    staff_id: &str,
    now_ms: i64,
) -> Result<Result<Turn, ErrorCode>, ApiFailure> {
    let Some(head) = requests::load(&mut *db, request_id).await? else {
        return Ok(Err(ErrorCode::NotFound));
    };
    match head.effective_status(now_ms) {
        "pending" => {}
        "expired" => return Ok(Err(ErrorCode::RequestExpired)),
        _ => return Ok(Err(ErrorCode::RequestClosed)),
    }
    let signers = sqlx::query(
        "SELECT position, staff_id, signed_at FROM sign_request_signers WHERE request_id = $1 \
         ORDER BY position",
    )
    .bind(request_id)
    .fetch_all(&mut *db)
    .await?;
    let mut before_me_pending = false;
    let mut me = None;
    for s in &signers {
        let sid: String = s.try_get("staff_id")?;
        let signed: Option<i64> = s.try_get("signed_at")?;
        if sid == staff_id {
            me = Some(signed);
            break;
        }
        before_me_pending |= signed.is_none();
    }
    match me {
        None => return Ok(Err(ErrorCode::NotASigner)),
        Some(Some(_)) => return Ok(Err(ErrorCode::RequestClosed)),
        Some(None) if head.ordered && before_me_pending => {
            return Ok(Err(ErrorCode::NotYourTurn));
        }
        Some(None) => {}
    }
    let signed =
        sqlx::query("SELECT doc_index FROM signatures WHERE request_id = $1 AND staff_id = $2")
            .bind(request_id)
            .bind(staff_id)
            .fetch_all(&mut *db)
            .await?
            .iter()
            .map(|r| {
                r.try_get::<i64, _>(0)
                    .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            })
            .collect::<Result<_, _>>()?;
    Ok(Ok(Turn { head, signed }))
}

/// The signer's turns on a round's requests, each read at its request's first item.
struct Turns<'a> {
    staff_id: &'a str,
    now_ms: i64,
    read: HashMap<String, Result<Turn, ErrorCode>>,
}

impl<'a> Turns<'a> {
    fn new(staff_id: &'a str, now_ms: i64) -> Self {
        Self {
            staff_id,
            now_ms,
            read: HashMap::new(),
        }
    }

    /// Whether the signer may sign `document` of `request_id` now: their turn on the request,
    /// or the refusal.
    async fn check(
        &mut self,
        db: &mut sqlx::AnyConnection,
        request_id: &str,
        document: u32,
    ) -> Result<Result<&mut Turn, ErrorCode>, ApiFailure> {
        let turn = match self.read.entry(request_id.to_owned()) {
            Entry::Occupied(read) => read.into_mut(),
            Entry::Vacant(unread) => {
                unread.insert(turn_of(db, request_id, self.staff_id, self.now_ms).await?)
            }
        };
        Ok(match turn {
            Ok(turn) if turn.signed.contains(&document) => Err(ErrorCode::RequestClosed),
            Ok(turn) => Ok(turn),
            Err(code) => Err(*code),
        })
    }
}

/// A request's documents (index → name, SM3 hex), read once per request of a round.
async fn documents_of(
    db: &mut sqlx::AnyConnection,
    request_id: &str,
) -> Result<HashMap<u32, (String, String)>, ApiFailure> {
    sqlx::query("SELECT doc_index, name, digest FROM sign_request_documents WHERE request_id = $1")
        .bind(request_id)
        .fetch_all(&mut *db)
        .await?
        .iter()
        .map(|r| {
            let index = u32::try_from(r.try_get::<i64, _>("doc_index")?).unwrap_or(u32::MAX);
            Ok((index, (r.try_get("name")?, r.try_get("digest")?)))
        })
        .collect()
}

struct Signer {
    cert: ParsedCertificate,
    chain: Vec<ParsedCertificate>,
    share_key: KeyId,
}

async fn signer_of(db: &Db, pki: &Pki, d: &Device) -> Result<Signer, ApiFailure> {
    let serial = d
        .cert_serial
        .as_deref()
        .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?;
    let row = db
        .certificate_by_serial(serial)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?;
    let cert =
        ParsedCertificate::from_der(&row.der).map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    let chain = ["staff", "root"]
        .iter()
        .filter_map(|n| pki.authority(n))
        .map(|a| a.cert.clone())
        .collect();
    Ok(Signer {
        cert,
        chain,
        share_key: KeyId(
            d.share_key
                .clone()
                .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?,
        ),
    })
}

fn prepare(
    signer: &Signer,
    digest_hex: &str,
    signing_time_ms: i64,
) -> Result<PreparedSignature, ApiFailure> {
    let digest: [u8; 32] = hex::decode(digest_hex)
        .ok()
        .and_then(|d| d.try_into().ok())
        .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?;
    let opts = SignOptions {
        detached: true,
        signing_time: Some(crate::pki::system_time(signing_time_ms)),
        ..Default::default()
    };
    gm_pki::cms::prepare_detached(&digest, &signer.cert, &signer.chain, &opts, &[])
        .map_err(|_| ApiFailure::new(ErrorCode::Internal))
}

/// Starts a round over `req.items` (one or a batch). The round is stored with the call's
/// nonce in one transaction.
pub async fn start(
    db: &Db,
    device: &dyn CryptoDevice,
    pki: &Pki,
    d: &Device,
    nonce: &Nonce,
    req: &StartRound,
    now_ms: i64,
) -> Result<RoundStarted, ApiFailure> {
    active(d)?;
    if req.items.is_empty() || req.items.len() > MAX_ROUND_ITEMS {
        return Err(ApiFailure::with(
            ErrorCode::InvalidArgument,
            format!("一轮须签 1–{MAX_ROUND_ITEMS} 份文档。"),
            format!("A round signs 1–{MAX_ROUND_ITEMS} documents."),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if !req
        .items
        .iter()
        .all(|i| seen.insert((&i.request_id, i.document)))
    {
        return Err(ApiFailure::with(
            ErrorCode::InvalidArgument,
            "同一文档在一轮中出现了两次。",
            "A document appears twice in the round.",
        ));
    }
    let signer = signer_of(db, pki, d).await?;
    // Signing time in whole seconds, as the CMS carries it.
    let signing_time_ms = now_ms - now_ms % 1000;
    // One connection for the checks, and no other taken while it is held: a task holding one
    // and waiting for a second deadlocks the pool once every connection is held that way
    // (seen at 20 concurrent phones on SQLite's 4 connections). Released before the device call.
    let mut conn = db.pool().acquire().await?;
    let mut turns = Turns::new(&d.staff_id, now_ms);
    let mut documents: HashMap<&str, HashMap<u32, (String, String)>> = HashMap::new();
    let mut stored = Vec::with_capacity(req.items.len());
    let mut views = Vec::with_capacity(req.items.len());
    for RoundItem {
        request_id,
        document,
    } in &req.items
    {
        let turn = turns
            .check(&mut conn, request_id, *document)
            .await?
            .map_err(ApiFailure::new)?;
        if req
            .qr_nonce
            .as_ref()
            .is_some_and(|n| *n != turn.head.qr_nonce)
        {
            return Err(ApiFailure::with(
                ErrorCode::InvalidArgument,
                "二维码与签名请求不符，请重新扫码。",
                "The QR code does not belong to this request; scan again.",
            ));
        }
        let docs = match documents.entry(request_id) {
            Entry::Occupied(read) => read.into_mut(),
            Entry::Vacant(unread) => unread.insert(documents_of(&mut conn, request_id).await?),
        };
        let (name, digest) = docs
            .get(document)
            .cloned()
            .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
        let attrs = B64.encode(prepare(&signer, &digest, signing_time_ms)?.to_be_signed());
        views.push(RoundItemView {
            request_id: request_id.clone(),
            document: *document,
            name,
            digest_sm3: digest.clone(),
            signed_attributes: attrs.clone(),
        });
        stored.push(StoredItem {
            request_id: request_id.clone(),
            document: *document,
            digest,
            signing_time_ms,
            attrs,
        });
    }
    drop(conn);
    let messages: Vec<Vec<u8>> = stored
        .iter()
        .map(|s| B64.decode(&s.attrs).unwrap_or_default())
        .collect();
    let sign_request = with_secret(device, &signer.share_key, move |bytes| {
        let share = ServerKeyShare::from_bytes(bytes)
            .map_err(|_| crypto_device::Error::Internal("stored share unreadable"))?;
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        Ok(ServerSignSession::new_os(&share, sm2_cosign::DEFAULT_ID, &refs).map(|(_, r)| r))
    })
    .await
    .map_err(dev)?
    .map_err(|e| protocol(&e))?;
    let round_id = format!("rnd_{}", hex::encode(device.random(12).await.map_err(dev)?));
    let mut tx = db.begin_write().await?;
    nonce.spend_in(&mut tx).await?;
    sqlx::query(
        "INSERT INTO sign_rounds (round_id, staff_id, device_id, state, request_json, items_json, \
         created_at, expires_at) VALUES ($1, $2, $3, 'started', $4, $5, $6, $7)",
    )
    .bind(&round_id)
    .bind(&d.staff_id)
    .bind(&d.device_id)
    .bind(serde_json::to_string(&sign_request).map_err(|_| ApiFailure::new(ErrorCode::Internal))?)
    .bind(serde_json::to_string(&stored).map_err(|_| ApiFailure::new(ErrorCode::Internal))?)
    .bind(now_ms)
    .bind(now_ms + ROUND_TTL_MS)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    nonce.committed();
    Ok(RoundStarted {
        round_id,
        items: views,
        request: sign_request,
    })
}

struct Round {
    state: String,
    request: SignRequest,
    items: Vec<StoredItem>,
    commit_hash: Option<String>,
    partial_json: Option<String>,
    result_hash: Option<String>,
    outcome_json: Option<String>,
}

/// SM3 of a phone message, to recognise a repeat (the phone lost the answer and resends).
fn message_hash<T: Serialize>(msg: &T) -> Result<String, ApiFailure> {
    use sm3::Digest;
    let bytes = serde_json::to_vec(msg).map_err(|_| ApiFailure::new(ErrorCode::Internal))?;
    Ok(hex::encode(sm3::Sm3::digest(bytes)))
}

fn step_done() -> ApiFailure {
    ApiFailure::with(
        ErrorCode::ProtocolViolation,
        "该轮签名已用另一条消息完成此步骤，请重新发起签名。",
        "This round already passed that step with another message; start signing again.",
    )
}

fn internal<E>(_: E) -> ApiFailure {
    ApiFailure::new(ErrorCode::Internal)
}

/// Loads round `round_id` of device `d` (`NOT_FOUND` for another device's round).
async fn load_round(db: &Db, d: &Device, round_id: &str, now_ms: i64) -> Result<Round, ApiFailure> {
    let row = sqlx::query(
        "SELECT state, request_json, items_json, commit_hash, partial_json, result_hash, \
         outcome_json, expires_at FROM sign_rounds WHERE round_id = $1 AND device_id = $2",
    )
    .bind(round_id)
    .bind(&d.device_id)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    let state: String = row.try_get("state")?;
    // A finished round still answers a repeated result after its expiry.
    if state != "finished" && row.try_get::<i64, _>("expires_at")? < now_ms {
        return Err(ApiFailure::new(ErrorCode::RequestExpired));
    }
    Ok(Round {
        state,
        request: serde_json::from_str(&row.try_get::<String, _>("request_json")?)
            .map_err(internal)?,
        items: serde_json::from_str(&row.try_get::<String, _>("items_json")?).map_err(internal)?,
        commit_hash: row.try_get("commit_hash")?,
        partial_json: row.try_get("partial_json")?,
        result_hash: row.try_get("result_hash")?,
        outcome_json: row.try_get("outcome_json")?,
    })
}

/// Answers the phone's nonce commitments with the partial signatures. The answer is stored
/// with the commitment's hash, so the same commitment sent again (a lost reply, a reconnect)
/// gets the same answer; a different one is refused. Fresh server nonces are never used for
/// two different commitments.
pub async fn commit(
    db: &Db,
    device: &dyn CryptoDevice,
    d: &Device,
    nonce: &Nonce,
    round_id: &str,
    req: &RoundCommit,
    now_ms: i64,
) -> Result<SignPartial, ApiFailure> {
    active(d)?;
    let hash = message_hash(&req.commit)?;
    let round = load_round(db, d, round_id, now_ms).await?;
    if round.state != "started" {
        return match (&round.commit_hash, &round.partial_json) {
            (Some(h), Some(p)) if *h == hash => serde_json::from_str(p).map_err(internal),
            _ => Err(step_done()),
        };
    }
    let share_key = KeyId(
        d.share_key
            .clone()
            .ok_or_else(|| ApiFailure::new(ErrorCode::Internal))?,
    );
    let commit = req.commit.clone();
    let request = round.request;
    let partial = with_secret(device, &share_key, move |bytes| {
        let share = ServerKeyShare::from_bytes(bytes)
            .map_err(|_| crypto_device::Error::Internal("stored share unreadable"))?;
        Ok(ServerSignSession::resume(&request)
            .and_then(|s| s.respond_os(&share, &commit))
            .map(|(_, partial)| partial))
    })
    .await
    .map_err(dev)?
    .map_err(|e| protocol(&e))?;
    let mut tx = db.begin_write().await?;
    nonce.spend_in(&mut tx).await?;
    let stored = sqlx::query(
        "UPDATE sign_rounds SET state = 'answered', commit_hash = $1, partial_json = $2 \
         WHERE round_id = $3 AND state = 'started'",
    )
    .bind(&hash)
    .bind(serde_json::to_string(&partial).map_err(internal)?)
    .bind(round_id)
    .execute(&mut *tx)
    .await?;
    if stored.rows_affected() == 1 {
        tx.commit().await?;
        nonce.committed();
        return Ok(partial);
    }
    drop(tx);
    // Another instance answered first: only an identical commitment gets that answer.
    let again = load_round(db, d, round_id, now_ms).await?;
    match (again.commit_hash, again.partial_json) {
        (Some(h), Some(p)) if h == hash => serde_json::from_str(&p).map_err(internal),
        _ => Err(step_done()),
    }
}

/// Requests touched by a finished round (for notifications).
pub type Touched = Vec<String>;

/// The `cosign.sign` audit entry of a round's result.
fn sign_event<'a>(
    actor: &'a str,
    round_id: &'a str,
    rid: &'a str,
    outcome: &RoundOutcome,
    touched: &Touched,
) -> Event<'a> {
    let signed = outcome.items.iter().filter(|i| i.ok).count();
    Event {
        actor,
        action: "cosign.sign",
        target: round_id,
        outcome: "ok",
        detail: serde_json::json!({
            "signed": signed,
            "refused": outcome.items.len() - signed,
            "requests": touched,
        }),
        request_id: rid,
    }
}

/// Answers a repeated result (the phone lost the answer) from the stored outcome, audited
/// again; refuses a different one.
async fn repeated(
    db: &Db,
    (audit, rid): (&AuditLog, &str),
    (actor, round_id): (&str, &str),
    hash: &str,
    (result_hash, outcome_json): (Option<String>, Option<String>),
    now_ms: i64,
) -> Result<(RoundOutcome, Touched), ApiFailure> {
    match (result_hash, outcome_json) {
        (Some(h), Some(o)) if h == hash => {
            let outcome: RoundOutcome = serde_json::from_str(&o).map_err(internal)?;
            let touched = Vec::new();
            let event = sign_event(actor, round_id, rid, &outcome, &touched);
            audit.append(db, now_ms, &event).await?;
            Ok((outcome, touched))
        }
        _ => Err(step_done()),
    }
}

/// Verifies the phone's signatures, makes each a CAdES-T detached CMS (local TSA), and
/// stores them with the signer and request states, the call's nonce, the `cosign.sign` audit
/// entry and the announcement of the touched requests to other instances in one transaction
/// ([`crate::hub::Hub::notify`] them in this process); a good signature also clears the PIN
/// failure count. A repeated result is answered from the stored outcome (and audited again).
#[allow(clippy::too_many_arguments)] // services and inputs of one step
pub async fn finish(
    db: &Db,
    pki: &Pki,
    audit: (&AuditLog, &str),
    d: &Device,
    nonce: &Nonce,
    round_id: &str,
    req: &RoundResult,
    now_ms: i64,
) -> Result<(RoundOutcome, Touched), ApiFailure> {
    active(d)?;
    let actor = format!("staff:{}", d.staff_id);
    let hash = message_hash(&req.result)?;
    let round = load_round(db, d, round_id, now_ms).await?;
    if round.state == "finished" {
        let stored = (round.result_hash, round.outcome_json);
        return repeated(db, audit, (&actor, round_id), &hash, stored, now_ms).await;
    }
    if round.state != "answered" {
        return Err(ApiFailure::with(
            ErrorCode::ProtocolViolation,
            "请先提交承诺值再提交签名结果。",
            "Send the commitments before the result.",
        ));
    }
    let signatures = ServerAwaitingResult::resume(&round.request)
        .and_then(|s| s.finish(&req.result))
        .map_err(|e| protocol(&e))?;
    let signer = signer_of(db, pki, d).await?;
    let mut unstamped = Vec::with_capacity(signatures.len());
    for (item, sig) in round.items.iter().zip(&signatures) {
        let prepared = prepare(&signer, &item.digest, item.signing_time_ms)?;
        if B64.encode(prepared.to_be_signed()) != item.attrs {
            return Err(ApiFailure::new(ErrorCode::Internal));
        }
        let cms = prepared
            .finish(&sig.to_der().to_vec(), gm_pki::DEFAULT_DISTID)
            .map_err(|_| ApiFailure::new(ErrorCode::ProtocolViolation))?;
        unstamped.push(cms);
    }
    let made = timestamped_all(pki, unstamped).await?;
    let cert_serial = signer.cert.serial_hex();
    let mut tx = db.begin_write().await?;
    nonce.spend_in(&mut tx).await?;
    // Claim the round first: the row lock makes a concurrent duplicate wait here, then find
    // the round finished and answer from the stored outcome, never inserting twice.
    let moved = sqlx::query(
        "UPDATE sign_rounds SET state = 'finished', result_hash = $1 \
         WHERE round_id = $2 AND state = 'answered'",
    )
    .bind(&hash)
    .bind(round_id)
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() != 1 {
        drop(tx);
        let again = load_round(db, d, round_id, now_ms).await?;
        let stored = (again.result_hash, again.outcome_json);
        return repeated(db, audit, (&actor, round_id), &hash, stored, now_ms).await;
    }
    let mut outcomes = Vec::with_capacity(made.len());
    let mut touched: Touched = Vec::new();
    // Order and state are checked again inside the transaction that stores.
    let mut turns = Turns::new(&d.staff_id, now_ms);
    for (item, cms) in round.items.iter().zip(made) {
        let code = match turns
            .check(&mut tx, &item.request_id, item.document)
            .await?
        {
            Err(code) => Some(code),
            Ok(turn) => {
                sqlx::query(
                    "INSERT INTO signatures (request_id, doc_index, staff_id, cms, cert_serial, \
                     round_id, signed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&item.request_id)
                .bind(i64::from(item.document))
                .bind(&d.staff_id)
                .bind(cms)
                .bind(&cert_serial)
                .bind(round_id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                turn.signed.insert(item.document);
                if !touched.contains(&item.request_id) {
                    touched.push(item.request_id.clone());
                }
                None
            }
        };
        outcomes.push(ItemOutcome {
            request_id: item.request_id.clone(),
            document: item.document,
            ok: code.is_none(),
            code,
        });
    }
    for request_id in &touched {
        settle(&mut tx, request_id, &d.staff_id, now_ms).await?;
    }
    let outcome = RoundOutcome {
        round_id: round_id.to_owned(),
        items: outcomes,
    };
    super::webhooks::enqueue_completed(&mut tx, &touched, now_ms).await?;
    sqlx::query("UPDATE sign_rounds SET outcome_json = $1 WHERE round_id = $2")
        .bind(serde_json::to_string(&outcome).map_err(internal)?)
        .bind(round_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE staff SET pin_failures = 0, updated_at = $1 WHERE staff_id = $2")
        .bind(now_ms)
        .bind(&d.staff_id)
        .execute(&mut *tx)
        .await?;
    for request_id in &touched {
        crate::hub::Hub::announce_in(db.kind(), &mut tx, request_id).await?;
    }
    // Last, and kept until the commit (AuditLog::lock).
    let audit_lock = audit.0.lock().await;
    let event = sign_event(&actor, round_id, audit.1, &outcome, &touched);
    audit
        .0
        .append_in(&audit_lock, &mut tx, now_ms, &event)
        .await?;
    tx.commit().await?;
    drop(audit_lock);
    nonce.committed();
    Ok((outcome, touched))
}

/// Marks the signer done when every document carries their signature, and the request
/// completed when every signer is done.
async fn settle(
    tx: &mut sqlx::AnyConnection,
    request_id: &str,
    staff_id: &str,
    now_ms: i64,
) -> Result<(), ApiFailure> {
    sqlx::query(
        "UPDATE sign_request_signers SET signed_at = $1 WHERE request_id = $2 AND staff_id = $3 \
         AND (SELECT COUNT(*) FROM signatures WHERE request_id = $2 AND staff_id = $3) = \
         (SELECT COUNT(*) FROM sign_request_documents WHERE request_id = $2)",
    )
    .bind(now_ms)
    .bind(request_id)
    .bind(staff_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE sign_requests SET status = 'completed', completed_at = $1 WHERE request_id = $2 \
         AND status = 'pending' AND NOT EXISTS (SELECT 1 FROM sign_request_signers \
         WHERE request_id = $2 AND signed_at IS NULL)",
    )
    .bind(now_ms)
    .bind(request_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// [`timestamped`] for each of a round's signatures at once, so the TSA's token records are
/// committed together (its writer groups what is queued) rather than one commit per item.
pub(crate) async fn timestamped_all(
    pki: &Pki,
    signatures: Vec<Vec<u8>>,
) -> Result<Vec<Vec<u8>>, ApiFailure> {
    futures_util::future::try_join_all(signatures.into_iter().map(|cms| timestamped(pki, cms)))
        .await
}

/// Adds the local TSA's token over the signature value (CAdES-T).
pub(crate) async fn timestamped(pki: &Pki, cms: Vec<u8>) -> Result<Vec<u8>, ApiFailure> {
    let internal = || ApiFailure::new(ErrorCode::Internal);
    let value = gm_pki::cms::signature_value(&cms).map_err(|_| internal())?;
    let imprint = gm_pki::signer::sm3(&value);
    let query = gm_pki::tsp::build_request(gm_pki::cms::HashAlg::Sm3, &imprint, None, None, true)
        .map_err(|_| internal())?;
    let reply = pki.timestamp(query).await;
    let token = doc_sign::timestamp::token_from_response(&reply).map_err(|_| internal())?;
    gm_pki::cms::add_signature_timestamp(&cms, &token).map_err(|_| internal())
}
