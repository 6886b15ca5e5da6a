//! Scores and email drafts: the effects of a processed event, applied exactly once.

use crate::db::{instant, millis};
use crate::db_error;
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
pub use domain::api::ScoreChange;
use domain::{Band, ClientId, EmailId, EmailKind, EmailStatus, EngagementScore, EventId};
use ports::{Effect, EventContext, Outcome, RECENT_DECISIONS};
use rusqlite::{Connection, OptionalExtension, params};

/// A message handled successfully: delete it, recording its effect if it has one (a
/// message whose event was applied before has none).
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    pub message_id: i64,
    pub effect: Option<Effect>,
}

/// A message whose handling failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message_id: i64,
    pub error: String,
    /// When it may be received again.
    pub retry_after: chrono::Duration,
    /// Receives after which it moves to the dead-letter queue.
    pub max_receives: u32,
}

/// What settling a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    pub applied: u32,
    pub already_applied: u32,
    pub dead_lettered: Vec<i64>,
}

fn event_context(conn: &Connection, event_id: &EventId, client: &ClientId) -> Result<EventContext> {
    let nothing = |already_applied| EventContext {
        already_applied,
        ..EventContext::default()
    };
    let already_applied = conn
        .prepare_cached("SELECT 1 FROM processed_events WHERE event_id = ?1")
        .map_err(db_error)?
        .exists([event_id.as_str()])
        .map_err(db_error)?;
    if already_applied {
        return Ok(nothing(true));
    }
    let Some(client) = crate::clients::client_by_id(conn, client)? else {
        return Ok(nothing(false));
    };
    let stylist_name: Option<String> = conn
        .prepare_cached("SELECT name FROM stylists WHERE id = ?1")
        .map_err(db_error)?
        .query_row([client.stylist_id.as_str()], |row| row.get(0))
        .optional()
        .map_err(db_error)?;
    let previous_band: Option<String> = conn
        .prepare_cached(
            "SELECT band FROM score_changes WHERE client_id = ?1 ORDER BY id DESC LIMIT 1",
        )
        .map_err(db_error)?
        .query_row([client.id.as_str()], |row| row.get(0))
        .optional()
        .map_err(db_error)?;
    let (pending, last, rejected): (bool, Option<i64>, Option<i64>) = conn
        .prepare_cached(
            "SELECT COALESCE(MAX(status = 'drafted'), 0), MAX(created_at),
                    MAX(CASE WHEN status = 'rejected' THEN reviewed_at END)
             FROM emails WHERE client_id = ?1",
        )
        .map_err(db_error)?
        .query_row([client.id.as_str()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .map_err(db_error)?;
    let band_since: Option<i64> = conn
        .prepare_cached("SELECT band_since FROM clients WHERE id = ?1")
        .map_err(db_error)?
        .query_row([client.id.as_str()], |row| row.get(0))
        .map_err(db_error)?;
    let decisions = crate::decisions::of_client(conn, &client.id, RECENT_DECISIONS)?;
    Ok(EventContext {
        already_applied,
        client: Some(client),
        stylist_name,
        previous_band: previous_band
            .map(|b| Band::parse(&b).ok_or_else(|| StoreError::Corrupt(format!("band {b}"))))
            .transpose()?,
        draft_pending: pending,
        last_draft_at: last.map(instant).transpose()?,
        last_rejected_at: rejected.map(instant).transpose()?,
        band_since: band_since.map(instant).transpose()?,
        decisions,
    })
}

fn apply_effect(conn: &Connection, effect: &Effect, now: DateTime<Utc>) -> Result<Outcome> {
    let first_time = conn
        .prepare_cached("INSERT INTO processed_events (event_id, processed_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING").map_err(db_error)?
        .execute(params![effect.event_id.as_str(), millis(now)]).map_err(db_error)?
        == 1;
    if !first_time {
        return Ok(Outcome::AlreadyApplied);
    }
    if let Some((email, draft)) = &effect.redraft {
        let before: Option<(String, String, i64)> = conn
            .prepare_cached("SELECT stylist_id, writer, created_at FROM emails WHERE id = ?1 AND status = 'drafted'").map_err(db_error)?
            .query_row([email.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional().map_err(db_error)?;
        let rewritten = conn
            .prepare_cached(
                "UPDATE emails SET subject = ?2, body_text = ?3, body_html = ?4, writer = ?5, prompt_tokens = ?6,
                        completion_tokens = ?7, cost_usd = CASE WHEN ?8 IS NULL THEN cost_usd ELSE COALESCE(cost_usd, 0) + ?8 END,
                        updated_at = ?9, ai_subject = NULL, ai_body_text = NULL
                 WHERE id = ?1 AND status = 'drafted'",
            ).map_err(db_error)?
            .execute(params![
                email.as_str(),
                draft.text.subject,
                draft.text.body_text,
                draft.text.body_html(),
                draft.writer,
                draft.usage.map(|u| u.prompt_tokens),
                draft.usage.map(|u| u.completion_tokens),
                draft.usage.and_then(|u| u.cost),
                millis(now),
            ]).map_err(db_error)?;
        if rewritten == 0 {
            tracing::info!(email_id = %email, "redraft dropped: the email is no longer awaiting review");
        } else {
            crate::review::log_review(conn, email, "redrafted", &draft.writer, None, now)
                .map_err(db_error)?;
            if let Some((stylist, old_writer, created)) = before {
                let cost = draft.usage.and_then(|u| u.cost).unwrap_or(0.0);
                crate::views::redrafted(
                    conn,
                    &stylist,
                    &old_writer,
                    &draft.writer,
                    cost,
                    instant(created)?,
                )
                .map_err(db_error)?;
            }
        }
    }
    let Some(score) = &effect.score else {
        return Ok(Outcome::Applied);
    };
    let factors = score.factors_json.as_str();
    conn.prepare_cached(
        "INSERT INTO score_changes (client_id, event_id, score, band, factors, scored_at, event_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    ).map_err(db_error)?
    .execute(params![effect.client.as_str(), effect.event_id.as_str(), score.score, score.band.as_str(), factors, millis(now), millis(effect.event_at)]).map_err(db_error)?;
    let (stylist, old_band): (String, Option<String>) = conn
        .prepare_cached("SELECT stylist_id, band FROM clients WHERE id = ?1")
        .map_err(db_error)?
        .query_row([effect.client.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db_error)?;
    // The band's start: kept while the band stays, moved when it changes.
    conn.prepare_cached(
        "UPDATE clients SET score = ?2, band = ?3,
            band_since = CASE WHEN band IS ?3 AND band_since IS NOT NULL THEN band_since ELSE ?4 END
         WHERE id = ?1",
    )
    .map_err(db_error)?
    .execute(params![
        effect.client.as_str(),
        score.score,
        score.band.as_str(),
        millis(now)
    ])
    .map_err(db_error)?;
    crate::views::band_changed(
        conn,
        &stylist,
        old_band.as_deref(),
        score.band.as_str(),
        now,
    )
    .map_err(db_error)?;
    // The policy decided on what it read; two workers (or two events of one client in one
    // batch) may have decided at once. The writer is the arbiter: never a second pending draft.
    let draft = match &effect.draft {
        Some(draft) => {
            let pending = conn
                .prepare_cached("SELECT 1 FROM emails WHERE client_id = ?1 AND status = 'drafted'")
                .map_err(db_error)?
                .exists([effect.client.as_str()])
                .map_err(db_error)?;
            if pending {
                tracing::info!(client_id = %effect.client, event_id = %effect.event_id, "draft dropped: another draft already awaits review");
                None
            } else {
                Some(draft)
            }
        }
        None => None,
    };
    let email_id = draft.map(|_| uuid::Uuid::now_v7().to_string());
    if let Some(decision) = &effect.decision {
        let decision = decision
            .clone()
            .with_draft(email_id.as_deref().map(EmailId::new));
        crate::decisions::record(conn, &decision)?;
    }
    for (touch, conversion) in &effect.conversions {
        crate::decisions::convert(conn, &touch.event_id, *conversion)?;
    }
    if let (Some(draft), Some(email_id)) = (draft, email_id) {
        conn.prepare_cached(
            "INSERT INTO emails (id, client_id, stylist_id, kind, subject, body_text, body_html, status, writer, event_id, score, created_at, updated_at, reason, prompt_tokens, completion_tokens, cost_usd, prompt_version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14, ?15, ?16, ?17)",
        ).map_err(db_error)?
        .execute(params![
            email_id,
            effect.client.as_str(),
            effect.stylist.as_str(),
            draft.kind.as_str(),
            draft.text.subject,
            draft.text.body_text,
            draft.text.body_html(),
            EmailStatus::Drafted.as_str(),
            draft.writer,
            effect.event_id.as_str(),
            score.score,
            millis(now),
            draft.reason,
            draft.usage.map(|u| u.prompt_tokens),
            draft.usage.map(|u| u.completion_tokens),
            draft.usage.and_then(|u| u.cost),
            draft.prompt_version,
        ]).map_err(db_error)?;
        crate::views::drafted(
            conn,
            effect.stylist.as_str(),
            &draft.writer,
            draft.usage.and_then(|u| u.cost).unwrap_or(0.0),
            now,
        )
        .map_err(db_error)?;
    }
    Ok(Outcome::Applied)
}

impl Store {
    /// The latest score of a client, if it has been scored.
    pub async fn latest_score(&self, client: ClientId) -> Result<Option<EngagementScore>> {
        self.read(move |conn| {
            let row: Option<(u8, String, String)> = conn
                .prepare_cached("SELECT score, band, factors FROM score_changes WHERE client_id = ?1 ORDER BY id DESC LIMIT 1").map_err(db_error)?
                .query_row([client.as_str()], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .optional().map_err(db_error)?;
            row.map(|(score, band, factors)| {
                Ok(EngagementScore {
                    score,
                    band: Band::parse(&band).ok_or_else(|| StoreError::Corrupt(format!("band {band}")))?,
                    factors: serde_json::from_str(&factors).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                })
            })
            .transpose()
        })
        .await
    }

    /// A client's scores, newest first.
    pub async fn score_history(&self, client: ClientId, limit: u32) -> Result<Vec<ScoreChange>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT score, band, factors, event_id, scored_at FROM score_changes
                 WHERE client_id = ?1 ORDER BY id DESC LIMIT ?2",
                )
                .map_err(db_error)?;
            let rows = stmt
                .query_map(params![client.as_str(), limit], |row| {
                    Ok((
                        row.get::<_, u8>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, i64>(4)?,
                    ))
                })
                .map_err(db_error)?;
            rows.map(|row| {
                let (score, band, factors, event_id, scored_at) = row.map_err(db_error)?;
                Ok(ScoreChange {
                    score,
                    band: Band::parse(&band)
                        .ok_or_else(|| StoreError::Corrupt(format!("band {band}")))?,
                    factors: serde_json::from_str(&factors)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    event_id: EventId::new(event_id),
                    scored_at: instant(scored_at)?,
                })
            })
            .collect()
        })
        .await
    }

    /// Applies one event's effect: the new score, and a draft if the policy asked for one.
    /// All or nothing, and at most once per event id.
    pub async fn record_outcome(&self, effect: Effect, now: DateTime<Utc>) -> Result<Outcome> {
        self.write(move |conn| apply_effect(conn, &effect, now))
            .await
    }

    /// What applying each `(event, client)` needs to know, read in one go for a whole batch:
    /// whether it was applied already, the client, its band before, its drafts, and its
    /// stylist's name. In the order asked.
    pub async fn event_contexts(
        &self,
        wanted: Vec<(EventId, ClientId)>,
    ) -> Result<Vec<EventContext>> {
        self.read(move |conn| {
            wanted
                .iter()
                .map(|(event_id, client)| event_context(conn, event_id, client))
                .collect()
        })
        .await
    }

    /// Milliseconds from each change being recorded to its score and policy decision being
    /// stored, for the score changes stored at or after `since`, in storing order: the
    /// pipeline's end-to-end latency.
    pub async fn decision_latencies_ms(&self, since: DateTime<Utc>) -> Result<Vec<i64>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT scored_at - event_at FROM score_changes WHERE scored_at >= ?1 AND event_at IS NOT NULL ORDER BY id",
            ).map_err(db_error)?;
            let rows = stmt.query_map([millis(since)], |row| row.get(0)).map_err(db_error)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db_error)
        })
        .await
    }

    /// The kind of email `email`, if it exists.
    pub async fn email_kind(&self, email: EmailId) -> Result<Option<EmailKind>> {
        self.read(move |conn| {
            let kind: Option<String> = conn
                .prepare_cached("SELECT kind FROM emails WHERE id = ?1")
                .map_err(db_error)?
                .query_row([email.as_str()], |row| row.get(0))
                .optional()
                .map_err(db_error)?;
            kind.map(|k| {
                EmailKind::parse(&k).ok_or_else(|| StoreError::Corrupt(format!("email kind {k}")))
            })
            .transpose()
        })
        .await
    }

    /// Settles a batch of received messages in one transaction: records the effect of each
    /// handled message (once per event id) and deletes it; makes each failed one visible
    /// again after its back-off, or dead-letters it with its error once it has been received
    /// too often. Nothing is half-settled: the batch commits as a whole.
    pub async fn settle_batch(
        &self,
        handled: Vec<Handled>,
        failed: Vec<Failure>,
        now: DateTime<Utc>,
    ) -> Result<Settled> {
        let (settled, _) = self.settle_and_receive(handled, failed, None, now).await?;
        Ok(settled)
    }

    /// [`Store::settle_batch`], then, in the same transaction, receives the next batch as
    /// [`Store::receive`] would: a worker that keeps busy commits once per batch instead of
    /// twice. With `next` `None` it only settles.
    pub async fn settle_and_receive(
        &self,
        handled: Vec<Handled>,
        failed: Vec<Failure>,
        next: Option<crate::queue::Receive>,
        now: DateTime<Utc>,
    ) -> Result<(Settled, Vec<crate::ReceivedMessage>)> {
        let retried = failed.len();
        let (settled, received) = self
            .write(move |conn| {
                let mut settled = Settled::default();
                let mut delete = conn
                    .prepare_cached("DELETE FROM queue_messages WHERE id = ?1")
                    .map_err(db_error)?;
                for item in &handled {
                    if let Some(effect) = &item.effect {
                        match apply_effect(conn, effect, now)? {
                            Outcome::Applied => settled.applied += 1,
                            Outcome::AlreadyApplied => settled.already_applied += 1,
                        }
                    } else {
                        settled.already_applied += 1;
                    }
                    delete.execute([item.message_id]).map_err(db_error)?;
                }
                for failure in &failed {
                    if crate::queue::release(conn, failure, now)? {
                        settled.dead_lettered.push(failure.message_id);
                    }
                }
                let received = match next {
                    Some(next) => crate::queue::receive_in(conn, next, now)?,
                    None => Vec::new(),
                };
                Ok::<_, StoreError>((settled, received))
            })
            .await?;
        if retried > settled.dead_lettered.len() {
            self.inner.signals.queue_filled.notify_waiters();
        }
        Ok((settled, received))
    }
}
