//! Reading: the server-rendered page images in a scroll box; reaching the bottom (with every
//! image loaded) unlocks "next" when the task requires reading to the end.

use leptos::html::Div;
use leptos::prelude::*;

use super::{AppCtx, ErrorLine, api};
use crate::i18n::T;

/// How close to the bottom counts as the end (CSS px).
const END_SLACK: i32 = 24;

#[component]
pub fn ReadStep() -> impl IntoView {
    let ctx = AppCtx::get();
    let task = ctx.task_now();
    let count = task.page_count;
    let required = task.require_read_to_end;
    // One signal per page, so a page arriving re-renders only its own slot.
    let slots: Vec<RwSignal<Option<String>>> = (0..count).map(|_| RwSignal::new(None)).collect();
    let slots = StoredValue::new(slots);
    let slot = move |n: u32| slots.with_value(|s| s.get(n as usize - 1).copied());
    let loaded = RwSignal::new(vec![false; count as usize]);
    let progress = RwSignal::new(0u32);
    let error = RwSignal::new(None::<String>);
    let scroller = NodeRef::<Div>::new();

    let check = move || {
        let Some(el) = scroller.get_untracked() else {
            return;
        };
        let range = el.scroll_height() - el.client_height();
        let top = el.scroll_top();
        let pct = if range <= 0 {
            100
        } else {
            (top * 100 / range).clamp(0, 100)
        };
        progress.set(pct.unsigned_abs());
        if loaded.with_untracked(|l| l.iter().all(|x| *x))
            && (range <= 0 || top + END_SLACK >= range)
        {
            progress.set(100);
            ctx.read_to_end.set(true);
        }
    };

    let fetch_pages = move || {
        error.set(None);
        let token = ctx.token.get_value();
        let session = ctx.session.get_untracked().unwrap_or_default();
        leptos::task::spawn_local(async move {
            for n in 1..=count {
                let Some(page) = slot(n) else { continue };
                if page.with_untracked(Option::is_some) {
                    continue;
                }
                match api::page_image(&token, n, &session).await {
                    Ok(url) => page.set(Some(url)),
                    Err(e) if e.code() == Some("SESSION_REQUIRED") => {
                        ctx.session_lost();
                        return;
                    }
                    Err(e) => {
                        error.set(Some(format!(
                            "{} {}",
                            T::PageLoadFailed.get(ctx.lang.get_untracked()),
                            e.text(ctx.lang.get_untracked())
                        )));
                        return;
                    }
                }
            }
        });
    };
    fetch_pages();
    on_cleanup(move || {
        slots.with_value(|s| {
            for url in s.iter().filter_map(|p| p.get_untracked()) {
                let _ = web_sys::Url::revoke_object_url(&url);
            }
        });
    });

    let can_go = move || !required || ctx.read_to_end.get();
    view! {
        <section class="card step-read">
            <h2>{ctx.t(T::StepRead)}</h2>
            <p>{ctx.t(T::ReadIntro)}</p>
            <div class="doc" id="doc" node_ref=scroller on:scroll=move |_| check()>
                {(1..=count).map(|n| view! {
                    <div class="doc-page">
                        {move || match slot(n).and_then(|p| p.get()) {
                            Some(url) => view! {
                                <img src=url alt=move || format!("{} {n}", T::PageOf.get(ctx.lang.get()))
                                    on:load=move |_| {
                                    loaded.update(|l| if let Some(x) = l.get_mut(n as usize - 1) { *x = true });
                                    check();
                                }/>
                            }.into_any(),
                            None => view! { <div class="page-placeholder">{n}" / "{count}</div> }.into_any(),
                        }}
                    </div>
                }).collect_view()}
            </div>
            <div class="progress" aria-label=ctx.t(T::ReadProgress)>
                <div class="bar" style=move || format!("width:{}%", progress.get())></div>
            </div>
            <p class="muted" id="read-progress">{ctx.t(T::ReadProgress)}" "{move || progress.get()}"%"</p>
            <ErrorLine text=error/>
            <Show when=move || error.get().is_some()>
                <button class="btn secondary" on:click=move |_| fetch_pages()>{ctx.t(T::Retry)}</button>
            </Show>
            <p class="hint" id="read-hint">
                {move || if ctx.read_to_end.get() { T::ReadDone.get(ctx.lang.get()) } else if required { T::ReadToEnd.get(ctx.lang.get()) } else { "" }}
            </p>
            <button class="btn primary" id="read-next" disabled=move || !can_go()
                on:click=move |_| ctx.step.set(ctx.after_reading())>{ctx.t(T::Next)}</button>
        </section>
    }
}
