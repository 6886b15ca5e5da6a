//! Durable queues with the semantics of SQS: a received message is hidden for a visibility
//! timeout, deleted on success, made visible again (after a back-off) on failure, and moved
//! to the dead-letter table with its last error once it has been received too often.

use crate::db::millis;
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use rusqlite::params;

/// A message handed to a worker. It stays hidden from other workers until the visibility
/// timeout passes or the worker deletes or releases it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub id: i64,
    pub body: String,
    /// How many times this message has been received, this time included.
    pub receive_count: u32,
}

/// Figures that tell whether a queue keeps up.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueueStats {
    /// Messages waiting to be received.
    pub visible: u64,
    /// Messages received and not yet deleted or released.
    pub in_flight: u64,
    /// Age of the oldest message on the queue, in milliseconds.
    pub oldest_age_ms: u64,
    pub dead_letters: u64,
}

impl Store {
    /// Receives up to `max` visible messages and hides them for `visibility`.
    pub async fn receive(
        &self,
        queue: &'static str,
        max: u32,
        visibility: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<ReceivedMessage>> {
        self.write(move |tx| {
            let mut select = tx.prepare_cached(
                "SELECT id, body, receive_count FROM queue_messages WHERE queue = ?1 AND visible_at <= ?2 ORDER BY id LIMIT ?3",
            )?;
            let messages = select
                .query_map(params![queue, millis(now), max], |row| {
                    Ok(ReceivedMessage { id: row.get(0)?, body: row.get(1)?, receive_count: row.get::<_, u32>(2)? + 1 })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut hide = tx.prepare_cached("UPDATE queue_messages SET visible_at = ?2, receive_count = receive_count + 1 WHERE id = ?1")?;
            for message in &messages {
                hide.execute(params![message.id, millis(now + visibility)])?;
            }
            Ok(messages)
        })
        .await
    }

    /// Removes a message that was handled successfully.
    pub async fn delete_message(&self, id: i64) -> Result<()> {
        self.write(move |tx| {
            tx.execute("DELETE FROM queue_messages WHERE id = ?1", [id])?;
            Ok(())
        })
        .await
    }

    /// Records a failed attempt. The message becomes visible again after `retry_after`, or,
    /// once it has been received `max_receives` times, moves to the dead-letter table.
    /// Returns true if it was dead-lettered.
    pub async fn release_failed(
        &self,
        id: i64,
        error: String,
        retry_after: Duration,
        max_receives: u32,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let dead = self
            .write::<_, StoreError>(move |tx| {
                let receive_count: u32 = tx.query_row("SELECT receive_count FROM queue_messages WHERE id = ?1", [id], |row| row.get(0))?;
                if receive_count >= max_receives {
                    tx.execute(
                        "INSERT INTO dead_letters (id, queue, dedup_id, body, enqueued_at, receive_count, last_error, failed_at)
                         SELECT id, queue, dedup_id, body, enqueued_at, receive_count, ?2, ?3 FROM queue_messages WHERE id = ?1",
                        params![id, error, millis(now)],
                    )?;
                    tx.execute("DELETE FROM queue_messages WHERE id = ?1", [id])?;
                    Ok(true)
                } else {
                    tx.execute(
                        "UPDATE queue_messages SET visible_at = ?2, last_error = ?3 WHERE id = ?1",
                        params![id, millis(now + retry_after), error],
                    )?;
                    Ok(false)
                }
            })
            .await?;
        if !dead {
            self.inner.queue_filled.notify_waiters();
        }
        Ok(dead)
    }

    pub async fn queue_stats(&self, queue: &'static str, now: DateTime<Utc>) -> Result<QueueStats> {
        self.read(move |conn| {
            let now = millis(now);
            let (visible, in_flight, oldest): (u64, u64, Option<i64>) = conn.query_row(
                "SELECT COALESCE(SUM(visible_at <= ?2), 0), COALESCE(SUM(visible_at > ?2), 0), MIN(enqueued_at)
                 FROM queue_messages WHERE queue = ?1",
                params![queue, now],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )?;
            let dead_letters = conn.query_row("SELECT COUNT(*) FROM dead_letters WHERE queue = ?1", [queue], |row| row.get(0))?;
            Ok(QueueStats { visible, in_flight, oldest_age_ms: oldest.map_or(0, |t| (now - t).max(0) as u64), dead_letters })
        })
        .await
    }
}
