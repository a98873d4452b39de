//! Activation: paste (or scan) the `yiqian://activate` link, the SMS code when the server asks
//! for one, a new PIN twice; the shell runs the two-party key generation and seals the share;
//! then the issued certificate is shown.

use leptos::prelude::*;

use super::{CameraButton, Ctx, ErrorLine, PinInput, fmt_time, ipc, open_links, t};
use crate::model::{CertInfo, IncomingLink, UiError};

#[component]
pub fn Activate() -> impl IntoView {
    let ctx = Ctx::get();
    let link = RwSignal::new(String::new());
    let target = RwSignal::new(None::<(String, String)>);
    let sms = RwSignal::new(String::new());
    let sms_needed = RwSignal::new(false);
    let pin = RwSignal::new(String::new());
    let pin2 = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<UiError>);
    let cert = RwSignal::new(None::<CertInfo>);

    let next = move || {
        error.set(None);
        let l = link.get_untracked();
        leptos::task::spawn_local(async move {
            match ipc::call::<_, (String, String)>(
                "parse_activation",
                &serde_json::json!({ "link": l }),
            )
            .await
            {
                Ok(t) => target.set(Some(t)),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let read = open_links(link, next, IncomingLink::activation);
    let send_sms = move |_| {
        error.set(None);
        let l = link.get_untracked();
        leptos::task::spawn_local(async move {
            match ipc::call::<_, serde_json::Value>(
                "request_sms",
                &serde_json::json!({ "link": l }),
            )
            .await
            {
                Ok(_) => sms_needed.set(true),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let activate = move |_| {
        if busy.get_untracked() {
            return;
        }
        error.set(None);
        if pin.get_untracked() != pin2.get_untracked() {
            error.set(Some(UiError::new(
                "PIN_MISMATCH",
                "两次输入的 PIN 码不一致。",
                "The two PINs differ",
            )));
            return;
        }
        if pin.get_untracked().len() < 6 {
            error.set(Some(UiError::new(
                "PIN_SHORT",
                "PIN 码至少 6 位数字。",
                "The PIN needs at least 6 digits",
            )));
            return;
        }
        busy.set(true);
        let args = serde_json::json!({
            "link": link.get_untracked(),
            "smsCode": sms.get_untracked(),
            "pin": pin.get_untracked(),
        });
        leptos::task::spawn_local(async move {
            match ipc::call::<_, CertInfo>("activate", &args).await {
                Ok(c) => {
                    pin.set(String::new());
                    pin2.set(String::new());
                    cert.set(Some(c));
                }
                Err(e) => {
                    if e.code == "SMS_CODE_REQUIRED" {
                        sms_needed.set(true);
                    }
                    error.set(Some(e));
                }
            }
            busy.set(false);
        });
    };

    view! {
        <section class="card" id="screen-activate">
            <h2>{t("激活本机", "Activate this device")}</h2>
            {move || match (cert.get(), target.get()) {
                (Some(c), _) => view! {
                    <div id="activated">
                        <p class="ok">{t("激活成功，签名密钥已生成（私钥分存于本机与签名服务器）。", "Activated: the signing key was generated (split between this device and the server).")}</p>
                        <CertCard cert=c/>
                        <button class="btn primary big" id="enter" on:click=move |_| ctx.reload()>{t("进入待签列表", "Go to tasks")}</button>
                    </div>
                }.into_any(),
                (None, None) => view! {
                    <div>
                        <p class="muted">{t("请扫描管理员提供的激活二维码，或粘贴激活链接（yiqian://activate…）。", "Scan the activation QR code from your administrator, or paste the link (yiqian://activate…).")}</p>
                        <CameraButton id="activation-camera" on_read=read error/>
                        <label class="field">
                            <span>{t("激活码 / 链接", "Activation link")}</span>
                            <textarea id="activation-link" rows="3" prop:value=move || link.get()
                                on:input=move |ev| link.set(event_target_value(&ev))></textarea>
                        </label>
                        <button class="btn primary big" id="activation-next" on:click=move |_| next()>{t("下一步", "Next")}</button>
                    </div>
                }.into_any(),
                (None, Some((server, staff))) => view! {
                    <div>
                        <dl class="facts">
                            <dt>{t("工号", "Staff number")}</dt><dd id="act-staff">{staff}</dd>
                            <dt>{t("签名服务器", "Server")}</dt><dd>{server}</dd>
                        </dl>
                        <label class="field">
                            <span>{move || if sms_needed.get() { t("短信验证码（必填）", "SMS code (required)")() } else { t("短信验证码（服务器要求时填写）", "SMS code (if the server asks)")() }}</span>
                            <div class="row">
                                <input id="sms-code" inputmode="numeric" maxlength="8" prop:value=move || sms.get()
                                    on:input=move |ev| sms.set(event_target_value(&ev))/>
                                <button class="btn small" id="sms-send" on:click=send_sms>{t("获取验证码", "Send code")}</button>
                            </div>
                        </label>
                        <PinInput value=pin id="new-pin" zh="设置 PIN 码（至少 6 位数字）" en="New PIN (6+ digits)"/>
                        <PinInput value=pin2 id="new-pin2" zh="再次输入 PIN 码" en="PIN again"/>
                        <button class="btn primary big" id="activate" disabled=move || busy.get() on:click=activate>
                            {move || if busy.get() { t("正在生成密钥…", "Generating the key…")() } else { t("激活并生成签名密钥", "Activate and generate the key")() }}
                        </button>
                    </div>
                }.into_any(),
            }}
            <ErrorLine error/>
        </section>
    }
}

/// Subject, serial, validity and issuer of a certificate.
#[component]
pub fn CertCard(cert: CertInfo) -> impl IntoView {
    view! {
        <dl class="facts cert" id="cert">
            <dt>{t("主体", "Subject")}</dt><dd id="cert-subject">{cert.subject}</dd>
            <dt>{t("序列号", "Serial")}</dt><dd id="cert-serial" class="mono">{cert.serial}</dd>
            <dt>{t("有效期自", "Valid from")}</dt><dd id="cert-from">{fmt_time(cert.not_before)}</dd>
            <dt>{t("有效期至", "Valid until")}</dt><dd id="cert-to">{fmt_time(cert.not_after)}</dd>
            <dt>{t("颁发者", "Issuer")}</dt><dd id="cert-issuer">{cert.issuer}</dd>
        </dl>
    }
}
