//! Software device throughput: `cargo bench -p crypto-device`. Numbers are recorded in
//! docs/crypto/key-management.md §13.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use crypto_device::prims;
use crypto_device::sealed::{self, MasterKey, Unlock};
use crypto_device::soft::{SoftDevice, SoftDeviceConfig};
use crypto_device::store::MemoryKeyStore;
use crypto_device::{CryptoDevice, MemoryAuditSink, SymMode};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SoftDeviceConfig::new(
        dir.path().join("mk"),
        Unlock::passphrase("benchmark passphrase"),
        Arc::new(MemoryKeyStore::new()),
        Arc::new(MemoryAuditSink::default()),
    );
    cfg.iterations = 1000;
    let dev = rt.block_on(SoftDevice::init(cfg)).unwrap();
    let (k, pk) = rt.block_on(dev.generate_sm2("bench")).unwrap();
    let e = prims::sm2_digest(&pk, prims::DEFAULT_SM2_ID, b"document").unwrap();
    c.bench_function("soft sign_digest (load+MAC+2 unwraps+SM2 sign)", |b| {
        b.iter(|| rt.block_on(dev.sign_digest(&k, &e)).unwrap());
    });
    c.bench_function("soft generate_sm2", |b| {
        b.iter(|| rt.block_on(dev.generate_sm2("g")).unwrap());
    });
    let s = rt.block_on(dev.generate_sm4("data")).unwrap();
    let data = vec![7u8; 4096];
    let nonce = [1u8; 12];
    c.bench_function("soft SM4-GCM encrypt 4 KiB", |b| {
        b.iter(|| {
            rt.block_on(dev.encrypt(&s, SymMode::Gcm, &nonce, b"", &data))
                .unwrap()
        });
    });
    let mut g = c.benchmark_group("unseal");
    g.sample_size(10);
    let path = dir.path().join("mk600k");
    let mk = MasterKey::generate().unwrap();
    let unlock = Unlock::passphrase("benchmark passphrase");
    sealed::create(&path, &unlock, sealed::DEFAULT_ITERATIONS, &mk).unwrap();
    g.bench_function("open sealed master key, PBKDF2-HMAC-SM3 600k", |b| {
        b.iter(|| sealed::open(&path, &unlock).unwrap());
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
