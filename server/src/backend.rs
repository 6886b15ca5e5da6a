//! What the web layer reads besides the app's `EngageService`, behind one seam so the same
//! router serves from the embedded SQLite store or from DynamoDB/SQS: records and accounts
//! (the store's traits), and [`Operations`] (pipeline figures, the change stamp that keeps
//! pages current, the fitted BG/NBD model).

use crate::ops::PipelineFigures;
use chrono::{DateTime, Utc};
use domain::bgnbd::BgNbdParams as Params;
use domain::{ClientId, DomainEvent, StylistId};
use store::{DeadLetter, Store, StoreError};

/// Clients to rescore, and where the next page starts (`None`: no more).
pub type ClientKeys = (Vec<(ClientId, StylistId, u64)>, Option<String>);

#[async_trait::async_trait]
pub trait Operations: Send + Sync + 'static {
    /// How the pipeline is keeping up (`/readyz`, the dashboard).
    async fn pipeline_figures(&self, now: DateTime<Utc>) -> Result<PipelineFigures, StoreError>;
    /// Grows whenever a score, draft or review step is written.
    async fn change_stamp(&self) -> Result<u64, StoreError>;
    /// The latest fitted BG/NBD model, if any.
    async fn model_params(&self) -> Result<Option<Params>, StoreError>;
    /// Events that failed too often, oldest first.
    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError>;
    /// Puts dead letters back on the events queue, all or the one with `id`; returns how
    /// many moved, or `None` if this backend cannot pick out one.
    async fn redrive(&self, id: Option<i64>, now: DateTime<Utc>)
    -> Result<Option<u64>, StoreError>;
    /// How many clients there are (for progress).
    async fn client_count(&self) -> Result<u64, StoreError>;
    /// Every client's id, stylist and version, a page at a time from `after` (the last
    /// page's cursor).
    async fn client_keys(
        &self,
        after: Option<String>,
        limit: u32,
    ) -> Result<ClientKeys, StoreError>;
    /// Puts events on their way to the email processor; returns how many were new (an
    /// event already queued is not queued again where the backend can tell).
    async fn queue_events(
        &self,
        events: Vec<DomainEvent>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
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

    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        Store::dead_letters(self, processors::EVENTS_QUEUE, limit).await
    }

    async fn redrive(
        &self,
        id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        Ok(Some(
            Store::redrive(self, processors::EVENTS_QUEUE, id, now).await?,
        ))
    }

    async fn client_count(&self) -> Result<u64, StoreError> {
        Store::client_count(self).await
    }

    async fn client_keys(
        &self,
        after: Option<String>,
        limit: u32,
    ) -> Result<ClientKeys, StoreError> {
        let page = Store::client_keys(self, after.map(ClientId::new), limit).await?;
        let next = (page.len() == limit as usize)
            .then(|| page.last().map(|(id, _, _)| id.to_string()))
            .flatten();
        Ok((page, next))
    }

    async fn queue_events(
        &self,
        events: Vec<DomainEvent>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.enqueue(processors::EVENTS_QUEUE, events, now).await
    }
}
