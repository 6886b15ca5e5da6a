//! The dashboard shows the same figures on both backends for the same history.
//!
//! One scripted history (four days: clients added with different pasts, drafts edited,
//! approved, rejected and sent, a purchase, a client moved to another book) is played
//! through the one application service on the embedded store and on DynamoDB (moto), with
//! the same scripted clock. SQLite keeps its views in its transactions; on AWS the stream
//! handler publishes view facts to the topic and the views consumer (its own queue)
//! applies them. After every step the AWS figures must reach the SQLite ones; then the
//! AWS views are rebuilt from the table and must come out the same again.

use app::service::EngageService;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use domain::dashboard::DateRange;
use domain::outcomes::TouchCounts;
use domain::profile::{FixInput, PurchaseInput};
use domain::user::{Role, User};
use domain::view_facts::DashboardFigures;
use domain::{ClientEmail, ClientId, ClientInput, ProfileInput, StylistId};
use engage::service::Engage;
use engage_aws::bootstrap::{QueueSettings, bootstrap};
use engage_aws::{Aws, moto::Moto, poll};
use ports::{Outgoing, Records, Views};
use processors::delivery::{Delivery, UnsubscribeLinks};
use processors::embedded::EmailProcessorConfig;
use processors::embedded::Sender;
use processors::embedded::{EmailProcessor, StreamProcessor};
use processors::openrouter::FallbackWriter;
use processors::sender::SenderCore;
use processors::{Clock, EmailCore, TemplateWriter};
use std::sync::{Arc, Mutex};
use store::Store;
use tokio_util::sync::CancellationToken;

/// The scripted clock both backends run on.
#[derive(Clone)]
struct Script(Arc<Mutex<DateTime<Utc>>>);

impl Clock for Script {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

impl Script {
    fn on_day(&self, day: u32) {
        *self.0.lock().unwrap() = Utc.with_ymd_and_hms(2026, 3, day, 9, 30, 0).unwrap();
    }
}

/// The network edge: every email is accepted.
struct Accepting;

#[async_trait::async_trait]
impl Delivery for Accepting {
    async fn deliver(&self, _email: &Outgoing, _message: &lettre::Message) -> Result<(), String> {
        Ok(())
    }
}

fn sender_core(sending: Arc<dyn ports::Sending>, clock: Arc<dyn Clock>) -> Arc<SenderCore> {
    Arc::new(SenderCore::new(
        sending,
        Arc::new(Accepting),
        UnsubscribeLinks::new(b"parity-key".to_vec(), "http://127.0.0.1:3000"),
        "engage.example".into(),
        clock,
        3,
    ))
}

fn manager() -> User {
    User {
        id: "u-manager".into(),
        email: ClientEmail::parse("manager@engage.example").unwrap(),
        role: Role::Manager,
        stylist_id: None,
    }
}

fn range() -> DateRange {
    let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    DateRange {
        from: day(1),
        to: day(5),
    }
}

/// A client of `stylist` whose last Fix was `days_ago` days before the script's first day,
/// signed up long before; or (`None`) one who signs up now (and is welcomed).
fn client(name: &str, stylist: &str, opted_in: bool, days_ago: Option<i64>) -> ClientInput {
    let first = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    let on = |days: i64| (first - Duration::days(days)).to_string();
    ClientInput {
        name: name.into(),
        email: format!("{}@example.com", name.to_lowercase()),
        stylist_id: stylist.into(),
        status: None,
        profile: ProfileInput {
            email_opt_in: opted_in,
            signed_up_on: days_ago.map(|_| on(500)),
            fixes: days_ago
                .map(|days| {
                    vec![FixInput {
                        delivered_on: on(days),
                        items_sent: 5,
                        items_kept: 3,
                        order_value: "180.00".into(),
                    }]
                })
                .unwrap_or_default(),
            ..ProfileInput::default()
        },
    }
}

/// One backend under the script: the service over its ports, and a way to run its
/// pipeline (SQLite: to the end, here and now; AWS: pollers that run by themselves).
struct Backend {
    engage: Engage,
    views: Arc<dyn Views>,
    drain: Option<Box<dyn Fn() -> futures_util::future::BoxFuture<'static, ()>>>,
}

impl Backend {
    async fn settle(&self) {
        if let Some(drain) = &self.drain {
            drain().await;
        }
    }

    /// The dashboard's figures and the outcome counters, in a stable order.
    async fn figures(&self) -> Figures {
        let mut touches: Vec<(String, TouchCounts)> = self
            .views
            .touch_counts()
            .await
            .unwrap()
            .into_iter()
            .map(|(g, c)| (format!("{g:?}"), c))
            .collect();
        touches.sort_by(|a, b| a.0.cmp(&b.0));
        Figures {
            dashboard: self.views.dashboard_figures(range()).await.unwrap(),
            touches,
        }
    }
}

#[derive(Debug, PartialEq)]
struct Figures {
    dashboard: DashboardFigures,
    touches: Vec<(String, TouchCounts)>,
}

async fn stylists(records: &dyn Records) {
    for (id, name) in [("st-1", "Maya Okafor"), ("st-2", "Jonas Lindqvist")] {
        records
            .upsert_stylist(
                StylistId::new(id),
                name.into(),
                format!("{id}@engage.example"),
            )
            .await
            .unwrap();
    }
}

fn sqlite(store: &Store, clock: &Script) -> Backend {
    let clock: Arc<dyn Clock> = Arc::new(clock.clone());
    let drain = {
        let (store, clock) = (store.clone(), Arc::clone(&clock));
        move || {
            let (store, clock) = (store.clone(), Arc::clone(&clock));
            Box::pin(async move {
                let stream = StreamProcessor::new(store.clone(), Arc::clone(&clock));
                let email = EmailProcessor::new(
                    store.clone(),
                    Arc::clone(&clock),
                    Arc::new(TemplateWriter),
                    EmailProcessorConfig::without_holdout(),
                );
                let sender = Sender {
                    store: store.clone(),
                    core: sender_core(Arc::new(store.clone()), clock),
                    visibility: chrono::Duration::seconds(30),
                    max_receives: 5,
                };
                loop {
                    let published = stream.process_batch().await.unwrap();
                    let handled = email.process_batch().await.unwrap();
                    let sent = sender.run_once().await.unwrap();
                    if published == 0 && handled == 0 && sent == 0 {
                        break;
                    }
                }
            }) as futures_util::future::BoxFuture<'static, ()>
        }
    };
    Backend {
        engage: Engage::new(
            engage::startup::embedded_ports(store),
            clock,
            Arc::new(FallbackWriter::new(None)),
        ),
        views: Arc::new(store.clone()),
        drain: Some(Box::new(drain)),
    }
}

/// The id of the newest email of the client called `name`.
async fn email_of(backend: &Backend, name: &str) -> domain::EmailId {
    backend
        .engage
        .list_emails(&manager(), None, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.client_name == name)
        .unwrap_or_else(|| panic!("no email to {name}"))
        .id
}

async fn client_of(backend: &Backend, name: &str) -> ClientId {
    let page = backend
        .engage
        .list_clients(&manager(), domain::views::ClientQuery::default())
        .await
        .unwrap();
    page.clients
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no client {name}"))
        .id
}

/// One step of the script, on one backend.
async fn step(backend: &Backend, clock: &Script, day: u32) {
    clock.on_day(day);
    let me = manager();
    let engage = &backend.engage;
    match day {
        1 => {
            for input in [
                client("Ada", "st-1", true, None),
                client("Bea", "st-1", true, None),
                client("Cy", "st-1", true, Some(120)),
                client("Dee", "st-2", true, None),
                client("Eve", "st-2", false, Some(60)),
            ] {
                engage.create_client(&me, input).await.unwrap();
            }
        }
        2 => {
            let ada = email_of(backend, "Ada").await;
            engage
                .edit_email(
                    &me,
                    ada.clone(),
                    "We miss you, Ada".into(),
                    "Your next Fix is ready when you are.".into(),
                )
                .await
                .unwrap();
            let dee = email_of(backend, "Dee").await;
            engage
                .approve_emails(&me, vec![ada, dee], "now")
                .await
                .unwrap();
            let bea = email_of(backend, "Bea").await;
            engage
                .reject_email(&me, bea, "Not the right moment.".into())
                .await
                .unwrap();
        }
        3 => {
            let bea = client_of(backend, "Bea").await;
            engage
                .record_activity(
                    &me,
                    bea,
                    domain::profile::Activity::Purchase(PurchaseInput {
                        purchased_on: "2026-03-03".into(),
                        amount: "89.00".into(),
                    }),
                    None,
                )
                .await
                .unwrap();
            let cy = client_of(backend, "Cy").await;
            engage
                .record_activity(
                    &me,
                    cy,
                    domain::profile::Activity::Fix(FixInput {
                        delivered_on: "2026-03-03".into(),
                        items_sent: 5,
                        items_kept: 5,
                        order_value: "320.00".into(),
                    }),
                    None,
                )
                .await
                .unwrap();
        }
        4 => {
            let eve = client_of(backend, "Eve").await;
            let detail = engage.client_detail(&me, eve.clone()).await.unwrap();
            let mut edit = domain::ClientEdit::of(&detail.client);
            edit.stylist_id = "st-1".into();
            engage
                .update_client(&me, eve, detail.client.version, edit)
                .await
                .unwrap();
            let ada = client_of(backend, "Ada").await;
            engage
                .record_activity(
                    &me,
                    ada,
                    domain::profile::Activity::Fix(FixInput {
                        delivered_on: "2026-03-04".into(),
                        items_sent: 5,
                        items_kept: 4,
                        order_value: "240.00".into(),
                    }),
                    None,
                )
                .await
                .unwrap();
        }
        _ => unreachable!(),
    }
    backend.settle().await;
}

/// Waits up to a minute for the AWS figures to equal `expected`.
async fn reaches(aws: &Backend, expected: &Figures, what: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let figures = aws.figures().await;
        if &figures == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: the AWS views never reached SQLite's\nSQLite: {expected:#?}\nAWS: {figures:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_same_figures_on_sqlite_and_on_aws_for_one_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("engage.db")).unwrap();
    stylists(&store).await;
    let sqlite_clock = Script(Arc::new(Mutex::new(Utc::now())));
    let embedded = sqlite(&store, &sqlite_clock);

    let moto = Moto::start().expect("moto_server");
    let aws = Aws::at_endpoint(&moto.endpoint, "parity").await;
    let resources = bootstrap(&aws, &QueueSettings::default(), &|_| {})
        .await
        .expect("bootstrap");
    let table = aws.store();
    stylists(&table).await;
    let aws_clock = Script(Arc::new(Mutex::new(Utc::now())));
    let clock: Arc<dyn Clock> = Arc::new(aws_clock.clone());
    let core = Arc::new(
        EmailCore::new(
            Arc::new(table.clone()),
            Arc::clone(&clock),
            Arc::new(TemplateWriter),
            domain::policy::PolicySettings::without_holdout(),
        )
        .with_outcomes(Arc::new(table.clone()), 30),
    );
    let shutdown = CancellationToken::new();
    let pollers = poll::spawn_pollers(
        &aws,
        &resources,
        core,
        Some(sender_core(Arc::new(table.clone()), Arc::clone(&clock))),
        &Default::default(),
        &shutdown,
    );
    let on_aws = Backend {
        engage: Engage::new(
            engage::aws::ports(&aws, &resources),
            clock,
            Arc::new(FallbackWriter::new(None)),
        ),
        views: Arc::new(table.clone()),
        drain: None,
    };

    for day in 1..=4 {
        step(&embedded, &sqlite_clock, day).await;
        let expected = embedded.figures().await;
        step(&on_aws, &aws_clock, day).await;
        reaches(&on_aws, &expected, &format!("day {day}")).await;
    }

    // The history really is varied: every kind of figure has something in it.
    let figures = embedded.figures().await;
    let expected = &figures.dashboard;
    let total =
        |f: fn(&domain::dashboard::EmailDay) -> u64| expected.email_days.iter().map(f).sum::<u64>();
    assert_eq!(expected.bands.total(), 5, "{expected:#?}");
    assert!(
        total(|d| d.drafted) >= 3 && total(|d| d.approved) == 2 && total(|d| d.sent) == 2,
        "{expected:#?}"
    );
    assert!(
        expected.writers.iter().any(|w| w.edited == 1),
        "{expected:#?}"
    );
    let moved_days = expected
        .band_days
        .windows(2)
        .filter(|w| w[0].mix != w[1].mix)
        .count();
    assert!(
        moved_days >= 1,
        "the band mix changed over the days: {expected:#?}"
    );
    // The welcomes of Ada and Bea converted (a Fix, a purchase), Dee's did not; Cy's
    // celebration had nothing after it.
    let welcome = figures
        .touches
        .iter()
        .find(|(group, _)| group.contains("Welcome"))
        .map(|(_, counts)| counts.clone())
        .unwrap();
    assert_eq!(
        (welcome.touches, welcome.converted, welcome.purchases),
        (3, 2, 2),
        "{figures:#?}"
    );
    assert_eq!(welcome.value_cents, 8_900 + 24_000);
    let maya = expected
        .stylists
        .iter()
        .find(|s| s.stylist_id == "st-1")
        .unwrap();
    assert_eq!(maya.clients, 4, "Eve moved to Maya's book: {expected:#?}");

    // Rebuilt from the table alone, the AWS views are the same again.
    let before = table.view_lines().await.unwrap();
    let facts = table.rebuild_views(&|_, _| {}).await.unwrap();
    assert!(facts > 0);
    assert_eq!(table.view_lines().await.unwrap(), before);
    assert_eq!(on_aws.figures().await, figures);

    shutdown.cancel();
    for poller in pollers {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), poller).await;
    }
}
