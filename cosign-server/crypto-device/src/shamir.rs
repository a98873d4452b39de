//! M-of-N secret sharing of the master key (Shamir over GF(2^8), polynomial x^8+x^4+x^3+x+1).
//!
//! Each share is text: `YQBK1-<hex body>-<hex check>` where
//! body = set_id(8) ‖ M(1) ‖ x(1) ‖ len(1) ‖ custodian ‖ commitment(16) ‖ len(1) ‖ y,
//! check = SM3("yiqian-share-v1" ‖ body)[..8] detects any changed bit, and
//! commitment = SM3("yiqian-backup-v1" ‖ set_id ‖ secret)[..16] lets the restore prove that
//! the shares rebuilt the original secret. Field arithmetic is branch-free on secret data.

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::prims;

const PREFIX: &str = "YQBK1";

/// One custodian's share.
#[derive(Clone, PartialEq, Eq)]
pub struct Share {
    /// Backup set id (hex), common to all shares of one split.
    pub set_id: String,
    /// Threshold M.
    pub threshold: u8,
    /// x coordinate (1..=N).
    pub x: u8,
    /// Custodian name.
    pub custodian: String,
    commitment: [u8; 16],
    y: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("set_id", &self.set_id)
            .field("threshold", &self.threshold)
            .field("x", &self.x)
            .field("custodian", &self.custodian)
            .finish_non_exhaustive()
    }
}

/// The result of [`split`].
#[derive(Debug, Clone)]
pub struct ShareSet {
    /// Backup set id.
    pub set_id: String,
    /// Shares, one per custodian, in the given order.
    pub shares: Vec<Share>,
}

fn gf_mul(a: u8, b: u8) -> u8 {
    let mut a = a;
    let mut b = b;
    let mut p = 0u8;
    for _ in 0..8 {
        p ^= a & 0u8.wrapping_sub(b & 1);
        let hi = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & hi);
        b >>= 1;
    }
    p
}

fn gf_inv(a: u8) -> u8 {
    // a^254 = a^-1 for a != 0.
    let mut r = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e > 0 {
        if e & 1 == 1 {
            r = gf_mul(r, base);
        }
        base = gf_mul(base, base);
        e >>= 1;
    }
    r
}

fn commitment(set_id: &[u8], secret: &[u8]) -> [u8; 16] {
    let h = prims::sm3_parts(&[b"yiqian-backup-v1", set_id, secret]);
    let mut c = [0u8; 16];
    c.copy_from_slice(&h[..16]);
    c
}

/// Split `secret` into one share per custodian; any `threshold` of them rebuild it.
pub fn split(secret: &[u8], threshold: u8, custodians: &[String]) -> Result<ShareSet> {
    let n = custodians.len();
    if threshold < 2 || usize::from(threshold) > n || n > 255 {
        return Err(Error::InvalidInput(format!(
            "need 2 <= M <= N <= 255, got M={threshold} N={n}"
        )));
    }
    if secret.is_empty() || secret.len() > 255 {
        return Err(Error::InvalidInput("secret must be 1..=255 bytes".into()));
    }
    for (i, c) in custodians.iter().enumerate() {
        if c.is_empty() || c.len() > 64 || custodians.iter().take(i).any(|o| o == c) {
            return Err(Error::InvalidInput(
                "custodian names must be unique, 1..=64 bytes".into(),
            ));
        }
    }
    let set_raw = prims::random_vec(8)?;
    let set_id = hex::encode(&set_raw);
    let commit = commitment(&set_raw, secret);
    // coefficients[j][byte]: polynomial of degree M-1 per secret byte, constant term = secret.
    let deg = usize::from(threshold) - 1;
    let coeffs = Zeroizing::new(prims::random_vec(deg * secret.len())?);
    let mut shares = Vec::with_capacity(n);
    for (i, c) in custodians.iter().enumerate() {
        let x = u8::try_from(i + 1).map_err(|_| Error::Internal("share index"))?;
        let mut y = Zeroizing::new(Vec::with_capacity(secret.len()));
        for (b, &s) in secret.iter().enumerate() {
            // Horner: ((a_deg x + a_{deg-1}) x + ...) x + s
            let mut acc = 0u8;
            for j in (0..deg).rev() {
                acc = gf_mul(acc, x) ^ coeffs.get(j * secret.len() + b).copied().unwrap_or(0);
            }
            y.push(gf_mul(acc, x) ^ s);
        }
        shares.push(Share {
            set_id: set_id.clone(),
            threshold,
            x,
            custodian: c.clone(),
            commitment: commit,
            y,
        });
    }
    Ok(ShareSet { set_id, shares })
}

/// Lagrange interpolation at 0 over the given points (no checks).
fn interpolate(points: &[&Share]) -> Zeroizing<Vec<u8>> {
    let len = points.first().map_or(0, |s| s.y.len());
    let mut out = Zeroizing::new(vec![0u8; len]);
    for (i, si) in points.iter().enumerate() {
        // l_i(0) = prod_{j != i} x_j / (x_j - x_i); subtraction is XOR in GF(2^8).
        let mut num = 1u8;
        let mut den = 1u8;
        for (j, sj) in points.iter().enumerate() {
            if i != j {
                num = gf_mul(num, sj.x);
                den = gf_mul(den, sj.x ^ si.x);
            }
        }
        let li = gf_mul(num, gf_inv(den));
        for (o, &y) in out.iter_mut().zip(si.y.iter()) {
            *o ^= gf_mul(li, y);
        }
    }
    out
}

/// Rebuild the secret from at least M shares of one set; checks the commitment.
pub fn combine(shares: &[Share]) -> Result<Zeroizing<Vec<u8>>> {
    let first = shares
        .first()
        .ok_or_else(|| Error::Restore("no shares given".into()))?;
    let m = usize::from(first.threshold);
    let mut used: Vec<&Share> = Vec::new();
    for s in shares {
        if s.set_id != first.set_id
            || s.threshold != first.threshold
            || s.commitment != first.commitment
        {
            return Err(Error::Restore(format!(
                "share of {} belongs to another backup set",
                s.custodian
            )));
        }
        if s.y.len() != first.y.len() {
            return Err(Error::Restore("shares have different lengths".into()));
        }
        if s.x == 0 {
            return Err(Error::Restore("share with x = 0".into()));
        }
        if !used.iter().any(|u| u.x == s.x) && used.len() < m {
            used.push(s);
        }
    }
    if used.len() < m {
        return Err(Error::Restore(format!(
            "need {m} distinct shares, got {}",
            used.len()
        )));
    }
    let secret = interpolate(&used);
    let raw_set = hex::decode(&first.set_id).map_err(|_| Error::Integrity("bad set id"))?;
    if !prims::ct_eq(&commitment(&raw_set, &secret), &first.commitment) {
        return Err(Error::Restore(
            "the shares do not rebuild the backed-up secret".into(),
        ));
    }
    Ok(secret)
}

impl Share {
    /// Text form, with an integrity check.
    pub fn encode(&self) -> String {
        let body = self.body();
        let check = prims::sm3_parts(&[b"yiqian-share-v1", &body]);
        format!(
            "{PREFIX}-{}-{}",
            hex::encode(&*body),
            hex::encode(&check[..8])
        )
    }

    fn body(&self) -> Zeroizing<Vec<u8>> {
        let mut b = Zeroizing::new(Vec::new());
        b.extend(hex::decode(&self.set_id).unwrap_or_default());
        b.push(self.threshold);
        b.push(self.x);
        b.push(u8::try_from(self.custodian.len()).unwrap_or(0));
        b.extend_from_slice(self.custodian.as_bytes());
        b.extend_from_slice(&self.commitment);
        b.push(u8::try_from(self.y.len()).unwrap_or(0));
        b.extend_from_slice(&self.y);
        b
    }

    /// Parse and integrity-check the text form (a flipped bit is [`Error::Integrity`]).
    pub fn decode(text: &str) -> Result<Self> {
        let bad = || Error::Integrity("backup share is damaged (integrity check failed)");
        let mut parts = text.trim().split('-');
        let (Some(p), Some(body_hex), Some(check_hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if p != PREFIX {
            return Err(bad());
        }
        let body = Zeroizing::new(hex::decode(body_hex).map_err(|_| bad())?);
        let check = hex::decode(check_hex).map_err(|_| bad())?;
        let expect = prims::sm3_parts(&[b"yiqian-share-v1", &body]);
        if !prims::ct_eq(&expect[..8], &check) {
            return Err(bad());
        }
        let (set, rest) = body.split_at_checked(8).ok_or_else(bad)?;
        let (&threshold, rest) = rest.split_first().ok_or_else(bad)?;
        let (&x, rest) = rest.split_first().ok_or_else(bad)?;
        let (&clen, rest) = rest.split_first().ok_or_else(bad)?;
        let (cust, rest) = rest.split_at_checked(usize::from(clen)).ok_or_else(bad)?;
        let (commit, rest) = rest.split_at_checked(16).ok_or_else(bad)?;
        let (&ylen, rest) = rest.split_first().ok_or_else(bad)?;
        if rest.len() != usize::from(ylen) {
            return Err(bad());
        }
        let mut commitment = [0u8; 16];
        commitment.copy_from_slice(commit);
        let share = Share {
            set_id: hex::encode(set),
            threshold,
            x,
            custodian: String::from_utf8(cust.to_vec()).map_err(|_| bad())?,
            commitment,
            y: Zeroizing::new(rest.to_vec()),
        };
        // Only the canonical (lower-case hex) text is accepted, so a bit flip that changes
        // the case of a hex digit is detected too.
        if share.encode() != text.trim() {
            return Err(bad());
        }
        Ok(share)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gf_inverse_is_inverse() {
        for a in 1..=255u8 {
            assert_eq!(gf_mul(a, gf_inv(a)), 1, "a = {a}");
        }
        assert_eq!(gf_mul(0x57, 0x83), 0xc1); // FIPS-197 §4.2 example
    }

    #[test]
    fn fewer_than_m_points_interpolate_to_something_else() {
        let names: Vec<String> = (0..5).map(|i| format!("c{i}")).collect();
        let secret = [7u8; 32];
        let set = split(&secret, 3, &names).unwrap();
        let two: Vec<&Share> = set.shares.iter().take(2).collect();
        assert_ne!(&interpolate(&two)[..], &secret[..]);
        let three: Vec<&Share> = set.shares.iter().skip(2).collect();
        assert_eq!(&interpolate(&three)[..], &secret[..]);
    }
}
