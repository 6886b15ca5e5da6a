//! Materialized views behind the manager's dashboard, kept current by the writes that
//! change what they count (in the same transaction), and rebuilt from the logs on demand
//! (`engage views rebuild`). Reading the dashboard touches only these small tables, never
//! the clients or emails, so it costs the same for a thousand clients or a million.

use crate::db::instant;
use crate::db_error;
use crate::{Result, Store, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use domain::Band;
use domain::dashboard::DateRange;
use domain::view_facts::{BookBand, EmailCounts, ViewDelta, ViewFact, ViewRows};
pub use domain::view_facts::{DashboardFigures, Verdict, approved_edit};
use rusqlite::{Connection, params};
use std::collections::HashMap;

/// Every view table, in the order they are cleared and compared.
pub const VIEW_TABLES: [&str; 6] = [
    "view_band_counts",
    "view_band_daily",
    "view_email_daily",
    "view_review_times",
    "view_pending",
    "view_touches",
];

fn band_of(raw: &str) -> rusqlite::Result<Band> {
    Band::parse(raw).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("band {raw}").into(),
        )
    })
}

/// Adds a fact's deltas to the view tables (in the caller's transaction). A band's daily
/// row holds its total at the end of the day, taken after the books changed.
pub(crate) fn apply(conn: &Connection, fact: &ViewFact) -> rusqlite::Result<()> {
    for delta in fact.deltas() {
        match delta {
            ViewDelta::Book { at, clients } => {
                conn.prepare_cached(
                    "INSERT INTO view_band_counts (stylist_id, band, clients) VALUES (?1, ?2, ?3)
                     ON CONFLICT (stylist_id, band) DO UPDATE SET clients = clients + excluded.clients",
                )?
                .execute(params![at.stylist, at.band.as_str(), clients])?;
            }
            ViewDelta::BandDay { day, band, .. } => {
                conn.prepare_cached(
                    "INSERT INTO view_band_daily (day, band, clients)
                       SELECT ?1, ?2, COALESCE(SUM(clients), 0) FROM view_band_counts WHERE band = ?2
                     ON CONFLICT (day, band) DO UPDATE SET clients = excluded.clients",
                )?
                .execute(params![day.to_string(), band.as_str()])?;
            }
            ViewDelta::Emails {
                day,
                stylist,
                writer,
                counts: c,
            } => {
                conn.prepare_cached(
                    "INSERT INTO view_email_daily (day, stylist_id, writer, drafted, approved, sent, rejected, failed, edited, edit_sum, cost_usd)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT (day, stylist_id, writer) DO UPDATE SET
                        drafted = drafted + excluded.drafted, approved = approved + excluded.approved,
                        sent = sent + excluded.sent, rejected = rejected + excluded.rejected,
                        failed = failed + excluded.failed, edited = edited + excluded.edited,
                        edit_sum = edit_sum + excluded.edit_sum, cost_usd = cost_usd + excluded.cost_usd",
                )?
                .execute(params![
                    day.to_string(),
                    stylist,
                    writer,
                    c.drafted,
                    c.approved,
                    c.sent,
                    c.rejected,
                    c.failed,
                    c.edited,
                    c.edit_sum,
                    c.cost_usd
                ])?;
            }
            ViewDelta::Review {
                day,
                stylist,
                bucket,
            } => {
                conn.prepare_cached(
                    "INSERT INTO view_review_times (day, stylist_id, bucket, reviews) VALUES (?1, ?2, ?3, 1)
                     ON CONFLICT (day, stylist_id, bucket) DO UPDATE SET reviews = reviews + 1",
                )?
                .execute(params![day.to_string(), stylist, bucket as i64])?;
            }
            ViewDelta::Pending { stylist, drafts } => {
                conn.prepare_cached(
                    "INSERT INTO view_pending (stylist_id, drafts) VALUES (?1, ?2)
                     ON CONFLICT (stylist_id) DO UPDATE SET drafts = drafts + excluded.drafts",
                )?
                .execute(params![stylist, drafts])?;
            }
            ViewDelta::Touches { group, counts: c } => {
                conn.prepare_cached(
                    "INSERT INTO view_touches (kind, outcome, writer, prompt_version, touches, converted, purchases,
                        value_cents, expected_touches, expected_purchases, purchases_with_expectation)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT (kind, outcome, writer, prompt_version) DO UPDATE SET
                        touches = touches + excluded.touches, converted = converted + excluded.converted,
                        purchases = purchases + excluded.purchases, value_cents = value_cents + excluded.value_cents,
                        expected_touches = expected_touches + excluded.expected_touches,
                        expected_purchases = expected_purchases + excluded.expected_purchases,
                        purchases_with_expectation = purchases_with_expectation + excluded.purchases_with_expectation",
                )?
                .execute(params![
                    group.kind.as_str(),
                    group.outcome.as_str(),
                    group.writer,
                    group.prompt_version,
                    c.touches,
                    c.converted,
                    c.purchases,
                    c.value_cents,
                    c.expected_touches,
                    c.expected_purchases,
                    c.purchases_with_expectation
                ])?;
            }
        }
    }
    Ok(())
}

/// A client's band changed from `old` (none: first score) to `new`.
pub(crate) fn band_changed(
    conn: &Connection,
    stylist: &str,
    old: Option<&str>,
    new: &str,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let counted = |band: Band| BookBand {
        stylist: stylist.to_owned(),
        band,
    };
    let fact = ViewFact::ClientCounted {
        old: old.map(band_of).transpose()?.map(counted),
        new: Some(counted(band_of(new)?)),
        at,
    };
    apply(conn, &fact)
}

/// A client moved from one stylist's book to another's, in band `band` (if scored).
pub(crate) fn client_moved(
    conn: &Connection,
    from: &str,
    to: &str,
    band: Option<&str>,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let Some(band) = band.map(band_of).transpose()? else {
        return Ok(());
    };
    let fact = ViewFact::ClientCounted {
        old: Some(BookBand {
            stylist: from.to_owned(),
            band,
        }),
        new: Some(BookBand {
            stylist: to.to_owned(),
            band,
        }),
        at,
    };
    apply(conn, &fact)
}

/// A draft was written (on the day it was created, by `writer`, costing `cost`).
pub(crate) fn drafted(
    conn: &Connection,
    stylist: &str,
    writer: &str,
    cost: f64,
    created: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let fact = ViewFact::Drafted {
        stylist: stylist.to_owned(),
        writer: writer.to_owned(),
        cost_usd: cost,
        created,
    };
    apply(conn, &fact)
}

/// A draft was rewritten: it now counts for `writer` (on its creation day), and what the
/// rewrite cost is added.
pub(crate) fn redrafted(
    conn: &Connection,
    stylist: &str,
    old_writer: &str,
    writer: &str,
    cost: f64,
    created: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let fact = ViewFact::Redrafted {
        stylist: stylist.to_owned(),
        old_writer: old_writer.to_owned(),
        writer: writer.to_owned(),
        cost_usd: cost,
        created,
    };
    apply(conn, &fact)
}

/// A draft was reviewed at `at`, `minutes` after it was written.
pub(crate) fn reviewed(
    conn: &Connection,
    stylist: &str,
    writer: &str,
    verdict: Verdict,
    minutes: f64,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let fact = ViewFact::Reviewed {
        stylist: stylist.to_owned(),
        writer: writer.to_owned(),
        verdict,
        minutes,
        at,
    };
    apply(conn, &fact)
}

/// A draft was withdrawn before review (its client may no longer be emailed): it no
/// longer waits.
pub(crate) fn withdrawn_draft(conn: &Connection, stylist: &str) -> rusqlite::Result<()> {
    apply(
        conn,
        &ViewFact::Withdrawn {
            stylist: stylist.to_owned(),
        },
    )
}

/// An approved email was delivered (`sent`) or not.
pub(crate) fn delivered(
    conn: &Connection,
    stylist: &str,
    writer: &str,
    sent: bool,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let fact = ViewFact::Delivered {
        stylist: stylist.to_owned(),
        writer: writer.to_owned(),
        sent,
        at,
    };
    apply(conn, &fact)
}

fn minutes_between(from: i64, to: i64) -> f64 {
    (to - from).max(0) as f64 / 60_000.0
}

fn parse_day(raw: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|e| StoreError::Corrupt(format!("view day {raw}: {e}")))
}

fn parse_band(raw: &str) -> Result<Band> {
    Band::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("band {raw}")))
}

impl Store {
    /// The dashboard for `range`, read from the views only.
    pub async fn dashboard_figures(&self, range: DateRange) -> Result<DashboardFigures> {
        let rows = self
            .read(move |conn| {
                let (from, to) = (range.from.to_string(), range.to.to_string());
                let mut rows = ViewRows::default();
                let mut stmt = conn.prepare_cached("SELECT stylist_id, band, clients FROM view_band_counts").map_err(db_error)?;
                let mut found = stmt.query([]).map_err(db_error)?;
                while let Some(row) = found.next().map_err(db_error)? {
                    rows.books.push((row.get(0).map_err(db_error)?, parse_band(&row.get::<_, String>(1).map_err(db_error)?)?, row.get(2).map_err(db_error)?));
                }
                // Each band's last closing before the range.
                let mut stmt = conn.prepare_cached(
                    "SELECT band, clients FROM view_band_daily d
                     WHERE day = (SELECT MAX(day) FROM view_band_daily e WHERE e.band = d.band AND e.day < ?1)",
                ).map_err(db_error)?;
                let mut found = stmt.query([&from]).map_err(db_error)?;
                while let Some(row) = found.next().map_err(db_error)? {
                    let band = parse_band(&row.get::<_, String>(0).map_err(db_error)?)?;
                    let clients: i64 = row.get(1).map_err(db_error)?;
                    rows.mix_before.add(band, clients - rows.mix_before.get(band) as i64);
                }
                let mut stmt = conn.prepare_cached("SELECT day, band, clients FROM view_band_daily WHERE day BETWEEN ?1 AND ?2").map_err(db_error)?;
                let mut found = stmt.query([&from, &to]).map_err(db_error)?;
                while let Some(row) = found.next().map_err(db_error)? {
                    rows.band_closings.push((
                        parse_day(&row.get::<_, String>(0).map_err(db_error)?)?,
                        parse_band(&row.get::<_, String>(1).map_err(db_error)?)?,
                        row.get(2).map_err(db_error)?,
                    ));
                }
                let mut stmt = conn.prepare_cached(
                    "SELECT day, stylist_id, writer, drafted, approved, sent, rejected, failed, edited, edit_sum, cost_usd
                     FROM view_email_daily WHERE day BETWEEN ?1 AND ?2",
                ).map_err(db_error)?;
                let mut found = stmt.query([&from, &to]).map_err(db_error)?;
                while let Some(row) = found.next().map_err(db_error)? {
                    let counts = EmailCounts {
                        drafted: row.get(3).map_err(db_error)?,
                        approved: row.get(4).map_err(db_error)?,
                        sent: row.get(5).map_err(db_error)?,
                        rejected: row.get(6).map_err(db_error)?,
                        failed: row.get(7).map_err(db_error)?,
                        edited: row.get(8).map_err(db_error)?,
                        edit_sum: row.get(9).map_err(db_error)?,
                        cost_usd: row.get(10).map_err(db_error)?,
                    };
                    rows.emails.push((parse_day(&row.get::<_, String>(0).map_err(db_error)?)?, row.get(1).map_err(db_error)?, row.get(2).map_err(db_error)?, counts));
                }
                let mut stmt = conn.prepare_cached("SELECT day, stylist_id, bucket, reviews FROM view_review_times WHERE day BETWEEN ?1 AND ?2").map_err(db_error)?;
                let mut found = stmt.query([&from, &to]).map_err(db_error)?;
                while let Some(row) = found.next().map_err(db_error)? {
                    rows.reviews.push((
                        parse_day(&row.get::<_, String>(0).map_err(db_error)?)?,
                        row.get(1).map_err(db_error)?,
                        row.get::<_, i64>(2).map_err(db_error)?.max(0) as usize,
                        row.get::<_, i64>(3).map_err(db_error)?.max(0) as u64,
                    ));
                }
                rows.pending = conn
                    .prepare_cached("SELECT stylist_id, drafts FROM view_pending").map_err(db_error)?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db_error)?
                    .collect::<rusqlite::Result<_>>().map_err(db_error)?;
                rows.stylists = conn
                    .prepare_cached("SELECT id, name FROM stylists ORDER BY name").map_err(db_error)?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db_error)?
                    .collect::<rusqlite::Result<_>>().map_err(db_error)?;
                Ok(rows)
            })
            .await?;
        Ok(rows.figures(range))
    }

    /// Whether the views are empty although there is history to count (a database from
    /// before the views existed); `engage serve` rebuilds them then.
    pub async fn views_need_rebuild(&self) -> Result<bool> {
        self.read(|conn| {
            conn.query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM view_band_counts) AND EXISTS (SELECT 1 FROM score_changes)",
                [],
                |r| r.get(0),
            ).map_err(db_error)
        })
        .await
    }

    /// Every view table's rows, sorted: for comparing the live views with rebuilt ones.
    pub async fn view_rows(&self) -> Result<Vec<(String, Vec<String>)>> {
        self.read(|conn| {
            let mut all = Vec::new();
            for table in VIEW_TABLES {
                let mut stmt = conn
                    .prepare(&format!("SELECT * FROM {table}"))
                    .map_err(db_error)?;
                let columns = stmt.column_count();
                let mut rows: Vec<String> = stmt
                    .query_map([], |r| {
                        (0..columns)
                            .map(|i| {
                                Ok(match r.get_ref(i)? {
                                    rusqlite::types::ValueRef::Real(x) => format!("{x:.9}"),
                                    other => format!("{other:?}"),
                                })
                            })
                            .collect::<rusqlite::Result<Vec<_>>>()
                            .map(|v| v.join("|"))
                    })
                    .map_err(db_error)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(db_error)?;
                rows.sort();
                all.push((table.to_owned(), rows));
            }
            Ok(all)
        })
        .await
    }

    /// Recomputes every view from the logs (score changes, emails and their review steps),
    /// in one transaction; `progress` hears (done, total) as it goes.
    pub async fn rebuild_views(&self, progress: impl Fn(u64, u64) + Send + 'static) -> Result<()> {
        self.write(move |conn| {
            for table in VIEW_TABLES {
                conn.execute(&format!("DELETE FROM {table}"), []).map_err(db_error)?;
            }
            let total: u64 = conn.query_row(
                "SELECT (SELECT COUNT(*) FROM score_changes) + (SELECT COUNT(*) FROM emails) + (SELECT COUNT(*) FROM email_reviews)
                      + (SELECT COUNT(*) FROM decisions)",
                [],
                |r| r.get(0),
            ).map_err(db_error)?;
            let mut done = 0u64;
            let tick = |done: &mut u64| {
                *done += 1;
                if done.is_multiple_of(10_000) || *done == total {
                    progress(*done, total);
                }
            };
            // Bands: each client's score changes in order.
            let mut bands: HashMap<String, String> = HashMap::new();
            let mut stmt = conn.prepare(
                "SELECT s.client_id, c.stylist_id, s.band, s.scored_at FROM score_changes s JOIN clients c ON c.id = s.client_id ORDER BY s.id",
            ).map_err(db_error)?;
            let mut rows = stmt.query([]).map_err(db_error)?;
            while let Some(row) = rows.next().map_err(db_error)? {
                let (client, stylist, band, at): (String, String, String, i64) = (row.get(0).map_err(db_error)?, row.get(1).map_err(db_error)?, row.get(2).map_err(db_error)?, row.get(3).map_err(db_error)?);
                let old = bands.insert(client, band.clone());
                band_changed(conn, &stylist, old.as_deref(), &band, instant(at)?).map_err(db_error)?;
                tick(&mut done);
            }
            drop(rows);
            // Drafts: one per email, for its final writer, with what all its drafts cost.
            let mut stmt = conn.prepare("SELECT stylist_id, writer, COALESCE(cost_usd, 0), created_at FROM emails ORDER BY created_at, id").map_err(db_error)?;
            let mut rows = stmt.query([]).map_err(db_error)?;
            while let Some(row) = rows.next().map_err(db_error)? {
                let (stylist, writer, cost, created): (String, String, f64, i64) = (row.get(0).map_err(db_error)?, row.get(1).map_err(db_error)?, row.get(2).map_err(db_error)?, row.get(3).map_err(db_error)?);
                drafted(conn, &stylist, &writer, cost, instant(created)?).map_err(db_error)?;
                tick(&mut done);
            }
            drop(rows);
            // Review steps in the order they happened.
            let mut stmt = conn.prepare(
                "SELECT r.action, r.at, e.stylist_id, e.writer, e.created_at, e.ai_subject, e.ai_body_text, e.subject, e.body_text
                 FROM email_reviews r JOIN emails e ON e.id = r.email_id ORDER BY r.id",
            ).map_err(db_error)?;
            let mut rows = stmt.query([]).map_err(db_error)?;
            while let Some(row) = rows.next().map_err(db_error)? {
                let (action, at, stylist, writer, created): (String, i64, String, String, i64) =
                    (row.get(0).map_err(db_error)?, row.get(1).map_err(db_error)?, row.get(2).map_err(db_error)?, row.get(3).map_err(db_error)?, row.get(4).map_err(db_error)?);
                let when = instant(at)?;
                match action.as_str() {
                    "approved" => {
                        let edit = approved_edit(
                            row.get::<_, Option<String>>(5).map_err(db_error)?.as_deref(),
                            row.get::<_, Option<String>>(6).map_err(db_error)?.as_deref(),
                            &row.get::<_, String>(7).map_err(db_error)?,
                            &row.get::<_, String>(8).map_err(db_error)?,
                        );
                        reviewed(conn, &stylist, &writer, Verdict::Approved { edit }, minutes_between(created, at), when).map_err(db_error)?;
                    }
                    "rejected" => reviewed(conn, &stylist, &writer, Verdict::Rejected, minutes_between(created, at), when).map_err(db_error)?,
                    "sent" => delivered(conn, &stylist, &writer, true, when).map_err(db_error)?,
                    "failed" => delivered(conn, &stylist, &writer, false, when).map_err(db_error)?,
                    "withdrawn" => withdrawn_draft(conn, &stylist).map_err(db_error)?,
                    _ => {}
                }
                tick(&mut done);
            }
            drop(rows);
            // The outcome counters: every touch and its conversion.
            crate::decisions::recount(conn, &mut || tick(&mut done))?;
            progress(total, total);
            Ok::<_, StoreError>(())
        })
        .await
    }
}
