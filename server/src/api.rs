//! The JSON API for integrators. For now: a client's score, the factors that explain it,
//! its history and the model's view. (The full REST surface with OpenAPI follows.)

use crate::startup::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::ClientId;
use domain::bgnbd::{self, BgNbdParams};
use domain::score::{EngagementScore, engagement_score};
use serde::{Deserialize, Serialize};
use store::{ScoreChange, StoreError};

/// Why an API request failed. Rendered as a JSON problem (`{"status", "title", "detail"}`);
/// internal causes are logged, never returned.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no client with id {0}")]
    ClientNotFound(ClientId),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("the client record cannot be scored: {0}")]
    Unscorable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Serialize)]
struct Problem {
    status: u16,
    title: &'static str,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, title, field) = match &self {
            Self::ClientNotFound(_) => (StatusCode::NOT_FOUND, "Client not found", None),
            Self::Invalid { field, .. } => {
                (StatusCode::BAD_REQUEST, "Invalid request", Some(*field))
            }
            Self::Unscorable(_) => (StatusCode::CONFLICT, "Client cannot be scored", None),
            Self::Store(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                None,
            ),
        };
        let detail = match &self {
            Self::Store(error) => {
                tracing::error!(%error, "API request failed in the store");
                "Engage could not complete this just now; please try again.".to_owned()
            }
            other => other.to_string(),
        };
        let problem = Problem {
            status: status.as_u16(),
            title,
            detail,
            field,
        };
        let mut response = (status, Json(problem)).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// The model's view of one client, from the latest fit.
#[derive(Debug, Serialize, Deserialize)]
pub struct ModelView {
    pub p_alive: f64,
    pub expected_purchases_90_days: f64,
    pub params: BgNbdParams,
}

/// `GET /api/v1/clients/{id}/score`.
#[derive(Debug, Serialize)]
pub struct ScoreReport {
    pub client_id: ClientId,
    /// The score as of now, computed from the record.
    pub current: EngagementScore,
    /// Every stored score change, newest first, each with its factors and causing event.
    pub history: Vec<ScoreChange>,
    /// `None` until `engage model fit` has run, or for a client who has not bought yet.
    pub model: Option<ModelView>,
}

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    /// How many history entries to return (1–500, default 50).
    pub limit: Option<u32>,
}

pub async fn client_score(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<ScoreReport>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::Invalid {
            field: "limit",
            message: "limit must be between 1 and 500".into(),
        });
    }
    let id = ClientId::new(id);
    let client = state
        .store
        .get_client(id.clone())
        .await?
        .ok_or_else(|| ApiError::ClientNotFound(id.clone()))?;
    let now = state.clock.now();
    let current =
        engagement_score(&client, now).map_err(|e| ApiError::Unscorable(e.to_string()))?;
    let history = state.store.score_history(id.clone(), limit).await?;
    let model = state.store.latest_model_fit().await?.and_then(|stored| {
        let today = now.date_naive();
        let days: Vec<i64> = client
            .profile
            .purchase_dates()
            .map(|d| (d - today).num_days())
            .collect();
        let summary = bgnbd::summarise(&days, 0)?;
        let params = stored.fit.params;
        Some(ModelView {
            p_alive: params.probability_alive(&summary),
            expected_purchases_90_days: params.expected_purchases(&summary, 90.0),
            params,
        })
    });
    Ok(Json(ScoreReport {
        client_id: id,
        current,
        history,
        model,
    }))
}
