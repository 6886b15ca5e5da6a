//! The deliveries queue on AWS: SQS messages carrying a [`ports::DeliveryRequest`] (sent
//! by the stream handler when an email becomes `approved`) -> the same
//! [`processors::sender::SenderCore`] as the embedded sender -> the ids of the messages to
//! retry. SQS's receive count is the attempt number, so the core records `failed` on the
//! last attempt the queue's redrive policy allows.
//!
//! A scheduled request (`send_after`) that arrives early goes back on the queue with a
//! delay (SQS delays at most 15 minutes, so a send a day ahead hops about 96 times) and
//! the message in hand is acknowledged: waiting is no failed attempt.

use crate::email::{BatchHandler, QueueMessage};
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use processors::ProcessError;
use processors::sender::{Delivered, SenderCore};
use std::sync::Arc;

#[derive(Clone)]
pub struct DeliveryHandler {
    core: Arc<SenderCore>,
    /// The deliveries queue, where a request that came too early goes back.
    requeue: Option<(aws_sdk_sqs::Client, String)>,
}

/// SQS's longest message delay.
const MAX_DELAY_SECS: i64 = 900;

/// The delay to send a request with so it comes back at `at` (or within the longest
/// delay of it), as of `now`.
pub fn delay_until(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> i32 {
    at.map_or(0, |at| {
        (at - now).num_seconds().clamp(0, MAX_DELAY_SECS) as i32
    })
}

impl DeliveryHandler {
    pub fn new(core: Arc<SenderCore>) -> Self {
        Self {
            core,
            requeue: None,
        }
    }

    /// Puts scheduled requests that come too early back on the queue at `queue_url`.
    pub fn requeuing(mut self, sqs: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        self.requeue = Some((sqs, queue_url.into()));
        self
    }

    async fn handle_one(&self, message: &QueueMessage) -> Result<(), ProcessError> {
        let request = serde_json::from_str::<ports::DeliveryRequest>(&message.body)
            .map_err(|error| ProcessError::Malformed(error.to_string()))?;
        match self.core.handle(&request, message.receive_count).await? {
            Delivered::NotYet(at) => {
                let Some((sqs, queue_url)) = &self.requeue else {
                    // Without the queue's address, let SQS bring it back after the
                    // visibility timeout (this counts as a receive).
                    return Err(ProcessError::Delivery(format!(
                        "scheduled for {at}, and no deliveries queue to wait on"
                    )));
                };
                let delay = delay_until(Some(at), chrono::Utc::now());
                sqs.send_message()
                    .queue_url(queue_url)
                    .message_body(message.body.clone())
                    .delay_seconds(delay)
                    .send()
                    .await
                    .map_err(|e| ProcessError::Publish(crate::dynamo::describe(e)))?;
                tracing::debug!(email_id = %request.email_id, %at, delay, "scheduled email waits");
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl BatchHandler for DeliveryHandler {
    async fn handle(&self, messages: &[QueueMessage]) -> Vec<String> {
        let results = join_all(
            messages
                .iter()
                .map(|message| async move { (message, self.handle_one(message).await) }),
        )
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

/// Delivery through Amazon SES (the v2 `SendEmail` API with the raw message, so the
/// headers the sender builds — `List-Unsubscribe`, `Message-ID` — go out as built). The
/// sender's address must be within a verified SES identity; the template names it.
pub struct SesDelivery {
    ses: aws_sdk_sesv2::Client,
    /// The verified SES identity emails are sent from: a domain (`shop.example`: any
    /// stylist address there) or one address.
    identity: String,
    /// An SES configuration set (event publishing, a dedicated IP pool), if any.
    configuration_set: Option<String>,
}

impl SesDelivery {
    pub fn new(
        ses: aws_sdk_sesv2::Client,
        identity: impl Into<String>,
        configuration_set: Option<String>,
    ) -> Self {
        Self {
            ses,
            identity: identity.into().trim().to_ascii_lowercase(),
            configuration_set: configuration_set.filter(|name| !name.trim().is_empty()),
        }
    }

    /// Whether SES will send from `address`: it is the identity, or in its domain.
    fn sends_from(&self, address: &str) -> bool {
        let address = address.trim().to_ascii_lowercase();
        if self.identity.contains('@') {
            address == self.identity
        } else {
            address
                .rsplit_once('@')
                .is_some_and(|(_, domain)| domain == self.identity)
        }
    }
}

#[async_trait::async_trait]
impl processors::delivery::Delivery for SesDelivery {
    async fn deliver(
        &self,
        email: &ports::Outgoing,
        message: &lettre::Message,
    ) -> Result<(), String> {
        use aws_sdk_sesv2::primitives::Blob;
        use aws_sdk_sesv2::types::{EmailContent, RawMessage};
        if !self.sends_from(&email.stylist_email) {
            return Err(format!(
                "the stylist's address {} is outside the SES identity {}: verify it in SES, or give the stylist an address there",
                email.stylist_email, self.identity
            ));
        }
        let raw = RawMessage::builder()
            .data(Blob::new(message.formatted()))
            .build()
            .map_err(|e| format!("the message could not be handed to SES: {e}"))?;
        let sent = self
            .ses
            .send_email()
            // Addressed by the message's own headers, which name the client alone.
            .content(EmailContent::builder().raw(raw).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map_err(|e| format!("SES refused the email: {}", crate::dynamo::describe(e)))?;
        tracing::info!(
            email_id = %email.id,
            ses_message_id = sent.message_id().unwrap_or("-"),
            "email handed to SES"
        );
        Ok(())
    }
}
