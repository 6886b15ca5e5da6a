//! What can go wrong writing or listing clients, and a new client's first version.

use crate::StoreError;
use chrono::{DateTime, Utc};
use domain::{Client, ClientId, NewClient, ValidationErrors};

/// Why a client could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateClientError {
    /// The input conflicts with what is stored (unknown stylist, email already taken).
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a client could not be updated.
#[derive(Debug, thiserror::Error)]
pub enum UpdateClientError {
    #[error("no such client")]
    NotFound,
    /// Someone else changed the client since the version the update was based on.
    #[error("the client was changed meanwhile; it is now at version {current}")]
    VersionConflict { current: u64 },
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a bulk import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    pub created: u32,
    /// Clients whose email address was already on file; left untouched.
    pub skipped: u32,
}

/// Why a list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("the cursor is not one this list gave out")]
    BadCursor,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new client's first stored version, with a fresh time-ordered id.
pub fn first_version(new: NewClient, now: DateTime<Utc>) -> Client {
    Client {
        id: new
            .id
            .unwrap_or_else(|| ClientId::new(uuid::Uuid::now_v7().to_string())),
        name: new.name,
        email: new.email,
        stylist_id: new.stylist_id,
        status: new.status,
        version: 1,
        created_at: now,
        updated_at: now,
        profile: new.profile,
    }
}
