//! Generate a test PKI (root, issuing CA, staff, TSA and OCSP certificates with their keys).
//!
//! `cargo run -p gm-pki --example test-ca -- DIR`
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/it/testca.rs"]
mod testca;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "test-ca".into());
    let ca = testca::TestCa::new(std::time::SystemTime::now());
    ca.write(std::path::Path::new(&dir));
    println!("wrote root, int, staff, tsa, ocsp certificates and keys to {dir}");
}
