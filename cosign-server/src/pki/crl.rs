//! CRLs: v2 with cRLNumber and nextUpdate, rebuilt when a revocation happened or half the
//! validity has passed; concurrent rebuilds and revocations are resolved by a conditional
//! update (the loser re-reads).

use gm_pki::crl::{CrlParams, RevokedEntry, build_crl};

use super::issue::reason_from_code;
use super::{Pki, blocking, system_time, unix_ms};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::store::Db;
use crate::store::pki::CrlRow;

impl Pki {
    /// The current DER CRL of CA `ca` (`None` if there is no such CA).
    pub async fn crl(&self, db: &Db, ca: &str) -> Result<Option<Vec<u8>>> {
        let Some(auth) = self.authority(ca).filter(|a| a.kind == "ca").cloned() else {
            return Ok(None);
        };
        let validity_ms = i64::try_from(self.cfg.crl_validity.as_millis()).unwrap_or(i64::MAX);
        for _ in 0..5 {
            let Some(current) = db.crl(ca).await? else {
                return Err(Error::Internal("CRL row missing for a CA"));
            };
            let now = now_ms();
            if current.stale == 0
                && current.number > 0
                && now < current.this_update.saturating_add(validity_ms / 2)
                && now < current.next_update
            {
                return Ok(Some(current.der));
            }
            let mut entries = Vec::new();
            for r in db.revocations(ca).await? {
                entries.push(RevokedEntry {
                    serial: hex::decode(&r.serial)
                        .map_err(|_| Error::Internal("stored serial is not hex"))?,
                    time: system_time(r.at / 1000 * 1000),
                    reason: Some(reason_from_code(r.reason)),
                });
            }
            let this_update = super::now_seconds();
            let next_update = this_update
                .checked_add(self.cfg.crl_validity)
                .ok_or(Error::Internal("CRL nextUpdate overflows"))?;
            let number = current.number.saturating_add(1);
            let params = CrlParams {
                this_update,
                next_update,
                crl_number: u64::try_from(number).unwrap_or(1),
                entries,
            };
            let signer_auth = auth.clone();
            let built =
                blocking(move || build_crl(&params, &signer_auth.cert, &signer_auth.signer))
                    .await??;
            let row = CrlRow {
                number,
                this_update: unix_ms(this_update),
                next_update: unix_ms(next_update),
                stale: 0,
                der: built.der().to_vec(),
            };
            if db
                .store_crl(ca, current.number, current.stale, &row)
                .await?
            {
                return Ok(Some(row.der));
            }
        }
        Err(Error::Internal(
            "CRL rebuild kept racing with other writers",
        ))
    }
}
