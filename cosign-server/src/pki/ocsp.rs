//! RFC 6960 OCSP: the issuing CA is found from the CertID hashes, each staff / patient / seal
//! CA answers through its delegated responder, the root answers for its own certificates.
//! Every request gets an OCSPResponse: malformed input → malformedRequest, another issuer →
//! unauthorized, database trouble → tryLater.

use std::collections::HashMap;

use gm_pki::ocsp::{self, CertStatus, ResponseStatus};

use super::{CAS, Pki, blocking, issue::reason_from_code, system_time};
use crate::store::Db;

fn error_response(status: ResponseStatus) -> Vec<u8> {
    // OCSPResponse { responseStatus internalError } written out, if encoding ever fails.
    ocsp::error_response(status).unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, 0x02])
}

/// Largest OCSP request accepted (a request for a few certificates is a few hundred bytes).
pub const MAX_REQUEST: usize = 16 * 1024;

impl Pki {
    /// Answers a DER OCSPRequest.
    pub async fn ocsp(&self, db: &Db, der: Vec<u8>) -> Vec<u8> {
        if der.len() > MAX_REQUEST {
            return error_response(ResponseStatus::MalformedRequest);
        }
        let Ok(req) = ocsp::parse_request(&der) else {
            return error_response(ResponseStatus::MalformedRequest);
        };
        let Some(ca) = CAS
            .iter()
            .filter_map(|name| self.authority(name))
            .find(|ca| req.cert_ids.iter().all(|id| id.matches_issuer(&ca.cert)))
            .cloned()
        else {
            return error_response(ResponseStatus::Unauthorized);
        };
        let responder_name = if ca.name == "root" {
            "root".to_owned()
        } else {
            format!("ocsp-{}", ca.name)
        };
        let Some(responder) = self.authority(&responder_name).cloned() else {
            return error_response(ResponseStatus::InternalError);
        };
        let mut statuses = HashMap::new();
        for id in &req.cert_ids {
            let serial = id.serial_hex();
            let status = match db.certificate_status(&ca.name, &serial).await {
                Ok(None) => CertStatus::Unknown,
                Ok(Some(None)) => CertStatus::Good,
                Ok(Some(Some((at, reason)))) => CertStatus::Revoked {
                    time: system_time(at / 1000 * 1000),
                    reason: Some(reason_from_code(reason)),
                },
                Err(e) => {
                    tracing::error!(error = %e, "OCSP status lookup failed");
                    return error_response(ResponseStatus::TryLater);
                }
            };
            statuses.insert(serial, status);
        }
        let validity = self.cfg.ocsp_validity;
        let now = super::now_seconds();
        blocking(move || {
            ocsp::Responder {
                cert: &responder.cert,
                signer: &responder.signer,
            }
            .answer(&der, &ca.cert, now, validity, |serial| {
                statuses
                    .get(&hex::encode(serial))
                    .cloned()
                    .unwrap_or(CertStatus::Unknown)
            })
        })
        .await
        .unwrap_or_else(|_| error_response(ResponseStatus::InternalError))
    }

    /// Answers the GET form: the path after `/ocsp/` is the (percent-decoded) base64 DER request.
    pub async fn ocsp_get(&self, db: &Db, b64: &str) -> Vec<u8> {
        use base64::Engine;
        if b64.len() > MAX_REQUEST * 2 {
            return error_response(ResponseStatus::MalformedRequest);
        }
        let cleaned: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
        match base64::engine::general_purpose::STANDARD.decode(cleaned.as_bytes()) {
            Ok(der) => self.ocsp(db, der).await,
            Err(_) => error_response(ResponseStatus::MalformedRequest),
        }
    }
}
