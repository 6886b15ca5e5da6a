//! Scores and email drafts: the effects of a processed event, applied exactly once.

use crate::db::{instant, millis};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
pub use domain::api::ScoreChange;
use domain::{
    Band, ClientId, DraftText, EmailId, EmailKind, EmailStatus, EngagementScore, EventId, StylistId,
};
use rusqlite::{Connection, OptionalExtension, params};

/// A draft a writer produced, ready to be stored for review.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDraft {
    pub kind: EmailKind,
    pub text: DraftText,
    /// `template` or the model id of the LLM that wrote it.
    pub writer: String,
    /// Why the policy asked for it, in words a stylist reads.
    pub reason: String,
    /// Tokens and cost when an LLM wrote it.
    pub usage: Option<DraftUsage>,
}

/// What writing a draft cost, when an LLM wrote it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DraftUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub cost: Option<f64>,
}

/// A score to store with the factors that explain it, already written out as they are
/// stored (JSON, each factor with its sentence): the processor renders them, so the
/// writer, which every write waits for, only copies them.
#[derive(Debug, Clone, PartialEq)]
pub struct NewScore {
    pub engagement: EngagementScore,
    pub factors_json: String,
}

impl NewScore {
    pub fn new(score: EngagementScore) -> Result<Self> {
        let factors_json = serde_json::to_string(&score.factors)
            .map_err(|e| StoreError::Corrupt(format!("score factors: {e}")))?;
        Ok(Self {
            engagement: score,
            factors_json,
        })
    }
}

impl std::ops::Deref for NewScore {
    type Target = EngagementScore;

    fn deref(&self) -> &EngagementScore {
        &self.engagement
    }
}

/// The effect of one event on a client, recorded exactly once.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    pub event_id: EventId,
    /// When the change behind the event was recorded: the start of its journey.
    pub event_at: DateTime<Utc>,
    pub client: ClientId,
    pub stylist: StylistId,
    /// The client's new score (events that change the client).
    pub score: Option<NewScore>,
    pub draft: Option<NewDraft>,
    /// New wording for a pending email (a stylist's redraft request).
    pub redraft: Option<(EmailId, NewDraft)>,
    /// What happened, for the client's timeline (stores without an event log keep it with
    /// the score change).
    pub event_text: Option<String>,
}

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

/// What the email processor reads before applying an event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventContext {
    /// The event's effect is already recorded; nothing else was read.
    pub already_applied: bool,
    pub client: Option<domain::Client>,
    /// The name of the client's stylist, who signs the email.
    pub stylist_name: Option<String>,
    /// The client's band before this event, if it was ever scored.
    pub previous_band: Option<Band>,
    /// A draft for this client awaits review.
    pub draft_pending: bool,
    /// When the newest draft for this client was created.
    pub last_draft_at: Option<DateTime<Utc>>,
}

fn event_context(conn: &Connection, event_id: &EventId, client: &ClientId) -> Result<EventContext> {
    let nothing = |already_applied| EventContext {
        already_applied,
        client: None,
        stylist_name: None,
        previous_band: None,
        draft_pending: false,
        last_draft_at: None,
    };
    let already_applied = conn
        .prepare_cached("SELECT 1 FROM processed_events WHERE event_id = ?1")?
        .exists([event_id.as_str()])?;
    if already_applied {
        return Ok(nothing(true));
    }
    let Some(client) = crate::clients::client_by_id(conn, client)? else {
        return Ok(nothing(false));
    };
    let stylist_name: Option<String> = conn
        .prepare_cached("SELECT name FROM stylists WHERE id = ?1")?
        .query_row([client.stylist_id.as_str()], |row| row.get(0))
        .optional()?;
    let previous_band: Option<String> = conn
        .prepare_cached(
            "SELECT band FROM score_changes WHERE client_id = ?1 ORDER BY id DESC LIMIT 1",
        )?
        .query_row([client.id.as_str()], |row| row.get(0))
        .optional()?;
    let (pending, last): (bool, Option<i64>) = conn
        .prepare_cached("SELECT COALESCE(MAX(status = 'drafted'), 0), MAX(created_at) FROM emails WHERE client_id = ?1")?
        .query_row([client.id.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(EventContext {
        already_applied,
        client: Some(client),
        stylist_name,
        previous_band: previous_band
            .map(|b| Band::parse(&b).ok_or_else(|| StoreError::Corrupt(format!("band {b}"))))
            .transpose()?,
        draft_pending: pending,
        last_draft_at: last.map(instant).transpose()?,
    })
}

fn apply_effect(conn: &Connection, effect: &Effect, now: DateTime<Utc>) -> Result<Outcome> {
    let first_time = conn
        .prepare_cached("INSERT INTO processed_events (event_id, processed_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING")?
        .execute(params![effect.event_id.as_str(), millis(now)])?
        == 1;
    if !first_time {
        return Ok(Outcome::AlreadyApplied);
    }
    if let Some((email, draft)) = &effect.redraft {
        let before: Option<(String, String, i64)> = conn
            .prepare_cached("SELECT stylist_id, writer, created_at FROM emails WHERE id = ?1 AND status = 'drafted'")?
            .query_row([email.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let rewritten = conn
            .prepare_cached(
                "UPDATE emails SET subject = ?2, body_text = ?3, body_html = ?4, writer = ?5, prompt_tokens = ?6,
                        completion_tokens = ?7, cost_usd = CASE WHEN ?8 IS NULL THEN cost_usd ELSE COALESCE(cost_usd, 0) + ?8 END,
                        updated_at = ?9, ai_subject = NULL, ai_body_text = NULL
                 WHERE id = ?1 AND status = 'drafted'",
            )?
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
            ])?;
        if rewritten == 0 {
            tracing::info!(email_id = %email, "redraft dropped: the email is no longer awaiting review");
        } else {
            crate::review::log_review(conn, email, "redrafted", &draft.writer, None, now)?;
            if let Some((stylist, old_writer, created)) = before {
                let cost = draft.usage.and_then(|u| u.cost).unwrap_or(0.0);
                crate::views::redrafted(
                    conn,
                    &stylist,
                    &old_writer,
                    &draft.writer,
                    cost,
                    instant(created)?,
                )?;
            }
        }
    }
    let Some(score) = &effect.score else {
        return Ok(Outcome::Applied);
    };
    let factors = score.factors_json.as_str();
    conn.prepare_cached(
        "INSERT INTO score_changes (client_id, event_id, score, band, factors, scored_at, event_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![effect.client.as_str(), effect.event_id.as_str(), score.score, score.band.as_str(), factors, millis(now), millis(effect.event_at)])?;
    let (stylist, old_band): (String, Option<String>) = conn
        .prepare_cached("SELECT stylist_id, band FROM clients WHERE id = ?1")?
        .query_row([effect.client.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?;
    conn.prepare_cached("UPDATE clients SET score = ?2, band = ?3 WHERE id = ?1")?
        .execute(params![
            effect.client.as_str(),
            score.score,
            score.band.as_str()
        ])?;
    crate::views::band_changed(
        conn,
        &stylist,
        old_band.as_deref(),
        score.band.as_str(),
        now,
    )?;
    // The policy decided on what it read; two workers (or two events of one client in one
    // batch) may have decided at once. The writer is the arbiter: never a second pending draft.
    let draft = match &effect.draft {
        Some(draft) => {
            let pending = conn
                .prepare_cached("SELECT 1 FROM emails WHERE client_id = ?1 AND status = 'drafted'")?
                .exists([effect.client.as_str()])?;
            if pending {
                tracing::info!(client_id = %effect.client, event_id = %effect.event_id, "draft dropped: another draft already awaits review");
                None
            } else {
                Some(draft)
            }
        }
        None => None,
    };
    if let Some(draft) = draft {
        conn.prepare_cached(
            "INSERT INTO emails (id, client_id, stylist_id, kind, subject, body_text, body_html, status, writer, event_id, score, created_at, updated_at, reason, prompt_tokens, completion_tokens, cost_usd)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14, ?15, ?16)",
        )?
        .execute(params![
            uuid::Uuid::now_v7().to_string(),
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
        ])?;
        crate::views::drafted(
            conn,
            effect.stylist.as_str(),
            &draft.writer,
            draft.usage.and_then(|u| u.cost).unwrap_or(0.0),
            now,
        )?;
    }
    Ok(Outcome::Applied)
}

/// What recording an event's effect did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// The event had been processed before; nothing was written.
    AlreadyApplied,
}

impl Store {
    /// The latest score of a client, if it has been scored.
    pub async fn latest_score(&self, client: ClientId) -> Result<Option<EngagementScore>> {
        self.read(move |conn| {
            let row: Option<(u8, String, String)> = conn
                .prepare_cached("SELECT score, band, factors FROM score_changes WHERE client_id = ?1 ORDER BY id DESC LIMIT 1")?
                .query_row([client.as_str()], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .optional()?;
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
            let mut stmt = conn.prepare_cached(
                "SELECT score, band, factors, event_id, scored_at FROM score_changes
                 WHERE client_id = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![client.as_str(), limit], |row| {
                Ok((
                    row.get::<_, u8>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            })?;
            rows.map(|row| {
                let (score, band, factors, event_id, scored_at) = row?;
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
            )?;
            let rows = stmt.query_map([millis(since)], |row| row.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// The kind of email `email`, if it exists.
    pub async fn email_kind(&self, email: EmailId) -> Result<Option<EmailKind>> {
        self.read(move |conn| {
            let kind: Option<String> = conn
                .prepare_cached("SELECT kind FROM emails WHERE id = ?1")?
                .query_row([email.as_str()], |row| row.get(0))
                .optional()?;
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
                let mut delete = conn.prepare_cached("DELETE FROM queue_messages WHERE id = ?1")?;
                for item in &handled {
                    if let Some(effect) = &item.effect {
                        match apply_effect(conn, effect, now)? {
                            Outcome::Applied => settled.applied += 1,
                            Outcome::AlreadyApplied => settled.already_applied += 1,
                        }
                    } else {
                        settled.already_applied += 1;
                    }
                    delete.execute([item.message_id])?;
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
