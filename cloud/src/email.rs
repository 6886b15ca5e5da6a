//! The queue side: SQS messages (raw SNS delivery: the body is the domain event) -> the
//! same `EmailCore` as the embedded email processor -> the ids of the messages that
//! failed. Idempotency is keyed on the domain event's id, never on the message id: SNS
//! and SQS may deliver one event in several messages.

use domain::DomainEvent;
use futures_util::future::join_all;
use processors::{EmailCore, ProcessError};
use std::sync::Arc;

/// One received message.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    pub id: String,
    pub body: String,
    /// How many times SQS has handed this message out, this time included.
    pub receive_count: u32,
}

/// What a queue poller or a Lambda hands a batch of messages to: the events queue's
/// [`QueueHandler`], or the deliveries queue's `crate::sender::DeliveryHandler`.
#[async_trait::async_trait]
pub trait BatchHandler: Send + Sync + 'static {
    /// Handles a batch; returns the ids of the messages that failed (to be retried).
    async fn handle(&self, messages: &[QueueMessage]) -> Vec<String>;
}

#[async_trait::async_trait]
impl BatchHandler for QueueHandler {
    async fn handle(&self, messages: &[QueueMessage]) -> Vec<String> {
        QueueHandler::handle(self, messages).await
    }
}

#[derive(Clone)]
pub struct QueueHandler {
    core: Arc<EmailCore>,
    /// Where each failure's error is recorded, for the dead-letter list.
    failures: Option<crate::DynamoStore>,
}

impl QueueHandler {
    pub fn new(core: Arc<EmailCore>) -> Self {
        Self {
            core,
            failures: None,
        }
    }

    /// Also records each failure's error in `store` (`engage dlq list` shows it).
    pub fn recording_failures(mut self, store: crate::DynamoStore) -> Self {
        self.failures = Some(store);
        self
    }

    async fn handle_one<'a>(
        &self,
        message: &'a QueueMessage,
        event: &serde_json::Result<DomainEvent>,
    ) -> (&'a QueueMessage, Result<(), ProcessError>) {
        let result = match event {
            Ok(event) => self.core.handle_event(event).await.map(|_| ()),
            Err(error) => Err(ProcessError::Malformed(error.to_string())),
        };
        (message, result)
    }

    /// Handles a batch concurrently; returns the ids of the messages that failed (to be
    /// retried by SQS and dead-lettered after the queue's maximum receives). An event
    /// delivered twice in one batch is handled once first and its repeats after, so they
    /// find it applied instead of racing it (and asking the writer twice).
    pub async fn handle(&self, messages: &[QueueMessage]) -> Vec<String> {
        let parsed: Vec<_> = messages
            .iter()
            .map(|message| (message, serde_json::from_str::<DomainEvent>(&message.body)))
            .collect();
        let mut seen = std::collections::HashSet::new();
        let (firsts, repeats): (Vec<_>, Vec<_>) = parsed.iter().partition(|(_, event)| {
            event
                .as_ref()
                .map_or(true, |event| seen.insert(event.id.clone()))
        });
        let mut results = join_all(firsts.into_iter().map(|(m, e)| self.handle_one(m, e))).await;
        results.extend(join_all(repeats.into_iter().map(|(m, e)| self.handle_one(m, e))).await);
        let mut failed = Vec::new();
        for (message, result) in results {
            let Err(error) = result else { continue };
            tracing::warn!(message_id = %message.id, %error, "event failed");
            if let Some(store) = &self.failures {
                let now = chrono::Utc::now();
                let text = error.to_string();
                if let Err(record) = store
                    .record_failure(&message.id, &text, message.receive_count, now)
                    .await
                {
                    tracing::warn!(message_id = %message.id, error = %record, "could not record the failure");
                }
            }
            failed.push(message.id.clone());
        }
        failed
    }
}
