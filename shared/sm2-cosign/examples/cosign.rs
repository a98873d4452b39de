//! Two-party key generation and one co-signature, in-process, over `DIR/msg.bin`.
//!
//! ```text
//! cargo run --release -p sm2-cosign --example cosign -- DIR
//! openssl pkeyutl -verify -pubin -inkey DIR/pub.pem -rawin -digest sm3 \
//!     -pkeyopt distid:1234567812345678 -in DIR/msg.bin -sigfile DIR/sig.der
//! ```
//! Creates `DIR/msg.bin` if it is absent; writes `DIR/pub.pem` (SPKI) and `DIR/sig.der`.

use sm2_cosign::keygen::{ClientKeygen, ServerKeygen};
use sm2_cosign::sign::{ClientSignSession, ServerSignSession};
use sm2_cosign::{DEFAULT_ID, SessionId, plain};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: cosign DIR")?;
    std::fs::create_dir_all(&dir)?;
    let msg_path = dir.join("msg.bin");
    if !msg_path.exists() {
        std::fs::write(
            &msg_path,
            "医签 sm2-cosign example: 门诊病历 2026-001\n".as_bytes(),
        )?;
    }
    let msg = std::fs::read(&msg_path)?;

    // Key generation: the server issues the session id; each side computes P itself.
    let session = SessionId::random_os()?;
    let (client, req) = ClientKeygen::start_os(session)?;
    let (server, resp) = ServerKeygen::respond_os(session, &req)?;
    let (client_share, confirm) = client.finish(&resp)?;
    let server_share = server.confirm(&confirm)?;

    // One co-signature: the server computes e from the message; the client computes it too
    // from what it displayed and refuses anything else.
    let (srv, request) = ServerSignSession::new_os(&server_share, DEFAULT_ID, &[&msg])?;
    let shown = plain::message_digest(DEFAULT_ID, client_share.public().public_point(), &msg)?;
    let (cli, commit) = ClientSignSession::commit_os(&client_share, &request, &[shown])?;
    let (srv, partial) = srv.respond_os(&server_share, &commit)?;
    let (signatures, result) = cli.finish(&client_share, &partial)?; // verified by the client
    let stored = srv.finish(&result)?; // verified again by the server
    let sig = stored.first().ok_or("no signature")?;
    assert_eq!(Some(sig), signatures.first());

    let pem = plain::public_key_to_pem(&client_share.public().public_key())?;
    std::fs::write(dir.join("pub.pem"), pem)?;
    std::fs::write(dir.join("sig.der"), plain::signature_to_der(sig))?;
    println!(
        "wrote {0}/pub.pem and {0}/sig.der over {0}/msg.bin; check with:",
        dir.display()
    );
    println!(
        "openssl pkeyutl -verify -pubin -inkey {0}/pub.pem -rawin -digest sm3 \
         -pkeyopt distid:1234567812345678 -in {0}/msg.bin -sigfile {0}/sig.der",
        dir.display()
    );
    Ok(())
}
