//! What the web layer reads besides the app's `EngageService`, behind one seam so the same
//! router serves from the embedded SQLite store or from DynamoDB/SQS: records and accounts
//! (the store's traits), and [`Operations`] (pipeline figures, the change stamp that keeps
//! pages current, the fitted BG/NBD model).

use crate::ops::PipelineFigures;
use chrono::{DateTime, Utc};
use domain::bgnbd::BgNbdParams as Params;
use store::{Store, StoreError};

#[async_trait::async_trait]
pub trait Operations: Send + Sync + 'static {
    /// How the pipeline is keeping up (`/readyz`, the dashboard).
    async fn pipeline_figures(&self, now: DateTime<Utc>) -> Result<PipelineFigures, StoreError>;
    /// Grows whenever a score, draft or review step is written.
    async fn change_stamp(&self) -> Result<u64, StoreError>;
    /// The latest fitted BG/NBD model, if any.
    async fn model_params(&self) -> Result<Option<Params>, StoreError>;
}

#[async_trait::async_trait]
impl Operations for Store {
    async fn pipeline_figures(&self, now: DateTime<Utc>) -> Result<PipelineFigures, StoreError> {
        Ok(PipelineFigures {
            events_queue: self.queue_stats(processors::EVENTS_QUEUE, now).await?,
            feed_lag: self.feed_lag(processors::stream::CHECKPOINT).await?,
        })
    }

    async fn change_stamp(&self) -> Result<u64, StoreError> {
        Store::change_stamp(self).await
    }

    async fn model_params(&self) -> Result<Option<Params>, StoreError> {
        Ok(self
            .latest_model_fit()
            .await?
            .map(|stored| stored.fit.params))
    }
}
