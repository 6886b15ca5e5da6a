//! Reading the change feed in order, and publishing the events derived from it together
//! with the reader's checkpoint, so a crash between the two can neither lose nor skip a change.

use crate::db::{instant, millis};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use domain::{ChangeRecord, Client, DomainEvent};
use rusqlite::{Connection, OptionalExtension, params};

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
        self.read(move |conn| {
            let position: Option<u64> = conn
                .prepare_cached("SELECT position FROM checkpoints WHERE name = ?1")?
                .query_row([name], |row| row.get(0))
                .optional()?;
            Ok(position.unwrap_or(0))
        })
        .await
    }

    /// Up to `limit` change records after position `after`, oldest first.
    pub async fn read_changes(&self, after: u64, limit: u32) -> Result<Vec<ChangeRecord>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, old_image, new_image, recorded_at FROM client_changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit], |row| {
                Ok((row.get::<_, u64>(0)?, row.get::<_, Option<String>>(1)?, row.get::<_, String>(2)?, row.get::<_, i64>(3)?))
            })?;
            rows.map(|row| {
                let (seq, old, new, recorded_at) = row?;
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
        self.write(move |tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO queue_messages (queue, dedup_id, body, enqueued_at, visible_at) VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (queue, dedup_id) DO NOTHING",
            )?;
            for event in &events {
                let body = serde_json::to_string(event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                insert.execute(params![queue, event.id.as_str(), body, millis(now)])?;
                log_event(tx, event, &body)?;
            }
            // Published changes start their retention clock now.
            tx.prepare_cached(
                "UPDATE client_changes SET published_at = ?2
                 WHERE seq > COALESCE((SELECT position FROM checkpoints WHERE name = ?3), 0) AND seq <= ?1",
            )?
            .execute(params![position, millis(now), name])?;
            tx.execute(
                "INSERT INTO checkpoints (name, position) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                params![name, position],
            )?;
            Ok::<_, StoreError>(())
        })
        .await?;
        if published {
            self.inner.queue_filled.notify_waiters();
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
                )?;
                let mut added = 0;
                for event in &events {
                    let body = serde_json::to_string(event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    added += insert.execute(params![queue, event.id.as_str(), body, millis(now)])? as u64;
                    log_event(tx, event, &body)?;
                }
                Ok::<_, StoreError>(added)
            })
            .await?;
        if added > 0 {
            self.inner.queue_filled.notify_waiters();
        }
        Ok(added)
    }

    /// Deletes change records published before `cutoff` (the feed's retention), returning
    /// how many went. Unpublished records are never deleted.
    pub async fn purge_published_changes(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        self.write(move |tx| {
            let deleted = tx
                .prepare_cached("DELETE FROM client_changes WHERE published_at IS NOT NULL AND published_at < ?1")?
                .execute([millis(cutoff)])?;
            Ok(deleted as u64)
        })
        .await
    }

    /// How many change records the reader `name` has not yet published.
    pub async fn feed_lag(&self, name: &'static str) -> Result<u64> {
        let position = self.checkpoint(name).await?;
        self.read(move |conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM client_changes WHERE seq > ?1",
                [position],
                |row| row.get(0),
            )?)
        })
        .await
    }
}
