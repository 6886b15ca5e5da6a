//! The ports the web service reads and reviews through, beside [`Records`](crate::Records),
//! [`Accounts`](crate::Accounts) and [`Sending`](crate::Sending): the books, the review of
//! drafts, the dashboard's views and the BG/NBD model.

use crate::{
    ClientPageData, DashboardFigures, ListError, PageLimits, Result, ReviewError, Reviewer,
    StoredFit,
};
use chrono::{DateTime, NaiveDate, Utc};
use domain::bgnbd::CustomerSummary;
use domain::dashboard::DateRange;
use domain::outcomes::{TouchCounts, TouchGroup};
use domain::views::{ClientPage, ClientQuery, EmailDetail, Stylist};
use domain::{ClientId, DraftText, EmailId, EventId, StylistId, ValidationErrors};
use std::sync::Arc;

/// Drafts approved in one request at most: every backend can approve this many all or
/// none (DynamoDB's transactions hold 100 writes, three per email).
pub const MAX_APPROVE_AT_ONCE: usize = 33;

/// The drafts of one approval: at least one, at most [`MAX_APPROVE_AT_ONCE`].
pub fn check_approval(ids: &[EmailId]) -> std::result::Result<(), ValidationErrors> {
    if ids.is_empty() {
        return Err(ValidationErrors::single(
            "email_ids",
            "Choose at least one draft to approve.",
        ));
    }
    if ids.len() > MAX_APPROVE_AT_ONCE {
        return Err(ValidationErrors::single(
            "email_ids",
            format!("Approve at most {MAX_APPROVE_AT_ONCE} drafts at a time."),
        ));
    }
    Ok(())
}

/// The stylists' books: who keeps which clients, and a client with all its page shows.
#[async_trait::async_trait]
pub trait Books: Send + Sync + 'static {
    /// Every stylist, by name.
    async fn stylists(&self) -> Result<Vec<Stylist>>;

    /// One page of clients in `scope`, filtered, searched and sorted as `query` asks;
    /// `query.after` is the previous page's `next`.
    async fn client_list(
        &self,
        query: ClientQuery,
        scope: Option<StylistId>,
    ) -> Result<ClientPage, ListError>;

    /// A client and its stylist, model fit, score history, timeline and emails; `None`
    /// if there is no such client in `scope` (then nothing else is read).
    async fn client_page(
        &self,
        id: ClientId,
        scope: Option<StylistId>,
        limits: PageLimits,
    ) -> Result<Option<ClientPageData>>;
}

/// The review of drafts: reading one, editing, rejecting and asking for a redraft.
/// Approval and delivery go through [`Sending`](crate::Sending).
#[async_trait::async_trait]
pub trait Review: Send + Sync + 'static {
    /// An email with its words and review steps, unless it is outside `scope`.
    async fn email_detail(
        &self,
        id: EmailId,
        scope: Option<StylistId>,
    ) -> Result<Option<EmailDetail>>;

    /// Replaces a draft's words with a reviewer's (already checked), keeping the writer's
    /// first words, and logs the step.
    async fn edit_email(
        &self,
        id: EmailId,
        text: DraftText,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError>;

    /// Rejects a draft with the reviewer's reason, freeing the client for a new one.
    async fn reject_email(
        &self,
        id: EmailId,
        reason: String,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError>;

    /// Records a redraft request for a draft and puts its event on the way to the email
    /// processor; returns the event's id.
    async fn request_redraft(
        &self,
        id: EmailId,
        instruction: Option<String>,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<EventId, ReviewError>;
}

/// The dashboard's views, kept from the events as they are handled.
#[async_trait::async_trait]
pub trait Views: Send + Sync + 'static {
    async fn dashboard_figures(&self, range: DateRange) -> Result<DashboardFigures>;
    /// The outcome counters: per kind, emailed (per writer and prompt) or held out.
    async fn touch_counts(&self) -> Result<Vec<(TouchGroup, TouchCounts)>>;
    /// Clears the views and counts everything again from the records; `progress` hears
    /// (done, total) as it goes.
    async fn rebuild_views(&self, progress: Arc<dyn Fn(u64, u64) + Send + Sync>) -> Result<()>;
}

/// The BG/NBD model of repeat buying: what it is fitted on, and the fits.
#[async_trait::async_trait]
pub trait Model: Send + Sync + 'static {
    /// Every client's purchase summary as of `observation_end` (clients who never bought
    /// have none).
    async fn customer_summaries(&self, observation_end: NaiveDate) -> Result<Vec<CustomerSummary>>;
    /// Keeps a fit; the latest one is the model in use.
    async fn save_model_fit(&self, fit: StoredFit) -> Result<()>;
    async fn latest_model_fit(&self) -> Result<Option<StoredFit>>;
}
