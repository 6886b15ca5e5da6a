//! Change records and the domain events derived from them.
//!
//! Every write to a client leaves a [`ChangeRecord`] (old and new image) in the change feed.
//! [`events_from_change`] compares the images and yields versioned [`DomainEvent`]s only for
//! real changes. Event ids are derived from the change, so replaying a change always gives
//! the same ids, which is what makes processing idempotent downstream.

use crate::client::{Client, ClientId, StylistId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// The schema version written into every event; readers reject versions they do not know.
pub const EVENT_SCHEMA_VERSION: u32 = 1;

/// Namespace for deriving event ids (UUID v5), fixed forever.
const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_4d0e_8f4a_4b4e_9a57_1e2f_e6a1_c0de);

/// A deterministic event identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    /// The id of the event of `kind` caused by writing `version` of `client`.
    pub fn for_change(client: &ClientId, version: u64, kind: &str) -> Self {
        let name = format!("{client}/{version}/{kind}");
        Self(Uuid::new_v5(&EVENT_NAMESPACE, name.as_bytes()).to_string())
    }

    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One write to a client as captured by the change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeRecord {
    /// Position in the feed; strictly increasing.
    pub seq: u64,
    pub old: Option<Client>,
    pub new: Client,
    pub recorded_at: DateTime<Utc>,
}

/// A field whose value a change altered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldChange {
    pub field: String,
    pub old: serde_json::Value,
    pub new: serde_json::Value,
}

impl FieldChange {
    /// The change in words: lists say what was added, other fields their new value.
    pub fn describe(&self) -> String {
        let count = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
        let added = |one: &str, many: &str| {
            let (old, new) = (count(&self.old), count(&self.new));
            match new.checked_sub(old) {
                Some(1) => format!("{one} recorded"),
                Some(n) if n > 1 => format!("{n} {many} recorded"),
                _ => format!("{many} edited ({new} in all)"),
            }
        };
        match self.field.as_str() {
            "fixes" => added("Fix", "Fixes"),
            "purchases" => added("Freestyle purchase", "Freestyle purchases"),
            "feedback" => added("Feedback", "feedback entries"),
            "consent" => match self.new.get("state").and_then(|s| s.as_str()) {
                Some("opted_in") => "Agreed to receive emails".to_owned(),
                Some("unsubscribed") => "Unsubscribed from emails".to_owned(),
                _ => "Email consent withdrawn".to_owned(),
            },
            "status" => format!("Status set to {}", self.new.as_str().unwrap_or("?")),
            "name" => format!("Name changed to {}", self.new.as_str().unwrap_or("?")),
            "email" => format!("Email changed to {}", self.new.as_str().unwrap_or("?")),
            "stylist_id" => format!("Moved to stylist {}", self.new.as_str().unwrap_or("?")),
            "style" => "Style profile edited".to_owned(),
            "signed_up_on" => "Sign-up date changed".to_owned(),
            "engagement" => "Email engagement updated".to_owned(),
            other => format!("{other} changed"),
        }
    }
}

/// What happened to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    ClientCreated,
    ClientUpdated {
        changes: Vec<FieldChange>,
    },
    /// Time passed: the client is scored again as of `as_of` (recency decays without any
    /// write), and the policy acts on a band change like after any other event.
    RescoreRequested {
        as_of: chrono::NaiveDate,
    },
    /// A stylist asked for a new draft of a pending email, optionally with an instruction.
    RedraftRequested {
        email_id: crate::email::EmailId,
        instruction: Option<String>,
    },
}

impl EventKind {
    /// What happened, in a sentence for the client's timeline.
    pub fn describe(&self) -> String {
        match self {
            Self::ClientCreated => "Client added".to_owned(),
            Self::ClientUpdated { changes } => {
                let parts: Vec<String> = changes.iter().map(FieldChange::describe).collect();
                parts.join("; ")
            }
            Self::RescoreRequested { as_of } => format!("Daily rescore as of {as_of}"),
            Self::RedraftRequested { instruction, .. } => match instruction {
                Some(instruction) => format!("New draft requested: \"{instruction}\""),
                None => "New draft requested".to_owned(),
            },
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::ClientCreated => "client_created",
            Self::ClientUpdated { .. } => "client_updated",
            Self::RedraftRequested { .. } => "redraft_requested",
            Self::RescoreRequested { .. } => "rescore_requested",
        }
    }
}

/// A versioned fact about a client, published to the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DomainEvent {
    pub schema_version: u32,
    pub id: EventId,
    pub client_id: ClientId,
    pub stylist_id: StylistId,
    /// The client version this event describes.
    pub client_version: u64,
    pub occurred_at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The event that rescores `client` (at `version`) as of `as_of`. Its id depends only on
/// the client and the day, so asking twice on one day queues it once.
pub fn rescore_event(
    client: &ClientId,
    stylist: &StylistId,
    version: u64,
    as_of: chrono::NaiveDate,
    now: DateTime<Utc>,
) -> DomainEvent {
    DomainEvent {
        schema_version: EVENT_SCHEMA_VERSION,
        id: EventId::for_change(client, 0, &format!("rescore/{as_of}")),
        client_id: client.clone(),
        stylist_id: stylist.clone(),
        client_version: version,
        occurred_at: now,
        kind: EventKind::RescoreRequested { as_of },
    }
}

/// [`events_from_change`] for a processor that must keep running whatever one change holds:
/// a panic inside is caught and returned as the error, naming the change.
pub fn events_of_change(change: &ChangeRecord) -> Result<Vec<DomainEvent>, String> {
    std::panic::catch_unwind(|| events_from_change(change)).map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        format!(
            "change {} of client {} could not be turned into events: {message}",
            change.seq, change.new.id
        )
    })
}

/// The domain events a change implies: `client_created` for a new record, `client_updated`
/// listing the fields that differ, and nothing for a write that changed nothing that matters.
pub fn events_from_change(change: &ChangeRecord) -> Vec<DomainEvent> {
    let kind = match &change.old {
        None => EventKind::ClientCreated,
        Some(old) => {
            let changes = changed_fields(old, &change.new);
            if changes.is_empty() {
                return Vec::new();
            }
            EventKind::ClientUpdated { changes }
        }
    };
    let new = &change.new;
    vec![DomainEvent {
        schema_version: EVENT_SCHEMA_VERSION,
        id: EventId::for_change(&new.id, new.version, kind.name()),
        client_id: new.id.clone(),
        stylist_id: new.stylist_id.clone(),
        client_version: new.version,
        occurred_at: change.recorded_at,
        kind,
    }]
}

fn changed_fields(old: &Client, new: &Client) -> Vec<FieldChange> {
    // Field by field on the typed records; only what differs is turned into JSON.
    // Bookkeeping (version, timestamps) is not a business change. History lists report
    // their lengths: a consumer that needs the entries reads the client.
    fn value<T: serde::Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).unwrap_or_default()
    }
    let mut changes = Vec::new();
    let mut compare = |field: &str,
                       differ: bool,
                       old: &dyn Fn() -> serde_json::Value,
                       new: &dyn Fn() -> serde_json::Value| {
        if differ {
            changes.push(FieldChange {
                field: field.to_owned(),
                old: old(),
                new: new(),
            });
        }
    };
    compare("name", old.name != new.name, &|| value(&old.name), &|| {
        value(&new.name)
    });
    compare(
        "email",
        old.email != new.email,
        &|| value(&old.email),
        &|| value(&new.email),
    );
    compare(
        "stylist_id",
        old.stylist_id != new.stylist_id,
        &|| value(&old.stylist_id),
        &|| value(&new.stylist_id),
    );
    compare(
        "status",
        old.status != new.status,
        &|| value(&old.status),
        &|| value(&new.status),
    );
    let (p, q) = (&old.profile, &new.profile);
    compare(
        "consent",
        p.consent() != q.consent(),
        &|| value(&p.consent()),
        &|| value(&q.consent()),
    );
    compare(
        "style",
        p.style() != q.style(),
        &|| value(p.style()),
        &|| value(q.style()),
    );
    compare(
        "signed_up_on",
        p.signed_up_on() != q.signed_up_on(),
        &|| value(&p.signed_up_on()),
        &|| value(&q.signed_up_on()),
    );
    compare(
        "fixes",
        p.fixes() != q.fixes(),
        &|| value(&p.fixes().len()),
        &|| value(&q.fixes().len()),
    );
    compare(
        "purchases",
        p.purchases() != q.purchases(),
        &|| value(&p.purchases().len()),
        &|| value(&q.purchases().len()),
    );
    compare(
        "feedback",
        p.feedback() != q.feedback(),
        &|| value(&p.feedback().len()),
        &|| value(&q.feedback().len()),
    );
    compare(
        "engagement",
        p.engagement() != q.engagement(),
        &|| value(&p.engagement()),
        &|| value(&q.engagement()),
    );
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientEmail, ClientName, ClientStatus};

    fn client(version: u64, name: &str) -> Client {
        let at = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Client {
            id: ClientId::new("c-1"),
            name: ClientName::parse(name).unwrap(),
            email: ClientEmail::parse("c@example.com").unwrap(),
            stylist_id: StylistId::new("st-1"),
            status: ClientStatus::Active,
            version,
            created_at: at,
            updated_at: at,
            profile: crate::profile::Profile::joined(
                at.date_naive(),
                crate::profile::EmailConsent::NotGiven,
            ),
        }
    }

    fn change(old: Option<Client>, new: Client) -> ChangeRecord {
        ChangeRecord {
            seq: 1,
            old,
            recorded_at: new.updated_at,
            new,
        }
    }

    #[test]
    fn a_new_record_yields_client_created() {
        let events = events_from_change(&change(None, client(1, "Ada")));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::ClientCreated);
        assert_eq!(events[0].schema_version, EVENT_SCHEMA_VERSION);
    }

    #[test]
    fn the_same_change_always_yields_the_same_event_id() {
        let a = events_from_change(&change(None, client(1, "Ada")));
        let b = events_from_change(&change(None, client(1, "Ada")));
        assert_eq!(a[0].id, b[0].id);
        let later = events_from_change(&change(Some(client(1, "Ada")), client(2, "Ada Byron")));
        assert_ne!(a[0].id, later[0].id);
    }

    #[test]
    fn an_update_lists_only_the_fields_that_changed() {
        let events = events_from_change(&change(Some(client(1, "Ada")), client(2, "Ada Byron")));
        let EventKind::ClientUpdated { changes } = &events[0].kind else {
            panic!("expected an update")
        };
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "name");
        assert_eq!(changes[0].old, serde_json::json!("Ada"));
        assert_eq!(changes[0].new, serde_json::json!("Ada Byron"));
    }

    #[test]
    fn a_new_fix_is_reported_as_the_history_growing() {
        let before = client(1, "Ada");
        let mut after = client(2, "Ada");
        let fix = crate::profile::Fix::new(
            before.profile.signed_up_on(),
            5,
            2,
            crate::profile::Money::from_cents(9000),
        )
        .unwrap();
        after.profile.add_fix(fix).unwrap();
        let events = events_from_change(&change(Some(before), after));
        let EventKind::ClientUpdated { changes } = &events[0].kind else {
            panic!("expected an update")
        };
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "fixes");
        assert_eq!(
            (changes[0].old.clone(), changes[0].new.clone()),
            (serde_json::json!(0), serde_json::json!(1))
        );
    }

    #[test]
    fn a_write_that_changes_nothing_yields_no_event() {
        assert!(events_from_change(&change(Some(client(1, "Ada")), client(2, "Ada"))).is_empty());
    }

    #[test]
    fn events_serialise_with_a_type_tag_and_version() {
        let event = &events_from_change(&change(None, client(1, "Ada")))[0];
        let json = serde_json::to_value(event).unwrap();
        assert_eq!(json["type"], "client_created");
        assert_eq!(json["schema_version"], 1);
        let back: DomainEvent = serde_json::from_value(json).unwrap();
        assert_eq!(&back, event);
    }
}
