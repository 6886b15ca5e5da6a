//! Scores and email drafts: the effects of a processed event, applied exactly once.

use crate::db::{instant, millis};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use domain::views::EmailSummary;
use domain::{
    Band, ClientId, DraftText, EmailId, EmailKind, EmailStatus, EngagementScore, EventId, StylistId,
};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

/// A draft a writer produced, ready to be stored for review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDraft {
    pub kind: EmailKind,
    pub text: DraftText,
    /// `template` or the model id of the LLM that wrote it.
    pub writer: String,
    /// Why the policy asked for it, in words a stylist reads.
    pub reason: String,
}

/// One entry of a client's score history: the score, the factors that explain it and the
/// event that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScoreChange {
    pub score: u8,
    pub band: Band,
    /// The factors as stored, each with the sentence it had when the score was computed.
    pub factors: serde_json::Value,
    pub event_id: EventId,
    pub scored_at: DateTime<Utc>,
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

    /// When the latest draft for this client was created, whatever became of it.
    pub async fn last_draft_at(&self, client: ClientId) -> Result<Option<DateTime<Utc>>> {
        self.read(move |conn| {
            let at: Option<i64> = conn
                .prepare_cached("SELECT MAX(created_at) FROM emails WHERE client_id = ?1")?
                .query_row([client.as_str()], |row| row.get(0))?;
            at.map(instant).transpose()
        })
        .await
    }

    /// True once the effect of `event_id` has been recorded.
    pub async fn is_event_processed(&self, event_id: EventId) -> Result<bool> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT 1 FROM processed_events WHERE event_id = ?1")?
                .exists([event_id.as_str()])?)
        })
        .await
    }

    /// True while a draft for this client awaits review.
    pub async fn has_pending_draft(&self, client: ClientId) -> Result<bool> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT 1 FROM emails WHERE client_id = ?1 AND status = 'drafted'")?
                .exists([client.as_str()])?)
        })
        .await
    }

    /// Applies the effect of event `event_id` on a client: the new score, and a draft if the
    /// policy asked for one. All or nothing, and at most once per event id.
    pub async fn record_outcome(
        &self,
        event_id: EventId,
        client: ClientId,
        stylist: StylistId,
        score: EngagementScore,
        draft: Option<NewDraft>,
        now: DateTime<Utc>,
    ) -> Result<Outcome> {
        self.write(move |tx| {
            let first_time = tx.execute(
                "INSERT INTO processed_events (event_id, processed_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![event_id.as_str(), millis(now)],
            )? == 1;
            if !first_time {
                return Ok(Outcome::AlreadyApplied);
            }
            let factors = serde_json::to_string(&score.factors).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            tx.execute(
                "INSERT INTO score_changes (client_id, event_id, score, band, factors, scored_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![client.as_str(), event_id.as_str(), score.score, score.band.as_str(), factors, millis(now)],
            )?;
            tx.execute(
                "UPDATE clients SET score = ?2, band = ?3 WHERE id = ?1",
                params![client.as_str(), score.score, score.band.as_str()],
            )?;
            if let Some(draft) = draft {
                tx.execute(
                    "INSERT INTO emails (id, client_id, stylist_id, kind, subject, body_text, body_html, status, writer, event_id, score, created_at, updated_at, reason)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13)",
                    params![
                        uuid::Uuid::now_v7().to_string(),
                        client.as_str(),
                        stylist.as_str(),
                        draft.kind.as_str(),
                        draft.text.subject,
                        draft.text.body_text,
                        draft.text.body_html(),
                        EmailStatus::Drafted.as_str(),
                        draft.writer,
                        event_id.as_str(),
                        score.score,
                        millis(now),
                        draft.reason,
                    ],
                )?;
            }
            Ok(Outcome::Applied)
        })
        .await
    }

    /// The newest emails first, with client and stylist names.
    pub async fn list_emails(&self, limit: u32) -> Result<Vec<EmailSummary>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT e.id, e.client_id, c.name, s.name, e.kind, e.subject, e.status, e.writer, e.created_at
                 FROM emails e JOIN clients c ON c.id = e.client_id JOIN stylists s ON s.id = e.stylist_id
                 ORDER BY e.created_at DESC, e.id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, String>(7)?,
                    row.get::<_, i64>(8)?,
                ))
            })?;
            rows.map(|row| {
                let (id, client_id, client_name, stylist_name, kind, subject, status, writer, created_at) = row?;
                Ok(EmailSummary {
                    id: EmailId::new(id),
                    client_id: ClientId::new(client_id),
                    client_name,
                    stylist_name,
                    kind: EmailKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("email kind {kind}")))?,
                    subject,
                    status: EmailStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("email status {status}")))?,
                    writer,
                    created_at: instant(created_at)?,
                })
            })
            .collect()
        })
        .await
    }
}
