//! The server side's handle to Engage's data, provided to server functions as context.
//! The server crate implements it over the store; tests can implement it over anything.
//!
//! Every call names the signed-in [`User`] it acts for: a stylist reaches only their own
//! book, and anything outside it is [`ServiceError::NotFound`], exactly like something
//! that does not exist.

use crate::error::AppError;
use domain::StylistId;
use domain::ValidationErrors;
use domain::user::{ApiKey, NewApiKey, Role, User};
use domain::views::{
    ApproveReport, ClientDetail, ClientPage, ClientQuery, EmailDetail, EmailSummary, Stylist,
};
use domain::{Activity, Client, ClientEdit, ClientId, ClientInput, EmailId, EmailStatus, EventId};
use leptos::prelude::*;
use std::sync::Arc;

/// Why a service call failed, in terms safe to show a user. The implementation logs the
/// underlying cause; none of it reaches the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceError {
    /// The input was refused; each problem names its field.
    Invalid(ValidationErrors),
    /// No such thing, or not one this user may see.
    NotFound,
    /// Someone else changed the client since the form was loaded; here it is now.
    Conflict(Box<Client>),
    /// The user's role does not allow this.
    Forbidden,
    /// The email cannot go out: its client may no longer be emailed (`reason` is the
    /// [`domain::consent::NoEmail`] code), or it is not in a state to be sent again.
    Refused { reason: String, message: String },
    /// Something failed on our side; the details are in the server log.
    Unavailable,
}

impl std::error::Error for ServiceError {}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(errors) => errors.fmt(f),
            Self::NotFound => f.write_str("Not found."),
            Self::Conflict(_) => {
                f.write_str("Someone else changed this client meanwhile; their version is shown.")
            }
            Self::Forbidden => f.write_str("Your role does not allow this."),
            Self::Refused { message, .. } => f.write_str(message),
            Self::Unavailable => {
                f.write_str("Engage could not complete this just now; please try again.")
            }
        }
    }
}

#[async_trait::async_trait]
pub trait EngageService: Send + Sync + 'static {
    /// The stylists this user may assign clients to (a stylist: only themselves).
    async fn list_stylists(&self, viewer: &User) -> Result<Vec<Stylist>, ServiceError>;
    async fn list_clients(
        &self,
        viewer: &User,
        query: ClientQuery,
    ) -> Result<ClientPage, ServiceError>;
    async fn client_detail(
        &self,
        viewer: &User,
        id: ClientId,
    ) -> Result<ClientDetail, ServiceError>;
    async fn create_client(
        &self,
        viewer: &User,
        input: ClientInput,
    ) -> Result<Client, ServiceError>;
    /// Saves the edit form, refused with [`ServiceError::Conflict`] unless the client is
    /// still at `expected_version`.
    async fn update_client(
        &self,
        viewer: &User,
        id: ClientId,
        expected_version: u64,
        edit: ClientEdit,
    ) -> Result<Client, ServiceError>;
    /// Records a Fix, purchase or feedback; with `expected_version`, refused with
    /// [`ServiceError::Conflict`] unless the client is still at that version.
    async fn record_activity(
        &self,
        viewer: &User,
        id: ClientId,
        activity: Activity,
        expected_version: Option<u64>,
    ) -> Result<Client, ServiceError>;
    /// The newest emails first, of one status or all.
    async fn list_emails(
        &self,
        viewer: &User,
        status: Option<EmailStatus>,
        limit: u32,
    ) -> Result<Vec<EmailSummary>, ServiceError>;
    async fn email_detail(&self, viewer: &User, id: EmailId) -> Result<EmailDetail, ServiceError>;
    async fn edit_email(
        &self,
        viewer: &User,
        id: EmailId,
        subject: String,
        body: String,
    ) -> Result<(), ServiceError>;
    /// Approves drafts and queues them for sending, all or none, when `send_at` says
    /// (`now` or empty, `usual_hour`, or an RFC 3339 time; anything else is refused on the
    /// field `send_at`). A draft whose client may no longer be emailed is withdrawn
    /// instead, and then none is approved ([`ServiceError::Refused`]).
    async fn approve_emails(
        &self,
        viewer: &User,
        ids: Vec<EmailId>,
        send_at: &str,
    ) -> Result<ApproveReport, ServiceError>;
    /// Sends a `failed` email again (managers and admins).
    async fn resend_email(&self, viewer: &User, id: EmailId) -> Result<(), ServiceError>;
    async fn reject_email(
        &self,
        viewer: &User,
        id: EmailId,
        reason: String,
    ) -> Result<(), ServiceError>;
    /// The manager's dashboard from `from` to `to` (`YYYY-MM-DD`; empty: the last 30 days),
    /// for managers and admins only.
    async fn dashboard(
        &self,
        viewer: &User,
        from: String,
        to: String,
    ) -> Result<domain::dashboard::Dashboard, ServiceError>;
    /// Does the outreach work? Emailed against held-out clients per kind and writer
    /// (managers and admins only).
    async fn outcomes(&self, viewer: &User) -> Result<domain::outcomes::Outcomes, ServiceError>;
    /// Events that failed too often (managers and admins only).
    async fn dead_letters(
        &self,
        viewer: &User,
    ) -> Result<Vec<domain::dashboard::DeadLetterView>, ServiceError>;
    /// Puts dead letters (all, or one) back on the queue; returns how many.
    async fn redrive(&self, viewer: &User, id: Option<i64>) -> Result<u64, ServiceError>;
    /// The REST API's keys, newest first (admins only).
    async fn api_keys(&self, viewer: &User) -> Result<Vec<ApiKey>, ServiceError>;
    /// Creates an API key (admins only); the answer holds the secret, shown once.
    async fn create_api_key(
        &self,
        viewer: &User,
        name: String,
        role: Role,
        stylist: Option<StylistId>,
    ) -> Result<NewApiKey, ServiceError>;
    /// Revokes an API key (admins only).
    async fn revoke_api_key(&self, viewer: &User, id: String) -> Result<ApiKey, ServiceError>;
    /// Queues a new draft of an email awaiting review; returns the queued event's id.
    async fn regenerate_email(
        &self,
        viewer: &User,
        id: EmailId,
        instruction: Option<String>,
    ) -> Result<EventId, ServiceError>;
}

/// The shared handle as it sits in the Leptos context.
pub type Service = Arc<dyn EngageService>;

/// The signed-in user of the request being served (the server's guard put it there).
pub fn signed_in() -> Option<User> {
    use_context::<http::request::Parts>().and_then(|parts| parts.extensions.get::<User>().cloned())
}

/// The service and the signed-in user, for a server function.
pub fn service_for_user() -> Result<(Service, User), AppError> {
    let user = signed_in().ok_or(AppError::SignedOut)?;
    let service = use_context::<Service>().ok_or_else(|| {
        tracing::error!("server function called without the Engage service in context");
        AppError::Unavailable
    })?;
    Ok((service, user))
}
