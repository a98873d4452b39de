//! PDF signing as an incremental update (ISO 32000-1 §12.8, ETSI EN 319 142-1 PAdES B-B/B-T).
//!
//! Two phases, so the private key may live anywhere (software, crypto device, two-party SM2 on a
//! phone): [`prepare`] appends the signature field, widget, appearance and a signature dictionary
//! whose `/Contents` is a zero-filled placeholder and whose `/ByteRange` is exact; then
//! [`PreparedPdf::finish`] writes the CMS into the placeholder. [`sign_pdf`] does both with
//! `gm-pki`'s CMS builder and an optional time-stamp authority.

use crate::error::{Error, Result};
use crate::pdf::appearance::{self, Appearance};
use crate::pdf::doc::{self, Loaded};
use crate::pdf::incremental::{self, NewObject};
use crate::pdf::syntax;
use crate::timestamp::TimestampAuthority;
use gm_pki::{ParsedCertificate, Sm2Signer};
use lopdf::{Dictionary, Object, ObjectId};
use std::time::SystemTime;

/// Default bytes reserved for the CMS (hex doubles it in the file): room for a signer
/// certificate, a chain of two and a time-stamp token with its own chain.
pub const DEFAULT_CONTENTS_RESERVE: usize = 16 * 1024;

/// `/SubFilter` of the signature dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SubFilter {
    /// `ETSI.CAdES.detached` (PAdES): no signingTime attribute, signingCertificateV2 required.
    #[default]
    EtsiCadesDetached,
    /// `adbe.pkcs7.detached` (ISO 32000-1 classic): the signingTime attribute is included.
    AdbePkcs7Detached,
}

impl SubFilter {
    fn name(self) -> &'static str {
        match self {
            Self::EtsiCadesDetached => "ETSI.CAdES.detached",
            Self::AdbePkcs7Detached => "adbe.pkcs7.detached",
        }
    }
}

/// DocMDP permission for a certification (author) signature (ISO 32000-1 §12.8.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DocMdp {
    /// P=1: no changes at all after certification.
    NoChanges,
    /// P=2: filling forms, instantiating templates and signing.
    FormFillAndSign,
    /// P=3: as 2, plus annotations.
    AnnotateFormFillAndSign,
}

impl DocMdp {
    fn p(self) -> i64 {
        match self {
            Self::NoChanges => 1,
            Self::FormFillAndSign => 2,
            Self::AnnotateFormFillAndSign => 3,
        }
    }
    /// From a /P value (absent or out of range means 2, as the standard says).
    pub(crate) fn from_p(p: Option<i64>) -> Self {
        match p {
            Some(1) => Self::NoChanges,
            Some(3) => Self::AnnotateFormFillAndSign,
            _ => Self::FormFillAndSign,
        }
    }
}

/// FieldMDP: the form fields a signature locks (ISO 32000-1 §12.8.2.4; `/Lock` on the signature
/// field, `/Reference` with `/TransformMethod /FieldMDP` in the signature dictionary). A later
/// incremental update that changes a locked field is a violation for this signature; changes to
/// other fields stay allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldLock {
    /// `/Action /All`: every field.
    All,
    /// `/Action /Include`: only these fields (fully qualified names; a name also covers the
    /// fields below it, `visit` covers `visit.date`).
    Include(Vec<String>),
    /// `/Action /Exclude`: every field but these.
    Exclude(Vec<String>),
}

impl FieldLock {
    /// Whether the field with this fully qualified name is locked.
    pub fn is_locked(&self, field: &str) -> bool {
        let listed = |names: &[String]| {
            names.iter().any(|n| {
                field == n
                    || field
                        .strip_prefix(n.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            })
        };
        match self {
            Self::All => true,
            Self::Include(names) => listed(names),
            Self::Exclude(names) => !listed(names),
        }
    }

    /// `All`, `Include` or `Exclude` (the `/Action` name).
    pub fn action(&self) -> &'static str {
        match self {
            Self::All => "All",
            Self::Include(_) => "Include",
            Self::Exclude(_) => "Exclude",
        }
    }

    /// The listed field names (empty for `All`).
    pub fn fields(&self) -> &[String] {
        match self {
            Self::All => &[],
            Self::Include(f) | Self::Exclude(f) => f,
        }
    }

    /// The dictionary body (`/Action`, `/Fields`) with the given `/Type`.
    pub(crate) fn to_dict(&self, type_name: &[u8]) -> Dictionary {
        let mut d = Dictionary::new();
        d.set("Type", Object::Name(type_name.to_vec()));
        d.set("Action", Object::Name(self.action().as_bytes().to_vec()));
        if !matches!(self, Self::All) {
            d.set(
                "Fields",
                Object::Array(
                    self.fields()
                        .iter()
                        .map(|f| syntax::text_string(f))
                        .collect(),
                ),
            );
        }
        d
    }

    /// Read a `/Lock` or FieldMDP `/TransformParams` dictionary (`None`: no or unknown
    /// `/Action`, or `/Fields` missing where required).
    pub(crate) fn from_dict(doc: &lopdf::Document, d: &Dictionary) -> Option<Self> {
        let action = d.get(b"Action").and_then(Object::as_name).ok()?;
        let names = || -> Option<Vec<String>> {
            let arr = doc::deref(doc, d.get(b"Fields").ok()?)?.as_array().ok()?;
            Some(
                arr.iter()
                    .filter_map(|o| doc::deref(doc, o)?.as_str().ok().map(syntax::decode_text))
                    .collect(),
            )
        };
        match action {
            b"All" => Some(Self::All),
            b"Include" => Some(Self::Include(names()?)),
            b"Exclude" => Some(Self::Exclude(names()?)),
            _ => None,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.fields().len() > 1000
            || self.fields().iter().any(|f| f.is_empty() || f.len() > 1000)
        {
            return Err(Error::InvalidArgument(
                "field lock: 1..1000 names of 1..1000 bytes".into(),
            ));
        }
        Ok(())
    }
}

/// The FieldMDP of a signature dictionary (its `/Reference`), else the `/Lock` of its field.
pub(crate) fn fieldmdp_of(
    doc: &lopdf::Document,
    sig: &Dictionary,
    field: Option<&Dictionary>,
) -> Option<FieldLock> {
    if let Some(refs) = sig
        .get(b"Reference")
        .ok()
        .and_then(|r| doc::deref(doc, r))
        .and_then(|r| r.as_array().ok())
    {
        for r in refs {
            let Some(rd) = doc::deref(doc, r).and_then(|o| o.as_dict().ok()) else {
                continue;
            };
            if rd.get(b"TransformMethod").and_then(Object::as_name).ok() == Some(b"FieldMDP") {
                return rd
                    .get(b"TransformParams")
                    .ok()
                    .and_then(|tp| doc::deref(doc, tp))
                    .and_then(|tp| tp.as_dict().ok())
                    .and_then(|tp| FieldLock::from_dict(doc, tp));
            }
        }
    }
    let lock = doc::deref(doc, field?.get(b"Lock").ok()?)?.as_dict().ok()?;
    FieldLock::from_dict(doc, lock)
}

/// Field names locked by the document's existing signatures.
fn locked_by_signatures(doc: &lopdf::Document, field: &str) -> bool {
    fields(doc).into_iter().any(|(_, id)| {
        let Ok(fd) = doc::dict_of(doc, id) else {
            return false;
        };
        let Some(sig) = fd
            .get(b"V")
            .ok()
            .and_then(|v| doc::deref(doc, v))
            .and_then(|v| v.as_dict().ok())
        else {
            return false;
        };
        fieldmdp_of(doc, sig, Some(fd)).is_some_and(|l| l.is_locked(field))
    })
}

/// Where the signature's widget goes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Placement {
    /// An invisible signature (zero-size widget on page 1).
    Invisible,
    /// A visible signature drawn in a box on a page.
    Visible(Appearance),
    /// Beside a keyword found on the page (e.g. "医师签名："): the box starts `dx` points right
    /// of the keyword's end and `dy` points above its bottom edge; the first occurrence (on
    /// `page`, or on any page) is used. A box that would cover the keyword is refused.
    Keyword {
        /// Text to find.
        keyword: String,
        /// Only this page (1-based), or any page.
        page: Option<u32>,
        /// Offset right of the keyword's end (points).
        dx: f32,
        /// Offset from the keyword's bottom edge (points; negative moves down).
        dy: f32,
        /// Box width.
        width: f32,
        /// Box height.
        height: f32,
        /// What to draw.
        layers: Vec<appearance::Layer>,
    },
    /// Fill an existing empty signature field of the document (a template) by its full name;
    /// the layers are drawn into that field's widget box.
    Field {
        /// Fully qualified field name (`parent.child`).
        name: String,
        /// What to draw (may be empty for an invisible fill).
        layers: Vec<appearance::Layer>,
    },
}

/// How to sign.
#[derive(Debug, Clone)]
pub struct PdfSignOptions {
    /// `/SubFilter`.
    pub sub_filter: SubFilter,
    /// Name of the new field (`Signature<n>` when `None`); ignored for [`Placement::Field`].
    pub field_name: Option<String>,
    /// The signing time: `/M`, and the CMS signingTime for `adbe.pkcs7.detached`. Passed in.
    pub signing_time: SystemTime,
    /// `/Name`.
    pub signer_name: Option<String>,
    /// `/Reason`.
    pub reason: Option<String>,
    /// `/Location`.
    pub location: Option<String>,
    /// `/ContactInfo`.
    pub contact_info: Option<String>,
    /// Bytes reserved for the CMS.
    pub contents_reserve: usize,
    /// Widget placement.
    pub placement: Placement,
    /// Make this a certification signature with this DocMDP permission (first signature only).
    pub certify: Option<DocMdp>,
    /// Lock these form fields (FieldMDP). For [`Placement::Field`] the template field's own
    /// `/Lock` applies when present (then this must be `None` or equal to it).
    pub lock: Option<FieldLock>,
}

impl PdfSignOptions {
    /// Invisible ETSI.CAdES.detached signature at `signing_time`.
    pub fn new(signing_time: SystemTime) -> Self {
        Self {
            sub_filter: SubFilter::default(),
            field_name: None,
            signing_time,
            signer_name: None,
            reason: None,
            location: None,
            contact_info: None,
            contents_reserve: DEFAULT_CONTENTS_RESERVE,
            placement: Placement::Invisible,
            certify: None,
            lock: None,
        }
    }
}

/// The signer: certificate, the chain to put into the CMS, and the key.
#[derive(Clone, Copy)]
pub struct SignerIdentity<'a> {
    /// Signer certificate.
    pub cert: &'a ParsedCertificate,
    /// Issuing CA certificates to include (may be empty).
    pub chain: &'a [ParsedCertificate],
    /// The key (software, device, two-party...).
    pub key: &'a dyn Sm2Signer,
}

impl std::fmt::Debug for SignerIdentity<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerIdentity")
            .field("cert", &self.cert.subject_string())
            .finish_non_exhaustive()
    }
}

/// A PDF with the signature placeholder written, waiting for its CMS.
#[derive(Debug, Clone)]
pub struct PreparedPdf {
    bytes: Vec<u8>,
    /// Offset of `<` of `/Contents`.
    contents_start: usize,
    /// Offset just after `>`.
    contents_end: usize,
    sub_filter: SubFilter,
    signing_time: SystemTime,
}

impl PreparedPdf {
    /// The `/ByteRange` written: `[0, a, b, c]`.
    pub fn byte_range(&self) -> [usize; 4] {
        [
            0,
            self.contents_start,
            self.contents_end,
            self.bytes.len().saturating_sub(self.contents_end),
        ]
    }

    /// The bytes the signature covers (everything but the `/Contents` hex string).
    pub fn signed_content(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.bytes.len());
        v.extend_from_slice(self.bytes.get(..self.contents_start).unwrap_or_default());
        v.extend_from_slice(self.bytes.get(self.contents_end..).unwrap_or_default());
        v
    }

    /// SM3 of [`Self::signed_content`] (the CMS messageDigest).
    pub fn digest_sm3(&self) -> [u8; 32] {
        gm_pki::signer::sm3(&self.signed_content())
    }

    /// SHA-256 of [`Self::signed_content`] (the messageDigest of the ECDSA P-256 variant).
    pub fn digest_sha256(&self) -> [u8; 32] {
        let d = gm_pki::cms::HashAlg::Sha256.digest(&self.signed_content());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.get(..32).unwrap_or(&[0u8; 32]));
        out
    }

    /// Bytes available for the DER CMS.
    pub fn capacity(&self) -> usize {
        (self.contents_end - self.contents_start).saturating_sub(2) / 2
    }

    /// Put the DER CMS into `/Contents` and return the signed PDF.
    pub fn finish(mut self, cms_der: &[u8]) -> Result<Vec<u8>> {
        if cms_der.len() > self.capacity() {
            return Err(Error::ContentsTooSmall {
                needed: cms_der.len(),
                reserved: self.capacity(),
            });
        }
        let hex = hex_upper(cms_der);
        let dst = self
            .bytes
            .get_mut(self.contents_start + 1..self.contents_start + 1 + hex.len())
            .ok_or(Error::Internal("contents placeholder out of range"))?;
        dst.copy_from_slice(&hex);
        Ok(self.bytes)
    }
}

pub(crate) fn hex_upper(b: &[u8]) -> Vec<u8> {
    const H: &[u8; 16] = b"0123456789ABCDEF";
    let mut v = Vec::with_capacity(b.len() * 2);
    for x in b {
        v.push(H.get(usize::from(x >> 4)).copied().unwrap_or(b'0'));
        v.push(H.get(usize::from(x & 15)).copied().unwrap_or(b'0'));
    }
    v
}

const BYTE_RANGE_PLACEHOLDER: &str = "[0 0000000000 0000000000 0000000000]";

/// Existing DocMDP restriction of the document, if it was certified.
pub(crate) fn docmdp_of(doc: &lopdf::Document) -> Option<DocMdp> {
    let root = doc::root_id(doc).ok()?;
    let cat = doc::dict_of(doc, root).ok()?;
    let perms = doc::deref(doc, cat.get(b"Perms").ok()?)?.as_dict().ok()?;
    let sig = doc::deref(doc, perms.get(b"DocMDP").ok()?)?
        .as_dict()
        .ok()?;
    let refs = doc::deref(doc, sig.get(b"Reference").ok()?)?
        .as_array()
        .ok()?;
    for r in refs {
        let Some(rd) = doc::deref(doc, r).and_then(|o| o.as_dict().ok()) else {
            continue;
        };
        if rd.get(b"TransformMethod").and_then(Object::as_name).ok() == Some(b"DocMDP") {
            let p = rd
                .get(b"TransformParams")
                .ok()
                .and_then(|tp| doc::deref(doc, tp))
                .and_then(|tp| tp.as_dict().ok())
                .and_then(|tp| tp.get(b"P").and_then(Object::as_i64).ok());
            return Some(DocMdp::from_p(p));
        }
    }
    Some(DocMdp::FormFillAndSign)
}

/// All terminal fields of the AcroForm with their full names.
pub(crate) fn fields(doc: &lopdf::Document) -> Vec<(String, ObjectId)> {
    let mut out = Vec::new();
    let Ok(root) = doc::root_id(doc) else {
        return out;
    };
    let Some(form) = doc::dict_of(doc, root)
        .ok()
        .and_then(|c| c.get(b"AcroForm").ok())
        .and_then(|a| doc::deref(doc, a))
        .and_then(|a| a.as_dict().ok())
    else {
        return out;
    };
    let Some(list) = form
        .get(b"Fields")
        .ok()
        .and_then(|f| doc::deref(doc, f))
        .and_then(|f| f.as_array().ok())
    else {
        return out;
    };
    let mut stack: Vec<(String, &Object, usize)> =
        list.iter().rev().map(|o| (String::new(), o, 0)).collect();
    let mut seen = std::collections::HashSet::new();
    while let Some((prefix, o, depth)) = stack.pop() {
        let Ok(id) = o.as_reference() else { continue };
        if depth > 32 || !seen.insert(id) {
            continue;
        }
        let Ok(d) = doc::dict_of(doc, id) else {
            continue;
        };
        let part = d
            .get(b"T")
            .and_then(Object::as_str)
            .map(syntax::decode_text)
            .ok();
        let name = match (prefix.is_empty(), part) {
            (true, Some(p)) => p,
            (false, Some(p)) => format!("{prefix}.{p}"),
            (_, None) => prefix.clone(),
        };
        let kids = d
            .get(b"Kids")
            .ok()
            .and_then(|k| doc::deref(doc, k))
            .and_then(|k| k.as_array().ok());
        // A field whose kids have no /T are its widgets: it is terminal.
        let kid_fields: Vec<&Object> = kids
            .map(|k| {
                k.iter()
                    .filter(|kid| {
                        kid.as_reference()
                            .ok()
                            .and_then(|kid| doc::dict_of(doc, kid).ok())
                            .is_some_and(|kd| kd.has(b"T"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if kid_fields.is_empty() {
            out.push((name, id));
        } else {
            for k in kid_fields.into_iter().rev() {
                stack.push((name.clone(), k, depth + 1));
            }
        }
    }
    out
}

/// The inherited field type /FT of a field dictionary.
pub(crate) fn field_type(doc: &lopdf::Document, id: ObjectId) -> Option<Vec<u8>> {
    let mut cur = id;
    for _ in 0..32 {
        let d = doc::dict_of(doc, cur).ok()?;
        if let Ok(ft) = d.get(b"FT").and_then(Object::as_name) {
            return Some(ft.to_vec());
        }
        cur = d.get(b"Parent").and_then(Object::as_reference).ok()?;
    }
    None
}

/// Collects the objects of one update, each written once.
struct Update<'a> {
    loaded: &'a Loaded,
    next: u32,
    changed: std::collections::BTreeMap<u32, (u16, Object)>,
}

impl<'a> Update<'a> {
    fn new(loaded: &'a Loaded) -> Self {
        Self {
            loaded,
            next: loaded.size.max(1),
            changed: std::collections::BTreeMap::new(),
        }
    }
    fn alloc(&mut self) -> u32 {
        let id = self.next;
        self.next += 1;
        id
    }
    /// The current version of an object (changed in this update, or from the document).
    fn get(&self, id: ObjectId) -> Result<Object> {
        if let Some((_, o)) = self.changed.get(&id.0) {
            return Ok(o.clone());
        }
        self.loaded
            .doc
            .get_object(id)
            .cloned()
            .map_err(|_| Error::malformed(format!("object {} {} is missing", id.0, id.1)))
    }
    fn set(&mut self, id: ObjectId, o: Object) {
        self.changed.insert(id.0, (id.1, o));
    }
    /// Append `item` to the array `key` of the dictionary object `owner` (the array may be
    /// direct, indirect, or absent).
    fn push_to_array(&mut self, owner: ObjectId, key: &[u8], item: Object) -> Result<()> {
        let mut d = self
            .get(owner)?
            .as_dict()
            .cloned()
            .map_err(|_| Error::malformed("not a dictionary"))?;
        match d.get(key).ok().cloned() {
            Some(Object::Reference(aid)) => {
                let mut arr = self
                    .get(aid)?
                    .as_array()
                    .cloned()
                    .map_err(|_| Error::malformed("not an array"))?;
                arr.push(item);
                self.set(aid, Object::Array(arr));
            }
            Some(Object::Array(mut arr)) => {
                arr.push(item);
                d.set(key.to_vec(), Object::Array(arr));
                self.set(owner, Object::Dictionary(d));
            }
            _ => {
                d.set(key.to_vec(), Object::Array(vec![item]));
                self.set(owner, Object::Dictionary(d));
            }
        }
        Ok(())
    }
    fn into_objects(self) -> Vec<NewObject> {
        self.changed
            .into_iter()
            .map(|(id, (g, o))| incremental::object(id, g, &o))
            .collect()
    }
}

/// Make sure the catalog has an indirect-or-direct AcroForm; return the object holding the
/// AcroForm dictionary (the AcroForm itself, or the catalog when it is direct) and the key path.
fn acroform_holder(up: &mut Update<'_>, root: ObjectId) -> Result<ObjectId> {
    let cat = up
        .get(root)?
        .as_dict()
        .cloned()
        .map_err(|_| Error::malformed("catalog is not a dictionary"))?;
    match cat.get(b"AcroForm").ok().cloned() {
        Some(Object::Reference(id)) => Ok(id),
        other => {
            // Direct or absent: move it into its own object so the rest is uniform.
            let form = if let Some(Object::Dictionary(d)) = other {
                d
            } else {
                let mut d = Dictionary::new();
                d.set("Fields", Object::Array(vec![]));
                d
            };
            let id = (up.alloc(), 0);
            up.set(id, Object::Dictionary(form));
            let mut cat = cat;
            cat.set("AcroForm", Object::Reference(id));
            up.set(root, Object::Dictionary(cat));
            Ok(id)
        }
    }
}

fn media_origin(doc: &lopdf::Document, page: ObjectId) -> (f32, f32) {
    let mut cur = Some(page);
    for _ in 0..32 {
        let Some(id) = cur else { break };
        let Ok(d) = doc::dict_of(doc, id) else { break };
        if let Some(arr) = d
            .get(b"MediaBox")
            .ok()
            .and_then(|m| doc::deref(doc, m))
            .and_then(|m| m.as_array().ok())
        {
            let x = arr.first().and_then(|v| v.as_float().ok()).unwrap_or(0.0);
            let y = arr.get(1).and_then(|v| v.as_float().ok()).unwrap_or(0.0);
            return (x, y);
        }
        cur = d.get(b"Parent").and_then(Object::as_reference).ok();
    }
    (0.0, 0.0)
}

/// Append the signature field, widget, appearance and placeholder signature dictionary.
pub fn prepare(pdf: &[u8], opts: &PdfSignOptions) -> Result<PreparedPdf> {
    let loaded = doc::load(pdf)?;
    let doc = &loaded.doc;
    if opts.contents_reserve < 1024 || opts.contents_reserve > 1024 * 1024 {
        return Err(Error::InvalidArgument(
            "contents_reserve must be 1 KiB..1 MiB".into(),
        ));
    }
    let existing = fields(doc);
    let has_signatures = existing.iter().any(|(_, id)| {
        field_type(doc, *id).as_deref() == Some(b"Sig")
            && doc::dict_of(doc, *id).is_ok_and(|d| d.has(b"V"))
    });
    if docmdp_of(doc) == Some(DocMdp::NoChanges) {
        return Err(Error::NotPermitted(
            "the document is certified with DocMDP P=1 (no changes)".into(),
        ));
    }
    if opts.certify.is_some() && has_signatures {
        return Err(Error::InvalidArgument(
            "a certification signature must be the first signature".into(),
        ));
    }
    if let Some(l) = &opts.lock {
        l.validate()?;
    }
    let root = doc::root_id(doc)?;
    let pages = doc::pages(doc);
    let mut up = Update::new(&loaded);
    let mut template_lock: Option<FieldLock> = None;

    // Signature dictionary: written by hand below so the placeholders' offsets are known.
    let sig_id = up.alloc();

    let resolved;
    let placement = if let Placement::Keyword {
        keyword,
        page,
        dx,
        dy,
        width,
        height,
        layers,
    } = &opts.placement
    {
        let hit = crate::pdf::keyword::find_in_doc(doc, keyword)
            .into_iter()
            .find(|h| page.is_none_or(|p| p == h.page))
            .ok_or_else(|| Error::InvalidArgument(format!("keyword {keyword} not found")))?;
        let rect = appearance::Rect {
            x: hit.rect.x + hit.rect.width + dx,
            y: hit.rect.y + dy,
            width: *width,
            height: *height,
        };
        let k = hit.rect;
        let overlaps = rect.x < k.x + k.width
            && k.x < rect.x + rect.width
            && rect.y < k.y + k.height
            && k.y < rect.y + rect.height;
        if overlaps {
            return Err(Error::InvalidArgument(
                "the signature box would cover the keyword".into(),
            ));
        }
        resolved = Placement::Visible(Appearance {
            page: hit.page,
            rect,
            layers: layers.clone(),
        });
        &resolved
    } else {
        &opts.placement
    };
    let (field_id, widget_page, rect, layers, new_field) = match placement {
        Placement::Invisible => {
            let p = *pages
                .first()
                .ok_or_else(|| Error::malformed("document has no pages"))?;
            (up.alloc(), p, [0.0f32; 4], Vec::new(), true)
        }
        Placement::Visible(app) => {
            let idx = usize::try_from(app.page)
                .ok()
                .and_then(|p| p.checked_sub(1));
            let p = *idx.and_then(|i| pages.get(i)).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "page {} does not exist ({} pages)",
                    app.page,
                    pages.len()
                ))
            })?;
            let (ox, oy) = media_origin(doc, p);
            let r = app.rect;
            (
                up.alloc(),
                p,
                [ox + r.x, oy + r.y, ox + r.x + r.width, oy + r.y + r.height],
                app.layers.clone(),
                true,
            )
        }
        Placement::Keyword { .. } => return Err(Error::Internal("keyword placement not resolved")),
        Placement::Field { name, layers } => {
            let (_, fid) = existing
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| Error::InvalidArgument(format!("no field named {name}")))?;
            if field_type(doc, *fid).as_deref() != Some(b"Sig") {
                return Err(Error::InvalidArgument(format!(
                    "field {name} is not a signature field"
                )));
            }
            let fd = doc::dict_of(doc, *fid)?;
            if fd.has(b"V") {
                return Err(Error::InvalidArgument(format!(
                    "field {name} is already signed"
                )));
            }
            if locked_by_signatures(doc, name) {
                return Err(Error::NotPermitted(format!(
                    "field {name} is locked by an earlier signature (FieldMDP)"
                )));
            }
            if let Some(l) = fd.get(b"Lock").ok().and_then(|l| doc::deref(doc, l)) {
                let ld = l
                    .as_dict()
                    .map_err(|_| Error::malformed("/Lock is not a dictionary"))?;
                if ld.has(b"P") {
                    return Err(Error::Unsupported(
                        "/Lock with /P (PDF 2.0 DocMDP in a field lock) is not supported".into(),
                    ));
                }
                let template = FieldLock::from_dict(doc, ld)
                    .ok_or_else(|| Error::malformed("/Lock without a known /Action or /Fields"))?;
                if opts.lock.as_ref().is_some_and(|l| *l != template) {
                    return Err(Error::InvalidArgument(format!(
                        "field {name} has its own /Lock, different from the requested lock"
                    )));
                }
                template_lock = Some(template);
            }
            let arr = fd
                .get(b"Rect")
                .ok()
                .and_then(|r| r.as_array().ok())
                .ok_or_else(|| {
                    Error::Unsupported(format!("field {name} has no widget of its own (/Kids)"))
                })?;
            let mut rect = [0.0f32; 4];
            for (d, s) in rect.iter_mut().zip(arr) {
                *d = s.as_float().unwrap_or(0.0);
            }
            let page = fd
                .get(b"P")
                .and_then(Object::as_reference)
                .ok()
                .or_else(|| pages.first().copied())
                .ok_or_else(|| Error::malformed("document has no pages"))?;
            (fid.0, page, rect, layers.clone(), false)
        }
    };

    // Appearance.
    let w = (rect[2] - rect[0]).abs();
    let h = (rect[3] - rect[1]).abs();
    let ap_id = if layers.is_empty() || w == 0.0 || h == 0.0 {
        let id = up.alloc();
        up.set((id, 0), appearance::empty_form());
        id
    } else {
        let app = Appearance {
            page: 1,
            rect: appearance::Rect {
                x: 0.0,
                y: 0.0,
                width: w,
                height: h,
            },
            layers,
        };
        let mut next = up.next;
        let built = appearance::build(&app, &mut || {
            let id = next;
            next += 1;
            id
        })?;
        up.next = next;
        for (id, o) in built.objects {
            up.set((id, 0), o);
        }
        built.ap_id
    };

    // Field + widget (merged).
    let mut ap = Dictionary::new();
    ap.set("N", Object::Reference((ap_id, 0)));
    let field_obj = if new_field {
        let mut name = opts.field_name.clone().unwrap_or_default();
        if name.is_empty() {
            let mut n = existing.len() + 1;
            loop {
                let candidate = format!("Signature{n}");
                if !existing.iter().any(|(e, _)| *e == candidate) {
                    name = candidate;
                    break;
                }
                n += 1;
            }
        } else if name.contains('.') || existing.iter().any(|(e, _)| *e == name) {
            return Err(Error::InvalidArgument(format!(
                "field name {name} is already used or contains '.'"
            )));
        }
        let mut d = Dictionary::new();
        d.set("Type", Object::Name(b"Annot".to_vec()));
        d.set("Subtype", Object::Name(b"Widget".to_vec()));
        d.set("FT", Object::Name(b"Sig".to_vec()));
        d.set("T", syntax::text_string(&name));
        d.set("F", Object::Integer(132)); // Print + Locked
        d.set(
            "Rect",
            Object::Array(rect.iter().map(|v| Object::Real(*v)).collect()),
        );
        d.set("P", Object::Reference(widget_page));
        d.set("V", Object::Reference((sig_id, 0)));
        d.set("AP", Object::Dictionary(ap));
        if let Some(l) = &opts.lock {
            d.set("Lock", Object::Dictionary(l.to_dict(b"SigFieldLock")));
        }
        up.push_to_array(widget_page, b"Annots", Object::Reference((field_id, 0)))?;
        let form = acroform_holder(&mut up, root)?;
        up.push_to_array(form, b"Fields", Object::Reference((field_id, 0)))?;
        d
    } else {
        let mut d = up
            .get((field_id, 0))?
            .as_dict()
            .cloned()
            .map_err(|_| Error::malformed("field"))?;
        d.set("V", Object::Reference((sig_id, 0)));
        d.set("AP", Object::Dictionary(ap));
        if let (None, Some(l)) = (&template_lock, &opts.lock) {
            d.set("Lock", Object::Dictionary(l.to_dict(b"SigFieldLock")));
        }
        let _ = acroform_holder(&mut up, root)?;
        d
    };
    let field_gen = if new_field {
        0
    } else {
        existing
            .iter()
            .find(|(_, id)| id.0 == field_id)
            .map_or(0, |(_, id)| id.1)
    };
    up.set((field_id, field_gen), Object::Dictionary(field_obj));

    // SigFlags 3 (SignaturesExist | AppendOnly).
    let form = acroform_holder(&mut up, root)?;
    let mut fd = up
        .get(form)?
        .as_dict()
        .cloned()
        .map_err(|_| Error::malformed("AcroForm"))?;
    fd.set("SigFlags", Object::Integer(3));
    up.set(form, Object::Dictionary(fd));

    if let Some(mdp) = opts.certify {
        let mut cat = up
            .get(root)?
            .as_dict()
            .cloned()
            .map_err(|_| Error::malformed("catalog"))?;
        let mut perms = Dictionary::new();
        perms.set("DocMDP", Object::Reference((sig_id, 0)));
        cat.set("Perms", Object::Dictionary(perms));
        up.set(root, Object::Dictionary(cat));
        let _ = mdp;
    }

    // The signature dictionary, by hand.
    let mut sig = Vec::new();
    sig.extend_from_slice(b"<</Type /Sig /Filter /Adobe.PPKLite /SubFilter /");
    sig.extend_from_slice(opts.sub_filter.name().as_bytes());
    sig.extend_from_slice(b"\n/ByteRange ");
    let br_rel = sig.len();
    sig.extend_from_slice(BYTE_RANGE_PLACEHOLDER.as_bytes());
    sig.extend_from_slice(b"\n/Contents ");
    let contents_rel = sig.len();
    sig.push(b'<');
    sig.resize(sig.len() + opts.contents_reserve * 2, b'0');
    sig.push(b'>');
    let contents_rel_end = sig.len();
    sig.extend_from_slice(b"\n/M ");
    syntax::write_object(
        &mut sig,
        &Object::string_literal(syntax::pdf_date(opts.signing_time)),
    );
    for (key, val) in [
        ("Name", &opts.signer_name),
        ("Reason", &opts.reason),
        ("Location", &opts.location),
        ("ContactInfo", &opts.contact_info),
    ] {
        if let Some(v) = val {
            sig.extend_from_slice(b" /");
            sig.extend_from_slice(key.as_bytes());
            sig.push(b' ');
            syntax::write_object(&mut sig, &syntax::text_string(v));
        }
    }
    let mut references = Vec::new();
    if let Some(mdp) = opts.certify {
        let mut tp = Dictionary::new();
        tp.set("Type", Object::Name(b"TransformParams".to_vec()));
        tp.set("P", Object::Integer(mdp.p()));
        tp.set("V", Object::Name(b"1.2".to_vec()));
        let mut r = Dictionary::new();
        r.set("Type", Object::Name(b"SigRef".to_vec()));
        r.set("TransformMethod", Object::Name(b"DocMDP".to_vec()));
        r.set("TransformParams", Object::Dictionary(tp));
        references.push(Object::Dictionary(r));
    }
    if let Some(lock) = template_lock.as_ref().or(opts.lock.as_ref()) {
        let mut tp = lock.to_dict(b"TransformParams");
        tp.set("V", Object::Name(b"1.2".to_vec()));
        let mut r = Dictionary::new();
        r.set("Type", Object::Name(b"SigRef".to_vec()));
        r.set("TransformMethod", Object::Name(b"FieldMDP".to_vec()));
        // ISO 32000-1 Table 253: /Data (required for FieldMDP) refers to the catalog.
        r.set("Data", Object::Reference(root));
        r.set("TransformParams", Object::Dictionary(tp));
        references.push(Object::Dictionary(r));
    }
    if !references.is_empty() {
        sig.extend_from_slice(b" /Reference ");
        syntax::write_object(&mut sig, &Object::Array(references));
    }
    sig.extend_from_slice(b">>");

    let mut objects = up.into_objects();
    objects.push(NewObject {
        id: sig_id,
        generation: 0,
        body: sig,
    });
    let written = incremental::write(pdf, &loaded, objects)?;
    let pos = written
        .ids
        .iter()
        .position(|&i| i == sig_id)
        .ok_or(Error::Internal("signature object lost"))?;
    let base = *written
        .body_offsets
        .get(pos)
        .ok_or(Error::Internal("signature offset"))?;
    let mut bytes = written.bytes;
    let contents_start = base + contents_rel;
    let contents_end = base + contents_rel_end;
    let total = bytes.len();
    let br = format!(
        "[0 {contents_start} {contents_end} {}]",
        total - contents_end
    );
    if br.len() > BYTE_RANGE_PLACEHOLDER.len() {
        return Err(Error::Unsupported(
            "file too large for the /ByteRange placeholder".into(),
        ));
    }
    let mut br_bytes = br.into_bytes();
    br_bytes.resize(BYTE_RANGE_PLACEHOLDER.len(), b' ');
    bytes
        .get_mut(base + br_rel..base + br_rel + br_bytes.len())
        .ok_or(Error::Internal("byte range placeholder"))?
        .copy_from_slice(&br_bytes);
    Ok(PreparedPdf {
        bytes,
        contents_start,
        contents_end,
        sub_filter: opts.sub_filter,
        signing_time: opts.signing_time,
    })
}

/// Sign a PDF: prepare, CMS with `gm-pki` over the byte ranges (SM3 digest, SM2 signature),
/// signature time stamp from `tsa` when given (PAdES B-T; without it B-B), finish.
pub fn sign_pdf(
    pdf: &[u8],
    signer: &SignerIdentity<'_>,
    opts: &PdfSignOptions,
    tsa: Option<&dyn TimestampAuthority>,
) -> Result<Vec<u8>> {
    let prepared = prepare(pdf, opts)?;
    let cms = build_cms(&prepared, signer, tsa)?;
    prepared.finish(&cms)
}

/// The CMS for a prepared PDF (exposed for callers that sign in two steps).
pub fn build_cms(
    prepared: &PreparedPdf,
    signer: &SignerIdentity<'_>,
    tsa: Option<&dyn TimestampAuthority>,
) -> Result<Vec<u8>> {
    build_cms_with(prepared, signer, tsa, &[])
}

/// As [`build_cms`], with extra signed attributes (e.g. the original file's SM3, a GB/T 38540
/// seal signature).
pub fn build_cms_with(
    prepared: &PreparedPdf,
    signer: &SignerIdentity<'_>,
    tsa: Option<&dyn TimestampAuthority>,
    extra: &[gm_pki::cms::ExtraAttribute],
) -> Result<Vec<u8>> {
    let pending = external_cms(prepared, signer.cert, signer.chain, extra)?;
    let signature = gm_pki::signer::sign_der(signer.key, pending.to_be_signed())?;
    complete_cms(pending, &signature, signer.key.distid(), tsa)
}

/// An ECDSA P-256 signer (the variant for relying parties without SM2: certificate issued by
/// a non-GM CA, verified by e.g. Adobe or pyHanko).
#[derive(Clone, Copy)]
pub struct P256SignerIdentity<'a> {
    /// Signer certificate (P-256 key).
    pub cert: &'a ParsedCertificate,
    /// Issuing CA certificates to include (may be empty).
    pub chain: &'a [ParsedCertificate],
    /// The key.
    pub key: &'a dyn gm_pki::sigalg::P256Signer,
}

impl std::fmt::Debug for P256SignerIdentity<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P256SignerIdentity")
            .field("cert", &self.cert.subject_string())
            .finish_non_exhaustive()
    }
}

/// [`sign_pdf`] with ECDSA P-256: SHA-256 messageDigest and signingCertificateV2,
/// ecdsa-with-SHA256, and the signature time stamp over SHA-256(signature value) from
/// [`TimestampAuthority::timestamp_sha256`] when `tsa` is given.
pub fn sign_pdf_p256(
    pdf: &[u8],
    signer: &P256SignerIdentity<'_>,
    opts: &PdfSignOptions,
    tsa: Option<&dyn TimestampAuthority>,
) -> Result<Vec<u8>> {
    let prepared = prepare(pdf, opts)?;
    let cms = build_cms_p256(&prepared, signer, tsa, &[])?;
    prepared.finish(&cms)
}

/// The ECDSA P-256 CMS for a prepared PDF (see [`sign_pdf_p256`]).
pub fn build_cms_p256(
    prepared: &PreparedPdf,
    signer: &P256SignerIdentity<'_>,
    tsa: Option<&dyn TimestampAuthority>,
    extra: &[gm_pki::cms::ExtraAttribute],
) -> Result<Vec<u8>> {
    let pending = gm_pki::cms::prepare_detached_p256(
        &prepared.digest_sha256(),
        signer.cert,
        signer.chain,
        &sign_options(prepared),
        extra,
    )?;
    let signature = gm_pki::sigalg::p256_sign_der(signer.key, pending.to_be_signed())?;
    let mut cms = pending.finish(&signature, gm_pki::DEFAULT_DISTID)?;
    if let Some(t) = tsa {
        let sig_value = gm_pki::cms::signature_value(&cms)?;
        let mut imprint = [0u8; 32];
        imprint.copy_from_slice(
            gm_pki::cms::HashAlg::Sha256
                .digest(&sig_value)
                .get(..32)
                .unwrap_or(&[0u8; 32]),
        );
        let token = t.timestamp_sha256(&imprint)?;
        cms = gm_pki::cms::add_signature_timestamp(&cms, &token)?;
    }
    Ok(cms)
}

fn sign_options(prepared: &PreparedPdf) -> gm_pki::cms::SignOptions {
    gm_pki::cms::SignOptions {
        detached: true,
        signing_time: match prepared.sub_filter {
            SubFilter::AdbePkcs7Detached => Some(prepared.signing_time),
            SubFilter::EtsiCadesDetached => None,
        },
        ..Default::default()
    }
}

/// First step for a key held elsewhere (a phone, a co-signing party): the CMS signed
/// attributes over this prepared PDF, to be SM2-signed by the holder of `cert`'s key.
pub fn external_cms(
    prepared: &PreparedPdf,
    cert: &ParsedCertificate,
    chain: &[ParsedCertificate],
    extra: &[gm_pki::cms::ExtraAttribute],
) -> Result<gm_pki::cms::PreparedSignature> {
    let sign_opts = gm_pki::cms::SignOptions {
        detached: true,
        signing_time: match prepared.sub_filter {
            SubFilter::AdbePkcs7Detached => Some(prepared.signing_time),
            SubFilter::EtsiCadesDetached => None,
        },
        ..Default::default()
    };
    Ok(gm_pki::cms::prepare_detached(
        &prepared.digest_sm3(),
        cert,
        chain,
        &sign_opts,
        extra,
    )?)
}

/// Second step: the CMS with the external DER SM2 `signature` (checked against the
/// certificate with SM2 ID `distid`) and the signature time stamp from `tsa` when given.
/// Put the result into the PDF with [`PreparedPdf::finish`].
pub fn complete_cms(
    pending: gm_pki::cms::PreparedSignature,
    signature: &[u8],
    distid: &str,
    tsa: Option<&dyn TimestampAuthority>,
) -> Result<Vec<u8>> {
    let mut cms = pending.finish(signature, distid)?;
    if let Some(t) = tsa {
        let sig_value = gm_pki::cms::signature_value(&cms)?;
        let token = t.timestamp(&gm_pki::signer::sm3(&sig_value))?;
        cms = gm_pki::cms::add_signature_timestamp(&cms, &token)?;
    }
    Ok(cms)
}
