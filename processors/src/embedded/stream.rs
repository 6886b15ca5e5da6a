//! The stream processor: reads the change feed in order from its checkpoint, turns each
//! change into domain events, and publishes them together with the new checkpoint.

use crate::{Clock, EVENTS_QUEUE, ProcessError};
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio_util::sync::CancellationToken;

/// The checkpoint name under which the stream processor records its position.
pub use store::STREAM_CHECKPOINT as CHECKPOINT;
const BATCH: u32 = 500;
/// A safety net: look at the feed at least this often even without a signal.
const IDLE_POLL: Duration = Duration::from_secs(5);

pub struct StreamProcessor {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl StreamProcessor {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Publishes the events of the next batch of changes. Returns how many changes it read.
    pub async fn process_batch(&self) -> Result<usize, ProcessError> {
        let position = self.store.checkpoint(CHECKPOINT).await?;
        let changes = self.store.read_changes(position, BATCH).await?;
        let Some(last) = changes.last().map(|c| c.seq) else {
            return Ok(0);
        };
        // A change that cannot be turned into events (a bug, never the input's fault) is
        // logged with its position and client and skipped: it would fail the same way on
        // every retry, and holding it back would stop every client's events behind it.
        let events: Vec<_> = changes
            .iter()
            .flat_map(|change| {
                domain::event::events_of_change(change).unwrap_or_else(|error| {
                    tracing::error!(seq = change.seq, client_id = %change.new.id, %error, "stream processor skipped a change");
                    Vec::new()
                })
            })
            .collect();
        tracing::debug!(
            changes = changes.len(),
            events = events.len(),
            up_to = last,
            "publishing domain events"
        );
        self.store
            .publish(CHECKPOINT, last, EVENTS_QUEUE, events, self.clock.now())
            .await?;
        Ok(changes.len())
    }

    /// Runs until `shutdown` is cancelled, waking on every feed append the writer did not
    /// publish itself: while this runs, the writer publishes each group commit's changes
    /// in that commit whenever this processor's checkpoint is just before them
    /// ([`Store::publish_inline`]), so the feed is read back only to catch up (after a
    /// start, or if publishing in the commit failed).
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!("stream processor started");
        self.store.publish_inline(Some(store::InlinePublish {
            checkpoint: CHECKPOINT,
            queue: EVENTS_QUEUE,
        }));
        loop {
            let signal = self.store.feed_signal().notified();
            tokio::pin!(signal);
            signal.as_mut().enable();
            if shutdown.is_cancelled() {
                break;
            }
            match self.process_batch().await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(error) => tracing::error!(%error, "stream processor failed; retrying"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = &mut signal => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
        self.store.publish_inline(None);
        tracing::info!("stream processor stopped");
    }
}

/// Deletes change records some time after they were published, so the feed does not grow
/// without end. Unpublished records are never touched.
pub struct FeedRetention {
    store: Store,
    clock: Arc<dyn Clock>,
    keep: chrono::Duration,
}

/// How often retention runs.
const RETENTION_SWEEP: Duration = Duration::from_secs(600);

impl FeedRetention {
    pub fn new(store: Store, clock: Arc<dyn Clock>, keep: chrono::Duration) -> Self {
        Self { store, clock, keep }
    }

    /// Deletes what is past retention now; returns how many records went.
    pub async fn sweep(&self) -> Result<u64, ProcessError> {
        let purged = self
            .store
            .purge_published_changes(self.clock.now() - self.keep)
            .await?;
        if purged > 0 {
            tracing::info!(purged, "change records past retention deleted");
        }
        Ok(purged)
    }

    /// Sweeps on start and every ten minutes until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(error) = self.sweep().await {
                tracing::error!(%error, "change-feed retention failed; trying again later");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(RETENTION_SWEEP) => {}
            }
        }
    }
}
