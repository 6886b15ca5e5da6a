//! The email-processor Lambda: SQS events (raw SNS delivery of domain events) -> score,
//! policy and draft in the records table (`ENGAGE_TABLE`), answering with the failed
//! message ids (`ReportBatchItemFailures`).

use aws_lambda_events::event::sqs::SqsEvent;
use engage_aws::DynamoStore;
use engage_aws::email::QueueHandler;
use engage_aws::lambda::{queue_response, setting, writer_from_env};
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
    let core = EmailCore::new(
        Arc::new(store),
        Arc::new(SystemClock),
        Arc::new(writer_from_env(&config).await?),
        Default::default(),
    );
    let handler = QueueHandler::new(Arc::new(core));
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(queue_response(handler, event.payload).await)
    }))
    .await
}
