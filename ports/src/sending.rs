//! Sending approved emails: the port both backends implement (SQLite in `store`, DynamoDB
//! in `engage-aws`) so approval, the consent check and delivery live once, in
//! `processors::sender`.
//!
//! Approval never sends inside the request. It commits the approval together with a
//! delivery request on the `deliveries` queue (on DynamoDB the table's stream turns the
//! approval into that request), and the sender delivers from the queue with retries.

use crate::{Outgoing, Result, ReviewError, Reviewer};
use chrono::{DateTime, Utc};
use domain::consent::NoEmail;
use domain::{Client, EmailId, EmailStatus, StylistId};
use serde::{Deserialize, Serialize};

/// One message on the deliveries queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRequest {
    pub email_id: EmailId,
    /// Not before this time (a scheduled send); `None`: at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_after: Option<DateTime<Utc>>,
}

/// An email as the sender finds it: what to send, where it stands, and its client now.
#[derive(Debug, Clone, PartialEq)]
pub struct Sendable {
    pub outgoing: Outgoing,
    pub status: EmailStatus,
    pub client: Client,
}

#[async_trait::async_trait]
pub trait Sending: Send + Sync + 'static {
    /// Each of `ids` with its client, if every one is a draft `scope` may see; otherwise
    /// the first problem (`NotFound` for one outside the scope).
    async fn drafts_with_clients(
        &self,
        ids: Vec<EmailId>,
        scope: Option<StylistId>,
    ) -> Result<Vec<(EmailId, Client)>, ReviewError>;

    /// Marks a draft, or an approved email not yet sent, `withdrawn` for `reason`, with a
    /// review step by `actor`. A draft leaves the review queue.
    async fn withdraw(
        &self,
        email: EmailId,
        reason: NoEmail,
        actor: String,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError>;

    /// Approves drafts, all or none (each must still be a draft in `by`'s scope), and
    /// queues each for delivery with the approval, not before its time when it has one.
    async fn approve(
        &self,
        approvals: Vec<(EmailId, Option<DateTime<Utc>>)>,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError>;

    /// The email with its client as they are now; `None` if it does not exist.
    async fn sendable(&self, email: EmailId) -> Result<Option<Sendable>>;

    /// Records how delivering an approved email went (`Err`: why it failed for good).
    /// Does nothing unless the email is still `approved` (a retry after a crash).
    async fn record_delivery(
        &self,
        email: EmailId,
        outcome: std::result::Result<(), String>,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Puts a `failed` email back to `approved` and queues it again (managers).
    async fn resend(
        &self,
        email: EmailId,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError>;
}
