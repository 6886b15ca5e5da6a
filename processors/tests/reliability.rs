//! The pipeline's reliability promises on a real SQLite file: a poison message ends in the
//! dead-letter queue after the configured receives while the others go through, redrive
//! applies it exactly once, and two workers on one queue apply every event exactly once.

mod common;

use chrono::{DateTime, Utc};
use common::{add_client, open_store};
use domain::profile::{Fix, Money};
use processors::embedded::EmailProcessorConfig;
use processors::embedded::{EmailProcessor, StreamProcessor};
use processors::writer::{DraftRequest, EmailWriter, WriterError, Written};
use processors::{Clock, EVENTS_QUEUE, TemplateWriter};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A clock the test moves forward by hand.
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().unwrap();
        *now += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// The network edge that fails: a writer that cannot write for one client until repaired.
struct BrokenForOneClient {
    broken: AtomicBool,
}

#[async_trait::async_trait]
impl EmailWriter for BrokenForOneClient {
    fn name(&self) -> &str {
        "template"
    }
    async fn write(&self, request: &DraftRequest) -> Result<Written, WriterError> {
        if request.client_first_name == "Poison" && self.broken.load(Ordering::SeqCst) {
            return Err(WriterError::Unavailable(
                "model returned 500 for this client".into(),
            ));
        }
        TemplateWriter.write(request).await
    }
}

/// A writer with a bug: it panics when it writes for one client.
struct PanicsForOneClient;

#[async_trait::async_trait]
impl EmailWriter for PanicsForOneClient {
    fn name(&self) -> &str {
        "template"
    }
    async fn write(&self, request: &DraftRequest) -> Result<Written, WriterError> {
        if request.client_first_name == "Kelvin" {
            panic!("byte index 3 is not a char boundary");
        }
        TemplateWriter.write(request).await
    }
}

/// A panic inside the email processor on one event is that event's failure: the running
/// processor keeps going, the other clients are drafted, and the event is retried, then
/// dead-lettered after the max receives with the panic as its error.
#[tokio::test]
async fn a_writer_that_panics_on_one_event_stops_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let clock = Arc::new(TestClock(Mutex::new(
        DateTime::parse_from_rfc3339("2026-03-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
    )));
    let config = EmailProcessorConfig {
        max_receives: 3,
        batch_size: 10,
        ..EmailProcessorConfig::without_holdout()
    };
    let stream = StreamProcessor::new(store.clone(), clock.clone());
    let email = EmailProcessor::new(
        store.clone(),
        clock.clone(),
        Arc::new(PanicsForOneClient),
        config,
    );
    let kelvin = add_client(&store, clock.now(), "Kelvin Sign", "kelvin@example.com").await;
    for i in 0..4 {
        add_client(
            &store,
            clock.now(),
            &format!("Good {i}"),
            &format!("good{i}@example.com"),
        )
        .await;
    }
    stream.process_batch().await.unwrap();

    let shutdown = CancellationToken::new();
    let running = tokio::spawn(email.run(shutdown.clone()));
    let mut rounds = 0;
    let dead = loop {
        let dead = store.dead_letters(EVENTS_QUEUE, 10).await.unwrap();
        if !dead.is_empty() {
            break dead;
        }
        rounds += 1;
        assert!(rounds < 500, "the panicking event was never dead-lettered");
        assert!(!running.is_finished(), "the processor stopped");
        clock.advance(chrono::Duration::minutes(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!running.is_finished(), "the processor keeps running");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].receive_count, 3);
    assert!(
        dead[0].last_error.contains("panicked")
            && dead[0].last_error.contains("not a char boundary"),
        "{}",
        dead[0].last_error
    );
    let emails = store.list_emails(None, 100).await.unwrap();
    assert_eq!(emails.len(), 4, "the others were drafted");
    assert!(emails.iter().all(|e| e.client_id != kelvin.id));

    // New work after the panics still goes through the same running processor.
    add_client(&store, clock.now(), "Late Comer", "late@example.com").await;
    stream.process_batch().await.unwrap();
    let mut waited = 0;
    while store.list_emails(None, 100).await.unwrap().len() < 5 {
        waited += 1;
        assert!(waited < 500, "the later client was never drafted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    running.await.unwrap();
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_after_its_receives_and_redriven_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let clock = Arc::new(TestClock(Mutex::new(
        DateTime::parse_from_rfc3339("2026-03-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
    )));
    let writer = Arc::new(BrokenForOneClient {
        broken: AtomicBool::new(true),
    });
    let config = EmailProcessorConfig {
        max_receives: 3,
        batch_size: 10,
        ..EmailProcessorConfig::without_holdout()
    };
    let stream = StreamProcessor::new(store.clone(), clock.clone());
    let email = EmailProcessor::new(store.clone(), clock.clone(), writer.clone(), config);

    let poison = add_client(&store, clock.now(), "Poison Pill", "poison@example.com").await;
    let mut good = Vec::new();
    for i in 0..5 {
        good.push(
            add_client(
                &store,
                clock.now(),
                &format!("Good {i}"),
                &format!("good{i}@example.com"),
            )
            .await,
        );
    }
    stream.process_batch().await.unwrap();

    // Each round: receive, fail the poison message, back off; the others succeed at once.
    let mut rounds = 0;
    loop {
        let received = email.process_batch().await.unwrap();
        let stats = store.queue_stats(EVENTS_QUEUE, clock.now()).await.unwrap();
        if received == 0 && stats.visible + stats.in_flight == 0 {
            break;
        }
        rounds += 1;
        assert!(rounds < 20, "the queue never drained");
        clock.advance(chrono::Duration::minutes(10));
    }
    let dead = store.dead_letters(EVENTS_QUEUE, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].receive_count, 3,
        "dead-lettered after the configured receives"
    );
    assert!(
        dead[0].last_error.contains("model returned 500"),
        "{}",
        dead[0].last_error
    );
    for client in &good {
        assert_eq!(
            store
                .score_history(client.id.clone(), 10)
                .await
                .unwrap()
                .len(),
            1
        );
    }
    assert!(
        store
            .score_history(poison.id.clone(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.list_emails(None, 100).await.unwrap().len(),
        5,
        "the others were drafted"
    );

    // The fault is fixed; redrive applies the event once.
    writer.broken.store(false, Ordering::SeqCst);
    assert_eq!(
        store
            .redrive(EVENTS_QUEUE, Some(dead[0].id), clock.now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .redrive(EVENTS_QUEUE, None, clock.now())
            .await
            .unwrap(),
        0,
        "nothing left to redrive"
    );
    assert_eq!(email.process_batch().await.unwrap(), 1);
    assert_eq!(
        store
            .score_history(poison.id.clone(), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let emails = store.list_emails(None, 100).await.unwrap();
    assert_eq!(
        emails.iter().filter(|e| e.client_id == poison.id).count(),
        1
    );
    let stats = store.queue_stats(EVENTS_QUEUE, clock.now()).await.unwrap();
    assert_eq!(
        (stats.visible, stats.in_flight, stats.dead_letters),
        (0, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_queue_apply_every_event_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let clock: Arc<dyn Clock> = Arc::new(processors::SystemClock);
    let mut clients = Vec::new();
    for i in 0..60 {
        clients.push(
            add_client(
                &store,
                clock.now(),
                &format!("Client {i}"),
                &format!("c{i}@example.com"),
            )
            .await,
        );
    }
    // Two more versions of every client, each adding a Fix: three events per client.
    for _round in 0..2 {
        for client in &clients {
            let on = clock.now().date_naive();
            store
                .update_client(client.id.clone(), None, clock.now(), move |c| {
                    let fix = Fix::new(on, 5, 2, Money::from_cents(9000))?;
                    c.profile
                        .add_fix(fix)
                        .map_err(|e| domain::ValidationErrors(vec![e]))
                })
                .await
                .unwrap();
        }
    }
    let shutdown = CancellationToken::new();
    let small_batches = EmailProcessorConfig {
        batch_size: 4,
        ..EmailProcessorConfig::without_holdout()
    };
    let mut tasks = vec![tokio::spawn(
        StreamProcessor::new(store.clone(), Arc::clone(&clock)).run(shutdown.clone()),
    )];
    for _ in 0..2 {
        let worker = EmailProcessor::new(
            store.clone(),
            Arc::clone(&clock),
            Arc::new(TemplateWriter),
            small_batches.clone(),
        );
        tasks.push(tokio::spawn(worker.run(shutdown.clone())));
    }
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let stats = store.queue_stats(EVENTS_QUEUE, clock.now()).await.unwrap();
            let lag = store
                .feed_lag(processors::embedded::CHECKPOINT)
                .await
                .unwrap();
            if lag == 0 && stats.visible + stats.in_flight == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    shutdown.cancel();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(drained.is_ok(), "the queue did not drain");
    let mut pending_drafts = 0;
    for client in &clients {
        let history = store.score_history(client.id.clone(), 10).await.unwrap();
        assert_eq!(
            history.len(),
            3,
            "one score change per event for {}",
            client.name.as_str()
        );
        let mut events: Vec<_> = history.iter().map(|h| h.event_id.clone()).collect();
        events.dedup();
        assert_eq!(events.len(), 3);
    }
    for email in store.list_emails(None, 1000).await.unwrap() {
        if email.status == domain::EmailStatus::Drafted {
            pending_drafts += 1;
        }
    }
    assert!(
        pending_drafts <= clients.len(),
        "never two pending drafts for one client"
    );
    let per_client = store.list_emails(None, 1000).await.unwrap();
    for client in &clients {
        assert!(
            per_client
                .iter()
                .filter(|e| e.client_id == client.id)
                .count()
                <= 1
        );
    }
    assert_eq!(
        store
            .queue_stats(EVENTS_QUEUE, clock.now())
            .await
            .unwrap()
            .dead_letters,
        0
    );
}

/// A writer that shows what it was asked: the instruction and variant end up in the subject.
struct Echo;

#[async_trait::async_trait]
impl EmailWriter for Echo {
    fn name(&self) -> &str {
        "echo"
    }
    async fn write(&self, request: &DraftRequest) -> Result<Written, WriterError> {
        let mut written = TemplateWriter.write(request).await?;
        written.text.subject = format!(
            "{} / {}",
            request.instruction.as_deref().unwrap_or("first draft"),
            request.variant
        );
        written.writer = "echo".into();
        Ok(written)
    }
}

#[tokio::test]
async fn a_redraft_goes_through_the_queue_and_rewrites_the_pending_draft_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let clock: Arc<dyn Clock> = Arc::new(processors::SystemClock);
    let stream = StreamProcessor::new(store.clone(), Arc::clone(&clock));
    let email = EmailProcessor::new(
        store.clone(),
        Arc::clone(&clock),
        Arc::new(Echo),
        EmailProcessorConfig::without_holdout(),
    );
    let client = add_client(&store, clock.now(), "Ada Lovelace", "ada@example.com").await;
    stream.process_batch().await.unwrap();
    email.process_batch().await.unwrap();
    let drafts = store
        .list_emails(Some(client.id.clone()), 10)
        .await
        .unwrap();
    assert_eq!(drafts.len(), 1);
    assert_eq!(drafts[0].subject, "first draft / 0");

    let event = store
        .request_redraft(
            EVENTS_QUEUE,
            drafts[0].id.clone(),
            Some("mention the autumn edit".into()),
            ports::Reviewer {
                name: "maya@engage.example".into(),
                scope: None,
            },
            clock.now(),
        )
        .await
        .unwrap();
    assert_eq!(email.process_batch().await.unwrap(), 1);
    let redrafted = store
        .list_emails(Some(client.id.clone()), 10)
        .await
        .unwrap();
    assert_eq!(redrafted.len(), 1, "rewritten in place, not a second email");
    assert!(
        redrafted[0]
            .subject
            .starts_with("mention the autumn edit / "),
        "{}",
        redrafted[0].subject
    );
    assert_ne!(redrafted[0].subject, "mention the autumn edit / 0");
    assert_eq!(
        store
            .score_history(client.id.clone(), 10)
            .await
            .unwrap()
            .len(),
        1,
        "a redraft is not a score change"
    );

    // The same event delivered again changes nothing.
    let body = serde_json::to_string(&serde_json::json!({
        "schema_version": 1, "id": event.as_str(), "client_id": client.id.as_str(), "stylist_id": "st-1",
        "client_version": 1, "occurred_at": clock.now(), "type": "redraft_requested",
        "email_id": drafts[0].id.as_str(), "instruction": "something else"
    }))
    .unwrap();
    let replayed: domain::DomainEvent = serde_json::from_str(&body).unwrap();
    assert_eq!(
        email.handle_event(&replayed).await.unwrap(),
        ports::Outcome::AlreadyApplied
    );
    assert_eq!(
        store
            .list_emails(Some(client.id.clone()), 10)
            .await
            .unwrap()[0]
            .subject,
        redrafted[0].subject
    );

    assert!(matches!(
        store
            .request_redraft(
                EVENTS_QUEUE,
                domain::EmailId::new("nope"),
                None,
                ports::Reviewer {
                    name: "maya@engage.example".into(),
                    scope: None,
                },
                clock.now()
            )
            .await,
        Err(ports::ReviewError::NotFound)
    ));
}

#[tokio::test]
async fn a_rescore_after_time_passes_moves_a_quiet_client_into_at_risk_and_drafts_a_win_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let clock = Arc::new(TestClock(Mutex::new(
        DateTime::parse_from_rfc3339("2026-03-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
    )));
    let day = |n: u64| (clock.now().date_naive() - chrono::Days::new(n)).to_string();
    let fix = |n: u64| domain::profile::FixInput {
        delivered_on: day(n),
        items_sent: 5,
        items_kept: 3,
        order_value: "180".into(),
    };
    let input = domain::ClientInput {
        name: "Grace Hopper".into(),
        email: "grace@example.com".into(),
        stylist_id: "st-1".into(),
        status: None,
        profile: domain::ProfileInput {
            email_opt_in: true,
            signed_up_on: Some(day(200)),
            fixes: vec![
                fix(190),
                fix(160),
                fix(130),
                fix(100),
                fix(70),
                fix(40),
                fix(10),
            ],
            ..domain::ProfileInput::default()
        },
    };
    let client = store
        .create_client(
            domain::NewClient::parse(&input, clock.now()).unwrap(),
            clock.now(),
        )
        .await
        .unwrap();
    let stream = StreamProcessor::new(store.clone(), clock.clone());
    let email = EmailProcessor::new(
        store.clone(),
        clock.clone(),
        Arc::new(TemplateWriter),
        EmailProcessorConfig::without_holdout(),
    );
    stream.process_batch().await.unwrap();
    email.process_batch().await.unwrap();
    let first = store
        .latest_score(client.id.clone())
        .await
        .unwrap()
        .unwrap();
    assert!(first.band >= domain::Band::Steady, "{first:?}");
    assert!(
        store
            .list_emails(Some(client.id.clone()), 10)
            .await
            .unwrap()
            .is_empty(),
        "an established client gets no welcome"
    );

    // More than a year without an order.
    clock.advance(chrono::Duration::days(400));
    let rescore = |now: DateTime<Utc>| {
        domain::event::rescore_event(
            &client.id,
            &client.stylist_id,
            client.version,
            now.date_naive(),
            now,
        )
    };
    assert_eq!(
        store
            .enqueue(EVENTS_QUEUE, vec![rescore(clock.now())], clock.now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .enqueue(EVENTS_QUEUE, vec![rescore(clock.now())], clock.now())
            .await
            .unwrap(),
        0,
        "once a day"
    );
    email.process_batch().await.unwrap();
    let later = store
        .latest_score(client.id.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(later.band, domain::Band::AtRisk, "{later:?}");
    let drafts = store
        .list_emails(Some(client.id.clone()), 10)
        .await
        .unwrap();
    assert_eq!(drafts.len(), 1);
    assert_eq!(drafts[0].kind, domain::EmailKind::WinBack);
    assert_eq!(
        store
            .score_history(client.id.clone(), 10)
            .await
            .unwrap()
            .len(),
        2
    );
}
