//! Geometry of the second-generation resident ID card (GA 450): 85.6 × 54 mm, drawn and read
//! at 10 pixels a millimetre. The printed fields sit at fixed places on every card, so after
//! rectification the reader crops each field box and runs recognition only (the text detector
//! misses lone characters such as the sex field; see `../../shared/identity-stack.md`).
//!
//! The synthetic generator draws at these places and the reader crops at them; both follow the
//! real card's layout, so a real card rectified to this size lands on the same boxes (within a
//! few pixels, which the margins absorb).

/// Width of the rectified card, pixels.
pub const CARD_W: i32 = 856;
/// Height of the rectified card, pixels.
pub const CARD_H: i32 = 540;

/// The rectified card's corners, clockwise from the top-left (the target of rectification
/// and the source when the generator photographs a card).
#[allow(clippy::cast_precision_loss)] // 856 and 540 are exact in f32
pub fn card_corners() -> opencv::core::Vector<opencv::core::Point2f> {
    let (w, h) = (CARD_W as f32, CARD_H as f32);
    [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
        .into_iter()
        .map(|(x, y)| opencv::core::Point2f::new(x, y))
        .collect()
}

/// A box on the rectified card, pixels from the top-left corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldBox {
    /// Left.
    pub x: i32,
    /// Top.
    pub y: i32,
    /// Width.
    pub w: i32,
    /// Height.
    pub h: i32,
}

const fn b(x: i32, y: i32, w: i32, h: i32) -> FieldBox {
    FieldBox { x, y, w, h }
}

/// Front side: the name (value only, right of the label 姓名).
pub const NAME: FieldBox = b(160, 52, 380, 58);
/// Front side: sex (男/女).
pub const SEX: FieldBox = b(160, 122, 90, 54);
/// Front side: ethnicity (value right of the label 民族).
pub const ETHNICITY: FieldBox = b(390, 122, 170, 54);
/// Front side: birth date row (year 年 month 月 day 日).
pub const BIRTH: FieldBox = b(160, 188, 390, 54);
/// Front side: the address lines (value right of 住址); at most this many.
pub const ADDRESS_LINES: [FieldBox; 3] = [
    b(160, 254, 390, 48),
    b(160, 302, 390, 48),
    b(160, 350, 390, 48),
];
/// Characters that fit on one address line at the card's type size.
pub const ADDRESS_CHARS_PER_LINE: usize = 11;
/// Front side: the 18-character number (right of 公民身份号码).
pub const NUMBER: FieldBox = b(290, 440, 540, 64);
/// Front side: the portrait.
pub const PORTRAIT: FieldBox = b(560, 56, 260, 320);
/// Back side: issuing authority (right of 签发机关).
pub const AUTHORITY: FieldBox = b(318, 396, 470, 54);
/// Back side: validity period (right of 有效期限).
pub const VALIDITY: FieldBox = b(318, 458, 470, 54);
