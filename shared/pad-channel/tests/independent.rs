//! Envelopes opened by code we did not write (`tests/py/check_envelope.py`): Python gmssl
//! unwraps the SM2-encrypted SM4 key, the `cryptography` package (OpenSSL) opens both SM4-GCM
//! bodies, and the OpenSSL CLI verifies the pad's SM2 signature. FAILS (does not skip) when
//! Python, gmssl, cryptography or openssl is missing: `scripts/setup.sh` installs them; Python
//! is `$YIQIAN_PYTHON`, default `python3`.
#![allow(clippy::panic)]

use pad_channel::{Pad, Request, Response, generate_secret, public_of, unwrap_key};

fn check(dir: &std::path::Path) -> std::process::Output {
    let python = std::env::var("YIQIAN_PYTHON").unwrap_or_else(|_| "python3".into());
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/check_envelope.py");
    std::process::Command::new(&python)
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"))
}

#[test]
fn python_and_openssl_open_what_the_pad_and_server_seal() {
    for (i, inner) in [
        &br#"{"method":"GET","path":"/pad/queue"}"#[..],
        "{\"method\":\"POST\",\"path\":\"/api/v1/h5/tasks/x/verify\",\"body\":\"{\\\"code\\\":\\\"123456\\\"}\"}".as_bytes(),
        &vec![0x5a; 5000][..],
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let channel = generate_secret().unwrap();
        let pad_secret = generate_secret().unwrap();
        let pad_public = sm2::PublicKey::from_sec1_bytes(&public_of(&pad_secret).unwrap()).unwrap();
        let pad = Pad::new(&pad_secret, "7f3e01", &public_of(&channel).unwrap()).unwrap();
        let (req, _) = pad.seal(1_764_300_000_000 + i as u64, inner).unwrap();
        let wire = req.to_bytes();
        // What the server does: parse, unwrap with the channel key, answer under the same key.
        let parsed = Request::parse(&wire).unwrap();
        let (key, plain) = parsed.open(|w| unwrap_key(&channel, w)).unwrap();
        assert_eq!(plain.as_slice(), inner);
        let answer = format!("{{\"status\":200,\"n\":{i}}}");
        let resp = Response::seal(&key, parsed.nonce, answer.as_bytes()).unwrap();
        let p = dir.path();
        std::fs::write(p.join("channel.hex"), hex::encode(channel.as_slice())).unwrap();
        std::fs::write(
            p.join("pad.pem"),
            sm2_cosign::plain::public_key_to_pem(&pad_public).unwrap(),
        )
        .unwrap();
        std::fs::write(p.join("request.bin"), &wire).unwrap();
        std::fs::write(p.join("response.bin"), resp.to_bytes()).unwrap();
        std::fs::write(p.join("inner.bin"), inner).unwrap();
        std::fs::write(p.join("answer.bin"), answer.as_bytes()).unwrap();
        let out = check(p);
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
            "{out:?}"
        );
        // The check can fail: one flipped ciphertext bit and it refuses.
        let mut bad = wire.clone();
        let at = bad.len() - req.sig.len() - 3;
        bad[at] ^= 1;
        std::fs::write(p.join("request.bin"), &bad).unwrap();
        assert!(!check(p).status.success(), "a changed body was accepted");
    }
}
