//! Set-up shared by the pipeline's integration tests: a store on a temporary SQLite file
//! with one stylist, and clients who agreed to emails.

use chrono::{DateTime, Utc};
use domain::{ClientInput, NewClient, ProfileInput, StylistId};
use store::Store;

/// A fresh store in `dir` with the stylist `st-1`.
pub async fn open_store(dir: &tempfile::TempDir) -> Store {
    let store = Store::open(dir.path().join("engage.db")).unwrap();
    store
        .upsert_stylist(
            StylistId::new("st-1"),
            "Maya Okafor".into(),
            "maya@engage.example".into(),
        )
        .await
        .unwrap();
    store
}

/// A new client of `st-1` who agreed to emails, stored as of `now`.
pub async fn add_client(
    store: &Store,
    now: DateTime<Utc>,
    name: &str,
    email: &str,
) -> domain::Client {
    let input = ClientInput {
        name: name.into(),
        email: email.into(),
        stylist_id: "st-1".into(),
        status: None,
        profile: ProfileInput {
            email_opt_in: true,
            ..ProfileInput::default()
        },
    };
    store
        .create_client(NewClient::parse(&input, now).unwrap(), now)
        .await
        .unwrap()
}
