//! Sign a 1-page and a 50-page PDF (invisible, PAdES B-T with an in-process TSA), verify them.
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

use criterion::{Criterion, criterion_group, criterion_main};
use doc_sign::{
    LocalTsa, PdfSignOptions, SignerIdentity, TimestampAuthority, sign_pdf, verify_pdf,
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
