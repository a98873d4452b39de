//! Hostile bytes on the parser entry points: typed errors or reports, never a panic.

use super::sign::sign_invisible;
use super::{fixtures, now, staff};
use doc_sign::{PdfSignOptions, SignatureImage, sign_pdf, verify_pdf};
use proptest::prelude::*;
use std::sync::OnceLock;

fn signed() -> &'static [u8] {
    static S: OnceLock<Vec<u8>> = OnceLock::new();
    S.get_or_init(|| sign_invisible(&fixtures::pdf_writer_doc(1)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = verify_pdf(&data);
        let _ = doc_sign::prepare(&data, &PdfSignOptions::new(now()));
        let _ = SignatureImage::from_png(&data);
        let _ = doc_sign::find_keyword(&data, "医师签名：");
        let mut with_header = b"%PDF-1.7\n".to_vec();
        with_header.extend_from_slice(&data);
        let _ = verify_pdf(&with_header);
        let _ = doc_sign::find_keyword(&with_header, "签名");
    }

    #[test]
    fn truncated_signed(cut in 0usize..4000) {
        let s = signed();
        let t = &s[..s.len().saturating_sub(cut)];
        let _ = verify_pdf(t);
        let _ = doc_sign::prepare(t, &PdfSignOptions::new(now()));
        let _ = doc_sign::find_keyword(t, "page");
    }

    #[test]
    fn flipped_signed(pos in 0usize..100_000, bit in 0u8..8) {
        let s = signed();
        let mut t = s.to_vec();
        let p = pos % t.len();
        t[p] ^= 1 << bit;
        if let Ok(rep) = verify_pdf(&t) {
            // Outside /Contents every byte is signed: a flip must be detected. Inside it, the
            // CA certificates of the CMS are unsigned data (path validation judges them), so
            // only "no panic" is required there.
            let in_contents = rep.signatures.first().is_some_and(|sig| {
                let r = &sig.byte_range;
                r.len() == 4 && (p as i64) >= r[1] && (p as i64) < r[2]
            });
            prop_assert!(!rep.ok() || in_contents, "flip at {} bit {} not detected", p, bit);
        }
    }

    #[test]
    fn png_bytes_flipped(pos in 0usize..10_000, bit in 0u8..8) {
        let mut p = fixtures::seal_png();
        let i = pos % p.len();
        p[i] ^= 1 << bit;
        let _ = SignatureImage::from_png(&p);
    }
}

#[test]
fn sign_of_signed_with_random_tail_does_not_panic() {
    let mut s = signed().to_vec();
    s.extend_from_slice(
        b"\n1 0 obj\n<< /Type /Catalog /Pages 99 0 R >>\nendobj\nstartxref\n12\n%%EOF\n",
    );
    let _ = sign_pdf(&s, &staff(), &PdfSignOptions::new(now()), None);
    let _ = verify_pdf(&s);
}
