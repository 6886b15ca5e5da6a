//! What a client's page reads in one go, and the stored BG/NBD fits it shows.

use chrono::{DateTime, NaiveDate, Utc};
use domain::Client;
use domain::bgnbd::BgNbdFit;
use domain::views::{EmailSummary, ScorePoint, Stylist, TimelineEntry};
use serde::{Deserialize, Serialize};

/// Everything a client's page shows, read in one snapshot.
#[derive(Debug, Clone)]
pub struct ClientPageData {
    pub client: Client,
    pub stylist: Option<Stylist>,
    /// The latest fit of the repeat-purchase model, if there is one.
    pub fit: Option<StoredFit>,
    /// Score history, oldest first.
    pub history: Vec<ScorePoint>,
    /// The audit trail, newest first.
    pub timeline: Vec<TimelineEntry>,
    /// The client's emails, newest first.
    pub emails: Vec<EmailSummary>,
    /// The policy's decisions about the client, newest first.
    pub decisions: Vec<domain::outcomes::Decision>,
}

/// How much of each list [`Books::client_page`](crate::Books::client_page) reads.
#[derive(Debug, Clone, Copy)]
pub struct PageLimits {
    pub history: u32,
    pub timeline: u32,
    pub emails: u32,
}

/// A fit as stored, with where its data came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredFit {
    pub fit: BgNbdFit,
    /// `clients` for the client base, or the transactions file it was fitted on.
    pub source: String,
    pub observation_end: NaiveDate,
    pub fitted_at: DateTime<Utc>,
}
