//! Approving and sending emails, once for both backends.
//!
//! [`approve`] is what every approval (page, server function, REST, bulk) goes through: it
//! checks each draft's client against [`domain::consent::may_email`] and, if any may no
//! longer be emailed, withdraws those drafts and approves none. Otherwise the store
//! approves them all and queues each for delivery in the same commit.
//!
//! [`SenderCore`] delivers one queued email: it reads the email and its client as they are
//! now, withdraws it if the client may no longer be emailed (an unsubscribe between
//! approval and sending), builds the message and hands it to the [`Delivery`]. A failed
//! delivery is retried by the queue with back-off; only the last attempt records `failed`.
//! [`Sender`] drives it from the embedded store's deliveries queue; on AWS the same core
//! runs behind SQS (`engage-aws`).

use crate::ProcessError;
use crate::clock::Clock;
use crate::delivery::{Delivery, UnsubscribeLinks, build_tracked_message};
use crate::tracking::Tracking;
use chrono::{DateTime, Utc};
use domain::consent::{NoEmail, may_email};
use domain::schedule::{SendAt, SendHours, send_time};
use domain::views::ApproveReport;
use domain::{EmailId, EmailStatus};
use ports::{DeliveryRequest, ReviewError, Reviewer, Sending};
use std::sync::Arc;

/// When approved emails may go out: the business's quiet hours, the hour to send at when
/// a client's usual one is not known yet, and the time zone both are in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendSettings {
    pub hours: SendHours,
    pub zone: chrono_tz::Tz,
}

impl Default for SendSettings {
    fn default() -> Self {
        Self {
            hours: SendHours::default(),
            zone: chrono_tz::UTC,
        }
    }
}

impl SendSettings {
    /// The variables it reads, with what each means (for `--help` and the README).
    pub const VARIABLES: [(&'static str, &'static str); 3] = [
        (
            "ENGAGE_TIME_ZONE",
            "the business's time zone for sending hours, e.g. Europe/London (UTC)",
        ),
        (
            "ENGAGE_QUIET_HOURS",
            "local hours no scheduled email goes out in, START-END or none (21-8)",
        ),
        (
            "ENGAGE_SEND_HOUR",
            "local hour of a send at the usual hour for a client with too few opens (10)",
        ),
    ];

    /// From the variables `get` finds (unset or empty: the default); a bad value is
    /// refused, naming its variable.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut settings = Self::default();
        let set = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        if let Some(raw) = set("ENGAGE_TIME_ZONE") {
            settings.zone = raw.trim().parse().map_err(|_| {
                format!("ENGAGE_TIME_ZONE must be a time zone such as Europe/London, not {raw:?}")
            })?;
        }
        if let Some(raw) = set("ENGAGE_QUIET_HOURS") {
            let (start, end) =
                SendHours::parse_quiet(&raw).map_err(|e| format!("ENGAGE_QUIET_HOURS: {e}"))?;
            settings.hours.quiet_start = start;
            settings.hours.quiet_end = end;
        }
        if let Some(raw) = set("ENGAGE_SEND_HOUR") {
            settings.hours.default_hour = raw
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|h| *h < 24)
                .ok_or_else(|| {
                    format!("ENGAGE_SEND_HOUR must be an hour from 0 to 23, not {raw:?}")
                })?;
        }
        Ok(settings)
    }

    /// When an email approved `now` as `asked` goes to `client`: `None`, at once.
    pub fn send_time(
        &self,
        asked: SendAt,
        now: DateTime<Utc>,
        client: &domain::Client,
    ) -> Option<DateTime<Utc>> {
        let usual = client.profile.engagement().usual_open_hour();
        send_time(asked, now, usual, self.hours, &self.zone)
    }
}

/// Why an approval was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    /// These drafts' clients may no longer be emailed: each is now `withdrawn`, and no
    /// draft of the batch was approved.
    #[error("{}", withdrawn_message(.0))]
    Withdrawn(Vec<(EmailId, NoEmail)>),
    #[error(transparent)]
    Review(#[from] ReviewError),
}

fn withdrawn_message(withdrawn: &[(EmailId, NoEmail)]) -> String {
    match withdrawn {
        [(_, reason)] => format!("{reason}, so the draft was withdrawn and nothing was sent."),
        many => format!(
            "{} drafts were withdrawn because their clients may no longer be emailed ({}); nothing was sent.",
            many.len(),
            many.iter()
                .map(|(_, reason)| reason.to_string().to_lowercase())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// Approves `ids` for `by`, all or none, after the consent check, each to be sent when
/// `asked` (at once, at a time, or at its client's usual hour) as `settings` allow;
/// returns how many were queued for sending, and when the first scheduled one goes.
pub async fn approve(
    sending: &dyn Sending,
    ids: Vec<EmailId>,
    asked: SendAt,
    settings: &SendSettings,
    by: Reviewer,
    clock: &dyn Clock,
) -> Result<ApproveReport, ApproveError> {
    let drafts = sending
        .drafts_with_clients(ids.clone(), by.scope.clone())
        .await?;
    let refused: Vec<(EmailId, NoEmail)> = drafts
        .iter()
        .filter_map(|(id, client)| may_email(client).err().map(|reason| (id.clone(), reason)))
        .collect();
    if !refused.is_empty() {
        for (id, reason) in &refused {
            sending
                .withdraw(id.clone(), *reason, by.name.clone(), clock.now())
                .await?;
            tracing::info!(email_id = %id, %reason, "draft withdrawn at approval");
        }
        return Err(ApproveError::Withdrawn(refused));
    }
    let now = clock.now();
    let approvals: Vec<(EmailId, Option<DateTime<Utc>>)> = drafts
        .iter()
        .map(|(id, client)| (id.clone(), settings.send_time(asked, now, client)))
        .collect();
    let report = ApproveReport {
        queued: approvals.len() as u32,
        scheduled: approvals.iter().filter(|(_, at)| at.is_some()).count() as u32,
        first_send_at: approvals.iter().filter_map(|(_, at)| *at).min(),
    };
    sending.approve(approvals, by, now).await?;
    tracing::info!(
        queued = report.queued,
        scheduled = report.scheduled,
        "emails approved and queued for sending"
    );
    Ok(report)
}

/// What handling one delivery request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Sent,
    /// The client may no longer be emailed; the email is `withdrawn`.
    Withdrawn(NoEmail),
    /// The email was not waiting to be sent (sent before a crash, withdrawn, resent…).
    Settled(EmailStatus),
    /// No such email.
    Gone,
    /// Delivery failed on the last attempt (or can never work); the email is `failed`.
    Failed(String),
    /// Scheduled for later: the queue should bring the request back at this time.
    NotYet(DateTime<Utc>),
}

/// The sender's core, shared by the embedded loop and the AWS queue handler.
pub struct SenderCore {
    sending: Arc<dyn Sending>,
    delivery: Arc<dyn Delivery>,
    links: UnsubscribeLinks,
    /// The domain of every `Message-ID`.
    domain: String,
    pub(crate) clock: Arc<dyn Clock>,
    /// Attempts after which a failing delivery is recorded as `failed`.
    max_attempts: u32,
    /// The business's own links tracked, and the open pixel (none without hosts).
    tracking: Tracking,
}

impl SenderCore {
    pub fn new(
        sending: Arc<dyn Sending>,
        delivery: Arc<dyn Delivery>,
        links: UnsubscribeLinks,
        domain: String,
        clock: Arc<dyn Clock>,
        max_attempts: u32,
    ) -> Self {
        Self {
            sending,
            delivery,
            links,
            domain,
            clock,
            max_attempts: max_attempts.max(1),
            tracking: Tracking::default(),
        }
    }

    /// The same sender, tracking the business's own links (and opens) as `tracking` says.
    pub fn with_tracking(mut self, tracking: Tracking) -> Self {
        self.tracking = tracking;
        self
    }

    /// Handles one request on its `attempt`-th receive. `Err` asks the queue to retry.
    pub async fn handle(
        &self,
        request: &DeliveryRequest,
        attempt: u32,
    ) -> Result<Delivered, ProcessError> {
        use futures_util::FutureExt;
        // A panic while building or sending one email is that email's failed attempt.
        match std::panic::AssertUnwindSafe(self.deliver(request, attempt))
            .catch_unwind()
            .await
        {
            Ok(result) => result,
            Err(panic) => {
                let message = crate::panic_message(panic.as_ref());
                tracing::error!(email_id = %request.email_id, panic = %message, "the sender panicked on an email; it will be retried");
                Err(ProcessError::Panicked(message))
            }
        }
    }

    async fn deliver(
        &self,
        request: &DeliveryRequest,
        attempt: u32,
    ) -> Result<Delivered, ProcessError> {
        let id = &request.email_id;
        let now = self.clock.now();
        if let Some(at) = request.send_after.filter(|at| *at > now) {
            return Ok(Delivered::NotYet(at));
        }
        let Some(found) = self.sending.sendable(id.clone()).await? else {
            tracing::warn!(email_id = %id, "delivery request for an email that does not exist");
            return Ok(Delivered::Gone);
        };
        if found.status != EmailStatus::Approved {
            return Ok(Delivered::Settled(found.status));
        }
        if let Err(reason) = may_email(&found.client) {
            self.sending
                .withdraw(id.clone(), reason, "delivery".to_owned(), now)
                .await
                .map_err(review_failure)?;
            tracing::info!(email_id = %id, %reason, "approved email withdrawn before sending");
            return Ok(Delivered::Withdrawn(reason));
        }
        let link = self.links.url(found.outgoing.client_id.as_str());
        let message = match build_tracked_message(
            &found.outgoing,
            &link,
            &self.domain,
            now,
            &self.tracking,
        ) {
            Ok(message) => message,
            // An address that cannot be sent to will not improve with a retry.
            Err(error) => return self.failed(id, error).await,
        };
        match self.delivery.deliver(&found.outgoing, &message).await {
            Ok(()) => {
                self.sending
                    .record_delivery(id.clone(), Ok(()), self.clock.now())
                    .await?;
                tracing::info!(email_id = %id, attempt, "email sent");
                Ok(Delivered::Sent)
            }
            Err(error) if attempt >= self.max_attempts => self.failed(id, error).await,
            Err(error) => {
                tracing::warn!(email_id = %id, attempt, %error, "email could not be sent; will retry");
                Err(ProcessError::Delivery(error))
            }
        }
    }

    async fn failed(&self, id: &EmailId, error: String) -> Result<Delivered, ProcessError> {
        self.sending
            .record_delivery(id.clone(), Err(error.clone()), self.clock.now())
            .await?;
        tracing::error!(email_id = %id, %error, "email could not be sent");
        Ok(Delivered::Failed(error))
    }
}

fn review_failure(error: ReviewError) -> ProcessError {
    match error {
        ReviewError::Store(error) => ProcessError::Store(error),
        other => ProcessError::Delivery(other.to_string()),
    }
}

/// The checks every backend's [`Sending`] must pass with the sender's core on top (run on
/// SQLite by processors' tests and on DynamoDB against moto_server by `engage-aws`'s).
#[cfg(feature = "contract")]
pub mod contract {
    use super::*;
    use crate::delivery::{Delivery, UnsubscribeLinks};
    use chrono::{DateTime, Utc};
    use domain::email::DraftText;
    use domain::{
        ClientId, ClientInput, ClientStatus, EmailConsent, EmailKind, EventId, NewClient,
        ProfileInput, StylistId,
    };
    use ports::{Effect, EmailFilter, NewDraft, Outgoing, Records};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A delivery that records each message (its `Message-ID`), or fails while told to.
    #[derive(Default)]
    pub struct Recording {
        pub sent: Mutex<Vec<(EmailId, String)>>,
        pub failing: AtomicBool,
    }

    #[async_trait::async_trait]
    impl Delivery for Recording {
        async fn deliver(&self, email: &Outgoing, message: &lettre::Message) -> Result<(), String> {
            if self.failing.load(Ordering::SeqCst) {
                return Err("the relay answered 451: try again later".into());
            }
            let formatted = String::from_utf8_lossy(&message.formatted()).into_owned();
            let id = formatted
                .lines()
                .find_map(|l| l.strip_prefix("Message-ID: "))
                .unwrap_or_default()
                .to_owned();
            self.sent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((email.id.clone(), id));
            Ok(())
        }
    }

    struct Fixed(DateTime<Utc>);
    impl Clock for Fixed {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("a valid test date")
            .with_timezone(&Utc)
    }

    async fn client_with_draft(
        records: &dyn Records,
        name: &str,
        now: DateTime<Utc>,
    ) -> (ClientId, EmailId) {
        let first = name.split(' ').next().unwrap_or(name).to_lowercase();
        let new = NewClient::parse(
            &ClientInput {
                name: name.into(),
                email: format!("{first}@example.com"),
                stylist_id: "st-send".into(),
                status: None,
                profile: ProfileInput {
                    signed_up_on: Some("2025-01-10".into()),
                    email_opt_in: true,
                    ..ProfileInput::default()
                },
            },
            now,
        )
        .expect("a valid test client");
        let client = records
            .create_client(new, now)
            .await
            .expect("create client");
        let effect = Effect {
            event_id: EventId::new(format!("ev-send-{first}")),
            event_at: now,
            client: client.id.clone(),
            stylist: client.stylist_id.clone(),
            score: Some(
                ports::NewScore::new(
                    domain::score::engagement_score(&client, now).expect("score the client"),
                )
                .expect("a storable score"),
            ),
            draft: Some(NewDraft {
                kind: EmailKind::Welcome,
                text: DraftText {
                    subject: format!("Welcome, {first}"),
                    body_text: "Lovely to have you with us.\n\nMaya".into(),
                },
                writer: "template".into(),
                prompt_version: "template-1".into(),
                reason: "A new client who agreed to emails".into(),
                usage: None,
            }),
            redraft: None,
            event_text: None,
            decision: None,
            conversions: Vec::new(),
        };
        records
            .record_outcome(effect, now)
            .await
            .expect("record draft");
        let email = records
            .emails(
                EmailFilter {
                    client: Some(client.id.clone()),
                    ..EmailFilter::default()
                },
                5,
            )
            .await
            .expect("emails")
            .remove(0)
            .id;
        (client.id, email)
    }

    async fn status(sending: &dyn Sending, email: &EmailId) -> EmailStatus {
        sending
            .sendable(email.clone())
            .await
            .expect("read email")
            .expect("email exists")
            .status
    }

    /// Runs every check against `records` and `sending` (the same store, empty).
    pub async fn run(records: &dyn Records, sending: Arc<dyn Sending>) {
        let now = at("2026-03-01T12:00:00Z");
        let clock = Fixed(now);
        records
            .upsert_stylist(
                StylistId::new("st-send"),
                "Maya Okafor".into(),
                "maya@engage.example".into(),
            )
            .await
            .expect("add stylist");
        let maya = Reviewer {
            name: "maya@engage.example".into(),
            scope: Some(StylistId::new("st-send")),
        };
        let (_, ada) = client_with_draft(records, "Ada Lovelace", now).await;
        let (bea_client, bea) = client_with_draft(records, "Bea Moss", now).await;
        let (cleo_client, cleo) = client_with_draft(records, "Cleo Hart", now).await;
        let (_, dora) = client_with_draft(records, "Dora Lake", now).await;
        let (_, edie) = client_with_draft(records, "Edie Fern", now).await;
        // The business is in London and quiet from 21:00 to 08:00; sends at the usual
        // hour go at 10:00 until a client's opens say otherwise.
        let hours = SendSettings {
            hours: SendHours::default(),
            zone: chrono_tz::Europe::London,
        };

        // Outside the reviewer's book: not found, nothing changes.
        let stranger = Reviewer {
            name: "jonas@engage.example".into(),
            scope: Some(StylistId::new("st-other")),
        };
        assert!(matches!(
            approve(
                sending.as_ref(),
                vec![ada.clone()],
                SendAt::Now,
                &hours,
                stranger,
                &clock
            )
            .await,
            Err(ApproveError::Review(ReviewError::NotFound))
        ));

        // Bea unsubscribes while her draft awaits review: approving it (even with Ada's)
        // withdraws hers, approves none, and queues nothing.
        records
            .update_client(
                bea_client.clone(),
                None,
                now,
                Box::new(move |client| {
                    client
                        .profile
                        .set_consent(EmailConsent::Unsubscribed { at: now });
                    Ok(())
                }),
            )
            .await
            .expect("unsubscribe bea");
        match approve(
            sending.as_ref(),
            vec![ada.clone(), bea.clone()],
            SendAt::Now,
            &hours,
            maya.clone(),
            &clock,
        )
        .await
        {
            Err(ApproveError::Withdrawn(withdrawn)) => {
                assert_eq!(withdrawn, vec![(bea.clone(), NoEmail::Unsubscribed)]);
            }
            other => panic!("approving for an unsubscribed client must be refused: {other:?}"),
        }
        assert_eq!(status(sending.as_ref(), &bea).await, EmailStatus::Withdrawn);
        assert_eq!(
            status(sending.as_ref(), &ada).await,
            EmailStatus::Drafted,
            "all or none"
        );
        let waiting = records
            .emails(
                EmailFilter {
                    status: Some(EmailStatus::Drafted),
                    ..EmailFilter::default()
                },
                50,
            )
            .await
            .expect("review queue");
        assert!(
            waiting.iter().all(|e| e.id != bea),
            "a withdrawn draft leaves the review queue"
        );
        assert!(matches!(
            approve(
                sending.as_ref(),
                vec![bea.clone()],
                SendAt::Now,
                &hours,
                maya.clone(),
                &clock
            )
            .await,
            Err(ApproveError::Review(ReviewError::NotDraft {
                status: EmailStatus::Withdrawn
            }))
        ));

        // Approved, then delivered by the core, once, with a stable Message-ID.
        let delivery = Arc::new(Recording::default());
        let core = SenderCore::new(
            Arc::clone(&sending),
            delivery.clone(),
            UnsubscribeLinks::new(b"contract-key".to_vec(), "https://shop.example"),
            "shop.example".into(),
            Arc::new(Fixed(now)),
            3,
        );
        assert_eq!(
            approve(
                sending.as_ref(),
                vec![ada.clone(), cleo.clone(), dora.clone()],
                SendAt::Now,
                &hours,
                maya.clone(),
                &clock
            )
            .await
            .expect("approve")
            .queued,
            3
        );
        assert_eq!(status(sending.as_ref(), &ada).await, EmailStatus::Approved);
        let request = |email: &EmailId| DeliveryRequest {
            email_id: email.clone(),
            send_after: None,
        };
        assert_eq!(
            core.handle(&request(&ada), 1).await.unwrap(),
            Delivered::Sent
        );
        assert_eq!(status(sending.as_ref(), &ada).await, EmailStatus::Sent);
        assert_eq!(
            core.handle(&request(&ada), 2).await.unwrap(),
            Delivered::Settled(EmailStatus::Sent),
            "a redelivered request sends nothing twice"
        );
        {
            let sent = delivery.sent.lock().unwrap();
            assert_eq!(sent.len(), 1);
            assert_eq!(sent[0].1, format!("<{ada}@shop.example>"));
        }

        // Cleo's account closes between approval and sending: withdrawn, not sent.
        records
            .update_client(
                cleo_client,
                None,
                now,
                Box::new(|client| {
                    client.status = ClientStatus::Closed;
                    Ok(())
                }),
            )
            .await
            .expect("close cleo");
        assert_eq!(
            core.handle(&request(&cleo), 1).await.unwrap(),
            Delivered::Withdrawn(NoEmail::AccountClosed)
        );
        assert_eq!(
            status(sending.as_ref(), &cleo).await,
            EmailStatus::Withdrawn
        );

        // The relay fails: retried (still approved) until the last attempt, then failed;
        // a manager sends it again and it goes out.
        delivery.failing.store(true, Ordering::SeqCst);
        assert!(core.handle(&request(&dora), 1).await.is_err());
        assert!(core.handle(&request(&dora), 2).await.is_err());
        assert_eq!(status(sending.as_ref(), &dora).await, EmailStatus::Approved);
        assert!(matches!(
            core.handle(&request(&dora), 3).await.unwrap(),
            Delivered::Failed(_)
        ));
        assert_eq!(status(sending.as_ref(), &dora).await, EmailStatus::Failed);
        assert!(matches!(
            sending.resend(ada.clone(), maya.clone(), now).await,
            Err(ReviewError::NotFailed {
                status: EmailStatus::Sent
            })
        ));
        sending
            .resend(dora.clone(), maya.clone(), now)
            .await
            .expect("resend");
        assert_eq!(status(sending.as_ref(), &dora).await, EmailStatus::Approved);
        delivery.failing.store(false, Ordering::SeqCst);
        assert_eq!(
            core.handle(&request(&dora), 1).await.unwrap(),
            Delivered::Sent
        );
        assert_eq!(delivery.sent.lock().unwrap().len(), 2);

        // Edie's is approved to go at her usual hour: she has no opens yet, so 10:00 in
        // London the next morning (it is noon now). It is approved, shows the time, and
        // a request that comes early is put off, not sent, until then.
        let report = approve(
            sending.as_ref(),
            vec![edie.clone()],
            SendAt::UsualHour,
            &hours,
            maya.clone(),
            &clock,
        )
        .await
        .expect("approve at the usual hour");
        let ten = at("2026-03-02T10:00:00Z");
        assert_eq!(
            (report.queued, report.scheduled, report.first_send_at),
            (1, 1, Some(ten))
        );
        assert_eq!(status(sending.as_ref(), &edie).await, EmailStatus::Approved);
        let early = DeliveryRequest {
            email_id: edie.clone(),
            send_after: Some(ten),
        };
        assert_eq!(
            core.handle(&early, 1).await.unwrap(),
            Delivered::NotYet(ten)
        );
        assert_eq!(status(sending.as_ref(), &edie).await, EmailStatus::Approved);
        assert_eq!(delivery.sent.lock().unwrap().len(), 2, "nothing sent early");
        let later = SenderCore::new(
            Arc::clone(&sending),
            delivery.clone(),
            UnsubscribeLinks::new(b"contract-key".to_vec(), "https://shop.example"),
            "shop.example".into(),
            Arc::new(Fixed(ten)),
            3,
        );
        assert_eq!(later.handle(&early, 1).await.unwrap(), Delivered::Sent);
        assert_eq!(status(sending.as_ref(), &edie).await, EmailStatus::Sent);
        // A time in the quiet hours waits for their end: 23:00 in London -> 08:00.
        assert_eq!(
            hours.send_time(
                SendAt::At {
                    at: at("2026-03-01T23:00:00Z")
                },
                now,
                &sending
                    .sendable(edie.clone())
                    .await
                    .unwrap()
                    .unwrap()
                    .client
            ),
            Some(at("2026-03-02T08:00:00Z"))
        );
        assert_eq!(
            core.handle(
                &DeliveryRequest {
                    email_id: EmailId::new("no-such-email"),
                    send_after: None,
                },
                1
            )
            .await
            .unwrap(),
            Delivered::Gone
        );
    }
}
