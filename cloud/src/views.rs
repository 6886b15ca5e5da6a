//! The dashboard's views on DynamoDB, kept by a consumer of the topic.
//!
//! The stream handler derives [`ViewFact`]s from the table's stream (a client's band or
//! book changed, an email was drafted, redrafted, reviewed, withdrawn or delivered) and
//! publishes them to the topic with `event_kind` = `view_fact`. A second queue subscribes to
//! those alone; [`ViewsHandler`] applies each fact's deltas (from `domain`, as the embedded
//! store does) to counter items, in one transaction with the fact's idempotency record, so
//! a fact delivered twice counts once.
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | clients per stylist and band | `VIEW#BOOKS` | `{stylist}#{band}` |
//! | change of a band's total on a day | `VIEW#BANDDAYS` | `{day}#{band}` |
//! | email funnel row | `VIEW#EMAILS` | `{day}#{stylist}#{writer}` |
//! | reviews in a time bucket | `VIEW#REVIEWS` | `{day}#{stylist}#{bucket:02}` |
//! | drafts waiting | `VIEW#PENDING` | `{stylist}` |
//! | applied fact | `VIEWFACT#{id}` | `VIEWFACT` (TTL `expires_at`) |
//!
//! Every counter is an addition, so facts may arrive in any order. `engage views rebuild
//! --backend aws` clears the counters and derives the facts again from the table itself
//! (score history, emails and their review steps).

use crate::dynamo::{DynamoStore, describe};
use crate::stream::StreamChange;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update, WriteRequest};
use chrono::{DateTime, NaiveDate, Utc};
use domain::dashboard::{BandMix, DateRange};
use domain::outcomes::{DecisionOutcome, TouchCounts, TouchGroup};
use domain::view_facts::{
    BookBand, DashboardFigures, EmailCounts, Verdict, ViewDelta, ViewFact, ViewFactMessage,
    ViewRows, approved_edit, band_closings,
};
use domain::{Band, EmailKind, EmailStatus};
use ports::{Result, StoreError};
use processors::ProcessError;
use serde::Deserialize;
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// How long a fact's idempotency record is kept: longer than SQS keeps a message.
const IDEMPOTENCY_DAYS: i64 = 15;

const BOOKS: &str = "VIEW#BOOKS";
const BAND_DAYS: &str = "VIEW#BANDDAYS";
const EMAILS: &str = "VIEW#EMAILS";
const REVIEWS: &str = "VIEW#REVIEWS";
const PENDING: &str = "VIEW#PENDING";
const TOUCHES: &str = "VIEW#TOUCHES";
const VIEW_PARTITIONS: [&str; 6] = [BOOKS, BAND_DAYS, EMAILS, REVIEWS, PENDING, TOUCHES];

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn instant(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// What a view fact needs of a client or email item's image.
#[derive(Debug, Default, Deserialize)]
struct Image {
    sk: String,
    stylist_id: Option<String>,
    band: Option<String>,
    scored_at: Option<String>,
    status: Option<String>,
    writer: Option<String>,
    cost_usd: Option<f64>,
    created_at: Option<String>,
    reviewed_at: Option<String>,
    updated_at: Option<String>,
    subject: Option<String>,
    body_text: Option<String>,
    ai_subject: Option<String>,
    ai_body_text: Option<String>,
}

#[derive(Deserialize)]
struct Kind {
    sk: Option<String>,
}

/// The image of a client or email item; `None` for every other item (accounts, keys,
/// locks, idempotency records…), whatever attributes they hold.
fn image(item: Option<&serde_dynamo::Item>) -> std::result::Result<Option<Image>, ProcessError> {
    let Some(item) = item else { return Ok(None) };
    let kind: Kind = serde_dynamo::from_item(item.clone())
        .map_err(|e| ProcessError::Malformed(format!("stream image: {e}")))?;
    let counted = matches!(kind.sk.as_deref(), Some("CLIENT" | "EMAIL"))
        || kind
            .sk
            .as_deref()
            .is_some_and(|sk| sk.starts_with("DECISION#"));
    if !counted {
        return Ok(None);
    }
    serde_dynamo::from_item(item.clone())
        .map(Some)
        .map_err(|e| ProcessError::Malformed(format!("stream image: {e}")))
}

fn counted(image: &Image) -> Option<BookBand> {
    Some(BookBand {
        stylist: image.stylist_id.clone()?,
        band: Band::parse(image.band.as_deref()?)?,
    })
}

fn minutes(from: Option<DateTime<Utc>>, to: DateTime<Utc>) -> f64 {
    from.map_or(0.0, |from| {
        (to - from).num_milliseconds().max(0) as f64 / 60_000.0
    })
}

/// The view facts of one stream record, each with an id taken from the record's sequence
/// number (the same on every retry of the record).
pub fn facts_of(change: &StreamChange) -> std::result::Result<Vec<ViewFactMessage>, ProcessError> {
    let (old, new) = (image(change.old.as_ref())?, image(change.new.as_ref())?);
    let sk = new.as_ref().or(old.as_ref()).map(|i| i.sk.as_str());
    let facts = match sk {
        Some("CLIENT") => client_facts(old.as_ref(), new.as_ref(), change.at),
        Some("EMAIL") => new
            .as_ref()
            .map(|new| email_facts(old.as_ref(), new, change.at))
            .unwrap_or_default(),
        Some(sk) if sk.starts_with("DECISION#") => decision_facts(change)?,
        _ => Vec::new(),
    };
    Ok(facts
        .into_iter()
        .enumerate()
        .map(|(i, fact)| ViewFactMessage {
            id: format!("{}-{i}", change.sequence),
            fact,
        })
        .collect())
}

/// A decision item's facts: a new touch counts once; a touch's conversion changing moves
/// its counters by the difference.
fn decision_facts(change: &StreamChange) -> std::result::Result<Vec<ViewFact>, ProcessError> {
    let decision = |item: Option<&serde_dynamo::Item>| {
        item.map(|item| {
            let item: Item = item.clone().into();
            crate::decisions::decision_of(&item)
                .map_err(|e| ProcessError::Malformed(format!("decision image: {e}")))
        })
        .transpose()
    };
    let (old, new) = (
        decision(change.old.as_ref())?,
        decision(change.new.as_ref())?,
    );
    let Some(new) = new else {
        return Ok(Vec::new());
    };
    let Some(group) = TouchGroup::of(&new) else {
        return Ok(Vec::new());
    };
    let mut facts = Vec::new();
    let before = match old {
        Some(old) => old.conversion,
        None => {
            facts.push(ViewFact::Touched {
                group: group.clone(),
                expected_purchases: new.expected_purchases,
            });
            None
        }
    };
    if before != new.conversion {
        facts.push(ViewFact::ConversionChanged {
            group,
            has_expectation: new.expected_purchases.is_some(),
            from: before,
            to: new.conversion,
        });
    }
    Ok(facts)
}

fn client_facts(old: Option<&Image>, new: Option<&Image>, at: DateTime<Utc>) -> Vec<ViewFact> {
    let (was, is) = (old.and_then(counted), new.and_then(counted));
    if was == is {
        return Vec::new();
    }
    let at = new
        .and_then(|n| n.scored_at.as_deref())
        .and_then(instant)
        .unwrap_or(at);
    vec![ViewFact::ClientCounted {
        old: was,
        new: is,
        at,
    }]
}

fn email_facts(old: Option<&Image>, new: &Image, at: DateTime<Utc>) -> Vec<ViewFact> {
    let (Some(stylist), Some(writer)) = (new.stylist_id.clone(), new.writer.clone()) else {
        return Vec::new();
    };
    let status = |i: &Image| i.status.as_deref().and_then(EmailStatus::parse);
    let created = new.created_at.as_deref().and_then(instant);
    let when = |raw: &Option<String>| raw.as_deref().and_then(instant).unwrap_or(at);
    let Some(now) = status(new) else {
        return Vec::new();
    };
    let Some(old) = old else {
        return match now {
            EmailStatus::Drafted => vec![ViewFact::Drafted {
                stylist,
                writer,
                cost_usd: new.cost_usd.unwrap_or(0.0),
                created: created.unwrap_or(at),
            }],
            _ => Vec::new(),
        };
    };
    let Some(was) = status(old) else {
        return Vec::new();
    };
    match (was, now) {
        (EmailStatus::Drafted, EmailStatus::Drafted) => {
            let old_writer = old.writer.clone().unwrap_or_default();
            let cost = new.cost_usd.unwrap_or(0.0) - old.cost_usd.unwrap_or(0.0);
            if old_writer == writer && cost == 0.0 {
                return Vec::new();
            }
            vec![ViewFact::Redrafted {
                stylist,
                old_writer,
                writer,
                cost_usd: cost,
                created: created.unwrap_or(at),
            }]
        }
        (EmailStatus::Drafted, EmailStatus::Approved | EmailStatus::Rejected) => {
            let at = when(&new.reviewed_at);
            let verdict = if now == EmailStatus::Approved {
                Verdict::Approved {
                    edit: approved_edit(
                        new.ai_subject.as_deref(),
                        new.ai_body_text.as_deref(),
                        new.subject.as_deref().unwrap_or_default(),
                        new.body_text.as_deref().unwrap_or_default(),
                    ),
                }
            } else {
                Verdict::Rejected
            };
            vec![ViewFact::Reviewed {
                stylist,
                writer,
                verdict,
                minutes: minutes(created, at),
                at,
            }]
        }
        (EmailStatus::Drafted, EmailStatus::Withdrawn) => vec![ViewFact::Withdrawn { stylist }],
        (EmailStatus::Approved, EmailStatus::Sent | EmailStatus::Failed) => {
            vec![ViewFact::Delivered {
                stylist,
                writer,
                sent: now == EmailStatus::Sent,
                at: when(&new.updated_at),
            }]
        }
        _ => Vec::new(),
    }
}

/// A counter item's key and the attributes it adds.
struct Counter {
    pk: &'static str,
    sk: String,
    /// Attributes set (what the item counts), beside the additions.
    labels: Vec<(&'static str, AttributeValue)>,
    adds: Vec<(&'static str, AttributeValue)>,
}

fn counter(delta: ViewDelta) -> Counter {
    match delta {
        ViewDelta::Book { at, clients } => Counter {
            pk: BOOKS,
            sk: format!("{}#{}", at.stylist, at.band.as_str()),
            labels: vec![("stylist_id", s(at.stylist)), ("band", s(at.band.as_str()))],
            adds: vec![("clients", n(clients))],
        },
        ViewDelta::BandDay { day, band, clients } => Counter {
            pk: BAND_DAYS,
            sk: format!("{day}#{}", band.as_str()),
            labels: vec![("day", s(day.to_string())), ("band", s(band.as_str()))],
            adds: vec![("clients", n(clients))],
        },
        ViewDelta::Emails {
            day,
            stylist,
            writer,
            counts: c,
        } => Counter {
            pk: EMAILS,
            sk: format!("{day}#{stylist}#{writer}"),
            labels: vec![
                ("day", s(day.to_string())),
                ("stylist_id", s(stylist)),
                ("writer", s(writer)),
            ],
            adds: vec![
                ("drafted", n(c.drafted)),
                ("approved", n(c.approved)),
                ("sent", n(c.sent)),
                ("rejected", n(c.rejected)),
                ("failed", n(c.failed)),
                ("edited", n(c.edited)),
                ("edit_sum", n(c.edit_sum)),
                ("cost_usd", n(c.cost_usd)),
            ],
        },
        ViewDelta::Review {
            day,
            stylist,
            bucket,
        } => Counter {
            pk: REVIEWS,
            sk: format!("{day}#{stylist}#{bucket:02}"),
            labels: vec![
                ("day", s(day.to_string())),
                ("stylist_id", s(stylist)),
                ("bucket", n(bucket)),
            ],
            adds: vec![("reviews", n(1))],
        },
        ViewDelta::Pending { stylist, drafts } => Counter {
            pk: PENDING,
            sk: stylist.clone(),
            labels: vec![("stylist_id", s(stylist))],
            adds: vec![("drafts", n(drafts))],
        },
        ViewDelta::Touches { group, counts: c } => Counter {
            pk: TOUCHES,
            sk: format!(
                "{}#{}#{}#{}",
                group.kind.as_str(),
                group.outcome.as_str(),
                group.writer,
                group.prompt_version
            ),
            labels: vec![
                ("email_kind", s(group.kind.as_str())),
                ("outcome", s(group.outcome.as_str())),
                ("writer", s(group.writer)),
                ("prompt_version", s(group.prompt_version)),
            ],
            adds: vec![
                ("touches", n(c.touches)),
                ("converted", n(c.converted)),
                ("purchases", n(c.purchases)),
                ("value_cents", n(c.value_cents)),
                ("expected_touches", n(c.expected_touches)),
                ("expected_purchases", n(c.expected_purchases)),
                (
                    "purchases_with_expectation",
                    n(c.purchases_with_expectation),
                ),
            ],
        },
    }
}

impl DynamoStore {
    fn counter_update(&self, counter: Counter) -> Result<TransactWriteItem> {
        let mut update = Update::builder()
            .table_name(self.table())
            .key("pk", s(counter.pk))
            .key("sk", s(counter.sk));
        let mut sets = Vec::new();
        for (i, (name, value)) in counter.labels.into_iter().enumerate() {
            sets.push(format!("#l{i} = :l{i}"));
            update = update
                .expression_attribute_names(format!("#l{i}"), name)
                .expression_attribute_values(format!(":l{i}"), value);
        }
        let mut adds = Vec::new();
        for (i, (name, value)) in counter.adds.into_iter().enumerate() {
            adds.push(format!("#a{i} :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), value);
        }
        let expression = format!("SET {} ADD {}", sets.join(", "), adds.join(", "));
        let update = update
            .update_expression(expression)
            .build()
            .map_err(corrupt)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Applies a fact's deltas once: in one transaction with its idempotency record. A fact
    /// already applied changes nothing. Returns whether this call applied it.
    pub async fn apply_view_fact(
        &self,
        message: &ViewFactMessage,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut items = vec![
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(self.table())
                        .set_item(Some(HashMap::from([
                            ("pk".into(), s(format!("VIEWFACT#{}", message.id))),
                            ("sk".into(), s("VIEWFACT")),
                            (
                                "expires_at".into(),
                                n((now + chrono::Duration::days(IDEMPOTENCY_DAYS)).timestamp()),
                            ),
                        ])))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .map_err(corrupt)?,
                )
                .build(),
        ];
        for delta in message.fact.deltas() {
            items.push(self.counter_update(counter(delta))?);
        }
        match self
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(error) => {
                let first_failed = error
                    .as_service_error()
                    .and_then(|e| match e {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => {
                            c.cancellation_reasons().first().and_then(|r| r.code()).map(str::to_owned)
                        }
                        _ => None,
                    });
                if first_failed.as_deref() == Some("ConditionalCheckFailed") {
                    return Ok(false);
                }
                Err(StoreError::Service(describe(error)))
            }
        }
    }

    async fn view_items(&self, pk: &str) -> Result<Vec<Item>> {
        self.query_all(None, "pk", pk.to_owned()).await
    }

    /// The dashboard's figures for `range`, from the counter items alone.
    pub async fn view_figures(&self, range: DateRange) -> Result<DashboardFigures> {
        let text = |item: &Item, name: &str| -> Result<String> {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .ok_or_else(|| corrupt(format!("view item lacks {name}")))
        };
        let int = |item: &Item, name: &str| -> Result<i64> {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .map_or(Ok(0), |raw| {
                    raw.parse::<f64>()
                        .map(|x| x as i64)
                        .map_err(|_| corrupt(format!("{name} is not a number: {raw}")))
                })
        };
        let real = |item: &Item, name: &str| -> Result<f64> {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .map_or(Ok(0.0), |raw| {
                    raw.parse()
                        .map_err(|_| corrupt(format!("{name} is not a number: {raw}")))
                })
        };
        let band = |item: &Item| -> Result<Band> {
            let raw = text(item, "band")?;
            Band::parse(&raw).ok_or_else(|| corrupt(format!("band {raw}")))
        };
        let day = |item: &Item| -> Result<NaiveDate> {
            let raw = text(item, "day")?;
            NaiveDate::parse_from_str(&raw, "%Y-%m-%d")
                .map_err(|e| corrupt(format!("day {raw}: {e}")))
        };
        let in_range = |d: &NaiveDate| *d >= range.from && *d <= range.to;

        let mut rows = ViewRows::default();
        let mut now = BandMix::default();
        for item in self.view_items(BOOKS).await? {
            let (stylist, band, clients) = (
                text(&item, "stylist_id")?,
                band(&item)?,
                int(&item, "clients")?,
            );
            now.add(band, clients);
            rows.books.push((stylist, band, clients));
        }
        let mut changes = Vec::new();
        for item in self.view_items(BAND_DAYS).await? {
            changes.push((day(&item)?, band(&item)?, int(&item, "clients")?));
        }
        (rows.mix_before, rows.band_closings) = band_closings(now, &changes, range);
        for item in self.view_items(EMAILS).await? {
            let d = day(&item)?;
            if !in_range(&d) {
                continue;
            }
            let counts = EmailCounts {
                drafted: int(&item, "drafted")?,
                approved: int(&item, "approved")?,
                sent: int(&item, "sent")?,
                rejected: int(&item, "rejected")?,
                failed: int(&item, "failed")?,
                edited: int(&item, "edited")?,
                edit_sum: real(&item, "edit_sum")?,
                cost_usd: real(&item, "cost_usd")?,
            };
            rows.emails.push((
                d,
                text(&item, "stylist_id")?,
                text(&item, "writer")?,
                counts,
            ));
        }
        for item in self.view_items(REVIEWS).await? {
            let d = day(&item)?;
            if !in_range(&d) {
                continue;
            }
            rows.reviews.push((
                d,
                text(&item, "stylist_id")?,
                int(&item, "bucket")?.max(0) as usize,
                int(&item, "reviews")?.max(0) as u64,
            ));
        }
        for item in self.view_items(PENDING).await? {
            rows.pending
                .push((text(&item, "stylist_id")?, int(&item, "drafts")?));
        }
        rows.stylists = self
            .list_stylists()
            .await?
            .into_iter()
            .map(|s| (s.id.as_str().to_owned(), s.name))
            .collect();
        Ok(rows.figures(range))
    }

    /// The outcome counters of every touch group.
    pub async fn view_touches(&self) -> Result<Vec<(TouchGroup, TouchCounts)>> {
        let text = |item: &Item, name: &str| -> String {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let number = |item: &Item, name: &str| -> f64 {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|raw| raw.parse().ok())
                .unwrap_or(0.0)
        };
        self.view_items(TOUCHES)
            .await?
            .iter()
            .map(|item| {
                let (kind, outcome) = (text(item, "email_kind"), text(item, "outcome"));
                let corrupt_counter = || corrupt(format!("touch counter {kind}/{outcome}"));
                Ok((
                    TouchGroup {
                        kind: EmailKind::parse(&kind).ok_or_else(corrupt_counter)?,
                        outcome: DecisionOutcome::parse(&outcome).ok_or_else(corrupt_counter)?,
                        writer: text(item, "writer"),
                        prompt_version: text(item, "prompt_version"),
                    },
                    TouchCounts {
                        touches: number(item, "touches") as i64,
                        converted: number(item, "converted") as i64,
                        purchases: number(item, "purchases") as i64,
                        value_cents: number(item, "value_cents") as i64,
                        expected_touches: number(item, "expected_touches") as i64,
                        expected_purchases: number(item, "expected_purchases"),
                        purchases_with_expectation: number(item, "purchases_with_expectation")
                            as i64,
                    },
                ))
            })
            .collect()
    }

    /// Every counter item, as sorted lines: for comparing the live views with rebuilt ones.
    pub async fn view_lines(&self) -> Result<Vec<String>> {
        let mut lines = Vec::new();
        for pk in VIEW_PARTITIONS {
            for item in self.view_items(pk).await? {
                let mut fields: Vec<String> = item
                    .iter()
                    .map(|(name, value)| match value {
                        AttributeValue::N(raw) => {
                            format!("{name}={:.9}", raw.parse::<f64>().unwrap_or(f64::NAN))
                        }
                        other => format!("{name}={other:?}"),
                    })
                    .collect();
                fields.sort();
                lines.push(fields.join("|"));
            }
        }
        lines.sort();
        Ok(lines)
    }

    /// Clears the counters and counts everything again from the table: each client's score
    /// history, then every email and its review steps. `progress` hears (done, total).
    pub async fn rebuild_views(&self, progress: &(dyn Fn(u64, u64) + Send + Sync)) -> Result<u64> {
        for pk in VIEW_PARTITIONS {
            let keys: Vec<WriteRequest> = self
                .view_items(pk)
                .await?
                .into_iter()
                .map(|item| {
                    let key = HashMap::from([
                        (
                            "pk".to_owned(),
                            item.get("pk").cloned().unwrap_or_else(|| s(pk)),
                        ),
                        (
                            "sk".to_owned(),
                            item.get("sk").cloned().unwrap_or_else(|| s("")),
                        ),
                    ]);
                    aws_sdk_dynamodb::types::DeleteRequest::builder()
                        .set_key(Some(key))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(corrupt)
                })
                .collect::<Result<_>>()?;
            for chunk in keys.chunks(25) {
                let mut pending = chunk.to_vec();
                while !pending.is_empty() {
                    let out = self
                        .client()
                        .batch_write_item()
                        .request_items(self.table(), pending)
                        .send()
                        .await
                        .map_err(|e| StoreError::Service(describe(e)))?;
                    pending = out
                        .unprocessed_items
                        .and_then(|mut u| u.remove(self.table()))
                        .unwrap_or_default();
                }
            }
        }
        let facts = self.facts_from_table().await?;
        let total = facts.len() as u64;
        for (done, fact) in facts.into_iter().enumerate() {
            let mut items = Vec::new();
            for delta in fact.deltas() {
                items.push(self.counter_update(counter(delta))?);
            }
            if !items.is_empty() {
                self.client()
                    .transact_write_items()
                    .set_transact_items(Some(items))
                    .send()
                    .await
                    .map_err(|e| StoreError::Service(describe(e)))?;
            }
            let done = done as u64 + 1;
            if done.is_multiple_of(500) || done == total {
                progress(done, total);
            }
        }
        Ok(total)
    }

    /// The facts the table's history holds, in the order they happened per item.
    async fn facts_from_table(&self) -> Result<Vec<ViewFact>> {
        let text = |item: &Item, name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let at = |item: &Item, name: &str| -> Result<DateTime<Utc>> {
            let raw = text(item, name);
            instant(&raw).ok_or_else(|| corrupt(format!("{name} is not a time: {raw}")))
        };
        let mut facts = Vec::new();
        for stylist in self.list_stylists().await? {
            let book = format!("BOOK#{}", stylist.id);
            for client in self
                .query_all(Some(crate::dynamo::BY_LIST), "gsi1pk", book)
                .await?
            {
                let id = text(&client, "pk");
                let mut last: Option<BookBand> = None;
                for step in self.query_all(None, "pk", id).await? {
                    if text(&step, "sk").starts_with("DECISION#") {
                        let decision = crate::decisions::decision_of(&step)?;
                        if let Some(group) = TouchGroup::of(&decision) {
                            facts.push(ViewFact::Touched {
                                group: group.clone(),
                                expected_purchases: decision.expected_purchases,
                            });
                            facts.push(ViewFact::ConversionChanged {
                                group,
                                has_expectation: decision.expected_purchases.is_some(),
                                from: None,
                                to: decision.conversion,
                            });
                        }
                        continue;
                    }
                    if !text(&step, "sk").starts_with("SCORE#") {
                        continue;
                    }
                    let Some(band) = Band::parse(&text(&step, "band")) else {
                        return Err(corrupt(format!("score item band {}", text(&step, "band"))));
                    };
                    let now = BookBand {
                        stylist: stylist.id.as_str().to_owned(),
                        band,
                    };
                    facts.push(ViewFact::ClientCounted {
                        old: last.replace(now.clone()),
                        new: Some(now),
                        at: at(&step, "scored_at")?,
                    });
                }
            }
        }
        for status in EmailStatus::ALL {
            let index = format!("STATUS#{}", status.as_str());
            for email in self
                .query_all(Some(crate::dynamo::BY_LIST), "gsi1pk", index)
                .await?
            {
                let (stylist, writer) = (text(&email, "stylist_id"), text(&email, "writer"));
                let created = at(&email, "created_at")?;
                let cost = email
                    .get("cost_usd")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|raw| raw.parse().ok())
                    .unwrap_or(0.0);
                facts.push(ViewFact::Drafted {
                    stylist: stylist.clone(),
                    writer: writer.clone(),
                    cost_usd: cost,
                    created,
                });
                let opt = |name: &str| email.get(name).and_then(|v| v.as_s().ok()).cloned();
                for step in self.query_all(None, "pk", text(&email, "pk")).await? {
                    if !text(&step, "sk").starts_with("REVIEW#") {
                        continue;
                    }
                    let when = at(&step, "at")?;
                    let reviewed = |verdict| ViewFact::Reviewed {
                        stylist: stylist.clone(),
                        writer: writer.clone(),
                        verdict,
                        minutes: minutes(Some(created), when),
                        at: when,
                    };
                    let delivered = |sent| ViewFact::Delivered {
                        stylist: stylist.clone(),
                        writer: writer.clone(),
                        sent,
                        at: when,
                    };
                    facts.push(match text(&step, "action").as_str() {
                        "approved" => reviewed(Verdict::Approved {
                            edit: approved_edit(
                                opt("ai_subject").as_deref(),
                                opt("ai_body_text").as_deref(),
                                &text(&email, "subject"),
                                &text(&email, "body_text"),
                            ),
                        }),
                        "rejected" => reviewed(Verdict::Rejected),
                        "sent" => delivered(true),
                        "failed" => delivered(false),
                        "withdrawn" => ViewFact::Withdrawn {
                            stylist: stylist.clone(),
                        },
                        _ => continue,
                    });
                }
            }
        }
        Ok(facts)
    }
}

/// The views consumer: what the views function (and the local poller) does with a batch
/// of messages from the views queue. A message that is not a view fact fails alone (SQS
/// retries it and then dead-letters it).
#[derive(Clone)]
pub struct ViewsHandler {
    pub store: DynamoStore,
}

impl ViewsHandler {
    /// Handles one message body; `Ok(false)` when the fact had been applied before.
    pub async fn handle_one(
        &self,
        body: &str,
        now: DateTime<Utc>,
    ) -> std::result::Result<bool, ProcessError> {
        let message: ViewFactMessage =
            serde_json::from_str(body).map_err(|e| ProcessError::Malformed(e.to_string()))?;
        Ok(self.store.apply_view_fact(&message, now).await?)
    }
}

#[async_trait::async_trait]
impl crate::email::BatchHandler for ViewsHandler {
    /// Applies the facts one after another; returns the ids of the messages that failed.
    async fn handle(&self, messages: &[crate::email::QueueMessage]) -> Vec<String> {
        let mut failed = Vec::new();
        let mut applied = false;
        for message in messages {
            match self.handle_one(&message.body, Utc::now()).await {
                Ok(now_applied) => applied |= now_applied,
                Err(error) => {
                    tracing::warn!(message_id = %message.id, %error, "view fact failed");
                    failed.push(message.id.clone());
                }
            }
        }
        // Open dashboards refetch when the change stamp moves: the counters changed after
        // the write that made the facts had moved it.
        if applied {
            self.store.bump_stamp().await;
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(old: Option<serde_json::Value>, new: Option<serde_json::Value>) -> StreamChange {
        let item = |v: serde_json::Value| serde_dynamo::to_item(v).unwrap();
        StreamChange {
            sequence: "42".into(),
            key: "K".into(),
            at: Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap(),
            old: old.map(item),
            new: new.map(item),
        }
    }

    use chrono::TimeZone;

    #[test]
    fn items_other_than_clients_and_emails_make_no_facts_whatever_they_hold() {
        let key =
            serde_json::json!({"pk": "APIKEY#1", "sk": "APIKEY", "stylist_id": {"nested": true}});
        assert!(facts_of(&change(None, Some(key))).unwrap().is_empty());
    }

    #[test]
    fn an_email_approved_after_an_edit_is_a_review_with_its_edit_and_time() {
        let draft = serde_json::json!({
            "sk": "EMAIL", "stylist_id": "st-1", "writer": "template", "status": "drafted",
            "created_at": "2026-03-02T08:00:00Z", "subject": "Hi", "body_text": "Hello there",
        });
        let mut approved = draft.clone();
        approved["status"] = "approved".into();
        approved["reviewed_at"] = "2026-03-02T08:07:00Z".into();
        approved["ai_subject"] = "Hi".into();
        approved["ai_body_text"] = "Hello you".into();
        let facts = facts_of(&change(Some(draft.clone()), Some(approved))).unwrap();
        assert_eq!(facts.len(), 1);
        assert_eq!(facts[0].id, "42-0");
        match &facts[0].fact {
            ViewFact::Reviewed {
                verdict: Verdict::Approved { edit },
                minutes,
                ..
            } => {
                assert!(*edit > 0.0);
                assert_eq!(*minutes, 7.0);
            }
            other => panic!("{other:?}"),
        }
        let new = facts_of(&change(None, Some(draft))).unwrap();
        assert!(matches!(new[0].fact, ViewFact::Drafted { .. }));
    }

    #[test]
    fn a_client_whose_band_changed_counts_in_its_new_band_on_the_day_it_was_scored() {
        let old = serde_json::json!({"sk": "CLIENT", "stylist_id": "st-1", "band": "steady"});
        let new = serde_json::json!({"sk": "CLIENT", "stylist_id": "st-1", "band": "at_risk", "scored_at": "2026-03-04T10:00:00Z"});
        let facts = facts_of(&change(Some(old.clone()), Some(new))).unwrap();
        match &facts[0].fact {
            ViewFact::ClientCounted { old, new, at } => {
                assert_eq!(old.as_ref().unwrap().band, Band::Steady);
                assert_eq!(new.as_ref().unwrap().band, Band::AtRisk);
                assert_eq!(at.date_naive().to_string(), "2026-03-04");
            }
            other => panic!("{other:?}"),
        }
        // A write that changed neither band nor book (a profile edit) counts nothing.
        assert!(
            facts_of(&change(Some(old.clone()), Some(old)))
                .unwrap()
                .is_empty()
        );
    }
}
