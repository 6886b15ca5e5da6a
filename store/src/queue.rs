//! Durable queues with the semantics of SQS: a received message is hidden for a visibility
//! timeout, deleted on success, made visible again (after a back-off) on failure, and moved
//! to the dead-letter table with its last error once it has been received too often.

use crate::db::{instant, millis};
use crate::db_error;
use crate::emails::Failure;
use crate::{Result, Store};
use chrono::{DateTime, Duration, Utc};
pub use domain::api::QueueStats;
use ports::DeadLetter;
use rusqlite::{Connection, OptionalExtension, params};

/// A message handed to a worker. It stays hidden from other workers until the visibility
/// timeout passes or the worker deletes or releases it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub id: i64,
    pub body: String,
    /// How many times this message has been received, this time included.
    pub receive_count: u32,
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
        let receive = Receive {
            queue,
            max,
            visibility,
        };
        self.write(move |tx| receive_in(tx, receive, now)).await
    }

    /// Removes a message that was handled successfully.
    pub async fn delete_message(&self, id: i64) -> Result<()> {
        self.write(move |conn| {
            conn.execute("DELETE FROM queue_messages WHERE id = ?1", [id])
                .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    /// Records a failed attempt. The message becomes visible again after its back-off, or,
    /// once it has been received `max_receives` times, moves to the dead-letter table.
    /// Returns true if it was dead-lettered.
    pub async fn release_failed(&self, failure: Failure, now: DateTime<Utc>) -> Result<bool> {
        let dead = self.write(move |conn| release(conn, &failure, now)).await?;
        if !dead {
            self.inner.signals.queue_filled.notify_waiters();
        }
        Ok(dead)
    }

    /// Hides a received message until `until` without counting the receive: it came too
    /// early (a scheduled delivery), which is no failure.
    pub async fn defer_message(&self, id: i64, until: DateTime<Utc>) -> Result<()> {
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE queue_messages SET visible_at = ?2, receive_count = MAX(receive_count - 1, 0) WHERE id = ?1",
            )
            .map_err(db_error)?
            .execute(params![id, millis(until)])
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    /// Makes every hidden message of `queue` that was received visible now (receive counts
    /// kept; a message never received, such as a scheduled delivery, keeps its time). For
    /// a worker starting on a database no other worker uses: what was in flight when the
    /// last one stopped is orphaned. Returns how many messages it freed.
    pub async fn release_in_flight(&self, queue: &'static str, now: DateTime<Utc>) -> Result<u64> {
        let released = self
            .write(move |conn| {
                let released = conn
                    .prepare_cached("UPDATE queue_messages SET visible_at = ?2 WHERE queue = ?1 AND visible_at > ?2 AND receive_count > 0").map_err(db_error)?
                    .execute(params![queue, millis(now)]).map_err(db_error)?;
                Ok::<_, crate::StoreError>(released as u64)
            })
            .await?;
        if released > 0 {
            self.inner.signals.queue_filled.notify_waiters();
        }
        Ok(released)
    }

    /// Dead letters of `queue`, oldest failure first.
    pub async fn dead_letters(&self, queue: &'static str, limit: u32) -> Result<Vec<DeadLetter>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, queue, dedup_id, body, receive_count, last_error, enqueued_at, failed_at
                 FROM dead_letters WHERE queue = ?1 ORDER BY failed_at, id LIMIT ?2",
            ).map_err(db_error)?;
            let rows = stmt
                .query_map(params![queue, limit], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, u32>(4)?,
                        row.get::<_, String>(5)?,
                        row.get::<_, i64>(6)?,
                        row.get::<_, i64>(7)?,
                    ))
                })
                .map_err(db_error)?;
            rows.map(|row| {
                let (id, queue, dedup_id, body, receive_count, last_error, enqueued_at, failed_at) =
                    row.map_err(db_error)?;
                Ok(DeadLetter {
                    id,
                    queue,
                    dedup_id,
                    body,
                    receive_count,
                    last_error,
                    enqueued_at: instant(enqueued_at)?,
                    failed_at: instant(failed_at)?,
                })
            })
            .collect()
        })
        .await
    }

    /// Moves dead letters of `queue` (one, with `id`, or all) back onto the queue, visible
    /// at once with a fresh receive count. Returns how many were moved. Their effect is
    /// still applied at most once: the idempotency record is keyed on the event id.
    pub async fn redrive(
        &self,
        queue: &'static str,
        id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let moved = self
            .write(move |conn| {
                let moved = conn
                    .prepare_cached(
                        "INSERT INTO queue_messages (id, queue, dedup_id, body, enqueued_at, visible_at, receive_count, last_error)
                         SELECT id, queue, dedup_id, body, enqueued_at, ?3, 0, last_error FROM dead_letters
                         WHERE queue = ?1 AND (?2 IS NULL OR id = ?2)
                         ON CONFLICT DO NOTHING",
                    ).map_err(db_error)?
                    .execute(params![queue, id, millis(now)]).map_err(db_error)?;
                conn.prepare_cached("DELETE FROM dead_letters WHERE queue = ?1 AND (?2 IS NULL OR id = ?2)").map_err(db_error)?
                    .execute(params![queue, id]).map_err(db_error)?;
                Ok::<_, crate::StoreError>(moved as u64)
            })
            .await?;
        if moved > 0 {
            self.inner.signals.queue_filled.notify_waiters();
        }
        Ok(moved)
    }

    pub async fn queue_stats(&self, queue: &'static str, now: DateTime<Utc>) -> Result<QueueStats> {
        self.read(move |conn| {
            let now = millis(now);
            let (visible, in_flight, oldest): (u64, u64, Option<i64>) = conn.query_row(
                "SELECT COALESCE(SUM(visible_at <= ?2), 0), COALESCE(SUM(visible_at > ?2), 0), MIN(enqueued_at)
                 FROM queue_messages WHERE queue = ?1",
                params![queue, now],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            ).map_err(db_error)?;
            let dead_letters = conn.query_row("SELECT COUNT(*) FROM dead_letters WHERE queue = ?1", [queue], |row| row.get(0)).map_err(db_error)?;
            Ok(QueueStats { visible, in_flight, oldest_age_ms: oldest.map_or(0, |t| (now - t).max(0) as u64), dead_letters })
        })
        .await
    }
}

/// What a worker asks for when it receives: up to `max` visible messages of `queue`,
/// hidden from other workers for `visibility`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receive {
    pub queue: &'static str,
    pub max: u32,
    pub visibility: Duration,
}

pub(crate) fn receive_in(
    tx: &Connection,
    receive: Receive,
    now: DateTime<Utc>,
) -> Result<Vec<ReceivedMessage>> {
    let mut select = tx.prepare_cached(
        "SELECT id, body, receive_count FROM queue_messages WHERE queue = ?1 AND visible_at <= ?2 ORDER BY id LIMIT ?3",
    ).map_err(db_error)?;
    let messages = select
        .query_map(params![receive.queue, millis(now), receive.max], |row| {
            Ok(ReceivedMessage {
                id: row.get(0)?,
                body: row.get(1)?,
                receive_count: row.get::<_, u32>(2)? + 1,
            })
        })
        .map_err(db_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_error)?;
    let mut hide = tx.prepare_cached(
        "UPDATE queue_messages SET visible_at = ?2, receive_count = receive_count + 1 WHERE id = ?1",
    ).map_err(db_error)?;
    for message in &messages {
        hide.execute(params![message.id, millis(now + receive.visibility)])
            .map_err(db_error)?;
    }
    Ok(messages)
}

/// Makes a failed message visible again after its back-off, or dead-letters it.
pub(crate) fn release(conn: &Connection, failure: &Failure, now: DateTime<Utc>) -> Result<bool> {
    let id = failure.message_id;
    let receive_count: Option<u32> = conn
        .prepare_cached("SELECT receive_count FROM queue_messages WHERE id = ?1")
        .map_err(db_error)?
        .query_row([id], |row| row.get(0))
        .optional()
        .map_err(db_error)?;
    let Some(receive_count) = receive_count else {
        // Already settled by another worker after its visibility timeout ran out.
        return Ok(false);
    };
    if receive_count >= failure.max_receives {
        conn.prepare_cached(
            "INSERT INTO dead_letters (id, queue, dedup_id, body, enqueued_at, receive_count, last_error, failed_at)
             SELECT id, queue, dedup_id, body, enqueued_at, receive_count, ?2, ?3 FROM queue_messages WHERE id = ?1",
        ).map_err(db_error)?
        .execute(params![id, failure.error, millis(now)]).map_err(db_error)?;
        conn.prepare_cached("DELETE FROM queue_messages WHERE id = ?1")
            .map_err(db_error)?
            .execute([id])
            .map_err(db_error)?;
        Ok(true)
    } else {
        conn.prepare_cached(
            "UPDATE queue_messages SET visible_at = ?2, last_error = ?3 WHERE id = ?1",
        )
        .map_err(db_error)?
        .execute(params![
            id,
            millis(now + failure.retry_after),
            failure.error
        ])
        .map_err(db_error)?;
        Ok(false)
    }
}
