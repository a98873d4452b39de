//! Handwritten copy (逐字抄录): one box per character of the sentence; the patient writes each
//! character on a large pad, and each is kept as strokes plus a transparent PNG.

use leptos::html::Canvas;
use leptos::prelude::*;

use super::pad::{Pad, PadTools, png_base64};
use super::submit::{Parts, SubmitState, SubmitStatus, submit};
use super::{AppCtx, ErrorLine};
use crate::i18n::T;
use crate::model::{CopyChar, Stroke};

#[component]
pub fn CopyStep(consent: RwSignal<bool>, state: RwSignal<SubmitState>) -> impl IntoView {
    let ctx = AppCtx::get();
    let chars = StoredValue::new(crate::model::copy_chars(&ctx.task_now()));
    let count = chars.with_value(Vec::len);
    let current = RwSignal::new(0usize);
    let saved = RwSignal::new(vec![None::<CopyChar>; count]);
    let strokes = RwSignal::new(Vec::<Stroke>::new());
    let canvas = NodeRef::<Canvas>::new();
    let t0 = StoredValue::new(None::<f64>);
    let error = RwSignal::new(None::<String>);
    let locked = Signal::derive(move || state.get().locked());

    let save_current = move || {
        let i = current.get_untracked();
        let s = strokes.get_untracked();
        let entry = if s.is_empty() {
            None
        } else {
            let ch = chars.with_value(|c| c.get(i).cloned()).unwrap_or_default();
            png_base64(canvas).map(|png| CopyChar {
                ch,
                strokes: s,
                png_base64: Some(png),
            })
        };
        saved.update(|v| {
            if let Some(slot) = v.get_mut(i) {
                *slot = entry;
            }
        });
    };
    let select = move |j: usize| {
        if j >= count || locked.get_untracked() {
            return;
        }
        save_current();
        current.set(j);
        strokes.set(saved.with_untracked(|v| {
            v.get(j)
                .cloned()
                .flatten()
                .map(|c| c.strokes)
                .unwrap_or_default()
        }));
    };
    let send = move |_| {
        let lang = ctx.lang.get_untracked();
        if !consent.get_untracked() {
            error.set(Some(T::NeedConsent.get(lang).into()));
            return;
        }
        save_current();
        if let Some(missing) = saved.with_untracked(|v| v.iter().position(Option::is_none)) {
            error.set(Some(T::CopyMissing.get(lang).into()));
            select(missing);
            return;
        }
        error.set(None);
        let copy_chars = saved.get_untracked().into_iter().flatten().collect();
        submit(
            ctx,
            Parts {
                copy_chars,
                ..Parts::default()
            },
            state,
        );
    };

    let current_char =
        move || chars.with_value(|c| c.get(current.get()).cloned().unwrap_or_default());
    view! {
        <p>{ctx.t(T::CopyIntro)}</p>
        <p class="copy-text" id="copy-text">{chars.with_value(|c| c.concat())}</p>
        <div class="copy-boxes" id="copy-boxes">
            {(0..count).map(|i| {
                let ch = chars.with_value(|c| c.get(i).cloned().unwrap_or_default());
                view! {
                    <button class="copy-box" class:current=move || current.get() == i
                        class:written=move || saved.with(|v| v.get(i).is_some_and(Option::is_some))
                        on:click=move |_| select(i)>
                        {move || match saved.with(|v| v.get(i).cloned().flatten()) {
                            Some(c) => view! { <img src=format!("data:image/png;base64,{}", c.png_base64.unwrap_or_default()) alt=c.ch/> }.into_any(),
                            None => view! { <span>{ch.clone()}</span> }.into_any(),
                        }}
                    </button>
                }
            }).collect_view()}
        </div>
        <p class="copy-current">{ctx.t(T::CopyCurrent)}<strong id="copy-current">{current_char}</strong>
            <span class="muted">" "{move || current.get() + 1}" / "{count}</span></p>
        <Pad strokes canvas class="copy-pad" locked t0/>
        <PadTools strokes locked/>
        <div class="row">
            <button class="btn secondary" id="copy-prev" disabled=move || current.get() == 0 || locked.get()
                on:click=move |_| select(current.get_untracked().saturating_sub(1))>{ctx.t(T::CopyPrevChar)}</button>
            <button class="btn secondary" id="copy-next" disabled=move || { current.get() + 1 >= count || locked.get() }
                on:click=move |_| select(current.get_untracked() + 1)>{ctx.t(T::CopyNextChar)}</button>
        </div>
        <ErrorLine text=error/>
        <button class="btn primary" id="submit" disabled=move || locked.get() on:click=send>{ctx.t(T::Submit)}</button>
        <SubmitStatus state/>
    }
}
