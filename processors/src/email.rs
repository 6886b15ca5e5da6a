//! The email processor: consumes domain events, rescores the client, asks the policy
//! whether to draft, has a writer draft, and records it all exactly once per event.

use crate::writer::{DraftRequest, EmailWriter};
use crate::{Clock, EVENTS_QUEUE, ProcessError};
use chrono::Duration;
use domain::policy::{Decision, PolicyInput, PolicySettings, decide};
use domain::score::engagement_score;
use domain::{DomainEvent, event::EVENT_SCHEMA_VERSION};
use std::sync::Arc;
use store::{NewDraft, Outcome, ReceivedMessage, Store};
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
}

impl Default for EmailProcessorConfig {
    fn default() -> Self {
        Self {
            batch_size: 10,
            visibility_timeout: Duration::seconds(60),
            max_receives: 5,
            policy: PolicySettings::default(),
        }
    }
}

pub struct EmailProcessor {
    store: Store,
    clock: Arc<dyn Clock>,
    writer: Arc<dyn EmailWriter>,
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
        Self {
            store,
            clock,
            writer,
            config,
        }
    }

    /// Applies one event: score, policy, draft. Safe to call twice with the same event.
    pub async fn handle_event(&self, event: &DomainEvent) -> Result<Outcome, ProcessError> {
        if event.schema_version != EVENT_SCHEMA_VERSION {
            return Err(ProcessError::Malformed(format!(
                "schema version {}",
                event.schema_version
            )));
        }
        if self.store.is_event_processed(event.id.clone()).await? {
            return Ok(Outcome::AlreadyApplied);
        }
        let client = self
            .store
            .get_client(event.client_id.clone())
            .await?
            .ok_or_else(|| ProcessError::UnknownClient(event.client_id.clone()))?;
        let now = self.clock.now();
        let previous = self.store.latest_score(client.id.clone()).await?;
        let current = engagement_score(&client, now)
            .map_err(|error| ProcessError::Malformed(format!("client {}: {error}", client.id)))?;
        let draft_pending = self.store.has_pending_draft(client.id.clone()).await?;
        let last_draft_at = self.store.last_draft_at(client.id.clone()).await?;
        let decision = decide(&PolicyInput {
            event,
            client: &client,
            previous: previous.as_ref().map(|s| s.band),
            current: &current,
            draft_pending,
            last_draft_at,
            now,
            settings: self.config.policy,
        });
        let draft = match decision {
            Decision::Skip { .. } => None,
            Decision::Draft { kind, reason } => {
                let stylist = self.store.get_stylist(client.stylist_id.clone()).await?;
                let stylist_first_name = stylist
                    .as_ref()
                    .and_then(|s| s.name.split_whitespace().next())
                    .unwrap_or("Your stylist")
                    .to_owned();
                let request = DraftRequest {
                    kind,
                    client_first_name: client.name.first_name().to_owned(),
                    stylist_first_name,
                    band: current.band,
                };
                let text = self.writer.write(&request).await?;
                Some(NewDraft {
                    kind,
                    text,
                    writer: self.writer.name().to_owned(),
                    reason: reason.to_string(),
                })
            }
        };
        tracing::info!(event_id = %event.id, client_id = %client.id, score = current.score, %decision, "event processed");
        Ok(self
            .store
            .record_outcome(
                event.id.clone(),
                client.id,
                client.stylist_id,
                current,
                draft,
                now,
            )
            .await?)
    }

    async fn handle_message(&self, message: &ReceivedMessage) {
        let result = match serde_json::from_str::<DomainEvent>(&message.body) {
            Ok(event) => self.handle_event(&event).await,
            Err(error) => Err(ProcessError::Malformed(error.to_string())),
        };
        let settled = match result {
            Ok(_) => self.store.delete_message(message.id).await,
            Err(error) => {
                // A message no version of this code can read will never succeed: dead-letter it now.
                let max_receives = if matches!(error, ProcessError::Malformed(_)) {
                    1
                } else {
                    self.config.max_receives
                };
                let backoff = Duration::seconds(1 << message.receive_count.min(8));
                tracing::warn!(message_id = message.id, receive_count = message.receive_count, %error, "event failed");
                self.store
                    .release_failed(
                        message.id,
                        error.to_string(),
                        backoff,
                        max_receives,
                        self.clock.now(),
                    )
                    .await
                    .map(|dead| {
                        if dead {
                            tracing::error!(
                                message_id = message.id,
                                "event moved to the dead-letter queue"
                            );
                        }
                    })
            }
        };
        if let Err(error) = settled {
            // The message stays hidden until its visibility timeout, then is retried.
            tracing::error!(message_id = message.id, %error, "could not settle a message");
        }
    }

    /// Receives and handles one batch. Returns how many messages it handled.
    pub async fn process_batch(&self) -> Result<usize, ProcessError> {
        let messages = self
            .store
            .receive(
                EVENTS_QUEUE,
                self.config.batch_size,
                self.config.visibility_timeout,
                self.clock.now(),
            )
            .await?;
        for message in &messages {
            self.handle_message(message).await;
        }
        Ok(messages.len())
    }

    /// Runs until `shutdown` is cancelled. A batch in progress is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(writer = self.writer.name(), "email processor started");
        loop {
            let signal = self.store.queue_signal().notified();
            tokio::pin!(signal);
            signal.as_mut().enable();
            if shutdown.is_cancelled() {
                break;
            }
            match self.process_batch().await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(error) => {
                    tracing::error!(%error, "email processor could not receive; retrying")
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
