//! The web service's ports ([`Books`], [`Review`], [`Views`], [`Model`]) on the embedded
//! SQLite store: thin adapters over the store's own methods.

use crate::{Result, Store};
use chrono::{DateTime, NaiveDate, Utc};
use domain::bgnbd::CustomerSummary;
use domain::dashboard::DateRange;
use domain::outcomes::{TouchCounts, TouchGroup};
use domain::views::{ClientPage, ClientQuery, EmailDetail, Stylist};
use domain::{ClientId, DraftText, EmailId, EventId, StylistId};
use ports::{
    Books, ClientPageData, DashboardFigures, EVENTS_QUEUE, ListError, Model, PageLimits, Review,
    ReviewError, Reviewer, StoredFit, Views,
};
use std::sync::Arc;

#[async_trait::async_trait]
impl Model for Store {
    async fn customer_summaries(&self, observation_end: NaiveDate) -> Result<Vec<CustomerSummary>> {
        Store::customer_summaries(self, observation_end).await
    }

    async fn save_model_fit(&self, fit: StoredFit) -> Result<()> {
        Store::save_model_fit(self, fit).await
    }

    async fn latest_model_fit(&self) -> Result<Option<StoredFit>> {
        Store::latest_model_fit(self).await
    }
}

#[async_trait::async_trait]
impl Books for Store {
    async fn stylists(&self) -> Result<Vec<Stylist>> {
        self.list_stylists().await
    }

    async fn client_list(
        &self,
        query: ClientQuery,
        scope: Option<StylistId>,
    ) -> Result<ClientPage, ListError> {
        self.list_clients(query, scope).await
    }

    async fn client_page(
        &self,
        id: ClientId,
        scope: Option<StylistId>,
        limits: PageLimits,
    ) -> Result<Option<ClientPageData>> {
        Store::client_page(
            self,
            id,
            move |client| scope.as_ref().is_none_or(|own| *own == client.stylist_id),
            limits,
        )
        .await
    }
}

#[async_trait::async_trait]
impl Review for Store {
    async fn email_detail(
        &self,
        id: EmailId,
        scope: Option<StylistId>,
    ) -> Result<Option<EmailDetail>> {
        Store::email_detail(self, id, scope).await
    }

    async fn edit_email(
        &self,
        id: EmailId,
        text: DraftText,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError> {
        Store::edit_email(self, id, text, by, now).await
    }

    async fn reject_email(
        &self,
        id: EmailId,
        reason: String,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError> {
        Store::reject_email(self, id, reason, by, now).await
    }

    async fn request_redraft(
        &self,
        id: EmailId,
        instruction: Option<String>,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<EventId, ReviewError> {
        Store::request_redraft(self, EVENTS_QUEUE, id, instruction, by, now).await
    }
}

#[async_trait::async_trait]
impl Views for Store {
    async fn dashboard_figures(&self, range: DateRange) -> Result<DashboardFigures> {
        Store::dashboard_figures(self, range).await
    }

    async fn touch_counts(&self) -> Result<Vec<(TouchGroup, TouchCounts)>> {
        Store::touch_counts(self).await
    }

    async fn rebuild_views(&self, progress: Arc<dyn Fn(u64, u64) + Send + Sync>) -> Result<()> {
        Store::rebuild_views(self, move |done, total| progress(done, total)).await
    }
}
