//! Liveness and readiness endpoints for load balancers and operators.

use crate::startup::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use store::QueueStats;

/// `/healthz`: the process is up.
pub async fn live() -> &'static str {
    "ok"
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    events_queue: QueueStats,
    /// Change records not yet turned into events.
    feed_lag: u64,
}

/// `/readyz`: the database answers; includes the pipeline's figures.
pub async fn ready(State(state): State<AppState>) -> Response {
    let now = state.clock.now();
    let figures = async {
        let events_queue = state
            .store
            .queue_stats(processors::EVENTS_QUEUE, now)
            .await?;
        let feed_lag = state.store.feed_lag(processors::stream::CHECKPOINT).await?;
        Ok::<_, store::StoreError>(Readiness {
            status: "ready",
            events_queue,
            feed_lag,
        })
    };
    match figures.await {
        Ok(readiness) => Json(readiness).into_response(),
        Err(error) => {
            tracing::error!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "unavailable" })),
            )
                .into_response()
        }
    }
}
