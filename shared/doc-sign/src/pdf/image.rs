//! Scanned pages and photos as PDF: one page whose size is the image at its own resolution
//! (width in points = pixels × 72 / dpi), the image drawn over the whole page, never resampled.
//! JPEG is embedded as is (`/DCTDecode`); PNG is decoded and stored losslessly (Flate, alpha as
//! `/SMask`).

use crate::error::{Error, Result};
use crate::pdf::appearance::{self, SignatureImage};
use crate::pdf::syntax;
use lopdf::{Dictionary, Object, Stream};

/// Largest image side accepted for a page (pixels).
pub const MAX_PAGE_SIDE: u32 = 20_000;
/// Largest image accepted for a page (pixels; 50 MP ≈ A3 at 600 dpi).
pub const MAX_PAGE_PIXELS: u64 = 50_000_000;

#[derive(Debug, Clone)]
enum Data {
    Jpeg {
        bytes: Vec<u8>,
        components: u8,
        adobe: bool,
    },
    Decoded(SignatureImage),
}

/// An image ready to become a page.
#[derive(Debug, Clone)]
pub struct PageImage {
    width: u32,
    height: u32,
    dpi: Option<(f32, f32)>,
    data: Data,
}

impl PageImage {
    /// Reads a baseline or progressive JPEG's frame header and JFIF density (untrusted bytes:
    /// errors, never panics). The entropy-coded data is not decoded.
    pub fn from_jpeg(bytes: &[u8]) -> Result<Self> {
        let err = |m: &str| Error::Image(format!("JPEG: {m}"));
        if !bytes.starts_with(&[0xFF, 0xD8]) {
            return Err(err("no SOI marker"));
        }
        let mut at = 2usize;
        let mut dpi = None;
        let mut adobe = false;
        loop {
            // Skip fill bytes before a marker.
            while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
                at += 1;
            }
            let (Some(&0xFF), Some(&marker)) = (bytes.get(at), bytes.get(at + 1)) else {
                return Err(err("broken marker structure"));
            };
            at += 2;
            if marker == 0xD8 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
                continue;
            }
            if marker == 0xD9 || marker == 0xDA {
                return Err(err("no frame header before the image data"));
            }
            let len = usize::from(u16::from_be_bytes([
                *bytes.get(at).ok_or_else(|| err("truncated"))?,
                *bytes.get(at + 1).ok_or_else(|| err("truncated"))?,
            ]));
            let seg = bytes
                .get(at + 2..at + len)
                .filter(|_| len >= 2)
                .ok_or_else(|| err("truncated segment"))?;
            match marker {
                0xE0 if seg.starts_with(b"JFIF\0") => {
                    let unit = seg.get(7).copied();
                    let x = be16(seg, 8);
                    let y = be16(seg, 10);
                    if let (Some(u), Some(x), Some(y)) = (unit, x, y) {
                        let f = match u {
                            1 => Some(1.0),
                            2 => Some(2.54),
                            _ => None,
                        };
                        dpi = f.map(|f| (f32::from(x) * f, f32::from(y) * f));
                    }
                }
                0xEE if seg.starts_with(b"Adobe") => adobe = true,
                // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC).
                0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                    let g = |i: usize| seg.get(i).copied().ok_or_else(|| err("short frame header"));
                    if g(0)? != 8 {
                        return Err(err("only 8-bit samples"));
                    }
                    let height = u32::from(u16::from_be_bytes([g(1)?, g(2)?]));
                    let width = u32::from(u16::from_be_bytes([g(3)?, g(4)?]));
                    let components = g(5)?;
                    if !matches!(components, 1 | 3 | 4) {
                        return Err(err("1, 3 or 4 colour components"));
                    }
                    check_size(width, height)?;
                    return Ok(Self {
                        width,
                        height,
                        dpi,
                        data: Data::Jpeg {
                            bytes: bytes.to_vec(),
                            components,
                            adobe,
                        },
                    });
                }
                _ => {}
            }
            at += len;
        }
    }

    /// Decodes a PNG (any colour type; untrusted bytes: errors, never panics).
    pub fn from_png(bytes: &[u8]) -> Result<Self> {
        let (img, dpi) = appearance::decode_png(bytes, MAX_PAGE_SIDE, MAX_PAGE_PIXELS)?;
        let (width, height) = img.size();
        Ok(Self {
            width,
            height,
            dpi,
            data: Data::Decoded(img),
        })
    }

    /// Pixel size.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Resolution recorded in the file (dots per inch), if any.
    pub fn dpi(&self) -> Option<(f32, f32)> {
        self.dpi
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn check_size(w: u32, h: u32) -> Result<()> {
    if w == 0 || h == 0 || w > MAX_PAGE_SIDE || h > MAX_PAGE_SIDE {
        return Err(Error::Image(format!(
            "{w}x{h} pixels is outside 1..={MAX_PAGE_SIDE}"
        )));
    }
    if u64::from(w) * u64::from(h) > MAX_PAGE_PIXELS {
        return Err(Error::Image(format!(
            "{w}x{h} is more than {MAX_PAGE_PIXELS} pixels"
        )));
    }
    Ok(())
}

/// A one-page PDF showing `img` at `dpi_x` × `dpi_y` (page size = pixels × 72 / dpi).
pub fn image_pdf(img: &PageImage, dpi_x: f32, dpi_y: f32) -> Result<Vec<u8>> {
    if !(dpi_x.is_finite() && dpi_y.is_finite() && dpi_x >= 1.0 && dpi_y >= 1.0) {
        return Err(Error::InvalidArgument("dpi must be ≥ 1".into()));
    }
    #[allow(clippy::cast_precision_loss)]
    let (w, h) = (
        img.width as f32 * 72.0 / dpi_x,
        img.height as f32 * 72.0 / dpi_y,
    );
    // ISO 32000-1 Annex C: page sides between 3 and 14 400 units.
    if !(3.0..=14_400.0).contains(&w) || !(3.0..=14_400.0).contains(&h) {
        return Err(Error::Image(format!(
            "the page would be {w:.0}x{h:.0} points at this resolution"
        )));
    }
    let mut objects: Vec<(u32, Object)> = Vec::new();
    let mut next = 5u32;
    let mut alloc = || {
        let id = next;
        next += 1;
        id
    };
    let image_id = match &img.data {
        Data::Decoded(decoded) => appearance::image_xobject(decoded, &mut alloc, &mut objects)?,
        Data::Jpeg {
            bytes,
            components,
            adobe,
        } => {
            let id = alloc();
            let mut d = Dictionary::new();
            d.set("Type", Object::Name(b"XObject".to_vec()));
            d.set("Subtype", Object::Name(b"Image".to_vec()));
            d.set("Width", Object::Integer(i64::from(img.width)));
            d.set("Height", Object::Integer(i64::from(img.height)));
            let space: &[u8] = match components {
                1 => b"DeviceGray",
                4 => b"DeviceCMYK",
                _ => b"DeviceRGB",
            };
            d.set("ColorSpace", Object::Name(space.to_vec()));
            if *components == 4 && *adobe {
                // Adobe's CMYK JPEGs store inverted samples.
                d.set(
                    "Decode",
                    Object::Array([1, 0, 1, 0, 1, 0, 1, 0].map(Object::Integer).to_vec()),
                );
            }
            d.set("BitsPerComponent", Object::Integer(8));
            d.set("Filter", Object::Name(b"DCTDecode".to_vec()));
            objects.push((id, Object::Stream(Stream::new(d, bytes.clone()))));
            id
        }
    };
    let num = |v: f32| {
        let mut o = Vec::new();
        syntax::write_object(&mut o, &Object::Real(v));
        String::from_utf8_lossy(&o).into_owned()
    };
    let content = format!("q {} 0 0 {} 0 0 cm /Im0 Do Q\n", num(w), num(h));
    let mut catalog = Dictionary::new();
    catalog.set("Type", Object::Name(b"Catalog".to_vec()));
    catalog.set("Pages", Object::Reference((2, 0)));
    let mut pages = Dictionary::new();
    pages.set("Type", Object::Name(b"Pages".to_vec()));
    pages.set("Kids", Object::Array(vec![Object::Reference((3, 0))]));
    pages.set("Count", Object::Integer(1));
    let mut xobjects = Dictionary::new();
    xobjects.set("Im0", Object::Reference((image_id, 0)));
    let mut resources = Dictionary::new();
    resources.set("XObject", Object::Dictionary(xobjects));
    let mut page = Dictionary::new();
    page.set("Type", Object::Name(b"Page".to_vec()));
    page.set("Parent", Object::Reference((2, 0)));
    page.set(
        "MediaBox",
        Object::Array(vec![0.into(), 0.into(), Object::Real(w), Object::Real(h)]),
    );
    page.set("Resources", Object::Dictionary(resources));
    page.set("Contents", Object::Reference((4, 0)));
    let mut all = vec![
        (1, Object::Dictionary(catalog)),
        (2, Object::Dictionary(pages)),
        (3, Object::Dictionary(page)),
        (
            4,
            Object::Stream(Stream::new(Dictionary::new(), content.into_bytes())),
        ),
    ];
    all.extend(objects);
    all.sort_by_key(|(id, _)| *id);
    Ok(write_file(&all))
}

/// A complete PDF from consecutive objects 1..=n with a classic cross-reference table.
fn write_file(objects: &[(u32, Object)]) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (id, o) in objects {
        offsets.push(out.len());
        out.extend_from_slice(format!("{id} 0 obj\n").as_bytes());
        syntax::write_object(&mut out, o);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    let size = objects.len() + 1;
    out.extend_from_slice(format!("xref\n0 {size}\n0000000000 65535 f \n").as_bytes());
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_page_is_the_image_at_its_resolution() {
        let png = appearance::round_seal_png(300).unwrap();
        let img = PageImage::from_png(&png).unwrap();
        let pdf = image_pdf(&img, 150.0, 150.0).unwrap();
        let rep = crate::verify_pdf(&pdf).unwrap();
        assert!(rep.signatures.is_empty());
        let doc = lopdf::Document::load_mem(&pdf).unwrap();
        let page = doc.get_pages().into_values().next().unwrap();
        let mb = doc
            .get_dictionary(page)
            .unwrap()
            .get(b"MediaBox")
            .unwrap()
            .as_array()
            .unwrap()
            .clone();
        assert!((mb[2].as_float().unwrap() - 144.0).abs() < 0.01, "{mb:?}");
    }

    #[test]
    fn jpeg_headers() {
        // SOI, JFIF APP0 at 300 dpi, SOF0 8-bit 40x20 3 components, EOI.
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
        j.extend_from_slice(b"JFIF\0\x01\x02\x01\x01\x2c\x01\x2c\0\0");
        j.extend_from_slice(&[0xFF, 0xC0, 0, 17, 8, 0, 20, 0, 40, 3]);
        j.extend_from_slice(&[1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        j.extend_from_slice(&[0xFF, 0xD9]);
        let img = PageImage::from_jpeg(&j).unwrap();
        assert_eq!(img.size(), (40, 20));
        assert_eq!(img.dpi(), Some((300.0, 300.0)));
        for cut in 0..j.len() - 2 {
            let _ = PageImage::from_jpeg(&j[..cut]);
        }
        assert!(PageImage::from_jpeg(b"\xFF\xD8\xFF\xD9").is_err());
    }

    proptest::proptest! {
        #[test]
        fn jpeg_reader_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let mut b = vec![0xFF, 0xD8];
            b.extend(bytes);
            let _ = PageImage::from_jpeg(&b);
        }
    }
}
