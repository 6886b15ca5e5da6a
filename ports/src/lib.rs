//! The ports of Engage's application core: what the web service (`engage::service::Engage`),
//! the processors and the operator commands need from storage and messaging, named without
//! any database. The embedded SQLite store (`store`) and the DynamoDB/SQS/SNS adapters
//! (`engage-aws`) implement them; [`contract`] is the suite of checks both pass.
//!
//! A port answers for the data only. Who may see what is decided above it: the service
//! passes a stylist's book as `scope` (`None`: every book) and acts on the answer.

mod accounts;
mod books;
mod clients;
#[cfg(feature = "contract")]
pub mod contract;
mod effects;
mod operations;
mod page;
mod records;
mod review;
mod sending;

pub use accounts::{
    AddUserError, check_account_role, hash_password, new_api_key_secret, new_token,
    password_matches, token_hash,
};
pub use books::{Books, MAX_APPROVE_AT_ONCE, Model, Review, Views, check_approval};
pub use clients::{CreateClientError, ImportOutcome, ListError, UpdateClientError, first_version};
pub use domain::api::{QueueStats, ScoreChange};
pub use domain::view_facts::DashboardFigures;
pub use effects::{
    DraftUsage, Effect, EventContext, NewDraft, NewScore, Outcome, RECENT_DECISIONS,
};
pub use operations::{ClientKeys, DeadLetter, Operations};
pub use page::{ClientPageData, PageLimits, StoredFit};
pub use records::{Accounts, ClientChange, Records};
pub use review::{
    EmailFilter, MAX_BODY_CHARS, MAX_SUBJECT_CHARS, Outgoing, ReviewError, Reviewer,
    check_reject_reason, check_text,
};
pub use sending::{DeliveryRequest, Sendable, Sending};

/// The queue domain events wait on for the email processor.
pub const EVENTS_QUEUE: &str = "events";

/// The queue approved emails wait on for the sender.
pub const DELIVERIES_QUEUE: &str = "deliveries";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed the request (the embedded SQLite file).
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Stored data that no longer parses: a bug or a hand edit, never user input.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the database task was cancelled")]
    Cancelled,
    /// The transaction holding this write could not be committed; nothing of it was stored.
    #[error("the write could not be committed: {0}")]
    Commit(String),
    #[error("cannot open the database at {path}: {reason}")]
    Open { path: String, reason: String },
    /// A remote database service (DynamoDB) refused or failed the request.
    #[error("database service error: {0}")]
    Service(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
