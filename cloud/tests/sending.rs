//! Consent at send time and durable delivery on DynamoDB (moto_server): the `Sending`
//! contract the SQLite store passes too, and the AWS path end to end: an approval in the
//! table reaches the deliveries queue through the table's stream, and the deliveries
//! poller sends it once.

use domain::{ClientInput, EmailStatus, NewClient, ProfileInput, StylistId};
use engage_aws::bootstrap::{QueueSettings, bootstrap};
use engage_aws::{Aws, moto::Moto, poll};
use ports::{EmailFilter, Records, Reviewer, Sending};
use processors::delivery::{Outbox, UnsubscribeLinks};
use processors::sender::{SenderCore, approve};
use processors::{EmailCore, SystemClock, TemplateWriter};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_keeps_the_sending_contract() {
    let moto = Moto::start().expect("moto_server");
    let aws = Aws::at_endpoint(&moto.endpoint, "sending").await;
    bootstrap(&aws, &QueueSettings::default(), &|_| {})
        .await
        .expect("bootstrap");
    let store = aws.store();
    processors::sender::contract::run(&store, Arc::new(store.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_reaches_the_deliveries_queue_through_the_stream_and_is_sent_once() {
    let moto = Moto::start().expect("moto_server");
    let aws = Aws::at_endpoint(&moto.endpoint, "outbox").await;
    let resources = bootstrap(&aws, &QueueSettings::default(), &|_| {})
        .await
        .expect("bootstrap");
    let store = aws.store();
    store
        .upsert_stylist(
            StylistId::new("st-maya"),
            "Maya Okafor".into(),
            "maya@engage.example".into(),
        )
        .await
        .unwrap();
    let outbox = tempfile::tempdir().unwrap();
    let clock = Arc::new(SystemClock);
    let core = Arc::new(EmailCore::new(
        Arc::new(store.clone()),
        clock.clone(),
        Arc::new(TemplateWriter),
        Default::default(),
    ));
    let sender = Arc::new(SenderCore::new(
        Arc::new(store.clone()),
        Arc::new(Outbox {
            dir: outbox.path().to_owned(),
        }),
        UnsubscribeLinks::new(b"k".to_vec(), "https://shop.example"),
        "shop.example".into(),
        clock.clone(),
        3,
    ));
    let shutdown = CancellationToken::new();
    let tasks = poll::spawn_pollers(
        &aws,
        &resources,
        core,
        Some(sender),
        &Default::default(),
        &shutdown,
    );

    let now = chrono::Utc::now();
    let input = ClientInput {
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        stylist_id: "st-maya".into(),
        status: None,
        profile: ProfileInput {
            email_opt_in: true,
            ..ProfileInput::default()
        },
    };
    let client = store
        .create_client(NewClient::parse(&input, now).unwrap(), now)
        .await
        .unwrap();
    let filter = EmailFilter {
        client: Some(client.id.clone()),
        ..EmailFilter::default()
    };
    let mut draft = None;
    for _ in 0..150 {
        if let Some(email) = store.emails(filter.clone(), 5).await.unwrap().pop() {
            draft = Some(email);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let draft = draft.expect("the pipeline drafted a welcome within 30 s");
    let maya = Reviewer {
        name: "maya@engage.example".into(),
        scope: Some(StylistId::new("st-maya")),
    };
    assert_eq!(
        approve(&store, vec![draft.id.clone()], maya, clock.as_ref())
            .await
            .unwrap(),
        1
    );
    let file = outbox.path().join(format!("{}.eml", draft.id));
    let mut status = EmailStatus::Approved;
    for _ in 0..150 {
        status = store
            .sendable(draft.id.clone())
            .await
            .unwrap()
            .unwrap()
            .status;
        if status == EmailStatus::Sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, EmailStatus::Sent, "the deliveries poller sent it");
    let eml = std::fs::read_to_string(&file).unwrap();
    assert!(eml.contains(&format!("Message-ID: <{}@shop.example>", draft.id)));
    shutdown.cancel();
    for task in tasks {
        let _ = task.await;
    }
}
