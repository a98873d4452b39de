//! Finding a keyword (such as "医师签名：") on a page, to place a signature beside it.
//!
//! The page's content stream is interpreted for text positioning (q/Q, cm, BT, Tf, Td, TD, Tm,
//! T*, TL, Tj, TJ, ', "); strings are decoded with the font's encoding (ToUnicode when present,
//! via lopdf). Glyph widths are estimated (CJK and full-width 1 em, others 0.5 em), so the box
//! is exact at its start and approximate at its end for proportional Latin text.

use crate::pdf::appearance::Rect;
use crate::pdf::doc;
use lopdf::{Document, Object};

/// Where a keyword was found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeywordHit {
    /// Page number, 1-based.
    pub page: u32,
    /// The keyword's box in user space (from the baseline to the font size above it).
    pub rect: Rect,
}

type M = [f32; 6];

fn mul(a: &M, b: &M) -> M {
    [
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
        a[4] * b[0] + a[5] * b[2] + b[4],
        a[4] * b[1] + a[5] * b[3] + b[5],
    ]
}

fn apply(m: &M, x: f32, y: f32) -> (f32, f32) {
    (m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5])
}

const ID: M = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];

fn em(c: char) -> f32 {
    if u32::from(c) < 0x2E80 { 0.5 } else { 1.0 }
}

fn nums(ops: &[Object]) -> Vec<f32> {
    ops.iter().filter_map(|o| o.as_float().ok()).collect()
}

fn matrix(ops: &[Object]) -> Option<M> {
    let n = nums(ops);
    (n.len() == 6).then(|| {
        let mut m = [0.0; 6];
        for (d, s) in m.iter_mut().zip(&n) {
            *d = *s;
        }
        m
    })
}

/// Every occurrence of `keyword` on the pages of `document`.
pub(crate) fn find_in_doc(document: &Document, keyword: &str) -> Vec<KeywordHit> {
    let mut hits = Vec::new();
    if keyword.is_empty() {
        return hits;
    }
    for (idx, page) in doc::pages(document).into_iter().enumerate() {
        let page_no = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let Ok(content) = document.get_and_decode_page_content(page) else {
            continue;
        };
        let fonts = document.get_page_fonts(page).unwrap_or_default();
        let mut ctm = ID;
        let mut stack: Vec<(M, f32, f32)> = Vec::new();
        let (mut tm, mut tlm) = (ID, ID);
        let (mut size, mut leading) = (12.0f32, 0.0f32);
        let mut font: Option<&lopdf::Dictionary> = None;
        for op in &content.operations {
            let o = op.operands.as_slice();
            match op.operator.as_str() {
                "q" if stack.len() < 64 => stack.push((ctm, size, leading)),
                "Q" => {
                    if let Some((c, s, l)) = stack.pop() {
                        ctm = c;
                        size = s;
                        leading = l;
                    }
                }
                "cm" => {
                    if let Some(m) = matrix(o) {
                        ctm = mul(&m, &ctm);
                    }
                }
                "BT" => {
                    tm = ID;
                    tlm = ID;
                }
                "Tf" => {
                    if let Some(n) = o.first().and_then(|n| n.as_name().ok()) {
                        font = fonts.get(n).copied();
                    }
                    if let Some(s) = o.get(1).and_then(|s| s.as_float().ok()) {
                        size = s;
                    }
                }
                "TL" => leading = nums(o).first().copied().unwrap_or(leading),
                "Td" | "TD" => {
                    let n = nums(o);
                    if let [tx, ty] = n.as_slice() {
                        if op.operator == "TD" {
                            leading = -ty;
                        }
                        tlm = mul(&[1.0, 0.0, 0.0, 1.0, *tx, *ty], &tlm);
                        tm = tlm;
                    }
                }
                "Tm" => {
                    if let Some(m) = matrix(o) {
                        tlm = m;
                        tm = m;
                    }
                }
                "T*" => {
                    tlm = mul(&[1.0, 0.0, 0.0, 1.0, 0.0, -leading], &tlm);
                    tm = tlm;
                }
                "Tj" | "'" | "\"" | "TJ" => {
                    if op.operator != "Tj" && op.operator != "TJ" {
                        tlm = mul(&[1.0, 0.0, 0.0, 1.0, 0.0, -leading], &tlm);
                        tm = tlm;
                    }
                    // Decode the shown text, with TJ kerning turned into x offsets.
                    let mut pieces: Vec<(String, f32)> = Vec::new();
                    let parts: Vec<&Object> = match (op.operator.as_str(), o.last()) {
                        ("TJ", Some(Object::Array(a))) => a.iter().collect(),
                        (_, Some(s)) => vec![s],
                        _ => vec![],
                    };
                    for p in parts {
                        match p {
                            Object::String(bytes, _) => {
                                let text = font
                                    .and_then(|f| f.get_font_encoding(document).ok())
                                    .and_then(|enc| Document::decode_text(&enc, bytes).ok())
                                    .unwrap_or_else(|| {
                                        bytes.iter().map(|&b| char::from(b)).collect()
                                    });
                                pieces.push((text, 0.0));
                            }
                            other => {
                                if let Ok(k) = other.as_float() {
                                    pieces.push((String::new(), -k / 1000.0 * size));
                                }
                            }
                        }
                    }
                    let mut x = 0.0f32;
                    let mut line = String::new();
                    let mut starts: Vec<f32> = Vec::new();
                    for (text, kern) in &pieces {
                        x += kern;
                        for c in text.chars() {
                            starts.push(x);
                            line.push(c);
                            x += em(c) * size;
                        }
                    }
                    let m = mul(&tm, &ctm);
                    for (byte_idx, _) in line.match_indices(keyword) {
                        let ci = line.get(..byte_idx).map_or(0, |s| s.chars().count());
                        let x0 = starts.get(ci).copied().unwrap_or(0.0);
                        let x1 = x0 + keyword.chars().map(|c| em(c) * size).sum::<f32>();
                        let (ax, ay) = apply(&m, x0, -0.2 * size);
                        let (bx, by) = apply(&m, x1, 0.9 * size);
                        hits.push(KeywordHit {
                            page: page_no,
                            rect: Rect {
                                x: ax.min(bx),
                                y: ay.min(by),
                                width: (bx - ax).abs(),
                                height: (by - ay).abs(),
                            },
                        });
                    }
                    tm = mul(&[1.0, 0.0, 0.0, 1.0, x, 0.0], &tm);
                }
                _ => {}
            }
        }
    }
    hits
}

/// Find `keyword` in a PDF (untrusted bytes: errors, never panics).
pub fn find_keyword(pdf: &[u8], keyword: &str) -> crate::Result<Vec<KeywordHit>> {
    let document = doc::parse(pdf)?;
    Ok(find_in_doc(&document, keyword))
}
