//! Realistic sample client histories, for demo data, benchmarks and tests.
//!
//! Purchase timing follows the BG/NBD process (each client has a Gamma-distributed order
//! rate and a Beta-distributed chance of drifting away after each order), so a model fitted
//! on sample data finds real signal. Keep rates, order values, ratings, notes and email
//! engagement follow each client's own tastes, loosely tied to how engaged they are.

use crate::bgnbd::{BgNbdParams, simulate};
use crate::client::ClientStatus;
use crate::profile::{
    Activity, BudgetBand, EmailConsent, EmailEngagement, EngagementInput, Feedback, FeedbackInput,
    Fix, FixInput, Money, Profile, Purchase, PurchaseInput, Rating, Sizes, Style, StyleProfile,
};
use chrono::{DateTime, Days, Utc};
use rand::Rng;
use rand_distr::{Beta, Distribution};

/// The process behind sample purchase timing: on average an order every ~7 weeks, with
/// about one client in six drifting away after any order.
pub const SAMPLE_PARAMS: BgNbdParams = BgNbdParams {
    r: 3.0,
    alpha: 150.0,
    a: 1.2,
    b: 6.0,
};

/// Who a sample book is made of: how purchases are timed and when clients signed up.
#[derive(Debug, Clone, Copy)]
pub struct Population {
    /// The purchase process.
    pub params: BgNbdParams,
    /// Sign-ups: days ago, drawn uniformly within one of these ranges picked with the
    /// given weight. (Brand-new clients, one in twenty, come on top.)
    pub signed_up_days_ago: [(u64, u64, u32); 3],
    /// Chance (in tenths) that a client more than 240 days past their last order has
    /// closed the account.
    pub lapsed_close_tenths: u32,
}

impl Population {
    /// The benchmarks' and tests' book: sign-ups spread evenly over three years.
    pub const SAMPLE: Self = Self {
        params: SAMPLE_PARAMS,
        signed_up_days_ago: [(60, 1095, 1), (60, 1095, 0), (60, 1095, 0)],
        lapsed_close_tenths: 2,
    };

    /// The demo business: growing (most clients joined within the last two years), and
    /// loyal (about one client in eleven drifts away after an order, an order every seven
    /// weeks on average). The band mix this gives is described in README.md.
    pub const DEMO: Self = Self {
        params: BgNbdParams {
            r: 3.0,
            alpha: 150.0,
            a: 1.0,
            b: 24.0,
        },
        signed_up_days_ago: [(60, 240, 5), (240, 540, 4), (540, 900, 1)],
        lapsed_close_tenths: 5,
    };

    fn signed_up_days_ago(&self, rng: &mut impl Rng) -> u64 {
        let [(low, high, _), rest @ ..] = self.signed_up_days_ago;
        if rest.iter().all(|r| r.2 == 0) {
            return rng.random_range(low..high);
        }
        let total: u32 = self.signed_up_days_ago.iter().map(|r| r.2).sum();
        let mut pick = rng.random_range(0..total.max(1));
        for (low, high, weight) in self.signed_up_days_ago {
            if pick < weight {
                return rng.random_range(low..high);
            }
            pick -= weight;
        }
        self.signed_up_days_ago[0].0
    }
}

/// A sample client's record and status as of `now`.
pub struct SampleClient {
    pub profile: Profile,
    pub status: ClientStatus,
}

const NOTES_HAPPY: [&str; 5] = [
    "Loved the jacket, perfect fit!",
    "Great picks this time, thanks",
    "The dress was amazing, got so many compliments",
    "Happy with everything, love the colours",
    "Perfect for work, excellent quality",
];
const NOTES_UNHAPPY: [&str; 5] = [
    "Disappointed, the jeans were too tight",
    "Too expensive for what it is",
    "Everything felt cheap and itchy",
    "Wrong sizes again, frustrated",
    "Boring picks, returned all of it",
];
const NOTES_NEUTRAL: [&str; 3] = [
    "Fine overall",
    "Kept the top, the rest was not for me",
    "Could use more colour next time",
];
const TOPS: [&str; 6] = ["XS", "S", "M", "L", "XL", "XXL"];
const BOTTOMS: [&str; 6] = ["26x30", "28x30", "30x32", "32x32", "34x32", "36x34"];
const SHOES: [&str; 6] = ["36", "37", "38", "39", "41", "43"];

/// Draws one client as of `now`, who signed up within the last three years.
pub fn client(rng: &mut impl Rng, now: DateTime<Utc>) -> SampleClient {
    client_of(rng, now, &Population::SAMPLE)
}

/// Draws one client of `population` as of `now`.
pub fn client_of(rng: &mut impl Rng, now: DateTime<Utc>, population: &Population) -> SampleClient {
    let today = now.date_naive();
    let days_ago = |days: u64| today - Days::new(days);
    let consent = match rng.random_range(0..20) {
        0 => EmailConsent::Unsubscribed {
            at: now - chrono::Duration::days(rng.random_range(1..300)),
        },
        1 | 2 => EmailConsent::NotGiven,
        _ => EmailConsent::OptedIn {
            at: now - chrono::Duration::days(rng.random_range(1..900)),
        },
    };
    // One client in twenty joined in the last month and has had no Fix yet.
    let brand_new = rng.random_range(0..20) == 0;
    let signed_up = if brand_new {
        days_ago(rng.random_range(0..30))
    } else {
        days_ago(population.signed_up_days_ago(rng))
    };
    let mut profile = Profile::joined(signed_up, consent);
    profile.set_style(style(rng));
    if brand_new {
        return SampleClient {
            profile,
            status: ClientStatus::Active,
        };
    }

    // The first Fix arrives within two weeks of signing up; repeat orders follow BG/NBD.
    let first = signed_up + Days::new(rng.random_range(3..15));
    let age = (today - first).num_days().max(0) as f64;
    let simulated = simulate::customer(&population.params, age, rng);
    let keep_taste = Beta::new(2.0, 3.0).map_or(0.4, |b| b.sample(rng));
    let item_price = rng.random_range(35..130u64);
    let order_days = std::iter::once(0.0).chain(simulated.repeat_purchase_days.iter().copied());
    let mut last_order = first;
    for offset in order_days {
        let on = first + Days::new(offset as u64);
        last_order = on;
        if rng.random_range(0..7) == 0 {
            let amount = Money::from_cents(rng.random_range(30..200) * 100);
            let _ = profile.add_purchase(Purchase {
                purchased_on: on,
                amount,
            });
            continue;
        }
        let kept = (0..5).filter(|_| rng.random::<f64>() < keep_taste).count() as u8;
        let value = Money::from_cents(u64::from(kept) * item_price * 100);
        if let Ok(fix) = Fix::new(on, 5, kept, value) {
            let _ = profile.add_fix(fix);
        }
        if rng.random_range(0..10) < 4 {
            let rating = (1.0 + 4.0 * keep_taste + rng.random_range(-1.0..1.0)).round() as i64;
            let rating = Rating::parse("rating", rating.clamp(1, 5)).unwrap_or(Rating::MIDDLE);
            let note = match rating.get() {
                _ if rng.random_range(0..2) == 0 => None,
                4..=5 => Some(NOTES_HAPPY[rng.random_range(0..NOTES_HAPPY.len())]),
                1..=2 => Some(NOTES_UNHAPPY[rng.random_range(0..NOTES_UNHAPPY.len())]),
                _ => Some(NOTES_NEUTRAL[rng.random_range(0..NOTES_NEUTRAL.len())]),
            };
            let given_on = (on + Days::new(rng.random_range(2..6))).min(today);
            if let Ok(item) = Feedback::new(given_on, rating, note) {
                let _ = profile.add_feedback(item);
            }
        }
    }

    // Engaged clients open and click; lapsed ones stopped a while after their last order.
    let since_last = (today - last_order).num_days().max(0) as u64;
    let opened_days = if consent.allows_email() {
        Some(rng.random_range(0..30) + since_last / 2)
    } else {
        None
    };
    let at = |days: u64| {
        days_ago(days.min((today - signed_up).num_days() as u64))
            .and_hms_opt(rng_hour(days), 0, 0)
            .map(|t| t.and_utc())
            .filter(|t| *t <= now)
    };
    let last_opened_at = opened_days.and_then(at);
    let last_clicked_at = opened_days
        .filter(|_| rng.random_range(0..3) == 0)
        .and_then(|d| at(d + rng.random_range(0..20)));
    profile.set_engagement(EmailEngagement {
        last_opened_at,
        last_clicked_at,
        open_hours: [0; 24],
    });

    let lapsed = since_last > 240;
    let status = match rng.random_range(0..10) {
        n if lapsed && n < population.lapsed_close_tenths => ClientStatus::Closed,
        n if lapsed && n == population.lapsed_close_tenths => ClientStatus::Paused,
        3 => ClientStatus::Paused,
        _ => ClientStatus::Active,
    };
    SampleClient { profile, status }
}

/// A demo client's life over a replayed window: the record as it was first written, and
/// what happened afterwards, in order, each with when it was recorded.
#[derive(Debug, Clone)]
pub struct SampleHistory {
    /// When the record was written: the sign-up, or the window's start for a client who
    /// joined before it.
    pub joined: DateTime<Utc>,
    /// The record then.
    pub profile: Profile,
    pub status: ClientStatus,
    /// Fixes, purchases, feedback, opens and clicks after `joined`, in time order.
    pub later: Vec<(DateTime<Utc>, Activity)>,
    /// When the client unsubscribes within the window, if they do.
    pub unsubscribes: Option<DateTime<Utc>>,
}

/// Draws one client of `population` whose life runs to `end`, split at `start`: what
/// happened before is the record written at `start` (or at the sign-up, when that is
/// later); what happens after is replayed one activity at a time.
pub fn history(
    rng: &mut impl Rng,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    population: &Population,
) -> SampleHistory {
    let whole = client_of(rng, end, population);
    let full = whole.profile;
    let first_day = start.date_naive();
    let signed_up = full.signed_up_on();
    let mut at_hour = |day: chrono::NaiveDate| {
        let at = day
            .and_hms_opt(rng.random_range(8..20), rng.random_range(0..60), 0)
            .map_or(start, |t| t.and_utc());
        at.clamp(start, end)
    };
    let joined = if signed_up > first_day {
        at_hour(signed_up)
    } else {
        start
    };
    let before =
        |day: chrono::NaiveDate| day < joined.date_naive() || joined == start && day < first_day;
    let (consent, unsubscribes) = match full.consent() {
        EmailConsent::Unsubscribed { at } if at > joined => {
            (EmailConsent::OptedIn { at: joined.min(at) }, Some(at))
        }
        EmailConsent::OptedIn { at } => (EmailConsent::OptedIn { at: at.min(joined) }, None),
        consent => (consent, None),
    };
    let mut profile = Profile::joined(signed_up, consent);
    profile.set_style(full.style().clone());
    let mut later = Vec::new();
    let date = |day: chrono::NaiveDate| day.format("%Y-%m-%d").to_string();
    for fix in full.fixes() {
        if before(fix.delivered_on()) {
            let _ = profile.add_fix(*fix);
        } else {
            later.push((
                at_hour(fix.delivered_on()),
                Activity::Fix(FixInput {
                    delivered_on: date(fix.delivered_on()),
                    items_sent: i64::from(fix.items_sent()),
                    items_kept: i64::from(fix.items_kept()),
                    order_value: format!("{:.2}", fix.order_value().dollars()),
                }),
            ));
        }
    }
    for purchase in full.purchases() {
        if before(purchase.purchased_on) {
            let _ = profile.add_purchase(*purchase);
        } else {
            later.push((
                at_hour(purchase.purchased_on),
                Activity::Purchase(PurchaseInput {
                    purchased_on: date(purchase.purchased_on),
                    amount: format!("{:.2}", purchase.amount.dollars()),
                }),
            ));
        }
    }
    for item in full.feedback() {
        if before(item.given_on()) {
            let _ = profile.add_feedback(item.clone());
        } else {
            later.push((
                at_hour(item.given_on()),
                Activity::Feedback(FeedbackInput {
                    given_on: date(item.given_on()),
                    rating: i64::from(item.rating().get()),
                    note: item.note().map(str::to_owned),
                }),
            ));
        }
    }
    let engagement = full.engagement();
    let mut kept = EmailEngagement::default();
    let stamp = |at: DateTime<Utc>| EngagementInput {
        at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    match engagement.last_opened_at {
        Some(at) if at <= joined => kept.last_opened_at = Some(at),
        Some(at) => later.push((at, Activity::EmailOpen(stamp(at)))),
        None => {}
    }
    match engagement.last_clicked_at {
        Some(at) if at <= joined => kept.last_clicked_at = Some(at),
        Some(at) => later.push((at, Activity::EmailClick(stamp(at)))),
        None => {}
    }
    profile.set_engagement(kept);
    // An activity is recorded on its day, never before the record exists.
    for (at, _) in &mut later {
        *at = (*at).max(joined);
    }
    later.sort_by_key(|(at, _)| *at);
    SampleHistory {
        joined,
        profile,
        status: whole.status,
        later,
        unsubscribes,
    }
}

/// A plausible hour for an email event, fixed per day count so results are reproducible.
fn rng_hour(days: u64) -> u32 {
    (7 + days % 14) as u32
}

fn style(rng: &mut impl Rng) -> StyleProfile {
    let mut styles = Vec::new();
    for _ in 0..rng.random_range(1..4) {
        let style = Style::ALL[rng.random_range(0..Style::ALL.len())];
        if !styles.contains(&style) {
            styles.push(style);
        }
    }
    StyleProfile {
        styles,
        sizes: Sizes {
            top: Some(TOPS[rng.random_range(0..TOPS.len())].to_owned()),
            bottom: Some(BOTTOMS[rng.random_range(0..BOTTOMS.len())].to_owned()),
            dress: None,
            shoe: Some(SHOES[rng.random_range(0..SHOES.len())].to_owned()),
        },
        budget: BudgetBand::ALL[rng.random_range(0..BudgetBand::ALL.len())],
        notes: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::score_profile;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn sample_clients_are_valid_scorable_and_varied() {
        let now = DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut rng = SmallRng::seed_from_u64(1);
        let mut bands = std::collections::HashSet::new();
        let mut with_history = 0;
        for _ in 0..2000 {
            let sample = client(&mut rng, now);
            assert!(sample.profile.latest_date() <= now.date_naive());
            let json = serde_json::to_string(&sample.profile).unwrap();
            let back: Profile = serde_json::from_str(&json).unwrap();
            assert_eq!(back, sample.profile);
            let score = score_profile(&sample.profile, sample.status, now.date_naive()).unwrap();
            bands.insert(score.band);
            with_history += usize::from(sample.profile.fixes().len() > 1);
        }
        assert_eq!(bands.len(), 4, "every band occurs: {bands:?}");
        assert!(
            with_history > 1000,
            "most clients have a history ({with_history})"
        );
    }

    fn at(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_replayed_history_is_valid_in_order_and_gives_a_realistic_band_mix() {
        let (start, end) = (at("2026-03-01T05:00:00Z"), at("2026-05-30T23:00:00Z"));
        let mut rng = SmallRng::seed_from_u64(7);
        let mut mix = std::collections::HashMap::new();
        let (mut joined_within, mut activities, mut unsubscribes) = (0, 0, 0);
        for _ in 0..1000 {
            let history = history(&mut rng, start, end, &Population::DEMO);
            assert!(history.joined >= start && history.joined <= end);
            joined_within += usize::from(history.joined > start);
            unsubscribes += usize::from(history.unsubscribes.is_some());
            let mut profile = history.profile.clone();
            let mut previous = history.joined;
            for (when, activity) in &history.later {
                assert!(*when >= previous, "in time order");
                previous = *when;
                activity
                    .apply_at(&mut profile, *when)
                    .unwrap_or_else(|e| panic!("{activity:?} at {when}: {e}"));
                activities += 1;
            }
            let score = score_profile(&profile, history.status, end.date_naive()).unwrap();
            *mix.entry(score.band).or_insert(0usize) += 1;
        }
        eprintln!(
            "mix {mix:?} joined within {joined_within} activities {activities} unsubscribes {unsubscribes}"
        );
        let share = |band| mix.get(&band).copied().unwrap_or(0) as f64 / 1000.0;
        use crate::score::Band;
        assert!(share(Band::Thriving) + share(Band::Steady) > 0.6, "{mix:?}");
        assert!(share(Band::AtRisk) < 0.2, "{mix:?}");
        assert!(
            share(Band::Cooling) > 0.05 && share(Band::AtRisk) > 0.03,
            "{mix:?}"
        );
        assert!(
            joined_within > 60,
            "sign-ups within the window: {joined_within}"
        );
        assert!(
            activities > 1000,
            "activities within the window: {activities}"
        );
    }
}
