//! What the operator commands and the web layer read besides the service's ports: the
//! pipeline's figures, the change stamp that keeps pages current, the fitted model's
//! parameters, dead letters and redrive, and the clients to rescore with their events.

use chrono::{DateTime, Utc};
use domain::api::PipelineFigures;
use domain::bgnbd::BgNbdParams;
use domain::{ClientId, DomainEvent, StylistId};

use crate::StoreError;

/// A message that failed too often, kept with its last error until redriven.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub queue: String,
    /// The event id the message carried.
    pub dedup_id: String,
    pub body: String,
    pub receive_count: u32,
    pub last_error: String,
    pub enqueued_at: DateTime<Utc>,
    pub failed_at: DateTime<Utc>,
}

/// Clients to rescore, and where the next page starts (`None`: no more).
pub type ClientKeys = (Vec<(ClientId, StylistId, u64)>, Option<String>);

#[async_trait::async_trait]
pub trait Operations: Send + Sync + 'static {
    /// How the pipeline is keeping up (`/readyz`, the dashboard).
    async fn pipeline_figures(&self, now: DateTime<Utc>) -> Result<PipelineFigures, StoreError>;
    /// Grows whenever a score, draft or review step is written.
    async fn change_stamp(&self) -> Result<u64, StoreError>;
    /// The latest fitted BG/NBD model, if any.
    async fn model_params(&self) -> Result<Option<BgNbdParams>, StoreError>;
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
