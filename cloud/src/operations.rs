//! The [`Operations`] port on AWS: the events queue's figures and dead letters from SQS
//! (each dead letter with the error the email processor recorded for it), redrive, the
//! change stamp and the clients to rescore from the table, and rescore events published to
//! the topic.

use crate::stream::StreamHandler;
use crate::{DynamoStore, Resources};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use domain::api::PipelineFigures;
use ports::{ClientKeys, DeadLetter, Operations, QueueStats, StoreError};

/// The pipeline's figures from SQS's attributes; the change stamp from the table.
pub struct AwsOperations {
    store: DynamoStore,
    events: StreamHandler,
    sqs: aws_sdk_sqs::Client,
    resources: Resources,
}

impl AwsOperations {
    pub fn new(
        store: DynamoStore,
        events: StreamHandler,
        sqs: aws_sdk_sqs::Client,
        resources: Resources,
    ) -> Self {
        Self {
            store,
            events,
            sqs,
            resources,
        }
    }

    async fn attributes(&self, url: &str) -> Result<(u64, u64), StoreError> {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| StoreError::Service(crate::dynamo::describe(e)))?
            .attributes
            .unwrap_or_default();
        let number = |name| {
            attributes
                .get(&name)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Ok((
            number(QueueAttributeName::ApproximateNumberOfMessages),
            number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }
}

#[async_trait::async_trait]
impl Operations for AwsOperations {
    async fn pipeline_figures(&self, _now: DateTime<Utc>) -> Result<PipelineFigures, StoreError> {
        let (visible, in_flight) = self.attributes(&self.resources.queue_url).await?;
        let (dead_letters, _) = self
            .attributes(&self.resources.dead_letter_queue_url)
            .await?;
        Ok(PipelineFigures {
            events_queue: QueueStats {
                visible,
                in_flight,
                oldest_age_ms: 0,
                dead_letters,
            },
            feed_lag: 0,
        })
    }

    async fn change_stamp(&self) -> Result<u64, StoreError> {
        self.store.change_stamp().await
    }

    async fn model_params(&self) -> Result<Option<domain::bgnbd::BgNbdParams>, StoreError> {
        Ok(ports::Model::latest_model_fit(&self.store)
            .await?
            .map(|stored| stored.fit.params))
    }

    /// A look at the dead-letter queue (at most ten: one SQS receive), each with the last
    /// error the email processor recorded for it.
    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.resources.dead_letter_queue_url)
            .max_number_of_messages(limit.clamp(1, 10) as i32)
            .visibility_timeout(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| StoreError::Service(crate::dynamo::describe(e)))?;
        let mut letters = Vec::new();
        for (i, message) in out.messages.unwrap_or_default().into_iter().enumerate() {
            let attribute = |name| {
                message
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&name))
                    .cloned()
                    .unwrap_or_default()
            };
            let body = message.body.clone().unwrap_or_default();
            let event_id = serde_json::from_str::<domain::DomainEvent>(&body)
                .map(|e| e.id.to_string())
                .unwrap_or_else(|_| "(unreadable)".into());
            let sent: i64 = attribute(MessageSystemAttributeName::SentTimestamp)
                .parse()
                .unwrap_or(0);
            let sent = DateTime::<Utc>::from_timestamp_millis(sent).unwrap_or_default();
            let failure = match message.message_id.as_deref() {
                Some(id) => self.store.failure(id).await?,
                None => None,
            };
            let (last_error, failed_at) =
                failure.unwrap_or_else(|| ("(no error was recorded)".into(), sent));
            letters.push(DeadLetter {
                id: i as i64,
                queue: "events-dlq".into(),
                dedup_id: event_id,
                body,
                receive_count: attribute(MessageSystemAttributeName::ApproximateReceiveCount)
                    .parse()
                    .unwrap_or(0),
                last_error,
                enqueued_at: sent,
                failed_at,
            });
        }
        Ok(letters)
    }

    /// SQS gives dead letters no lasting id, so they go back together.
    async fn redrive(
        &self,
        id: Option<i64>,
        _now: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        if id.is_some() {
            return Ok(None);
        }
        crate::poll::redrive(
            &self.sqs,
            &self.resources.dead_letter_queue_url,
            &self.resources.queue_url,
        )
        .await
        .map(Some)
        .map_err(StoreError::Service)
    }

    async fn client_count(&self) -> Result<u64, StoreError> {
        let mut count = 0;
        for stylist in self.store.list_stylists().await? {
            count += self.store.book_size(&stylist.id).await?;
        }
        Ok(count)
    }

    /// A page is one stylist's book; the cursor is the next stylist's place in the list.
    async fn client_keys(
        &self,
        after: Option<String>,
        _limit: u32,
    ) -> Result<ClientKeys, StoreError> {
        let stylists = self.store.list_stylists().await?;
        let at: usize = after.and_then(|a| a.parse().ok()).unwrap_or(0);
        let Some(stylist) = stylists.get(at) else {
            return Ok((Vec::new(), None));
        };
        let keys = self.store.book_keys(&stylist.id).await?;
        Ok((
            keys,
            (at + 1 < stylists.len()).then(|| (at + 1).to_string()),
        ))
    }

    /// Publishes to the topic; the email processor's idempotency record makes an event
    /// published twice take effect once, so every event counts as queued.
    async fn queue_events(
        &self,
        events: Vec<DomainEvent>,
        _now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.events
            .publish(&events)
            .await
            .map_err(|e| StoreError::Service(e.to_string()))?;
        Ok(events.len() as u64)
    }
}
