//! What the Lambda functions do with their events: the stream function turns a DynamoDB
//! stream event into domain events on SNS and answers with the first failed record
//! (`ReportBatchItemFailures`: Lambda resumes the shard there); the email function handles
//! an SQS event and answers with the failed message ids (Lambda deletes the rest).

use crate::email::QueueMessage;
use crate::stream::{StreamChange, StreamHandler};
use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

fn image(item: serde_dynamo::Item) -> Option<serde_dynamo::Item> {
    (!item.is_empty()).then_some(item)
}

/// A Lambda stream record as the handler takes it.
pub fn change_of(record: EventRecord) -> StreamChange {
    let change = record.change;
    let key = change
        .keys
        .get("pk")
        .and_then(|v| match v {
            serde_dynamo::AttributeValue::S(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_default();
    StreamChange {
        sequence: change.sequence_number.unwrap_or_default(),
        key,
        at: change.approximate_creation_date_time,
        old: image(change.old_image),
        new: image(change.new_image),
    }
}

pub async fn stream_response(handler: &StreamHandler, event: StreamEvent) -> DynamoDbEventResponse {
    let changes: Vec<_> = event.records.into_iter().map(change_of).collect();
    let received = changes.len();
    let mut response = DynamoDbEventResponse::default();
    if let Some(sequence) = handler.handle(&changes).await {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence);
        response.batch_item_failures.push(failure);
    }
    println!(
        "{}",
        emf_line(
            "stream",
            &[
                ("Changes", "Count", received as f64),
                (
                    "ChangesRetried",
                    "Count",
                    response.batch_item_failures.len() as f64
                ),
            ],
        )
    );
    response
}

/// Hands an SQS batch to `handler`, logs its figures as the metrics of `function`, and
/// answers with the messages that failed.
pub async fn queue_response(
    function: &str,
    handler: &dyn crate::email::BatchHandler,
    event: SqsEvent,
) -> SqsBatchResponse {
    let messages: Vec<_> = event
        .records
        .into_iter()
        .map(|record| QueueMessage {
            receive_count: record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
            id: record.message_id.unwrap_or_default(),
            body: record.body.unwrap_or_default(),
        })
        .collect();
    let received = messages.len();
    let failures = handler.handle(&messages).await;
    println!(
        "{}",
        emf_line(
            function,
            &[
                ("Events", "Count", received as f64),
                ("EventsFailed", "Count", failures.len() as f64),
            ],
        )
    );
    let mut response = SqsBatchResponse::default();
    response.set_failures(failures);
    response
}

/// Metrics as a CloudWatch embedded-metric-format record (namespace `Engage`, dimension
/// `Function`): one log line that CloudWatch turns into metrics, no API calls needed.
pub fn emf_line(function: &str, metrics: &[(&str, &str, f64)]) -> String {
    let definitions: Vec<_> = metrics
        .iter()
        .map(|(name, unit, _)| serde_json::json!({"Name": name, "Unit": unit}))
        .collect();
    let mut record = serde_json::json!({
        "_aws": {
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "Engage",
                "Dimensions": [["Function"]],
                "Metrics": definitions,
            }],
        },
        "Function": function,
    });
    for (name, _, value) in metrics {
        record[*name] = serde_json::json!(value);
    }
    record.to_string()
}

/// What an invocation keeps for itself after the LLM: the template drafts and recording
/// every outcome must fit in it before Lambda stops the function.
pub const RECORDING_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The deadline for the LLM writer in an invocation that must end by `deadline_ms`
/// (Lambda's context: milliseconds since the epoch), [`RECORDING_MARGIN`] before it.
/// The function's timeout can then be anything: drafts the time does not allow for are
/// written by the template instead, never cut off half-recorded.
pub fn writer_deadline(deadline_ms: u64, now: std::time::SystemTime) -> std::time::Instant {
    let now_ms = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    std::time::Instant::now() + left.saturating_sub(RECORDING_MARGIN)
}

/// The SDK's settings in a function: the standard ones (the function's role, its region),
/// with [`crate::timeouts`], so a call that never answers fails rather than using up the
/// invocation.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(crate::timeouts())
        .load()
        .await
}

/// A required setting of a Lambda function, from its environment.
pub fn setting(name: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("the function's environment lacks {name}"))
}

/// The email function's writer: OpenRouter with the key from Secrets Manager (the secret
/// named by `ENGAGE_OPENROUTER_SECRET_ARN`; read once per cold start, never logged), with
/// the template writer as its fallback; the template alone without a secret.
pub async fn writer_from_env(
    config: &aws_config::SdkConfig,
) -> Result<processors::openrouter::FallbackWriter, String> {
    use processors::openrouter::{FallbackWriter, OpenRouterConfig, OpenRouterWriter};
    let Ok(secret) = setting("ENGAGE_OPENROUTER_SECRET_ARN") else {
        tracing::info!("no ENGAGE_OPENROUTER_SECRET_ARN: the template writer drafts every email");
        return Ok(FallbackWriter::new(None));
    };
    let key = aws_sdk_secretsmanager::Client::new(config)
        .get_secret_value()
        .secret_id(&secret)
        .send()
        .await
        .map_err(|e| format!("reading the OpenRouter key: {}", crate::dynamo::describe(e)))?
        .secret_string
        .filter(|k| !k.trim().is_empty())
        .ok_or("the OpenRouter key's secret is empty")?;
    let models = std::env::var("ENGAGE_LLM_MODELS")
        .unwrap_or_else(|_| "openai/gpt-4o-mini,anthropic/claude-3.5-haiku".into())
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    let base_url = std::env::var("ENGAGE_LLM_BASE_URL")
        .unwrap_or_else(|_| "https://openrouter.ai/api/v1".into());
    let mut settings = OpenRouterConfig::new(base_url, key.trim(), models);
    if let Ok(url) = setting("ENGAGE_UNSUBSCRIBE_URL") {
        settings.unsubscribe_url = url;
    }
    settings.link_hosts =
        processors::tracking::Tracking::settings_from(|n| std::env::var(n).ok())?.0;
    let writer = OpenRouterWriter::new(settings).map_err(|e| e.to_string())?;
    Ok(FallbackWriter::new(Some(writer)))
}

#[cfg(test)]
mod tests {
    use super::{RECORDING_MARGIN, emf_line, writer_deadline};
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    #[test]
    fn the_writer_must_be_done_a_margin_before_the_invocation_ends() {
        let now = SystemTime::now();
        let now_ms = now.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let deadline = writer_deadline(now_ms + 60_000, now);
        let left = deadline.duration_since(Instant::now());
        assert!(
            left <= Duration::from_secs(60) - RECORDING_MARGIN,
            "{left:?}"
        );
        assert!(left > Duration::from_secs(54), "{left:?}");
        // An invocation already past its end leaves the writer no time at all.
        assert!(writer_deadline(now_ms - 1_000, now) <= Instant::now());
    }

    #[test]
    fn an_emf_line_declares_each_metric_and_carries_its_value() {
        let line: serde_json::Value = serde_json::from_str(&emf_line(
            "email",
            &[("Events", "Count", 10.0), ("EventsFailed", "Count", 2.0)],
        ))
        .unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Engage");
        assert_eq!(directive["Dimensions"][0][0], "Function");
        assert_eq!(directive["Metrics"][1]["Name"], "EventsFailed");
        assert_eq!(line["Function"], "email");
        assert_eq!(line["Events"], 10.0);
        assert_eq!(line["EventsFailed"], 2.0);
    }
}
