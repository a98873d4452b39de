//! PKI services (issue 4): the CA hierarchy held in the crypto device, the RFC 3161 TSA, the
//! RFC 6960 OCSP responder, CRLs, and certificate issuance from CSRs / revocation.
//!
//! Hierarchy, created at `init` or on first start (all keys generated inside the device):
//!
//! ```text
//! root ─┬─ staff   ── ocsp-staff     (医护人员证书 / delegated OCSP responder)
//!       ├─ patient ── ocsp-patient   (患者事件证书)
//!       ├─ seal    ── ocsp-seal      (机构印章证书)
//!       └─ tsa                       (时间戳服务, extKeyUsage timeStamping)
//! ```
//!
//! The root answers OCSP for the certificates it issued itself. Certificates issued by CA `x`
//! carry CRL DP `<public_url>/pki/x.crl`, AIA caIssuers `<public_url>/pki/x.crt` and OCSP
//! `<public_url>/ocsp`.

mod crl;
pub mod external;
mod issue;
mod ocsp;
pub mod rollover;
pub mod signer;
mod tsa;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crypto_device::{CryptoDevice, KeyId};
use gm_pki::ParsedCertificate;
use gm_pki::profile::{self, IssuingCaKind, Period, PkiUrls};
use gm_pki::{CertificateParams, DnBuilder};

pub use issue::{
    Actor, DeviceInfo, IssueProfile, IssuedCertificate, OrganisationInfo, PAD_DEVICE_POLICY,
    PatientEventInfo, PkiError, StaffInfo, parse_csr, reason_code, reason_name,
};
pub use signer::{DeviceSigner, OpenKeyCache, blocking};

use crate::audit::{AuditLog, Event};
use crate::clock::now_ms;
use crate::config::{Config, PkiConfig};
use crate::error::{Error, Result};
use crate::store::Db;
use crate::store::pki::{AuthorityRow, CertificateRow};

/// The certificate authorities, root first.
pub const CAS: [&str; 4] = ["root", "staff", "patient", "seal"];

/// One signing identity: its certificate and its device key.
#[derive(Debug)]
pub struct Authority {
    /// `root`, `staff`, `patient`, `seal`, `tsa`, `ocsp-<ca>`.
    pub name: String,
    /// `ca`, `tsa`, `ocsp`.
    pub kind: String,
    /// Parent authority (empty for the root).
    pub issuer: String,
    /// Its certificate.
    pub cert: ParsedCertificate,
    /// Its key, in the device.
    pub signer: DeviceSigner,
}

/// Name (in `pki_authorities`, kind `secret`) of the hospital key for resident-ID hashes.
pub const RESIDENT_ID_KEY: &str = "resident-id-key";

/// The PKI services of this server.
#[derive(Debug)]
pub struct Pki {
    authorities: BTreeMap<String, Arc<Authority>>,
    public_url: String,
    cfg: PkiConfig,
    policy: const_oid::ObjectIdentifier,
    licence_oid: const_oid::ObjectIdentifier,
    device: Arc<dyn CryptoDevice>,
    /// HMAC-SM3 key (device `Secret`) for the resident-ID hash in patient certificates.
    resident_id_key: KeyId,
    audit: Arc<AuditLog>,
    /// The TSA, its chain (the root) and its key held open, for the hot path.
    tsa: Arc<Authority>,
    tsa_chain: Arc<[ParsedCertificate]>,
    tsa_key: OpenKeyCache,
    /// Group-commit writer of granted tokens.
    tokens: tsa::TokenLog,
}

/// Unix milliseconds to `SystemTime` (negative values clamp to the epoch).
pub fn system_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// `SystemTime` to unix milliseconds.
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The current time truncated to whole seconds (what certificates, CRLs and tokens carry).
pub fn now_seconds() -> SystemTime {
    system_time(now_ms() / 1000 * 1000)
}

fn rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}

fn years(n: u64) -> Duration {
    Duration::from_secs(n * 365 * 24 * 3600)
}

/// What to create for one authority.
struct Spec {
    name: &'static str,
    kind: &'static str,
    issuer: &'static str,
}

const SPECS: [Spec; 8] = [
    Spec {
        name: "root",
        kind: "ca",
        issuer: "",
    },
    Spec {
        name: "staff",
        kind: "ca",
        issuer: "root",
    },
    Spec {
        name: "patient",
        kind: "ca",
        issuer: "root",
    },
    Spec {
        name: "seal",
        kind: "ca",
        issuer: "root",
    },
    Spec {
        name: "tsa",
        kind: "tsa",
        issuer: "root",
    },
    Spec {
        name: "ocsp-staff",
        kind: "ocsp",
        issuer: "staff",
    },
    Spec {
        name: "ocsp-patient",
        kind: "ocsp",
        issuer: "patient",
    },
    Spec {
        name: "ocsp-seal",
        kind: "ocsp",
        issuer: "seal",
    },
];

impl Pki {
    /// Loads the hierarchy, creating it (keys in the device, certificates in one transaction)
    /// when the database has none. Audited as `pki.init`. Several instances starting together
    /// on one database end with one hierarchy: the ones that lose the race destroy the keys
    /// they generated and load the winner's.
    pub async fn load_or_create(
        config: &Config,
        db: &Db,
        device: Arc<dyn CryptoDevice>,
        audit: &Arc<AuditLog>,
        actor: &str,
    ) -> Result<Self> {
        if !has_hierarchy(db).await? {
            return Self::create_or_join(config, db, device, audit, actor).await;
        }
        Self::load(config, db, device, audit).await
    }

    /// Creates the hierarchy, or, if another instance recorded one first, discards what it
    /// generated and loads that one. (What [`Pki::load_or_create`] does on an empty database;
    /// public so a test can play the instance that lost the race.)
    pub async fn create_or_join(
        config: &Config,
        db: &Db,
        device: Arc<dyn CryptoDevice>,
        audit: &Arc<AuditLog>,
        actor: &str,
    ) -> Result<Self> {
        if let Err(e) = create(config, db, device.clone(), audit, actor).await {
            if !has_hierarchy(db).await? {
                return Err(e);
            }
            tracing::info!(error = %e, "another instance created the PKI hierarchy first; using it");
        }
        Self::load(config, db, device, audit).await
    }

    async fn load(
        config: &Config,
        db: &Db,
        device: Arc<dyn CryptoDevice>,
        audit: &Arc<AuditLog>,
    ) -> Result<Self> {
        let parse_oid = |value: &str, var: &str| {
            value
                .parse()
                .map_err(|_| Error::Config(format!("pki.{var} {value:?}")))
        };
        let policy = parse_oid(&config.pki.tsa_policy, "tsa_policy")?;
        let licence_oid = parse_oid(&config.pki.licence_oid, "licence_oid")?;
        let mut authorities = BTreeMap::new();
        let mut resident_id_key = None;
        for row in db.pki_authorities().await? {
            if row.kind == "secret" {
                if row.name == RESIDENT_ID_KEY {
                    resident_id_key = Some(KeyId(row.key_id));
                }
                continue;
            }
            let stored = db
                .certificate_by_serial(&row.cert_serial)
                .await?
                .ok_or(Error::Internal("an authority's certificate is missing"))?;
            let cert = ParsedCertificate::from_der(&stored.der)?;
            let signer = DeviceSigner::new(device.clone(), KeyId(row.key_id.clone())).await?;
            if cert.public_key()? != gm_pki::Sm2Signer::public_key(&signer) {
                return Err(Error::Internal(
                    "an authority's certificate does not match its device key",
                ));
            }
            authorities.insert(
                row.name.clone(),
                Arc::new(Authority {
                    name: row.name,
                    kind: row.kind,
                    issuer: row.issuer,
                    cert,
                    signer,
                }),
            );
        }
        for spec in &SPECS {
            if !authorities.contains_key(spec.name) {
                return Err(Error::Internal("the PKI hierarchy is incomplete"));
            }
        }
        let resident_id_key = match resident_id_key {
            Some(k) => k,
            None => create_secret(db, device.as_ref(), RESIDENT_ID_KEY).await?,
        };
        let tsa = authorities
            .get("tsa")
            .cloned()
            .ok_or(Error::Internal("missing PKI authority"))?;
        let root = authorities
            .get("root")
            .ok_or(Error::Internal("missing PKI authority"))?;
        let tsa_chain: Arc<[ParsedCertificate]> = Arc::from(vec![root.cert.clone()]);
        let tsa_key = OpenKeyCache::new(tsa.signer.clone());
        Ok(Self {
            authorities,
            public_url: config.public_url.clone(),
            cfg: config.pki.clone(),
            policy,
            licence_oid,
            device,
            resident_id_key,
            audit: audit.clone(),
            tsa,
            tsa_chain,
            tsa_key,
            tokens: tsa::TokenLog::start(db.clone()),
        })
    }

    /// An authority by name.
    pub fn authority(&self, name: &str) -> Option<&Arc<Authority>> {
        self.authorities.get(name)
    }

    /// Every authority, root first then by name.
    pub fn authorities(&self) -> impl Iterator<Item = &Arc<Authority>> {
        self.authorities.values()
    }

    /// The public base URL (CRL DP, AIA, OCSP).
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    fn must(&self, name: &str) -> Result<Arc<Authority>> {
        self.authorities
            .get(name)
            .cloned()
            .ok_or(Error::Internal("missing PKI authority"))
    }
}

async fn has_hierarchy(db: &Db) -> Result<bool> {
    Ok(db
        .pki_authorities()
        .await?
        .iter()
        .any(|r| r.kind != "secret"))
}

/// A 32-byte secret generated by the device and kept in it, recorded under `name`; if another
/// instance recorded one first, ours is destroyed and theirs used.
async fn create_secret(db: &Db, device: &dyn CryptoDevice, name: &str) -> Result<KeyId> {
    let bytes = zeroize::Zeroizing::new(device.random(32).await?);
    let ours = device.import_secret(&format!("pki:{name}"), bytes).await?;
    let recorded = db.insert_pki_secret(name, &ours.0, now_ms()).await?;
    if recorded != ours.0 {
        device.destroy(&ours).await?;
    }
    Ok(KeyId(recorded))
}

/// URLs put in certificates issued by CA `ca`.
pub fn urls_for(public_url: &str, ca: &str) -> PkiUrls {
    PkiUrls {
        crl: vec![format!("{public_url}/pki/{ca}.crl")],
        ocsp: vec![format!("{public_url}/ocsp")],
        ca_issuers: vec![format!("{public_url}/pki/{ca}.crt")],
    }
}

fn subject(org: &str, spec: &Spec) -> Result<x509_cert::name::Name> {
    let (ou, cn) = match spec.name {
        "root" => (None, format!("{org} 根 CA Root CA")),
        "staff" => (Some("医护人员 Staff"), format!("{org} 医护人员 CA")),
        "patient" => (
            Some("患者事件 Patient events"),
            format!("{org} 患者事件 CA"),
        ),
        "seal" => (Some("机构印章 Seals"), format!("{org} 机构印章 CA")),
        "tsa" => (None, format!("{org} 时间戳服务 TSA")),
        other => (None, format!("{org} OCSP {other}")),
    };
    let mut b = DnBuilder::new().country("CN").organization(org);
    if let Some(ou) = ou {
        b = b.organizational_unit(ou);
    }
    Ok(b.common_name(cn).build()?)
}

fn params_for(
    spec: &Spec,
    subject: x509_cert::name::Name,
    public_key: sm2::PublicKey,
    now: SystemTime,
    public_url: &str,
) -> Result<(CertificateParams, &'static str)> {
    let since = now.checked_sub(Duration::from_secs(3600)).unwrap_or(now);
    let urls = urls_for(public_url, spec.issuer);
    Ok(match spec.kind {
        "ca" if spec.issuer.is_empty() => (
            profile::root_ca(subject, public_key, Period::starting(since, years(20))?),
            "root_ca",
        ),
        "ca" => {
            let kind = match spec.name {
                "staff" => IssuingCaKind::Staff,
                "patient" => IssuingCaKind::PatientEvent,
                _ => IssuingCaKind::Seal,
            };
            (
                profile::issuing_ca(
                    subject,
                    public_key,
                    Period::starting(since, years(10))?,
                    kind,
                    &urls,
                ),
                "issuing_ca",
            )
        }
        "tsa" => (
            profile::tsa(
                subject,
                public_key,
                Period::starting(since, years(3))?,
                &urls,
            ),
            "tsa",
        ),
        _ => {
            let mut p =
                profile::ocsp_signer(subject, public_key, Period::starting(since, years(3))?)?;
            p.crl_urls = urls.crl;
            p.ca_issuers_urls = urls.ca_issuers;
            (p, "ocsp")
        }
    })
}

async fn create(
    config: &Config,
    db: &Db,
    device: Arc<dyn CryptoDevice>,
    audit: &AuditLog,
    actor: &str,
) -> Result<()> {
    let mut signers = BTreeMap::new();
    for spec in &SPECS {
        let (key, _) = device.generate_sm2(&format!("pki:{}", spec.name)).await?;
        signers.insert(spec.name, DeviceSigner::new(device.clone(), key).await?);
    }
    let org = config.pki.organisation.clone();
    let public_url = config.public_url.clone();
    let now = now_seconds();
    let built = blocking(move || -> Result<Vec<(AuthorityRow, CertificateRow)>> {
        let mut certs: BTreeMap<&str, ParsedCertificate> = BTreeMap::new();
        let mut out = Vec::new();
        for spec in &SPECS {
            let own = signers
                .get(spec.name)
                .ok_or(Error::Internal("signer missing"))?;
            let (params, profile_name) = params_for(
                spec,
                subject(&org, spec)?,
                gm_pki::Sm2Signer::public_key(own),
                now,
                &public_url,
            )?;
            let (issuer_cert, issuer_signer) = if spec.issuer.is_empty() {
                (None, own)
            } else {
                (
                    certs.get(spec.issuer),
                    signers
                        .get(spec.issuer)
                        .ok_or(Error::Internal("issuer signer missing"))?,
                )
            };
            let cert =
                gm_pki::cert::issue_certificate(&params, issuer_cert, issuer_signer, &mut rng())?;
            let issuer_name = if spec.issuer.is_empty() {
                spec.name
            } else {
                spec.issuer
            };
            out.push((
                AuthorityRow {
                    name: spec.name.to_owned(),
                    kind: spec.kind.to_owned(),
                    issuer: spec.issuer.to_owned(),
                    key_id: own.key_id().0.clone(),
                    cert_serial: cert.serial_hex(),
                },
                issue::row_for(issuer_name, profile_name, &cert),
            ));
            certs.insert(spec.name, cert);
        }
        Ok(out)
    })
    .await??;
    let at = now_ms();
    if let Err(e) = db.create_pki_hierarchy(&built, &CAS, at).await {
        // Most likely another instance recorded its hierarchy first: ours is never used.
        for (authority, _) in &built {
            if let Err(d) = device.destroy(&KeyId(authority.key_id.clone())).await {
                tracing::warn!(error = %d, key = %authority.key_id, "could not destroy an unused PKI key");
            }
        }
        return Err(e);
    }
    let serials: serde_json::Map<String, serde_json::Value> = built
        .iter()
        .map(|(a, _)| (a.name.clone(), a.cert_serial.clone().into()))
        .collect();
    audit
        .append(
            db,
            at,
            &Event {
                actor,
                action: "pki.init",
                target: "root",
                outcome: "ok",
                detail: serde_json::Value::Object(serials),
                request_id: "",
            },
        )
        .await?;
    Ok(())
}
