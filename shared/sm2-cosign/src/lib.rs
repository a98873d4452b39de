//! Two-party SM2 co-signing (GB/T 32918.2 / GM/T 0003.2): the signer's private key exists
//! only as two multiplicative shares, `d1` on the phone (client role) and `d2` on the
//! co-signing server (server role). Every co-signature is a standard SM2 signature that any
//! SM2 verifier accepts for the joint public key `P = ((d1·d2)⁻¹ − 1)·G`.
//!
//! Modules:
//! - [`plain`]: single-party SM2 sign / verify with a configurable distinguishing ID, and `Z`.
//! - [`keygen`]: two-party key generation with Schnorr proofs bound to a session.
//! - [`sign`]: co-signing, one or many digests per round (batch).
//! - [`refresh`]: share refresh `d1·ρ`, `d2·ρ⁻¹` as a two-phase commit.
//! - [`seal`]: sealing `d1` on the phone under a PIN-derived key that needs a rate-limited
//!   server OPRF evaluation (no offline PIN guessing from a stolen device).
//! - [`wire`]: serde encodings shared by the message types.
//!
//! No I/O: the caller moves the messages. Randomness is a parameter (`&mut R` where
//! `R: TryCryptoRng`), with `*_os` wrappers that use the operating system's CSPRNG.
//! The design and threat model: `docs/crypto/cosign.md`.
//!
//! ```
//! use sm2_cosign::keygen::{ClientKeygen, ServerKeygen};
//! use sm2_cosign::sign::{ClientSignSession, ServerSignSession};
//! use sm2_cosign::{plain, DEFAULT_ID, SessionId};
//!
//! # fn main() -> sm2_cosign::Result<()> {
//! // Key generation (the server issues the session id).
//! let session = SessionId::random_os()?;
//! let (client, req) = ClientKeygen::start_os(session)?;
//! let (server, resp) = ServerKeygen::respond_os(session, &req)?;
//! let (phone_share, confirm) = client.finish(&resp)?;
//! let server_share = server.confirm(&confirm)?;
//!
//! // One co-signature (a batch is the same with more messages).
//! let msg = b"discharge summary";
//! let (srv, request) = ServerSignSession::new_os(&server_share, DEFAULT_ID, &[msg])?;
//! let shown = plain::message_digest(DEFAULT_ID, phone_share.public().public_point(), msg)?;
//! let (cli, commit) = ClientSignSession::commit_os(&phone_share, &request, &[shown])?;
//! let (srv, partial) = srv.respond_os(&server_share, &commit)?;
//! let (sigs, result) = cli.finish(&phone_share, &partial)?;
//! let stored = srv.finish(&result)?;
//! assert_eq!(sigs, stored);
//! plain::verify(&phone_share.public().public_key(), DEFAULT_ID, msg, &stored[0])?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(clippy::indexing_slicing, missing_docs)]

mod arith;
mod ec;
mod error;
mod field;
pub mod keygen;
pub mod plain;
pub mod proof;
pub mod refresh;
pub mod seal;
pub mod share;
pub mod sign;
pub mod wire;

pub use error::{Error, Result, ScalarName};
pub use plain::{DEFAULT_ID, Digest};
pub use share::{ClientKeyShare, JointPublic, ServerKeyShare};
pub use wire::{PROTOCOL_VERSION, SessionId};

/// The `rand_core` (0.10) this crate's RNG parameters use: the one `sm2` 0.14 is built on.
pub use rand_core;
/// The `sm2` crate this crate builds on (for `Signature`, `PublicKey`, PEM/DER encodings).
pub use sm2;

/// The operating system's CSPRNG (`getrandom`), used by the `*_os` convenience wrappers.
/// Its failures surface as [`Error::Rng`], never as a panic.
pub use getrandom::SysRng as OsRng;
