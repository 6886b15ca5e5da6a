//! The AWS path end to end on moto_server: a client written to DynamoDB reaches the stream,
//! SNS, SQS and the email processor's core, and its score and draft land in DynamoDB; a
//! poison message is dead-lettered by SQS's redrive policy and, once the fault is fixed,
//! redriven and applied exactly once.

use chrono::Utc;
use domain::{ClientInput, EmailStatus, NewClient, ProfileInput, StylistId};
use engage_aws::bootstrap::{QueueSettings, bootstrap};
use engage_aws::{Aws, DynamoStore, Resources, moto::Moto, poll};
use ports::{EmailFilter, Records};
use processors::writer::{DraftRequest, EmailWriter, TemplateWriter, WriterError, Written};
use processors::{EmailCore, SystemClock};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The network edge that fails: no draft for "Poison" clients until repaired.
struct BrokenForPoison {
    broken: AtomicBool,
}

#[async_trait::async_trait]
impl EmailWriter for BrokenForPoison {
    fn name(&self) -> &str {
        "template"
    }
    async fn write(&self, request: &DraftRequest) -> Result<Written, WriterError> {
        if request.client_first_name == "Poison" && self.broken.load(Ordering::SeqCst) {
            return Err(WriterError::Unavailable("model returned 500".into()));
        }
        TemplateWriter.write(request).await
    }
}

struct Running {
    _moto: Moto,
    aws: Aws,
    resources: Resources,
    store: DynamoStore,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn start(writer: Arc<dyn EmailWriter>, settings: QueueSettings) -> Running {
    let moto = Moto::start().expect("moto_server");
    let aws = Aws::at_endpoint(&moto.endpoint, "pipeline").await;
    let resources = bootstrap(&aws, &settings, &|_| {})
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
    let core = Arc::new(EmailCore::new(
        Arc::new(store.clone()),
        Arc::new(SystemClock),
        writer,
        domain::policy::PolicySettings::without_holdout(),
    ));
    let shutdown = CancellationToken::new();
    let tasks = poll::spawn_pollers(&aws, &resources, core, None, &Default::default(), &shutdown);
    Running {
        _moto: moto,
        aws,
        resources,
        store,
        shutdown,
        tasks,
    }
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("pollers stop")
                .unwrap();
        }
    }

    async fn queue_depth(&self, url: &str) -> (u64, u64) {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let attributes = self
            .aws
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        let number = |name| attributes.get(&name).unwrap().parse::<u64>().unwrap();
        (
            number(A::ApproximateNumberOfMessages),
            number(A::ApproximateNumberOfMessagesNotVisible),
        )
    }
}

fn new_client(name: &str, email: &str) -> NewClient {
    NewClient::parse(
        &ClientInput {
            name: name.into(),
            email: email.into(),
            stylist_id: "st-maya".into(),
            status: None,
            profile: ProfileInput {
                email_opt_in: true,
                ..ProfileInput::default()
            },
        },
        Utc::now(),
    )
    .unwrap()
}

/// Waits up to a minute for `check` to hold.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn drafts_of(
    store: &DynamoStore,
    client: &domain::ClientId,
) -> Vec<domain::views::EmailSummary> {
    store
        .emails(
            EmailFilter {
                client: Some(client.clone()),
                ..EmailFilter::default()
            },
            10,
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_written_to_dynamodb_is_scored_and_gets_one_draft() {
    let running = start(Arc::new(TemplateWriter), QueueSettings::default()).await;
    let store = running.store.clone();
    let client = store
        .create_client(new_client("Ada Lovelace", "ada@example.com"), Utc::now())
        .await
        .unwrap();

    eventually("the welcome draft", || async {
        !drafts_of(&store, &client.id).await.is_empty()
    })
    .await;
    let drafts = drafts_of(&store, &client.id).await;
    assert_eq!(drafts.len(), 1);
    assert_eq!(drafts[0].status, EmailStatus::Drafted);
    assert_eq!(drafts[0].kind, domain::EmailKind::Welcome);
    assert!(drafts[0].subject.contains("Ada"), "{}", drafts[0].subject);
    let scores = store.score_history(client.id.clone(), 10).await.unwrap();
    assert_eq!(scores.len(), 1, "one score change for one write");

    // A write that changes a business field is one more event; the score write-back the
    // processor itself made (also a stream record) is none.
    store
        .update_client(
            client.id.clone(),
            Some(1),
            Utc::now(),
            Box::new(|c: &mut domain::Client| {
                let purchase = domain::profile::PurchaseInput {
                    purchased_on: String::new(),
                    amount: "89.00".into(),
                };
                domain::Activity::Purchase(purchase).apply(&mut c.profile, Utc::now().date_naive())
            }),
        )
        .await
        .unwrap();
    eventually("the second score", || async {
        store
            .score_history(client.id.clone(), 10)
            .await
            .unwrap()
            .len()
            == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        store
            .score_history(client.id.clone(), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        drafts_of(&store, &client.id).await.len(),
        1,
        "no second draft while one waits"
    );
    let (visible, in_flight) = running.queue_depth(&running.resources.queue_url).await;
    assert_eq!((visible, in_flight), (0, 0), "the queue is drained");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_reaches_the_dead_letter_queue_and_is_redriven_once() {
    let writer = Arc::new(BrokenForPoison {
        broken: AtomicBool::new(true),
    });
    let settings = QueueSettings {
        max_receives: 2,
        visibility_timeout_secs: 30,
    };
    let running = start(writer.clone(), settings).await;
    let store = running.store.clone();
    let poison = store
        .create_client(new_client("Poison Ivy", "ivy@example.com"), Utc::now())
        .await
        .unwrap();
    let healthy = store
        .create_client(new_client("Grace Hopper", "grace@example.com"), Utc::now())
        .await
        .unwrap();

    // The healthy client is not held up by the poison one.
    eventually("the healthy client's draft", || async {
        drafts_of(&store, &healthy.id).await.len() == 1
    })
    .await;
    let dlq = running.resources.dead_letter_queue_url.clone();
    eventually("the poison message in the dead-letter queue", || async {
        running.queue_depth(&dlq).await.0 == 1
    })
    .await;
    assert!(drafts_of(&store, &poison.id).await.is_empty());
    assert!(
        store
            .score_history(poison.id.clone(), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Fixed: redrive; it is applied, once.
    writer.broken.store(false, Ordering::SeqCst);
    let moved = poll::redrive(&running.aws.sqs, &dlq, &running.resources.queue_url)
        .await
        .unwrap();
    assert_eq!(moved, 1);
    eventually("the poison client's draft after the redrive", || async {
        drafts_of(&store, &poison.id).await.len() == 1
    })
    .await;
    assert_eq!(
        store
            .score_history(poison.id.clone(), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(running.queue_depth(&dlq).await.0, 0);
    running.stop().await;
}
