//! Operator commands for the pipeline: `engage queue stats`, `engage dlq list`,
//! `engage dlq redrive`. The same figures are served on `/readyz`.

use crate::config::{DlqCommand, QueueCommand};
use processors::Clock;
use serde::Serialize;
use std::io::Write;
use store::{QueueStats, Store, StoreError};

/// How the pipeline is keeping up.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineFigures {
    /// The queue between the stream processor and the email processor.
    pub events_queue: QueueStats,
    /// Change records not yet turned into events.
    pub feed_lag: u64,
}

pub async fn pipeline_figures(
    store: &Store,
    clock: &dyn Clock,
) -> Result<PipelineFigures, StoreError> {
    Ok(PipelineFigures {
        events_queue: store
            .queue_stats(processors::EVENTS_QUEUE, clock.now())
            .await?,
        feed_lag: store.feed_lag(processors::stream::CHECKPOINT).await?,
    })
}

pub async fn queue(
    store: &Store,
    clock: &dyn Clock,
    command: &QueueCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        QueueCommand::Stats { json } => {
            let figures = pipeline_figures(store, clock).await?;
            if *json {
                serde_json::to_writer_pretty(&mut *out, &figures)?;
                writeln!(out)?;
            } else {
                let q = &figures.events_queue;
                writeln!(out, "queue \"{}\"", processors::EVENTS_QUEUE)?;
                writeln!(out, "  waiting (visible)   {}", q.visible)?;
                writeln!(out, "  in flight           {}", q.in_flight)?;
                writeln!(
                    out,
                    "  oldest message age  {:.1} s",
                    q.oldest_age_ms as f64 / 1000.0
                )?;
                writeln!(out, "  dead letters        {}", q.dead_letters)?;
                writeln!(
                    out,
                    "change feed lag       {} change(s) not yet published",
                    figures.feed_lag
                )?;
            }
        }
    }
    Ok(())
}

pub async fn dlq(
    store: &Store,
    clock: &dyn Clock,
    command: &DlqCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        DlqCommand::List { json, limit } => {
            let letters = store.dead_letters(processors::EVENTS_QUEUE, *limit).await?;
            if *json {
                serde_json::to_writer_pretty(&mut *out, &letters)?;
                writeln!(out)?;
            } else if letters.is_empty() {
                writeln!(out, "The dead-letter queue is empty.")?;
            } else {
                for letter in &letters {
                    writeln!(
                        out,
                        "id {}  event {}  failed {}  after {} receive(s)\n  error: {}",
                        letter.id,
                        letter.dedup_id,
                        letter.failed_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        letter.receive_count,
                        letter.last_error
                    )?;
                }
                writeln!(
                    out,
                    "{} dead letter(s). Redrive with `engage dlq redrive [--id ID]`.",
                    letters.len()
                )?;
            }
        }
        DlqCommand::Redrive { id } => {
            let moved = store
                .redrive(processors::EVENTS_QUEUE, *id, clock.now())
                .await?;
            match (id, moved) {
                (Some(id), 0) => anyhow::bail!("no dead letter with id {id}"),
                (_, moved) => writeln!(
                    out,
                    "Moved {moved} message(s) back onto the queue; a running `engage serve` processes them now."
                )?,
            }
        }
    }
    Ok(())
}
