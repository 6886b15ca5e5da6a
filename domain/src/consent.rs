//! Whether a client may be emailed now: the one rule the policy (before drafting), approval
//! (before queueing) and the sender (just before delivering) all apply, on either backend.
//!
//! A client's own "no" outranks everything a stylist, an API call or an import says: only
//! the client can opt in again (see [`reopt_in_refused`]).

use crate::client::{Client, ClientStatus};
use crate::profile::EmailConsent;
use crate::validation::FieldError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a client may not be emailed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NoEmail {
    AccountClosed,
    Unsubscribed,
    NoConsent,
}

impl NoEmail {
    pub const ALL: [Self; 3] = [Self::AccountClosed, Self::Unsubscribed, Self::NoConsent];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccountClosed => "account_closed",
            Self::Unsubscribed => "unsubscribed",
            Self::NoConsent => "no_consent",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == raw)
    }
}

impl fmt::Display for NoEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AccountClosed => "The client's account is closed",
            Self::Unsubscribed => "The client has unsubscribed",
            Self::NoConsent => "The client has not agreed to emails",
        })
    }
}

/// `Ok` if `client` may receive an email from their stylist now.
pub fn may_email(client: &Client) -> Result<(), NoEmail> {
    if client.status == ClientStatus::Closed {
        return Err(NoEmail::AccountClosed);
    }
    match client.profile.consent() {
        EmailConsent::OptedIn { .. } => Ok(()),
        EmailConsent::Unsubscribed { .. } => Err(NoEmail::Unsubscribed),
        EmailConsent::NotGiven => Err(NoEmail::NoConsent),
    }
}

/// The error for anyone but the client trying to turn `from` (the stored consent) back into
/// an opt-in: a stylist's edit, an API update or an import.
pub fn reopt_in_refused(from: EmailConsent) -> Option<FieldError> {
    match from {
        EmailConsent::Unsubscribed { at } => Some(FieldError::new(
            "email_opt_in",
            format!(
                "This client unsubscribed on {}. Only the client can opt in again, from the link in any email they received.",
                at.format("%Y-%m-%d")
            ),
        )),
        EmailConsent::NotGiven | EmailConsent::OptedIn { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientInput, NewClient};
    use crate::profile::ProfileInput;

    fn client(opt_in: bool, unsubscribed: Option<&str>, status: &str) -> Client {
        let now = chrono::DateTime::parse_from_rfc3339("2026-06-01T10:00:00Z")
            .unwrap()
            .to_utc();
        let input = ClientInput {
            name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            stylist_id: "st-maya".into(),
            status: Some(status.into()),
            profile: ProfileInput {
                email_opt_in: opt_in,
                unsubscribed_at: unsubscribed.map(str::to_owned),
                ..ProfileInput::default()
            },
        };
        let new = NewClient::parse(&input, now).unwrap();
        Client {
            id: crate::ClientId::new("c-1"),
            name: new.name,
            email: new.email,
            stylist_id: new.stylist_id,
            status: new.status,
            profile: new.profile,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn only_an_open_account_that_opted_in_and_never_unsubscribed_may_be_emailed() {
        assert_eq!(may_email(&client(true, None, "active")), Ok(()));
        assert_eq!(may_email(&client(true, None, "paused")), Ok(()));
        assert_eq!(
            may_email(&client(true, Some("2026-05-01T08:00:00Z"), "active")),
            Err(NoEmail::Unsubscribed)
        );
        assert_eq!(
            may_email(&client(false, None, "active")),
            Err(NoEmail::NoConsent)
        );
        assert_eq!(
            may_email(&client(true, None, "closed")),
            Err(NoEmail::AccountClosed)
        );
    }

    #[test]
    fn an_unsubscribe_cannot_be_turned_back_into_an_opt_in_by_anyone_else() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-05-01T08:00:00Z")
            .unwrap()
            .to_utc();
        let refused = reopt_in_refused(EmailConsent::Unsubscribed { at }).unwrap();
        assert_eq!(refused.field, "email_opt_in");
        assert!(
            refused.message.contains("2026-05-01"),
            "{}",
            refused.message
        );
        assert!(reopt_in_refused(EmailConsent::NotGiven).is_none());
        assert!(reopt_in_refused(EmailConsent::OptedIn { at }).is_none());
        for reason in NoEmail::ALL {
            assert_eq!(NoEmail::parse(reason.as_str()), Some(reason));
        }
    }
}
