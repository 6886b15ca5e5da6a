//! End-to-end pipeline benchmark on the embedded default, with the raw SQLite ceiling
//! measured in the same run (the process runs with `engage serve`'s allocator). Run: `cargo bench -p engage-bench --bench pipeline`
//! (or `bench/pipeline-bench.sh`). Prints a summary and writes it as JSON to
//! `$CARGO_TARGET_TMPDIR/pipeline.json`.
//!
//! - ceiling: the very rows the throughput run left behind, replayed raw into a copy of
//!   the database as it was before that run: for each update the client row rewritten
//!   (version, time, profile), its change record with both images, the queue message
//!   written and deleted, the event-log entry, the idempotency record, the score change
//!   with its factors and the client's score columns, all with the run's own keys (1,000
//!   clients, UUID event ids) and sizes, written with prepared statements in transactions
//!   of 1,000 updates (and, for comparison, one update per transaction): the fastest this
//!   database could take those writes.
//! - synthetic ceiling, as measured before (bench/REPORT.md): rows of the same shapes for
//!   one client with sequential keys and the profile of a client with one Fix. It writes
//!   to a handful of pages, so it is far above what the real rows allow.
//! - throughput: 20,000 "record a Fix" requests through the real HTTP router in process
//!   (JSON parsing, validation, the group-commit writer, change feed), 64 at a time, with
//!   the stream and email processors running as in `engage serve`; timed from the first
//!   request until the last event's score and policy decision are stored.
//! - latency: an open-loop load of 1,000 updates/s for 10 s; per update, the time from its
//!   change being recorded to its score and decision being stored.

mod common;

// As in `engage serve`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use domain::{ClientId, StylistId};
use processors::{Clock, SystemClock};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::Store;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const CLIENTS: usize = 1_000;
const THROUGHPUT_UPDATES: usize = 20_000;
const CONCURRENCY: usize = 64;
const LATENCY_RATE: u64 = 1_000;
const LATENCY_SECONDS: u64 = 10;

fn main() {
    common::block_on(run());
}

struct Running {
    _dir: tempfile::TempDir,
    store: Store,
    router: axum::Router,
    clients: Vec<ClientId>,
    shutdown: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
}

async fn start() -> Running {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(dir.path().join("engage.db")).expect("the database opens");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    store
        .upsert_stylist(
            StylistId::new("st-1"),
            "Maya Okafor".into(),
            "maya@engage.example".into(),
        )
        .await
        .expect("a stylist");
    let batch: Vec<domain::NewClient> = (0..CLIENTS)
        .map(|i| {
            let input = domain::ClientInput {
                name: format!("Client {i}"),
                email: format!("client{i}@example.com"),
                stylist_id: "st-1".into(),
                status: None,
                profile: domain::ProfileInput {
                    email_opt_in: true,
                    ..Default::default()
                },
            };
            domain::NewClient::parse(&input, clock.now()).expect("valid clients")
        })
        .collect();
    store
        .import_clients(batch, clock.now())
        .await
        .expect("clients imported");
    let clients = store
        .list_clients(
            domain::views::ClientQuery {
                limit: CLIENTS as u32,
                ..Default::default()
            },
            None,
        )
        .await
        .expect("clients listed")
        .clients
        .into_iter()
        .map(|c| c.id)
        .collect();
    let shutdown = CancellationToken::new();
    let args = engage::config::ServeArgs::local(dir.path());
    let tasks = engage::startup::spawn_pipeline(
        &store,
        &clock,
        Arc::new(processors::TemplateWriter),
        &args,
        &Default::default(),
        &shutdown,
    );
    // Every request is made as a signed-in manager, as an integration would be.
    let manager = store
        .add_user(
            domain::ClientEmail::parse("manager@engage.example").expect("an address"),
            domain::user::Role::Manager,
            None,
            domain::user::Password::parse("benchmark password").expect("a password"),
            clock.now(),
        )
        .await
        .expect("a manager account");
    let token = store
        .create_session(&manager, clock.now(), chrono::Duration::hours(12))
        .await
        .expect("a session");
    let cookie =
        axum::http::HeaderValue::from_str(&format!("engage_session={token}")).expect("a cookie");
    let state = engage::startup::AppState::new(store.clone(), clock, args.addr, &args.web)
        .await
        .expect("the app state");
    let router = engage::startup::router(state).layer(axum::middleware::map_request(
        move |mut request: Request<Body>| {
            let cookie = cookie.clone();
            async move {
                request.headers_mut().insert(header::COOKIE, cookie);
                request
            }
        },
    ));
    let running = Running {
        _dir: dir,
        store,
        router,
        clients,
        shutdown,
        tasks,
    };
    common::drain(&running.store).await;
    running
}

async fn record_fix(router: &axum::Router, client: &ClientId, kept: usize) {
    let body = format!(
        r#"{{"delivered_on":"{}","items_sent":5,"items_kept":{kept},"order_value":"{}.00"}}"#,
        SystemClock.now().date_naive(),
        kept * 60
    );
    let request = Request::post(format!("/api/v1/clients/{client}/fixes"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("a request");
    let response = router.clone().oneshot(request).await.expect("a response");
    assert_eq!(response.status(), StatusCode::OK, "an update was refused");
}

async fn throughput(running: &Running) -> f64 {
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (router, clients, next) = (
            running.router.clone(),
            running.clients.clone(),
            Arc::clone(&next),
        );
        senders.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= THROUGHPUT_UPDATES {
                    break;
                }
                record_fix(&router, &clients[i % clients.len()], i % 6).await;
            }
        });
    }
    while senders.join_next().await.is_some() {}
    let accepted = started.elapsed();
    common::drain(&running.store).await;
    let decided = started.elapsed();
    println!(
        "throughput: {THROUGHPUT_UPDATES} updates accepted in {:.2} s, all decided in {:.2} s",
        accepted.as_secs_f64(),
        decided.as_secs_f64()
    );
    THROUGHPUT_UPDATES as f64 / decided.as_secs_f64()
}

async fn latency(running: &Running) -> (f64, f64, f64, usize) {
    let since = SystemClock.now();
    let interval = Duration::from_micros(1_000_000 / LATENCY_RATE);
    let total = (LATENCY_RATE * LATENCY_SECONDS) as usize;
    let started = tokio::time::Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..total {
        tokio::time::sleep_until(started + interval * i as u32).await;
        let (router, client) = (
            running.router.clone(),
            running.clients[(i * 7) % running.clients.len()].clone(),
        );
        sends.spawn(async move { record_fix(&router, &client, i % 6).await });
    }
    while sends.join_next().await.is_some() {}
    common::drain(&running.store).await;
    let mut latencies = running
        .store
        .decision_latencies_ms(since)
        .await
        .expect("latencies");
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize] as f64;
    (
        at(0.5),
        at(0.99),
        *latencies.last().unwrap_or(&0) as f64,
        latencies.len(),
    )
}

/// The same rows as `THROUGHPUT_UPDATES` updates, written as fast as SQLite takes them:
/// `per_transaction` updates per commit (1,000 for the ceiling; 1 for what a writer that
/// commits each update on its own would reach).
fn raw_ceiling(sample: &Store, client: &ClientId, per_transaction: usize, updates: usize) -> f64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (client_row, change, event, factors) = runtime.block_on(async {
        let stored = sample.get_client(client.clone()).await.expect("read").expect("a client");
        let image = serde_json::to_string(&stored).expect("json");
        let profile = serde_json::to_string(&stored.profile).expect("json");
        let score = domain::score::engagement_score(&stored, SystemClock.now()).expect("a score");
        let factors = serde_json::to_string(&score.factors).expect("json");
        let event = format!(r#"{{"schema_version":1,"id":"x","client_id":"{}","type":"client_updated","changes":[]}}"#, stored.id);
        (profile, image, event, factors)
    });
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("raw.db");
    drop(Store::open(&path).expect("schema"));
    let mut conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
        .expect("pragmas");
    conn.execute_batch(
        "INSERT INTO stylists VALUES ('st-1', 'Maya', 'maya@engage.example');
         INSERT INTO clients (id, stylist_id, name, email, status, version, created_at, updated_at, profile)
           VALUES ('c-raw', 'st-1', 'Raw', 'raw@example.com', 'active', 1, 0, 0, '{}');",
    )
    .expect("a client");
    let started = Instant::now();
    for chunk in 0..updates / per_transaction {
        let tx = conn.transaction().expect("a transaction");
        {
            let mut update = tx.prepare_cached("UPDATE clients SET version = ?1, updated_at = ?1, profile = ?2 WHERE id = 'c-raw'").expect("sql");
            let mut change_row = tx.prepare_cached("INSERT INTO client_changes (client_id, version, old_image, new_image, recorded_at, published_at) VALUES ('c-raw', ?1, ?2, ?2, ?1, ?1)").expect("sql");
            let mut enqueue = tx.prepare_cached("INSERT INTO queue_messages (queue, dedup_id, body, enqueued_at, visible_at) VALUES ('events', ?1, ?2, 0, 0)").expect("sql");
            let mut dequeue = tx
                .prepare_cached("DELETE FROM queue_messages WHERE dedup_id = ?1")
                .expect("sql");
            let mut logged = tx.prepare_cached("INSERT INTO event_log (event_id, client_id, kind, body, occurred_at) VALUES (?1, 'c-raw', 'client_updated', ?2, 0)").expect("sql");
            let mut processed = tx
                .prepare_cached(
                    "INSERT INTO processed_events (event_id, processed_at) VALUES (?1, 0)",
                )
                .expect("sql");
            let mut scored = tx.prepare_cached("INSERT INTO score_changes (client_id, event_id, score, band, factors, scored_at, event_at) VALUES ('c-raw', ?1, 55, 'steady', ?2, 0, 0)").expect("sql");
            let mut score_col = tx
                .prepare_cached("UPDATE clients SET score = 55, band = 'steady' WHERE id = 'c-raw'")
                .expect("sql");
            for i in 0..per_transaction {
                let n = (chunk * per_transaction + i + 2) as i64;
                let id = format!("e-{n}");
                update
                    .execute(rusqlite::params![n, client_row])
                    .expect("update");
                change_row
                    .execute(rusqlite::params![n, change])
                    .expect("change");
                enqueue
                    .execute(rusqlite::params![id, event])
                    .expect("enqueue");
                logged
                    .execute(rusqlite::params![id, event])
                    .expect("logged");
                dequeue.execute([&id]).expect("dequeue");
                processed.execute([&id]).expect("processed");
                scored
                    .execute(rusqlite::params![id, factors])
                    .expect("scored");
                score_col.execute([]).expect("score");
            }
        }
        tx.commit().expect("commit");
    }
    updates as f64 / started.elapsed().as_secs_f64()
}

/// Where the database stood before the throughput run: copies of it to replay into, and
/// the last row of each table the run writes to.
struct Before {
    copies: [std::path::PathBuf; 2],
    last_change: i64,
    last_event: i64,
    last_score: i64,
}

fn before_throughput(db: &std::path::Path, dir: &std::path::Path) -> Before {
    let conn = rusqlite::Connection::open(db).expect("open");
    let copies = ["replay-batched.db", "replay-alone.db"].map(|name| dir.join(name));
    for copy in &copies {
        conn.execute("VACUUM INTO ?1", [copy.to_str().expect("a path")])
            .expect("a copy of the database");
    }
    let last = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect("a count") };
    Before {
        last_change: last("SELECT COALESCE(MAX(seq), 0) FROM client_changes"),
        last_event: last("SELECT COALESCE(MAX(rowid), 0) FROM event_log"),
        last_score: last("SELECT COALESCE(MAX(id), 0) FROM score_changes"),
        copies,
    }
}

/// The rows one update of the throughput run left behind, as stored.
struct UpdateRows {
    client_id: String,
    version: i64,
    old_image: Option<String>,
    new_image: String,
    recorded_at: i64,
    profile: String,
    event_id: String,
    kind: String,
    event_body: String,
    occurred_at: i64,
    score: i64,
    band: String,
    factors: String,
    scored_at: i64,
    event_at: Option<i64>,
}

/// Reads back, in order, what each update of the throughput run wrote.
fn rows_written(db: &std::path::Path, before: &Before) -> Vec<UpdateRows> {
    let conn = rusqlite::Connection::open(db).expect("open");
    let mut changes = conn
        .prepare("SELECT client_id, version, old_image, new_image, recorded_at FROM client_changes WHERE seq > ?1 ORDER BY seq")
        .expect("sql");
    let changes: Vec<(String, i64, Option<String>, String, i64)> = changes
        .query_map([before.last_change], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .expect("changes")
        .collect::<rusqlite::Result<_>>()
        .expect("changes");
    let mut events = conn
        .prepare("SELECT event_id, kind, body, occurred_at FROM event_log WHERE rowid > ?1 ORDER BY rowid")
        .expect("sql");
    let events: Vec<(String, String, String, i64)> = events
        .query_map([before.last_event], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .expect("events")
        .collect::<rusqlite::Result<_>>()
        .expect("events");
    let mut scores = conn
        .prepare("SELECT score, band, factors, scored_at, event_at FROM score_changes WHERE id > ?1 ORDER BY id")
        .expect("sql");
    let scores: Vec<(i64, String, String, i64, Option<i64>)> = scores
        .query_map([before.last_score], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .expect("scores")
        .collect::<rusqlite::Result<_>>()
        .expect("scores");
    changes
        .into_iter()
        .zip(events)
        .zip(scores)
        .map(
            |(
                (
                    (client_id, version, old_image, new_image, recorded_at),
                    (event_id, kind, event_body, occurred_at),
                ),
                (score, band, factors, scored_at, event_at),
            )| {
                let image: serde_json::Value = serde_json::from_str(&new_image).expect("an image");
                UpdateRows {
                    client_id,
                    version,
                    old_image,
                    profile: image["profile"].to_string(),
                    new_image,
                    recorded_at,
                    event_id,
                    kind,
                    event_body,
                    occurred_at,
                    score,
                    band,
                    factors,
                    scored_at,
                    event_at,
                }
            },
        )
        .collect()
}

/// Writes `rows` raw into `copy` (the database before the run), `per_transaction` updates
/// per commit; returns updates per second.
fn replay(copy: &std::path::Path, rows: &[UpdateRows], per_transaction: usize) -> f64 {
    let mut conn = rusqlite::Connection::open(copy).expect("open");
    // As the server runs it: WAL, a durable commit, no checkpoint inside a commit.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;",
    )
    .expect("pragmas");
    let started = Instant::now();
    for chunk in rows.chunks(per_transaction) {
        let tx = conn.transaction().expect("a transaction");
        {
            let mut client = tx
                .prepare_cached(
                    "UPDATE clients SET version = ?2, updated_at = ?3, profile = ?4 WHERE id = ?1",
                )
                .expect("sql");
            let mut change = tx.prepare_cached("INSERT INTO client_changes (client_id, version, old_image, new_image, recorded_at, published_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)").expect("sql");
            let mut enqueue = tx.prepare_cached("INSERT INTO queue_messages (queue, dedup_id, body, enqueued_at, visible_at) VALUES ('events', ?1, ?2, ?3, ?3)").expect("sql");
            let mut logged = tx.prepare_cached("INSERT INTO event_log (event_id, client_id, kind, body, occurred_at) VALUES (?1, ?2, ?3, ?4, ?5)").expect("sql");
            let mut dequeue = tx
                .prepare_cached(
                    "DELETE FROM queue_messages WHERE queue = 'events' AND dedup_id = ?1",
                )
                .expect("sql");
            let mut processed = tx
                .prepare_cached(
                    "INSERT INTO processed_events (event_id, processed_at) VALUES (?1, ?2)",
                )
                .expect("sql");
            let mut scored = tx.prepare_cached("INSERT INTO score_changes (client_id, event_id, score, band, factors, scored_at, event_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)").expect("sql");
            let mut score_columns = tx
                .prepare_cached("UPDATE clients SET score = ?2, band = ?3 WHERE id = ?1")
                .expect("sql");
            for row in chunk {
                client
                    .execute(rusqlite::params![
                        row.client_id,
                        row.version,
                        row.recorded_at,
                        row.profile
                    ])
                    .expect("client");
                change
                    .execute(rusqlite::params![
                        row.client_id,
                        row.version,
                        row.old_image,
                        row.new_image,
                        row.recorded_at
                    ])
                    .expect("change");
                enqueue
                    .execute(rusqlite::params![
                        row.event_id,
                        row.event_body,
                        row.occurred_at
                    ])
                    .expect("enqueue");
                logged
                    .execute(rusqlite::params![
                        row.event_id,
                        row.client_id,
                        row.kind,
                        row.event_body,
                        row.occurred_at
                    ])
                    .expect("logged");
                dequeue.execute([&row.event_id]).expect("dequeue");
                processed
                    .execute(rusqlite::params![row.event_id, row.scored_at])
                    .expect("processed");
                scored
                    .execute(rusqlite::params![
                        row.client_id,
                        row.event_id,
                        row.score,
                        row.band,
                        row.factors,
                        row.scored_at,
                        row.event_at
                    ])
                    .expect("scored");
                score_columns
                    .execute(rusqlite::params![row.client_id, row.score, row.band])
                    .expect("score");
            }
            tx.execute(
                "UPDATE checkpoints SET position = position + ?1 WHERE name = 'stream-processor'",
                [chunk.len() as i64],
            )
            .expect("checkpoint");
        }
        tx.commit().expect("commit");
    }
    rows.len() as f64 / started.elapsed().as_secs_f64()
}

async fn run() {
    let running = start().await;
    // Warm up: one update per client, so every profile has a Fix like the measured ones.
    for client in running.clients.clone() {
        record_fix(&running.router, &client, 2).await;
    }
    common::drain(&running.store).await;
    let before = before_throughput(running.store.path(), running._dir.path());

    let sample = running.clients[0].clone();
    let store = running.store.clone();
    let (ceiling, one_per_commit) = tokio::task::spawn_blocking(move || {
        (
            raw_ceiling(&store, &sample, 1_000, THROUGHPUT_UPDATES),
            raw_ceiling(&store, &sample, 1, 2_000),
        )
    })
    .await
    .expect("ceiling");
    let end_to_end = throughput(&running).await;
    let (ceiling_same_rows, same_rows_alone, replayed) = {
        let db = running.store.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let rows = rows_written(&db, &before);
            assert_eq!(rows.len(), THROUGHPUT_UPDATES, "every update left its rows");
            (
                replay(&before.copies[0], &rows, 1_000),
                replay(&before.copies[1], &rows[..2_000], 1),
                rows.len(),
            )
        })
        .await
        .expect("replayed")
    };
    let (p50, p99, max, measured) = latency(&running).await;
    running.shutdown.cancel();
    let mut tasks = running.tasks;
    while tasks.join_next().await.is_some() {}

    let ratio = end_to_end / ceiling_same_rows;
    println!(
        "raw SQLite ceiling (the run's own {replayed} updates' rows replayed, 1,000 updates per transaction): {ceiling_same_rows:.0} updates/s"
    );
    println!(
        "raw SQLite, the same rows, one update per transaction: {same_rows_alone:.0} updates/s"
    );
    println!(
        "synthetic ceiling as before (one client, sequential keys, 1,000 per transaction): {ceiling:.0} updates/s; one per transaction: {one_per_commit:.0} updates/s"
    );
    println!(
        "end to end (HTTP router -> score stored -> policy decided): {end_to_end:.0} updates/s = {:.1}% of the ceiling ({:.1}% of the synthetic one)",
        ratio * 100.0,
        end_to_end / ceiling * 100.0
    );
    println!(
        "latency at {LATENCY_RATE} updates/s for {LATENCY_SECONDS} s ({measured} decisions): p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms"
    );
    let report = serde_json::json!({
        "ceiling_updates_per_s": ceiling_same_rows, "one_per_commit_updates_per_s": same_rows_alone,
        "synthetic_ceiling_updates_per_s": ceiling, "synthetic_one_per_commit_updates_per_s": one_per_commit,
        "end_to_end_updates_per_s": end_to_end, "ratio": ratio,
        "latency_rate_per_s": LATENCY_RATE, "latency_p50_ms": p50, "latency_p99_ms": p99, "latency_max_ms": max,
        "latency_decisions": measured,
    });
    let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pipeline.json");
    std::fs::write(&out, report.to_string()).expect("report written");
}
