//! Figures for managers: the dashboard, the pipeline's queue and feed, dead letters and
//! their redrive.

use super::{ApiError, ApiJson, ApiQuery};
use crate::auth::SignedIn;
use crate::startup::AppState;
use axum::Json;
use axum::extract::State;
pub use domain::api::{PipelineReport, RangeQuery, Redrive, Redriven};
use domain::dashboard::{Dashboard, DeadLetterView};
use domain::outcomes::Outcomes;
use domain::user::Role;

/// The dashboard's figures for a range of days (managers and admins).
#[utoipa::path(
    get,
    path = "/api/v1/dashboard",
    tag = "operations",
    params(RangeQuery),
    responses((status = 200, body = Dashboard)),
)]
pub async fn dashboard(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> Result<Json<Dashboard>, ApiError> {
    state
        .service
        .dashboard(
            &user,
            query.from.unwrap_or_default(),
            query.to.unwrap_or_default(),
        )
        .await
        .map(Json)
        .map_err(|e| ApiError::from_service(e, || ApiError::Forbidden))
}

/// Is the outreach working? Per email kind: the conversion rate of held-out clients and
/// of emailed clients (all writers, and each writer and prompt version), each with a 95%
/// Wilson interval, the lift (emailed minus held out) with Newcombe's interval, and
/// purchases against what the BG/NBD model expected (managers and admins).
#[utoipa::path(
    get,
    path = "/api/v1/outcomes",
    tag = "operations",
    responses((status = 200, body = Outcomes)),
)]
pub async fn outcomes(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
) -> Result<Json<Outcomes>, ApiError> {
    state
        .service
        .outcomes(&user)
        .await
        .map(Json)
        .map_err(|e| ApiError::from_service(e, || ApiError::Forbidden))
}

fn require_manager(user: &domain::user::User) -> Result<(), ApiError> {
    match user.role {
        Role::Manager | Role::Admin => Ok(()),
        Role::Stylist => Err(ApiError::Forbidden),
    }
}

/// Queue depth, messages in flight, the oldest message's age, dead letters and feed lag
/// (managers and admins).
#[utoipa::path(
    get,
    path = "/api/v1/pipeline",
    tag = "operations",
    responses((status = 200, body = PipelineReport)),
)]
pub async fn pipeline(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
) -> Result<Json<PipelineReport>, ApiError> {
    require_manager(&user)?;
    let figures = state.ops.pipeline_figures(state.clock.now()).await?;
    let llm = state.writer.llm_figures();
    let breaker = state.writer.breaker_state().map(|state| {
        serde_json::to_value(state)
            .ok()
            .and_then(|v| v["state"].as_str().map(str::to_owned))
            .unwrap_or_default()
    });
    Ok(Json(PipelineReport {
        figures,
        llm_breaker: breaker,
        llm_calls: llm.calls,
        llm_failures: llm.failures,
        llm_cost_usd: llm.cost_usd,
    }))
}

/// Events that failed too often, with their last error (managers and admins).
#[utoipa::path(
    get,
    path = "/api/v1/dead-letters",
    tag = "operations",
    responses((status = 200, body = Vec<DeadLetterView>)),
)]
pub async fn dead_letters(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
) -> Result<Json<Vec<DeadLetterView>>, ApiError> {
    state
        .service
        .dead_letters(&user)
        .await
        .map(Json)
        .map_err(|e| ApiError::from_service(e, || ApiError::Forbidden))
}

/// Put dead letters back on the queue, after the cause was fixed (managers and admins).
#[utoipa::path(
    post,
    path = "/api/v1/dead-letters/redrive",
    tag = "operations",
    request_body = Redrive,
    responses((status = 200, body = Redriven)),
)]
pub async fn redrive(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    ApiJson(request): ApiJson<Redrive>,
) -> Result<Json<Redriven>, ApiError> {
    state
        .service
        .redrive(&user, request.id)
        .await
        .map(|redriven| Json(Redriven { redriven }))
        .map_err(|e| ApiError::from_service(e, || ApiError::Forbidden))
}
