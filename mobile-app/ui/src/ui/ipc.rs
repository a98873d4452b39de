//! Calls into the Tauri shell (`window.__TAURI__`, enabled by `app.withGlobalTauri`): commands
//! with JSON arguments (camelCase keys, Tauri's convention) and events pushed by the shell.

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;

use crate::model::UiError;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "core"], js_name = invoke, catch)]
    async fn tauri_invoke(cmd: &str, args: JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "event"], js_name = listen)]
    fn tauri_listen(event: &str, handler: &Closure<dyn FnMut(JsValue)>) -> js_sys::Promise;
}

fn to_js<A: Serialize>(args: &A) -> JsValue {
    serde_json::to_string(args)
        .ok()
        .and_then(|s| js_sys::JSON::parse(&s).ok())
        .unwrap_or(JsValue::UNDEFINED)
}

fn from_js<T: DeserializeOwned>(v: &JsValue) -> Option<T> {
    if v.is_undefined() || v.is_null() {
        return serde_json::from_str("null").ok();
    }
    let text: String = js_sys::JSON::stringify(v).ok()?.into();
    serde_json::from_str(&text).ok()
}

/// Calls command `cmd` with `args` (a JSON object with camelCase keys).
pub async fn call<A: Serialize, T: DeserializeOwned>(cmd: &str, args: &A) -> Result<T, UiError> {
    match tauri_invoke(cmd, to_js(args)).await {
        Ok(v) => from_js(&v).ok_or_else(|| {
            UiError::new("BAD_ANSWER", "应用内部应答无法读取。", "Unreadable answer")
        }),
        Err(e) => Err(from_js::<UiError>(&e).unwrap_or_else(|| {
            let text = e.as_string().unwrap_or_else(|| "未知错误".into());
            UiError::new("APP", text.clone(), text)
        })),
    }
}

/// Calls a command without arguments.
pub async fn call0<T: DeserializeOwned>(cmd: &str) -> Result<T, UiError> {
    call(cmd, &serde_json::json!({})).await
}

/// Calls `f` with each `event`'s payload for the life of the page.
pub fn listen<T: DeserializeOwned + 'static>(event: &str, mut f: impl FnMut(T) + 'static) {
    let handler = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
        if let Ok(payload) = js_sys::Reflect::get(&ev, &JsValue::from_str("payload"))
            && let Some(v) = from_js::<T>(&payload)
        {
            f(v);
        }
    });
    let _ = tauri_listen(event, &handler);
    handler.forget();
}
