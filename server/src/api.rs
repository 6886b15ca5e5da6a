//! The JSON API for integrators: create a client, record a Fix, and read a client's score
//! with the factors that explain it, its history and the model's view. (The full REST
//! surface with OpenAPI follows.)

use crate::auth::SignedIn;
use crate::startup::AppState;
use app::service::ServiceError;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use domain::bgnbd::BgNbdParams;
use domain::profile::FixInput;
use domain::score::{EngagementScore, engagement_score};
use domain::views::EmailSummary;
use domain::{Activity, Client, ClientId, ClientInput, ValidationErrors};
use domain::{EmailId, EventId};
use serde::{Deserialize, Serialize};
use store::{ScoreChange, StoreError};

/// Why an API request failed. Rendered as a JSON problem (`{"status", "title", "detail"}`);
/// internal causes are logged, never returned.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("sign in first: this endpoint needs a session")]
    Unauthenticated,
    #[error("your role does not allow this")]
    Forbidden,
    #[error("no client with id {0}")]
    ClientNotFound(ClientId),
    #[error("no email with id {0}")]
    EmailNotFound(EmailId),
    #[error("{message}")]
    NotPending { message: String },
    /// The request body is not JSON at all.
    #[error("{0}")]
    BadBody(String),
    /// The body is JSON, but not of the shape this endpoint takes.
    #[error("{message}")]
    BadShape {
        field: Option<String>,
        message: String,
    },
    #[error("send the body as JSON, with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("the request body is larger than the {limit} bytes this server accepts")]
    TooLarge { limit: usize },
    #[error(transparent)]
    Rejected(ValidationErrors),
    #[error("the client was changed meanwhile; it is now at version {current}")]
    VersionConflict { current: u64 },
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
    /// The first field at fault, when the problem is about a field.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// Every field at fault, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<domain::FieldError>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, title, field) = match &self {
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "Not signed in", None),
            Self::Forbidden => (StatusCode::FORBIDDEN, "Forbidden", None),
            Self::ClientNotFound(_) => (StatusCode::NOT_FOUND, "Client not found", None),
            Self::EmailNotFound(_) => (StatusCode::NOT_FOUND, "Email not found", None),
            Self::NotPending { .. } => (StatusCode::CONFLICT, "Email not awaiting review", None),
            Self::BadBody(_) => (StatusCode::BAD_REQUEST, "Malformed request body", None),
            Self::BadShape { field, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Request body of the wrong shape",
                field.clone(),
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
                None,
            ),
            Self::TooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large",
                None,
            ),
            Self::Rejected(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid client data",
                errors.0.first().map(|e| e.field.clone()),
            ),
            Self::VersionConflict { .. } => (
                StatusCode::CONFLICT,
                "Version conflict",
                Some("expected_version".to_owned()),
            ),
            Self::Invalid { field, .. } => (
                StatusCode::BAD_REQUEST,
                "Invalid request",
                Some((*field).to_owned()),
            ),
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
        let errors = match &self {
            Self::Rejected(errors) => errors.0.clone(),
            _ => Vec::new(),
        };
        let problem = Problem {
            status: status.as_u16(),
            title,
            detail,
            field,
            errors,
        };
        let mut response = (status, Json(problem)).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

impl ApiError {
    /// A service refusal as an API error; `not_found` names what was missing.
    fn from_service(error: ServiceError, not_found: impl FnOnce() -> Self) -> Self {
        match error {
            ServiceError::Invalid(errors) => Self::Rejected(errors),
            ServiceError::NotFound => not_found(),
            ServiceError::Conflict(current) => Self::VersionConflict {
                current: current.version,
            },
            ServiceError::Forbidden => Self::Forbidden,
            ServiceError::Unavailable => Self::Store(StoreError::Cancelled),
        }
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
    /// The client version the current score was computed from.
    pub client_version: u64,
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
    SignedIn(user): SignedIn,
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
        .records
        .get_client(id.clone())
        .await?
        .filter(|client| user.may_see(&client.stylist_id))
        .ok_or_else(|| ApiError::ClientNotFound(id.clone()))?;
    let now = state.clock.now();
    let current =
        engagement_score(&client, now).map_err(|e| ApiError::Unscorable(e.to_string()))?;
    let history = state.records.score_history(id.clone(), limit).await?;
    let model = state.ops.model_params().await?.and_then(|params| {
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

/// A client as the API returns it after a write.
#[derive(Debug, Serialize)]
pub struct ClientWritten {
    pub id: ClientId,
    pub version: u64,
    pub client: Client,
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(value)| value).map_err(ApiError::from)
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType,
            JsonRejection::JsonDataError(error) => {
                let message = error.body_text();
                Self::BadShape {
                    field: field_of(&message),
                    message: message
                        .trim_start_matches(
                            "Failed to deserialize the JSON body into the target type: ",
                        )
                        .to_owned(),
                }
            }
            JsonRejection::BytesRejection(error)
                if error.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Self::TooLarge {
                    limit: crate::startup::MAX_BODY_BYTES,
                }
            }
            other => Self::BadBody(other.body_text()),
        }
    }
}

/// The field a JSON shape error is about: serde's "missing field `x`" or the path it
/// reports before the message (`profile.fixes[0].items_sent: invalid type …`).
fn field_of(message: &str) -> Option<String> {
    let message =
        message.trim_start_matches("Failed to deserialize the JSON body into the target type: ");
    if let Some(rest) = message.split("missing field `").nth(1) {
        let name = rest.split('`').next().unwrap_or_default();
        let (path, _) = message.split_once(": ").unwrap_or((".", ""));
        return Some(match path.trim_matches('.') {
            "" => name.to_owned(),
            parent => format!("{parent}.{name}"),
        });
    }
    if let Some(rest) = message.split("unknown field `").nth(1) {
        return rest.split('`').next().map(str::to_owned);
    }
    let (path, _) = message.split_once(": ")?;
    let path = path.trim_matches('.');
    (!path.is_empty() && !path.contains(' ')).then(|| path.to_owned())
}

/// `POST /api/v1/clients`: a new client (`ClientInput`: name, email, stylist_id, optional
/// status and profile). 201 with the stored client; 422 naming every bad field.
pub async fn create_client(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    body: Result<Json<ClientInput>, JsonRejection>,
) -> Result<
    (
        StatusCode,
        [(header::HeaderName, String); 1],
        Json<ClientWritten>,
    ),
    ApiError,
> {
    let input = json_body(body)?;
    let client = state
        .service
        .create_client(&user, input)
        .await
        .map_err(|e| ApiError::from_service(e, || ApiError::Forbidden))?;
    let location = format!("/api/v1/clients/{}", client.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(ClientWritten {
            id: client.id.clone(),
            version: client.version,
            client,
        }),
    ))
}

/// A Fix to record, optionally guarded by the version the caller last saw.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordFix {
    /// ISO date (YYYY-MM-DD), not in the future.
    pub delivered_on: String,
    /// 1 to 10.
    pub items_sent: i64,
    /// 0 to items_sent.
    pub items_kept: i64,
    /// Dollars, as text ("129.50").
    pub order_value: String,
    /// Refuse (409) unless the client is still at this version.
    #[serde(default)]
    pub expected_version: Option<u64>,
}

/// `POST /api/v1/clients/{id}/fixes`: records a delivered Fix. 200 with the new version.
pub async fn record_fix(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    body: Result<Json<RecordFix>, JsonRejection>,
) -> Result<Json<ClientWritten>, ApiError> {
    let request = json_body(body)?;
    let activity = Activity::Fix(FixInput {
        delivered_on: request.delivered_on,
        items_sent: request.items_sent,
        items_kept: request.items_kept,
        order_value: request.order_value,
    });
    let id = ClientId::new(id);
    let client = state
        .service
        .record_activity(&user, id.clone(), activity, request.expected_version)
        .await
        .map_err(|e| ApiError::from_service(e, || ApiError::ClientNotFound(id)))?;
    Ok(Json(ClientWritten {
        id: client.id.clone(),
        version: client.version,
        client,
    }))
}

/// `GET /api/v1/clients/{id}/emails`: the client's emails, newest first.
pub async fn client_emails(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Json<Vec<EmailSummary>>, ApiError> {
    let id = ClientId::new(id);
    let visible = state
        .records
        .get_client(id.clone())
        .await?
        .is_some_and(|client| user.may_see(&client.stylist_id));
    if !visible {
        return Err(ApiError::ClientNotFound(id));
    }
    let filter = store::EmailFilter {
        client: Some(id),
        ..store::EmailFilter::default()
    };
    Ok(Json(state.records.emails(filter, 500).await?))
}

/// A stylist's request for a new draft.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regenerate {
    /// What to change, in a few words ("mention the autumn edit"); at most 200 characters.
    #[serde(default)]
    pub instruction: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RegenerateAccepted {
    pub email_id: EmailId,
    /// The queued event; the new wording replaces the draft once it is processed.
    pub event_id: EventId,
}

/// `POST /api/v1/emails/{id}/regenerate`: queues a new draft of an email awaiting review.
/// 202 at once; the pipeline rewrites the draft in place.
pub async fn regenerate_email(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    body: Result<Json<Regenerate>, JsonRejection>,
) -> Result<(StatusCode, Json<RegenerateAccepted>), ApiError> {
    let request = json_body(body)?;
    let email = EmailId::new(id);
    let event_id = state
        .service
        .regenerate_email(&user, email.clone(), request.instruction)
        .await
        .map_err(|e| match e {
            ServiceError::Invalid(errors) if errors.message_for("email_id").is_some() => {
                ApiError::NotPending {
                    message: errors
                        .message_for("email_id")
                        .unwrap_or_default()
                        .to_owned(),
                }
            }
            other => ApiError::from_service(other, || ApiError::EmailNotFound(email.clone())),
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RegenerateAccepted {
            email_id: email,
            event_id,
        }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct RangeQuery {
    /// First day (YYYY-MM-DD); default 29 days before `to`.
    #[serde(default)]
    pub from: String,
    /// Last day (YYYY-MM-DD); default today.
    #[serde(default)]
    pub to: String,
}

/// `GET /api/v1/dashboard[?from=&to=]`: the dashboard's figures (managers and admins).
pub async fn dashboard(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Query(query): Query<RangeQuery>,
) -> Result<Json<domain::dashboard::Dashboard>, ApiError> {
    let dashboard = state
        .service
        .dashboard(&user, query.from, query.to)
        .await
        .map_err(|e| ApiError::from_service(e, || ApiError::Forbidden))?;
    Ok(Json(dashboard))
}
