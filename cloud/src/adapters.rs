//! The application service's ports on DynamoDB: [`Books`] and [`Views`] on the
//! [`DynamoStore`], and [`Review`] on [`DynamoReview`], which also publishes redraft
//! requests to the topic (they are not table changes the stream would carry).

use crate::DynamoStore;
use crate::stream::StreamHandler;
use chrono::{DateTime, Utc};
use domain::dashboard::DateRange;
use domain::outcomes::{TouchCounts, TouchGroup};
use domain::views::{ClientPage, ClientQuery, ClientSort, ClientSummary, EmailDetail, Stylist};
use domain::{ClientId, DraftText, EmailId, EventId, StylistId};
use ports::{
    Books, ClientPageData, DashboardFigures, EmailFilter, ListError, Model, PageLimits, Records,
    Review, ReviewError, Reviewer, StoreError, StoredFit, Views,
};

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Whether a client matches the list's search: any part of the name or address, ignoring
/// case (one or two characters match the start, as on SQLite).
fn matches_search(client: &ClientSummary, search: &str) -> bool {
    let search = search.trim().to_lowercase();
    if search.is_empty() {
        return true;
    }
    let (name, email) = (client.name.to_lowercase(), client.email.to_lowercase());
    if search.chars().count() < 3 {
        name.starts_with(&search) || email.starts_with(&search)
    } else {
        name.contains(&search) || email.contains(&search)
    }
}

#[async_trait::async_trait]
impl Books for DynamoStore {
    async fn stylists(&self) -> Result<Vec<Stylist>> {
        self.list_stylists().await
    }

    /// Reads the books in scope whole and filters, sorts and pages them here: DynamoDB
    /// keeps each book in score order only. Pages are offsets into the sorted list.
    async fn client_list(
        &self,
        query: ClientQuery,
        scope: Option<StylistId>,
    ) -> Result<ClientPage, ListError> {
        let offset: usize = match query.after.as_deref() {
            None => 0,
            Some(raw) => raw.parse().map_err(|_| ListError::BadCursor)?,
        };
        let stylists = match scope {
            Some(own) => vec![own],
            None => self
                .list_stylists()
                .await?
                .into_iter()
                .map(|s| s.id)
                .collect(),
        };
        let mut clients = Vec::new();
        for stylist in &stylists {
            clients.extend(
                self.book(stylist)
                    .await?
                    .into_iter()
                    .filter(|c| matches_search(c, &query.search))
                    .filter(|c| query.band.is_none_or(|band| c.band == Some(band)))
                    .filter(|c| query.status.is_none_or(|status| c.status == status)),
            );
        }
        // Ties fall back to the id, so an offset cursor pages over one fixed order.
        let score = |c: &ClientSummary| c.score.map_or(-1, i32::from);
        clients.sort_by(|a, b| {
            let order = match query.sort {
                ClientSort::Newest => b.created_at.cmp(&a.created_at),
                ClientSort::ScoreLowest => score(a).cmp(&score(b)),
                ClientSort::ScoreHighest => score(b).cmp(&score(a)),
                ClientSort::RecentActivity => b.last_activity_at.cmp(&a.last_activity_at),
            };
            order.then_with(|| a.id.cmp(&b.id))
        });
        let limit = query.limit.max(1) as usize;
        let more = clients.len() > offset + limit;
        let clients: Vec<_> = clients.into_iter().skip(offset).take(limit).collect();
        Ok(ClientPage {
            clients,
            next: more.then(|| (offset + limit).to_string()),
            search_capped: false,
        })
    }

    async fn client_page(
        &self,
        id: ClientId,
        scope: Option<StylistId>,
        limits: PageLimits,
    ) -> Result<Option<ClientPageData>> {
        let Some(client) = self
            .get_client(id.clone())
            .await?
            .filter(|client| scope.as_ref().is_none_or(|own| *own == client.stylist_id))
        else {
            return Ok(None);
        };
        let filter = EmailFilter {
            client: Some(id.clone()),
            ..EmailFilter::default()
        };
        let emails = self.emails(filter, limits.emails).await?;
        let mut history: Vec<_> = self
            .score_history(id.clone(), limits.history)
            .await?
            .into_iter()
            .map(|change| domain::views::ScorePoint {
                score: change.score,
                band: change.band,
                at: change.scored_at,
            })
            .collect();
        history.reverse();
        let mut timeline = self.timeline(&id, &emails).await?;
        timeline.truncate(limits.timeline as usize);
        let stylist = self
            .stylist_name(&client.stylist_id)
            .await?
            .map(|name| Stylist {
                id: client.stylist_id.clone(),
                name,
            });
        Ok(Some(ClientPageData {
            client,
            stylist,
            fit: self.latest_model_fit().await?,
            history,
            timeline,
            emails,
            decisions: self.decisions(&id, limits.timeline).await?,
        }))
    }
}

/// Fits are kept as JSON under one partition, newest last by the time they were made.
#[async_trait::async_trait]
impl Model for DynamoStore {
    /// Reads every book whole: the fit runs rarely, from the CLI.
    async fn customer_summaries(
        &self,
        observation_end: chrono::NaiveDate,
    ) -> Result<Vec<domain::bgnbd::CustomerSummary>> {
        let mut summaries = Vec::new();
        for stylist in self.list_stylists().await? {
            for client in self.book_clients(&stylist.id).await? {
                summaries.extend(client.profile.repeat_summary(observation_end));
            }
        }
        Ok(summaries)
    }

    async fn save_model_fit(&self, fit: StoredFit) -> Result<()> {
        let json = serde_json::to_string(&fit)
            .map_err(|e| StoreError::Corrupt(format!("model fit: {e}")))?;
        self.put_model_fit(fit.fitted_at, json).await
    }

    async fn latest_model_fit(&self) -> Result<Option<StoredFit>> {
        self.latest_model_fit_json()
            .await?
            .map(|json| {
                serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("model fit: {e}")))
            })
            .transpose()
    }
}

/// The dashboard's views on DynamoDB: counter items kept by the views consumer (see
/// [`crate::views`]).
#[async_trait::async_trait]
impl Views for DynamoStore {
    async fn dashboard_figures(&self, range: DateRange) -> Result<DashboardFigures> {
        self.view_figures(range).await
    }

    async fn touch_counts(&self) -> Result<Vec<(TouchGroup, TouchCounts)>> {
        self.view_touches().await
    }

    async fn rebuild_views(
        &self,
        progress: std::sync::Arc<dyn Fn(u64, u64) + Send + Sync>,
    ) -> Result<()> {
        DynamoStore::rebuild_views(self, &*progress)
            .await
            .map(|_| ())
    }
}

/// Review on DynamoDB, publishing redraft requests to the topic.
#[derive(Clone)]
pub struct DynamoReview {
    store: DynamoStore,
    events: StreamHandler,
}

impl DynamoReview {
    pub fn new(store: DynamoStore, events: StreamHandler) -> Self {
        Self { store, events }
    }
}

#[async_trait::async_trait]
impl Review for DynamoReview {
    async fn email_detail(
        &self,
        id: EmailId,
        scope: Option<StylistId>,
    ) -> Result<Option<EmailDetail>> {
        self.store.email_detail(&id, scope.as_ref()).await
    }

    async fn edit_email(
        &self,
        id: EmailId,
        text: DraftText,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError> {
        self.store.edit_email(&id, text, &by, now).await
    }

    async fn reject_email(
        &self,
        id: EmailId,
        reason: String,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError> {
        self.store.reject_email(&id, reason, &by, now).await
    }

    async fn request_redraft(
        &self,
        id: EmailId,
        instruction: Option<String>,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<EventId, ReviewError> {
        let event = self.store.redraft_event(&id, instruction, &by, now).await?;
        self.events
            .publish(std::slice::from_ref(&event))
            .await
            .map_err(|e| StoreError::Service(e.to_string()))?;
        Ok(event.id)
    }
}
