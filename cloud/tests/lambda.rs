//! The Lambda handlers fed recorded events (tests/events/*.json, in the shape Lambda
//! delivers them) against moto_server: the partial-failure answers Lambda acts on, and
//! what reached SNS/SQS and DynamoDB.

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use domain::{ClientId, DomainEvent, StylistId};
use engage_aws::bootstrap::{QueueSettings, bootstrap};
use engage_aws::email::QueueHandler;
use engage_aws::stream::StreamHandler;
use engage_aws::{Aws, lambda, moto::Moto};
use ports::{EmailFilter, Records};
use processors::{Clock, EmailCore, TemplateWriter};
use std::sync::Arc;

/// The processors' clock, fixed shortly after the recorded events.
struct AtRecording;

impl Clock for AtRecording {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        "2026-03-01T10:00:00Z".parse().unwrap()
    }
}

fn recorded<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = format!("{}/tests/events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_function_publishes_events_and_reports_the_first_failed_record() {
    let moto = Moto::start().expect("moto_server");
    let aws = Aws::at_endpoint(&moto.endpoint, "lambda-stream").await;
    let resources = bootstrap(&aws, &QueueSettings::default(), &|_| {})
        .await
        .unwrap();
    let handler = StreamHandler::new(aws.sns.clone(), resources.topic_arn.clone());

    // Ada created; Grace's record corrupt, then Grace renamed; a score item; Ada buys.
    let event: StreamEvent = recorded("dynamodb-stream.json");
    let response = lambda::stream_response(&handler, event).await;
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "400000000000000000200"}]}),
        "Lambda must resume at Grace's corrupt record"
    );

    // Ada's two events went out (Grace's later record was held back to keep her order).
    let received = aws
        .sqs
        .receive_message()
        .queue_url(&resources.queue_url)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    let mut events: Vec<(DomainEvent, String)> = received
        .iter()
        .map(|m| {
            let event: DomainEvent = serde_json::from_str(m.body().unwrap()).unwrap();
            let kind = m
                .message_attributes()
                .and_then(|a| a.get("event_kind"))
                .and_then(|v| v.string_value())
                .unwrap_or_default()
                .to_owned();
            (event, kind)
        })
        .collect();
    events.sort_by_key(|(e, _)| e.client_version);
    let summary: Vec<_> = events
        .iter()
        .map(|(e, kind)| (e.client_id.as_str(), e.client_version, kind.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("01a204b7-9335-7400-b59f-c2836454e7eb", 1, "client_created"),
            ("01a204b7-9335-7400-b59f-c2836454e7eb", 2, "client_updated"),
        ]
    );
    // The ids are the embedded pipeline's: the same change, the same event id.
    assert_eq!(
        events[0].0.id.as_str(),
        "82db52a3-1c25-5721-9f14-3a10db062c46"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_function_applies_each_event_once_and_reports_failed_messages() {
    let moto = Moto::start().expect("moto_server");
    let aws = Aws::at_endpoint(&moto.endpoint, "lambda-email").await;
    bootstrap(&aws, &QueueSettings::default(), &|_| {})
        .await
        .unwrap();
    let store = aws.store();
    store
        .upsert_stylist(
            StylistId::new("st-maya"),
            "Maya Okafor".into(),
            "maya@engage.example".into(),
        )
        .await
        .unwrap();
    // Ada's item as the stream recorded it.
    let stream: StreamEvent = recorded("dynamodb-stream.json");
    let ada: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
        stream.records[0].change.new_image.clone().into();
    aws.dynamo
        .put_item()
        .table_name(store.table())
        .set_item(Some(ada))
        .send()
        .await
        .unwrap();

    let core = EmailCore::new(
        Arc::new(store.clone()),
        Arc::new(AtRecording),
        Arc::new(TemplateWriter),
        domain::policy::PolicySettings::without_holdout(),
    );
    let handler = QueueHandler::new(Arc::new(core));
    // Ada's creation twice (SNS/SQS may deliver twice), a truncated body, and an event
    // for a client that does not exist.
    let event: SqsEvent = recorded("sqs.json");
    let response = lambda::queue_response("email", &handler, event).await;
    let mut failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        [
            "9d3b5e2a-6c1f-4a8b-b7e9-0f2d4c6a8e10",
            "c5a5f8a2-3b9e-4f4e-9d8b-7a6e1f0c2b3d"
        ]
    );

    let ada = ClientId::new("01a204b7-9335-7400-b59f-c2836454e7eb");
    let drafts = store
        .emails(
            EmailFilter {
                client: Some(ada.clone()),
                ..EmailFilter::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(drafts.len(), 1, "one draft for an event delivered twice");
    assert_eq!(drafts[0].kind, domain::EmailKind::Welcome);
    assert_eq!(store.score_history(ada, 10).await.unwrap().len(), 1);
}
