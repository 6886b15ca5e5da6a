//! Keeping pages current without a reload.

use leptos::prelude::*;
use std::time::Duration;

/// A counter that goes up every `period` once the page is hydrated (never on the server).
/// Resources keyed on it refetch in the background, so new scores and drafts appear by
/// themselves.
pub fn use_ticker(period: Duration) -> ReadSignal<u64> {
    let (tick, set_tick) = signal(0_u64);
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(move || set_tick.update(|t| *t += 1), period) {
            on_cleanup(move || handle.clear());
        }
    });
    tick
}
