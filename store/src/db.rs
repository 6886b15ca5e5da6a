//! Opening the database, its schema, and the plumbing that runs SQL off the async threads.

use crate::db_error;
use crate::{Result, StoreError};
use rusqlite::Connection;
use rusqlite::OpenFlags;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE stylists (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL UNIQUE
);

CREATE TABLE clients (
    id          TEXT PRIMARY KEY,
    stylist_id  TEXT NOT NULL REFERENCES stylists(id),
    name        TEXT NOT NULL,
    email       TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    -- Latest score, kept by the email processor (NULL until first scored).
    score       INTEGER,
    band        TEXT
);
CREATE INDEX clients_by_stylist ON clients(stylist_id, created_at DESC);
CREATE INDEX clients_by_created ON clients(created_at DESC, id DESC);

-- The change feed: one row per client write, in the same transaction as the write.
CREATE TABLE client_changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id   TEXT NOT NULL,
    version     INTEGER NOT NULL,
    old_image   TEXT,
    new_image   TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    UNIQUE (client_id, version)
);

-- How far each feed reader has got.
CREATE TABLE checkpoints (
    name        TEXT PRIMARY KEY,
    position    INTEGER NOT NULL
);

-- Durable queues with SQS semantics.
CREATE TABLE queue_messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL,
    dedup_id      TEXT NOT NULL,
    body          TEXT NOT NULL,
    enqueued_at   INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    UNIQUE (queue, dedup_id)
);
CREATE INDEX queue_messages_visible ON queue_messages(queue, visible_at, id);

CREATE TABLE dead_letters (
    id            INTEGER PRIMARY KEY,
    queue         TEXT NOT NULL,
    dedup_id      TEXT NOT NULL,
    body          TEXT NOT NULL,
    enqueued_at   INTEGER NOT NULL,
    receive_count INTEGER NOT NULL,
    last_error    TEXT NOT NULL,
    failed_at     INTEGER NOT NULL
);

-- Events whose effect has been applied: the idempotency record.
CREATE TABLE processed_events (
    event_id     TEXT PRIMARY KEY,
    processed_at INTEGER NOT NULL
);

-- Every score a client has had, with the factors that explain it.
CREATE TABLE score_changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id   TEXT NOT NULL REFERENCES clients(id),
    event_id    TEXT NOT NULL UNIQUE,
    score       INTEGER NOT NULL,
    band        TEXT NOT NULL,
    factors     TEXT NOT NULL,
    scored_at   INTEGER NOT NULL
);
CREATE INDEX score_changes_by_client ON score_changes(client_id, id DESC);

CREATE TABLE emails (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES clients(id),
    stylist_id  TEXT NOT NULL REFERENCES stylists(id),
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body_text   TEXT NOT NULL,
    body_html   TEXT NOT NULL,
    status      TEXT NOT NULL,
    writer      TEXT NOT NULL,
    event_id    TEXT NOT NULL UNIQUE,
    score       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX emails_by_created ON emails(created_at DESC, id DESC);
CREATE INDEX emails_by_client ON emails(client_id, status);
"#,
    // Issue 3: the full client profile, the reason behind each draft, and fitted models.
    r#"
ALTER TABLE clients ADD COLUMN profile TEXT NOT NULL DEFAULT '';
UPDATE clients SET profile = json_object(
    'consent', json_object('state', 'not_given'),
    'signed_up_on', date(created_at / 1000, 'unixepoch'));
UPDATE client_changes SET new_image = json_set(new_image, '$.profile', json_object(
    'consent', json_object('state', 'not_given'),
    'signed_up_on', date(recorded_at / 1000, 'unixepoch')))
  WHERE json_extract(new_image, '$.profile') IS NULL;
UPDATE client_changes SET old_image = json_set(old_image, '$.profile', json_object(
    'consent', json_object('state', 'not_given'),
    'signed_up_on', date(recorded_at / 1000, 'unixepoch')))
  WHERE old_image IS NOT NULL AND json_extract(old_image, '$.profile') IS NULL;

ALTER TABLE emails ADD COLUMN reason TEXT NOT NULL DEFAULT '';
CREATE INDEX emails_by_client_created ON emails(client_id, created_at DESC);

-- Fitted BG/NBD models, newest last; the latest one is in use.
CREATE TABLE model_fits (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    fitted_at       INTEGER NOT NULL,
    source          TEXT NOT NULL,
    observation_end TEXT NOT NULL,
    customers       INTEGER NOT NULL,
    r               REAL NOT NULL,
    alpha           REAL NOT NULL,
    a               REAL NOT NULL,
    b               REAL NOT NULL,
    log_likelihood  REAL NOT NULL,
    iterations      INTEGER NOT NULL
);
"#,
    // Issue 4: change-feed retention and end-to-end latency.
    r#"
ALTER TABLE client_changes ADD COLUMN published_at INTEGER;
UPDATE client_changes SET published_at = recorded_at
  WHERE seq <= COALESCE((SELECT position FROM checkpoints WHERE name = 'stream-processor'), 0);
CREATE INDEX client_changes_published ON client_changes(published_at) WHERE published_at IS NOT NULL;
ALTER TABLE score_changes ADD COLUMN event_at INTEGER;
"#,
    // Issue 5: what an LLM-written draft cost.
    r#"
ALTER TABLE emails ADD COLUMN prompt_tokens INTEGER;
ALTER TABLE emails ADD COLUMN completion_tokens INTEGER;
ALTER TABLE emails ADD COLUMN cost_usd REAL;
"#,
    // Issue 6: accounts and sign-in sessions.
    r#"
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    stylist_id    TEXT REFERENCES stylists(id),
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);
"#,
    // Issue 6: finding clients fast, the audit trail, and the email review workflow.
    r#"
-- Substring search on name and email (trigram index; the client's id ties rows together).
CREATE VIRTUAL TABLE clients_search USING fts5(client_id UNINDEXED, name, email, tokenize = 'trigram');
INSERT INTO clients_search (rowid, client_id, name, email) SELECT rowid, id, name, email FROM clients;
CREATE TRIGGER clients_search_insert AFTER INSERT ON clients BEGIN
    INSERT INTO clients_search (rowid, client_id, name, email) VALUES (new.rowid, new.id, new.name, new.email);
END;
CREATE TRIGGER clients_search_update AFTER UPDATE OF name, email ON clients
    WHEN old.name IS NOT new.name OR old.email IS NOT new.email BEGIN
    DELETE FROM clients_search WHERE rowid = old.rowid;
    INSERT INTO clients_search (rowid, client_id, name, email) VALUES (new.rowid, new.id, new.name, new.email);
END;
CREATE TRIGGER clients_search_delete AFTER DELETE ON clients BEGIN
    DELETE FROM clients_search WHERE rowid = old.rowid;
END;

-- Keyset pagination for each sort, whole book and per stylist.
DROP INDEX clients_by_stylist;
CREATE INDEX clients_by_stylist ON clients(stylist_id, created_at, id);
CREATE INDEX clients_by_score ON clients(COALESCE(score, -1), id);
CREATE INDEX clients_by_stylist_score ON clients(stylist_id, COALESCE(score, -1), id);
CREATE INDEX clients_by_activity ON clients(updated_at, id);
CREATE INDEX clients_by_stylist_activity ON clients(stylist_id, updated_at, id);

-- Every domain event the pipeline published: the audit trail, kept for good.
CREATE TABLE event_log (
    event_id    TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL,
    occurred_at INTEGER NOT NULL
);
CREATE INDEX event_log_by_client ON event_log(client_id, occurred_at);

-- Review: the writer's own words (kept once a stylist edits), and every status change.
ALTER TABLE emails ADD COLUMN ai_subject TEXT;
ALTER TABLE emails ADD COLUMN ai_body_text TEXT;
ALTER TABLE emails ADD COLUMN reviewed_by TEXT;
ALTER TABLE emails ADD COLUMN reviewed_at INTEGER;
ALTER TABLE emails ADD COLUMN reject_reason TEXT;
ALTER TABLE emails ADD COLUMN sent_at INTEGER;
CREATE INDEX emails_by_status ON emails(status, created_at, id);
CREATE INDEX emails_by_stylist_status ON emails(stylist_id, status, created_at, id);
CREATE TABLE email_reviews (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    email_id  TEXT NOT NULL REFERENCES emails(id),
    action    TEXT NOT NULL,
    actor     TEXT NOT NULL,
    note      TEXT,
    at        INTEGER NOT NULL
);
CREATE INDEX email_reviews_by_email ON email_reviews(email_id, id);

-- Server secrets made on first use (the key that signs unsubscribe links).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    // A stylist's emails of every status, newest first.
    r#"
CREATE INDEX emails_by_stylist ON emails(stylist_id, created_at, id);
"#,
    // Issue 7: the dashboard's materialized views (see store/src/views.rs), filled from the
    // logs by `engage views rebuild` and kept current by every write after it.
    r#"
CREATE TABLE view_band_counts (
    stylist_id TEXT NOT NULL,
    band       TEXT NOT NULL,
    clients    INTEGER NOT NULL,
    PRIMARY KEY (stylist_id, band)
) WITHOUT ROWID;
CREATE TABLE view_band_daily (
    day     TEXT NOT NULL,
    band    TEXT NOT NULL,
    clients INTEGER NOT NULL,
    PRIMARY KEY (day, band)
) WITHOUT ROWID;
CREATE TABLE view_email_daily (
    day        TEXT NOT NULL,
    stylist_id TEXT NOT NULL,
    writer     TEXT NOT NULL,
    drafted    INTEGER NOT NULL DEFAULT 0,
    approved   INTEGER NOT NULL DEFAULT 0,
    sent       INTEGER NOT NULL DEFAULT 0,
    rejected   INTEGER NOT NULL DEFAULT 0,
    failed     INTEGER NOT NULL DEFAULT 0,
    edited     INTEGER NOT NULL DEFAULT 0,
    edit_sum   REAL NOT NULL DEFAULT 0,
    cost_usd   REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (day, stylist_id, writer)
) WITHOUT ROWID;
CREATE TABLE view_review_times (
    day        TEXT NOT NULL,
    stylist_id TEXT NOT NULL,
    bucket     INTEGER NOT NULL,
    reviews    INTEGER NOT NULL,
    PRIMARY KEY (day, stylist_id, bucket)
) WITHOUT ROWID;
CREATE TABLE view_pending (
    stylist_id TEXT PRIMARY KEY,
    drafts     INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    // Issue 9: API keys for the REST API (only the SHA-256 of the secret is kept).
    r#"
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    stylist_id  TEXT REFERENCES stylists(id),
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
"#,
    // Issue 10: a client's score history from the index alone. The rows carry the factors
    // (about 1.5 KB each), so reading a history of 150 score changes read 150 table pages.
    r#"
DROP INDEX score_changes_by_client;
CREATE INDEX score_changes_by_client ON score_changes(client_id, id DESC, score, band, scored_at);
"#,
    // Issue 19: drafts withdrawn because the client may no longer be emailed, and durable
    // delivery: approved emails wait on the deliveries queue (those a stopped run had
    // approved but not sent are queued here once).
    r#"
ALTER TABLE emails ADD COLUMN withdrawn_reason TEXT;
INSERT INTO queue_messages (queue, dedup_id, body, enqueued_at, visible_at)
  SELECT 'deliveries', id || '#approved', json_object('email_id', id), updated_at, updated_at
  FROM emails WHERE status = 'approved'
  ON CONFLICT DO NOTHING;
"#,
    // Issue 21: the policy's decisions (drafted, held out, skipped with the reason) and the
    // conversions of the touches among them; the outcome counters; when each client entered
    // its band (the start of an episode); the prompt version of each draft.
    r#"
CREATE TABLE decisions (
    event_id           TEXT PRIMARY KEY,
    client_id          TEXT NOT NULL,
    stylist_id         TEXT NOT NULL,
    kind               TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    reason             TEXT NOT NULL,
    reason_code        TEXT NOT NULL,
    decided_at         INTEGER NOT NULL,
    email_id           TEXT,
    writer             TEXT,
    prompt_version     TEXT,
    expected_purchases REAL,
    converted_on       TEXT,
    purchases          INTEGER NOT NULL DEFAULT 0,
    value_cents        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX decisions_by_client ON decisions(client_id, decided_at DESC, event_id DESC);
CREATE INDEX decisions_by_email ON decisions(email_id) WHERE email_id IS NOT NULL;
CREATE TABLE view_touches (
    kind                       TEXT NOT NULL,
    outcome                    TEXT NOT NULL,
    writer                     TEXT NOT NULL,
    prompt_version             TEXT NOT NULL,
    touches                    INTEGER NOT NULL DEFAULT 0,
    converted                  INTEGER NOT NULL DEFAULT 0,
    purchases                  INTEGER NOT NULL DEFAULT 0,
    value_cents                INTEGER NOT NULL DEFAULT 0,
    expected_touches           INTEGER NOT NULL DEFAULT 0,
    expected_purchases         REAL NOT NULL DEFAULT 0,
    purchases_with_expectation INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, outcome, writer, prompt_version)
) WITHOUT ROWID;
ALTER TABLE clients ADD COLUMN band_since INTEGER;
ALTER TABLE emails ADD COLUMN prompt_version TEXT;
"#,
    // Issue 21: a scheduled send (its delivery request waits on the queue until then).
    r#"
ALTER TABLE emails ADD COLUMN send_after INTEGER;
"#,
];

/// Handle to the embedded database. Cheap to clone; all clones share one writer and one
/// pool of readers.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    path: PathBuf,
    /// Jobs for the writer thread, which owns the only writing connection.
    writer: std::sync::mpsc::Sender<WriteJob>,
    readers: Mutex<Vec<Connection>>,
    /// How many reads may run at once: each holds a connection (with its page cache) and a
    /// blocking thread, so an unbounded number would trade memory and context switches for
    /// no extra throughput on a machine with few cores.
    read_permits: tokio::sync::Semaphore,
    /// API keys found recently, by the SHA-256 of their secret.
    pub(crate) api_keys: crate::RecentCache<domain::user::ApiKey>,
    pub(crate) signals: Arc<Signals>,
}

/// What the writer thread shares with every `Store` handle: the wake-ups it sends after a
/// commit, and whether it publishes changes itself.
pub(crate) struct Signals {
    /// Woken after a commit that appended to the change feed what it did not also publish.
    pub(crate) feed_appended: Notify,
    /// Woken after a commit that made queue messages available.
    pub(crate) queue_filled: Notify,
    /// Set while a stream processor runs (see [`Store::publish_inline`]).
    pub(crate) inline: Mutex<Option<crate::feed::InlinePublish>>,
}

/// Work for the writer thread.
enum WriteJob {
    /// Runs inside the shared transaction of a group commit, in its own savepoint. Returns
    /// what to do once the transaction's fate is known (`Ok` when committed).
    InTransaction(Box<dyn FnOnce(&Connection) -> Settle + Send>),
    /// Runs alone, outside any transaction (a WAL checkpoint).
    Alone(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// Delivers a job's result once the commit that holds it has succeeded or failed.
type Settle = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Reads that may run at once: two per core (a read may wait on the disk), at least four.
fn max_readers() -> usize {
    std::thread::available_parallelism().map_or(4, |n| (n.get() * 2).max(4))
}

/// Most jobs one commit takes: enough to share one fsync among many writers, few enough
/// that no single commit holds the lock for long.
const MAX_GROUP: usize = 256;

impl Store {
    /// Opens (creating if needed) the database file at `path` and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let open_error = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_error(e.to_string()))?;
        }
        let mut writer = connect(&path, WRITER_CACHE_KIB).map_err(|e| open_error(e.to_string()))?;
        migrate(&mut writer)?;
        // Commits never stop to copy the log into the database; a background thread does.
        writer
            .execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {};",
                WAL_LIMIT_PAGES * 4096
            ))
            .map_err(db_error)?;
        let checkpointer =
            connect(&path, CHECKPOINTER_CACHE_KIB).map_err(|e| open_error(e.to_string()))?;
        let (jobs, queue) = std::sync::mpsc::channel();
        let signals = Arc::new(Signals {
            feed_appended: Notify::new(),
            queue_filled: Notify::new(),
            inline: Mutex::new(None),
        });
        let shared = Arc::clone(&signals);
        std::thread::Builder::new()
            .name("engage-sqlite-writer".into())
            .spawn(move || write_loop(writer, queue, &shared))
            .map_err(|e| open_error(e.to_string()))?;
        let inner = Arc::new(Inner {
            path: path.clone(),
            writer: jobs,
            readers: Mutex::new(Vec::new()),
            read_permits: tokio::sync::Semaphore::new(max_readers()),
            api_keys: Default::default(),
            signals,
        });
        let watched = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("engage-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, watched))
            .map_err(|e| open_error(e.to_string()))?;
        Ok(Self { inner })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `work` as one atomic unit of writing: all of it commits or none of it does.
    ///
    /// Writes from concurrent callers are committed together (group commit): each runs in
    /// its own savepoint inside one transaction, so one failing rolls back only itself,
    /// and the others share one durable commit. The result is returned only after the
    /// commit, so `Ok` always means "on disk".
    pub(crate) async fn write<T, E>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let job = WriteJob::InTransaction(Box::new(move |conn: &Connection| -> Settle {
            // Changes this job appends count only if its savepoint is kept.
            let appended = crate::feed::appended_mark();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                in_savepoint(conn, || work(conn))
            }))
            .unwrap_or_else(|_| {
                let _ = conn.execute_batch("ROLLBACK TO work; RELEASE work");
                Err(E::from(StoreError::Corrupt(
                    "a write panicked; it was rolled back".into(),
                )))
            });
            if outcome.is_err() {
                crate::feed::forget_appended_since(appended);
            }
            match outcome {
                Ok(value) => Box::new(move |committed: Result<(), String>| {
                    let _ = reply.send(
                        committed
                            .map(|()| value)
                            .map_err(|reason| E::from(StoreError::Commit(reason))),
                    );
                }),
                Err(error) => {
                    // Nothing of this job will be committed: answer at once.
                    let _ = reply.send(Err(error));
                    Box::new(|_| {})
                }
            }
        }));
        self.inner
            .writer
            .send(job)
            .map_err(|_| E::from(StoreError::Cancelled))?;
        answer.await.map_err(|_| E::from(StoreError::Cancelled))?
    }

    /// Runs `work` on a pooled read connection.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        let _permit = self
            .inner
            .read_permits
            .acquire()
            .await
            .map_err(|_| StoreError::Cancelled)?;
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => connect(&inner.path, READER_CACHE_KIB)?,
            };
            let result = work(&conn);
            inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
            result
        })
        .await
        .map_err(|_| StoreError::Cancelled)?
    }

    /// With `false`, commits stop waiting for the disk (SQLite's `synchronous = NORMAL`:
    /// the database stays consistent, but the last commits before a power cut may be
    /// lost); `true` restores the default, where `Ok` means "on disk". Only for a bulk job
    /// that is redone from the start when it fails (the demo's replay), never for users'
    /// writes.
    pub async fn set_durable(&self, durable: bool) -> Result<()> {
        let pragma = if durable {
            "PRAGMA synchronous = FULL;"
        } else {
            "PRAGMA synchronous = NORMAL;"
        };
        self.execute_alone(pragma).await
    }

    /// Flushes the write-ahead log into the main file; called on shutdown so the file is
    /// complete on its own.
    pub async fn checkpoint_wal(&self) -> Result<()> {
        self.execute_alone("PRAGMA wal_checkpoint(TRUNCATE);").await
    }

    /// Runs `sql` on the writing connection outside any transaction, between groups.
    async fn execute_alone(&self, sql: &'static str) -> Result<()> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = WriteJob::Alone(Box::new(move |conn: &mut Connection| {
            let _ = reply.send(conn.execute_batch(sql));
        }));
        self.inner
            .writer
            .send(job)
            .map_err(|_| StoreError::Cancelled)?;
        answer
            .await
            .map_err(|_| StoreError::Cancelled)?
            .map_err(db_error)
    }
}

/// Runs `work` in a savepoint of the writer's transaction: kept if it succeeds, rolled
/// back (and only it) if it fails. Savepoints never nest here: each write job has one,
/// then the group's publishing step has one.
pub(crate) fn in_savepoint<T, E: From<StoreError>>(
    conn: &Connection,
    work: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
    run("SAVEPOINT work").map_err(|e| E::from(crate::db_error(e)))?;
    let outcome = work().and_then(|value| {
        run("RELEASE work").map_err(|e| E::from(crate::db_error(e)))?;
        Ok(value)
    });
    if outcome.is_err() {
        let _ = run("ROLLBACK TO work");
        let _ = run("RELEASE work");
    }
    outcome
}

/// How often the write-ahead log is copied into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Log size (in pages) past which the writer helps the log start over: 64 MB with 4 KB
/// pages (1 MB in tests, so they can show it without writing gigabytes).
#[cfg(not(test))]
const WAL_LIMIT_PAGES: i64 = 16_384;
#[cfg(test)]
const WAL_LIMIT_PAGES: i64 = 256;

/// Copies committed log pages into the database in the background (a passive checkpoint
/// never blocks the writer or readers), until every `Store` handle is gone.
///
/// SQLite starts the log over only when a write begins after a checkpoint has copied all
/// of it; under a steady stream of writes the background checkpoint is never complete at
/// that moment, and the log would grow for as long as writes come (it reached 30 GB while
/// seeding a million clients). So once the log is past [`WAL_LIMIT_PAGES`], the writer
/// thread itself runs a passive checkpoint between two commits: with no write in progress
/// it copies everything (without waiting for readers), and the next commit starts the log
/// over as soon as no reader still needs its old pages. `journal_size_limit` then shrinks
/// the file back. Should readers never pause, at four times the limit the writer truncates
/// the log, waiting for them.
fn checkpoint_loop(conn: Connection, store: std::sync::Weak<Inner>) {
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        let Some(inner) = store.upgrade() else {
            break;
        };
        let log_pages = conn.query_row("PRAGMA wal_checkpoint(PASSIVE);", [], |row| {
            row.get::<_, i64>(1)
        });
        match log_pages {
            Ok(pages) if pages > WAL_LIMIT_PAGES => {
                // Readers that never pause can keep the log from starting over; past four
                // times the limit the writer waits for them (a truncating checkpoint).
                let mode = if pages > 4 * WAL_LIMIT_PAGES {
                    "TRUNCATE"
                } else {
                    "PASSIVE"
                };
                let job = WriteJob::Alone(Box::new(move |conn: &mut Connection| {
                    let started = std::time::Instant::now();
                    let sql = format!("PRAGMA wal_checkpoint({mode});");
                    if let Err(error) = conn.execute_batch(&sql) {
                        tracing::warn!(%error, "checkpoint from the writer failed; will retry");
                    }
                    let ms = started.elapsed().as_millis();
                    if ms >= 50 {
                        tracing::debug!(
                            ms,
                            log_pages = pages,
                            mode,
                            "slow checkpoint on the writer"
                        );
                    }
                }));
                let _ = inner.writer.send(job);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "background WAL checkpoint failed; will retry"),
        }
    }
}

/// The writer thread: takes every job waiting, runs them in one transaction, publishes the
/// changes they appended when a stream processor is caught up (see
/// [`Store::publish_inline`]), commits once, then tells each job how the commit went and
/// wakes whoever waits for the feed or the queue. Ends when every `Store` handle is gone.
fn write_loop(mut conn: Connection, jobs: std::sync::mpsc::Receiver<WriteJob>, signals: &Signals) {
    let mut pending: Option<WriteJob> = None;
    loop {
        let first = match pending.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        let first = match first {
            WriteJob::Alone(job) => {
                job(&mut conn);
                continue;
            }
            WriteJob::InTransaction(job) => job,
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(WriteJob::InTransaction(job)) => group.push(job),
                Ok(alone) => {
                    pending = Some(alone);
                    break;
                }
                Err(_) => break,
            }
        }
        let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
        let begun = run("BEGIN IMMEDIATE").map(drop);
        let settles: Vec<Settle> = match &begun {
            Ok(()) => group.into_iter().map(|job| job(&conn)).collect(),
            Err(_) => Vec::new(),
        };
        let appended = crate::feed::take_appended();
        let inline = *signals.inline.lock().unwrap_or_else(|p| p.into_inner());
        let published = match (&begun, inline) {
            (Ok(()), Some(inline)) if !appended.is_empty() => {
                crate::feed::publish_appended(&conn, inline, &appended)
            }
            _ => crate::feed::Published::None,
        };
        let committed = begun
            .and_then(|()| run("COMMIT").map(drop))
            .map_err(|e| e.to_string());
        if let Err(reason) = &committed {
            tracing::error!(%reason, "a group commit failed; its writes were rolled back");
            let _ = conn.execute_batch("ROLLBACK");
        }
        for settle in settles {
            settle(committed.clone());
        }
        if committed.is_ok() && !appended.is_empty() {
            match published {
                crate::feed::Published::All { events } => {
                    if events > 0 {
                        signals.queue_filled.notify_waiters();
                    }
                }
                crate::feed::Published::None => signals.feed_appended.notify_waiters(),
            }
        }
    }
}

/// Page cache per connection (KiB). The writer's holds the index pages every update
/// touches; a reader's serves one request at a time; the checkpointer copies log frames
/// and needs next to none. Together they bound what SQLite keeps in memory.
const WRITER_CACHE_KIB: u32 = 16_000;
const READER_CACHE_KIB: u32 = 8_000;
const CHECKPOINTER_CACHE_KIB: u32 = 1_000;

/// Prepared statements each connection keeps: more than the store has.
const STATEMENT_CACHE: usize = 256;

fn connect(path: &Path, cache_kib: u32) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_error)?;
    // WAL lets readers run beside the writer; FULL sync makes every commit durable
    // before it is acknowledged, which is the "no accepted write is lost" promise.
    // Each write job runs in its own savepoint, whose undo journal SQLite keeps in a
    // temporary file by default: opening, truncating and deleting that file took about 5%
    // of the writer's CPU (bench/REPORT.md). In memory it costs a copy of the pages.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(db_error)?;
    conn.pragma_update(None, "cache_size", -i64::from(cache_kib))
        .map_err(db_error)?;
    // The writer runs every kind of write in one transaction; with rusqlite's default of
    // 16 cached statements it kept preparing them anew (6% of its time).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let applied: usize = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(db_error)?;
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {applied}, newer than this build knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction().map_err(db_error)?;
        tx.execute_batch(sql).map_err(db_error)?;
        tx.pragma_update(None, "user_version", index + 1)
            .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
        tracing::info!(version = index + 1, "applied database migration");
    }
    Ok(())
}

/// Milliseconds since the Unix epoch: how instants are stored.
pub(crate) fn millis(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn instant(ms: i64) -> Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms} out of range")))
}

impl Store {
    /// The steps of SQLite's plan for `sql` with `args` (for tests that check a query
    /// walks an index).
    #[cfg(test)]
    pub(crate) async fn query_plan(
        &self,
        sql: String,
        args: Vec<rusqlite::types::Value>,
    ) -> Result<Vec<String>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .map_err(db_error)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
                .map_err(db_error)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_error)
        })
        .await
    }

    /// Signalled after every commit that appends to the change feed. Readers should
    /// `enable()` a `notified()` future before looking, then wait on it if they found nothing.
    pub fn feed_signal(&self) -> &Notify {
        &self.inner.signals.feed_appended
    }

    /// Signalled after every commit that makes queue messages available.
    pub fn queue_signal(&self) -> &Notify {
        &self.inner.signals.queue_filled
    }
}
