//! What the Lambda functions do with their events: the stream function turns a DynamoDB
//! stream event into domain events on SNS and answers with the first failed record
//! (`ReportBatchItemFailures`: Lambda resumes the shard there); the email function handles
//! an SQS event and answers with the failed message ids (Lambda deletes the rest).

use crate::email::{QueueHandler, QueueMessage};
use crate::stream::{StreamChange, StreamHandler};
use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

fn image(item: serde_dynamo::Item) -> Option<serde_dynamo::Item> {
    (!item.is_empty()).then_some(item)
}

/// A Lambda stream record as the handler takes it.
pub fn change_of(record: EventRecord) -> StreamChange {
    let change = record.change;
    let key = change
        .keys
        .get("pk")
        .and_then(|v| match v {
            serde_dynamo::AttributeValue::S(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_default();
    StreamChange {
        sequence: change.sequence_number.unwrap_or_default(),
        key,
        at: change.approximate_creation_date_time,
        old: image(change.old_image),
        new: image(change.new_image),
    }
}

pub async fn stream_response(handler: &StreamHandler, event: StreamEvent) -> DynamoDbEventResponse {
    let changes: Vec<_> = event.records.into_iter().map(change_of).collect();
    let mut response = DynamoDbEventResponse::default();
    if let Some(sequence) = handler.handle(&changes).await {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence);
        response.batch_item_failures.push(failure);
    }
    response
}

pub async fn queue_response(handler: &QueueHandler, event: SqsEvent) -> SqsBatchResponse {
    let messages: Vec<_> = event
        .records
        .into_iter()
        .map(|record| QueueMessage {
            id: record.message_id.unwrap_or_default(),
            body: record.body.unwrap_or_default(),
        })
        .collect();
    let mut response = SqsBatchResponse::default();
    response.set_failures(handler.handle(&messages).await);
    response
}
