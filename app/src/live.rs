//! Keeping pages current without a reload, in islands mode.
//!
//! Pages are rendered on the server and stay plain HTML; only the interactive parts are
//! islands (see ARCHITECTURE.md, "The browser bundle"). The parts of a page that the
//! pipeline or a reviewer can change are marked `data-live` with an `id`. The
//! [`LiveUpdates`] island, once per page, listens to `/api/v1/live` (server-sent events)
//! and, on news, fetches the page again and puts each region's new HTML in place — except
//! where the user is typing or has changed a field, so a refresh never throws away their
//! input. Islands ask for the same refresh after their own successful actions
//! ([`refresh_now`]); a region that holds islands (a rebuilt review form) has them
//! hydrated again.

use leptos::prelude::*;

/// The page's live updates, and the marker the browser tests wait for
/// (`body[data-hydrated]`): placed after the page's other islands, so by the time it runs
/// they are interactive too.
#[island]
pub fn LiveUpdates() -> impl IntoView {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| browser::start());
}

/// Asks the page's [`LiveUpdates`] to replace every live region now (after an island's own
/// action succeeded). Does nothing on the server.
pub fn refresh_now() {
    #[cfg(feature = "hydrate")]
    browser::refresh_now();
}

#[cfg(feature = "hydrate")]
mod browser {
    use leptos::prelude::*;
    use std::cell::Cell;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{Document, DomParser, Element, Response, SupportedType};

    /// The window event an island sends after its own action succeeded.
    pub const REFRESH_EVENT: &str = "engage:refresh";

    thread_local! {
        /// A refresh is running; another was asked for meanwhile.
        static RUNNING: Cell<bool> = const { Cell::new(false) };
        static AGAIN: Cell<bool> = const { Cell::new(false) };
    }

    /// The form just sent now holds what the server has: its fields count as unchanged
    /// (so its region may be rebuilt), then every live region is fetched again.
    pub fn refresh_now() {
        if let Some(active) = document().active_element() {
            if let Ok(Some(form)) = active.closest("form") {
                commit(&form);
            }
            if let Some(active) = active.dyn_ref::<web_sys::HtmlElement>() {
                let _ = active.blur();
            }
        }
        if let Ok(event) = web_sys::Event::new(REFRESH_EVENT) {
            let _ = window().dispatch_event(&event);
        }
    }

    fn commit(form: &Element) {
        let Ok(fields) = form.query_selector_all("input, textarea, select") else {
            return;
        };
        for field in (0..fields.length()).filter_map(|i| fields.item(i)) {
            if let Some(input) = field.dyn_ref::<web_sys::HtmlInputElement>() {
                input.set_default_checked(input.checked());
                input.set_default_value(&input.value());
            } else if let Some(text) = field.dyn_ref::<web_sys::HtmlTextAreaElement>() {
                let _ = text.set_default_value(&text.value());
            } else if let Some(select) = field.dyn_ref::<web_sys::HtmlSelectElement>() {
                let options = select.options();
                for option in (0..options.length()).filter_map(|i| options.item(i)) {
                    if let Ok(option) = option.dyn_into::<web_sys::HtmlOptionElement>() {
                        option.set_default_selected(option.selected());
                    }
                }
            }
        }
    }

    /// Starts listening (once per page) and marks the page interactive.
    pub fn start() {
        // Pages without live parts (sign-in, forms) do not listen.
        if document()
            .query_selector("[data-live]")
            .ok()
            .flatten()
            .is_some()
        {
            listen();
        }
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    }

    fn listen() {
        let window = window();
        let on_refresh = Closure::<dyn FnMut()>::new(request);
        let _ = window
            .add_event_listener_with_callback(REFRESH_EVENT, on_refresh.as_ref().unchecked_ref());
        on_refresh.forget();
        let Ok(source) = web_sys::EventSource::new("/api/v1/live") else {
            return;
        };
        // The first message counts too: something may have been written between the
        // page's render and the moment it started listening.
        let on_change = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| request());
        let _ =
            source.add_event_listener_with_callback("change", on_change.as_ref().unchecked_ref());
        // Both live as long as the page.
        on_change.forget();
        std::mem::forget(source);
    }

    /// Runs a refresh, or notes that one more is wanted when one is running (bursts of
    /// news cost one fetch at a time).
    fn request() {
        if RUNNING.replace(true) {
            AGAIN.set(true);
            return;
        }
        wasm_bindgen_futures::spawn_local(async move {
            loop {
                if let Err(error) = refresh().await {
                    web_sys::console::warn_2(&"engage: live refresh failed".into(), &error);
                }
                if !AGAIN.replace(false) {
                    break;
                }
            }
            RUNNING.set(false);
        });
    }

    /// Fetches this page again and replaces each live region whose HTML changed.
    async fn refresh() -> Result<(), JsValue> {
        let window = window();
        let location = window.location();
        let url = format!("{}{}", location.pathname()?, location.search()?);
        let init = web_sys::RequestInit::new();
        init.set_credentials(web_sys::RequestCredentials::SameOrigin);
        let response: Response = JsFuture::from(window.fetch_with_str_and_init(&url, &init))
            .await?
            .dyn_into()?;
        // Signed out meanwhile, or the page is gone: leave what is shown.
        if !response.ok() || response.redirected() {
            return Ok(());
        }
        let html = JsFuture::from(response.text()?)
            .await?
            .as_string()
            .unwrap_or_default();
        let fresh: Document =
            DomParser::new()?.parse_from_string(&html, SupportedType::TextHtml)?;
        let regions = document().query_selector_all("[data-live]")?;
        for i in 0..regions.length() {
            let Some(region) = regions.item(i).and_then(|n| n.dyn_into::<Element>().ok()) else {
                continue;
            };
            let Some(new) = fresh.get_element_by_id(&region.id()) else {
                continue;
            };
            if in_use(&region) {
                continue;
            }
            let html = new.inner_html();
            if html != region.inner_html() {
                region.set_inner_html(&html);
                hydrate_islands_in(&region)?;
            }
        }
        Ok(())
    }

    /// New HTML may hold islands (a rebuilt review form): they are made interactive the
    /// way the page's own were, through the loader's `__hydrateIsland`.
    fn hydrate_islands_in(region: &Element) -> Result<(), JsValue> {
        let islands = region.query_selector_all("leptos-island")?;
        if islands.length() == 0 {
            return Ok(());
        }
        let hydrate: js_sys::Function =
            js_sys::Reflect::get(&window(), &"__hydrateIsland".into())?.dyn_into()?;
        for i in 0..islands.length() {
            if let Some(island) = islands.item(i).and_then(|n| n.dyn_into::<Element>().ok()) {
                let name = island.get_attribute("data-component").unwrap_or_default();
                hydrate.call2(&JsValue::NULL, &island, &name.into())?;
            }
        }
        Ok(())
    }

    /// The user is working in this region: a field in it has the focus, or changed from
    /// what the page came with.
    fn in_use(region: &Element) -> bool {
        if let Some(active) = document().active_element()
            && region.contains(Some(&active))
            && active
                .matches("input:not([type=submit]):not([type=button]), textarea, select")
                .unwrap_or(false)
        {
            return true;
        }
        let Ok(fields) = region.query_selector_all("input, textarea, select") else {
            return false;
        };
        (0..fields.length())
            .filter_map(|i| fields.item(i))
            .any(|field| changed(&field))
    }

    fn changed(field: &web_sys::Node) -> bool {
        if let Some(input) = field.dyn_ref::<web_sys::HtmlInputElement>() {
            return match input.type_().as_str() {
                "checkbox" | "radio" => input.checked() != input.default_checked(),
                "hidden" | "submit" | "button" => false,
                _ => input.value() != input.default_value(),
            };
        }
        if let Some(text) = field.dyn_ref::<web_sys::HtmlTextAreaElement>() {
            return text
                .default_value()
                .is_ok_and(|start| text.value() != start);
        }
        if let Some(select) = field.dyn_ref::<web_sys::HtmlSelectElement>() {
            let options = select.options();
            return (0..options.length())
                .filter_map(|i| options.item(i))
                .filter_map(|o| o.dyn_into::<web_sys::HtmlOptionElement>().ok())
                .any(|o| o.selected() != o.default_selected());
        }
        false
    }
}
