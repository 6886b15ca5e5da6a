//! The email processor: consumes domain events, rescores the client, asks the policy
//! whether to draft, has a writer draft, and records it all exactly once per event.

use crate::writer::{DraftRequest, EmailWriter};
use crate::{Clock, ProcessError};
use domain::bgnbd::BgNbdParams;
use domain::outcomes::{self, DecisionOutcome, OutcomeSettings};
use domain::policy::{Decision, PolicyInput, PolicySettings, decide};
use domain::score::engagement_score;
use domain::{DomainEvent, EventKind, event::EVENT_SCHEMA_VERSION};
use futures_util::future::join_all;
use ports::{Effect, EventContext, Model, NewDraft, NewScore, Outcome, Records};
use std::sync::Arc;

fn first_word(name: Option<&str>) -> String {
    name.and_then(|n| n.split_whitespace().next())
        .unwrap_or("Your stylist")
        .to_owned()
}

/// What the writer is told: the first name, the latest note, never an address or an id.
fn draft_request(
    kind: domain::EmailKind,
    client: &domain::Client,
    stylist_first_name: &str,
    band: domain::Band,
    instruction: Option<String>,
    variant: u32,
    today: chrono::NaiveDate,
) -> DraftRequest {
    let profile = &client.profile;
    DraftRequest {
        kind,
        client_first_name: client.name.first_name().to_owned(),
        stylist_first_name: stylist_first_name.to_owned(),
        band,
        recent_note: profile
            .feedback()
            .iter()
            .rev()
            .find_map(|f| f.note().map(str::to_owned)),
        styles: profile
            .style()
            .styles
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        days_since_last_order: profile
            .purchase_dates()
            .max()
            .map(|last| (today - last).num_days().max(0) as u32),
        last_fix_kept: profile
            .fixes()
            .last()
            .map(|f| (f.items_kept(), f.items_sent())),
        instruction,
        variant,
    }
}

pub(crate) fn check_version(event: &DomainEvent) -> Result<(), ProcessError> {
    if event.schema_version == EVENT_SCHEMA_VERSION {
        Ok(())
    } else {
        Err(ProcessError::Malformed(format!(
            "schema version {}",
            event.schema_version
        )))
    }
}
/// How the pipeline reaches out, as the operator sets it: the policy's limits and the
/// outcomes' attribution window. Read from the environment on every runtime (the server
/// and the email function alike), so one setting means the same everywhere.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutreachSettings {
    pub policy: PolicySettings,
    pub window_days: u32,
    /// When approved emails may go out.
    pub send: crate::sender::SendSettings,
}

impl Default for OutreachSettings {
    fn default() -> Self {
        Self {
            policy: PolicySettings::default(),
            window_days: OutcomeSettings::default().window_days,
            send: crate::sender::SendSettings::default(),
        }
    }
}

impl OutreachSettings {
    /// The variables it reads besides [`crate::sender::SendSettings::VARIABLES`], with
    /// what each means (for `--help` and the README).
    pub const VARIABLES: [(&'static str, &'static str); 5] = [
        (
            "ENGAGE_FREQUENCY_CAP_DAYS",
            "at most one draft per client within this many days (14)",
        ),
        (
            "ENGAGE_MAX_ATTEMPTS",
            "emails or holdouts per stay in At risk or Cooling (3)",
        ),
        (
            "ENGAGE_REJECT_COOL_OFF_DAYS",
            "days after a rejected draft before the client is reconsidered (7)",
        ),
        (
            "ENGAGE_HOLDOUT",
            "share of touches held out: 0.1, or per kind as win_back=0.2,welcome=0 (0.1)",
        ),
        (
            "ENGAGE_ATTRIBUTION_WINDOW_DAYS",
            "days after a touch within which a purchase converts it (30)",
        ),
    ];

    /// From the variables `get` finds (unset or empty: the default); a bad value is
    /// refused, naming its variable.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut settings = Self::default();
        let days = |name: &str, low: u32, high: u32, default: u32| -> Result<u32, String> {
            match get(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(raw) => raw
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|d| (low..=high).contains(d))
                    .ok_or_else(|| {
                        format!("{name} must be a whole number from {low} to {high}, not {raw:?}")
                    }),
            }
        };
        let policy = &mut settings.policy;
        policy.frequency_cap_days = days(
            "ENGAGE_FREQUENCY_CAP_DAYS",
            1,
            365,
            policy.frequency_cap_days,
        )?;
        policy.max_attempts = days("ENGAGE_MAX_ATTEMPTS", 1, 20, policy.max_attempts)?;
        policy.reject_cool_off_days = days(
            "ENGAGE_REJECT_COOL_OFF_DAYS",
            0,
            365,
            policy.reject_cool_off_days,
        )?;
        if let Some(raw) = get("ENGAGE_HOLDOUT").filter(|v| !v.trim().is_empty()) {
            policy.holdout =
                outcomes::HoldoutShares::parse(&raw).map_err(|e| format!("ENGAGE_HOLDOUT: {e}"))?;
        }
        settings.window_days = days(
            "ENGAGE_ATTRIBUTION_WINDOW_DAYS",
            1,
            365,
            settings.window_days,
        )?;
        settings.send = crate::sender::SendSettings::from_lookup(&get)?;
        Ok(settings)
    }

    /// Every variable it reads with its meaning, one per line (the serve command's help).
    pub fn help() -> String {
        let mut help = String::from("Outreach settings (environment variables):\n");
        for (name, meaning) in Self::VARIABLES
            .iter()
            .chain(crate::sender::SendSettings::VARIABLES.iter())
        {
            help.push_str(&format!("  {name:<32} {meaning}\n"));
        }
        help
    }

    /// From the process's environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// The email processor's core, the same behind every runtime: from a domain event to its
/// effect (score, policy decision, draft) and the recording of that effect, on any
/// [`Records`]. The embedded `EmailProcessor` (`crate::embedded`) drives it from the SQLite queue; the AWS
/// email processor (`engage-aws`) from SQS.
pub struct EmailCore {
    records: Arc<dyn Records>,
    pub(crate) clock: Arc<dyn Clock>,
    writer: Arc<dyn EmailWriter>,
    policy: PolicySettings,
    /// The purchase window of the outcomes.
    window_days: u32,
    /// Where the BG/NBD fit is read, for each touch's expected purchases.
    model: Option<Arc<dyn Model>>,
    /// The fit, read at most once a minute.
    fit: std::sync::Mutex<Option<(std::time::Instant, Option<BgNbdParams>)>>,
}

/// How long a read of the model's fit is used before it is read again.
const FIT_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(60);

impl EmailCore {
    pub fn new(
        records: Arc<dyn Records>,
        clock: Arc<dyn Clock>,
        writer: Arc<dyn EmailWriter>,
        policy: PolicySettings,
    ) -> Self {
        Self {
            records,
            clock,
            writer,
            policy,
            window_days: OutcomeSettings::default().window_days,
            model: None,
            fit: std::sync::Mutex::new(None),
        }
    }

    /// Expected purchases from the BG/NBD fit kept in `model` go with each touch, and
    /// purchases within `window_days` of a touch convert it.
    pub fn with_outcomes(mut self, model: Arc<dyn Model>, window_days: u32) -> Self {
        self.model = Some(model);
        self.window_days = window_days;
        self
    }

    /// The latest fit's parameters (read at most once a minute); `None` without a fit or
    /// when it cannot be read (the touch then has no expectation, nothing fails).
    async fn fit(&self) -> Option<BgNbdParams> {
        let model = self.model.as_ref()?;
        if let Some((read, params)) = *self.fit.lock().unwrap_or_else(|e| e.into_inner())
            && read.elapsed() < FIT_FRESH_FOR
        {
            return params;
        }
        let params = match model.latest_model_fit().await {
            Ok(fit) => fit.map(|stored| stored.fit.params),
            Err(error) => {
                tracing::warn!(%error, "the model's fit could not be read; touches go without an expectation");
                None
            }
        };
        *self.fit.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((std::time::Instant::now(), params));
        params
    }

    pub fn writer_name(&self) -> &str {
        self.writer.name()
    }

    /// Works out one event's effect — score, policy decision, draft — without writing
    /// anything. `None` when the event's effect is already recorded.
    pub async fn effect_of(&self, event: &DomainEvent) -> Result<Option<Effect>, ProcessError> {
        check_version(event)?;
        let mut contexts = self
            .records
            .event_contexts(vec![(event.id.clone(), event.client_id.clone())])
            .await?;
        let context = contexts.pop().ok_or_else(|| {
            ProcessError::Store(ports::StoreError::Corrupt("no context read".into()))
        })?;
        self.effect_in(event, context).await
    }

    /// The effects of a batch of events (or why each failed), with one read of their
    /// contexts and the events worked on concurrently. Nothing is written.
    pub async fn effects_of(
        &self,
        events: Vec<Result<DomainEvent, ProcessError>>,
    ) -> Vec<Result<Option<Effect>, ProcessError>> {
        let wanted = events
            .iter()
            .flatten()
            .map(|event| (event.id.clone(), event.client_id.clone()))
            .collect();
        let contexts = match self.records.event_contexts(wanted).await {
            Ok(contexts) => contexts,
            Err(error) => {
                let error = error.to_string();
                return events
                    .iter()
                    .map(|_| {
                        Err(ProcessError::Store(ports::StoreError::Service(
                            error.clone(),
                        )))
                    })
                    .collect();
            }
        };
        let mut contexts = contexts.into_iter();
        let work: Vec<_> = events
            .into_iter()
            .map(|event| event.map(|event| (contexts.next(), event)))
            .collect();
        join_all(work.into_iter().map(|work| async move {
            match work {
                Ok((Some(context), event)) => self.effect_in(&event, context).await,
                Ok((None, _)) => Err(ProcessError::Store(ports::StoreError::Corrupt(
                    "no context read".into(),
                ))),
                Err(error) => Err(error),
            }
        }))
        .await
    }

    /// Applies one event end to end: decide, then record. Safe to call twice with the same
    /// event, and from two workers at once: its effect is recorded once.
    pub async fn handle_event(&self, event: &DomainEvent) -> Result<Outcome, ProcessError> {
        match self.effect_of(event).await? {
            None => Ok(Outcome::AlreadyApplied),
            Some(effect) => Ok(self
                .records
                .record_outcome(effect, self.clock.now())
                .await?),
        }
    }

    /// The effect of `event` given what was read for it.
    /// [`Self::effect_of_context`], with a panic anywhere inside it (a writer, a parser, a
    /// rule) caught and turned into this event's failure: it is logged with the event id,
    /// retried by the queue and dead-lettered after the max receives, and every other
    /// event goes on.
    async fn effect_in(
        &self,
        event: &DomainEvent,
        context: EventContext,
    ) -> Result<Option<Effect>, ProcessError> {
        use futures_util::FutureExt;
        match std::panic::AssertUnwindSafe(self.effect_of_context(event, context))
            .catch_unwind()
            .await
        {
            Ok(result) => result,
            Err(panic) => {
                let message = crate::panic_message(panic.as_ref());
                tracing::error!(event_id = %event.id, client_id = %event.client_id, panic = %message, "the email processor panicked on an event; it will be retried");
                Err(ProcessError::Panicked(message))
            }
        }
    }

    async fn effect_of_context(
        &self,
        event: &DomainEvent,
        context: EventContext,
    ) -> Result<Option<Effect>, ProcessError> {
        if context.already_applied {
            return Ok(None);
        }
        let client = context
            .client
            .ok_or_else(|| ProcessError::UnknownClient(event.client_id.clone()))?;
        if let EventKind::RedraftRequested {
            email_id,
            instruction,
        } = &event.kind
        {
            return self
                .redraft(
                    event,
                    &client,
                    context.stylist_name.as_deref(),
                    email_id,
                    instruction,
                )
                .await
                .map(Some);
        }
        let now = self.clock.now();
        let current = engagement_score(&client, now)
            .map_err(|error| ProcessError::Malformed(format!("client {}: {error}", client.id)))?;
        let decision = decide(&PolicyInput {
            event,
            client: &client,
            previous: context.previous_band,
            current: &current,
            draft_pending: context.draft_pending,
            last_draft_at: context.last_draft_at,
            last_rejected_at: context.last_rejected_at,
            band_since: context.band_since,
            recent: &context.decisions,
            now,
            settings: self.policy,
        });
        let draft = match decision {
            Decision::Skip { .. } | Decision::HoldOut { .. } | Decision::Blocked { .. } => None,
            Decision::Draft { kind, reason } => {
                let stylist_first_name = first_word(context.stylist_name.as_deref());
                let request = draft_request(
                    kind,
                    &client,
                    &stylist_first_name,
                    current.band,
                    None,
                    0,
                    now.date_naive(),
                );
                Some(self.write_draft(&request, reason.to_string()).await?)
            }
        };
        tracing::debug!(event_id = %event.id, client_id = %client.id, score = current.score, %decision, "event decided");
        let record = match decision.outcome() {
            Some((kind, outcome, code)) => {
                // A skip for the same reason as the one before it is not kept again: a
                // client capped every day reads once on the timeline, not daily.
                let repeat = outcome == DecisionOutcome::Skipped
                    && context.decisions.first().is_some_and(|last| {
                        last.outcome == DecisionOutcome::Skipped
                            && last.kind == kind
                            && last.reason_code == code
                    });
                let expected = if outcome.is_touch() {
                    self.fit().await.and_then(|params| {
                        let summary = client.profile.repeat_summary(now.date_naive())?;
                        Some(params.expected_purchases(&summary, f64::from(self.window_days)))
                    })
                } else {
                    None
                };
                (!repeat).then(|| outcomes::Decision {
                    event_id: event.id.clone(),
                    client_id: client.id.clone(),
                    stylist_id: client.stylist_id.clone(),
                    kind,
                    outcome,
                    reason: decision.why(),
                    reason_code: code.to_owned(),
                    decided_at: now,
                    email_id: None,
                    writer: draft.as_ref().map(|d| d.writer.clone()),
                    prompt_version: draft.as_ref().map(|d| d.prompt_version.clone()),
                    expected_purchases: expected,
                    conversion: None,
                })
            }
            None => None,
        };
        let conversions = self.conversions(event, &client, &context.decisions);
        Ok(Some(Effect {
            event_id: event.id.clone(),
            event_at: event.occurred_at,
            client: client.id,
            stylist: client.stylist_id,
            score: Some(NewScore::new(current)?),
            draft,
            redraft: None,
            event_text: Some(event.kind.describe()),
            decision: record,
            conversions,
        }))
    }

    /// The touches whose conversion changes with `event` (one that changed the client's
    /// Fixes or purchases), last touch within the window.
    fn conversions(
        &self,
        event: &DomainEvent,
        client: &domain::Client,
        decisions: &[outcomes::Decision],
    ) -> Vec<(outcomes::Decision, Option<outcomes::Conversion>)> {
        let purchases_changed = match &event.kind {
            EventKind::ClientUpdated { changes } => changes
                .iter()
                .any(|c| c.field == "fixes" || c.field == "purchases"),
            _ => false,
        };
        if !purchases_changed {
            return Vec::new();
        }
        let purchases = outcomes::purchases(&client.profile);
        outcomes::attribute(decisions, &purchases, self.window_days)
            .into_iter()
            .filter(|(touch, conversion)| touch.conversion != *conversion)
            .map(|(touch, conversion)| (touch.clone(), conversion))
            .collect()
    }

    /// A new draft of a pending email, as its stylist asked.
    async fn redraft(
        &self,
        event: &DomainEvent,
        client: &domain::Client,
        stylist_name: Option<&str>,
        email_id: &domain::EmailId,
        instruction: &Option<String>,
    ) -> Result<Effect, ProcessError> {
        let kind = self
            .records
            .email_kind(email_id.clone())
            .await?
            .ok_or_else(|| ProcessError::Malformed(format!("no email {email_id} to redraft")))?;
        let band = engagement_score(client, self.clock.now())
            .map_or(domain::Band::Steady, |score| score.band);
        // Each redraft request reads differently from the draft before it.
        let variant = event.id.as_str().bytes().fold(1u32, |acc, b| {
            acc.wrapping_mul(31).wrapping_add(u32::from(b))
        });
        let request = draft_request(
            kind,
            client,
            &first_word(stylist_name),
            band,
            instruction.clone(),
            variant,
            self.clock.now().date_naive(),
        );
        let draft = self
            .write_draft(&request, "Redrafted at the stylist's request".into())
            .await?;
        tracing::info!(event_id = %event.id, email_id = %email_id, writer = %draft.writer, "email redrafted");
        Ok(Effect {
            event_id: event.id.clone(),
            event_at: event.occurred_at,
            client: client.id.clone(),
            stylist: client.stylist_id.clone(),
            score: None,
            draft: None,
            redraft: Some((email_id.clone(), draft)),
            event_text: None,
            decision: None,
            conversions: Vec::new(),
        })
    }

    async fn write_draft(
        &self,
        request: &DraftRequest,
        reason: String,
    ) -> Result<NewDraft, ProcessError> {
        let written = self.writer.write(request).await?;
        Ok(NewDraft {
            kind: request.kind,
            text: written.text,
            writer: written.writer,
            prompt_version: written.prompt_version,
            reason,
            usage: written.usage.map(|u| ports::DraftUsage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                cost: u.cost,
            }),
        })
    }
}
