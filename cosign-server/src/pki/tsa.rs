//! RFC 3161 time stamps: every request gets a TimeStampResp (granted with a token, or a
//! rejection with its PKIFailureInfo); granted tokens are recorded before they are returned.

use base64::Engine;
use gm_pki::tsp::{self, FailureInfo, PkiStatus, Rejection, Tsa};
use rand::RngCore;

use super::{Pki, blocking, unix_ms};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::store::Db;

/// `TimeStampResp { status { rejection, failInfo systemFailure } }`, for when even encoding a
/// rejection fails.
const FALLBACK_SYSTEM_FAILURE: [u8; 14] = [
    0x30, 0x0c, 0x30, 0x0a, 0x02, 0x01, 0x02, 0x03, 0x05, 0x06, 0x00, 0x00, 0x00, 0x40,
];

fn reject(failure: FailureInfo, text: &str) -> Vec<u8> {
    tsp::rejection_response(&Rejection {
        failure,
        text: text.to_owned(),
    })
    .unwrap_or_else(|_| FALLBACK_SYSTEM_FAILURE.to_vec())
}

/// A positive 16-byte serial with 126 random bits (never a leading zero byte).
fn random_serial() -> [u8; 16] {
    let mut s = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s[0] = (s[0] & 0x7f) | 0x40;
    s
}

impl Pki {
    /// Answers a DER TimeStampReq. Never fails: bad input gets a PKIStatus rejection, a
    /// database or device failure a systemFailure rejection (and is logged).
    pub async fn timestamp(&self, db: &Db, request: Vec<u8>) -> Vec<u8> {
        let req = match tsp::parse_request(&request) {
            Ok(r) => r,
            Err(rej) => {
                return tsp::rejection_response(&rej)
                    .unwrap_or_else(|_| FALLBACK_SYSTEM_FAILURE.to_vec());
            }
        };
        match self.grant(db, &req, request).await {
            Ok(resp) => resp,
            Err(e) => {
                tracing::error!(error = %e, "time-stamp request failed");
                reject(FailureInfo::SystemFailure, "time-stamp service failure")
            }
        }
    }

    async fn grant(&self, db: &Db, req: &tsp::TimeStampRequest, der: Vec<u8>) -> Result<Vec<u8>> {
        let tsa = self.must("tsa")?;
        let root = self.must("root")?;
        let policy = self.policy;
        let serial = random_serial();
        // Whole seconds: the token says accuracy 1 s.
        let gen_ms = now_ms() / 1000 * 1000;
        let gen_time = super::system_time(gen_ms);
        let resp = blocking(move || {
            Tsa {
                cert: &tsa.cert,
                chain: std::slice::from_ref(&root.cert),
                signer: &tsa.signer,
                policy,
                accuracy_seconds: 1,
            }
            .respond(&der, gen_time, &serial)
        })
        .await?;
        let parsed = tsp::parse_response(&resp)?;
        if parsed.status != PkiStatus::Granted {
            return Ok(resp);
        }
        let token = parsed
            .token
            .ok_or(Error::Internal("granted response without a token"))?;
        let alg = format!("{:?}", req.imprint_alg).to_lowercase();
        db.insert_tsa_token(
            &hex::encode(serial),
            unix_ms(gen_time),
            &alg,
            &hex::encode(&req.imprint),
            &token,
        )
        .await?;
        Ok(resp)
    }

    /// A recorded token by serial (lowercase hex), verified and described the GM/T 0033 way.
    pub async fn token_view(&self, db: &Db, serial: &str) -> Result<Option<serde_json::Value>> {
        let Some(token) = db.tsa_token(serial).await? else {
            return Ok(None);
        };
        let tsa = self.must("tsa")?;
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
