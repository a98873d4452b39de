//! RFC 3161 time stamps: every request gets a TimeStampResp (granted with a token, or a
//! rejection with its PKIFailureInfo); granted tokens are recorded before they are returned.
//!
//! The hot path (docs/performance.md): the TSA certificate and chain are held in memory, its key
//! is held open in the device ([`super::signer::OpenKeyCache`]: unwrapped once a minute, not per
//! token), the token is taken from the response being built instead of parsing the response
//! again, and the records of concurrent requests are written by one task in one transaction
//! (group commit). Each request still waits until its own record is committed, so a reply is
//! never sent for a token the database could lose.

use base64::Engine;
use gm_pki::tsp::{self, FailureInfo, Rejection, Tsa};
use rand::RngCore;
use tokio::sync::{mpsc, oneshot};

use super::{Pki, blocking, unix_ms};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::store::Db;
use crate::store::pki::TsaTokenRow;

/// Most records written in one commit.
const MAX_BATCH: usize = 512;

fn reject(failure: FailureInfo, text: &str) -> Vec<u8> {
    tsp::rejection_response(&Rejection {
        failure,
        text: text.to_owned(),
    })
    .unwrap_or_else(|_| tsp::FALLBACK_SYSTEM_FAILURE.to_vec())
}

/// A positive 16-byte serial with 126 random bits (never a leading zero byte). Uniqueness is
/// also enforced by the primary key of `pki_tsa_tokens`: a collision fails that request.
fn random_serial() -> [u8; 16] {
    let mut s = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s[0] = (s[0] & 0x7f) | 0x40;
    s
}

type Pending = (
    TsaTokenRow,
    oneshot::Sender<std::result::Result<(), String>>,
);

/// The group-commit writer of token records: requests queue their record and wait for the
/// commit; one task takes everything queued (up to [`MAX_BATCH`]) and commits it at once. No
/// timer: under load, records pile up while the previous commit runs, and an idle server
/// commits a lone record immediately.
#[derive(Debug, Clone)]
pub(super) struct TokenLog {
    tx: mpsc::Sender<Pending>,
}

impl TokenLog {
    /// Starts the writer task on `db` (it ends when the last `TokenLog` is dropped).
    pub(super) fn start(db: Db) -> Self {
        let (tx, rx) = mpsc::channel::<Pending>(4 * MAX_BATCH);
        tokio::spawn(write_batches(db, rx));
        Self { tx }
    }

    /// Records `row`; returns once it is committed.
    async fn record(&self, row: TsaTokenRow) -> Result<()> {
        let (done, committed) = oneshot::channel();
        self.tx
            .send((row, done))
            .await
            .map_err(|_| Error::Internal("the token writer stopped"))?;
        committed
            .await
            .map_err(|_| Error::Internal("the token writer stopped"))?
            .map_err(|e| {
                tracing::error!(error = %e, "recording a time-stamp token failed");
                Error::Internal("recording a time-stamp token failed")
            })
    }
}

async fn write_batches(db: Db, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let rows: Vec<TsaTokenRow> = batch.iter().map(|(r, _)| r.clone()).collect();
        match db.insert_tsa_tokens(&rows).await {
            Ok(()) => {
                for (_, done) in batch.drain(..) {
                    let _ = done.send(Ok(()));
                }
            }
            // One bad record (a serial collision) must not fail the others: retry one by one.
            Err(_) => {
                for (row, done) in batch.drain(..) {
                    let one = db
                        .insert_tsa_tokens(std::slice::from_ref(&row))
                        .await
                        .map_err(|e| e.to_string());
                    let _ = done.send(one);
                }
            }
        }
    }
}

impl Pki {
    /// Answers a DER TimeStampReq. Never fails: bad input gets a PKIStatus rejection, a
    /// database or device failure a systemFailure rejection (and is logged).
    pub async fn timestamp(&self, request: Vec<u8>) -> Vec<u8> {
        let req = match tsp::parse_request(&request) {
            Ok(r) => r,
            Err(rej) => {
                return tsp::rejection_response(&rej)
                    .unwrap_or_else(|_| tsp::FALLBACK_SYSTEM_FAILURE.to_vec());
            }
        };
        match self.grant(req).await {
            Ok(resp) => resp,
            Err(e) => {
                tracing::error!(error = %e, "time-stamp request failed");
                reject(FailureInfo::SystemFailure, "time-stamp service failure")
            }
        }
    }

    async fn grant(&self, req: tsp::TimeStampRequest) -> Result<Vec<u8>> {
        let tsa = self.tsa.clone();
        let signer = self.tsa_key.signer().await?;
        let open = signer.is_open();
        let chain = self.tsa_chain.clone();
        let policy = self.policy;
        let serial = random_serial();
        // Whole seconds: the token says accuracy 1 s.
        let gen_ms = now_ms() / 1000 * 1000;
        let gen_time = super::system_time(gen_ms);
        let imprint_alg = format!("{:?}", req.imprint_alg).to_lowercase();
        let imprint = hex::encode(&req.imprint);
        let answer = move || {
            Tsa {
                cert: &tsa.cert,
                chain: &chain,
                signer: &signer,
                policy,
                accuracy_seconds: 1,
            }
            .respond_to(&req, gen_time, &serial)
        };
        // An open key signs in memory (~0.2 ms of CPU): no need for a blocking thread.
        let answer = if open {
            answer()
        } else {
            blocking(answer).await?
        };
        let Some(token) = answer.token else {
            return Ok(answer.response);
        };
        self.tokens
            .record(TsaTokenRow {
                serial: hex::encode(serial),
                gen_time: unix_ms(gen_time),
                imprint_alg,
                imprint,
                token,
            })
            .await?;
        Ok(answer.response)
    }

    /// A recorded token by serial (lowercase hex), verified and described the GM/T 0033 way.
    pub async fn token_view(&self, db: &Db, serial: &str) -> Result<Option<serde_json::Value>> {
        let Some(token) = db.tsa_token(serial).await? else {
            return Ok(None);
        };
        let tsa = &self.tsa;
        let view = tsp::verify_token(&token, Some(&tsa.cert))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let gen_ms = unix_ms(view.gen_time);
        Ok(Some(serde_json::json!({
            "serial": view.serial_hex,
            "tsa_name": view.tsa_name,
            "gen_time": crate::clock::rfc3339(gen_ms),
            "gen_time_ms": gen_ms,
            "accuracy_seconds": view.accuracy_seconds,
            "policy": view.policy.to_string(),
            "hash_algorithm": format!("{:?}", view.imprint_alg).to_lowercase(),
            "hash_algorithm_oid": view.imprint_alg.oid().to_string(),
            "message_imprint": hex::encode(&view.imprint),
            "nonce": view.nonce.as_deref().map(hex::encode),
            "signature_valid": true,
            "tsa_certificate": b64.encode(tsa.cert.der()),
            "tsa_certificate_serial": tsa.cert.serial_hex(),
            "token": b64.encode(&token),
        })))
    }
}
