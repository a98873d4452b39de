//! SMS one-time code: send (with the server's resend countdown), type six digits, verify.

use std::time::Duration;

use leptos::prelude::*;

use super::{AppCtx, ErrorLine, Step, api, store};
use crate::i18n::T;
use crate::model::{H5Session as Verified, SmsSent, clean_code};

#[component]
pub fn SmsStep() -> impl IntoView {
    let ctx = AppCtx::get();
    let countdown = RwSignal::new(0u32);
    let sent = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let code = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let timer = StoredValue::new(None::<IntervalHandle>);
    on_cleanup(move || {
        if let Some(h) = timer.get_value() {
            h.clear();
        }
    });

    let start_countdown = move |seconds: u32| {
        countdown.set(seconds);
        if let Some(h) = timer.get_value() {
            h.clear();
        }
        let handle = set_interval_with_handle(
            move || {
                countdown.update(|c| *c = c.saturating_sub(1));
                if countdown.get_untracked() == 0
                    && let Some(h) = timer.get_value()
                {
                    h.clear();
                }
            },
            Duration::from_secs(1),
        )
        .ok();
        timer.set_value(handle);
    };

    let send = move |_| {
        if busy.get_untracked() || countdown.get_untracked() > 0 {
            return;
        }
        busy.set(true);
        error.set(None);
        let token = ctx.token.get_value();
        leptos::task::spawn_local(async move {
            let lang = ctx.lang.get_untracked();
            match api::post::<_, SmsSent>(&token, "sms", &serde_json::json!({}), None).await {
                Ok(s) => {
                    sent.set(true);
                    start_countdown(s.resend_after_s.max(1));
                }
                Err(e) => error.set(Some(e.text(lang))),
            }
            busy.set(false);
        });
    };

    let verify = move |_| {
        let lang = ctx.lang.get_untracked();
        let Some(c) = clean_code(&code.get_untracked()) else {
            error.set(Some(T::CodeHint.get(lang).into()));
            return;
        };
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let token = ctx.token.get_value();
        leptos::task::spawn_local(async move {
            let body = serde_json::json!({ "code": c });
            match api::post::<_, Verified>(&token, "verify", &body, None).await {
                Ok(v) => {
                    store::set_session(&token, &v.session);
                    ctx.session.set(Some(v.session));
                    // A signature sent before the session was lost is sent again first.
                    let next = if store::pending(&token).is_some() {
                        Step::Resume
                    } else {
                        Step::Read
                    };
                    ctx.step.set(next);
                }
                Err(e) => {
                    if e.code() == Some("OTP_LOCKED")
                        || e.code() == Some("TASK_EXPIRED")
                        || e.code() == Some("TASK_USED")
                    {
                        ctx.step.set(Step::Closed(e.text(lang)));
                    } else {
                        let mut text = e.text(lang);
                        if let api::Failure::Api {
                            error: ref body, ..
                        } = e
                            && let Some(left) = body.attempts_left
                        {
                            text = format!("{text} {}{left}", T::AttemptsLeft.get(lang));
                        }
                        error.set(Some(text));
                        code.set(String::new());
                    }
                }
            }
            busy.set(false);
        });
    };

    let phone = move || ctx.task.get().map(|t| t.phone_masked).unwrap_or_default();
    let send_label = move || {
        let c = countdown.get();
        if c > 0 {
            format!("{c}{}", T::ResendIn.get(ctx.lang.get()))
        } else {
            T::SendCode.get(ctx.lang.get()).to_owned()
        }
    };
    view! {
        <section class="card step-sms">
            <h2>{ctx.t(T::StepVerify)}</h2>
            <p>{ctx.t(T::SmsIntro)}</p>
            <p class="phone">{phone}</p>
            <button class="btn secondary" id="send-code" on:click=send
                disabled=move || { busy.get() || countdown.get() > 0 }>{send_label}</button>
            <Show when=move || sent.get()>
                <p class="ok">{ctx.t(T::CodeSent)}</p>
            </Show>
            <label class="field">
                <span>{ctx.t(T::CodeLabel)}</span>
                <input id="sms-code" class="code" type="text" inputmode="numeric" pattern="[0-9]*"
                    maxlength="6" autocomplete="one-time-code" placeholder=ctx.t(T::CodeHint)
                    prop:value=move || code.get()
                    on:input=move |ev| code.set(event_target_value(&ev))/>
            </label>
            <ErrorLine text=error/>
            <button class="btn primary" id="verify" on:click=verify
                disabled=move || busy.get() || clean_code(&code.get()).is_none()>{ctx.t(T::Verify)}</button>
        </section>
    }
}
