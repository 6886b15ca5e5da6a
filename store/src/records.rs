//! The [`Records`] and [`Accounts`] ports on the embedded SQLite store: each method is the
//! store's own.

use crate::{Result, Store};
use chrono::{DateTime, Utc};
use domain::outcomes::Decision;
use domain::user::{ApiKey, NewApiKey, Password, Role, User};
use domain::views::{ClientPage, ClientQuery, ClientSort, EmailSummary};
use domain::{Client, ClientEmail, ClientId, EmailId, EmailKind, EventId, NewClient, StylistId};
use ports::{
    Accounts, AddUserError, ClientChange, CreateClientError, Effect, EmailFilter, EventContext,
    ListError, Outcome, Records, ScoreChange, UpdateClientError,
};

#[async_trait::async_trait]
impl Records for Store {
    async fn upsert_stylist(&self, id: StylistId, name: String, email: String) -> Result<()> {
        Store::upsert_stylist(self, id, name, email).await
    }

    async fn create_client(
        &self,
        new: NewClient,
        now: DateTime<Utc>,
    ) -> Result<Client, CreateClientError> {
        Store::create_client(self, new, now).await
    }

    async fn get_client(&self, id: ClientId) -> Result<Option<Client>> {
        Store::get_client(self, id).await
    }

    async fn update_client(
        &self,
        id: ClientId,
        expected_version: Option<u64>,
        now: DateTime<Utc>,
        change: ClientChange,
    ) -> Result<Client, UpdateClientError> {
        Store::update_client(self, id, expected_version, now, change).await
    }

    /// Checks the book and updates in one transaction.
    async fn update_client_in(
        &self,
        scope: Option<StylistId>,
        id: ClientId,
        expected_version: Option<u64>,
        now: DateTime<Utc>,
        change: ClientChange,
    ) -> Result<Client, UpdateClientError> {
        Store::update_client_in(self, scope, id, expected_version, now, change).await
    }

    async fn clients_by_score(
        &self,
        stylist: StylistId,
        after: Option<String>,
        limit: u32,
    ) -> Result<ClientPage, ListError> {
        let query = ClientQuery {
            sort: ClientSort::ScoreLowest,
            after,
            limit,
            ..ClientQuery::default()
        };
        self.list_clients(query, Some(stylist)).await
    }

    async fn score_history(&self, client: ClientId, limit: u32) -> Result<Vec<ScoreChange>> {
        Store::score_history(self, client, limit).await
    }

    async fn emails(&self, filter: EmailFilter, limit: u32) -> Result<Vec<EmailSummary>> {
        self.find_emails(filter, limit).await
    }

    async fn event_contexts(&self, wanted: Vec<(EventId, ClientId)>) -> Result<Vec<EventContext>> {
        Store::event_contexts(self, wanted).await
    }

    async fn decisions(&self, client: ClientId, limit: u32) -> Result<Vec<Decision>> {
        Store::decisions(self, client, limit).await
    }

    async fn email_kind(&self, email: EmailId) -> Result<Option<EmailKind>> {
        Store::email_kind(self, email).await
    }

    async fn record_outcome(&self, effect: Effect, now: DateTime<Utc>) -> Result<Outcome> {
        Store::record_outcome(self, effect, now).await
    }
}

#[async_trait::async_trait]
impl Accounts for Store {
    async fn add_user(
        &self,
        email: ClientEmail,
        role: Role,
        stylist: Option<StylistId>,
        password: Password,
        now: DateTime<Utc>,
    ) -> Result<User, AddUserError> {
        Store::add_user(self, email, role, stylist, password, now).await
    }
    async fn user_count(&self) -> Result<u64> {
        Store::user_count(self).await
    }
    async fn authenticate(&self, email: String, password: String) -> Result<Option<User>> {
        Store::authenticate(self, email, password).await
    }
    async fn create_session(
        &self,
        user: &User,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<String> {
        Store::create_session(self, user, now, ttl).await
    }
    async fn session_user(&self, token: String, now: DateTime<Utc>) -> Result<Option<User>> {
        Store::session_user(self, token, now).await
    }
    async fn end_session(&self, token: String) -> Result<()> {
        Store::end_session(self, token).await
    }
    async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        Store::purge_sessions(self, now).await
    }
    async fn secret(&self, name: &'static str) -> Result<String> {
        Store::secret(self, name).await
    }

    async fn create_api_key(
        &self,
        name: String,
        role: Role,
        stylist: Option<StylistId>,
        now: DateTime<Utc>,
    ) -> Result<NewApiKey, AddUserError> {
        Store::create_api_key(self, &name, role, stylist, now).await
    }

    async fn api_key(&self, secret: String) -> Result<Option<ApiKey>> {
        Store::api_key(self, secret).await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        Store::api_keys(self).await
    }

    async fn revoke_api_key(&self, id: String, now: DateTime<Utc>) -> Result<Option<ApiKey>> {
        Store::revoke_api_key(self, id, now).await
    }
}
