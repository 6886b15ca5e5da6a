//! Engage on AWS from the web side: the service's ports on DynamoDB and SQS (`ports`),
//! the pipeline's figures from SQS (`AwsOperations`), and `engage serve --backend aws`, which
//! runs the same router against an AWS endpoint (moto_server on one machine) with the
//! pollers that play the Lambda functions' part.

use crate::backend::{ClientKeys, Operations};
use crate::config::{AwsArgs, AwsCommand, ServeArgs};
use crate::ops::PipelineFigures;
use crate::service::Ports;
use crate::startup::{AppState, router};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use engage_aws::stream::StreamHandler;
use engage_aws::{Aws, DynamoReview, DynamoStore, Resources};
use processors::Clock;
use processors::openrouter::FallbackWriter;
use std::sync::Arc;
use store::{DeadLetter, QueueStats, StoreError};
use tokio_util::sync::CancellationToken;

/// The pipeline's figures from SQS's attributes; the change stamp from the table.
pub struct AwsOperations {
    store: DynamoStore,
    events: StreamHandler,
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
        Ok(store::Model::latest_model_fit(&self.store)
            .await?
            .map(|stored| stored.fit.params))
    }

    /// A look at the dead-letter queue (at most ten: one SQS receive), each with the last
    /// error the email processor recorded for it.
    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.resources.dead_letter_queue_url)
            .max_number_of_messages(limit.clamp(1, 10) as i32)
            .visibility_timeout(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| StoreError::Service(engage_aws::dynamo::describe(e)))?;
        let mut letters = Vec::new();
        for (i, message) in out.messages.unwrap_or_default().into_iter().enumerate() {
            let attribute = |name| {
                message
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&name))
                    .cloned()
                    .unwrap_or_default()
            };
            let body = message.body.clone().unwrap_or_default();
            let event_id = serde_json::from_str::<domain::DomainEvent>(&body)
                .map(|e| e.id.to_string())
                .unwrap_or_else(|_| "(unreadable)".into());
            let sent: i64 = attribute(MessageSystemAttributeName::SentTimestamp)
                .parse()
                .unwrap_or(0);
            let sent = DateTime::<Utc>::from_timestamp_millis(sent).unwrap_or_default();
            let failure = match message.message_id.as_deref() {
                Some(id) => self.store.failure(id).await?,
                None => None,
            };
            let (last_error, failed_at) =
                failure.unwrap_or_else(|| ("(no error was recorded)".into(), sent));
            letters.push(DeadLetter {
                id: i as i64,
                queue: "events-dlq".into(),
                dedup_id: event_id,
                body,
                receive_count: attribute(MessageSystemAttributeName::ApproximateReceiveCount)
                    .parse()
                    .unwrap_or(0),
                last_error,
                enqueued_at: sent,
                failed_at,
            });
        }
        Ok(letters)
    }

    /// SQS gives dead letters no lasting id, so they go back together.
    async fn redrive(
        &self,
        id: Option<i64>,
        _now: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        if id.is_some() {
            return Ok(None);
        }
        engage_aws::poll::redrive(
            &self.sqs,
            &self.resources.dead_letter_queue_url,
            &self.resources.queue_url,
        )
        .await
        .map(Some)
        .map_err(StoreError::Service)
    }

    async fn client_count(&self) -> Result<u64, StoreError> {
        let mut count = 0;
        for stylist in self.store.list_stylists().await? {
            count += self.store.book_size(&stylist.id).await?;
        }
        Ok(count)
    }

    /// A page is one stylist's book; the cursor is the next stylist's place in the list.
    async fn client_keys(
        &self,
        after: Option<String>,
        _limit: u32,
    ) -> Result<ClientKeys, StoreError> {
        let stylists = self.store.list_stylists().await?;
        let at: usize = after.and_then(|a| a.parse().ok()).unwrap_or(0);
        let Some(stylist) = stylists.get(at) else {
            return Ok((Vec::new(), None));
        };
        let keys = self.store.book_keys(&stylist.id).await?;
        Ok((
            keys,
            (at + 1 < stylists.len()).then(|| (at + 1).to_string()),
        ))
    }

    /// Publishes to the topic; the email processor's idempotency record makes an event
    /// published twice take effect once, so every event counts as queued.
    async fn queue_events(
        &self,
        events: Vec<DomainEvent>,
        _now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.events
            .publish(&events)
            .await
            .map_err(|e| StoreError::Service(e.to_string()))?;
        Ok(events.len() as u64)
    }
}

/// The ports on the resources named with `prefix` where the standard AWS settings point.
pub async fn ports_from_env(prefix: &str) -> anyhow::Result<Ports> {
    let aws = Aws::from_env(prefix).await;
    let resources = engage_aws::bootstrap::locate(&aws).await.map_err(|e| {
        anyhow::anyhow!("{e}; create the resources first with `engage aws bootstrap`")
    })?;
    Ok(ports(&aws, &resources))
}

/// Every port of the service on DynamoDB and SQS.
pub fn ports(aws: &Aws, resources: &Resources) -> Ports {
    let store = DynamoStore::new(aws.dynamo.clone(), resources.table.clone());
    let events = StreamHandler::new(aws.sns.clone(), resources.topic_arn.clone());
    Ports {
        records: Arc::new(store.clone()),
        accounts: Arc::new(store.clone()),
        books: Arc::new(store.clone()),
        review: Arc::new(DynamoReview::new(store.clone(), events.clone())),
        sending: Arc::new(store.clone()),
        views: Arc::new(store.clone()),
        model: Arc::new(store.clone()),
        ops: Arc::new(AwsOperations {
            store,
            events,
            sqs: aws.sqs.clone(),
            resources: resources.clone(),
        }),
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
    AppState::on(ports(aws, resources), clock, writer, addr, web).await
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
            writeln!(out, "views        {}", resources.views_queue_url)?;
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
