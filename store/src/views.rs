//! Materialized views behind the manager's dashboard, kept current by the writes that
//! change what they count (in the same transaction), and rebuilt from the logs on demand
//! (`engage views rebuild`). Reading the dashboard touches only these small tables, never
//! the clients or emails, so it costs the same for a thousand clients or a million.

use crate::db::instant;
use crate::{Result, Store, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use domain::Band;
use domain::dashboard::{
    BandDay, BandMix, DateRange, EmailDay, REVIEW_BUCKETS_MINUTES, StylistFigures, WriterQuality,
    bucket_median, edit_ratio, review_bucket,
};
use rusqlite::{Connection, params};
use std::collections::{BTreeMap, HashMap};

/// Every view table, in the order they are cleared and compared.
pub const VIEW_TABLES: [&str; 5] = [
    "view_band_counts",
    "view_band_daily",
    "view_email_daily",
    "view_review_times",
    "view_pending",
];

fn day(at: DateTime<Utc>) -> String {
    at.date_naive().to_string()
}

/// A client's band changed from `old` (none: first score) to `new`.
pub(crate) fn band_changed(
    conn: &Connection,
    stylist: &str,
    old: Option<&str>,
    new: &str,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    if old == Some(new) {
        return Ok(());
    }
    let mut add = conn.prepare_cached(
        "INSERT INTO view_band_counts (stylist_id, band, clients) VALUES (?1, ?2, ?3)
         ON CONFLICT (stylist_id, band) DO UPDATE SET clients = clients + excluded.clients",
    )?;
    if let Some(old) = old {
        add.execute(params![stylist, old, -1])?;
    }
    add.execute(params![stylist, new, 1])?;
    // The day's closing mix for the bands that moved.
    let mut snapshot = conn.prepare_cached(
        "INSERT INTO view_band_daily (day, band, clients)
           SELECT ?1, ?2, COALESCE(SUM(clients), 0) FROM view_band_counts WHERE band = ?2
         ON CONFLICT (day, band) DO UPDATE SET clients = excluded.clients",
    )?;
    for band in old.into_iter().chain([new]) {
        snapshot.execute(params![day(at), band])?;
    }
    Ok(())
}

/// A client moved from one stylist's book to another's, in band `band` (if scored).
pub(crate) fn client_moved(
    conn: &Connection,
    from: &str,
    to: &str,
    band: Option<&str>,
) -> rusqlite::Result<()> {
    let Some(band) = band else { return Ok(()) };
    let mut add = conn.prepare_cached(
        "INSERT INTO view_band_counts (stylist_id, band, clients) VALUES (?1, ?2, ?3)
         ON CONFLICT (stylist_id, band) DO UPDATE SET clients = clients + excluded.clients",
    )?;
    add.execute(params![from, band, -1])?;
    add.execute(params![to, band, 1])?;
    Ok(())
}

/// Adds to one (day, stylist, writer) row of the email funnel.
#[allow(clippy::too_many_arguments)]
fn email_counts(
    conn: &Connection,
    day: &str,
    stylist: &str,
    writer: &str,
    column: &str,
    n: i64,
    edit: f64,
    cost: f64,
) -> rusqlite::Result<()> {
    let sql = format!(
        "INSERT INTO view_email_daily (day, stylist_id, writer, {column}, edit_sum, cost_usd) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (day, stylist_id, writer) DO UPDATE SET {column} = {column} + excluded.{column},
            edit_sum = edit_sum + excluded.edit_sum, cost_usd = cost_usd + excluded.cost_usd"
    );
    conn.prepare_cached(&sql)?
        .execute(params![day, stylist, writer, n, edit, cost])?;
    Ok(())
}

fn pending(conn: &Connection, stylist: &str, n: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO view_pending (stylist_id, drafts) VALUES (?1, ?2)
         ON CONFLICT (stylist_id) DO UPDATE SET drafts = drafts + excluded.drafts",
    )?
    .execute(params![stylist, n])?;
    Ok(())
}

/// A draft was written (on the day it was created, by `writer`, costing `cost`).
pub(crate) fn drafted(
    conn: &Connection,
    stylist: &str,
    writer: &str,
    cost: f64,
    created: DateTime<Utc>,
) -> rusqlite::Result<()> {
    email_counts(
        conn,
        &day(created),
        stylist,
        writer,
        "drafted",
        1,
        0.0,
        cost,
    )?;
    pending(conn, stylist, 1)
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
    let day = day(created);
    if old_writer != writer {
        email_counts(conn, &day, stylist, old_writer, "drafted", -1, 0.0, 0.0)?;
        email_counts(conn, &day, stylist, writer, "drafted", 1, 0.0, 0.0)?;
    }
    if cost != 0.0 {
        email_counts(conn, &day, stylist, writer, "drafted", 0, 0.0, cost)?;
    }
    Ok(())
}

/// How a review ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    /// Approved; `edit` is the edit ratio between the writer's words and the approved ones.
    Approved {
        edit: f64,
    },
    Rejected,
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
    let day = day(at);
    match verdict {
        Verdict::Approved { edit } => {
            email_counts(conn, &day, stylist, writer, "approved", 1, edit, 0.0)?;
            if edit > 0.0 {
                email_counts(conn, &day, stylist, writer, "edited", 1, 0.0, 0.0)?;
            }
        }
        Verdict::Rejected => email_counts(conn, &day, stylist, writer, "rejected", 1, 0.0, 0.0)?,
    }
    pending(conn, stylist, -1)?;
    conn.prepare_cached(
        "INSERT INTO view_review_times (day, stylist_id, bucket, reviews) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (day, stylist_id, bucket) DO UPDATE SET reviews = reviews + 1",
    )?
    .execute(params![day, stylist, review_bucket(minutes) as i64])?;
    Ok(())
}

/// A draft was withdrawn before review (its client may no longer be emailed): it no
/// longer waits.
pub(crate) fn withdrawn_draft(conn: &Connection, stylist: &str) -> rusqlite::Result<()> {
    pending(conn, stylist, -1)
}

/// An approved email was delivered (`sent`) or not.
pub(crate) fn delivered(
    conn: &Connection,
    stylist: &str,
    writer: &str,
    sent: bool,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let column = if sent { "sent" } else { "failed" };
    email_counts(conn, &day(at), stylist, writer, column, 1, 0.0, 0.0)
}

/// The edit ratio of an approved email: the writer's subject and text against the ones
/// approved (0 when the stylist changed nothing).
pub(crate) fn approved_edit(
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

/// The dashboard's figures (all but the pipeline's health) as the views hold them.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardFigures {
    pub bands: BandMix,
    pub band_days: Vec<BandDay>,
    pub stylists: Vec<StylistFigures>,
    pub email_days: Vec<EmailDay>,
    pub writers: Vec<WriterQuality>,
}

impl Store {
    /// The dashboard for `range`, read from the views only.
    pub async fn dashboard_figures(&self, range: DateRange) -> Result<DashboardFigures> {
        self.read(move |conn| {
            let (from, to) = (range.from.to_string(), range.to.to_string());
            // Now, by band and by stylist.
            let mut bands = BandMix::default();
            let mut per_stylist: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            let mut stmt = conn.prepare_cached("SELECT stylist_id, band, clients FROM view_band_counts")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let (stylist, band, clients): (String, String, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
                let band = parse_band(&band)?;
                bands.add(band, clients);
                let entry = per_stylist.entry(stylist).or_default();
                entry.0 = entry.0.saturating_add_signed(clients);
                if band == Band::AtRisk {
                    entry.1 = entry.1.saturating_add_signed(clients);
                }
            }
            // The band mix per day, carrying each band's last value forward.
            let mut last = BandMix::default();
            let mut stmt = conn.prepare_cached(
                "SELECT band, clients FROM view_band_daily d
                 WHERE day = (SELECT MAX(day) FROM view_band_daily e WHERE e.band = d.band AND e.day < ?1)",
            )?;
            let mut rows = stmt.query([&from])?;
            while let Some(row) = rows.next()? {
                let band = parse_band(&row.get::<_, String>(0)?)?;
                let clients: i64 = row.get(1)?;
                last.add(band, clients - last.get(band) as i64);
            }
            let mut changes: BTreeMap<NaiveDate, Vec<(Band, i64)>> = BTreeMap::new();
            let mut stmt = conn.prepare_cached("SELECT day, band, clients FROM view_band_daily WHERE day BETWEEN ?1 AND ?2")?;
            let mut rows = stmt.query([&from, &to])?;
            while let Some(row) = rows.next()? {
                changes
                    .entry(parse_day(&row.get::<_, String>(0)?)?)
                    .or_default()
                    .push((parse_band(&row.get::<_, String>(1)?)?, row.get(2)?));
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
            let mut days: BTreeMap<NaiveDate, EmailDay> = range.days().map(|d| (d, EmailDay { day: d, ..EmailDay::default() })).collect();
            let mut writers: BTreeMap<String, (u64, u64, u64, u64, f64)> = BTreeMap::new();
            let mut sent_by: HashMap<String, u64> = HashMap::new();
            let mut stmt = conn.prepare_cached(
                "SELECT day, stylist_id, writer, drafted, approved, sent, rejected, failed, edited, edit_sum, cost_usd
                 FROM view_email_daily WHERE day BETWEEN ?1 AND ?2",
            )?;
            let mut rows = stmt.query([&from, &to])?;
            while let Some(row) = rows.next()? {
                let day = parse_day(&row.get::<_, String>(0)?)?;
                let (stylist, writer): (String, String) = (row.get(1)?, row.get(2)?);
                let n = |i: usize| row.get::<_, i64>(i).map(|v| v.max(0) as u64);
                let (drafted, approved, sent, rejected, failed, edited) = (n(3)?, n(4)?, n(5)?, n(6)?, n(7)?, n(8)?);
                let (edit_sum, cost): (f64, f64) = (row.get(9)?, row.get(10)?);
                if let Some(d) = days.get_mut(&day) {
                    d.drafted += drafted;
                    d.approved += approved;
                    d.sent += sent;
                    d.rejected += rejected;
                    d.failed += failed;
                    d.cost_usd += cost;
                }
                let w = writers.entry(writer).or_default();
                w.0 += drafted;
                w.1 += approved;
                w.2 += rejected;
                w.3 += edited;
                w.4 += edit_sum;
                *sent_by.entry(stylist).or_default() += sent;
            }
            // Review times: per day, and per stylist over the range.
            let buckets = REVIEW_BUCKETS_MINUTES.len();
            let mut per_day: BTreeMap<NaiveDate, [u64; REVIEW_BUCKETS_MINUTES.len()]> = BTreeMap::new();
            let mut per_stylist_times: HashMap<String, [u64; REVIEW_BUCKETS_MINUTES.len()]> = HashMap::new();
            let mut stmt = conn.prepare_cached("SELECT day, stylist_id, bucket, reviews FROM view_review_times WHERE day BETWEEN ?1 AND ?2")?;
            let mut rows = stmt.query([&from, &to])?;
            while let Some(row) = rows.next()? {
                let day = parse_day(&row.get::<_, String>(0)?)?;
                let stylist: String = row.get(1)?;
                let bucket = (row.get::<_, i64>(2)?.max(0) as usize).min(buckets - 1);
                let reviews = row.get::<_, i64>(3)?.max(0) as u64;
                per_day.entry(day).or_insert([0; REVIEW_BUCKETS_MINUTES.len()])[bucket] += reviews;
                per_stylist_times.entry(stylist).or_insert([0; REVIEW_BUCKETS_MINUTES.len()])[bucket] += reviews;
            }
            for (day, counts) in &per_day {
                if let Some(d) = days.get_mut(day) {
                    d.median_review_minutes = bucket_median(counts);
                }
            }
            let pending: HashMap<String, i64> = conn
                .prepare_cached("SELECT stylist_id, drafts FROM view_pending")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut stmt = conn.prepare_cached("SELECT id, name FROM stylists ORDER BY name")?;
            let stylists = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .map(|row| {
                    let (id, name) = row?;
                    let (clients, at_risk) = per_stylist.get(&id).copied().unwrap_or_default();
                    Ok(StylistFigures {
                        clients,
                        at_risk,
                        pending_reviews: pending.get(&id).copied().unwrap_or(0).max(0) as u64,
                        median_review_minutes: per_stylist_times.get(&id).and_then(bucket_median),
                        sent: sent_by.get(&id).copied().unwrap_or(0),
                        stylist_id: id,
                        stylist_name: name,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let writers = writers
                .into_iter()
                .map(|(writer, (drafted, approved, rejected, edited, edit_sum))| WriterQuality {
                    writer,
                    drafted,
                    approved,
                    rejected,
                    approval_rate: (approved + rejected > 0).then(|| approved as f64 / (approved + rejected) as f64),
                    edited,
                    mean_edit: (approved > 0).then(|| edit_sum / approved as f64),
                })
                .collect();
            Ok(DashboardFigures { bands, band_days, stylists, email_days: days.into_values().collect(), writers })
        })
        .await
    }

    /// Whether the views are empty although there is history to count (a database from
    /// before the views existed); `engage serve` rebuilds them then.
    pub async fn views_need_rebuild(&self) -> Result<bool> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM view_band_counts) AND EXISTS (SELECT 1 FROM score_changes)",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// Every view table's rows, sorted: for comparing the live views with rebuilt ones.
    pub async fn view_rows(&self) -> Result<Vec<(String, Vec<String>)>> {
        self.read(|conn| {
            let mut all = Vec::new();
            for table in VIEW_TABLES {
                let mut stmt = conn.prepare(&format!("SELECT * FROM {table}"))?;
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
                    })?
                    .collect::<rusqlite::Result<_>>()?;
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
                conn.execute(&format!("DELETE FROM {table}"), [])?;
            }
            let total: u64 = conn.query_row(
                "SELECT (SELECT COUNT(*) FROM score_changes) + (SELECT COUNT(*) FROM emails) + (SELECT COUNT(*) FROM email_reviews)",
                [],
                |r| r.get(0),
            )?;
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
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let (client, stylist, band, at): (String, String, String, i64) = (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
                let old = bands.insert(client, band.clone());
                band_changed(conn, &stylist, old.as_deref(), &band, instant(at)?)?;
                tick(&mut done);
            }
            drop(rows);
            // Drafts: one per email, for its final writer, with what all its drafts cost.
            let mut stmt = conn.prepare("SELECT stylist_id, writer, COALESCE(cost_usd, 0), created_at FROM emails ORDER BY created_at, id")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let (stylist, writer, cost, created): (String, String, f64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
                drafted(conn, &stylist, &writer, cost, instant(created)?)?;
                tick(&mut done);
            }
            drop(rows);
            // Review steps in the order they happened.
            let mut stmt = conn.prepare(
                "SELECT r.action, r.at, e.stylist_id, e.writer, e.created_at, e.ai_subject, e.ai_body_text, e.subject, e.body_text
                 FROM email_reviews r JOIN emails e ON e.id = r.email_id ORDER BY r.id",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let (action, at, stylist, writer, created): (String, i64, String, String, i64) =
                    (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?);
                let when = instant(at)?;
                match action.as_str() {
                    "approved" => {
                        let edit = approved_edit(
                            row.get::<_, Option<String>>(5)?.as_deref(),
                            row.get::<_, Option<String>>(6)?.as_deref(),
                            &row.get::<_, String>(7)?,
                            &row.get::<_, String>(8)?,
                        );
                        reviewed(conn, &stylist, &writer, Verdict::Approved { edit }, minutes_between(created, at), when)?;
                    }
                    "rejected" => reviewed(conn, &stylist, &writer, Verdict::Rejected, minutes_between(created, at), when)?,
                    "sent" => delivered(conn, &stylist, &writer, true, when)?,
                    "failed" => delivered(conn, &stylist, &writer, false, when)?,
                    "withdrawn" => withdrawn_draft(conn, &stylist)?,
                    _ => {}
                }
                tick(&mut done);
            }
            drop(rows);
            progress(total, total);
            Ok::<_, StoreError>(())
        })
        .await
    }
}
