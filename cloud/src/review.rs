//! What the web app reads and changes on DynamoDB beyond [`ports::Records`]: stylists, a
//! stylist's book, an email with its review steps, the review steps themselves (edit,
//! approve, deliver, reject, redraft), a client's timeline, and the change stamp that
//! keeps open pages current.
//!
//! Review steps are transactions that check the email is still a draft in the reviewer's
//! scope; each appends a `REVIEW#…` item to the email's partition. Approving or rejecting
//! clears the client's `pending_draft`, so the pipeline may draft for it again.

use crate::dynamo::{DynamoStore, describe};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use domain::email::DraftText;
use domain::views::{
    ClientSummary, EmailDetail, EmailSummary, ReviewEntry, Stylist, TimelineEntry,
};
use domain::{ClientId, DomainEvent, EmailId, EmailStatus, EventId, EventKind, StylistId};
use ports::{Outgoing, Result, ReviewError, Reviewer, StoreError};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn stamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn instant(raw: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("time {raw}: {e}")))
}

fn service<E, R>(error: aws_sdk_dynamodb::error::SdkError<E, R>) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    StoreError::Service(describe(error))
}

fn built<T, E: std::fmt::Display>(result: std::result::Result<T, E>) -> Result<T> {
    result.map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl DynamoStore {
    /// Every item of a partition (or of an index partition), in key order.
    pub(crate) async fn query_all(
        &self,
        index: Option<&str>,
        pk_name: &str,
        pk: String,
    ) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression("#p = :p")
                .expression_attribute_names("#p", pk_name)
                .expression_attribute_values(":p", s(pk.clone()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(service)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// Every stylist, by name.
    pub async fn list_stylists(&self) -> Result<Vec<Stylist>> {
        let mut stylists: Vec<Stylist> = self
            .query_all(Some(crate::dynamo::BY_LIST), "gsi1pk", "STYLISTS".into())
            .await?
            .iter()
            .filter_map(|item| {
                Some(Stylist {
                    id: StylistId::new(text(item, "id")?),
                    name: text(item, "name")?,
                })
            })
            .collect();
        stylists.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(stylists)
    }

    /// A stylist's whole book (the clients list sorts and filters it).
    pub async fn book(&self, stylist: &StylistId) -> Result<Vec<ClientSummary>> {
        let name = self.stylist_name(stylist).await?.unwrap_or_default();
        self.query_all(
            Some(crate::dynamo::BY_LIST),
            "gsi1pk",
            format!("BOOK#{stylist}"),
        )
        .await?
        .iter()
        .map(|item| self.client_summary(item, &name))
        .collect()
    }

    /// Every client of a stylist's book, whole.
    pub async fn book_clients(&self, stylist: &StylistId) -> Result<Vec<domain::Client>> {
        let mut clients = Vec::new();
        for item in self
            .query_all(
                Some(crate::dynamo::BY_LIST),
                "gsi1pk",
                format!("BOOK#{stylist}"),
            )
            .await?
        {
            clients.extend(crate::dynamo::client_from_image(&item)?);
        }
        Ok(clients)
    }

    /// How many clients a stylist's book holds, counted by the index (no items read).
    pub async fn book_size(&self, stylist: &StylistId) -> Result<u64> {
        let (mut count, mut start) = (0, None);
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(crate::dynamo::BY_LIST)
                .key_condition_expression("gsi1pk = :book")
                .expression_attribute_values(":book", s(format!("BOOK#{stylist}")))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(service)?;
            count += out.count.max(0) as u64;
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(count),
            }
        }
    }

    /// Every client of a stylist's book with its stylist and version (for rescoring).
    pub async fn book_keys(&self, stylist: &StylistId) -> Result<Vec<(ClientId, StylistId, u64)>> {
        Ok(self
            .book_clients(stylist)
            .await?
            .into_iter()
            .map(|client| (client.id, client.stylist_id, client.version))
            .collect())
    }

    /// Keeps a model fit (JSON) under `MODEL#bgnbd`, sorted by when it was made.
    pub async fn put_model_fit(&self, fitted_at: DateTime<Utc>, json: String) -> Result<()> {
        self.client()
            .put_item()
            .table_name(self.table())
            .item("pk", s("MODEL#bgnbd"))
            .item(
                "sk",
                s(format!("FIT#{:020}", fitted_at.timestamp_micros().max(0))),
            )
            .item("fit", s(json))
            .send()
            .await
            .map_err(service)?;
        Ok(())
    }

    /// The newest model fit's JSON, if any.
    pub async fn latest_model_fit_json(&self) -> Result<Option<String>> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :model")
            .expression_attribute_values(":model", s("MODEL#bgnbd"))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(service)?;
        Ok(out
            .items
            .unwrap_or_default()
            .first()
            .and_then(|item| text(item, "fit")))
    }

    /// The email, unless it is outside `scope`.
    async fn email_in_scope(
        &self,
        id: &EmailId,
        scope: Option<&StylistId>,
    ) -> Result<Option<Item>> {
        Ok(self
            .item(format!("EMAIL#{id}"), "EMAIL")
            .await?
            .filter(|item| {
                scope.is_none_or(|s| text(item, "stylist_id").as_deref() == Some(s.as_str()))
            }))
    }

    async fn draft_in_scope(
        &self,
        id: &EmailId,
        scope: Option<&StylistId>,
    ) -> Result<Item, ReviewError> {
        let item = self
            .email_in_scope(id, scope)
            .await?
            .ok_or(ReviewError::NotFound)?;
        let status = text(&item, "status").unwrap_or_default();
        match EmailStatus::parse(&status) {
            Some(EmailStatus::Drafted) => Ok(item),
            Some(status) => Err(ReviewError::NotDraft { status }),
            None => Err(StoreError::Corrupt(format!("email status {status}")).into()),
        }
    }

    pub(crate) fn review_step(
        &self,
        email: &EmailId,
        action: &str,
        actor: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<TransactWriteItem> {
        let mut item = HashMap::from([
            ("pk".to_owned(), s(format!("EMAIL#{email}"))),
            (
                "sk".to_owned(),
                s(format!(
                    "REVIEW#{:020}#{action}",
                    now.timestamp_micros().max(0)
                )),
            ),
            ("action".to_owned(), s(action)),
            ("actor".to_owned(), s(actor)),
            ("at".to_owned(), s(stamp(now))),
        ]);
        if let Some(note) = note {
            item.insert("note".to_owned(), s(note));
        }
        let put = built(
            Put::builder()
                .table_name(self.table())
                .set_item(Some(item))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Moves a draft to `status` (checking it is still a draft), keyed for the status index.
    fn set_status(
        &self,
        email: &Item,
        status: EmailStatus,
        reviewer: &str,
        now: DateTime<Utc>,
        extra: Option<(&str, String)>,
    ) -> Result<TransactWriteItem> {
        self.move_status(email, EmailStatus::Drafted, status, reviewer, now, extra)
    }

    /// Moves an email from `from` to `status` (checking it is still `from`).
    fn move_status(
        &self,
        email: &Item,
        from: EmailStatus,
        status: EmailStatus,
        reviewer: &str,
        now: DateTime<Utc>,
        extra: Option<(&str, String)>,
    ) -> Result<TransactWriteItem> {
        let id = text(email, "id").unwrap_or_default();
        let created = text(email, "gsi1sk").unwrap_or_default();
        let mut update = Update::builder()
            .table_name(self.table())
            .key("pk", s(format!("EMAIL#{id}")))
            .key("sk", s("EMAIL"))
            .update_expression(match extra {
                Some(_) => "SET #status = :status, gsi1pk = :index, reviewed_by = :by, reviewed_at = :now, updated_at = :now, #extra = :extra",
                None => "SET #status = :status, gsi1pk = :index, reviewed_by = :by, reviewed_at = :now, updated_at = :now",
            })
            .condition_expression("#status = :drafted")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":drafted", s(from.as_str()))
            .expression_attribute_values(":index", s(format!("STATUS#{}", status.as_str())))
            .expression_attribute_values(":by", s(reviewer))
            .expression_attribute_values(":now", s(stamp(now)));
        if let Some((name, value)) = extra {
            update = update
                .expression_attribute_names("#extra", name)
                .expression_attribute_values(":extra", s(value));
        }
        debug_assert!(!created.is_empty());
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }

    /// Clears the client's pending draft (it was approved or withdrawn; or rejected at
    /// `rejected_at`, noted so the policy waits out a cool-off before it tries the client
    /// again).
    fn release_client(
        &self,
        email: &Item,
        rejected_at: Option<DateTime<Utc>>,
    ) -> Result<TransactWriteItem> {
        let client = text(email, "client_id").unwrap_or_default();
        let id = text(email, "id").unwrap_or_default();
        let update = Update::builder()
            .table_name(self.table())
            .key("pk", s(format!("CLIENT#{client}")))
            .key("sk", s("CLIENT"))
            .condition_expression("attribute_not_exists(pending_draft) OR pending_draft = :email")
            .expression_attribute_values(":email", s(id));
        let update = match rejected_at {
            Some(at) => update
                .update_expression("SET last_rejected_at = :now REMOVE pending_draft")
                .expression_attribute_values(":now", s(stamp(at))),
            None => update.update_expression("REMOVE pending_draft"),
        };
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }

    async fn commit(&self, items: Vec<TransactWriteItem>) -> Result<(), ReviewError> {
        match self
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => {
                self.bump_stamp().await;
                Ok(())
            }
            // A condition failed: someone else reviewed it meanwhile.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception()) =>
            {
                Err(ReviewError::NotDraft {
                    status: EmailStatus::Approved,
                })
            }
            Err(error) => Err(service(error).into()),
        }
    }

    /// An email with its words and review steps, unless it is outside `scope`.
    pub async fn email_detail(
        &self,
        id: &EmailId,
        scope: Option<&StylistId>,
    ) -> Result<Option<EmailDetail>> {
        let Some(item) = self.email_in_scope(id, scope).await? else {
            return Ok(None);
        };
        let client_email = self
            .item(
                format!("CLIENT#{}", text(&item, "client_id").unwrap_or_default()),
                "CLIENT",
            )
            .await?
            .and_then(|c| crate::dynamo::client_from_image(&c).ok().flatten())
            .map(|c| c.email.as_str().to_owned())
            .unwrap_or_default();
        let mut reviews = Vec::new();
        for step in self.query_all(None, "pk", format!("EMAIL#{id}")).await? {
            if !text(&step, "sk").is_some_and(|sk| sk.starts_with("REVIEW#")) {
                continue;
            }
            reviews.push(ReviewEntry {
                action: text(&step, "action").unwrap_or_default(),
                actor: text(&step, "actor").unwrap_or_default(),
                note: text(&step, "note"),
                at: instant(&text(&step, "at").unwrap_or_default())?,
            });
        }
        Ok(Some(EmailDetail {
            conversion: crate::decisions::conversion_of(&item)?,
            send_after: text(&item, "send_after")
                .map(|at| instant(&at))
                .transpose()?,
            summary: email_summary(&item)?,
            client_email,
            body_text: text(&item, "body_text").unwrap_or_default(),
            reason: text(&item, "reason").unwrap_or_default(),
            edited: item.contains_key("ai_subject"),
            reject_reason: text(&item, "reject_reason"),
            withdrawn: text(&item, "withdrawn_reason")
                .as_deref()
                .and_then(domain::consent::NoEmail::parse),
            reviews,
        }))
    }

    /// Replaces a draft's words with a stylist's, keeping the writer's words once.
    pub async fn edit_email(
        &self,
        id: &EmailId,
        words: DraftText,
        by: &Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError> {
        self.draft_in_scope(id, by.scope.as_ref()).await?;
        let update = Update::builder()
            .table_name(self.table())
            .key("pk", s(format!("EMAIL#{id}")))
            .key("sk", s("EMAIL"))
            .update_expression(
                "SET ai_subject = if_not_exists(ai_subject, subject), ai_body_text = if_not_exists(ai_body_text, body_text), subject = :subject, body_text = :body, updated_at = :now",
            )
            .condition_expression("#status = :drafted")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":drafted", s("drafted"))
            .expression_attribute_values(":subject", s(words.subject))
            .expression_attribute_values(":body", s(words.body_text))
            .expression_attribute_values(":now", s(stamp(now)));
        self.commit(vec![
            TransactWriteItem::builder()
                .update(built(update.build())?)
                .build(),
            self.review_step(id, "edited", &by.name, None, now)?,
        ])
        .await
    }

    /// Approves drafts, all or none, each to be sent at once or not before its time. The
    /// table's stream turns each approval into a delivery request on the deliveries queue
    /// (`crate::stream`), so nothing is sent here.
    pub async fn approve_emails(
        &self,
        approvals: &[(EmailId, Option<DateTime<Utc>>)],
        by: &Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError> {
        // Three writes per email; a transaction holds at most 100.
        let ids: Vec<EmailId> = approvals.iter().map(|(id, _)| id.clone()).collect();
        ports::check_approval(&ids)?;
        let mut items = Vec::new();
        for (id, send_after) in approvals {
            let email = self.draft_in_scope(id, by.scope.as_ref()).await?;
            let schedule = send_after.map(|at| ("send_after", stamp(at)));
            items.push(self.set_status(&email, EmailStatus::Approved, &by.name, now, schedule)?);
            items.push(self.release_client(&email, None)?);
            let note =
                send_after.map(|at| format!("to be sent at {}", at.format("%Y-%m-%d %H:%M UTC")));
            items.push(self.review_step(id, "approved", &by.name, note.as_deref(), now)?);
        }
        self.commit(items).await
    }

    async fn client_of(&self, email: &Item) -> Result<domain::Client> {
        let client_id = text(email, "client_id").unwrap_or_default();
        self.item(format!("CLIENT#{client_id}"), "CLIENT")
            .await?
            .and_then(|c| crate::dynamo::client_from_image(&c).ok().flatten())
            .ok_or_else(|| StoreError::Corrupt(format!("email for missing client {client_id}")))
    }

    async fn outgoing(&self, email: &Item) -> Result<Outgoing> {
        let client_id = text(email, "client_id").unwrap_or_default();
        let client = self
            .item(format!("CLIENT#{client_id}"), "CLIENT")
            .await?
            .and_then(|c| crate::dynamo::client_from_image(&c).ok().flatten())
            .ok_or_else(|| StoreError::Corrupt(format!("email for missing client {client_id}")))?;
        let stylist = self
            .item(format!("STYLIST#{}", client.stylist_id), "STYLIST")
            .await?
            .unwrap_or_default();
        Ok(Outgoing {
            id: EmailId::new(text(email, "id").unwrap_or_default()),
            client_id: client.id.clone(),
            client_name: client.name.as_str().to_owned(),
            client_email: client.email.as_str().to_owned(),
            stylist_name: text(&stylist, "name").unwrap_or_default(),
            stylist_email: text(&stylist, "email").unwrap_or_default(),
            text: DraftText {
                subject: text(email, "subject").unwrap_or_default(),
                body_text: text(email, "body_text").unwrap_or_default(),
            },
        })
    }

    /// Records how delivering an approved email went (`Err`: why it failed).
    pub async fn record_delivery(
        &self,
        id: &EmailId,
        outcome: std::result::Result<(), String>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (status, action, note) = match &outcome {
            Ok(()) => (EmailStatus::Sent, "sent", None),
            Err(error) => (EmailStatus::Failed, "failed", Some(error.as_str())),
        };
        let update = Update::builder()
            .table_name(self.table())
            .key("pk", s(format!("EMAIL#{id}")))
            .key("sk", s("EMAIL"))
            .update_expression("SET #status = :status, gsi1pk = :index, updated_at = :now")
            .condition_expression("#status = :approved")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":approved", s("approved"))
            .expression_attribute_values(":index", s(format!("STATUS#{}", status.as_str())))
            .expression_attribute_values(":now", s(stamp(now)));
        match self
            .commit(vec![
                TransactWriteItem::builder()
                    .update(built(update.build())?)
                    .build(),
                self.review_step(id, action, "delivery", note, now)?,
            ])
            .await
        {
            Ok(()) => Ok(()),
            Err(ReviewError::Store(error)) => Err(error),
            // Delivered before (a retry): nothing to record.
            Err(_) => Ok(()),
        }
    }

    pub async fn reject_email(
        &self,
        id: &EmailId,
        reason: String,
        by: &Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError> {
        let reason = ports::check_reject_reason(&reason)?;
        let email = self.draft_in_scope(id, by.scope.as_ref()).await?;
        self.commit(vec![
            self.set_status(
                &email,
                EmailStatus::Rejected,
                &by.name,
                now,
                Some(("reject_reason", reason.clone())),
            )?,
            self.release_client(&email, Some(now))?,
            self.review_step(id, "rejected", &by.name, Some(&reason), now)?,
        ])
        .await
    }

    /// Records a redraft request and returns its event, for the caller to publish.
    pub async fn redraft_event(
        &self,
        id: &EmailId,
        instruction: Option<String>,
        by: &Reviewer,
        now: DateTime<Utc>,
    ) -> Result<DomainEvent, ReviewError> {
        let email = self.draft_in_scope(id, by.scope.as_ref()).await?;
        let client_id = ClientId::new(text(&email, "client_id").unwrap_or_default());
        let client = self
            .item(format!("CLIENT#{client_id}"), "CLIENT")
            .await?
            .and_then(|c| crate::dynamo::client_from_image(&c).ok().flatten())
            .ok_or(ReviewError::NotFound)?;
        self.commit(vec![self.review_step(
            id,
            "redraft_requested",
            &by.name,
            instruction.as_deref(),
            now,
        )?])
        .await?;
        Ok(DomainEvent {
            schema_version: domain::event::EVENT_SCHEMA_VERSION,
            id: EventId::new(uuid::Uuid::now_v7().to_string()),
            client_id,
            stylist_id: client.stylist_id,
            client_version: client.version,
            occurred_at: now,
            kind: EventKind::RedraftRequested {
                email_id: id.clone(),
                instruction,
            },
        })
    }

    /// A client's audit trail, newest first: score changes, emails and their review steps.
    pub async fn timeline(
        &self,
        client: &ClientId,
        emails: &[EmailSummary],
    ) -> Result<Vec<TimelineEntry>> {
        let mut entries = Vec::new();
        for item in self
            .query_all(None, "pk", format!("CLIENT#{client}"))
            .await?
        {
            if !text(&item, "sk").is_some_and(|sk| sk.starts_with("SCORE#")) {
                continue;
            }
            let score = text(&item, "score")
                .or_else(|| item.get("score").and_then(|v| v.as_n().ok()).cloned())
                .unwrap_or_default();
            entries.push(TimelineEntry {
                at: instant(&text(&item, "scored_at").unwrap_or_default())?,
                kind: "score".into(),
                text: domain::views::score_line(&score, &text(&item, "band").unwrap_or_default()),
                actor: None,
            });
            // What happened, as the event log shows it on SQLite.
            if let (Some(what), Some(at)) = (text(&item, "event_text"), text(&item, "event_at")) {
                entries.push(TimelineEntry {
                    at: instant(&at)?,
                    kind: "event".into(),
                    text: what,
                    actor: None,
                });
            }
        }
        for email in emails {
            entries.push(TimelineEntry {
                at: email.created_at,
                kind: "email".into(),
                text: domain::views::email_step_line("drafted", &email.subject, &email.writer, ""),
                actor: None,
            });
            if let Some(detail) = self.email_detail(&email.id, None).await? {
                for step in detail.reviews {
                    entries.push(TimelineEntry {
                        at: step.at,
                        kind: "email".into(),
                        text: domain::views::email_step_line(
                            &step.action,
                            &email.subject,
                            step.note.as_deref().unwrap_or_default(),
                            &step.actor,
                        ),
                        actor: Some(step.actor),
                    });
                }
            }
        }
        entries.sort_by_key(|entry| std::cmp::Reverse(entry.at));
        Ok(entries)
    }

    /// A number that grows whenever something the pages show was written (scores, drafts,
    /// review steps): open pages refetch when it changes.
    pub async fn change_stamp(&self) -> Result<u64> {
        Ok(self
            .item("META#stamp".into(), "STAMP")
            .await?
            .and_then(|item| {
                item.get("n")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0))
    }

    /// Moves the change stamp on. Best effort, outside the write it follows: a missed bump
    /// only delays a page's refresh until the next one.
    pub async fn bump_stamp(&self) {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .key("pk", s("META#stamp"))
            .key("sk", s("STAMP"))
            .update_expression("ADD n :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await;
        if let Err(error) = result {
            tracing::debug!(error = %describe(error), "change stamp not moved");
        }
    }
}

pub(crate) fn email_summary(item: &Item) -> Result<EmailSummary> {
    crate::dynamo::email_summary_of(item)
}

#[async_trait::async_trait]
impl ports::Sending for DynamoStore {
    async fn drafts_with_clients(
        &self,
        ids: Vec<EmailId>,
        scope: Option<StylistId>,
    ) -> Result<Vec<(EmailId, domain::Client)>, ReviewError> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            let email = self.draft_in_scope(&id, scope.as_ref()).await?;
            found.push((id, self.client_of(&email).await?));
        }
        Ok(found)
    }

    async fn withdraw(
        &self,
        email: EmailId,
        reason: domain::consent::NoEmail,
        actor: String,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError> {
        let item = self
            .email_in_scope(&email, None)
            .await?
            .ok_or(ReviewError::NotFound)?;
        let status = text(&item, "status").unwrap_or_default();
        let extra = Some(("withdrawn_reason", reason.as_str().to_owned()));
        let note = reason.to_string();
        let items = match EmailStatus::parse(&status) {
            Some(EmailStatus::Drafted) => vec![
                self.set_status(&item, EmailStatus::Withdrawn, &actor, now, extra)?,
                self.release_client(&item, None)?,
                self.review_step(&email, "withdrawn", &actor, Some(&note), now)?,
            ],
            Some(EmailStatus::Approved) => vec![
                self.move_status(
                    &item,
                    EmailStatus::Approved,
                    EmailStatus::Withdrawn,
                    &actor,
                    now,
                    extra,
                )?,
                self.review_step(&email, "send_withdrawn", &actor, Some(&note), now)?,
            ],
            Some(status) => return Err(ReviewError::NotDraft { status }),
            None => return Err(StoreError::Corrupt(format!("email status {status}")).into()),
        };
        self.commit(items).await
    }

    async fn approve(
        &self,
        approvals: Vec<(EmailId, Option<DateTime<Utc>>)>,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError> {
        self.approve_emails(&approvals, &by, now).await
    }

    async fn sendable(&self, email: EmailId) -> Result<Option<ports::Sendable>> {
        let Some(item) = self.email_in_scope(&email, None).await? else {
            return Ok(None);
        };
        let raw = text(&item, "status").unwrap_or_default();
        let status = EmailStatus::parse(&raw)
            .ok_or_else(|| StoreError::Corrupt(format!("email status {raw}")))?;
        Ok(Some(ports::Sendable {
            outgoing: self.outgoing(&item).await?,
            status,
            client: self.client_of(&item).await?,
        }))
    }

    async fn record_delivery(
        &self,
        email: EmailId,
        outcome: std::result::Result<(), String>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        DynamoStore::record_delivery(self, &email, outcome, now).await
    }

    async fn resend(
        &self,
        email: EmailId,
        by: Reviewer,
        now: DateTime<Utc>,
    ) -> Result<(), ReviewError> {
        let item = self
            .email_in_scope(&email, by.scope.as_ref())
            .await?
            .ok_or(ReviewError::NotFound)?;
        let raw = text(&item, "status").unwrap_or_default();
        match EmailStatus::parse(&raw) {
            Some(EmailStatus::Failed) => {}
            Some(status) => return Err(ReviewError::NotFailed { status }),
            None => return Err(StoreError::Corrupt(format!("email status {raw}")).into()),
        }
        // Back to `approved`: the stream sees the change and queues the delivery again.
        self.commit(vec![
            self.move_status(
                &item,
                EmailStatus::Failed,
                EmailStatus::Approved,
                &by.name,
                now,
                None,
            )?,
            self.review_step(&email, "resend_requested", &by.name, None, now)?,
        ])
        .await
    }
}
