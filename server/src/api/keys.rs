//! `/api/v1/api-keys`: admins create, list and revoke the keys programs use.

use super::{ApiError, ApiJson};
use crate::auth::SignedIn;
use crate::startup::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
pub use domain::api::CreateKey;
use domain::user::{ApiKey, NewApiKey};

/// Every key, newest first, revoked ones with when (admins).
#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    tag = "api keys",
    responses((status = 200, body = Vec<ApiKey>)),
)]
pub async fn list_keys(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
) -> Result<Json<Vec<ApiKey>>, ApiError> {
    state
        .service
        .api_keys(&user)
        .await
        .map(Json)
        .map_err(|e| ApiError::from_service(e, || ApiError::Forbidden))
}

/// Create a key (admins). The secret is in this answer only; keep it safe.
#[utoipa::path(
    post,
    path = "/api/v1/api-keys",
    tag = "api keys",
    request_body = CreateKey,
    responses((status = 201, description = "Created; `secret` is shown once", body = NewApiKey)),
)]
pub async fn create_key(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    ApiJson(request): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<NewApiKey>), ApiError> {
    let created = state
        .service
        .create_api_key(&user, request.name, request.role, request.stylist_id)
        .await
        .map_err(|e| ApiError::from_service(e, || ApiError::Forbidden))?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revoke a key (admins): it stops working at once. Revoking twice changes nothing.
#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{id}",
    tag = "api keys",
    params(("id" = String, Path, description = "The key's id")),
    responses((status = 200, description = "The revoked key", body = ApiKey)),
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    state
        .service
        .revoke_api_key(&user, id)
        .await
        .map(Json)
        .map_err(|e| ApiError::from_service(e, || ApiError::NotFound("API key")))
}
