//! Verifying the signatures of a PDF: for each one, whether its `/ByteRange` is honest (starts at
//! 0, leaves out exactly the `/Contents` string, lies inside the file), whether it covers the
//! whole file or an earlier revision, the CMS digest and SM2 signature, the signer certificate,
//! the signature time stamp, and what later revisions changed.

use crate::error::Result;
use crate::pdf::doc;
use crate::pdf::sign::{self, DocMdp, FieldLock};
use crate::pdf::syntax;
use gm_pki::ParsedCertificate;
use lopdf::{Document, Object, ObjectId};
use std::time::SystemTime;

/// What later revisions did to the document signed by one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LaterChanges {
    /// The signature covers the whole file.
    None,
    /// Only later signatures, signature/form fields, DSS (LTV data) were added.
    SignaturesAndFormsOnly,
    /// As above, plus annotations (comments) were added: allowed unless DocMDP P<3.
    AnnotationsAdded,
    /// Something else changed (page content, page tree, catalog entries...): see `change_notes`.
    Disallowed,
}

/// The signature time stamp (CAdES-T).
#[derive(Debug, Clone)]
pub struct TimestampInfo {
    /// Token signature, imprint over the signature value and ESS binding verify.
    pub valid: bool,
    /// genTime.
    pub time: Option<SystemTime>,
    /// TSA subject.
    pub tsa: Option<String>,
    /// Problem, in words.
    pub error: Option<String>,
}

/// One signature's report.
#[derive(Debug, Clone)]
#[allow(clippy::struct_excessive_bools)]
pub struct SignatureReport {
    /// Fully qualified field name.
    pub field_name: String,
    /// `/SubFilter`.
    pub sub_filter: String,
    /// `/ByteRange` as written.
    pub byte_range: Vec<i64>,
    /// The range starts at 0, has two parts, stays inside the file, and its gap is exactly this
    /// signature's `/Contents` hex string.
    pub byte_range_ok: bool,
    /// The range ends at the end of the file (nothing was appended after this signature).
    pub covers_whole_file: bool,
    /// Length of the revision the signature covers.
    pub signed_revision_len: usize,
    /// CMS messageDigest equals SM3 of the byte ranges.
    pub digest_ok: bool,
    /// SM2 signature over the signed attributes verifies with the signer certificate.
    pub signature_ok: bool,
    /// signingCertificateV2 matches (`None`: absent).
    pub signing_certificate_ok: Option<bool>,
    /// Signer certificate from the CMS.
    pub signer_cert: Option<ParsedCertificate>,
    /// All certificates the CMS carries.
    pub certificates: Vec<ParsedCertificate>,
    /// `/M` as written.
    pub claimed_time: Option<String>,
    /// signingTime attribute (adbe.pkcs7.detached).
    pub signing_time: Option<SystemTime>,
    /// Signature time stamp.
    pub timestamp: Option<TimestampInfo>,
    /// This is a certification signature with this DocMDP level.
    pub certification: Option<DocMdp>,
    /// What later revisions changed.
    pub later_changes: LaterChanges,
    /// Details of later changes.
    pub change_notes: Vec<String>,
    /// The fields this signature locks (FieldMDP), from its `/Reference` or its field's `/Lock`.
    pub field_lock: Option<FieldLock>,
    /// Form fields (fully qualified names) whose value or appearance later revisions changed,
    /// sorted; signature fields signed later are among them.
    pub changed_fields: Vec<String>,
    /// Those of `changed_fields` that `field_lock` locks: each is a violation (also in
    /// `problems`).
    pub locked_fields_changed: Vec<String>,
    /// Certificate path validation ([`verify_pdf_trusted`]); `None` from [`verify_pdf`].
    pub path: Option<PathCheck>,
    /// Problems found, in words (empty when all is well).
    pub problems: Vec<String>,
    /// The DER CMS from `/Contents` (padding removed; empty when it could not be read), for
    /// callers that read their own signed attributes (`gm_pki::cms::extra_signed_attributes`).
    pub cms: Vec<u8>,
}

/// Result of validating the signer's certificate path.
#[derive(Debug, Clone)]
pub struct PathCheck {
    /// A path to a trust anchor was built and every check passed.
    pub valid: bool,
    /// Subjects from the signer to the anchor (when valid).
    pub chain: Vec<String>,
    /// The instant validated at: the time-stamp genTime when the time stamp is valid, else the
    /// caller's time.
    pub at: SystemTime,
    /// Why not (typed in `gm_pki::PathError`, given here in words).
    pub error: Option<String>,
}

/// Trust settings for [`verify_pdf_trusted`].
#[derive(Debug, Clone, Copy)]
pub struct TrustOptions<'a> {
    /// Trust anchors (root CA certificates).
    pub anchors: &'a [ParsedCertificate],
    /// More intermediate CA certificates the caller knows (besides the CMS and DSS ones).
    pub intermediates: &'a [ParsedCertificate],
    /// More CRLs the caller holds (besides the DSS ones), e.g. uploaded for external CAs.
    pub crls: &'a [gm_pki::crl::ParsedCrl],
    /// Validation time for signatures without a valid time stamp (passed in: no clock here).
    pub time: SystemTime,
    /// Require revocation information (from the DSS) for every certificate of the path.
    pub require_revocation: bool,
}

impl SignatureReport {
    /// No problem recorded, byte range honest, digest and signature verify, ESS not contradicted, the time stamp (if
    /// any) valid, and later revisions made no disallowed change. Certificate path validation is
    /// the caller's (it needs trust anchors and revocation data: `gm_pki::path`).
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
            && self.byte_range_ok
            && self.digest_ok
            && self.signature_ok
            && self.signing_certificate_ok != Some(false)
            && self.timestamp.as_ref().is_none_or(|t| t.valid)
            && self.later_changes != LaterChanges::Disallowed
            && self.locked_fields_changed.is_empty()
            && self.path.as_ref().is_none_or(|p| p.valid)
            && !(self.certification == Some(DocMdp::NoChanges)
                && !matches!(self.later_changes, LaterChanges::None)
                && !self.change_notes.iter().all(|n| n.starts_with("DSS")))
    }
}

/// The DSS dictionary's contents (PAdES B-LT).
#[derive(Debug, Clone, Default)]
pub struct DssInfo {
    /// Certificates (DER).
    pub certs: Vec<Vec<u8>>,
    /// OCSP responses (DER).
    pub ocsps: Vec<Vec<u8>>,
    /// CRLs (DER).
    pub crls: Vec<Vec<u8>>,
}

/// The report for a whole PDF.
#[derive(Debug, Clone)]
pub struct PdfReport {
    /// One per signature field with a value, in field order.
    pub signatures: Vec<SignatureReport>,
    /// The DSS, if present.
    pub dss: Option<DssInfo>,
    /// File length.
    pub file_len: usize,
}

impl PdfReport {
    /// At least one signature and all of them ok.
    pub fn ok(&self) -> bool {
        !self.signatures.is_empty() && self.signatures.iter().all(SignatureReport::ok)
    }
}

/// Length of the DER TLV at the start of `b` (the CMS inside a zero-padded `/Contents`).
pub(crate) fn der_len(b: &[u8]) -> Option<usize> {
    let first = *b.get(1)?;
    if first < 0x80 {
        return Some(2 + usize::from(first));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for i in 0..n {
        len = (len << 8) | usize::from(*b.get(2 + i)?);
    }
    let total = 2usize.checked_add(n)?.checked_add(len)?;
    (total <= b.len()).then_some(total)
}

fn decode_hex(raw: &[u8]) -> Option<Vec<u8>> {
    // Strict: what we write (and what the gap must be) is an even number of hex digits only.
    if !raw.len().is_multiple_of(2) {
        return None;
    }
    let digits = raw;
    let val = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    digits
        .chunks(2)
        .map(|p| Some((val(*p.first()?)? << 4) | val(p.get(1).copied().unwrap_or(b'0'))?))
        .collect()
}

/// Verify every signature of a PDF. Malformed files are errors; failed checks are in the report.
pub fn verify_pdf(pdf: &[u8]) -> Result<PdfReport> {
    let document = doc::parse(pdf)?;
    let mut signatures = Vec::new();
    for (name, fid) in sign::fields(&document) {
        if sign::field_type(&document, fid).as_deref() != Some(b"Sig") {
            continue;
        }
        let Some(v) = doc::dict_of(&document, fid)
            .ok()
            .and_then(|d| d.get(b"V").ok())
        else {
            continue;
        };
        let Some(sig) = doc::deref(&document, v).and_then(|o| o.as_dict().ok()) else {
            continue;
        };
        let mut rep = verify_one(pdf, &document, name, sig);
        rep.field_lock = sign::fieldmdp_of(&document, sig, doc::dict_of(&document, fid).ok());
        if let Some(lock) = &rep.field_lock {
            rep.locked_fields_changed = rep
                .changed_fields
                .iter()
                .filter(|f| lock.is_locked(f))
                .cloned()
                .collect();
            for f in &rep.locked_fields_changed {
                rep.problems.push(format!(
                    "field {f} is locked by this signature (FieldMDP /{}) and a later revision changed it",
                    lock.action()
                ));
            }
        }
        signatures.push(rep);
    }
    let dss = dss_info(&document);
    Ok(PdfReport {
        signatures,
        dss,
        file_len: pdf.len(),
    })
}

fn verify_one(
    pdf: &[u8],
    document: &Document,
    field_name: String,
    sig: &lopdf::Dictionary,
) -> SignatureReport {
    let mut rep = SignatureReport {
        field_name,
        sub_filter: sig
            .get(b"SubFilter")
            .and_then(Object::as_name)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default(),
        byte_range: Vec::new(),
        byte_range_ok: false,
        covers_whole_file: false,
        signed_revision_len: 0,
        digest_ok: false,
        signature_ok: false,
        signing_certificate_ok: None,
        signer_cert: None,
        certificates: Vec::new(),
        claimed_time: sig
            .get(b"M")
            .and_then(Object::as_str)
            .ok()
            .map(syntax::decode_text),
        signing_time: None,
        timestamp: None,
        certification: None,
        later_changes: LaterChanges::None,
        change_notes: Vec::new(),
        field_lock: None,
        changed_fields: Vec::new(),
        locked_fields_changed: Vec::new(),
        path: None,
        problems: Vec::new(),
        cms: Vec::new(),
    };
    if let Ok(refs) = sig.get(b"Reference").and_then(Object::as_array) {
        for r in refs {
            let Some(rd) = doc::deref(document, r).and_then(|o| o.as_dict().ok()) else {
                continue;
            };
            if rd.get(b"TransformMethod").and_then(Object::as_name).ok() == Some(b"DocMDP") {
                let p = rd
                    .get(b"TransformParams")
                    .ok()
                    .and_then(|tp| doc::deref(document, tp))
                    .and_then(|tp| tp.as_dict().ok())
                    .and_then(|tp| tp.get(b"P").and_then(Object::as_i64).ok());
                rep.certification = Some(DocMdp::from_p(p));
            }
        }
    }
    if !matches!(
        rep.sub_filter.as_str(),
        "ETSI.CAdES.detached" | "adbe.pkcs7.detached"
    ) {
        rep.problems
            .push(format!("unsupported /SubFilter {}", rep.sub_filter));
        return rep;
    }
    rep.byte_range = sig
        .get(b"ByteRange")
        .and_then(Object::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_i64().ok()).collect())
        .unwrap_or_default();
    let contents = sig
        .get(b"Contents")
        .and_then(Object::as_str)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let range: Option<[usize; 4]> = (rep.byte_range.len() == 4)
        .then(|| {
            let mut out = [0usize; 4];
            for (o, v) in out.iter_mut().zip(&rep.byte_range) {
                *o = usize::try_from(*v).ok()?;
            }
            Some(out)
        })
        .flatten();
    let Some([a, b, c, d]) = range else {
        rep.problems
            .push("/ByteRange is not four non-negative integers".into());
        return rep;
    };
    let end = c.checked_add(d);
    let gap = if b < c { pdf.get(b..c) } else { None };
    let gap_ok = gap.is_some_and(|g| {
        g.first() == Some(&b'<')
            && g.last() == Some(&b'>')
            && g.get(1..g.len().saturating_sub(1))
                .and_then(decode_hex)
                .as_deref()
                == Some(contents.as_slice())
    });
    rep.byte_range_ok = a == 0 && gap_ok && end.is_some_and(|e| e <= pdf.len());
    if !rep.byte_range_ok {
        rep.problems.push(
            "/ByteRange does not leave out exactly /Contents, or lies outside the file".into(),
        );
        return rep;
    }
    let end = end.unwrap_or(0);
    rep.signed_revision_len = end;
    rep.covers_whole_file = end == pdf.len();
    let Some(cms_len) = der_len(&contents) else {
        rep.problems
            .push("/Contents does not hold a DER structure".into());
        return rep;
    };
    if contents
        .get(cms_len..)
        .is_some_and(|pad| pad.iter().any(|&x| x != 0))
    {
        rep.problems
            .push("bytes after the CMS in /Contents are not zero".into());
    }
    let cms = contents.get(..cms_len).unwrap_or_default();
    rep.cms = cms.to_vec();
    let mut signed = Vec::with_capacity(end);
    signed.extend_from_slice(pdf.get(..b).unwrap_or_default());
    signed.extend_from_slice(pdf.get(c..end).unwrap_or_default());
    match gm_pki::cms::verify(cms, Some(&signed), &[]) {
        Ok(cr) => {
            rep.certificates.clone_from(&cr.certificates);
            if cr.signers.len() != 1 {
                rep.problems
                    .push(format!("CMS has {} signers, expected 1", cr.signers.len()));
            }
            if let Some(s) = cr.signers.into_iter().next() {
                rep.digest_ok = s.digest_ok;
                rep.signature_ok = s.signature_ok;
                rep.signing_certificate_ok = s.signing_certificate_ok;
                rep.signer_cert = s.signer_cert;
                rep.signing_time = s.signing_time;
                rep.timestamp = s.timestamp.map(|t| TimestampInfo {
                    valid: t.valid,
                    time: t.gen_time,
                    tsa: t.token.map(|v| v.tsa_name),
                    error: t.error,
                });
                if let Some(e) = s.error {
                    rep.problems.push(e);
                }
            }
        }
        Err(e) => rep.problems.push(format!("CMS: {e}")),
    }
    if rep.sub_filter == "ETSI.CAdES.detached" && rep.signing_certificate_ok != Some(true) {
        rep.problems
            .push("ETSI.CAdES.detached requires signingCertificateV2".into());
        rep.signing_certificate_ok = Some(false);
    }
    if !rep.covers_whole_file {
        if let Some(Ok(old)) = pdf.get(..end).map(doc::parse) {
            let (level, notes, changed) = compare_revisions(&old, document);
            rep.later_changes = level;
            rep.change_notes = notes;
            rep.changed_fields = changed;
        } else {
            rep.later_changes = LaterChanges::Disallowed;
            rep.change_notes
                .push("the signed revision cannot be read on its own".into());
        }
        if rep.certification == Some(DocMdp::FormFillAndSign)
            && rep.later_changes == LaterChanges::AnnotationsAdded
        {
            rep.problems
                .push("annotations were added after a DocMDP P=2 certification".into());
        }
    }
    rep
}

/// [`verify_pdf`], then validate each signer's certificate path to `trust.anchors` with
/// `gm_pki::path` (purpose document signing), using the CMS certificates and the DSS
/// certificates (and `trust.intermediates`) as intermediates and the DSS CRLs and OCSP
/// responses (and `trust.crls`) for revocation, at the signature time stamp's time when it is
/// valid. Paths may be SM2, ECDSA P-256 or RSA (other producers' PDFs).
pub fn verify_pdf_trusted(pdf: &[u8], trust: &TrustOptions<'_>) -> Result<PdfReport> {
    use gm_pki::path::{Options, Purpose, Revocation, validate_path};
    let mut rep = verify_pdf(pdf)?;
    let dss = rep.dss.clone().unwrap_or_default();
    let dss_certs: Vec<ParsedCertificate> = dss
        .certs
        .iter()
        .filter_map(|d| ParsedCertificate::from_der(d).ok())
        .collect();
    let crls: Vec<gm_pki::crl::ParsedCrl> = dss
        .crls
        .iter()
        .filter_map(|d| gm_pki::crl::ParsedCrl::from_der(d).ok())
        .chain(trust.crls.iter().cloned())
        .collect();
    let ocsps: Vec<gm_pki::ocsp::ParsedOcspResponse> = dss
        .ocsps
        .iter()
        .filter_map(|d| gm_pki::ocsp::parse_response(d).ok())
        .collect();
    for s in &mut rep.signatures {
        let Some(leaf) = s.signer_cert.clone() else {
            continue;
        };
        let at = s
            .timestamp
            .as_ref()
            .filter(|t| t.valid)
            .and_then(|t| t.time)
            .unwrap_or(trust.time);
        let mut inter = s.certificates.clone();
        inter.extend(dss_certs.iter().cloned());
        inter.extend(trust.intermediates.iter().cloned());
        let opts = Options::new(at, Purpose::DocumentSigning).with_revocation(Revocation {
            crls: &crls,
            ocsp: &ocsps,
            require: trust.require_revocation,
        });
        s.path = Some(match validate_path(&leaf, &inter, trust.anchors, &opts) {
            Ok(p) => PathCheck {
                valid: true,
                chain: p
                    .chain
                    .iter()
                    .map(ParsedCertificate::subject_string)
                    .collect(),
                at,
                error: None,
            },
            Err(e) => PathCheck {
                valid: false,
                chain: Vec::new(),
                at,
                error: Some(e.to_string()),
            },
        });
    }
    Ok(rep)
}

fn dss_info(document: &Document) -> Option<DssInfo> {
    let root = doc::root_id(document).ok()?;
    let cat = doc::dict_of(document, root).ok()?;
    let dss = doc::deref(document, cat.get(b"DSS").ok()?)?
        .as_dict()
        .ok()?;
    let list = |key: &[u8]| -> Vec<Vec<u8>> {
        dss.get(key)
            .ok()
            .and_then(|a| doc::deref(document, a))
            .and_then(|a| a.as_array().ok())
            .map(|arr| {
                arr.iter()
                    .filter_map(|r| {
                        doc::deref(document, r)?
                            .as_stream()
                            .ok()?
                            .decompressed_content()
                            .ok()
                            .or_else(|| {
                                doc::deref(document, r)?
                                    .as_stream()
                                    .ok()
                                    .map(|s| s.content.clone())
                            })
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    Some(DssInfo {
        certs: list(b"Certs"),
        ocsps: list(b"OCSPs"),
        crls: list(b"CRLs"),
    })
}

/// Keys a later revision may change in a dictionary of this role.
fn allowed_keys(role: &str) -> &'static [&'static [u8]] {
    match role {
        "catalog" => &[b"AcroForm", b"DSS", b"Extensions"],
        "page" => &[b"Annots"],
        "acroform" => &[b"Fields", b"SigFlags", b"DR", b"DA", b"NeedAppearances"],
        "field" => &[b"V", b"AP", b"AS"],
        "widget" => &[b"AP", b"AS"],
        _ => &[],
    }
}

/// The widget annotations of a terminal field: its `/Kids` without `/T`.
fn widget_kids(doc: &Document, field: ObjectId) -> Vec<ObjectId> {
    doc::dict_of(doc, field)
        .ok()
        .and_then(|d| d.get(b"Kids").ok())
        .and_then(|k| doc::deref(doc, k))
        .and_then(|k| k.as_array().ok())
        .map(|kids| {
            kids.iter()
                .filter_map(|k| k.as_reference().ok())
                .filter(|k| doc::dict_of(doc, *k).is_ok_and(|d| !d.has(b"T")))
                .collect()
        })
        .unwrap_or_default()
}

/// The level of later changes, notes in words, and the names of the form fields whose
/// value or appearance changed (sorted).
fn compare_revisions(old: &Document, new: &Document) -> (LaterChanges, Vec<String>, Vec<String>) {
    let mut notes = Vec::new();
    let mut changed_fields: Vec<String> = Vec::new();
    let mut field_of: std::collections::HashMap<ObjectId, String> =
        std::collections::HashMap::new();
    let mut disallowed = false;
    let mut annotations = false;
    let mut roles: std::collections::HashMap<ObjectId, &str> = std::collections::HashMap::new();
    if let Ok(root) = doc::root_id(old) {
        roles.insert(root, "catalog");
        if let Some(af) = doc::dict_of(old, root)
            .ok()
            .and_then(|c| c.get(b"AcroForm").and_then(Object::as_reference).ok())
        {
            roles.insert(af, "acroform");
        }
    }
    for p in doc::pages(old) {
        roles.insert(p, "page");
    }
    for (name, f) in sign::fields(old) {
        roles.insert(f, "field");
        for w in widget_kids(old, f) {
            roles.entry(w).or_insert("widget");
            field_of.entry(w).or_insert_with(|| name.clone());
        }
        field_of.insert(f, name);
    }
    if doc::root_id(old).ok() != doc::root_id(new).ok() {
        notes.push("the document catalog was replaced".into());
        disallowed = true;
    }
    if doc::pages(old).len() != doc::pages(new).len() {
        notes.push("pages were added or removed".into());
        disallowed = true;
    }
    for (id, o) in &old.objects {
        let kind = o.type_name().ok();
        if matches!(kind, Some(b"XRef" | b"ObjStm")) {
            continue;
        }
        let Some(n) = new.objects.get(id) else {
            notes.push(format!("object {} was removed", id.0));
            disallowed = true;
            continue;
        };
        if syntax::canonical(o) == syntax::canonical(n) {
            continue;
        }
        let role = roles.get(id).copied().unwrap_or("");
        match (o, n) {
            (Object::Dictionary(od), Object::Dictionary(nd)) => {
                let allowed = allowed_keys(role);
                let mut keys: Vec<&Vec<u8>> = od
                    .iter()
                    .map(|(k, _)| k)
                    .chain(nd.iter().map(|(k, _)| k))
                    .collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let ov = od.get(k).ok().map(syntax::canonical);
                    let nv = nd.get(k).ok().map(syntax::canonical);
                    if ov != nv {
                        let key = String::from_utf8_lossy(k);
                        if allowed.contains(&k.as_slice()) {
                            if role == "catalog" && k.as_slice() == b"DSS" {
                                notes.push("DSS added or updated".into());
                            }
                            if let Some(name) = field_of.get(id) {
                                changed_fields.push(name.clone());
                            }
                        } else {
                            notes.push(format!("object {} ({role}) changed /{key}", id.0));
                            disallowed = true;
                        }
                    }
                }
            }
            (Object::Array(oa), Object::Array(na)) if na.starts_with(oa) => {
                // Appending to /Annots or /Fields arrays.
            }
            _ => {
                notes.push(format!(
                    "object {} ({}) changed",
                    id.0,
                    if role.is_empty() { "content" } else { role }
                ));
                disallowed = true;
            }
        }
    }
    for (id, o) in &new.objects {
        if old.objects.contains_key(id) {
            continue;
        }
        if let Ok(d) = o.as_dict()
            && (d
                .get(b"Type")
                .and_then(Object::as_name)
                .ok()
                .is_some_and(|t| t == b"Annot")
                || d.has(b"Subtype") && d.has(b"Rect"))
        {
            let sub = d.get(b"Subtype").and_then(Object::as_name).unwrap_or(b"");
            if sub != b"Widget" {
                annotations = true;
                notes.push(format!(
                    "annotation /{} added",
                    String::from_utf8_lossy(sub)
                ));
            }
        }
    }
    let level = if disallowed {
        LaterChanges::Disallowed
    } else if annotations {
        LaterChanges::AnnotationsAdded
    } else {
        LaterChanges::SignaturesAndFormsOnly
    };
    changed_fields.sort();
    changed_fields.dedup();
    for f in &changed_fields {
        notes.push(format!("field {f} filled or changed"));
    }
    (level, notes, changed_fields)
}
