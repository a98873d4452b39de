//! The sign screen: the consent box, then the widget of the task's sign mode.

use leptos::html::Canvas;
use leptos::prelude::*;

use super::copy::CopyStep;
use super::long_press::LongPress;
use super::pad::{Pad, PadTools, png_base64};
use super::submit::{Parts, SubmitState, SubmitStatus, submit};
use super::{AppCtx, ErrorLine};
use crate::i18n::T;
use crate::model::{SignMode, Stroke};

#[component]
pub fn SignStep() -> impl IntoView {
    let ctx = AppCtx::get();
    let consent = RwSignal::new(false);
    let state = RwSignal::new(SubmitState::Idle);
    let error = RwSignal::new(None::<String>);
    let need_consent = move || {
        let ok = consent.get_untracked();
        error.set((!ok).then(|| T::NeedConsent.get(ctx.lang.get_untracked()).into()));
        ok
    };
    Effect::new(move |_| {
        if consent.get() {
            error.set(None);
        }
    });

    let widget = match crate::model::sign_mode(&ctx.task_now()) {
        Some(SignMode::Button) => view! {
            <button class="btn primary big" id="confirm-sign" disabled=move || state.get().locked()
                on:click=move |_| { if need_consent() { submit(ctx, Parts::default(), state); } }>
                {ctx.t(T::ConfirmSign)}
            </button>
            <SubmitStatus state/>
        }
        .into_any(),
        Some(SignMode::LongPress) => view! {
            <LongPress
                disabled=Signal::derive(move || !consent.get() || state.get().locked())
                on_refused=Callback::new(move |()| { need_consent(); })
                on_done=Callback::new(move |held: u64| {
                    submit(ctx, Parts { held_ms: Some(held), ..Parts::default() }, state);
                })/>
            <SubmitStatus state/>
        }
        .into_any(),
        Some(SignMode::Handwriting) => handwriting(ctx, consent, state, error).into_any(),
        Some(SignMode::Copy) => view! { <CopyStep consent state/> }.into_any(),
        None => view! { <p class="error">{ctx.t(T::UnknownMode)}</p> }.into_any(),
    };

    view! {
        <section class="card step-sign">
            <h2>{ctx.t(T::StepSign)}</h2>
            <label class="consent">
                <input type="checkbox" id="consent" prop:checked=move || consent.get()
                    disabled=move || state.get().locked()
                    on:change=move |ev| consent.set(event_target_checked(&ev))/>
                <span>{ctx.t(T::Consent)}</span>
            </label>
            <ErrorLine text=error/>
            {widget}
        </section>
    }
}

fn handwriting(
    ctx: AppCtx,
    consent: RwSignal<bool>,
    state: RwSignal<SubmitState>,
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let strokes = RwSignal::new(Vec::<Stroke>::new());
    let canvas = NodeRef::<Canvas>::new();
    let t0 = StoredValue::new(None::<f64>);
    let locked = Signal::derive(move || state.get().locked());
    let send = move |_| {
        let lang = ctx.lang.get_untracked();
        if !consent.get_untracked() {
            error.set(Some(T::NeedConsent.get(lang).into()));
            return;
        }
        if strokes.with_untracked(Vec::is_empty) {
            error.set(Some(T::NeedSignature.get(lang).into()));
            return;
        }
        error.set(None);
        let parts = Parts {
            strokes: strokes.get_untracked(),
            signature_png_base64: png_base64(canvas),
            ..Parts::default()
        };
        submit(ctx, parts, state);
    };
    view! {
        <p class="muted">{ctx.t(T::DrawHere)}</p>
        <Pad strokes canvas class="sign-pad" locked t0/>
        <PadTools strokes locked/>
        <button class="btn primary" id="submit" disabled=move || locked.get() on:click=send>{ctx.t(T::Submit)}</button>
        <SubmitStatus state/>
    }
}
