//! Pollers for running the AWS path on one machine (`engage serve --backend aws`, the
//! tests against moto_server): they read the table's stream (DescribeStream,
//! GetShardIterator, GetRecords) and the queue (long polling), and call the same handlers
//! the Lambda functions call, with the same partial-failure rules.

use crate::email::{QueueHandler, QueueMessage};
use crate::stream::{StreamChange, StreamHandler};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::dynamo::describe as context;
use processors::supervise::{Health, supervise};

/// Where the poller is in one shard: the iterator to read next, the last record handed
/// over, and how many reads in a row found nothing new.
#[derive(Clone)]
struct Reader {
    iterator: String,
    last: Option<String>,
    empty_reads: u32,
}

impl Reader {
    /// Empty reads (a quarter second apart when idle) before the iterator is renewed.
    const RENEW_AFTER_EMPTY_READS: u32 = 8;

    fn new(iterator: String, last: Option<String>) -> Self {
        Self {
            iterator,
            last,
            empty_reads: 0,
        }
    }
}

/// Reads every shard of a table's stream from its oldest record and hands each batch to
/// the stream handler. A failed record is read again from its own position after a pause.
#[derive(Clone)]
pub struct StreamPoller {
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub stream_arn: String,
    pub handler: StreamHandler,
    /// The pause between empty reads (the Lambda service polls 4 times a second).
    pub idle: Duration,
}

fn change_of(record: aws_sdk_dynamodbstreams::types::Record) -> Option<StreamChange> {
    let data = record.dynamodb?;
    let at = data
        .approximate_creation_date_time
        .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or_else(Utc::now);
    let key = data
        .keys
        .as_ref()
        .and_then(|k| k.get("pk"))
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    Some(StreamChange {
        sequence: data.sequence_number.unwrap_or_default(),
        key,
        at,
        old: data.old_image.map(Into::into),
        new: data.new_image.map(Into::into),
    })
}

impl StreamPoller {
    async fn iterator(
        &self,
        shard: &str,
        kind: ShardIteratorType,
        sequence: Option<String>,
    ) -> Result<Option<String>, String> {
        Ok(self
            .streams
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(shard)
            .shard_iterator_type(kind)
            .set_sequence_number(sequence)
            .send()
            .await
            .map_err(context)?
            .shard_iterator)
    }

    /// One pass over every shard; returns how many records it handed over.
    async fn pass(
        &self,
        open: &mut HashMap<String, Reader>,
        done: &mut HashSet<String>,
    ) -> Result<usize, String> {
        let description = self
            .streams
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .map_err(context)?;
        let shards = description
            .stream_description
            .map(|d| d.shards.unwrap_or_default())
            .unwrap_or_default();
        for shard in shards {
            let Some(id) = shard.shard_id else { continue };
            if !open.contains_key(&id)
                && !done.contains(&id)
                && let Some(iterator) = self
                    .iterator(&id, ShardIteratorType::TrimHorizon, None)
                    .await?
            {
                open.insert(id, Reader::new(iterator, None));
            }
        }
        let mut handled = 0;
        for (shard, reader) in open.clone() {
            // A quiet shard's iterator is renewed from the last record handled now and
            // then: an iterator can stop seeing new records (moto replaces a table's
            // stream when it rolls back a failed transaction; AWS expires iterators).
            let renew = reader.empty_reads >= Reader::RENEW_AFTER_EMPTY_READS;
            let iterator = if renew {
                let (kind, at) = match &reader.last {
                    Some(last) => (ShardIteratorType::AfterSequenceNumber, Some(last.clone())),
                    None => (ShardIteratorType::TrimHorizon, None),
                };
                match self.iterator(&shard, kind, at).await? {
                    Some(iterator) => iterator,
                    None => {
                        open.remove(&shard);
                        done.insert(shard);
                        continue;
                    }
                }
            } else {
                reader.iterator.clone()
            };
            let out = self
                .streams
                .get_records()
                .shard_iterator(iterator)
                .limit(100)
                .send()
                .await
                .map_err(context)?;
            let changes: Vec<_> = out
                .records
                .unwrap_or_default()
                .into_iter()
                .filter_map(change_of)
                .collect();
            handled += changes.len();
            if let (Some(first), Some(last)) = (changes.first(), changes.last()) {
                tracing::debug!(%shard, records = changes.len(), first = %first.sequence, last = %last.sequence, "stream records read");
            }
            match self.handler.handle(&changes).await {
                Some(failed_at) => {
                    // Read again from the failed record, after a pause.
                    let retry = self
                        .iterator(
                            &shard,
                            ShardIteratorType::AtSequenceNumber,
                            Some(failed_at.clone()),
                        )
                        .await?;
                    let handled_to = changes
                        .iter()
                        .take_while(|c| c.sequence != failed_at)
                        .last()
                        .map(|c| c.sequence.clone())
                        .or(reader.last);
                    match retry {
                        Some(iterator) => open.insert(shard, Reader::new(iterator, handled_to)),
                        None => open.remove(&shard),
                    };
                    tokio::time::sleep(self.idle).await;
                }
                None => match out.next_shard_iterator {
                    Some(next) => {
                        let next = match changes.last() {
                            Some(last) => Reader::new(next, Some(last.sequence.clone())),
                            None => Reader {
                                iterator: next,
                                last: reader.last,
                                empty_reads: if renew { 0 } else { reader.empty_reads + 1 },
                            },
                        };
                        open.insert(shard, next);
                    }
                    None => {
                        tracing::info!(%shard, "stream shard closed");
                        open.remove(&shard);
                        done.insert(shard);
                    }
                },
            }
        }
        Ok(handled)
    }

    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(stream = %self.stream_arn, "stream poller started");
        let mut open = HashMap::new();
        let mut done = HashSet::new();
        while !shutdown.is_cancelled() {
            let pause = match self.pass(&mut open, &mut done).await {
                Ok(0) => self.idle,
                Ok(_) => Duration::ZERO,
                Err(error) => {
                    tracing::error!(%error, "reading the stream failed; retrying");
                    // Iterators expire; start the shards again from where they were.
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        tracing::info!("stream poller stopped");
    }
}

/// Long-polls the queue and hands each batch to the queue handler: handled messages are
/// deleted; failed ones become visible again after a back-off, and after the queue's
/// maximum receives SQS's redrive policy moves them to the dead-letter queue.
#[derive(Clone)]
pub struct QueuePoller {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub handler: std::sync::Arc<dyn crate::email::BatchHandler>,
    /// Seconds a receive waits for messages (SQS allows up to 20).
    pub wait_secs: i32,
}

impl QueuePoller {
    /// Receives and handles one batch; returns how many messages it received.
    pub async fn poll_once(&self) -> Result<usize, String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(self.wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(context)?;
        let received = out.messages.unwrap_or_default();
        if received.is_empty() {
            return Ok(0);
        }
        let messages: Vec<_> = received
            .iter()
            .map(|m| QueueMessage {
                id: m.message_id.clone().unwrap_or_default(),
                body: m.body.clone().unwrap_or_default(),
                receive_count: m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
            })
            .collect();
        tracing::debug!(queue = %self.queue_url, messages = messages.len(), "messages received");
        let failed: HashSet<String> = self.handler.handle(&messages).await.into_iter().collect();
        tracing::debug!(queue = %self.queue_url, failed = failed.len(), "messages handled");
        let mut deletes = Vec::new();
        for (i, message) in received.iter().enumerate() {
            let Some(handle) = message.receipt_handle.clone() else {
                continue;
            };
            let id = message.message_id.clone().unwrap_or_default();
            if failed.contains(&id) {
                let receives: u32 = message
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                let backoff = 1i32 << receives.clamp(1, 9).saturating_sub(1);
                if let Err(error) = self
                    .sqs
                    .change_message_visibility()
                    .queue_url(&self.queue_url)
                    .receipt_handle(handle)
                    .visibility_timeout(backoff)
                    .send()
                    .await
                {
                    tracing::warn!(message_id = %id, error = %context(error), "could not set the retry back-off");
                }
            } else {
                deletes.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .build()
                        .map_err(|e| e.to_string())?,
                );
            }
        }
        if !deletes.is_empty() {
            let out = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(deletes))
                .send()
                .await
                .map_err(context)?;
            if !out.failed.is_empty() {
                // Their effects are recorded; a redelivery finds them applied.
                tracing::warn!(
                    failed = out.failed.len(),
                    "some handled messages were not deleted"
                );
            }
        }
        Ok(received.len())
    }

    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(queue = %self.queue_url, "queue poller started");
        while !shutdown.is_cancelled() {
            let result = tokio::select! {
                _ = shutdown.cancelled() => break,
                result = self.poll_once() => result,
            };
            if let Err(error) = result {
                tracing::error!(%error, "receiving from the queue failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
        tracing::info!("queue poller stopped");
    }
}

/// Moves every message of the dead-letter queue back to the queue (after the cause is
/// fixed); returns how many. The event ids keep their effects single.
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    dead_letter_queue_url: &str,
    queue_url: &str,
) -> Result<u64, String> {
    let mut moved = 0;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(dead_letter_queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .send()
            .await
            .map_err(context)?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(moved);
        }
        for message in messages {
            sqs.send_message()
                .queue_url(queue_url)
                .message_body(message.body.unwrap_or_default())
                .send()
                .await
                .map_err(context)?;
            if let Some(handle) = message.receipt_handle {
                sqs.delete_message()
                    .queue_url(dead_letter_queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(context)?;
            }
            moved += 1;
        }
    }
}

/// The stream poller and the queue pollers (named) for `resources`: the stream to the
/// topic (and approvals to the deliveries queue), the events queue to `core`, the views
/// queue, and, with a `sender`, the deliveries queue to it. Receives wait `wait_secs`.
fn pollers(
    aws: &crate::Aws,
    resources: &crate::Resources,
    core: std::sync::Arc<processors::EmailCore>,
    sender: Option<std::sync::Arc<processors::sender::SenderCore>>,
    wait_secs: i32,
) -> (StreamPoller, Vec<(&'static str, QueuePoller)>) {
    let stream = StreamPoller {
        streams: aws.streams.clone(),
        stream_arn: resources.stream_arn.clone(),
        handler: StreamHandler::new(aws.sns.clone(), resources.topic_arn.clone())
            .with_deliveries(aws.sqs.clone(), resources.deliveries_queue_url.clone()),
        idle: Duration::from_millis(250),
    };
    let queue = |url: &str, handler: std::sync::Arc<dyn crate::email::BatchHandler>| QueuePoller {
        sqs: aws.sqs.clone(),
        queue_url: url.to_owned(),
        handler,
        wait_secs,
    };
    let mut queues = vec![
        (
            "email",
            queue(
                &resources.queue_url,
                std::sync::Arc::new(QueueHandler::new(core).recording_failures(aws.store())),
            ),
        ),
        (
            "views",
            queue(
                &resources.views_queue_url,
                std::sync::Arc::new(crate::views::ViewsHandler { store: aws.store() }),
            ),
        ),
    ];
    if let Some(sender) = sender {
        queues.push((
            "sender",
            queue(
                &resources.deliveries_queue_url,
                std::sync::Arc::new(
                    crate::sender::DeliveryHandler::new(sender)
                        .requeuing(aws.sqs.clone(), resources.deliveries_queue_url.clone()),
                ),
            ),
        ));
    }
    (stream, queues)
}

/// The pollers for `resources`, running until `shutdown` (see [`pollers`]).
pub fn spawn_pollers(
    aws: &crate::Aws,
    resources: &crate::Resources,
    core: std::sync::Arc<processors::EmailCore>,
    sender: Option<std::sync::Arc<processors::sender::SenderCore>>,
    health: &Health,
    shutdown: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let (stream, queues) = pollers(aws, resources, core, sender, 2);
    let supervised = |name: &'static str, run: Box<dyn Fn() -> BoxFuture + Send>| {
        tokio::spawn(supervise(name, health.clone(), shutdown.clone(), run))
    };
    let stop = shutdown.clone();
    let mut tasks = vec![supervised(
        "stream",
        Box::new(move || Box::pin(stream.clone().run(stop.clone()))),
    )];
    for (name, queue) in queues {
        let stop = shutdown.clone();
        tasks.push(supervised(
            name,
            Box::new(move || Box::pin(queue.clone().run(stop.clone()))),
        ));
    }
    tasks
}

/// The same pollers' work done step by step: [`Settler::settle`] reads the stream and
/// the queues until a round finds nothing (the demo's replay drives the pipeline so).
pub struct Settler {
    stream: StreamPoller,
    queues: Vec<QueuePoller>,
    shards: tokio::sync::Mutex<(HashMap<String, Reader>, HashSet<String>)>,
}

impl Settler {
    pub fn new(
        aws: &crate::Aws,
        resources: &crate::Resources,
        core: std::sync::Arc<processors::EmailCore>,
        sender: std::sync::Arc<processors::sender::SenderCore>,
    ) -> Self {
        let (stream, queues) = pollers(aws, resources, core, Some(sender), 0);
        Self {
            stream,
            queues: queues.into_iter().map(|(_, queue)| queue).collect(),
            shards: tokio::sync::Mutex::new((HashMap::new(), HashSet::new())),
        }
    }

    /// Hands over every stream record and handles every visible message, round after
    /// round, until a round finds nothing; returns how many items it handled. A failed
    /// message waits for its back-off and is tried in a later call.
    pub async fn settle(&self) -> Result<u64, String> {
        let mut shards = self.shards.lock().await;
        let (open, done) = &mut *shards;
        let mut total = 0u64;
        loop {
            let mut round = 0usize;
            loop {
                let read = self.stream.pass(open, done).await?;
                round += read;
                if read == 0 {
                    break;
                }
            }
            for queue in &self.queues {
                loop {
                    let received = queue.poll_once().await?;
                    round += received;
                    if received == 0 {
                        break;
                    }
                }
            }
            if round == 0 {
                return Ok(total);
            }
            total += round as u64;
        }
    }
}

type BoxFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
