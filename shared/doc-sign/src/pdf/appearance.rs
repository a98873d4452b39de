//! Visible signature appearances: a handwritten signature image, an electronic seal image and a
//! text block (signer, time, certificate serial), composable in one box on one page.
//!
//! Images are PNG (any colour type and bit depth the `png` crate expands to 8-bit); transparency
//! becomes a soft mask (/SMask), so a transparent handwriting or seal image does not hide the page.
//! Text uses the Adobe standard CJK font `STSong-Light` with `UniGB-UCS2-H` (not embedded: every
//! conforming reader has it or a substitute, e.g. Noto Sans CJK with poppler).

use crate::error::{Error, Result};
use flate2::Compression;
use flate2::write::ZlibEncoder;
use lopdf::{Dictionary, Object, Stream};
use std::fmt::Write as _;
use std::io::Write as _;

/// Largest accepted image side in pixels.
pub const MAX_IMAGE_SIDE: u32 = 4096;

/// A box on a page, in PDF user-space points, measured from the page's lower-left corner
/// (the MediaBox origin).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Left edge.
    pub x: f32,
    /// Bottom edge.
    pub y: f32,
    /// Width (> 0).
    pub width: f32,
    /// Height (> 0).
    pub height: f32,
}

/// A decoded PNG: 8-bit RGB samples plus optional 8-bit alpha.
#[derive(Debug, Clone)]
pub struct SignatureImage {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
    alpha: Option<Vec<u8>>,
}

impl SignatureImage {
    /// Decode a PNG (untrusted bytes: errors, never panics).
    pub fn from_png(bytes: &[u8]) -> Result<Self> {
        let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
        dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = dec.read_info().map_err(|e| Error::Image(e.to_string()))?;
        let (w, h) = {
            let info = reader.info();
            (info.width, info.height)
        };
        if w == 0 || h == 0 || w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE {
            return Err(Error::Image(format!(
                "{w}x{h} pixels is outside 1..={MAX_IMAGE_SIDE}"
            )));
        }
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| Error::Image("image too large".into()))?;
        let mut buf = vec![0; size];
        let frame = reader
            .next_frame(&mut buf)
            .map_err(|e| Error::Image(e.to_string()))?;
        let data = buf.get(..frame.buffer_size()).unwrap_or_default();
        let px = usize::try_from(u64::from(w) * u64::from(h))
            .map_err(|_| Error::Image("too large".into()))?;
        let (rgb, alpha) = match frame.color_type {
            png::ColorType::Rgb => (data.to_vec(), None),
            png::ColorType::Rgba => {
                let mut rgb = Vec::with_capacity(px * 3);
                let mut a = Vec::with_capacity(px);
                for c in data.chunks_exact(4) {
                    rgb.extend_from_slice(c.get(..3).unwrap_or(&[0, 0, 0]));
                    a.push(c.get(3).copied().unwrap_or(255));
                }
                (rgb, Some(a))
            }
            png::ColorType::Grayscale => (data.iter().flat_map(|&g| [g, g, g]).collect(), None),
            png::ColorType::GrayscaleAlpha => {
                let mut rgb = Vec::with_capacity(px * 3);
                let mut a = Vec::with_capacity(px);
                for c in data.chunks_exact(2) {
                    let g = c.first().copied().unwrap_or(0);
                    rgb.extend_from_slice(&[g, g, g]);
                    a.push(c.get(1).copied().unwrap_or(255));
                }
                (rgb, Some(a))
            }
            png::ColorType::Indexed => return Err(Error::Image("palette not expanded".into())),
        };
        if rgb.len() != px * 3 || alpha.as_ref().is_some_and(|a| a.len() != px) {
            return Err(Error::Image("truncated image data".into()));
        }
        Ok(Self {
            width: w,
            height: h,
            rgb,
            alpha,
        })
    }

    /// Pixel size.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }
}

/// A block of text lines, drawn from the top-left of the box.
#[derive(Debug, Clone)]
pub struct TextBlock {
    /// Lines, top to bottom.
    pub lines: Vec<String>,
    /// Font size in points; `None` picks the largest that fits (at most 12).
    pub font_size: Option<f32>,
}

impl TextBlock {
    /// The usual block: signer name, signing time, certificate serial number.
    pub fn signer_time_serial(
        cert: &gm_pki::ParsedCertificate,
        time: std::time::SystemTime,
    ) -> Self {
        let name = cert
            .subject_attr(gm_pki::oid::AT_COMMON_NAME)
            .unwrap_or_else(|| cert.subject_string());
        Self {
            lines: vec![
                format!("签名人: {name}"),
                format!("时间: {}", crate::pdf::syntax::human_time(time)),
                format!("证书序列号: {}", cert.serial_hex()),
            ],
            font_size: None,
        }
    }
}

/// One layer of an appearance; layers are drawn in order (later on top).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Layer {
    /// A handwritten signature image, scaled to fit the box (aspect kept, centred).
    Handwriting(SignatureImage),
    /// An electronic seal image (typically a round red seal with transparency), fitted likewise.
    Seal(SignatureImage),
    /// Text.
    Text(TextBlock),
}

/// Where and what to draw.
#[derive(Debug, Clone)]
pub struct Appearance {
    /// Page number, 1-based.
    pub page: u32,
    /// The box.
    pub rect: Rect,
    /// Layers, bottom first.
    pub layers: Vec<Layer>,
}

fn deflate(data: &[u8]) -> Result<Vec<u8>> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).map_err(|_| Error::Internal("deflate"))?;
    e.finish().map_err(|_| Error::Internal("deflate"))
}

fn num(v: f32) -> String {
    let mut o = Vec::new();
    crate::pdf::syntax::write_object(&mut o, &Object::Real(v));
    String::from_utf8_lossy(&o).into_owned()
}

/// Width of a string in em, roughly: CJK and full-width characters 1 em, others 0.5 em.
fn text_width_em(s: &str) -> f32 {
    s.chars()
        .map(|c| if u32::from(c) < 0x2E80 { 0.5 } else { 1.0 })
        .sum()
}

/// Objects an appearance adds: the form XObject (last) and its resources (images, font).
pub(crate) struct Built {
    /// (object number, object) for each new object; the appearance stream is `ap_id`.
    pub objects: Vec<(u32, Object)>,
    pub ap_id: u32,
}

/// Build the appearance stream for a box of `w`×`h` points. `alloc` hands out object numbers.
pub(crate) fn build(app: &Appearance, alloc: &mut dyn FnMut() -> u32) -> Result<Built> {
    let (w, h) = (app.rect.width, app.rect.height);
    if !(w.is_finite() && h.is_finite() && w > 0.0 && h > 0.0) {
        return Err(Error::InvalidArgument(
            "appearance box must have a positive size".into(),
        ));
    }
    let mut objects = Vec::new();
    let mut xobjects = Dictionary::new();
    let mut font_id = None;
    let mut ops = String::new();
    for (i, layer) in app.layers.iter().enumerate() {
        match layer {
            Layer::Handwriting(img) | Layer::Seal(img) => {
                let id = alloc();
                let mut d = Dictionary::new();
                d.set("Type", Object::Name(b"XObject".to_vec()));
                d.set("Subtype", Object::Name(b"Image".to_vec()));
                d.set("Width", Object::Integer(i64::from(img.width)));
                d.set("Height", Object::Integer(i64::from(img.height)));
                d.set("ColorSpace", Object::Name(b"DeviceRGB".to_vec()));
                d.set("BitsPerComponent", Object::Integer(8));
                d.set("Filter", Object::Name(b"FlateDecode".to_vec()));
                if let Some(a) = &img.alpha {
                    let sid = alloc();
                    let mut sd = Dictionary::new();
                    sd.set("Type", Object::Name(b"XObject".to_vec()));
                    sd.set("Subtype", Object::Name(b"Image".to_vec()));
                    sd.set("Width", Object::Integer(i64::from(img.width)));
                    sd.set("Height", Object::Integer(i64::from(img.height)));
                    sd.set("ColorSpace", Object::Name(b"DeviceGray".to_vec()));
                    sd.set("BitsPerComponent", Object::Integer(8));
                    sd.set("Filter", Object::Name(b"FlateDecode".to_vec()));
                    objects.push((sid, Object::Stream(Stream::new(sd, deflate(a)?))));
                    d.set("SMask", Object::Reference((sid, 0)));
                }
                objects.push((id, Object::Stream(Stream::new(d, deflate(&img.rgb)?))));
                let name = format!("Im{i}");
                xobjects.set(name.clone(), Object::Reference((id, 0)));
                // Fit, keep aspect, centre.
                #[allow(clippy::cast_precision_loss)]
                let (iw, ih) = (img.width as f32, img.height as f32);
                let scale = (w / iw).min(h / ih);
                let (dw, dh) = (iw * scale, ih * scale);
                let (dx, dy) = ((w - dw) / 2.0, (h - dh) / 2.0);
                let _ = writeln!(
                    ops,
                    "q {} 0 0 {} {} {} cm /{name} Do Q",
                    num(dw),
                    num(dh),
                    num(dx),
                    num(dy)
                );
            }
            Layer::Text(tb) => {
                font_id.get_or_insert_with(&mut *alloc);
                let n = tb.lines.len().max(1);
                #[allow(clippy::cast_precision_loss)]
                let nf = n as f32;
                let widest = tb
                    .lines
                    .iter()
                    .map(|l| text_width_em(l))
                    .fold(1.0f32, f32::max);
                let pad = 2.0f32;
                let size = tb.font_size.unwrap_or_else(|| {
                    ((w - 2.0 * pad) / widest)
                        .min((h - 2.0 * pad) / (nf * 1.2))
                        .clamp(2.0, 12.0)
                });
                ops.push_str("BT 0 g /F1 ");
                ops.push_str(&num(size));
                ops.push_str(" Tf ");
                ops.push_str(&num(size * 1.2));
                ops.push_str(" TL ");
                let _ = writeln!(ops, "{} {} Td", num(pad), num(h - pad - size));
                for (k, line) in tb.lines.iter().enumerate() {
                    if k > 0 {
                        ops.push_str("T* ");
                    }
                    ops.push('<');
                    for u in line.encode_utf16() {
                        let _ = write!(ops, "{u:04X}");
                    }
                    ops.push_str("> Tj\n");
                }
                ops.push_str("ET\n");
            }
        }
    }
    let mut resources = Dictionary::new();
    if !xobjects.is_empty() {
        resources.set("XObject", Object::Dictionary(xobjects));
    }
    if let Some(fid) = font_id {
        let mut fonts = Dictionary::new();
        fonts.set("F1", Object::Reference((fid, 0)));
        resources.set("Font", Object::Dictionary(fonts));
        objects.push((fid, cjk_font()));
    }
    let ap_id = alloc();
    let mut d = Dictionary::new();
    d.set("Type", Object::Name(b"XObject".to_vec()));
    d.set("Subtype", Object::Name(b"Form".to_vec()));
    d.set(
        "BBox",
        Object::Array(vec![0.into(), 0.into(), Object::Real(w), Object::Real(h)]),
    );
    d.set("Resources", Object::Dictionary(resources));
    d.set("Filter", Object::Name(b"FlateDecode".to_vec()));
    objects.push((
        ap_id,
        Object::Stream(Stream::new(d, deflate(ops.as_bytes())?)),
    ));
    Ok(Built { objects, ap_id })
}

/// An empty appearance (for invisible signatures some validators still want /AP).
pub(crate) fn empty_form() -> Object {
    let mut d = Dictionary::new();
    d.set("Type", Object::Name(b"XObject".to_vec()));
    d.set("Subtype", Object::Name(b"Form".to_vec()));
    d.set(
        "BBox",
        Object::Array(vec![0.into(), 0.into(), 0.into(), 0.into()]),
    );
    Object::Stream(Stream::new(d, Vec::new()))
}

/// Type0 STSong-Light, UniGB-UCS2-H (ISO 32000-1 §9.7.5.2 predefined CMap; Adobe-GB1).
fn cjk_font() -> Object {
    let mut info = Dictionary::new();
    info.set("Registry", Object::string_literal("Adobe"));
    info.set("Ordering", Object::string_literal("GB1"));
    info.set("Supplement", Object::Integer(2));
    let mut fd = Dictionary::new();
    fd.set("Type", Object::Name(b"FontDescriptor".to_vec()));
    fd.set("FontName", Object::Name(b"STSong-Light".to_vec()));
    fd.set("Flags", Object::Integer(6));
    fd.set(
        "FontBBox",
        Object::Array(vec![(-25).into(), (-254).into(), 1000.into(), 880.into()]),
    );
    fd.set("ItalicAngle", Object::Integer(0));
    fd.set("Ascent", Object::Integer(880));
    fd.set("Descent", Object::Integer(-120));
    fd.set("CapHeight", Object::Integer(880));
    fd.set("StemV", Object::Integer(93));
    let mut cid = Dictionary::new();
    cid.set("Type", Object::Name(b"Font".to_vec()));
    cid.set("Subtype", Object::Name(b"CIDFontType0".to_vec()));
    cid.set("BaseFont", Object::Name(b"STSong-Light".to_vec()));
    cid.set("CIDSystemInfo", Object::Dictionary(info));
    cid.set("FontDescriptor", Object::Dictionary(fd));
    cid.set("DW", Object::Integer(1000));
    // Half-width Latin CIDs 1..95 in Adobe-GB1.
    cid.set("W", Object::Array(vec![1.into(), 95.into(), 500.into()]));
    let mut f = Dictionary::new();
    f.set("Type", Object::Name(b"Font".to_vec()));
    f.set("Subtype", Object::Name(b"Type0".to_vec()));
    f.set(
        "BaseFont",
        Object::Name(b"STSong-Light-UniGB-UCS2-H".to_vec()),
    );
    f.set("Encoding", Object::Name(b"UniGB-UCS2-H".to_vec()));
    f.set(
        "DescendantFonts",
        Object::Array(vec![Object::Dictionary(cid)]),
    );
    Object::Dictionary(f)
}
