//! How the dashboard's views are kept, whichever store keeps them: the facts that change
//! them ([`ViewFact`]), what each fact adds to which counter ([`ViewFact::deltas`]), and
//! the dashboard's figures read back from the counters ([`ViewRows::figures`]).
//!
//! The embedded store applies a fact's deltas in the transaction of the write that makes
//! it; on AWS the stream handler derives the facts from the table's stream and a consumer
//! of the topic applies them. Every delta is an addition, so the order facts arrive in
//! does not matter, and applying each fact once (by its id) gives the same counters.

use crate::dashboard::{
    BandDay, BandMix, DateRange, EmailDay, REVIEW_BUCKETS_MINUTES, StylistFigures, WriterQuality,
    bucket_median, edit_ratio, review_bucket,
};
use crate::outcomes::{Conversion, TouchCounts, TouchGroup};
use crate::score::Band;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Where a client counts: its stylist's book, in a band.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookBand {
    pub stylist: String,
    pub band: Band,
}

/// How a review ended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Approved; `edit` is the edit ratio between the writer's words and the approved ones.
    Approved {
        edit: f64,
    },
    Rejected,
}

/// One change that the dashboard counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum ViewFact {
    /// A client's band or book changed at `at`: where it counted before (none: not scored
    /// yet) and where it counts now.
    ClientCounted {
        old: Option<BookBand>,
        new: Option<BookBand>,
        at: DateTime<Utc>,
    },
    /// A draft was written (it counts on the day it was created).
    Drafted {
        stylist: String,
        writer: String,
        cost_usd: f64,
        created: DateTime<Utc>,
    },
    /// A draft was rewritten: it now counts for `writer`, and the rewrite's cost is added.
    Redrafted {
        stylist: String,
        old_writer: String,
        writer: String,
        cost_usd: f64,
        created: DateTime<Utc>,
    },
    /// A draft was reviewed at `at`, `minutes` after it was written.
    Reviewed {
        stylist: String,
        writer: String,
        verdict: Verdict,
        minutes: f64,
        at: DateTime<Utc>,
    },
    /// A draft was withdrawn before review: it no longer waits.
    Withdrawn { stylist: String },
    /// An approved email was delivered (`sent`) or failed.
    Delivered {
        stylist: String,
        writer: String,
        sent: bool,
        at: DateTime<Utc>,
    },
    /// The policy touched a client (drafted, or held out): a trial of the comparison.
    Touched {
        group: TouchGroup,
        expected_purchases: Option<f64>,
    },
    /// A touch's conversion changed (a purchase within its window, or one taken back).
    ConversionChanged {
        group: TouchGroup,
        has_expectation: bool,
        from: Option<Conversion>,
        to: Option<Conversion>,
    },
}

/// What one (day, stylist, writer) row of the email funnel gains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EmailCounts {
    pub drafted: i64,
    pub approved: i64,
    pub sent: i64,
    pub rejected: i64,
    pub failed: i64,
    pub edited: i64,
    pub edit_sum: f64,
    pub cost_usd: f64,
}

impl EmailCounts {
    pub fn add(&mut self, other: &Self) {
        self.drafted += other.drafted;
        self.approved += other.approved;
        self.sent += other.sent;
        self.rejected += other.rejected;
        self.failed += other.failed;
        self.edited += other.edited;
        self.edit_sum += other.edit_sum;
        self.cost_usd += other.cost_usd;
    }
}

/// An addition to one counter. A fact's deltas never name one counter twice.
#[derive(Debug, Clone, PartialEq)]
pub enum ViewDelta {
    /// Clients of a stylist in a band, now.
    Book { at: BookBand, clients: i64 },
    /// The change of a band's total over all books on `day`.
    BandDay {
        day: NaiveDate,
        band: Band,
        clients: i64,
    },
    Emails {
        day: NaiveDate,
        stylist: String,
        writer: String,
        counts: EmailCounts,
    },
    /// One review in a review-time bucket.
    Review {
        day: NaiveDate,
        stylist: String,
        bucket: usize,
    },
    /// Drafts waiting for the stylist's review.
    Pending { stylist: String, drafts: i64 },
    /// A group of touches' outcome counters.
    Touches {
        group: TouchGroup,
        counts: TouchCounts,
    },
}

impl ViewFact {
    /// What the fact adds to which counter.
    pub fn deltas(&self) -> Vec<ViewDelta> {
        let emails = |day: DateTime<Utc>, stylist: &str, writer: &str, counts| ViewDelta::Emails {
            day: day.date_naive(),
            stylist: stylist.to_owned(),
            writer: writer.to_owned(),
            counts,
        };
        match self {
            Self::ClientCounted { old, new, at } => {
                if old == new {
                    return Vec::new();
                }
                let mut deltas = Vec::new();
                if let Some(old) = old {
                    deltas.push(ViewDelta::Book {
                        at: old.clone(),
                        clients: -1,
                    });
                }
                if let Some(new) = new {
                    deltas.push(ViewDelta::Book {
                        at: new.clone(),
                        clients: 1,
                    });
                }
                let (was, is) = (old.as_ref().map(|b| b.band), new.as_ref().map(|b| b.band));
                if was != is {
                    let day = at.date_naive();
                    for (band, clients) in [(was, -1), (is, 1)] {
                        if let Some(band) = band {
                            deltas.push(ViewDelta::BandDay { day, band, clients });
                        }
                    }
                }
                deltas
            }
            Self::Drafted {
                stylist,
                writer,
                cost_usd,
                created,
            } => vec![
                emails(
                    *created,
                    stylist,
                    writer,
                    EmailCounts {
                        drafted: 1,
                        cost_usd: *cost_usd,
                        ..EmailCounts::default()
                    },
                ),
                ViewDelta::Pending {
                    stylist: stylist.clone(),
                    drafts: 1,
                },
            ],
            Self::Redrafted {
                stylist,
                old_writer,
                writer,
                cost_usd,
                created,
            } => {
                let moved = i64::from(old_writer != writer);
                let mut deltas = Vec::new();
                if moved == 1 {
                    deltas.push(emails(
                        *created,
                        stylist,
                        old_writer,
                        EmailCounts {
                            drafted: -1,
                            ..EmailCounts::default()
                        },
                    ));
                }
                if moved == 1 || *cost_usd != 0.0 {
                    deltas.push(emails(
                        *created,
                        stylist,
                        writer,
                        EmailCounts {
                            drafted: moved,
                            cost_usd: *cost_usd,
                            ..EmailCounts::default()
                        },
                    ));
                }
                deltas
            }
            Self::Reviewed {
                stylist,
                writer,
                verdict,
                minutes,
                at,
            } => {
                let counts = match verdict {
                    Verdict::Approved { edit } => EmailCounts {
                        approved: 1,
                        edited: i64::from(*edit > 0.0),
                        edit_sum: *edit,
                        ..EmailCounts::default()
                    },
                    Verdict::Rejected => EmailCounts {
                        rejected: 1,
                        ..EmailCounts::default()
                    },
                };
                vec![
                    emails(*at, stylist, writer, counts),
                    ViewDelta::Pending {
                        stylist: stylist.clone(),
                        drafts: -1,
                    },
                    ViewDelta::Review {
                        day: at.date_naive(),
                        stylist: stylist.clone(),
                        bucket: review_bucket(*minutes),
                    },
                ]
            }
            Self::Withdrawn { stylist } => vec![ViewDelta::Pending {
                stylist: stylist.clone(),
                drafts: -1,
            }],
            Self::Delivered {
                stylist,
                writer,
                sent,
                at,
            } => {
                let counts = if *sent {
                    EmailCounts {
                        sent: 1,
                        ..EmailCounts::default()
                    }
                } else {
                    EmailCounts {
                        failed: 1,
                        ..EmailCounts::default()
                    }
                };
                vec![emails(*at, stylist, writer, counts)]
            }
            Self::Touched {
                group,
                expected_purchases,
            } => vec![ViewDelta::Touches {
                group: group.clone(),
                counts: TouchCounts::of_touch(*expected_purchases),
            }],
            Self::ConversionChanged {
                group,
                has_expectation,
                from,
                to,
            } => {
                if from == to {
                    return Vec::new();
                }
                vec![ViewDelta::Touches {
                    group: group.clone(),
                    counts: TouchCounts::of_conversion_change(*from, *to, *has_expectation),
                }]
            }
        }
    }
}

/// The edit ratio of an approved email: the writer's subject and text (`None` when the
/// stylist never edited, so they are the approved ones) against the ones approved.
pub fn approved_edit(
    ai_subject: Option<&str>,
    ai_body: Option<&str>,
    subject: &str,
    body: &str,
) -> f64 {
    match (ai_subject, ai_body) {
        (None, None) => 0.0,
        (ai_subject, ai_body) => edit_ratio(
            &format!(
                "{}\n{}",
                ai_subject.unwrap_or(subject),
                ai_body.unwrap_or(body)
            ),
            &format!("{subject}\n{body}"),
        ),
    }
}

/// A view fact as it travels on the topic, with the id that makes applying it idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewFactMessage {
    pub id: String,
    #[serde(flatten)]
    pub fact: ViewFact,
}

/// The `event_kind` attribute of view facts on the topic.
pub const VIEW_FACT_KIND: &str = "view_fact";

/// The dashboard's figures (all but the pipeline's health) as the views hold them.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardFigures {
    pub bands: BandMix,
    pub band_days: Vec<BandDay>,
    pub stylists: Vec<StylistFigures>,
    pub email_days: Vec<EmailDay>,
    pub writers: Vec<WriterQuality>,
}

/// What a store read from its views for one range, before it becomes figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ViewRows {
    /// Clients per (stylist, band), now.
    pub books: Vec<(String, Band, i64)>,
    /// Each band's total at the end of the day before the range.
    pub mix_before: BandMix,
    /// A band's total at the end of a day in the range on which it changed.
    pub band_closings: Vec<(NaiveDate, Band, i64)>,
    /// The email funnel rows of the days in the range.
    pub emails: Vec<(NaiveDate, String, String, EmailCounts)>,
    /// Reviews per (day in the range, stylist, bucket).
    pub reviews: Vec<(NaiveDate, String, usize, u64)>,
    /// Drafts waiting, per stylist.
    pub pending: Vec<(String, i64)>,
    /// Every stylist (id, name), in the order the table shows them.
    pub stylists: Vec<(String, String)>,
}

/// Turns per-day changes of band totals into what [`ViewRows`] holds: the totals before
/// `range` and each day's closing total, given the totals now.
pub fn band_closings(
    now: BandMix,
    changes: &[(NaiveDate, Band, i64)],
    range: DateRange,
) -> (BandMix, Vec<(NaiveDate, Band, i64)>) {
    let mut by_day: BTreeMap<NaiveDate, Vec<(Band, i64)>> = BTreeMap::new();
    for (day, band, clients) in changes {
        by_day.entry(*day).or_default().push((*band, *clients));
    }
    // Walk back from now: a day's closing total is now's minus every later change.
    let mut totals: HashMap<Band, i64> =
        Band::ALL.iter().map(|b| (*b, now.get(*b) as i64)).collect();
    let mut closings = Vec::new();
    let mut before = None;
    for (day, moved) in by_day.iter().rev() {
        if *day < range.from && before.is_none() {
            before = Some(totals.clone());
        }
        if *day >= range.from && *day <= range.to {
            for (band, _) in moved {
                closings.push((*day, *band, totals[band]));
            }
        }
        for (band, clients) in moved {
            *totals.entry(*band).or_default() -= clients;
        }
    }
    let before = before.unwrap_or(totals);
    let mut mix_before = BandMix::default();
    for band in Band::ALL {
        mix_before.add(band, before[&band]);
    }
    closings.sort_by_key(|(day, band, _)| (*day, band.as_str()));
    closings.dedup();
    (mix_before, closings)
}

impl ViewRows {
    /// The dashboard's figures for `range`.
    pub fn figures(self, range: DateRange) -> DashboardFigures {
        // Now, by band and by stylist.
        let mut bands = BandMix::default();
        let mut per_stylist: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (stylist, band, clients) in self.books {
            bands.add(band, clients);
            let entry = per_stylist.entry(stylist).or_default();
            entry.0 = entry.0.saturating_add_signed(clients);
            if band == Band::AtRisk {
                entry.1 = entry.1.saturating_add_signed(clients);
            }
        }
        // The band mix per day, carrying each band's last value forward.
        let mut last = self.mix_before;
        let mut changes: BTreeMap<NaiveDate, Vec<(Band, i64)>> = BTreeMap::new();
        for (day, band, clients) in self.band_closings {
            changes.entry(day).or_default().push((band, clients));
        }
        let band_days = range
            .days()
            .map(|day| {
                for (band, clients) in changes.remove(&day).unwrap_or_default() {
                    last.add(band, clients - last.get(band) as i64);
                }
                BandDay { day, mix: last }
            })
            .collect();
        // The email funnel per day and per writer.
        let mut days: BTreeMap<NaiveDate, EmailDay> = range
            .days()
            .map(|d| {
                (
                    d,
                    EmailDay {
                        day: d,
                        ..EmailDay::default()
                    },
                )
            })
            .collect();
        let mut writers: BTreeMap<String, EmailCounts> = BTreeMap::new();
        let mut edit_sums: BTreeMap<NaiveDate, f64> = BTreeMap::new();
        let mut sent_by: HashMap<String, u64> = HashMap::new();
        let count = |n: i64| n.max(0) as u64;
        for (day, stylist, writer, c) in self.emails {
            if let Some(d) = days.get_mut(&day) {
                d.drafted += count(c.drafted);
                d.approved += count(c.approved);
                d.sent += count(c.sent);
                d.rejected += count(c.rejected);
                d.failed += count(c.failed);
                d.edited += count(c.edited);
                d.cost_usd += c.cost_usd;
                *edit_sums.entry(day).or_default() += c.edit_sum;
            }
            let clamped = EmailCounts {
                drafted: c.drafted.max(0),
                approved: c.approved.max(0),
                rejected: c.rejected.max(0),
                edited: c.edited.max(0),
                edit_sum: c.edit_sum,
                ..EmailCounts::default()
            };
            writers.entry(writer).or_default().add(&clamped);
            *sent_by.entry(stylist).or_default() += count(c.sent);
        }
        for (day, sum) in edit_sums {
            if let Some(d) = days.get_mut(&day).filter(|d| d.approved > 0) {
                d.mean_edit = Some(sum / d.approved as f64);
            }
        }
        // Review times: per day, and per stylist over the range.
        const BUCKETS: usize = REVIEW_BUCKETS_MINUTES.len();
        let mut per_day: BTreeMap<NaiveDate, [u64; BUCKETS]> = BTreeMap::new();
        let mut per_stylist_times: HashMap<String, [u64; BUCKETS]> = HashMap::new();
        for (day, stylist, bucket, reviews) in self.reviews {
            let bucket = bucket.min(BUCKETS - 1);
            per_day.entry(day).or_insert([0; BUCKETS])[bucket] += reviews;
            per_stylist_times.entry(stylist).or_insert([0; BUCKETS])[bucket] += reviews;
        }
        for (day, counts) in &per_day {
            if let Some(d) = days.get_mut(day) {
                d.median_review_minutes = bucket_median(counts);
            }
        }
        let pending: HashMap<String, i64> = self.pending.into_iter().collect();
        let stylists = self
            .stylists
            .into_iter()
            .map(|(id, name)| {
                let (clients, at_risk) = per_stylist.get(&id).copied().unwrap_or_default();
                StylistFigures {
                    clients,
                    at_risk,
                    pending_reviews: pending.get(&id).copied().unwrap_or(0).max(0) as u64,
                    median_review_minutes: per_stylist_times.get(&id).and_then(bucket_median),
                    sent: sent_by.get(&id).copied().unwrap_or(0),
                    stylist_id: id,
                    stylist_name: name,
                }
            })
            .collect();
        let writers = writers
            .into_iter()
            .map(|(writer, c)| {
                let (drafted, approved, rejected, edited) = (
                    c.drafted as u64,
                    c.approved as u64,
                    c.rejected as u64,
                    c.edited as u64,
                );
                WriterQuality {
                    writer,
                    drafted,
                    approved,
                    rejected,
                    approval_rate: (approved + rejected > 0)
                        .then(|| approved as f64 / (approved + rejected) as f64),
                    edited,
                    mean_edit: (approved > 0).then(|| c.edit_sum / approved as f64),
                }
            })
            .collect();
        DashboardFigures {
            bands,
            band_days,
            stylists,
            email_days: days.into_values().collect(),
            writers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
    }

    fn at(d: u32) -> DateTime<Utc> {
        day(d).and_hms_opt(10, 0, 0).unwrap().and_utc()
    }

    fn book(stylist: &str, band: Band) -> Option<BookBand> {
        Some(BookBand {
            stylist: stylist.into(),
            band,
        })
    }

    #[test]
    fn a_band_change_moves_the_client_between_counters_and_a_book_change_only_between_books() {
        let changed = ViewFact::ClientCounted {
            old: book("st-1", Band::Steady),
            new: book("st-1", Band::AtRisk),
            at: at(2),
        };
        assert_eq!(
            changed.deltas(),
            vec![
                ViewDelta::Book {
                    at: book("st-1", Band::Steady).unwrap(),
                    clients: -1
                },
                ViewDelta::Book {
                    at: book("st-1", Band::AtRisk).unwrap(),
                    clients: 1
                },
                ViewDelta::BandDay {
                    day: day(2),
                    band: Band::Steady,
                    clients: -1
                },
                ViewDelta::BandDay {
                    day: day(2),
                    band: Band::AtRisk,
                    clients: 1
                },
            ]
        );
        let moved = ViewFact::ClientCounted {
            old: book("st-1", Band::Steady),
            new: book("st-2", Band::Steady),
            at: at(2),
        };
        assert_eq!(moved.deltas().len(), 2, "{:?}", moved.deltas());
        let same = ViewFact::ClientCounted {
            old: book("st-1", Band::Steady),
            new: book("st-1", Band::Steady),
            at: at(2),
        };
        assert!(same.deltas().is_empty());
    }

    #[test]
    fn an_edited_approval_is_one_funnel_row_with_the_edit_a_review_and_one_draft_less_waiting() {
        let fact = ViewFact::Reviewed {
            stylist: "st-1".into(),
            writer: "template".into(),
            verdict: Verdict::Approved { edit: 0.25 },
            minutes: 7.0,
            at: at(3),
        };
        let deltas = fact.deltas();
        assert_eq!(deltas.len(), 3);
        assert!(matches!(&deltas[0], ViewDelta::Emails { counts, .. }
            if counts.approved == 1 && counts.edited == 1 && counts.edit_sum == 0.25));
        assert!(matches!(&deltas[1], ViewDelta::Pending { drafts: -1, .. }));
        assert!(
            matches!(&deltas[2], ViewDelta::Review { bucket, .. } if REVIEW_BUCKETS_MINUTES[*bucket] == 5)
        );
    }

    #[test]
    fn closings_walk_back_from_the_totals_now() {
        // Now: 2 steady, 1 at risk. Day 1: two steady joined; day 3: one moved to at risk;
        // day 5: one more at risk joined.
        let mut now = BandMix::default();
        now.add(Band::Steady, 1);
        now.add(Band::AtRisk, 2);
        let changes = [
            (day(1), Band::Steady, 2),
            (day(3), Band::Steady, -1),
            (day(3), Band::AtRisk, 1),
            (day(5), Band::AtRisk, 1),
        ];
        let range = DateRange {
            from: day(2),
            to: day(4),
        };
        let (before, closings) = band_closings(now, &changes, range);
        assert_eq!((before.steady, before.at_risk), (2, 0));
        assert_eq!(
            closings,
            vec![(day(3), Band::AtRisk, 1), (day(3), Band::Steady, 1)]
        );
    }

    #[test]
    fn a_fact_survives_the_topic_with_its_id() {
        let message = ViewFactMessage {
            id: "seq-1".into(),
            fact: ViewFact::Withdrawn {
                stylist: "st-1".into(),
            },
        };
        let text = serde_json::to_string(&message).unwrap();
        assert_eq!(
            serde_json::from_str::<ViewFactMessage>(&text).unwrap(),
            message
        );
    }
}
