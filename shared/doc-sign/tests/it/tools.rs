//! Outputs checked by tools we did not write: qpdf, poppler (pdfinfo, pdftoppm), pyHanko +
//! asn1crypto + OpenSSL.

use super::sign::{sign_invisible, visible_opts};
use super::{check_pdf_py, fixtures, qpdf_check, run, staff, tmpdir, tsa};
use doc_sign::{TimestampAuthority, sign_pdf};

fn all_tools(tag: &str, pdf: &[u8], signatures: usize) -> std::path::PathBuf {
    let d = tmpdir(tag);
    std::fs::write(d.join("s.pdf"), pdf).unwrap();
    qpdf_check(&d, "s.pdf");
    let info = run(&d, "pdfinfo", &["s.pdf"]);
    assert!(
        info.ok && info.text.contains("Pages:"),
        "pdfinfo: {}",
        info.text
    );
    let json = check_pdf_py(&d, "s.pdf", signatures);
    assert!(json.has("\"ok\": true"), "{}", json.0);
    assert!(json.has("ETSI.CAdES.detached"), "{}", json.0);
    d
}

#[test]
fn invisible_xref_table_passes_qpdf_poppler_pyhanko() {
    let d = all_tools("t-inv", &sign_invisible(&fixtures::pdf_writer_doc(3)), 1);
    let json = check_pdf_py(&d, "s.pdf", 1);
    assert!(json.has("ENTIRE_FILE"), "{}", json.0);
    assert!(
        json.has("1.2.840.113549.1.9.16.2.14"),
        "signature time stamp attribute present: {}",
        json.0
    );
}

#[test]
fn xref_stream_passes_qpdf_pyhanko() {
    all_tools("t-xs", &sign_invisible(&fixtures::xref_stream_doc()), 1);
}

#[test]
fn three_signatures_on_a_form_pass_pyhanko_and_render() {
    let first = sign_invisible(&fixtures::form_doc());
    let second = sign_pdf(
        &first,
        &staff(),
        &visible_opts(),
        Some(&tsa() as &dyn TimestampAuthority),
    )
    .unwrap();
    let third = sign_invisible(&second);
    let d = all_tools("t-three", &third, 3);
    let json = check_pdf_py(&d, "s.pdf", 3);
    assert!(
        json.has("ENTIRE_REVISION") && json.has("ENTIRE_FILE"),
        "{}",
        json.0
    );
    let o = run(&d, "pdftoppm", &["-png", "-r", "60", "s.pdf", "page"]);
    assert!(o.ok, "{}", o.text);
}

#[test]
fn visible_cjk_libreoffice_renders() {
    let pdf = fixtures::libreoffice_cjk_doc();
    let signed = sign_pdf(
        &pdf,
        &staff(),
        &visible_opts(),
        Some(&tsa() as &dyn TimestampAuthority),
    )
    .unwrap();
    let d = all_tools("t-lo", &signed, 1);
    let o = run(
        &d,
        "pdftoppm",
        &["-png", "-r", "72", "-f", "1", "-l", "1", "s.pdf", "page"],
    );
    assert!(o.ok, "{}", o.text);
    let png = std::fs::read(d.join("page-1.png")).unwrap();
    // The box (330..530 x 90..200 pt from the bottom of an A4 page, 842 pt high) must contain red
    // seal pixels; the area left of it must not.
    let img = doc_sign::SignatureImage::from_png(&png).unwrap();
    let (w, h) = img.size();
    let red = red_pixels(&png, w, h, (330, 842 - 200, 530, 842 - 90));
    assert!(red > 200, "seal not drawn in its box ({red} red pixels)");
    let outside = red_pixels(&png, w, h, (20, 842 - 200, 300, 842 - 90));
    assert_eq!(outside, 0, "red outside the box");
    std::fs::copy(
        d.join("page-1.png"),
        std::env::temp_dir().join("doc-sign-visible-page-1.png"),
    )
    .unwrap();
}

/// Count strongly red pixels in a box (pixel coordinates at 72 dpi = points).
fn red_pixels(png_bytes: &[u8], w: u32, _h: u32, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> usize {
    let mut dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let f = r.next_frame(&mut buf).unwrap();
    let ch = match f.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected {other:?}"),
    };
    let mut n = 0;
    for y in y0..y1 {
        for x in x0..x1 {
            let i = ((y * w + x) as usize) * ch;
            let (r, g, b) = (buf[i], buf[i + 1], buf[i + 2]);
            if r > 180 && g < 90 && b < 90 {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn keyword_placement_beside_yishi_qianming() {
    let pdf = fixtures::libreoffice_cjk_doc();
    let hits = doc_sign::find_keyword(&pdf, "医师签名：").unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    let k = hits[0].rect;
    assert_eq!(hits[0].page, 1);
    // LibreOffice puts the 6th line about 145 pt below the top of A4, left margin ~57 pt.
    assert!(
        (40.0..80.0).contains(&k.x) && (660.0..720.0).contains(&k.y),
        "{k:?}"
    );
    let mut o = super::sign::visible_opts();
    let layers = match &o.placement {
        doc_sign::Placement::Visible(a) => a.layers.clone(),
        _ => unreachable!(),
    };
    o.placement = doc_sign::Placement::Keyword {
        keyword: "医师签名：".into(),
        page: None,
        dx: 4.0,
        dy: -60.0,
        width: 160.0,
        height: 70.0,
        layers: layers.clone(),
    };
    let signed = sign_pdf(&pdf, &staff(), &o, Some(&tsa() as &dyn TimestampAuthority)).unwrap();
    assert!(doc_sign::verify_pdf(&signed).unwrap().ok());
    let d = all_tools("t-kw", &signed, 1);
    let r = run(
        &d,
        "pdftoppm",
        &["-png", "-r", "72", "-f", "1", "-l", "1", "s.pdf", "page"],
    );
    assert!(r.ok, "{}", r.text);
    let png = std::fs::read(d.join("page-1.png")).unwrap();
    let (w, h) = doc_sign::SignatureImage::from_png(&png).unwrap().size();
    // Red seal to the right of the keyword, none over the keyword itself.
    let top = 842 - (k.y + k.height) as u32;
    let bottom = 842 - k.y as u32;
    let right = red_pixels(
        &png,
        w,
        h,
        (
            (k.x + k.width) as u32,
            top.saturating_sub(40),
            (k.x + k.width + 170.0) as u32,
            bottom + 45,
        ),
    );
    assert!(right > 100, "no seal beside the keyword ({right})");
    let over = red_pixels(
        &png,
        w,
        h,
        (k.x as u32, top, (k.x + k.width) as u32, bottom),
    );
    assert_eq!(over, 0, "the keyword is covered");
    std::fs::copy(
        d.join("page-1.png"),
        std::env::temp_dir().join("doc-sign-keyword-page-1.png"),
    )
    .unwrap();
    // Negative offsets that would cover the keyword are refused.
    o.placement = doc_sign::Placement::Keyword {
        keyword: "医师签名：".into(),
        page: None,
        dx: -30.0,
        dy: -10.0,
        width: 100.0,
        height: 40.0,
        layers,
    };
    assert!(matches!(
        sign_pdf(&pdf, &staff(), &o, None),
        Err(doc_sign::Error::InvalidArgument(_))
    ));
}
