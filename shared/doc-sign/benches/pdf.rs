//! Sign a 1-page and a 50-page PDF (invisible, PAdES B-T with an in-process TSA), verify them;
//! and the issue-7 throughput case: a 10-page PDF signed with a visible appearance (seal
//! picture, handwriting, text) and a signature time stamp, and verified (signatures and
//! verifications per second). The 10-page input and the seal picture are written to
//! `$DOC_SIGN_BENCH_DIR` (default `target/doc-sign-bench`) so `scripts/bench-doc-sign.sh` can
//! have pyHanko sign the same document in the same run (the anchor).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    missing_docs,
    dead_code
)]

#[path = "../../gm-pki/tests/it/testca.rs"]
#[allow(missing_debug_implementations)]
mod testca;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use doc_sign::{
    Appearance, Layer, LocalTsa, PdfSignOptions, Placement, Rect as BoxRect, SignatureImage,
    SignerIdentity, TextBlock, TimestampAuthority, sign_pdf, verify_pdf,
};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use std::time::{Duration, UNIX_EPOCH};

fn doc(pages: usize) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let (catalog, tree, font) = (Ref::new(1), Ref::new(2), Ref::new(3));
    let ids: Vec<Ref> = (0..pages)
        .map(|i| Ref::new(10 + 2 * i32::try_from(i).unwrap()))
        .collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(ids.iter().copied())
        .count(i32::try_from(pages).unwrap());
    pdf.type1_font(font).base_font(Name(b"Helvetica"));
    for (i, id) in ids.iter().enumerate() {
        let cid = Ref::new(id.get() + 1);
        let mut page = pdf.page(*id);
        page.media_box(Rect::new(0.0, 0.0, 595.0, 842.0))
            .parent(tree)
            .contents(cid);
        page.resources().fonts().pair(Name(b"F1"), font);
        page.finish();
        let mut c = Content::new();
        c.begin_text();
        c.set_font(Name(b"F1"), 11.0);
        for l in 0..50 {
            c.set_text_matrix([1.0, 0.0, 0.0, 1.0, 72.0, 780.0 - 14.0 * l as f32]);
            c.show(Str(format!(
                "page {} line {l}: nursing record text, vital signs, medication",
                i + 1
            )
            .as_bytes()));
        }
        c.end_text();
        pdf.stream(cid, &c.finish());
    }
    pdf.finish()
}

fn bench(c: &mut Criterion) {
    let now = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    let ca = testca::TestCa::new(now);
    let tsa = LocalTsa {
        tsa: gm_pki::tsp::Tsa {
            cert: &ca.tsa.cert,
            chain: std::slice::from_ref(&ca.int.cert),
            signer: &ca.tsa.key,
            policy: "1.2.156.112233.9.1".parse().unwrap(),
            accuracy_seconds: 1,
        },
        time: now,
        serial: vec![1],
    };
    let id = SignerIdentity {
        cert: &ca.staff.cert,
        chain: std::slice::from_ref(&ca.int.cert),
        key: &ca.staff.key,
    };
    let opts = PdfSignOptions::new(now);
    let mut g = c.benchmark_group("doc-sign");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for pages in [1usize, 50] {
        let pdf = doc(pages);
        let signed = sign_pdf(&pdf, &id, &opts, Some(&tsa as &dyn TimestampAuthority)).unwrap();
        eprintln!(
            "{pages}-page PDF: {} bytes, signed {} bytes",
            pdf.len(),
            signed.len()
        );
        g.bench_function(format!("sign_{pages}_page_bt"), |b| {
            b.iter(|| sign_pdf(&pdf, &id, &opts, Some(&tsa as &dyn TimestampAuthority)).unwrap());
        });
        g.bench_function(format!("verify_{pages}_page"), |b| {
            b.iter(|| assert!(verify_pdf(&signed).unwrap().ok()));
        });
    }
    g.finish();

    // Issue 7: 10 pages, visible, time-stamped; throughput in signatures (verifications) per
    // second.
    let dir = std::env::var_os("DOC_SIGN_BENCH_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/doc-sign-bench"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    let pdf = doc(10);
    let seal = seal_png();
    std::fs::write(dir.join("ten-pages.pdf"), &pdf).unwrap();
    std::fs::write(dir.join("seal.png"), &seal).unwrap();
    // The seal as a one-page PDF, for pyHanko's stamp background (its PNG support needs Pillow).
    let seal_pdf = doc_sign::pdf::image::image_pdf(
        &doc_sign::pdf::image::PageImage::from_png(&seal).unwrap(),
        72.0,
        72.0,
    )
    .unwrap();
    std::fs::write(dir.join("seal.pdf"), &seal_pdf).unwrap();
    let mut visible = PdfSignOptions::new(now);
    visible.reason = Some("出院记录审核".into());
    visible.placement = Placement::Visible(Appearance {
        page: 10,
        rect: BoxRect {
            x: 330.0,
            y: 60.0,
            width: 200.0,
            height: 110.0,
        },
        layers: vec![
            Layer::Seal(SignatureImage::from_png(&seal).unwrap()),
            Layer::Text(TextBlock::signer_time_serial(&ca.staff.cert, now)),
        ],
    });
    let signed = sign_pdf(&pdf, &id, &visible, Some(&tsa as &dyn TimestampAuthority)).unwrap();
    assert!(verify_pdf(&signed).unwrap().ok());
    std::fs::write(dir.join("ten-pages-signed.pdf"), &signed).unwrap();
    eprintln!(
        "10-page PDF: {} bytes, signed (visible, B-T) {} bytes; written to {}",
        pdf.len(),
        signed.len(),
        dir.display()
    );
    let mut g = c.benchmark_group("doc-sign-throughput");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(1));
    g.bench_function("sign_10_page_visible_bt", |b| {
        b.iter(|| sign_pdf(&pdf, &id, &visible, Some(&tsa as &dyn TimestampAuthority)).unwrap());
    });
    g.bench_function("verify_10_page_visible_bt", |b| {
        b.iter(|| assert!(verify_pdf(&signed).unwrap().ok()));
    });
    g.finish();
}

/// A 160 × 160 round red seal on transparency (as in the tests' fixtures).
fn seal_png() -> Vec<u8> {
    let n = 160u32;
    let mut px = vec![0u8; (n * n * 4) as usize];
    let c = f64::from(n) / 2.0;
    for y in 0..n {
        for x in 0..n {
            let dx = f64::from(x) - c + 0.5;
            let dy = f64::from(y) - c + 0.5;
            let r = (dx * dx + dy * dy).sqrt();
            if (c - 10.0..c - 2.0).contains(&r) || r < 22.0 || (dy.abs() < 6.0 && r < c - 24.0) {
                let i = ((y * n + x) * 4) as usize;
                px[i..i + 4].copy_from_slice(&[220, 20, 30, 230]);
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut e = png::Encoder::new(&mut out, n, n);
        e.set_color(png::ColorType::Rgba);
        e.set_depth(png::BitDepth::Eight);
        e.write_header().unwrap().write_image_data(&px).unwrap();
    }
    out
}

criterion_group!(benches, bench);
criterion_main!(benches);
