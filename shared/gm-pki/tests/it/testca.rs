//! A test CA: root → issuing CA → leaves (staff, TSA, OCSP signer, patient event, device, seal).
//! Shared by the `test-ca` example (which writes it to a directory) and the integration tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc
)]

use gm_pki::cert::issue_certificate;
use gm_pki::profile::{self, IssuingCaKind, Period, PkiUrls};
use gm_pki::{DnBuilder, ParsedCertificate, Sm2Signer, SoftwareSigner};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Placeholder OID for the practising-licence number (the real one is not public).
pub const LICENCE_OID: &str = "1.2.156.112233.1.1";
/// A valid GB 11643 number (check digit computed with ISO 7064 MOD 11-2).
pub const RESIDENT_ID: &str = "11010519491231002X";

pub fn rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}

pub fn urls() -> PkiUrls {
    PkiUrls {
        crl: vec!["http://pki.example-hospital.cn/crl/staff.crl".into()],
        ocsp: vec!["http://pki.example-hospital.cn/ocsp".into()],
        ca_issuers: vec!["http://pki.example-hospital.cn/ca/staff.cer".into()],
    }
}

pub struct Issued {
    pub key: SoftwareSigner,
    pub cert: ParsedCertificate,
}

pub struct TestCa {
    pub now: SystemTime,
    pub root: Issued,
    pub int: Issued,
    pub staff: Issued,
    pub tsa: Issued,
    pub ocsp: Issued,
}

pub fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

impl TestCa {
    pub fn new(now: SystemTime) -> Self {
        let mut rng = rng();
        let start = now - Duration::from_secs(3600);
        let root_key = SoftwareSigner::generate(&mut rng).unwrap();
        let root_dn = DnBuilder::new()
            .country("CN")
            .organization("示例医院")
            .common_name("示例医院 根CA")
            .build()
            .unwrap();
        let root_p = profile::root_ca(
            root_dn,
            root_key.public_key(),
            Period::starting(start, days(3650)).unwrap(),
        );
        let root_cert = issue_certificate(&root_p, None, &root_key, &mut rng).unwrap();

        let int_key = SoftwareSigner::generate(&mut rng).unwrap();
        let int_dn = DnBuilder::new()
            .country("CN")
            .organization("示例医院")
            .organizational_unit("医护人员")
            .common_name("示例医院 医护人员CA")
            .build()
            .unwrap();
        let int_p = profile::issuing_ca(
            int_dn,
            int_key.public_key(),
            Period::starting(start, days(1825)).unwrap(),
            IssuingCaKind::Staff,
            &urls(),
        );
        let int_cert = issue_certificate(&int_p, Some(&root_cert), &root_key, &mut rng).unwrap();

        let staff_key = SoftwareSigner::generate(&mut rng).unwrap();
        let info = profile::StaffInfo {
            name: "张三".into(),
            staff_id: "E00123".into(),
            department: "心内科".into(),
            hospital: "示例医院".into(),
            resident_id: Some(RESIDENT_ID.into()),
            licence: Some("110440000012345".into()),
        };
        let staff_p = profile::staff(
            &info,
            LICENCE_OID.parse().unwrap(),
            staff_key.public_key(),
            Period::starting(start, days(365)).unwrap(),
            &urls(),
        )
        .unwrap();
        let staff_cert = issue_certificate(&staff_p, Some(&int_cert), &int_key, &mut rng).unwrap();

        let tsa_key = SoftwareSigner::generate(&mut rng).unwrap();
        let tsa_dn = DnBuilder::new()
            .country("CN")
            .organization("示例医院")
            .common_name("示例医院 时间戳服务")
            .build()
            .unwrap();
        let tsa_p = profile::tsa(
            tsa_dn,
            tsa_key.public_key(),
            Period::starting(start, days(1825)).unwrap(),
            &urls(),
        );
        let tsa_cert = issue_certificate(&tsa_p, Some(&int_cert), &int_key, &mut rng).unwrap();

        let ocsp_key = SoftwareSigner::generate(&mut rng).unwrap();
        let ocsp_dn = DnBuilder::new()
            .country("CN")
            .organization("示例医院")
            .common_name("示例医院 OCSP")
            .build()
            .unwrap();
        let ocsp_p = profile::ocsp_signer(
            ocsp_dn,
            ocsp_key.public_key(),
            Period::starting(start, days(365)).unwrap(),
        )
        .unwrap();
        let ocsp_cert = issue_certificate(&ocsp_p, Some(&int_cert), &int_key, &mut rng).unwrap();

        Self {
            now,
            root: Issued {
                key: root_key,
                cert: root_cert,
            },
            int: Issued {
                key: int_key,
                cert: int_cert,
            },
            staff: Issued {
                key: staff_key,
                cert: staff_cert,
            },
            tsa: Issued {
                key: tsa_key,
                cert: tsa_cert,
            },
            ocsp: Issued {
                key: ocsp_key,
                cert: ocsp_cert,
            },
        }
    }

    /// Write `<name>.pem`, `<name>.key.pem` and `<name>.pub.pem` for each certificate, plus `chain.pem`.
    pub fn write(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, i) in [
            ("root", &self.root),
            ("int", &self.int),
            ("staff", &self.staff),
            ("tsa", &self.tsa),
            ("ocsp", &self.ocsp),
        ] {
            std::fs::write(dir.join(format!("{name}.pem")), i.cert.to_pem()).unwrap();
            std::fs::write(dir.join(format!("{name}.der")), i.cert.der()).unwrap();
            std::fs::write(
                dir.join(format!("{name}.key.pem")),
                i.key.to_pkcs8_pem().unwrap(),
            )
            .unwrap();
            std::fs::write(
                dir.join(format!("{name}.pub.pem")),
                gm_pki::signer::public_key_pem(&i.key.public_key()).unwrap(),
            )
            .unwrap();
        }
        std::fs::write(
            dir.join("chain.pem"),
            format!("{}{}", self.int.cert.to_pem(), self.root.cert.to_pem()),
        )
        .unwrap();
    }
}
