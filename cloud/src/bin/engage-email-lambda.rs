//! The email-processor Lambda: SQS events (raw SNS delivery of domain events) -> score,
//! policy and draft in the records table (`ENGAGE_TABLE`), answering with the failed
//! message ids (`ReportBatchItemFailures`).

use aws_lambda_events::event::sqs::SqsEvent;
use engage_aws::DynamoStore;
use engage_aws::email::QueueHandler;
use engage_aws::lambda::{emf_line, queue_response, setting, writer_from_env};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use processors::{EmailCore, SystemClock};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        setting("ENGAGE_TABLE")?,
    );
    let writer = Arc::new(writer_from_env(&config).await?);
    let core = EmailCore::new(
        Arc::new(store),
        Arc::new(SystemClock),
        Arc::clone(&writer) as _,
        Default::default(),
    );
    let handler = QueueHandler::new(Arc::new(core));
    let handler = &handler;
    let writer = &writer;
    let reported = &std::sync::Mutex::new(writer.llm_figures());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let response = queue_response(handler, event.payload).await;
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
