//! Read models: what the UI and the API show about clients, stylists and emails.

use crate::client::{ClientId, ClientStatus, StylistId};
use crate::email::{EmailId, EmailKind, EmailStatus};
use crate::score::Band;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A stylist as shown in pickers and tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stylist {
    pub id: StylistId,
    pub name: String,
}

/// One row of the clients list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// One row of the email dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
