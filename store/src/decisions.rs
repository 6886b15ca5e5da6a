//! The policy's decisions about each client — drafted, held out, or skipped with the reason —
//! and the conversions of the touches among them, kept with the outcome counters in the
//! same transaction as the event that made them.

use crate::db::{instant, millis};
use crate::db_error;
use crate::{Result, Store, StoreError};
use domain::outcomes::{Conversion, Decision, DecisionOutcome, TouchCounts, TouchGroup};
use domain::view_facts::ViewFact;
use domain::{ClientId, EmailId, EmailKind, EventId, StylistId};
use rusqlite::{Connection, OptionalExtension, Row, params};

const COLUMNS: &str =
    "event_id, client_id, stylist_id, kind, outcome, reason, reason_code, decided_at, email_id,
     writer, prompt_version, expected_purchases, converted_on, purchases, value_cents";

fn decision_from_row(row: &Row<'_>) -> rusqlite::Result<Result<Decision>> {
    let kind: String = row.get(3)?;
    let outcome: String = row.get(4)?;
    let decided_at: i64 = row.get(7)?;
    let converted_on: Option<String> = row.get(12)?;
    let (purchases, value_cents): (u32, i64) = (row.get(13)?, row.get(14)?);
    let parts = (
        row.get::<_, String>(0)?,
        row.get::<_, String>(1)?,
        row.get::<_, String>(2)?,
        row.get::<_, String>(5)?,
        row.get::<_, String>(6)?,
        row.get::<_, Option<String>>(8)?,
        row.get::<_, Option<String>>(9)?,
        row.get::<_, Option<String>>(10)?,
        row.get::<_, Option<f64>>(11)?,
    );
    Ok((|| {
        let (event, client, stylist, reason, reason_code, email, writer, prompt, expected) = parts;
        let corrupt = |what: &str| StoreError::Corrupt(format!("decision {event}: {what}"));
        let conversion = converted_on
            .map(|on| {
                Ok::<_, StoreError>(Conversion {
                    on: on.parse().map_err(|_| corrupt("conversion day"))?,
                    purchases,
                    value_cents,
                })
            })
            .transpose()?;
        Ok(Decision {
            kind: EmailKind::parse(&kind).ok_or_else(|| corrupt("kind"))?,
            outcome: DecisionOutcome::parse(&outcome).ok_or_else(|| corrupt("outcome"))?,
            event_id: EventId::new(event.clone()),
            client_id: ClientId::new(client),
            stylist_id: StylistId::new(stylist),
            reason,
            reason_code,
            decided_at: instant(decided_at)?,
            email_id: email.map(EmailId::new),
            writer,
            prompt_version: prompt,
            expected_purchases: expected,
            conversion,
        })
    })())
}

/// A client's latest decisions, newest first.
pub(crate) fn of_client(conn: &Connection, client: &ClientId, limit: u32) -> Result<Vec<Decision>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM decisions WHERE client_id = ?1 ORDER BY decided_at DESC, event_id DESC LIMIT ?2"
        ))
        .map_err(db_error)?;
    let rows = stmt
        .query_map(params![client.as_str(), limit], decision_from_row)
        .map_err(db_error)?;
    rows.map(|row| row.map_err(db_error)?).collect()
}

/// The decision that drafted `email`, if any.
pub(crate) fn of_email(conn: &Connection, email: &EmailId) -> Result<Option<Decision>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM decisions WHERE email_id = ?1"
    ))
    .map_err(db_error)?
    .query_row([email.as_str()], decision_from_row)
    .optional()
    .map_err(db_error)?
    .transpose()
}

/// Keeps a decision and, for a touch, counts it.
pub(crate) fn record(conn: &Connection, decision: &Decision) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO decisions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, NULL, 0, 0)
         ON CONFLICT (event_id) DO NOTHING"
    ))
    .map_err(db_error)?
    .execute(params![
        decision.event_id.as_str(),
        decision.client_id.as_str(),
        decision.stylist_id.as_str(),
        decision.kind.as_str(),
        decision.outcome.as_str(),
        decision.reason,
        decision.reason_code,
        millis(decision.decided_at),
        decision.email_id.as_ref().map(EmailId::as_str),
        decision.writer,
        decision.prompt_version,
        decision.expected_purchases,
    ])
    .map_err(db_error)?;
    if let Some(group) = TouchGroup::of(decision) {
        crate::views::apply(
            conn,
            &ViewFact::Touched {
                group,
                expected_purchases: decision.expected_purchases,
            },
        )
        .map_err(db_error)?;
    }
    Ok(())
}

/// Gives a touch its new conversion, and moves the counters by the difference.
pub(crate) fn convert(
    conn: &Connection,
    touch: &EventId,
    conversion: Option<Conversion>,
) -> Result<()> {
    let Some(decision) = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM decisions WHERE event_id = ?1"
        ))
        .map_err(db_error)?
        .query_row([touch.as_str()], decision_from_row)
        .optional()
        .map_err(db_error)?
        .transpose()?
    else {
        return Ok(());
    };
    let Some(group) = TouchGroup::of(&decision) else {
        return Ok(());
    };
    if decision.conversion == conversion {
        return Ok(());
    }
    conn.prepare_cached(
        "UPDATE decisions SET converted_on = ?2, purchases = ?3, value_cents = ?4 WHERE event_id = ?1",
    )
    .map_err(db_error)?
    .execute(params![
        touch.as_str(),
        conversion.map(|c| c.on.to_string()),
        conversion.map_or(0, |c| c.purchases),
        conversion.map_or(0, |c| c.value_cents),
    ])
    .map_err(db_error)?;
    crate::views::apply(
        conn,
        &ViewFact::ConversionChanged {
            group,
            has_expectation: decision.expected_purchases.is_some(),
            from: decision.conversion,
            to: conversion,
        },
    )
    .map_err(db_error)
}

/// The outcome counters, every group.
pub(crate) fn touch_counts(conn: &Connection) -> Result<Vec<(TouchGroup, TouchCounts)>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT kind, outcome, writer, prompt_version, touches, converted, purchases, value_cents,
                    expected_touches, expected_purchases, purchases_with_expectation FROM view_touches",
        )
        .map_err(db_error)?;
    let mut rows = stmt.query([]).map_err(db_error)?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(db_error)? {
        let kind: String = row.get(0).map_err(db_error)?;
        let outcome: String = row.get(1).map_err(db_error)?;
        let corrupt = || StoreError::Corrupt(format!("outcome counters {kind}/{outcome}"));
        found.push((
            TouchGroup {
                kind: EmailKind::parse(&kind).ok_or_else(corrupt)?,
                outcome: DecisionOutcome::parse(&outcome).ok_or_else(corrupt)?,
                writer: row.get(2).map_err(db_error)?,
                prompt_version: row.get(3).map_err(db_error)?,
            },
            TouchCounts {
                touches: row.get(4).map_err(db_error)?,
                converted: row.get(5).map_err(db_error)?,
                purchases: row.get(6).map_err(db_error)?,
                value_cents: row.get(7).map_err(db_error)?,
                expected_touches: row.get(8).map_err(db_error)?,
                expected_purchases: row.get(9).map_err(db_error)?,
                purchases_with_expectation: row.get(10).map_err(db_error)?,
            },
        ));
    }
    Ok(found)
}

/// Counts every kept touch and conversion again (the views' rebuild).
pub(crate) fn recount(conn: &Connection, tick: &mut dyn FnMut()) -> Result<()> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM decisions ORDER BY decided_at"
        ))
        .map_err(db_error)?;
    let mut rows = stmt.query([]).map_err(db_error)?;
    while let Some(row) = rows.next().map_err(db_error)? {
        let decision = decision_from_row(row).map_err(db_error)??;
        if let Some(group) = TouchGroup::of(&decision) {
            let has_expectation = decision.expected_purchases.is_some();
            crate::views::apply(
                conn,
                &ViewFact::Touched {
                    group: group.clone(),
                    expected_purchases: decision.expected_purchases,
                },
            )
            .map_err(db_error)?;
            crate::views::apply(
                conn,
                &ViewFact::ConversionChanged {
                    group,
                    has_expectation,
                    from: None,
                    to: decision.conversion,
                },
            )
            .map_err(db_error)?;
        }
        tick();
    }
    Ok(())
}

impl Store {
    /// A client's decisions, newest first (the REST API's `…/decisions`).
    pub async fn decisions(&self, client: ClientId, limit: u32) -> Result<Vec<Decision>> {
        self.read(move |conn| of_client(conn, &client, limit)).await
    }

    /// The outcome counters of every group.
    pub async fn touch_counts(&self) -> Result<Vec<(TouchGroup, TouchCounts)>> {
        self.read(touch_counts).await
    }
}
