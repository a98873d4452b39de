//! "Me": certificate details, PIN change, lock now, unbind; and the lock screen.

use leptos::prelude::*;

use super::activate::CertCard;
use super::{Ctx, ErrorLine, PinInput, ipc, lock, t};
use crate::model::{CertInfo, UiError};

#[component]
pub fn Me() -> impl IntoView {
    let ctx = Ctx::get();
    let cert = RwSignal::new(None::<CertInfo>);
    let error = RwSignal::new(None::<UiError>);
    let old_pin = RwSignal::new(String::new());
    let new_pin = RwSignal::new(String::new());
    let new_pin2 = RwSignal::new(String::new());
    let pin_done = RwSignal::new(false);
    let confirm_unbind = RwSignal::new(false);
    let revoke_cert = RwSignal::new(false);
    leptos::task::spawn_local(async move {
        match ipc::call0::<CertInfo>("certificate").await {
            Ok(c) => cert.set(Some(c)),
            Err(e) => error.set(Some(e)),
        }
    });
    let change = move |_| {
        error.set(None);
        pin_done.set(false);
        if new_pin.get_untracked() != new_pin2.get_untracked() {
            error.set(Some(UiError::new(
                "PIN_MISMATCH",
                "两次输入的新 PIN 码不一致。",
                "The two new PINs differ",
            )));
            return;
        }
        let args = serde_json::json!({ "oldPin": old_pin.get_untracked(), "newPin": new_pin.get_untracked() });
        old_pin.set(String::new());
        new_pin.set(String::new());
        new_pin2.set(String::new());
        leptos::task::spawn_local(async move {
            match ipc::call::<_, ()>("change_pin", &args).await {
                Ok(()) => pin_done.set(true),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let unbind = move |_| {
        if !confirm_unbind.get_untracked() {
            confirm_unbind.set(true);
            return;
        }
        let args = serde_json::json!({ "revokeCertificate": revoke_cert.get_untracked() });
        leptos::task::spawn_local(async move {
            match ipc::call::<_, ()>("unbind", &args).await {
                Ok(()) => ctx.reload(),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    view! {
        <section class="card" id="screen-me">
            <h2>{t("我的证书", "My certificate")}</h2>
            {move || cert.get().map(|c| view! { <CertCard cert=c/> })}
        </section>
        <section class="card">
            <h2>{t("修改 PIN 码", "Change PIN")}</h2>
            <PinInput value=old_pin id="old-pin" zh="当前 PIN 码" en="Current PIN"/>
            <PinInput value=new_pin id="chg-pin" zh="新 PIN 码（至少 6 位数字）" en="New PIN (6+ digits)"/>
            <PinInput value=new_pin2 id="chg-pin2" zh="再次输入新 PIN 码" en="New PIN again"/>
            <button class="btn primary" id="pin-change" on:click=change>{t("修改", "Change")}</button>
            {move || pin_done.get().then(|| view! { <p class="ok" id="pin-changed">{t("PIN 码已修改。", "PIN changed.")}</p> })}
        </section>
        <section class="card">
            <button class="btn" id="lock-now" on:click=move |_| lock(ctx)>{t("立即锁定", "Lock now")}</button>
            {move || confirm_unbind.get().then(|| view! {
                <label class="check" for="unbind-revoke-cert">
                    <input type="checkbox" id="unbind-revoke-cert"
                        prop:checked=move || revoke_cert.get()
                        on:change=move |ev| revoke_cert.set(event_target_checked(&ev))/>
                    {t("同时吊销我的签名证书（离职、手机丢失时勾选；换新手机无需勾选，重新激活即可）",
                       "Also revoke my signing certificate (when leaving or after a lost phone; not needed to move to a new phone)")}
                </label>
            })}
            <button class="btn danger" id="unbind" on:click=unbind>
                {move || if confirm_unbind.get() { t("确认解绑：删除本机密钥分量与记录", "Confirm: delete this device's key share and history")() } else { t("解绑本机", "Unbind this device")() }}
            </button>
            <ErrorLine error/>
        </section>
    }
}

#[component]
pub fn LockScreen() -> impl IntoView {
    let ctx = Ctx::get();
    let pin = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<UiError>);
    let unlock = move |_| {
        if busy.get_untracked() || pin.get_untracked().is_empty() {
            return;
        }
        busy.set(true);
        error.set(None);
        let args = serde_json::json!({ "pin": pin.get_untracked() });
        pin.set(String::new());
        leptos::task::spawn_local(async move {
            match ipc::call::<_, ()>("verify_pin", &args).await {
                Ok(()) => {
                    ctx.last_active.set_value(js_sys::Date::now());
                    ctx.locked.set(false);
                    ctx.refresh_tasks();
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    // On a phone: fingerprint / face lifts the lock (it only hides patient data; signing still
    // takes the PIN, which the server counts).
    let biometric = move |_| {
        error.set(None);
        leptos::task::spawn_local(async move {
            let args = serde_json::json!({ "reason": "解锁医签 / Unlock Yiqian", "allowDeviceCredential": false });
            match ipc::call::<_, serde_json::Value>("plugin:biometric|authenticate", &args).await {
                Ok(_) => {
                    ctx.last_active.set_value(js_sys::Date::now());
                    ctx.locked.set(false);
                    ctx.refresh_tasks();
                }
                Err(e) => error.set(Some(UiError::new(
                    "BIOMETRIC",
                    format!(
                        "未能通过指纹 / 面容验证（{}），请输入 PIN 码解锁。",
                        e.message
                    ),
                    format!("Biometric check failed ({}); enter your PIN", e.message_en),
                ))),
            }
        });
    };
    view! {
        <main class="lock" id="screen-lock">
            <h2>{t("已锁定", "Locked")}</h2>
            <p class="muted">{t("长时间未操作，已隐藏患者信息。请输入 PIN 码解锁。", "Locked after inactivity; enter your PIN to continue.")}</p>
            <PinInput value=pin id="unlock-pin" zh="PIN 码" en="PIN"/>
            <button class="btn primary big" id="unlock" disabled=move || busy.get() on:click=unlock>{t("解锁", "Unlock")}</button>
            {move || ctx.caps.get().biometric.then(|| view! {
                <button class="btn big" id="unlock-biometric" on:click=biometric>{t("使用指纹 / 面容解锁", "Unlock with fingerprint / face")}</button>
            })}
            <ErrorLine error/>
        </main>
    }
}
