//! The stream side: DynamoDB stream records of client items -> domain events (the same
//! `events_from_change` as the embedded stream processor) -> SNS, with message attributes
//! a subscription can filter on; and email items that became `approved` -> a delivery
//! request on the deliveries queue (the table's stream is the outbox: the approval and
//! its request cannot part).

use chrono::{DateTime, Utc};
use domain::event::{ChangeRecord, events_of_change};
use domain::{Client, DomainEvent};
use processors::ProcessError;
use serde::Deserialize;
use std::collections::HashSet;

/// One stream record, whichever way it arrived (a Lambda event or the Streams API).
#[derive(Debug, Clone)]
pub struct StreamChange {
    /// The record's sequence number: what a partial batch failure reports.
    pub sequence: String,
    /// The item's partition key: records of one key keep their order.
    pub key: String,
    pub at: DateTime<Utc>,
    pub old: Option<serde_dynamo::Item>,
    pub new: Option<serde_dynamo::Item>,
}

#[derive(Deserialize)]
struct Image {
    sk: String,
    client: Option<Client>,
}

fn client_in(image: Option<&serde_dynamo::Item>) -> Result<Option<Client>, ProcessError> {
    let Some(image) = image else {
        return Ok(None);
    };
    let image: Image = serde_dynamo::from_item(image.clone())
        .map_err(|e| ProcessError::Malformed(format!("stream image: {e}")))?;
    if image.sk != "CLIENT" {
        return Ok(None);
    }
    image
        .client
        .map(Some)
        .ok_or_else(|| ProcessError::Malformed("client item without its record".into()))
}

/// The domain events of one stream record: none for items other than clients, for
/// deletions, and for writes that changed no business field (a new score, say).
pub fn events_of(change: &StreamChange) -> Result<Vec<DomainEvent>, ProcessError> {
    let Some(new) = client_in(change.new.as_ref())? else {
        return Ok(Vec::new());
    };
    let record = ChangeRecord {
        // A stream's sequence numbers are opaque decimal strings longer than u64; nothing
        // derived from the record (event ids included) uses the position.
        seq: 0,
        old: client_in(change.old.as_ref())?,
        new,
        recorded_at: change.at,
    };
    // A panic inside is this record's failure: Lambda retries the batch, bisects it and
    // hands the record to the on-failure destination; the function keeps running.
    events_of_change(&record).map_err(ProcessError::Panicked)
}

#[derive(Deserialize)]
struct EmailImage {
    sk: String,
    id: Option<String>,
    status: Option<String>,
    send_after: Option<String>,
}

fn email_image(image: Option<&serde_dynamo::Item>) -> Option<EmailImage> {
    let image: EmailImage = serde_dynamo::from_item(image?.clone()).ok()?;
    (image.sk == "EMAIL").then_some(image)
}

fn approved(image: &EmailImage) -> bool {
    image.status.as_deref() == Some("approved")
}

/// The delivery request of one stream record: an email item that is `approved` now and
/// was not before (approved, or failed and sent again), not before its scheduled time.
pub fn delivery_of(change: &StreamChange) -> Option<ports::DeliveryRequest> {
    let new = email_image(change.new.as_ref())?;
    let was_approved = email_image(change.old.as_ref()).is_some_and(|old| approved(&old));
    (approved(&new) && !was_approved).then_some(())?;
    Some(ports::DeliveryRequest {
        email_id: domain::EmailId::new(new.id?),
        send_after: new
            .send_after
            .as_deref()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.with_timezone(&chrono::Utc)),
    })
}

/// Publishes domain events to the topic, and delivery requests to the deliveries queue.
#[derive(Clone)]
pub struct StreamHandler {
    sns: aws_sdk_sns::Client,
    topic_arn: String,
    deliveries: Option<(aws_sdk_sqs::Client, String)>,
}

impl StreamHandler {
    pub fn new(sns: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            sns,
            topic_arn: topic_arn.into(),
            deliveries: None,
        }
    }

    /// Also sends a delivery request to the queue at `queue_url` for each approval.
    pub fn with_deliveries(
        mut self,
        sqs: aws_sdk_sqs::Client,
        queue_url: impl Into<String>,
    ) -> Self {
        self.deliveries = Some((sqs, queue_url.into()));
        self
    }

    async fn request_delivery(&self, request: &ports::DeliveryRequest) -> Result<(), ProcessError> {
        let Some((sqs, queue_url)) = &self.deliveries else {
            tracing::warn!(email_id = %request.email_id, "approved email seen, but no deliveries queue is configured");
            return Ok(());
        };
        let body =
            serde_json::to_string(request).map_err(|e| ProcessError::Publish(e.to_string()))?;
        sqs.send_message()
            .queue_url(queue_url)
            .message_body(body)
            .delay_seconds(crate::sender::delay_until(
                request.send_after,
                chrono::Utc::now(),
            ))
            .send()
            .await
            .map_err(|e| ProcessError::Publish(crate::dynamo::describe(e)))?;
        Ok(())
    }

    /// Publishes events to the topic, ten to a request.
    pub async fn publish(&self, events: &[DomainEvent]) -> Result<(), ProcessError> {
        use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
        let attribute = |value: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| ProcessError::Publish(e.to_string()))
        };
        for chunk in events.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, event) in chunk.iter().enumerate() {
                let body = serde_json::to_string(event)
                    .map_err(|e| ProcessError::Publish(e.to_string()))?;
                entries.push(
                    PublishBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message(body)
                        .message_attributes("event_kind", attribute(event.kind.name())?)
                        .message_attributes("client_id", attribute(event.client_id.as_str())?)
                        .message_attributes("stylist_id", attribute(event.stylist_id.as_str())?)
                        .build()
                        .map_err(|e| ProcessError::Publish(e.to_string()))?,
                );
            }
            let out = self
                .sns
                .publish_batch()
                .topic_arn(&self.topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
                .map_err(|e| ProcessError::Publish(crate::dynamo::describe(e)))?;
            if let Some(failed) = out.failed().first() {
                return Err(ProcessError::Publish(format!(
                    "{} of {} events refused: {}",
                    out.failed().len(),
                    chunk.len(),
                    failed.message().unwrap_or(failed.code())
                )));
            }
        }
        Ok(())
    }

    /// Publishes the dashboard's view facts to the topic (`event_kind` = `view_fact`: only
    /// the views queue subscribes to them), ten to a request.
    pub async fn publish_facts(
        &self,
        facts: &[domain::view_facts::ViewFactMessage],
    ) -> Result<(), ProcessError> {
        use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
        let kind = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(domain::view_facts::VIEW_FACT_KIND)
            .build()
            .map_err(|e| ProcessError::Publish(e.to_string()))?;
        for chunk in facts.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, fact) in chunk.iter().enumerate() {
                let body = serde_json::to_string(fact)
                    .map_err(|e| ProcessError::Publish(e.to_string()))?;
                entries.push(
                    PublishBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message(body)
                        .message_attributes("event_kind", kind.clone())
                        .build()
                        .map_err(|e| ProcessError::Publish(e.to_string()))?,
                );
            }
            let out = self
                .sns
                .publish_batch()
                .topic_arn(&self.topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
                .map_err(|e| ProcessError::Publish(crate::dynamo::describe(e)))?;
            if let Some(failed) = out.failed().first() {
                return Err(ProcessError::Publish(format!(
                    "{} of {} view facts refused: {}",
                    out.failed().len(),
                    chunk.len(),
                    failed.message().unwrap_or(failed.code())
                )));
            }
        }
        Ok(())
    }

    /// Handles a batch of records in order. Returns the sequence number of the first record
    /// that failed (the point a stream consumer resumes from), if any. Once an item's
    /// record fails, its later records in the batch are not processed, so its events never
    /// overtake one another; other items' records go on.
    pub async fn handle(&self, changes: &[StreamChange]) -> Option<String> {
        let mut first_failure = None;
        let mut failed_keys = HashSet::new();
        for change in changes {
            if failed_keys.contains(&change.key) {
                continue;
            }
            let result = match events_of(change) {
                Ok(events) if events.is_empty() => Ok(()),
                Ok(events) => self.publish(&events).await,
                Err(error) => Err(error),
            };
            let result = match (result, delivery_of(change)) {
                (Ok(()), Some(request)) => self.request_delivery(&request).await,
                (result, _) => result,
            };
            let result = match result.and_then(|()| crate::views::facts_of(change)) {
                Ok(facts) if facts.is_empty() => Ok(()),
                Ok(facts) => self.publish_facts(&facts).await,
                Err(error) => Err(error),
            };
            if let Err(error) = result {
                tracing::warn!(sequence = %change.sequence, key = %change.key, %error, "stream record failed");
                failed_keys.insert(change.key.clone());
                first_failure.get_or_insert_with(|| change.sequence.clone());
            }
        }
        first_failure
    }
}
