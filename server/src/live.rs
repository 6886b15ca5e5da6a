//! `GET /api/v1/live`: server-sent events that tell open pages when something new was
//! written (a score, a draft, a review step), so dashboards and review queues update
//! without a reload. One task per server reads the change stamp twice a second; every
//! open page only listens.

use crate::auth::SignedIn;
use crate::backend::Operations;
use crate::startup::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Starts the task that watches the change stamp; it stops when nobody holds the receiver.
pub fn watch_changes(ops: Arc<dyn Operations>) -> watch::Receiver<u64> {
    let (sender, receiver) = watch::channel(0);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(500));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = sender.closed() => return,
                _ = every.tick() => {}
            }
            match ops.change_stamp().await {
                Ok(stamp) => {
                    sender.send_if_modified(|current| {
                        let changed = *current != stamp;
                        *current = stamp;
                        changed
                    });
                }
                Err(error) => tracing::warn!(%error, "cannot read the change stamp"),
            }
        }
    });
    receiver
}

/// The stream: the current stamp at once, then every new one; it ends after the state's
/// live limit, if any, asking the browser to reconnect within a second.
#[utoipa::path(
    get,
    path = "/api/v1/live",
    tag = "operations",
    summary = "Server-sent events: a `change` event whenever something new was written",
    description = "Server-sent events: the current change stamp at once, then a `change` event \
        (data: the new stamp) whenever a score, draft or review step is written. Pages reload \
        what they show on each event.",
    responses((status = 200, description = "An event stream (text/event-stream)", content_type = "text/event-stream", body = String)),
)]
pub async fn stream(
    State(state): State<AppState>,
    SignedIn(_): SignedIn,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = futures_util::stream::unfold(
        (state.changes.clone(), true),
        |(mut changes, first)| async move {
            if !first && changes.changed().await.is_err() {
                return None;
            }
            let stamp = *changes.borrow_and_update();
            let mut event = Event::default().event("change").data(stamp.to_string());
            if first {
                event = event.retry(Duration::from_secs(1));
            }
            Some((Ok(event), (changes, false)))
        },
    );
    let deadline = state.live_limit.map(tokio::time::sleep);
    let events = futures_util::StreamExt::take_until(events, async move {
        match deadline {
            Some(deadline) => deadline.await,
            None => std::future::pending().await,
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
