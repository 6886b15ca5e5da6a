//! Persistence and messaging for Engage's embedded default: one SQLite file (WAL) holding the
//! records, the change feed written in the same transaction as each record, and durable
//! queues with SQS semantics. Nothing else in Engage talks to the database.
//!
//! Every method is async and runs its SQL on tokio's blocking pool; writes go through one
//! connection (SQLite allows one writer at a time), reads through a small pool.

mod adapters;
mod clients;
mod db;
mod decisions;
mod emails;
mod feed;
mod model;
mod operations;
mod queue;
mod recent;
mod records;
mod review;
mod timeline;
pub mod users;
mod views;

pub use db::Store;
pub use emails::{Failure, Handled, Settled};
pub use feed::{InlinePublish, STREAM_CHECKPOINT};
pub use queue::{Receive, ReceivedMessage};
pub use recent::RecentCache;
pub use views::VIEW_TABLES;

pub(crate) use ports::{Result, StoreError};

/// A failure of the SQLite database, as the ports report it.
pub(crate) fn db_error(error: rusqlite::Error) -> StoreError {
    StoreError::Database(Box::new(error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Duration, Utc};
    use domain::profile::FixInput;
    use domain::{ClientInput, DomainEvent, NewClient, ProfileInput, StylistId};
    use ports::{
        AddUserError, CreateClientError, ImportOutcome, ListError, PageLimits, QueueStats,
        StoredFit, UpdateClientError,
    };

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
        NewClient::parse(
            &ClientInput {
                name: name.into(),
                email: email.into(),
                stylist_id: "st-1".into(),
                status: None,
                profile: ProfileInput::default(),
            },
            at("2026-01-01T10:00:00Z"),
        )
        .unwrap()
    }

    /// A client with Fixes on the given dates (one kept item at $50 each).
    fn client_with_fixes(email: &str, signed_up_on: &str, fixes: &[&str]) -> NewClient {
        NewClient::parse(
            &ClientInput {
                name: "Grace Hopper".into(),
                email: email.into(),
                stylist_id: "st-1".into(),
                status: None,
                profile: ProfileInput {
                    email_opt_in: true,
                    signed_up_on: Some(signed_up_on.into()),
                    fixes: fixes
                        .iter()
                        .map(|d| FixInput {
                            delivered_on: (*d).into(),
                            items_sent: 5,
                            items_kept: 1,
                            order_value: "50".into(),
                        })
                        .collect(),
                    ..ProfileInput::default()
                },
            },
            at("2026-01-01T10:00:00Z"),
        )
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_commit_together_and_a_failing_one_writes_nothing() {
        let (_dir, store) = store_with_stylist().await;
        let now = at("2026-01-01T10:00:00Z");
        let mut writes = Vec::new();
        for i in 0..40 {
            // Five of the forty reuse one address: only the first of them may be stored.
            let email = if i % 8 == 0 {
                "shared@example.com".to_owned()
            } else {
                format!("c{i}@example.com")
            };
            let store = store.clone();
            writes.push(tokio::spawn(async move {
                store
                    .create_client(new_client(&format!("Client {i}"), &email), now)
                    .await
            }));
        }
        let mut created = 0;
        let mut refused = 0;
        for write in writes {
            match write.await.unwrap() {
                Ok(_) => created += 1,
                Err(CreateClientError::Invalid(errors)) => {
                    assert!(errors.message_for("email").is_some());
                    refused += 1;
                }
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!((created, refused), (36, 4));
        assert_eq!(store.client_count().await.unwrap(), 36);
        assert_eq!(
            store.read_changes(0, 100).await.unwrap().len(),
            36,
            "no change record without its client"
        );
    }

    #[tokio::test]
    async fn an_update_writes_a_new_version_with_its_change_record() {
        let (_dir, store) = store_with_stylist().await;
        let now = at("2026-01-01T10:00:00Z");
        let client = store
            .create_client(new_client("Ada", "ada@example.com"), now)
            .await
            .unwrap();
        let later = at("2026-01-02T10:00:00Z");
        let updated = store
            .update_client(client.id.clone(), Some(1), later, |c| {
                c.status = domain::ClientStatus::Paused;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!((updated.version, updated.updated_at), (2, later));
        let changes = store.read_changes(0, 10).await.unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1].old.as_ref().unwrap(), &client);
        assert_eq!(changes[1].new, updated);

        // Based on a stale version: refused, nothing written.
        let stale = store
            .update_client(client.id.clone(), Some(1), later, |c| {
                c.status = domain::ClientStatus::Closed;
                Ok(())
            })
            .await;
        assert!(matches!(
            stale,
            Err(UpdateClientError::VersionConflict { current: 2 })
        ));
        // A change that changes nothing writes nothing.
        let same = store
            .update_client(client.id.clone(), None, later, |_| Ok(()))
            .await
            .unwrap();
        assert_eq!(same.version, 2);
        assert_eq!(store.read_changes(0, 10).await.unwrap().len(), 2);
        // Refused by the change itself: nothing written either.
        let refused = store
            .update_client(client.id.clone(), None, later, |c| {
                c.status = domain::ClientStatus::Closed;
                Err(domain::ValidationErrors::single("status", "no"))
            })
            .await;
        assert!(matches!(refused, Err(UpdateClientError::Invalid(_))));
        assert_eq!(
            store
                .get_client(client.id.clone())
                .await
                .unwrap()
                .unwrap()
                .status,
            domain::ClientStatus::Paused
        );
        assert!(matches!(
            store
                .update_client(domain::ClientId::new("nobody"), None, later, |_| Ok(()))
                .await,
            Err(UpdateClientError::NotFound)
        ));
    }

    #[tokio::test]
    async fn published_changes_are_purged_after_their_retention_and_unpublished_ones_never() {
        let (_dir, store) = store_with_stylist().await;
        let now = at("2026-01-01T10:00:00Z");
        let event = publish_one(&store, now).await;
        store
            .create_client(new_client("Grace", "grace@example.com"), now)
            .await
            .unwrap();
        assert_eq!(event.client_version, 1);
        // Only the first change is published; a purge before its retention keeps it.
        assert_eq!(store.purge_published_changes(now).await.unwrap(), 0);
        assert_eq!(
            store
                .purge_published_changes(now + Duration::hours(24))
                .await
                .unwrap(),
            1
        );
        let left = store.read_changes(0, 10).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].seq, 2, "the unpublished change stays");
        assert_eq!(store.feed_lag("test").await.unwrap(), 1);
    }

    #[tokio::test]
    async fn accounts_sign_in_with_their_password_and_sessions_expire_or_end() {
        use domain::user::{Password, Role};
        let (_dir, store) = store_with_stylist().await;
        let now = at("2026-01-01T10:00:00Z");
        let email = domain::ClientEmail::parse("maya@engage.example").unwrap();
        let password = Password::parse("correct horse battery").unwrap();
        let user = store
            .add_user(
                email.clone(),
                Role::Stylist,
                Some(StylistId::new("st-1")),
                password.clone(),
                now,
            )
            .await
            .unwrap();
        assert_eq!(store.user_count().await.unwrap(), 1);
        // The same address twice, a stylist account without a stylist, an unknown stylist.
        for (role, stylist, field) in [
            (Role::Manager, None, "email"),
            (Role::Stylist, None, "stylist_id"),
            (
                Role::Stylist,
                Some(StylistId::new("st-nobody")),
                "stylist_id",
            ),
        ] {
            let other = if field == "email" {
                email.clone()
            } else {
                domain::ClientEmail::parse("new@engage.example").unwrap()
            };
            let Err(AddUserError::Invalid(errors)) = store
                .add_user(other, role, stylist, password.clone(), now)
                .await
            else {
                panic!("expected a field error on {field}")
            };
            assert!(errors.message_for(field).is_some(), "{errors}");
        }
        assert_eq!(
            store
                .authenticate(
                    " MAYA@engage.example ".into(),
                    "correct horse battery".into()
                )
                .await
                .unwrap(),
            Some(user.clone())
        );
        assert_eq!(
            store
                .authenticate("maya@engage.example".into(), "wrong password!!".into())
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .authenticate(
                    "nobody@engage.example".into(),
                    "correct horse battery".into()
                )
                .await
                .unwrap(),
            None
        );

        let token = store
            .create_session(&user, now, Duration::hours(8))
            .await
            .unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(
            store
                .session_user(token.clone(), now + Duration::hours(1))
                .await
                .unwrap(),
            Some(user.clone())
        );
        assert_eq!(
            store
                .session_user(token.clone(), now + Duration::hours(9))
                .await
                .unwrap(),
            None,
            "expired"
        );
        assert_eq!(
            store.session_user("forged".into(), now).await.unwrap(),
            None
        );
        store.end_session(token.clone()).await.unwrap();
        assert_eq!(
            store
                .session_user(token, now + Duration::hours(1))
                .await
                .unwrap(),
            None,
            "signed out"
        );
        let stale = store
            .create_session(&user, now, Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(
            store
                .purge_sessions(now + Duration::hours(2))
                .await
                .unwrap(),
            1
        );
        assert_eq!(store.session_user(stale, now).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_client_page_is_read_in_one_snapshot_and_only_for_who_may_see_it() {
        let (_dir, store) = store_with_stylist().await;
        let now = at("2026-01-01T10:00:00Z");
        let client = store
            .create_client(new_client("Ada Lovelace", "ada@example.com"), now)
            .await
            .unwrap();
        let limits = PageLimits {
            history: 200,
            timeline: 200,
            emails: 50,
        };
        let page = store
            .client_page(client.id.clone(), |_| true, limits)
            .await
            .unwrap()
            .expect("the client is there");
        assert_eq!(page.client, client);
        assert_eq!(page.stylist.map(|s| s.name).as_deref(), Some("Maya Okafor"));
        // The same as the lists read one by one.
        assert_eq!(
            page.timeline,
            store.client_timeline(client.id.clone(), 200).await.unwrap()
        );
        assert_eq!(
            page.history,
            store.score_points(client.id.clone(), 200).await.unwrap()
        );
        assert_eq!(
            page.emails,
            store
                .list_emails(Some(client.id.clone()), 50)
                .await
                .unwrap()
        );
        assert_eq!(page.fit, store.latest_model_fit().await.unwrap());

        let hidden = store
            .client_page(
                client.id.clone(),
                |c| c.stylist_id.as_str() == "st-2",
                limits,
            )
            .await
            .unwrap();
        assert!(
            hidden.is_none(),
            "a client outside the reader's book is not found"
        );
        let unknown = store
            .client_page(domain::ClientId::new("cl-nobody"), |_| true, limits)
            .await
            .unwrap();
        assert!(unknown.is_none());
    }

    #[tokio::test]
    async fn the_full_profile_is_stored_and_read_back() {
        let (_dir, store) = store_with_stylist().await;
        let new = client_with_fixes(
            "grace@example.com",
            "2025-01-01",
            &["2025-02-01", "2025-03-01"],
        );
        let client = store
            .create_client(new.clone(), at("2026-01-01T10:00:00Z"))
            .await
            .unwrap();
        let read = store.get_client(client.id.clone()).await.unwrap().unwrap();
        assert_eq!(read.profile, new.profile);
        assert_eq!(read.profile.fixes().len(), 2);
        let changes = store.read_changes(0, 10).await.unwrap();
        assert_eq!(changes[0].new.profile, new.profile);
    }

    #[tokio::test]
    async fn an_import_writes_every_client_with_its_change_and_skips_known_emails() {
        let (_dir, store) = store_with_stylist().await;
        let now = at("2026-01-01T10:00:00Z");
        store
            .create_client(new_client("Ada", "ada@example.com"), now)
            .await
            .unwrap();
        let batch = vec![
            client_with_fixes("grace@example.com", "2025-01-01", &["2025-02-01"]),
            new_client("Ada again", "ada@example.com"),
            client_with_fixes("katherine@example.com", "2025-01-01", &[]),
        ];
        let outcome = store.import_clients(batch, now).await.unwrap();
        assert_eq!(
            outcome,
            ImportOutcome {
                created: 2,
                skipped: 1
            }
        );
        assert_eq!(store.client_count().await.unwrap(), 3);
        assert_eq!(store.read_changes(0, 10).await.unwrap().len(), 3);

        let mut unknown = new_client("Nobody's", "nobody@example.com");
        unknown.stylist_id = StylistId::new("st-nobody");
        let batch = vec![
            client_with_fixes("mary@example.com", "2025-01-01", &[]),
            unknown,
        ];
        assert!(store.import_clients(batch, now).await.is_err());
        assert_eq!(
            store.client_count().await.unwrap(),
            3,
            "a failed batch writes nothing"
        );
    }

    #[tokio::test]
    async fn customer_summaries_come_from_fix_history() {
        let (_dir, store) = store_with_stylist().await;
        let now = at("2026-01-01T10:00:00Z");
        let batch = vec![
            client_with_fixes(
                "a@example.com",
                "2025-01-01",
                &["2025-01-10", "2025-02-10", "2025-02-10", "2025-03-12"],
            ),
            client_with_fixes("b@example.com", "2025-01-01", &["2025-06-01"]),
            client_with_fixes("c@example.com", "2025-01-01", &[]),
        ];
        store.import_clients(batch, now).await.unwrap();
        let end = chrono::NaiveDate::from_ymd_opt(2025, 12, 31).unwrap();
        let mut summaries = store.customer_summaries(end).await.unwrap();
        summaries.sort_by_key(|s| s.frequency);
        assert_eq!(summaries.len(), 2, "a client who never bought is left out");
        assert_eq!(
            (
                summaries[0].frequency,
                summaries[0].recency,
                summaries[0].age
            ),
            (0, 0.0, 213.0)
        );
        assert_eq!(
            (
                summaries[1].frequency,
                summaries[1].recency,
                summaries[1].age
            ),
            (2, 61.0, 355.0)
        );
    }

    #[tokio::test]
    async fn model_fits_are_kept_and_the_latest_is_returned() {
        let (_dir, store) = store_with_stylist().await;
        assert_eq!(store.latest_model_fit().await.unwrap(), None);
        let fit = |r: f64| StoredFit {
            fit: domain::bgnbd::BgNbdFit {
                params: domain::bgnbd::BgNbdParams {
                    r,
                    alpha: 30.0,
                    a: 0.8,
                    b: 2.5,
                },
                log_likelihood: -1234.5,
                customers: 500,
                iterations: 17,
            },
            source: "clients".into(),
            observation_end: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            fitted_at: at("2026-01-01T10:00:00Z"),
        };
        store.save_model_fit(fit(0.5)).await.unwrap();
        store.save_model_fit(fit(0.7)).await.unwrap();
        assert_eq!(store.latest_model_fit().await.unwrap(), Some(fit(0.7)));
    }

    #[tokio::test]
    async fn a_database_from_the_first_schema_is_migrated_with_default_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(crate::db::MIGRATIONS[0]).unwrap();
            conn.execute_batch(
                "INSERT INTO stylists VALUES ('st-1', 'Maya', 'maya@engage.example');
                 INSERT INTO clients (id, stylist_id, name, email, status, version, created_at, updated_at)
                   VALUES ('c-1', 'st-1', 'Ada', 'ada@example.com', 'active', 1, 1767261600000, 1767261600000);
                 INSERT INTO client_changes (client_id, version, old_image, new_image, recorded_at)
                   VALUES ('c-1', 1, NULL, '{\"id\":\"c-1\",\"name\":\"Ada\",\"email\":\"ada@example.com\",\"stylist_id\":\"st-1\",\"status\":\"active\",\"version\":1,\"created_at\":\"2026-01-01T10:00:00Z\",\"updated_at\":\"2026-01-01T10:00:00Z\"}', 1767261600000);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let client = store
            .get_client(domain::ClientId::new("c-1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(client.profile.signed_up_on().to_string(), "2026-01-01");
        assert!(!client.profile.consent().allows_email());
        let changes = store.read_changes(0, 10).await.unwrap();
        assert_eq!(changes[0].new, client);
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

    /// While a stream processor runs, the writer publishes a group's changes in the
    /// group's own commit, exactly as the processor would from the feed (same event id and
    /// body, checkpoint moved), but only when nothing older waits; a write that is rolled
    /// back publishes nothing.
    #[tokio::test]
    async fn while_a_stream_processor_runs_changes_are_published_in_their_own_commit() {
        let (_dir, store) = store_with_stylist().await;
        let now = at("2026-01-01T10:00:00Z");
        let ada = store
            .create_client(new_client("Ada Lovelace", "ada@example.com"), now)
            .await
            .unwrap();
        store.publish_inline(Some(InlinePublish {
            checkpoint: "test",
            queue: "q",
        }));
        let rename = |name: &'static str| {
            move |client: &mut domain::Client| {
                client.name = domain::ClientName::parse(name).unwrap();
                Ok(())
            }
        };
        // Ada's creation waits in the feed, so her rename waits behind it.
        store
            .update_client(ada.id.clone(), None, now, rename("Ada King"))
            .await
            .unwrap();
        assert_eq!(store.queue_stats("q", now).await.unwrap().visible, 0);
        assert_eq!(store.feed_lag("test").await.unwrap(), 2);
        let backlog = store.read_changes(0, 10).await.unwrap();
        let events: Vec<_> = backlog
            .iter()
            .flat_map(domain::event::events_from_change)
            .collect();
        store.publish("test", 2, "q", events, now).await.unwrap();

        // Caught up: the next change is published with its own commit.
        store
            .update_client(ada.id.clone(), None, now, rename("Augusta Ada King"))
            .await
            .unwrap();
        assert_eq!(store.checkpoint("test").await.unwrap(), 3);
        assert_eq!(store.feed_lag("test").await.unwrap(), 0);
        let messages = store
            .receive("q", 10, Duration::seconds(30), now)
            .await
            .unwrap();
        assert_eq!(messages.len(), 3);
        let from_feed =
            domain::event::events_from_change(&store.read_changes(2, 10).await.unwrap()[0]);
        let published: DomainEvent = serde_json::from_str(&messages[2].body).unwrap();
        assert_eq!(vec![published], from_feed);

        // An import that fails part-way appended a change and rolled it back: nothing of it
        // is published, and the next change still is.
        let mut stranger = new_client("Linus Pauling", "linus@example.com");
        stranger.stylist_id = StylistId::new("st-unknown");
        let failed = store
            .import_clients(
                vec![new_client("Grace Hopper", "grace@example.com"), stranger],
                now,
            )
            .await;
        assert!(failed.is_err());
        assert_eq!(store.client_count().await.unwrap(), 1);
        store
            .update_client(ada.id.clone(), None, now, rename("Ada Lovelace"))
            .await
            .unwrap();
        assert_eq!(store.feed_lag("test").await.unwrap(), 0);
        assert_eq!(store.queue_stats("q", now).await.unwrap().in_flight, 3);
        assert_eq!(store.queue_stats("q", now).await.unwrap().visible, 1);

        // Once the processor stops, changes wait in the feed again.
        store.publish_inline(None);
        store
            .update_client(ada.id.clone(), None, now, rename("Ada"))
            .await
            .unwrap();
        assert_eq!(store.feed_lag("test").await.unwrap(), 1);
        assert_eq!(store.queue_stats("q", now).await.unwrap().visible, 1);
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
                    Failure {
                        message_id: received[0].id,
                        error: format!("boom {attempt}"),
                        retry_after: Duration::seconds(5),
                        max_receives: 3,
                    },
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

    #[tokio::test]
    async fn client_pages_cover_every_client_once_in_order_for_each_sort_and_filter() {
        use domain::views::{ClientQuery, ClientSort};
        let (_dir, store) = store_with_stylist().await;
        store
            .upsert_stylist(
                StylistId::new("st-2"),
                "Jonas".into(),
                "jonas@engage.example".into(),
            )
            .await
            .unwrap();
        let mut batch = Vec::new();
        for i in 0..60 {
            let mut client =
                new_client(&format!("Client {i:03}"), &format!("client{i}@example.com"));
            if i % 3 == 0 {
                client.stylist_id = StylistId::new("st-2");
            }
            batch.push(client);
        }
        batch.push(new_client("Ada Lovelace", "ada@example.org"));
        store
            .import_clients(batch, at("2026-01-02T10:00:00Z"))
            .await
            .unwrap();
        // Scores as the pipeline would leave them: a spread over every band, some unscored.
        store
            .write(|conn| {
                conn.execute(
                    "UPDATE clients SET score = (rowid * 37) % 101,
                        band = CASE WHEN (rowid * 37) % 101 >= 75 THEN 'thriving' WHEN (rowid * 37) % 101 >= 50 THEN 'steady'
                                    WHEN (rowid * 37) % 101 >= 25 THEN 'cooling' ELSE 'at_risk' END
                     WHERE rowid % 7 != 0",
                    [],
                ).map_err(db_error)?;
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();

        let walk = |sort: ClientSort, band: Option<domain::Band>, scope: Option<&str>| {
            let store = store.clone();
            let scope = scope.map(StylistId::new);
            async move {
                let mut seen = Vec::new();
                let mut after = None;
                loop {
                    let query = ClientQuery {
                        sort,
                        band,
                        after: after.clone(),
                        limit: 7,
                        ..ClientQuery::default()
                    };
                    let page = store.list_clients(query, scope.clone()).await.unwrap();
                    assert!(page.clients.len() <= 7);
                    seen.extend(page.clients);
                    match page.next {
                        Some(next) => after = Some(next),
                        None => break seen,
                    }
                }
            }
        };
        for sort in ClientSort::ALL {
            let all = walk(sort, None, None).await;
            let mut ids: Vec<_> = all.iter().map(|c| c.id.clone()).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), 61, "{sort:?}: every client exactly once");
            let scores: Vec<i32> = all.iter().map(|c| c.score.map_or(-1, i32::from)).collect();
            match sort {
                ClientSort::ScoreLowest => assert!(scores.is_sorted(), "{scores:?}"),
                ClientSort::ScoreHighest => assert!(scores.iter().rev().is_sorted(), "{scores:?}"),
                _ => {}
            }
        }
        let theirs = walk(ClientSort::Newest, None, Some("st-2")).await;
        assert_eq!(theirs.len(), 20);
        assert!(theirs.iter().all(|c| c.stylist_id.as_str() == "st-2"));
        let at_risk = walk(ClientSort::ScoreLowest, Some(domain::Band::AtRisk), None).await;
        assert!(!at_risk.is_empty());
        assert!(
            at_risk
                .iter()
                .all(|c| c.band == Some(domain::Band::AtRisk) && c.score.unwrap() < 25)
        );

        let search = |text: &str| {
            let store = store.clone();
            let query = ClientQuery {
                search: text.into(),
                limit: 100,
                ..ClientQuery::default()
            };
            async move { store.list_clients(query, None).await.unwrap().clients }
        };
        assert_eq!(
            search("LOVEL").await[0].name,
            "Ada Lovelace",
            "any part of a name, any case"
        );
        assert_eq!(search("example.org").await.len(), 1, "addresses too");
        assert_eq!(
            search("Ad").await.len(),
            1,
            "short searches match the start"
        );
        assert_eq!(search("client 01").await.len(), 10);
        assert!(search("100%").await.is_empty(), "wildcards are plain text");
        assert!(search("\"; DROP TABLE clients; --").await.is_empty());
        // Renaming a client updates the search index.
        let ada = search("Lovelace").await.remove(0);
        store
            .update_client(ada.id.clone(), None, at("2026-01-03T10:00:00Z"), |c| {
                c.name = domain::ClientName::parse("Ada King").unwrap();
                Ok(())
            })
            .await
            .unwrap();
        assert!(search("Lovelace").await.is_empty());
        assert_eq!(search("king").await[0].id, ada.id);

        let bad = ClientQuery {
            after: Some("not-a-cursor".into()),
            limit: 5,
            ..ClientQuery::default()
        };
        assert!(matches!(
            store.list_clients(bad, None).await,
            Err(ListError::BadCursor)
        ));
    }

    /// A steady stream of writes with readers running beside it: the write-ahead log is
    /// truncated once it passes its limit instead of growing for as long as writes come.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_write_ahead_log_stays_bounded_under_steady_writes_and_reads() {
        let (dir, store) = store_with_stylist().await;
        let wal = dir.path().join("engage.db-wal");
        let reading = {
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    store.client_count().await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        };
        let mut largest = 0;
        for batch in 0..40 {
            let clients = (0..200)
                .map(|i| {
                    let mut client = new_client(
                        &format!("Client {batch} {i}"),
                        &format!("c{batch}x{i}@example.com"),
                    );
                    client.profile = domain::Profile::parse(
                        &ProfileInput {
                            style_notes: "x".repeat(1500),
                            ..ProfileInput::default()
                        },
                        at("2026-01-01T10:00:00Z"),
                    )
                    .unwrap();
                    client
                })
                .collect();
            store
                .import_clients(clients, at("2026-01-02T10:00:00Z"))
                .await
                .unwrap();
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
            tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        }
        reading.abort();
        // About 28 MB went through the log (8,000 clients with 1.5 KB of notes, each with
        // its change record); without the limit the log ends that large. With it, the log
        // is truncated every time the checkpoint thread finds it past 1 MB (every 0.5 s),
        // so it peaks at what half a second of writes adds (about 8 MB here).
        assert_eq!(store.client_count().await.unwrap(), 8_000);
        assert!(
            largest < 12 * 1024 * 1024,
            "the log grew to {largest} bytes"
        );
    }

    #[tokio::test]
    async fn a_search_matching_very_many_clients_looks_through_the_newest_and_says_so() {
        use domain::views::ClientQuery;
        let (_dir, store) = store_with_stylist().await;
        let batch = (0..2_100)
            .map(|i| new_client(&format!("Client {i:04}"), &format!("client{i}@example.com")))
            .collect();
        store
            .import_clients(batch, at("2026-01-02T10:00:00Z"))
            .await
            .unwrap();
        let walk = |search: &str| {
            let store = store.clone();
            let search = search.to_owned();
            async move {
                let (mut seen, mut capped, mut after) = (0, false, None);
                loop {
                    let query = ClientQuery {
                        search: search.clone(),
                        after: after.clone(),
                        limit: 200,
                        ..ClientQuery::default()
                    };
                    let page = store.list_clients(query, None).await.unwrap();
                    seen += page.clients.len();
                    capped |= page.search_capped;
                    match page.next {
                        Some(next) => after = Some(next),
                        None => break (seen, capped),
                    }
                }
            }
        };
        assert_eq!(
            walk("client").await,
            (ClientQuery::MAX_SEARCH_MATCHES as usize, true)
        );
        assert_eq!(
            walk("Client 01").await,
            (100, false),
            "a narrower search sees every match"
        );
        let newest = store
            .list_clients(
                ClientQuery {
                    search: "client".into(),
                    limit: 1,
                    ..ClientQuery::default()
                },
                None,
            )
            .await
            .unwrap();
        assert!(newest.search_capped);
        assert_eq!(newest.clients.len(), 1);
    }
}
