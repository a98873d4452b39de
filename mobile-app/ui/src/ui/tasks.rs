//! The task list (pushed over the phone's WebSocket; refresh button or pull down too) and batch signing:
//! select all, one PIN, a progress bar, a result per request, retry the failures.

use cosign_proto::v1::cosign::PhoneTask;
use leptos::prelude::*;

use super::{Ctx, ErrorLine, PinInput, Screen, err_text, fmt_clock, fmt_time, ipc, t};
use crate::model::{BatchItem, UiError, badge, failed_ids, signed_before, state_zh};

/// How far the list must be pulled down (CSS pixels) to refresh it.
const PULL_TO_REFRESH_PX: i32 = 70;

#[component]
pub fn TaskList() -> impl IntoView {
    let ctx = Ctx::get();
    // Pull to refresh: a drag down that starts while the list is scrolled to its top. Fingers
    // come as touch events (they go on while the browser handles the overscroll, where pointer
    // events are cancelled), mouse and pen as pointer events.
    let pull_from = StoredValue::new(None::<i32>);
    let pulled = RwSignal::new(0i32);
    let start = move |target: web_sys::Element, y: i32| {
        let at_top = target
            .closest(".pane-list, .pane-main")
            .ok()
            .flatten()
            .is_none_or(|pane| pane.scroll_top() <= 0);
        if at_top && window().scroll_y().unwrap_or(0.0) <= 0.0 {
            pull_from.set_value(Some(y));
        }
    };
    let moved = move |y: i32| {
        if let Some(y0) = pull_from.get_value() {
            pulled.set((y - y0).max(0));
        }
    };
    let end = move || {
        if pulled.get_untracked() >= PULL_TO_REFRESH_PX {
            ctx.refresh_tasks();
        }
        pull_from.set_value(None);
        pulled.set(0);
    };
    let not_touch = |ev: &leptos::ev::PointerEvent| ev.pointer_type() != "touch";
    let first_y = |ev: &leptos::ev::TouchEvent| ev.touches().get(0).map(|t| t.client_y());
    let mine = move || -> Vec<String> {
        ctx.tasks
            .get()
            .iter()
            .filter(|t| t.my_turn)
            .map(|t| t.request.request_id.clone())
            .collect()
    };
    let all_selected = move || {
        let m = mine();
        !m.is_empty() && ctx.selected.with(|s| m.iter().all(|id| s.contains(id)))
    };
    let toggle_all = move |_| {
        if all_selected() {
            ctx.selected.set(Vec::new());
        } else {
            ctx.selected.set(mine());
        }
    };
    view! {
        <section class="card" id="screen-tasks"
            on:pointerdown=move |ev| if not_touch(&ev) {
                // Keep the drag's moves when the pointer leaves the list.
                let target: web_sys::Element = event_target(&ev);
                let _ = target.set_pointer_capture(ev.pointer_id());
                start(target, ev.client_y());
            }
            on:pointermove=move |ev| if not_touch(&ev) { moved(ev.client_y()) }
            on:pointerup=move |ev| if not_touch(&ev) { end() }
            on:pointerleave=move |ev| if not_touch(&ev) { end() }
            on:touchstart=move |ev| if let Some(y) = first_y(&ev) { start(event_target(&ev), y) }
            on:touchmove=move |ev| if let Some(y) = first_y(&ev) { moved(y) }
            on:touchend=move |_| end()
            on:touchcancel=move |_| end()>
            {move || (pulled.get() > 0).then(|| view! {
                <p class="pull" id="pull-hint">
                    {move || if pulled.get() >= PULL_TO_REFRESH_PX { t("松开刷新", "Release to refresh")() } else { t("下拉刷新", "Pull to refresh")() }}
                </p>
            })}
            <div class="list-head">
                <h2>{t("待签任务", "Pending tasks")}" "<span id="task-count">{move || badge(&ctx.tasks.get())}</span></h2>
                <button class="btn small" id="refresh" on:click=move |_| ctx.refresh_tasks()>{t("刷新", "Refresh")}</button>
            </div>
            <div class="row">
                <label class="check big-check">
                    <input type="checkbox" id="select-all" prop:checked=all_selected on:change=toggle_all/>
                    {t("全选", "Select all")}
                </label>
                <button class="btn primary" id="batch-start"
                    disabled=move || ctx.selected.with(Vec::is_empty)
                    on:click=move |_| { ctx.progress.set(None); ctx.batch_results.set(None); ctx.screen.set(Screen::Batch); }>
                    {t("批量签署", "Batch sign")}" ("{move || ctx.selected.with(Vec::len)}")"
                </button>
            </div>
            {move || ctx.refreshed_at.get().map(|at| view! {
                <p class="muted small" id="refreshed-at">{t("更新于 ", "Updated ")}{fmt_clock(at)}</p>
            })}
            <ul class="tasks" id="task-list">
                {move || {
                    let list = ctx.tasks.get();
                    if list.is_empty() {
                        return view! { <li class="muted" id="no-tasks">{t("暂无待签任务", "No pending tasks")}</li> }.into_any();
                    }
                    list.into_iter().map(|task| view! { <TaskRow task/> }).collect_view().into_any()
                }}
            </ul>
        </section>
    }
}

#[component]
fn TaskRow(task: PhoneTask) -> impl IntoView {
    let ctx = Ctx::get();
    let id = task.request.request_id.clone();
    let id2 = id.clone();
    let checked = move || ctx.selected.with(|s| s.contains(&id));
    let toggle = move |_| {
        let id = id2.clone();
        ctx.selected.update(|s| {
            if let Some(i) = s.iter().position(|x| *x == id) {
                s.remove(i);
            } else {
                s.push(id);
            }
        });
    };
    let before = signed_before(&task.request);
    let r = task.request;
    view! {
        <li class="task-item" data-id=r.request_id.clone()>
            <label class="check">
                {task.my_turn.then(|| view! { <input type="checkbox" class="task-check" prop:checked=checked on:change=toggle/> })}
                <span class="task-body">
                    <strong>{r.title.clone()}</strong>
                    <span class="meta">
                        {r.doc_type.clone().unwrap_or_default()}" · "
                        {t("患者", "Patient")}" "{r.patient_id.clone().unwrap_or_else(|| "—".into())}" · "
                        {r.department.clone().unwrap_or_default()}
                    </span>
                    <span class="meta">
                        {if task.my_turn { t("轮到我签", "My turn")() } else { t("等待他人先签", "Waiting for others")() }}
                        " · "{state_zh(&r.status)}" · "{t("截止", "Due")}" "{fmt_time(r.expires_at)}
                    </span>
                    {(!before.is_empty()).then(|| view! { <span class="meta">{t("已签：", "Signed by: ")}{before.join("、")}</span> })}
                </span>
            </label>
        </li>
    }
}

#[component]
pub fn Batch() -> impl IntoView {
    let ctx = Ctx::get();
    let pin = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<UiError>);
    let results = ctx.batch_results;
    let titles = move |id: &str| {
        ctx.tasks
            .with_untracked(|ts| {
                ts.iter()
                    .find(|t| t.request.request_id == id)
                    .map(|t| t.request.title.clone())
            })
            .unwrap_or_default()
    };
    let run = move |_| {
        if busy.get_untracked() || pin.get_untracked().is_empty() {
            return;
        }
        busy.set(true);
        error.set(None);
        results.set(None);
        let ids = ctx.selected.get_untracked();
        ctx.progress.set(Some(crate::model::Progress {
            done: 0,
            total: ids.len(),
        }));
        let args = serde_json::json!({ "requestIds": ids, "pin": pin.get_untracked() });
        pin.set(String::new());
        leptos::task::spawn_local(async move {
            match ipc::call::<_, Vec<BatchItem>>("sign_batch", &args).await {
                Ok(items) => {
                    ctx.selected.set(failed_ids(&items));
                    results.set(Some(items));
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
            ctx.refresh_tasks();
        });
    };
    view! {
        <section class="card" id="screen-batch">
            <h2>{t("批量签署", "Batch signing")}</h2>
            <p>{t("已选择", "Selected")}" "<strong id="batch-count">{move || ctx.selected.with(Vec::len)}</strong>" "{t("项，输入一次 PIN 码全部签署。", "requests, one PIN for all.")}</p>
            <ul class="compact">
                {move || ctx.selected.get().into_iter().take(100).map(|id| view! { <li>{titles(&id)}" "<small class="mono">{id}</small></li> }).collect_view()}
            </ul>
            {move || (!ctx.selected.with(Vec::is_empty) && !busy.get()).then(|| view! {
                <PinInput value=pin id="batch-pin" zh="PIN 码" en="PIN"/>
                <button class="btn primary big" id="batch-sign" on:click=run>
                    {move || if results.with(Option::is_some) { t("重试失败项", "Retry failed")() } else { t("确认签署", "Sign")() }}
                </button>
            })}
            {move || ctx.progress.get().map(|p| view! {
                <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=p.percent().to_string() id="batch-progress">
                    <div class="bar" style=format!("width:{}%", p.percent())></div>
                    <span>{p.done}" / "{p.total}</span>
                </div>
            })}
            <ErrorLine error/>
            {move || (ctx.queued.get() > 0).then(|| view! {
                <p class="notice" id="batch-queued" role="status">
                    {t("网络恢复后将自动签署未成功的 ", "When the connection is back, the ")}<strong>{ctx.queued.get()}</strong>
                    {t(" 项（5 分钟内有效；PIN 码只保存在本机内存中）。也可稍后手动重试。", " unsent requests are signed automatically (within 5 minutes; the PIN is kept in memory only). You can also retry by hand.")}
                </p>
            })}
            {move || results.get().map(|items| {
                let ok = items.iter().filter(|i| i.ok).count();
                let bad = items.len() - ok;
                view! {
                    <p id="batch-summary" class=if bad == 0 { "ok" } else { "error" }>
                        {t("成功", "Signed")}" "<span id="batch-ok">{ok}</span>" · "{t("失败", "Failed")}" "<span id="batch-failed">{bad}</span>
                        {(bad > 0).then(|| t("（失败项未签署，可重试）", " (failed ones were not signed; retry)")())}
                    </p>
                    <ul class="results" id="batch-results">
                        {items.into_iter().map(|i| {
                            let id = i.request_id.clone();
                            // Unreachable server: the shell could not read the title; the list has it.
                            let title = if i.title.is_empty() { titles(&i.request_id) } else { i.title };
                            view! {
                                <li class=if i.ok { "ok" } else { "error" } data-id=id>
                                    {if i.ok { "✓ " } else { "✗ " }}{title}" "<small class="mono">{i.request_id}</small>
                                    {i.error.map(|e| view! { <span class="why">{err_text(&e)}</span> })}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }
            })}
            <button class="btn" id="batch-back" on:click=move |_| ctx.screen.set(Screen::Tasks)>{t("返回列表", "Back to the list")}</button>
        </section>
    }
}
