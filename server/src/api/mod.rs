//! The REST API for integrators, under `/api/v1`, described by an OpenAPI 3.1 document
//! generated from these handlers (`/api/openapi.json`, browsable at `/api/docs`).
//!
//! Every failure is an RFC 9457 problem (`application/problem+json`) naming the field at
//! fault; the request and response bodies are the domain crate's own types, so a Rust
//! program can depend on `domain` to talk to the API.

mod clients;
pub mod docs;
mod emails;
mod import;
mod keys;
mod pipeline;

pub use clients::{ClientRecord, ModelView, ScoreReport};
pub use docs::{ApiDoc, api_routes};
pub use domain::api::Problem;

use app::service::ServiceError;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{ClientId, EmailId, ValidationErrors};
use ports::StoreError;
use serde::de::DeserializeOwned;

/// Why an API request failed, rendered as a problem document; internal causes are logged,
/// never returned.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("sign in first, or send an API key as `Authorization: Bearer ek_…`")]
    Unauthenticated,
    #[error("this API key is not valid, or it was revoked")]
    BadKey,
    #[error("API keys open the API (/api/…) and /metrics, not pages")]
    KeyNotForPages,
    #[error("your role does not allow this")]
    Forbidden,
    #[error("no client with id {0}")]
    ClientNotFound(ClientId),
    #[error("no email with id {0}")]
    EmailNotFound(EmailId),
    #[error("no {0} with that id")]
    NotFound(&'static str),
    #[error("there is no endpoint {method} {path}; see /api/openapi.json")]
    NoRoute { method: String, path: String },
    #[error("{message}")]
    NotPending { message: String },
    /// The email cannot go out in its client's or its own present state.
    #[error("{message}")]
    NotSendable { reason: String, message: String },
    /// The request body is not JSON at all.
    #[error("{0}")]
    BadBody(String),
    /// The body is JSON, but not of the shape this endpoint takes.
    #[error("{message}")]
    BadShape {
        field: Option<String>,
        message: String,
    },
    /// The query string does not parse.
    #[error("{message}")]
    BadQuery {
        field: Option<String>,
        message: String,
    },
    #[error("send the body as {expected}")]
    UnsupportedMediaType { expected: &'static str },
    #[error("the request body is larger than the {limit} bytes this endpoint accepts")]
    TooLarge { limit: usize },
    #[error(transparent)]
    Rejected(ValidationErrors),
    #[error("the client was changed meanwhile; it is now at version {current}")]
    VersionConflict { current: u64 },
    #[error("the client record cannot be scored: {0}")]
    Unscorable(String),
    #[error("this API key or sign-in has used its requests for now; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error(
        "{whose} has as many live-update streams open as allowed; close one (another tab) or retry later"
    )]
    TooManyStreams { whose: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    fn status_and_title(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "Not signed in"),
            Self::BadKey => (StatusCode::UNAUTHORIZED, "Invalid API key"),
            Self::KeyNotForPages => (StatusCode::FORBIDDEN, "API key used on a page"),
            Self::Forbidden => (StatusCode::FORBIDDEN, "Forbidden"),
            Self::ClientNotFound(_) => (StatusCode::NOT_FOUND, "Client not found"),
            Self::EmailNotFound(_) => (StatusCode::NOT_FOUND, "Email not found"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
            Self::NoRoute { .. } => (StatusCode::NOT_FOUND, "No such endpoint"),
            Self::NotPending { .. } => (StatusCode::CONFLICT, "Email not awaiting review"),
            Self::NotSendable { .. } => (StatusCode::CONFLICT, "Email cannot be sent"),
            Self::BadBody(_) => (StatusCode::BAD_REQUEST, "Malformed request body"),
            Self::BadShape { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Request body of the wrong shape",
            ),
            Self::BadQuery { .. } => (StatusCode::BAD_REQUEST, "Malformed query string"),
            Self::UnsupportedMediaType { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type")
            }
            Self::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"),
            Self::Rejected(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid fields"),
            Self::VersionConflict { .. } => (StatusCode::CONFLICT, "Version conflict"),
            Self::Unscorable(_) => (StatusCode::CONFLICT, "Client cannot be scored"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "Rate limit reached"),
            Self::TooManyStreams { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many live-update streams",
            ),
            Self::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "Temporarily unavailable"),
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            Self::BadShape { field, .. } | Self::BadQuery { field, .. } => field.clone(),
            Self::Rejected(errors) => errors.0.first().map(|e| e.field.clone()),
            Self::VersionConflict { .. } => Some("expected_version".to_owned()),
            _ => None,
        }
    }

    /// The problem document this error is answered with.
    pub fn problem(&self) -> Problem {
        let (status, title) = self.status_and_title();
        let detail = match self {
            Self::Store(error) => {
                tracing::error!(%error, "API request failed in the store");
                "Engage could not complete this just now; please try again.".to_owned()
            }
            other => other.to_string(),
        };
        Problem {
            kind: "about:blank".to_owned(),
            status: status.as_u16(),
            title: title.to_owned(),
            detail,
            field: self.field(),
            errors: match self {
                Self::Rejected(errors) => errors.0.clone(),
                _ => Vec::new(),
            },
            reason: match self {
                Self::NotSendable { reason, .. } => Some(reason.clone()),
                _ => None,
            },
        }
    }

    /// A service refusal as an API error; `not_found` names what was missing.
    fn from_service(error: ServiceError, not_found: impl FnOnce() -> Self) -> Self {
        match error {
            ServiceError::Invalid(errors) => Self::Rejected(errors),
            ServiceError::NotFound => not_found(),
            ServiceError::Conflict(current) => Self::VersionConflict {
                current: current.version,
            },
            ServiceError::Forbidden => Self::Forbidden,
            ServiceError::Refused { reason, message } => Self::NotSendable { reason, message },
            ServiceError::Unavailable => Self::Store(StoreError::Cancelled),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (status, Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            Self::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            Self::TooManyStreams { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(10u64));
            }
            _ => {}
        }
        if matches!(self, Self::Unauthenticated | Self::BadKey) {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"engage\""),
            );
        }
        response
    }
}

/// A JSON request body; refusals are problems (415 without a JSON content type, 400 for
/// broken JSON, 422 naming the field for the wrong shape, 413 when too large).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(request, state)
            .await
            .map(|Json(value)| Self(value))
            .map_err(ApiError::from)
    }
}

/// A query string; a value that does not parse is a 400 problem naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection: QueryRejection| {
                let message = rejection
                    .body_text()
                    .trim_start_matches("Failed to deserialize query string: ")
                    .to_owned();
                ApiError::BadQuery {
                    field: field_of(&message),
                    message,
                }
            })
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType {
                expected: "JSON, with Content-Type: application/json",
            },
            JsonRejection::JsonDataError(error) => {
                let message = error.body_text();
                let message = message
                    .trim_start_matches(
                        "Failed to deserialize the JSON body into the target type: ",
                    )
                    .to_owned();
                Self::BadShape {
                    field: field_of(&message),
                    message,
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

/// The field a serde error is about: "missing field `x`", "unknown field `x`", or the
/// path reported before the message (`profile.fixes[0].items_sent: invalid type …`).
fn field_of(message: &str) -> Option<String> {
    if let Some(rest) = message.split("missing field `").nth(1) {
        let name = rest.split('`').next().unwrap_or_default();
        let (path, _) = message.split_once(": ").unwrap_or((".", ""));
        return Some(match path.trim_matches('.') {
            "" => name.to_owned(),
            parent if parent.contains(' ') => name.to_owned(),
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

/// Any other path under `/api/`: a problem, not the app's HTML "not found" page.
pub async fn no_route(request: Request) -> ApiError {
    ApiError::NoRoute {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
    }
}
