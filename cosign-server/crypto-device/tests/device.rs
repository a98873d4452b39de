//! crypto-device integration tests: the conformance suite on the software device over every
//! store (memory, SQLite file, PostgreSQL), sealed master key, KEK rotation crash safety,
//! M-of-N backup, and the `keys` CLI library functions.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use crypto_device::conformance::conformance_suite;
use crypto_device::prims::{self, DEFAULT_SM2_ID};
use crypto_device::sealed::Unlock;
use crypto_device::shamir;
use crypto_device::soft::{SoftDevice, SoftDeviceConfig, restore_master_key};
use crypto_device::store::{KeyRecord, KeyStore, MemoryKeyStore, SqlKeyStore};
use crypto_device::{CryptoDevice, Error, KeyId, KeyState, MemoryAuditSink, SymMode, with_secret};
use zeroize::Zeroizing;

const PASS: &str = "correct horse battery staple";

fn cfg(dir: &Path, store: Arc<dyn KeyStore>, audit: Arc<MemoryAuditSink>) -> SoftDeviceConfig {
    let mut c = SoftDeviceConfig::new(
        dir.join("master-key.sealed"),
        Unlock::passphrase(PASS),
        store,
        audit,
    );
    c.iterations = 1000; // tests only; production default is sealed::DEFAULT_ITERATIONS
    c.clock = Arc::new(|| 1_780_000_000);
    c
}

async fn new_soft(dir: &Path, store: Arc<dyn KeyStore>) -> (SoftDevice, Arc<MemoryAuditSink>) {
    let audit = Arc::new(MemoryAuditSink::default());
    let dev = SoftDevice::init(cfg(dir, store, audit.clone()))
        .await
        .unwrap();
    (dev, audit)
}

#[tokio::test]
async fn conformance_soft_device_memory_store() {
    let dir = tempfile::tempdir().unwrap();
    let (dev, audit) = new_soft(dir.path(), Arc::new(MemoryKeyStore::new())).await;
    let rep = conformance_suite(&dev).await.unwrap();
    // 9 checks + the open signing key (the software device offers one).
    assert_eq!(rep.passed.len(), 10, "{:?}", rep.passed);
    let actions: Vec<_> = audit.events().iter().map(|e| e.action).collect();
    for a in [
        "master.init",
        "key.generate",
        "key.export",
        "key.import",
        "secret.import",
        "secret.replace",
        "key.suspend",
        "key.resume",
        "key.destroy",
    ] {
        assert!(
            actions.contains(&a),
            "missing audit action {a}: {actions:?}"
        );
    }
}

#[tokio::test]
async fn conformance_soft_device_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("keys.db").display());
    let store = SqlKeyStore::connect(&url).await.unwrap();
    store.create_table().await.unwrap();
    let (dev, _) = new_soft(dir.path(), Arc::new(store)).await;
    conformance_suite(&dev).await.unwrap();
    // Nothing plain on disk: the database file never contains an SM4 key we generated.
    let k = dev.generate_sm4("probe").await.unwrap();
    let blob = dev
        .export_wrapped(&k, &dev.default_wrapping_key().await.unwrap())
        .await
        .unwrap();
    let db = std::fs::read(dir.path().join("keys.db")).unwrap();
    assert!(!db.windows(blob.len()).any(|w| w == blob.as_slice()));
}

/// A fresh PostgreSQL database per test, dropped at the end. Fails (never skips) when the
/// server at `COSIGN_TEST_PG` does not answer.
struct PgDb {
    admin: String,
    name: String,
    url: String,
}

impl PgDb {
    async fn create() -> Self {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let admin = std::env::var("COSIGN_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("yiqian_t_{}", hex::encode(prims::random_vec(6).unwrap()));
        let mut c = sqlx::AnyConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {admin} (COSIGN_TEST_PG) does not answer: {e}")
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        let (base, query) = admin
            .split_once('?')
            .map_or((admin.as_str(), ""), |(b, q)| (b, q));
        let (prefix, _) = base.rsplit_once('/').unwrap();
        let url = if query.is_empty() {
            format!("{prefix}/{name}")
        } else {
            format!("{prefix}/{name}?{query}")
        };
        Self { admin, name, url }
    }

    async fn drop_db(self) {
        use sqlx::Connection as _;
        let mut c = sqlx::AnyConnection::connect(&self.admin).await.unwrap();
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut c)
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn conformance_soft_device_postgres_store() {
    let db = PgDb::create().await;
    let store = SqlKeyStore::connect(&db.url).await.unwrap();
    store.create_table().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (dev, _) = new_soft(dir.path(), Arc::new(store.clone())).await;
    conformance_suite(&dev).await.unwrap();
    let r = dev.rotate_kek().await.unwrap();
    assert!(r.rewrapped > 0);
    let list = dev.list_keys().await.unwrap();
    assert!(list.iter().all(|k| k.state == KeyState::Destroyed
        || k.wrapped_by == r.new_kek
        || k.id.as_str() == r.new_kek));
    store.pool().close().await;
    db.drop_db().await;
}

async fn store_round_trip(store: &SqlKeyStore) {
    store.create_table().await.unwrap();
    store.create_table().await.unwrap(); // idempotent
    let mut r = KeyRecord {
        id: "k-1".into(),
        label: "标签 label".into(),
        kind: "sm4".into(),
        state: "active".into(),
        wrapped_by: "kek-000001".into(),
        material: (0..=255u8).collect(),
        public_key: vec![],
        created_at: 1,
        updated_at: 2,
        revision: 1,
        mac: vec![0, 1, 2, 255],
    };
    store.put(&r).await.unwrap();
    assert_eq!(store.get("k-1").await.unwrap().unwrap(), r);
    assert!(store.get("k-2").await.unwrap().is_none());
    r.state = "destroyed".into();
    r.material.clear();
    r.revision = 2;
    let mut r2 = r.clone();
    r2.id = "k-0".into();
    store.put_all(&[r.clone(), r2.clone()]).await.unwrap();
    assert_eq!(store.list().await.unwrap(), vec![r2, r]);
}

/// `get_with_wrapper` (one statement in `SqlKeyStore`) answers as the trait's two `get`s do.
async fn wrapper_reads(store: &dyn KeyStore) {
    let record = |id: &str, wrapped_by: &str| KeyRecord {
        id: id.into(),
        label: id.into(),
        kind: "sm4".into(),
        state: "active".into(),
        wrapped_by: wrapped_by.into(),
        material: id.as_bytes().to_vec(),
        public_key: vec![],
        created_at: 1,
        updated_at: 1,
        revision: 1,
        mac: vec![7],
    };
    let kek = record("kek-000009", "master");
    let data = record("w-data", "kek-000009");
    let orphan = record("w-orphan", "kek-000404");
    let other = record("w-other", "kek-000009");
    store
        .put_all(&[kek.clone(), data.clone(), orphan.clone(), other])
        .await
        .unwrap();
    assert_eq!(
        store.get_with_wrapper("w-data").await.unwrap(),
        (Some(data), Some(kek.clone()))
    );
    assert_eq!(
        store.get_with_wrapper("kek-000009").await.unwrap(),
        (Some(kek), None)
    );
    assert_eq!(
        store.get_with_wrapper("w-orphan").await.unwrap(),
        (Some(orphan), None)
    );
    assert_eq!(
        store.get_with_wrapper("w-none").await.unwrap(),
        (None, None)
    );
    // An id that is only some record's wrapper is no answer for another id.
    assert_eq!(
        store.get_with_wrapper("kek-000404").await.unwrap(),
        (None, None)
    );
}

#[tokio::test]
async fn memory_store_wrapper_reads() {
    wrapper_reads(&MemoryKeyStore::new()).await;
}

#[tokio::test]
async fn sql_store_round_trip_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlKeyStore::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("k.db").display()
    ))
    .await
    .unwrap();
    store_round_trip(&store).await;
    wrapper_reads(&store).await;
}

#[tokio::test]
async fn sql_store_round_trip_postgres() {
    let db = PgDb::create().await;
    let store = SqlKeyStore::connect(&db.url).await.unwrap();
    store_round_trip(&store).await;
    wrapper_reads(&store).await;
    store.pool().close().await;
    db.drop_db().await;
}

#[test]
fn migration_files_exist_for_both_backends_with_the_same_name() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    for b in ["sqlite", "postgres"] {
        assert!(base.join(b).join("0002_crypto_device.sql").is_file(), "{b}");
    }
}

#[tokio::test]
async fn wrong_passphrase_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryKeyStore::new());
    let (dev, _) = new_soft(dir.path(), store.clone()).await;
    let (k, pk) = dev.generate_sm2("doctor").await.unwrap();
    drop(dev);
    let path = dir.path().join("master-key.sealed");
    let before = std::fs::read(&path).unwrap();
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let records = store.list().await.unwrap();

    let audit = Arc::new(MemoryAuditSink::default());
    let mut c = cfg(dir.path(), store.clone(), audit.clone());
    c.unlock = Unlock::passphrase("wrong passphrase, twelve+");
    let err = SoftDevice::open(c).await.unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase), "{err:?}");
    assert!(err.to_string().contains("wrong passphrase"), "{err}");
    assert_eq!(
        audit.events().last().unwrap().action,
        "master.unlock_failed"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    assert_eq!(store.list().await.unwrap(), records);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp files left"
    );

    // A key file cannot open a passphrase seal.
    let kf = dir.path().join("kf");
    std::fs::write(&kf, [7u8; 32]).unwrap();
    let mut c = cfg(dir.path(), store.clone(), audit.clone());
    c.unlock = Unlock::KeyFile(kf);
    assert!(matches!(
        SoftDevice::open(c).await.unwrap_err(),
        Error::InvalidInput(_)
    ));

    // The right passphrase still works.
    let dev = SoftDevice::open(cfg(dir.path(), store, audit))
        .await
        .unwrap();
    let e = dev.sm3_with_z(&pk, DEFAULT_SM2_ID, b"m").await.unwrap();
    pk.verify(
        DEFAULT_SM2_ID,
        b"m",
        &dev.sign_digest(&k, &e).await.unwrap(),
    )
    .unwrap();

    // Not initialised / already initialised are clear errors.
    let other = tempfile::tempdir().unwrap();
    let c = cfg(
        other.path(),
        Arc::new(MemoryKeyStore::new()),
        Arc::new(MemoryAuditSink::default()),
    );
    assert!(matches!(
        SoftDevice::open(c).await.unwrap_err(),
        Error::NotInitialised(_)
    ));
    let c = cfg(
        dir.path(),
        Arc::new(MemoryKeyStore::new()),
        Arc::new(MemoryAuditSink::default()),
    );
    assert!(matches!(
        SoftDevice::init(c).await.unwrap_err(),
        Error::AlreadyInitialised(_)
    ));
}

#[tokio::test]
async fn key_file_unlock_and_change_to_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let kf = dir.path().join("master.keyfile");
    std::fs::write(&kf, prims::random_vec(32).unwrap()).unwrap();
    let store = Arc::new(MemoryKeyStore::new());
    let audit = Arc::new(MemoryAuditSink::default());
    let mut c = cfg(dir.path(), store.clone(), audit.clone());
    c.unlock = Unlock::KeyFile(kf.clone());
    let mut dev = SoftDevice::init(c.clone()).await.unwrap();
    let secret = dev
        .import_secret("d2:doctor-1", Zeroizing::new(vec![9u8; 32]))
        .await
        .unwrap();
    // Wrong key file.
    let bad = dir.path().join("other.keyfile");
    std::fs::write(&bad, prims::random_vec(32).unwrap()).unwrap();
    let mut c2 = c.clone();
    c2.unlock = Unlock::KeyFile(bad);
    assert!(matches!(
        SoftDevice::open(c2).await.unwrap_err(),
        Error::WrongPassphrase
    ));
    // Too-short key file.
    let short = dir.path().join("short.keyfile");
    std::fs::write(&short, [1u8; 8]).unwrap();
    let mut c3 = c.clone();
    c3.unlock = Unlock::KeyFile(short);
    assert!(matches!(
        SoftDevice::open(c3).await.unwrap_err(),
        Error::InvalidInput(_)
    ));
    // Switch to a passphrase.
    dev.change_unlock(Unlock::passphrase(PASS), 1000)
        .await
        .unwrap();
    drop(dev);
    assert!(
        SoftDevice::open(c).await.is_err(),
        "the key file no longer opens it"
    );
    let dev = SoftDevice::open(cfg(dir.path(), store, audit))
        .await
        .unwrap();
    let v = with_secret(&dev, &secret, |s| Ok(s.to_vec()))
        .await
        .unwrap();
    assert_eq!(v, vec![9u8; 32]);
    // Short passphrases are refused when sealing.
    let d2 = tempfile::tempdir().unwrap();
    let mut c4 = cfg(
        d2.path(),
        Arc::new(MemoryKeyStore::new()),
        Arc::new(MemoryAuditSink::default()),
    );
    c4.unlock = Unlock::passphrase("short");
    assert!(matches!(
        SoftDevice::init(c4).await.unwrap_err(),
        Error::InvalidInput(_)
    ));
}

#[test]
fn pbkdf2_hmac_sm3_matches_openssl() {
    let out = std::process::Command::new("openssl")
        .args([
            "kdf",
            "-keylen",
            "16",
            "-kdfopt",
            "digest:SM3",
            "-kdfopt",
            "pass:correct horse",
            "-kdfopt",
            "salt:NaCl-salt",
            "-kdfopt",
            "iter:1000",
            "PBKDF2",
        ])
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .replace(':', "")
        .to_lowercase();
    let mut mine = [0u8; 16];
    prims::pbkdf2_sm3(b"correct horse", b"NaCl-salt", 1000, &mut mine);
    assert_eq!(hex::encode(mine), theirs);
}

#[tokio::test]
async fn tampered_record_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryKeyStore::new());
    let (dev, _) = new_soft(dir.path(), store.clone()).await;
    let (k, _) = dev.generate_sm2("nurse").await.unwrap();
    dev.set_state(&k, KeyState::Suspended).await.unwrap();
    // A database administrator flips the state back to active.
    let mut r = store.get(k.as_str()).await.unwrap().unwrap();
    r.state = "active".into();
    store.put(&r).await.unwrap();
    let err = dev.sign_digest(&k, &[1u8; 32]).await.unwrap_err();
    assert!(matches!(err, Error::Integrity(_)), "{err:?}");
    // Moving another key's wrapped blob into this record is detected too.
    let (k2, _) = dev.generate_sm2("other").await.unwrap();
    let other = store.get(k2.as_str()).await.unwrap().unwrap();
    let mut r = store.get(k.as_str()).await.unwrap().unwrap();
    r.material = other.material;
    store.put(&r).await.unwrap();
    assert!(matches!(
        dev.sign_digest(&k, &[1u8; 32]).await.unwrap_err(),
        Error::Integrity(_)
    ));
    // The KEK's record is read with the key's (`get_with_wrapper`) and checked as well.
    let kek_id = store.get(k2.as_str()).await.unwrap().unwrap().wrapped_by;
    dev.sign_digest(&k2, &[1u8; 32]).await.unwrap();
    let mut kek = store.get(&kek_id).await.unwrap().unwrap();
    kek.label.push_str(" (edited)");
    store.put(&kek).await.unwrap();
    assert!(matches!(
        dev.sign_digest(&k2, &[1u8; 32]).await.unwrap_err(),
        Error::Integrity(_)
    ));
}

/// Counts writes and fails every write after the first `budget` ones: a process killed
/// between two store writes.
#[derive(Debug)]
struct CrashingStore {
    inner: Arc<MemoryKeyStore>,
    budget: AtomicI64,
    writes: AtomicI64,
}

#[async_trait]
impl KeyStore for CrashingStore {
    async fn get(&self, id: &str) -> crypto_device::Result<Option<KeyRecord>> {
        self.inner.get(id).await
    }
    async fn list(&self) -> crypto_device::Result<Vec<KeyRecord>> {
        self.inner.list().await
    }
    async fn put(&self, r: &KeyRecord) -> crypto_device::Result<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        if self.budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
            return Err(Error::Storage("injected crash".into()));
        }
        self.inner.put(r).await
    }
}

struct Fixture {
    sm2: Vec<(KeyId, prims::Sm2PublicKey)>,
    sm4: Vec<(KeyId, Vec<u8>, Vec<u8>)>, // key, nonce, ciphertext of "payload"
    secret: (KeyId, Vec<u8>),
}

async fn check_all(dev: &SoftDevice, f: &Fixture) {
    for (k, pk) in &f.sm2 {
        let e = dev
            .sm3_with_z(pk, DEFAULT_SM2_ID, b"after crash")
            .await
            .unwrap();
        pk.verify(
            DEFAULT_SM2_ID,
            b"after crash",
            &dev.sign_digest(k, &e).await.unwrap(),
        )
        .unwrap();
    }
    for (k, n, ct) in &f.sm4 {
        assert_eq!(
            &dev.decrypt(k, SymMode::Gcm, n, b"", ct).await.unwrap()[..],
            b"payload"
        );
    }
    let v = with_secret(dev, &f.secret.0, |s| Ok(s.to_vec()))
        .await
        .unwrap();
    assert_eq!(v, f.secret.1);
}

#[tokio::test]
async fn kek_rotation_survives_a_crash_after_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let base = Arc::new(MemoryKeyStore::new());
    let (dev, _) = new_soft(dir.path(), base.clone()).await;
    let mut f = Fixture {
        sm2: vec![],
        sm4: vec![],
        secret: (KeyId(String::new()), vec![]),
    };
    for i in 0..3 {
        f.sm2
            .push(dev.generate_sm2(&format!("sm2 {i}")).await.unwrap());
    }
    for i in 0..2 {
        let k = dev.generate_sm4(&format!("sm4 {i}")).await.unwrap();
        let n = prims::random_vec(12).unwrap();
        let ct = dev
            .encrypt(&k, SymMode::Gcm, &n, b"", b"payload")
            .await
            .unwrap();
        f.sm4.push((k, n, ct));
    }
    let d2 = prims::random_vec(32).unwrap();
    f.secret = (
        dev.import_secret("d2", Zeroizing::new(d2.clone()))
            .await
            .unwrap(),
        d2,
    );
    let destroyed = dev.generate_sm4("gone").await.unwrap();
    dev.destroy(&destroyed).await.unwrap();
    drop(dev);
    let snapshot = base.list().await.unwrap();

    // How many writes does a full rotation take?
    let fresh = |budget: i64| {
        let inner = Arc::new(MemoryKeyStore::new());
        (inner, budget)
    };
    let (inner, _) = fresh(i64::MAX);
    inner.put_all(&snapshot).await.unwrap();
    let counting = Arc::new(CrashingStore {
        inner: inner.clone(),
        budget: AtomicI64::new(i64::MAX),
        writes: AtomicI64::new(0),
    });
    let audit = Arc::new(MemoryAuditSink::default());
    let dev = SoftDevice::open(cfg(dir.path(), counting.clone(), audit.clone()))
        .await
        .unwrap();
    dev.rotate_kek().await.unwrap();
    let total = counting.writes.load(Ordering::SeqCst);
    assert_eq!(
        total,
        1 + 6 + 1,
        "new KEK + 6 live data keys + old KEK destroyed"
    );

    let mut outcomes = BTreeMap::new();
    for k in 0..=total {
        let inner = Arc::new(MemoryKeyStore::new());
        inner.put_all(&snapshot).await.unwrap();
        let crashing = Arc::new(CrashingStore {
            inner: inner.clone(),
            budget: AtomicI64::new(k),
            writes: AtomicI64::new(0),
        });
        let dev = SoftDevice::open(cfg(dir.path(), crashing, audit.clone()))
            .await
            .unwrap();
        let res = dev.rotate_kek().await;
        assert_eq!(res.is_ok(), k >= total, "crash after {k} writes: {res:?}");
        drop(dev); // the "killed" process
        // Restart on what reached the store: everything must still work.
        let dev = SoftDevice::open(cfg(dir.path(), inner.clone(), audit.clone()))
            .await
            .unwrap();
        check_all(&dev, &f).await;
        let status = dev.keys_status().await.unwrap();
        outcomes.insert(k, status.rotation_incomplete);
        // Running the rotation again completes it.
        let r = dev.rotate_kek().await.unwrap();
        assert_eq!(r.rewrapped, 6);
        let status = dev.keys_status().await.unwrap();
        assert!(!status.rotation_incomplete);
        assert_eq!(
            status
                .keks
                .iter()
                .filter(|k| k.state != KeyState::Destroyed)
                .count(),
            1
        );
        check_all(&dev, &f).await;
        // Keys created after the crash work too.
        let (nk, npk) = dev.generate_sm2("after").await.unwrap();
        let e = dev.sm3_with_z(&npk, DEFAULT_SM2_ID, b"x").await.unwrap();
        npk.verify(
            DEFAULT_SM2_ID,
            b"x",
            &dev.sign_digest(&nk, &e).await.unwrap(),
        )
        .unwrap();
    }
    // Crashes between the new KEK and the old one's destruction leave two live KEKs.
    assert!(outcomes.values().any(|&incomplete| incomplete));
    assert_eq!(outcomes.len(), usize::try_from(total + 1).unwrap());
}

#[test]
fn shamir_any_m_restore_m_minus_1_fail_flipped_bits_detected() {
    let names: Vec<String> = ["张医生", "李护士长", "王主任", "信息科", "保卫科"]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
    let secret = prims::random_vec(32).unwrap();
    let set = shamir::split(&secret, 3, &names).unwrap();
    let enc: Vec<String> = set.shares.iter().map(shamir::Share::encode).collect();
    let dec: Vec<shamir::Share> = enc
        .iter()
        .map(|s| shamir::Share::decode(s).unwrap())
        .collect();
    // Every 3-subset (and larger) restores.
    let n = dec.len();
    let mut subsets = 0;
    for mask in 0u32..(1 << n) {
        let pick: Vec<shamir::Share> = (0..n)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| dec[i].clone())
            .collect();
        let r = shamir::combine(&pick);
        if pick.len() >= 3 {
            assert_eq!(&r.unwrap()[..], &secret[..]);
            subsets += 1;
        } else {
            assert!(
                matches!(r, Err(Error::Restore(_))),
                "{} shares must fail",
                pick.len()
            );
        }
    }
    assert_eq!(subsets, 16); // C(5,3)+C(5,4)+C(5,5)
    // Every single-bit flip of every share's text is detected.
    for s in &enc {
        let bytes = s.as_bytes();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.to_vec();
                b[i] ^= 1 << bit;
                if let Ok(t) = String::from_utf8(b) {
                    if t.trim() == s.as_str() {
                        continue; // flipping into trailing whitespace is not a change of content
                    }
                    assert!(
                        shamir::Share::decode(&t).is_err(),
                        "flip at {i}.{bit} undetected"
                    );
                }
            }
        }
    }
    // Shares of two different backups do not mix.
    let other = shamir::split(&secret, 3, &names).unwrap();
    let mixed = vec![dec[0].clone(), dec[1].clone(), other.shares[2].clone()];
    assert!(matches!(shamir::combine(&mixed), Err(Error::Restore(_))));
    // Parameters are checked.
    assert!(shamir::split(&secret, 1, &names).is_err());
    assert!(shamir::split(&secret, 6, &names).is_err());
}

#[tokio::test]
async fn keys_cli_functions_and_disaster_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryKeyStore::new());
    let (dev, audit) = new_soft(dir.path(), store.clone()).await;
    let (k, pk) = dev.generate_sm2("ca-root").await.unwrap();
    let d2 = dev
        .import_secret("d2:doctor-7", Zeroizing::new(vec![5u8; 32]))
        .await
        .unwrap();

    let list = dev.keys_list().await.unwrap();
    assert_eq!(list.len(), 3); // KEK + 2
    let st = dev.keys_status().await.unwrap();
    assert_eq!(st.master_key.kdf, "pbkdf2-hmac-sm3");
    assert_eq!(st.keks.len(), 1);
    assert_eq!(st.keks[0].wraps, 2);
    let rot = dev.rotate_kek().await.unwrap();
    assert_eq!(
        (
            rot.new_kek.as_str(),
            rot.rewrapped,
            rot.destroyed_keks.clone()
        ),
        ("kek-000002", 2, vec!["kek-000001".to_string()])
    );
    let custodians: Vec<String> = ["alice", "bob", "carol"]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
    let backup = dev.backup_master_key(2, &custodians).await.unwrap();
    assert_eq!(backup.shares.len(), 3);
    assert!(
        !format!("{backup:?}").contains("YQBK1"),
        "Debug must not print shares"
    );
    let actions: Vec<_> = audit.events().iter().map(|e| e.action).collect();
    for a in ["keys.list", "keys.status", "kek.rotate", "master.backup"] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
    drop(dev);

    // Disaster: the sealed master key file is lost.
    let path = dir.path().join("master-key.sealed");
    std::fs::remove_file(&path).unwrap();
    let audit2 = MemoryAuditSink::default();
    // One share is not enough.
    let one = vec![backup.shares[0].1.clone()];
    let r = restore_master_key(
        &one,
        &path,
        &Unlock::passphrase("new passphrase after fire"),
        1000,
        store.as_ref(),
        &audit2,
        1,
    )
    .await;
    assert!(matches!(r, Err(Error::Restore(_))), "{r:?}");
    assert!(!path.exists());
    // A damaged share is detected.
    let mut damaged = backup.shares[1].1.clone().into_bytes();
    damaged[20] ^= 0x01;
    let bad = vec![
        backup.shares[0].1.clone(),
        String::from_utf8(damaged).unwrap(),
    ];
    let r = restore_master_key(
        &bad,
        &path,
        &Unlock::passphrase("new passphrase after fire"),
        1000,
        store.as_ref(),
        &audit2,
        1,
    )
    .await;
    assert!(matches!(r, Err(Error::Integrity(_))), "{r:?}");
    // Shares of another device's master key are refused (checked against the store).
    let other_dir = tempfile::tempdir().unwrap();
    let (other_dev, _) = new_soft(other_dir.path(), Arc::new(MemoryKeyStore::new())).await;
    let foreign = other_dev.backup_master_key(2, &custodians).await.unwrap();
    let fs: Vec<String> = foreign.shares.iter().take(2).map(|s| s.1.clone()).collect();
    let r = restore_master_key(
        &fs,
        &path,
        &Unlock::passphrase("new passphrase after fire"),
        1000,
        store.as_ref(),
        &audit2,
        1,
    )
    .await;
    assert!(matches!(r, Err(Error::Restore(_))), "{r:?}");
    // Any 2 of 3 restore.
    let two = vec![backup.shares[2].1.clone(), backup.shares[0].1.clone()];
    let rep = restore_master_key(
        &two,
        &path,
        &Unlock::passphrase("new passphrase after fire"),
        1000,
        store.as_ref(),
        &audit2,
        1,
    )
    .await
    .unwrap();
    assert_eq!(
        rep.custodians,
        vec!["carol".to_string(), "alice".to_string()]
    );
    assert_eq!(rep.keks_verified, 2);
    assert_eq!(
        audit2
            .events()
            .iter()
            .filter(|e| e.action == "master.restore")
            .map(|e| e.success)
            .collect::<Vec<_>>(),
        vec![false, false, false, true]
    );
    let mut c = cfg(dir.path(), store, Arc::new(MemoryAuditSink::default()));
    c.unlock = Unlock::passphrase("new passphrase after fire");
    let dev = SoftDevice::open(c).await.unwrap();
    let e = dev
        .sm3_with_z(&pk, DEFAULT_SM2_ID, b"restored")
        .await
        .unwrap();
    pk.verify(
        DEFAULT_SM2_ID,
        b"restored",
        &dev.sign_digest(&k, &e).await.unwrap(),
    )
    .unwrap();
    assert_eq!(
        with_secret(&dev, &d2, |s| Ok(s.to_vec())).await.unwrap(),
        vec![5u8; 32]
    );
}
