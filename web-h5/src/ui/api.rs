//! Calls to the patient API with plain `fetch` (no library the WeChat browser might lack).
//! Every failure is either "the network did not answer" or the server's `{code, message}`.

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

async fn call(
    method: &str,
    url: &str,
    body: Option<String>,
    session: Option<&str>,
) -> Result<Response, Failure> {
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(body) = &body {
        init.set_body(&JsValue::from_str(body));
    }
    let request = Request::new_with_str_and_init(url, &init).map_err(|_| Failure::Network)?;
    let headers = request.headers();
    if body.is_some() {
        let _ = headers.set("content-type", "application/json");
    }
    if let Some(session) = session {
        let _ = headers.set("x-yiqian-h5-session", session);
    }
    let answer = JsFuture::from(leptos::prelude::window().fetch_with_request(&request))
        .await
        .map_err(|_| Failure::Network)?;
    let response: Response = answer.dyn_into().map_err(|_| Failure::Network)?;
    if response.ok() {
        return Ok(response);
    }
    let status = response.status();
    let text = read_text(&response).await.unwrap_or_default();
    let error = serde_json::from_str::<ApiError>(&text).unwrap_or_default();
    Err(Failure::Api { status, error })
}

async fn read_text(response: &Response) -> Result<String, Failure> {
    let promise = response.text().map_err(|_| Failure::Network)?;
    let text = JsFuture::from(promise)
        .await
        .map_err(|_| Failure::Network)?;
    Ok(text.as_string().unwrap_or_default())
}

async fn json<T: DeserializeOwned>(response: Response) -> Result<T, Failure> {
    let text = read_text(&response).await?;
    serde_json::from_str(&text).map_err(|_| Failure::Api {
        status: response.status(),
        error: ApiError {
            message: "服务器应答无法识别".into(),
            message_en: "The server's answer was not understood".into(),
            ..ApiError::default()
        },
    })
}

/// `GET /api/v1/h5/tasks/{token}`.
pub async fn get_task(token: &str) -> Result<TaskView, Failure> {
    json(call("GET", &base(token), None, None).await?).await
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
    json(call("POST", &url, Some(body), session).await?).await
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
    let response = call("GET", &url, None, Some(session)).await?;
    let promise = response.blob().map_err(|_| Failure::Network)?;
    let blob: web_sys::Blob = JsFuture::from(promise)
        .await
        .map_err(|_| Failure::Network)?
        .dyn_into()
        .map_err(|_| Failure::Network)?;
    web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| Failure::Network)
}
