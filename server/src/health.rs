//! Liveness and readiness endpoints for load balancers and operators.

use crate::ops::PipelineFigures;
use crate::startup::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use processors::openrouter::BreakerState;
use processors::supervise::ProcessorHealth;
use serde::Serialize;
use std::collections::BTreeMap;

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
    /// The pipeline's tasks in this process: each `running`, `restarting` or `stopped`,
    /// with its restarts.
    processors: BTreeMap<&'static str, ProcessorHealth>,
}

/// `/readyz`: the database answers and every pipeline task of this process runs; includes
/// the pipeline's figures. A task that is restarting makes it `503 not_ready`.
pub async fn ready(State(state): State<AppState>) -> Response {
    let figures = state.ops.pipeline_figures(state.clock.now()).await;
    let llm_breaker = state.writer.breaker_state();
    let processors = state.processors.snapshot();
    let running = state.processors.all_running();
    match figures.map(|figures| Readiness {
        status: if running { "ready" } else { "not_ready" },
        figures,
        llm_breaker,
        processors,
    }) {
        Ok(readiness) if !running => {
            tracing::warn!("not ready: a pipeline task is not running");
            (StatusCode::SERVICE_UNAVAILABLE, Json(readiness)).into_response()
        }
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
