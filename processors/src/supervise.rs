//! Keeping the pipeline's long-running tasks alive, and saying which are.
//!
//! Each processor already turns a failure on one message into that message's retry (see
//! [`crate::ProcessError::Panicked`]). [`supervise`] is the second line: if a processor's
//! task ends anyway before shutdown (a panic outside any message, or a return), it is
//! logged, marked `restarting` in [`Health`], and started again after a back-off that
//! grows from 1 s to 30 s. `/readyz` reports the server not ready while any is not running.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What a supervised task is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessorState {
    Running,
    /// It ended before shutdown and waits to be started again.
    Restarting,
    /// Stopped by shutdown.
    Stopped,
}

/// One processor's state and how often it was restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ProcessorHealth {
    pub state: ProcessorState,
    pub restarts: u32,
}

/// The supervised tasks of this process, by name. Cheap to clone; clones share.
#[derive(Debug, Clone, Default)]
pub struct Health {
    tasks: Arc<Mutex<BTreeMap<&'static str, ProcessorHealth>>>,
}

impl Health {
    fn update(&self, name: &'static str, change: impl FnOnce(&mut ProcessorHealth)) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let entry = tasks.entry(name).or_insert(ProcessorHealth {
            state: ProcessorState::Running,
            restarts: 0,
        });
        change(entry);
    }

    /// Every supervised task and its state.
    pub fn snapshot(&self) -> BTreeMap<&'static str, ProcessorHealth> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether every supervised task is running (true when there are none).
    pub fn all_running(&self) -> bool {
        self.snapshot()
            .values()
            .all(|task| task.state == ProcessorState::Running)
    }
}

/// The first wait before a restart, and the longest.
const FIRST_RESTART: Duration = Duration::from_secs(1);
const LONGEST_RESTART: Duration = Duration::from_secs(30);
/// A task that ran this long before it ended starts again after the first wait.
const STEADY: Duration = Duration::from_secs(60);

/// Runs the task `start` makes until `shutdown`; restarts it whenever it ends before.
pub async fn supervise<F, Fut>(
    name: &'static str,
    health: Health,
    shutdown: CancellationToken,
    start: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut wait = FIRST_RESTART;
    loop {
        health.update(name, |task| task.state = ProcessorState::Running);
        let started = Instant::now();
        let ended = tokio::spawn(start()).await;
        if shutdown.is_cancelled() {
            break;
        }
        match ended {
            Ok(()) => tracing::error!(
                processor = name,
                "processor ended on its own; restarting it"
            ),
            Err(error) if error.is_panic() => {
                let panic = crate::panic_message(error.into_panic().as_ref());
                tracing::error!(processor = name, %panic, "processor panicked; restarting it");
            }
            Err(error) => {
                tracing::error!(processor = name, %error, "processor task failed; restarting it")
            }
        }
        health.update(name, |task| {
            task.state = ProcessorState::Restarting;
            task.restarts += 1;
        });
        if started.elapsed() >= STEADY {
            wait = FIRST_RESTART;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(LONGEST_RESTART);
    }
    health.update(name, |task| task.state = ProcessorState::Stopped);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_is_restarted_and_reported_until_it_runs_again() {
        let health = Health::default();
        let shutdown = CancellationToken::new();
        let starts = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&starts);
        let stop = shutdown.clone();
        let supervisor = tokio::spawn(supervise(
            "email",
            health.clone(),
            shutdown.clone(),
            move || {
                let (starts, stop) = (Arc::clone(&counted), stop.clone());
                async move {
                    if starts.fetch_add(1, Ordering::SeqCst) < 2 {
                        panic!("the writer broke");
                    }
                    stop.cancelled().await;
                }
            },
        ));
        // The first two runs panic; between them the task is reported as restarting.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert!(!health.all_running());
        assert_eq!(health.snapshot()["email"].state, ProcessorState::Restarting);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            starts.load(Ordering::SeqCst),
            3,
            "restarted after 1 s, then 2 s"
        );
        assert!(health.all_running());
        assert_eq!(health.snapshot()["email"].restarts, 2);
        shutdown.cancel();
        supervisor.await.unwrap();
        assert_eq!(health.snapshot()["email"].state, ProcessorState::Stopped);
    }
}
