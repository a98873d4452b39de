//! A CSR whose proof of possession is made by a two-party key (issue 4): the doctor's key
//! never exists in one place, yet the PKCS#10 signature is an ordinary SM2 signature that
//! OpenSSL accepts and our parser checks.

use crate::{openssl, run, tmpdir};
use gm_pki::csr::{ParsedCsr, build_csr};
use gm_pki::{DnBuilder, Sm2Signer};
use sm2::PublicKey;
use sm2::dsa::Signature;
use sm2_cosign::keygen::{ClientKeygen, ServerKeygen};
use sm2_cosign::sign::{ClientSignSession, ServerSignSession};
use sm2_cosign::{ClientKeyShare, DEFAULT_ID, ServerKeyShare, SessionId, plain};

/// Both halves in one process, each running its own side of the protocol with every check.
struct CoSigner {
    phone: ClientKeyShare,
    server: ServerKeyShare,
}

impl CoSigner {
    fn enrol() -> Self {
        let session = SessionId::random_os().unwrap();
        let (client, req) = ClientKeygen::start_os(session).unwrap();
        let (server, resp) = ServerKeygen::respond_os(session, &req).unwrap();
        let (phone, confirm) = client.finish(&resp).unwrap();
        let server = server.confirm(&confirm).unwrap();
        Self { phone, server }
    }
}

impl Sm2Signer for CoSigner {
    fn public_key(&self) -> PublicKey {
        self.phone.public().public_key()
    }

    fn sign(&self, tbs: &[u8]) -> gm_pki::Result<Signature> {
        let fail = |e: sm2_cosign::Error| gm_pki::Error::Signer(e.to_string());
        let (srv, request) =
            ServerSignSession::new_os(&self.server, DEFAULT_ID, &[tbs]).map_err(fail)?;
        // The phone computes e from what it shows (here: the CertificationRequestInfo).
        let shown = plain::message_digest(DEFAULT_ID, self.phone.public().public_point(), tbs)
            .map_err(fail)?;
        let (cli, commit) =
            ClientSignSession::commit_os(&self.phone, &request, &[shown]).map_err(fail)?;
        let (srv, partial) = srv.respond_os(&self.server, &commit).map_err(fail)?;
        let (_, result) = cli.finish(&self.phone, &partial).map_err(fail)?;
        let stored = srv.finish(&result).map_err(fail)?;
        stored
            .into_iter()
            .next()
            .ok_or(gm_pki::Error::Internal("no co-signature"))
    }
}

/// `openssl req -verify` (with the SM2 ID) accepts `csr`; returns its output, with the subject.
fn openssl_accepts(d: &std::path::Path, csr: &ParsedCsr) -> String {
    std::fs::write(d.join("req.pem"), csr.to_pem()).unwrap();
    let out = openssl(
        d,
        &[
            "req",
            "-in",
            "req.pem",
            "-noout",
            "-verify",
            "-vfyopt",
            "distid:1234567812345678",
            "-subject",
            "-nameopt",
            "utf8,sep_comma_plus",
        ],
    );
    assert!(
        out.contains("verify OK") && !out.contains("failure"),
        "{out}"
    );
    out
}

#[test]
fn co_signed_csr_verifies_with_openssl_and_our_parser() {
    let d = tmpdir("cosigned-csr");
    let key = CoSigner::enrol();
    let dn = DnBuilder::new()
        .country("CN")
        .organization("示例医院")
        .common_name("李医生")
        .build()
        .unwrap();
    let der = build_csr(&dn, &key, &[]).unwrap();
    let csr = ParsedCsr::from_der(&der).unwrap();
    assert_eq!(
        csr.public_key(),
        key.public_key(),
        "the CSR carries the joint public key"
    );
    openssl_accepts(&d, &csr);

    // A CSR whose body was changed after co-signing fails proof of possession, in OpenSSL and here.
    let mut tampered = der.clone();
    let at = tampered
        .windows("李医生".len())
        .position(|w| w == "李医生".as_bytes())
        .unwrap();
    tampered[at] ^= 0x01;
    assert!(ParsedCsr::from_der(&tampered).is_err());
    std::fs::write(d.join("bad.der"), &tampered).unwrap();
    let out = run(
        &d,
        "openssl",
        &[
            "req",
            "-inform",
            "DER",
            "-in",
            "bad.der",
            "-noout",
            "-verify",
            "-vfyopt",
            "distid:1234567812345678",
        ],
    )
    .text;
    assert!(!out.contains("verify OK"), "{out}");
}

/// The two-step form the co-signing server uses: it builds the `CertificationRequestInfo`
/// ([`request_info_der`]), the phone parses it ([`RequestInfo`]), checks the key and subject,
/// hashes the bytes itself, and the server wraps the joint signature ([`assemble_csr`]).
/// OpenSSL accepts the result; a signature over other bytes or a tampered info is refused.
#[test]
fn two_step_co_signed_csr_matches_what_the_phone_checked() {
    use gm_pki::csr::{RequestInfo, assemble_csr, request_info_der};
    use gm_pki::profile::{StaffInfo, staff_subject};

    let d = tmpdir("cosigned-csr-two-step");
    let key = CoSigner::enrol();
    let staff = StaffInfo {
        name: "王医生".into(),
        staff_id: "D101".into(),
        department: "心内科".into(),
        hospital: "示例医院".into(),
        resident_id: None,
        licence: None,
    };
    let subject = staff_subject(&staff).unwrap();
    let info = request_info_der(&subject, &key.public_key(), &[]).unwrap();

    // The phone's side: strict parse, its own key, its own staff number, its own digest.
    let seen = RequestInfo::from_der(&info).unwrap();
    assert_eq!(seen.public_key(), key.phone.public().public_key());
    assert_eq!(
        seen.subject_attr(gm_pki::oid::AT_SERIAL_NUMBER).as_deref(),
        Some("D101")
    );
    assert!(
        seen.subject_string().contains("CN=王医生"),
        "{}",
        seen.subject_string()
    );
    assert!(!seen.has_attributes());
    let mut trailing = info.clone();
    trailing.push(0);
    assert!(RequestInfo::from_der(&trailing).is_err());
    assert!(RequestInfo::from_der(&info[..info.len() - 1]).is_err());

    let signature = key.sign(&info).unwrap();
    let csr = assemble_csr(&info, &signature).unwrap();
    assert_eq!(csr.public_key(), key.public_key());
    assert_eq!(csr.subject(), &subject);
    let out = openssl_accepts(&d, &csr);
    assert!(
        out.contains("serialNumber=D101") || out.contains("serialNumber = D101"),
        "{out}"
    );

    // A signature made over other bytes (another subject) does not complete this info.
    let other = staff_subject(&StaffInfo {
        staff_id: "D102".into(),
        ..staff.clone()
    })
    .unwrap();
    let other_info = request_info_der(&other, &key.public_key(), &[]).unwrap();
    let wrong = key.sign(&other_info).unwrap();
    assert!(assemble_csr(&info, &wrong).is_err());
}
