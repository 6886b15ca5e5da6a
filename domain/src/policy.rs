//! The drafting policy: given what just happened to a client and how their score moved,
//! should a stylist be handed a draft email, and of which kind? Every decision, yes or no,
//! carries its reason, so "why did (or didn't) this client get an email?" always has an
//! answer.
//!
//! First the trigger: a welcome for a new client, a win-back on entering At risk, a check-in
//! on entering Cooling from above, a celebration on entering Thriving; and, for a client
//! who stays At risk or Cooling, the same again (re-engagement: each rescore reconsiders
//! them, so a skipped or rejected win-back is not the last). Then the guards, in order:
//! closed account, unsubscribed, no consent, a draft already awaiting review, a draft
//! rejected within the cool-off, the frequency cap (default one draft per client per 14
//! days) and the attempts of this episode used up (default 3). Last, a share of the
//! touches is held out at random for comparison ([`crate::outcomes`]).

use crate::client::Client;
use crate::consent::NoEmail;
use crate::email::EmailKind;
use crate::event::{DomainEvent, EventKind};
use crate::outcomes::{self, HoldoutShares};
use crate::score::{Band, EngagementScore, NEW_CLIENT_DAYS};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Tunable limits of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicySettings {
    /// At most one draft per client within this many days.
    pub frequency_cap_days: u32,
    /// Emails (or holdouts) at most per episode: one stay in At risk or Cooling.
    pub max_attempts: u32,
    /// Days after a stylist rejects a draft before the client is reconsidered.
    pub reject_cool_off_days: u32,
    /// The share of each kind's touches held out for comparison.
    pub holdout: HoldoutShares,
}

impl PolicySettings {
    /// The defaults without a holdout: every draft the rules call for is written (tests
    /// and demos that expect a given client's draft).
    pub fn without_holdout() -> Self {
        Self {
            holdout: HoldoutShares::all(0.0),
            ..Self::default()
        }
    }
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            frequency_cap_days: 14,
            max_attempts: 3,
            reject_cool_off_days: 7,
            holdout: HoldoutShares::default(),
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
    /// When a stylist last rejected a draft for this client.
    pub last_rejected_at: Option<DateTime<Utc>>,
    /// When the client entered its current band, if known: the start of the episode.
    pub band_since: Option<DateTime<Utc>>,
    /// The client's recent decisions, newest first (those of the current episode at least).
    pub recent: &'a [outcomes::Decision],
    pub now: DateTime<Utc>,
    pub settings: PolicySettings,
}

/// Why a draft is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DraftReason {
    NewClient,
    EnteredBand {
        from: Band,
        to: Band,
    },
    /// Still in `band`, `days` after entering it (re-engagement).
    StillInBand {
        band: Band,
        days: Option<u32>,
    },
}

impl DraftReason {
    /// A stable code for the reason, as decisions are stored.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NewClient => "new_client",
            Self::EnteredBand { .. } => "entered_band",
            Self::StillInBand { .. } => "still_in_band",
        }
    }
}

impl fmt::Display for DraftReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NewClient => f.write_str("New client: a welcome from their stylist"),
            Self::EnteredBand { from, to } => {
                write!(f, "Score moved from {} to {}", from.label(), to.label())
            }
            Self::StillInBand {
                band,
                days: Some(days),
            } => write!(f, "Still {} after {days} days", band.label()),
            Self::StillInBand { band, days: None } => write!(f, "Still {}", band.label()),
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
    /// A stylist rejected a draft for this client within the cool-off.
    RecentlyRejected {
        days_since: u32,
        cool_off_days: u32,
    },
    FrequencyCap {
        days_since_last: u32,
        cap_days: u32,
    },
    /// This episode's attempts are used up.
    AttemptsUsedUp {
        attempts: u32,
    },
}

impl SkipReason {
    /// A stable code for the reason, as decisions are stored.
    pub fn code(&self) -> &'static str {
        match self {
            Self::FirstScore { .. } => "first_score",
            Self::SameBand { .. } => "same_band",
            Self::NoTrigger { .. } => "no_trigger",
            Self::AccountClosed => "account_closed",
            Self::Unsubscribed => "unsubscribed",
            Self::NoConsent => "no_consent",
            Self::DraftAwaitingReview => "draft_pending",
            Self::RecentlyRejected { .. } => "recently_rejected",
            Self::FrequencyCap { .. } => "frequency_cap",
            Self::AttemptsUsedUp { .. } => "attempts_used_up",
        }
    }
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
            Self::RecentlyRejected {
                days_since,
                cool_off_days,
            } => write!(
                f,
                "A draft was rejected {days_since} days ago; reconsidered after {cool_off_days}"
            ),
            Self::AttemptsUsedUp { attempts } => write!(
                f,
                "{attempts} attempts already in this stay; no more until the client moves"
            ),
            Self::FrequencyCap {
                days_since_last,
                cap_days,
            } => write!(
                f,
                "Last touch {days_since_last} days ago; at most one every {cap_days} days"
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
    /// Would be drafted, but held out at random for comparison.
    HoldOut {
        kind: EmailKind,
        reason: DraftReason,
    },
    /// A `kind` email was called for, but a guard stopped it.
    Blocked { kind: EmailKind, reason: SkipReason },
    /// Nothing called for an email.
    Skip { reason: SkipReason },
}

impl Decision {
    /// The kind of email to draft, if one is.
    pub fn kind(self) -> Option<EmailKind> {
        match self {
            Self::Draft { kind, .. } => Some(kind),
            Self::HoldOut { .. } | Self::Blocked { .. } | Self::Skip { .. } => None,
        }
    }

    /// Why, in a stylist's words (without what was decided).
    pub fn why(self) -> String {
        match self {
            Self::Draft { reason, .. } | Self::HoldOut { reason, .. } => reason.to_string(),
            Self::Blocked { reason, .. } | Self::Skip { reason } => reason.to_string(),
        }
    }

    /// The decision as it is kept, when a trigger fired (`None` for a plain skip).
    pub fn outcome(self) -> Option<(EmailKind, outcomes::DecisionOutcome, &'static str)> {
        use outcomes::DecisionOutcome;
        match self {
            Self::Draft { kind, reason } => Some((kind, DecisionOutcome::Drafted, reason.code())),
            Self::HoldOut { kind, .. } => Some((kind, DecisionOutcome::HeldOut, "holdout")),
            Self::Blocked { kind, reason } => Some((kind, DecisionOutcome::Skipped, reason.code())),
            Self::Skip { .. } => None,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Draft { kind, reason } => write!(f, "Draft {}: {reason}", kind.as_str()),
            Self::HoldOut { kind, reason } => write!(
                f,
                "Held out of a {} for comparison: {reason}",
                kind.label().to_lowercase()
            ),
            Self::Blocked { kind, reason } => {
                write!(f, "No {}: {reason}", kind.label().to_lowercase())
            }
            Self::Skip { reason } => write!(f, "No draft: {reason}"),
        }
    }
}

/// Decides whether to draft, and why.
pub fn decide(input: &PolicyInput<'_>) -> Decision {
    let (kind, reason) = match trigger(input) {
        Ok(found) => found,
        Err(reason) => return Decision::Skip { reason },
    };
    let blocked = |reason| Decision::Blocked { kind, reason };
    match crate::consent::may_email(input.client) {
        Ok(()) => {}
        Err(NoEmail::AccountClosed) => return blocked(SkipReason::AccountClosed),
        Err(NoEmail::Unsubscribed) => return blocked(SkipReason::Unsubscribed),
        Err(NoEmail::NoConsent) => return blocked(SkipReason::NoConsent),
    }
    if input.draft_pending {
        return blocked(SkipReason::DraftAwaitingReview);
    }
    let days_since = |at: DateTime<Utc>| (input.now - at).num_days().max(0) as u32;
    if let Some(rejected) = input.last_rejected_at {
        let cool_off_days = input.settings.reject_cool_off_days;
        if days_since(rejected) < cool_off_days {
            return blocked(SkipReason::RecentlyRejected {
                days_since: days_since(rejected),
                cool_off_days,
            });
        }
    }
    // The cap counts every touch: a held-out client is treated as if emailed, so the
    // comparison stays fair and the holdout is not reconsidered on their next change.
    let last_touch = input
        .recent
        .iter()
        .filter(|d| d.outcome.is_touch())
        .map(|d| d.decided_at)
        .max();
    if let Some(last) = input.last_draft_at.max(last_touch) {
        let cap_days = input.settings.frequency_cap_days;
        if days_since(last) < cap_days {
            return blocked(SkipReason::FrequencyCap {
                days_since_last: days_since(last),
                cap_days,
            });
        }
    }
    if matches!(reason, DraftReason::StillInBand { .. }) {
        // The episode began when the client entered the band; its touches so far.
        let attempts = input
            .recent
            .iter()
            .filter(|d| d.outcome.is_touch())
            .filter(|d| input.band_since.is_none_or(|since| d.decided_at >= since))
            .count() as u32;
        if attempts >= input.settings.max_attempts {
            return blocked(SkipReason::AttemptsUsedUp { attempts });
        }
    }
    let share = input.settings.holdout.of(kind);
    if outcomes::held_out(&input.client.id, kind, &input.event.id, share) {
        return Decision::HoldOut { kind, reason };
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
        // Re-engagement: a client who stays At risk or Cooling is reconsidered.
        let kind = match current {
            Band::AtRisk => EmailKind::WinBack,
            Band::Cooling => EmailKind::CheckIn,
            _ => return Err(SkipReason::SameBand { band: current }),
        };
        // Only a stay that began with a call for that email (entering the band from
        // above): a client recovering into Cooling is not checked in on.
        let called_for = input
            .recent
            .iter()
            .any(|d| d.kind == kind && input.band_since.is_none_or(|since| d.decided_at >= since));
        if !called_for {
            return Err(SkipReason::SameBand { band: current });
        }
        let days = input
            .band_since
            .map(|since| (input.now - since).num_days().max(0) as u32);
        return Ok((
            kind,
            DraftReason::StillInBand {
                band: current,
                days,
            },
        ));
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

    fn blocked(reason: SkipReason) -> Decision {
        Decision::Blocked {
            kind: EmailKind::WinBack,
            reason,
        }
    }

    /// No holdout, so every case is decided by the rules alone.
    fn settings() -> PolicySettings {
        PolicySettings {
            holdout: HoldoutShares::all(0.0),
            ..PolicySettings::default()
        }
    }

    fn input<'a>(
        event: &'a DomainEvent,
        client: &'a Client,
        previous: Option<Band>,
        current: &'a EngagementScore,
        recent: &'a [outcomes::Decision],
    ) -> PolicyInput<'a> {
        PolicyInput {
            event,
            client,
            previous,
            current,
            draft_pending: false,
            last_draft_at: None,
            last_rejected_at: None,
            band_since: None,
            recent,
            now: now(),
            settings: settings(),
        }
    }

    fn score(score: u8) -> EngagementScore {
        EngagementScore {
            score,
            band: Band::of(score),
            factors: Vec::new(),
        }
    }

    /// A stored decision about c-1, `days` ago.
    fn decided(
        kind: EmailKind,
        outcome: outcomes::DecisionOutcome,
        days: u64,
    ) -> outcomes::Decision {
        outcomes::Decision {
            event_id: EventId::new(format!("earlier-{days}")),
            client_id: crate::ClientId::new("c-1"),
            stylist_id: crate::StylistId::new("st-1"),
            kind,
            outcome,
            reason: String::new(),
            reason_code: String::new(),
            decided_at: now() - Days::new(days),
            email_id: None,
            writer: None,
            prompt_version: None,
            expected_purchases: None,
            conversion: None,
        }
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
                previous: Some(55),
                current: 60,
                expected: skip(SkipReason::SameBand { band: Band::Steady }),
                ..BASE
            },
            Case {
                name: "staying At risk with no call for a win-back in this stay needs none",
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
                expected: blocked(SkipReason::AccountClosed),
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
                expected: blocked(SkipReason::Unsubscribed),
                ..BASE
            },
            Case {
                name: "a client who never agreed gets nothing",
                consent: EmailConsent::NotGiven,
                previous: Some(40),
                current: 20,
                expected: blocked(SkipReason::NoConsent),
                ..BASE
            },
            Case {
                name: "a new client without consent gets no welcome",
                created: true,
                history: History::New,
                consent: EmailConsent::NotGiven,
                previous: None,
                current: 55,
                expected: Decision::Blocked {
                    kind: EmailKind::Welcome,
                    reason: SkipReason::NoConsent,
                },
                ..BASE
            },
            Case {
                name: "no draft while another awaits review",
                pending: true,
                previous: Some(40),
                current: 20,
                expected: blocked(SkipReason::DraftAwaitingReview),
                ..BASE
            },
            Case {
                name: "the frequency cap holds inside 14 days",
                last_draft_days_ago: Some(13),
                previous: Some(40),
                current: 20,
                expected: blocked(SkipReason::FrequencyCap {
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
                draft_pending: case.pending,
                last_draft_at: case.last_draft_days_ago.map(|d| now() - Days::new(d)),
                ..input(&event, &client, case.previous.map(Band::of), &current, &[])
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
        let with_cap = |cap| PolicyInput {
            last_draft_at: Some(now() - Days::new(20)),
            settings: PolicySettings {
                frequency_cap_days: cap,
                ..settings()
            },
            ..input(&event, &client, Some(Band::Cooling), &current, &[])
        };
        assert_eq!(decide(&with_cap(14)).kind(), Some(EmailKind::WinBack));
        assert_eq!(
            decide(&with_cap(30)),
            blocked(SkipReason::FrequencyCap {
                days_since_last: 20,
                cap_days: 30
            })
        );
    }

    #[test]
    fn a_client_who_stays_at_risk_is_reconsidered_until_the_episodes_attempts_are_used_up() {
        use outcomes::DecisionOutcome::{Drafted, HeldOut, Skipped};
        let client = client(ClientStatus::Active, OPTED_IN, History::Established);
        let event = event(false);
        let current = score(15);
        let stay = |recent: &[outcomes::Decision], last_draft: Option<u64>| {
            decide(&PolicyInput {
                band_since: Some(now() - Days::new(40)),
                last_draft_at: last_draft.map(|d| now() - Days::new(d)),
                ..input(&event, &client, Some(Band::AtRisk), &current, recent)
            })
        };
        // Capped the first time: the next rescore after the cap tries again.
        let capped = [decided(EmailKind::WinBack, Skipped, 30)];
        assert_eq!(
            stay(&capped, None),
            Decision::Draft {
                kind: EmailKind::WinBack,
                reason: DraftReason::StillInBand {
                    band: Band::AtRisk,
                    days: Some(40)
                }
            }
        );
        assert_eq!(
            stay(&capped, Some(3)),
            blocked(SkipReason::FrequencyCap {
                days_since_last: 3,
                cap_days: 14
            })
        );
        // Three touches in this stay (a holdout counts): no more.
        let three = [
            decided(EmailKind::WinBack, Drafted, 15),
            decided(EmailKind::WinBack, HeldOut, 25),
            decided(EmailKind::WinBack, Drafted, 35),
        ];
        assert_eq!(
            stay(&three, Some(15)),
            blocked(SkipReason::AttemptsUsedUp { attempts: 3 })
        );
        // A touch from before this stay does not count.
        let older = [
            decided(EmailKind::WinBack, Drafted, 15),
            decided(EmailKind::WinBack, Drafted, 35),
            decided(EmailKind::WinBack, Drafted, 90),
        ];
        assert_eq!(stay(&older, Some(15)).kind(), Some(EmailKind::WinBack));
    }

    #[test]
    fn a_rejected_draft_is_followed_up_only_after_the_cool_off() {
        let client = client(ClientStatus::Active, OPTED_IN, History::Established);
        let event = event(false);
        let current = score(30);
        let recent = [decided(
            EmailKind::CheckIn,
            outcomes::DecisionOutcome::Drafted,
            16,
        )];
        let rejected = |days| {
            decide(&PolicyInput {
                last_rejected_at: Some(now() - Days::new(days)),
                last_draft_at: Some(now() - Days::new(16)),
                ..input(&event, &client, Some(Band::Cooling), &current, &recent)
            })
        };
        assert_eq!(
            rejected(2),
            Decision::Blocked {
                kind: EmailKind::CheckIn,
                reason: SkipReason::RecentlyRejected {
                    days_since: 2,
                    cool_off_days: 7
                }
            }
        );
        assert_eq!(rejected(8).kind(), Some(EmailKind::CheckIn));
    }

    #[test]
    fn a_share_of_touches_is_held_out_and_the_same_decision_stays_held_out() {
        let client = client(ClientStatus::Active, OPTED_IN, History::Established);
        let current = score(20);
        let all_held = PolicySettings {
            holdout: HoldoutShares::all(HoldoutShares::MAX),
            ..settings()
        };
        let (mut held, mut drafted) = (0, 0);
        for i in 0..200 {
            let mut event = event(false);
            event.id = EventId::new(format!("e-{i}"));
            let decide_once = || {
                decide(&PolicyInput {
                    settings: all_held,
                    ..input(&event, &client, Some(Band::Cooling), &current, &[])
                })
            };
            let decision = decide_once();
            assert_eq!(decision, decide_once(), "the same decision again");
            match decision {
                Decision::HoldOut { kind, .. } => {
                    assert_eq!(kind, EmailKind::WinBack);
                    held += 1;
                }
                Decision::Draft { .. } => drafted += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!((70..130).contains(&held), "{held} of 200 held out at 50%");
        assert_eq!(held + drafted, 200);

        // A client held out three days ago is capped as if emailed then: no new touch.
        let event = event(false);
        let earlier = [decided(
            EmailKind::WinBack,
            outcomes::DecisionOutcome::HeldOut,
            3,
        )];
        assert_eq!(
            decide(&PolicyInput {
                settings: all_held,
                ..input(&event, &client, Some(Band::AtRisk), &current, &earlier)
            }),
            Decision::Blocked {
                kind: EmailKind::WinBack,
                reason: SkipReason::FrequencyCap {
                    days_since_last: 3,
                    cap_days: 14
                }
            }
        );
    }

    #[test]
    fn decisions_read_as_sentences() {
        assert_eq!(
            entered(EmailKind::WinBack, Band::Cooling, Band::AtRisk).to_string(),
            "Draft win_back: Score moved from Cooling to At risk"
        );
        assert_eq!(
            blocked(SkipReason::FrequencyCap {
                days_since_last: 3,
                cap_days: 14
            })
            .to_string(),
            "No win-back: Last touch 3 days ago; at most one every 14 days"
        );
    }
}
