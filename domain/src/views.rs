//! Read models: what the UI and the API show about clients, stylists and emails.

use crate::client::{Client, ClientId, ClientStatus, StylistId};
use crate::email::{EmailId, EmailKind, EmailStatus};
use crate::score::Band;
use crate::validation::{FieldError, ValidationErrors};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A stylist as shown in pickers and tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stylist {
    pub id: StylistId,
    pub name: String,
}

/// One row of the clients list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientSummary {
    pub id: ClientId,
    pub name: String,
    pub email: String,
    pub stylist_id: StylistId,
    pub stylist_name: String,
    pub status: ClientStatus,
    /// `None` until the pipeline has scored the client.
    pub score: Option<u8>,
    pub band: Option<Band>,
    pub created_at: DateTime<Utc>,
    /// The last write to the record (a Fix, a purchase, feedback, an edit).
    pub last_activity_at: DateTime<Utc>,
}

/// One row of the email dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmailSummary {
    pub id: EmailId,
    pub client_id: ClientId,
    pub client_name: String,
    pub stylist_name: String,
    pub kind: EmailKind,
    pub subject: String,
    pub status: EmailStatus,
    /// `template` or the model id of the LLM that wrote it.
    pub writer: String,
    /// Tokens the LLM used, when an LLM wrote it.
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    pub created_at: DateTime<Utc>,
}

/// How the clients list is ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ClientSort {
    /// The most recently added first.
    #[default]
    Newest,
    /// The lowest score first: who needs attention. Clients not yet scored come first.
    ScoreLowest,
    ScoreHighest,
    /// The most recent activity first.
    RecentActivity,
}

impl ClientSort {
    pub const ALL: [Self; 4] = [
        Self::Newest,
        Self::ScoreLowest,
        Self::ScoreHighest,
        Self::RecentActivity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Newest => "newest",
            Self::ScoreLowest => "score_lowest",
            Self::ScoreHighest => "score_highest",
            Self::RecentActivity => "recent_activity",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Newest => "Newest first",
            Self::ScoreLowest => "Lowest score first",
            Self::ScoreHighest => "Highest score first",
            Self::RecentActivity => "Recent activity first",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|sort| sort.as_str() == raw.trim())
            .ok_or_else(|| {
                FieldError::new(
                    "sort",
                    "Sort must be newest, score_lowest, score_highest or recent_activity.",
                )
            })
    }
}

/// Which clients to list, and from where (a cursor from the previous page). The default
/// is everyone, first page, [`ClientQuery::DEFAULT_LIMIT`] rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientQuery {
    /// Part of a name or email address; empty for everyone.
    pub search: String,
    pub band: Option<Band>,
    pub status: Option<ClientStatus>,
    pub sort: ClientSort,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
    /// Rows per page, 1 to [`ClientQuery::MAX_LIMIT`].
    pub limit: u32,
}

impl Default for ClientQuery {
    fn default() -> Self {
        Self {
            search: String::new(),
            band: None,
            status: None,
            sort: ClientSort::default(),
            after: None,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

impl ClientQuery {
    pub const DEFAULT_LIMIT: u32 = 25;
    pub const MAX_LIMIT: u32 = 200;
    pub const MAX_SEARCH_CHARS: usize = 100;
    /// A search looks through at most this many matching clients, the most recently added
    /// (a few letters can match a tenth of a large book; sorting all of them would make
    /// every keystroke slow).
    pub const MAX_SEARCH_MATCHES: u32 = 2_000;

    /// A query from the raw strings of a form or a URL; empty strings mean "any".
    /// Errors name the field.
    pub fn parse(
        search: &str,
        band: &str,
        status: &str,
        sort: &str,
        after: &str,
        limit: Option<i64>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let search = search.trim();
        if search.chars().count() > Self::MAX_SEARCH_CHARS {
            errors.0.push(FieldError::new(
                "search",
                format!("Search for at most {} characters.", Self::MAX_SEARCH_CHARS),
            ));
        } else if search.chars().any(char::is_control) {
            // No name or address holds one, and a NUL ends the search index's query text.
            errors.0.push(FieldError::new(
                "search",
                "Search for letters, digits and punctuation only (no control characters).",
            ));
        }
        let band = match band.trim() {
            "" => None,
            raw => errors.collect(Band::parse(raw).ok_or_else(|| {
                FieldError::new("band", "Band must be thriving, steady, cooling or at_risk.")
            })),
        };
        let status = match status.trim() {
            "" => None,
            raw => errors.collect(ClientStatus::parse(raw)),
        };
        let sort = match sort.trim() {
            "" => Some(ClientSort::default()),
            raw => errors.collect(ClientSort::parse(raw)),
        };
        let limit = match limit {
            None => Some(Self::DEFAULT_LIMIT),
            Some(n) if (1..=i64::from(Self::MAX_LIMIT)).contains(&n) => Some(n as u32),
            Some(_) => errors.collect(Err(FieldError::new(
                "limit",
                format!("Limit must be between 1 and {}.", Self::MAX_LIMIT),
            ))),
        };
        let after = Some(after.trim())
            .filter(|a| !a.is_empty())
            .map(str::to_owned);
        match (sort, limit) {
            (Some(sort), Some(limit)) if errors.is_empty() => Ok(Self {
                search: search.to_owned(),
                band,
                status,
                sort,
                after,
                limit,
            }),
            _ => Err(errors),
        }
    }
}

/// One page of clients, and the cursor of the next page when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientPage {
    pub clients: Vec<ClientSummary>,
    pub next: Option<String>,
    /// More clients match the search than it looks through
    /// ([`ClientQuery::MAX_SEARCH_MATCHES`], the most recently added): the stylist should
    /// type more to narrow it.
    pub search_capped: bool,
}

/// One factor of a score as a stylist reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FactorLine {
    pub points: i32,
    /// The sentence, ending with the points ("Last Fix 94 days ago; …: -6").
    pub explanation: String,
}

/// A score with the factors that explain it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScoreView {
    pub score: u8,
    pub band: Band,
    pub factors: Vec<FactorLine>,
}

/// The repeat-buying model's view of a client (from the latest `engage model fit`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Outlook {
    /// Probability the client is still an active buyer.
    pub p_alive: f64,
    pub expected_purchases_90_days: f64,
}

/// One stored score, for the history chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScorePoint {
    pub score: u8,
    pub band: Band,
    pub at: DateTime<Utc>,
}

/// One line of a client's audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// `event`, `score` or `email`.
    pub kind: String,
    pub text: String,
    /// Who did it, when a person did.
    pub actor: Option<String>,
}

/// Everything the client page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientDetail {
    pub client: Client,
    pub stylist_name: String,
    /// The score as of now, computed from the record; `None` if it cannot be scored.
    pub score: Option<ScoreView>,
    pub outlook: Option<Outlook>,
    /// Stored scores, oldest first.
    pub history: Vec<ScorePoint>,
    /// Newest first; the policy's decisions among the rest.
    pub timeline: Vec<TimelineEntry>,
    pub emails: Vec<EmailSummary>,
    /// The policy's decisions, newest first: drafted, held out, or skipped with the reason,
    /// and what followed.
    #[serde(default)]
    pub decisions: Vec<crate::outcomes::Decision>,
}

/// `timeline` (newest first) with a `decision` entry for each decision, newest first,
/// kept to `limit` entries.
pub fn with_decisions(
    mut timeline: Vec<TimelineEntry>,
    decisions: &[crate::outcomes::Decision],
    limit: usize,
) -> Vec<TimelineEntry> {
    timeline.extend(decisions.iter().map(|d| TimelineEntry {
        at: d.decided_at,
        kind: "decision".into(),
        text: d.line(),
        actor: None,
    }));
    timeline.sort_by_key(|entry| std::cmp::Reverse(entry.at));
    timeline.truncate(limit);
    timeline
}

/// What approving a batch of drafts did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApproveReport {
    /// Emails approved and queued for sending: the sender delivers them, with retries,
    /// and each then shows as `sent` (or `failed` after the last retry, with the reason).
    pub queued: u32,
    /// How many of them wait for a scheduled time rather than going at once.
    #[serde(default)]
    pub scheduled: u32,
    /// The earliest scheduled time among them, if any is scheduled.
    #[serde(default)]
    pub first_send_at: Option<DateTime<Utc>>,
}

/// One recorded step in an email's review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewEntry {
    /// `edited`, `approved`, `sent`, `rejected`, `failed`, `redraft_requested`.
    pub action: String,
    pub actor: String,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// An email with its words, for preview and review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmailDetail {
    pub summary: EmailSummary,
    pub client_email: String,
    pub body_text: String,
    /// Why the policy asked for this email.
    pub reason: String,
    /// Whether a stylist changed the writer's words.
    pub edited: bool,
    pub reject_reason: Option<String>,
    /// Why the email was not sent, when it is `withdrawn`.
    pub withdrawn: Option<crate::consent::NoEmail>,
    /// Oldest first.
    pub reviews: Vec<ReviewEntry>,
    /// The purchases that followed within the attribution window, last touch.
    #[serde(default)]
    pub conversion: Option<crate::outcomes::Conversion>,
    /// When an approved email is scheduled to go out, if not at once.
    #[serde(default)]
    pub send_after: Option<DateTime<Utc>>,
}

/// A stored score in the client's timeline: "Score 42 (At risk)".
pub fn score_line(score: &str, band: &str) -> String {
    let band = Band::parse(band).map_or(band.to_owned(), |b| b.label().to_owned());
    format!("Score {score} ({band})")
}

/// An email's step (`action` with its `note`, done by `actor`) in the client's timeline.
pub fn email_step_line(action: &str, subject: &str, note: &str, actor: &str) -> String {
    let what = match action {
        "drafted" => format!("Draft written by {note}"),
        "edited" => "Draft edited".to_owned(),
        "approved" => "Email approved".to_owned(),
        "sent" => "Email sent".to_owned(),
        "failed" => format!("Sending failed: {note}"),
        "rejected" => format!("Draft rejected: {note}"),
        "withdrawn" => format!("Draft withdrawn: {note}"),
        "send_withdrawn" => format!("Not sent: {note}"),
        "resend_requested" => "Sending again".to_owned(),
        "redraft_requested" if note.is_empty() => "New draft requested".to_owned(),
        "redraft_requested" => format!("New draft requested: \"{note}\""),
        // The writer that rewrote it is the step's actor.
        "redrafted" => format!("Draft rewritten by {actor}"),
        other => other.to_owned(),
    };
    format!("{what} \u{2014} \u{201c}{subject}\u{201d}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_query_parses_from_form_strings_and_names_bad_fields() {
        let query =
            ClientQuery::parse(" ada ", "at_risk", "active", "score_lowest", "", None).unwrap();
        assert_eq!(query.search, "ada");
        assert_eq!(query.band, Some(Band::AtRisk));
        assert_eq!(query.status, Some(ClientStatus::Active));
        assert_eq!(query.sort, ClientSort::ScoreLowest);
        assert_eq!(query.limit, ClientQuery::DEFAULT_LIMIT);
        assert_eq!(
            ClientQuery::parse("", "", "", "", "", None).unwrap().sort,
            ClientSort::Newest
        );

        let errors =
            ClientQuery::parse(&"x".repeat(101), "hot", "gone", "random", "", Some(0)).unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["search", "band", "status", "sort", "limit"]);
    }
}
