//! What the benchmarks share.

use processors::{Clock, SystemClock};
use std::time::Duration;
use store::Store;

/// Waits until the pipeline has nothing left: no change unpublished, no event waiting or
/// in flight.
pub async fn drain(store: &Store) {
    loop {
        let stats = store
            .queue_stats(processors::EVENTS_QUEUE, SystemClock.now())
            .await
            .expect("stats");
        let lag = store
            .feed_lag(processors::embedded::CHECKPOINT)
            .await
            .expect("lag");
        if lag == 0 && stats.visible == 0 && stats.in_flight == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
