//! Reading the change feed in order, and publishing the events derived from it together
//! with the reader's checkpoint, so a crash between the two can neither lose nor skip a change.

use crate::db::{instant, millis};
use crate::db_error;
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use domain::{ChangeRecord, Client, DomainEvent};
use rusqlite::{Connection, OptionalExtension, params};
use std::cell::RefCell;

/// The checkpoint under which the stream processor records its position in the feed.
pub const STREAM_CHECKPOINT: &str = "stream-processor";

/// Where the writer publishes the changes of a group commit itself, while a stream
/// processor runs (see [`Store::publish_inline`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InlinePublish {
    /// The stream processor's checkpoint.
    pub checkpoint: &'static str,
    /// The queue its events go to.
    pub queue: &'static str,
}

/// What the writer's own publishing did with a group commit's changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Published {
    /// Every change the group appended, as this many events.
    All { events: usize },
    /// None of them: they wait in the feed for the stream processor.
    None,
}

thread_local! {
    /// The changes appended by the transaction in progress on the writer thread (the only
    /// thread that runs write jobs), in feed order, as they were written.
    static APPENDED: RefCell<Vec<ChangeRecord>> = const { RefCell::new(Vec::new()) };
}

/// Notes a change appended by the transaction in progress.
pub(crate) fn note_appended(change: ChangeRecord) {
    APPENDED.with(|appended| appended.borrow_mut().push(change));
}

/// How many changes the transaction in progress has appended so far.
pub(crate) fn appended_mark() -> usize {
    APPENDED.with(|appended| appended.borrow().len())
}

/// Forgets the changes appended after `mark` (their savepoint was rolled back).
pub(crate) fn forget_appended_since(mark: usize) {
    APPENDED.with(|appended| appended.borrow_mut().truncate(mark));
}

/// The changes the transaction in progress appended, leaving none noted.
pub(crate) fn take_appended() -> Vec<ChangeRecord> {
    APPENDED.with(|appended| std::mem::take(&mut *appended.borrow_mut()))
}

/// The stream processor's step for the changes a group commit appended, inside that
/// commit: when its checkpoint is just before them (nothing older is waiting), their
/// events are derived from the images just written — the same function and ids as when
/// the feed is read — enqueued, and the checkpoint moved past them. Otherwise, or if
/// this fails, nothing of it is written and the stream processor reads them from the
/// feed as usual.
pub(crate) fn publish_appended(
    conn: &Connection,
    inline: InlinePublish,
    appended: &[ChangeRecord],
) -> Published {
    let (Some(first), Some(last), Some(now)) = (
        appended.first().map(|c| c.seq),
        appended.last().map(|c| c.seq),
        appended.iter().map(|c| c.recorded_at).max(),
    ) else {
        return Published::None;
    };
    let published = crate::db::in_savepoint(conn, || -> Result<Published> {
        let position = checkpoint_in(conn, inline.checkpoint)?;
        let waiting: u64 = conn
            .prepare_cached("SELECT COUNT(*) FROM client_changes WHERE seq > ?1")
            .map_err(db_error)?
            .query_row([position], |row| row.get(0))
            .map_err(db_error)?;
        if first <= position || waiting != appended.len() as u64 {
            return Ok(Published::None);
        }
        // A change that cannot be turned into events is left to the stream processor,
        // which logs and skips it: the writer publishes nothing of this group then.
        let Ok(events) = appended
            .iter()
            .map(domain::event::events_of_change)
            .collect::<Result<Vec<_>, _>>()
        else {
            return Ok(Published::None);
        };
        let events: Vec<DomainEvent> = events.into_iter().flatten().collect();
        publish_in(conn, inline.checkpoint, last, inline.queue, &events, now)?;
        Ok(Published::All {
            events: events.len(),
        })
    });
    published.unwrap_or_else(|error| {
        tracing::warn!(%error, "could not publish in the commit; the stream processor will");
        Published::None
    })
}

fn checkpoint_in(conn: &Connection, name: &str) -> Result<u64> {
    let position: Option<u64> = conn
        .prepare_cached("SELECT position FROM checkpoints WHERE name = ?1")
        .map_err(db_error)?
        .query_row([name], |row| row.get(0))
        .optional()
        .map_err(db_error)?;
    Ok(position.unwrap_or(0))
}

/// Enqueues `events` on `queue` (once per event id) with their event-log entries, starts
/// the retention clock of the changes up to `position`, and moves checkpoint `name` there
/// (never back: the writer may have published further meanwhile).
fn publish_in(
    tx: &Connection,
    name: &str,
    position: u64,
    queue: &str,
    events: &[DomainEvent],
    now: DateTime<Utc>,
) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO queue_messages (queue, dedup_id, body, enqueued_at, visible_at) VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT (queue, dedup_id) DO NOTHING",
    ).map_err(db_error)?;
    for event in events {
        let body = serde_json::to_string(event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        insert
            .execute(params![queue, event.id.as_str(), body, millis(now)])
            .map_err(db_error)?;
        log_event(tx, event, &body).map_err(db_error)?;
    }
    tx.prepare_cached(
        "UPDATE client_changes SET published_at = ?2
         WHERE seq > COALESCE((SELECT position FROM checkpoints WHERE name = ?3), 0) AND seq <= ?1",
    )
    .map_err(db_error)?
    .execute(params![position, millis(now), name])
    .map_err(db_error)?;
    tx.prepare_cached(
        "INSERT INTO checkpoints (name, position) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET position = MAX(position, excluded.position)",
    )
    .map_err(db_error)?
    .execute(params![name, position])
    .map_err(db_error)?;
    Ok(())
}

/// Appends an event to the permanent event log (the audit trail); once per event id.
pub(crate) fn log_event(tx: &Connection, event: &DomainEvent, body: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO event_log (event_id, client_id, kind, body, occurred_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (event_id) DO NOTHING",
    )?
    .execute(params![
        event.id.as_str(),
        event.client_id.as_str(),
        event.kind.name(),
        body,
        millis(event.occurred_at)
    ])?;
    Ok(())
}

impl Store {
    /// The position up to which the reader `name` has published.
    pub async fn checkpoint(&self, name: &'static str) -> Result<u64> {
        self.read(move |conn| checkpoint_in(conn, name)).await
    }

    /// While a stream processor runs with checkpoint `inline.checkpoint`, the writer
    /// publishes each group commit's changes in that same commit whenever the checkpoint
    /// is just before them: the events, their ids and the checkpoint are what the
    /// processor would have written a moment later, minus reading the feed back and one
    /// more commit. Changes it does not publish (a backlog, or a failure) wake the
    /// processor as before. `None` stops it.
    pub fn publish_inline(&self, inline: Option<InlinePublish>) {
        *self
            .inner
            .signals
            .inline
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = inline;
    }

    /// Up to `limit` change records after position `after`, oldest first.
    pub async fn read_changes(&self, after: u64, limit: u32) -> Result<Vec<ChangeRecord>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, old_image, new_image, recorded_at FROM client_changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            ).map_err(db_error)?;
            let rows = stmt.query_map(params![after, limit], |row| {
                Ok((row.get::<_, u64>(0)?, row.get::<_, Option<String>>(1)?, row.get::<_, String>(2)?, row.get::<_, i64>(3)?))
            }).map_err(db_error)?;
            rows.map(|row| {
                let (seq, old, new, recorded_at) = row.map_err(db_error)?;
                let parse = |json: &str| serde_json::from_str::<Client>(json).map_err(|e| StoreError::Corrupt(format!("change {seq}: {e}")));
                Ok(ChangeRecord { seq, old: old.as_deref().map(parse).transpose()?, new: parse(&new)?, recorded_at: instant(recorded_at)? })
            })
            .collect()
        })
        .await
    }

    /// Enqueues `events` on `queue` and moves checkpoint `name` to `position`, atomically.
    /// An event already on the queue (same id) is not enqueued twice.
    pub async fn publish(
        &self,
        name: &'static str,
        position: u64,
        queue: &'static str,
        events: Vec<DomainEvent>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let published = !events.is_empty();
        self.write(move |tx| publish_in(tx, name, position, queue, &events, now))
            .await?;
        if published {
            self.inner.signals.queue_filled.notify_waiters();
        }
        Ok(())
    }

    /// Puts `events` on `queue` directly (events that no client write causes, such as a
    /// rescore). An event already queued (same id) is not queued twice. Returns how many
    /// were new.
    pub async fn enqueue(
        &self,
        queue: &'static str,
        events: Vec<DomainEvent>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let added = self
            .write(move |tx| {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO queue_messages (queue, dedup_id, body, enqueued_at, visible_at) VALUES (?1, ?2, ?3, ?4, ?4)
                     ON CONFLICT (queue, dedup_id) DO NOTHING",
                ).map_err(db_error)?;
                let mut added = 0;
                for event in &events {
                    let body = serde_json::to_string(event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    added += insert.execute(params![queue, event.id.as_str(), body, millis(now)]).map_err(db_error)? as u64;
                    log_event(tx, event, &body).map_err(db_error)?;
                }
                Ok::<_, StoreError>(added)
            })
            .await?;
        if added > 0 {
            self.inner.signals.queue_filled.notify_waiters();
        }
        Ok(added)
    }

    /// Deletes change records published before `cutoff` (the feed's retention), returning
    /// how many went. Unpublished records are never deleted.
    pub async fn purge_published_changes(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        self.write(move |tx| {
            let deleted = tx
                .prepare_cached("DELETE FROM client_changes WHERE published_at IS NOT NULL AND published_at < ?1").map_err(db_error)?
                .execute([millis(cutoff)]).map_err(db_error)?;
            Ok(deleted as u64)
        })
        .await
    }

    /// How many change records the reader `name` has not yet published.
    pub async fn feed_lag(&self, name: &'static str) -> Result<u64> {
        let position = self.checkpoint(name).await?;
        self.read(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM client_changes WHERE seq > ?1",
                [position],
                |row| row.get(0),
            )
            .map_err(db_error)
        })
        .await
    }
}
