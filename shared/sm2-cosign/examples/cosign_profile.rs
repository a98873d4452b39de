//! A fixed workload for instruction counting (criterion's timings wander on a shared machine;
//! callgrind's instruction counts do not).
//!
//! ```text
//! cargo build --release -p sm2-cosign --example cosign_profile
//! valgrind --tool=callgrind --callgrind-out-file=cg.out \
//!     $CARGO_TARGET_DIR/release/examples/cosign_profile cosign 200
//! callgrind_annotate --inclusive=yes cg.out | head -60
//! ```
//! Modes: `cosign N` (key generation once, then N end-to-end co-signatures with every check),
//! `batch N` (one round of N digests), `sign N`, `verify N` (plain SM2 with one key), `keygen N`.
//! Run each mode with two values of N: the difference divided by the difference in N is the
//! cost of one operation, free of process start-up and one-time table building.

use sm2_cosign::keygen::{ClientKeygen, ServerKeygen};
use sm2_cosign::sign::{ClientSignSession, ServerSignSession};
use sm2_cosign::sm2::SecretKey;
use sm2_cosign::sm2::elliptic_curve::Generate;
use sm2_cosign::{ClientKeyShare, DEFAULT_ID, OsRng, ServerKeyShare, SessionId, plain};
use std::hint::black_box;

const MSG: &[u8] = b"nursing record: 2026-11-27 08:00 vitals normal";

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn keygen() -> Res<(ClientKeyShare, ServerKeyShare)> {
    let session = SessionId::random_os()?;
    let (client, req) = ClientKeygen::start_os(session)?;
    let (server, resp) = ServerKeygen::respond_os(session, &req)?;
    let (c, confirm) = client.finish(&resp)?;
    Ok((c, server.confirm(&confirm)?))
}

fn cosign(c: &ClientKeyShare, s: &ServerKeyShare, msgs: &[&[u8]]) -> Res<usize> {
    let (srv, req) = ServerSignSession::new_os(s, DEFAULT_ID, msgs)?;
    let digests = msgs
        .iter()
        .map(|m| plain::message_digest(DEFAULT_ID, c.public().public_point(), m))
        .collect::<Result<Vec<_>, _>>()?;
    let (cli, commit) = ClientSignSession::commit_os(c, &req, &digests)?;
    let (srv, partial) = srv.respond_os(s, &commit)?;
    let (_sigs, result) = cli.finish(c, &partial)?;
    Ok(srv.finish(&result)?.len())
}

fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "cosign".into());
    let n: usize = args.next().map_or(Ok(100), |a| a.parse())?;
    match mode.as_str() {
        "cosign" => {
            let (c, s) = keygen()?;
            for _ in 0..n {
                black_box(cosign(&c, &s, &[black_box(MSG)])?);
            }
        }
        "batch" => {
            let (c, s) = keygen()?;
            let msgs: Vec<Vec<u8>> = (0..n).map(|i| format!("record {i}").into_bytes()).collect();
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            black_box(cosign(&c, &s, &refs)?);
        }
        "sign" => {
            let sk = SecretKey::try_generate_from_rng(&mut OsRng).map_err(|_| "rng")?;
            for _ in 0..n {
                black_box(plain::sign_os(&sk, DEFAULT_ID, black_box(MSG))?);
            }
        }
        "verify" => {
            let sk = SecretKey::try_generate_from_rng(&mut OsRng).map_err(|_| "rng")?;
            let sig = plain::sign_os(&sk, DEFAULT_ID, MSG)?;
            let pk = sk.public_key();
            for _ in 0..n {
                plain::verify(&pk, DEFAULT_ID, black_box(MSG), &sig)?;
            }
        }
        "keygen" => {
            for _ in 0..n {
                black_box(keygen()?);
            }
        }
        _ => return Err("mode: cosign | batch | sign | verify | keygen".into()),
    }
    Ok(())
}
