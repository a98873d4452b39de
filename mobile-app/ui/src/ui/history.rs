//! Signing history kept on this device, with search (title, type, patient, request id).

use leptos::prelude::*;

use super::{fmt_time, ipc, t};
use crate::model::HistoryEntry;

#[component]
pub fn History() -> impl IntoView {
    let query = RwSignal::new(String::new());
    let list = RwSignal::new(Vec::<HistoryEntry>::new());
    Effect::new(move |_| {
        let q = query.get();
        leptos::task::spawn_local(async move {
            if let Ok(v) =
                ipc::call::<_, Vec<HistoryEntry>>("history", &serde_json::json!({ "query": q }))
                    .await
            {
                list.set(v);
            }
        });
    });
    view! {
        <section class="card" id="screen-history">
            <h2>{t("签署记录", "History")}</h2>
            <label class="field"><span>{t("搜索（标题、类型、患者）", "Search (title, type, patient)")}</span>
                <input id="history-search" type="search" prop:value=move || query.get() on:input=move |ev| query.set(event_target_value(&ev))/></label>
            <p class="muted">{t("共", "Total")}" "<span id="history-count">{move || list.with(Vec::len)}</span></p>
            <ul class="history" id="history-list">
                {move || list.get().into_iter().take(200).map(|h| view! {
                    <li>
                        <strong>{h.title}</strong><br/>
                        <span class="meta">{h.doc_type.unwrap_or_default()}" · "{t("患者", "Patient")}" "{h.patient_id.unwrap_or_else(|| "—".into())}
                            " · "{h.documents}" "{t("份", "doc(s)")}" · "{if h.how == "batch" { t("批量", "batch")() } else { t("扫码", "scan")() }}</span><br/>
                        <span class="meta">{fmt_time(h.at)}" "<small class="mono">{h.request_id}</small></span>
                    </li>
                }).collect_view()}
            </ul>
        </section>
    }
}
