//! Input PDFs from several producers.

use super::{run, tmpdir};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

/// An N-page A4 PDF made with pdf-writer (classic xref table).
pub fn pdf_writer_doc(pages: usize) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let font = Ref::new(3);
    let page_ids: Vec<Ref> = (0..pages)
        .map(|i| Ref::new(10 + 2 * i32::try_from(i).unwrap()))
        .collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(i32::try_from(pages).unwrap());
    pdf.type1_font(font).base_font(Name(b"Helvetica"));
    for (i, id) in page_ids.iter().enumerate() {
        let content_id = Ref::new(id.get() + 1);
        let mut page = pdf.page(*id);
        page.media_box(Rect::new(0.0, 0.0, 595.0, 842.0));
        page.parent(tree);
        page.contents(content_id);
        page.resources().fonts().pair(Name(b"F1"), font);
        page.finish();
        let mut c = Content::new();
        c.begin_text();
        c.set_font(Name(b"F1"), 14.0);
        c.next_line(72.0, 770.0);
        c.show(Str(format!("Discharge summary, page {}", i + 1).as_bytes()));
        c.end_text();
        c.set_stroke_rgb(0.2, 0.2, 0.2);
        c.rect(72.0, 100.0, 451.0, 600.0);
        c.stroke();
        pdf.stream(content_id, &c.finish());
    }
    pdf.finish()
}

/// The same converted by qpdf to object streams + a cross-reference stream.
pub fn xref_stream_doc() -> Vec<u8> {
    let d = tmpdir("xrefstm");
    std::fs::write(d.join("in.pdf"), pdf_writer_doc(2)).unwrap();
    let o = run(
        &d,
        "qpdf",
        &["--object-streams=generate", "in.pdf", "out.pdf"],
    );
    assert!(o.ok, "qpdf: {}", o.text);
    let out = std::fs::read(d.join("out.pdf")).unwrap();
    assert!(
        String::from_utf8_lossy(&out).contains("/XRef"),
        "qpdf did not write an xref stream"
    );
    out
}

/// A Chinese medical record converted by LibreOffice (CJK fonts embedded from fonts-noto-cjk).
pub fn libreoffice_cjk_doc() -> Vec<u8> {
    static DOC: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let d = tmpdir("lo");
        std::fs::write(
            d.join("record.txt"),
            "出院记录\n\n患者姓名：李四    性别：男    年龄：45岁\n入院诊断：急性心肌梗死\n出院医嘱：规律服药，定期复查。\n\n医师签名：\n",
        )
        .unwrap();
        let home = d.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let o = std::process::Command::new("libreoffice")
            .args(["--headless", "--norestore", "--convert-to", "pdf", "record.txt"])
            .env("HOME", &home)
            .current_dir(&d)
            .output()
            .unwrap_or_else(|e| panic!("cannot run libreoffice (libreoffice-writer-nogui is required): {e}"));
        assert!(o.status.success(), "libreoffice: {}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(d.join("record.pdf")).expect("libreoffice wrote no PDF")
    })
    .clone()
}

/// A hand-written PDF with an AcroForm: a text field and an empty signature field "doctor"
/// (the template a hospital system would provide).
pub fn form_doc() -> Vec<u8> {
    let objs: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [5 0 R 6 0 R] /DA (/Helv 0 Tf 0 g) >> >>".into(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".into(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Annots [5 0 R 6 0 R] /Resources << /Font << /F1 7 0 R >> >> >>".into(),
        stream("BT /F1 12 Tf 72 770 Td (Consent form) Tj ET"),
        "<< /Type /Annot /Subtype /Widget /FT /Tx /T (patient) /V (Li Si) /Rect [72 700 300 720] /P 3 0 R >>".into(),
        "<< /Type /Annot /Subtype /Widget /FT /Sig /T (doctor) /Rect [350 80 520 160] /F 4 /P 3 0 R >>".into(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".into(),
    ];
    raw_pdf(&objs)
}

fn stream(s: &str) -> String {
    format!("<< /Length {} >>\nstream\n{s}\nendstream", s.len())
}

/// Objects 1..=n with a correct xref table.
pub fn raw_pdf(objs: &[String]) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offs = Vec::new();
    for (i, o) in objs.iter().enumerate() {
        offs.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let x = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f\r\n", objs.len() + 1).as_bytes());
    for o in offs {
        out.extend_from_slice(format!("{o:010} 00000 n\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{x}\n%%EOF\n",
            objs.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A PNG: a round red seal (ring, star-ish centre) on a transparent background.
pub fn seal_png() -> Vec<u8> {
    let n = 160u32;
    let mut px = vec![0u8; (n * n * 4) as usize];
    let c = f64::from(n) / 2.0;
    for y in 0..n {
        for x in 0..n {
            let dx = f64::from(x) - c + 0.5;
            let dy = f64::from(y) - c + 0.5;
            let r = (dx * dx + dy * dy).sqrt();
            let ring = (c - 10.0..c - 2.0).contains(&r);
            let centre = r < 22.0;
            let band = dy.abs() < 6.0 && r < c - 24.0;
            if ring || centre || band {
                let i = ((y * n + x) * 4) as usize;
                px[i..i + 4].copy_from_slice(&[220, 20, 30, 230]);
            }
        }
    }
    encode_png(n, n, png::ColorType::Rgba, &px)
}

/// A PNG "handwritten" stroke: a dark blue sine wave on transparency.
pub fn handwriting_png() -> Vec<u8> {
    let (w, h) = (300u32, 100u32);
    let mut px = vec![0u8; (w * h * 4) as usize];
    for x in 10..w - 10 {
        let y0 = 50.0 + 30.0 * (f64::from(x) / 25.0).sin();
        for t in -2i32..=2 {
            let y = (y0 as i32 + t).clamp(0, h as i32 - 1) as u32;
            let i = ((y * w + x) * 4) as usize;
            px[i..i + 4].copy_from_slice(&[10, 20, 120, 255]);
        }
    }
    encode_png(w, h, png::ColorType::Rgba, &px)
}

pub fn encode_png(w: u32, h: u32, ct: png::ColorType, px: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut e = png::Encoder::new(&mut out, w, h);
        e.set_color(ct);
        e.set_depth(png::BitDepth::Eight);
        let mut wr = e.write_header().unwrap();
        wr.write_image_data(px).unwrap();
    }
    out
}

/// A richer AcroForm (the kind a hospital system's consent template has): text fields
/// `patient` (filled), `diagnosis` and `remark` (empty), a hierarchical field `visit.date`, a
/// check box `consent` (`/V` and `/AS` toggle), and two empty signature fields: `doctor`, and
/// `nurse` whose own `/Lock` locks `patient` when it is signed.
pub fn rich_form_doc() -> Vec<u8> {
    let objs: Vec<String> = vec![
        // 1 catalog, 2 pages, 3 page, 4 content
        "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [5 0 R 6 0 R 7 0 R 9 0 R 10 0 R 11 0 R 12 0 R] /DA (/Helv 0 Tf 0 g) /DR << /Font << /Helv 13 0 R >> >> >> >>".into(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".into(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Annots [5 0 R 6 0 R 8 0 R 9 0 R 10 0 R 11 0 R 12 0 R] /Resources << /Font << /F1 13 0 R >> >> >>".into(),
        stream("BT /F1 12 Tf 72 770 Td (Informed consent) Tj ET"),
        // 5 patient, 6 diagnosis
        "<< /Type /Annot /Subtype /Widget /FT /Tx /T (patient) /V (Li Si) /DA (/Helv 10 Tf 0 g) /Rect [72 700 300 720] /P 3 0 R >>".into(),
        "<< /Type /Annot /Subtype /Widget /FT /Tx /T (diagnosis) /DA (/Helv 10 Tf 0 g) /Rect [72 670 300 690] /P 3 0 R >>".into(),
        // 7 visit (non-terminal), 8 visit.date
        "<< /T (visit) /Kids [8 0 R] >>".into(),
        "<< /Type /Annot /Subtype /Widget /FT /Tx /T (date) /Parent 7 0 R /DA (/Helv 10 Tf 0 g) /Rect [72 640 300 660] /P 3 0 R >>".into(),
        // 9 consent (check box), 10 remark
        "<< /Type /Annot /Subtype /Widget /FT /Btn /T (consent) /V /Off /AS /Off /Rect [72 610 86 624] /P 3 0 R /AP << /N << /Yes 14 0 R /Off 15 0 R >> >> >>".into(),
        "<< /Type /Annot /Subtype /Widget /FT /Tx /T (remark) /DA (/Helv 10 Tf 0 g) /Rect [72 580 300 600] /P 3 0 R >>".into(),
        // 11 doctor, 12 nurse (with a field lock)
        "<< /Type /Annot /Subtype /Widget /FT /Sig /T (doctor) /Rect [350 80 520 160] /F 4 /P 3 0 R >>".into(),
        "<< /Type /Annot /Subtype /Widget /FT /Sig /T (nurse) /Rect [350 180 520 260] /F 4 /P 3 0 R /Lock << /Type /SigFieldLock /Action /Include /Fields [(patient)] >> >>".into(),
        // 13 font, 14/15 check box appearances
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".into(),
        stream("0 g 2 2 10 10 re f 0 0 14 14 re S").replacen("<<", "<< /Type /XObject /Subtype /Form /BBox [0 0 14 14]", 1),
        stream("0 0 14 14 re S").replacen("<<", "<< /Type /XObject /Subtype /Form /BBox [0 0 14 14]", 1),
    ];
    raw_pdf(&objs)
}

/// A form whose check box `consent` has its widget as a kid (`/Kids` without `/T`: ticking it
/// changes the field's `/V` and the kid's `/AS`), beside a text field `patient`.
pub fn kid_widget_form_doc() -> Vec<u8> {
    let objs: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [5 0 R 6 0 R] /DA (/Helv 0 Tf 0 g) >> >>".into(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".into(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Annots [5 0 R 7 0 R] /Resources << /Font << /F1 8 0 R >> >> >>".into(),
        stream("BT /F1 12 Tf 72 770 Td (Consent) Tj ET"),
        "<< /Type /Annot /Subtype /Widget /FT /Tx /T (patient) /V (Li Si) /DA (/Helv 10 Tf 0 g) /Rect [72 700 300 720] /P 3 0 R >>".into(),
        "<< /FT /Btn /T (consent) /V /Off /Kids [7 0 R] >>".into(),
        "<< /Type /Annot /Subtype /Widget /Parent 6 0 R /AS /Off /Rect [72 610 86 624] /P 3 0 R /AP << /N << /Yes 9 0 R /Off 10 0 R >> >> >>".into(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".into(),
        stream("0 g 2 2 10 10 re f 0 0 14 14 re S").replacen("<<", "<< /Type /XObject /Subtype /Form /BBox [0 0 14 14]", 1),
        stream("0 0 14 14 re S").replacen("<<", "<< /Type /XObject /Subtype /Form /BBox [0 0 14 14]", 1),
    ];
    raw_pdf(&objs)
}
