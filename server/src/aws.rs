//! Engage on AWS from the web side: the service's ports wired to the AWS adapters of
//! `engage-aws` (`ports`), and `engage serve --backend aws`, which runs the same router
//! against an AWS endpoint (moto_server on one machine) with the pollers that play the
//! Lambda functions' part.

use crate::config::{AwsArgs, AwsCommand, ServeArgs};
use crate::service::Ports;
use crate::startup::{AppState, router};
use engage_aws::stream::StreamHandler;
use engage_aws::{Aws, AwsOperations, DynamoReview, DynamoStore, Resources};
use processors::Clock;
use processors::openrouter::FallbackWriter;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

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
        ops: Arc::new(AwsOperations::new(
            store,
            events,
            aws.sqs.clone(),
            resources.clone(),
        )),
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
    let args = args.with_outreach_from_env()?;
    if args.demo_data && store.list_stylists().await?.is_empty() {
        tracing::info!("empty table: adding demo data");
        if args.demo_days == 0 {
            crate::demo::seed_records(&store, clock.as_ref(), args.demo_clients).await?;
        } else {
            let plan = crate::replay::Plan {
                seed: crate::replay::Plan::DEFAULT_SEED,
                days: args.demo_days,
                clients: args.demo_clients,
            };
            let summary = replay(&aws, &resources, plan, args.outreach, clock.now()).await?;
            tracing::info!(%summary, "demo data replayed");
        }
    }
    if args.demo_data && ports::Accounts::user_count(&store).await? == 0 {
        crate::demo::accounts_in(&store, &aws_args.demo_accounts_file, clock.as_ref()).await?;
    }
    let writer = Arc::new(crate::startup::llm_writer(&args)?);
    let core = Arc::new(
        processors::EmailCore::new(
            Arc::new(store.clone()),
            Arc::clone(&clock),
            writer.clone(),
            args.outreach.policy,
        )
        .with_outcomes(Arc::new(store.clone()), args.outreach.window_days),
    );
    let shutdown = CancellationToken::new();

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(table = %resources.table, "Engage (AWS backend) is serving at http://{addr}/");
    let state = state(&aws, &resources, clock, writer, addr, &args.web)
        .await?
        .with_outreach(args.outreach);
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

/// The AWS pipeline driven step by step: the pollers' handlers, run until idle.
struct AwsPipeline(engage_aws::poll::Settler);

#[async_trait::async_trait]
impl crate::replay::Pipeline for AwsPipeline {
    async fn settle(&self) -> anyhow::Result<u64> {
        self.0.settle().await.map_err(|e| anyhow::anyhow!(e))
    }
}

/// Replays `plan` on empty AWS resources, up to `now`: the demo's past on DynamoDB, with
/// the stream, the events, the views and the deliveries handled as the functions do.
pub async fn replay(
    aws: &Aws,
    resources: &Resources,
    plan: crate::replay::Plan,
    outreach: processors::email::OutreachSettings,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<crate::replay::Summary> {
    let store = aws.store();
    let ports = ports(aws, resources);
    anyhow::ensure!(
        ports.ops.client_count().await? == 0,
        "the table already has clients: a replayed past needs an empty one (use --days 0 to add clients as of now)"
    );
    let replay = crate::replay::Replay::new(plan, now);
    let clock: Arc<dyn Clock> = replay.clock.clone();
    let core = Arc::new(
        processors::EmailCore::new(
            Arc::new(store.clone()),
            Arc::clone(&clock),
            replay.writer.clone(),
            outreach.policy,
        )
        .with_outcomes(Arc::new(store.clone()), outreach.window_days),
    );
    let sender = Arc::new(crate::replay::replay_sender(Arc::new(store.clone()), clock));
    let pipeline = AwsPipeline(engage_aws::poll::Settler::new(aws, resources, core, sender));
    replay.run(&ports, &pipeline, outreach).await
}
