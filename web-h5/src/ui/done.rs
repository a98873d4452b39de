//! The last screen.

use leptos::prelude::*;

use super::AppCtx;
use crate::i18n::T;
use crate::model::Submitted as SubmitResult;

#[component]
#[allow(clippy::needless_pass_by_value)] // Leptos components take their props by value
pub fn DoneStep(result: SubmitResult) -> impl IntoView {
    let ctx = AppCtx::get();
    let when = if result.signed_at.is_empty() {
        String::new()
    } else {
        super::local_time(&result.signed_at)
    };
    view! {
        <section class="card step-done" id="done">
            <div class="done-mark" aria-hidden="true">"✓"</div>
            <h2>{ctx.t(T::DoneTitle)}</h2>
            <p>{ctx.t(T::DoneText)}</p>
            <Show when={let w = when.clone(); move || !w.is_empty()}>
                <p class="muted">{ctx.t(T::SignedAt)}" "{when.clone()}</p>
            </Show>
        </section>
    }
}
