//! The records the pipeline and the core flows need ([`Records`]) and the accounts sign-in
//! needs ([`Accounts`]), each with two implementations: the embedded SQLite store and the
//! DynamoDB store of `engage-aws`. The email processor's core works on `dyn Records`, so
//! the same scoring, policy and drafting code runs behind either; [`contract`](crate::contract)
//! is the test suite both must pass.

use crate::{
    AddUserError, CreateClientError, Effect, EmailFilter, EventContext, ListError, Outcome, Result,
    ScoreChange, UpdateClientError,
};
use chrono::{DateTime, Utc};
use domain::outcomes::Decision;
use domain::user::{ApiKey, NewApiKey, Password, Role, User};
use domain::views::{ClientPage, EmailSummary};
use domain::{
    Client, ClientEmail, ClientId, EmailId, EmailKind, EventId, NewClient, StylistId,
    ValidationErrors,
};

/// An edit of a stored client (see [`Records::update_client`]).
pub type ClientChange = Box<dyn FnOnce(&mut Client) -> Result<(), ValidationErrors> + Send>;

#[async_trait::async_trait]
pub trait Records: Send + Sync + 'static {
    /// Adds a stylist, or renames one.
    async fn upsert_stylist(&self, id: StylistId, name: String, email: String) -> Result<()>;

    /// Stores a new client at version 1, refusing an unknown stylist or an address already
    /// on file (errors name the field). Its change is captured with it.
    async fn create_client(
        &self,
        new: NewClient,
        now: DateTime<Utc>,
    ) -> Result<Client, CreateClientError>;

    async fn get_client(&self, id: ClientId) -> Result<Option<Client>>;

    /// Applies `change` to the stored client and stores the next version, unless the client
    /// has moved past `expected_version` (optimistic concurrency). A change that alters
    /// nothing writes nothing.
    async fn update_client(
        &self,
        id: ClientId,
        expected_version: Option<u64>,
        now: DateTime<Utc>,
        change: ClientChange,
    ) -> Result<Client, UpdateClientError>;

    /// [`Records::update_client`] for a client in `scope` (a stylist's book; `None`: any);
    /// a client outside it is `NotFound`. This default checks the book, then updates; a
    /// store that can do both in one step overrides it.
    async fn update_client_in(
        &self,
        scope: Option<StylistId>,
        id: ClientId,
        expected_version: Option<u64>,
        now: DateTime<Utc>,
        change: ClientChange,
    ) -> Result<Client, UpdateClientError> {
        let in_scope = self
            .get_client(id.clone())
            .await?
            .is_some_and(|client| scope.as_ref().is_none_or(|own| *own == client.stylist_id));
        if !in_scope {
            return Err(UpdateClientError::NotFound);
        }
        self.update_client(id, expected_version, now, change).await
    }

    /// A stylist's clients, lowest score first (unscored first of all), a page at a time:
    /// `after` is the previous page's `next`.
    async fn clients_by_score(
        &self,
        stylist: StylistId,
        after: Option<String>,
        limit: u32,
    ) -> Result<ClientPage, ListError>;

    /// A client's scores, newest first.
    async fn score_history(&self, client: ClientId, limit: u32) -> Result<Vec<ScoreChange>>;

    /// Emails newest first, by status or by client (and within a stylist's book).
    async fn emails(&self, filter: EmailFilter, limit: u32) -> Result<Vec<EmailSummary>>;

    /// What handling each `(event, client)` needs to know, in the order asked.
    async fn event_contexts(&self, wanted: Vec<(EventId, ClientId)>) -> Result<Vec<EventContext>>;

    /// A client's decisions, newest first: drafted, held out, or skipped with the reason.
    async fn decisions(&self, client: ClientId, limit: u32) -> Result<Vec<Decision>>;

    /// The kind of an email, for redrafting it.
    async fn email_kind(&self, email: EmailId) -> Result<Option<EmailKind>>;

    /// Records one event's effect — score, draft or redraft — all or nothing and at most
    /// once per event id (the idempotency record is written with it).
    async fn record_outcome(&self, effect: Effect, now: DateTime<Utc>) -> Result<Outcome>;
}

/// Accounts, sign-in sessions and the app's own secrets, on SQLite or DynamoDB.
#[async_trait::async_trait]
pub trait Accounts: Send + Sync + 'static {
    /// Adds an account; a stylist account names an existing stylist, addresses are unique.
    async fn add_user(
        &self,
        email: ClientEmail,
        role: Role,
        stylist: Option<StylistId>,
        password: Password,
        now: DateTime<Utc>,
    ) -> Result<User, AddUserError>;
    async fn user_count(&self) -> Result<u64>;
    /// The account with this address and password, if they match (in constant time
    /// whether or not the address is known).
    async fn authenticate(&self, email: String, password: String) -> Result<Option<User>>;
    /// Starts a session lasting `ttl`; returns the token for the cookie.
    async fn create_session(
        &self,
        user: &User,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<String>;
    /// The account a session token belongs to, unless it expired or was ended.
    async fn session_user(&self, token: String, now: DateTime<Utc>) -> Result<Option<User>>;
    async fn end_session(&self, token: String) -> Result<()>;
    /// Deletes expired sessions; returns how many.
    async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<u64>;
    /// The random secret called `name`, made on first use and kept.
    async fn secret(&self, name: &'static str) -> Result<String>;
    /// Creates an API key (a stylist key names an existing stylist); the secret is in the
    /// answer and nowhere else.
    async fn create_api_key(
        &self,
        name: String,
        role: Role,
        stylist: Option<StylistId>,
        now: DateTime<Utc>,
    ) -> Result<NewApiKey, AddUserError>;
    /// The unrevoked key a presented secret belongs to.
    async fn api_key(&self, secret: String) -> Result<Option<ApiKey>>;
    /// Every key, newest first.
    async fn api_keys(&self) -> Result<Vec<ApiKey>>;
    /// Revokes a key; `None` if there is none with this id.
    async fn revoke_api_key(&self, id: String, now: DateTime<Utc>) -> Result<Option<ApiKey>>;
}
