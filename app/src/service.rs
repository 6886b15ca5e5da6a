//! The server side's handle to Engage's data, provided to server functions as context.
//! The server crate implements it over the store; tests can implement it over anything.

use domain::views::{ClientSummary, EmailSummary, Stylist};
use domain::{Client, ClientInput, EmailId, ValidationErrors};
use leptos::prelude::*;
use std::sync::Arc;

/// Why a service call failed, in terms safe to show a user. The implementation logs the
/// underlying cause; none of it reaches the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceError {
    /// The input was refused; each problem names its field.
    Invalid(ValidationErrors),
    /// Something failed on our side; the details are in the server log.
    Unavailable,
}

impl std::error::Error for ServiceError {}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(errors) => errors.fmt(f),
            Self::Unavailable => {
                f.write_str("Engage could not complete this just now; please try again.")
            }
        }
    }
}

#[async_trait::async_trait]
pub trait EngageService: Send + Sync + 'static {
    async fn list_stylists(&self) -> Result<Vec<Stylist>, ServiceError>;
    /// The newest clients first.
    async fn list_clients(&self, limit: u32) -> Result<Vec<ClientSummary>, ServiceError>;
    async fn create_client(&self, input: ClientInput) -> Result<Client, ServiceError>;
    /// The newest emails first.
    async fn list_emails(&self, limit: u32) -> Result<Vec<EmailSummary>, ServiceError>;
    /// Queues a new draft of an email awaiting review.
    async fn regenerate_email(&self, email: EmailId) -> Result<(), ServiceError>;
}

/// The shared handle as it sits in the Leptos context.
pub type Service = Arc<dyn EngageService>;

/// The service from context, or an error a server function can return.
pub fn service() -> Result<Service, ServerFnError> {
    use_context::<Service>().ok_or_else(|| {
        tracing::error!("server function called without the Engage service in context");
        ServerFnError::new(ServiceError::Unavailable.to_string())
    })
}

/// What a read failure becomes on its way to the browser.
pub fn to_server_error(error: ServiceError) -> ServerFnError {
    ServerFnError::new(error.to_string())
}
