//! The SAME conformance suite against the software device and against the SDF adapter
//! loading `libsdf_soft.so` through `dlopen`.
//!
//! Finding the library: the package's `[lib]` is `crate-type = ["cdylib", "rlib"]`, so the
//! one rustc run that builds the rlib these tests link also writes `libsdf_soft.so` into
//! `<target>/<profile>/deps/` (and cargo copies it to `<target>/<profile>/`) before any test
//! runs — with `cargo test` and `cargo nextest run` alike, for any `CARGO_TARGET_DIR`. The
//! test binary lives in that same `deps/` directory, so it looks next to itself first; as a
//! last resort it runs `$CARGO build -p sdf-soft` into the same target directory.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;

use crypto_device::conformance::conformance_suite;
use crypto_device::sdf::{EccRefPublicKey, EccSignature, SdfConfig, SdfDevice, code};
use crypto_device::soft::{SoftDevice, SoftDeviceConfig, system_clock};
use crypto_device::store::MemoryKeyStore;
use crypto_device::{CryptoDevice, Error, MemoryAuditSink};

const LIB: &str = "libsdf_soft.so";

fn sdf_library() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let deps = exe.parent().expect("deps dir").to_path_buf();
    let profile_dir = deps.parent().expect("profile dir").to_path_buf();
    for d in [&deps, &profile_dir] {
        let p = d.join(LIB);
        if p.is_file() {
            return p;
        }
    }
    // Fallback: build it into the same target directory.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = profile_dir.parent().expect("target dir");
    let status = std::process::Command::new(cargo)
        .args(["build", "-p", "sdf-soft", "--lib"])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build -p sdf-soft");
    assert!(status.success(), "cargo build -p sdf-soft failed");
    let p = target.join("debug").join(LIB);
    assert!(p.is_file(), "{} not found after building", p.display());
    p
}

fn sdf_config(indices: Vec<u32>, kek: u32) -> SdfConfig {
    SdfConfig {
        library: sdf_library(),
        sign_key_indices: indices,
        kek_index: kek,
        key_password: None,
        store: Arc::new(MemoryKeyStore::new()),
        audit: Arc::new(MemoryAuditSink::default()),
        clock: system_clock(),
    }
}

#[tokio::test]
async fn conformance_software_device() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = SoftDeviceConfig::new(
        dir.path().join("master-key.sealed"),
        crypto_device::sealed::Unlock::passphrase("conformance passphrase"),
        Arc::new(MemoryKeyStore::new()),
        Arc::new(MemoryAuditSink::default()),
    );
    c.iterations = 1000;
    let dev = SoftDevice::init(c).await.unwrap();
    let rep = conformance_suite(&dev).await.unwrap();
    // The SDF device's 9 checks + the open signing key, which only the software device offers.
    assert_eq!(rep.passed.len(), 10);
}

#[tokio::test]
async fn conformance_sdf_adapter_over_libsdf_soft() {
    let dev = SdfDevice::open(sdf_config((1..=8).collect(), 1)).unwrap();
    assert_eq!(dev.info().kind, "sdf");
    let rep = conformance_suite(&dev).await.unwrap();
    assert_eq!(rep.passed.len(), 9, "{:?}", rep.passed);
    // And once more on the same device (fresh keys, index allocation continues).
    conformance_suite(&dev).await.unwrap();
}

#[tokio::test]
async fn sdf_error_codes_become_typed_errors() {
    // Index 99 is not provisioned in the test library: SDR_KEYNOTEXIST.
    let dev = SdfDevice::open(sdf_config(vec![99], 99)).unwrap();
    match dev.generate_sm2("x").await.unwrap_err() {
        Error::Sdf {
            function,
            code: c,
            name,
        } => {
            assert_eq!(
                (function, c, name),
                (
                    "SDF_ExportSignPublicKey_ECC",
                    code::SDR_KEYNOTEXIST,
                    "SDR_KEYNOTEXIST"
                )
            );
        }
        e => panic!("{e:?}"),
    }
    let e = dev.generate_sm4("y").await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Sdf {
                code: 0x0100_0008,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("SDR_KEYNOTEXIST (0x01000008)"),
        "{e}"
    );
    assert_eq!(crypto_device::sdf::sdr_name(0x0100_0001), "SDR_UNKNOWERR");
    assert_eq!(
        crypto_device::sdf::sdr_name(0x0100_00FF),
        "SDR_UNKNOWN_CODE"
    );
}

#[tokio::test]
async fn sdf_index_pool_is_allocated_once_and_destroyed_indices_retire() {
    let dev = SdfDevice::open(sdf_config(vec![9, 10], 2)).unwrap();
    let (a, pa) = dev.generate_sm2("a").await.unwrap();
    let (b, pb) = dev.generate_sm2("b").await.unwrap();
    assert_ne!(pa, pb);
    assert!(matches!(
        dev.generate_sm2("c").await.unwrap_err(),
        Error::NotSupported(_)
    ));
    dev.destroy(&a).await.unwrap();
    assert!(
        matches!(
            dev.generate_sm2("d").await.unwrap_err(),
            Error::NotSupported(_)
        ),
        "destroyed index must not be reused"
    );
    // SM2 internal keys are not exportable.
    let w = dev.default_wrapping_key().await.unwrap();
    assert!(matches!(
        dev.export_wrapped(&b, &w).await.unwrap_err(),
        Error::NotSupported(_)
    ));
}

#[test]
fn missing_library_is_a_clear_error() {
    let mut c = sdf_config(vec![1], 1);
    c.library = PathBuf::from("/nonexistent/libsdf.so");
    let e = SdfDevice::open(c).unwrap_err();
    assert!(matches!(e, Error::Library(_)), "{e:?}");
}

#[test]
fn gmt0018_struct_layout() {
    assert_eq!(std::mem::size_of::<EccRefPublicKey>(), 4 + 64 + 64);
    assert_eq!(std::mem::size_of::<EccSignature>(), 128);
    assert_eq!(std::mem::offset_of!(EccRefPublicKey, x), 4);
    assert_eq!(std::mem::offset_of!(EccRefPublicKey, y), 68);
}
