//! `engage aws bootstrap`: creates what Engage needs on an AWS endpoint (real AWS or
//! moto_server) — the table with its stream, indexes and TTL, the topic, the queue and its
//! dead-letter queue with the redrive policy, and the topic's raw-delivery subscription —
//! or finds it already there. Safe to run again.

use crate::{Aws, Resources};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, Projection, ProjectionType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use std::collections::HashMap;

/// How the queue is set up.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// Receives after which SQS moves a message to the dead-letter queue.
    pub max_receives: u32,
    /// Seconds a received message stays hidden (≥ 6× the email function's timeout on AWS).
    pub visibility_timeout_secs: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            max_receives: 5,
            visibility_timeout_secs: 180,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{step}: {reason}")]
pub struct BootstrapError {
    step: &'static str,
    reason: String,
}

fn failed<E: std::fmt::Display>(step: &'static str) -> impl FnOnce(E) -> BootstrapError {
    move |error| BootstrapError {
        step,
        reason: error.to_string(),
    }
}

fn sdk<E, R>(
    step: &'static str,
) -> impl FnOnce(aws_sdk_dynamodb::error::SdkError<E, R>) -> BootstrapError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    move |error| BootstrapError {
        step,
        reason: crate::dynamo::describe(error),
    }
}

fn attribute(name: &str) -> Result<AttributeDefinition, BootstrapError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(failed("table attribute"))
}

fn key_schema(hash: &str, range: &str) -> Result<Vec<KeySchemaElement>, BootstrapError> {
    Ok(vec![
        KeySchemaElement::builder()
            .attribute_name(hash)
            .key_type(KeyType::Hash)
            .build()
            .map_err(failed("key schema"))?,
        KeySchemaElement::builder()
            .attribute_name(range)
            .key_type(KeyType::Range)
            .build()
            .map_err(failed("key schema"))?,
    ])
}

fn index(name: &str, hash: &str, range: &str) -> Result<GlobalSecondaryIndex, BootstrapError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .set_key_schema(Some(key_schema(hash, range)?))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(failed("index"))
}

/// Creates (or finds) every resource named by `aws.names`, and returns their addresses.
pub async fn bootstrap(
    aws: &Aws,
    settings: &QueueSettings,
    progress: &dyn Fn(&str),
) -> Result<Resources, BootstrapError> {
    let names = &aws.names;
    let table = &names.table;
    let exists = aws
        .dynamo
        .describe_table()
        .table_name(table)
        .send()
        .await
        .is_ok();
    if exists {
        progress(&format!("table {table} exists"));
    } else {
        aws.dynamo
            .create_table()
            .table_name(table)
            .set_attribute_definitions(Some(
                ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"]
                    .into_iter()
                    .map(attribute)
                    .collect::<Result<_, _>>()?,
            ))
            .set_key_schema(Some(key_schema("pk", "sk")?))
            .global_secondary_indexes(index(crate::dynamo::BY_LIST, "gsi1pk", "gsi1sk")?)
            .global_secondary_indexes(index(crate::dynamo::BY_CLIENT, "gsi2pk", "gsi2sk")?)
            .billing_mode(BillingMode::PayPerRequest)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .map_err(failed("stream specification"))?,
            )
            .send()
            .await
            .map_err(sdk("create table"))?;
        aws.dynamo
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expires_at")
                    .enabled(true)
                    .build()
                    .map_err(failed("time to live"))?,
            )
            .send()
            .await
            .map_err(sdk("enable time to live"))?;
        aws.dynamo
            .update_continuous_backups()
            .table_name(table)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .build()
                    .map_err(failed("point-in-time recovery"))?,
            )
            .send()
            .await
            .map_err(sdk("enable point-in-time recovery"))?;
        progress(&format!(
            "table {table} created (stream, 2 indexes, TTL, PITR)"
        ));
    }
    let description = aws
        .dynamo
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(sdk("describe table"))?;
    let stream_arn = description
        .table()
        .and_then(|t| t.latest_stream_arn())
        .ok_or_else(|| failed("table stream")("the table has no stream"))?
        .to_owned();

    let topic_arn = aws
        .sns
        .create_topic()
        .name(&names.topic)
        .send()
        .await
        .map_err(sdk("create topic"))?
        .topic_arn
        .ok_or_else(|| failed("create topic")("no topic ARN returned"))?;
    progress(&format!("topic {}", names.topic));

    // The email processor hears the domain events; the views consumer the view facts.
    let kind = domain::view_facts::VIEW_FACT_KIND;
    let (queue_url, dlq_url) = subscribed_queue(
        aws,
        &topic_arn,
        (&names.queue, &names.dead_letter_queue),
        settings,
        serde_json::json!({"event_kind": [{"anything-but": [kind]}]}),
        progress,
    )
    .await?;
    let (views_queue_url, views_dead_letter_queue_url) = subscribed_queue(
        aws,
        &topic_arn,
        (&names.views_queue, &names.views_dead_letter_queue),
        settings,
        serde_json::json!({"event_kind": [kind]}),
        progress,
    )
    .await?;

    // Approved emails wait here for the sender; the stream handler sends to it.
    let deliveries_dlq_url = aws
        .sqs
        .create_queue()
        .queue_name(&names.deliveries_dead_letter_queue)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(sdk("create the deliveries dead-letter queue"))?
        .queue_url
        .ok_or_else(|| {
            failed("create the deliveries dead-letter queue")("no queue URL returned")
        })?;
    let deliveries_dlq_arn = self::queue_arn(aws, &deliveries_dlq_url).await?;
    let deliveries_redrive = serde_json::json!({
        "deadLetterTargetArn": deliveries_dlq_arn,
        "maxReceiveCount": settings.max_receives.to_string(),
    })
    .to_string();
    let deliveries_queue_url = aws
        .sqs
        .create_queue()
        .queue_name(&names.deliveries_queue)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            settings.visibility_timeout_secs.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, deliveries_redrive)
        .send()
        .await
        .map_err(sdk("create the deliveries queue"))?
        .queue_url
        .ok_or_else(|| failed("create the deliveries queue")("no queue URL returned"))?;
    progress(&format!(
        "queue {} with dead-letter queue {}",
        names.deliveries_queue, names.deliveries_dead_letter_queue
    ));

    Ok(Resources {
        table: table.clone(),
        stream_arn,
        topic_arn,
        queue_url,
        dead_letter_queue_url: dlq_url,
        views_queue_url,
        views_dead_letter_queue_url,
        deliveries_queue_url,
        deliveries_dead_letter_queue_url: deliveries_dlq_url,
    })
}

/// Creates (or finds) the queue `names.0` with its dead-letter queue `names.1`, lets only
/// the topic send to it, and subscribes it to the topic (raw delivery) with `filter` as
/// the subscription's filter policy on message attributes. Returns both queues' URLs.
async fn subscribed_queue(
    aws: &Aws,
    topic_arn: &str,
    names: (&str, &str),
    settings: &QueueSettings,
    filter: serde_json::Value,
    progress: &dyn Fn(&str),
) -> Result<(String, String), BootstrapError> {
    let (queue, dead_letter_queue) = names;
    let dlq_url = aws
        .sqs
        .create_queue()
        .queue_name(dead_letter_queue)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(sdk("create dead-letter queue"))?
        .queue_url
        .ok_or_else(|| failed("create dead-letter queue")("no queue URL returned"))?;
    let dlq_arn = queue_arn(aws, &dlq_url).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": settings.max_receives.to_string(),
    })
    .to_string();
    let queue_url = aws
        .sqs
        .create_queue()
        .queue_name(queue)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            settings.visibility_timeout_secs.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive.clone())
        .send()
        .await
        .map_err(sdk("create queue"))?
        .queue_url
        .ok_or_else(|| failed("create queue")("no queue URL returned"))?;
    let arn = queue_arn(aws, &queue_url).await?;
    // Only this topic may send to the queue.
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
        }],
    })
    .to_string();
    aws.sqs
        .set_queue_attributes()
        .queue_url(&queue_url)
        .set_attributes(Some(HashMap::from([
            (QueueAttributeName::Policy, policy),
            (QueueAttributeName::RedrivePolicy, redrive),
            (
                QueueAttributeName::VisibilityTimeout,
                settings.visibility_timeout_secs.to_string(),
            ),
        ])))
        .send()
        .await
        .map_err(sdk("set queue attributes"))?;
    progress(&format!(
        "queue {queue} with dead-letter queue {dead_letter_queue} after {} receives",
        settings.max_receives
    ));

    let filter = filter.to_string();
    let existing = aws
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(topic_arn)
        .send()
        .await
        .map_err(sdk("list subscriptions"))?
        .subscriptions()
        .iter()
        .find(|s| s.endpoint() == Some(arn.as_str()))
        .and_then(|s| s.subscription_arn().map(str::to_owned));
    match existing {
        // Subscribed before: the filter may be new.
        Some(subscription) => {
            aws.sns
                .set_subscription_attributes()
                .subscription_arn(subscription)
                .attribute_name("FilterPolicy")
                .attribute_value(&filter)
                .send()
                .await
                .map_err(sdk("set the subscription's filter"))?;
        }
        None => {
            aws.sns
                .subscribe()
                .topic_arn(topic_arn)
                .protocol("sqs")
                .endpoint(&arn)
                .attributes("RawMessageDelivery", "true")
                .attributes("FilterPolicy", &filter)
                .return_subscription_arn(true)
                .send()
                .await
                .map_err(sdk("subscribe the queue to the topic"))?;
        }
    }
    progress(&format!(
        "subscription topic -> {queue} (raw delivery, {filter})"
    ));
    Ok((queue_url, dlq_url))
}

async fn queue_arn(aws: &Aws, url: &str) -> Result<String, BootstrapError> {
    aws.sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(sdk("read queue ARN"))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| failed("read queue ARN")("no ARN returned"))
}

/// Finds the resources named by `aws.names` without creating anything.
pub async fn locate(aws: &Aws) -> Result<Resources, BootstrapError> {
    let names = &aws.names;
    let stream_arn = aws
        .dynamo
        .describe_table()
        .table_name(&names.table)
        .send()
        .await
        .map_err(sdk("find the table"))?
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or_else(|| failed("find the table's stream")("the table has no stream"))?;
    let suffix = format!(":{}", names.topic);
    let mut next = None;
    let topic_arn = loop {
        let out = aws
            .sns
            .list_topics()
            .set_next_token(next)
            .send()
            .await
            .map_err(sdk("find the topic"))?;
        if let Some(arn) = out
            .topics()
            .iter()
            .filter_map(|t| t.topic_arn())
            .find(|arn| arn.ends_with(&suffix))
        {
            break arn.to_owned();
        }
        match out.next_token {
            Some(token) => next = Some(token),
            None => {
                return Err(failed("find the topic")(format!(
                    "no topic {}",
                    names.topic
                )));
            }
        }
    };
    let url = |queue: String| async move {
        aws.sqs
            .get_queue_url()
            .queue_name(queue)
            .send()
            .await
            .map_err(sdk("find the queues"))?
            .queue_url
            .ok_or_else(|| failed("find the queues")("no queue URL returned"))
    };
    Ok(Resources {
        table: names.table.clone(),
        stream_arn,
        topic_arn,
        queue_url: url(names.queue.clone()).await?,
        dead_letter_queue_url: url(names.dead_letter_queue.clone()).await?,
        views_queue_url: url(names.views_queue.clone()).await?,
        views_dead_letter_queue_url: url(names.views_dead_letter_queue.clone()).await?,
        deliveries_queue_url: url(names.deliveries_queue.clone()).await?,
        deliveries_dead_letter_queue_url: url(names.deliveries_dead_letter_queue.clone()).await?,
    })
}
