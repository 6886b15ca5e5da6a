//! The REST API's requests and responses (`/api/v1`), shared by the server that answers
//! them and by programs that call it (the `engage-client` crate). With the `openapi`
//! feature each carries its OpenAPI schema or query parameters.

use crate::bgnbd::BgNbdParams;
use crate::score::{Band, EngagementScore};
use crate::user::Role;
use crate::views::ClientSort;
use crate::{
    Activity, Client, ClientEdit, ClientId, ClientStatus, EmailId, EmailStatus, EventId,
    FieldError, StylistId,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An import lists this many refused rows with their errors; beyond it only counts them.
pub const MAX_LISTED_ERRORS: usize = 1_000;

impl From<Client> for ClientRecord {
    fn from(client: Client) -> Self {
        Self {
            id: client.id.clone(),
            version: client.version,
            client,
        }
    }
}

impl ImportReport {
    /// Counts a refused row, listing it while fewer than [`MAX_LISTED_ERRORS`] are.
    pub fn refuse(&mut self, line: u64, errors: Vec<FieldError>) {
        self.failed += 1;
        if self.errors.len() < MAX_LISTED_ERRORS {
            self.errors.push(RowError { line, errors });
        } else {
            self.errors_truncated = true;
        }
    }
}

/// A client as the API returns it after a write.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientRecord {
    pub id: ClientId,
    /// Send it back as `expected_version` to update safely.
    pub version: u64,
    pub client: Client,
}

/// Filters and paging of the client list.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ListClients {
    /// Part of a name or email address (at most 100 characters).
    pub search: Option<String>,
    pub band: Option<Band>,
    pub status: Option<ClientStatus>,
    pub sort: Option<ClientSort>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
    /// Rows per page, 1 to 200 (default 25).
    pub limit: Option<i64>,
}

/// A change to a client: the whole editable record, and the version it was based on.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateClient {
    /// Refused (409) unless the client is still at this version.
    pub expected_version: u64,
    pub client: ClientEdit,
}

#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct CloseClient {
    /// Refuse (409) unless the client is still at this version.
    pub expected_version: Option<u64>,
}

/// Something the client did, optionally guarded by the version the caller last saw.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecordActivity {
    pub activity: Activity,
    /// Refuse (409) unless the client is still at this version.
    #[serde(default)]
    pub expected_version: Option<u64>,
}

/// A Fix to record, optionally guarded by the version the caller last saw.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecordFix {
    /// ISO date (YYYY-MM-DD), not in the future.
    pub delivered_on: String,
    /// 1 to 10.
    pub items_sent: i64,
    /// 0 to items_sent.
    pub items_kept: i64,
    /// Dollars, as text ("129.50").
    pub order_value: String,
    /// Refuse (409) unless the client is still at this version.
    #[serde(default)]
    pub expected_version: Option<u64>,
}

/// The model's view of one client, from the latest fit.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelView {
    pub p_alive: f64,
    pub expected_purchases_90_days: f64,
    pub params: BgNbdParams,
}

/// A client's score now, every stored change with its factors, and the model's view.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScoreReport {
    pub client_id: ClientId,
    /// The client version the current score was computed from.
    pub client_version: u64,
    /// The score as of now, computed from the record.
    pub current: EngagementScore,
    /// Every stored score change, newest first, each with its factors and causing event.
    pub history: Vec<ScoreChange>,
    /// `null` until `engage model fit` has run, or for a client who has not bought yet.
    pub model: Option<ModelView>,
}

#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct HistoryQuery {
    /// How many history entries to return (1–500, default 50).
    pub limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ListEmails {
    /// Only emails in this state (default: all).
    pub status: Option<EmailStatus>,
    /// How many, newest first: 1 to 500 (default 100).
    pub limit: Option<u32>,
}

/// New words for a draft awaiting review.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EditEmail {
    pub subject: String,
    pub body: String,
}

/// Drafts to approve together: all are approved or none.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApproveMany {
    /// 1 to 33 email ids (`store::MAX_APPROVE_AT_ONCE`).
    pub ids: Vec<EmailId>,
    /// When to send: `now` (the default), `usual_hour` (each client's usual open hour,
    /// mid-morning in the business's time zone until their opens say), or a time such as
    /// `2026-12-05T10:00:00+01:00`. A scheduled send never falls in the quiet hours.
    #[serde(default)]
    pub send_at: Option<String>,
}

/// When to send one approved draft (the query of `POST /api/v1/emails/{id}/approve`).
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct ApproveWhen {
    /// `now` (the default), `usual_hour`, or a time such as `2026-12-05T10:00:00+01:00`.
    #[serde(default)]
    pub send_at: Option<String>,
}

/// Why a draft is refused.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RejectEmail {
    /// A few words for the record (1 to 500 characters).
    pub reason: String,
}

/// A stylist's request for a new draft.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Regenerate {
    /// What to change, in a few words ("mention the autumn edit"); at most 200 characters.
    #[serde(default)]
    pub instruction: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegenerateAccepted {
    pub email_id: EmailId,
    /// The queued event; the new wording replaces the draft once it is processed.
    pub event_id: EventId,
}

/// What an import did, row by row.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportReport {
    /// Data rows read (the CSV header not counted).
    pub rows: u64,
    pub created: u64,
    pub failed: u64,
    /// The failed rows (the first 1,000), each with every field at fault.
    pub errors: Vec<RowError>,
    /// More rows failed than are listed.
    pub errors_truncated: bool,
}

/// One refused row.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RowError {
    /// The line the row starts on (1 is the first line of the body).
    pub line: u64,
    pub errors: Vec<FieldError>,
}

/// A key to create.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// What will use it ("order-system import"), 1 to 100 characters.
    pub name: String,
    pub role: Role,
    /// For a stylist key: the stylist whose book it reaches (required then, refused
    /// otherwise).
    #[serde(default)]
    pub stylist_id: Option<StylistId>,
}

/// An RFC 9457 problem document, as every API error is answered.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// Always `about:blank`: the status and title say what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: String,
    pub status: u16,
    pub title: String,
    /// What went wrong with this request, in a sentence.
    pub detail: String,
    /// The first field at fault, when the problem is about a field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every field at fault, for validation problems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Why an email cannot be sent (`unsubscribed`, `no_consent`, `account_closed`, or
    /// `not_failed` for a resend of an email that did not fail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct RangeQuery {
    /// First day (YYYY-MM-DD); default 29 days before `to`.
    pub from: Option<String>,
    /// Last day (YYYY-MM-DD); default today.
    pub to: Option<String>,
}

/// The pipeline's figures and the LLM's since the process started.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineReport {
    #[serde(flatten)]
    pub figures: PipelineFigures,
    /// The LLM writer's circuit breaker: `closed`, `open` or `half_open`; `null` without
    /// an LLM key (the template writes every draft).
    pub llm_breaker: Option<String>,
    /// Drafts asked of the LLM since this process started.
    pub llm_calls: u64,
    /// Of those, how many failed (the template wrote them instead).
    pub llm_failures: u64,
    /// US dollars spent on the LLM since this process started.
    pub llm_cost_usd: f64,
}

/// Which dead letters to put back on the queue.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Redrive {
    /// One dead letter's id; all of them when absent.
    #[serde(default)]
    pub id: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Redriven {
    /// How many went back on the queue.
    pub redriven: u64,
}

/// How the pipeline is keeping up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineFigures {
    /// The queue between the stream processor and the email processor.
    pub events_queue: QueueStats,
    /// Change records not yet turned into events.
    pub feed_lag: u64,
}

/// One entry of a client's score history: the score, the factors that explain it and the
/// event that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScoreChange {
    pub score: u8,
    pub band: Band,
    /// The factors as stored, each with the sentence it had when the score was computed.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::score::Factor>))]
    pub factors: serde_json::Value,
    pub event_id: EventId,
    pub scored_at: DateTime<Utc>,
}

/// Figures that tell whether a queue keeps up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueStats {
    /// Messages waiting to be received.
    pub visible: u64,
    /// Messages received and not yet deleted or released.
    pub in_flight: u64,
    /// Age of the oldest message on the queue, in milliseconds.
    pub oldest_age_ms: u64,
    pub dead_letters: u64,
}
