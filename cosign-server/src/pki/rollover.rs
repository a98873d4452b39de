//! Rollover of the TSA and OCSP responder certificates (3-year certificates): a new key is
//! generated in the crypto device, certified by the same parent with the same profile, and
//! the authority switched to it in one transaction (audited as `pki.rollover`). The old
//! certificate stays recorded (tokens and responses it signed keep their embedded
//! certificate); the old key stays in the device. Running instances load the new key on their
//! next start. CA certificates are not rolled over yet (a new CA key would need the old one
//! kept for the CRLs of what it issued).

use crypto_device::KeyId;

use super::{Pki, SPECS, blocking, now_seconds, params_for, rng, subject};
use crate::audit::Event;
use crate::clock::{now_ms, rfc3339};
use crate::error::Error;
use crate::store::Db;

use super::issue::{Actor, PkiError, row_for};

/// What a rollover did.
#[derive(Debug, Clone)]
pub struct Rollover {
    /// Authority name (`tsa`, `ocsp-staff`...).
    pub name: String,
    /// Serial of the certificate replaced.
    pub old_serial: String,
    /// Serial of the new certificate.
    pub new_serial: String,
    /// New crypto-device key id.
    pub key_id: String,
    /// The new certificate's notAfter (unix ms).
    pub not_after: i64,
}

impl Pki {
    /// Rolls the certificate of authority `name` (`tsa` or `ocsp-<ca>`) over to a new device
    /// key. Refused for CAs (`NOT_RENEWABLE`) and unknown names (`NOT_FOUND`). If another
    /// instance rolled it over meanwhile, nothing is written and the new key is destroyed.
    pub async fn rollover(
        &self,
        db: &Db,
        name: &str,
        actor: &Actor<'_>,
    ) -> Result<Rollover, PkiError> {
        let spec = SPECS
            .iter()
            .find(|s| s.name == name)
            .ok_or(PkiError::NotFound)?;
        if spec.kind == "ca" {
            return Err(PkiError::NotRenewable(
                "CA certificates are not rolled over yet; only tsa and ocsp-<ca>".into(),
            ));
        }
        let current = self.must(name)?;
        let parent = self.must(spec.issuer)?;
        let old_serial = current.cert.serial_hex();
        let (key, _) = self
            .device
            .generate_sm2(&format!("pki:{name}"))
            .await
            .map_err(Error::from)?;
        let made = async {
            let signer = super::DeviceSigner::new(self.device.clone(), key.clone()).await?;
            let (params, profile_name) = params_for(
                spec,
                subject(&self.cfg.organisation, spec)?,
                gm_pki::Sm2Signer::public_key(&signer),
                now_seconds(),
                &self.public_url,
            )?;
            let cert = blocking(move || {
                gm_pki::cert::issue_certificate(
                    &params,
                    Some(&parent.cert),
                    &parent.signer,
                    &mut rng(),
                )
            })
            .await??;
            let row = row_for(spec.issuer, profile_name, &cert);
            let switched = db
                .switch_authority(name, &old_serial, &key.0, &row, now_ms())
                .await?;
            Ok::<_, Error>((switched, row))
        }
        .await;
        let row = match made {
            Ok((true, row)) => row,
            other => {
                if let Err(d) = self.device.destroy(&KeyId(key.0.clone())).await {
                    tracing::warn!(error = %d, key = %key.0, "could not destroy an unused rollover key");
                }
                return Err(match other {
                    Err(e) => e.into(),
                    Ok(_) => PkiError::Invalid(format!(
                        "{name} was rolled over by another instance meanwhile; restart to load it"
                    )),
                });
            }
        };
        let done = Rollover {
            name: name.to_owned(),
            old_serial,
            new_serial: row.serial.clone(),
            key_id: key.0.clone(),
            not_after: row.not_after,
        };
        self.audit
            .append(
                db,
                now_ms(),
                &Event {
                    actor: actor.name,
                    action: "pki.rollover",
                    target: name,
                    outcome: "ok",
                    detail: serde_json::json!({
                        "old_serial": done.old_serial,
                        "new_serial": done.new_serial,
                        "old_key": current.signer.key_id().0,
                        "new_key": done.key_id,
                        "not_after": rfc3339(done.not_after),
                    }),
                    request_id: actor.request_id,
                },
            )
            .await?;
        Ok(done)
    }
}
