//! `GET /api/v1/live`: server-sent events that tell open pages when something new was
//! written (a score, a draft, a review step), so dashboards and review queues update
//! without a reload. One task per server reads the change stamp twice a second; every
//! open page only listens. Streams are capped per session (or API key) and overall, so
//! no one can hold all the server's connections open.

use crate::api::ApiError;
use crate::auth::SignedIn;
use crate::backend::Operations;
use crate::startup::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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

/// The open streams, by holder (a session or an API key, and the user behind it), against
/// the caps: a session's, four times that for a user's sessions together (so one account
/// signing in again and again cannot fill the server), and the server's.
pub struct LiveStreams {
    per_holder: usize,
    total: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream; closing it (dropping this) frees its place.
pub struct Place {
    streams: Arc<LiveStreams>,
    holders: [String; 2],
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(|e| e.into_inner());
        for holder in &self.holders {
            if let Some(count) = open.get_mut(holder) {
                *count -= 1;
                if *count == 0 {
                    open.remove(holder);
                }
            }
        }
    }
}

/// Why a stream was not opened.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    Holder,
    Server,
}

impl LiveStreams {
    pub fn new(per_holder: usize, total: usize) -> Self {
        Self {
            per_holder: per_holder.max(1),
            total: total.max(1),
            open: Mutex::default(),
        }
    }

    /// A place for one more stream of `session`'s (a user's), if the caps allow.
    pub fn open(self: &Arc<Self>, session: &str, user: &str) -> Result<Place, Full> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if Self::sessions(&open) >= self.total {
            return Err(Full::Server);
        }
        let holders = [format!("session:{session}"), format!("user:{user}")];
        let caps = [self.per_holder, self.per_holder.saturating_mul(4)];
        if holders
            .iter()
            .zip(caps)
            .any(|(holder, cap)| open.get(holder).is_some_and(|count| *count >= cap))
        {
            return Err(Full::Holder);
        }
        for holder in &holders {
            *open.entry(holder.clone()).or_default() += 1;
        }
        Ok(Place {
            streams: Arc::clone(self),
            holders,
        })
    }

    /// Streams open in `open` (each counted once, by its session).
    fn sessions(open: &HashMap<String, usize>) -> usize {
        open.iter()
            .filter(|(holder, _)| holder.starts_with("session:"))
            .map(|(_, count)| count)
            .sum()
    }

    /// Streams open now.
    pub fn count(&self) -> usize {
        Self::sessions(&self.open.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Which session holds a stream: its token's (or API key's) hash, else the user's.
fn session(headers: &HeaderMap, user: &domain::user::User) -> String {
    crate::auth::credential(headers)
        .map_or_else(|| user.id.to_string(), |secret| ports::token_hash(&secret))
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
    responses(
        (status = 200, description = "An event stream (text/event-stream)", content_type = "text/event-stream", body = String),
        (status = 429, description = "This session (or key), or the server, has as many streams open as allowed", body = crate::api::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    SignedIn(user): SignedIn,
) -> Response {
    let place = match state
        .live
        .open(&session(&headers, &user), &user.id.to_string())
    {
        Ok(place) => place,
        Err(full) => {
            tracing::info!(user_id = %user.id, ?full, "live-update stream refused: too many open");
            return ApiError::TooManyStreams {
                whose: match full {
                    Full::Holder => "this sign-in",
                    Full::Server => "the server",
                },
            }
            .into_response();
        }
    };
    let events = futures_util::stream::unfold(
        (state.changes.clone(), true, place),
        |(mut changes, first, place)| async move {
            if !first && changes.changed().await.is_err() {
                return None;
            }
            let stamp = *changes.borrow_and_update();
            let mut event = Event::default().event("change").data(stamp.to_string());
            if first {
                event = event.retry(Duration::from_secs(1));
            }
            Some((
                Ok::<_, std::convert::Infallible>(event),
                (changes, false, place),
            ))
        },
    );
    let deadline = state.live_limit.map(tokio::time::sleep);
    let events = futures_util::StreamExt::take_until(events, async move {
        match deadline {
            Some(deadline) => deadline.await,
            None => std::future::pending().await,
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_capped_per_holder_and_overall_and_closing_frees_a_place() {
        let streams = Arc::new(LiveStreams::new(2, 3));
        let a1 = streams.open("a", "u1").unwrap();
        let _a2 = streams.open("a", "u1").unwrap();
        assert_eq!(streams.open("a", "u1").err(), Some(Full::Holder));
        let _b1 = streams.open("b", "u2").unwrap();
        assert_eq!(streams.open("c", "u3").err(), Some(Full::Server));
        assert_eq!(streams.count(), 3);
        drop(a1);
        assert_eq!(streams.count(), 2);
        let _c1 = streams.open("c", "u3").unwrap();
        assert_eq!(streams.open("a", "u1").err(), Some(Full::Server));
    }

    #[test]
    fn one_user_signing_in_again_and_again_cannot_fill_the_server() {
        let streams = Arc::new(LiveStreams::new(2, 1000));
        let mut places = Vec::new();
        for session in 0..4 {
            for _ in 0..2 {
                places.push(streams.open(&format!("s{session}"), "u1").unwrap());
            }
        }
        assert_eq!(streams.open("s-new", "u1").err(), Some(Full::Holder));
        assert!(streams.open("s-other", "u2").is_ok());
        places.truncate(7);
        assert!(
            streams.open("s-new", "u1").is_ok(),
            "a closed stream frees the user's place"
        );
    }
}
