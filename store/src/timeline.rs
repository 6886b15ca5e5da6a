//! A client's audit trail: every published event, every score change and every step of
//! every email, merged newest first.

use crate::clients::{client_by_id, stylist_by_id};
use crate::db::instant;
use crate::db_error;
use crate::model::latest_fit_on;
use crate::review::find_emails_on;
use crate::{Result, Store, StoreError};
use domain::views::{ScorePoint, TimelineEntry};
use domain::{Band, Client, ClientId, DomainEvent};
use ports::EmailFilter;
use ports::{ClientPageData, PageLimits};
use rusqlite::{Connection, params};

impl Store {
    /// A client and everything its page shows, read on one connection in one snapshot (one
    /// hop to the blocking pool instead of one per list). `None` if there is no such client
    /// or `visible` says the reader may not see it, in which case nothing else is read.
    pub async fn client_page(
        &self,
        id: ClientId,
        visible: impl FnOnce(&Client) -> bool + Send + 'static,
        limits: PageLimits,
    ) -> Result<Option<ClientPageData>> {
        self.read(move |conn| {
            let snapshot = conn.unchecked_transaction().map_err(db_error)?;
            let Some(client) = client_by_id(&snapshot, &id)?.filter(|c| visible(c)) else {
                return Ok(None);
            };
            let filter = EmailFilter {
                client: Some(id.clone()),
                ..EmailFilter::default()
            };
            Ok(Some(ClientPageData {
                stylist: stylist_by_id(&snapshot, &client.stylist_id)?,
                fit: latest_fit_on(&snapshot)?,
                history: score_points_of(&snapshot, &id, limits.history)?,
                timeline: timeline_of(&snapshot, &id, limits.timeline)?,
                emails: find_emails_on(&snapshot, &filter, limits.emails)?,
                decisions: crate::decisions::of_client(&snapshot, &id, limits.timeline)?,
                client,
            }))
        })
        .await
    }

    /// The newest `limit` entries of `client`'s audit trail.
    pub async fn client_timeline(
        &self,
        client: ClientId,
        limit: u32,
    ) -> Result<Vec<TimelineEntry>> {
        self.read(move |conn| timeline_of(conn, &client, limit))
            .await
    }

    /// A number that grows with every score change, draft and review step (each table's
    /// largest row id, added up: three index look-ups).
    pub async fn change_stamp(&self) -> Result<u64> {
        self.read(|conn| {
            conn.query_row(
                "SELECT (SELECT COALESCE(MAX(id), 0) FROM score_changes)
                      + (SELECT COALESCE(MAX(rowid), 0) FROM emails)
                      + (SELECT COALESCE(MAX(id), 0) FROM email_reviews)",
                [],
                |row| row.get(0),
            )
            .map_err(db_error)
        })
        .await
    }

    /// The client's stored scores, oldest first (the newest `limit`).
    pub async fn score_points(&self, client: ClientId, limit: u32) -> Result<Vec<ScorePoint>> {
        self.read(move |conn| score_points_of(conn, &client, limit))
            .await
    }
}

/// The newest `limit` entries of `client`'s audit trail, on `conn`.
pub(crate) fn timeline_of(
    conn: &Connection,
    client: &ClientId,
    limit: u32,
) -> Result<Vec<TimelineEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, kind, text, actor FROM (
            SELECT occurred_at AS at, 'event' AS kind, body AS text, NULL AS actor, 0 AS tie
              FROM event_log WHERE client_id = ?1
            UNION ALL
            SELECT scored_at, 'score', score || ' · ' || band, NULL, 1
              FROM score_changes WHERE client_id = ?1
            UNION ALL
            SELECT r.at, 'email', r.action || char(31) || e.subject || char(31) || COALESCE(r.note, ''), r.actor, 2
              FROM email_reviews r JOIN emails e ON e.id = r.email_id WHERE e.client_id = ?1
            UNION ALL
            SELECT created_at, 'email', 'drafted' || char(31) || subject || char(31) || writer, NULL, 2
              FROM emails WHERE client_id = ?1
         ) ORDER BY at DESC, tie DESC LIMIT ?2",
    ).map_err(db_error)?;
    let rows = stmt
        .query_map(params![client.as_str(), limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .map_err(db_error)?;
    rows.map(|row| {
        let (at, kind, raw, actor) = row.map_err(db_error)?;
        let text = match kind.as_str() {
            "event" => serde_json::from_str::<DomainEvent>(&raw)
                .map_err(|e| StoreError::Corrupt(format!("event log: {e}")))?
                .kind
                .describe(),
            "score" => score_text(&raw),
            _ => email_text(&raw, actor.as_deref()),
        };
        Ok(TimelineEntry {
            at: instant(at)?,
            kind,
            text,
            actor,
        })
    })
    .collect()
}

/// `client`'s stored scores, oldest first (the newest `limit`), on `conn`.
pub(crate) fn score_points_of(
    conn: &Connection,
    client: &ClientId,
    limit: u32,
) -> Result<Vec<ScorePoint>> {
    let mut stmt = conn.prepare_cached(
        "SELECT score, band, scored_at FROM score_changes WHERE client_id = ?1 ORDER BY id DESC LIMIT ?2",
    ).map_err(db_error)?;
    let mut points = stmt
        .query_map(params![client.as_str(), limit], |r| {
            Ok((
                r.get::<_, u8>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(db_error)?
        .map(|row| {
            let (score, band, at) = row.map_err(db_error)?;
            Ok(ScorePoint {
                score,
                band: Band::parse(&band)
                    .ok_or_else(|| StoreError::Corrupt(format!("band {band}")))?,
                at: instant(at)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    points.reverse();
    Ok(points)
}

/// "57 · cooling" → "Score 57 (Cooling)".
fn score_text(raw: &str) -> String {
    let (score, band) = raw.split_once(" · ").unwrap_or((raw, ""));
    domain::views::score_line(score, band)
}

/// An email step (action, subject, note) by `actor` in words.
fn email_text(raw: &str, actor: Option<&str>) -> String {
    let mut parts = raw.split('\u{1f}');
    let (action, subject, note) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    domain::views::email_step_line(action, subject, note, actor.unwrap_or_default())
}
