//! What the page keeps in `localStorage`: language, font size, the session, and the pending
//! submission (kept until the server acknowledges it, so a reload or a retry after a network
//! failure sends the same submission id and the same strokes).

use crate::i18n::Lang;
use crate::model::Submission as SubmitBody;

fn storage() -> Option<web_sys::Storage> {
    leptos::prelude::window().local_storage().ok().flatten()
}

fn get(key: &str) -> Option<String> {
    storage()?.get_item(key).ok().flatten()
}

fn set(key: &str, value: &str) {
    if let Some(s) = storage() {
        // A full or disabled storage only loses the convenience, never the flow.
        let _ = s.set_item(key, value);
    }
}

fn remove(key: &str) {
    if let Some(s) = storage() {
        let _ = s.remove_item(key);
    }
}

/// The saved language (Chinese by default).
pub fn lang() -> Lang {
    get("yiqian.h5.lang").map_or(Lang::Zh, |c| Lang::from_code(&c))
}

/// Saves the language.
pub fn set_lang(lang: Lang) {
    set("yiqian.h5.lang", lang.code());
}

/// The saved font-size step.
pub fn font() -> usize {
    get("yiqian.h5.font")
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

/// Saves the font-size step.
pub fn set_font(step: usize) {
    set("yiqian.h5.font", &step.to_string());
}

/// The session for this task's token.
pub fn session(token: &str) -> Option<String> {
    get(&format!("yiqian.h5.session.{token}"))
}

/// Saves the session for this task's token.
pub fn set_session(token: &str, session: &str) {
    set(&format!("yiqian.h5.session.{token}"), session);
}

/// Forgets the session.
pub fn clear_session(token: &str) {
    remove(&format!("yiqian.h5.session.{token}"));
}

/// The submission not yet acknowledged, if any.
pub fn pending(token: &str) -> Option<SubmitBody> {
    serde_json::from_str(&get(&format!("yiqian.h5.pending.{token}"))?).ok()
}

/// Keeps a submission until it is acknowledged.
pub fn set_pending(token: &str, body: &SubmitBody) {
    if let Ok(json) = serde_json::to_string(body) {
        set(&format!("yiqian.h5.pending.{token}"), &json);
    }
}

/// The submission was acknowledged (or refused for good).
pub fn clear_pending(token: &str) {
    remove(&format!("yiqian.h5.pending.{token}"));
}

/// A fresh UUID v4 from the browser's CSPRNG.
pub fn new_submission_id() -> String {
    let mut bytes = [0u8; 16];
    if let Ok(crypto) = leptos::prelude::window().crypto() {
        let _ = crypto.get_random_values_with_u8_array(&mut bytes);
    }
    if bytes == [0; 16] {
        // No Web Crypto (very old browsers): Math.random is enough for an idempotency key.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0 ≤ x < 256
        for b in &mut bytes {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    crate::model::uuid_v4(bytes)
}

/// This pad's enrolment, if it is enrolled (kiosk mode).
pub fn pad_device() -> Option<crate::model::PadDevice> {
    serde_json::from_str(&get("yiqian.pad.device")?).ok()
}

/// Keeps the enrolment (device key, certificate serial, channel key, name, ward).
pub fn set_pad_device(device: &crate::model::PadDevice) {
    if let Ok(json) = serde_json::to_string(device) {
        set("yiqian.pad.device", &json);
    }
}

/// Forgets the enrolment (revoked pad, before enrolling again).
pub fn clear_pad_device() {
    remove("yiqian.pad.device");
}

/// Wipes everything one task left on the pad (session, unsent submission): the device is shared.
pub fn forget_task(token: &str) {
    clear_session(token);
    clear_pending(token);
}
