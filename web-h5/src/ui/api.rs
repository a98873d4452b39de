//! Calls to the patient API with plain `fetch` (no library the WeChat browser might lack).
//! Every failure is either "the network did not answer" or the server's `{code, message}`.
//! One set of calls, two transports: direct (the patient's phone) or sealed in the bedside
//! pad's channel envelope (`POST /api/v1/pad/call`, docs/api/patient.md §5), chosen once.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestInit, Response};

use crate::i18n::Lang;
use crate::model::{ApiError, TaskView};

/// Why a call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// No answer (offline, cut connection, blocked request).
    Network,
    /// The server answered with an error status.
    Api {
        /// HTTP status.
        status: u16,
        /// The body (`code` empty when it was not JSON).
        error: ApiError,
    },
}

impl Failure {
    /// The text for the user in the page language.
    pub fn text(&self, lang: Lang) -> String {
        match self {
            Failure::Network => crate::i18n::T::NetworkError.get(lang).to_owned(),
            Failure::Api { status, error } => {
                let text = lang.pick(&error.message, &error.message_en);
                if text.is_empty() {
                    format!(
                        "{} (HTTP {status})",
                        lang.pick("服务器错误", "Server error")
                    )
                } else {
                    text.to_owned()
                }
            }
        }
    }

    /// The server's stable code, if it answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            Failure::Network => None,
            Failure::Api { error, .. } => Some(&error.code),
        }
    }

    /// Worth sending again unchanged: no answer, or a transient server state.
    pub fn retryable(&self) -> bool {
        match self {
            Failure::Network => true,
            Failure::Api { status, .. } => *status >= 500 || *status == 408 || *status == 429,
        }
    }
}

fn base(token: &str) -> String {
    format!("/api/v1/h5/tasks/{token}")
}

/// How calls reach the server: the same screens run on a patient's phone and on a bedside pad.
#[derive(Debug, Clone, Default)]
pub enum Transport {
    /// Plain `fetch` to the route itself (the patient's own phone).
    #[default]
    Direct,
    /// Every call sealed into an envelope for `POST /api/v1/pad/call` (an enrolled pad).
    Pad(Rc<pad_channel::Pad>),
}

thread_local! {
    static TRANSPORT: RefCell<Transport> = const { RefCell::new(Transport::Direct) };
}

/// Chooses the transport for every later call (the kiosk sets it once enrolled).
pub fn set_transport(t: Transport) {
    TRANSPORT.with(|cell| *cell.borrow_mut() = t);
}

/// A successful answer: its bytes (JSON or a page image).
struct Answer {
    status: u16,
    bytes: Vec<u8>,
}

/// One call through the current transport; any status outside 2xx becomes [`Failure::Api`].
async fn call(
    method: &str,
    path: &str,
    body: Option<String>,
    session: Option<&str>,
) -> Result<Answer, Failure> {
    let transport = TRANSPORT.with(|cell| cell.borrow().clone());
    let (status, bytes) = match transport {
        Transport::Direct => {
            let mut headers = Vec::new();
            if body.is_some() {
                headers.push(("content-type", "application/json"));
            }
            if let Some(session) = session {
                headers.push(("x-yiqian-h5-session", session));
            }
            let body = body.map(|b| JsValue::from_str(&b));
            fetch(method, path, body.as_ref(), &headers).await?
        }
        Transport::Pad(pad) => pad_call(&pad, method, path, body, session).await?,
    };
    if (200..300).contains(&status) {
        return Ok(Answer { status, bytes });
    }
    Err(api_failure(status, &bytes))
}

fn api_failure(status: u16, bytes: &[u8]) -> Failure {
    let error = serde_json::from_slice::<ApiError>(bytes).unwrap_or_default();
    Failure::Api { status, error }
}

/// `fetch` with the given headers; the status and the whole body.
async fn fetch(
    method: &str,
    url: &str,
    body: Option<&JsValue>,
    headers: &[(&str, &str)],
) -> Result<(u16, Vec<u8>), Failure> {
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(body) = body {
        init.set_body(body);
    }
    let request = Request::new_with_str_and_init(url, &init).map_err(|_| Failure::Network)?;
    for (name, value) in headers {
        let _ = request.headers().set(name, value);
    }
    let answer = JsFuture::from(leptos::prelude::window().fetch_with_request(&request))
        .await
        .map_err(|_| Failure::Network)?;
    let response: Response = answer.dyn_into().map_err(|_| Failure::Network)?;
    let promise = response.array_buffer().map_err(|_| Failure::Network)?;
    let buffer = JsFuture::from(promise)
        .await
        .map_err(|_| Failure::Network)?;
    Ok((response.status(), js_sys::Uint8Array::new(&buffer).to_vec()))
}

/// The inner request sealed for `POST /api/v1/pad/call`; the answer opened. Refusals before the
/// envelope is accepted (unknown or revoked pad, clock, replay) are plain JSON errors.
async fn pad_call(
    pad: &pad_channel::Pad,
    method: &str,
    path: &str,
    body: Option<String>,
    session: Option<&str>,
) -> Result<(u16, Vec<u8>), Failure> {
    let inner = crate::model::PadInner::encode(method, path, session, body.as_deref());
    // The server refuses envelopes stamped more than a few minutes off its clock. A pad whose
    // clock is wrong (no network time in the ward) learns the server's time from the refusal
    // and resends once with the corrected stamp; the correction is kept for later calls.
    let mut resent = false;
    let (envelope, key, status, bytes) = loop {
        let sent = pad_clock();
        let stamp = crate::model::corrected_now(sent, CLOCK_OFFSET.with(Cell::get));
        let (envelope, key) = pad
            .seal(stamp, &inner)
            .map_err(|_| local_failure("请求加密失败", "The request could not be sealed"))?;
        let wire = js_sys::Uint8Array::from(envelope.to_bytes().as_slice());
        let (status, bytes) = fetch(
            "POST",
            crate::model::PAD_CALL,
            Some(&wire.into()),
            &[("content-type", "application/octet-stream")],
        )
        .await?;
        match crate::model::pad_clock_refusal(status, &bytes) {
            Some(server) if !resent => {
                let offset = crate::model::clock_offset(sent, pad_clock(), server);
                CLOCK_OFFSET.with(|c| c.set(offset));
                resent = true;
            }
            _ => break (envelope, key, status, bytes),
        }
    };
    if status != 200 {
        return Ok((status, bytes));
    }
    let opened = pad_channel::Response::parse(&bytes)
        .and_then(|r| r.open(&key, &envelope.nonce))
        .map_err(|_| {
            local_failure(
                "服务器应答无法解密",
                "The server's answer could not be opened",
            )
        })?;
    let answer = crate::model::PadAnswer::decode(&opened).ok_or_else(|| {
        local_failure(
            "服务器应答无法识别",
            "The server's answer was not understood",
        )
    })?;
    if let Some(key) = &answer.channel_public_key {
        // The server rotated its channel key; the notice came sealed under our own request key.
        super::kiosk::switch_channel_key(key);
    }
    Ok((answer.status, answer.body))
}

thread_local! {
    /// How far the server's clock is ahead of this pad's, learnt from a clock refusal.
    static CLOCK_OFFSET: Cell<i64> = const { Cell::new(0) };
}

/// The pad's own clock in milliseconds since 1970.
fn pad_clock() -> u64 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // after 1970, < 2^53
    let now = js_sys::Date::now() as u64;
    now
}

/// A failure found by the page itself (shown like a server refusal, never retried blindly).
fn local_failure(zh: &str, en: &str) -> Failure {
    Failure::Api {
        status: 400,
        error: ApiError {
            message: zh.into(),
            message_en: en.into(),
            ..ApiError::default()
        },
    }
}

fn json<T: DeserializeOwned>(answer: &Answer) -> Result<T, Failure> {
    serde_json::from_slice(&answer.bytes).map_err(|_| Failure::Api {
        status: answer.status,
        error: ApiError {
            message: "服务器应答无法识别".into(),
            message_en: "The server's answer was not understood".into(),
            ..ApiError::default()
        },
    })
}

/// `GET` of a pad route through the channel (`/pad/queue`), as JSON.
pub async fn pad_get<R: DeserializeOwned>(path: &str) -> Result<R, Failure> {
    json(&call("GET", path, None, None).await?)
}

/// `POST` (no body) of a pad route through the channel (`/pad/tasks/{id}/open`, `…/handoff`):
/// the answer's body.
pub async fn pad_post_raw(path: &str) -> Result<Vec<u8>, Failure> {
    Ok(call("POST", path, None, None).await?.bytes)
}

/// `POST /api/v1/pad/enrol` (plain JSON: the pad has no channel before it is enrolled).
pub async fn enrol<B: Serialize, R: DeserializeOwned>(body: &B) -> Result<R, Failure> {
    let body = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    let (status, bytes) = fetch(
        "POST",
        crate::model::PAD_ENROL,
        Some(&JsValue::from_str(&body)),
        &[("content-type", "application/json")],
    )
    .await?;
    if !(200..300).contains(&status) {
        return Err(api_failure(status, &bytes));
    }
    json(&Answer { status, bytes })
}

/// `GET /api/v1/h5/tasks/{token}`.
pub async fn get_task(token: &str) -> Result<TaskView, Failure> {
    json(&call("GET", &base(token), None, None).await?)
}

/// `POST /api/v1/h5/tasks/{token}/{action}` with a JSON body.
pub async fn post<B: Serialize, R: DeserializeOwned>(
    token: &str,
    action: &str,
    body: &B,
    session: Option<&str>,
) -> Result<R, Failure> {
    let body = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    let url = format!("{}/{action}", base(token));
    json(&call("POST", &url, Some(body), session).await?)
}

/// `POST …/{action}` whose answer body does not matter.
pub async fn post_unit<B: Serialize>(
    token: &str,
    action: &str,
    body: &B,
    session: Option<&str>,
) -> Result<(), Failure> {
    let body = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    let url = format!("{}/{action}", base(token));
    call("POST", &url, Some(body), session).await.map(drop)
}

/// `GET …/pages/{n}.png` (needs the session header, so not a plain `<img src>`): an object URL.
pub async fn page_image(token: &str, n: u32, session: &str) -> Result<String, Failure> {
    let url = format!("{}/pages/{n}.png", base(token));
    let answer = call("GET", &url, None, Some(session)).await?;
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(answer.bytes.as_slice()));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("image/png");
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)
        .map_err(|_| Failure::Network)?;
    web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| Failure::Network)
}
