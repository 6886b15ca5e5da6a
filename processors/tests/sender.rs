//! Consent at send time and durable delivery on the embedded SQLite store: the `Sending`
//! contract (the same checks `engage-aws` runs on DynamoDB), and the deliveries queue
//! worked by the embedded `Sender`: approval queues, the sender delivers with retries,
//! and a request that keeps failing ends `failed`.

mod common;

use chrono::Utc;
use domain::schedule::{SendAt, SendHours};
use domain::{EmailStatus, StylistId};
use ports::{DELIVERIES_QUEUE, EmailFilter, Reviewer, Sending};
use processors::delivery::{Outbox, UnsubscribeLinks};
use processors::embedded::Sender;
use processors::sender::{Delivered, SendSettings, SenderCore, approve};
use processors::{EVENTS_QUEUE, SystemClock};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_the_sending_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(dir.path().join("engage.db")).unwrap();
    processors::sender::contract::run(&store, Arc::new(store.clone())).await;
}

/// The embedded sender over `store`, writing `.eml` files into `outbox`, on `clock`.
fn outbox_sender(
    store: &store::Store,
    outbox: &std::path::Path,
    clock: Arc<dyn processors::Clock>,
) -> Sender {
    Sender {
        store: store.clone(),
        core: Arc::new(SenderCore::new(
            Arc::new(store.clone()),
            Arc::new(Outbox {
                dir: outbox.to_path_buf(),
            }),
            UnsubscribeLinks::new(b"k".to_vec(), "https://shop.example"),
            "shop.example".into(),
            clock,
            3,
        )),
        visibility: chrono::Duration::seconds(30),
        max_receives: 3,
    }
}

/// Ada, added at `now`, and the welcome the pipeline (stream processor, then the email
/// processor) drafts for her.
async fn welcome_draft(
    store: &store::Store,
    clock: Arc<dyn processors::Clock>,
    now: chrono::DateTime<Utc>,
) -> domain::views::EmailSummary {
    let client = common::add_client(store, now, "Ada Lovelace", "ada@example.com").await;
    processors::embedded::StreamProcessor::new(store.clone(), clock.clone())
        .process_batch()
        .await
        .unwrap();
    processors::embedded::EmailProcessor::new(
        store.clone(),
        clock,
        Arc::new(processors::TemplateWriter),
        processors::embedded::EmailProcessorConfig::without_holdout(),
    )
    .process_batch()
    .await
    .unwrap();
    store
        .find_emails(
            EmailFilter {
                client: Some(client.id.clone()),
                ..EmailFilter::default()
            },
            5,
        )
        .await
        .unwrap()
        .remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_is_queued_with_it_and_the_sender_delivers_it_once_as_an_eml_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir).await;
    let clock = Arc::new(SystemClock);
    let draft = welcome_draft(&store, clock.clone(), Utc::now()).await;
    assert_eq!(draft.status, EmailStatus::Drafted);
    let maya = Reviewer {
        name: "maya@engage.example".into(),
        scope: Some(StylistId::new("st-1")),
    };
    approve(
        &store,
        vec![draft.id.clone()],
        SendAt::Now,
        &SendSettings::default(),
        maya,
        clock.as_ref(),
    )
    .await
    .unwrap();
    let queued = store
        .queue_stats(DELIVERIES_QUEUE, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        queued.visible, 1,
        "the approval committed its delivery request"
    );
    assert_eq!(
        store
            .queue_stats(EVENTS_QUEUE, Utc::now())
            .await
            .unwrap()
            .visible,
        0
    );

    let outbox = dir.path().join("outbox");
    let sender = outbox_sender(&store, &outbox, clock.clone());
    assert_eq!(sender.run_once().await.unwrap(), 1);
    assert_eq!(
        sender.run_once().await.unwrap(),
        0,
        "delivered once, then gone"
    );
    let eml = std::fs::read_to_string(outbox.join(format!("{}.eml", draft.id))).unwrap();
    assert!(
        eml.contains(&format!("Message-ID: <{}@shop.example>", draft.id)),
        "{eml}"
    );
    assert!(eml.contains("List-Unsubscribe: <https://shop.example/unsubscribe?client="));
    let sendable = store.sendable(draft.id.clone()).await.unwrap().unwrap();
    assert_eq!(sendable.status, EmailStatus::Sent);
    let stats = store
        .queue_stats(DELIVERIES_QUEUE, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        (stats.visible, stats.in_flight, stats.dead_letters),
        (0, 0, 0)
    );
}

struct At(chrono::DateTime<Utc>);
impl processors::clock::Clock for At {
    fn now(&self) -> chrono::DateTime<Utc> {
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_send_waits_on_the_queue_until_its_time_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir).await;
    let now = Utc::now();
    let clock = Arc::new(At(now));
    let draft = welcome_draft(&store, clock.clone(), now).await;
    let maya = Reviewer {
        name: "maya@engage.example".into(),
        scope: Some(StylistId::new("st-1")),
    };
    // In two hours, with no quiet hours to move it.
    let at = now + chrono::Duration::hours(2);
    let anytime = SendSettings {
        hours: SendHours {
            quiet_start: 0,
            quiet_end: 0,
            default_hour: 10,
        },
        zone: chrono_tz::UTC,
    };
    let report = approve(
        &store,
        vec![draft.id.clone()],
        SendAt::At { at },
        &anytime,
        maya,
        clock.as_ref(),
    )
    .await
    .unwrap();
    assert_eq!((report.queued, report.scheduled), (1, 1));
    let detail = store
        .email_detail(draft.id.clone(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.summary.status, EmailStatus::Approved);
    let stored = detail.send_after.expect("the time is kept on the email");
    assert!(
        (stored - at).num_milliseconds().abs() <= 1,
        "{stored} vs {at}"
    );
    assert!(
        detail.reviews.iter().any(|r| r.action == "approved"
            && r.note
                .as_deref()
                .is_some_and(|n| n.contains("to be sent at"))),
        "{:?}",
        detail.reviews
    );

    let outbox = dir.path().join("outbox");
    let sender_at =
        |when: chrono::DateTime<Utc>| outbox_sender(&store, &outbox, Arc::new(At(when)));
    // Now: nothing to receive, and a restart does not free it early.
    assert_eq!(sender_at(now).run_once().await.unwrap(), 0);
    assert_eq!(
        store
            .release_in_flight(DELIVERIES_QUEUE, now)
            .await
            .unwrap(),
        0
    );
    assert_eq!(sender_at(now).run_once().await.unwrap(), 0);
    assert!(!outbox.join(format!("{}.eml", draft.id)).exists());

    // A request received early anyway (another worker's clock) is put off, uncounted.
    let early = store
        .receive(
            DELIVERIES_QUEUE,
            10,
            chrono::Duration::seconds(30),
            at + chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
    assert_eq!(early.len(), 1);
    let request: ports::DeliveryRequest = serde_json::from_str(&early[0].body).unwrap();
    let core = sender_at(now).core;
    assert!(matches!(
        core.handle(&request, 1).await.unwrap(),
        Delivered::NotYet(_)
    ));
    store.defer_message(early[0].id, at).await.unwrap();

    // At its time it goes, on what counts as its first attempt.
    let late = at + chrono::Duration::seconds(1);
    let again = store
        .receive(DELIVERIES_QUEUE, 10, chrono::Duration::seconds(30), late)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 1, "waiting was no failed attempt");
    store
        .release_in_flight(DELIVERIES_QUEUE, late)
        .await
        .unwrap();
    assert_eq!(sender_at(late).run_once().await.unwrap(), 1);
    assert!(outbox.join(format!("{}.eml", draft.id)).exists());
    assert_eq!(
        store
            .sendable(draft.id.clone())
            .await
            .unwrap()
            .unwrap()
            .status,
        EmailStatus::Sent
    );
}
