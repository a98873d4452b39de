//! The SM2 base field `p = 2²⁵⁶ − 2²²⁴ − 2⁹⁶ + 2⁶⁴ − 1` in Montgomery form (R = 2²⁵⁶),
//! four 64-bit limbs, every operation constant time (no secret-dependent branch or index;
//! final subtractions by masks).
//!
//! Why not the `sm2` crate's fiat-crypto field: its multiplication is an out-of-line call
//! of about 370 instructions; this one is inlined and uses `p ≡ −1 (mod 2⁶⁴)` (the
//! Montgomery factor is 1, so each reduction round needs no extra multiplication). The
//! proptests at the end compare every operation with the `sm2` crate's field element.

// The limb helpers and field operations are a few instructions each and sit in every point
// formula; an out-of-line call costs as much as the work (measured with callgrind).
#![allow(clippy::inline_always)]

use sm2::FieldBytes;
use sm2::elliptic_curve::subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

const P: [u64; 4] = [
    0xFFFF_FFFF_FFFF_FFFF,
    0xFFFF_FFFF_0000_0000,
    0xFFFF_FFFF_FFFF_FFFF,
    0xFFFF_FFFE_FFFF_FFFF,
];
/// R² mod p, to enter the Montgomery domain.
const R2: [u64; 4] = [
    0x0000_0002_0000_0003,
    0x0000_0002_FFFF_FFFF,
    0x0000_0001_0000_0001,
    0x0000_0004_0000_0002,
];

/// `a + b·c + carry` as (low, high).
#[inline(always)]
#[allow(clippy::cast_possible_truncation)]
const fn mac(a: u64, b: u64, c: u64, carry: u64) -> (u64, u64) {
    let t = (a as u128) + (b as u128) * (c as u128) + (carry as u128);
    (t as u64, (t >> 64) as u64)
}

/// `a + b + carry` as (sum, carry).
#[inline(always)]
#[allow(clippy::cast_possible_truncation)]
const fn adc(a: u64, b: u64, carry: u64) -> (u64, u64) {
    let t = (a as u128) + (b as u128) + (carry as u128);
    (t as u64, (t >> 64) as u64)
}

/// `a − b − borrow` as (difference, borrow) with borrow 0 or 1.
#[inline(always)]
#[allow(clippy::cast_possible_truncation)]
const fn sbb(a: u64, b: u64, borrow: u64) -> (u64, u64) {
    let t = (a as u128).wrapping_sub((b as u128) + (borrow as u128));
    (t as u64, ((t >> 64) as u64) & 1)
}

/// `(hi ‖ r) mod p` for `hi ‖ r < 2p`, constant time: subtract p, keep the original on a
/// borrow.
#[inline(always)]
const fn sub_p_if_ge(r: [u64; 4], hi: u64) -> [u64; 4] {
    let (d0, b) = sbb(r[0], P[0], 0);
    let (d1, b) = sbb(r[1], P[1], b);
    let (d2, b) = sbb(r[2], P[2], b);
    let (d3, b) = sbb(r[3], P[3], b);
    let (_, b) = sbb(hi, 0, b);
    // b = 1: r < p, keep r
    let keep = 0u64.wrapping_sub(b);
    [
        (r[0] & keep) | (d0 & !keep),
        (r[1] & keep) | (d1 & !keep),
        (r[2] & keep) | (d2 & !keep),
        (r[3] & keep) | (d3 & !keep),
    ]
}

/// One Montgomery round: adds `k·p` with `k = t0` (−p⁻¹ ≡ 1 mod 2⁶⁴) and drops the zero
/// low limb. `t0 + k·(2⁶⁴ − 1) = k·2⁶⁴`, so the first carry is `k` itself.
#[inline(always)]
const fn round(t: [u64; 5]) -> [u64; 5] {
    let k = t[0];
    let (r1, c) = mac(t[1], k, P[1], k);
    let (r2, c) = mac(t[2], k, P[2], c);
    let (r3, c) = mac(t[3], k, P[3], c);
    let (r4, c) = adc(t[4], 0, c);
    [r1, r2, r3, r4, c]
}

/// Montgomery product `a·b·R⁻¹ mod p` (a, b < p).
#[inline(always)]
const fn mont_mul(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    // Schoolbook 4×4 → 8 limbs.
    let (r0, c) = mac(0, a[0], b[0], 0);
    let (r1, c) = mac(0, a[0], b[1], c);
    let (r2, c) = mac(0, a[0], b[2], c);
    let (r3, r4) = mac(0, a[0], b[3], c);
    let (r1, c) = mac(r1, a[1], b[0], 0);
    let (r2, c) = mac(r2, a[1], b[1], c);
    let (r3, c) = mac(r3, a[1], b[2], c);
    let (r4, r5) = mac(r4, a[1], b[3], c);
    let (r2, c) = mac(r2, a[2], b[0], 0);
    let (r3, c) = mac(r3, a[2], b[1], c);
    let (r4, c) = mac(r4, a[2], b[2], c);
    let (r5, r6) = mac(r5, a[2], b[3], c);
    let (r3, c) = mac(r3, a[3], b[0], 0);
    let (r4, c) = mac(r4, a[3], b[1], c);
    let (r5, c) = mac(r5, a[3], b[2], c);
    let (r6, r7) = mac(r6, a[3], b[3], c);
    reduce([r0, r1, r2, r3, r4, r5, r6, r7])
}

/// Montgomery square `a²·R⁻¹ mod p`: the six cross products once, doubled by a shift
/// (10 word multiplications instead of 16).
#[inline(always)]
const fn mont_square(a: &[u64; 4]) -> [u64; 4] {
    let (r1, c) = mac(0, a[0], a[1], 0);
    let (r2, c) = mac(0, a[0], a[2], c);
    let (r3, r4) = mac(0, a[0], a[3], c);
    let (r3, c) = mac(r3, a[1], a[2], 0);
    let (r4, r5) = mac(r4, a[1], a[3], c);
    let (r5, r6) = mac(r5, a[2], a[3], 0);
    let r7 = r6 >> 63;
    let r6 = (r6 << 1) | (r5 >> 63);
    let r5 = (r5 << 1) | (r4 >> 63);
    let r4 = (r4 << 1) | (r3 >> 63);
    let r3 = (r3 << 1) | (r2 >> 63);
    let r2 = (r2 << 1) | (r1 >> 63);
    let r1 = r1 << 1;
    let (r0, c) = mac(0, a[0], a[0], 0);
    let (r1, c) = adc(r1, 0, c);
    let (r2, c) = mac(r2, a[1], a[1], c);
    let (r3, c) = adc(r3, 0, c);
    let (r4, c) = mac(r4, a[2], a[2], c);
    let (r5, c) = adc(r5, 0, c);
    let (r6, c) = mac(r6, a[3], a[3], c);
    let (r7, _) = adc(r7, 0, c);
    reduce([r0, r1, r2, r3, r4, r5, r6, r7])
}

/// Montgomery reduction of a 512-bit value below `p·R`.
#[inline(always)]
const fn reduce(r: [u64; 8]) -> [u64; 4] {
    let t = round([r[0], r[1], r[2], r[3], 0]);
    let (t4, c) = adc(t[3], r[4], 0);
    let t = round([t[0], t[1], t[2], t4, t[4] + c]);
    let (t4, c) = adc(t[3], r[5], 0);
    let t = round([t[0], t[1], t[2], t4, t[4] + c]);
    let (t4, c) = adc(t[3], r[6], 0);
    let t = round([t[0], t[1], t[2], t4, t[4] + c]);
    let (t4, c) = adc(t[3], r[7], 0);
    sub_p_if_ge([t[0], t[1], t[2], t4], t[4] + c)
}

/// An element of GF(p) in Montgomery form, always fully reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fe([u64; 4]);

impl Fe {
    pub(crate) const ZERO: Self = Self([0; 4]);
    /// R mod p.
    pub(crate) const ONE: Self = Self([1, 0x0000_0000_FFFF_FFFF, 0, 0x0000_0001_0000_0000]);

    /// From canonical little-endian limbs (< p), usable in constants.
    pub(crate) const fn from_limbs(l: [u64; 4]) -> Self {
        Self(mont_mul(&l, &R2))
    }

    /// From big-endian bytes; `None` unless canonical (< p).
    pub(crate) fn from_bytes(b: &FieldBytes) -> Option<Self> {
        let mut l = [0u64; 4];
        for (limb, chunk) in l.iter_mut().zip(b.as_slice().rchunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            *limb = u64::from_be_bytes(w);
        }
        let (_, b0) = sbb(l[0], P[0], 0);
        let (_, b1) = sbb(l[1], P[1], b0);
        let (_, b2) = sbb(l[2], P[2], b1);
        let (_, b3) = sbb(l[3], P[3], b2);
        (b3 == 1).then(|| Self::from_limbs(l))
    }

    /// Big-endian canonical bytes.
    pub(crate) fn to_bytes(self) -> FieldBytes {
        let l = reduce([self.0[0], self.0[1], self.0[2], self.0[3], 0, 0, 0, 0]);
        let mut out = FieldBytes::default();
        for (chunk, limb) in out.as_mut_slice().rchunks_exact_mut(8).zip(l) {
            chunk.copy_from_slice(&limb.to_be_bytes());
        }
        out
    }

    #[inline(always)]
    pub(crate) fn square(&self) -> Self {
        Self(mont_square(&self.0))
    }

    #[inline(always)]
    pub(crate) fn double(&self) -> Self {
        *self + *self
    }

    pub(crate) fn is_zero(&self) -> Choice {
        (self.0[0] | self.0[1] | self.0[2] | self.0[3]).ct_eq(&0)
    }
}

impl ConditionallySelectable for Fe {
    #[inline(always)]
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        Self([
            u64::conditional_select(&a.0[0], &b.0[0], choice),
            u64::conditional_select(&a.0[1], &b.0[1], choice),
            u64::conditional_select(&a.0[2], &b.0[2], choice),
            u64::conditional_select(&a.0[3], &b.0[3], choice),
        ])
    }
}

impl core::ops::Mul for Fe {
    type Output = Self;
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Self(mont_mul(&self.0, &o.0))
    }
}

impl core::ops::MulAssign for Fe {
    #[inline(always)]
    fn mul_assign(&mut self, o: Self) {
        *self = *self * o;
    }
}

impl core::ops::Add for Fe {
    type Output = Self;
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        let (r0, c) = adc(self.0[0], o.0[0], 0);
        let (r1, c) = adc(self.0[1], o.0[1], c);
        let (r2, c) = adc(self.0[2], o.0[2], c);
        let (r3, c) = adc(self.0[3], o.0[3], c);
        Self(sub_p_if_ge([r0, r1, r2, r3], c))
    }
}

impl core::ops::Sub for Fe {
    type Output = Self;
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        let (r0, b) = sbb(self.0[0], o.0[0], 0);
        let (r1, b) = sbb(self.0[1], o.0[1], b);
        let (r2, b) = sbb(self.0[2], o.0[2], b);
        let (r3, b) = sbb(self.0[3], o.0[3], b);
        // On a borrow add p back (masked, constant time).
        let m = 0u64.wrapping_sub(b);
        let (r0, c) = adc(r0, P[0] & m, 0);
        let (r1, c) = adc(r1, P[1] & m, c);
        let (r2, c) = adc(r2, P[2] & m, c);
        let (r3, _) = adc(r3, P[3] & m, c);
        Self([r0, r1, r2, r3])
    }
}

impl core::ops::Neg for Fe {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        Self::ZERO - self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sm2::elliptic_curve::{ff::PrimeField, hazmat::FieldArithmetic};

    type Ref = <sm2::Sm2 as FieldArithmetic>::FieldElement;

    fn bytes_of(x: &[u8]) -> FieldBytes {
        FieldBytes::try_from(x).unwrap()
    }

    /// Canonical field values: random, and the edges 0, 1, 2, p − 1, p − 2, 2^k, 2^k − 1.
    fn value() -> impl Strategy<Value = Ref> {
        prop_oneof![
            3 => any::<[u8; 32]>().prop_filter_map("canonical", |b| {
                Option::<Ref>::from(Ref::from_repr(bytes_of(&b)))
            }),
            1 => (0u64..4).prop_map(Ref::from_u64),
            1 => (1u64..4).prop_map(|v| -Ref::from_u64(v)),
            1 => (0u32..256, any::<bool>()).prop_map(|(k, minus)| {
                let t = (0..k).fold(Ref::ONE, |a, _| a.double());
                if minus { t - Ref::ONE } else { t }
            }),
        ]
    }

    fn ours(r: &Ref) -> Fe {
        Fe::from_bytes(&r.to_repr()).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn operations_match_sm2(a in value(), b in value()) {
            let (x, y) = (ours(&a), ours(&b));
            prop_assert_eq!(x.to_bytes(), a.to_repr());
            prop_assert_eq!((x * y).to_bytes(), (a * b).to_repr());
            prop_assert_eq!(x.square().to_bytes(), a.square().to_repr());
            prop_assert_eq!((x + y).to_bytes(), (a + b).to_repr());
            prop_assert_eq!((x - y).to_bytes(), (a - b).to_repr());
            prop_assert_eq!((-x).to_bytes(), (-a).to_repr());
            prop_assert_eq!(x.double().to_bytes(), a.double().to_repr());
            prop_assert_eq!(bool::from(x.is_zero()), bool::from(a.is_zero()));
            prop_assert_eq!(x == y, a == b);
        }
    }

    #[test]
    fn constants_and_decoding() {
        assert_eq!(Fe::ONE.to_bytes(), Ref::ONE.to_repr());
        assert_eq!(Fe::from_limbs([1, 0, 0, 0]), Fe::ONE);
        let mut p = [0u8; 32];
        for (chunk, limb) in p.rchunks_exact_mut(8).zip(P) {
            chunk.copy_from_slice(&limb.to_be_bytes());
        }
        assert!(Fe::from_bytes(&bytes_of(&p)).is_none());
        assert!(Fe::from_bytes(&bytes_of(&[0xFF; 32])).is_none());
        p[31] -= 1;
        assert_eq!(Fe::from_bytes(&bytes_of(&p)).unwrap(), -Fe::ONE);
    }
}
