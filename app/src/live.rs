//! Keeping pages current without a reload: every page that shows scores or emails keys its
//! data on [`use_change_stamp`], which changes only when the pipeline or a reviewer has
//! written something new, so pages refetch when there is news and not otherwise.

use leptos::prelude::*;
use std::time::Duration;

/// A counter that goes up every `period` once the page is hydrated (never on the server).
pub fn use_ticker(period: Duration) -> ReadSignal<u64> {
    let (tick, set_tick) = signal(0_u64);
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(move || set_tick.update(|t| *t += 1), period) {
            on_cleanup(move || handle.clear());
        }
    });
    tick
}

/// A counter that goes up each time the server reports new writes: the page listens to
/// `/api/v1/live` (server-sent events) once it is interactive. Always 0 on the server, so
/// the first render hydrates cleanly. The first message counts too: something may have been
/// written between the page's render and the moment it started listening.
pub fn use_change_stamp() -> ReadSignal<u64> {
    let (changes, set_changes) = signal(0_u64);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;
        let Ok(source) = web_sys::EventSource::new("/api/v1/live") else {
            return;
        };
        let on_change = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| {
            set_changes.update(|c| *c += 1);
        });
        let _ =
            source.add_event_listener_with_callback("change", on_change.as_ref().unchecked_ref());
        // The closure lives as long as the page listens.
        let on_change = send_wrapper::SendWrapper::new(on_change);
        let source = send_wrapper::SendWrapper::new(source);
        on_cleanup(move || {
            source.close();
            drop(on_change);
        });
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = set_changes;
    changes
}
