//! The manager's dashboard: the figures behind each chart, as the store's views keep them
//! and as the page and the JSON API show them.

use crate::score::Band;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The date range a dashboard covers (both days included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DateRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl DateRange {
    /// Longest range one dashboard shows.
    pub const MAX_DAYS: i64 = 366;

    /// The last `days` days up to and including `today`.
    pub fn last_days(today: NaiveDate, days: u32) -> Self {
        Self {
            from: today - chrono::Days::new(u64::from(days.saturating_sub(1))),
            to: today,
        }
    }

    /// A range from form or query strings (`YYYY-MM-DD`); empty means the last 30 days.
    /// Errors name the field.
    pub fn parse(from: &str, to: &str, today: NaiveDate) -> Result<Self, crate::ValidationErrors> {
        let mut errors = crate::ValidationErrors::default();
        let date = |field: &str, raw: &str| -> Result<Option<NaiveDate>, crate::FieldError> {
            match raw.trim() {
                "" => Ok(None),
                raw => NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                    .map(Some)
                    .map_err(|_| {
                        crate::FieldError::new(
                            field,
                            format!("Enter a date as YYYY-MM-DD (got \"{raw}\")."),
                        )
                    }),
            }
        };
        let to = errors.collect(date("to", to)).flatten().unwrap_or(today);
        let from = errors
            .collect(date("from", from))
            .flatten()
            .unwrap_or(to - chrono::Days::new(29));
        if errors.is_empty() && from > to {
            errors.0.push(crate::FieldError::new(
                "from",
                "The range starts after it ends.",
            ));
        }
        if errors.is_empty() && (to - from).num_days() >= Self::MAX_DAYS {
            errors.0.push(crate::FieldError::new(
                "from",
                format!("Show at most {} days at once.", Self::MAX_DAYS),
            ));
        }
        if errors.is_empty() {
            Ok(Self { from, to })
        } else {
            Err(errors)
        }
    }

    /// Every day of the range, in order.
    pub fn days(self) -> impl Iterator<Item = NaiveDate> {
        self.from.iter_days().take_while(move |d| *d <= self.to)
    }
}

/// How many clients are in each band.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BandMix {
    pub thriving: u64,
    pub steady: u64,
    pub cooling: u64,
    pub at_risk: u64,
}

impl BandMix {
    pub fn get(&self, band: Band) -> u64 {
        match band {
            Band::Thriving => self.thriving,
            Band::Steady => self.steady,
            Band::Cooling => self.cooling,
            Band::AtRisk => self.at_risk,
        }
    }

    pub fn add(&mut self, band: Band, n: i64) {
        let slot = match band {
            Band::Thriving => &mut self.thriving,
            Band::Steady => &mut self.steady,
            Band::Cooling => &mut self.cooling,
            Band::AtRisk => &mut self.at_risk,
        };
        *slot = slot.saturating_add_signed(n);
    }

    pub fn total(&self) -> u64 {
        self.thriving + self.steady + self.cooling + self.at_risk
    }
}

/// One day of the band mix (clients per band at the end of the day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BandDay {
    pub day: NaiveDate,
    pub mix: BandMix,
}

/// One day of the email funnel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmailDay {
    pub day: NaiveDate,
    pub drafted: u64,
    pub approved: u64,
    pub sent: u64,
    pub rejected: u64,
    pub failed: u64,
    /// Of the day's approvals, how many the stylist edited first.
    #[serde(default)]
    pub edited: u64,
    /// Mean edit distance of the day's approvals (0 = sent as written, 1 = rewritten).
    #[serde(default)]
    pub mean_edit: Option<f64>,
    /// What the LLM drafts of the day cost, in US dollars.
    pub cost_usd: f64,
    /// Median minutes from draft to review (approve or reject) of the day's reviews.
    pub median_review_minutes: Option<f64>,
}

impl EmailDay {
    /// Approved / (approved + rejected) of the day's reviews, when there were any.
    pub fn approval_rate(&self) -> Option<f64> {
        let reviewed = self.approved + self.rejected;
        (reviewed > 0).then(|| self.approved as f64 / reviewed as f64)
    }
}

/// How one writer's drafts fare with the stylists: the measure of draft quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WriterQuality {
    /// `template` or the model id.
    pub writer: String,
    pub drafted: u64,
    pub approved: u64,
    pub rejected: u64,
    /// Approved / (approved + rejected), when any were reviewed.
    pub approval_rate: Option<f64>,
    /// Of the approved, how many the stylist edited first.
    pub edited: u64,
    /// Mean edit distance of approved drafts (0 = sent as written, 1 = rewritten
    /// entirely): character edits between the writer's words and the words sent, divided
    /// by the longer length.
    pub mean_edit: Option<f64>,
}

/// One stylist's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StylistFigures {
    pub stylist_id: String,
    pub stylist_name: String,
    pub clients: u64,
    pub at_risk: u64,
    pub pending_reviews: u64,
    /// Median minutes from draft to review within the range.
    pub median_review_minutes: Option<f64>,
    /// Emails sent within the range.
    pub sent: u64,
}

/// The pipeline's health right now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineHealth {
    pub queue_depth: u64,
    pub in_flight: u64,
    pub oldest_message_age_secs: Option<u64>,
    pub feed_lag: u64,
    pub dead_letters: u64,
    /// `closed`, `open` or `half_open`; `none` without an LLM.
    pub llm_breaker: String,
}

/// An event that failed too often, as the dead-letter page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterView {
    pub id: i64,
    pub event_id: String,
    pub receive_count: u32,
    pub last_error: String,
    pub failed_at: chrono::DateTime<chrono::Utc>,
}

/// Everything the dashboard shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dashboard {
    pub range: DateRange,
    /// Now, by band.
    pub bands: BandMix,
    pub band_days: Vec<BandDay>,
    pub stylists: Vec<StylistFigures>,
    pub email_days: Vec<EmailDay>,
    pub writers: Vec<WriterQuality>,
    pub health: PipelineHealth,
    /// Is it working? Emailed against held-out clients, all time.
    pub outcomes: crate::outcomes::Outcomes,
}

/// Review times are counted in buckets (minutes): the lower bound of each.
pub const REVIEW_BUCKETS_MINUTES: [u32; 12] = [0, 1, 2, 5, 10, 30, 60, 120, 240, 480, 1440, 4320];

/// The bucket a review time falls in.
pub fn review_bucket(minutes: f64) -> usize {
    REVIEW_BUCKETS_MINUTES
        .iter()
        .rposition(|low| f64::from(*low) <= minutes)
        .unwrap_or(0)
}

/// The median of bucketed counts (the middle review's bucket, as its midpoint in minutes).
pub fn bucket_median(counts: &[u64; REVIEW_BUCKETS_MINUTES.len()]) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let middle = total.div_ceil(2);
    let mut seen = 0;
    for (i, count) in counts.iter().enumerate() {
        seen += count;
        if seen >= middle {
            let low = f64::from(REVIEW_BUCKETS_MINUTES[i]);
            let high = REVIEW_BUCKETS_MINUTES
                .get(i + 1)
                .map_or(low * 2.0, |h| f64::from(*h));
            return Some((low + high) / 2.0);
        }
    }
    None
}

/// Character edit distance between `a` and `b` divided by the longer length: 0 when equal,
/// 1 when nothing is shared. Long texts are compared on their first 4,000 characters.
pub fn edit_ratio(a: &str, b: &str) -> f64 {
    const LIMIT: usize = 4000;
    let a: Vec<char> = a.chars().take(LIMIT).collect();
    let b: Vec<char> = b.chars().take(LIMIT).collect();
    let longer = a.len().max(b.len());
    if longer == 0 {
        return 0.0;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()] as f64 / longer as f64
}
