//! gm-pki throughput with software SM2 keys: certificate issuance, TSP token creation, CMS
//! sign / verify, OCSP response signing.
//!
//! `cargo bench -p gm-pki --bench pki`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::semicolon_if_nothing_returned,
    missing_docs
)]

#[path = "../tests/it/testca.rs"]
mod testca;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gm_pki::cert::issue_certificate;
use gm_pki::cms::{self, HashAlg, OidFlavor, SignOptions};
use gm_pki::ocsp::{CertId, CertStatus, Responder, SingleResponse};
use gm_pki::profile::{self, Period};
use gm_pki::{Sm2Signer, tsp};
use std::hint::black_box;
use std::time::{Duration, SystemTime};

fn benches(c: &mut Criterion) {
    let ca = testca::TestCa::new(SystemTime::now());
    let mut rng = testca::rng();
    let mut g = c.benchmark_group("gm-pki");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(1));

    // Baselines: one SM2 signature / verification through the Sm2Signer trait (Z + SM3 + sign).
    g.bench_function("baseline SM2 sign (SoftwareSigner)", |b| {
        b.iter(|| ca.staff.key.sign(black_box(b"0123456789abcdef")).unwrap())
    });
    let sig = ca.staff.key.sign(b"0123456789abcdef").unwrap();
    let pk = ca.staff.key.public_key();
    g.bench_function("baseline SM2 verify", |b| {
        b.iter(|| {
            gm_pki::signer::verify(
                &pk,
                gm_pki::DEFAULT_DISTID,
                black_box(b"0123456789abcdef"),
                &sig,
            )
            .unwrap()
        })
    });

    let info = profile::StaffInfo {
        name: "张三".into(),
        staff_id: "E00123".into(),
        department: "心内科".into(),
        hospital: "示例医院".into(),
        resident_id: Some(testca::RESIDENT_ID.into()),
        licence: None,
    };
    let params = profile::staff(
        &info,
        testca::LICENCE_OID.parse().unwrap(),
        ca.staff.key.public_key(),
        Period::starting(ca.now, testca::days(365)).unwrap(),
        &testca::urls(),
    )
    .unwrap();
    g.bench_function("issue staff certificate", |b| {
        b.iter(|| {
            issue_certificate(
                black_box(&params),
                Some(&ca.int.cert),
                &ca.int.key,
                &mut rng,
            )
            .unwrap()
        })
    });

    let tsa = tsp::Tsa {
        cert: &ca.tsa.cert,
        chain: std::slice::from_ref(&ca.int.cert),
        signer: &ca.tsa.key,
        policy: "1.2.156.112233.2.1".parse().unwrap(),
        accuracy_seconds: 1,
    };
    let req = tsp::build_request(
        HashAlg::Sm3,
        &gm_pki::signer::sm3(b"doc"),
        None,
        Some(&[0x42; 8]),
        true,
    )
    .unwrap();
    g.bench_function("TSP request -> signed TimeStampResp", |b| {
        b.iter(|| tsa.respond(black_box(&req), ca.now, &[1, 2, 3, 4, 5, 6, 7, 8]))
    });
    let token = tsp::parse_response(&tsa.respond(&req, ca.now, &[1]))
        .unwrap()
        .token
        .unwrap();
    g.bench_function("TSP token verify", |b| {
        b.iter(|| tsp::verify_token(black_box(&token), None).unwrap())
    });

    let doc = vec![0x5au8; 1024];
    let opts = SignOptions {
        flavor: OidFlavor::Rfc5652,
        detached: false,
        signing_time: Some(ca.now),
    };
    g.bench_function("CMS sign 1 KiB", |b| {
        b.iter(|| cms::sign(black_box(&doc), &ca.staff.cert, &[], &ca.staff.key, &opts).unwrap())
    });
    let signed = cms::sign(&doc, &ca.staff.cert, &[], &ca.staff.key, &opts).unwrap();
    g.bench_function("CMS verify 1 KiB", |b| {
        b.iter(|| assert!(cms::verify(black_box(&signed), None, &[]).unwrap().ok()))
    });

    let id = CertId::for_cert(&ca.staff.cert, &ca.int.cert, HashAlg::Sha1).unwrap();
    let single = [SingleResponse {
        cert_id: id,
        status: CertStatus::Good,
        this_update: ca.now,
        next_update: None,
    }];
    let responder = Responder {
        cert: &ca.ocsp.cert,
        signer: &ca.ocsp.key,
    };
    g.bench_function("OCSP response sign", |b| {
        b.iter(|| {
            responder
                .respond(black_box(&single), Some(&[4, 2, 1, 1]), ca.now)
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(pki, benches);
criterion_main!(pki);
