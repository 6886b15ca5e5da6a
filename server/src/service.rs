//! The app's service handle implemented over the store: what server functions call.

use app::service::{EngageService, ServiceError};
use domain::views::{ClientSummary, EmailSummary, Stylist};
use domain::{Client, ClientInput, EmailId, NewClient, ValidationErrors};
use processors::Clock;
use std::sync::Arc;
use store::{CreateClientError, RedraftError, Store, StoreError};

pub struct StoreService {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl StoreService {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }
}

/// Logs the real cause; the user is told only that it failed.
fn unavailable(error: StoreError) -> ServiceError {
    tracing::error!(%error, "store operation failed");
    ServiceError::Unavailable
}

#[async_trait::async_trait]
impl EngageService for StoreService {
    async fn list_stylists(&self) -> Result<Vec<Stylist>, ServiceError> {
        self.store.list_stylists().await.map_err(unavailable)
    }

    async fn list_clients(&self, limit: u32) -> Result<Vec<ClientSummary>, ServiceError> {
        self.store.list_clients(limit).await.map_err(unavailable)
    }

    #[tracing::instrument(skip_all)]
    async fn create_client(&self, input: ClientInput) -> Result<Client, ServiceError> {
        let now = self.clock.now();
        let new = NewClient::parse(&input, now).map_err(ServiceError::Invalid)?;
        match self.store.create_client(new, now).await {
            Ok(client) => {
                tracing::info!(client_id = %client.id, stylist_id = %client.stylist_id, "client created");
                Ok(client)
            }
            Err(CreateClientError::Invalid(errors)) => Err(ServiceError::Invalid(errors)),
            Err(CreateClientError::Store(error)) => Err(unavailable(error)),
        }
    }

    #[tracing::instrument(skip_all, fields(email_id = %email))]
    async fn regenerate_email(&self, email: EmailId) -> Result<(), ServiceError> {
        let refused =
            |message: &str| ServiceError::Invalid(ValidationErrors::single("email_id", message));
        match self
            .store
            .request_redraft(processors::EVENTS_QUEUE, email, None, self.clock.now())
            .await
        {
            Ok(_) => Ok(()),
            Err(RedraftError::NotFound) => Err(refused("This email no longer exists.")),
            Err(RedraftError::NotPending { .. }) => {
                Err(refused("Only a draft awaiting review can be redrafted."))
            }
            Err(RedraftError::Store(error)) => Err(unavailable(error)),
        }
    }

    async fn list_emails(&self, limit: u32) -> Result<Vec<EmailSummary>, ServiceError> {
        self.store
            .list_emails(None, limit)
            .await
            .map_err(unavailable)
    }
}
