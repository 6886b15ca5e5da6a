//! The stream-processor Lambda: DynamoDB stream events of the records table -> domain
//! events on the SNS topic (`ENGAGE_TOPIC_ARN`), and approvals -> delivery requests on the
//! deliveries queue (`ENGAGE_DELIVERIES_QUEUE_URL`), answering with the first failed record.

use aws_lambda_events::event::dynamodb::Event;
use engage_aws::lambda::{setting, stream_response};
use engage_aws::stream::StreamHandler;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = engage_aws::lambda::sdk_config().await;
    let handler = StreamHandler::new(
        aws_sdk_sns::Client::new(&config),
        setting("ENGAGE_TOPIC_ARN")?,
    )
    .with_deliveries(
        aws_sdk_sqs::Client::new(&config),
        setting("ENGAGE_DELIVERIES_QUEUE_URL")?,
    );
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, Error>(stream_response(handler, event.payload).await)
    }))
    .await
}
