//! SM2 group arithmetic for this crate's hot paths, on the crate's own field
//! ([`crate::field`]: inlined Montgomery multiplication, constant time) with cheaper point
//! formulas and precomputed tables than the `sm2` crate's.
//!
//! Points are in Jacobian coordinates (`x = X/Z²`, `y = Y/Z³`, identity `Z = 0`) with the
//! `a = −3` doubling (3M + 5S) and mixed additions with affine table entries (8M + 3S), where
//! RustCrypto's complete projective formulas cost about 12M per operation and its fixed-base
//! table holds projective points. Inversions use Fermat's little theorem with a fixed
//! addition chain (about 10× fewer cycles than the generic Bernstein–Yang inversion).
//!
//! Which operations are constant time:
//! - **Constant time, for secret scalars**: [`mul_g`] (signed radix-2⁵ comb over a table of
//!   multiples of G, every entry scanned for each window), [`mul`] (signed 4-bit fixed window,
//!   same doublings and additions for every scalar), [`Jac::add_complete`], [`invert`].
//! - **Variable time, for public scalars only** (verification of signatures and proofs):
//!   [`lincomb_vartime`], [`mul_g_add_vartime`], [`KeyTable::mul_g_add_vartime`] (interleaved wNAF, skipping zero
//!   digits and branching on the identity).
//!
//! The Jacobian addition formulas are incomplete (they fail when both inputs are the same
//! point). Where that cannot happen is argued at each use; where it can, the constant-time
//! code selects the doubling in constant time ([`Jac::add_complete`]) and the variable-time
//! code branches.
//!
//! Every function here is checked against the `sm2` crate's own arithmetic by the proptests
//! at the end of this file (random and edge scalars: 0, 1, 2, n − 1, n − 6, small).

use crate::field::Fe;
use sm2::elliptic_curve::{
    ff::PrimeField,
    point::AffineCoordinates,
    subtle::{Choice, ConditionallySelectable, ConstantTimeEq},
};
use sm2::{AffinePoint, Scalar};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use zeroize::Zeroize;

/// The group order n as a field element (n < p).
const N_FE: Fe = Fe::from_limbs([
    0x53BB_F409_39D5_4123,
    0x7203_DF6B_21C6_052B,
    0xFFFF_FFFF_FFFF_FFFF,
    0xFFFF_FFFE_FFFF_FFFF,
]);

/// p − n, big-endian: an x coordinate x ∈ [0, p) has x mod n = v for v < p − n from two
/// candidates (v and v + n), otherwise from v alone.
const P_MINUS_N: [u8; 32] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x8D, 0xFC, 0x20, 0x93, 0xDE, 0x39, 0xFA, 0xD5,
    0xAC, 0x44, 0x0B, 0xF6, 0xC6, 0x2A, 0xBE, 0xDC,
];

fn sqn(mut a: Fe, n: usize) -> Fe {
    for _ in 0..n {
        a = a.square();
    }
    a
}

/// `a^(p−2) = a⁻¹` (and 0 ↦ 0), constant time: a fixed chain of 255 squarings and
/// 16 multiplications. `p − 2` in binary from the top: 1³¹ 0 1¹²⁸ 0³² 1³² 1³⁰ 0 1.
#[inline(never)]
pub(crate) fn invert(a: &Fe) -> Fe {
    let x1 = *a;
    let x2 = sqn(x1, 1) * x1;
    let x3 = sqn(x2, 1) * x1;
    let x6 = sqn(x3, 3) * x3;
    let x12 = sqn(x6, 6) * x6;
    let x24 = sqn(x12, 12) * x12;
    let x30 = sqn(x24, 6) * x6;
    let x31 = sqn(x30, 1) * x1;
    let x32 = sqn(x31, 1) * x1;
    let mut t = sqn(x31, 1);
    for _ in 0..4 {
        t = sqn(t, 32) * x32;
    }
    t = sqn(t, 32);
    t = sqn(t, 32) * x32;
    t = sqn(t, 30) * x30;
    sqn(t, 2) * x1
}

/// `n − 2`, big-endian: the exponent of Fermat inversion in the scalar field.
const N_MINUS_2: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0x72, 0x03, 0xDF, 0x6B, 0x21, 0xC6, 0x05, 0x2B, 0x53, 0xBB, 0xF4, 0x09, 0x39, 0xD5, 0x41, 0x21,
];

/// `s^(n−2) = s⁻¹ mod n` (and 0 ↦ 0), constant time in `s`: 4-bit fixed windows over the
/// public exponent (256 squarings, 78 multiplications; the generic Bernstein–Yang inversion
/// of the `sm2` crate costs about three times as much).
#[inline(never)]
pub(crate) fn invert_scalar(s: &Scalar) -> Scalar {
    let mut table = [Scalar::ONE; 16];
    let mut acc = Scalar::ONE;
    for slot in table.iter_mut().skip(1) {
        acc *= s;
        *slot = acc;
    }
    acc = Scalar::ONE;
    for byte in N_MINUS_2 {
        for nibble in [byte >> 4, byte & 0x0F] {
            for _ in 0..4 {
                acc = acc.square();
            }
            // The index is a digit of the public exponent, not of `s`.
            acc *= table
                .get(usize::from(nibble))
                .copied()
                .unwrap_or(Scalar::ONE);
        }
    }
    table.zeroize();
    acc
}

/// An affine point that is never the identity.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Aff {
    x: Fe,
    y: Fe,
}

impl ConditionallySelectable for Aff {
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        Self {
            x: Fe::conditional_select(&a.x, &b.x, choice),
            y: Fe::conditional_select(&a.y, &b.y, choice),
        }
    }
}

impl Aff {
    /// From an `sm2` affine point; `None` for the identity.
    pub(crate) fn from_point(p: &AffinePoint) -> Option<Self> {
        if bool::from(p.is_identity()) {
            return None;
        }
        let x = Fe::from_bytes(&p.x())?;
        let y = Fe::from_bytes(&p.y())?;
        Some(Self { x, y })
    }

    /// Back to an `sm2` affine point (which re-checks the curve equation).
    pub(crate) fn to_point(self) -> Option<AffinePoint> {
        AffinePoint::from_coordinates(&self.x.to_bytes(), &self.y.to_bytes()).into()
    }

    fn generator() -> Self {
        // The `sm2` generator is a valid non-identity point; the fallback is unreachable.
        Self::from_point(&AffinePoint::GENERATOR).unwrap_or(Self {
            x: Fe::ZERO,
            y: Fe::ZERO,
        })
    }

    fn neg(&self) -> Self {
        Self {
            x: self.x,
            y: -self.y,
        }
    }
}

/// `−G`.
pub(crate) fn minus_g() -> Jac {
    Jac::from(&Aff::generator().neg())
}

/// A point in Jacobian coordinates; `Z = 0` is the identity.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Jac {
    x: Fe,
    y: Fe,
    z: Fe,
}

impl ConditionallySelectable for Jac {
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        Self {
            x: Fe::conditional_select(&a.x, &b.x, choice),
            y: Fe::conditional_select(&a.y, &b.y, choice),
            z: Fe::conditional_select(&a.z, &b.z, choice),
        }
    }
}

impl From<&Aff> for Jac {
    fn from(a: &Aff) -> Self {
        Self {
            x: a.x,
            y: a.y,
            z: Fe::ONE,
        }
    }
}

impl Jac {
    pub(crate) const IDENTITY: Self = Self {
        x: Fe::ONE,
        y: Fe::ONE,
        z: Fe::ZERO,
    };

    pub(crate) fn is_identity(&self) -> Choice {
        self.z.is_zero()
    }

    fn is_identity_vartime(&self) -> bool {
        bool::from(self.z.is_zero())
    }

    /// `2·self` for `a = −3` (dbl-2001-b, 3M + 5S). Complete: the identity stays the
    /// identity, and the curve has no point of order 2.
    pub(crate) fn double(&self) -> Self {
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta = self.x * gamma;
        let t = (self.x - delta) * (self.x + delta);
        let alpha = t + t.double();
        let beta4 = beta.double().double();
        let x = alpha.square() - beta4.double();
        let z = (self.y + self.z).square() - gamma - delta;
        let y = alpha * (beta4 - x) - gamma.square().double().double().double();
        Self { x, y, z }
    }

    /// The generic sum (add-2007-bl without the squaring trick, 12M + 4S) and whether
    /// `H = R = 0` (equal inputs: the formula then gives the identity instead of the double).
    /// Wrong if either input is the identity.
    fn add_raw(&self, o: &Self) -> (Self, Choice) {
        let z1z1 = self.z.square();
        let z2z2 = o.z.square();
        let u1 = self.x * z2z2;
        let u2 = o.x * z1z1;
        let s1 = self.y * o.z * z2z2;
        let s2 = o.y * self.z * z1z1;
        let h = u2 - u1;
        let r = s2 - s1;
        let hh = h.square();
        let hhh = h * hh;
        let v = u1 * hh;
        let x = r.square() - hhh - v.double();
        let y = r * (v - x) - s1 * hhh;
        let z = self.z * o.z * h;
        (Self { x, y, z }, h.is_zero() & r.is_zero())
    }

    /// `self + a` for an affine `a` (madd-2004-hmv, 8M + 3S) and whether the inputs were
    /// equal. Wrong if `self` is the identity.
    fn madd_raw(&self, a: &Aff) -> (Self, Choice) {
        let z1z1 = self.z.square();
        let u2 = a.x * z1z1;
        let s2 = a.y * self.z * z1z1;
        let h = u2 - self.x;
        let r = s2 - self.y;
        let hh = h.square();
        let hhh = h * hh;
        let v = self.x * hh;
        let x = r.square() - hhh - v.double();
        let y = r * (v - x) - self.y * hhh;
        let z = self.z * h;
        (Self { x, y, z }, h.is_zero() & r.is_zero())
    }

    /// `self + o` for any inputs, constant time (the doubling is always computed and
    /// selected when the inputs are equal).
    pub(crate) fn add_complete(&self, o: &Self) -> Self {
        let (mut sum, equal) = self.add_raw(o);
        let both = !self.is_identity() & !o.is_identity();
        sum.conditional_assign(&self.double(), equal & both);
        sum.conditional_assign(o, self.is_identity());
        sum.conditional_assign(self, o.is_identity());
        sum
    }

    /// `self + o`, constant time, for inputs known not to be equal unless identities.
    fn add_ct(&self, o: &Self) -> Self {
        let (mut sum, _) = self.add_raw(o);
        sum.conditional_assign(o, self.is_identity());
        sum.conditional_assign(self, o.is_identity());
        sum
    }

    /// `self + a` (or `self` if `skip`), constant time, for `self ≠ ±a` unless identity.
    fn madd_ct(&self, a: &Aff, skip: Choice) -> Self {
        let (mut sum, _) = self.madd_raw(a);
        sum.conditional_assign(&Self::from(a), self.is_identity());
        sum.conditional_assign(self, skip);
        sum
    }

    /// `self + o`, variable time (public points only).
    fn add_vartime(&self, o: &Self) -> Self {
        if self.is_identity_vartime() {
            return *o;
        }
        if o.is_identity_vartime() {
            return *self;
        }
        let (sum, equal) = self.add_raw(o);
        if bool::from(equal) {
            self.double()
        } else {
            sum
        }
    }

    /// `self + a`, variable time (public points only).
    fn madd_vartime(&self, a: &Aff) -> Self {
        if self.is_identity_vartime() {
            return Self::from(a);
        }
        let (sum, equal) = self.madd_raw(a);
        if bool::from(equal) {
            self.double()
        } else {
            sum
        }
    }

    #[cfg(test)]
    fn neg(&self) -> Self {
        Self {
            x: self.x,
            y: -self.y,
            z: self.z,
        }
    }

    /// The affine point; `None` for the identity.
    pub(crate) fn to_affine(self) -> Option<Aff> {
        if self.is_identity_vartime() {
            return None;
        }
        Some(self.scaled(&invert(&self.z)))
    }

    fn scaled(&self, zinv: &Fe) -> Aff {
        let zinv2 = zinv.square();
        Aff {
            x: self.x * zinv2,
            y: self.y * zinv2 * *zinv,
        }
    }

    /// Whether `self` is the affine point `a` (no inversion).
    pub(crate) fn eq_affine(&self, a: &Aff) -> bool {
        if self.is_identity_vartime() {
            return false;
        }
        let z2 = self.z.square();
        a.x * z2 == self.x && a.y * z2 * self.z == self.y
    }

    /// Whether `x(self) mod n = v` (GB/T 32918.2 B7's comparison), without an inversion:
    /// `x = X/Z²`, so `X = v·Z²`, or `X = (v + n)·Z²` when `v + n < p`. Public data only.
    pub(crate) fn x_mod_n_is(&self, v: &Scalar) -> bool {
        if self.is_identity_vartime() {
            return false;
        }
        let z2 = self.z.square();
        let repr = v.to_repr();
        let Some(vf) = Fe::from_bytes(&repr) else {
            return false;
        };
        if vf * z2 == self.x {
            return true;
        }
        repr.as_slice() < P_MINUS_N.as_slice() && (vf + N_FE) * z2 == self.x
    }
}

/// Normalizes points with one inversion; `None` if any is the identity.
pub(crate) fn batch_to_affine(points: &[Jac]) -> Option<Vec<Aff>> {
    if points.iter().any(Jac::is_identity_vartime) {
        return None;
    }
    // Exclusive prefix products z_0·…·z_(i−1), one inversion, then walk back.
    let mut before = Vec::with_capacity(points.len());
    let mut acc = Fe::ONE;
    for p in points {
        before.push(acc);
        acc *= p.z;
    }
    let mut inv = invert(&acc);
    let mut out = vec![
        Aff {
            x: Fe::ZERO,
            y: Fe::ZERO,
        };
        points.len()
    ];
    for ((slot, p), before) in out.iter_mut().zip(points).zip(&before).rev() {
        // inv = (z_0·…·z_i)⁻¹ here
        let zinv = inv * *before;
        inv *= p.z;
        *slot = p.scaled(&zinv);
    }
    Some(out)
}

// ------------------------------------------------------------------------------------------
// scalar recodings

/// Little-endian 64-bit limbs of a scalar.
fn limbs(k: &Scalar) -> [u64; 5] {
    let repr = k.to_repr();
    let mut out = [0u64; 5];
    for (limb, chunk) in out.iter_mut().zip(repr.as_slice().rchunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *limb = u64::from_be_bytes(b);
        b.zeroize();
    }
    out
}

/// Bits `[pos, pos + w)` of `l` (zeros above), `w < 64`. Indexes depend on `pos` only.
fn bits(l: &[u64; 5], pos: usize, w: usize) -> u64 {
    let i = pos / 64;
    let sh = pos % 64;
    let lo = l.get(i).copied().unwrap_or(0) >> sh;
    let hi = if sh == 0 {
        0
    } else {
        l.get(i + 1).copied().unwrap_or(0) << (64 - sh)
    };
    (lo | hi) & ((1u64 << w) - 1)
}

/// Signed radix-2^w digits `d_i ∈ [−2^(w−1), 2^(w−1)]` with `k = Σ d_i·2^(w·i)`, constant
/// time (the same arithmetic for every scalar). `N` must cover 257 bits.
#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
fn recode_signed<const N: usize>(k: &Scalar, w: usize) -> [i32; N] {
    let mut l = limbs(k);
    let mut out = [0i32; N];
    let mut carry = 0u64;
    for (i, d) in out.iter_mut().enumerate() {
        let u = bits(&l, i * w, w) + carry;
        // carry = 1 iff u > 2^(w−1), without a branch
        carry = (u + (1u64 << (w - 1)) - 1) >> w;
        // |values| ≤ 2^w ≤ 32: the casts are exact
        *d = u as i32 - (carry << w) as i32;
    }
    l.zeroize();
    out
}

/// Splits a signed digit into (|d|, is negative), constant time.
#[allow(clippy::cast_sign_loss)]
fn abs_sign(d: i32) -> (u32, Choice) {
    let mask = d >> 31;
    let abs = ((d ^ mask) - mask) as u32;
    (abs, Choice::from((mask & 1) as u8))
}

/// Width-w NAF of the value in `l` (at most `nbits` bits): odd digits `|d| < 2^(w−1)`,
/// any w consecutive digits have at most one non-zero. Variable time: public scalars only.
#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
fn wnaf(l: &[u64; 5], nbits: usize, w: usize, out: &mut [i8]) {
    let width = 1u64 << w;
    let mut pos = 0;
    let mut carry = 0u64;
    while pos < nbits {
        let window = carry + bits(l, pos, w);
        if window & 1 == 0 {
            // Even: the carry stays pending into the next bit.
            pos += 1;
            continue;
        }
        // window < 2^w ≤ 128 and odd: the digit fits an i8 for w ≤ 7
        let d = if window < width / 2 {
            carry = 0;
            window as i8
        } else {
            carry = 1;
            (window as i16 - width as i16) as i8
        };
        if let Some(o) = out.get_mut(pos) {
            *o = d;
        }
        pos += w;
    }
    if carry == 1
        && let Some(o) = out.get_mut(pos)
    {
        *o = 1;
    }
}

// ------------------------------------------------------------------------------------------
// constant-time multiplications (secret scalars)

const COMB_W: usize = 5;
const COMB_ROW: usize = 1 << (COMB_W - 1);
/// ⌈256 / 5⌉ windows plus one for the final carry.
const COMB_WINDOWS: usize = 53;

/// `j·2^(5i)·G` for `j = 1..=16`, `i = 0..53`, affine (848 points, 53 KiB), built once.
static COMB: LazyLock<Vec<Aff>> = LazyLock::new(|| {
    let mut pts = Vec::with_capacity(COMB_WINDOWS * COMB_ROW);
    let mut base = Jac::from(&Aff::generator());
    for _ in 0..COMB_WINDOWS {
        let mut p = base;
        pts.push(p);
        for _ in 1..COMB_ROW {
            p = p.add_vartime(&base);
            pts.push(p);
        }
        for _ in 0..COMB_W {
            base = base.double();
        }
    }
    // No entry is the identity (n is prime and no multiplier is a multiple of n).
    batch_to_affine(&pts).unwrap_or_default()
});

/// `k·G`, constant time: one affine table row per 5-bit signed digit, each row scanned in
/// full, one mixed addition per window (53 in all), no doubling.
///
/// The incomplete addition is safe here: processing windows from the lowest, the
/// accumulator is `A = Σ_{j<i} d_j·2^(5j)` with `|A| < (16/31)·2^(5i)`, the entry is
/// `d_i·2^(5i)` with `|d_i| ≥ 1`, and for `k < n` the two are never equal or opposite
/// modulo n (their difference and sum are non-zero and below n in magnitude; in the top
/// window, equality would need `k ≥ n`). A zero accumulator or digit is handled by selects.
#[inline(never)]
pub(crate) fn mul_g(k: &Scalar) -> Jac {
    let mut digits = recode_signed::<COMB_WINDOWS>(k, COMB_W);
    let mut acc = Jac::IDENTITY;
    for (row, d) in COMB.chunks_exact(COMB_ROW).zip(&digits) {
        let (abs, negative) = abs_sign(*d);
        let mut t = Aff {
            x: Fe::ONE,
            y: Fe::ONE,
        };
        for (p, j) in row.iter().zip(1u32..) {
            t.conditional_assign(p, abs.ct_eq(&j));
        }
        t.y = Fe::conditional_select(&t.y, &-t.y, negative);
        acc = acc.madd_ct(&t, abs.ct_eq(&0));
    }
    digits.zeroize();
    acc
}

/// `k·Q`, constant time: signed 4-bit fixed window (65 digits), a table of `1..=8 ·Q`
/// scanned in full per digit, 4 doublings and one addition per digit.
///
/// Before adding digit `i ≥ 1` the accumulator is `16·A` with `|16·A| < n/16 + 16`, so it
/// can equal `±d_i·Q` only when both are zero (handled by selects); only the last addition
/// can meet equal inputs (e.g. `k = n − 6`), and it uses [`Jac::add_complete`].
#[inline(never)]
pub(crate) fn mul(k: &Scalar, q: &Aff) -> Jac {
    let base = Jac::from(q);
    let mut table = [base; 8];
    let mut prev = base;
    for (j, slot) in table.iter_mut().enumerate().skip(1) {
        // (j+1)·Q = j·Q + Q: distinct non-identity inputs for j ≤ 7
        *slot = if j == 1 {
            base.double()
        } else {
            prev.add_ct(&base)
        };
        prev = *slot;
    }
    let mut digits = recode_signed::<65>(k, 4);
    let mut acc = Jac::IDENTITY;
    for (i, d) in digits.iter().enumerate().rev() {
        for _ in 0..4 {
            acc = acc.double();
        }
        let (abs, negative) = abs_sign(*d);
        let mut t = Jac::IDENTITY;
        for (p, j) in table.iter().zip(1u32..) {
            t.conditional_assign(p, abs.ct_eq(&j));
        }
        t.y = Fe::conditional_select(&t.y, &-t.y, negative);
        acc = if i == 0 {
            acc.add_complete(&t)
        } else {
            acc.add_ct(&t)
        };
    }
    digits.zeroize();
    acc
}

// ------------------------------------------------------------------------------------------
// variable-time multi-scalar multiplication (public scalars: verification)

/// A scalar split into four 64-bit chunks needs only 64 doublings against a table of
/// `2^(64j)·B`; each chunk is recoded in wNAF against odd multiples of its base.
const SPLIT: usize = 4;
/// wNAF width for G's split table: 32 odd multiples per chunk (128 points, 8 KiB).
const G_W: usize = 7;
/// wNAF width for a key's split table and for a fresh point: 8 odd multiples.
const KEY_W: usize = 5;
/// Longest chunk recoding: 64 bits + w + 1.
const CHUNK_LEN: usize = 64 + G_W + 1;
/// Longest full recoding: 256 bits + w + 1.
const FULL_LEN: usize = 256 + KEY_W + 1;

/// Odd multiples `(2m+1)·2^(64j)·B` for `j < 4`, `m < 2^(w−2)`, affine.
#[derive(Debug)]
pub(crate) struct SplitTable {
    points: Vec<Aff>,
    per_chunk: usize,
}

impl SplitTable {
    fn new(base: &Aff, w: usize) -> Option<Self> {
        let per_chunk = 1 << (w - 2);
        let mut jacs = Vec::with_capacity(SPLIT * per_chunk);
        let mut b = Jac::from(base);
        for j in 0..SPLIT {
            if j > 0 {
                for _ in 0..64 {
                    b = b.double();
                }
            }
            push_odd_multiples(b, per_chunk, &mut jacs);
        }
        Some(Self {
            points: batch_to_affine(&jacs)?,
            per_chunk,
        })
    }

    fn chunks(&self) -> core::slice::ChunksExact<'_, Aff> {
        self.points.chunks_exact(self.per_chunk)
    }
}

static G_SPLIT: LazyLock<Option<SplitTable>> =
    LazyLock::new(|| SplitTable::new(&Aff::generator(), G_W));

/// `Σ digits·table` by interleaved wNAF: one doubling per digit position, one mixed
/// addition per non-zero digit. Variable time.
fn multi_vartime(terms: &[(&[i8], &[Aff])]) -> Jac {
    let len = terms.iter().map(|(d, _)| d.len()).max().unwrap_or(0);
    let mut acc = Jac::IDENTITY;
    for i in (0..len).rev() {
        if !acc.is_identity_vartime() {
            acc = acc.double();
        }
        for (digits, table) in terms {
            let d = digits.get(i).copied().unwrap_or(0);
            if d == 0 {
                continue;
            }
            // odd d: (|d| − 1)/2 = |d|/2
            let Some(p) = table.get(usize::from(d.unsigned_abs() / 2)) else {
                continue;
            };
            acc = if d > 0 {
                acc.madd_vartime(p)
            } else {
                acc.madd_vartime(&p.neg())
            };
        }
    }
    acc
}

/// wNAF recodings of the four 64-bit chunks of `k`.
fn chunk_digits(k: &Scalar, w: usize) -> [[i8; CHUNK_LEN]; SPLIT] {
    let l = limbs(k);
    let mut out = [[0i8; CHUNK_LEN]; SPLIT];
    for (o, limb) in out.iter_mut().zip(l) {
        wnaf(&[limb, 0, 0, 0, 0], 64, w, o);
    }
    out
}

/// `base, 3·base, 5·base, …` (`count` points), variable time (public points).
fn push_odd_multiples(base: Jac, count: usize, out: &mut Vec<Jac>) {
    let two = base.double();
    let mut p = base;
    out.push(p);
    for _ in 1..count {
        p = p.add_vartime(&two);
        out.push(p);
    }
}

/// `a·G + b·Q` for a point `Q` seen once (a proof's statement), variable time:
/// G through its split table (64 doublings' worth), Q by wNAF over 8 odd multiples.
pub(crate) fn mul_g_add_vartime(a: &Scalar, b: &Scalar, q: &Aff) -> Option<Jac> {
    lincomb_vartime(a, &[(*b, *q)])
}

/// `a·G + Σ s_i·P_i`, variable time (public scalars and points): one interleaved wNAF
/// pass, so all terms share one run of doublings (256 for full-length `s_i`). `None` if a
/// point is the identity or G's table is missing.
#[inline(never)]
pub(crate) fn lincomb_vartime(a: &Scalar, terms: &[(Scalar, Aff)]) -> Option<Jac> {
    let g = G_SPLIT.as_ref()?;
    let per_point = 1usize << (KEY_W - 2);
    let mut odd = Vec::with_capacity(terms.len() * per_point);
    for (_, p) in terms {
        push_odd_multiples(Jac::from(p), per_point, &mut odd);
    }
    // One inversion for every table.
    let odd = batch_to_affine(&odd)?;
    let digits: Vec<[i8; FULL_LEN]> = terms
        .iter()
        .map(|(s, _)| {
            let mut d = [0i8; FULL_LEN];
            wnaf(&limbs(s), 256, KEY_W, &mut d);
            d
        })
        .collect();
    let a_digits = chunk_digits(a, G_W);
    let mut all: Vec<(&[i8], &[Aff])> = Vec::with_capacity(terms.len() + SPLIT);
    for (d, t) in digits.iter().zip(odd.chunks_exact(per_point)) {
        all.push((d, t));
    }
    for (d, t) in a_digits.iter().zip(g.chunks()) {
        all.push((d, t));
    }
    Some(multi_vartime(&all))
}

/// A public key's split table (32 affine points, 2 KiB): verification against that key then
/// costs 72 doublings instead of 256.
#[derive(Debug)]
pub(crate) struct KeyTable(SplitTable);

impl KeyTable {
    /// `a·G + b·P` for this table's key `P`, variable time.
    #[inline(never)]
    pub(crate) fn mul_g_add_vartime(&self, a: &Scalar, b: &Scalar) -> Option<Jac> {
        let g = G_SPLIT.as_ref()?;
        let a_digits = chunk_digits(a, G_W);
        let b_digits = chunk_digits(b, KEY_W);
        let mut terms: Vec<(&[i8], &[Aff])> = Vec::with_capacity(2 * SPLIT);
        for (d, t) in a_digits.iter().zip(g.chunks()) {
            terms.push((d, t));
        }
        for (d, t) in b_digits.iter().zip(self.0.chunks()) {
            terms.push((d, t));
        }
        Some(multi_vartime(&terms))
    }
}

/// Most keys kept; past this the cache drops an arbitrary entry.
const KEY_CACHE_CAP: usize = 1024;

/// Key tables by `x ‖ y`: `None` marks a key seen once (its table is built on the second
/// verification, so a one-off key costs nothing extra), `Some` a built table.
type KeyCache = HashMap<[u8; 64], Option<Arc<KeyTable>>>;

static KEY_CACHE: LazyLock<Mutex<KeyCache>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The cached table for public key `p`, building it on the key's second use; `None` on
/// first use (the caller then uses [`mul_g_add_vartime`]).
pub(crate) fn key_table(p: &Aff) -> Option<Arc<KeyTable>> {
    let mut id = [0u8; 64];
    let (x, y) = id.split_at_mut(32);
    x.copy_from_slice(&p.x.to_bytes());
    y.copy_from_slice(&p.y.to_bytes());
    {
        let mut cache = KEY_CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        match cache.get(&id) {
            Some(Some(t)) => return Some(Arc::clone(t)),
            Some(None) => {}
            None => {
                evict_if_full(&mut cache);
                cache.insert(id, None);
                return None;
            }
        }
    }
    // Built outside the lock; a concurrent builder just overwrites with an equal table.
    let table = Arc::new(KeyTable(SplitTable::new(p, KEY_W)?));
    let mut cache = KEY_CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    evict_if_full(&mut cache);
    cache.insert(id, Some(Arc::clone(&table)));
    Some(table)
}

fn evict_if_full(cache: &mut KeyCache) {
    if cache.len() >= KEY_CACHE_CAP
        && let Some(k) = cache.keys().next().copied()
    {
        cache.remove(&k);
    }
}

/// `a·G + b·P` for a public key, variable time, through the key cache.
pub(crate) fn verify_point_vartime(a: &Scalar, b: &Scalar, p: &Aff) -> Option<Jac> {
    match key_table(p) {
        Some(t) => t.mul_g_add_vartime(a, b),
        None => mul_g_add_vartime(a, b, p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sm2::elliptic_curve::{Group, ops::Reduce};
    use sm2::{FieldBytes, ProjectivePoint, U256};

    fn pow2(i: usize) -> Scalar {
        (0..i).fold(Scalar::ONE, |s, _| s.double())
    }

    /// Random scalars plus the edges: 0, small, n − small, ±2^i (window boundaries).
    fn scalar() -> impl Strategy<Value = Scalar> {
        prop_oneof![
            4 => any::<[u8; 32]>().prop_map(|b| Scalar::reduce(&FieldBytes::from(b))),
            1 => (0u64..40).prop_map(Scalar::from),
            1 => (1u64..40).prop_map(|v| -Scalar::from(v)),
            1 => (0usize..256, any::<bool>()).prop_map(|(i, neg)| {
                if neg { -pow2(i) } else { pow2(i) }
            }),
        ]
    }

    fn nonzero_scalar() -> impl Strategy<Value = Scalar> {
        scalar().prop_filter("non-zero", |s| !bool::from(s.is_zero()))
    }

    fn point() -> impl Strategy<Value = AffinePoint> {
        nonzero_scalar().prop_map(|k| (ProjectivePoint::GENERATOR * k).to_affine())
    }

    fn reference(j: &Jac) -> ProjectivePoint {
        match j.to_affine() {
            None => ProjectivePoint::IDENTITY,
            Some(a) => ProjectivePoint::from(a.to_point().unwrap()),
        }
    }

    fn jac(p: &AffinePoint) -> Jac {
        Jac::from(&Aff::from_point(p).unwrap())
    }

    /// A Jacobian representative with a random Z (so formulas are not only tested at Z = 1).
    fn rescaled(p: &Jac, z: &Fe) -> Jac {
        Jac {
            x: p.x * z.square(),
            y: p.y * z.square() * *z,
            z: p.z * *z,
        }
    }

    fn fe() -> impl Strategy<Value = Fe> {
        any::<[u8; 32]>().prop_map(|b| Fe::from_bytes(&FieldBytes::from(b)).unwrap_or(Fe::ONE))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn mul_g_matches_sm2(k in scalar()) {
            prop_assert_eq!(reference(&mul_g(&k)), ProjectivePoint::GENERATOR * k);
        }

        #[test]
        fn mul_matches_sm2(k in scalar(), q in point()) {
            let expected = ProjectivePoint::from(q) * k;
            prop_assert_eq!(reference(&mul(&k, &Aff::from_point(&q).unwrap())), expected);
        }

        #[test]
        fn mul_g_add_vartime_matches_sm2(a in scalar(), b in scalar(), q in point()) {
            let expected = ProjectivePoint::GENERATOR * a + ProjectivePoint::from(q) * b;
            let q = Aff::from_point(&q).unwrap();
            prop_assert_eq!(reference(&mul_g_add_vartime(&a, &b, &q).unwrap()), expected);
            let table = KeyTable(SplitTable::new(&q, KEY_W).unwrap());
            prop_assert_eq!(reference(&table.mul_g_add_vartime(&a, &b).unwrap()), expected);
        }

        #[test]
        fn additions_match_sm2(a in point(), b in point(), z1 in fe(), z2 in fe()) {
            prop_assume!(!bool::from(z1.is_zero()) && !bool::from(z2.is_zero()));
            let (pa, pb) = (ProjectivePoint::from(a), ProjectivePoint::from(b));
            let (ja, jb) = (rescaled(&jac(&a), &z1), rescaled(&jac(&b), &z2));
            let id = Jac::IDENTITY;
            // distinct, equal, opposite, and with the identity on either side
            for (x, y, expected) in [
                (ja, jb, pa + pb),
                (ja, rescaled(&jac(&a), &z2), pa.double()),
                (ja, rescaled(&jac(&a), &z2).neg(), ProjectivePoint::IDENTITY),
                (id, jb, pb),
                (ja, id, pa),
                (id, id, ProjectivePoint::IDENTITY),
            ] {
                prop_assert_eq!(reference(&x.add_complete(&y)), expected);
                prop_assert_eq!(reference(&x.add_vartime(&y)), expected);
            }
            let b_aff = Aff::from_point(&b).unwrap();
            prop_assert_eq!(reference(&ja.madd_vartime(&b_aff)), pa + pb);
            prop_assert_eq!(reference(&rescaled(&jac(&b), &z1).madd_vartime(&b_aff)), pb.double());
            prop_assert_eq!(reference(&id.madd_vartime(&b_aff)), pb);
            if pa != pb && pa != -pb {
                // madd_ct's precondition: inputs neither equal nor opposite
                prop_assert_eq!(reference(&ja.madd_ct(&b_aff, Choice::from(0))), pa + pb);
            }
            prop_assert_eq!(reference(&ja.madd_ct(&b_aff, Choice::from(1))), pa);
            prop_assert_eq!(reference(&id.madd_ct(&b_aff, Choice::from(0))), pb);
            prop_assert_eq!(reference(&ja.double()), pa.double());
            prop_assert!(ja.eq_affine(&Aff::from_point(&a).unwrap()));
            prop_assert_eq!(ja.eq_affine(&b_aff), a == b);
        }

        #[test]
        fn invert_and_batch_match_sm2(x in fe(), pts in proptest::collection::vec(point(), 1..6), z in fe()) {
            type Ref = <sm2::Sm2 as sm2::elliptic_curve::hazmat::FieldArithmetic>::FieldElement;
            let r = Ref::from_repr(x.to_bytes()).unwrap();
            let expected = Option::<Ref>::from(r.invert()).unwrap_or(Ref::ZERO);
            prop_assert_eq!(invert(&x).to_bytes(), expected.to_repr());
            prop_assume!(!bool::from(z.is_zero()));
            let jacs: Vec<Jac> = pts.iter().map(|p| rescaled(&jac(p), &z)).collect();
            let affs = batch_to_affine(&jacs).unwrap();
            for (a, p) in affs.iter().zip(&pts) {
                prop_assert_eq!(a.to_point().unwrap(), *p);
            }
        }

        #[test]
        fn lincomb_identity_matches_sm2(
            a in scalar(),
            terms in proptest::collection::vec((scalar(), nonzero_scalar()), 1..5),
        ) {
            let g = ProjectivePoint::GENERATOR;
            let pts: Vec<(Scalar, Aff)> = terms
                .iter()
                .map(|(s, k)| (*s, Aff::from_point(&(g * k).to_affine()).unwrap()))
                .collect();
            let sum = terms.iter().fold(g * a, |acc, (s, k)| acc + g * (*k * s));
            prop_assert_eq!(
                lincomb_vartime(&a, &pts).unwrap().is_identity_vartime(),
                bool::from(sum.is_identity())
            );
            // Cancel the sum exactly: a' = −Σ s_i·k_i makes it the identity.
            let a2 = -terms.iter().fold(Scalar::ZERO, |acc, (s, k)| acc + *k * s);
            prop_assert!(lincomb_vartime(&a2, &pts).unwrap().is_identity_vartime());
            prop_assert!(!lincomb_vartime(&(a2 + Scalar::ONE), &pts).unwrap().is_identity_vartime());
        }

        #[test]
        fn invert_scalar_matches_sm2(k in scalar()) {
            let expected = Option::<Scalar>::from(k.invert()).unwrap_or(Scalar::ZERO);
            prop_assert_eq!(invert_scalar(&k), expected);
        }

        #[test]
        fn x_mod_n_matches_sm2(p in point(), z in fe(), v in scalar()) {
            prop_assume!(!bool::from(z.is_zero()));
            let j = rescaled(&jac(&p), &z);
            let x = Scalar::reduce(&p.x());
            prop_assert!(j.x_mod_n_is(&x));
            prop_assert!(!j.x_mod_n_is(&(x + Scalar::ONE)));
            // The second candidate: an x in [n, p) reduces to x − n < p − n.
            let fake = Jac { x: (Fe::from_bytes(&v.to_repr()).unwrap() + N_FE) * z.square(), y: j.y, z };
            let small = v.to_repr().as_slice() < P_MINUS_N.as_slice();
            prop_assert_eq!(fake.x_mod_n_is(&v), small);
        }
    }

    #[test]
    fn constants() {
        let p =
            U256::from_be_hex("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF");
        let n =
            U256::from_be_hex("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123");
        assert_eq!(
            p.wrapping_sub(&n).to_be_bytes().as_slice(),
            P_MINUS_N.as_slice()
        );
        assert_eq!(N_FE.to_bytes().as_slice(), n.to_be_bytes().as_slice());
        assert_eq!(-Scalar::ONE + Scalar::ONE, Scalar::ZERO);
        assert!(bool::from(
            (Scalar::from_repr(n.to_be_bytes().into())).is_none()
        ));
        let n2 = n.wrapping_sub(&U256::from_u8(2));
        assert_eq!(n2.to_be_bytes().as_slice(), N_MINUS_2.as_slice());
    }

    #[test]
    fn edge_scalars() {
        let g = ProjectivePoint::GENERATOR;
        let q = (g * Scalar::from(12345u64)).to_affine();
        let qa = Aff::from_point(&q).unwrap();
        // n − 6 makes the last window addition meet equal inputs (16·A = −3, d_0 = −3).
        for k in [
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            -Scalar::from(6u64),
            -Scalar::from(3u64),
            pow2(255),
            -pow2(255),
        ] {
            assert_eq!(reference(&mul_g(&k)), g * k);
            assert_eq!(reference(&mul(&k, &qa)), ProjectivePoint::from(q) * k);
            assert_eq!(
                reference(&mul_g_add_vartime(&k, &k, &qa).unwrap()),
                g * k + ProjectivePoint::from(q) * k
            );
        }
        // a·G + b·P = identity for b = −a·log(P)
        let b = -Scalar::ONE;
        let a = Scalar::from(12345u64);
        assert!(bool::from(
            mul_g_add_vartime(&a, &b, &qa).unwrap().is_identity()
        ));
    }

    #[test]
    fn key_cache_builds_on_second_use() {
        let q = (ProjectivePoint::GENERATOR * Scalar::from(987_654_321u64)).to_affine();
        let qa = Aff::from_point(&q).unwrap();
        assert!(key_table(&qa).is_none());
        assert!(key_table(&qa).is_some());
        assert!(key_table(&qa).is_some());
        let (a, b) = (Scalar::from(5u64), Scalar::from(7u64));
        let expected = ProjectivePoint::GENERATOR * a + ProjectivePoint::from(q) * b;
        assert_eq!(
            reference(&verify_point_vartime(&a, &b, &qa).unwrap()),
            expected
        );
    }
}
