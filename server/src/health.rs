//! Liveness and readiness endpoints for load balancers and operators.

use crate::ops::PipelineFigures;
use crate::startup::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use processors::openrouter::BreakerState;
use serde::Serialize;

/// `/healthz`: the process is up.
pub async fn live() -> &'static str {
    "ok"
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    #[serde(flatten)]
    figures: PipelineFigures,
    /// The LLM writer's circuit breaker; `null` when no key is set (template only).
    llm_breaker: Option<BreakerState>,
}

/// `/readyz`: the database answers; includes the pipeline's figures.
pub async fn ready(State(state): State<AppState>) -> Response {
    let figures = state.ops.pipeline_figures(state.clock.now()).await;
    let llm_breaker = state.writer.breaker_state();
    match figures.map(|figures| Readiness {
        status: "ready",
        figures,
        llm_breaker,
    }) {
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
