//! GB/T 38540 seals: make → decode → verify round trips (proptest), tampering, garbage input,
//! and an independent reading of our DER by Python asn1crypto with the SM2 signatures checked
//! by `openssl pkeyutl` (tests/py/check_seal.py).

use crate::testca::TestCa;
use gm_pki::seal::{
    CertList, ExtData, Seal, SealInfo, SealPicture, SealSignParams, SealSignature, add_time_stamp,
    make_seal, sign_with_seal,
};
use gm_pki::signer::sm3;
use proptest::prelude::*;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| TestCa::new(UNIX_EPOCH + Duration::from_secs(1_790_000_000)))
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn info(cert_list: CertList) -> SealInfo {
    SealInfo {
        vid: "yiqian".into(),
        es_id: "11010500000001".into(),
        seal_type: 1,
        name: "示例医院 电子签章".into(),
        cert_list,
        created: at(1_790_000_000),
        valid_start: at(1_790_000_000),
        valid_end: at(1_790_000_000 + 5 * 365 * 86_400),
        picture: SealPicture {
            kind: "png".into(),
            data: vec![0x89, b'P', b'N', b'G', 1, 2, 3],
            width_mm: 40,
            height_mm: 40,
        },
        ext_datas: vec![],
    }
}

/// The staff certificate holds the seal; the issuing CA is the seal authority.
fn seal_and_signature() -> (Vec<u8>, Vec<u8>) {
    let ca = ca();
    let seal = make_seal(
        &info(CertList::Certs(vec![ca.staff.cert.der().to_vec()])),
        &ca.int.cert,
        &ca.int.key,
    )
    .unwrap();
    let sig = sign_with_seal(
        &SealSignParams {
            seal: &seal,
            time: at(1_790_000_100),
            data_hash: &sm3(b"document bytes"),
            property_info: "document:42;version:2",
        },
        &ca.staff.cert,
        &ca.staff.key,
    )
    .unwrap();
    (seal, sig)
}

#[test]
fn seal_and_seal_signature_round_trip_and_verify() {
    let ca = ca();
    let (seal_der, sig_der) = seal_and_signature();
    let seal = Seal::from_der(&seal_der).unwrap();
    assert_eq!(seal.der(), seal_der.as_slice());
    assert_eq!(seal.info.name, "示例医院 电子签章");
    let maker = seal.verify(at(1_790_000_100)).unwrap();
    assert_eq!(maker.der(), ca.int.cert.der());
    assert!(seal.verify(at(1_700_000_000)).is_err(), "before validity");

    let sig = SealSignature::from_der(&sig_der).unwrap();
    assert_eq!(sig.property_info, "document:42;version:2");
    let signer = sig.verify(&sm3(b"document bytes")).unwrap();
    assert_eq!(signer.der(), ca.staff.cert.der());
    assert!(sig.verify(&sm3(b"other bytes")).is_err(), "other document");

    // A time stamp is carried as [0] EXPLICIT BIT STRING and read back.
    let with_ts = add_time_stamp(&sig_der, b"\x30\x03\x02\x01\x01").unwrap();
    let back = SealSignature::from_der(&with_ts).unwrap();
    assert_eq!(
        back.time_stamp.as_deref(),
        Some(&b"\x30\x03\x02\x01\x01"[..])
    );
    back.verify(&sm3(b"document bytes")).unwrap();
}

#[test]
fn only_listed_signers_may_use_a_seal() {
    let ca = ca();
    let seal = make_seal(
        &info(CertList::Digests(vec![(
            "sm3".into(),
            sm3(ca.tsa.cert.der()).to_vec(),
        )])),
        &ca.int.cert,
        &ca.int.key,
    )
    .unwrap();
    let params = SealSignParams {
        seal: &seal,
        time: at(1_790_000_100),
        data_hash: &[7; 32],
        property_info: "x",
    };
    assert!(sign_with_seal(&params, &ca.staff.cert, &ca.staff.key).is_err());
    let ok = sign_with_seal(&params, &ca.tsa.cert, &ca.tsa.key).unwrap();
    SealSignature::from_der(&ok)
        .unwrap()
        .verify(&[7; 32])
        .unwrap();
    // The maker key must match the maker certificate.
    assert!(make_seal(&info(CertList::Certs(vec![])), &ca.int.cert, &ca.staff.key).is_err());
}

#[test]
fn every_byte_flip_is_refused_or_detected() {
    let (seal_der, sig_der) = seal_and_signature();
    let hash = sm3(b"document bytes");
    for i in 0..sig_der.len() {
        let mut b = sig_der.clone();
        b[i] ^= 0x01;
        if let Ok(s) = SealSignature::from_der(&b) {
            assert!(s.verify(&hash).is_err(), "flip at {i} went unnoticed");
        }
    }
    for i in 0..seal_der.len() {
        let mut b = seal_der.clone();
        b[i] ^= 0x80;
        if let Ok(s) = Seal::from_der(&b) {
            // The maker certificate is not under signedValue (it is checked by path
            // validation): a flip there that keeps its key must show as a different certificate.
            if let Ok(maker) = s.verify(at(1_790_000_100)) {
                assert_ne!(maker.der(), ca().int.cert.der(), "seal flip at {i}");
            }
        }
    }
}

#[test]
fn asn1crypto_and_openssl_read_our_seal() {
    let ca = ca();
    let (seal_der, sig_der) = seal_and_signature();
    let d = crate::tmpdir("seal");
    std::fs::write(d.join("seal.der"), &seal_der).unwrap();
    std::fs::write(d.join("sig.der"), &sig_der).unwrap();
    std::fs::write(
        d.join("maker.pub.pem"),
        gm_pki::signer::public_key_pem(&gm_pki::Sm2Signer::public_key(&ca.int.key)).unwrap(),
    )
    .unwrap();
    std::fs::write(
        d.join("signer.pub.pem"),
        gm_pki::signer::public_key_pem(&gm_pki::Sm2Signer::public_key(&ca.staff.key)).unwrap(),
    )
    .unwrap();
    let out = crate::py(
        &d,
        "check_seal.py",
        &[
            "seal.der",
            "sig.der",
            "maker.pub.pem",
            "signer.pub.pem",
            &hex::encode(sm3(b"document bytes")),
        ],
    );
    assert!(out.contains("\"ok\": true"), "{out}");
    assert!(out.contains("示例医院 电子签章"), "{out}");
}

fn printable() -> impl Strategy<Value = String> {
    "[A-Za-z0-9 ]{1,8}"
}

fn cert_list() -> impl Strategy<Value = CertList> {
    prop_oneof![
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..3)
            .prop_map(CertList::Certs),
        prop::collection::vec(
            (printable(), prop::collection::vec(any::<u8>(), 0..33)),
            0..3
        )
        .prop_map(CertList::Digests),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn seal_info_round_trips(
        name in "\\PC{0,16}",
        es_id in "[ -~]{0,16}",
        vid in "[a-z0-9]{0,8}",
        seal_type in 1u32..4,
        list in cert_list(),
        pic in prop::collection::vec(any::<u8>(), 0..64),
        w in 1u32..200,
        h in 1u32..200,
        start in 1_600_000_000u64..1_900_000_000,
        len in 1u64..400_000_000,
        ext in prop::collection::vec((any::<bool>(), prop::collection::vec(any::<u8>(), 0..8)), 0..3),
    ) {
        let ca = ca();
        let i = SealInfo {
            vid,
            es_id,
            seal_type,
            name,
            cert_list: list,
            created: at(start),
            valid_start: at(start),
            valid_end: at(start + len),
            picture: SealPicture { kind: "png".into(), data: pic, width_mm: w, height_mm: h },
            ext_datas: ext
                .into_iter()
                .enumerate()
                .map(|(k, (critical, v))| ExtData {
                    id: format!("1.2.156.112233.9.{k}").parse().unwrap(),
                    critical,
                    value: der::asn1::OctetString::new(v).unwrap(),
                })
                .collect(),
        };
        let der = make_seal(&i, &ca.int.cert, &ca.int.key).unwrap();
        let back = Seal::from_der(&der).unwrap();
        prop_assert_eq!(&back.info, &i);
        prop_assert_eq!(back.der(), der.as_slice());
        back.verify(at(start)).unwrap();
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Seal::from_der(&bytes);
        let _ = SealSignature::from_der(&bytes);
        let len = u16::try_from(bytes.len()).unwrap().to_be_bytes();
        let mut seq = vec![0x30, 0x82, len[0], len[1]];
        seq.extend_from_slice(&bytes);
        let _ = Seal::from_der(&seq);
        let _ = SealSignature::from_der(&seq);
    }

    #[test]
    fn truncations_are_refused(cut in 0usize..2000) {
        let (seal, sig) = seal_and_signature();
        if cut < seal.len() {
            prop_assert!(Seal::from_der(&seal[..cut]).is_err());
        }
        if cut < sig.len() {
            prop_assert!(SealSignature::from_der(&sig[..cut]).is_err());
        }
    }
}
