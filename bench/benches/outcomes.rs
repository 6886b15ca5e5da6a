//! "Is it working?" at scale: the outcome figures (conversion of emailed and held-out
//! clients, lift, writers) with one touch per client for 1,000,000 clients, read from the
//! outcome counters (the views the pipeline keeps in its transactions) against a baseline
//! that scans the decisions table in the same run, and the whole dashboard (its data, and
//! the server-rendered page) on top of them.
//!
//! Run: `cargo bench -p engage-bench --bench outcomes` (`OUTCOMES_CLIENTS=100000` for a
//! smaller book). The decisions are written straight into the table (as a million clients'
//! pipeline runs would leave them) and the counters rebuilt from them with the store's own
//! `rebuild_views`; the figures from the counters must equal the scan's. Prints a table and
//! writes JSON to `$CARGO_TARGET_TMPDIR/outcomes.json`.

mod common;

use app::service::EngageService;
use domain::outcomes::{DecisionOutcome, TouchCounts, TouchGroup, held_out, outcomes};
use domain::user::{Role, User};
use domain::{ClientEmail, ClientId, EmailKind, EventId};
use processors::{Clock, SystemClock};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::Store;

const CLIENTS: u64 = 1_000_000;
const WARM_UP: usize = 10;
const SAMPLES: usize = 100;
const WINDOW_DAYS: u32 = 30;

fn main() {
    common::block_on(run());
}

/// One touch per client, as the policy would have decided them: a kind, held out at the
/// default 10% share by the policy's own hash, a writer for the drafted ones, a model's
/// expectation for most, and a conversion for some (more often when emailed).
fn write_decisions(path: &std::path::Path, clients: u64) {
    let mut conn = rusqlite::Connection::open(path).expect("the database");
    conn.busy_timeout(Duration::from_secs(30))
        .expect("a busy timeout");
    let tx = conn.transaction().expect("a transaction");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO decisions (event_id, client_id, stylist_id, kind, outcome, reason, reason_code, decided_at,
                    email_id, writer, prompt_version, expected_purchases, converted_on, purchases, value_cents)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'Score moved from Cooling to At risk', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )
            .expect("the insert");
        let mut rng = SmallRng::seed_from_u64(21);
        let now = SystemClock.now();
        let stylists = engage::demo::STYLISTS;
        let mut progress = engage::telemetry::Progress::new(clients, "writing decisions");
        for i in 0..clients {
            let client = ClientId::new(format!("bench-client-{i:07}"));
            let event = EventId::new(format!("bench-event-{i:07}"));
            let kind = match rng.random_range(0..20) {
                0..10 => EmailKind::WinBack,
                10..15 => EmailKind::CheckIn,
                15..18 => EmailKind::Welcome,
                _ => EmailKind::Celebration,
            };
            let held = held_out(&client, kind, &event, 0.1);
            let (writer, prompt) = match (held, rng.random_bool(0.6)) {
                (true, _) => (None, None),
                (false, true) => (Some("template"), Some("template-1")),
                (false, false) => (Some("openai/gpt-4o-mini"), Some("win-back-3")),
            };
            let decided = now - chrono::Duration::minutes(rng.random_range(0..90 * 24 * 60));
            let converts = rng.random_bool(if held { 0.15 } else { 0.22 });
            let (on, purchases, value) = if converts {
                let day = decided.date_naive() + chrono::Days::new(rng.random_range(1..=30));
                let purchases = rng.random_range(1..=2);
                (
                    Some(day.to_string()),
                    purchases,
                    purchases * rng.random_range(5_000..20_000),
                )
            } else {
                (None, 0, 0)
            };
            insert
                .execute(rusqlite::params![
                    event.as_str(),
                    client.as_str(),
                    stylists[(i % 4) as usize].0,
                    kind.as_str(),
                    if held { "held_out" } else { "drafted" },
                    if held { "holdout" } else { "entered_band" },
                    decided.timestamp_millis(),
                    (!held).then(|| format!("bench-email-{i:07}")),
                    writer,
                    prompt,
                    rng.random_bool(0.7).then(|| rng.random_range(0.05..1.5)),
                    on,
                    purchases,
                    value,
                ])
                .expect("a decision");
            if i % 10_000 == 0 {
                progress.set(i);
            }
        }
        progress.finish();
    }
    tx.commit().expect("committed");
}

/// The baseline: the same figures from a scan of every decision, grouped as the counters
/// are.
fn scan(conn: &rusqlite::Connection) -> domain::outcomes::Outcomes {
    let mut stmt = conn
        .prepare_cached(
            "SELECT kind, outcome, COALESCE(writer, ''), COALESCE(prompt_version, ''), COUNT(*),
                    SUM(converted_on IS NOT NULL), SUM(purchases), SUM(value_cents),
                    SUM(expected_purchases IS NOT NULL), TOTAL(expected_purchases),
                    SUM(CASE WHEN expected_purchases IS NOT NULL THEN purchases ELSE 0 END)
             FROM decisions WHERE outcome IN ('drafted', 'held_out')
             GROUP BY kind, outcome, writer, prompt_version",
        )
        .expect("the scan");
    let rows = stmt
        .query_map([], |row| {
            let kind: String = row.get(0)?;
            let outcome: String = row.get(1)?;
            Ok((
                TouchGroup {
                    kind: EmailKind::parse(&kind).expect("a kind"),
                    outcome: DecisionOutcome::parse(&outcome).expect("an outcome"),
                    writer: row.get(2)?,
                    prompt_version: row.get(3)?,
                },
                TouchCounts {
                    touches: row.get(4)?,
                    converted: row.get(5)?,
                    purchases: row.get(6)?,
                    value_cents: row.get(7)?,
                    expected_touches: row.get(8)?,
                    expected_purchases: row.get(9)?,
                    purchases_with_expectation: row.get(10)?,
                },
            ))
        })
        .expect("rows")
        .collect::<rusqlite::Result<Vec<_>>>()
        .expect("the scan's rows");
    outcomes(&rows, WINDOW_DAYS)
}

/// Median and p90 of `SAMPLES` runs of `f` after `WARM_UP`, in ms.
async fn time<F, Fut>(mut f: F) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(SAMPLES);
    for i in 0..WARM_UP + SAMPLES {
        let started = Instant::now();
        f().await;
        if i >= WARM_UP {
            times.push(started.elapsed());
        }
    }
    common::median_p90(times)
}

/// Floats summed in another order differ in the last bits: compare to a millionth.
fn same(a: &domain::outcomes::Outcomes, b: &domain::outcomes::Outcomes) -> bool {
    let (a, b) = (
        serde_json::to_value(a).expect("json"),
        serde_json::to_value(b).expect("json"),
    );
    fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
        use serde_json::Value;
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1.0)
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
            }
            (x, y) => x == y,
        }
    }
    close(&a, &b)
}

async fn run() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("engage.db");
    let store = Store::open(&path).expect("a database");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let clients = std::env::var("OUTCOMES_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CLIENTS);
    // A small demo book, scored and drafted by the pipeline, so the dashboard's other
    // charts have their usual data.
    let args = engage::config::ServeArgs::local(dir.path());
    common::seed_and_settle(&store, &clock, &args, 300).await;

    // The demo book's own touches (its welcomes and the like) come on top of the bench's.
    let demo_touches: u64 = rusqlite::Connection::open(&path)
        .expect("a reader")
        .query_row(
            "SELECT COUNT(*) FROM decisions WHERE outcome IN ('drafted', 'held_out')",
            [],
            |row| row.get(0),
        )
        .expect("the demo's touches");
    let started = Instant::now();
    write_decisions(&path, clients);
    let written = started.elapsed();
    let started = Instant::now();
    store
        .rebuild_views(|_, _| {})
        .await
        .expect("the views rebuilt");
    let rebuilt = started.elapsed();
    println!(
        "{clients} touches written in {:.1} s; every view rebuilt from them in {:.1} s",
        written.as_secs_f64(),
        rebuilt.as_secs_f64()
    );

    let engage = engage::service::Engage::new(
        engage::startup::embedded_ports(&store),
        Arc::clone(&clock),
        Arc::new(processors::openrouter::FallbackWriter::new(None)),
    );
    let manager = User {
        id: "u-bench".into(),
        email: ClientEmail::parse("manager@engage.example").expect("an address"),
        role: Role::Manager,
        stylist_id: None,
    };
    let reader = rusqlite::Connection::open(&path).expect("a reader");
    let from_views = engage.outcomes(&manager).await.expect("the outcomes");
    let from_scan = scan(&reader);
    assert!(
        same(&from_views, &from_scan),
        "the counters disagree with the scan:\n{from_views:#?}\n{from_scan:#?}"
    );
    let touches: u64 = from_views
        .kinds
        .iter()
        .map(|k| k.emailed.trials + k.held_out.trials)
        .sum();
    assert_eq!(touches, clients + demo_touches);

    let scan_time = time(|| {
        let figures = scan(&reader);
        async move {
            std::hint::black_box(figures);
        }
    })
    .await;
    let views_time = time(|| async {
        std::hint::black_box(engage.outcomes(&manager).await.expect("the outcomes"));
    })
    .await;
    let dashboard_time = time(|| async {
        std::hint::black_box(
            engage
                .dashboard(&manager, String::new(), String::new())
                .await
                .expect("the dashboard"),
        );
    })
    .await;
    let cookie = common::session(
        &store,
        clock.as_ref(),
        "manager@engage.example",
        Role::Manager,
        None,
    )
    .await;
    let state = engage::startup::AppState::new(store.clone(), clock, args.addr, &args.web)
        .await
        .expect("the app state");
    let router = engage::startup::router(state);
    let page_time = common::time_page(&router, "/dashboard", &cookie, WARM_UP, SAMPLES).await;

    println!(
        "{:<58} {:>10} {:>8} {:>12}",
        "with one touch per client", "median ms", "p90 ms", "scan / this"
    );
    let rows = [
        (
            "baseline: outcomes from a scan of every decision",
            scan_time,
        ),
        (
            "outcomes from the counters (GET /api/v1/outcomes's data)",
            views_time,
        ),
        ("the dashboard's data, outcomes included", dashboard_time),
        ("GET /dashboard, server-rendered, as a manager", page_time),
    ];
    let mut report = Vec::new();
    for (what, (median, p90)) in rows {
        println!(
            "{what:<58} {median:>10.3} {p90:>8.3} {:>12.0}",
            scan_time.0 / median
        );
        report.push(serde_json::json!({"what": what, "median_ms": median, "p90_ms": p90}));
    }
    let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("outcomes.json");
    std::fs::write(
        &out,
        serde_json::json!({"clients": clients, "rows": report}).to_string(),
    )
    .expect("report written");
}
