//! Synthetic resident ID cards for tests and benchmarks: fictional people with valid GB 11643
//! numbers, drawn with a Debian CJK font (`fonts-noto-cjk`) on the real card's layout
//! ([`crate::layout`]), with a public-domain portrait (scikit-image's `astronaut.png`, NASA),
//! then "photographed": placed in a scene with rotation and perspective, blurred, noised and
//! JPEG-compressed.
//!
//! Everything here is deterministic for a given seed. The people are invented: names are drawn
//! from common characters, street names and house numbers are made up, only the region codes
//! and district names are real (so the number's first six digits are plausible).
//!
//! [`live`] makes liveness frames (blink, open mouth, head turns) from a portrait.

// Pixel geometry: coordinates and sizes are bounded by the image limits (≤ 8000 px), grey
// levels by 255; the casts between i32, f32, f64 and usize below are exact or rounded on purpose.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};
use cosign_proto::v1::patient::id_check_char;
use opencv::core::{self, Mat, Point, Point2f, Rect, Scalar, Size, Vector};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::fmt::Write as _;
use std::path::Path;

use crate::idcard::{CardBack, CardFront, Sex};
use crate::layout::{self, CARD_H, CARD_W, FieldBox};
use crate::{Error, Result};

pub mod live;

/// Debian's Noto Sans CJK collection; face index 2 is Simplified Chinese.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc";
const FONT_INDEX_SC: u32 = 2;

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "萧", "田", "董", "潘", "袁", "蔡", "蒋", "余", "于", "杜", "叶", "程", "魏", "苏", "吕", "丁",
    "龚", "欧阳", "司马", "诸葛",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华", "玉", "萍", "红", "建", "文", "辉", "鹏", "宇",
    "浩", "瑞", "欣", "怡", "梓", "涵", "子", "轩", "思", "雨", "晨", "博", "珞", "嘉", "琪", "悦",
    "婷", "雪", "俊", "凯", "旭", "宁", "慧", "佳", "海", "波", "志", "国", "春", "兰", "德", "睿",
];
/// (region code, province + city + district as printed).
const REGIONS: &[(&str, &str)] = &[
    ("110101", "北京市东城区"),
    ("110108", "北京市海淀区"),
    ("310104", "上海市徐汇区"),
    ("310115", "上海市浦东新区"),
    ("330106", "浙江省杭州市西湖区"),
    ("330102", "浙江省杭州市上城区"),
    ("440106", "广东省广州市天河区"),
    ("440304", "广东省深圳市福田区"),
    ("510104", "四川省成都市锦江区"),
    ("420106", "湖北省武汉市武昌区"),
    ("320102", "江苏省南京市玄武区"),
    ("610113", "陕西省西安市雁塔区"),
    ("370102", "山东省济南市历下区"),
    ("430104", "湖南省长沙市岳麓区"),
    ("350203", "福建省厦门市思明区"),
    ("500103", "重庆市渝中区"),
];
const STREET_HEADS: &[&str] = &[
    "文三", "解放", "人民", "建设", "中山", "和平", "长江", "黄河", "胜利", "光明", "新华", "东风",
    "青年", "团结", "漕溪", "学院", "南京", "延安", "朝阳", "滨江",
];
const STREET_TAILS: &[&str] = &["路", "街", "大道", "北路", "南路", "东路", "西路"];
const COMMUNITIES: &[&str] = &[
    "幸福", "阳光", "金色", "翠苑", "紫荆", "桂花", "康乐", "和美",
];
/// The 56 ethnic groups as printed on the card (民族).
pub const ETHNICITIES: &[&str] = &[
    "汉",
    "蒙古",
    "回",
    "藏",
    "维吾尔",
    "苗",
    "彝",
    "壮",
    "布依",
    "朝鲜",
    "满",
    "侗",
    "瑶",
    "白",
    "土家",
    "哈尼",
    "哈萨克",
    "傣",
    "黎",
    "傈僳",
    "佤",
    "畲",
    "高山",
    "拉祜",
    "水",
    "东乡",
    "纳西",
    "景颇",
    "柯尔克孜",
    "土",
    "达斡尔",
    "仫佬",
    "羌",
    "布朗",
    "撒拉",
    "毛南",
    "仡佬",
    "锡伯",
    "阿昌",
    "普米",
    "塔吉克",
    "怒",
    "乌孜别克",
    "俄罗斯",
    "鄂温克",
    "德昂",
    "保安",
    "裕固",
    "京",
    "塔塔尔",
    "独龙",
    "鄂伦春",
    "赫哲",
    "门巴",
    "珞巴",
    "基诺",
];

/// One invented person: what the front and back of their card say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Front side.
    pub front: CardFront,
    /// Back side.
    pub back: CardBack,
}

fn pick<'a, R: Rng>(rng: &mut R, list: &[&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or_default()
}

fn days_in(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Person {
    /// A fictional person; the same seed gives the same person.
    pub fn random<R: Rng>(rng: &mut R) -> Self {
        let mut name = pick(rng, SURNAMES).to_owned();
        for _ in 0..rng.gen_range(1..=2) {
            name.push_str(pick(rng, GIVEN));
        }
        let sex = if rng.gen_bool(0.5) {
            Sex::Male
        } else {
            Sex::Female
        };
        // Mostly 汉, as in the population; the others exercise the lexicon.
        let ethnicity = if rng.gen_bool(0.7) {
            "汉"
        } else {
            pick(rng, ETHNICITIES)
        }
        .to_owned();
        let year = rng.gen_range(1940..=2008);
        let month = rng.gen_range(1..=12);
        let day = rng.gen_range(1..=days_in(year, month));
        let (code, place) = *REGIONS.choose(rng).unwrap_or(&REGIONS[0]);
        let mut address = format!(
            "{place}{}{}{}号",
            pick(rng, STREET_HEADS),
            pick(rng, STREET_TAILS),
            rng.gen_range(1..=999)
        );
        if rng.gen_bool(0.6) {
            let _ = write!(
                address,
                "{}小区{}幢{}单元{}室",
                pick(rng, COMMUNITIES),
                rng.gen_range(1..=30),
                rng.gen_range(1..=6),
                rng.gen_range(1..=32) * 100 + rng.gen_range(1..=4)
            );
        }
        // Sequence: odd for men, even for women (GB 11643 §5.3).
        let seq = rng.gen_range(0..500) * 2 + u32::from(sex == Sex::Male);
        let first17 = format!("{code}{year:04}{month:02}{day:02}{seq:03}");
        let check = id_check_char(first17.as_bytes()).map_or('0', char::from);
        let number = format!("{first17}{check}");
        // Issued at 16 or later (not before 2005, when the second-generation card began).
        let issue_year = rng.gen_range((year + 16).max(2005)..=2025.max(year + 16));
        let (im, id) = (rng.gen_range(1..=12), rng.gen_range(1..=28));
        let age = issue_year - year;
        let years = match age {
            0..16 => Some(5),
            16..26 => Some(10),
            26..46 => Some(20),
            _ => None,
        };
        let validity = match years {
            Some(n) => format!(
                "{issue_year:04}.{im:02}.{id:02}-{:04}.{im:02}.{id:02}",
                issue_year + n
            ),
            None => format!("{issue_year:04}.{im:02}.{id:02}-长期"),
        };
        let city_end = place
            .find('市')
            .map_or(place.len(), |i| i + '市'.len_utf8());
        let (city, district) = place.split_at(city_end);
        let city = city.rsplit('省').next().unwrap_or(city);
        let authority = if district.is_empty() {
            format!("{city}公安局")
        } else {
            format!("{city}公安局{}分局", district.trim_end_matches('区'))
        };
        Self {
            front: CardFront {
                name,
                sex,
                ethnicity,
                birth: (year, month, day),
                address,
                number,
            },
            back: CardBack {
                authority,
                validity,
            },
        }
    }

    /// `n` people from one seed.
    pub fn many(seed: u64, n: usize) -> Vec<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| Self::random(&mut rng)).collect()
    }
}

/// Splits an address into the card's lines.
pub fn address_lines(address: &str) -> Vec<String> {
    let chars: Vec<char> = address.chars().collect();
    chars
        .chunks(layout::ADDRESS_CHARS_PER_LINE)
        .take(layout::ADDRESS_LINES.len())
        .map(|c| c.iter().collect())
        .collect()
}

const INK: [u8; 3] = [24, 24, 24];
const LABEL: [u8; 3] = [165, 112, 60];

/// Draws cards: holds the font and the portrait.
pub struct Renderer {
    font: FontVec,
    portrait: Mat,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

impl Renderer {
    /// Loads the CJK font collection and a portrait image (cut to the card's photo box).
    pub fn new(font_path: &Path, portrait_path: &Path) -> Result<Self> {
        let bytes = std::fs::read(font_path)
            .map_err(|e| Error::Internal(format!("font {}: {e}", font_path.display())))?;
        let font = FontVec::try_from_vec_and_index(bytes, FONT_INDEX_SC)
            .map_err(|e| Error::Internal(format!("font {}: {e}", font_path.display())))?;
        let img = imgcodecs::imread(portrait_path, imgcodecs::IMREAD_COLOR)?;
        if img.empty() {
            return Err(Error::Internal(format!(
                "portrait {} is not readable",
                portrait_path.display()
            )));
        }
        let portrait = crop_portrait(&img)?;
        Ok(Self { font, portrait })
    }

    /// The portrait as it is printed on the cards (for face-match tests).
    pub fn portrait(&self) -> &Mat {
        &self.portrait
    }

    /// Draws `text` with its top-left at (`x`, `top`); returns the right edge.
    #[allow(clippy::too_many_arguments)]
    fn text(
        &self,
        img: &mut Mat,
        text: &str,
        x: i32,
        top: i32,
        px: f32,
        color: [u8; 3],
        spacing: f32,
    ) -> Result<i32> {
        let scale = PxScale::from(px);
        let scaled = self.font.as_scaled(scale);
        let baseline = top as f32 + scaled.ascent();
        let (cols, rows) = (img.cols(), img.rows());
        let data = img.data_bytes_mut()?;
        let mut caret = x as f32;
        for ch in text.chars() {
            let id = scaled.glyph_id(ch);
            let glyph = id.with_scale_and_position(scale, ab_glyph::point(caret, baseline));
            caret += scaled.h_advance(id) + spacing;
            let Some(outlined) = self.font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outlined.px_bounds();
            outlined.draw(|gx, gy, cov| {
                let px = bounds.min.x as i32 + gx as i32;
                let py = bounds.min.y as i32 + gy as i32;
                if px < 0 || py < 0 || px >= cols || py >= rows {
                    return;
                }
                let at = (py as usize * cols as usize + px as usize) * 3;
                let cov = cov.clamp(0.0, 1.0);
                for (c, ink) in color.iter().enumerate() {
                    if let Some(p) = data.get_mut(at + c) {
                        *p = (f32::from(*p) * (1.0 - cov) + f32::from(*ink) * cov).round() as u8;
                    }
                }
            });
        }
        Ok(caret.round() as i32)
    }

    /// Height the font takes at `px`.
    fn line_height(&self, px: f32) -> f32 {
        let s = self.font.as_scaled(PxScale::from(px));
        s.ascent() - s.descent()
    }

    /// Text vertically centred in a field box.
    #[allow(clippy::too_many_arguments)]
    fn in_box(
        &self,
        img: &mut Mat,
        text: &str,
        bx: FieldBox,
        x: i32,
        px: f32,
        color: [u8; 3],
        spacing: f32,
    ) -> Result<i32> {
        let top = bx.y + ((bx.h as f32 - self.line_height(px)) / 2.0).round() as i32;
        self.text(img, text, x, top, px, color, spacing)
    }

    /// The front side, `CARD_W` × `CARD_H`, BGR.
    pub fn front(&self, p: &CardFront) -> Result<Mat> {
        let mut img = card_background(Scalar::new(238.0, 236.0, 228.0, 0.0))?;
        let label_x = 56;
        let lp = 26.0;
        self.in_box(&mut img, "姓  名", layout::NAME, label_x, lp, LABEL, 0.0)?;
        self.in_box(
            &mut img,
            &p.name,
            layout::NAME,
            layout::NAME.x,
            34.0,
            INK,
            2.0,
        )?;
        self.in_box(&mut img, "性  别", layout::SEX, label_x, lp, LABEL, 0.0)?;
        self.in_box(
            &mut img,
            p.sex.as_zh(),
            layout::SEX,
            layout::SEX.x,
            30.0,
            INK,
            0.0,
        )?;
        self.in_box(&mut img, "民  族", layout::ETHNICITY, 290, lp, LABEL, 0.0)?;
        self.in_box(
            &mut img,
            &p.ethnicity,
            layout::ETHNICITY,
            layout::ETHNICITY.x,
            30.0,
            INK,
            0.0,
        )?;
        self.in_box(&mut img, "出  生", layout::BIRTH, label_x, lp, LABEL, 0.0)?;
        let (y, m, d) = p.birth;
        let bx = layout::BIRTH;
        self.in_box(&mut img, &y.to_string(), bx, bx.x, 30.0, INK, 1.0)?;
        self.in_box(&mut img, "年", bx, bx.x + 80, lp, LABEL, 0.0)?;
        self.in_box(&mut img, &m.to_string(), bx, bx.x + 124, 30.0, INK, 1.0)?;
        self.in_box(&mut img, "月", bx, bx.x + 170, lp, LABEL, 0.0)?;
        self.in_box(&mut img, &d.to_string(), bx, bx.x + 214, 30.0, INK, 1.0)?;
        self.in_box(&mut img, "日", bx, bx.x + 260, lp, LABEL, 0.0)?;
        self.in_box(
            &mut img,
            "住  址",
            layout::ADDRESS_LINES[0],
            label_x,
            lp,
            LABEL,
            0.0,
        )?;
        for (line, bx) in address_lines(&p.address).iter().zip(layout::ADDRESS_LINES) {
            self.in_box(&mut img, line, bx, bx.x, 30.0, INK, 2.0)?;
        }
        self.in_box(
            &mut img,
            "公民身份号码",
            layout::NUMBER,
            label_x,
            lp,
            LABEL,
            2.0,
        )?;
        self.in_box(
            &mut img,
            &p.number,
            layout::NUMBER,
            layout::NUMBER.x + 6,
            34.0,
            INK,
            5.0,
        )?;
        let r = layout::PORTRAIT;
        let mut roi = Mat::roi_mut(&mut img, Rect::new(r.x, r.y, r.w, r.h))?;
        self.portrait.copy_to(&mut roi)?;
        Ok(img)
    }

    /// The back side, `CARD_W` × `CARD_H`, BGR.
    pub fn back(&self, p: &CardBack) -> Result<Mat> {
        let mut img = card_background(Scalar::new(236.0, 232.0, 230.0, 0.0))?;
        // A plain red emblem placeholder where the national emblem is printed.
        imgproc::circle(
            &mut img,
            Point::new(150, 130),
            78,
            Scalar::new(40.0, 40.0, 200.0, 0.0),
            6,
            imgproc::LINE_AA,
            0,
        )?;
        imgproc::circle(
            &mut img,
            Point::new(150, 130),
            30,
            Scalar::new(40.0, 40.0, 200.0, 0.0),
            -1,
            imgproc::LINE_AA,
            0,
        )?;
        self.text(&mut img, "中华人民共和国", 300, 60, 50.0, INK, 8.0)?;
        self.text(&mut img, "居民身份证", 300, 170, 72.0, INK, 14.0)?;
        self.in_box(&mut img, "签发机关", layout::AUTHORITY, 170, 26.0, INK, 2.0)?;
        self.in_box(
            &mut img,
            &p.authority,
            layout::AUTHORITY,
            layout::AUTHORITY.x,
            30.0,
            INK,
            1.0,
        )?;
        self.in_box(&mut img, "有效期限", layout::VALIDITY, 170, 26.0, INK, 2.0)?;
        self.in_box(
            &mut img,
            &p.validity,
            layout::VALIDITY,
            layout::VALIDITY.x,
            30.0,
            INK,
            1.0,
        )?;
        Ok(img)
    }
}

/// The astronaut's head and shoulders, cut to the card's portrait box.
fn crop_portrait(img: &Mat) -> Result<Mat> {
    let (w, h) = (img.cols(), img.rows());
    let want = layout::PORTRAIT;
    // A centred-left window of the card's aspect, then scaled to the box.
    let ch = h.min(w * want.h / want.w) * 5 / 8;
    let cw = ch * want.w / want.h;
    let x = ((w - cw) / 2 - w / 24).max(0);
    let roi = Mat::roi(img, Rect::new(x, 0, cw, ch))?;
    let mut out = Mat::default();
    imgproc::resize(
        &roi,
        &mut out,
        Size::new(want.w, want.h),
        0.0,
        0.0,
        imgproc::INTER_AREA,
    )?;
    Ok(out)
}

/// A pale card with faint guilloche waves (something for the reader to ignore).
fn card_background(base: Scalar) -> Result<Mat> {
    let mut img = Mat::new_rows_cols_with_default(CARD_H, CARD_W, core::CV_8UC3, base)?;
    for k in 0..9 {
        let mut pts = Vector::<Point>::new();
        for x in (0..CARD_W).step_by(8) {
            let y = 40.0 + f64::from(k) * 58.0 + 14.0 * (f64::from(x) / 37.0 + f64::from(k)).sin();
            pts.push(Point::new(x, y as i32));
        }
        let mut curves = Vector::<Vector<Point>>::new();
        curves.push(pts);
        imgproc::polylines(
            &mut img,
            &curves,
            false,
            Scalar::new(214.0, 206.0, 222.0, 0.0),
            1,
            imgproc::LINE_AA,
            0,
        )?;
    }
    Ok(img)
}

/// How a card is photographed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shot {
    /// In-plane rotation, degrees.
    pub rotation_deg: f64,
    /// Card width as a share of the photo's width.
    pub scale: f64,
    /// Random displacement of each corner, as a share of the card width (perspective).
    pub perspective: f64,
    /// Gaussian blur sigma, pixels (0: none).
    pub blur_sigma: f64,
    /// Gaussian noise sigma, grey levels (0: none).
    pub noise_sigma: f64,
    /// JPEG quality; `None` keeps the photo lossless (PNG).
    pub jpeg_quality: Option<i32>,
}

impl Shot {
    /// Straight, sharp, lossless.
    pub fn clean() -> Self {
        Self {
            rotation_deg: 0.0,
            scale: 0.75,
            perspective: 0.0,
            blur_sigma: 0.0,
            noise_sigma: 0.0,
            jpeg_quality: None,
        }
    }

    /// A hand-held phone photo: up to ±12° rotation, some perspective, blur, noise and JPEG.
    pub fn degraded<R: Rng>(rng: &mut R) -> Self {
        Self {
            rotation_deg: rng.gen_range(-12.0..12.0),
            scale: rng.gen_range(0.62..0.82),
            perspective: rng.gen_range(0.0..0.03),
            blur_sigma: rng.gen_range(0.0..1.2),
            noise_sigma: rng.gen_range(0.0..8.0),
            jpeg_quality: Some(rng.gen_range(45..90)),
        }
    }
}

/// Photographs a card on a dark table: returns the encoded photo (JPEG or PNG bytes).
pub fn photograph<R: Rng>(card: &Mat, shot: &Shot, rng: &mut R) -> Result<Vec<u8>> {
    let (w, h) = (1280, 960);
    let shade = rng.gen_range(50.0..110.0);
    let mut scene = Mat::new_rows_cols_with_default(
        h,
        w,
        core::CV_8UC3,
        Scalar::new(shade * 0.8, shade * 0.9, shade, 0.0),
    )?;
    add_noise(&mut scene, 6.0, rng)?;
    let cw = f64::from(w) * shot.scale;
    let chh = cw * f64::from(CARD_H) / f64::from(CARD_W);
    let (cx, cy) = (
        f64::from(w) / 2.0 + rng.gen_range(-40.0..40.0),
        f64::from(h) / 2.0 + rng.gen_range(-30.0..30.0),
    );
    let (s, c) = shot.rotation_deg.to_radians().sin_cos();
    let corners = [
        (-cw / 2.0, -chh / 2.0),
        (cw / 2.0, -chh / 2.0),
        (cw / 2.0, chh / 2.0),
        (-cw / 2.0, chh / 2.0),
    ];
    let mut dst = Vector::<Point2f>::new();
    for (x, y) in corners {
        let j = shot.perspective * cw;
        let (jx, jy) = if j > 0.0 {
            (rng.gen_range(-j..j), rng.gen_range(-j..j))
        } else {
            (0.0, 0.0)
        };
        dst.push(Point2f::new(
            (cx + x * c - y * s + jx) as f32,
            (cy + x * s + y * c + jy) as f32,
        ));
    }
    let src = layout::card_corners();
    let m = imgproc::get_perspective_transform(&src, &dst, core::DECOMP_LU)?;
    imgproc::warp_perspective(
        card,
        &mut scene,
        &m,
        Size::new(w, h),
        imgproc::INTER_LINEAR,
        core::BORDER_TRANSPARENT,
        Scalar::default(),
    )?;
    if shot.blur_sigma > 0.0 {
        let mut blurred = Mat::default();
        imgproc::gaussian_blur(
            &scene,
            &mut blurred,
            Size::new(0, 0),
            shot.blur_sigma,
            0.0,
            core::BORDER_DEFAULT,
        )?;
        scene = blurred;
    }
    if shot.noise_sigma > 0.0 {
        add_noise(&mut scene, shot.noise_sigma, rng)?;
    }
    encode(&scene, shot.jpeg_quality)
}

/// JPEG at `quality`, or PNG when `None`.
pub fn encode(img: &Mat, jpeg_quality: Option<i32>) -> Result<Vec<u8>> {
    let mut buf = Vector::<u8>::new();
    match jpeg_quality {
        Some(q) => {
            let params: Vector<i32> = [imgcodecs::IMWRITE_JPEG_QUALITY, q].into_iter().collect();
            imgcodecs::imencode(".jpg", img, &mut buf, &params)?;
        }
        None => {
            imgcodecs::imencode(".png", img, &mut buf, &Vector::new())?;
        }
    }
    Ok(buf.to_vec())
}

/// Adds Gaussian noise (Box–Muller) to every channel.
fn add_noise<R: Rng>(img: &mut Mat, sigma: f64, rng: &mut R) -> Result<()> {
    for p in img.data_bytes_mut()? {
        let (u1, u2): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.r#gen());
        let n = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * sigma;
        *p = (f64::from(*p) + n).round().clamp(0.0, 255.0) as u8;
    }
    Ok(())
}

/// One generated test card: who is on it, and the photos of its two sides.
#[derive(Debug, Clone)]
pub struct SampleCard {
    /// The truth.
    pub person: Person,
    /// How the front was photographed.
    pub shot: Shot,
    /// Encoded photo of the front.
    pub front_photo: Vec<u8>,
    /// Encoded photo of the back.
    pub back_photo: Vec<u8>,
}

/// `n` cards from `seed`: every third clean, the rest degraded.
pub fn sample_cards(renderer: &Renderer, seed: u64, n: usize) -> Result<Vec<SampleCard>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let person = Person::random(&mut rng);
        let shot = if i % 3 == 0 {
            Shot::clean()
        } else {
            Shot::degraded(&mut rng)
        };
        let front = renderer.front(&person.front)?;
        let back = renderer.back(&person.back)?;
        let front_photo = photograph(&front, &shot, &mut rng)?;
        let back_photo = photograph(&back, &shot, &mut rng)?;
        out.push(SampleCard {
            person,
            shot,
            front_photo,
            back_photo,
        });
    }
    Ok(out)
}
