//! ID-card OCR: find the card in a photo and rectify it (OpenCV contours and a perspective
//! warp), crop each field at its fixed place ([`crate::layout`]) and read it with the PP-OCRv4
//! recogniser (ONNX Runtime), then check the number and its agreement with the printed birth
//! date and sex.
//!
//! Short fields are decoded against what they can hold: the sex against 男/女, the number
//! against digits and X, the birth row against digits and 年月日, the validity against digits,
//! `.`, `-` and 长期; the ethnicity is snapped to the nearest of the 56 names. Names and
//! addresses are read freely.

// Pixel geometry: coordinates and sizes are bounded by the image limits (≤ 8000 px), grey
// levels by 255; the casts between i32, f32, f64 and usize below are exact or rounded on purpose.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::collections::HashMap;
use std::sync::Mutex;

use opencv::core::{self, Mat, Point, Point2f, Rect, Size, Vector};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use serde::Serialize;

use crate::idcard::{self, CardBack, CardFront, Inconsistency, Sex};
use crate::layout::{self, CARD_H, CARD_W, FieldBox};
use crate::models::{Model, ModelDir, init_onnxruntime};
use crate::synth::ETHNICITIES;
use crate::{Error, Result};

/// Height the recogniser reads at.
const REC_H: i32 = 48;
/// Narrowest input width (as PaddleOCR pads).
const REC_MIN_W: i32 = 320;
/// Widest input accepted (a field is never longer).
const REC_MAX_W: i32 = 1600;
/// Free reads drop characters below this probability at the end of the line (a stray mark
/// at the crop's right edge, next to the portrait or the card's edge, reads as a rare glyph).
const EDGE_MIN_PROB: f32 = 0.3;
/// Widening for dense digit fields (number, dates).
const DIGIT_STRETCH: f64 = 1.7;
/// Horizontal margin around a field box: absorbs rectification error (a cut first glyph is
/// lost, a stray mark is trimmed by [`EDGE_MIN_PROB`]).
const X_MARGIN: i32 = 14;

/// The PP-OCRv4 recogniser with its character dictionary (ONNX metadata key `character`).
pub struct Recognizer {
    session: Mutex<Session>,
    /// Index 0 is the CTC blank, the last is a space (as PaddleOCR's decoder).
    chars: Vec<String>,
    index: HashMap<char, usize>,
}

impl std::fmt::Debug for Recognizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recognizer")
            .field("classes", &self.chars.len())
            .finish_non_exhaustive()
    }
}

/// A text read with its confidence (mean per-character probability, 0..1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Read {
    /// The text.
    pub text: String,
    /// Mean probability of the characters kept.
    pub confidence: f32,
}

impl Recognizer {
    /// Loads the model; `threads` is ONNX Runtime's intra-op thread count.
    pub fn load(models: &ModelDir, threads: usize) -> Result<Self> {
        models.require(&Model::OCR)?;
        init_onnxruntime(models)?;
        let session = Session::builder()?
            .with_optimization_level(GraphOptimizationLevel::Level3)?
            .with_intra_threads(threads.max(1))?
            .with_inter_threads(1)?
            .commit_from_file(models.path(Model::OcrRecognizer))?;
        let dict = session
            .metadata()?
            .custom("character")?
            .ok_or_else(|| Error::Runtime("recogniser has no `character` metadata".into()))?;
        let mut chars = vec![String::new()];
        chars.extend(dict.lines().map(str::to_owned));
        chars.push(" ".into());
        let index = chars
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let mut it = s.chars();
                match (it.next(), it.next()) {
                    (Some(c), None) if i > 0 => Some((c, i)),
                    _ => None,
                }
            })
            .collect();
        Ok(Self {
            session: Mutex::new(session),
            chars,
            index,
        })
    }

    /// Per-time-step class probabilities of a BGR text-line image: (steps, classes, probs).
    /// `stretch` widens the line before reading: dense digit strings otherwise get too few CTC
    /// time steps (one per 8 pixels) to keep a blank between two equal digits.
    fn probabilities(&self, img: &Mat, stretch: f64) -> Result<(usize, usize, Vec<f32>)> {
        let (w, h) = (img.cols(), img.rows());
        if w < 2 || h < 2 {
            return Ok((0, self.chars.len(), Vec::new()));
        }
        let rw = ((f64::from(REC_H) * stretch * f64::from(w) / f64::from(h)).ceil() as i32)
            .clamp(1, REC_MAX_W);
        let width = rw.max(REC_MIN_W);
        let mut resized = Mat::default();
        imgproc::resize(
            img,
            &mut resized,
            Size::new(rw, REC_H),
            0.0,
            0.0,
            imgproc::INTER_LINEAR,
        )?;
        let (rw_u, width_u, h_u) = (rw as usize, width as usize, REC_H as usize);
        let mut data = vec![0f32; 3 * h_u * width_u];
        let bytes = resized.data_bytes()?;
        for y in 0..h_u {
            for x in 0..rw_u {
                for c in 0..3 {
                    let v = f32::from(bytes[(y * rw_u + x) * 3 + c]);
                    data[c * h_u * width_u + y * width_u + x] = (v / 255.0 - 0.5) / 0.5;
                }
            }
        }
        let input = Tensor::from_array(([1usize, 3, h_u, width_u], data))?;
        let mut session = self
            .session
            .lock()
            .map_err(|_| Error::Internal("recogniser lock poisoned".into()))?;
        let outputs = session.run(ort::inputs![input])?;
        let (shape, probs) = outputs[0].try_extract_tensor::<f32>()?;
        let (steps, classes) = match **shape {
            [1, t, c] => (
                usize::try_from(t).unwrap_or(0),
                usize::try_from(c).unwrap_or(0),
            ),
            _ => {
                return Err(Error::Runtime(format!(
                    "unexpected recogniser output shape {shape:?}"
                )));
            }
        };
        if classes != self.chars.len() || probs.len() != steps * classes {
            return Err(Error::Runtime(
                "recogniser output does not match its dictionary".into(),
            ));
        }
        Ok((steps, classes, probs.to_vec()))
    }

    /// Greedy CTC decoding, optionally restricted to `allowed` characters. Free reads drop
    /// very unsure characters at the end ([`EDGE_MIN_PROB`]).
    fn decode(&self, img: &Mat, allowed: Option<&[char]>, stretch: f64) -> Result<Read> {
        let (steps, classes, probs) = self.probabilities(img, stretch)?;
        let mask: Option<Vec<usize>> = allowed.map(|a| {
            let mut m: Vec<usize> = a
                .iter()
                .filter_map(|c| self.index.get(c).copied())
                .collect();
            m.push(0);
            m
        });
        let mut kept: Vec<(usize, f32)> = Vec::new();
        let mut last = 0usize;
        for t in 0..steps {
            let row = &probs[t * classes..(t + 1) * classes];
            let best = match &mask {
                Some(m) => m.iter().copied().max_by(|&a, &b| row[a].total_cmp(&row[b])),
                None => (0..classes).max_by(|&a, &b| row[a].total_cmp(&row[b])),
            }
            .unwrap_or(0);
            if best != 0 && best != last {
                kept.push((best, row[best]));
            }
            last = best;
        }
        if allowed.is_none() {
            let end = kept
                .iter()
                .rposition(|&(_, p)| p >= EDGE_MIN_PROB)
                .map_or(0, |i| i + 1);
            kept.truncate(end);
        }
        let text: String = kept.iter().map(|&(i, _)| self.chars[i].as_str()).collect();
        let confidence = if kept.is_empty() {
            0.0
        } else {
            kept.iter().map(|&(_, p)| p).sum::<f32>() / kept.len() as f32
        };
        Ok(Read {
            text: text.trim().to_owned(),
            confidence,
        })
    }

    /// Reads a text line freely.
    pub fn read(&self, img: &Mat) -> Result<Read> {
        self.decode(img, None, 1.0)
    }

    /// Reads a text line that can only hold `allowed` characters, widened by `stretch`.
    pub fn read_only(&self, img: &Mat, allowed: &[char], stretch: f64) -> Result<Read> {
        self.decode(img, Some(allowed), stretch)
    }
}

/// Longest side and most pixels of a photo we look at (the service rejects bigger ones first).
const SEARCH_SIDE: i32 = 960;

/// Finds the card in a photo and warps it to `CARD_W` × `CARD_H`.
pub fn rectify(photo: &Mat) -> Result<Mat> {
    let (w, h) = (photo.cols(), photo.rows());
    if w < 64 || h < 64 {
        return Err(Error::NoCard);
    }
    let scale = f64::from(SEARCH_SIDE) / f64::from(w.max(h));
    let scale = scale.min(1.0);
    let mut small = Mat::default();
    imgproc::resize(
        photo,
        &mut small,
        Size::new(0, 0),
        scale,
        scale,
        imgproc::INTER_AREA,
    )?;
    let mut gray = Mat::default();
    imgproc::cvt_color(&small, &mut gray, imgproc::COLOR_BGR2GRAY, 0)?;
    let mut blurred = Mat::default();
    imgproc::gaussian_blur(
        &gray,
        &mut blurred,
        Size::new(5, 5),
        0.0,
        0.0,
        core::BORDER_DEFAULT,
    )?;
    let mut bin = Mat::default();
    imgproc::threshold(
        &blurred,
        &mut bin,
        0.0,
        255.0,
        imgproc::THRESH_BINARY | imgproc::THRESH_OTSU,
    )?;
    let quad = find_card_quad(&bin)?.ok_or(Error::NoCard)?;
    let inv = 1.0 / scale;
    let src: Vector<Point2f> = quad
        .iter()
        .map(|p| Point2f::new((f64::from(p.x) * inv) as f32, (f64::from(p.y) * inv) as f32))
        .collect();
    let dst = layout::card_corners();
    let m = imgproc::get_perspective_transform(&src, &dst, core::DECOMP_LU)?;
    let mut card = Mat::default();
    imgproc::warp_perspective(
        photo,
        &mut card,
        &m,
        Size::new(CARD_W, CARD_H),
        imgproc::INTER_CUBIC,
        core::BORDER_REPLICATE,
        core::Scalar::default(),
    )?;
    Ok(card)
}

/// The biggest card-shaped region: its four corners clockwise from the top-left.
fn find_card_quad(bin: &Mat) -> Result<Option<[Point2f; 4]>> {
    let mut contours = Vector::<Vector<Point>>::new();
    imgproc::find_contours(
        bin,
        &mut contours,
        imgproc::RETR_EXTERNAL,
        imgproc::CHAIN_APPROX_SIMPLE,
        Point::default(),
    )?;
    let total = f64::from(bin.cols()) * f64::from(bin.rows());
    let mut best: Option<(f64, Vector<Point>)> = None;
    for c in contours {
        let area = imgproc::contour_area(&c, false)?;
        if area < total * 0.08 || best.as_ref().is_some_and(|(a, _)| *a >= area) {
            continue;
        }
        best = Some((area, c));
    }
    let Some((area, contour)) = best else {
        return Ok(None);
    };
    // The whole card must be in the picture: a region touching the border is the background
    // (a flat or cropped photo), not a card.
    let bound = imgproc::bounding_rect(&contour)?;
    if bound.x <= 1
        || bound.y <= 1
        || bound.x + bound.width >= bin.cols() - 1
        || bound.y + bound.height >= bin.rows() - 1
    {
        return Ok(None);
    }
    let rect = imgproc::min_area_rect(&contour)?;
    let (rw, rh) = (f64::from(rect.size.width), f64::from(rect.size.height));
    let ratio = rw.max(rh) / rw.min(rh).max(1.0);
    // A card fills its bounding rectangle and is 85.6 × 54 (1.585); allow for perspective.
    if area < 0.85 * rw * rh || !(1.3..=1.9).contains(&ratio) {
        return Ok(None);
    }
    let peri = imgproc::arc_length(&contour, true)?;
    let mut approx = Vector::<Point>::new();
    imgproc::approx_poly_dp(&contour, &mut approx, 0.02 * peri, true)?;
    let pts: Vec<Point2f> = if approx.len() == 4 {
        approx
            .iter()
            .map(|p| Point2f::new(p.x as f32, p.y as f32))
            .collect()
    } else {
        let mut corners = [Point2f::default(); 4];
        rect.points(&mut corners)?;
        corners.to_vec()
    };
    Ok(order_corners(&pts))
}

/// Orders four points top-left, top-right, bottom-right, bottom-left (the long side across).
fn order_corners(pts: &[Point2f]) -> Option<[Point2f; 4]> {
    let by = |f: &dyn Fn(&Point2f) -> f32, max: bool| {
        let it = pts.iter().copied();
        if max {
            it.max_by(|a, b| f(a).total_cmp(&f(b)))
        } else {
            it.min_by(|a, b| f(a).total_cmp(&f(b)))
        }
    };
    let tl = by(&|p| p.x + p.y, false)?;
    let br = by(&|p| p.x + p.y, true)?;
    let tr = by(&|p| p.x - p.y, true)?;
    let bl = by(&|p| p.x - p.y, false)?;
    let dist = |a: Point2f, b: Point2f| ((a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sqrt();
    // A card standing on its short side: turn the order a quarter so the long side is across.
    if dist(tl, tr) < dist(tl, bl) {
        return Some([bl, tl, tr, br]);
    }
    Some([tl, tr, br, bl])
}

/// A field box with margins ([`X_MARGIN`] across, `margin` up and down), as its own image.
fn crop(card: &Mat, b: FieldBox, margin: i32) -> Result<Mat> {
    let x = (b.x - X_MARGIN).max(0);
    let y = (b.y - margin).max(0);
    let w = (b.w + 2 * X_MARGIN).min(card.cols() - x);
    let h = (b.h + 2 * margin).min(card.rows() - y);
    Ok(Mat::roi(card, Rect::new(x, y, w, h))?.try_clone()?)
}

/// A field as read, with its confidence; `None` text when nothing usable was read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field<T> {
    /// The value.
    pub value: Option<T>,
    /// What the recogniser saw.
    pub raw: String,
    /// 0..1.
    pub confidence: f32,
}

impl<T> Field<T> {
    fn new(value: Option<T>, read: Read) -> Self {
        Self {
            value,
            raw: read.text,
            confidence: read.confidence,
        }
    }
}

/// The front side as read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrontReading {
    /// 姓名.
    pub name: Field<String>,
    /// 性别.
    pub sex: Field<Sex>,
    /// 民族.
    pub ethnicity: Field<String>,
    /// 出生 (year, month, day).
    pub birth: Field<(u32, u32, u32)>,
    /// 住址.
    pub address: Field<String>,
    /// 公民身份号码.
    pub number: Field<String>,
    /// Disagreements between the number and the printed birth date and sex.
    pub inconsistencies: Vec<Inconsistency>,
}

impl FrontReading {
    /// All fields, when every one was read.
    pub fn card(&self) -> Option<CardFront> {
        Some(CardFront {
            name: self.name.value.clone()?,
            sex: self.sex.value?,
            ethnicity: self.ethnicity.value.clone()?,
            birth: self.birth.value?,
            address: self.address.value.clone()?,
            number: self.number.value.clone()?,
        })
    }
}

/// The back side as read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackReading {
    /// 签发机关.
    pub authority: Field<String>,
    /// 有效期限 as printed.
    pub validity: Field<String>,
    /// Valid from (year, month, day).
    pub valid_from: Option<(u32, u32, u32)>,
    /// Valid until; `None` with `long_term` for 长期.
    pub valid_until: Option<(u32, u32, u32)>,
    /// 长期 (no end date).
    pub long_term: bool,
}

const DIGITS: [char; 10] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

fn with(extra: &[char]) -> Vec<char> {
    DIGITS.iter().chain(extra).copied().collect()
}

/// Digit groups of a string: "1990年3月7日" → [1990, 3, 7].
fn numbers(s: &str) -> Vec<u32> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn ymd(v: &[u32]) -> Option<(u32, u32, u32)> {
    match *v {
        [y, m, d]
            if (1900..=2100).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d) =>
        {
            Some((y, m, d))
        }
        _ => None,
    }
}

/// Edit distance over characters.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The OCR engine: the recogniser plus the card logic.
#[derive(Debug)]
pub struct CardReader {
    rec: Recognizer,
}

impl CardReader {
    /// Loads the models.
    pub fn load(models: &ModelDir, threads: usize) -> Result<Self> {
        Ok(Self {
            rec: Recognizer::load(models, threads)?,
        })
    }

    /// The recogniser.
    pub fn recognizer(&self) -> &Recognizer {
        &self.rec
    }

    /// Reads a rectified front side.
    pub fn read_front(&self, card: &Mat) -> Result<FrontReading> {
        let m = 6;
        let name = self.rec.read(&crop(card, layout::NAME, m)?)?;
        let name_v = Some(name.text.replace(' ', "")).filter(|s| s.chars().count() >= 2);
        let sex = self
            .rec
            .read_only(&crop(card, layout::SEX, m)?, &['男', '女'], 1.0)?;
        let sex_v = match sex.text.chars().next() {
            Some('男') => Some(Sex::Male),
            Some('女') => Some(Sex::Female),
            _ => None,
        };
        let eth = self.rec.read(&crop(card, layout::ETHNICITY, m)?)?;
        let raw = eth.text.trim_end_matches('族').replace(' ', "");
        let eth_v = ETHNICITIES
            .iter()
            .map(|e| (levenshtein(&raw, e), *e))
            .min_by_key(|(d, _)| *d)
            .filter(|(d, e)| *d == 0 || (*d < e.chars().count() && !raw.is_empty()))
            .map(|(_, e)| e.to_owned());
        let birth = self.rec.read_only(
            &crop(card, layout::BIRTH, m)?,
            &with(&['年', '月', '日']),
            DIGIT_STRETCH,
        )?;
        let birth_v = ymd(&numbers(&birth.text));
        let mut address = String::new();
        let mut confs = Vec::new();
        for b in layout::ADDRESS_LINES {
            let line = self.rec.read(&crop(card, b, 4)?)?;
            if line.text.is_empty() || line.confidence < 0.3 {
                break;
            }
            address.push_str(&line.text.replace(' ', ""));
            confs.push(line.confidence);
        }
        let addr_conf = if confs.is_empty() {
            0.0
        } else {
            confs.iter().sum::<f32>() / confs.len() as f32
        };
        let addr_read = Read {
            text: address.clone(),
            confidence: addr_conf,
        };
        let number = self.rec.read_only(
            &crop(card, layout::NUMBER, m)?,
            &with(&['X']),
            DIGIT_STRETCH,
        )?;
        let num_v = Some(number.text.replace(' ', "")).filter(|s| s.len() == 18);
        let mut reading = FrontReading {
            name: Field::new(name_v, name),
            sex: Field::new(sex_v, sex),
            ethnicity: Field::new(eth_v, eth),
            birth: Field::new(birth_v, birth),
            address: Field::new(Some(address).filter(|a| a.chars().count() >= 4), addr_read),
            number: Field::new(num_v, number),
            inconsistencies: Vec::new(),
        };
        reading.inconsistencies = match (
            &reading.number.value,
            reading.birth.value,
            reading.sex.value,
        ) {
            (Some(n), Some(b), Some(s)) => idcard::inconsistencies(&CardFront {
                name: String::new(),
                sex: s,
                ethnicity: String::new(),
                birth: b,
                address: String::new(),
                number: n.clone(),
            }),
            (Some(n), _, _) if idcard::check_number(n).is_ok() => Vec::new(),
            _ => vec![Inconsistency::NumberInvalid],
        };
        Ok(reading)
    }

    /// Reads a rectified back side.
    pub fn read_back(&self, card: &Mat) -> Result<BackReading> {
        let authority = self.rec.read(&crop(card, layout::AUTHORITY, 6)?)?;
        // An issuing authority is a public-security bureau or branch: its name ends in 局, and
        // what follows (a guilloche stroke after the text) is not part of it.
        let auth = authority.text.replace(' ', "");
        let auth = auth
            .rfind('局')
            .map_or(auth.as_str(), |i| &auth[..i + '局'.len_utf8()]);
        let auth_v = Some(auth.to_owned()).filter(|s| s.chars().count() >= 4 && s.ends_with('局'));
        let validity = self.rec.read_only(
            &crop(card, layout::VALIDITY, 6)?,
            &with(&['.', '-', '长', '期']),
            DIGIT_STRETCH,
        )?;
        let text = validity.text.replace(' ', "");
        // "长期" with either character seen; the dash between the dates is often too thin to read.
        let long_term = text.contains('长') || text.contains('期');
        let nums = numbers(&text);
        let valid_from = nums.get(..3).and_then(ymd);
        let valid_until = if long_term {
            None
        } else {
            nums.get(3..6).and_then(ymd)
        };
        let fmt = |(y, m, d): (u32, u32, u32)| format!("{y:04}.{m:02}.{d:02}");
        // The printed form, rebuilt from what was read.
        let value = match (valid_from, valid_until) {
            (Some(f), _) if long_term && nums.len() == 3 => Some(format!("{}-长期", fmt(f))),
            (Some(f), Some(u)) if nums.len() == 6 => Some(format!("{}-{}", fmt(f), fmt(u))),
            _ => None,
        };
        Ok(BackReading {
            authority: Field::new(auth_v, authority),
            validity: Field::new(value, validity),
            valid_from,
            valid_until,
            long_term,
        })
    }

    /// The portrait printed on a rectified front side, PNG.
    pub fn portrait_png(card: &Mat) -> Result<Vec<u8>> {
        let p = layout::PORTRAIT;
        let roi = Mat::roi(card, Rect::new(p.x, p.y, p.w, p.h))?;
        let mut buf = Vector::<u8>::new();
        imgcodecs::imencode(".png", &roi, &mut buf, &Vector::new())?;
        Ok(buf.to_vec())
    }
}

/// The back side's fields as the card carries them, for comparing with a reading.
pub fn back_of(b: &BackReading) -> Option<CardBack> {
    Some(CardBack {
        authority: b.authority.value.clone()?,
        validity: b.validity.value.clone()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_groups_and_dates() {
        assert_eq!(numbers("1990年3月7日"), vec![1990, 3, 7]);
        assert_eq!(ymd(&numbers("1990年13月7日")), None);
        assert_eq!(
            ymd(&numbers("2015.03.07-2035.03.07")[3..]),
            Some((2035, 3, 7))
        );
    }

    #[test]
    fn edit_distance() {
        assert_eq!(levenshtein("维吾尔", "维吾尔"), 0);
        assert_eq!(levenshtein("维吾", "维吾尔"), 1);
        assert_eq!(levenshtein("", "汉"), 1);
    }
}
