//! [`Records`] on DynamoDB: one table, two overloaded global secondary indexes.
//!
//! | item | `pk` | `sk` | `gsi1pk` / `gsi1sk` | `gsi2pk` / `gsi2sk` |
//! |---|---|---|---|---|
//! | stylist | `STYLIST#{id}` | `STYLIST` | | |
//! | client | `CLIENT#{id}` | `CLIENT` | `BOOK#{stylist}` / `{score:03}#{id}` (`!#{id}` unscored) | |
//! | address lock | `ADDRESS#{email}` | `LOCK` | | |
//! | score change | `CLIENT#{id}` | `SCORE#{µs:020}#{event}` | | |
//! | email | `EMAIL#{id}` | `EMAIL` | `STATUS#{status}` / `{µs:020}#{id}` | `CLIENT#{client}` / `EMAIL#{µs:020}#{id}` |
//! | processed event | `EVENT#{id}` | `EVENT` (TTL `expires_at`) | | |
//! | last failure of a message | `FAILURE#{message id}` | `FAILURE` (TTL `expires_at`) | | |
//!
//! Clients by stylist ordered by score, emails by status and date and emails by client are
//! index queries; a client's score history is a range of its own partition. Every write
//! that must not race is a conditional write or a transaction: a client update names the
//! version it read, a new client takes its address lock, and an event's effect is
//! written in one transaction with its idempotency record. The table's stream
//! (NEW_AND_OLD_IMAGES) is the change feed: see [`crate::stream`].

use aws_sdk_dynamodb::Client as Dynamo;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};
use domain::views::{ClientPage, ClientSummary, EmailSummary};
use domain::{
    Band, Client, ClientId, EmailId, EmailKind, EmailStatus, EventId, NewClient, StylistId,
    ValidationErrors,
};
use futures_util::future::try_join_all;
use ports::{
    ClientChange, CreateClientError, Effect, EmailFilter, EventContext, ListError, Outcome,
    Records, Result, ScoreChange, StoreError, UpdateClientError,
};
use std::collections::HashMap;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// How long an event's idempotency record is kept: longer than SQS keeps a message (14
/// days at most), so a redelivered message always finds it.
const IDEMPOTENCY_DAYS: i64 = 15;

pub const BY_LIST: &str = "gsi1";
pub const BY_CLIENT: &str = "gsi2";

/// The DynamoDB store. Cheap to clone.
#[derive(Clone)]
pub struct DynamoStore {
    db: Dynamo,
    table: String,
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// A failed request in a line: the service's error code and message, or what kept the
/// request from being answered.
pub fn service<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    StoreError::Service(describe(error))
}

pub fn describe<E, R>(error: SdkError<E, R>) -> String
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match error.as_service_error() {
        Some(e) => format!(
            "{}: {}",
            e.code().unwrap_or("error"),
            e.message().unwrap_or("no message")
        ),
        None => DisplayErrorContext(error).to_string(),
    }
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub(crate) fn text<'a>(item: &'a Item, name: &str) -> Result<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(format!("item lacks the text attribute {name}")))
}

pub(crate) fn opt_text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(crate) fn opt_number<T: std::str::FromStr>(item: &Item, name: &str) -> Result<Option<T>> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .map(|raw| {
            raw.parse()
                .map_err(|_| corrupt(format!("{name} is not a number: {raw}")))
        })
        .transpose()
}

pub(crate) fn instant(raw: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(format!("time {raw}: {e}")))
}

/// A sort key part that orders by time: microseconds since 1970, zero-padded.
pub(crate) fn time_key(at: DateTime<Utc>) -> String {
    format!("{:020}", at.timestamp_micros().max(0))
}

fn book_key(stylist: &StylistId) -> String {
    format!("BOOK#{stylist}")
}

/// The client's place in its stylist's book: unscored (`!` sorts before digits) first,
/// then by score, then by id.
fn score_key(score: Option<u8>, client: &ClientId) -> String {
    match score {
        Some(score) => format!("{score:03}#{client}"),
        None => format!("!#{client}"),
    }
}

fn client_attribute(client: &Client) -> Result<AttributeValue> {
    serde_dynamo::to_attribute_value(client).map_err(corrupt)
}

fn client_of(item: &Item) -> Result<Client> {
    let value = item
        .get("client")
        .ok_or_else(|| corrupt("client item without its record"))?;
    serde_dynamo::from_attribute_value(value.clone()).map_err(corrupt)
}

/// A client's record in an item, as the change stream carries it (see [`crate::stream`]).
pub fn client_from_image(image: &Item) -> Result<Option<Client>> {
    if opt_text(image, "sk") != Some("CLIENT") {
        return Ok(None);
    }
    client_of(image).map(Some)
}

/// The codes of a cancelled transaction, one per item (`None` where the item was fine).
fn cancellation_codes<R>(
    error: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> Option<Vec<Option<String>>> {
    match error.as_service_error()? {
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
            cancelled,
        ) => Some(
            cancelled
                .cancellation_reasons()
                .iter()
                .map(|reason| reason.code().filter(|c| *c != "None").map(str::to_owned))
                .collect(),
        ),
        _ => None,
    }
}

fn failed_check(codes: &Option<Vec<Option<String>>>, index: usize) -> bool {
    codes
        .as_ref()
        .and_then(|codes| codes.get(index))
        .is_some_and(|code| code.as_deref() == Some("ConditionalCheckFailed"))
}

impl DynamoStore {
    pub fn new(db: Dynamo, table: impl Into<String>) -> Self {
        Self {
            db,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Dynamo {
        &self.db
    }

    /// One item by its key, read consistently.
    pub async fn item(&self, pk: String, sk: &str) -> Result<Option<Item>> {
        self.get(pk, sk).await
    }

    pub async fn stylist_exists(&self, id: &StylistId) -> Result<bool> {
        Ok(self
            .get(format!("STYLIST#{id}"), "STYLIST")
            .await?
            .is_some())
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(service)?;
        Ok(out.item)
    }

    /// Records why handling the message `message_id` failed, so a dead letter shows its
    /// last error (SQS keeps none). Kept as long as an idempotency record.
    pub async fn record_failure(
        &self,
        message_id: &str,
        error: &str,
        receive_count: u32,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let error: String = error.chars().take(2_000).collect();
        let mut item = key(format!("FAILURE#{message_id}"), "FAILURE");
        item.insert("error".into(), s(error));
        item.insert("receive_count".into(), n(receive_count));
        item.insert("at".into(), s(now.to_rfc3339()));
        item.insert(
            "expires_at".into(),
            n((now + chrono::Duration::days(IDEMPOTENCY_DAYS)).timestamp()),
        );
        self.db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(service)?;
        Ok(())
    }

    /// The last recorded failure of the message `message_id`: its error and when.
    pub async fn failure(&self, message_id: &str) -> Result<Option<(String, DateTime<Utc>)>> {
        let Some(item) = self.get(format!("FAILURE#{message_id}"), "FAILURE").await? else {
            return Ok(None);
        };
        Ok(Some((
            text(&item, "error")?.to_owned(),
            instant(text(&item, "at")?)?,
        )))
    }

    async fn client_item(&self, id: &ClientId) -> Result<Option<Item>> {
        self.get(format!("CLIENT#{id}"), "CLIENT").await
    }

    pub async fn stylist_name(&self, id: &StylistId) -> Result<Option<String>> {
        Ok(self
            .get(format!("STYLIST#{id}"), "STYLIST")
            .await?
            .and_then(|item| opt_text(&item, "name").map(str::to_owned)))
    }

    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(corrupt)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn client_item_of(&self, client: &Client, score: Option<u8>) -> Result<Item> {
        Ok(HashMap::from([
            ("pk".into(), s(format!("CLIENT#{}", client.id))),
            ("sk".into(), s("CLIENT")),
            ("kind".into(), s("client")),
            ("client".into(), client_attribute(client)?),
            ("version".into(), n(client.version)),
            ("stylist_id".into(), s(client.stylist_id.as_str())),
            ("gsi1pk".into(), s(book_key(&client.stylist_id))),
            ("gsi1sk".into(), s(score_key(score, &client.id))),
        ]))
    }

    fn address_lock(&self, client: &Client) -> Item {
        HashMap::from([
            ("pk".into(), s(format!("ADDRESS#{}", client.email.as_str()))),
            ("sk".into(), s("LOCK")),
            ("client_id".into(), s(client.id.as_str())),
        ])
    }

    fn stylist_check(&self, stylist: &StylistId) -> Result<TransactWriteItem> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("STYLIST#{stylist}"), "STYLIST")))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(corrupt)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    pub(crate) fn client_summary(&self, item: &Item, stylist_name: &str) -> Result<ClientSummary> {
        let client = client_of(item)?;
        let score = opt_number::<u8>(item, "score")?;
        let band = opt_text(item, "band").and_then(Band::parse);
        Ok(ClientSummary {
            id: client.id,
            name: client.name.as_str().to_owned(),
            email: client.email.as_str().to_owned(),
            stylist_id: client.stylist_id,
            stylist_name: stylist_name.to_owned(),
            status: client.status,
            score,
            band,
            created_at: client.created_at,
            last_activity_at: client.updated_at,
        })
    }

    fn email_summary(item: &Item) -> Result<EmailSummary> {
        email_summary_of(item)
    }
}

impl DynamoStore {
    /// Newest-first emails from one index partition, keeping those `keep` accepts, until
    /// `limit` are found or the partition ends.
    async fn email_query(
        &self,
        index: &str,
        partition: (&str, String),
        prefix: Option<(&str, &str)>,
        keep: &(dyn Fn(&Item) -> bool + Sync),
        limit: u32,
    ) -> Result<Vec<EmailSummary>> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .db
                .query()
                .table_name(&self.table)
                .index_name(index)
                .expression_attribute_names("#p", partition.0)
                .expression_attribute_values(":p", s(partition.1.clone()));
            query = match prefix {
                Some((name, value)) => query
                    .key_condition_expression("#p = :p AND begins_with(#s, :s)")
                    .expression_attribute_names("#s", name)
                    .expression_attribute_values(":s", s(value)),
                None => query.key_condition_expression("#p = :p"),
            };
            let out = query
                .scan_index_forward(false)
                .limit(limit.clamp(1, 100) as i32)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(service)?;
            for item in out.items() {
                if keep(item) {
                    found.push(Self::email_summary(item)?);
                    if found.len() == limit as usize {
                        return Ok(found);
                    }
                }
            }
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(found),
            }
        }
    }

    /// What a transaction that recorded an event's effect ran into, once it was cancelled:
    /// the effect was recorded before (by another worker), or the reason.
    /// A conflicting transaction may still be committing the same event (two deliveries
    /// handled at once), so the idempotency record is looked for a few times.
    async fn after_cancelled(&self, event: &EventId, reason: String) -> Result<Outcome> {
        for wait_ms in [0, 50, 200] {
            tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
            if self.get(format!("EVENT#{event}"), "EVENT").await?.is_some() {
                return Ok(Outcome::AlreadyApplied);
            }
        }
        Err(StoreError::Service(format!(
            "recording event {event} was cancelled: {reason}"
        )))
    }
}

#[async_trait::async_trait]
impl Records for DynamoStore {
    async fn upsert_stylist(&self, id: StylistId, name: String, email: String) -> Result<()> {
        let item = HashMap::from([
            ("pk".into(), s(format!("STYLIST#{id}"))),
            ("sk".into(), s("STYLIST")),
            ("kind".into(), s("stylist")),
            ("id".into(), s(id.as_str())),
            ("gsi1pk".into(), s("STYLISTS")),
            ("gsi1sk".into(), s(format!("{name}#{id}"))),
            ("name".into(), s(name)),
            ("email".into(), s(email)),
        ]);
        self.db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(service)?;
        Ok(())
    }

    async fn create_client(
        &self,
        new: NewClient,
        now: DateTime<Utc>,
    ) -> Result<Client, CreateClientError> {
        let client = ports::first_version(new, now);
        let result = self
            .db
            .transact_write_items()
            .transact_items(self.put(
                self.client_item_of(&client, None)?,
                Some("attribute_not_exists(pk)"),
            )?)
            .transact_items(self.put(self.address_lock(&client), Some("attribute_not_exists(pk)"))?)
            .transact_items(self.stylist_check(&client.stylist_id)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(client),
            Err(error) => {
                let codes = cancellation_codes(&error);
                if failed_check(&codes, 1) {
                    Err(ValidationErrors::single(
                        "email",
                        "A client with this email address already exists.",
                    )
                    .into())
                } else if failed_check(&codes, 2) {
                    Err(
                        ValidationErrors::single("stylist_id", "This is not a known stylist.")
                            .into(),
                    )
                } else {
                    Err(service(error).into())
                }
            }
        }
    }

    async fn get_client(&self, id: ClientId) -> Result<Option<Client>> {
        self.client_item(&id)
            .await?
            .map(|item| client_of(&item))
            .transpose()
    }

    async fn update_client(
        &self,
        id: ClientId,
        expected_version: Option<u64>,
        now: DateTime<Utc>,
        change: ClientChange,
    ) -> Result<Client, UpdateClientError> {
        let item = self
            .client_item(&id)
            .await?
            .ok_or(UpdateClientError::NotFound)?;
        let old = client_of(&item)?;
        if let Some(expected) = expected_version
            && expected != old.version
        {
            return Err(UpdateClientError::VersionConflict {
                current: old.version,
            });
        }
        let mut new = old.clone();
        change(&mut new)?;
        new.id = old.id.clone();
        new.version = old.version;
        new.created_at = old.created_at;
        new.updated_at = old.updated_at;
        if new == old {
            return Ok(old);
        }
        new.version = old.version + 1;
        new.updated_at = now.max(old.updated_at);

        let score = opt_number::<u8>(&item, "score")?;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("CLIENT#{id}"), "CLIENT")))
            .update_expression(
                "SET #client = :client, #version = :version, stylist_id = :stylist, gsi1pk = :book, gsi1sk = :place",
            )
            .condition_expression("#version = :expected")
            .expression_attribute_names("#client", "client")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":client", client_attribute(&new)?)
            .expression_attribute_values(":version", n(new.version))
            .expression_attribute_values(":expected", n(old.version))
            .expression_attribute_values(":stylist", s(new.stylist_id.as_str()))
            .expression_attribute_values(":book", s(book_key(&new.stylist_id)))
            .expression_attribute_values(":place", s(score_key(score, &new.id)))
            .build()
            .map_err(corrupt)?;
        let mut transaction = self
            .db
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build());
        // Indexes of the items after the client update, to read cancellation reasons.
        let mut address_at = None;
        let mut stylist_at = None;
        let mut count = 1;
        if new.email != old.email {
            let release = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(format!("ADDRESS#{}", old.email.as_str()), "LOCK")))
                .build()
                .map_err(corrupt)?;
            transaction = transaction
                .transact_items(TransactWriteItem::builder().delete(release).build())
                .transact_items(
                    self.put(self.address_lock(&new), Some("attribute_not_exists(pk)"))?,
                );
            address_at = Some(count + 1);
            count += 2;
        }
        if new.stylist_id != old.stylist_id {
            transaction = transaction.transact_items(self.stylist_check(&new.stylist_id)?);
            stylist_at = Some(count);
        }
        match transaction.send().await {
            Ok(_) => Ok(new),
            Err(error) => {
                let codes = cancellation_codes(&error);
                if failed_check(&codes, 0) {
                    let current = self
                        .get_client(id)
                        .await?
                        .ok_or(UpdateClientError::NotFound)?;
                    Err(UpdateClientError::VersionConflict {
                        current: current.version,
                    })
                } else if address_at.is_some_and(|i| failed_check(&codes, i)) {
                    Err(ValidationErrors::single(
                        "email",
                        "A client with this email address already exists.",
                    )
                    .into())
                } else if stylist_at.is_some_and(|i| failed_check(&codes, i)) {
                    Err(
                        ValidationErrors::single("stylist_id", "This is not a known stylist.")
                            .into(),
                    )
                } else {
                    Err(service(error).into())
                }
            }
        }
    }

    async fn clients_by_score(
        &self,
        stylist: StylistId,
        after: Option<String>,
        limit: u32,
    ) -> Result<ClientPage, ListError> {
        let start = match after {
            None => None,
            Some(cursor) => {
                let (place, id) = cursor.split_once('#').ok_or(ListError::BadCursor)?;
                let valid_place =
                    place == "!" || (place.len() == 3 && place.bytes().all(|b| b.is_ascii_digit()));
                if !valid_place || id.is_empty() {
                    return Err(ListError::BadCursor);
                }
                let mut start = key(format!("CLIENT#{id}"), "CLIENT");
                start.insert("gsi1pk".into(), s(book_key(&stylist)));
                start.insert("gsi1sk".into(), s(cursor.clone()));
                Some(start)
            }
        };
        let out = self
            .db
            .query()
            .table_name(&self.table)
            .index_name(BY_LIST)
            .key_condition_expression("gsi1pk = :book")
            .expression_attribute_values(":book", s(book_key(&stylist)))
            .limit(limit.clamp(1, 1000) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(service)?;
        let stylist_name = self.stylist_name(&stylist).await?.unwrap_or_default();
        let clients = out
            .items()
            .iter()
            .map(|item| self.client_summary(item, &stylist_name))
            .collect::<Result<Vec<_>>>()?;
        let next = match out.last_evaluated_key {
            Some(last) if !last.is_empty() => Some(
                last.get("gsi1sk")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .ok_or_else(|| corrupt("page end without its sort key"))?,
            ),
            _ => None,
        };
        Ok(ClientPage {
            clients,
            next,
            search_capped: false,
        })
    }

    async fn score_history(&self, client: ClientId, limit: u32) -> Result<Vec<ScoreChange>> {
        let out = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :scores)")
            .expression_attribute_values(":pk", s(format!("CLIENT#{client}")))
            .expression_attribute_values(":scores", s("SCORE#"))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(service)?;
        out.items()
            .iter()
            .map(|item| {
                let band = text(item, "band")?;
                Ok(ScoreChange {
                    score: opt_number(item, "score")?.ok_or_else(|| corrupt("score"))?,
                    band: Band::parse(band).ok_or_else(|| corrupt(format!("band {band}")))?,
                    factors: serde_json::from_str(text(item, "factors")?).map_err(corrupt)?,
                    event_id: EventId::new(text(item, "event_id")?),
                    scored_at: instant(text(item, "scored_at")?)?,
                })
            })
            .collect()
    }

    async fn emails(&self, filter: EmailFilter, limit: u32) -> Result<Vec<EmailSummary>> {
        let EmailFilter {
            scope,
            client,
            status,
        } = filter;
        let keep = move |item: &Item| {
            scope
                .as_ref()
                .is_none_or(|s| opt_text(item, "stylist_id") == Some(s.as_str()))
                && status.is_none_or(|st| opt_text(item, "status") == Some(st.as_str()))
        };
        if let Some(client) = client {
            return self
                .email_query(
                    BY_CLIENT,
                    ("gsi2pk", format!("CLIENT#{client}")),
                    Some(("gsi2sk", "EMAIL#")),
                    &keep,
                    limit,
                )
                .await;
        }
        let statuses = match status {
            Some(status) => vec![status],
            None => EmailStatus::ALL.to_vec(),
        };
        let mut found = Vec::new();
        for status in statuses {
            found.extend(
                self.email_query(
                    BY_LIST,
                    ("gsi1pk", format!("STATUS#{}", status.as_str())),
                    None,
                    &keep,
                    limit,
                )
                .await?,
            );
        }
        found.sort_by_key(|email| std::cmp::Reverse(email.created_at));
        found.truncate(limit as usize);
        Ok(found)
    }

    async fn event_contexts(&self, wanted: Vec<(EventId, ClientId)>) -> Result<Vec<EventContext>> {
        try_join_all(wanted.into_iter().map(|(event, client)| async move {
            if self.get(format!("EVENT#{event}"), "EVENT").await?.is_some() {
                return Ok(EventContext {
                    already_applied: true,
                    ..EventContext::default()
                });
            }
            let Some(item) = self.client_item(&client).await? else {
                return Ok(EventContext::default());
            };
            let record = client_of(&item)?;
            let stylist_name = self.stylist_name(&record.stylist_id).await?;
            let decisions = self.decisions(&client, ports::RECENT_DECISIONS).await?;
            Ok(EventContext {
                already_applied: false,
                stylist_name,
                previous_band: opt_text(&item, "band").and_then(Band::parse),
                draft_pending: opt_text(&item, "pending_draft").is_some(),
                last_draft_at: opt_text(&item, "last_draft_at").map(instant).transpose()?,
                last_rejected_at: opt_text(&item, "last_rejected_at")
                    .map(instant)
                    .transpose()?,
                band_since: opt_text(&item, "band_since").map(instant).transpose()?,
                decisions,
                client: Some(record),
            })
        }))
        .await
    }

    async fn decisions(
        &self,
        client: ClientId,
        limit: u32,
    ) -> Result<Vec<domain::outcomes::Decision>> {
        DynamoStore::decisions(self, &client, limit).await
    }

    async fn email_kind(&self, email: EmailId) -> Result<Option<EmailKind>> {
        let Some(item) = self.get(format!("EMAIL#{email}"), "EMAIL").await? else {
            return Ok(None);
        };
        let kind = text(&item, "email_kind")?;
        EmailKind::parse(kind)
            .map(Some)
            .ok_or_else(|| corrupt(format!("email kind {kind}")))
    }

    async fn record_outcome(&self, effect: Effect, now: DateTime<Utc>) -> Result<Outcome> {
        let event = &effect.event_id;
        let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let mut items = vec![self.put(
            HashMap::from([
                ("pk".into(), s(format!("EVENT#{event}"))),
                ("sk".into(), s("EVENT")),
                ("processed_at".into(), s(stamp.clone())),
                (
                    "expires_at".into(),
                    n((now + chrono::Duration::days(IDEMPOTENCY_DAYS)).timestamp()),
                ),
            ]),
            Some("attribute_not_exists(pk)"),
        )?];

        if let Some((email, draft)) = &effect.redraft {
            let current = self.get(format!("EMAIL#{email}"), "EMAIL").await?;
            if current.as_ref().and_then(|i| opt_text(i, "status")) == Some("drafted") {
                let usage = draft.usage;
                let mut update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(format!("EMAIL#{email}"), "EMAIL")))
                    .update_expression(
                        "SET subject = :subject, body_text = :body, writer = :writer, updated_at = :now, prompt_tokens = :pt, completion_tokens = :ct ADD cost_usd :cost",
                    )
                    .condition_expression("#status = :drafted")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":drafted", s("drafted"))
                    .expression_attribute_values(":subject", s(draft.text.subject.clone()))
                    .expression_attribute_values(":body", s(draft.text.body_text.clone()))
                    .expression_attribute_values(":writer", s(draft.writer.clone()))
                    .expression_attribute_values(":now", s(stamp.clone()))
                    .expression_attribute_values(":cost", n(usage.and_then(|u| u.cost).unwrap_or(0.0)));
                update = match usage {
                    Some(u) => update
                        .expression_attribute_values(":pt", n(u.prompt_tokens))
                        .expression_attribute_values(":ct", n(u.completion_tokens)),
                    None => update
                        .expression_attribute_values(":pt", AttributeValue::Null(true))
                        .expression_attribute_values(":ct", AttributeValue::Null(true)),
                };
                items.push(
                    TransactWriteItem::builder()
                        .update(update.build().map_err(corrupt)?)
                        .build(),
                );
                // The email's history says it was rewritten, and by which writer.
                items.push(self.review_step(email, "redrafted", &draft.writer, None, now)?);
            } else {
                tracing::info!(email_id = %email, "redraft dropped: the email is no longer awaiting review");
            }
        }

        if let Some(score) = &effect.score {
            let client_item = self
                .client_item(&effect.client)
                .await?
                .ok_or_else(|| corrupt(format!("client {} vanished", effect.client)))?;
            let client = client_of(&client_item)?;
            let factors = score.factors_json.clone();
            let mut score_item: Item = HashMap::from([
                ("pk".into(), s(format!("CLIENT#{}", effect.client))),
                ("sk".into(), s(format!("SCORE#{}#{event}", time_key(now)))),
                ("score".into(), n(score.score)),
                ("band".into(), s(score.band.as_str())),
                ("factors".into(), s(factors)),
                ("event_id".into(), s(event.as_str())),
                ("scored_at".into(), s(stamp.clone())),
                (
                    "event_at".into(),
                    s(effect
                        .event_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
                ),
            ]);
            if let Some(text) = &effect.event_text {
                score_item.insert("event_text".into(), s(text.clone()));
            }
            items.push(self.put(score_item, None)?);

            // Never a second pending draft: the client item says whether one waits.
            let draft = effect
                .draft
                .as_ref()
                .filter(|_| opt_text(&client_item, "pending_draft").is_none());
            if effect.draft.is_some() && draft.is_none() {
                tracing::info!(client_id = %effect.client, event_id = %event, "draft dropped: another draft already awaits review");
            }
            // The band's start: kept while the band stays, moved when it changes.
            let band_since = match (
                opt_text(&client_item, "band"),
                opt_text(&client_item, "band_since"),
            ) {
                (Some(band), Some(since)) if band == score.band.as_str() => since.to_owned(),
                _ => stamp.clone(),
            };
            let mut update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(format!("CLIENT#{}", effect.client), "CLIENT")))
                .expression_attribute_values(":score", n(score.score))
                .expression_attribute_values(":band", s(score.band.as_str()))
                .expression_attribute_values(":scored", s(stamp.clone()))
                .expression_attribute_values(":since", s(band_since))
                .expression_attribute_values(
                    ":place",
                    s(score_key(Some(score.score), &effect.client)),
                );
            let email_id = draft.map(|_| EmailId::new(uuid::Uuid::now_v7().to_string()));
            if let Some(decision) = &effect.decision {
                let decision = decision.clone().with_draft(email_id.clone());
                items.push(self.put(
                    crate::decisions::decision_item(&decision),
                    Some("attribute_not_exists(pk)"),
                )?);
            }
            for (touch, conversion) in &effect.conversions {
                items.extend(self.conversion_writes(touch, *conversion)?);
            }
            if let (Some(draft), Some(email)) = (draft, email_id) {
                update = update
                    .update_expression(
                        "SET score = :score, band = :band, scored_at = :scored, band_since = :since, gsi1sk = :place, pending_draft = :email, last_draft_at = :now",
                    )
                    .condition_expression("attribute_exists(pk) AND attribute_not_exists(pending_draft)")
                    .expression_attribute_values(":email", s(email.as_str()))
                    .expression_attribute_values(":now", s(stamp.clone()));
                let stylist_name = self
                    .stylist_name(&client.stylist_id)
                    .await?
                    .unwrap_or_default();
                let created = time_key(now);
                let mut email_item = HashMap::from([
                    ("pk".into(), s(format!("EMAIL#{email}"))),
                    ("sk".into(), s("EMAIL")),
                    ("kind".into(), s("email")),
                    ("id".into(), s(email.as_str())),
                    ("client_id".into(), s(effect.client.as_str())),
                    ("client_name".into(), s(client.name.as_str())),
                    ("stylist_id".into(), s(client.stylist_id.as_str())),
                    ("stylist_name".into(), s(stylist_name)),
                    ("email_kind".into(), s(draft.kind.as_str())),
                    ("subject".into(), s(draft.text.subject.clone())),
                    ("body_text".into(), s(draft.text.body_text.clone())),
                    ("status".into(), s("drafted")),
                    ("writer".into(), s(draft.writer.clone())),
                    ("prompt_version".into(), s(draft.prompt_version.clone())),
                    ("reason".into(), s(draft.reason.clone())),
                    ("event_id".into(), s(event.as_str())),
                    ("score".into(), n(score.score)),
                    ("created_at".into(), s(stamp.clone())),
                    ("updated_at".into(), s(stamp.clone())),
                    ("gsi1pk".into(), s("STATUS#drafted")),
                    ("gsi1sk".into(), s(format!("{created}#{email}"))),
                    ("gsi2pk".into(), s(format!("CLIENT#{}", effect.client))),
                    ("gsi2sk".into(), s(format!("EMAIL#{created}#{email}"))),
                ]);
                if let Some(usage) = draft.usage {
                    email_item.insert("prompt_tokens".into(), n(usage.prompt_tokens));
                    email_item.insert("completion_tokens".into(), n(usage.completion_tokens));
                    if let Some(cost) = usage.cost {
                        email_item.insert("cost_usd".into(), n(cost));
                    }
                }
                items.push(self.put(email_item, Some("attribute_not_exists(pk)"))?);
            } else {
                update = update
                    .update_expression(
                        "SET score = :score, band = :band, scored_at = :scored, band_since = :since, gsi1sk = :place",
                    )
                    .condition_expression("attribute_exists(pk)");
            }
            items.push(
                TransactWriteItem::builder()
                    .update(update.build().map_err(corrupt)?)
                    .build(),
            );
        }

        match self
            .db
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => {
                self.bump_stamp().await;
                Ok(Outcome::Applied)
            }
            Err(error) => {
                let codes = cancellation_codes(&error);
                self.after_cancelled(event, format!("{codes:?}: {}", describe(error)))
                    .await
            }
        }
    }
}

pub(crate) fn email_summary_of(item: &Item) -> Result<EmailSummary> {
    let status = text(item, "status")?;
    let kind = text(item, "email_kind")?;
    Ok(EmailSummary {
        id: EmailId::new(text(item, "id")?),
        client_id: ClientId::new(text(item, "client_id")?),
        client_name: text(item, "client_name")?.to_owned(),
        stylist_name: text(item, "stylist_name")?.to_owned(),
        kind: EmailKind::parse(kind).ok_or_else(|| corrupt(format!("email kind {kind}")))?,
        subject: text(item, "subject")?.to_owned(),
        status: EmailStatus::parse(status)
            .ok_or_else(|| corrupt(format!("email status {status}")))?,
        writer: text(item, "writer")?.to_owned(),
        prompt_tokens: opt_number(item, "prompt_tokens")?,
        completion_tokens: opt_number(item, "completion_tokens")?,
        created_at: instant(text(item, "created_at")?)?,
    })
}
