//! The embedded sender: the [`SenderCore`] driven by the SQLite deliveries queue.

use crate::ProcessError;
use crate::sender::SenderCore;
use chrono::Duration;
use ports::{DELIVERIES_QUEUE, DeliveryRequest};
use std::sync::Arc;
use store::Store;
use tokio_util::sync::CancellationToken;

/// The embedded sender: receives from the store's deliveries queue and runs the core.
pub struct Sender {
    pub store: Store,
    pub core: Arc<SenderCore>,
    /// How long a received request stays hidden while it is delivered.
    pub visibility: Duration,
    /// Receives after which a request that keeps failing (the store, not delivery: that
    /// is recorded as `failed` on the core's last attempt) is dead-lettered.
    pub max_receives: u32,
}

const IDLE_POLL: std::time::Duration = std::time::Duration::from_secs(1);

impl Sender {
    /// Receives and handles one batch; returns how many requests it received.
    pub async fn run_once(&self) -> Result<usize, ProcessError> {
        let now = self.core.clock.now();
        let messages = self
            .store
            .receive(DELIVERIES_QUEUE, 10, self.visibility, now)
            .await?;
        for message in &messages {
            let outcome = match serde_json::from_str::<DeliveryRequest>(&message.body) {
                Ok(request) => self.core.handle(&request, message.receive_count).await,
                Err(error) => Err(ProcessError::Malformed(error.to_string())),
            };
            match outcome {
                Ok(crate::sender::Delivered::NotYet(at)) => {
                    self.store.defer_message(message.id, at).await?;
                }
                Ok(_) => self.store.delete_message(message.id).await?,
                Err(error) => {
                    let dead = self
                        .store
                        .release_failed(
                            store::Failure {
                                message_id: message.id,
                                error: error.to_string(),
                                retry_after: Duration::seconds(1 << message.receive_count.min(8)),
                                max_receives: self.max_receives,
                            },
                            self.core.clock.now(),
                        )
                        .await?;
                    if dead {
                        tracing::error!(message_id = message.id, %error, "delivery request dead-lettered");
                    }
                }
            }
        }
        Ok(messages.len())
    }

    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!("sender started");
        while !shutdown.is_cancelled() {
            let signal = self.store.queue_signal().notified();
            tokio::pin!(signal);
            signal.as_mut().enable();
            match self.run_once().await {
                Ok(received) if received > 0 => continue,
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "sender could not work the queue; retrying"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = &mut signal => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
        tracing::info!("sender stopped");
    }
}
