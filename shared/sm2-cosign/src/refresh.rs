//! Share refresh: `d1' = d1·ρ`, `d2' = d2·ρ⁻¹` keeps `d1'·d2' = d1·d2`, so the joint key `P`
//! is unchanged while old shares become useless: an old `d1` with a new `d2'` (or the
//! reverse) gives `d1·d2·ρ^{±1} ≠ d1·d2`.
//!
//! `ρ = H(session ‖ P ‖ epoch ‖ ρ_s ‖ ρ_c) mod n` from a contribution of each side, so neither
//! picks it alone. Two-phase commit, the server coordinating:
//!
//! ```text
//! server                                               client
//!   ρ_s ←$ 32 bytes
//!   ── RefreshPropose { session, epoch, ρ_s } ──────────►  ρ_c ←$; ρ; d1' = d1·ρ (pending)
//!   ◄── RefreshAccept { session, ρ_c, P1' = ρ⁻¹·P1 } ────
//!   ρ; check P1'; d2' = d2·ρ⁻¹ (prepared: old and new kept)
//!   ── RefreshPrepared { session, P2' = ρ·P2 } ──────────►  check P2' and P' = P;
//!                                                           persist d1' beside d1
//!   ◄── RefreshDone { session } ──────────────────────────
//!   COMMIT: erase d2, keep d2' (epoch + 1)
//!   ── RefreshFinalized { session, epoch + 1 } ──────────►  erase d1, keep d1'
//! ```
//! Before the server's commit either side may roll back (send [`RefreshAbort`]) and both keep
//! the old shares. After it, the client must roll forward: it still holds `d1'`, and a
//! client that lost `RefreshFinalized` resolves its pending state from the server's epoch
//! ([`ClientRefreshReady::resolve`]).

use crate::ec::{self, Transcript};
use crate::error::{Error, Result};
use crate::share::{ClientKeyShare, JointPublic, ServerKeyShare};
use crate::wire::{Hex, PROTOCOL_VERSION, SessionId, WirePoint, check_session, check_version};
use rand_core::TryCryptoRng;
use serde::{Deserialize, Serialize};
use sm2::{NonZeroScalar, ProjectivePoint, Scalar};
use zeroize::Zeroize;

/// Server → client: start a refresh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshPropose {
    /// Protocol version.
    pub version: u16,
    /// Session id.
    pub session: SessionId,
    /// The epoch being refreshed (the new shares get `epoch + 1`).
    pub epoch: u32,
    /// The server's random contribution `ρ_s`.
    pub server_contribution: Hex<32>,
}

/// Client → server: the client's contribution and its new share point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshAccept {
    /// Protocol version.
    pub version: u16,
    /// Session id.
    pub session: SessionId,
    /// The client's random contribution `ρ_c`.
    pub client_contribution: Hex<32>,
    /// `P1' = d1'⁻¹·G = ρ⁻¹·P1`.
    pub p1: WirePoint,
}

/// Server → client: the server has prepared `d2'` (phase 1 done on its side).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshPrepared {
    /// Protocol version.
    pub version: u16,
    /// Session id.
    pub session: SessionId,
    /// `P2' = d2'⁻¹·G = ρ·P2`.
    pub p2: WirePoint,
}

/// Client → server: the client has persisted `d1'` (beside `d1`); the server may commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshDone {
    /// Protocol version.
    pub version: u16,
    /// Session id.
    pub session: SessionId,
}

/// Server → client: committed; the client may erase `d1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshFinalized {
    /// Protocol version.
    pub version: u16,
    /// Session id.
    pub session: SessionId,
    /// The new epoch.
    pub epoch: u32,
}

/// Either side, before the server's commit: roll back to the old shares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshAbort {
    /// Protocol version.
    pub version: u16,
    /// Session id.
    pub session: SessionId,
}

fn rho(
    session: &SessionId,
    public: &JointPublic,
    server: &[u8; 32],
    client: &[u8; 32],
) -> Result<Scalar> {
    let mut t = Transcript::new(b"refresh/rho");
    t.append(session.as_bytes());
    t.append(&public.public_key_bytes());
    t.append(&public.epoch().to_be_bytes());
    t.append(server);
    t.append(client);
    let r = t.challenge();
    if bool::from(r.is_zero()) {
        return Err(Error::Internal("rho = 0"));
    }
    Ok(r)
}

fn next_epoch(e: u32) -> Result<u32> {
    e.checked_add(1)
        .ok_or(Error::ApiMisuse("share epoch exhausted"))
}

fn random32<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<[u8; 32]> {
    let mut b = [0u8; 32];
    rng.try_fill_bytes(&mut b).map_err(|_| Error::Rng)?;
    Ok(b)
}

fn nonzero(s: Scalar) -> Result<NonZeroScalar> {
    Option::from(NonZeroScalar::new(s)).ok_or(Error::Internal("zero share"))
}

// ---- server ------------------------------------------------------------------------------

/// Server, after [`ServerRefresh::propose`].
#[derive(Debug)]
pub struct ServerRefresh {
    session: SessionId,
    epoch: u32,
    contribution: [u8; 32],
}

impl ServerRefresh {
    /// Starts a refresh of `share`.
    pub fn propose<R: TryCryptoRng + ?Sized>(
        rng: &mut R,
        share: &ServerKeyShare,
    ) -> Result<(Self, RefreshPropose)> {
        let session = SessionId::random(rng)?;
        let contribution = random32(rng)?;
        let epoch = share.public.epoch();
        let msg = RefreshPropose {
            version: PROTOCOL_VERSION,
            session,
            epoch,
            server_contribution: Hex(contribution),
        };
        Ok((
            Self {
                session,
                epoch,
                contribution,
            },
            msg,
        ))
    }

    /// Checks the client's new share point and prepares `d2' = d2·ρ⁻¹`. The returned state
    /// holds both shares until [`ServerRefreshPrepared::commit`] or `rollback`.
    pub fn prepare(
        self,
        share: &ServerKeyShare,
        accept: &RefreshAccept,
    ) -> Result<(ServerRefreshPrepared, RefreshPrepared)> {
        check_version(accept.version)?;
        check_session(&self.session, &accept.session)?;
        if share.public.epoch() != self.epoch {
            return Err(Error::ApiMisuse("share changed during refresh"));
        }
        let rho = rho(
            &self.session,
            &share.public,
            &self.contribution,
            &accept.client_contribution.0,
        )?;
        let rho_inv: Scalar = Option::from(rho.invert()).ok_or(Error::Internal("rho inverse"))?;
        let p1_new = ec::decode_point(&accept.p1.0, "P1'")?;
        let expected = (ProjectivePoint::from(share.public.p1) * rho_inv).to_affine();
        if p1_new != expected {
            return Err(Error::InvalidProof {
                what: "refreshed P1' does not match rho",
            });
        }
        let d2_new = nonzero(*share.d2 * rho_inv)?;
        let p2_new =
            ec::proj_to_affine_nonidentity(&(ProjectivePoint::from(share.public.p2) * rho), "P2'")?;
        let public = JointPublic::derive_server(&d2_new, p1_new, p2_new, next_epoch(self.epoch)?)?;
        if public.public_key != share.public.public_key {
            return Err(Error::Internal("refresh changed the joint key"));
        }
        let new = ServerKeyShare::from_parts(d2_new, public)?;
        let msg = RefreshPrepared {
            version: PROTOCOL_VERSION,
            session: self.session,
            p2: Hex(ec::encode_point(&p2_new)),
        };
        Ok((
            ServerRefreshPrepared {
                session: self.session,
                old: share.clone(),
                new,
            },
            msg,
        ))
    }

    /// Abandons the refresh before preparing.
    pub fn abort(self) -> RefreshAbort {
        RefreshAbort {
            version: PROTOCOL_VERSION,
            session: self.session,
        }
    }
}

/// Server, prepared: holds the old and the new share (persist both).
#[derive(Debug)]
pub struct ServerRefreshPrepared {
    session: SessionId,
    old: ServerKeyShare,
    new: ServerKeyShare,
}

impl ServerRefreshPrepared {
    /// The session id.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The share still in force until commit.
    pub fn old(&self) -> &ServerKeyShare {
        &self.old
    }

    /// The prepared share (in force after commit).
    pub fn new_share(&self) -> &ServerKeyShare {
        &self.new
    }

    /// Phase 2: the client has persisted `d1'`. Erases the old share.
    pub fn commit(self, done: &RefreshDone) -> Result<(ServerKeyShare, RefreshFinalized)> {
        check_version(done.version)?;
        check_session(&self.session, &done.session)?;
        let fin = RefreshFinalized {
            version: PROTOCOL_VERSION,
            session: self.session,
            epoch: self.new.public.epoch(),
        };
        Ok((self.new, fin))
    }

    /// Rolls back (our decision, or the client's [`RefreshAbort`]): the old share stays.
    pub fn rollback(self) -> (ServerKeyShare, RefreshAbort) {
        (
            self.old,
            RefreshAbort {
                version: PROTOCOL_VERSION,
                session: self.session,
            },
        )
    }
}

// ---- client ------------------------------------------------------------------------------

/// Client, after accepting: holds the old share and the pending `d1'`.
#[derive(Debug)]
pub struct ClientRefreshPending {
    session: SessionId,
    old: ClientKeyShare,
    new_d1: NonZeroScalar,
    rho: Scalar,
}

impl Drop for ClientRefreshPending {
    fn drop(&mut self) {
        self.new_d1.zeroize();
        self.rho.zeroize();
    }
}

/// Client, after checking the server's prepared share: persist [`Self::new_share`] beside
/// the old one, send [`RefreshDone`], and keep both until [`RefreshFinalized`].
#[derive(Debug)]
pub struct ClientRefreshReady {
    session: SessionId,
    old: ClientKeyShare,
    new: ClientKeyShare,
}

impl ClientRefreshPending {
    /// Accepts the server's proposal: contributes to ρ and computes `d1' = d1·ρ`.
    pub fn accept<R: TryCryptoRng + ?Sized>(
        rng: &mut R,
        share: &ClientKeyShare,
        propose: &RefreshPropose,
    ) -> Result<(Self, RefreshAccept)> {
        check_version(propose.version)?;
        if propose.epoch != share.public.epoch() {
            return Err(Error::EpochMismatch {
                ours: share.public.epoch(),
                theirs: propose.epoch,
            });
        }
        let contribution = random32(rng)?;
        let rho = rho(
            &propose.session,
            &share.public,
            &propose.server_contribution.0,
            &contribution,
        )?;
        let rho_inv: Scalar = Option::from(rho.invert()).ok_or(Error::Internal("rho inverse"))?;
        let new_d1 = nonzero(*share.d1 * rho)?;
        let p1_new = ec::proj_to_affine_nonidentity(
            &(ProjectivePoint::from(share.public.p1) * rho_inv),
            "P1'",
        )?;
        let msg = RefreshAccept {
            version: PROTOCOL_VERSION,
            session: propose.session,
            client_contribution: Hex(contribution),
            p1: Hex(ec::encode_point(&p1_new)),
        };
        Ok((
            Self {
                session: propose.session,
                old: share.clone(),
                new_d1,
                rho,
            },
            msg,
        ))
    }

    /// Checks the server's prepared share point: `P2' = ρ·P2` and the joint key unchanged.
    pub fn on_prepared(
        self,
        prepared: &RefreshPrepared,
    ) -> Result<(ClientRefreshReady, RefreshDone)> {
        check_version(prepared.version)?;
        check_session(&self.session, &prepared.session)?;
        let p2_new = ec::decode_point(&prepared.p2.0, "P2'")?;
        let expected = (ProjectivePoint::from(self.old.public.p2) * self.rho).to_affine();
        if p2_new != expected {
            return Err(Error::InvalidProof {
                what: "refreshed P2' does not match rho",
            });
        }
        let rho_inv: Scalar =
            Option::from(self.rho.invert()).ok_or(Error::Internal("rho inverse"))?;
        let p1_new = (ProjectivePoint::from(self.old.public.p1) * rho_inv).to_affine();
        let public = JointPublic::derive_client(
            &self.new_d1,
            p1_new,
            p2_new,
            next_epoch(self.old.public.epoch())?,
        )?;
        if public.public_key != self.old.public.public_key {
            return Err(Error::PublicKeyMismatch);
        }
        let new = ClientKeyShare::from_parts(self.new_d1, public)?;
        let done = RefreshDone {
            version: PROTOCOL_VERSION,
            session: self.session,
        };
        Ok((
            ClientRefreshReady {
                session: self.session,
                old: self.old.clone(),
                new,
            },
            done,
        ))
    }

    /// Rolls back before anything was prepared: the old share stays.
    pub fn rollback(self) -> (ClientKeyShare, RefreshAbort) {
        (
            self.old.clone(),
            RefreshAbort {
                version: PROTOCOL_VERSION,
                session: self.session,
            },
        )
    }
}

impl ClientRefreshReady {
    /// The session id.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The new share to persist (sealed) beside the old one before sending [`RefreshDone`].
    pub fn new_share(&self) -> &ClientKeyShare {
        &self.new
    }

    /// The old share, still in force until the server commits.
    pub fn old(&self) -> &ClientKeyShare {
        &self.old
    }

    /// The server committed: keep the new share, erase the old.
    pub fn finalize(self, fin: &RefreshFinalized) -> Result<ClientKeyShare> {
        check_version(fin.version)?;
        check_session(&self.session, &fin.session)?;
        if fin.epoch != self.new.public.epoch() {
            return Err(Error::EpochMismatch {
                ours: self.new.public.epoch(),
                theirs: fin.epoch,
            });
        }
        Ok(self.new)
    }

    /// The server rolled back (its [`RefreshAbort`]): keep the old share.
    pub fn on_abort(self, abort: &RefreshAbort) -> Result<ClientKeyShare> {
        check_version(abort.version)?;
        check_session(&self.session, &abort.session)?;
        Ok(self.old)
    }

    /// Recovery after a lost message: the server reports the epoch of the share it holds;
    /// keep the matching share.
    pub fn resolve(self, server_epoch: u32) -> Result<ClientKeyShare> {
        if server_epoch == self.new.public.epoch() {
            Ok(self.new)
        } else if server_epoch == self.old.public.epoch() {
            Ok(self.old)
        } else {
            Err(Error::EpochMismatch {
                ours: self.old.public.epoch(),
                theirs: server_epoch,
            })
        }
    }
}

impl ServerRefresh {
    /// The session id.
    pub fn session(&self) -> SessionId {
        self.session
    }
}
