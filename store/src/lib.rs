//! Persistence and messaging for Engage's embedded default: one SQLite file (WAL) holding the
//! records, the change feed written in the same transaction as each record, and durable
//! queues with SQS semantics. Nothing else in Engage talks to the database.
//!
//! Every method is async and runs its SQL on tokio's blocking pool; writes go through one
//! connection (SQLite allows one writer at a time), reads through a small pool.

mod clients;
mod db;
mod emails;
mod feed;
mod queue;

pub use clients::CreateClientError;
pub use db::Store;
pub use emails::{NewDraft, Outcome};
pub use queue::{QueueStats, ReceivedMessage};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// Stored data that no longer parses: a bug or a hand edit, never user input.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the database task was cancelled")]
    Cancelled,
    #[error("cannot open the database at {path}: {reason}")]
    Open { path: String, reason: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Duration, Utc};
    use domain::{ClientInput, DomainEvent, NewClient, StylistId};

    pub(crate) fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    async fn store_with_stylist() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("engage.db")).unwrap();
        store
            .upsert_stylist(
                StylistId::new("st-1"),
                "Maya Okafor".into(),
                "maya@engage.example".into(),
            )
            .await
            .unwrap();
        (dir, store)
    }

    fn new_client(name: &str, email: &str) -> NewClient {
        NewClient::parse(&ClientInput {
            name: name.into(),
            email: email.into(),
            stylist_id: "st-1".into(),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn creating_a_client_appends_its_change_record() {
        let (_dir, store) = store_with_stylist().await;
        let client = store
            .create_client(
                new_client("Ada Lovelace", "ada@example.com"),
                at("2026-01-01T10:00:00Z"),
            )
            .await
            .unwrap();
        let changes = store.read_changes(0, 10).await.unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].old, None);
        assert_eq!(changes[0].new, client);
        assert_eq!(
            store.get_client(client.id.clone()).await.unwrap(),
            Some(client)
        );
    }

    #[tokio::test]
    async fn a_duplicate_email_is_refused_by_field_and_writes_nothing() {
        let (_dir, store) = store_with_stylist().await;
        let now = at("2026-01-01T10:00:00Z");
        store
            .create_client(new_client("Ada Lovelace", "ada@example.com"), now)
            .await
            .unwrap();
        let error = store
            .create_client(new_client("Another Ada", "ADA@example.com"), now)
            .await
            .unwrap_err();
        let CreateClientError::Invalid(errors) = error else {
            panic!("expected a field error, got {error:?}")
        };
        assert!(errors.message_for("email").is_some());
        assert_eq!(store.client_count().await.unwrap(), 1);
        assert_eq!(store.read_changes(0, 10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_unknown_stylist_is_refused_by_field() {
        let (_dir, store) = store_with_stylist().await;
        let mut client = new_client("Ada Lovelace", "ada@example.com");
        client.stylist_id = StylistId::new("st-nobody");
        let Err(CreateClientError::Invalid(errors)) = store
            .create_client(client, at("2026-01-01T10:00:00Z"))
            .await
        else {
            panic!("expected a field error")
        };
        assert!(errors.message_for("stylist_id").is_some());
        assert_eq!(store.client_count().await.unwrap(), 0);
    }

    async fn publish_one(store: &Store, now: DateTime<Utc>) -> DomainEvent {
        let client = store
            .create_client(new_client("Ada Lovelace", "ada@example.com"), now)
            .await
            .unwrap();
        let change = store.read_changes(0, 10).await.unwrap().remove(0);
        let events = domain::event::events_from_change(&change);
        store
            .publish("test", change.seq, "q", events.clone(), now)
            .await
            .unwrap();
        assert_eq!(events[0].client_id, client.id);
        events.into_iter().next().unwrap()
    }

    #[tokio::test]
    async fn publishing_moves_the_checkpoint_and_never_duplicates_an_event() {
        let (_dir, store) = store_with_stylist().await;
        let now = at("2026-01-01T10:00:00Z");
        let event = publish_one(&store, now).await;
        assert_eq!(store.checkpoint("test").await.unwrap(), 1);
        // Publishing the same event again (a crash before the checkpoint moved) adds nothing.
        store
            .publish("test", 1, "q", vec![event], now)
            .await
            .unwrap();
        assert_eq!(store.queue_stats("q", now).await.unwrap().visible, 1);
        assert_eq!(store.feed_lag("test").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_received_message_is_hidden_until_its_visibility_timeout() {
        let (_dir, store) = store_with_stylist().await;
        let now = at("2026-01-01T10:00:00Z");
        publish_one(&store, now).await;
        let first = store
            .receive("q", 10, Duration::seconds(30), now)
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].receive_count, 1);
        assert!(
            store
                .receive("q", 10, Duration::seconds(30), now + Duration::seconds(29))
                .await
                .unwrap()
                .is_empty()
        );
        let again = store
            .receive("q", 10, Duration::seconds(30), now + Duration::seconds(31))
            .await
            .unwrap();
        assert_eq!(again[0].id, first[0].id);
        assert_eq!(again[0].receive_count, 2);
        store.delete_message(first[0].id).await.unwrap();
        assert_eq!(
            store
                .queue_stats("q", now + Duration::hours(1))
                .await
                .unwrap(),
            QueueStats::default()
        );
    }

    #[tokio::test]
    async fn a_message_failing_too_often_moves_to_the_dead_letter_queue_with_its_error() {
        let (_dir, store) = store_with_stylist().await;
        let mut now = at("2026-01-01T10:00:00Z");
        publish_one(&store, now).await;
        for attempt in 1..=3 {
            let received = store
                .receive("q", 10, Duration::seconds(30), now)
                .await
                .unwrap();
            assert_eq!(
                received.len(),
                1,
                "attempt {attempt} should receive the message"
            );
            let dead = store
                .release_failed(
                    received[0].id,
                    format!("boom {attempt}"),
                    Duration::seconds(5),
                    3,
                    now,
                )
                .await
                .unwrap();
            assert_eq!(dead, attempt == 3);
            // Not visible again before the back-off has passed.
            assert!(
                store
                    .receive("q", 10, Duration::seconds(30), now + Duration::seconds(4))
                    .await
                    .unwrap()
                    .is_empty()
            );
            now += Duration::seconds(6);
        }
        let stats = store.queue_stats("q", now).await.unwrap();
        assert_eq!(
            (stats.visible, stats.in_flight, stats.dead_letters),
            (0, 0, 1)
        );
    }
}
