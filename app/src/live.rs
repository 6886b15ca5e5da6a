//! Keeping pages current without a reload, in islands mode.
//!
//! Pages are rendered on the server and stay plain HTML; only the interactive parts are
//! islands (see ARCHITECTURE.md, "Web serving"). The parts of a page that the pipeline or
//! a reviewer can change are marked `data-live` with an `id`. The [`LiveUpdates`] island,
//! once per page, listens to `/api/v1/live` (server-sent events) and, on news, fetches the
//! page again and puts in place each region whose server HTML changed — except where the
//! user is working (typing, a changed field, a form on its way), so a refresh never throws
//! away their input. Focus and open `<details>` are kept across a swap, and islands in a
//! new region are hydrated again. Islands ask for the same refresh after their own
//! successful actions ([`refresh_now`]) and say what happened in the page's status line
//! ([`announce`]), which lives outside the regions.

use leptos::prelude::*;

/// The page's live updates, and the marker the browser tests wait for
/// (`body[data-hydrated]`): placed after the page's other islands, so by the time it runs
/// they are interactive too.
#[island]
pub fn LiveUpdates() -> impl IntoView {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| browser::start());
}

/// Asks the page's [`LiveUpdates`] to fetch the live regions now (after an island's own
/// action succeeded); a fetch already on its way is not used. Does nothing on the server.
pub fn refresh_now() {
    #[cfg(feature = "hydrate")]
    browser::refresh_now();
}

/// Puts `message` in the page's status line (`#page-status`, outside the live regions, so
/// it stays when a region is rebuilt). Does nothing on the server.
pub fn announce(message: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(status) = document().get_element_by_id("page-status") {
        status.set_text_content(Some(message));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = message;
}

/// A form is on its way: its region is not rebuilt until the answer came.
#[cfg(feature = "hydrate")]
pub fn form_sent(form: &web_sys::Element) {
    let _ = form.set_attribute("data-pending", "");
}

/// A form's answer came; when it succeeded, what the form holds is what the server has, so
/// its fields count as unchanged (its region may be rebuilt).
#[cfg(feature = "hydrate")]
pub fn form_answered(form: &web_sys::Element, succeeded: bool) {
    let _ = form.remove_attribute("data-pending");
    if succeeded {
        browser::commit(form);
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use leptos::prelude::*;
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{Document, DomParser, Element, HtmlElement, Response, SupportedType};

    thread_local! {
        /// A refresh is running; another was asked for meanwhile.
        static RUNNING: Cell<bool> = const { Cell::new(false) };
        static AGAIN: Cell<bool> = const { Cell::new(false) };
        /// Bumped by [`refresh_now`]: a fetch that started before is not used.
        static GENERATION: Cell<u64> = const { Cell::new(0) };
        /// Each region's server HTML as last put in place (what the DOM holds besides is
        /// the islands' own doing: a message, a field error).
        static SHOWN: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
    }

    pub fn refresh_now() {
        GENERATION.set(GENERATION.get() + 1);
        request();
    }

    /// Marks a form's current values as its defaults.
    pub fn commit(form: &Element) {
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
        // What the server sent for each region, before any island showed anything in it.
        let regions = document()
            .document_element()
            .map(|root| elements(&root, "[data-live]"))
            .unwrap_or_default();
        SHOWN.with(|shown| {
            let mut shown = shown.borrow_mut();
            for region in &regions {
                shown.insert(region.id(), region.inner_html());
            }
        });
        // Pages without live parts (sign-in, forms) do not listen.
        if !regions.is_empty() {
            listen();
        }
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    }

    fn listen() {
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

    /// Fetches this page again and puts in place each live region whose server HTML
    /// changed, unless the user is working in it (then it is tried again next time).
    async fn refresh() -> Result<(), JsValue> {
        let generation = GENERATION.get();
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
        // Asked for before an action was answered: the next fetch shows its effect.
        if GENERATION.get() != generation {
            return Ok(());
        }
        let fresh: Document =
            DomParser::new()?.parse_from_string(&html, SupportedType::TextHtml)?;
        let regions = document().query_selector_all("[data-live]")?;
        for i in 0..regions.length() {
            let Some(region) = regions.item(i).and_then(|n| n.dyn_into::<Element>().ok()) else {
                continue;
            };
            let id = region.id();
            let Some(new) = fresh.get_element_by_id(&id) else {
                continue;
            };
            let new = new.inner_html();
            let shown = SHOWN.with(|s| s.borrow().get(&id).cloned());
            if shown.as_ref() == Some(&new) {
                continue;
            }
            if in_use(&region) {
                continue;
            }
            swap(&region, &new);
            SHOWN.with(|s| s.borrow_mut().insert(id, new));
        }
        Ok(())
    }

    /// Puts `html` in `region`, keeping the focus (by position) and which `<details>` are
    /// open, and hydrates the islands it holds (a rebuilt review form).
    fn swap(region: &Element, html: &str) {
        let focus = document()
            .active_element()
            .filter(|active| region.contains(Some(active)))
            .map(|active| path_to(region, &active));
        let open: Vec<bool> = elements(region, "details")
            .iter()
            .map(|d| d.has_attribute("open"))
            .collect();
        region.set_inner_html(html);
        for (details, open) in elements(region, "details").iter().zip(open) {
            let _ = details.toggle_attribute_with_force("open", open);
        }
        if let Some(element) = focus
            .and_then(|path| follow(region, &path))
            .and_then(|e| e.dyn_into::<HtmlElement>().ok())
        {
            let _ = element.focus();
        }
        hydrate_islands_in(region);
    }

    fn elements(root: &Element, selector: &str) -> Vec<Element> {
        let Ok(found) = root.query_selector_all(selector) else {
            return Vec::new();
        };
        (0..found.length())
            .filter_map(|i| found.item(i).and_then(|n| n.dyn_into::<Element>().ok()))
            .collect()
    }

    /// The child positions leading from `root` to `element`.
    fn path_to(root: &Element, element: &Element) -> Vec<u32> {
        let mut path = Vec::new();
        let mut at = element.clone();
        while &at != root {
            let Some(parent) = at.parent_element() else {
                break;
            };
            let siblings = parent.children();
            let index = (0..siblings.length())
                .find(|&i| siblings.item(i).as_ref() == Some(&at))
                .unwrap_or(0);
            path.push(index);
            at = parent;
        }
        path.reverse();
        path
    }

    fn follow(root: &Element, path: &[u32]) -> Option<Element> {
        path.iter()
            .try_fold(root.clone(), |at, &i| at.children().item(i))
    }

    /// New HTML may hold islands: they are made interactive the way the page's own were,
    /// through the island loader's `__hydrateIsland`. One that fails is logged, the others
    /// still hydrate.
    fn hydrate_islands_in(region: &Element) {
        let islands = elements(region, "leptos-island");
        if islands.is_empty() {
            return;
        }
        let Ok(hydrate) = js_sys::Reflect::get(&window(), &"__hydrateIsland".into())
            .and_then(|f| f.dyn_into::<js_sys::Function>())
        else {
            return;
        };
        for island in islands {
            let name = island.get_attribute("data-component").unwrap_or_default();
            if let Err(error) = hydrate.call2(&JsValue::NULL, &island, &name.into()) {
                web_sys::console::warn_2(&"engage: an island did not hydrate".into(), &error);
            }
        }
    }

    /// The user is working in this region: a text field in it has the focus, a field
    /// changed from what the page came with, or a form in it is on its way.
    fn in_use(region: &Element) -> bool {
        if let Some(active) = document().active_element()
            && region.contains(Some(&active))
            && active
                .matches("input:not([type=submit]):not([type=button]), textarea, select")
                .unwrap_or(false)
        {
            return true;
        }
        if region
            .query_selector("form[data-pending]")
            .ok()
            .flatten()
            .is_some()
        {
            return true;
        }
        elements(region, "input, textarea, select")
            .iter()
            .any(changed)
    }

    fn changed(field: &Element) -> bool {
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
