//! The embedded email processor: the [`EmailCore`] driven by the SQLite events queue,
//! each batch settled (effects recorded, messages deleted or released) in one transaction.

use crate::email::OutreachSettings;
use crate::email::{EmailCore, check_version};
use crate::writer::EmailWriter;
use crate::{Clock, EVENTS_QUEUE, ProcessError};
use chrono::Duration;
use domain::DomainEvent;
use domain::policy::PolicySettings;
use ports::Outcome;
use std::sync::Arc;
use store::{Failure, Handled, ReceivedMessage, Store};
use tokio_util::sync::CancellationToken;

/// How the email processor consumes its queue.
#[derive(Debug, Clone)]
pub struct EmailProcessorConfig {
    pub batch_size: u32,
    /// How long a received message stays hidden from other workers.
    pub visibility_timeout: Duration,
    /// Receives after which a failing message moves to the dead-letter queue.
    pub max_receives: u32,
    pub policy: PolicySettings,
    /// Days after a touch within which a purchase converts it.
    pub window_days: u32,
}

impl Default for EmailProcessorConfig {
    fn default() -> Self {
        let outreach = OutreachSettings::default();
        Self {
            batch_size: 100,
            visibility_timeout: Duration::seconds(60),
            max_receives: 5,
            policy: outreach.policy,
            window_days: outreach.window_days,
        }
    }
}

impl EmailProcessorConfig {
    /// The defaults without a holdout (see [`PolicySettings::without_holdout`]).
    pub fn without_holdout() -> Self {
        Self {
            policy: PolicySettings::without_holdout(),
            ..Self::default()
        }
    }
}

/// The outcome of handling a batch, item by item (SQS's "partial batch response").
#[derive(Debug, Default)]
pub struct BatchReport {
    pub handled: Vec<Handled>,
    pub failed: Vec<Failure>,
}

/// The embedded email processor: the [`EmailCore`] driven by the SQLite queue.
pub struct EmailProcessor {
    store: Store,
    core: EmailCore,
    config: EmailProcessorConfig,
}

/// A safety net: look at the queue at least this often even without a signal, so retries
/// whose back-off has passed are picked up.
const IDLE_POLL: std::time::Duration = std::time::Duration::from_secs(1);

impl EmailProcessor {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        writer: Arc<dyn EmailWriter>,
        config: EmailProcessorConfig,
    ) -> Self {
        let core = EmailCore::new(Arc::new(store.clone()), clock, writer, config.policy)
            .with_outcomes(Arc::new(store.clone()), config.window_days);
        Self {
            store,
            core,
            config,
        }
    }

    pub fn core(&self) -> &EmailCore {
        &self.core
    }

    /// See [`EmailCore::handle_event`].
    pub async fn handle_event(&self, event: &DomainEvent) -> Result<Outcome, ProcessError> {
        self.core.handle_event(event).await
    }

    /// How a failed message is released: a message no version of this code can read is
    /// dead-lettered on its first failure; others back off exponentially.
    fn failure(&self, message: &ReceivedMessage, error: &ProcessError) -> Failure {
        // The event id when the body has one, so the failure can be followed across logs.
        let event_id = serde_json::from_str::<serde_json::Value>(&message.body)
            .ok()
            .and_then(|body| body["id"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "-".to_owned());
        tracing::warn!(message_id = message.id, %event_id, receive_count = message.receive_count, %error, "event failed");
        let max_receives = if matches!(error, ProcessError::Malformed(_)) {
            1
        } else {
            self.config.max_receives
        };
        Failure {
            message_id: message.id,
            error: error.to_string(),
            retry_after: Duration::seconds(1 << message.receive_count.min(8)),
            max_receives,
        }
    }

    /// Handles a batch of received messages and reports, item by item, which were handled
    /// (with their effect) and which failed (with the error and when to retry): a partial
    /// batch failure never fails the items that succeeded. Messages are worked on
    /// concurrently; nothing is written here.
    pub async fn handle_batch(&self, messages: &[ReceivedMessage]) -> BatchReport {
        let events: Vec<Result<DomainEvent, ProcessError>> = messages
            .iter()
            .map(|message| {
                serde_json::from_str::<DomainEvent>(&message.body)
                    .map_err(|error| ProcessError::Malformed(error.to_string()))
                    .and_then(|event| check_version(&event).map(|()| event))
            })
            .collect();
        let results = self.core.effects_of(events).await;
        let mut report = BatchReport::default();
        for (message, result) in messages.iter().zip(results) {
            match result {
                Ok(effect) => report.handled.push(Handled {
                    message_id: message.id,
                    effect,
                }),
                Err(error) => report.failed.push(self.failure(message, &error)),
            }
        }
        report
    }

    /// Receives one batch, handles it, and settles it (effects recorded, handled messages
    /// deleted, failed ones retried or dead-lettered) in one transaction. Returns how many
    /// messages it received.
    pub async fn process_batch(&self) -> Result<usize, ProcessError> {
        let messages = self.receive_batch().await?;
        if messages.is_empty() {
            return Ok(0);
        }
        self.handle_and_settle(&messages, None).await?;
        Ok(messages.len())
    }

    fn receive(&self) -> store::Receive {
        store::Receive {
            queue: EVENTS_QUEUE,
            max: self.config.batch_size,
            visibility: self.config.visibility_timeout,
        }
    }

    async fn receive_batch(&self) -> Result<Vec<ReceivedMessage>, ports::StoreError> {
        let batch = self.receive();
        self.store
            .receive(
                batch.queue,
                batch.max,
                batch.visibility,
                self.core.clock.now(),
            )
            .await
    }

    /// Handles `messages` and settles them; with `next`, receives the following batch in
    /// the same transaction and returns it.
    async fn handle_and_settle(
        &self,
        messages: &[ReceivedMessage],
        next: Option<store::Receive>,
    ) -> Result<Vec<ReceivedMessage>, ProcessError> {
        let report = self.handle_batch(messages).await;
        let (settled, following) = self
            .store
            .settle_and_receive(report.handled, report.failed, next, self.core.clock.now())
            .await?;
        for message_id in &settled.dead_lettered {
            tracing::error!(message_id, "event moved to the dead-letter queue");
        }
        tracing::debug!(
            received = messages.len(),
            applied = settled.applied,
            already_applied = settled.already_applied,
            "batch settled"
        );
        Ok(following)
    }

    /// Runs until `shutdown` is cancelled. A batch in progress is finished first. While
    /// the queue keeps it busy, each batch is settled in the same transaction that
    /// receives the next one.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(writer = self.core.writer_name(), "email processor started");
        let mut batch: Vec<ReceivedMessage> = Vec::new();
        loop {
            let signal = self.store.queue_signal().notified();
            tokio::pin!(signal);
            signal.as_mut().enable();
            if batch.is_empty() {
                if shutdown.is_cancelled() {
                    break;
                }
                match self.receive_batch().await {
                    Ok(received) => batch = received,
                    Err(error) => {
                        tracing::error!(%error, "email processor could not receive; retrying")
                    }
                }
            }
            if !batch.is_empty() {
                // Once stopping, what is in hand is finished and nothing more is taken.
                let next = (!shutdown.is_cancelled()).then(|| self.receive());
                match self.handle_and_settle(&batch, next).await {
                    Ok(following) => {
                        batch = following;
                        continue;
                    }
                    Err(error) => {
                        // The batch stays hidden until its visibility timeout, then is retried.
                        tracing::error!(%error, "email processor could not settle a batch; retrying");
                        batch.clear();
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = &mut signal => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
        tracing::info!("email processor stopped");
    }
}
