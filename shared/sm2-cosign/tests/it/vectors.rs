//! Known-answer tests. Provenance is stated per vector.

use sm2::dsa::{Signature, VerifyingKey, signature::Verifier};
use sm2_cosign::plain;
use sm3::Digest as _;

fn sm3_hex(data: &[u8]) -> String {
    hex::encode(sm3::Sm3::digest(data))
}

/// GB/T 32905-2016 (GM/T 0004-2012) Annex A, examples 1 and 2.
#[test]
fn sm3_standard_vectors() {
    assert_eq!(
        sm3_hex(b"abc"),
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    );
    assert_eq!(
        sm3_hex(&b"abcd".repeat(16)),
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    );
}

/// Signature made by OpenSSL with a non-default ID, from RustCrypto `sm2` 0.14 `tests/sm2dsa.rs`:
/// `openssl pkeyutl -sign -in - -inkey pkcs8-private-key.pem -out sig -digest sm3
///  -pkeyopt distid:example@rustcrypto.org`, message "testing".
#[test]
fn openssl_vector_with_custom_id() {
    let pk = hex::decode("0408D77AE04C01CC4C1104360DD8AF6B6F7DF334283D7C1A6AFD5652407B87BEE5014E2A57C36C150D16324DC664E31E6432359609C4E79847A5B161C8C7364C8A").unwrap();
    let sig = hex::decode(
        "d1dcccedd9fb785e0f67c16b7c52901625c0b69de9bca2144acc7be713cad2fcf7d1eae6e3a157b36c65f672f738ca8b46298bf149a6510072c431b49cd88b1c",
    )
    .unwrap();
    let sig = Signature::from_slice(&sig).unwrap();
    let public = sm2::PublicKey::from_sec1_bytes(&pk).unwrap();
    plain::verify(&public, b"example@rustcrypto.org", b"testing", &sig).unwrap();
    assert!(plain::verify(&public, plain::DEFAULT_ID, b"testing", &sig).is_err());
    // And RustCrypto agrees.
    let vk = VerifyingKey::from_sec1_bytes("example@rustcrypto.org", &pk).unwrap();
    assert!(vk.verify(b"testing", &sig).is_ok());
}

/// The GB/T 32918.5 worked example (recommended curve) is a unit test next to the private
/// signing step (`src/plain.rs`, it needs the example's fixed k); here its public half:
/// verify the example signature with the public key, ID 1234567812345678, M = "message digest".
#[test]
fn gbt32918_5_example_verifies() {
    let pk = hex::decode(concat!(
        "04",
        "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020",
        "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
    ))
    .unwrap();
    let sig = hex::decode(concat!(
        "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3",
        "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
    ))
    .unwrap();
    let public = sm2::PublicKey::from_sec1_bytes(&pk).unwrap();
    let sig = Signature::from_slice(&sig).unwrap();
    plain::verify(&public, plain::DEFAULT_ID, b"message digest", &sig).unwrap();
    let z = plain::compute_z(plain::DEFAULT_ID, public.as_affine()).unwrap();
    assert_eq!(
        hex::encode_upper(z),
        "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3"
    );
    // DER round trip.
    let der = plain::signature_to_der(&sig);
    assert_eq!(plain::signature_from_der(&der).unwrap(), sig);
    assert!(plain::signature_from_der(&der[..der.len() - 1]).is_err());
}

#[test]
fn id_length_limit() {
    let sk = sm2::SecretKey::from_bytes(&[3u8; 32].into()).unwrap();
    let long = vec![b'a'; 8192];
    assert_eq!(
        plain::compute_z(&long, sk.public_key().as_affine()).unwrap_err(),
        sm2_cosign::Error::IdTooLong
    );
    assert!(plain::compute_z(&long[..8191], sk.public_key().as_affine()).is_ok());
}
