//! The email processor: consumes domain events, rescores the client, asks the policy
//! whether to draft, has a writer draft, and records it all exactly once per event.

use crate::writer::{DraftRequest, EmailWriter};
use crate::{Clock, ProcessError};
use domain::policy::{Decision, PolicyInput, PolicySettings, decide};
use domain::score::engagement_score;
use domain::{DomainEvent, EventKind, event::EVENT_SCHEMA_VERSION};
use futures_util::future::join_all;
use ports::{Effect, EventContext, NewDraft, NewScore, Outcome, Records};
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
/// The email processor's core, the same behind every runtime: from a domain event to its
/// effect (score, policy decision, draft) and the recording of that effect, on any
/// [`Records`]. The embedded `EmailProcessor` (`crate::embedded`) drives it from the SQLite queue; the AWS
/// email processor (`engage-aws`) from SQS.
pub struct EmailCore {
    records: Arc<dyn Records>,
    pub(crate) clock: Arc<dyn Clock>,
    writer: Arc<dyn EmailWriter>,
    policy: PolicySettings,
}

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
        }
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
            now,
            settings: self.policy,
        });
        let draft = match decision {
            Decision::Skip { .. } => None,
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
        Ok(Some(Effect {
            event_id: event.id.clone(),
            event_at: event.occurred_at,
            client: client.id,
            stylist: client.stylist_id,
            score: Some(NewScore::new(current)?),
            draft,
            redraft: None,
            event_text: Some(event.kind.describe()),
        }))
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
            reason,
            usage: written.usage.map(|u| ports::DraftUsage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                cost: u.cost,
            }),
        })
    }
}
