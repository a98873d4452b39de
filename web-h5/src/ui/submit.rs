//! Submitting a signature. The body is built once, with a fresh submission id, and kept in
//! localStorage until the server acknowledges it: a retry after a network failure (or after a
//! reload) sends exactly the same id and strokes, and the server's idempotency turns repeats
//! into the first result. Only a definite refusal (4xx other than 408/429) drops it.

use leptos::prelude::*;

use super::{AppCtx, Step, api, store};
use crate::i18n::T;
use crate::model::{CopyChar, Stroke, Submission as SubmitBody, Submitted as SubmitResult};

/// What the sign widgets contribute to the body.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    /// Long press duration.
    pub held_ms: Option<u64>,
    /// Handwriting strokes.
    pub strokes: Vec<Stroke>,
    /// Handwriting PNG (base64).
    pub signature_png_base64: Option<String>,
    /// Copied characters.
    pub copy_chars: Vec<CopyChar>,
}

/// Where a submission stands.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SubmitState {
    /// Nothing sent yet (or refused and dropped: the widgets are editable).
    #[default]
    Idle,
    /// On the way.
    Sending,
    /// Not acknowledged; kept for a retry with the same id (the widgets are locked).
    Pending(String),
    /// Refused; the message says why (the widgets are editable again).
    Refused(String),
}

impl SubmitState {
    /// The widgets must not change the signature now.
    pub fn locked(&self) -> bool {
        matches!(self, SubmitState::Sending | SubmitState::Pending(_))
    }
}

/// Builds the body (or reuses the pending one) and sends it.
pub fn submit(ctx: AppCtx, parts: Parts, state: RwSignal<SubmitState>) {
    let token = ctx.token.get_value();
    let body = store::pending(&token).unwrap_or_else(|| {
        let body = SubmitBody {
            submission_id: store::new_submission_id(),
            read_to_end: ctx.read_to_end.get_untracked(),
            consent: true,
            held_ms: parts.held_ms,
            strokes: parts.strokes,
            signature_png_base64: parts.signature_png_base64,
            copy_chars: parts.copy_chars,
        };
        store::set_pending(&token, &body);
        body
    });
    send(ctx, body, state);
}

/// Sends the pending body again (the Retry button).
pub fn retry(ctx: AppCtx, state: RwSignal<SubmitState>) {
    match store::pending(&ctx.token.get_value()) {
        Some(body) => send(ctx, body, state),
        None => state.set(SubmitState::Idle),
    }
}

fn send(ctx: AppCtx, body: SubmitBody, state: RwSignal<SubmitState>) {
    if state.get_untracked() == SubmitState::Sending {
        return;
    }
    state.set(SubmitState::Sending);
    let token = ctx.token.get_value();
    let session = ctx.session.get_untracked();
    leptos::task::spawn_local(async move {
        let lang = ctx.lang.get_untracked();
        match api::post::<_, SubmitResult>(&token, "submit", &body, session.as_deref()).await {
            Ok(result) => {
                store::clear_pending(&token);
                state.set(SubmitState::Idle);
                ctx.step.set(Step::Done(result));
            }
            Err(e) if e.code() == Some("SESSION_REQUIRED") => {
                // Keep the body: after the SMS step the page offers to send it again.
                state.set(SubmitState::Idle);
                ctx.session_lost();
            }
            Err(e) if e.retryable() => state.set(SubmitState::Pending(e.text(lang))),
            Err(e) => {
                store::clear_pending(&token);
                if matches!(e.code(), Some("TASK_USED" | "TASK_EXPIRED" | "OTP_LOCKED")) {
                    ctx.step.set(Step::Closed(e.text(lang)));
                }
                state.set(SubmitState::Refused(e.text(lang)));
            }
        }
    });
}

/// "Submitting…", the refusal, or the network failure with its Retry button.
#[component]
pub fn SubmitStatus(state: RwSignal<SubmitState>) -> impl IntoView {
    let ctx = AppCtx::get();
    move || {
        match state.get() {
        SubmitState::Idle => ().into_any(),
        SubmitState::Sending => view! { <p class="muted" id="submitting">{ctx.t(T::Submitting)}</p> }.into_any(),
        SubmitState::Refused(text) => view! { <p class="error" role="alert">{text}</p> }.into_any(),
        SubmitState::Pending(text) => view! {
            <div class="pending" role="alert">
                <p class="error" id="submit-error">{text}</p>
                <button class="btn primary" id="retry" on:click=move |_| retry(ctx, state)>{ctx.t(T::Retry)}</button>
            </div>
        }.into_any(),
    }
    }
}

/// A submission from an earlier visit is still waiting for its acknowledgement.
#[component]
pub fn ResumeStep() -> impl IntoView {
    let ctx = AppCtx::get();
    let state = RwSignal::new(SubmitState::Pending(
        T::ResumeIntro.get(ctx.lang.get_untracked()).into(),
    ));
    view! {
        <section class="card step-resume">
            <h2>{ctx.t(T::StepSign)}</h2>
            <SubmitStatus state/>
        </section>
    }
}
