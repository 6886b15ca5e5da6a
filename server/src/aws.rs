//! Engage on AWS from the web side: the app's service over DynamoDB (`AwsService`), the
//! pipeline's figures from SQS (`AwsOperations`), and `engage serve --backend aws`, which
//! runs the same router against an AWS endpoint (moto_server on one machine) with the
//! pollers that play the Lambda functions' part.

use crate::backend::Operations;
use crate::config::{AwsArgs, AwsCommand, ServeArgs};
use crate::ops::PipelineFigures;
use crate::service::{check_instruction, require_manager, review_error, reviewer, scope};
use crate::startup::{AppState, router};
use app::service::{EngageService, Service, ServiceError};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use chrono::{DateTime, Utc};
use domain::dashboard::{Dashboard, DeadLetterView};
use domain::score::engagement_score;
use domain::user::{ApiKey, NewApiKey, Role, User};
use domain::views::{
    ApproveReport, ClientDetail, ClientPage, ClientQuery, ClientSort, ClientSummary, EmailDetail,
    EmailSummary, FactorLine, ScorePoint, ScoreView, Stylist,
};
use domain::{
    Activity, Client, ClientEdit, ClientId, ClientInput, EmailId, EmailStatus, EventId, NewClient,
    ValidationErrors,
};
use engage_aws::stream::StreamHandler;
use engage_aws::{Aws, DynamoStore, Resources};
use processors::Clock;
use processors::openrouter::FallbackWriter;
use std::sync::Arc;
use store::{CreateClientError, EmailFilter, QueueStats, Records, StoreError, UpdateClientError};
use tokio_util::sync::CancellationToken;

/// The app's service over DynamoDB; scoped to the viewer's book exactly as on SQLite.
pub struct AwsService {
    store: DynamoStore,
    clock: Arc<dyn Clock>,
    events: StreamHandler,
    sqs: aws_sdk_sqs::Client,
    resources: Resources,
}

fn unavailable(error: StoreError) -> ServiceError {
    tracing::error!(%error, "DynamoDB operation failed");
    ServiceError::Unavailable
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

impl AwsService {
    pub fn new(aws: &Aws, resources: Resources, clock: Arc<dyn Clock>) -> Self {
        Self {
            store: DynamoStore::new(aws.dynamo.clone(), resources.table.clone()),
            clock,
            events: StreamHandler::new(aws.sns.clone(), resources.topic_arn.clone()),
            sqs: aws.sqs.clone(),
            resources,
        }
    }

    async fn visible_client(&self, viewer: &User, id: &ClientId) -> Result<Client, ServiceError> {
        self.store
            .get_client(id.clone())
            .await
            .map_err(unavailable)?
            .filter(|client| viewer.may_see(&client.stylist_id))
            .ok_or(ServiceError::NotFound)
    }

    async fn update(
        &self,
        viewer: &User,
        id: ClientId,
        expected_version: Option<u64>,
        change: store::ClientChange,
    ) -> Result<Client, ServiceError> {
        self.visible_client(viewer, &id).await?;
        match self
            .store
            .update_client(id.clone(), expected_version, self.clock.now(), change)
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
impl EngageService for AwsService {
    async fn list_stylists(&self, viewer: &User) -> Result<Vec<Stylist>, ServiceError> {
        let all = self.store.list_stylists().await.map_err(unavailable)?;
        Ok(all.into_iter().filter(|s| viewer.may_see(&s.id)).collect())
    }

    /// Reads the viewer's books whole and filters, sorts and pages them here: DynamoDB
    /// keeps each book in score order only. Pages are offsets into the sorted list.
    async fn list_clients(
        &self,
        viewer: &User,
        query: ClientQuery,
    ) -> Result<ClientPage, ServiceError> {
        let offset: usize = match query.after.as_deref() {
            None => 0,
            Some(raw) => raw.parse().map_err(|_| {
                ServiceError::Invalid(ValidationErrors::single(
                    "after",
                    "This page link is out of date; start again from the first page.",
                ))
            })?,
        };
        let stylists = match scope(viewer) {
            Some(own) => vec![own],
            None => self
                .store
                .list_stylists()
                .await
                .map_err(unavailable)?
                .into_iter()
                .map(|s| s.id)
                .collect(),
        };
        let mut clients = Vec::new();
        for stylist in &stylists {
            clients.extend(
                self.store
                    .book(stylist)
                    .await
                    .map_err(unavailable)?
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

    async fn client_detail(
        &self,
        viewer: &User,
        id: ClientId,
    ) -> Result<ClientDetail, ServiceError> {
        let client = self.visible_client(viewer, &id).await?;
        let now = self.clock.now();
        let score = engagement_score(&client, now).ok().map(|score| ScoreView {
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
        let emails = self
            .store
            .emails(
                EmailFilter {
                    client: Some(id.clone()),
                    ..EmailFilter::default()
                },
                50,
            )
            .await
            .map_err(unavailable)?;
        let mut history: Vec<ScorePoint> = self
            .store
            .score_history(id.clone(), 200)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|change| ScorePoint {
                score: change.score,
                band: change.band,
                at: change.scored_at,
            })
            .collect();
        history.reverse();
        let timeline = self
            .store
            .timeline(&id, &emails)
            .await
            .map_err(unavailable)?;
        let stylist_name = self
            .store
            .stylist_name(&client.stylist_id)
            .await
            .map_err(unavailable)?
            .unwrap_or_else(|| client.stylist_id.to_string());
        Ok(ClientDetail {
            client,
            stylist_name,
            score,
            outlook: None,
            history,
            timeline,
            emails,
        })
    }

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
                tracing::info!(client_id = %client.id, "client created");
                Ok(client)
            }
            Err(CreateClientError::Invalid(errors)) => Err(ServiceError::Invalid(errors)),
            Err(CreateClientError::Store(error)) => Err(unavailable(error)),
        }
    }

    async fn update_client(
        &self,
        viewer: &User,
        id: ClientId,
        expected_version: u64,
        edit: ClientEdit,
    ) -> Result<Client, ServiceError> {
        check_assignment(viewer, &edit.stylist_id)?;
        let now = self.clock.now();
        self.update(
            viewer,
            id,
            Some(expected_version),
            Box::new(move |client: &mut Client| edit.apply(client, now)),
        )
        .await
    }

    async fn record_activity(
        &self,
        viewer: &User,
        id: ClientId,
        activity: Activity,
        expected_version: Option<u64>,
    ) -> Result<Client, ServiceError> {
        let now = self.clock.now();
        self.update(
            viewer,
            id,
            expected_version,
            Box::new(move |client: &mut Client| activity.apply_at(&mut client.profile, now)),
        )
        .await
    }

    async fn list_emails(
        &self,
        viewer: &User,
        status: Option<EmailStatus>,
        limit: u32,
    ) -> Result<Vec<EmailSummary>, ServiceError> {
        self.store
            .emails(
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
            .email_detail(&id, scope(viewer).as_ref())
            .await
            .map_err(unavailable)?
            .ok_or(ServiceError::NotFound)
    }

    async fn edit_email(
        &self,
        viewer: &User,
        id: EmailId,
        subject: String,
        body: String,
    ) -> Result<(), ServiceError> {
        let words = store::check_text(&subject, &body).map_err(ServiceError::Invalid)?;
        self.store
            .edit_email(&id, words, &reviewer(viewer), self.clock.now())
            .await
            .map_err(review_error)
    }

    async fn approve_emails(
        &self,
        viewer: &User,
        ids: Vec<EmailId>,
    ) -> Result<ApproveReport, ServiceError> {
        crate::service::approve(&self.store, viewer, ids, self.clock.as_ref()).await
    }

    async fn resend_email(&self, viewer: &User, id: EmailId) -> Result<(), ServiceError> {
        crate::service::resend(&self.store, viewer, id, self.clock.as_ref()).await
    }

    async fn reject_email(
        &self,
        viewer: &User,
        id: EmailId,
        reason: String,
    ) -> Result<(), ServiceError> {
        self.store
            .reject_email(&id, reason, &reviewer(viewer), self.clock.now())
            .await
            .map_err(review_error)
    }

    /// The dashboard reads materialized views that exist only on the embedded store.
    async fn dashboard(
        &self,
        viewer: &User,
        _from: String,
        _to: String,
    ) -> Result<Dashboard, ServiceError> {
        require_manager(viewer)?;
        tracing::warn!("the dashboard is not available on the AWS backend yet");
        Err(ServiceError::Unavailable)
    }

    /// A look at the dead-letter queue (SQS keeps no error text: the email function's log
    /// has it).
    async fn dead_letters(&self, viewer: &User) -> Result<Vec<DeadLetterView>, ServiceError> {
        require_manager(viewer)?;
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.resources.dead_letter_queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| unavailable(StoreError::Service(engage_aws::dynamo::describe(e))))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, message)| {
                let attribute = |name| {
                    message
                        .attributes
                        .as_ref()
                        .and_then(|a| a.get(&name))
                        .cloned()
                        .unwrap_or_default()
                };
                let event_id = message
                    .body
                    .as_deref()
                    .and_then(|b| serde_json::from_str::<domain::DomainEvent>(b).ok())
                    .map(|e| e.id.to_string())
                    .unwrap_or_else(|| "(unreadable)".into());
                let sent: i64 = attribute(MessageSystemAttributeName::SentTimestamp)
                    .parse()
                    .unwrap_or(0);
                DeadLetterView {
                    id: i as i64,
                    event_id,
                    receive_count: attribute(MessageSystemAttributeName::ApproximateReceiveCount)
                        .parse()
                        .unwrap_or(0),
                    last_error: "see the email function's log".into(),
                    failed_at: DateTime::<Utc>::from_timestamp_millis(sent).unwrap_or_default(),
                }
            })
            .collect())
    }

    async fn api_keys(&self, viewer: &User) -> Result<Vec<ApiKey>, ServiceError> {
        crate::service::keys::list(&self.store, viewer).await
    }

    async fn create_api_key(
        &self,
        viewer: &User,
        name: String,
        role: Role,
        stylist: Option<domain::StylistId>,
    ) -> Result<NewApiKey, ServiceError> {
        crate::service::keys::create(&self.store, viewer, name, role, stylist, self.clock.now())
            .await
    }

    async fn revoke_api_key(&self, viewer: &User, id: String) -> Result<ApiKey, ServiceError> {
        crate::service::keys::revoke(&self.store, viewer, id, self.clock.now()).await
    }

    async fn redrive(&self, viewer: &User, id: Option<i64>) -> Result<u64, ServiceError> {
        require_manager(viewer)?;
        if id.is_some() {
            return Err(ServiceError::Invalid(ValidationErrors::single(
                "id",
                "On AWS the dead letters go back to the queue together.",
            )));
        }
        engage_aws::poll::redrive(
            &self.sqs,
            &self.resources.dead_letter_queue_url,
            &self.resources.queue_url,
        )
        .await
        .map_err(|e| unavailable(StoreError::Service(e)))
    }

    async fn regenerate_email(
        &self,
        viewer: &User,
        id: EmailId,
        instruction: Option<String>,
    ) -> Result<EventId, ServiceError> {
        let instruction = check_instruction(instruction).map_err(ServiceError::Invalid)?;
        let event = self
            .store
            .redraft_event(&id, instruction, &reviewer(viewer), self.clock.now())
            .await
            .map_err(review_error)?;
        self.events
            .publish(std::slice::from_ref(&event))
            .await
            .map_err(|e| unavailable(StoreError::Service(e.to_string())))?;
        Ok(event.id)
    }
}

/// The pipeline's figures from SQS's attributes; the change stamp from the table.
pub struct AwsOperations {
    store: DynamoStore,
    sqs: aws_sdk_sqs::Client,
    resources: Resources,
}

impl AwsOperations {
    async fn attributes(&self, url: &str) -> Result<(u64, u64), StoreError> {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| StoreError::Service(engage_aws::dynamo::describe(e)))?
            .attributes
            .unwrap_or_default();
        let number = |name| {
            attributes
                .get(&name)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Ok((
            number(QueueAttributeName::ApproximateNumberOfMessages),
            number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }
}

#[async_trait::async_trait]
impl Operations for AwsOperations {
    async fn pipeline_figures(&self, _now: DateTime<Utc>) -> Result<PipelineFigures, StoreError> {
        let (visible, in_flight) = self.attributes(&self.resources.queue_url).await?;
        let (dead_letters, _) = self
            .attributes(&self.resources.dead_letter_queue_url)
            .await?;
        Ok(PipelineFigures {
            events_queue: QueueStats {
                visible,
                in_flight,
                oldest_age_ms: 0,
                dead_letters,
            },
            feed_lag: 0,
        })
    }

    async fn change_stamp(&self) -> Result<u64, StoreError> {
        self.store.change_stamp().await
    }

    async fn model_params(&self) -> Result<Option<domain::bgnbd::BgNbdParams>, StoreError> {
        Ok(None)
    }
}

/// The web state on AWS.
pub async fn state(
    aws: &Aws,
    resources: &Resources,
    clock: Arc<dyn Clock>,
    writer: Arc<FallbackWriter>,
    addr: std::net::SocketAddr,
    web: &crate::config::WebArgs,
) -> anyhow::Result<AppState> {
    let store = DynamoStore::new(aws.dynamo.clone(), resources.table.clone());
    let ops = AwsOperations {
        store: store.clone(),
        sqs: aws.sqs.clone(),
        resources: resources.clone(),
    };
    AppState::on(
        Arc::new(store.clone()),
        Arc::new(store),
        Arc::new(ops),
        Arc::new(AwsService::new(aws, resources.clone(), Arc::clone(&clock))) as Service,
        clock,
        writer,
        addr,
        web,
    )
    .await
}

/// `engage serve --backend aws`: the same app on DynamoDB, with the stream and queue
/// pollers standing in for the Lambda functions. Needs the resources `engage aws
/// bootstrap` (or deploy/) made; adds demo data to an empty table.
pub async fn serve(
    clock: Arc<dyn Clock>,
    args: ServeArgs,
    aws_args: &AwsArgs,
) -> anyhow::Result<()> {
    let aws = Aws::from_env(&aws_args.prefix).await;
    let resources = engage_aws::bootstrap::locate(&aws).await.map_err(|e| {
        anyhow::anyhow!("{e}; create the resources first with `engage aws bootstrap`")
    })?;
    let store = aws.store();
    if args.demo_data && store.list_stylists().await?.is_empty() {
        tracing::info!("empty table: adding demo data");
        crate::demo::seed_records(&store, clock.as_ref(), 40).await?;
    }
    if args.demo_data && store::Accounts::user_count(&store).await? == 0 {
        crate::demo::accounts_in(&store, &aws_args.demo_accounts_file, clock.as_ref()).await?;
    }
    let writer = Arc::new(crate::startup::llm_writer(&args)?);
    let core = Arc::new(processors::EmailCore::new(
        Arc::new(store.clone()),
        Arc::clone(&clock),
        writer.clone(),
        Default::default(),
    ));
    let shutdown = CancellationToken::new();

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(table = %resources.table, "Engage (AWS backend) is serving at http://{addr}/");
    let state = state(&aws, &resources, clock, writer, addr, &args.web).await?;
    let sender = Arc::new(crate::startup::sender_core(
        Arc::new(store.clone()),
        &state,
        args.queue_max_receives,
    ));
    let pollers = engage_aws::poll::spawn_pollers(
        &aws,
        &resources,
        core,
        Some(sender),
        &state.processors,
        &shutdown,
    );
    let app = router(state);
    tokio::spawn(crate::startup::cancel_on_signal(shutdown.clone()));
    crate::transport::serve(
        listener,
        app,
        crate::startup::transport_limits(&args.web),
        shutdown.clone(),
    )
    .await?;
    tracing::info!("shutting down: waiting for the pollers to finish their batch");
    for poller in pollers {
        let _ = poller.await;
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// `engage aws …`.
pub async fn command(
    command: &AwsCommand,
    args: &AwsArgs,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let aws = Aws::from_env(&args.prefix).await;
    match command {
        AwsCommand::Bootstrap {
            max_receives,
            visibility_timeout_secs,
        } => {
            let settings = engage_aws::bootstrap::QueueSettings {
                max_receives: *max_receives,
                visibility_timeout_secs: *visibility_timeout_secs,
            };
            let resources =
                engage_aws::bootstrap::bootstrap(&aws, &settings, &|step| tracing::info!("{step}"))
                    .await?;
            writeln!(out, "table        {}", resources.table)?;
            writeln!(out, "stream       {}", resources.stream_arn)?;
            writeln!(out, "topic        {}", resources.topic_arn)?;
            writeln!(out, "queue        {}", resources.queue_url)?;
            writeln!(out, "dead letters {}", resources.dead_letter_queue_url)?;
            writeln!(out, "deliveries   {}", resources.deliveries_queue_url)?;
        }
        AwsCommand::Redrive => {
            let resources = engage_aws::bootstrap::locate(&aws).await?;
            let moved = engage_aws::poll::redrive(
                &aws.sqs,
                &resources.dead_letter_queue_url,
                &resources.queue_url,
            )
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
            writeln!(out, "{moved} events put back on the queue")?;
        }
    }
    Ok(())
}
