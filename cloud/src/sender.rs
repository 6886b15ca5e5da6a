//! The deliveries queue on AWS: SQS messages carrying a [`ports::DeliveryRequest`] (sent
//! by the stream handler when an email becomes `approved`) -> the same
//! [`processors::sender::SenderCore`] as the embedded sender -> the ids of the messages to
//! retry. SQS's receive count is the attempt number, so the core records `failed` on the
//! last attempt the queue's redrive policy allows.

use crate::email::{BatchHandler, QueueMessage};
use futures_util::future::join_all;
use processors::sender::SenderCore;
use std::sync::Arc;

#[derive(Clone)]
pub struct DeliveryHandler {
    core: Arc<SenderCore>,
}

impl DeliveryHandler {
    pub fn new(core: Arc<SenderCore>) -> Self {
        Self { core }
    }
}

#[async_trait::async_trait]
impl BatchHandler for DeliveryHandler {
    async fn handle(&self, messages: &[QueueMessage]) -> Vec<String> {
        let results = join_all(messages.iter().map(|message| async move {
            let result = match serde_json::from_str::<ports::DeliveryRequest>(&message.body) {
                Ok(request) => self
                    .core
                    .handle(&request, message.receive_count)
                    .await
                    .map(|_| ()),
                Err(error) => Err(processors::ProcessError::Malformed(error.to_string())),
            };
            (message, result)
        }))
        .await;
        results
            .into_iter()
            .filter_map(|(message, result)| {
                result.err().map(|error| {
                    tracing::warn!(message_id = %message.id, %error, "delivery request failed");
                    message.id.clone()
                })
            })
            .collect()
    }
}
