//! The explainable engagement score: a pure function of a client and the current time that
//! returns a score from 0 to 100, its band, and the named factors it is made of. The
//! factors always add up exactly to the score, and each carries a sentence a stylist can
//! read aloud ("Last Fix 94 days ago; this client usually orders every 45 days: -18").
//!
//! Every client starts from 50. Recency against the client's own cadence moves the score
//! most (-35 to +10: a client silent for over three cycles is at -35, so a long-lapsed
//! client ends up At risk however good their history); frequency (-5 to +10), keep rate
//! (-10 to +10) and its trend (-5 to +5), spend (0 to +8), ratings (-8 to +8), the tone of
//! notes (-4 to +4) and email engagement (-3 to +5) refine it. A paused client loses 15; a closed account scores 0. When the
//! factors would leave 0–100, a last "limit" factor says so, so the sum stays exact.
//!
//! Explanations are rendered on demand from the evidence each factor carries, so scoring
//! itself allocates one small vector and never formats text.

use crate::client::{Client, ClientStatus};
use crate::profile::Profile;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Where a score falls, in the words the business uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Band {
    AtRisk,
    Cooling,
    Steady,
    Thriving,
}

impl Band {
    pub const ALL: [Self; 4] = [Self::Thriving, Self::Steady, Self::Cooling, Self::AtRisk];

    /// Thriving ≥ 75, Steady 50–74, Cooling 25–49, At risk < 25.
    pub fn of(score: u8) -> Self {
        match score {
            75.. => Self::Thriving,
            50..=74 => Self::Steady,
            25..=49 => Self::Cooling,
            _ => Self::AtRisk,
        }
    }

    /// The lowest and highest score in the band (inverse of [`Band::of`]).
    pub fn score_range(self) -> (u8, u8) {
        match self {
            Self::Thriving => (75, 100),
            Self::Steady => (50, 74),
            Self::Cooling => (25, 49),
            Self::AtRisk => (0, 24),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AtRisk => "at_risk",
            Self::Cooling => "cooling",
            Self::Steady => "steady",
            Self::Thriving => "thriving",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|band| band.as_str() == raw)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::AtRisk => "At risk",
            Self::Cooling => "Cooling",
            Self::Steady => "Steady",
            Self::Thriving => "Thriving",
        }
    }
}

/// The named parts a score is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FactorName {
    Baseline,
    Recency,
    Frequency,
    KeepRate,
    KeepTrend,
    Spend,
    Feedback,
    Notes,
    EmailEngagement,
    Status,
    Limit,
}

impl FactorName {
    pub fn label(self) -> &'static str {
        match self {
            Self::Baseline => "Starting point",
            Self::Recency => "Recency",
            Self::Frequency => "Frequency",
            Self::KeepRate => "Keep rate",
            Self::KeepTrend => "Keep-rate trend",
            Self::Spend => "Spend",
            Self::Feedback => "Ratings",
            Self::Notes => "Notes",
            Self::EmailEngagement => "Email engagement",
            Self::Status => "Account status",
            Self::Limit => "Limit",
        }
    }
}

/// The facts behind a factor, kept as numbers so the sentence can be written when shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    Baseline,
    AwaitingFirstOrder {
        days_since_signup: u32,
    },
    NoOrderYet {
        days_since_signup: u32,
    },
    Recency {
        days_since_last: u32,
        cadence_days: u32,
        /// False when the client has too few Fixes for a cadence of their own.
        own_cadence: bool,
        last_was_fix: bool,
    },
    Frequency {
        orders_last_year: u32,
    },
    KeepRate {
        kept: u32,
        sent: u32,
    },
    KeepTrend {
        recent_percent: u8,
        earlier_percent: u8,
    },
    Spend {
        dollars_last_year: u32,
    },
    Ratings {
        /// Average rating times ten (44 is 4.4).
        average_tenths: u8,
        count: u8,
    },
    Notes {
        balance: i8,
        count: u8,
    },
    EmailClicked {
        days_ago: u32,
    },
    EmailOpened {
        days_ago: u32,
    },
    Status {
        status: ClientStatus,
    },
    Limit {
        unlimited: i32,
    },
}

/// One named contribution to a score, with the evidence that explains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Factor {
    pub name: FactorName,
    pub points: i32,
    pub evidence: Evidence,
}

impl Serialize for Factor {
    /// Written with its sentence, so a stored score reads the same even if wording changes.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Factor", 4)?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field("points", &self.points)?;
        s.serialize_field("evidence", &self.evidence)?;
        s.serialize_field("explanation", &self.explanation())?;
        s.end()
    }
}

/// A factor as it is written: with its sentence.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct FactorWire {
    name: FactorName,
    points: i32,
    evidence: Evidence,
    /// The sentence a stylist reads, ending with the points it adds.
    explanation: String,
}

#[cfg(feature = "openapi")]
schema_as!(Factor, FactorWire, "Factor");

fn plural(n: u32, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn days_ago(days: u32) -> String {
    match days {
        0 => "today".to_owned(),
        1 => "yesterday".to_owned(),
        n => format!("{n} days ago"),
    }
}

impl Factor {
    /// The sentence a stylist reads, ending with the points it adds.
    pub fn explanation(&self) -> String {
        let points = if self.points > 0 {
            format!("+{}", self.points)
        } else {
            self.points.to_string()
        };
        let sentence = match self.evidence {
            Evidence::Baseline => "Every client starts from 50".to_owned(),
            Evidence::AwaitingFirstOrder { days_since_signup } => format!(
                "Signed up {}; the first Fix is still to come",
                days_ago(days_since_signup)
            ),
            Evidence::NoOrderYet { days_since_signup } => format!(
                "Signed up {} and has not ordered yet",
                days_ago(days_since_signup)
            ),
            Evidence::Recency {
                days_since_last,
                cadence_days,
                own_cadence,
                last_was_fix,
            } => {
                let what = if last_was_fix { "Fix" } else { "order" };
                let usual = if own_cadence {
                    format!("this client usually orders every {cadence_days} days")
                } else {
                    format!("clients usually order every {cadence_days} days")
                };
                format!("Last {what} {}; {usual}", days_ago(days_since_last))
            }
            Evidence::Frequency { orders_last_year } => match orders_last_year {
                0 => "No orders in the last 12 months".to_owned(),
                n => format!("{} in the last 12 months", plural(n, "order", "orders")),
            },
            Evidence::KeepRate { kept, sent } => format!(
                "Keeps {}% of the items sent ({kept} of {sent})",
                percent(kept, sent)
            ),
            Evidence::KeepTrend {
                recent_percent,
                earlier_percent,
            } => {
                let direction = if recent_percent >= earlier_percent {
                    "up"
                } else {
                    "down"
                };
                format!(
                    "Keep rate is {direction}: {recent_percent}% in the last 3 Fixes against {earlier_percent}% before"
                )
            }
            Evidence::Spend { dollars_last_year } => {
                format!("Spent ${dollars_last_year} in the last 12 months")
            }
            Evidence::Ratings {
                average_tenths,
                count,
            } => format!(
                "Average rating {}.{} from the last {}",
                average_tenths / 10,
                average_tenths % 10,
                plural(u32::from(count), "rating", "ratings")
            ),
            Evidence::Notes { balance, count } => {
                let tone = match balance {
                    b if b > 0 => "sound happy",
                    b if b < 0 => "sound unhappy",
                    _ => "sound neutral",
                };
                format!(
                    "Recent notes {tone} ({})",
                    plural(u32::from(count), "note", "notes")
                )
            }
            Evidence::EmailClicked { days_ago: d } => {
                format!("Clicked a link in one of our emails {}", days_ago(d))
            }
            Evidence::EmailOpened { days_ago: d } if d > STALE_EMAIL_DAYS => {
                format!("Last opened one of our emails {}", days_ago(d))
            }
            Evidence::EmailOpened { days_ago: d } => {
                format!("Opened one of our emails {}", days_ago(d))
            }
            Evidence::Status { status } => match status {
                ClientStatus::Active => "Account is active".to_owned(),
                ClientStatus::Paused => "Has paused deliveries".to_owned(),
                ClientStatus::Closed => "Has closed the account, so the score is 0".to_owned(),
            },
            Evidence::Limit { unlimited } if unlimited > 100 => {
                format!("Scores stop at 100 (the factors add up to {unlimited})")
            }
            Evidence::Limit { unlimited } => {
                format!("Scores do not go below 0 (the factors add up to {unlimited})")
            }
        };
        format!("{sentence}: {points}")
    }
}

fn percent(part: u32, whole: u32) -> u32 {
    if whole == 0 {
        0
    } else {
        (f64::from(part) * 100.0 / f64::from(whole)).round() as u32
    }
}

/// A score with its band and the factors that explain it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EngagementScore {
    pub score: u8,
    pub band: Band,
    pub factors: Vec<Factor>,
}

/// Why a client cannot be scored as of the given moment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoreError {
    #[error("the record holds {date}, which is after the scoring date {today}")]
    FutureDate { date: NaiveDate, today: NaiveDate },
}

/// What recency scoring assumes for clients with fewer than two Fixes.
pub const DEFAULT_CADENCE_DAYS: u32 = 45;
/// A client counts as new for this long after signing up.
pub const NEW_CLIENT_DAYS: u32 = 30;
/// Spend at which the spend factor is full.
const FULL_SPEND_DOLLARS: f64 = 1000.0;
/// Emails opened longer ago than this count against engagement.
const STALE_EMAIL_DAYS: u32 = 90;
/// Ratings and notes considered: the most recent few.
const RECENT_FEEDBACK: usize = 5;
/// Fixes that make the "recent" side of the keep-rate trend.
const TREND_WINDOW: usize = 3;

fn days_between(earlier: NaiveDate, later: NaiveDate) -> u32 {
    (later - earlier).num_days().max(0) as u32
}

/// Scores a client as of `now`. Refuses a record holding dates after `now`: a score must
/// never be computed from events that have not happened yet.
pub fn engagement_score(
    client: &Client,
    now: DateTime<Utc>,
) -> Result<EngagementScore, ScoreError> {
    score_profile(&client.profile, client.status, now.date_naive())
}

/// The score of a profile and status as of `today`.
pub fn score_profile(
    profile: &Profile,
    status: ClientStatus,
    today: NaiveDate,
) -> Result<EngagementScore, ScoreError> {
    let latest = profile.latest_date();
    if latest > today {
        return Err(ScoreError::FutureDate {
            date: latest,
            today,
        });
    }
    let mut factors = Vec::with_capacity(11);
    let mut add = |name, points: f64, evidence| {
        factors.push(Factor {
            name,
            points: points.round() as i32,
            evidence,
        })
    };
    add(FactorName::Baseline, 50.0, Evidence::Baseline);

    let fixes = profile.fixes();
    let purchases = profile.purchases();
    let last_fix = fixes.last().map(|f| f.delivered_on());
    let last_purchase = purchases.last().map(|p| p.purchased_on);
    let days_since_signup = days_between(profile.signed_up_on(), today);

    // Recency against the client's own rhythm.
    match last_fix.max(last_purchase) {
        None if days_since_signup <= NEW_CLIENT_DAYS => add(
            FactorName::Recency,
            5.0,
            Evidence::AwaitingFirstOrder { days_since_signup },
        ),
        None => add(
            FactorName::Recency,
            if days_since_signup <= 90 {
                -10.0
            } else {
                -20.0
            },
            Evidence::NoOrderYet { days_since_signup },
        ),
        Some(last) => {
            let own_cadence = fixes.len() >= 2;
            let cadence_days = if own_cadence {
                let span = days_between(
                    fixes[0].delivered_on(),
                    fixes[fixes.len() - 1].delivered_on(),
                );
                (span as f64 / (fixes.len() - 1) as f64)
                    .round()
                    .clamp(14.0, 180.0) as u32
            } else {
                DEFAULT_CADENCE_DAYS
            };
            let days_since_last = days_between(last, today);
            let ratio = f64::from(days_since_last) / f64::from(cadence_days);
            add(
                FactorName::Recency,
                (10.0 - 15.0 * (ratio - 1.0)).clamp(-35.0, 10.0),
                Evidence::Recency {
                    days_since_last,
                    cadence_days,
                    own_cadence,
                    last_was_fix: last_fix == Some(last),
                },
            );
        }
    }

    // Frequency and spend over the last twelve months.
    if !fixes.is_empty() || !purchases.is_empty() {
        let year_ago = today - chrono::Days::new(365);
        let mut orders = 0u32;
        let mut cents = 0u64;
        for fix in fixes
            .iter()
            .rev()
            .take_while(|f| f.delivered_on() > year_ago)
        {
            orders += 1;
            cents += fix.order_value().cents();
        }
        for purchase in purchases
            .iter()
            .rev()
            .take_while(|p| p.purchased_on > year_ago)
        {
            orders += 1;
            cents += purchase.amount.cents();
        }
        let frequency = if orders == 0 {
            -5.0
        } else {
            f64::from(orders.min(8)) * 10.0 / 8.0
        };
        add(
            FactorName::Frequency,
            frequency,
            Evidence::Frequency {
                orders_last_year: orders,
            },
        );
        let dollars = cents as f64 / 100.0;
        add(
            FactorName::Spend,
            (dollars / FULL_SPEND_DOLLARS).min(1.0) * 8.0,
            Evidence::Spend {
                dollars_last_year: dollars.round() as u32,
            },
        );
    }

    // What the client keeps of what their stylist picks.
    if !fixes.is_empty() {
        let (kept, sent) = fixes.iter().fold((0u32, 0u32), |(k, s), f| {
            (k + u32::from(f.items_kept()), s + u32::from(f.items_sent()))
        });
        let rate = f64::from(kept) / f64::from(sent);
        add(
            FactorName::KeepRate,
            ((rate - 0.4) * 25.0).clamp(-10.0, 10.0),
            Evidence::KeepRate { kept, sent },
        );
        if fixes.len() > TREND_WINDOW {
            let (earlier, recent) = fixes.split_at(fixes.len() - TREND_WINDOW);
            let rate_of = |fixes: &[crate::profile::Fix]| {
                let (k, s) = fixes.iter().fold((0u32, 0u32), |(k, s), f| {
                    (k + u32::from(f.items_kept()), s + u32::from(f.items_sent()))
                });
                f64::from(k) / f64::from(s)
            };
            let (recent, earlier) = (rate_of(recent), rate_of(earlier));
            add(
                FactorName::KeepTrend,
                ((recent - earlier) * 20.0).clamp(-5.0, 5.0),
                Evidence::KeepTrend {
                    recent_percent: (recent * 100.0).round() as u8,
                    earlier_percent: (earlier * 100.0).round() as u8,
                },
            );
        }
    }

    // What the client tells us.
    let feedback = profile.feedback();
    if !feedback.is_empty() {
        let recent = &feedback[feedback.len().saturating_sub(RECENT_FEEDBACK)..];
        let total: u32 = recent.iter().map(|f| u32::from(f.rating().get())).sum();
        let average = f64::from(total) / recent.len() as f64;
        add(
            FactorName::Feedback,
            (average - 3.0) * 4.0,
            Evidence::Ratings {
                average_tenths: (average * 10.0).round() as u8,
                count: recent.len() as u8,
            },
        );
        let mut notes = 0u8;
        let mut balance = 0i32;
        for item in recent.iter().filter(|f| f.note().is_some()) {
            notes += 1;
            balance += i32::from(item.sentiment());
        }
        if notes > 0 {
            let balance = balance.clamp(-4, 4);
            add(
                FactorName::Notes,
                f64::from(balance),
                Evidence::Notes {
                    balance: balance as i8,
                    count: notes,
                },
            );
        }
    }

    // How the client responds to our emails.
    let engagement = profile.engagement();
    let days_to = |at: DateTime<Utc>| days_between(at.date_naive(), today);
    let clicked = engagement.last_clicked_at.map(days_to);
    let opened = engagement.last_opened_at.map(days_to);
    match (clicked, opened) {
        (Some(d), _) if d <= 30 => add(
            FactorName::EmailEngagement,
            5.0,
            Evidence::EmailClicked { days_ago: d },
        ),
        (_, Some(d)) if d <= 30 => add(
            FactorName::EmailEngagement,
            3.0,
            Evidence::EmailOpened { days_ago: d },
        ),
        (None, None) => {}
        (clicked, opened) => {
            let d = clicked.into_iter().chain(opened).min().unwrap_or(u32::MAX);
            add(
                FactorName::EmailEngagement,
                if d <= STALE_EMAIL_DAYS { 1.0 } else { -3.0 },
                Evidence::EmailOpened { days_ago: d },
            );
        }
    }

    let subtotal: i32 = factors.iter().map(|f| f.points).sum();
    let status_points = match status {
        ClientStatus::Active => None,
        ClientStatus::Paused => Some(-15),
        ClientStatus::Closed => Some(-subtotal),
    };
    if let Some(points) = status_points {
        factors.push(Factor {
            name: FactorName::Status,
            points,
            evidence: Evidence::Status { status },
        });
    }
    let total: i32 = factors.iter().map(|f| f.points).sum();
    if !(0..=100).contains(&total) {
        factors.push(Factor {
            name: FactorName::Limit,
            points: total.clamp(0, 100) - total,
            evidence: Evidence::Limit { unlimited: total },
        });
    }
    let score = total.clamp(0, 100) as u8;
    Ok(EngagementScore {
        score,
        band: Band::of(score),
        factors,
    })
}

#[cfg(test)]
mod band_tests {
    use super::Band;

    #[test]
    fn band_ranges_invert_band_of() {
        for score in 0..=100u8 {
            let (low, high) = Band::of(score).score_range();
            assert!((low..=high).contains(&score), "score {score}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{EmailConsent, EmailEngagement, Feedback, Fix, Money, Purchase, Rating};
    use chrono::Days;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()
    }

    fn days_before(days: u64) -> NaiveDate {
        today() - Days::new(days)
    }

    /// A client who signed up `signup` days ago and had a Fix on each of `fix_days` (days
    /// before today) with `kept` of 5 items kept at $60 each.
    fn profile(signup: u64, fix_days: &[(u64, u8)]) -> Profile {
        let mut profile = Profile::joined(days_before(signup), EmailConsent::NotGiven);
        for &(days, kept) in fix_days {
            let fix = Fix::new(
                days_before(days),
                5,
                kept,
                Money::from_cents(6000 * u64::from(kept)),
            )
            .unwrap();
            profile.add_fix(fix).unwrap();
        }
        profile
    }

    fn score(profile: &Profile, status: ClientStatus) -> EngagementScore {
        score_profile(profile, status, today()).unwrap()
    }

    fn points(score: &EngagementScore, name: FactorName) -> Option<i32> {
        score
            .factors
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.points)
    }

    fn assert_sums(score: &EngagementScore) {
        let sum: i32 = score.factors.iter().map(|f| f.points).sum();
        assert_eq!(sum, i32::from(score.score), "{:#?}", score.factors);
        assert_eq!(score.band, Band::of(score.score));
    }

    #[test]
    fn bands_follow_the_published_thresholds() {
        assert_eq!(Band::of(100), Band::Thriving);
        assert_eq!(Band::of(75), Band::Thriving);
        assert_eq!(Band::of(74), Band::Steady);
        assert_eq!(Band::of(50), Band::Steady);
        assert_eq!(Band::of(49), Band::Cooling);
        assert_eq!(Band::of(25), Band::Cooling);
        assert_eq!(Band::of(24), Band::AtRisk);
        assert_eq!(Band::of(0), Band::AtRisk);
    }

    #[test]
    fn a_brand_new_client_is_steady_and_awaiting_a_first_fix() {
        let s = score(&profile(0, &[]), ClientStatus::Active);
        assert_eq!(s.score, 55);
        assert_eq!(s.band, Band::Steady);
        let recency = s
            .factors
            .iter()
            .find(|f| f.name == FactorName::Recency)
            .unwrap();
        assert_eq!(
            recency.explanation(),
            "Signed up today; the first Fix is still to come: +5"
        );
        assert_sums(&s);
    }

    #[test]
    fn a_client_who_never_ordered_cools_off() {
        assert_eq!(score(&profile(60, &[]), ClientStatus::Active).score, 40);
        assert_eq!(
            score(&profile(200, &[]), ClientStatus::Active).band,
            Band::Cooling
        );
        assert_eq!(score(&profile(200, &[]), ClientStatus::Active).score, 30);
    }

    #[test]
    fn one_fix_uses_the_usual_cadence_of_all_clients() {
        let s = score(&profile(100, &[(10, 2)]), ClientStatus::Active);
        let recency = s
            .factors
            .iter()
            .find(|f| f.name == FactorName::Recency)
            .unwrap();
        assert_eq!(recency.points, 10);
        assert_eq!(
            recency.explanation(),
            "Last Fix 10 days ago; clients usually order every 45 days: +10"
        );
        assert_eq!(
            points(&s, FactorName::KeepTrend),
            None,
            "no trend from one Fix"
        );
        assert_sums(&s);
    }

    #[test]
    fn recency_is_measured_against_the_clients_own_cadence() {
        // Fixes every 45 days, the last one 94 days ago: overdue by about two cycles.
        let overdue = score(
            &profile(400, &[(274, 2), (229, 2), (184, 2), (139, 2), (94, 2)]),
            ClientStatus::Active,
        );
        let recency = overdue
            .factors
            .iter()
            .find(|f| f.name == FactorName::Recency)
            .unwrap();
        assert_eq!(
            recency.explanation(),
            "Last Fix 94 days ago; this client usually orders every 45 days: -6"
        );
        // The same 94 days is on time for a client who orders every 90 days.
        let slow = score(
            &profile(400, &[(364, 2), (274, 2), (184, 2), (94, 2)]),
            ClientStatus::Active,
        );
        assert_eq!(points(&slow, FactorName::Recency), Some(9));
    }

    #[test]
    fn recency_bottoms_out_for_long_lapsed_clients() {
        let lapsed = score(
            &profile(900, &[(800, 1), (770, 1), (740, 1)]),
            ClientStatus::Active,
        );
        assert_eq!(points(&lapsed, FactorName::Recency), Some(-35));
        assert_eq!(points(&lapsed, FactorName::Frequency), Some(-5));
        assert_eq!(lapsed.band, Band::AtRisk);
        assert_sums(&lapsed);
    }

    #[test]
    fn keep_rate_and_its_trend_are_explained() {
        let improving = score(
            &profile(
                300,
                &[(200, 0), (170, 1), (140, 1), (110, 4), (80, 5), (50, 4)],
            ),
            ClientStatus::Active,
        );
        let keep = improving
            .factors
            .iter()
            .find(|f| f.name == FactorName::KeepRate)
            .unwrap();
        assert_eq!(
            keep.explanation(),
            "Keeps 50% of the items sent (15 of 30): +2"
        );
        let trend = improving
            .factors
            .iter()
            .find(|f| f.name == FactorName::KeepTrend)
            .unwrap();
        assert_eq!(trend.points, 5);
        assert!(
            trend
                .explanation()
                .starts_with("Keep rate is up: 87% in the last 3 Fixes against 13% before")
        );
        let declining = score(
            &profile(
                300,
                &[(200, 5), (170, 4), (140, 5), (110, 1), (80, 0), (50, 1)],
            ),
            ClientStatus::Active,
        );
        assert_eq!(points(&declining, FactorName::KeepTrend), Some(-5));
    }

    #[test]
    fn spend_counts_fixes_and_freestyle_purchases_of_the_last_year() {
        let mut p = profile(500, &[(400, 5), (100, 5)]);
        p.add_purchase(Purchase {
            purchased_on: days_before(20),
            amount: Money::from_cents(20000),
        })
        .unwrap();
        let s = score(&p, ClientStatus::Active);
        let spend = s
            .factors
            .iter()
            .find(|f| f.name == FactorName::Spend)
            .unwrap();
        assert_eq!(spend.explanation(), "Spent $500 in the last 12 months: +4");
        let recency = s
            .factors
            .iter()
            .find(|f| f.name == FactorName::Recency)
            .unwrap();
        assert!(recency.explanation().starts_with("Last order 20 days ago"));
        assert_eq!(points(&s, FactorName::Frequency), Some(3));
    }

    #[test]
    fn ratings_and_the_tone_of_notes_count() {
        let mut p = profile(200, &[(30, 2)]);
        for (days, rating, note) in [
            (100, 5, None),
            (60, 2, Some("Disappointed, the jeans were too tight")),
            (29, 1, Some("Awful. Wrong sizes again, thinking to cancel")),
        ] {
            let item = Feedback::new(
                days_before(days),
                Rating::parse("rating", rating).unwrap(),
                note,
            )
            .unwrap();
            p.add_feedback(item).unwrap();
        }
        let s = score(&p, ClientStatus::Active);
        let ratings = s
            .factors
            .iter()
            .find(|f| f.name == FactorName::Feedback)
            .unwrap();
        assert_eq!(
            ratings.explanation(),
            "Average rating 2.7 from the last 3 ratings: -1"
        );
        let notes = s
            .factors
            .iter()
            .find(|f| f.name == FactorName::Notes)
            .unwrap();
        assert_eq!(
            notes.explanation(),
            "Recent notes sound unhappy (2 notes): -4"
        );
        assert_sums(&s);
    }

    #[test]
    fn email_engagement_rewards_recent_clicks_and_notes_silence() {
        let at = |days: u64| days_before(days).and_hms_opt(9, 0, 0).unwrap().and_utc();
        let mut p = profile(400, &[(30, 2)]);
        p.set_engagement(EmailEngagement {
            last_opened_at: Some(at(3)),
            last_clicked_at: Some(at(3)),
            open_hours: [0; 24],
        });
        assert_eq!(
            points(
                &score(&p, ClientStatus::Active),
                FactorName::EmailEngagement
            ),
            Some(5)
        );
        p.set_engagement(EmailEngagement {
            last_opened_at: Some(at(10)),
            last_clicked_at: None,
            open_hours: [0; 24],
        });
        assert_eq!(
            points(
                &score(&p, ClientStatus::Active),
                FactorName::EmailEngagement
            ),
            Some(3)
        );
        p.set_engagement(EmailEngagement {
            last_opened_at: Some(at(60)),
            last_clicked_at: Some(at(200)),
            open_hours: [0; 24],
        });
        assert_eq!(
            points(
                &score(&p, ClientStatus::Active),
                FactorName::EmailEngagement
            ),
            Some(1)
        );
        p.set_engagement(EmailEngagement {
            last_opened_at: Some(at(300)),
            last_clicked_at: None,
            open_hours: [0; 24],
        });
        let stale = score(&p, ClientStatus::Active);
        let factor = stale
            .factors
            .iter()
            .find(|f| f.name == FactorName::EmailEngagement)
            .unwrap();
        assert_eq!(
            factor.explanation(),
            "Last opened one of our emails 300 days ago: -3"
        );
    }

    #[test]
    fn paused_and_closed_clients_are_marked_down() {
        let p = profile(300, &[(100, 3), (60, 3), (20, 3)]);
        let active = score(&p, ClientStatus::Active);
        let paused = score(&p, ClientStatus::Paused);
        assert_eq!(i32::from(active.score) - 15, i32::from(paused.score));
        let closed = score(&p, ClientStatus::Closed);
        assert_eq!(closed.score, 0);
        assert_eq!(closed.band, Band::AtRisk);
        assert_sums(&closed);
    }

    #[test]
    fn a_perfect_client_is_capped_at_100_with_a_limit_factor() {
        let days: Vec<(u64, u8)> = (0..12).map(|i| (10 + 30 * i, 5)).collect();
        let mut p = profile(400, &days);
        p.add_feedback(
            Feedback::new(
                days_before(5),
                Rating::parse("r", 5).unwrap(),
                Some("Love it, perfect!"),
            )
            .unwrap(),
        )
        .unwrap();
        let at = days_before(2).and_hms_opt(9, 0, 0).unwrap().and_utc();
        p.set_engagement(EmailEngagement {
            last_opened_at: Some(at),
            last_clicked_at: Some(at),
            open_hours: [0; 24],
        });
        let s = score(&p, ClientStatus::Active);
        assert_eq!(s.score, 100);
        let limit = s
            .factors
            .iter()
            .find(|f| f.name == FactorName::Limit)
            .unwrap();
        assert!(limit.explanation().starts_with("Scores stop at 100"));
        assert_sums(&s);
    }

    #[test]
    fn future_dates_are_rejected() {
        let p = profile(10, &[(5, 1)]);
        let earlier = today() - Days::new(7);
        assert_eq!(
            score_profile(&p, ClientStatus::Active, earlier),
            Err(ScoreError::FutureDate {
                date: days_before(5),
                today: earlier
            })
        );
    }

    #[test]
    fn factors_add_up_to_the_score_across_many_histories() {
        // A deterministic sweep over histories, statuses and feedback.
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..2000 {
            let signup = 1 + next(1500);
            let count = next(15) as usize;
            let mut fixes: Vec<(u64, u8)> =
                (0..count).map(|_| (next(signup), next(6) as u8)).collect();
            fixes.sort_by_key(|f| std::cmp::Reverse(f.0));
            let mut p = profile(signup, &fixes);
            for _ in 0..next(4) {
                let note = ["love it", "too tight", "ok"][next(3) as usize];
                let rating = Rating::parse("r", 1 + next(5) as i64).unwrap();
                p.add_feedback(
                    Feedback::new(days_before(next(signup)), rating, Some(note)).unwrap(),
                )
                .unwrap();
            }
            for status in [
                ClientStatus::Active,
                ClientStatus::Paused,
                ClientStatus::Closed,
            ] {
                let s = score(&p, status);
                assert_sums(&s);
                assert!(s.factors.iter().all(|f| !f.explanation().is_empty()));
            }
        }
    }

    #[test]
    fn scores_serialise_with_their_sentences() {
        let s = score(&profile(0, &[]), ClientStatus::Active);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json["factors"][1]["explanation"],
            "Signed up today; the first Fix is still to come: +5"
        );
        let back: EngagementScore = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }
}
