//! Signing: unlock the share with the PIN (one counted server evaluation), check what the
//! server asks to sign, then run the co-signing round.
//!
//! Before committing, for every item the phone checks that the signed attributes carry the
//! document digest it was shown (recomputed from the content when it fetched it), and it
//! computes every `e = SM3(Z ‖ attributes)` itself, so the server cannot slip in another
//! message (`ClientSignSession::commit` compares them).

use base64::Engine;
use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::cosign::{
    PhoneTask, PinUnlock, PinUnlocked, RoundCommit, RoundItem, RoundOutcome, RoundResult,
    RoundStarted, SignRequestView, StartRound,
};
use sm2_cosign::seal::{OprfClient, open_share};
use sm2_cosign::sign::{ClientSignSession, SignPartial};
use sm2_cosign::{ClientKeyShare, OsRng, plain};
use sm3::{Digest, Sm3};

use crate::client::{Client, DeviceKey};
use crate::state::PhoneState;
use crate::{PhoneError, Result};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The signed client of an enrolled phone.
pub fn client(state: &PhoneState) -> Result<Client> {
    Ok(Client::new(&state.server)
        .with_device(&state.device_id, DeviceKey::from_hex(&state.device_key)?))
}

/// The signed client of an enrolled phone, talking to another address of the same service
/// (another instance behind the load balancer).
pub fn client_at(state: &PhoneState, base: &str) -> Result<Client> {
    Ok(Client::new(base).with_device(&state.device_id, DeviceKey::from_hex(&state.device_key)?))
}

/// One counted OPRF evaluation of `pin` by the server: the key that seals the share under
/// this PIN, and the attempts left.
async fn pin_key(
    client: &Client,
    state: &PhoneState,
    pin: &str,
) -> Result<(sm2_cosign::seal::UnlockKey, u32)> {
    let context = PhoneState::pin_context(&state.staff_id, &state.device_id);
    let (blind, oprf) = OprfClient::blind(&mut OsRng, &context, pin.as_bytes())?;
    let answer: PinUnlocked = client
        .post("/api/v1/phone/pin", &PinUnlock { oprf })
        .await?;
    Ok((blind.finalize(&answer.oprf)?, answer.attempts_left))
}

/// Opens the share with `pin` (the server counts the attempt until a signature verifies).
pub async fn unlock(client: &Client, state: &PhoneState, pin: &str) -> Result<ClientKeyShare> {
    let (key, attempts_left) = pin_key(client, state, pin).await?;
    open_share(&key, &state.sealed_share).map_err(|e| match e {
        sm2_cosign::Error::WrongPin => PhoneError::WrongPin { attempts_left },
        other => PhoneError::Protocol(other),
    })
}

/// PIN change: opens the share with `old_pin`, then seals it again under `new_pin` (a second
/// counted evaluation; both are forgiven at the next signature that verifies, like any unlock).
/// Returns the new state for the caller to save.
pub async fn change_pin(
    client: &Client,
    state: &PhoneState,
    old_pin: &str,
    new_pin: &str,
) -> Result<PhoneState> {
    crate::enroll::check_pin_format(new_pin)?;
    let share = unlock(client, state, old_pin).await?;
    let (key, _) = pin_key(client, state, new_pin).await?;
    let mut next = state.clone();
    next.sealed_share = sm2_cosign::seal::seal_share(&mut OsRng, &key, &share)?;
    Ok(next)
}

/// Pending tasks for this phone's staff member.
pub async fn tasks(client: &Client) -> Result<Vec<PhoneTask>> {
    client.get("/api/v1/phone/tasks").await
}

/// The phone's push connection: a WebSocket whose text messages are
/// `RequestEvent::Tasks` (the pending list, sent on connect and whenever it changes). The
/// upgrade request is device-signed; the caller reconnects when it closes.
pub async fn task_events(
    client: &Client,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let path = "/api/v1/phone/events";
    let url = format!("{}{path}", client.base().replacen("http", "ws", 1));
    let mut req = url
        .into_client_request()
        .map_err(|e| PhoneError::Network(e.to_string()))?;
    for (name, value) in client.signed_headers("GET", path, b"")? {
        req.headers_mut().insert(
            name,
            value
                .parse()
                .map_err(|_| PhoneError::State("header value".into()))?,
        );
    }
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| PhoneError::Network(e.to_string()))?;
    Ok(ws)
}

/// One request, as a signer sees it.
pub async fn request(client: &Client, request_id: &str) -> Result<SignRequestView> {
    client
        .get(&format!("/api/v1/phone/requests/{request_id}"))
        .await
}

/// Document `index` of `request_id` as the server holds it, checked against `digest_sm3`, the
/// digest the phone shows for it: a preview is of exactly the bytes that will be signed (the
/// round is checked against the same digest).
pub async fn document(
    client: &Client,
    request_id: &str,
    index: u32,
    digest_sm3: &str,
) -> Result<Vec<u8>> {
    let content = client
        .get_bytes(&format!(
            "/api/v1/phone/requests/{request_id}/documents/{index}"
        ))
        .await?;
    if !hex::encode(Sm3::digest(&content)).eq_ignore_ascii_case(digest_sm3) {
        return Err(PhoneError::Mismatch(format!(
            "document {index}: the content differs from its SM3 digest"
        )));
    }
    Ok(content)
}

/// Document `index` of `request_id`, a Word file, as the server's PDF conversion of it
/// (LibreOffice), for reading on the phone. It cannot be checked against the document's SM3 (it
/// is not the signed bytes): the phone shows it as a conversion, next to the signed file's SM3.
pub async fn word_as_pdf(client: &Client, request_id: &str, index: u32) -> Result<Vec<u8>> {
    let pdf = client
        .get_bytes(&format!(
            "/api/v1/phone/requests/{request_id}/documents/{index}/pdf"
        ))
        .await?;
    if !pdf.starts_with(b"%PDF-") {
        return Err(PhoneError::Mismatch(format!(
            "document {index}: the server's conversion is not a PDF"
        )));
    }
    Ok(pdf)
}

/// Every document of `request_id` still to sign, as round items.
pub async fn items_of(client: &Client, request_id: &str) -> Result<Vec<RoundItem>> {
    Ok(items_in(&request(client, request_id).await?))
}

/// Every document of a request as round items.
pub fn items_in(view: &SignRequestView) -> Vec<RoundItem> {
    view.documents
        .iter()
        .map(|d| RoundItem {
            request_id: view.request_id.clone(),
            document: d.index,
        })
        .collect()
}

/// Checks the server's round against what the phone knows, returning the digests the phone
/// computed itself.
///
/// A request's view comes from `reviewed` (what the phone showed the signer before the round)
/// or, for requests not in it, is read once from the server.
async fn check_round(
    client: &Client,
    share: &ClientKeyShare,
    started: &RoundStarted,
    asked: &[RoundItem],
    reviewed: &[SignRequestView],
) -> Result<Vec<plain::Digest>> {
    if started.items.len() != asked.len() {
        return Err(PhoneError::Mismatch(
            "item count differs from what was asked".into(),
        ));
    }
    let z = plain::compute_z(sm2_cosign::DEFAULT_ID, share.public().public_point())?;
    let mut expected = Vec::with_capacity(asked.len());
    let mut read: Vec<SignRequestView> = Vec::new();
    for (item, want) in started.items.iter().zip(asked) {
        if item.request_id != want.request_id || item.document != want.document {
            return Err(PhoneError::Mismatch(
                "items are not the ones asked for".into(),
            ));
        }
        let known = reviewed
            .iter()
            .chain(&read)
            .position(|v| v.request_id == item.request_id);
        let view = match known {
            Some(i) if i < reviewed.len() => &reviewed[i],
            Some(i) => &read[i - reviewed.len()],
            None => {
                read.push(request(client, &item.request_id).await?);
                &read[read.len() - 1]
            }
        };
        let doc = view
            .documents
            .iter()
            .find(|d| d.index == item.document)
            .ok_or_else(|| PhoneError::Mismatch("unknown document".into()))?;
        let digest = doc.digest_sm3.clone();
        if doc.has_content {
            // The phone shows the content, so it hashes what it shows: the content served now
            // must still be the content of the digest it showed.
            document(client, &item.request_id, item.document, &digest).await?;
        }
        if digest != item.digest_sm3 {
            return Err(PhoneError::Mismatch(format!(
                "document {} digest differs",
                item.name
            )));
        }
        let attrs = B64
            .decode(&item.signed_attributes)
            .map_err(|e| PhoneError::Mismatch(e.to_string()))?;
        let md = gm_pki::cms::signed_attributes_message_digest(&attrs)
            .map_err(|e| PhoneError::Mismatch(e.to_string()))?;
        if hex::encode(md) != digest {
            return Err(PhoneError::Mismatch(format!(
                "signed attributes of {} carry another digest",
                item.name
            )));
        }
        expected.push(plain::digest_with_z(&z, &attrs));
    }
    Ok(expected)
}

/// A round between its steps (each step may go to another server instance).
#[derive(Debug)]
pub struct OpenRound {
    round_id: String,
    share: ClientKeyShare,
    session: ClientSignSession,
    commit: Option<sm2_cosign::sign::SignCommit>,
}

/// Steps 1–2: unlock with `pin`, start the round over `items`, check it, commit to nonces.
pub async fn begin_round(
    client: &Client,
    state: &PhoneState,
    pin: &str,
    items: Vec<RoundItem>,
    qr_nonce: Option<String>,
) -> Result<OpenRound> {
    begin_round_checked(client, state, pin, items, qr_nonce, &[]).await
}

/// [`begin_round`] over every document of `reviewed`, the requests as the phone showed them:
/// the round is checked against those views instead of reading each request again.
pub async fn begin_round_reviewed(
    client: &Client,
    state: &PhoneState,
    pin: &str,
    reviewed: &[SignRequestView],
    qr_nonce: Option<String>,
) -> Result<OpenRound> {
    let items = reviewed.iter().flat_map(items_in).collect();
    begin_round_checked(client, state, pin, items, qr_nonce, reviewed).await
}

async fn begin_round_checked(
    client: &Client,
    state: &PhoneState,
    pin: &str,
    items: Vec<RoundItem>,
    qr_nonce: Option<String>,
    reviewed: &[SignRequestView],
) -> Result<OpenRound> {
    let share = unlock(client, state, pin).await?;
    let started: RoundStarted = client
        .post(
            "/api/v1/phone/rounds",
            &StartRound {
                items: items.clone(),
                qr_nonce,
            },
        )
        .await?;
    let expected = check_round(client, &share, &started, &items, reviewed).await?;
    let (session, commit) = ClientSignSession::commit_os(&share, &started.request, &expected)?;
    Ok(OpenRound {
        round_id: started.round_id,
        share,
        session,
        commit: Some(commit),
    })
}

impl OpenRound {
    /// The round id.
    pub fn id(&self) -> &str {
        &self.round_id
    }

    /// Steps 3–4: send the commitments, finish the signatures (verified against the phone's
    /// own key), send them.
    pub async fn complete(self, client: &Client) -> Result<RoundOutcome> {
        self.complete_via(client, client).await
    }

    /// [`Self::complete`] with the two steps sent through different clients (e.g. two server
    /// instances behind a load balancer).
    pub async fn complete_via(
        self,
        commit_client: &Client,
        result_client: &Client,
    ) -> Result<RoundOutcome> {
        let partial = self.send_commit(commit_client).await?;
        let (round_id, result) = self.finish(&partial)?;
        send_result(result_client, &round_id, &result).await
    }

    /// Step 3: sends the commitments. Safe to repeat after a lost reply: the server answers
    /// the same commitments with the same partial signatures.
    pub async fn send_commit(&self, client: &Client) -> Result<SignPartial> {
        let commit = self
            .commit
            .clone()
            .ok_or_else(|| PhoneError::State("round already committed".into()))?;
        client
            .post(
                &format!("/api/v1/phone/rounds/{}/commit", self.round_id),
                &RoundCommit { commit },
            )
            .await
    }

    /// Completes the signatures locally (every one verified against the phone's own key).
    pub fn finish(self, partial: &SignPartial) -> Result<(String, RoundResult)> {
        let (_, result) = self.session.finish(&self.share, partial)?;
        Ok((self.round_id, RoundResult { result }))
    }
}

/// Step 4: sends the finished signatures. Safe to repeat after a lost reply.
pub async fn send_result(
    client: &Client,
    round_id: &str,
    result: &RoundResult,
) -> Result<RoundOutcome> {
    client
        .post(&format!("/api/v1/phone/rounds/{round_id}/result"), result)
        .await
}

/// Signs `items` (one or a batch) in one round after one PIN entry.
pub async fn sign_items(
    client: &Client,
    state: &PhoneState,
    pin: &str,
    items: Vec<RoundItem>,
    qr_nonce: Option<String>,
) -> Result<RoundOutcome> {
    begin_round(client, state, pin, items, qr_nonce)
        .await?
        .complete(client)
        .await
}

/// Signs every document of `reviewed` (one request or a batch, as the phone showed them) in
/// one round after one PIN entry.
pub async fn sign_reviewed(
    client: &Client,
    state: &PhoneState,
    pin: &str,
    reviewed: &[SignRequestView],
    qr_nonce: Option<String>,
) -> Result<RoundOutcome> {
    begin_round_reviewed(client, state, pin, reviewed, qr_nonce)
        .await?
        .complete(client)
        .await
}

/// Scan to sign: opens a `yiqian://sign` link and signs every document of its request.
pub async fn sign_link(state: &PhoneState, link: &str, pin: &str) -> Result<RoundOutcome> {
    let parsed: cosign_proto::v1::qr::QrLink = link
        .parse()
        .map_err(|e: cosign_proto::v1::qr::QrError| PhoneError::Mismatch(e.to_string()))?;
    let cosign_proto::v1::qr::QrLink::Sign {
        server,
        request_id,
        nonce,
    } = parsed
    else {
        return Err(PhoneError::Mismatch("not a signing link".into()));
    };
    if server.trim_end_matches('/') != state.server {
        return Err(PhoneError::Mismatch(format!(
            "the link names server {server}, this phone is enrolled at {}",
            state.server
        )));
    }
    let client = client(state)?;
    let view = request(&client, &request_id).await?;
    sign_reviewed(&client, state, pin, &[view], Some(nonce)).await
}

/// Whether an error is the server's `code`.
pub fn is_code(e: &PhoneError, code: ErrorCode) -> bool {
    matches!(e, PhoneError::Server(api) if api.code == code)
}
