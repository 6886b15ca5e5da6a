//! The drafting policy: given what just happened to a client and how their score moved,
//! should a stylist be handed a draft email, and of which kind?

use crate::client::{Client, ClientStatus};
use crate::email::EmailKind;
use crate::event::{DomainEvent, EventKind};
use crate::score::{Band, EngagementScore};

/// Everything the policy looks at, gathered by the email processor.
pub struct PolicyInput<'a> {
    pub event: &'a DomainEvent,
    pub client: &'a Client,
    pub previous: Option<&'a EngagementScore>,
    pub current: &'a EngagementScore,
    /// True while an earlier draft for this client awaits review.
    pub draft_pending: bool,
}

/// The kind of email to draft, or `None` when the stylist should not be asked to write.
///
/// A new client gets a welcome; a client whose band drops to "At risk" or "Cooling" gets a
/// win-back or check-in; a client rising to "Thriving" gets a thank-you. Never while another
/// draft is pending, never to a closed account.
pub fn email_to_draft(input: &PolicyInput<'_>) -> Option<EmailKind> {
    if input.draft_pending || input.client.status == ClientStatus::Closed {
        return None;
    }
    if matches!(input.event.kind, EventKind::ClientCreated) {
        return Some(EmailKind::Welcome);
    }
    let previous = input.previous.map(|s| s.band)?;
    let current = input.current.band;
    if previous == current {
        return None;
    }
    match current {
        Band::AtRisk => Some(EmailKind::WinBack),
        Band::Cooling if previous > Band::Cooling => Some(EmailKind::CheckIn),
        Band::Thriving => Some(EmailKind::Celebration),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientEmail, ClientId, ClientName, StylistId};
    use crate::event::{EventId, FieldChange};
    use chrono::{DateTime, Utc};

    fn client(status: ClientStatus) -> Client {
        let at = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Client {
            id: ClientId::new("c-1"),
            name: ClientName::parse("Ada").unwrap(),
            email: ClientEmail::parse("ada@example.com").unwrap(),
            stylist_id: StylistId::new("st-1"),
            status,
            version: 1,
            created_at: at,
            updated_at: at,
        }
    }

    fn event(kind: EventKind) -> DomainEvent {
        DomainEvent {
            schema_version: 1,
            id: EventId::new("e-1"),
            client_id: ClientId::new("c-1"),
            stylist_id: StylistId::new("st-1"),
            client_version: 1,
            occurred_at: DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            kind,
        }
    }

    fn score(points: u8) -> EngagementScore {
        EngagementScore {
            score: points,
            band: Band::of(points),
            factors: Vec::new(),
        }
    }

    fn updated() -> EventKind {
        EventKind::ClientUpdated {
            changes: vec![FieldChange {
                field: "status".into(),
                old: "active".into(),
                new: "paused".into(),
            }],
        }
    }

    fn decide(
        kind: EventKind,
        status: ClientStatus,
        previous: Option<u8>,
        current: u8,
        pending: bool,
    ) -> Option<EmailKind> {
        let (event, client, previous, current) = (
            event(kind),
            client(status),
            previous.map(score),
            score(current),
        );
        email_to_draft(&PolicyInput {
            event: &event,
            client: &client,
            previous: previous.as_ref(),
            current: &current,
            draft_pending: pending,
        })
    }

    #[test]
    fn a_new_client_gets_a_welcome() {
        assert_eq!(
            decide(
                EventKind::ClientCreated,
                ClientStatus::Active,
                None,
                60,
                false
            ),
            Some(EmailKind::Welcome)
        );
    }

    #[test]
    fn no_draft_while_another_awaits_review() {
        assert_eq!(
            decide(
                EventKind::ClientCreated,
                ClientStatus::Active,
                None,
                60,
                true
            ),
            None
        );
        assert_eq!(
            decide(updated(), ClientStatus::Active, Some(60), 10, true),
            None
        );
    }

    #[test]
    fn band_moves_pick_the_kind() {
        assert_eq!(
            decide(updated(), ClientStatus::Paused, Some(60), 20, false),
            Some(EmailKind::WinBack)
        );
        assert_eq!(
            decide(updated(), ClientStatus::Active, Some(60), 40, false),
            Some(EmailKind::CheckIn)
        );
        assert_eq!(
            decide(updated(), ClientStatus::Active, Some(60), 80, false),
            Some(EmailKind::Celebration)
        );
        assert_eq!(
            decide(updated(), ClientStatus::Active, Some(20), 40, false),
            None,
            "recovering to Cooling is no reason to write"
        );
        assert_eq!(
            decide(updated(), ClientStatus::Active, Some(60), 55, false),
            None,
            "same band"
        );
    }

    #[test]
    fn a_closed_account_gets_nothing() {
        assert_eq!(
            decide(updated(), ClientStatus::Closed, Some(60), 0, false),
            None
        );
    }
}
