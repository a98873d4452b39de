//! The crate's one error type, split by who is at fault (style guide §4, after rustls).

/// Which check on a peer's scalar failed (for [`Error::ZeroScalar`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScalarName {
    /// `r` of a server's partial signature.
    R,
    /// `s2 = d2·k3` of a server's partial signature (zero means `k3 = 0`: it would leak `d1`).
    S2,
    /// `s3 = d2·(r + k2)` of a server's partial signature.
    S3,
    /// The final `s`, or `r + s = n` (GB/T 32918.2 A6 / B5).
    FinalS,
}

impl core::fmt::Display for ScalarName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::R => "r",
            Self::S2 => "s2",
            Self::S3 => "s3",
            Self::FinalS => "s (or r + s = n)",
        })
    }
}

/// Everything that can go wrong in this crate. Variants are grouped by fault:
/// malformed input, a misbehaving peer, a failed verification, API misuse, and internal states
/// that should be impossible. Messages never contain secret material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- malformed input -------------------------------------------------------------
    /// Bytes that should encode a value do not (wrong length, bad DER/PEM, scalar not below n,
    /// unknown share format). `what` names the field.
    #[error("malformed {what}")]
    Malformed {
        /// The field or structure that failed to decode.
        what: &'static str,
    },
    /// A point is not on the SM2 curve, or is the point at infinity.
    #[error("invalid curve point: {what}")]
    InvalidPoint {
        /// The field that carried the point.
        what: &'static str,
    },
    /// A message carries a protocol version this build does not speak.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u16),
    /// A distinguishing ID longer than GB/T 32918.2 allows (ENTL is 16 bits of bit length).
    #[error("distinguishing ID too long")]
    IdTooLong,

    // ---- the peer misbehaved ---------------------------------------------------------
    /// A Schnorr proof of knowledge did not verify (forged, or replayed from another session,
    /// role or batch position).
    #[error("peer's proof of knowledge is invalid: {what}")]
    InvalidProof {
        /// Which proof.
        what: &'static str,
    },
    /// A message belongs to another session.
    #[error("message belongs to another session")]
    SessionMismatch,
    /// A peer sent a scalar equal to zero where GB/T 32918.2 / the protocol forbids it.
    /// For `s2` this is the `k3 = 0` key-extraction attack.
    #[error("peer sent a forbidden zero scalar: {0}")]
    ZeroScalar(ScalarName),
    /// A message's item count does not match the session (batch size, or mixed sessions).
    #[error("peer's message has {got} items, expected {expected}")]
    CountMismatch {
        /// Items expected by this session.
        expected: usize,
        /// Items received.
        got: usize,
    },
    /// The peer's view of the joint public key differs from ours.
    #[error("peer's joint public key differs from ours")]
    PublicKeyMismatch,
    /// The server asked to sign digests other than those the client computed itself.
    #[error("requested digests differ from the locally computed ones")]
    DigestMismatch,
    /// The peer holds a share of another refresh epoch (an interrupted refresh: resolve it
    /// with [`crate::refresh`] before signing).
    #[error("share epoch mismatch: ours {ours}, peer's {theirs}")]
    EpochMismatch {
        /// Our share's epoch.
        ours: u32,
        /// The peer's epoch.
        theirs: u32,
    },
    /// The peer asked to abort / roll back.
    #[error("peer aborted the session")]
    Aborted,

    // ---- verification failed ---------------------------------------------------------
    /// An SM2 signature does not verify. In co-signing this means a misbehaving server or a
    /// wrong key share; the signature is never released.
    #[error("signature verification failed")]
    VerificationFailed,
    /// A sealed share did not open: wrong PIN (or a wrong/malicious OPRF evaluation).
    #[error("sealed share did not open (wrong PIN?)")]
    WrongPin,
    /// A key share is inconsistent with its public values (e.g. a wrong d1).
    #[error("key share does not match its public key")]
    ShareMismatch,
    /// The PIN attempt counter is exhausted; the server must not evaluate the OPRF any more.
    #[error("too many failed PIN attempts")]
    Locked,

    // ---- API misuse ------------------------------------------------------------------
    /// The caller passed arguments that can never work (empty batch, batch too large,
    /// zero attempts allowed...). Never caused by a peer's data.
    #[error("API misuse: {0}")]
    ApiMisuse(&'static str),
    /// The random number generator failed.
    #[error("random number generator failed")]
    Rng,

    // ---- should not happen -----------------------------------------------------------
    /// An internal invariant failed (negligible-probability events such as a nonce giving
    /// `r = 0` repeatedly). Never reveals secrets.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Result alias for this crate.
pub type Result<T> = core::result::Result<T, Error>;
