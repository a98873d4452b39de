//! Liveness challenge tokens: stateless, so any instance holding the same key accepts them
//! (api.md). A token is base64url(payload ‖ HMAC-SM3(key, payload)) with
//! payload = version 1 ‖ expiry (Unix seconds, u64 BE) ‖ 128-bit nonce ‖ n ‖ n action codes.
//! Each token is accepted once per process: the nonces seen are kept until their expiry.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::live::Action;

use super::error::ApiError;

type HmacSm3 = hmac::Hmac<sm3::Sm3>;

/// How long a challenge may be answered, seconds.
pub const LIFETIME_SECS: u64 = 120;
/// Fewest and most actions in a challenge.
pub const MIN_STEPS: usize = 2;
/// See [`MIN_STEPS`].
pub const MAX_STEPS: usize = 4;
/// Frames a step may carry.
pub const MAX_FRAMES_PER_STEP: usize = 15;
/// Nonces remembered at most (each is a challenge we issued in the last two minutes); past it
/// new checks are refused as busy rather than growing without bound.
const MAX_REMEMBERED: usize = 200_000;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 16;
const MAC_LEN: usize = 32;
/// Longest token, characters (payload and MAC in base64url).
pub const MAX_TOKEN_LEN: usize = 128;

/// An action's code in a token: its place in [`Action::ALL`].
fn code(a: Action) -> u8 {
    Action::ALL
        .iter()
        .position(|x| *x == a)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(u8::MAX)
}

/// A verified challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The actions, in order.
    pub actions: Vec<Action>,
    /// Unix seconds after which it is refused.
    pub expires: u64,
    nonce: [u8; NONCE_LEN],
}

/// Issues and verifies tokens.
pub struct Challenges {
    key: Zeroizing<Vec<u8>>,
    used: Mutex<HashMap<[u8; NONCE_LEN], u64>>,
}

impl std::fmt::Debug for Challenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenges").finish_non_exhaustive()
    }
}

fn challenge_error(code: &'static str) -> ApiError {
    match code {
        "challenge_expired" => ApiError::new(
            code,
            "活体检测挑战已过期，请重新开始。",
            "the liveness challenge has expired; start again",
        ),
        "challenge_used" => ApiError::new(
            code,
            "活体检测挑战已使用过，请重新开始。",
            "the liveness challenge was already used; start again",
        ),
        _ => ApiError::new(
            "challenge_invalid",
            "活体检测挑战无效。",
            "the liveness challenge is not valid",
        ),
    }
}

impl Challenges {
    /// With a given key (from `--challenge-key-file`), at least 16 bytes.
    pub fn with_key(key: Zeroizing<Vec<u8>>) -> Result<Self, String> {
        if key.len() < 16 {
            return Err("the challenge key must be at least 16 bytes".into());
        }
        Ok(Self {
            key,
            used: Mutex::new(HashMap::new()),
        })
    }

    /// With a fresh random key: tokens are then valid in this process only.
    pub fn random() -> Self {
        let mut key = Zeroizing::new(vec![0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self {
            key,
            used: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, payload: &[u8]) -> HmacSm3 {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac =
            <HmacSm3 as KeyInit>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(payload);
        mac
    }

    /// A token for `actions`, valid from `now` (Unix seconds) for [`LIFETIME_SECS`].
    pub fn issue(&self, actions: &[Action], now: u64) -> (String, u64) {
        let expires = now + LIFETIME_SECS;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut payload = vec![VERSION];
        payload.extend_from_slice(&expires.to_be_bytes());
        payload.extend_from_slice(&nonce);
        payload.push(u8::try_from(actions.len()).unwrap_or(u8::MAX));
        payload.extend(actions.iter().map(|a| code(*a)));
        let tag = self.mac(&payload).finalize().into_bytes();
        payload.extend_from_slice(&tag);
        (URL_SAFE_NO_PAD.encode(payload), expires)
    }

    /// Checks a token's MAC and expiry (not whether it was used).
    pub fn verify(&self, token: &str, now: u64) -> Result<Challenge, ApiError> {
        let invalid = || challenge_error("challenge_invalid");
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid());
        }
        let raw = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| invalid())?;
        if raw.len() < 1 + 8 + NONCE_LEN + 1 + MAC_LEN {
            return Err(invalid());
        }
        let (payload, tag) = raw.split_at(raw.len() - MAC_LEN);
        self.mac(payload).verify_slice(tag).map_err(|_| invalid())?;
        // Authentic from here on: the layout is ours, still read it defensively.
        let (&version, rest) = payload.split_first().ok_or_else(invalid)?;
        let (exp, rest) = rest.split_at_checked(8).ok_or_else(invalid)?;
        let (nonce, rest) = rest.split_at_checked(NONCE_LEN).ok_or_else(invalid)?;
        let (&n, codes) = rest.split_first().ok_or_else(invalid)?;
        if version != VERSION || usize::from(n) != codes.len() {
            return Err(invalid());
        }
        let actions = codes
            .iter()
            .map(|&c| Action::ALL.get(usize::from(c)).copied())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(invalid)?;
        let expires = u64::from_be_bytes(exp.try_into().map_err(|_| invalid())?);
        if now > expires {
            return Err(challenge_error("challenge_expired"));
        }
        Ok(Challenge {
            actions,
            expires,
            nonce: nonce.try_into().map_err(|_| invalid())?,
        })
    }

    /// Marks a verified challenge used; fails if it already was.
    pub fn consume(&self, c: &Challenge, now: u64) -> Result<(), ApiError> {
        let mut used = self
            .used
            .lock()
            .map_err(|_| ApiError::internal("challenge set lock poisoned"))?;
        if used.len() >= MAX_REMEMBERED / 2 {
            used.retain(|_, &mut exp| exp >= now);
        }
        if used.contains_key(&c.nonce) {
            return Err(challenge_error("challenge_used"));
        }
        if used.len() >= MAX_REMEMBERED {
            return Err(ApiError::busy());
        }
        used.insert(c.nonce, c.expires);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip_once() {
        let c = Challenges::random();
        let acts = [Action::Blink, Action::TurnLeft, Action::OpenMouth];
        let (tok, exp) = c.issue(&acts, 1000);
        assert_eq!(exp, 1000 + LIFETIME_SECS);
        let ch = c.verify(&tok, 1001).expect("valid");
        assert_eq!(ch.actions, acts);
        c.consume(&ch, 1001).expect("first use");
        assert_eq!(
            c.consume(&ch, 1002).expect_err("reuse").code,
            "challenge_used"
        );
        assert_eq!(
            c.verify(&tok, exp + 1).expect_err("late").code,
            "challenge_expired"
        );
    }

    #[test]
    fn other_key_or_any_flipped_byte_is_invalid() {
        let c = Challenges::random();
        let (tok, _) = c.issue(&[Action::Blink, Action::TurnRight], 0);
        assert_eq!(
            Challenges::random()
                .verify(&tok, 0)
                .expect_err("other key")
                .code,
            "challenge_invalid"
        );
        let raw = URL_SAFE_NO_PAD.decode(&tok).expect("b64");
        for i in 0..raw.len() {
            let mut r = raw.clone();
            r[i] ^= 1;
            let t = URL_SAFE_NO_PAD.encode(&r);
            assert_eq!(
                c.verify(&t, 0).expect_err("flipped").code,
                "challenge_invalid"
            );
        }
    }

    #[test]
    fn shared_key_works_across_instances() {
        let key = Zeroizing::new(vec![7u8; 32]);
        let a = Challenges::with_key(key.clone()).expect("key");
        let b = Challenges::with_key(key).expect("key");
        let (tok, _) = a.issue(&[Action::OpenMouth, Action::Blink], 5);
        assert!(b.verify(&tok, 6).is_ok());
        assert!(Challenges::with_key(Zeroizing::new(vec![1; 8])).is_err());
    }
}
