//! The embedded pipeline end to end on a real SQLite file: a client write becomes a change
//! record, a domain event on the queue, a score change and a welcome draft, exactly once.

mod common;

use chrono::{DateTime, Utc};
use domain::DomainEvent;
use ports::Outcome;
use processors::embedded::EmailProcessorConfig;
use processors::embedded::{EmailProcessor, StreamProcessor};
use processors::{Clock, EVENTS_QUEUE, TemplateWriter};
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio_util::sync::CancellationToken;

struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

struct Pipeline {
    _dir: tempfile::TempDir,
    store: Store,
    clock: Arc<dyn Clock>,
    stream: StreamProcessor,
    email: EmailProcessor,
}

async fn pipeline() -> Pipeline {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir).await;
    let clock: Arc<dyn Clock> = Arc::new(FixedClock(
        DateTime::parse_from_rfc3339("2026-03-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
    ));
    let stream = StreamProcessor::new(store.clone(), Arc::clone(&clock));
    let email = EmailProcessor::new(
        store.clone(),
        Arc::clone(&clock),
        Arc::new(TemplateWriter),
        EmailProcessorConfig::without_holdout(),
    );
    Pipeline {
        _dir: dir,
        store,
        clock,
        stream,
        email,
    }
}

async fn add_client(p: &Pipeline, name: &str, email: &str) -> domain::Client {
    common::add_client(&p.store, p.clock.now(), name, email).await
}

#[tokio::test]
async fn a_new_client_is_scored_and_gets_one_welcome_draft() {
    let p = pipeline().await;
    let client = add_client(&p, "Ada Lovelace", "ada@example.com").await;
    assert_eq!(p.stream.process_batch().await.unwrap(), 1);
    assert_eq!(p.email.process_batch().await.unwrap(), 1);

    let score = p
        .store
        .latest_score(client.id.clone())
        .await
        .unwrap()
        .expect("client was scored");
    assert_eq!(score.score, 55);
    let history = p.store.score_history(client.id.clone(), 10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].score, 55);
    assert_eq!(
        history[0].factors[1]["explanation"],
        "Signed up today; the first Fix is still to come: +5"
    );
    let emails = p.store.list_emails(None, 10).await.unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].client_id, client.id);
    assert_eq!(emails[0].kind, domain::EmailKind::Welcome);
    assert_eq!(emails[0].writer, "template");
    assert!(
        emails[0].subject.contains("Ada"),
        "subject: {}",
        emails[0].subject
    );
    let listed = p
        .store
        .list_clients(
            domain::views::ClientQuery {
                limit: 10,
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(listed.clients[0].score, Some(55));

    let stats = p
        .store
        .queue_stats(EVENTS_QUEUE, p.clock.now())
        .await
        .unwrap();
    assert_eq!(
        (stats.visible, stats.in_flight, stats.dead_letters),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn handling_the_same_event_twice_has_one_effect() {
    let p = pipeline().await;
    add_client(&p, "Ada Lovelace", "ada@example.com").await;
    p.stream.process_batch().await.unwrap();
    let message = p
        .store
        .receive(
            EVENTS_QUEUE,
            1,
            chrono::Duration::seconds(30),
            p.clock.now(),
        )
        .await
        .unwrap()
        .remove(0);
    let event: DomainEvent = serde_json::from_str(&message.body).unwrap();
    assert_eq!(
        p.email.handle_event(&event).await.unwrap(),
        Outcome::Applied
    );
    assert_eq!(
        p.email.handle_event(&event).await.unwrap(),
        Outcome::AlreadyApplied
    );
    assert_eq!(p.store.list_emails(None, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_change_is_published_once_even_if_the_stream_processor_runs_again() {
    let p = pipeline().await;
    add_client(&p, "Ada Lovelace", "ada@example.com").await;
    assert_eq!(p.stream.process_batch().await.unwrap(), 1);
    assert_eq!(
        p.stream.process_batch().await.unwrap(),
        0,
        "the checkpoint moved past the change"
    );
    assert_eq!(
        p.store
            .queue_stats(EVENTS_QUEUE, p.clock.now())
            .await
            .unwrap()
            .visible,
        1
    );
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_and_does_not_block_the_others() {
    let p = pipeline().await;
    // A malformed event straight onto the queue, ahead of a real one.
    let mut bogus: DomainEvent = {
        add_client(&p, "Ada Lovelace", "ada@example.com").await;
        let change = p.store.read_changes(0, 1).await.unwrap().remove(0);
        domain::event::events_from_change(&change).remove(0)
    };
    bogus.schema_version = 99;
    bogus.id = domain::EventId::new("bogus");
    p.store
        .publish("poison-test", 0, EVENTS_QUEUE, vec![bogus], p.clock.now())
        .await
        .unwrap();
    p.stream.process_batch().await.unwrap();
    assert_eq!(p.email.process_batch().await.unwrap(), 2);

    let stats = p
        .store
        .queue_stats(EVENTS_QUEUE, p.clock.now())
        .await
        .unwrap();
    assert_eq!(
        (stats.visible, stats.in_flight, stats.dead_letters),
        (0, 0, 1)
    );
    assert_eq!(
        p.store.list_emails(None, 10).await.unwrap().len(),
        1,
        "the good event still drafted its email"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_pipeline_drafts_without_being_polled() {
    let p = pipeline().await;
    let shutdown = CancellationToken::new();
    let store = p.store.clone();
    let stream = tokio::spawn(
        StreamProcessor::new(store.clone(), Arc::clone(&p.clock)).run(shutdown.clone()),
    );
    let email = tokio::spawn(
        EmailProcessor::new(
            store.clone(),
            Arc::clone(&p.clock),
            Arc::new(TemplateWriter),
            EmailProcessorConfig::without_holdout(),
        )
        .run(shutdown.clone()),
    );
    add_client(&p, "Grace Hopper", "grace@example.com").await;
    let drafted = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if !store.list_emails(None, 10).await.unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    shutdown.cancel();
    stream.await.unwrap();
    email.await.unwrap();
    assert!(drafted.is_ok(), "no draft appeared within 10 s");
}
