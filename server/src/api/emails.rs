//! `/api/v1/emails`: the review queue. List and read drafts, edit, approve (send),
//! reject, and ask for a new draft.

use super::{ApiError, ApiJson, ApiQuery};
use crate::auth::SignedIn;
use crate::startup::AppState;
use app::service::ServiceError;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::EmailId;
pub use domain::api::{
    ApproveMany, ApproveWhen, EditEmail, ListEmails, Regenerate, RegenerateAccepted, RejectEmail,
};
use domain::views::{ApproveReport, EmailDetail, EmailSummary};

/// Emails, newest first (a stylist sees their own clients' emails only).
#[utoipa::path(
    get,
    path = "/api/v1/emails",
    tag = "emails",
    params(ListEmails),
    responses((status = 200, body = Vec<EmailSummary>)),
)]
pub async fn list_emails(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    ApiQuery(params): ApiQuery<ListEmails>,
) -> Result<Json<Vec<EmailSummary>>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::Rejected(domain::ValidationErrors::single(
            "limit",
            "limit must be between 1 and 500",
        )));
    }
    state
        .service
        .list_emails(&user, params.status, limit)
        .await
        .map(Json)
        .map_err(|e| ApiError::from_service(e, || ApiError::NotFound("email")))
}

fn email_error(id: &EmailId) -> impl FnOnce(ServiceError) -> ApiError + '_ {
    move |error| match error {
        // The service names `email_id` when the email exists but is past review.
        ServiceError::Invalid(errors) if errors.message_for("email_id").is_some() => {
            ApiError::NotPending {
                message: errors
                    .message_for("email_id")
                    .unwrap_or_default()
                    .to_owned(),
            }
        }
        other => ApiError::from_service(other, || ApiError::EmailNotFound(id.clone())),
    }
}

/// An email with its words, why it was written and its review trail.
#[utoipa::path(
    get,
    path = "/api/v1/emails/{id}",
    tag = "emails",
    params(("id" = String, Path, description = "The email's id")),
    responses((status = 200, body = EmailDetail)),
)]
pub async fn get_email(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Json<EmailDetail>, ApiError> {
    let id = EmailId::new(id);
    state
        .service
        .email_detail(&user, id.clone())
        .await
        .map(Json)
        .map_err(email_error(&id))
}

/// Edit a draft awaiting review; the edit is recorded in its review trail.
#[utoipa::path(
    put,
    path = "/api/v1/emails/{id}",
    tag = "emails",
    params(("id" = String, Path, description = "The email's id")),
    request_body = EditEmail,
    responses(
        (status = 200, description = "The edited email", body = EmailDetail),
        (status = 409, description = "The email is no longer awaiting review", body = super::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn edit_email(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    ApiJson(edit): ApiJson<EditEmail>,
) -> Result<Json<EmailDetail>, ApiError> {
    let id = EmailId::new(id);
    state
        .service
        .edit_email(&user, id.clone(), edit.subject, edit.body)
        .await
        .map_err(email_error(&id))?;
    state
        .service
        .email_detail(&user, id.clone())
        .await
        .map(Json)
        .map_err(email_error(&id))
}

/// Approve a draft and queue it for sending, at once or when `send_at` says. The sender
/// delivers it with retries; it shows as `sent`, or `failed` after the last retry. A
/// draft whose client has unsubscribed, has no consent or is closed is withdrawn instead
/// (409, `reason`).
#[utoipa::path(
    post,
    path = "/api/v1/emails/{id}/approve",
    tag = "emails",
    params(("id" = String, Path, description = "The email's id"), ApproveWhen),
    responses(
        (status = 200, description = "Approved and queued for sending", body = ApproveReport),
        (status = 409, description = "The email is no longer awaiting review, or its client may no longer be emailed (`reason`; the draft is withdrawn)", body = super::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`send_at` is not now, usual_hour or a time to come", body = super::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn approve_email(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    ApiQuery(when): ApiQuery<ApproveWhen>,
) -> Result<Json<ApproveReport>, ApiError> {
    let id = EmailId::new(id);
    state
        .service
        .approve_emails(
            &user,
            vec![id.clone()],
            when.send_at.as_deref().unwrap_or(""),
        )
        .await
        .map(Json)
        .map_err(email_error(&id))
}

/// Approve several drafts at once (all or none) and queue them for sending. If any
/// draft's client may no longer be emailed, those drafts are withdrawn and none is approved.
#[utoipa::path(
    post,
    path = "/api/v1/emails/approve",
    tag = "emails",
    request_body = ApproveMany,
    responses(
        (status = 200, body = ApproveReport),
        (status = 404, description = "One of the emails does not exist (or is not in your book); none was approved", body = super::Problem, content_type = "application/problem+json"),
        (status = 409, description = "One of the emails is no longer awaiting review, or its client may no longer be emailed (those are withdrawn); none was approved", body = super::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn approve_many(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    ApiJson(request): ApiJson<ApproveMany>,
) -> Result<Json<ApproveReport>, ApiError> {
    // The service's rule, named by this body's field.
    ports::check_approval(&request.ids).map_err(|mut errors| {
        errors.0.iter_mut().for_each(|e| e.field = "ids".into());
        ApiError::Rejected(errors)
    })?;
    let first = request.ids[0].clone();
    state
        .service
        .approve_emails(&user, request.ids, request.send_at.as_deref().unwrap_or(""))
        .await
        .map(Json)
        .map_err(email_error(&first))
}

/// Reject a draft; it is never sent.
#[utoipa::path(
    post,
    path = "/api/v1/emails/{id}/reject",
    tag = "emails",
    params(("id" = String, Path, description = "The email's id")),
    request_body = RejectEmail,
    responses(
        (status = 200, description = "The rejected email", body = EmailDetail),
        (status = 409, description = "The email is no longer awaiting review", body = super::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn reject_email(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<RejectEmail>,
) -> Result<Json<EmailDetail>, ApiError> {
    let id = EmailId::new(id);
    state
        .service
        .reject_email(&user, id.clone(), request.reason)
        .await
        .map_err(email_error(&id))?;
    state
        .service
        .email_detail(&user, id.clone())
        .await
        .map(Json)
        .map_err(email_error(&id))
}

/// Queue a new draft of an email awaiting review; the pipeline rewrites it in place.
#[utoipa::path(
    post,
    path = "/api/v1/emails/{id}/regenerate",
    tag = "emails",
    params(("id" = String, Path, description = "The email's id")),
    request_body = Regenerate,
    responses(
        (status = 202, description = "Queued", body = RegenerateAccepted),
        (status = 409, description = "The email is no longer awaiting review", body = super::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn regenerate_email(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<Regenerate>,
) -> Result<(StatusCode, Json<RegenerateAccepted>), ApiError> {
    let email = EmailId::new(id);
    let event_id = state
        .service
        .regenerate_email(&user, email.clone(), request.instruction)
        .await
        .map_err(email_error(&email))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RegenerateAccepted {
            email_id: email,
            event_id,
        }),
    ))
}

/// Send a `failed` email again (managers and admins): it goes back on the deliveries
/// queue with the same `Message-ID`.
#[utoipa::path(
    post,
    path = "/api/v1/emails/{id}/resend",
    tag = "emails",
    params(("id" = String, Path, description = "The email's id")),
    responses(
        (status = 202, description = "Queued for sending again", body = EmailDetail),
        (status = 409, description = "The email did not fail (`reason`: `not_failed`)", body = super::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn resend_email(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<EmailDetail>), ApiError> {
    let id = EmailId::new(id);
    state
        .service
        .resend_email(&user, id.clone())
        .await
        .map_err(email_error(&id))?;
    let detail = state
        .service
        .email_detail(&user, id.clone())
        .await
        .map_err(email_error(&id))?;
    Ok((StatusCode::ACCEPTED, Json(detail)))
}
