//! Signing PDFs of several producers and verifying them with our own verifier.

use super::{fixtures, now, staff, tsa};
use doc_sign::pdf::verify::LaterChanges;
use doc_sign::{
    Appearance, DocMdp, Layer, PdfSignOptions, Placement, Rect, SignatureImage, SubFilter,
    TextBlock, TimestampAuthority, sign_pdf, verify_pdf,
};

pub fn sign_invisible(pdf: &[u8]) -> Vec<u8> {
    let t = tsa();
    sign_pdf(
        pdf,
        &staff(),
        &PdfSignOptions::new(now()),
        Some(&t as &dyn TimestampAuthority),
    )
    .unwrap()
}

pub fn visible_opts() -> PdfSignOptions {
    let ca = super::ca();
    let mut o = PdfSignOptions::new(now());
    o.reason = Some("出院记录审核".into());
    o.placement = Placement::Visible(Appearance {
        page: 1,
        rect: Rect {
            x: 330.0,
            y: 90.0,
            width: 200.0,
            height: 110.0,
        },
        layers: vec![
            Layer::Seal(SignatureImage::from_png(&fixtures::seal_png()).unwrap()),
            Layer::Handwriting(SignatureImage::from_png(&fixtures::handwriting_png()).unwrap()),
            Layer::Text(TextBlock::signer_time_serial(&ca.staff.cert, now())),
        ],
    });
    o
}

fn assert_all_ok(pdf: &[u8], n: usize) {
    let rep = verify_pdf(pdf).unwrap();
    assert_eq!(rep.signatures.len(), n, "{rep:#?}");
    for s in &rep.signatures {
        assert!(s.ok(), "{s:#?}");
        assert!(s.byte_range_ok && s.digest_ok && s.signature_ok);
        let ts = s.timestamp.as_ref().expect("B-T: time stamp present");
        assert!(ts.valid, "{ts:?}");
        assert_eq!(ts.time, Some(now() + std::time::Duration::from_secs(2)));
        assert!(
            s.signer_cert
                .as_ref()
                .unwrap()
                .subject_string()
                .contains("张三")
        );
    }
    assert!(rep.signatures.last().unwrap().covers_whole_file);
}

#[test]
fn invisible_signature_on_pdf_writer_doc() {
    let pdf = fixtures::pdf_writer_doc(1);
    let signed = sign_invisible(&pdf);
    assert!(
        signed.starts_with(&pdf),
        "incremental: original bytes untouched"
    );
    assert_all_ok(&signed, 1);
    let rep = verify_pdf(&signed).unwrap();
    let s = &rep.signatures[0];
    assert_eq!(s.sub_filter, "ETSI.CAdES.detached");
    assert_eq!(s.later_changes, LaterChanges::None);
    assert_eq!(s.signing_time, None, "PAdES: no signingTime attribute");
    assert_eq!(s.claimed_time.as_deref(), Some("D:20260921141320+00'00'"));
}

#[test]
fn adbe_pkcs7_detached_option() {
    let mut o = PdfSignOptions::new(now());
    o.sub_filter = SubFilter::AdbePkcs7Detached;
    let signed = sign_pdf(&fixtures::pdf_writer_doc(1), &staff(), &o, None).unwrap();
    let rep = verify_pdf(&signed).unwrap();
    let s = &rep.signatures[0];
    assert!(s.ok(), "{s:#?}");
    assert_eq!(s.sub_filter, "adbe.pkcs7.detached");
    assert_eq!(s.signing_time, Some(now()));
    assert!(s.timestamp.is_none(), "B-B without a TSA");
}

#[test]
fn xref_stream_original_gets_xref_stream_update() {
    let pdf = fixtures::xref_stream_doc();
    let signed = sign_invisible(&pdf);
    let tail = String::from_utf8_lossy(&signed[pdf.len()..]).into_owned();
    assert!(
        tail.contains("/Type /XRef") || tail.contains("/Type/XRef"),
        "update must use an xref stream"
    );
    assert!(
        !tail.contains("\nxref\n"),
        "no xref table after an xref-stream file"
    );
    assert_all_ok(&signed, 1);
}

#[test]
fn libreoffice_cjk_doc_signed_visibly() {
    let pdf = fixtures::libreoffice_cjk_doc();
    let signed = sign_pdf(
        &pdf,
        &staff(),
        &visible_opts(),
        Some(&tsa() as &dyn TimestampAuthority),
    )
    .unwrap();
    assert_all_ok(&signed, 1);
}

#[test]
fn template_field_is_filled() {
    let pdf = fixtures::form_doc();
    let mut o = PdfSignOptions::new(now());
    o.placement = Placement::Field {
        name: "doctor".into(),
        layers: vec![Layer::Text(TextBlock {
            lines: vec!["医师: 张三".into()],
            font_size: None,
        })],
    };
    let signed = sign_pdf(&pdf, &staff(), &o, Some(&tsa() as &dyn TimestampAuthority)).unwrap();
    let rep = verify_pdf(&signed).unwrap();
    assert_eq!(rep.signatures.len(), 1);
    assert_eq!(rep.signatures[0].field_name, "doctor");
    assert!(rep.signatures[0].ok(), "{:#?}", rep.signatures[0]);
    // Filling it twice is refused.
    let again = sign_pdf(&signed, &staff(), &o, None).unwrap_err();
    assert!(
        matches!(again, doc_sign::Error::InvalidArgument(_)),
        "{again}"
    );
}

#[test]
fn sequential_signatures_preserve_earlier_ones() {
    let pdf = fixtures::form_doc();
    let first = sign_invisible(&pdf);
    let second = sign_pdf(
        &first,
        &staff(),
        &visible_opts(),
        Some(&tsa() as &dyn TimestampAuthority),
    )
    .unwrap();
    let third = sign_invisible(&second);
    assert_all_ok(&third, 3);
    let rep = verify_pdf(&third).unwrap();
    assert!(!rep.signatures[0].covers_whole_file);
    assert_eq!(
        rep.signatures[0].later_changes,
        LaterChanges::SignaturesAndFormsOnly,
        "{:#?}",
        rep.signatures[0]
    );
    assert_eq!(rep.signatures[0].signed_revision_len, first.len());
    assert_eq!(rep.signatures[1].signed_revision_len, second.len());
    let names: Vec<&str> = rep
        .signatures
        .iter()
        .map(|s| s.field_name.as_str())
        .collect();
    assert_eq!(names.len(), 3);
    assert!(names[0] != names[1] && names[1] != names[2]);
}

#[test]
fn certification_docmdp() {
    let pdf = fixtures::pdf_writer_doc(1);
    let mut o = PdfSignOptions::new(now());
    o.certify = Some(DocMdp::NoChanges);
    let certified = sign_pdf(&pdf, &staff(), &o, None).unwrap();
    let rep = verify_pdf(&certified).unwrap();
    assert_eq!(rep.signatures[0].certification, Some(DocMdp::NoChanges));
    let e = sign_pdf(&certified, &staff(), &PdfSignOptions::new(now()), None).unwrap_err();
    assert!(matches!(e, doc_sign::Error::NotPermitted(_)), "{e}");

    o.certify = Some(DocMdp::FormFillAndSign);
    let certified = sign_pdf(&pdf, &staff(), &o, None).unwrap();
    let second = sign_invisible(&certified);
    let rep = verify_pdf(&second).unwrap();
    assert!(rep.ok(), "{rep:#?}");
    // Certification must come first.
    let e = sign_pdf(&second, &staff(), &o, None).unwrap_err();
    assert!(matches!(e, doc_sign::Error::InvalidArgument(_)), "{e}");
}

#[test]
fn dss_for_long_term_validation() {
    let ca = super::ca();
    let signed = sign_invisible(&fixtures::pdf_writer_doc(1));
    let crl = gm_pki::crl::build_crl(
        &gm_pki::crl::CrlParams {
            this_update: now(),
            next_update: now() + std::time::Duration::from_secs(86_400),
            crl_number: 1,
            entries: vec![],
        },
        &ca.int.cert,
        &ca.int.key,
    );
    let crl = crl.unwrap();
    let material = doc_sign::LtvMaterial {
        certs: vec![
            ca.staff.cert.der().to_vec(),
            ca.int.cert.der().to_vec(),
            ca.root.cert.der().to_vec(),
            ca.tsa.cert.der().to_vec(),
        ],
        ocsps: vec![ocsp_good(ca)],
        crls: vec![crl.der().to_vec()],
    };
    let lt = doc_sign::add_dss(&signed, &material).unwrap();
    let rep = verify_pdf(&lt).unwrap();
    let dss = rep.dss.as_ref().expect("DSS present");
    assert_eq!(dss.certs.len(), 4);
    assert_eq!(dss.crls.len(), 1);
    assert_eq!(dss.ocsps.len(), 1);
    let parsed = gm_pki::ocsp::parse_response(&dss.ocsps[0]).unwrap();
    parsed.verify(&ca.int.cert).unwrap();
    // pyHanko reads the DSS too.
    let d = super::tmpdir("dss");
    std::fs::write(d.join("lt.pdf"), &lt).unwrap();
    super::qpdf_check(&d, "lt.pdf");
    let script = "import sys\nfrom pyhanko.pdf_utils.reader import PdfFileReader\nfrom pyhanko.sign.validation.dss import DocumentSecurityStore\nr = PdfFileReader(open(sys.argv[1], 'rb'))\ndss = DocumentSecurityStore.read_dss(r)\nprint(len(list(dss.load_certs())), len(dss.ocsps), len(dss.crls))\n";
    let o = super::run(&d, &super::python(), &["-c", script, "lt.pdf"]);
    assert!(o.ok, "{}", o.text);
    assert_eq!(o.text.trim(), "4 1 1", "{}", o.text);
    assert_eq!(dss.certs[0], ca.staff.cert.der());
    let s = &rep.signatures[0];
    assert!(s.ok(), "{s:#?}");
    assert_eq!(s.later_changes, LaterChanges::SignaturesAndFormsOnly);
    // A second DSS update extends the first.
    let lt2 = doc_sign::add_dss(
        &lt,
        &doc_sign::LtvMaterial {
            certs: vec![ca.ocsp.cert.der().to_vec()],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(verify_pdf(&lt2).unwrap().dss.unwrap().certs.len(), 5);
}

#[test]
fn detached_p7s_for_any_file() {
    let data = b"\x89PNG any bytes at all \x00\x01\x02".repeat(100);
    let sig = doc_sign::detached::sign_detached(
        &data,
        &staff(),
        now(),
        Some(&tsa() as &dyn TimestampAuthority),
    )
    .unwrap();
    assert_eq!(sig.sm3, gm_pki::signer::sm3(&data));
    let rep = doc_sign::detached::verify_detached(&data, &sig.p7s).unwrap();
    assert!(rep.ok(), "{rep:?}");
    assert_eq!(rep.timestamp_valid, Some(true));
    let mut bad = data.clone();
    bad[5] ^= 1;
    let rep = doc_sign::detached::verify_detached(&bad, &sig.p7s).unwrap();
    assert!(!rep.digest_ok && !rep.ok());
}

#[test]
fn two_phase_signing_with_external_cms() {
    let prepared =
        doc_sign::prepare(&fixtures::pdf_writer_doc(1), &PdfSignOptions::new(now())).unwrap();
    let br = prepared.byte_range();
    assert_eq!(br[0], 0);
    let cms = doc_sign::pdf::sign::build_cms(&prepared, &staff(), None).unwrap();
    let too_big = vec![0x30u8; prepared.capacity() + 1];
    assert!(matches!(
        prepared.clone().finish(&too_big),
        Err(doc_sign::Error::ContentsTooSmall { .. })
    ));
    let signed = prepared.finish(&cms).unwrap();
    assert!(verify_pdf(&signed).unwrap().ok());
}

#[test]
fn bad_arguments_are_typed_errors() {
    let pdf = fixtures::pdf_writer_doc(1);
    let mut o = visible_opts();
    if let Placement::Visible(a) = &mut o.placement {
        a.page = 7;
    }
    assert!(matches!(
        sign_pdf(&pdf, &staff(), &o, None),
        Err(doc_sign::Error::InvalidArgument(_))
    ));
    assert!(matches!(
        SignatureImage::from_png(b"not a png"),
        Err(doc_sign::Error::Image(_))
    ));
    let mut o = PdfSignOptions::new(now());
    o.placement = Placement::Field {
        name: "nope".into(),
        layers: vec![],
    };
    assert!(matches!(
        sign_pdf(&pdf, &staff(), &o, None),
        Err(doc_sign::Error::InvalidArgument(_))
    ));
}

fn ocsp_good(ca: &super::testca::TestCa) -> Vec<u8> {
    let id =
        gm_pki::ocsp::CertId::for_cert(&ca.staff.cert, &ca.int.cert, gm_pki::cms::HashAlg::Sha1)
            .unwrap();
    gm_pki::ocsp::Responder {
        cert: &ca.ocsp.cert,
        signer: &ca.ocsp.key,
    }
    .respond(
        &[gm_pki::ocsp::SingleResponse {
            cert_id: id,
            status: gm_pki::ocsp::CertStatus::Good,
            this_update: now(),
            next_update: Some(now() + std::time::Duration::from_secs(3600)),
        }],
        None,
        now(),
    )
    .unwrap()
}

#[test]
fn trusted_verification_validates_the_path() {
    let ca = super::ca();
    let signed = sign_invisible(&fixtures::pdf_writer_doc(1));
    let anchors = [ca.root.cert.clone()];
    let trust = doc_sign::TrustOptions {
        anchors: &anchors,
        intermediates: &[],
        crls: &[],
        time: now(),
        require_revocation: false,
    };
    let rep = doc_sign::verify_pdf_trusted(&signed, &trust).unwrap();
    let p = rep.signatures[0].path.as_ref().unwrap();
    assert!(p.valid, "{p:?}");
    assert_eq!(p.chain.len(), 3);
    assert_eq!(
        p.at,
        now() + std::time::Duration::from_secs(2),
        "validated at the time-stamp time"
    );
    assert!(rep.ok());

    // Wrong anchor: not ok.
    let wrong = [ca.tsa.cert.clone()];
    let rep = doc_sign::verify_pdf_trusted(
        &signed,
        &doc_sign::TrustOptions {
            anchors: &wrong,
            ..trust
        },
    )
    .unwrap();
    assert!(!rep.signatures[0].path.as_ref().unwrap().valid);
    assert!(!rep.ok());

    // Revocation required: unknown without a DSS, good with CRL + OCSP in the DSS.
    let strict = doc_sign::TrustOptions {
        require_revocation: true,
        ..trust
    };
    let rep = doc_sign::verify_pdf_trusted(&signed, &strict).unwrap();
    assert!(!rep.ok(), "{:?}", rep.signatures[0].path);
    let crl = gm_pki::crl::build_crl(
        &gm_pki::crl::CrlParams {
            this_update: now(),
            next_update: now() + std::time::Duration::from_secs(86_400),
            crl_number: 1,
            entries: vec![],
        },
        &ca.int.cert,
        &ca.int.key,
    )
    .unwrap();
    // The root's CRL covers the issuing CA.
    let root_crl = gm_pki::crl::build_crl(
        &gm_pki::crl::CrlParams {
            this_update: now(),
            next_update: now() + std::time::Duration::from_secs(86_400),
            crl_number: 1,
            entries: vec![],
        },
        &ca.root.cert,
        &ca.root.key,
    )
    .unwrap();
    let lt = doc_sign::add_dss(
        &signed,
        &doc_sign::LtvMaterial {
            certs: vec![ca.int.cert.der().to_vec(), ca.ocsp.cert.der().to_vec()],
            ocsps: vec![ocsp_good(ca)],
            crls: vec![crl.der().to_vec(), root_crl.der().to_vec()],
        },
    )
    .unwrap();
    let rep = doc_sign::verify_pdf_trusted(&lt, &strict).unwrap();
    assert!(rep.ok(), "{:?}", rep.signatures[0].path);
}

#[test]
fn tampered_ca_certificate_inside_cms_fails_path_validation() {
    let ca = super::ca();
    let s = sign_invisible(&fixtures::pdf_writer_doc(1));
    let int = hex::encode_upper(ca.int.cert.der());
    let at = s
        .windows(int.len())
        .position(|w| w == int.as_bytes())
        .unwrap();
    let mut t = s.clone();
    let p = at + int.len() / 2;
    t[p] = if t[p] == b'0' { b'1' } else { b'0' };
    let anchors = [ca.root.cert.clone()];
    let trust = doc_sign::TrustOptions {
        anchors: &anchors,
        intermediates: &[],
        crls: &[],
        time: now(),
        require_revocation: false,
    };
    let rep = doc_sign::verify_pdf_trusted(&t, &trust).unwrap();
    assert!(!rep.ok(), "{:#?}", rep.signatures[0].path);
}
