//! The [`Operations`] port on the embedded SQLite store: the events queue's figures and
//! dead letters, the change feed's lag, the change stamp and the clients to rescore.

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use domain::api::PipelineFigures;
use domain::bgnbd::BgNbdParams as Params;
use domain::{ClientId, DomainEvent};
use ports::{ClientKeys, DeadLetter, EVENTS_QUEUE, Operations};

#[async_trait::async_trait]
impl Operations for Store {
    async fn pipeline_figures(&self, now: DateTime<Utc>) -> Result<PipelineFigures, StoreError> {
        Ok(PipelineFigures {
            events_queue: self.queue_stats(EVENTS_QUEUE, now).await?,
            feed_lag: self.feed_lag(crate::STREAM_CHECKPOINT).await?,
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
        Store::dead_letters(self, EVENTS_QUEUE, limit).await
    }

    async fn redrive(
        &self,
        id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        Ok(Some(Store::redrive(self, EVENTS_QUEUE, id, now).await?))
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
        self.enqueue(EVENTS_QUEUE, events, now).await
    }
}
