//! `/api/v1/clients`: list, read, create, update, close; activities; score and emails.

use super::{ApiError, ApiJson, ApiQuery};
use crate::auth::SignedIn;
use crate::startup::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
pub use domain::api::{
    ClientRecord, CloseClient, HistoryQuery, ListClients, ModelView, RecordActivity, RecordFix,
    ScoreReport, UpdateClient,
};
use domain::outcomes::Decision;
use domain::profile::FixInput;
use domain::score::{Band, engagement_score};
use domain::views::{ClientDetail, ClientPage, ClientQuery, ClientSort, EmailSummary};
use domain::{Activity, ClientEdit, ClientId, ClientInput, ClientStatus};

/// List clients, a page at a time (a stylist sees their own book only).
#[utoipa::path(
    get,
    path = "/api/v1/clients",
    tag = "clients",
    params(ListClients),
    responses((status = 200, description = "One page; `next` is the cursor of the following page", body = ClientPage)),
)]
pub async fn list_clients(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    ApiQuery(params): ApiQuery<ListClients>,
) -> Result<Json<ClientPage>, ApiError> {
    let query = ClientQuery::parse(
        params.search.as_deref().unwrap_or_default(),
        params.band.map(Band::as_str).unwrap_or_default(),
        params.status.map(ClientStatus::as_str).unwrap_or_default(),
        params.sort.map(ClientSort::as_str).unwrap_or_default(),
        params.after.as_deref().unwrap_or_default(),
        params.limit,
    )
    .map_err(ApiError::Rejected)?;
    let page = state
        .service
        .list_clients(&user, query)
        .await
        .map_err(|e| ApiError::from_service(e, || ApiError::NotFound("page")))?;
    Ok(Json(page))
}

/// Add a client. The pipeline scores them and may draft a welcome email.
#[utoipa::path(
    post,
    path = "/api/v1/clients",
    tag = "clients",
    request_body = ClientInput,
    responses((status = 201, description = "Created; `Location` names the new client", body = ClientRecord,
        headers(("location" = String, description = "/api/v1/clients/{id}")))),
)]
pub async fn create_client(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    ApiJson(input): ApiJson<ClientInput>,
) -> Result<
    (
        StatusCode,
        [(header::HeaderName, String); 1],
        Json<ClientRecord>,
    ),
    ApiError,
> {
    let client = state
        .service
        .create_client(&user, input)
        .await
        .map_err(|e| ApiError::from_service(e, || ApiError::Forbidden))?;
    let location = format!("/api/v1/clients/{}", client.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(client.into()),
    ))
}

/// A client with their current score, model outlook, history, audit trail and emails.
#[utoipa::path(
    get,
    path = "/api/v1/clients/{id}",
    tag = "clients",
    params(("id" = String, Path, description = "The client's id")),
    responses((status = 200, body = ClientDetail)),
)]
pub async fn get_client(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Json<ClientDetail>, ApiError> {
    let id = ClientId::new(id);
    state
        .service
        .client_detail(&user, id.clone())
        .await
        .map(Json)
        .map_err(|e| ApiError::from_service(e, || ApiError::ClientNotFound(id)))
}

/// Replace a client's editable fields (name, email, stylist, status, consent, style).
#[utoipa::path(
    put,
    path = "/api/v1/clients/{id}",
    tag = "clients",
    params(("id" = String, Path, description = "The client's id")),
    request_body = UpdateClient,
    responses(
        (status = 200, body = ClientRecord),
        (status = 409, description = "The client changed since `expected_version`", body = super::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn update_client(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UpdateClient>,
) -> Result<Json<ClientRecord>, ApiError> {
    let id = ClientId::new(id);
    state
        .service
        .update_client(&user, id.clone(), request.expected_version, request.client)
        .await
        .map(|client| Json(client.into()))
        .map_err(|e| ApiError::from_service(e, || ApiError::ClientNotFound(id)))
}

/// Close a client: they stay on record (history, emails) with status `closed`, and get no
/// more emails. Closing a closed client changes nothing.
#[utoipa::path(
    delete,
    path = "/api/v1/clients/{id}",
    tag = "clients",
    params(("id" = String, Path, description = "The client's id"), CloseClient),
    responses(
        (status = 200, description = "The closed client", body = ClientRecord),
        (status = 409, description = "The client changed since `expected_version`", body = super::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn close_client(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<CloseClient>,
) -> Result<Json<ClientRecord>, ApiError> {
    let id = ClientId::new(id);
    let not_found = || ApiError::ClientNotFound(id.clone());
    let client = state
        .service
        .client_detail(&user, id.clone())
        .await
        .map_err(|e| ApiError::from_service(e, not_found))?
        .client;
    if let Some(expected) = params.expected_version
        && expected != client.version
    {
        return Err(ApiError::VersionConflict {
            current: client.version,
        });
    }
    if client.status == ClientStatus::Closed {
        return Ok(Json(client.into()));
    }
    let edit = ClientEdit {
        status: ClientStatus::Closed.as_str().to_owned(),
        ..ClientEdit::of(&client)
    };
    state
        .service
        .update_client(&user, id.clone(), client.version, edit)
        .await
        .map(|client| Json(client.into()))
        .map_err(|e| ApiError::from_service(e, not_found))
}

/// Record a Fix, a purchase, feedback, or an email open or click.
#[utoipa::path(
    post,
    path = "/api/v1/clients/{id}/activities",
    tag = "clients",
    params(("id" = String, Path, description = "The client's id")),
    request_body = RecordActivity,
    responses(
        (status = 200, description = "The client with the activity", body = ClientRecord),
        (status = 409, description = "The client changed since `expected_version`", body = super::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn record_activity(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<RecordActivity>,
) -> Result<Json<ClientRecord>, ApiError> {
    let id = ClientId::new(id);
    state
        .service
        .record_activity(
            &user,
            id.clone(),
            request.activity,
            request.expected_version,
        )
        .await
        .map(|client| Json(client.into()))
        .map_err(|e| ApiError::from_service(e, || ApiError::ClientNotFound(id)))
}

/// Record a delivered Fix (the same as an activity of type `fix`).
#[utoipa::path(
    post,
    path = "/api/v1/clients/{id}/fixes",
    tag = "clients",
    params(("id" = String, Path, description = "The client's id")),
    request_body = RecordFix,
    responses(
        (status = 200, description = "The client with the Fix", body = ClientRecord),
        (status = 409, description = "The client changed since `expected_version`", body = super::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn record_fix(
    state: State<AppState>,
    user: SignedIn,
    id: Path<String>,
    ApiJson(request): ApiJson<RecordFix>,
) -> Result<Json<ClientRecord>, ApiError> {
    let activity = Activity::Fix(FixInput {
        delivered_on: request.delivered_on,
        items_sent: request.items_sent,
        items_kept: request.items_kept,
        order_value: request.order_value,
    });
    let request = RecordActivity {
        activity,
        expected_version: request.expected_version,
    };
    record_activity(state, user, id, ApiJson(request)).await
}

/// A client's score with the factors that explain it, its history and the model's view.
#[utoipa::path(
    get,
    path = "/api/v1/clients/{id}/score",
    tag = "clients",
    params(("id" = String, Path, description = "The client's id"), HistoryQuery),
    responses(
        (status = 200, body = ScoreReport),
        (status = 409, description = "The record cannot be scored", body = super::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn client_score(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<ScoreReport>, ApiError> {
    let id = ClientId::new(id);
    let record = state
        .engage
        .score_record(&user, id.clone(), query.limit.unwrap_or(50))
        .await
        .map_err(|e| ApiError::from_service(e, || ApiError::ClientNotFound(id.clone())))?;
    let (client, history) = (record.client, record.history);
    let now = state.clock.now();
    let current =
        engagement_score(&client, now).map_err(|e| ApiError::Unscorable(e.to_string()))?;
    let model = record.model.and_then(|params| {
        let summary = client.profile.repeat_summary(now.date_naive())?;
        Some(ModelView {
            p_alive: params.probability_alive(&summary),
            expected_purchases_90_days: params.expected_purchases(&summary, 90.0),
            params,
        })
    });
    Ok(Json(ScoreReport {
        client_id: id,
        client_version: client.version,
        current,
        history,
        model,
    }))
}

/// What the policy decided about a client each time something called for an email,
/// newest first (at most 500): drafted, held out for comparison, or skipped with the
/// reason, and the purchases that followed a touch within the attribution window.
#[utoipa::path(
    get,
    path = "/api/v1/clients/{id}/decisions",
    tag = "clients",
    params(("id" = String, Path, description = "The client's id")),
    responses((status = 200, body = Vec<Decision>)),
)]
pub async fn client_decisions(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Json<Vec<Decision>>, ApiError> {
    let id = ClientId::new(id);
    let decisions = state
        .engage
        .client_decisions(&user, id.clone())
        .await
        .map_err(|e| ApiError::from_service(e, || ApiError::ClientNotFound(id.clone())))?;
    Ok(Json(decisions))
}

/// A client's emails, newest first (at most 500).
#[utoipa::path(
    get,
    path = "/api/v1/clients/{id}/emails",
    tag = "clients",
    params(("id" = String, Path, description = "The client's id")),
    responses((status = 200, body = Vec<EmailSummary>)),
)]
pub async fn client_emails(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Json<Vec<EmailSummary>>, ApiError> {
    let id = ClientId::new(id);
    let emails = state
        .engage
        .client_emails(&user, id.clone())
        .await
        .map_err(|e| ApiError::from_service(e, || ApiError::ClientNotFound(id.clone())))?;
    Ok(Json(emails))
}
