//! Keeping pages current without a reload: every page that shows scores or emails keys its
//! data on [`use_change_stamp`], which changes only when the pipeline or a reviewer has
//! written something new, so pages refetch when there is news and not otherwise.

use crate::error::AppError;
use leptos::prelude::*;
use std::time::Duration;

/// A number that grows whenever a score, a draft or a review step is written.
#[server]
pub async fn change_stamp() -> Result<u64, AppError> {
    let (service, _) = crate::service::service_for_user()?;
    Ok(service.change_stamp().await?)
}

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

/// A counter that goes up each time the server reports new writes (checked every two
/// seconds in the browser, and once right after the page becomes interactive; always 0 on
/// the server, so the first render hydrates cleanly).
pub fn use_change_stamp() -> ReadSignal<u64> {
    let tick = use_ticker(Duration::from_secs(2));
    let (changes, set_changes) = signal(0_u64);
    let last_seen = StoredValue::new(None::<u64>);
    Effect::new(move |_| {
        if tick.get() == 0 {
            return;
        }
        leptos::task::spawn_local(async move {
            if let Ok(stamp) = change_stamp().await {
                // The first answer refreshes too: something may have been written between
                // the page's render and this first look.
                let previous = last_seen.get_value();
                last_seen.set_value(Some(stamp));
                if previous != Some(stamp) {
                    set_changes.update(|c| *c += 1);
                }
            }
        });
    });
    changes
}
