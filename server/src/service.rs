//! Engage's one application service: what pages, server functions and the REST API call,
//! over the ports of whichever backend runs. Every call is scoped to the signed-in user's
//! book.

use crate::backend::Operations;
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
use ports::{
    Accounts, AddUserError, Books, CreateClientError, EmailFilter, ListError, Model, PageLimits,
    Records, Review, ReviewError, Reviewer, ScoreChange, Sending, StoreError, UpdateClientError,
    Views,
};
use processors::Clock;
use processors::email::OutreachSettings;
use processors::openrouter::{BreakerState, FallbackWriter};
use processors::sender::ApproveError;
use std::sync::Arc;

/// What the service works over: one implementation of each port per backend (the
/// embedded store, or DynamoDB with SQS), chosen at start-up.
#[derive(Clone)]
pub struct Ports {
    pub records: Arc<dyn Records>,
    pub accounts: Arc<dyn Accounts>,
    pub books: Arc<dyn Books>,
    pub review: Arc<dyn Review>,
    pub sending: Arc<dyn Sending>,
    pub views: Arc<dyn Views>,
    /// The BG/NBD model's data and fits.
    pub model: Arc<dyn Model>,
    /// The pipeline's queues and figures, the change stamp and the fitted model.
    pub ops: Arc<dyn Operations>,
}

/// Engage's application service, the same on every backend: scoping to the viewer's
/// book, role checks, validation, error mapping and the log of what users did live here
/// once; the ports only store and fetch.
#[derive(Clone)]
pub struct Engage {
    ports: Ports,
    clock: Arc<dyn Clock>,
    /// The pipeline's email writer, for its breaker state on the dashboard.
    writer: Arc<FallbackWriter>,
    /// The policy's limits and the outcomes' window.
    outreach: OutreachSettings,
}

impl Engage {
    pub fn new(ports: Ports, clock: Arc<dyn Clock>, writer: Arc<FallbackWriter>) -> Self {
        Self {
            ports,
            clock,
            writer,
            outreach: OutreachSettings::default(),
        }
    }

    /// The same service, figuring outcomes with `outreach`'s window.
    pub fn with_outreach(mut self, outreach: OutreachSettings) -> Self {
        self.outreach = outreach;
        self
    }

    pub fn outreach(&self) -> OutreachSettings {
        self.outreach
    }
}

/// Managers and admins only.
fn require_manager(viewer: &User) -> Result<(), ServiceError> {
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

fn reviewer(viewer: &User) -> Reviewer {
    Reviewer {
        name: viewer.email.as_str().to_owned(),
        scope: scope(viewer),
    }
}

fn review_error(error: ReviewError) -> ServiceError {
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

/// A client's stored scores with what the model makes of them, for the REST API.
pub struct ScoreRecord {
    pub client: Client,
    /// Newest first.
    pub history: Vec<ScoreChange>,
    pub model: Option<domain::bgnbd::BgNbdParams>,
}

impl Engage {
    /// Where a tracked link of a sent email leads: link `n` of the email as stored, if
    /// `signature` is `tracking`'s for it and its host is still allowed (`NotFound`
    /// otherwise: the route never redirects anywhere else). The click is recorded on the
    /// client like any change, so the score's email engagement moves through the pipeline;
    /// a failure to record it is logged, and the client still gets where they were going.
    pub async fn follow_link(
        &self,
        tracking: &processors::tracking::Tracking,
        email: EmailId,
        n: usize,
        signature: &str,
    ) -> Result<String, ServiceError> {
        let detail = self.tracked_email(&email).await?;
        let link = tracking
            .tracked_links(&detail.body_text)
            .get(n)
            .map(|link| (*link).to_owned())
            .filter(|link| tracking.verify_click(&email, n, link, signature))
            .ok_or(ServiceError::NotFound)?;
        let click = domain::Activity::EmailClick(domain::profile::EngagementInput::default());
        self.record_engagement(&detail.summary.client_id, &email, click)
            .await;
        Ok(link)
    }

    /// Records an open of `email` from its pixel, if `signature` is `tracking`'s for it.
    pub async fn record_open(
        &self,
        tracking: &processors::tracking::Tracking,
        email: EmailId,
        signature: &str,
    ) -> Result<(), ServiceError> {
        if !tracking.verify_open(&email, signature) {
            return Err(ServiceError::NotFound);
        }
        let detail = self.tracked_email(&email).await?;
        let open = domain::Activity::EmailOpen(domain::profile::EngagementInput::default());
        self.record_engagement(&detail.summary.client_id, &email, open)
            .await;
        Ok(())
    }

    /// The email a tracked link or pixel names, whoever's book it is in: the signature
    /// the caller checks is the permission.
    async fn tracked_email(&self, email: &EmailId) -> Result<EmailDetail, ServiceError> {
        self.ports
            .review
            .email_detail(email.clone(), None)
            .await
            .map_err(unavailable)?
            .ok_or(ServiceError::NotFound)
    }

    async fn record_engagement(
        &self,
        client: &ClientId,
        email: &EmailId,
        activity: domain::Activity,
    ) {
        let now = self.clock.now();
        let what = match activity {
            domain::Activity::EmailOpen(_) => "email opened",
            _ => "tracked link followed",
        };
        let change: ports::ClientChange = Box::new(move |c| activity.apply_at(&mut c.profile, now));
        match self
            .ports
            .records
            .update_client(client.clone(), None, now, change)
            .await
        {
            Ok(_) => tracing::info!(client_id = %client, email_id = %email, "{what}"),
            Err(error) => {
                tracing::error!(client_id = %client, email_id = %email, %error, "{what}, but it could not be recorded")
            }
        }
    }

    /// The client, if it is in `viewer`'s book.
    pub async fn visible_client(
        &self,
        viewer: &User,
        id: &ClientId,
    ) -> Result<Client, ServiceError> {
        self.ports
            .records
            .get_client(id.clone())
            .await
            .map_err(unavailable)?
            .filter(|client| viewer.may_see(&client.stylist_id))
            .ok_or(ServiceError::NotFound)
    }

    /// A client's score history (newest first, at most `limit`) and the fitted model.
    pub async fn score_record(
        &self,
        viewer: &User,
        id: ClientId,
        limit: u32,
    ) -> Result<ScoreRecord, ServiceError> {
        if !(1..=500).contains(&limit) {
            return Err(ServiceError::Invalid(ValidationErrors::single(
                "limit",
                "limit must be between 1 and 500",
            )));
        }
        let client = self.visible_client(viewer, &id).await?;
        let (history, model) = tokio::try_join!(
            self.ports.records.score_history(id, limit),
            self.ports.ops.model_params(),
        )
        .map_err(unavailable)?;
        Ok(ScoreRecord {
            client,
            history,
            model,
        })
    }

    /// A client's emails, newest first (at most 500).
    pub async fn client_emails(
        &self,
        viewer: &User,
        id: ClientId,
    ) -> Result<Vec<EmailSummary>, ServiceError> {
        self.visible_client(viewer, &id).await?;
        let filter = EmailFilter {
            client: Some(id),
            ..EmailFilter::default()
        };
        self.ports
            .records
            .emails(filter, 500)
            .await
            .map_err(unavailable)
    }

    /// A client's decisions, newest first (at most 500), for whoever may see the client.
    pub async fn client_decisions(
        &self,
        viewer: &User,
        id: ClientId,
    ) -> Result<Vec<domain::outcomes::Decision>, ServiceError> {
        self.visible_client(viewer, &id).await?;
        self.ports
            .records
            .decisions(id, 500)
            .await
            .map_err(unavailable)
    }

    /// Changes a client in `viewer`'s book (anything else is `NotFound`).
    async fn update(
        &self,
        viewer: &User,
        id: ClientId,
        expected_version: Option<u64>,
        change: ports::ClientChange,
    ) -> Result<Client, ServiceError> {
        match self
            .ports
            .records
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
            Err(UpdateClientError::VersionConflict { .. }) => Err(ServiceError::Conflict(
                Box::new(self.visible_client(viewer, &id).await?),
            )),
            Err(UpdateClientError::Store(error)) => Err(unavailable(error)),
        }
    }
}

#[async_trait::async_trait]
impl EngageService for Engage {
    async fn list_stylists(&self, viewer: &User) -> Result<Vec<Stylist>, ServiceError> {
        let all = self.ports.books.stylists().await.map_err(unavailable)?;
        Ok(all.into_iter().filter(|s| viewer.may_see(&s.id)).collect())
    }

    async fn list_clients(
        &self,
        viewer: &User,
        mut query: ClientQuery,
    ) -> Result<ClientPage, ServiceError> {
        // A query built in code (not parsed from a form) may ask for any number of rows.
        query.limit = query.limit.clamp(1, ClientQuery::MAX_LIMIT);
        match self.ports.books.client_list(query, scope(viewer)).await {
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
        let limits = PageLimits {
            history: 200,
            timeline: 200,
            emails: 50,
        };
        let page = self
            .ports
            .books
            .client_page(id.clone(), scope(viewer), limits)
            .await
            .map_err(unavailable)?
            .ok_or(ServiceError::NotFound)?;
        let ports::ClientPageData {
            client,
            stylist,
            fit,
            history,
            timeline,
            emails,
            decisions,
        } = page;
        let timeline =
            domain::views::with_decisions(timeline, &decisions, limits.timeline as usize);
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
            decisions,
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
        match self.ports.records.create_client(new, now).await {
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
        let change: ports::ClientChange = Box::new(move |client| edit.apply(client, now));
        let client = self
            .update(viewer, id, Some(expected_version), change)
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
        let change: ports::ClientChange =
            Box::new(move |client| activity.apply_at(&mut client.profile, now));
        let client = self.update(viewer, id, expected_version, change).await?;
        tracing::info!(version = client.version, "activity recorded");
        Ok(client)
    }

    async fn list_emails(
        &self,
        viewer: &User,
        status: Option<EmailStatus>,
        limit: u32,
    ) -> Result<Vec<EmailSummary>, ServiceError> {
        let filter = EmailFilter {
            scope: scope(viewer),
            status,
            client: None,
        };
        self.ports
            .records
            .emails(filter, limit)
            .await
            .map_err(unavailable)
    }

    async fn email_detail(&self, viewer: &User, id: EmailId) -> Result<EmailDetail, ServiceError> {
        self.ports
            .review
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
        let text = ports::check_text(&subject, &body).map_err(ServiceError::Invalid)?;
        self.ports
            .review
            .edit_email(id, text, reviewer(viewer), self.clock.now())
            .await
            .map_err(review_error)?;
        tracing::info!("draft edited");
        Ok(())
    }

    /// The consent check, the all-or-none approval and the queueing live in
    /// [`processors::sender::approve`].
    #[tracing::instrument(skip_all, fields(user_id = %viewer.id, emails = ids.len()))]
    async fn approve_emails(
        &self,
        viewer: &User,
        ids: Vec<EmailId>,
        send_at: &str,
    ) -> Result<ApproveReport, ServiceError> {
        ports::check_approval(&ids).map_err(ServiceError::Invalid)?;
        let asked = domain::schedule::SendAt::parse(send_at, self.clock.now())
            .map_err(|e| ServiceError::Invalid(domain::validation::ValidationErrors(vec![e])))?;
        let sending = self.ports.sending.as_ref();
        match processors::sender::approve(
            sending,
            ids,
            asked,
            &self.outreach.send,
            reviewer(viewer),
            self.clock.as_ref(),
        )
        .await
        {
            Ok(report) => {
                tracing::info!(
                    queued = report.queued,
                    scheduled = report.scheduled,
                    "drafts approved"
                );
                Ok(report)
            }
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

    /// Sends a failed email again (managers and admins).
    #[tracing::instrument(skip_all, fields(user_id = %viewer.id, email_id = %id))]
    async fn resend_email(&self, viewer: &User, id: EmailId) -> Result<(), ServiceError> {
        require_manager(viewer)?;
        self.ports
            .sending
            .resend(id, reviewer(viewer), self.clock.now())
            .await
            .map_err(review_error)?;
        tracing::info!("email queued to be sent again");
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %viewer.id, email_id = %id))]
    async fn reject_email(
        &self,
        viewer: &User,
        id: EmailId,
        reason: String,
    ) -> Result<(), ServiceError> {
        self.ports
            .review
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
        let now = self.clock.now();
        let range =
            DateRange::parse(&from, &to, now.date_naive()).map_err(ServiceError::Invalid)?;
        let (figures, pipeline, touches) = tokio::try_join!(
            self.ports.views.dashboard_figures(range),
            self.ports.ops.pipeline_figures(now),
            self.ports.views.touch_counts(),
        )
        .map_err(unavailable)?;
        let queue = pipeline.events_queue;
        let llm_breaker = match self.writer.breaker_state() {
            None => "none",
            Some(BreakerState::Closed) => "closed",
            Some(BreakerState::HalfOpen) => "half_open",
            Some(BreakerState::Open { .. }) => "open",
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
                feed_lag: pipeline.feed_lag,
                dead_letters: queue.dead_letters,
                llm_breaker: llm_breaker.to_owned(),
            },
            outcomes: domain::outcomes::outcomes(&touches, self.outreach.window_days),
        })
    }

    async fn outcomes(&self, viewer: &User) -> Result<domain::outcomes::Outcomes, ServiceError> {
        require_manager(viewer)?;
        let touches = self.ports.views.touch_counts().await.map_err(unavailable)?;
        Ok(domain::outcomes::outcomes(
            &touches,
            self.outreach.window_days,
        ))
    }

    async fn dead_letters(&self, viewer: &User) -> Result<Vec<DeadLetterView>, ServiceError> {
        require_manager(viewer)?;
        let letters = self
            .ports
            .ops
            .dead_letters(500)
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
        require_admin(viewer)?;
        self.ports.accounts.api_keys().await.map_err(unavailable)
    }

    #[tracing::instrument(skip_all, fields(user_id = %viewer.id))]
    async fn create_api_key(
        &self,
        viewer: &User,
        name: String,
        role: Role,
        stylist: Option<StylistId>,
    ) -> Result<NewApiKey, ServiceError> {
        require_admin(viewer)?;
        let created = self
            .ports
            .accounts
            .create_api_key(name, role, stylist, self.clock.now())
            .await
            .map_err(|e| match e {
                AddUserError::Invalid(errors) => ServiceError::Invalid(errors),
                AddUserError::Store(error) => unavailable(error),
            })?;
        tracing::info!(key = %created.key.id, role = role.as_str(), "API key created");
        Ok(created)
    }

    #[tracing::instrument(skip_all, fields(user_id = %viewer.id))]
    async fn revoke_api_key(&self, viewer: &User, id: String) -> Result<ApiKey, ServiceError> {
        require_admin(viewer)?;
        let key = self
            .ports
            .accounts
            .revoke_api_key(id, self.clock.now())
            .await
            .map_err(unavailable)?
            .ok_or(ServiceError::NotFound)?;
        tracing::info!(key = %key.id, "API key revoked");
        Ok(key)
    }

    #[tracing::instrument(skip_all, fields(user_id = %viewer.id))]
    async fn redrive(&self, viewer: &User, id: Option<i64>) -> Result<u64, ServiceError> {
        require_manager(viewer)?;
        let moved = self
            .ports
            .ops
            .redrive(id, self.clock.now())
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                ServiceError::Invalid(ValidationErrors::single(
                    "id",
                    "This backend puts its dead letters back on the queue together; leave out the id.",
                ))
            })?;
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
        let event = self
            .ports
            .review
            .request_redraft(id, instruction, reviewer(viewer), self.clock.now())
            .await
            .map_err(review_error)?;
        tracing::info!(event_id = %event, "redraft requested");
        Ok(event)
    }
}
