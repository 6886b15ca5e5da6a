//! The drafting policy: given what just happened to a client and how their score moved,
//! should a stylist be handed a draft email, and of which kind? Every decision, yes or no,
//! carries its reason, so "why did (or didn't) this client get an email?" always has an
//! answer.
//!
//! First the trigger: a welcome for a new client, a win-back on entering At risk, a check-in
//! on entering Cooling from above, a celebration on entering Thriving. Then the guards, in
//! order: closed account, unsubscribed, no consent, a draft already awaiting review, and
//! the frequency cap (default one draft per client per 14 days).

use crate::client::Client;
use crate::consent::NoEmail;
use crate::email::EmailKind;
use crate::event::{DomainEvent, EventKind};
use crate::score::{Band, EngagementScore, NEW_CLIENT_DAYS};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Tunable limits of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicySettings {
    /// At most one draft per client within this many days.
    pub frequency_cap_days: u32,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            frequency_cap_days: 14,
        }
    }
}

/// Everything the policy looks at, gathered by the email processor.
pub struct PolicyInput<'a> {
    pub event: &'a DomainEvent,
    pub client: &'a Client,
    /// The band before this event, `None` if the client had never been scored.
    pub previous: Option<Band>,
    pub current: &'a EngagementScore,
    /// True while an earlier draft for this client awaits review.
    pub draft_pending: bool,
    /// When the last draft for this client was created, whatever became of it.
    pub last_draft_at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
    pub settings: PolicySettings,
}

/// Why a draft is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DraftReason {
    NewClient,
    EnteredBand { from: Band, to: Band },
}

impl fmt::Display for DraftReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NewClient => f.write_str("New client: a welcome from their stylist"),
            Self::EnteredBand { from, to } => {
                write!(f, "Score moved from {} to {}", from.label(), to.label())
            }
        }
    }
}

/// Why no draft is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    /// First score of a client added with an existing history: nothing has moved yet.
    FirstScore {
        band: Band,
    },
    SameBand {
        band: Band,
    },
    /// A move that calls for no email (into Steady, or recovering into Cooling).
    NoTrigger {
        from: Band,
        to: Band,
    },
    AccountClosed,
    Unsubscribed,
    NoConsent,
    DraftAwaitingReview,
    FrequencyCap {
        days_since_last: u32,
        cap_days: u32,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FirstScore { band } => {
                write!(f, "First score ({}); no change to act on yet", band.label())
            }
            Self::SameBand { band } => write!(f, "Still {}", band.label()),
            Self::NoTrigger { from, to } => write!(
                f,
                "Moved from {} to {}, which needs no email",
                from.label(),
                to.label()
            ),
            Self::AccountClosed => f.write_str("The account is closed"),
            Self::Unsubscribed => f.write_str("The client has unsubscribed"),
            Self::NoConsent => f.write_str("The client has not agreed to emails"),
            Self::DraftAwaitingReview => f.write_str("An earlier draft still awaits review"),
            Self::FrequencyCap {
                days_since_last,
                cap_days,
            } => write!(
                f,
                "Last draft {days_since_last} days ago; at most one every {cap_days} days"
            ),
        }
    }
}

/// The policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Draft {
        kind: EmailKind,
        reason: DraftReason,
    },
    Skip {
        reason: SkipReason,
    },
}

impl Decision {
    pub fn kind(self) -> Option<EmailKind> {
        match self {
            Self::Draft { kind, .. } => Some(kind),
            Self::Skip { .. } => None,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Draft { kind, reason } => write!(f, "Draft {}: {reason}", kind.as_str()),
            Self::Skip { reason } => write!(f, "No draft: {reason}"),
        }
    }
}

/// Decides whether to draft, and why.
pub fn decide(input: &PolicyInput<'_>) -> Decision {
    let skip = |reason| Decision::Skip { reason };
    let (kind, reason) = match trigger(input) {
        Ok(found) => found,
        Err(reason) => return skip(reason),
    };
    match crate::consent::may_email(input.client) {
        Ok(()) => {}
        Err(NoEmail::AccountClosed) => return skip(SkipReason::AccountClosed),
        Err(NoEmail::Unsubscribed) => return skip(SkipReason::Unsubscribed),
        Err(NoEmail::NoConsent) => return skip(SkipReason::NoConsent),
    }
    if input.draft_pending {
        return skip(SkipReason::DraftAwaitingReview);
    }
    if let Some(last) = input.last_draft_at {
        let days_since_last = (input.now - last).num_days().max(0) as u32;
        let cap_days = input.settings.frequency_cap_days;
        if days_since_last < cap_days {
            return skip(SkipReason::FrequencyCap {
                days_since_last,
                cap_days,
            });
        }
    }
    Decision::Draft { kind, reason }
}

fn trigger(input: &PolicyInput<'_>) -> Result<(EmailKind, DraftReason), SkipReason> {
    let current = input.current.band;
    // A new client is welcomed on their creation event, whatever was scored before it (a
    // rescore may have reached the client first).
    let profile = &input.client.profile;
    let days_since_signup = (input.now.date_naive() - profile.signed_up_on()).num_days();
    let is_new = matches!(input.event.kind, EventKind::ClientCreated)
        && profile.fixes().is_empty()
        && profile.purchases().is_empty()
        && days_since_signup <= i64::from(NEW_CLIENT_DAYS);
    if is_new {
        return Ok((EmailKind::Welcome, DraftReason::NewClient));
    }
    let Some(previous) = input.previous else {
        return Err(SkipReason::FirstScore { band: current });
    };
    if previous == current {
        return Err(SkipReason::SameBand { band: current });
    }
    let reason = DraftReason::EnteredBand {
        from: previous,
        to: current,
    };
    match current {
        Band::AtRisk => Ok((EmailKind::WinBack, reason)),
        Band::Cooling if previous > Band::Cooling => Ok((EmailKind::CheckIn, reason)),
        Band::Thriving => Ok((EmailKind::Celebration, reason)),
        _ => Err(SkipReason::NoTrigger {
            from: previous,
            to: current,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientStatus;
    use crate::client::{ClientEmail, ClientId, ClientName, StylistId};
    use crate::event::{EventId, FieldChange};
    use crate::profile::EmailConsent;
    use crate::profile::{Fix, Money, Profile};
    use chrono::{Days, NaiveDate};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[derive(Clone, Copy)]
    enum History {
        /// Signed up today, nothing ordered.
        New,
        /// Signed up a year ago with Fixes.
        Established,
    }

    fn client(status: ClientStatus, consent: EmailConsent, history: History) -> Client {
        let signed_up: NaiveDate = match history {
            History::New => now().date_naive(),
            History::Established => now().date_naive() - Days::new(365),
        };
        let mut profile = Profile::joined(signed_up, consent);
        if let History::Established = history {
            let fix = Fix::new(signed_up + Days::new(30), 5, 2, Money::from_cents(12000)).unwrap();
            profile.add_fix(fix).unwrap();
        }
        Client {
            id: ClientId::new("c-1"),
            name: ClientName::parse("Ada").unwrap(),
            email: ClientEmail::parse("ada@example.com").unwrap(),
            stylist_id: StylistId::new("st-1"),
            status,
            version: 1,
            created_at: now(),
            updated_at: now(),
            profile,
        }
    }

    fn event(created: bool) -> DomainEvent {
        let kind = if created {
            EventKind::ClientCreated
        } else {
            EventKind::ClientUpdated {
                changes: vec![FieldChange {
                    field: "fixes".into(),
                    old: serde_json::Value::Null,
                    new: serde_json::Value::Null,
                }],
            }
        };
        DomainEvent {
            schema_version: 1,
            id: EventId::new("e-1"),
            client_id: ClientId::new("c-1"),
            stylist_id: StylistId::new("st-1"),
            client_version: 1,
            occurred_at: now(),
            kind,
        }
    }

    const OPTED_IN: EmailConsent = EmailConsent::OptedIn {
        at: DateTime::<Utc>::MIN_UTC,
    };

    struct Case {
        name: &'static str,
        created: bool,
        history: History,
        status: ClientStatus,
        consent: EmailConsent,
        previous: Option<u8>,
        current: u8,
        pending: bool,
        last_draft_days_ago: Option<u64>,
        expected: Decision,
    }

    const BASE: Case = Case {
        name: "",
        created: false,
        history: History::Established,
        status: ClientStatus::Active,
        consent: OPTED_IN,
        previous: Some(60),
        current: 60,
        pending: false,
        last_draft_days_ago: None,
        expected: Decision::Skip {
            reason: SkipReason::SameBand { band: Band::Steady },
        },
    };

    fn entered(kind: EmailKind, from: Band, to: Band) -> Decision {
        Decision::Draft {
            kind,
            reason: DraftReason::EnteredBand { from, to },
        }
    }

    fn skip(reason: SkipReason) -> Decision {
        Decision::Skip { reason }
    }

    #[test]
    fn every_branch_of_the_policy() {
        let cases = [
            Case {
                name: "new client gets a welcome",
                created: true,
                history: History::New,
                previous: None,
                current: 55,
                expected: Decision::Draft {
                    kind: EmailKind::Welcome,
                    reason: DraftReason::NewClient,
                },
                ..BASE
            },
            Case {
                name: "a client added with history is only scored",
                created: true,
                previous: None,
                current: 20,
                expected: skip(SkipReason::FirstScore { band: Band::AtRisk }),
                ..BASE
            },
            Case {
                name: "an update with no earlier score is a first score",
                history: History::New,
                previous: None,
                current: 55,
                expected: skip(SkipReason::FirstScore { band: Band::Steady }),
                ..BASE
            },
            Case {
                name: "entering At risk asks for a win-back",
                previous: Some(40),
                current: 20,
                expected: entered(EmailKind::WinBack, Band::Cooling, Band::AtRisk),
                ..BASE
            },
            Case {
                name: "falling straight from Steady to At risk asks for a win-back",
                previous: Some(60),
                current: 10,
                expected: entered(EmailKind::WinBack, Band::Steady, Band::AtRisk),
                ..BASE
            },
            Case {
                name: "entering Cooling from above asks for a check-in",
                previous: Some(60),
                current: 40,
                expected: entered(EmailKind::CheckIn, Band::Steady, Band::Cooling),
                ..BASE
            },
            Case {
                name: "recovering into Cooling needs no email",
                previous: Some(20),
                current: 30,
                expected: skip(SkipReason::NoTrigger {
                    from: Band::AtRisk,
                    to: Band::Cooling,
                }),
                ..BASE
            },
            Case {
                name: "entering Steady needs no email",
                previous: Some(80),
                current: 60,
                expected: skip(SkipReason::NoTrigger {
                    from: Band::Thriving,
                    to: Band::Steady,
                }),
                ..BASE
            },
            Case {
                name: "entering Thriving asks for a celebration",
                previous: Some(70),
                current: 80,
                expected: entered(EmailKind::Celebration, Band::Steady, Band::Thriving),
                ..BASE
            },
            Case {
                name: "staying in a band needs no email",
                previous: Some(10),
                current: 20,
                expected: skip(SkipReason::SameBand { band: Band::AtRisk }),
                ..BASE
            },
            Case {
                name: "a closed account gets nothing",
                status: ClientStatus::Closed,
                previous: Some(60),
                current: 0,
                expected: skip(SkipReason::AccountClosed),
                ..BASE
            },
            Case {
                name: "a paused client can still be won back",
                status: ClientStatus::Paused,
                previous: Some(40),
                current: 20,
                expected: entered(EmailKind::WinBack, Band::Cooling, Band::AtRisk),
                ..BASE
            },
            Case {
                name: "an unsubscribed client gets nothing",
                consent: EmailConsent::Unsubscribed {
                    at: DateTime::<Utc>::MIN_UTC,
                },
                previous: Some(40),
                current: 20,
                expected: skip(SkipReason::Unsubscribed),
                ..BASE
            },
            Case {
                name: "a client who never agreed gets nothing",
                consent: EmailConsent::NotGiven,
                previous: Some(40),
                current: 20,
                expected: skip(SkipReason::NoConsent),
                ..BASE
            },
            Case {
                name: "a new client without consent gets no welcome",
                created: true,
                history: History::New,
                consent: EmailConsent::NotGiven,
                previous: None,
                current: 55,
                expected: skip(SkipReason::NoConsent),
                ..BASE
            },
            Case {
                name: "no draft while another awaits review",
                pending: true,
                previous: Some(40),
                current: 20,
                expected: skip(SkipReason::DraftAwaitingReview),
                ..BASE
            },
            Case {
                name: "the frequency cap holds inside 14 days",
                last_draft_days_ago: Some(13),
                previous: Some(40),
                current: 20,
                expected: skip(SkipReason::FrequencyCap {
                    days_since_last: 13,
                    cap_days: 14,
                }),
                ..BASE
            },
            Case {
                name: "the frequency cap lifts after 14 days",
                last_draft_days_ago: Some(14),
                previous: Some(40),
                current: 20,
                expected: entered(EmailKind::WinBack, Band::Cooling, Band::AtRisk),
                ..BASE
            },
            Case {
                name: "no trigger outranks every guard",
                status: ClientStatus::Closed,
                consent: EmailConsent::NotGiven,
                pending: true,
                previous: Some(60),
                current: 60,
                ..BASE
            },
        ];
        for case in cases {
            let client = client(case.status, case.consent, case.history);
            let event = event(case.created);
            let current = EngagementScore {
                score: case.current,
                band: Band::of(case.current),
                factors: Vec::new(),
            };
            let decision = decide(&PolicyInput {
                event: &event,
                client: &client,
                previous: case.previous.map(Band::of),
                current: &current,
                draft_pending: case.pending,
                last_draft_at: case.last_draft_days_ago.map(|d| now() - Days::new(d)),
                now: now(),
                settings: PolicySettings::default(),
            });
            assert_eq!(decision, case.expected, "{}", case.name);
            assert!(!decision.to_string().is_empty());
        }
    }

    #[test]
    fn the_frequency_cap_is_configurable() {
        let client = client(ClientStatus::Active, OPTED_IN, History::Established);
        let event = event(false);
        let current = EngagementScore {
            score: 20,
            band: Band::AtRisk,
            factors: Vec::new(),
        };
        let input = |cap| PolicyInput {
            event: &event,
            client: &client,
            previous: Some(Band::Cooling),
            current: &current,
            draft_pending: false,
            last_draft_at: Some(now() - Days::new(20)),
            now: now(),
            settings: PolicySettings {
                frequency_cap_days: cap,
            },
        };
        assert_eq!(decide(&input(14)).kind(), Some(EmailKind::WinBack));
        assert_eq!(
            decide(&input(30)),
            skip(SkipReason::FrequencyCap {
                days_since_last: 20,
                cap_days: 30
            })
        );
    }

    #[test]
    fn decisions_read_as_sentences() {
        assert_eq!(
            entered(EmailKind::WinBack, Band::Cooling, Band::AtRisk).to_string(),
            "Draft win_back: Score moved from Cooling to At risk"
        );
        assert_eq!(
            skip(SkipReason::FrequencyCap {
                days_since_last: 3,
                cap_days: 14
            })
            .to_string(),
            "No draft: Last draft 3 days ago; at most one every 14 days"
        );
    }
}
