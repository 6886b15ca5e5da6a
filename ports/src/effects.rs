//! The effect of a processed event — a score, a draft, a redraft — as the email processor
//! hands it to [`Records::record_outcome`](crate::Records::record_outcome), and what it reads
//! first.

use crate::{Result, StoreError};
use chrono::{DateTime, Utc};
use domain::outcomes::{Conversion, Decision};
use domain::{Band, ClientId, DraftText, EmailId, EmailKind, EngagementScore, EventId, StylistId};

/// A draft a writer produced, ready to be stored for review.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDraft {
    pub kind: EmailKind,
    pub text: DraftText,
    /// `template` or the model id of the LLM that wrote it.
    pub writer: String,
    /// The template's or the LLM prompt's version.
    pub prompt_version: String,
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
    /// The policy's decision when a trigger fired, kept for the timeline and the outcomes
    /// (a drafted one goes with `draft`: the store fills in the draft's id, and keeps it
    /// as skipped, `draft_pending`, if it drops the draft).
    pub decision: Option<Decision>,
    /// Earlier decisions of the client (as read) whose conversion this event changes (a
    /// purchase converts the latest touch before it), with the new conversion.
    pub conversions: Vec<(Decision, Option<Conversion>)>,
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
    /// When a stylist last rejected a draft for this client.
    pub last_rejected_at: Option<DateTime<Utc>>,
    /// When the client entered its current band (the start of the episode), if recorded.
    pub band_since: Option<DateTime<Utc>>,
    /// The client's latest decisions, newest first, at most [`RECENT_DECISIONS`].
    pub decisions: Vec<Decision>,
}

/// How many of a client's latest decisions the email processor reads: enough for an
/// episode's attempts and a purchase's window.
pub const RECENT_DECISIONS: u32 = 20;

/// What recording an event's effect did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// The event had been processed before; nothing was written.
    AlreadyApplied,
}
