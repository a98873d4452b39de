//! Two-party key generation.
//!
//! ```text
//! client (phone)                                   server
//!   d1 ←$ [1,n-1], P1 = d1⁻¹·G, π1 = PoK(d1⁻¹)
//!   ── KeygenRequest { session, P1, π1 } ──────────►  check P1 (on curve, ≠ O), check π1
//!                                                     d2 ←$, P2 = d2⁻¹·G, π2 = PoK(d2⁻¹)
//!                                                     P = d2⁻¹·P1 − G
//!   ◄── KeygenResponse { session, P2, π2, P } ──────
//!   check P2, π2; P = d1⁻¹·P2 − G (own computation;
//!   the server's P is only compared, never used)
//!   ── KeygenConfirm { session, P } ────────────────►  compare P; store d2
//! ```
//! `P = ((d1·d2)⁻¹ − 1)·G`, so the SM2 private key is `d = (d1·d2)⁻¹ − 1`, which neither
//! side ever computes. Proofs are bound to the session id and to the role.

use crate::ec::{self, random_nonzero};
use crate::error::{Error, Result};
use crate::proof::{self, DlogProof, ProofContext};
use crate::share::{ClientKeyShare, JointPublic, ServerKeyShare};
use crate::wire::{Hex, PROTOCOL_VERSION, SessionId, WirePoint, check_session, check_version};
use rand_core::TryCryptoRng;
use serde::{Deserialize, Serialize};
use sm2::{AffinePoint, NonZeroScalar};
use zeroize::ZeroizeOnDrop;

const PURPOSE_P1: &[u8] = b"keygen/client/P1";
const PURPOSE_P2: &[u8] = b"keygen/server/P2";

/// Client → server: the client's share point and its proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeygenRequest {
    /// Protocol version ([`PROTOCOL_VERSION`]).
    pub version: u16,
    /// Session id, issued by the server when enrolment starts.
    pub session: SessionId,
    /// `P1 = d1⁻¹·G`.
    pub p1: WirePoint,
    /// Proof of knowledge of `log_G(P1)`, bound to the session.
    pub proof: DlogProof,
}

/// Server → client: the server's share point, its proof, and (for comparison only) its `P`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeygenResponse {
    /// Protocol version.
    pub version: u16,
    /// Session id.
    pub session: SessionId,
    /// `P2 = d2⁻¹·G`.
    pub p2: WirePoint,
    /// Proof of knowledge of `log_G(P2)`, bound to the session.
    pub proof: DlogProof,
    /// The server's computed joint key; the client compares it and never uses it.
    pub public_key: WirePoint,
}

/// Client → server: the client's own computation of `P`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeygenConfirm {
    /// Protocol version.
    pub version: u16,
    /// Session id.
    pub session: SessionId,
    /// The client's joint public key `P`.
    pub public_key: WirePoint,
}

fn ctx<'a>(purpose: &'static [u8], session: &'a SessionId) -> ProofContext<'a> {
    ProofContext {
        purpose,
        session: session.as_bytes(),
        extra: &[],
    }
}

/// Client state between [`ClientKeygen::start`] and [`ClientKeygen::finish`]; erased on drop.
#[derive(ZeroizeOnDrop)]
pub struct ClientKeygen {
    d1: NonZeroScalar,
    #[zeroize(skip)]
    session: SessionId,
    #[zeroize(skip)]
    p1: AffinePoint,
}

impl core::fmt::Debug for ClientKeygen {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientKeygen")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl ClientKeygen {
    /// Picks `d1` and makes the first message.
    pub fn start<R: TryCryptoRng + ?Sized>(
        rng: &mut R,
        session: SessionId,
    ) -> Result<(Self, KeygenRequest)> {
        let d1 = random_nonzero(rng)?;
        let d1_inv = ec::invert_scalar(&d1).ok_or(Error::Internal("d1 inverse"))?;
        let p1 = ec::to_affine_nonidentity(&ec::mul_g(&d1_inv), "P1")?;
        let proof = proof::prove(rng, &d1_inv, &p1, &ctx(PURPOSE_P1, &session))?;
        let req = KeygenRequest {
            version: PROTOCOL_VERSION,
            session,
            p1: Hex(ec::encode_point(&p1)),
            proof,
        };
        Ok((Self { d1, session, p1 }, req))
    }

    /// [`Self::start`] with the OS CSPRNG.
    pub fn start_os(session: SessionId) -> Result<(Self, KeygenRequest)> {
        Self::start(&mut crate::OsRng, session)
    }

    /// Checks the server's reply, computes `P` itself, and returns the share and the
    /// confirmation message.
    pub fn finish(self, resp: &KeygenResponse) -> Result<(ClientKeyShare, KeygenConfirm)> {
        check_version(resp.version)?;
        check_session(&self.session, &resp.session)?;
        let p2 = ec::decode_point(&resp.p2.0, "P2")?;
        if p2 == self.p1 {
            // Equal share points would mean d1 = d2: a peer echoing our point.
            return Err(Error::InvalidProof {
                what: "P2 echoes P1",
            });
        }
        proof::verify(&resp.proof, &p2, &ctx(PURPOSE_P2, &self.session), "P2")?;
        let public = JointPublic::derive_client(&self.d1, self.p1, p2, 0)?;
        let theirs = ec::decode_point(&resp.public_key.0, "server's P")?;
        if theirs != *public.public_point() {
            return Err(Error::PublicKeyMismatch);
        }
        let confirm = KeygenConfirm {
            version: PROTOCOL_VERSION,
            session: self.session,
            public_key: Hex(public.public_key_bytes()),
        };
        Ok((
            ClientKeyShare {
                d1: self.d1,
                public,
            },
            confirm,
        ))
    }
}

/// Server state between [`ServerKeygen::respond`] and [`ServerKeygen::confirm`].
#[derive(ZeroizeOnDrop)]
pub struct ServerKeygen {
    d2: NonZeroScalar,
    #[zeroize(skip)]
    session: SessionId,
    #[zeroize(skip)]
    public: JointPublic,
}

impl core::fmt::Debug for ServerKeygen {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerKeygen")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl ServerKeygen {
    /// Checks the client's request for the session the server issued, picks `d2`, and
    /// computes `P` itself.
    pub fn respond<R: TryCryptoRng + ?Sized>(
        rng: &mut R,
        session: SessionId,
        req: &KeygenRequest,
    ) -> Result<(Self, KeygenResponse)> {
        check_version(req.version)?;
        check_session(&session, &req.session)?;
        let p1 = ec::decode_point(&req.p1.0, "P1")?;
        proof::verify(&req.proof, &p1, &ctx(PURPOSE_P1, &session), "P1")?;
        let d2 = random_nonzero(rng)?;
        let d2_inv = ec::invert_scalar(&d2).ok_or(Error::Internal("d2 inverse"))?;
        let p2 = ec::to_affine_nonidentity(&ec::mul_g(&d2_inv), "P2")?;
        let proof = proof::prove(rng, &d2_inv, &p2, &ctx(PURPOSE_P2, &session))?;
        let public = JointPublic::derive_server(&d2, p1, p2, 0)?;
        let resp = KeygenResponse {
            version: PROTOCOL_VERSION,
            session,
            p2: Hex(ec::encode_point(&p2)),
            proof,
            public_key: Hex(public.public_key_bytes()),
        };
        Ok((
            Self {
                d2,
                session,
                public,
            },
            resp,
        ))
    }

    /// [`Self::respond`] with the OS CSPRNG.
    pub fn respond_os(session: SessionId, req: &KeygenRequest) -> Result<(Self, KeygenResponse)> {
        Self::respond(&mut crate::OsRng, session, req)
    }

    /// Parks the state: the session and the share it would release. A server stores the share
    /// wrapped (e.g. in its crypto device) so that [`Self::resume`] in any process can confirm.
    pub fn park(self) -> (SessionId, ServerKeyShare) {
        (
            self.session,
            ServerKeyShare {
                d2: self.d2,
                public: self.public,
            },
        )
    }

    /// Rebuilds the state parked by [`Self::park`].
    pub fn resume(session: SessionId, parked: &ServerKeyShare) -> Self {
        Self {
            d2: parked.d2,
            session,
            public: parked.public,
        }
    }

    /// Compares the client's `P` with ours and releases the server share.
    pub fn confirm(self, msg: &KeygenConfirm) -> Result<ServerKeyShare> {
        check_version(msg.version)?;
        check_session(&self.session, &msg.session)?;
        let theirs = ec::decode_point(&msg.public_key.0, "client's P")?;
        if theirs != *self.public.public_point() {
            return Err(Error::PublicKeyMismatch);
        }
        Ok(ServerKeyShare {
            d2: self.d2,
            public: self.public,
        })
    }
}
