//! The views Lambda, on the views queue (subscribed to the topic for view facts only):
//! each fact's deltas -> the dashboard's counter items in the records table
//! (`ENGAGE_TABLE`), once per fact. It answers with the failed message ids
//! (`ReportBatchItemFailures`); SQS retries them, then dead-letters them.

use aws_lambda_events::event::sqs::SqsEvent;
use engage_aws::DynamoStore;
use engage_aws::lambda::{queue_response, setting};
use engage_aws::views::ViewsHandler;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = engage_aws::lambda::sdk_config().await;
    let handler = ViewsHandler {
        store: DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&config),
            setting("ENGAGE_TABLE")?,
        ),
    };
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(queue_response("views", handler, event.payload).await)
    }))
    .await
}
