//! The demo's replayed past: a business driven through the real pipeline with the
//! replay's clock, on the embedded store (and on DynamoDB with moto), read back through
//! the one application service as the manager's dashboard shows it.

use app::service::EngageService;
use chrono::{DateTime, Utc};
use domain::dashboard::Dashboard;
use domain::user::{Role, User};
use domain::{Band, ClientEmail};
use engage::replay::{Plan, SIMULATED_MODEL, Summary};
use engage::service::Engage;
use processors::Clock;
use processors::email::OutreachSettings;
use processors::openrouter::FallbackWriter;
use std::sync::Arc;
use store::Store;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-30T18:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn manager() -> User {
    User {
        id: "u-manager".into(),
        email: ClientEmail::parse("manager@engage.example").unwrap(),
        role: Role::Manager,
        stylist_id: None,
    }
}

/// A clock standing at the end of the replay.
struct At(DateTime<Utc>);

impl Clock for At {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

async fn replayed(dir: &std::path::Path, plan: Plan) -> (Store, Summary) {
    let store = Store::open(dir.join("engage.db")).unwrap();
    let summary = engage::replay::on_store(&store, plan, OutreachSettings::default(), now())
        .await
        .unwrap();
    (store, summary)
}

/// The dashboard of the last `days` days, as the manager sees it.
async fn dashboard(ports: engage::service::Ports, days: u32) -> Dashboard {
    let service = Engage::new(
        ports,
        Arc::new(At(now())),
        Arc::new(FallbackWriter::new(None)),
    );
    let to = now().date_naive();
    let from = to - chrono::Days::new(u64::from(days - 1));
    service
        .dashboard(&manager(), from.to_string(), to.to_string())
        .await
        .unwrap()
}

/// On how many days each time series has something to show.
fn days_with_data(dashboard: &Dashboard) -> [(&'static str, usize); 5] {
    let count = |f: &dyn Fn(&domain::dashboard::EmailDay) -> bool| {
        dashboard.email_days.iter().filter(|d| f(d)).count()
    };
    [
        (
            "band mix",
            dashboard
                .band_days
                .iter()
                .filter(|d| d.mix.total() > 0)
                .count(),
        ),
        (
            "emails",
            count(&|d| d.drafted + d.approved + d.sent + d.rejected > 0),
        ),
        ("draft quality", count(&|d| d.approval_rate().is_some())),
        ("review time", count(&|d| d.median_review_minutes.is_some())),
        ("LLM cost", count(&|d| d.cost_usd > 0.0)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_runs_past_fills_every_chart_on_more_than_30_days() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Plan {
        seed: Plan::DEFAULT_SEED,
        days: 90,
        clients: 300,
    };
    let (store, summary) = replayed(dir.path(), plan).await;
    eprintln!("{summary}");
    assert_eq!(summary.clients, 300);
    assert_eq!(summary.refused, 0, "every replayed activity is valid");
    assert!(summary.activities > 500, "{summary}");
    assert!(
        summary.approved > 30 && summary.rejected > 3 && summary.edited > 3,
        "{summary}"
    );
    assert!(summary.sent > 30 && summary.unsubscribed > 0, "{summary}");

    let dashboard = dashboard(engage::startup::embedded_ports(&store), 91).await;
    for (chart, days) in days_with_data(&dashboard) {
        assert!(days > 30, "{chart} has data on {days} days");
    }
    // Most clients are Steady or Thriving; a minority Cooling or At risk.
    let bands = dashboard.bands;
    let share = |band| bands.get(band) as f64 / bands.total() as f64;
    assert_eq!(bands.total(), 300);
    assert!(
        share(Band::Thriving) + share(Band::Steady) > 0.6,
        "{bands:?}"
    );
    assert!(
        share(Band::AtRisk) < 0.2 && share(Band::AtRisk) > 0.03,
        "{bands:?}"
    );
    assert!(share(Band::Cooling) > 0.05, "{bands:?}");
    // The simulated model wrote most drafts; the template wrote during its outage, and
    // a draft or two failed until they were dead-lettered.
    let writers: Vec<_> = dashboard
        .writers
        .iter()
        .map(|w| w.writer.as_str())
        .collect();
    assert!(
        writers.contains(&SIMULATED_MODEL) && writers.contains(&"template"),
        "{writers:?}"
    );
    assert!(
        (1..=2).contains(&dashboard.health.dead_letters),
        "{:?}",
        dashboard.health
    );
    // The outreach compares emailed clients with held-out ones.
    let outcomes = &dashboard.outcomes;
    let touches: u64 = outcomes
        .kinds
        .iter()
        .map(|k| k.emailed.trials + k.held_out.trials)
        .sum();
    assert!(touches > 50, "{outcomes:?}");
    assert!(
        outcomes.kinds.iter().any(|k| k.held_out.trials > 0),
        "{outcomes:?}"
    );
    // Every stylist has a book, sent emails and reviews in the range.
    for stylist in &dashboard.stylists {
        assert!(stylist.clients > 50 && stylist.sent > 0, "{stylist:?}");
        assert!(stylist.median_review_minutes.is_some(), "{stylist:?}");
    }

    // The past is the database's: seeding it again is refused, naming why.
    let again = engage::replay::on_store(&store, plan, OutreachSettings::default(), now()).await;
    let error = again.unwrap_err().to_string();
    assert!(error.contains("needs an empty one"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_replays_the_same_past_and_another_seed_another() {
    let plan = Plan {
        seed: 42,
        days: 35,
        clients: 80,
    };
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (first, first_summary) = replayed(a.path(), plan).await;
    let (second, second_summary) = replayed(b.path(), plan).await;
    assert_eq!(first_summary, second_summary);
    assert_eq!(
        first.view_rows().await.unwrap(),
        second.view_rows().await.unwrap()
    );
    let (other, other_summary) = replayed(c.path(), Plan { seed: 43, ..plan }).await;
    assert_ne!(first_summary, other_summary);
    assert_ne!(
        first.view_rows().await.unwrap(),
        other.view_rows().await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_past_replays_on_aws_with_the_same_figures() {
    use engage_aws::bootstrap::{QueueSettings, bootstrap};
    use engage_aws::{Aws, moto::Moto};
    let plan = Plan {
        // A seed whose week has a draft approved and sent and one rejected (moto's
        // transactions copy the whole table, so a longer past takes minutes there).
        seed: 11,
        days: 6,
        clients: 16,
    };
    let moto = Moto::start().expect("moto_server");
    let aws = Aws::at_endpoint(&moto.endpoint, "replay").await;
    let resources = bootstrap(&aws, &QueueSettings::default(), &|_| {})
        .await
        .expect("bootstrap");
    let started = std::time::Instant::now();
    let on_aws = engage::aws::replay(&aws, &resources, plan, OutreachSettings::default(), now())
        .await
        .unwrap();
    eprintln!(
        "on AWS in {:.1} s: {on_aws}",
        started.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().unwrap();
    let (store, on_sqlite) = replayed(dir.path(), plan).await;
    eprintln!("on SQLite: {on_sqlite}");
    assert_eq!(on_aws.clients, u64::from(plan.clients));
    assert_eq!(on_aws.refused, 0);

    let aws_dashboard = dashboard(engage::aws::ports(&aws, &resources), 7).await;
    let sqlite_dashboard = dashboard(engage::startup::embedded_ports(&store), 7).await;
    eprintln!(
        "AWS {:?}\nSQLite {:?}",
        days_with_data(&aws_dashboard),
        days_with_data(&sqlite_dashboard)
    );
    assert_eq!(aws_dashboard.bands, sqlite_dashboard.bands);
    assert_eq!(aws_dashboard.band_days, sqlite_dashboard.band_days);
    // Costs are sums of floating-point numbers, added in another order on each backend.
    let rounded = |d: &Dashboard| {
        d.email_days
            .iter()
            .map(|day| domain::dashboard::EmailDay {
                cost_usd: (day.cost_usd * 1e9).round() / 1e9,
                ..*day
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(rounded(&aws_dashboard), rounded(&sqlite_dashboard));
    assert_eq!(aws_dashboard.writers, sqlite_dashboard.writers);
    assert_eq!(aws_dashboard.stylists, sqlite_dashboard.stylists);
    assert_eq!(aws_dashboard.outcomes, sqlite_dashboard.outcomes);
    assert!(on_aws.sent >= 1 && on_aws.rejected >= 1, "{on_aws}");
    assert_eq!(
        Summary {
            handled: 0,
            ..on_aws
        },
        Summary {
            handled: 0,
            ..on_sqlite
        }
    );

    // A replayed past needs an empty table.
    let again =
        engage::aws::replay(&aws, &resources, plan, OutreachSettings::default(), now()).await;
    assert!(
        again
            .unwrap_err()
            .to_string()
            .contains("needs an empty one")
    );
}
