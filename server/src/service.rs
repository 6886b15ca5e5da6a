//! The app's service handle implemented over the store: what pages and server functions
//! call. Every call is scoped to the signed-in user's book.

use app::service::{EngageService, ServiceError};
use domain::dashboard::{Dashboard, DateRange, DeadLetterView, PipelineHealth};
use domain::score::engagement_score;
use domain::user::{ApiKey, NewApiKey, Role, User};
use domain::views::{
    ApproveReport, ClientDetail, ClientPage, ClientQuery, EmailDetail, EmailSummary, FactorLine,
    Outlook, ScoreView, Stylist,
};
use domain::{
    Activity, Client, ClientEdit, ClientId, ClientInput, EmailId, EmailStatus, EventId, NewClient,
    StylistId, ValidationErrors,
};
use processors::Clock;
use processors::openrouter::{BreakerState, FallbackWriter};
use processors::sender::ApproveError;
use std::sync::Arc;
use store::{
    CreateClientError, EmailFilter, ListError, PageLimits, ReviewError, Reviewer, Store,
    StoreError, UpdateClientError,
};

pub struct StoreService {
    store: Store,
    clock: Arc<dyn Clock>,
    /// The pipeline's email writer, for its breaker state on the dashboard.
    writer: Arc<FallbackWriter>,
}

impl StoreService {
    pub fn new(store: Store, clock: Arc<dyn Clock>, writer: Arc<FallbackWriter>) -> Self {
        Self {
            store,
            clock,
            writer,
        }
    }
}

/// Managers and admins only.
pub(crate) fn require_manager(viewer: &User) -> Result<(), ServiceError> {
    match viewer.role {
        Role::Manager | Role::Admin => Ok(()),
        Role::Stylist => Err(ServiceError::Forbidden),
    }
}

fn require_admin(viewer: &User) -> Result<(), ServiceError> {
    match viewer.role {
        Role::Admin => Ok(()),
        Role::Manager | Role::Stylist => Err(ServiceError::Forbidden),
    }
}

/// The API-key calls of [`EngageService`], the same over any [`store::Accounts`].
pub(crate) mod keys {
    use super::{ServiceError, require_admin};
    use domain::StylistId;
    use domain::user::{ApiKey, NewApiKey, Role, User};
    use store::{Accounts, AddUserError};

    fn unavailable(error: store::StoreError) -> ServiceError {
        tracing::error!(%error, "API key store operation failed");
        ServiceError::Unavailable
    }

    pub async fn list(accounts: &dyn Accounts, viewer: &User) -> Result<Vec<ApiKey>, ServiceError> {
        require_admin(viewer)?;
        accounts.api_keys().await.map_err(unavailable)
    }

    pub async fn create(
        accounts: &dyn Accounts,
        viewer: &User,
        name: String,
        role: Role,
        stylist: Option<StylistId>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<NewApiKey, ServiceError> {
        require_admin(viewer)?;
        let created = accounts
            .create_api_key(name, role, stylist, now)
            .await
            .map_err(|e| match e {
                AddUserError::Invalid(errors) => ServiceError::Invalid(errors),
                AddUserError::Store(error) => unavailable(error),
            })?;
        tracing::info!(key = %created.key.id, role = role.as_str(), by = %viewer.id, "API key created");
        Ok(created)
    }

    pub async fn revoke(
        accounts: &dyn Accounts,
        viewer: &User,
        id: String,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<ApiKey, ServiceError> {
        require_admin(viewer)?;
        let key = accounts
            .revoke_api_key(id, now)
            .await
            .map_err(unavailable)?
            .ok_or(ServiceError::NotFound)?;
        tracing::info!(key = %key.id, by = %viewer.id, "API key revoked");
        Ok(key)
    }
}

/// Logs the real cause; the user is told only that it failed.
fn unavailable(error: StoreError) -> ServiceError {
    tracing::error!(%error, "store operation failed");
    ServiceError::Unavailable
}

/// The book a user works in: a stylist's own, or every book (`None`).
pub fn scope(viewer: &User) -> Option<StylistId> {
    match viewer.role {
        Role::Manager | Role::Admin => None,
        // A stylist account always names its stylist; one that somehow does not sees nothing.
        Role::Stylist => Some(
            viewer
                .stylist_id
                .clone()
                .unwrap_or_else(|| StylistId::new("")),
        ),
    }
}

pub(crate) fn reviewer(viewer: &User) -> Reviewer {
    Reviewer {
        name: viewer.email.as_str().to_owned(),
        scope: scope(viewer),
    }
}

pub(crate) fn review_error(error: ReviewError) -> ServiceError {
    match error {
        ReviewError::NotFound => ServiceError::NotFound,
        ReviewError::NotDraft { status } => ServiceError::Invalid(ValidationErrors::single(
            "email_id",
            format!(
                "This email is {}; only a draft awaiting review can be changed.",
                status.as_str()
            ),
        )),
        ReviewError::NotFailed { status } => ServiceError::Refused {
            reason: "not_failed".to_owned(),
            message: format!(
                "This email is {}; only an email whose sending failed can be sent again.",
                status.as_str()
            ),
        },
        ReviewError::Invalid(errors) => ServiceError::Invalid(errors),
        ReviewError::Store(error) => unavailable(error),
    }
}

/// A stylist may put clients only in their own book.
fn check_assignment(viewer: &User, stylist_id: &str) -> Result<(), ServiceError> {
    match scope(viewer) {
        Some(own) if own.as_str() != stylist_id.trim() => {
            Err(ServiceError::Invalid(ValidationErrors::single(
                "stylist_id",
                "You can only keep clients in your own book; ask a manager to move a client.",
            )))
        }
        _ => Ok(()),
    }
}

impl StoreService {
    /// Changes a client in `viewer`'s book (anything else is `NotFound`).
    async fn update(
        &self,
        viewer: &User,
        id: ClientId,
        expected_version: Option<u64>,
        change: impl FnOnce(&mut Client) -> Result<(), ValidationErrors> + Send + 'static,
    ) -> Result<Client, ServiceError> {
        match self
            .store
            .update_client_in(
                scope(viewer),
                id.clone(),
                expected_version,
                self.clock.now(),
                change,
            )
            .await
        {
            Ok(client) => Ok(client),
            Err(UpdateClientError::NotFound) => Err(ServiceError::NotFound),
            Err(UpdateClientError::Invalid(errors)) => Err(ServiceError::Invalid(errors)),
            Err(UpdateClientError::VersionConflict { .. }) => {
                let current = self
                    .store
                    .get_client(id)
                    .await
                    .map_err(unavailable)?
                    .filter(|c| viewer.may_see(&c.stylist_id))
                    .ok_or(ServiceError::NotFound)?;
                Err(ServiceError::Conflict(Box::new(current)))
            }
            Err(UpdateClientError::Store(error)) => Err(unavailable(error)),
        }
    }
}

#[async_trait::async_trait]
impl EngageService for StoreService {
    async fn list_stylists(&self, viewer: &User) -> Result<Vec<Stylist>, ServiceError> {
        let all = self.store.list_stylists().await.map_err(unavailable)?;
        Ok(all.into_iter().filter(|s| viewer.may_see(&s.id)).collect())
    }

    async fn list_clients(
        &self,
        viewer: &User,
        query: ClientQuery,
    ) -> Result<ClientPage, ServiceError> {
        match self.store.list_clients(query, scope(viewer)).await {
            Ok(page) => Ok(page),
            Err(ListError::BadCursor) => Err(ServiceError::Invalid(ValidationErrors::single(
                "after",
                "This page link is out of date; start again from the first page.",
            ))),
            Err(ListError::Store(error)) => Err(unavailable(error)),
        }
    }

    async fn client_detail(
        &self,
        viewer: &User,
        id: ClientId,
    ) -> Result<ClientDetail, ServiceError> {
        let viewer_may_see = viewer.clone();
        let page = self
            .store
            .client_page(
                id.clone(),
                move |client| viewer_may_see.may_see(&client.stylist_id),
                PageLimits {
                    history: 200,
                    timeline: 200,
                    emails: 50,
                },
            )
            .await
            .map_err(unavailable)?
            .ok_or(ServiceError::NotFound)?;
        let store::ClientPageData {
            client,
            stylist,
            fit,
            history,
            timeline,
            emails,
        } = page;
        let now = self.clock.now();
        let score = engagement_score(&client, now)
            .map_err(|error| tracing::warn!(client_id = %id, %error, "client cannot be scored"))
            .ok()
            .map(|score| ScoreView {
                score: score.score,
                band: score.band,
                factors: score
                    .factors
                    .iter()
                    .map(|f| FactorLine {
                        points: f.points,
                        explanation: f.explanation(),
                    })
                    .collect(),
            });
        let outlook = fit.and_then(|stored| {
            let summary = client.profile.repeat_summary(now.date_naive())?;
            Some(Outlook {
                p_alive: stored.fit.params.probability_alive(&summary),
                expected_purchases_90_days: stored.fit.params.expected_purchases(&summary, 90.0),
            })
        });
        Ok(ClientDetail {
            stylist_name: stylist.map_or_else(|| client.stylist_id.to_string(), |s| s.name),
            client,
            score,
            outlook,
            history,
            timeline,
            emails,
        })
    }

    #[tracing::instrument(skip_all, fields(user_id = %viewer.id))]
    async fn create_client(
        &self,
        viewer: &User,
        input: ClientInput,
    ) -> Result<Client, ServiceError> {
        let now = self.clock.now();
        let new = NewClient::parse(&input, now).map_err(ServiceError::Invalid)?;
        check_assignment(viewer, new.stylist_id.as_str())?;
        match self.store.create_client(new, now).await {
            Ok(client) => {
                tracing::info!(client_id = %client.id, stylist_id = %client.stylist_id, "client created");
                Ok(client)
            }
            Err(CreateClientError::Invalid(errors)) => Err(ServiceError::Invalid(errors)),
            Err(CreateClientError::Store(error)) => Err(unavailable(error)),
        }
    }

    #[tracing::instrument(skip_all, fields(user_id = %viewer.id, client_id = %id))]
    async fn update_client(
        &self,
        viewer: &User,
        id: ClientId,
        expected_version: u64,
        edit: ClientEdit,
    ) -> Result<Client, ServiceError> {
        check_assignment(viewer, &edit.stylist_id)?;
        let now = self.clock.now();
        let client = self
            .update(viewer, id, Some(expected_version), move |client| {
                edit.apply(client, now)
            })
            .await?;
        tracing::info!(version = client.version, "client edited");
        Ok(client)
    }

    #[tracing::instrument(skip_all, fields(user_id = %viewer.id, client_id = %id))]
    async fn record_activity(
        &self,
        viewer: &User,
        id: ClientId,
        activity: Activity,
        expected_version: Option<u64>,
    ) -> Result<Client, ServiceError> {
        let now = self.clock.now();
        let client = self
            .update(viewer, id, expected_version, move |client| {
                activity.apply_at(&mut client.profile, now)
            })
            .await?;
        tracing::info!(version = client.version, "activity recorded");
        Ok(client)
    }

    async fn list_emails(
        &self,
        viewer: &User,
        status: Option<EmailStatus>,
        limit: u32,
    ) -> Result<Vec<EmailSummary>, ServiceError> {
        self.store
            .find_emails(
                EmailFilter {
                    scope: scope(viewer),
                    status,
                    client: None,
                },
                limit,
            )
            .await
            .map_err(unavailable)
    }

    async fn email_detail(&self, viewer: &User, id: EmailId) -> Result<EmailDetail, ServiceError> {
        self.store
            .email_detail(id, scope(viewer))
            .await
            .map_err(unavailable)?
            .ok_or(ServiceError::NotFound)
    }

    #[tracing::instrument(skip_all, fields(user_id = %viewer.id, email_id = %id))]
    async fn edit_email(
        &self,
        viewer: &User,
        id: EmailId,
        subject: String,
        body: String,
    ) -> Result<(), ServiceError> {
        let text = store::check_text(&subject, &body).map_err(ServiceError::Invalid)?;
        self.store
            .edit_email(id, text, reviewer(viewer), self.clock.now())
            .await
            .map_err(review_error)?;
        tracing::info!("draft edited");
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %viewer.id, emails = ids.len()))]
    async fn approve_emails(
        &self,
        viewer: &User,
        ids: Vec<EmailId>,
    ) -> Result<ApproveReport, ServiceError> {
        approve(&self.store, viewer, ids, self.clock.as_ref()).await
    }

    #[tracing::instrument(skip_all, fields(user_id = %viewer.id, email_id = %id))]
    async fn resend_email(&self, viewer: &User, id: EmailId) -> Result<(), ServiceError> {
        resend(&self.store, viewer, id, self.clock.as_ref()).await
    }

    #[tracing::instrument(skip_all, fields(user_id = %viewer.id, email_id = %id))]
    async fn reject_email(
        &self,
        viewer: &User,
        id: EmailId,
        reason: String,
    ) -> Result<(), ServiceError> {
        self.store
            .reject_email(id, reason, reviewer(viewer), self.clock.now())
            .await
            .map_err(review_error)?;
        tracing::info!("draft rejected");
        Ok(())
    }

    async fn dashboard(
        &self,
        viewer: &User,
        from: String,
        to: String,
    ) -> Result<Dashboard, ServiceError> {
        require_manager(viewer)?;
        let range = DateRange::parse(&from, &to, self.clock.now().date_naive())
            .map_err(ServiceError::Invalid)?;
        let (figures, queue, feed_lag) = tokio::try_join!(
            self.store.dashboard_figures(range),
            self.store
                .queue_stats(processors::EVENTS_QUEUE, self.clock.now()),
            self.store.feed_lag(processors::stream::CHECKPOINT),
        )
        .map_err(unavailable)?;
        let llm_breaker = match self.writer.breaker_state() {
            None => "none".to_owned(),
            Some(BreakerState::Closed) => "closed".to_owned(),
            Some(BreakerState::HalfOpen) => "half_open".to_owned(),
            Some(BreakerState::Open { .. }) => "open".to_owned(),
        };
        Ok(Dashboard {
            range,
            bands: figures.bands,
            band_days: figures.band_days,
            stylists: figures.stylists,
            email_days: figures.email_days,
            writers: figures.writers,
            health: PipelineHealth {
                queue_depth: queue.visible,
                in_flight: queue.in_flight,
                oldest_message_age_secs: (queue.visible + queue.in_flight > 0)
                    .then_some(queue.oldest_age_ms / 1000),
                feed_lag,
                dead_letters: queue.dead_letters,
                llm_breaker,
            },
        })
    }

    async fn dead_letters(&self, viewer: &User) -> Result<Vec<DeadLetterView>, ServiceError> {
        require_manager(viewer)?;
        let letters = self
            .store
            .dead_letters(processors::EVENTS_QUEUE, 500)
            .await
            .map_err(unavailable)?;
        Ok(letters
            .into_iter()
            .map(|d| DeadLetterView {
                id: d.id,
                event_id: d.dedup_id,
                receive_count: d.receive_count,
                last_error: d.last_error,
                failed_at: d.failed_at,
            })
            .collect())
    }

    async fn api_keys(&self, viewer: &User) -> Result<Vec<ApiKey>, ServiceError> {
        keys::list(&self.store, viewer).await
    }

    async fn create_api_key(
        &self,
        viewer: &User,
        name: String,
        role: Role,
        stylist: Option<StylistId>,
    ) -> Result<NewApiKey, ServiceError> {
        keys::create(&self.store, viewer, name, role, stylist, self.clock.now()).await
    }

    async fn revoke_api_key(&self, viewer: &User, id: String) -> Result<ApiKey, ServiceError> {
        keys::revoke(&self.store, viewer, id, self.clock.now()).await
    }

    #[tracing::instrument(skip_all, fields(user_id = %viewer.id))]
    async fn redrive(&self, viewer: &User, id: Option<i64>) -> Result<u64, ServiceError> {
        require_manager(viewer)?;
        let moved = self
            .store
            .redrive(processors::EVENTS_QUEUE, id, self.clock.now())
            .await
            .map_err(unavailable)?;
        tracing::info!(moved, "dead letters put back on the queue");
        Ok(moved)
    }

    #[tracing::instrument(skip_all, fields(user_id = %viewer.id, email_id = %id))]
    async fn regenerate_email(
        &self,
        viewer: &User,
        id: EmailId,
        instruction: Option<String>,
    ) -> Result<EventId, ServiceError> {
        let instruction = check_instruction(instruction).map_err(ServiceError::Invalid)?;
        self.store
            .request_redraft(
                processors::EVENTS_QUEUE,
                id,
                instruction,
                reviewer(viewer),
                self.clock.now(),
            )
            .await
            .map_err(review_error)
    }
}

/// Approves drafts for `viewer` on either backend: the consent check, the all-or-none
/// approval and the queueing live in [`processors::sender::approve`].
pub(crate) async fn approve(
    sending: &dyn store::Sending,
    viewer: &User,
    ids: Vec<EmailId>,
    clock: &dyn Clock,
) -> Result<ApproveReport, ServiceError> {
    if ids.is_empty() {
        return Err(ServiceError::Invalid(ValidationErrors::single(
            "email_ids",
            "Choose at least one draft to approve.",
        )));
    }
    match processors::sender::approve(sending, ids, reviewer(viewer), clock).await {
        Ok(queued) => Ok(ApproveReport { queued }),
        Err(ApproveError::Withdrawn(withdrawn)) => {
            let reason = withdrawn
                .first()
                .map_or("no_consent", |(_, reason)| reason.as_str())
                .to_owned();
            Err(ServiceError::Refused {
                reason,
                message: ApproveError::Withdrawn(withdrawn).to_string(),
            })
        }
        Err(ApproveError::Review(error)) => Err(review_error(error)),
    }
}

/// Sends a failed email again (managers and admins), on either backend.
pub(crate) async fn resend(
    sending: &dyn store::Sending,
    viewer: &User,
    id: EmailId,
    clock: &dyn Clock,
) -> Result<(), ServiceError> {
    require_manager(viewer)?;
    sending
        .resend(id, reviewer(viewer), clock.now())
        .await
        .map_err(review_error)?;
    tracing::info!("email queued to be sent again");
    Ok(())
}

/// A stylist's redraft instruction: trimmed, one line, at most
/// [`processors::openrouter::MAX_INSTRUCTION_CHARS`]; empty means none.
pub fn check_instruction(instruction: Option<String>) -> Result<Option<String>, ValidationErrors> {
    let instruction = instruction
        .map(|i| i.trim().to_owned())
        .filter(|i| !i.is_empty());
    if let Some(instruction) = &instruction {
        let max = processors::openrouter::MAX_INSTRUCTION_CHARS;
        if instruction.chars().count() > max || instruction.chars().any(char::is_control) {
            return Err(ValidationErrors::single(
                "instruction",
                format!("Keep the instruction to one line of at most {max} characters."),
            ));
        }
    }
    Ok(instruction)
}
