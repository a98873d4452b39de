//! Tampering and broken input: every change is reported, nothing panics.

use super::sign::sign_invisible;
use super::{fixtures, now, staff};
use doc_sign::pdf::verify::LaterChanges;
use doc_sign::{PdfSignOptions, sign_pdf, verify_pdf};

fn signed() -> Vec<u8> {
    sign_invisible(&fixtures::pdf_writer_doc(1))
}

#[test]
fn a_byte_changed_in_the_signed_range_is_reported() {
    let s = signed();
    let rep = verify_pdf(&s).unwrap();
    let [_, b, c, _] = <[i64; 4]>::try_from(rep.signatures[0].byte_range.clone()).unwrap();
    // Positions across the file: the header, page content, the signature dictionary after
    // /Contents, the trailer. Change a digit/letter to another so the PDF still parses.
    for pos in [20usize, 300, usize::try_from(c).unwrap() + 5, s.len() - 30] {
        let mut t = s.clone();
        t[pos] = if t[pos] == b'A' {
            b'B'
        } else if t[pos].is_ascii_digit() {
            b'0' + (t[pos] - b'0' + 1) % 10
        } else {
            b'A'
        };
        match verify_pdf(&t) {
            Ok(rep) => {
                let sig = rep.signatures.first();
                assert!(
                    sig.is_none_or(|s| !s.ok()),
                    "change at {pos} (b={b}) not reported: {sig:#?}"
                );
            }
            Err(_) => {} // the change broke the PDF itself: a typed error is a report too
        }
    }
}

#[test]
fn contents_tampered_is_reported() {
    // The CMS carries the signer certificate (bound by signingCertificateV2), the signed
    // attributes and the signature value: a change in any of them is reported. (Extra CA
    // certificates in the CMS are unsigned data; they are judged by path validation.)
    let s = signed();
    let rep = verify_pdf(&s).unwrap();
    let b = usize::try_from(rep.signatures[0].byte_range[1]).unwrap();
    let c = usize::try_from(rep.signatures[0].byte_range[2]).unwrap();
    let find = |needle: &[u8]| {
        s[b..c]
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
            + b
    };
    let cert = hex::encode_upper(super::ca().staff.cert.der());
    let cert_at = find(cert.as_bytes());
    let contents = hex::decode(&s[b + 1..c - 1]).unwrap();
    let n = 4 + usize::from(u16::from_be_bytes([contents[2], contents[3]]));
    let sv = hex::encode_upper(gm_pki::cms::signature_value(&contents[..n]).unwrap());
    let targets = vec![
        cert_at + 300,
        cert_at + cert.len() / 2,
        find(sv.as_bytes()) + 8,
        c - 10,
    ];
    for p in targets {
        let mut t = s.clone();
        t[p] = if t[p] == b'0' { b'1' } else { b'0' };
        let rep = verify_pdf(&t).unwrap();
        assert!(
            !rep.signatures[0].ok(),
            "offset {p}: {:#?}",
            rep.signatures[0]
        );
    }
}

#[test]
fn byte_range_lies_are_reported() {
    let s = signed();
    let text = s.clone();
    let at = text.windows(11).rposition(|w| w == b"/ByteRange ").unwrap() + 11;
    // Our placeholder is 36 bytes; the numbers are padded with spaces to that width.
    let end = at + 36;
    let orig = String::from_utf8_lossy(&text[at..end]).trim().to_owned();
    let nums: Vec<i64> = orig
        .trim_matches(|c| c == '[' || c == ']')
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let lies = [
        format!("[0 {} {} {}]", nums[1] - 2, nums[2], nums[3]), // gap smaller than Contents
        format!("[0 {} {} {}]", nums[1], nums[2], nums[3] - 100), // does not reach the end
        format!("[10 {} {} {}]", nums[1] - 10, nums[2], nums[3]), // does not start at 0
        format!("[0 {} {} {}]", nums[1], nums[2], nums[3] + 100), // past the end
    ];
    for lie in lies {
        let mut t = s.clone();
        let mut rep_bytes = lie.clone().into_bytes();
        assert!(rep_bytes.len() <= end - at);
        rep_bytes.resize(end - at, b' ');
        t[at..end].copy_from_slice(&rep_bytes);
        let rep = verify_pdf(&t).unwrap();
        let sig = &rep.signatures[0];
        assert!(!sig.ok() || !sig.covers_whole_file, "{lie}: {sig:#?}");
        assert!(!sig.ok(), "{lie}: {sig:#?}");
    }
}

#[test]
fn truncated_file_is_reported() {
    let s = signed();
    for cut in [1usize, 10, 100, s.len() / 2, s.len() - 200] {
        let t = &s[..s.len() - cut];
        match verify_pdf(t) {
            Ok(rep) => assert!(!rep.ok(), "cut {cut}: {rep:#?}"),
            Err(e) => assert!(
                matches!(e, doc_sign::Error::MalformedPdf(_)),
                "cut {cut}: {e}"
            ),
        }
    }
}

/// Append an incremental update that replaces page 1's content stream.
fn append_content_change(pdf: &[u8]) -> Vec<u8> {
    let doc = lopdf::Document::load_mem(pdf).unwrap();
    let page = *doc.get_pages().get(&1).unwrap();
    let content_id = doc.get_page_contents(page)[0];
    let prev = {
        let t = String::from_utf8_lossy(pdf);
        let i = t.rfind("startxref").unwrap();
        t[i + 9..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    let size = doc.trailer.get(b"Size").unwrap().as_i64().unwrap();
    let root = doc.trailer.get(b"Root").unwrap().as_reference().unwrap();
    let mut out = pdf.to_vec();
    let off = out.len();
    let body = "BT /F1 14 Tf 72 770 Td (Dose: 500 mg instead of 5 mg) Tj ET";
    out.extend_from_slice(
        format!(
            "{} 0 obj\n<< /Length {} >>\nstream\n{body}\nendstream\nendobj\n",
            content_id.0,
            body.len()
        )
        .as_bytes(),
    );
    let x = out.len();
    out.extend_from_slice(
        format!(
            "xref\n{} 1\n{off:010} 00000 n\r\ntrailer\n<< /Size {size} /Root {} 0 R /Prev {prev} >>\nstartxref\n{x}\n%%EOF\n",
            content_id.0, root.0
        )
        .as_bytes(),
    );
    out
}

#[test]
fn later_update_changing_page_content_is_reported() {
    let s = signed();
    let changed = append_content_change(&s);
    // The attack is a valid PDF: qpdf accepts it.
    let d = super::tmpdir("chg");
    std::fs::write(d.join("c.pdf"), &changed).unwrap();
    super::qpdf_check(&d, "c.pdf");
    let rep = verify_pdf(&changed).unwrap();
    let sig = &rep.signatures[0];
    assert!(
        sig.digest_ok && sig.signature_ok,
        "the signed revision itself is intact"
    );
    assert!(!sig.covers_whole_file);
    assert_eq!(sig.later_changes, LaterChanges::Disallowed, "{sig:#?}");
    assert!(!sig.ok());
    assert!(
        sig.change_notes.iter().any(|n| n.contains("changed")),
        "{:?}",
        sig.change_notes
    );
}

#[test]
fn garbage_is_a_typed_error() {
    for input in [
        &b""[..],
        b"%PDF-1.7\n",
        b"hello",
        b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\nstartxref\n999999\n%%EOF",
    ] {
        assert!(verify_pdf(input).is_err());
        assert!(sign_pdf(input, &staff(), &PdfSignOptions::new(now()), None).is_err());
    }
}

/// Append an update adding a /Text annotation (a comment) to page 1.
fn append_comment(pdf: &[u8]) -> Vec<u8> {
    let doc = lopdf::Document::load_mem(pdf).unwrap();
    let page = *doc.get_pages().get(&1).unwrap();
    let mut page_dict = doc.get_object(page).unwrap().as_dict().unwrap().clone();
    let size = u32::try_from(doc.trailer.get(b"Size").unwrap().as_i64().unwrap())
        .unwrap()
        .max(doc.max_id + 1);
    let root = doc.trailer.get(b"Root").unwrap().as_reference().unwrap();
    let prev = {
        let t = String::from_utf8_lossy(pdf);
        let i = t.rfind("startxref").unwrap();
        t[i + 9..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    let mut annots = match page_dict.get(b"Annots") {
        Ok(lopdf::Object::Array(a)) => a.clone(),
        _ => vec![],
    };
    annots.push(lopdf::Object::Reference((size, 0)));
    page_dict.set("Annots", lopdf::Object::Array(annots));
    // Serialise the changed page by hand (only the object kinds a page holds).
    let mut body = String::from("<<");
    for (k, v) in &page_dict {
        body.push('/');
        body.push_str(&String::from_utf8_lossy(k));
        body.push(' ');
        body.push_str(&obj_text(v));
    }
    body.push_str(">>");
    let mut out = pdf.to_vec();
    let off_annot = out.len();
    out.extend_from_slice(format!("{size} 0 obj\n<< /Type /Annot /Subtype /Text /Rect [100 100 120 120] /Contents (ok) >>\nendobj\n").as_bytes());
    let off_page = out.len();
    out.extend_from_slice(format!("{} {} obj\n{body}\nendobj\n", page.0, page.1).as_bytes());
    let x = out.len();
    out.extend_from_slice(
        format!(
            "xref\n{} 1\n{off_page:010} 00000 n\r\n{size} 1\n{off_annot:010} 00000 n\r\ntrailer\n<< /Size {} /Root {} 0 R /Prev {prev} >>\nstartxref\n{x}\n%%EOF\n",
            page.0,
            size + 1,
            root.0
        )
        .as_bytes(),
    );
    out
}

fn obj_text(o: &lopdf::Object) -> String {
    match o {
        lopdf::Object::Reference((n, g)) => format!("{n} {g} R"),
        lopdf::Object::Integer(i) => i.to_string(),
        lopdf::Object::Real(r) => r.to_string(),
        lopdf::Object::Name(n) => format!("/{}", String::from_utf8_lossy(n)),
        lopdf::Object::Array(a) => {
            format!("[{}]", a.iter().map(obj_text).collect::<Vec<_>>().join(" "))
        }
        lopdf::Object::Dictionary(d) => format!(
            "<<{}>>",
            d.iter()
                .map(|(k, v)| format!("/{} {}", String::from_utf8_lossy(k), obj_text(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn comment_added_later_is_reported_as_annotation() {
    let s = signed();
    let c = append_comment(&s);
    let d = super::tmpdir("comment");
    std::fs::write(d.join("c.pdf"), &c).unwrap();
    super::qpdf_check(&d, "c.pdf");
    let rep = verify_pdf(&c).unwrap();
    let sig = &rep.signatures[0];
    assert_eq!(
        sig.later_changes,
        LaterChanges::AnnotationsAdded,
        "{sig:#?}"
    );
    assert!(sig.ok(), "no certification: a comment is allowed");

    // After a DocMDP P=2 certification the same comment is a problem.
    let mut o = PdfSignOptions::new(now());
    o.certify = Some(doc_sign::DocMdp::FormFillAndSign);
    let certified = sign_pdf(&fixtures::pdf_writer_doc(1), &staff(), &o, None).unwrap();
    let rep = verify_pdf(&append_comment(&certified)).unwrap();
    assert!(!rep.signatures[0].ok(), "{:#?}", rep.signatures[0]);
}

#[test]
fn tsa_refusal_is_a_typed_error() {
    let mut t = super::tsa();
    t.time = now() + std::time::Duration::from_secs(20 * 365 * 86_400); // after the TSA certificate
    let e = sign_pdf(
        &fixtures::pdf_writer_doc(1),
        &staff(),
        &PdfSignOptions::new(now()),
        Some(&t as &dyn doc_sign::TimestampAuthority),
    )
    .unwrap_err();
    assert!(matches!(e, doc_sign::Error::Timestamp(_)), "{e}");
}

#[test]
fn pdf_with_earlier_incremental_update_signs_cleanly() {
    // An unsigned PDF that already has an incremental update (here: a DSS-only update).
    let ca = super::ca();
    let pdf = doc_sign::add_dss(
        &fixtures::pdf_writer_doc(2),
        &doc_sign::LtvMaterial {
            certs: vec![ca.root.cert.der().to_vec()],
            ..Default::default()
        },
    )
    .unwrap();
    let signed = super::sign::sign_invisible(&pdf);
    let d = super::tmpdir("inc");
    std::fs::write(d.join("s.pdf"), &signed).unwrap();
    super::qpdf_check(&d, "s.pdf");
    super::check_pdf_py(&d, "s.pdf", 1);
    assert!(verify_pdf(&signed).unwrap().ok());
}
