//! Proxy details (授权人代签): relationship, name, ID number (checked here with MOD 11-2 before
//! sending; the server checks again), reason.

use leptos::prelude::*;

use super::{AppCtx, ErrorLine, api};
use crate::i18n::T;
use crate::model::{
    ProxyDetails, RELATIONSHIPS, relationship as parse_relationship, validate_id_number,
};

#[component]
pub fn ProxyStep() -> impl IntoView {
    let ctx = AppCtx::get();
    let relationship = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let id_number = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let id_error = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let check_id = move || {
        let lang = ctx.lang.get_untracked();
        let value = id_number.get_untracked();
        // The same check as the server's (cosign-proto), with its texts.
        let verdict = validate_id_number(value.trim())
            .err()
            .map(|e| lang.pick(e.message_zh(), e.message_en()).to_owned());
        id_error.set(verdict.clone());
        verdict.is_none()
    };

    let submit = move |_| {
        let lang = ctx.lang.get_untracked();
        let missing = if parse_relationship(&relationship.get_untracked()).is_none() {
            Some(T::NeedRelationship)
        } else if name.get_untracked().trim().is_empty() {
            Some(T::NeedName)
        } else if reason.get_untracked().trim().is_empty() {
            Some(T::NeedReason)
        } else {
            None
        };
        let id_ok = check_id();
        if let Some(t) = missing {
            error.set(Some(t.get(lang).into()));
            return;
        }
        if !id_ok || busy.get_untracked() {
            error.set(None);
            return;
        }
        error.set(None);
        busy.set(true);
        let Some(rel) = parse_relationship(&relationship.get_untracked()) else {
            return;
        };
        let body = ProxyDetails {
            relationship: rel,
            name: name.get_untracked().trim().to_owned(),
            id_number: id_number.get_untracked().trim().to_ascii_uppercase(),
            reason: reason.get_untracked().trim().to_owned(),
        };
        let token = ctx.token.get_value();
        let session = ctx.session.get_untracked();
        leptos::task::spawn_local(async move {
            match api::post_unit(&token, "proxy", &body, session.as_deref()).await {
                Ok(()) => ctx.step.set(ctx.after_proxy()),
                Err(e) if e.code() == Some("SESSION_REQUIRED") => ctx.session_lost(),
                Err(e) => error.set(Some(e.text(lang))),
            }
            busy.set(false);
        });
    };

    view! {
        <section class="card step-proxy">
            <h2>{ctx.t(T::StepProxy)}</h2>
            <p>{ctx.t(T::ProxyIntro)}</p>
            <label class="field">
                <span>{ctx.t(T::Relationship)}</span>
                <select id="proxy-relationship" on:change=move |ev| relationship.set(event_target_value(&ev))>
                    <option value="" selected=true disabled=true>{ctx.t(T::ChooseOne)}</option>
                    {RELATIONSHIPS.iter().map(|(wire, t)| view! {
                        <option value=*wire>{ctx.t(*t)}</option>
                    }).collect_view()}
                </select>
            </label>
            <label class="field">
                <span>{ctx.t(T::ProxyName)}</span>
                <input id="proxy-name" type="text" maxlength="32" autocomplete="name"
                    prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/>
            </label>
            <label class="field">
                <span>{ctx.t(T::IdNumber)}</span>
                <input id="proxy-id" type="text" maxlength="18" autocomplete="off"
                    prop:value=move || id_number.get()
                    on:input=move |ev| { id_number.set(event_target_value(&ev)); id_error.set(None); }
                    on:blur=move |_| { if !id_number.get_untracked().is_empty() { check_id(); } }/>
            </label>
            <ErrorLine text=id_error/>
            <label class="field">
                <span>{ctx.t(T::Reason)}</span>
                <input id="proxy-reason" type="text" maxlength="100" placeholder=ctx.t(T::ReasonHint)
                    prop:value=move || reason.get() on:input=move |ev| reason.set(event_target_value(&ev))/>
            </label>
            <ErrorLine text=error/>
            <button class="btn primary" id="proxy-next" disabled=move || busy.get() on:click=submit>
                {ctx.t(T::Next)}
            </button>
        </section>
    }
}
