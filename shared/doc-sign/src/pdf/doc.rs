//! Loading a PDF and the facts about its last revision that an incremental update needs.

use crate::error::{Error, Result};
use lopdf::{Dictionary, Document, Object, ObjectId};

/// Largest input accepted (a guard against absurd allocations; hospital PDFs are far smaller).
pub const MAX_PDF_LEN: usize = 512 * 1024 * 1024;

/// A parsed PDF plus where its last cross-reference section is and which kind it is.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub doc: Document,
    /// Offset of the last cross-reference section (the `startxref` value).
    pub startxref: usize,
    /// The last section is a cross-reference stream (so ours must be one too).
    pub xref_is_stream: bool,
    /// First free object number for new objects.
    pub size: u32,
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (0..=hay.len() - needle.len())
        .rev()
        .find(|&i| hay.get(i..i + needle.len()) == Some(needle))
}

/// Parse an unsigned decimal at `pos` after optional whitespace.
pub(crate) fn parse_uint_at(bytes: &[u8], mut pos: usize) -> Option<(usize, usize)> {
    while bytes.get(pos).is_some_and(u8::is_ascii_whitespace) {
        pos += 1;
    }
    let start = pos;
    let mut v: usize = 0;
    while let Some(d) = bytes.get(pos).filter(|b| b.is_ascii_digit()) {
        v = v.checked_mul(10)?.checked_add(usize::from(d - b'0'))?;
        pos += 1;
    }
    (pos > start).then_some((v, pos))
}

/// The `startxref` offset of the last revision in `bytes`.
pub(crate) fn last_startxref(bytes: &[u8]) -> Result<usize> {
    let tail_from = bytes.len().saturating_sub(4096);
    let tail = bytes.get(tail_from..).unwrap_or_default();
    let at = find_last(tail, b"startxref")
        .ok_or_else(|| Error::malformed("no startxref near the end of the file"))?;
    let (off, _) = parse_uint_at(tail, at + 9)
        .ok_or_else(|| Error::malformed("startxref is not followed by an offset"))?;
    if off >= bytes.len() {
        return Err(Error::malformed(
            "startxref points past the end of the file",
        ));
    }
    Ok(off)
}

/// Parse with lopdf. lopdf is not written to our no-panic rule, so a panic inside it is caught
/// and reported as malformed input.
pub(crate) fn parse(bytes: &[u8]) -> Result<Document> {
    if bytes.len() > MAX_PDF_LEN {
        return Err(Error::Unsupported(format!(
            "file of {} bytes is larger than {MAX_PDF_LEN}",
            bytes.len()
        )));
    }
    let head = bytes.get(..bytes.len().min(1024)).unwrap_or_default();
    if find_last(head, b"%PDF-").is_none() {
        return Err(Error::malformed("no %PDF- header"));
    }
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Document::load_mem(bytes)));
    let doc = match res {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return Err(Error::malformed(e)),
        Err(_) => return Err(Error::malformed("parser gave up on this input")),
    };
    if doc.trailer.has(b"Encrypt") || doc.is_encrypted() {
        return Err(Error::Unsupported(
            "encrypted PDFs cannot be signed or verified yet".into(),
        ));
    }
    Ok(doc)
}

/// Load for an incremental update.
pub(crate) fn load(bytes: &[u8]) -> Result<Loaded> {
    let doc = parse(bytes)?;
    let startxref = last_startxref(bytes)?;
    let at = bytes.get(startxref..).unwrap_or_default();
    let xref_is_stream = !at.starts_with(b"xref");
    let trailer_size = doc
        .trailer
        .get(b"Size")
        .and_then(Object::as_i64)
        .ok()
        .and_then(|s| u32::try_from(s).ok())
        .unwrap_or(0);
    let size = trailer_size.max(doc.max_id.saturating_add(1));
    root_id(&doc)?;
    Ok(Loaded {
        doc,
        startxref,
        xref_is_stream,
        size,
    })
}

pub(crate) fn root_id(doc: &Document) -> Result<ObjectId> {
    doc.trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(|_| Error::malformed("trailer has no /Root reference"))
}

/// Follow a reference (or return the object itself).
pub(crate) fn deref<'a>(doc: &'a Document, o: &'a Object) -> Option<&'a Object> {
    doc.dereference(o).ok().map(|(_, o)| o)
}

pub(crate) fn dict_of(doc: &Document, id: ObjectId) -> Result<&Dictionary> {
    doc.get_object(id)
        .and_then(Object::as_dict)
        .map_err(|_| Error::malformed(format!("object {} {} is not a dictionary", id.0, id.1)))
}

/// Page object ids in order (index 0 is page 1).
pub(crate) fn pages(doc: &Document) -> Vec<ObjectId> {
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| doc.get_pages()));
    res.map(|m| m.into_values().collect()).unwrap_or_default()
}

/// Number of pages of a PDF (untrusted bytes: an error, never a panic; a PDF without pages is
/// malformed).
pub fn page_count(bytes: &[u8]) -> Result<u32> {
    let doc = parse(bytes)?;
    let n = u32::try_from(pages(&doc).len()).unwrap_or(u32::MAX);
    if n == 0 {
        return Err(Error::malformed("the PDF has no pages"));
    }
    Ok(n)
}
