//! Engage on AWS: the same domain and processor code as the embedded default, on
//! DynamoDB, DynamoDB Streams, SNS and SQS.
//!
//! ```text
//! client write ──> DynamoDB table (DynamoStore) ──stream NEW_AND_OLD_IMAGES──>
//!   StreamHandler (events_from_change, as embedded) ──SNS topic──raw delivery──> SQS queue
//!   ──> QueueHandler (EmailCore, as embedded) ──> score change + draft in DynamoDB
//!        failed messages: SQS retries them, then its redrive policy moves them to the DLQ
//! ```
//!
//! The handlers are what the Lambda functions call (`lambda`, and the two `bin/` entry
//! points); on one machine the pollers (`poll`) read the stream and the queue of any
//! endpoint (moto_server, or real AWS) and call the very same handlers.

pub mod accounts;
pub mod adapters;
pub mod bootstrap;
pub mod decisions;
pub mod dynamo;
pub mod email;
pub mod lambda;
pub mod moto;
pub mod operations;
pub mod poll;
pub mod review;
pub mod sender;
pub mod stream;
pub mod views;

pub use adapters::DynamoReview;
pub use dynamo::DynamoStore;
pub use operations::AwsOperations;

use aws_config::BehaviorVersion;

/// The names of Engage's resources, all derived from one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub table: String,
    pub topic: String,
    pub queue: String,
    pub dead_letter_queue: String,
    /// The view facts for the dashboard's views, and those that failed too often.
    pub views_queue: String,
    pub views_dead_letter_queue: String,
    /// Approved emails waiting to be sent, and those whose requests failed too often.
    pub deliveries_queue: String,
    pub deliveries_dead_letter_queue: String,
}

impl Names {
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            table: format!("{prefix}-records"),
            topic: format!("{prefix}-events"),
            queue: format!("{prefix}-events"),
            dead_letter_queue: format!("{prefix}-events-dlq"),
            views_queue: format!("{prefix}-views"),
            views_dead_letter_queue: format!("{prefix}-views-dlq"),
            deliveries_queue: format!("{prefix}-deliveries"),
            deliveries_dead_letter_queue: format!("{prefix}-deliveries-dlq"),
        }
    }
}

/// Where each resource is, once created or found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub table: String,
    pub stream_arn: String,
    pub topic_arn: String,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
    pub views_queue_url: String,
    pub views_dead_letter_queue_url: String,
    pub deliveries_queue_url: String,
    pub deliveries_dead_letter_queue_url: String,
}

/// The service clients, sharing one configuration (region, credentials, endpoint).
#[derive(Clone)]
pub struct Aws {
    pub dynamo: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub names: Names,
}

/// How long a call may take: a request that never answers (a stalled connection) fails
/// and is retried, instead of holding a poller up for good. An attempt may outlast SQS's
/// 20-second long poll.
pub fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .operation_attempt_timeout(std::time::Duration::from_secs(30))
        .operation_timeout(std::time::Duration::from_secs(90))
        .build()
}

impl Aws {
    /// Clients configured the standard AWS way (environment, profile, instance role);
    /// `AWS_ENDPOINT_URL` points them all at another endpoint such as moto_server.
    pub async fn from_env(prefix: &str) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts())
            .load()
            .await;
        Self::with_config(&config, prefix)
    }

    /// Clients for an endpoint given explicitly (tests against moto_server).
    pub async fn at_endpoint(endpoint: &str, prefix: &str) -> Self {
        Self::with_config(&Self::endpoint_config(endpoint).await, prefix)
    }

    /// The SDK's settings for a local endpoint such as moto_server: test credentials,
    /// us-east-1.
    pub async fn endpoint_config(endpoint: &str) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "engage-tests",
            ))
            .load()
            .await
    }

    pub fn with_config(config: &aws_config::SdkConfig, prefix: &str) -> Self {
        Self {
            dynamo: aws_sdk_dynamodb::Client::new(config),
            streams: aws_sdk_dynamodbstreams::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            names: Names::with_prefix(prefix),
        }
    }

    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(self.dynamo.clone(), self.names.table.clone())
    }
}
