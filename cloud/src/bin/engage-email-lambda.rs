//! The email-processor Lambda, on two queues: domain events (raw SNS delivery) -> score,
//! policy and draft in the records table (`ENGAGE_TABLE`); and delivery requests (queued
//! by the stream function for each approval) -> the consent check and delivery through
//! SES (`ENGAGE_SES_IDENTITY`, `ENGAGE_SES_CONFIGURATION_SET`) or SMTP (`ENGAGE_SMTP_URL`).
//! A scheduled delivery that comes too early goes back on `ENGAGE_DELIVERIES_QUEUE_URL`
//! with a delay. It answers with the failed message ids (`ReportBatchItemFailures`).

use aws_lambda_events::event::sqs::SqsEvent;
use engage_aws::DynamoStore;
use engage_aws::email::QueueHandler;
use engage_aws::lambda::{emf_line, queue_response, setting, writer_deadline, writer_from_env};
use engage_aws::sender::{DeliveryHandler, SesDelivery};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use ports::{Accounts, Outgoing};
use processors::delivery::{Delivery, Smtp, UnsubscribeLinks, message_domain};
use processors::email::OutreachSettings;
use processors::openrouter::within_deadline;
use processors::sender::SenderCore;
use processors::tracking::Tracking;
use processors::{EmailCore, SystemClock};
use std::sync::Arc;

/// Without SES or SMTP nothing can be sent: each attempt fails with the reason, so the
/// email ends `failed` (never marked sent) and can be resent once delivery is set up.
struct NoDelivery;

#[async_trait::async_trait]
impl Delivery for NoDelivery {
    async fn deliver(&self, _email: &Outgoing, _message: &lettre::Message) -> Result<(), String> {
        Err("no delivery is configured: set the template's SenderIdentity (SES), or ENGAGE_SMTP_URL on the email function".to_owned())
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = engage_aws::lambda::sdk_config().await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        setting("ENGAGE_TABLE")?,
    );
    let writer = Arc::new(writer_from_env(&config).await?);
    let clock = Arc::new(SystemClock);
    // The policy's limits and the outcomes' window, as the server reads them.
    let outreach = OutreachSettings::from_env()?;
    let core = EmailCore::new(
        Arc::new(store.clone()),
        clock.clone(),
        Arc::clone(&writer) as _,
        outreach.policy,
    )
    .with_outcomes(Arc::new(store.clone()), outreach.window_days);
    // SES when the template names a sender identity, else SMTP when a URL is set.
    let delivery: Arc<dyn Delivery> = match (
        setting("ENGAGE_SES_IDENTITY"),
        std::env::var("ENGAGE_SMTP_URL"),
    ) {
        (Ok(identity), _) => Arc::new(SesDelivery::new(
            aws_sdk_sesv2::Client::new(&config),
            identity,
            setting("ENGAGE_SES_CONFIGURATION_SET").ok(),
        )),
        (_, Ok(url)) if !url.trim().is_empty() => Arc::new(Smtp::new(url.trim())?),
        _ => Arc::new(NoDelivery),
    };
    let public_url = setting("ENGAGE_PUBLIC_URL")?;
    let links = UnsubscribeLinks::new(
        store.secret("unsubscribe_key").await?.into_bytes(),
        &public_url,
    );
    let attempts = std::env::var("ENGAGE_DELIVERY_ATTEMPTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    // The business's own links tracked (ENGAGE_LINK_HOSTS), and opens (ENGAGE_OPEN_PIXEL),
    // signed with the key the web function checks them with.
    let (hosts, pixel) = Tracking::settings_from(|n| std::env::var(n).ok())?;
    let tracking = Tracking::new(
        store.secret("tracking_key").await?.into_bytes(),
        &public_url,
        hosts,
        pixel,
    );
    let sender = SenderCore::new(
        Arc::new(store.clone()),
        delivery,
        links,
        message_domain(&public_url),
        clock,
        attempts,
    )
    .with_tracking(tracking);
    let events = QueueHandler::new(Arc::new(core)).recording_failures(store.clone());
    let mut deliveries = DeliveryHandler::new(Arc::new(sender));
    // A scheduled send that comes too early waits on its queue again.
    if let Ok(queue_url) = setting("ENGAGE_DELIVERIES_QUEUE_URL") {
        deliveries = deliveries.requeuing(aws_sdk_sqs::Client::new(&config), queue_url);
    }
    let (events, deliveries) = (&events, &deliveries);
    let writer = &writer;
    let reported = &std::sync::Mutex::new(writer.llm_figures());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        // One function, two event sources: the deliveries queue's messages say so.
        let from_deliveries = event.payload.records.first().is_some_and(|record| {
            record
                .event_source_arn
                .as_deref()
                .is_some_and(|arn| arn.ends_with("-deliveries"))
        });
        let response = if from_deliveries {
            queue_response("email", deliveries, event.payload).await
        } else {
            // The LLM gets what the invocation has left, less a margin to record every
            // outcome: drafts past it are written by the template, none is cut off.
            let deadline = writer_deadline(event.context.deadline, std::time::SystemTime::now());
            within_deadline(deadline, queue_response("email", events, event.payload)).await
        };
        // The LLM's calls, failures and cost in this batch, as CloudWatch metrics.
        let now = writer.llm_figures();
        let mut before = reported.lock().unwrap_or_else(|e| e.into_inner());
        if now != *before {
            println!(
                "{}",
                emf_line(
                    "email",
                    &[
                        ("LlmCalls", "Count", (now.calls - before.calls) as f64),
                        (
                            "LlmFailures",
                            "Count",
                            (now.failures - before.failures) as f64
                        ),
                        ("LlmCostUsd", "None", now.cost_usd - before.cost_usd),
                    ],
                )
            );
            *before = now;
        }
        Ok::<_, Error>(response)
    }))
    .await
}
