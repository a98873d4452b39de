//! The human verification report as a PDF (A4, Chinese), self-contained: the glyphs the report
//! uses are taken from a CJK font installed on the machine (Debian `fonts-noto-cjk`, Noto Sans
//! CJK SC) and embedded as Type 3 fonts (each glyph's outline as a path, at most 256 glyphs a
//! font) with a `/ToUnicode` map, so the text is searchable, can be copied, and `pdftotext`
//! extracts it. Only the glyphs used are embedded (a one-page report is a few tens of KiB).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pdf_writer::types::SystemInfo;
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

/// Where the CJK font is looked for, in order (the first that loads and has the glyphs wins).
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
];

/// Largest font file read (Noto Sans CJK Regular is about 20 MB).
const MAX_FONT_FILE: u64 = 64 * 1024 * 1024;

/// The report cannot be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ReportPdfError {
    /// No usable CJK font on this machine.
    #[error("no CJK font found (install fonts-noto-cjk); looked at {0}")]
    NoFont(String),
}

/// A loaded font file and the face index of its Simplified Chinese face.
struct FontFile {
    data: Vec<u8>,
    index: u32,
    path: PathBuf,
}

fn load_font(path: &Path) -> Option<FontFile> {
    if std::fs::metadata(path).ok()?.len() > MAX_FONT_FILE {
        return None;
    }
    let data = std::fs::read(path).ok()?;
    let n = ttf_parser::fonts_in_collection(&data).unwrap_or(1);
    let mut fallback = None;
    for index in 0..n.min(64) {
        let Ok(face) = ttf_parser::Face::parse(&data, index) else {
            continue;
        };
        if face.glyph_index('验').is_none() || face.glyph_index('A').is_none() {
            continue;
        }
        let family = face
            .names()
            .into_iter()
            .filter(|n| n.name_id == ttf_parser::name_id::FAMILY)
            .find_map(|n| n.to_string())
            .unwrap_or_default();
        if family.ends_with(" SC") || family.contains("Simplified") {
            return Some(FontFile {
                data,
                index,
                path: path.to_owned(),
            });
        }
        fallback.get_or_insert(index);
    }
    fallback.map(|index| FontFile {
        data,
        index,
        path: path.to_owned(),
    })
}

/// The font, loaded once per process.
fn font() -> Result<&'static FontFile, ReportPdfError> {
    static FONT: OnceLock<Option<FontFile>> = OnceLock::new();
    FONT.get_or_init(|| FONT_CANDIDATES.iter().find_map(|p| load_font(Path::new(p))))
        .as_ref()
        .ok_or_else(|| ReportPdfError::NoFont(FONT_CANDIDATES.join(", ")))
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Line {
    /// Text (no control characters needed; they are drawn as spaces).
    pub text: String,
    /// Size in points.
    pub size: f32,
    /// RGB fill colour, 0..1.
    pub rgb: (f32, f32, f32),
    /// Indent in points.
    pub indent: f32,
    /// Extra space above, in points.
    pub space_before: f32,
}

/// Glyph outline → PDF path operators, in font units (quadratic curves raised to cubic).
struct PathOut {
    ops: Content,
    cur: (f32, f32),
}

impl ttf_parser::OutlineBuilder for PathOut {
    fn move_to(&mut self, x: f32, y: f32) {
        self.ops.move_to(x, y);
        self.cur = (x, y);
    }
    fn line_to(&mut self, x: f32, y: f32) {
        self.ops.line_to(x, y);
        self.cur = (x, y);
    }
    fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) {
        let (x0, y0) = self.cur;
        self.ops.cubic_to(
            x0 + 2.0 / 3.0 * (x1 - x0),
            y0 + 2.0 / 3.0 * (y1 - y0),
            x + 2.0 / 3.0 * (x1 - x),
            y + 2.0 / 3.0 * (y1 - y),
            x,
            y,
        );
        self.cur = (x, y);
    }
    fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) {
        self.ops.cubic_to(x1, y1, x2, y2, x, y);
        self.cur = (x, y);
    }
    fn close(&mut self) {
        self.ops.close_path();
    }
}

/// Characters in the order first used; each gets (font number, code in that font).
struct GlyphSet<'f> {
    face: ttf_parser::Face<'f>,
    chars: Vec<char>,
    index: HashMap<char, usize>,
}

impl GlyphSet<'_> {
    fn code(&mut self, c: char) -> (usize, u8) {
        let c = if c.is_control() { ' ' } else { c };
        let i = *self.index.entry(c).or_insert_with(|| {
            self.chars.push(c);
            self.chars.len() - 1
        });
        (i / 256, u8::try_from(i % 256).unwrap_or(0))
    }
    /// Advance of `c` in points at `size`.
    fn advance(&self, c: char, size: f32) -> f32 {
        let upem = f32::from(self.face.units_per_em().max(1));
        let w = self
            .face
            .glyph_index(c)
            .and_then(|g| self.face.glyph_hor_advance(g))
            .unwrap_or(self.face.units_per_em() / 2);
        f32::from(w) * size / upem
    }
}

/// A run of bytes in one of the Type 3 fonts (font number, codes).
type Run = (usize, Vec<u8>);
/// A line placed on a page: x, y, size, colour, runs.
type Placed = (f32, f32, f32, (f32, f32, f32), Vec<Run>);

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 56.0;

/// Break `text` into pieces no wider than `width` (between characters: CJK text has no spaces,
/// and hex strings must break somewhere).
fn wrap(glyphs: &GlyphSet<'_>, text: &str, size: f32, width: f32) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut w = 0.0;
    for c in text.chars() {
        let a = glyphs.advance(c, size);
        if w + a > width && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
            w = 0.0;
        }
        cur.push(c);
        w += a;
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

/// Draw `lines` on as many A4 pages as needed, with `title` as the document title.
pub fn render(title: &str, lines: &[Line]) -> Result<Vec<u8>, ReportPdfError> {
    let font = font()?;
    let face = ttf_parser::Face::parse(&font.data, font.index)
        .map_err(|_| ReportPdfError::NoFont(font.path.display().to_string()))?;
    let mut glyphs = GlyphSet {
        face,
        chars: Vec::new(),
        index: HashMap::new(),
    };
    // Lay out: pages of placed lines.
    let mut pages: Vec<Vec<Placed>> = vec![Vec::new()];
    let mut y = PAGE_H - MARGIN;
    for line in lines {
        let lead = line.size * 1.45;
        y -= line.space_before;
        for piece in wrap(
            &glyphs,
            &line.text,
            line.size,
            PAGE_W - 2.0 * MARGIN - line.indent,
        ) {
            if y - lead < MARGIN {
                pages.push(Vec::new());
                y = PAGE_H - MARGIN;
            }
            y -= lead;
            let mut runs: Vec<Run> = Vec::new();
            for c in piece.chars() {
                let (f, code) = glyphs.code(c);
                match runs.last_mut() {
                    Some((lf, bytes)) if *lf == f => bytes.push(code),
                    _ => runs.push((f, vec![code])),
                }
            }
            if let Some(page) = pages.last_mut() {
                page.push((MARGIN + line.indent, y, line.size, line.rgb, runs));
            }
        }
    }

    let mut pdf = Pdf::new();
    let mut next = 1;
    let mut alloc = || {
        let r = Ref::new(next);
        next += 1;
        r
    };
    let catalog = alloc();
    let tree = alloc();
    let info = alloc();
    let font_count = glyphs.chars.len().div_ceil(256).max(1);
    let font_refs: Vec<Ref> = (0..font_count).map(|_| alloc()).collect();
    let page_refs: Vec<(Ref, Ref)> = pages.iter().map(|_| (alloc(), alloc())).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_refs.iter().map(|p| p.0))
        .count(i32::try_from(page_refs.len()).unwrap_or(i32::MAX));
    pdf.document_info(info)
        .title(TextStr(title))
        .producer(TextStr("Yiqian 医签 cosign-server"));
    let font_names: Vec<String> = (0..font_count).map(|i| format!("F{i}")).collect();
    for ((page_ref, content_ref), items) in page_refs.iter().zip(&pages) {
        let mut page = pdf.page(*page_ref);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(tree);
        page.contents(*content_ref);
        {
            let mut res = page.resources();
            let mut fonts = res.fonts();
            for (name, r) in font_names.iter().zip(&font_refs) {
                fonts.pair(Name(name.as_bytes()), *r);
            }
        }
        page.finish();
        let mut c = Content::new();
        for (x, y, size, (r, g, b), runs) in items {
            c.set_fill_rgb(*r, *g, *b);
            c.begin_text();
            c.next_line(*x, *y);
            for (f, bytes) in runs {
                let name = font_names.get(*f).map_or(&b"F0"[..], |n| n.as_bytes());
                c.set_font(Name(name), *size);
                c.show(Str(bytes));
            }
            c.end_text();
        }
        let data = miniz_deflate(&c.finish());
        pdf.stream(*content_ref, &data).filter(Filter::FlateDecode);
    }
    // The fonts: one Type 3 font per 256 characters.
    let upem = f32::from(glyphs.face.units_per_em().max(1));
    let bbox = glyphs.face.global_bounding_box();
    for (fi, font_ref) in font_refs.iter().enumerate() {
        let chars: Vec<char> = glyphs
            .chars
            .iter()
            .skip(fi * 256)
            .take(256)
            .copied()
            .collect();
        let mut procs = Vec::new();
        let mut widths = Vec::new();
        for c in &chars {
            let gid = glyphs
                .face
                .glyph_index(*c)
                .unwrap_or(ttf_parser::GlyphId(0));
            let adv = f32::from(glyphs.face.glyph_hor_advance(gid).unwrap_or(0));
            let mut out = PathOut {
                ops: Content::new(),
                cur: (0.0, 0.0),
            };
            let gb = glyphs.face.outline_glyph(gid, &mut out);
            let mut proc_ = Content::new();
            match gb {
                Some(b) => {
                    proc_.start_shape_glyph(
                        adv,
                        f32::from(b.x_min),
                        f32::from(b.y_min),
                        f32::from(b.x_max),
                        f32::from(b.y_max),
                    );
                }
                None => {
                    proc_.start_shape_glyph(adv, 0.0, 0.0, 0.0, 0.0);
                }
            }
            let mut bytes = proc_.finish().into_vec();
            if gb.is_some() {
                bytes.push(b'\n');
                bytes.extend_from_slice(&out.ops.finish().into_vec());
                bytes.extend_from_slice(b"\nf");
            }
            procs.push(bytes);
            widths.push(adv);
        }
        let proc_refs: Vec<Ref> = procs.iter().map(|_| alloc()).collect();
        let cmap_ref = alloc();
        {
            let mut t3 = pdf.type3_font(*font_ref);
            t3.bbox(Rect::new(
                f32::from(bbox.x_min),
                f32::from(bbox.y_min),
                f32::from(bbox.x_max),
                f32::from(bbox.y_max),
            ));
            t3.matrix([1.0 / upem, 0.0, 0.0, 1.0 / upem, 0.0, 0.0]);
            {
                let mut cp = t3.char_procs();
                for (i, r) in proc_refs.iter().enumerate() {
                    cp.pair(Name(format!("g{i}").as_bytes()), *r);
                }
            }
            {
                let mut enc = t3.encoding_custom();
                let mut diff = enc.differences();
                let names: Vec<String> = (0..chars.len()).map(|i| format!("g{i}")).collect();
                diff.consecutive(0, names.iter().map(|n| Name(n.as_bytes())));
            }
            t3.first_char(0);
            t3.last_char(u8::try_from(chars.len().saturating_sub(1)).unwrap_or(255));
            t3.widths(widths);
            t3.to_unicode(cmap_ref);
        }
        for (r, bytes) in proc_refs.iter().zip(&procs) {
            pdf.stream(*r, &miniz_deflate(bytes))
                .filter(Filter::FlateDecode);
        }
        let mut cmap = pdf_writer::types::UnicodeCmap::<u8>::new(
            Name(b"Yiqian-Report-UCS"),
            SystemInfo {
                registry: Str(b"Adobe"),
                ordering: Str(b"Identity"),
                supplement: 0,
            },
        );
        for (i, c) in chars.iter().enumerate() {
            cmap.pair(u8::try_from(i).unwrap_or(0), *c);
        }
        pdf.cmap(cmap_ref, &cmap.finish());
    }
    Ok(pdf.finish())
}

fn miniz_deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_chinese_and_ascii_over_several_fonts_and_pages() {
        // More than 256 distinct characters (two Type 3 fonts) and more than one page.
        let mut lines = vec![Line {
            text: "结论：全部 1 个签名验证通过。".into(),
            size: 14.0,
            rgb: (0.0, 0.4, 0.0),
            indent: 0.0,
            space_before: 0.0,
        }];
        let many: String = (0x4e00u32..0x4e00 + 400)
            .filter_map(char::from_u32)
            .collect();
        for _ in 0..40 {
            lines.push(Line {
                text: many.clone(),
                size: 10.5,
                rgb: (0.0, 0.0, 0.0),
                indent: 12.0,
                space_before: 2.0,
            });
        }
        let pdf = render("验证报告", &lines).unwrap();
        let text = String::from_utf8_lossy(&pdf);
        let count: usize = text
            .split("/Count ")
            .nth(1)
            .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(count > 1, "{count} pages");
        assert!(text.contains("/Type3"));
        assert!(text.contains("/F1"));
    }
}
