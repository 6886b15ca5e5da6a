//! Demo data with a past: a business of `clients` clients replayed over `days` days
//! through the real pipeline, with a clock the replay moves forward.
//!
//! Each demo client's life comes from [`domain::sample::history`] (sign-up, Fixes and
//! purchases on the BG/NBD process, feedback, opens and clicks, unsubscribes). The replay
//! writes it day by day as the app would: clients through the `Records` port, activities
//! through the application service, the stylists' reviews through the service as each
//! stylist, and unsubscribes as the client's own link does. After each step the backend's
//! pipeline runs until it has nothing left to do ([`Pipeline::settle`]), with every
//! processor reading the replay's clock, so scores, drafts, reviews, sends and the
//! dashboard's views all carry the replayed times. Every morning the daily rescore runs.
//!
//! What the replay invents beyond the histories, all drawn from the seed: how quickly
//! each stylist reviews and what they decide, which sent emails are opened and clicked,
//! and that a clicked email sometimes leads to a purchase. The drafts are written by the
//! template and priced as the simulated model [`SIMULATED_MODEL`] would have been; for one
//! day and a half that model is down, the template writes instead, and two drafts fail until
//! they are dead-lettered. No LLM is called and no email leaves the machine.

use crate::service::{Engage, Ports};
use app::service::{EngageService, ServiceError};
use async_trait::async_trait;
use chrono::{DateTime, Days, Duration, NaiveDate, Utc};
use domain::profile::{Activity, EmailConsent, EngagementInput, PurchaseInput};
use domain::sample::{self, Population};
use domain::user::{Role, User};
use domain::{ClientEmail, ClientId, EmailId, EmailStatus, NewClient, StylistId};
use processors::email::OutreachSettings;
use processors::openrouter::FallbackWriter;
use processors::{Clock, DraftRequest, EmailWriter, TemplateWriter, Usage, WriterError, Written};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// The model the replayed drafts are priced as.
pub const SIMULATED_MODEL: &str = "demo/simulated-llm";

/// A clock the replay sets; it never goes backwards.
#[derive(Debug)]
pub struct ReplayClock(Mutex<DateTime<Utc>>);

impl ReplayClock {
    pub fn starting(at: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(at)))
    }

    /// Moves the clock to `at` (or leaves it, if it is already later).
    pub fn set(&self, at: DateTime<Utc>) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now = (*now).max(at);
    }
}

impl Clock for ReplayClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A backend's pipeline, driven step by step.
#[async_trait]
pub trait Pipeline: Send + Sync {
    /// Runs every stage (change capture, events, views, sending) until none has work that
    /// is due at the clock's time; returns how many items it handled.
    async fn settle(&self) -> anyhow::Result<u64>;
}

/// What to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub seed: u64,
    pub days: u32,
    pub clients: u32,
}

impl Plan {
    pub const DEFAULT_SEED: u64 = 0x5EED_CAFE;
    pub const DEFAULT_DAYS: u32 = 90;
}

/// What the replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub days: u32,
    pub clients: u64,
    pub activities: u64,
    /// Activities the service refused (none, unless the histories are wrong).
    pub refused: u64,
    pub unsubscribed: u64,
    pub rescores: u64,
    pub approved: u64,
    pub edited: u64,
    pub rejected: u64,
    pub sent: u64,
    /// Opens and clicks recorded (of the replayed emails, and of the business's other mail).
    pub opened: u64,
    pub clicked: u64,
    /// Items the pipeline handled.
    pub handled: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "replayed {} days: {} clients, {} activities ({} refused), {} unsubscribes, {} rescores; \
             stylists approved {} drafts ({} edited first) and rejected {}; {} emails sent; {} opens and \
             {} clicks recorded; the pipeline handled {} items",
            self.days,
            self.clients,
            self.activities,
            self.refused,
            self.unsubscribed,
            self.rescores,
            self.approved,
            self.edited,
            self.rejected,
            self.sent,
            self.opened,
            self.clicked,
            self.handled
        )
    }
}

/// The writer of the replayed past: the template's words, priced as [`SIMULATED_MODEL`]
/// would have charged; during its outage the template writes as itself, and the first
/// two drafts asked for fail every time they are tried.
pub struct ReplayWriter {
    clock: Arc<ReplayClock>,
    outage: (DateTime<Utc>, DateTime<Utc>),
    failing: Mutex<HashSet<String>>,
}

/// Drafts that fail throughout the outage (and end as dead letters).
const FAILING_DRAFTS: usize = 2;

impl ReplayWriter {
    pub fn new(clock: Arc<ReplayClock>, outage: (DateTime<Utc>, DateTime<Utc>)) -> Self {
        Self {
            clock,
            outage,
            failing: Mutex::new(HashSet::new()),
        }
    }
}

#[async_trait]
impl EmailWriter for ReplayWriter {
    fn name(&self) -> &str {
        SIMULATED_MODEL
    }

    async fn write(&self, request: &DraftRequest) -> Result<Written, WriterError> {
        let mut written = TemplateWriter.write(request).await?;
        let now = self.clock.now();
        if now >= self.outage.0 && now < self.outage.1 {
            // Everything the writer is told, so only the same draft's retries match.
            let key = format!("{request:?}");
            let mut failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
            if failing.contains(&key) || failing.len() < FAILING_DRAFTS {
                failing.insert(key);
                return Err(WriterError::Unavailable(
                    "the model did not answer (a simulated outage in the demo's replayed past)"
                        .into(),
                ));
            }
            return Ok(written);
        }
        // Tokens as a chat model counts them, roughly: a fixed prompt plus the client's
        // details, and four characters a token for the answer.
        let prompt_tokens = 620 + 12 * request.styles.len() as u32;
        let completion_tokens =
            ((written.text.subject.len() + written.text.body_text.len()) / 4) as u32;
        let cost = f64::from(prompt_tokens) * 2.5e-6 + f64::from(completion_tokens) * 10e-6;
        written.writer = SIMULATED_MODEL.to_owned();
        written.prompt_version = "demo-replay-1".to_owned();
        written.usage = Some(Usage {
            prompt_tokens,
            completion_tokens,
            cost: Some(cost),
        });
        Ok(written)
    }
}

/// Delivery for the replayed past: the email is built and counted as sent, and goes
/// nowhere (the demo's clients are not real people).
pub struct Replayed;

#[async_trait]
impl processors::delivery::Delivery for Replayed {
    async fn deliver(
        &self,
        _email: &ports::Outgoing,
        _message: &lettre::Message,
    ) -> Result<(), String> {
        Ok(())
    }
}

/// Who a happening is about: a client by their place in the demo book (before the record
/// exists), or by id.
#[derive(Debug, Clone)]
enum Who {
    Index(u32),
    Id(ClientId),
}

#[derive(Debug, Clone)]
enum Happening {
    Joins(u32),
    Does(Who, Activity),
    Unsubscribes(Who),
    /// The daily rescore.
    Rescore,
    /// A stylist (by place in `demo::STYLISTS`) sits down to review.
    Sitting(usize),
    /// The pipeline catches up.
    Tick,
}

/// What is to happen, in time order (ties in the order they were added).
type Happenings = BTreeMap<(DateTime<Utc>, u64), Happening>;

impl Happening {
    fn is_routine(&self) -> bool {
        matches!(self, Self::Rescore | Self::Sitting(_) | Self::Tick)
    }
}

/// How each demo stylist reviews: when she sits down to it (hour, minute), the chance a
/// waiting draft is reviewed at a sitting, and of rejecting or editing one.
struct Habits {
    sittings: &'static [(u32, u32)],
    diligence: f64,
    reject: f64,
    edit: f64,
}

const HABITS: [Habits; 4] = [
    Habits {
        sittings: &[(8, 30), (13, 0)],
        diligence: 0.85,
        reject: 0.08,
        edit: 0.15,
    },
    Habits {
        sittings: &[(11, 0), (17, 30)],
        diligence: 0.5,
        reject: 0.15,
        edit: 0.3,
    },
    Habits {
        sittings: &[(9, 0), (16, 0)],
        diligence: 0.6,
        reject: 0.1,
        edit: 0.2,
    },
    Habits {
        sittings: &[(18, 30)],
        diligence: 0.5,
        reject: 0.2,
        edit: 0.1,
    },
];

const REJECT_REASONS: [&str; 4] = [
    "Too generic for this client",
    "She is travelling this month; I will call instead",
    "Wrong tone for a long-time client",
    "Already spoke to him about this on the phone",
];

const POSTSCRIPTS: [&str; 5] = [
    "P.S. I have a couple of new pieces in mind that would suit you.",
    "P.S. Let me know if your sizes have changed.",
    "P.S. The new season's colours would look great on you.",
    "P.S. Happy to schedule your next Fix whenever suits you.",
    "P.S. Thank you for the lovely note last time!",
];

/// An RNG for one decision, from the seed and what the decision is about, so the same
/// seed decides the same way whatever order the backend lists things in.
fn rng_for(seed: u64, what: &str, about: &str, at: DateTime<Utc>) -> SmallRng {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (seed, what, about, at.timestamp_millis()).hash(&mut hasher);
    SmallRng::seed_from_u64(hasher.finish())
}

fn at_time(day: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    day.and_hms_opt(hour, minute, 0)
        .expect("a valid time of day")
        .and_utc()
}

/// One replay: its plan, the window it covers, its clock and its writer. Build the
/// backend's pipeline with [`Replay::clock`] and [`Replay::writer`], then [`Replay::run`].
pub struct Replay {
    pub plan: Plan,
    pub clock: Arc<ReplayClock>,
    pub writer: Arc<ReplayWriter>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl Replay {
    /// A replay of `plan.days` days up to `now`.
    pub fn new(plan: Plan, now: DateTime<Utc>) -> Self {
        let first = now.date_naive() - Days::new(u64::from(plan.days));
        let start = at_time(first, 5, 0).min(now);
        // The simulated model is down for a day and a half two thirds of the way through.
        let outage_day = first + Days::new(u64::from(plan.days * 2 / 3));
        let outage = (
            at_time(outage_day, 5, 30),
            at_time(outage_day + Days::new(1), 18, 0),
        );
        let clock = ReplayClock::starting(start);
        let writer = Arc::new(ReplayWriter::new(Arc::clone(&clock), outage));
        Self {
            plan,
            clock,
            writer,
            start,
            end: now,
        }
    }

    /// The demo clients' lives, and the happenings that start them.
    fn histories(&self) -> (Vec<NewClient>, Happenings) {
        let mut clients = Vec::with_capacity(self.plan.clients as usize);
        let mut happenings = BTreeMap::new();
        let mut order = 0u64;
        for index in 0..self.plan.clients {
            let mut rng = SmallRng::seed_from_u64(
                self.plan.seed ^ u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            let identity = crate::demo::identity(&mut rng, index);
            let history = sample::history(&mut rng, self.start, self.end, &Population::DEMO);
            // Clients who joined before the window are written at its start, in order.
            let joined = if history.joined == self.start {
                self.start + Duration::seconds(i64::from(index))
            } else {
                history.joined
            };
            // The id, too, comes from the seed: the policy's holdout draws on it.
            let id = uuid::Builder::from_unix_timestamp_millis(
                joined.timestamp_millis() as u64,
                &rng.random::<[u8; 10]>(),
            )
            .into_uuid();
            clients.push(NewClient {
                id: Some(ClientId::new(id.to_string())),
                name: identity.0,
                email: identity.1,
                stylist_id: identity.2,
                status: history.status,
                profile: history.profile,
            });
            let mut add = |at: DateTime<Utc>, happening| {
                order += 1;
                happenings.insert((at, order), happening);
            };
            add(joined, Happening::Joins(index));
            for (at, activity) in history.later {
                add(at.max(joined), Happening::Does(Who::Index(index), activity));
            }
            if let Some(at) = history.unsubscribes {
                add(at.max(joined), Happening::Unsubscribes(Who::Index(index)));
            }
        }
        (clients, happenings)
    }

    /// Replays the window on `ports`, settling `pipeline` (built with this replay's clock
    /// and writer) after each step; shows progress a day at a time.
    pub async fn run(
        &self,
        ports: &Ports,
        pipeline: &dyn Pipeline,
        outreach: OutreachSettings,
    ) -> anyhow::Result<Summary> {
        use tracing::instrument::WithSubscriber;
        // Each step would log as a stylist's action does: only warnings and progress show.
        self.replay(ports, pipeline, outreach)
            .with_subscriber(crate::telemetry::quiet())
            .await
    }

    async fn replay(
        &self,
        ports: &Ports,
        pipeline: &dyn Pipeline,
        outreach: OutreachSettings,
    ) -> anyhow::Result<Summary> {
        let clock: Arc<dyn Clock> = self.clock.clone();
        let service = Engage::new(ports.clone(), clock, Arc::new(FallbackWriter::new(None)))
            .with_outreach(outreach);
        for (id, name, email) in crate::demo::STYLISTS {
            ports
                .records
                .upsert_stylist(StylistId::new(id), name.to_owned(), email.to_owned())
                .await?;
        }
        let (clients, mut happenings) = self.histories();
        let mut state = State {
            replay: self,
            service,
            ports,
            pipeline,
            clients,
            ids: HashMap::new(),
            seen_sent: HashSet::new(),
            order: u64::MAX / 2,
            summary: Summary::default(),
        };
        let first = self.start.date_naive();
        let days = (self.end.date_naive() - first).num_days().max(0) as u64;
        let mut progress =
            crate::telemetry::Progress::new(days + 1, "replaying the demo's past (days)");
        let outage = self.writer.outage;
        for day in 0..=days {
            let date = first + Days::new(day);
            let day_end = at_time(date, 23, 59).min(self.end);
            // The day's routine: the morning rescore, two review sittings, and while the
            // model is down, a look at the queue every hour (the failing drafts' retries).
            let mut routine = Vec::new();
            if day > 0 {
                routine.push((at_time(date, 6, 0), Happening::Rescore));
            }
            for (n, habits) in HABITS.iter().enumerate() {
                for (hour, minute) in habits.sittings {
                    routine.push((at_time(date, *hour, *minute), Happening::Sitting(n)));
                }
            }
            let mut tick = at_time(date, 5, 30);
            while tick < at_time(date, 20, 0) {
                if tick >= outage.0 && tick <= outage.1 + Duration::hours(1) {
                    routine.push((tick, Happening::Tick));
                }
                tick += Duration::hours(1);
            }
            state.schedule(&mut happenings, routine);
            while let Some(entry) = happenings.first_entry() {
                let at = entry.key().0;
                if at > day_end {
                    break;
                }
                let ((_, _), happening) = entry.remove_entry();
                let routine = happening.is_routine();
                let later = state.happen(at, happening).await?;
                state.schedule(&mut happenings, later);
                if routine {
                    continue;
                }
                // Everything else of this hour, then the pipeline.
                let hour = at.timestamp() / 3600;
                while let Some(entry) = happenings.first_entry() {
                    let next = entry.key().0;
                    if next.timestamp() / 3600 != hour || next > day_end || entry.get().is_routine()
                    {
                        break;
                    }
                    let ((at, _), happening) = entry.remove_entry();
                    state.happen(at, happening).await?;
                }
                state.settle().await?;
            }
            state.step(day_end).await?;
            progress.set(day + 1);
        }
        progress.finish();
        state.summary.days = days as u32 + 1;
        Ok(state.summary)
    }
}

struct State<'a> {
    replay: &'a Replay,
    service: Engage,
    ports: &'a Ports,
    pipeline: &'a dyn Pipeline,
    clients: Vec<NewClient>,
    ids: HashMap<u32, ClientId>,
    seen_sent: HashSet<EmailId>,
    order: u64,
    summary: Summary,
}

impl State<'_> {
    fn clock(&self) -> &ReplayClock {
        &self.replay.clock
    }

    fn seed(&self) -> u64 {
        self.replay.plan.seed
    }

    /// Moves the clock to `at` and lets the pipeline catch up.
    async fn step(&mut self, at: DateTime<Utc>) -> anyhow::Result<()> {
        self.clock().set(at);
        self.settle().await
    }

    async fn settle(&mut self) -> anyhow::Result<()> {
        self.summary.handled += self.pipeline.settle().await?;
        Ok(())
    }

    fn manager() -> User {
        User {
            id: "demo-replay".to_owned(),
            email: ClientEmail::parse("manager@engage.example").expect("a valid address"),
            role: Role::Manager,
            stylist_id: None,
        }
    }

    /// The morning's rescore of every client, as the daily schedule runs it.
    async fn rescore(&mut self) -> anyhow::Result<()> {
        let (_, queued) =
            crate::ops::queue_rescores(self.ports.ops.as_ref(), self.clock(), |_| {}).await?;
        self.summary.rescores += queued;
        self.settle().await
    }

    fn client_id(&self, who: &Who) -> Option<ClientId> {
        match who {
            Who::Index(index) => self.ids.get(index).cloned(),
            Who::Id(id) => Some(id.clone()),
        }
    }

    /// Adds happenings to come (those after the window's end never come).
    fn schedule(&mut self, happenings: &mut Happenings, later: Vec<(DateTime<Utc>, Happening)>) {
        for (at, happening) in later {
            if at <= self.replay.end {
                self.order += 1;
                happenings.insert((at, self.order), happening);
            }
        }
    }

    /// Makes one happening, due `at`, happen; returns what it leads to later (a
    /// sitting's sends lead to opens, clicks and purchases). The routine ones (rescore,
    /// sitting, tick) leave the pipeline idle; the others leave that to the caller.
    async fn happen(
        &mut self,
        at: DateTime<Utc>,
        happening: Happening,
    ) -> anyhow::Result<Vec<(DateTime<Utc>, Happening)>> {
        self.clock().set(at);
        let now = self.clock().now();
        match happening {
            Happening::Joins(index) => {
                let client = self.clients[index as usize].clone();
                match self.ports.records.create_client(client, now).await {
                    Ok(created) => {
                        self.ids.insert(index, created.id);
                        self.summary.clients += 1;
                    }
                    Err(ports::CreateClientError::Invalid(errors)) => {
                        anyhow::bail!("demo client {index} was refused: {errors}")
                    }
                    Err(ports::CreateClientError::Store(error)) => return Err(error.into()),
                }
            }
            Happening::Does(who, activity) => {
                let Some(id) = self.client_id(&who) else {
                    return Ok(Vec::new());
                };
                match self
                    .service
                    .record_activity(&Self::manager(), id.clone(), activity.clone(), None)
                    .await
                {
                    Ok(_) => {
                        self.summary.activities += 1;
                        match activity {
                            Activity::EmailOpen(_) => self.summary.opened += 1,
                            Activity::EmailClick(_) => self.summary.clicked += 1,
                            _ => {}
                        }
                    }
                    Err(ServiceError::Invalid(errors)) => {
                        tracing::warn!(client_id = %id, %errors, "a replayed activity was refused");
                        self.summary.refused += 1;
                    }
                    Err(error) => anyhow::bail!("recording a replayed activity failed: {error}"),
                }
            }
            Happening::Rescore => self.rescore().await?,
            Happening::Sitting(n) => return self.sitting(at, n).await,
            Happening::Tick => self.settle().await?,
            Happening::Unsubscribes(who) => {
                let Some(id) = self.client_id(&who) else {
                    return Ok(Vec::new());
                };
                crate::unsubscribe::own_choice(
                    self.ports.records.as_ref(),
                    id,
                    now,
                    |at| EmailConsent::Unsubscribed { at },
                    |consent| matches!(consent, EmailConsent::Unsubscribed { .. }),
                )
                .await
                .map_err(|e| anyhow::anyhow!("a replayed unsubscribe failed: {e}"))?;
                self.summary.unsubscribed += 1;
            }
        }
        Ok(Vec::new())
    }

    /// A review sitting: the `n`-th stylist goes through the drafts waiting for her,
    /// reviewing some (approving, editing first, or rejecting); then what she approved is
    /// sent, and the clients open, click and sometimes buy.
    async fn sitting(
        &mut self,
        at: DateTime<Utc>,
        n: usize,
    ) -> anyhow::Result<Vec<(DateTime<Utc>, Happening)>> {
        // The pipeline is idle: it ran after whatever happened last.
        self.clock().set(at);
        let mut reviewed = 0;
        let (id, _, email) = crate::demo::STYLISTS[n % crate::demo::STYLISTS.len()];
        let stylist = User {
            id: format!("demo-replay-{id}"),
            email: ClientEmail::parse(email).expect("a valid address"),
            role: Role::Stylist,
            stylist_id: Some(StylistId::new(id)),
        };
        let habits = &HABITS[n % HABITS.len()];
        let mut drafts = self
            .service
            .list_emails(&stylist, Some(EmailStatus::Drafted), 200)
            .await
            .map_err(|e| anyhow::anyhow!("listing drafts: {e}"))?;
        drafts.sort_by(|a, b| (a.created_at, &a.client_name).cmp(&(b.created_at, &b.client_name)));
        for draft in drafts {
            let about = format!("{} at {}", draft.client_name, at.timestamp());
            let mut rng = rng_for(self.seed(), "review", &about, draft.created_at);
            if rng.random::<f64>() >= habits.diligence {
                continue;
            }
            reviewed += 1;
            // Reviews are spread over the sitting's hour.
            self.clock()
                .set(at + Duration::minutes(rng.random_range(0..60)));
            let roll = rng.random::<f64>();
            let outcome = if roll < habits.reject {
                let reason = REJECT_REASONS[rng.random_range(0..REJECT_REASONS.len())];
                self.service
                    .reject_email(&stylist, draft.id.clone(), reason.to_owned())
                    .await
                    .map(|()| self.summary.rejected += 1)
            } else {
                let mut edited = Ok(());
                if roll < habits.reject + habits.edit {
                    let detail = self.service.email_detail(&stylist, draft.id.clone()).await;
                    edited = match detail {
                        Ok(detail) => {
                            let postscript = POSTSCRIPTS[rng.random_range(0..POSTSCRIPTS.len())];
                            let body = format!("{}\n\n{postscript}", detail.body_text);
                            self.service
                                .edit_email(
                                    &stylist,
                                    draft.id.clone(),
                                    detail.summary.subject,
                                    body,
                                )
                                .await
                                .map(|()| self.summary.edited += 1)
                        }
                        Err(error) => Err(error),
                    };
                }
                match edited {
                    Ok(()) => self
                        .service
                        .approve_emails(&stylist, vec![draft.id.clone()], "now")
                        .await
                        .map(|_| self.summary.approved += 1),
                    Err(error) => Err(error),
                }
            };
            match outcome {
                Ok(()) => {}
                // The client may have unsubscribed since the draft was written: the
                // service withdrew it, as it would for a stylist.
                Err(ServiceError::Refused { .. } | ServiceError::Conflict(_)) => {}
                Err(error) => anyhow::bail!("a replayed review failed: {error}"),
            }
        }
        if reviewed == 0 {
            return Ok(Vec::new());
        }
        self.step(at + Duration::minutes(60)).await?;
        self.responses().await
    }

    /// What the clients do with the emails sent since the last look: about half open one
    /// (within a day), some of those click, and a click sometimes leads to a purchase
    /// within the week; a few unsubscribe.
    async fn responses(&mut self) -> anyhow::Result<Vec<(DateTime<Utc>, Happening)>> {
        let sent = self
            .service
            .list_emails(&Self::manager(), Some(EmailStatus::Sent), 200)
            .await
            .map_err(|e| anyhow::anyhow!("listing sent emails: {e}"))?;
        let now = self.clock().now();
        let stamp = |at: DateTime<Utc>| EngagementInput {
            at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let mut later = Vec::new();
        for email in sent {
            // A purchase within the week after `after`.
            let purchase = |rng: &mut SmallRng, after: DateTime<Utc>| {
                let on = after + Duration::hours(rng.random_range(20..160));
                let happening = Happening::Does(
                    Who::Id(email.client_id.clone()),
                    Activity::Purchase(PurchaseInput {
                        purchased_on: on.date_naive().format("%Y-%m-%d").to_string(),
                        amount: format!("{}.00", rng.random_range(40..180)),
                    }),
                );
                (on, happening)
            };
            if !self.seen_sent.insert(email.id.clone()) {
                continue;
            }
            self.summary.sent += 1;
            let mut rng = rng_for(
                self.seed(),
                "responses",
                &email.client_name,
                email.created_at,
            );
            let who = || Who::Id(email.client_id.clone());
            if rng.random::<f64>() < 0.02 {
                let at = now + Duration::minutes(rng.random_range(30..2880));
                later.push((at, Happening::Unsubscribes(who())));
                continue;
            }
            if rng.random::<f64>() >= 0.55 {
                continue;
            }
            let opened = now + Duration::minutes(rng.random_range(10..1800));
            later.push((
                opened,
                Happening::Does(who(), Activity::EmailOpen(stamp(opened))),
            ));
            if rng.random::<f64>() >= 0.4 {
                // One in ten who only read it orders within the week anyway.
                if rng.random::<f64>() < 0.1 {
                    later.push(purchase(&mut rng, opened));
                }
                continue;
            }
            let clicked = opened + Duration::minutes(rng.random_range(1..90));
            later.push((
                clicked,
                Happening::Does(who(), Activity::EmailClick(stamp(clicked))),
            ));
            if rng.random::<f64>() < 0.6 {
                later.push(purchase(&mut rng, clicked));
            }
        }
        Ok(later)
    }
}

/// The embedded pipeline driven step by step: the stream processor, the email processor
/// and the sender over the SQLite store, reading the replay's clock.
pub struct EmbeddedPipeline {
    stream: processors::embedded::StreamProcessor,
    email: processors::embedded::EmailProcessor,
    sender: processors::embedded::Sender,
}

impl EmbeddedPipeline {
    pub fn new(store: &store::Store, replay: &Replay, outreach: OutreachSettings) -> Self {
        let clock: Arc<dyn Clock> = replay.clock.clone();
        let config = processors::embedded::EmailProcessorConfig {
            policy: outreach.policy,
            window_days: outreach.window_days,
            ..Default::default()
        };
        Self {
            stream: processors::embedded::StreamProcessor::new(store.clone(), Arc::clone(&clock)),
            email: processors::embedded::EmailProcessor::new(
                store.clone(),
                Arc::clone(&clock),
                replay.writer.clone(),
                config,
            ),
            sender: processors::embedded::Sender {
                store: store.clone(),
                core: Arc::new(replay_sender(Arc::new(store.clone()), clock)),
                visibility: Duration::seconds(60),
                max_receives: 5,
            },
        }
    }
}

/// The sender of the replayed past: consent checked and the message built as always,
/// delivered to [`Replayed`].
pub fn replay_sender(
    sending: Arc<dyn ports::Sending>,
    clock: Arc<dyn Clock>,
) -> processors::sender::SenderCore {
    // The messages go nowhere, so their unsubscribe links are signed with a key of their own.
    let key: [u8; 32] = rand::rngs::StdRng::from_os_rng().random();
    processors::sender::SenderCore::new(
        sending,
        Arc::new(Replayed),
        processors::delivery::UnsubscribeLinks::new(key.to_vec(), "https://engage.example"),
        "engage.example".to_owned(),
        clock,
        3,
    )
}

#[async_trait]
impl Pipeline for EmbeddedPipeline {
    async fn settle(&self) -> anyhow::Result<u64> {
        let mut total = 0u64;
        loop {
            let round = self.stream.process_batch().await?
                + self.email.process_batch().await?
                + self.sender.run_once().await?;
            if round == 0 {
                return Ok(total);
            }
            total += round as u64;
        }
    }
}

/// Replays `plan` on an empty embedded store, up to `now`.
pub async fn on_store(
    store: &store::Store,
    plan: Plan,
    outreach: OutreachSettings,
    now: DateTime<Utc>,
) -> anyhow::Result<Summary> {
    anyhow::ensure!(
        store.client_count().await? == 0,
        "the database already has clients: a replayed past needs an empty one (use --days 0 to add clients as of now)"
    );
    let replay = Replay::new(plan, now);
    let pipeline = EmbeddedPipeline::new(store, &replay, outreach);
    let ports = crate::startup::embedded_ports(store);
    // A replay that fails is started again on an empty database, so its thousands of
    // commits need not each wait for the disk; the end is made durable below.
    store.set_durable(false).await?;
    let replayed = replay.run(&ports, &pipeline, outreach).await;
    store.set_durable(true).await?;
    store.checkpoint_wal().await?;
    replayed
}
