//! Realistic sample client histories, for demo data, benchmarks and tests.
//!
//! Purchase timing follows the BG/NBD process (each client has a Gamma-distributed order
//! rate and a Beta-distributed chance of drifting away after each order), so a model fitted
//! on sample data finds real signal. Keep rates, order values, ratings, notes and email
//! engagement follow each client's own tastes, loosely tied to how engaged they are.

use crate::bgnbd::{BgNbdParams, simulate};
use crate::client::ClientStatus;
use crate::profile::{
    BudgetBand, EmailConsent, EmailEngagement, Feedback, Fix, Money, Profile, Purchase, Rating,
    Sizes, Style, StyleProfile,
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
        days_ago(rng.random_range(60..1095))
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
    let simulated = simulate::customer(&SAMPLE_PARAMS, age, rng);
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
        0 | 1 if lapsed => ClientStatus::Closed,
        2 if lapsed => ClientStatus::Paused,
        3 => ClientStatus::Paused,
        _ => ClientStatus::Active,
    };
    SampleClient { profile, status }
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
}
