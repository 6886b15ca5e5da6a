//! The policy's decisions on DynamoDB: one item per decision under its client
//! (`CLIENT#{id}` / `DECISION#{µs}#{event}`), written in the transaction of the event that
//! made it; a conversion updates the decision (and the email it drafted). The views
//! consumer counts touches and conversions from the items' stream images, as it counts
//! everything else (`crate::views`).

use crate::DynamoStore;
use crate::dynamo::{
    Item, corrupt, instant, key, n, opt_number, opt_text, s, service, text, time_key,
};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use domain::outcomes::{Conversion, Decision, DecisionOutcome};
use domain::{ClientId, EmailId, EmailKind, EventId, StylistId};
use ports::Result;
use std::collections::HashMap;

/// The sort key of a decision: in time order under its client.
pub(crate) fn decision_sk(decision: &Decision) -> String {
    format!(
        "DECISION#{}#{}",
        time_key(decision.decided_at),
        decision.event_id
    )
}

/// A decision's item.
pub(crate) fn decision_item(decision: &Decision) -> Item {
    let mut item: Item = HashMap::from([
        ("pk".into(), s(format!("CLIENT#{}", decision.client_id))),
        ("sk".into(), s(decision_sk(decision))),
        ("event_id".into(), s(decision.event_id.as_str())),
        ("client_id".into(), s(decision.client_id.as_str())),
        ("stylist_id".into(), s(decision.stylist_id.as_str())),
        ("email_kind".into(), s(decision.kind.as_str())),
        ("outcome".into(), s(decision.outcome.as_str())),
        ("reason".into(), s(decision.reason.clone())),
        ("reason_code".into(), s(decision.reason_code.clone())),
        (
            "decided_at".into(),
            s(decision
                .decided_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        ),
    ]);
    let mut put = |name: &str, value: Option<AttributeValue>| {
        if let Some(value) = value {
            item.insert(name.into(), value);
        }
    };
    put(
        "email_id",
        decision.email_id.as_ref().map(|e| s(e.as_str())),
    );
    put("writer", decision.writer.clone().map(s));
    put("prompt_version", decision.prompt_version.clone().map(s));
    put("expected_purchases", decision.expected_purchases.map(n));
    if let Some(conversion) = decision.conversion {
        for (name, value) in conversion_attributes(Some(conversion)) {
            item.insert(name.into(), value);
        }
    }
    item
}

/// A conversion as attributes (`converted_on`, `purchases`, `value_cents`).
fn conversion_attributes(conversion: Option<Conversion>) -> Vec<(&'static str, AttributeValue)> {
    match conversion {
        Some(c) => vec![
            ("converted_on", s(c.on.to_string())),
            ("purchases", n(c.purchases)),
            ("value_cents", n(c.value_cents)),
        ],
        None => vec![("purchases", n(0)), ("value_cents", n(0))],
    }
}

/// The conversion an item (a decision or an email) carries.
pub(crate) fn conversion_of(item: &Item) -> Result<Option<Conversion>> {
    let Some(on) = opt_text(item, "converted_on") else {
        return Ok(None);
    };
    Ok(Some(Conversion {
        on: on
            .parse()
            .map_err(|_| corrupt(format!("conversion day {on}")))?,
        purchases: opt_number(item, "purchases")?.unwrap_or(0),
        value_cents: opt_number(item, "value_cents")?.unwrap_or(0),
    }))
}

/// A decision from its item.
pub(crate) fn decision_of(item: &Item) -> Result<Decision> {
    let kind = text(item, "email_kind")?;
    let outcome = text(item, "outcome")?;
    Ok(Decision {
        event_id: EventId::new(text(item, "event_id")?),
        client_id: ClientId::new(text(item, "client_id")?),
        stylist_id: StylistId::new(text(item, "stylist_id")?),
        kind: EmailKind::parse(kind).ok_or_else(|| corrupt(format!("decision kind {kind}")))?,
        outcome: DecisionOutcome::parse(outcome)
            .ok_or_else(|| corrupt(format!("decision outcome {outcome}")))?,
        reason: text(item, "reason")?.to_owned(),
        reason_code: text(item, "reason_code")?.to_owned(),
        decided_at: instant(text(item, "decided_at")?)?,
        email_id: opt_text(item, "email_id").map(EmailId::new),
        writer: opt_text(item, "writer").map(str::to_owned),
        prompt_version: opt_text(item, "prompt_version").map(str::to_owned),
        expected_purchases: opt_number(item, "expected_purchases")?,
        conversion: conversion_of(item)?,
    })
}

impl DynamoStore {
    /// A client's latest decisions, newest first.
    pub async fn decisions(&self, client: &ClientId, limit: u32) -> Result<Vec<Decision>> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk AND begins_with(sk, :decisions)")
            .expression_attribute_values(":pk", s(format!("CLIENT#{client}")))
            .expression_attribute_values(":decisions", s("DECISION#"))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(service)?;
        out.items().iter().map(decision_of).collect()
    }

    /// The writes that give the touch `decision` its new conversion: the decision item and,
    /// when it drafted an email, the email item (which the email's page reads).
    pub(crate) fn conversion_writes(
        &self,
        decision: &Decision,
        conversion: Option<Conversion>,
    ) -> Result<Vec<TransactWriteItem>> {
        let mut keys = vec![key(
            format!("CLIENT#{}", decision.client_id),
            &decision_sk(decision),
        )];
        if let Some(email) = &decision.email_id {
            keys.push(key(format!("EMAIL#{email}"), "EMAIL"));
        }
        keys.into_iter()
            .map(|key| {
                let mut update = Update::builder()
                    .table_name(self.table())
                    .set_key(Some(key))
                    .condition_expression("attribute_exists(pk)");
                let mut sets = Vec::new();
                for (name, value) in conversion_attributes(conversion) {
                    sets.push(format!("{name} = :{name}"));
                    update = update.expression_attribute_values(format!(":{name}"), value);
                }
                let mut expression = format!("SET {}", sets.join(", "));
                if conversion.is_none() {
                    expression.push_str(" REMOVE converted_on");
                }
                let update = update
                    .update_expression(expression)
                    .build()
                    .map_err(corrupt)?;
                Ok(TransactWriteItem::builder().update(update).build())
            })
            .collect()
    }
}
