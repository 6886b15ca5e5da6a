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
