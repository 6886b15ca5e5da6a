//! The explainable engagement score: a pure function of a client and the current time that
//! returns a score from 0 to 100, its band, and the named factors it is made of. The
//! factors always add up exactly to the score, and each carries a sentence a stylist can
//! read aloud to explain it.

use crate::client::{Client, ClientStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a score falls, in the words the business uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

/// One named contribution to a score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Factor {
    pub name: String,
    pub points: i32,
    pub explanation: String,
}

/// A score with its band and the factors that explain it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngagementScore {
    pub score: u8,
    pub band: Band,
    pub factors: Vec<Factor>,
}

impl EngagementScore {
    fn from_factors(factors: Vec<Factor>) -> Self {
        let total: i32 = factors.iter().map(|f| f.points).sum();
        // The factors are chosen so the sum stays in range; clamping would break the
        // promise that they add up to the score, so it is asserted instead.
        debug_assert!(
            (0..=100).contains(&total),
            "factors must sum into 0..=100, got {total}"
        );
        let score = total.clamp(0, 100) as u8;
        Self {
            score,
            band: Band::of(score),
            factors,
        }
    }
}

/// Days a client counts as new.
const NEW_CLIENT_DAYS: i64 = 30;

/// Scores a client as of `now`.
///
/// This first version knows only what the client record holds today: how long ago the
/// client joined and their status. Fix history, spend, feedback and email engagement
/// join as factors when the record carries them.
pub fn engagement_score(client: &Client, now: DateTime<Utc>) -> EngagementScore {
    let mut factors = vec![Factor {
        name: "baseline".into(),
        points: 50,
        explanation: "Every client starts from 50: +50".into(),
    }];
    let days = (now - client.created_at).num_days().max(0);
    if days <= NEW_CLIENT_DAYS {
        let when = match days {
            0 => "today".to_owned(),
            1 => "yesterday".to_owned(),
            n => format!("{n} days ago"),
        };
        factors.push(Factor {
            name: "new_client".into(),
            points: 10,
            explanation: format!("Joined {when}; a new client starts warm: +10"),
        });
    }
    match client.status {
        ClientStatus::Active => {}
        ClientStatus::Paused => factors.push(Factor {
            name: "status".into(),
            points: -20,
            explanation: "Has paused deliveries: -20".into(),
        }),
        ClientStatus::Closed => factors.push(Factor {
            name: "status".into(),
            points: -50,
            explanation: "Has closed the account: -50".into(),
        }),
    }
    EngagementScore::from_factors(factors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientEmail, ClientId, ClientName, StylistId};
    use chrono::Duration;

    fn client_joined(at: DateTime<Utc>, status: ClientStatus) -> Client {
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

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
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
    fn a_brand_new_client_scores_sixty_and_says_why() {
        let score = engagement_score(&client_joined(now(), ClientStatus::Active), now());
        assert_eq!(score.score, 60);
        assert_eq!(score.band, Band::Steady);
        assert!(
            score
                .factors
                .iter()
                .any(|f| f.explanation.contains("Joined today"))
        );
    }

    #[test]
    fn factors_add_up_to_the_score_in_every_case() {
        for status in [
            ClientStatus::Active,
            ClientStatus::Paused,
            ClientStatus::Closed,
        ] {
            for days in [0, 1, 30, 31, 400] {
                let score =
                    engagement_score(&client_joined(now() - Duration::days(days), status), now());
                let sum: i32 = score.factors.iter().map(|f| f.points).sum();
                assert_eq!(sum, i32::from(score.score), "{status:?} after {days} days");
            }
        }
    }

    #[test]
    fn a_closed_client_is_at_risk() {
        let score = engagement_score(
            &client_joined(now() - Duration::days(90), ClientStatus::Closed),
            now(),
        );
        assert_eq!(score.score, 0);
        assert_eq!(score.band, Band::AtRisk);
    }
}
