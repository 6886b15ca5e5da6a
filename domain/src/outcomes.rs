//! Does the outreach work? Every time the policy is asked to reach a client — a trigger
//! fired — its answer is kept as a [`Decision`]: an email drafted, the client held out
//! (no email, kept back for comparison), or a skip with its reason. A Fix delivered or a
//! purchase within the attribution window after a drafted or held-out decision converts
//! it (last touch: the purchase goes to the latest such decision before it). Comparing how
//! often emailed and held-out clients convert — with a confidence interval — says whether
//! the emails help; beside it, purchases against what the BG/NBD model expected.
//!
//! The comparison is by intention to treat: a client counts as emailed from the moment the
//! policy chose to email them, whether or not the stylist then sent the draft, just as a
//! held-out client counts from the moment they were kept back. That keeps the two groups
//! alike but for the choice the holdout made at random.

use crate::client::{ClientId, StylistId};
use crate::email::{EmailId, EmailKind};
use crate::event::EventId;
use crate::profile::Profile;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// What the policy did when a trigger fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DecisionOutcome {
    /// A draft was written for the stylist.
    Drafted,
    /// Kept back at random for comparison: no draft.
    HeldOut,
    /// Not drafted, for the reason given (cap, pending draft, consent, attempts used up…).
    Skipped,
}

impl DecisionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drafted => "drafted",
            Self::HeldOut => "held_out",
            Self::Skipped => "skipped",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Drafted, Self::HeldOut, Self::Skipped]
            .into_iter()
            .find(|o| o.as_str() == raw)
    }

    /// Whether the decision is a touch: one the comparison counts (emailed or held out).
    pub fn is_touch(self) -> bool {
        matches!(self, Self::Drafted | Self::HeldOut)
    }
}

/// A purchase that converted a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conversion {
    /// The day of the first purchase within the window.
    pub on: NaiveDate,
    /// How many purchases (Fixes delivered and Freestyle purchases) fell to it.
    pub purchases: u32,
    /// What they came to, in cents.
    pub value_cents: i64,
}

/// "2 purchases (240.00) from 2026-05-03".
impl std::fmt::Display for Conversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} purchase{} ({}.{:02}) from {}",
            self.purchases,
            if self.purchases == 1 { "" } else { "s" },
            self.value_cents / 100,
            self.value_cents.rem_euclid(100),
            self.on
        )
    }
}

/// One decision of the policy about one client, kept for the client's timeline and for
/// the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decision {
    /// The event the decision was made on: its id is the decision's.
    pub event_id: EventId,
    pub client_id: ClientId,
    pub stylist_id: StylistId,
    pub kind: EmailKind,
    pub outcome: DecisionOutcome,
    /// Why, in a stylist's words.
    pub reason: String,
    /// A stable code for the reason (`new_client`, `entered_band`, `still_in_band`,
    /// `holdout`, `frequency_cap`, `draft_pending`, `no_consent`, …).
    pub reason_code: String,
    pub decided_at: DateTime<Utc>,
    /// The draft, when one was written.
    pub email_id: Option<EmailId>,
    /// Who wrote the draft (`template` or a model id) and with which prompt.
    pub writer: Option<String>,
    pub prompt_version: Option<String>,
    /// Purchases the BG/NBD model expected of the client within the window, when a model
    /// is fitted.
    pub expected_purchases: Option<f64>,
    pub conversion: Option<Conversion>,
}

impl Decision {
    /// The decision as a line of the client's timeline: what was decided, why, and what
    /// followed ("Win-back drafted: Score moved from Cooling to At risk; bought within
    /// 30 days: 2 purchases, 129.00").
    pub fn line(&self) -> String {
        let kind = self.kind.label();
        let what = match self.outcome {
            DecisionOutcome::Drafted => format!("{kind} drafted"),
            DecisionOutcome::HeldOut => format!("{kind} held out for comparison"),
            DecisionOutcome::Skipped => format!("No {}", kind.to_lowercase()),
        };
        let mut line = format!("{what}: {}", self.reason);
        if let Some(c) = self.conversion {
            line.push_str(&format!("; then bought: {c}"));
        }
        line
    }

    /// The decision as kept once the store has written (or dropped) its draft: a drafted
    /// decision names the email; one whose draft the store dropped (another draft already
    /// waited: two events decided at once) is kept as the skip it became.
    pub fn with_draft(mut self, email: Option<EmailId>) -> Self {
        if self.outcome == DecisionOutcome::Drafted {
            match email {
                Some(email) => self.email_id = Some(email),
                None => {
                    self.outcome = DecisionOutcome::Skipped;
                    self.reason_code = "draft_pending".into();
                    self.reason = "An earlier draft still awaits review".into();
                    self.writer = None;
                    self.prompt_version = None;
                    self.expected_purchases = None;
                }
            }
        }
        self
    }
}

/// The settings of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutcomeSettings {
    /// Days after a decision within which a purchase converts it.
    pub window_days: u32,
    /// The share of touches held out, per kind (welcome, win-back, check-in, celebration).
    pub holdout: HoldoutShares,
}

impl Default for OutcomeSettings {
    fn default() -> Self {
        Self {
            window_days: 30,
            holdout: HoldoutShares::default(),
        }
    }
}

/// The share of each kind's touches held out, 0 to 0.5.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HoldoutShares {
    pub welcome: f64,
    pub win_back: f64,
    pub check_in: f64,
    pub celebration: f64,
}

impl Default for HoldoutShares {
    fn default() -> Self {
        Self::all(0.10)
    }
}

impl HoldoutShares {
    pub const MAX: f64 = 0.5;

    pub fn all(share: f64) -> Self {
        Self {
            welcome: share,
            win_back: share,
            check_in: share,
            celebration: share,
        }
    }

    pub fn of(&self, kind: EmailKind) -> f64 {
        match kind {
            EmailKind::Welcome => self.welcome,
            EmailKind::WinBack => self.win_back,
            EmailKind::CheckIn => self.check_in,
            EmailKind::Celebration => self.celebration,
        }
    }

    pub fn set(&mut self, kind: EmailKind, share: f64) {
        let slot = match kind {
            EmailKind::Welcome => &mut self.welcome,
            EmailKind::WinBack => &mut self.win_back,
            EmailKind::CheckIn => &mut self.check_in,
            EmailKind::Celebration => &mut self.celebration,
        };
        *slot = share;
    }

    /// Reads `0.1` (every kind) or `win_back=0.2,welcome=0` (the rest keep the default).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let share = |text: &str| -> Result<f64, String> {
            let share: f64 = text
                .trim()
                .parse()
                .map_err(|_| format!("a holdout share is a number from 0 to 0.5, not {text:?}"))?;
            if (0.0..=Self::MAX).contains(&share) {
                Ok(share)
            } else {
                Err(format!("a holdout share is from 0 to 0.5, not {share}"))
            }
        };
        if !raw.contains('=') {
            return Ok(Self::all(share(raw)?));
        }
        let mut shares = Self::default();
        for part in raw.split(',').filter(|p| !p.trim().is_empty()) {
            let (kind, value) = part
                .split_once('=')
                .ok_or_else(|| format!("expected kind=share, not {part:?}"))?;
            let kind = EmailKind::parse(kind.trim()).ok_or_else(|| {
                format!(
                    "{:?} is not an email kind (welcome, win_back, check_in, celebration)",
                    kind.trim()
                )
            })?;
            shares.set(kind, share(value)?);
        }
        Ok(shares)
    }
}

/// Whether the decision `key` (the event's id) about `client` holds the client out of a
/// `kind` email, with probability `share`: a stable hash, so the same decision (an event
/// delivered twice) always gets the same answer, and clients are split at random.
pub fn held_out(client: &ClientId, kind: EmailKind, key: &EventId, share: f64) -> bool {
    if share <= 0.0 {
        return false;
    }
    // FNV-1a, 64 bits: stable across builds and platforms, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in client
        .as_str()
        .bytes()
        .chain([0])
        .chain(kind.as_str().bytes())
        .chain([0])
        .chain(key.as_str().bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // The top 53 bits as a uniform number in [0, 1).
    ((hash >> 11) as f64) / ((1u64 << 53) as f64) < share
}

/// Every purchase of a client: (day, value in cents), Fixes delivered (what was kept) and
/// Freestyle purchases.
pub fn purchases(profile: &Profile) -> Vec<(NaiveDate, i64)> {
    let mut all: Vec<(NaiveDate, i64)> = profile
        .fixes()
        .iter()
        .map(|fix| (fix.delivered_on(), fix.order_value().cents() as i64))
        .chain(
            profile
                .purchases()
                .iter()
                .map(|p| (p.purchased_on, p.amount.cents() as i64)),
        )
        .collect();
    all.sort();
    all
}

/// The conversion each touch should carry given the client's purchases, last touch: a
/// purchase goes to the latest touch decided before its day (a purchase on the day of a
/// decision was not made after it) whose window still covers it. `touches` are the
/// client's drafted and held-out decisions; the answer lists each with its conversion.
pub fn attribute<'a>(
    touches: &'a [Decision],
    purchases: &[(NaiveDate, i64)],
    window_days: u32,
) -> Vec<(&'a Decision, Option<Conversion>)> {
    let mut touches: Vec<&Decision> = touches.iter().filter(|d| d.outcome.is_touch()).collect();
    touches.sort_by_key(|d| (d.decided_at, d.event_id.as_str().to_owned()));
    let mut conversions: Vec<Option<Conversion>> = vec![None; touches.len()];
    for &(day, value) in purchases {
        let last = touches.iter().rposition(|touch| {
            let decided = touch.decided_at.date_naive();
            decided < day && (day - decided).num_days() <= i64::from(window_days)
        });
        if let Some(i) = last {
            let conversion = conversions[i].get_or_insert(Conversion {
                on: day,
                purchases: 0,
                value_cents: 0,
            });
            conversion.on = conversion.on.min(day);
            conversion.purchases += 1;
            conversion.value_cents += value;
        }
    }
    touches.into_iter().zip(conversions).collect()
}

/// A rate with its 95% Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rate {
    pub successes: u64,
    pub trials: u64,
    /// `None` without trials.
    pub rate: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

impl Rate {
    pub fn new(successes: u64, trials: u64) -> Self {
        match wilson(successes, trials) {
            Some((rate, low, high)) => Self {
                successes,
                trials,
                rate: Some(rate),
                low: Some(low),
                high: Some(high),
            },
            None => Self {
                successes,
                trials,
                rate: None,
                low: None,
                high: None,
            },
        }
    }
}

/// The proportion and its 95% Wilson score interval (rate, low, high); `None` without trials.
pub fn wilson(successes: u64, trials: u64) -> Option<(f64, f64, f64)> {
    if trials == 0 {
        return None;
    }
    let n = trials as f64;
    let p = successes.min(trials) as f64 / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some((p, (centre - half).max(0.0), (centre + half).min(1.0)))
}

/// The difference of two rates (emailed minus held out) with Newcombe's 95% interval
/// (method 10: from the two Wilson intervals); `None` unless both have trials.
pub fn difference(emailed: &Rate, held_out: &Rate) -> Option<(f64, f64, f64)> {
    let (p1, l1, u1) = (emailed.rate?, emailed.low?, emailed.high?);
    let (p2, l2, u2) = (held_out.rate?, held_out.low?, held_out.high?);
    let d = p1 - p2;
    let low = d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt();
    let high = d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt();
    Some((d, low, high))
}

/// What one (kind, outcome, writer, prompt) group of touches has come to: the counters the
/// views keep.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TouchCounts {
    pub touches: i64,
    pub converted: i64,
    pub purchases: i64,
    pub value_cents: i64,
    /// Touches that had a model's expectation, and the expected purchases summed.
    pub expected_touches: i64,
    pub expected_purchases: f64,
    /// Purchases of the touches that had an expectation (to set against it).
    pub purchases_with_expectation: i64,
}

impl TouchCounts {
    pub fn add(&mut self, other: &Self) {
        self.touches += other.touches;
        self.converted += other.converted;
        self.purchases += other.purchases;
        self.value_cents += other.value_cents;
        self.expected_touches += other.expected_touches;
        self.expected_purchases += other.expected_purchases;
        self.purchases_with_expectation += other.purchases_with_expectation;
    }

    /// What a touch adds when decided.
    pub fn of_touch(expected: Option<f64>) -> Self {
        Self {
            touches: 1,
            expected_touches: i64::from(expected.is_some()),
            expected_purchases: expected.unwrap_or(0.0),
            ..Self::default()
        }
    }

    /// What a change of a touch's conversion adds (`from` to `to`).
    pub fn of_conversion_change(
        from: Option<Conversion>,
        to: Option<Conversion>,
        has_expectation: bool,
    ) -> Self {
        let part = |c: Option<Conversion>, sign: i64| {
            let (converted, purchases, value) =
                c.map_or((0, 0, 0), |c| (1, i64::from(c.purchases), c.value_cents));
            Self {
                converted: sign * converted,
                purchases: sign * purchases,
                value_cents: sign * value,
                purchases_with_expectation: if has_expectation { sign * purchases } else { 0 },
                ..Self::default()
            }
        };
        let mut delta = part(to, 1);
        delta.add(&part(from, -1));
        delta
    }
}

/// A counted group of touches: which kind, emailed or held out, and (emailed) who wrote.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TouchGroup {
    pub kind: EmailKind,
    /// `Drafted` or `HeldOut`.
    pub outcome: DecisionOutcome,
    /// `""` for held-out touches.
    pub writer: String,
    pub prompt_version: String,
}

impl TouchGroup {
    pub fn of(decision: &Decision) -> Option<Self> {
        decision.outcome.is_touch().then(|| Self {
            kind: decision.kind,
            outcome: decision.outcome,
            writer: decision.writer.clone().unwrap_or_default(),
            prompt_version: decision.prompt_version.clone().unwrap_or_default(),
        })
    }
}

/// How one writer's emails of one kind did against that kind's holdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WriterLift {
    /// `template` or the model's id.
    pub writer: String,
    pub prompt_version: String,
    /// Emailed clients who converted within the window.
    pub conversion: Rate,
    /// Emailed minus held-out conversion rate, with its 95% interval; `None` until both
    /// groups have clients.
    pub lift: Option<f64>,
    pub lift_low: Option<f64>,
    pub lift_high: Option<f64>,
    pub purchases: i64,
    /// Purchases of the clients who had a model's expectation, and what it expected.
    pub purchases_with_expectation: i64,
    pub expected_purchases: Option<f64>,
}

/// One kind's comparison: the holdout and each writer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindOutcomes {
    pub kind: EmailKind,
    pub held_out: Rate,
    pub held_out_purchases: i64,
    pub held_out_purchases_with_expectation: i64,
    pub held_out_expected_purchases: Option<f64>,
    /// All writers together.
    pub emailed: Rate,
    pub lift: Option<f64>,
    pub lift_low: Option<f64>,
    pub lift_high: Option<f64>,
    pub writers: Vec<WriterLift>,
}

/// The answer to "is it working?": each kind that has touches, and the window used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Outcomes {
    pub window_days: u32,
    pub kinds: Vec<KindOutcomes>,
}

/// The figures from the counters of each touch group.
pub fn outcomes(rows: &[(TouchGroup, TouchCounts)], window_days: u32) -> Outcomes {
    let expected = |c: &TouchCounts| (c.expected_touches > 0).then_some(c.expected_purchases);
    let mut kinds = Vec::new();
    for kind in EmailKind::ALL {
        let of_kind: Vec<&(TouchGroup, TouchCounts)> =
            rows.iter().filter(|(g, _)| g.kind == kind).collect();
        if of_kind.iter().all(|(_, c)| c.touches == 0) {
            continue;
        }
        let mut held = TouchCounts::default();
        let mut emailed = TouchCounts::default();
        let mut writers: Vec<(String, String, TouchCounts)> = Vec::new();
        for (group, counts) in &of_kind {
            match group.outcome {
                DecisionOutcome::HeldOut => held.add(counts),
                DecisionOutcome::Drafted => {
                    emailed.add(counts);
                    match writers
                        .iter_mut()
                        .find(|(w, p, _)| *w == group.writer && *p == group.prompt_version)
                    {
                        Some((_, _, sum)) => sum.add(counts),
                        None => writers.push((
                            group.writer.clone(),
                            group.prompt_version.clone(),
                            counts.clone(),
                        )),
                    }
                }
                DecisionOutcome::Skipped => {}
            }
        }
        let rate = |c: &TouchCounts| Rate::new(c.converted.max(0) as u64, c.touches.max(0) as u64);
        let held_rate = rate(&held);
        let emailed_rate = rate(&emailed);
        let lift = difference(&emailed_rate, &held_rate);
        writers.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        kinds.push(KindOutcomes {
            kind,
            held_out: held_rate,
            held_out_purchases: held.purchases,
            held_out_purchases_with_expectation: held.purchases_with_expectation,
            held_out_expected_purchases: expected(&held),
            emailed: emailed_rate,
            lift: lift.map(|l| l.0),
            lift_low: lift.map(|l| l.1),
            lift_high: lift.map(|l| l.2),
            writers: writers
                .into_iter()
                .map(|(writer, prompt_version, counts)| {
                    let conversion = rate(&counts);
                    let lift = difference(&conversion, &held_rate);
                    WriterLift {
                        writer,
                        prompt_version,
                        conversion,
                        lift: lift.map(|l| l.0),
                        lift_low: lift.map(|l| l.1),
                        lift_high: lift.map(|l| l.2),
                        purchases: counts.purchases,
                        purchases_with_expectation: counts.purchases_with_expectation,
                        expected_purchases: expected(&counts),
                    }
                })
                .collect(),
        });
    }
    Outcomes { window_days, kinds }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("{day}T10:00:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn date(day: &str) -> NaiveDate {
        day.parse().unwrap()
    }

    fn touch(id: &str, day: &str, outcome: DecisionOutcome) -> Decision {
        Decision {
            event_id: EventId::new(id),
            client_id: ClientId::new("c-1"),
            stylist_id: StylistId::new("st-1"),
            kind: EmailKind::WinBack,
            outcome,
            reason: String::new(),
            reason_code: String::new(),
            decided_at: at(day),
            email_id: None,
            writer: None,
            prompt_version: None,
            expected_purchases: None,
            conversion: None,
        }
    }

    #[test]
    fn the_wilson_interval_matches_hand_computed_values() {
        // 20 of 100: p = 0.2, z = 1.96; centre = (0.2 + 0.019208) / 1.038415 = 0.211100,
        // half = 1.96/1.038415 * sqrt(0.0016 + 0.00009604) = 0.077737.
        let (p, low, high) = wilson(20, 100).unwrap();
        assert!((p - 0.2).abs() < 1e-12);
        assert!((low - 0.133367).abs() < 1e-5, "{low}");
        assert!((high - 0.288829).abs() < 1e-5, "{high}");
        // No successes still has an upper bound; no trials has no rate.
        let (_, low, high) = wilson(0, 10).unwrap();
        assert_eq!(low, 0.0);
        assert!((high - 0.277531).abs() < 1e-5, "{high}");
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn the_difference_of_two_rates_has_newcombes_interval() {
        // 30/100 emailed vs 10/100 held out: d = 0.2. Wilson (z = 1.959964, z^2/n =
        // 0.0384146): 0.3 in [0.218949, 0.395849], 0.1 in [0.055229, 0.174365];
        // low = 0.2 - sqrt(0.081051^2 + 0.074365^2) = 0.090003,
        // high = 0.2 + sqrt(0.095849^2 + 0.044771^2) = 0.305790.
        let (d, low, high) = difference(&Rate::new(30, 100), &Rate::new(10, 100)).unwrap();
        assert!((d - 0.2).abs() < 1e-12);
        assert!((low - 0.090003).abs() < 1e-5, "{low}");
        assert!((high - 0.305790).abs() < 1e-5, "{high}");
        assert_eq!(difference(&Rate::new(3, 10), &Rate::new(0, 0)), None);
    }

    #[test]
    fn holdout_is_stable_per_decision_and_close_to_its_share() {
        let client = ClientId::new("c-42");
        let key = EventId::new("ev-1");
        let first = held_out(&client, EmailKind::WinBack, &key, 0.1);
        assert_eq!(first, held_out(&client, EmailKind::WinBack, &key, 0.1));
        assert!(!held_out(&client, EmailKind::WinBack, &key, 0.0));
        let held = (0..20_000)
            .filter(|i| {
                held_out(
                    &ClientId::new(format!("c-{i}")),
                    EmailKind::WinBack,
                    &EventId::new(format!("ev-{i}")),
                    0.1,
                )
            })
            .count();
        assert!((1_800..2_200).contains(&held), "{held} of 20000 held out");
    }

    #[test]
    fn a_purchase_goes_to_the_latest_touch_before_it_within_the_window() {
        let touches = vec![
            touch("t1", "2026-01-01", DecisionOutcome::Drafted),
            touch("t2", "2026-01-20", DecisionOutcome::HeldOut),
            touch("skip", "2026-01-25", DecisionOutcome::Skipped),
        ];
        let purchases = vec![
            (date("2026-01-01"), 1000), // the decision's own day: not after it
            (date("2026-01-10"), 2000), // t1
            (date("2026-01-21"), 3000), // t2, the latest
            (date("2026-02-15"), 4000), // t2, day 26
            (date("2026-03-01"), 5000), // past every window
        ];
        let found = attribute(&touches, &purchases, 30);
        assert_eq!(found.len(), 2, "skips are not touches");
        assert_eq!(found[0].0.event_id.as_str(), "t1");
        assert_eq!(
            found[0].1,
            Some(Conversion {
                on: date("2026-01-10"),
                purchases: 1,
                value_cents: 2000
            })
        );
        assert_eq!(
            found[1].1,
            Some(Conversion {
                on: date("2026-01-21"),
                purchases: 2,
                value_cents: 7000
            })
        );
    }

    #[test]
    fn holdout_shares_parse_one_for_all_or_per_kind_and_refuse_nonsense() {
        assert_eq!(
            HoldoutShares::parse("0.2").unwrap(),
            HoldoutShares::all(0.2)
        );
        let mixed = HoldoutShares::parse("win_back=0.25, welcome=0").unwrap();
        assert_eq!(mixed.win_back, 0.25);
        assert_eq!(mixed.welcome, 0.0);
        assert_eq!(mixed.check_in, 0.10);
        assert!(HoldoutShares::parse("0.9").is_err());
        assert!(HoldoutShares::parse("newsletter=0.1").is_err());
        assert!(HoldoutShares::parse("ten percent").is_err());
    }

    #[test]
    fn outcomes_compare_each_writer_with_the_kinds_holdout() {
        let group = |outcome, writer: &str| TouchGroup {
            kind: EmailKind::WinBack,
            outcome,
            writer: writer.into(),
            prompt_version: if writer.is_empty() { "" } else { "v1" }.into(),
        };
        let counts = |touches, converted, purchases| TouchCounts {
            touches,
            converted,
            purchases,
            ..TouchCounts::default()
        };
        let rows = vec![
            (group(DecisionOutcome::HeldOut, ""), counts(100, 10, 12)),
            (
                group(DecisionOutcome::Drafted, "template"),
                counts(60, 18, 20),
            ),
            (
                group(DecisionOutcome::Drafted, "openai/gpt-4o-mini"),
                counts(40, 12, 15),
            ),
        ];
        let figures = outcomes(&rows, 30);
        assert_eq!(figures.kinds.len(), 1);
        let win_back = &figures.kinds[0];
        assert_eq!(win_back.held_out.rate, Some(0.10));
        assert_eq!(win_back.emailed.successes, 30);
        assert_eq!(win_back.emailed.trials, 100);
        assert!((win_back.lift.unwrap() - 0.20).abs() < 1e-12);
        assert_eq!(win_back.writers.len(), 2);
        let model = &win_back.writers[0];
        assert_eq!(model.writer, "openai/gpt-4o-mini");
        assert_eq!(model.conversion.rate, Some(0.3));
        assert!((model.lift.unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(model.purchases, 15);
        assert_eq!(win_back.held_out_purchases, 12);
    }
}
