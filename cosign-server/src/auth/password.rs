//! Password verifiers as PBKDF2-HMAC-SM3 (a ShangMi hash, as the 密评 expects for stored
//! credentials), encoded `pbkdf2-sm3$<iterations>$<salt hex>$<hash hex>`, compared in constant
//! time. Also the password policy and the generator for one-time initial passwords.

use pbkdf2::pbkdf2_hmac;
use rand::Rng;
use rand::rngs::OsRng;
use sm3::Sm3;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const PREFIX: &str = "pbkdf2-sm3";

/// Hashes a password with a fresh random salt.
pub fn hash(password: &str, iterations: u32) -> String {
    let salt: [u8; 16] = OsRng.r#gen();
    let out = derive(password, &salt, iterations);
    format!(
        "{PREFIX}${iterations}${}${}",
        hex::encode(salt),
        hex::encode(*out)
    )
}

fn derive(password: &str, salt: &[u8], iterations: u32) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    pbkdf2_hmac::<Sm3>(password.as_bytes(), salt, iterations, &mut *out);
    out
}

/// Checks a password against a stored verifier. A malformed verifier never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(PREFIX), Some(iter), Some(salt), Some(expected), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(iterations), Ok(salt), Ok(expected)) = (
        iter.parse::<u32>(),
        hex::decode(salt),
        hex::decode(expected),
    ) else {
        return false;
    };
    if iterations == 0 || expected.len() != 32 {
        return false;
    }
    derive(password, &salt, iterations)
        .ct_eq(expected.as_slice())
        .into()
}

/// The password policy: at least 12 characters, with letters and digits, at most 128.
pub fn acceptable(password: &str) -> bool {
    let n = password.chars().count();
    (12..=128).contains(&n)
        && password.chars().any(|c| c.is_ascii_alphabetic())
        && password.chars().any(|c| c.is_ascii_digit())
}

/// A random one-time password that satisfies the policy (no look-alike characters).
pub fn generate() -> Zeroizing<String> {
    const LETTERS: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGITS: &[u8] = b"23456789";
    let mut rng = OsRng;
    loop {
        let pw: String = (0..16)
            .map(|_| {
                let pool = if rng.gen_bool(0.3) { DIGITS } else { LETTERS };
                char::from(pool[rng.gen_range(0..pool.len())])
            })
            .collect();
        if acceptable(&pw) {
            return Zeroizing::new(pw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let h = hash("correct horse 42", 1000);
        assert!(verify("correct horse 42", &h));
        assert!(!verify("correct horse 43", &h));
        assert!(!verify("correct horse 42", "pbkdf2-sm3$0$00$00"));
        assert!(!verify("x", "garbage"));
        assert!(!verify("x", &h.replace(PREFIX, "md5")));
        assert_ne!(h, hash("correct horse 42", 1000), "salts must differ");
    }

    #[test]
    fn policy_and_generator() {
        assert!(!acceptable("short1"));
        assert!(!acceptable("onlyletterslong"));
        assert!(!acceptable("123456789012345"));
        assert!(acceptable("hospital2026abc"));
        for _ in 0..50 {
            assert!(acceptable(&generate()));
        }
    }
}
