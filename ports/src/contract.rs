//! The contract every implementation of the ports keeps, as one suite run against each:
//! on SQLite (`store/tests/records_contract.rs`) and on DynamoDB against moto
//! (`cloud/tests/dynamo_contract.rs`). It panics with what broke.

use crate::*;
use chrono::{DateTime, Utc};
use domain::user::{Password, Role};

use crate::{DraftUsage, NewDraft, NewScore};
use domain::email::DraftText;
use domain::profile::FixInput;
use domain::score::engagement_score;
use domain::{Client, ClientEmail, ClientId, EmailId, EmailKind, EventId, NewClient, StylistId};
use domain::{ClientInput, EmailStatus, ProfileInput};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("a valid test date")
        .with_timezone(&Utc)
}

fn new_client(name: &str, email: &str, stylist: &str) -> NewClient {
    NewClient::parse(
        &ClientInput {
            name: name.into(),
            email: email.into(),
            stylist_id: stylist.into(),
            status: None,
            profile: ProfileInput {
                signed_up_on: Some("2025-01-10".into()),
                email_opt_in: true,
                ..ProfileInput::default()
            },
        },
        at("2026-01-01T00:00:00Z"),
    )
    .expect("a valid test client")
}

fn draft(subject: &str) -> NewDraft {
    NewDraft {
        kind: EmailKind::Welcome,
        text: DraftText {
            subject: subject.into(),
            body_text: "Hello, lovely to have you.\n\nMaya".into(),
        },
        writer: "template".into(),
        prompt_version: "template-1".into(),
        reason: "A new client who agreed to emails".into(),
        usage: Some(DraftUsage {
            prompt_tokens: 120,
            completion_tokens: 80,
            cost: Some(0.0004),
        }),
    }
}

/// Runs every check against `records`, which must be empty.
pub async fn run(records: &dyn Records) {
    let now = at("2026-03-01T12:00:00Z");
    records
        .upsert_stylist(
            StylistId::new("st-a"),
            "Maya Okafor".into(),
            "maya@engage.example".into(),
        )
        .await
        .expect("add stylist a");
    records
        .upsert_stylist(
            StylistId::new("st-b"),
            "Jonas Berg".into(),
            "jonas@engage.example".into(),
        )
        .await
        .expect("add stylist b");

    // Creating: version 1, readable back; a taken address and an unknown stylist are
    // refused by field, and nothing is written for them.
    let ada = records
        .create_client(new_client("Ada Lovelace", "ada@example.com", "st-a"), now)
        .await
        .expect("create ada");
    assert_eq!(ada.version, 1);
    assert_eq!(
        records.get_client(ada.id.clone()).await.unwrap(),
        Some(ada.clone())
    );
    match records
        .create_client(new_client("Ada Again", "ADA@example.com", "st-a"), now)
        .await
    {
        Err(CreateClientError::Invalid(errors)) => {
            assert!(errors.to_string().contains("email"), "{errors}")
        }
        other => panic!("a taken address was not refused: {other:?}"),
    }
    match records
        .create_client(new_client("Nobody", "nobody@example.com", "st-x"), now)
        .await
    {
        Err(CreateClientError::Invalid(errors)) => {
            assert!(errors.to_string().contains("stylist"), "{errors}")
        }
        other => panic!("an unknown stylist was not refused: {other:?}"),
    }
    assert!(
        records
            .get_client(ClientId::new("no-such-client"))
            .await
            .unwrap()
            .is_none()
    );

    // Updating: the next version; a stale version is a conflict naming the current
    // one; a change that alters nothing writes nothing; an unknown client is NotFound.
    let later = now + chrono::Duration::hours(1);
    let fix = FixInput {
        delivered_on: "2026-02-20".into(),
        items_sent: 5,
        items_kept: 3,
        order_value: "240.00".into(),
    };
    let updated = records
        .update_client(
            ada.id.clone(),
            Some(1),
            later,
            Box::new(move |client: &mut Client| {
                domain::Activity::Fix(fix).apply(&mut client.profile, later.date_naive())
            }),
        )
        .await
        .expect("update ada");
    assert_eq!(updated.version, 2);
    assert_eq!(updated.profile.fixes().len(), 1);
    assert_eq!(
        records.get_client(ada.id.clone()).await.unwrap(),
        Some(updated.clone())
    );
    match records
        .update_client(ada.id.clone(), Some(1), later, Box::new(|_| Ok(())))
        .await
    {
        Err(UpdateClientError::VersionConflict { current }) => assert_eq!(current, 2),
        other => panic!("a stale version was not refused: {other:?}"),
    }
    let unchanged = records
        .update_client(ada.id.clone(), Some(2), later, Box::new(|_| Ok(())))
        .await
        .expect("an empty change");
    assert_eq!(unchanged.version, 2);
    assert!(matches!(
        records
            .update_client(
                ClientId::new("no-such-client"),
                None,
                later,
                Box::new(|_| Ok(()))
            )
            .await,
        Err(UpdateClientError::NotFound)
    ));

    // Recording an effect: the score lands on the client and in its history, the draft
    // in the emails; the same event again changes nothing.
    let grace = records
        .create_client(new_client("Grace Hopper", "grace@example.com", "st-a"), now)
        .await
        .expect("create grace");
    let linus = records
        .create_client(
            new_client("Linus Pauling", "linus@example.com", "st-b"),
            now,
        )
        .await
        .expect("create linus");
    let event = EventId::new("ev-contract-1");
    let contexts = records
        .event_contexts(vec![
            (event.clone(), ada.id.clone()),
            (EventId::new("ev-unknown"), ClientId::new("no-such-client")),
        ])
        .await
        .expect("contexts");
    assert_eq!(contexts.len(), 2);
    assert!(!contexts[0].already_applied);
    assert_eq!(contexts[0].client.as_ref(), Some(&updated));
    assert_eq!(contexts[0].stylist_name.as_deref(), Some("Maya Okafor"));
    assert_eq!(contexts[0].previous_band, None);
    assert!(!contexts[0].draft_pending);
    assert!(contexts[1].client.is_none());

    let score = engagement_score(&updated, later).expect("score ada");
    let effect = Effect {
        event_id: event.clone(),
        event_at: later,
        client: ada.id.clone(),
        stylist: ada.stylist_id.clone(),
        score: Some(NewScore::new(score.clone()).unwrap()),
        draft: Some(draft("Welcome, Ada")),
        redraft: None,
        event_text: None,
        decision: None,
        conversions: Vec::new(),
    };
    assert_eq!(
        records.record_outcome(effect.clone(), later).await.unwrap(),
        Outcome::Applied
    );
    assert_eq!(
        records.record_outcome(effect, later).await.unwrap(),
        Outcome::AlreadyApplied
    );
    let history = records.score_history(ada.id.clone(), 10).await.unwrap();
    assert_eq!(history.len(), 1, "one score change for one event");
    assert_eq!(history[0].score, score.score);
    assert_eq!(history[0].band, score.band);
    assert_eq!(history[0].event_id, event);

    let context = records
        .event_contexts(vec![(event.clone(), ada.id.clone())])
        .await
        .unwrap()
        .remove(0);
    assert!(context.already_applied);
    let context = records
        .event_contexts(vec![(EventId::new("ev-contract-2"), ada.id.clone())])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(context.previous_band, Some(score.band));
    assert!(context.draft_pending, "the draft awaits review");
    assert_eq!(context.last_draft_at, Some(later));

    let ada_emails = records
        .emails(
            EmailFilter {
                client: Some(ada.id.clone()),
                ..EmailFilter::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(ada_emails.len(), 1, "one draft for one event");
    let email = &ada_emails[0];
    assert_eq!(email.subject, "Welcome, Ada");
    assert_eq!(email.status, EmailStatus::Drafted);
    assert_eq!(email.client_name, "Ada Lovelace");
    assert_eq!(email.stylist_name, "Maya Okafor");
    assert_eq!(email.prompt_tokens, Some(120));
    assert_eq!(
        records.email_kind(email.id.clone()).await.unwrap(),
        Some(EmailKind::Welcome)
    );
    assert_eq!(
        records
            .email_kind(EmailId::new("no-such-email"))
            .await
            .unwrap(),
        None
    );

    // A redraft rewrites the pending email in place, once.
    let redraft = Effect {
        event_id: EventId::new("ev-contract-redraft"),
        event_at: later,
        client: ada.id.clone(),
        stylist: ada.stylist_id.clone(),
        score: None,
        draft: None,
        redraft: Some((email.id.clone(), draft("Welcome again, Ada"))),
        event_text: None,
        decision: None,
        conversions: Vec::new(),
    };
    assert_eq!(
        records
            .record_outcome(redraft.clone(), later)
            .await
            .unwrap(),
        Outcome::Applied
    );
    assert_eq!(
        records.record_outcome(redraft, later).await.unwrap(),
        Outcome::AlreadyApplied
    );

    // Drafts by status, newest first, and scoped to a stylist's book.
    let linus_at = later + chrono::Duration::minutes(5);
    let linus_score = engagement_score(&linus, linus_at).expect("score linus");
    records
        .record_outcome(
            Effect {
                event_id: EventId::new("ev-contract-3"),
                event_at: linus_at,
                client: linus.id.clone(),
                stylist: linus.stylist_id.clone(),
                score: Some(NewScore::new(linus_score).unwrap()),
                draft: Some(draft("Welcome, Linus")),
                redraft: None,
                event_text: None,
                decision: None,
                conversions: Vec::new(),
            },
            linus_at,
        )
        .await
        .unwrap();
    let drafted = records
        .emails(
            EmailFilter {
                status: Some(EmailStatus::Drafted),
                ..EmailFilter::default()
            },
            10,
        )
        .await
        .unwrap();
    let subjects: Vec<_> = drafted.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(subjects, ["Welcome, Linus", "Welcome again, Ada"]);
    let maya_drafts = records
        .emails(
            EmailFilter {
                scope: Some(StylistId::new("st-a")),
                status: Some(EmailStatus::Drafted),
                ..EmailFilter::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(maya_drafts.len(), 1);
    assert_eq!(maya_drafts[0].client_id, ada.id);
    assert!(
        records
            .emails(
                EmailFilter {
                    status: Some(EmailStatus::Sent),
                    ..EmailFilter::default()
                },
                10
            )
            .await
            .unwrap()
            .is_empty()
    );

    // A stylist's clients by score: unscored first, then lowest; every client once
    // across pages; nobody else's.
    let first = records
        .clients_by_score(StylistId::new("st-a"), None, 1)
        .await
        .unwrap();
    assert_eq!(first.clients.len(), 1);
    assert_eq!(first.clients[0].id, grace.id, "unscored first");
    assert!(first.clients[0].score.is_none());
    let second = records
        .clients_by_score(StylistId::new("st-a"), first.next.clone(), 1)
        .await
        .unwrap();
    assert_eq!(second.clients.len(), 1);
    assert_eq!(second.clients[0].id, ada.id);
    assert_eq!(second.clients[0].score, Some(score.score));
    if let Some(next) = second.next {
        let rest = records
            .clients_by_score(StylistId::new("st-a"), Some(next), 1)
            .await
            .unwrap();
        assert!(rest.clients.is_empty() && rest.next.is_none());
    }
    let book_b = records
        .clients_by_score(StylistId::new("st-b"), None, 10)
        .await
        .unwrap();
    let ids: Vec<_> = book_b.clients.iter().map(|c| &c.id).collect();
    assert_eq!(ids, [&linus.id]);
    assert!(matches!(
        records
            .clients_by_score(StylistId::new("st-a"), Some("not a cursor".into()), 1)
            .await,
        Err(ListError::BadCursor)
    ));
}

/// The [`Books`](crate::Books) and [`Review`](crate::Review) contract on an empty
/// backend; `records` is the same backend, used to write what the ports read.
pub async fn run_books_and_review(
    records: &dyn Records,
    books: &dyn crate::Books,
    review: &dyn crate::Review,
) {
    use crate::{PageLimits, ReviewError, Reviewer};
    use domain::views::ClientQuery;
    let now = at("2026-03-01T12:00:00Z");
    for (id, name) in [("st-m", "Maya Okafor"), ("st-l", "Leo Brandt")] {
        records
            .upsert_stylist(
                StylistId::new(id),
                name.into(),
                format!("{id}@engage.example"),
            )
            .await
            .expect("add stylist");
    }
    let maya = Some(StylistId::new("st-m"));
    let leo = Some(StylistId::new("st-l"));
    let names: Vec<String> = books
        .stylists()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        ["Leo Brandt", "Maya Okafor"],
        "every stylist, by name"
    );

    let mut ids = Vec::new();
    for (name, email, stylist) in [
        ("Ada Lovelace", "ada@example.com", "st-m"),
        ("Ben Okri", "ben@example.com", "st-m"),
        ("Cleo Laine", "cleo@example.com", "st-l"),
    ] {
        let client = records
            .create_client(new_client(name, email, stylist), now)
            .await
            .expect("create client");
        ids.push(client.id);
    }
    let (ada, cleo) = (ids[0].clone(), ids[2].clone());

    // Lists: a book, every book, a search, and pages that cover the book once.
    let list = |query: ClientQuery, scope: Option<StylistId>| async move {
        books.client_list(query, scope).await.expect("list")
    };
    let names = |page: &domain::views::ClientPage| {
        let mut names: Vec<_> = page.clients.iter().map(|c| c.name.clone()).collect();
        names.sort();
        names
    };
    let query = |search: &str, limit: u32, after: Option<String>| ClientQuery {
        search: search.into(),
        limit,
        after,
        ..ClientQuery::default()
    };
    assert_eq!(
        names(&list(query("", 50, None), maya.clone()).await),
        ["Ada Lovelace", "Ben Okri"]
    );
    assert_eq!(list(query("", 50, None), None).await.clients.len(), 3);
    assert_eq!(
        names(&list(query("LOVE", 50, None), None).await),
        ["Ada Lovelace"],
        "any part of the name, any case"
    );
    assert!(
        list(query("cleo", 50, None), maya.clone())
            .await
            .clients
            .is_empty(),
        "another book's client is not found by search"
    );
    let first = list(query("", 1, None), maya.clone()).await;
    assert_eq!(first.clients.len(), 1);
    let second = list(query("", 1, first.next.clone()), maya.clone()).await;
    assert_eq!(second.clients.len(), 1);
    assert_ne!(first.clients[0].id, second.clients[0].id, "no client twice");
    assert!(second.next.is_none(), "the book ends on the second page");
    assert!(matches!(
        books
            .client_list(query("", 1, Some("not a cursor".into())), None)
            .await,
        Err(ListError::BadCursor)
    ));

    // A client's page, only within its book.
    let limits = PageLimits {
        history: 10,
        timeline: 10,
        emails: 10,
    };
    let page = books
        .client_page(ada.clone(), maya.clone(), limits)
        .await
        .unwrap()
        .expect("Ada is in Maya's book");
    assert_eq!(page.client.id, ada);
    assert_eq!(page.stylist.map(|s| s.name).as_deref(), Some("Maya Okafor"));
    assert!(page.history.is_empty() && page.emails.is_empty());
    assert!(
        books
            .client_page(ada.clone(), leo.clone(), limits)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        books
            .client_page(cleo.clone(), None, limits)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        books
            .client_page(ClientId::new("no-such-client"), None, limits)
            .await
            .unwrap()
            .is_none()
    );

    // A score and a draft appear on the page.
    let later = now + chrono::Duration::hours(1);
    let client = records.get_client(ada.clone()).await.unwrap().unwrap();
    let score = engagement_score(&client, later).expect("score ada");
    let effect = Effect {
        event_id: EventId::new("ev-ports-1"),
        event_at: later,
        client: ada.clone(),
        stylist: client.stylist_id.clone(),
        score: Some(NewScore::new(score.clone()).unwrap()),
        draft: Some(draft("Welcome, Ada")),
        redraft: None,
        event_text: None,
        decision: None,
        conversions: Vec::new(),
    };
    records.record_outcome(effect, later).await.expect("record");
    let page = books
        .client_page(ada.clone(), maya.clone(), limits)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.history.len(), 1);
    assert_eq!(page.history[0].score, score.score);
    assert_eq!(page.emails.len(), 1);
    assert!(
        !page.timeline.is_empty(),
        "the score and the draft are on the timeline"
    );
    let email = page.emails[0].id.clone();

    // Review: read, edit, redraft and reject, each only within the reviewer's book.
    let by = |scope: Option<StylistId>| Reviewer {
        name: "maya@engage.example".into(),
        scope,
    };
    assert!(
        review
            .email_detail(email.clone(), leo.clone())
            .await
            .unwrap()
            .is_none()
    );
    let detail = review
        .email_detail(email.clone(), maya.clone())
        .await
        .unwrap()
        .expect("the draft, in Maya's book");
    assert_eq!(detail.summary.subject, "Welcome, Ada");
    assert!(!detail.edited);
    assert_eq!(detail.client_email, "ada@example.com");

    let words = DraftText {
        subject: "Hello Ada <b>&</b> welcome".into(),
        body_text: "Dear Ada,\n\nLovely to have you.\n\nMaya".into(),
    };
    assert!(matches!(
        review
            .edit_email(email.clone(), words.clone(), by(leo.clone()), later)
            .await,
        Err(ReviewError::NotFound)
    ));
    review
        .edit_email(email.clone(), words.clone(), by(maya.clone()), later)
        .await
        .expect("edit");
    let detail = review
        .email_detail(email.clone(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        detail.summary.subject, words.subject,
        "the words as written"
    );
    assert_eq!(detail.body_text, words.body_text);
    assert!(detail.edited);
    assert!(detail.reviews.iter().any(|r| r.action == "edited"));

    review
        .request_redraft(
            email.clone(),
            Some("warmer".into()),
            by(maya.clone()),
            later,
        )
        .await
        .expect("redraft");
    assert!(matches!(
        review
            .request_redraft(email.clone(), None, by(leo.clone()), later)
            .await,
        Err(ReviewError::NotFound)
    ));
    let detail = review
        .email_detail(email.clone(), None)
        .await
        .unwrap()
        .unwrap();
    assert!(
        detail
            .reviews
            .iter()
            .any(|r| r.action == "redraft_requested" && r.note.as_deref() == Some("warmer"))
    );

    assert!(matches!(
        review
            .reject_email(email.clone(), "  ".into(), by(maya.clone()), later)
            .await,
        Err(ReviewError::Invalid(_))
    ));
    review
        .reject_email(email.clone(), "Too formal".into(), by(maya.clone()), later)
        .await
        .expect("reject");
    let detail = review
        .email_detail(email.clone(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.summary.status, EmailStatus::Rejected);
    assert_eq!(detail.reject_reason.as_deref(), Some("Too formal"));
    assert!(matches!(
        review
            .reject_email(email.clone(), "again".into(), by(maya.clone()), later)
            .await,
        Err(ReviewError::NotDraft { .. })
    ));
    assert!(matches!(
        review
            .edit_email(email.clone(), words, by(maya.clone()), later)
            .await,
        Err(ReviewError::NotDraft { .. })
    ));
    let context = records
        .event_contexts(vec![(EventId::new("ev-ports-2"), ada.clone())])
        .await
        .unwrap()
        .remove(0);
    assert!(!context.draft_pending, "a rejected draft frees the client");
}

/// The [`Model`](crate::Model) contract on an empty backend; `records` is the same
/// backend, used to add the clients the model is fitted on.
pub async fn run_model(records: &dyn Records, model: &dyn crate::Model) {
    use crate::StoredFit;
    use domain::bgnbd::{BgNbdFit, BgNbdParams};
    let now = at("2026-03-01T12:00:00Z");
    let end = now.date_naive();
    assert!(
        model.latest_model_fit().await.unwrap().is_none(),
        "no fit yet"
    );
    records
        .upsert_stylist(
            StylistId::new("st-m"),
            "Maya Okafor".into(),
            "m@engage.example".into(),
        )
        .await
        .unwrap();
    let buyer = records
        .create_client(new_client("Ada Lovelace", "ada@example.com", "st-m"), now)
        .await
        .unwrap();
    records
        .create_client(new_client("Ben Okri", "ben@example.com", "st-m"), now)
        .await
        .expect("a client who never bought");
    for delivered_on in ["2026-01-05", "2026-02-04"] {
        let fix = FixInput {
            delivered_on: delivered_on.into(),
            items_sent: 5,
            items_kept: 2,
            order_value: "120.00".into(),
        };
        records
            .update_client(
                buyer.id.clone(),
                None,
                now,
                Box::new(move |client: &mut Client| {
                    domain::Activity::Fix(fix).apply(&mut client.profile, end)
                }),
            )
            .await
            .unwrap();
    }
    let summaries = model.customer_summaries(end).await.unwrap();
    assert_eq!(
        summaries.len(),
        1,
        "only a client who bought: {summaries:?}"
    );
    assert_eq!(summaries[0].frequency, 1);
    assert_eq!(summaries[0].recency, 30.0);
    assert_eq!(summaries[0].age, 55.0);

    let fit = |r: f64, at: &str| StoredFit {
        fit: BgNbdFit {
            params: BgNbdParams {
                r,
                alpha: 30.5,
                a: 0.7,
                b: 2.25,
            },
            log_likelihood: -1234.5,
            customers: 1,
            iterations: 42,
        },
        source: "clients".into(),
        observation_end: end,
        fitted_at: self::at(at),
    };
    model
        .save_model_fit(fit(0.5, "2026-03-01T12:00:00Z"))
        .await
        .unwrap();
    model
        .save_model_fit(fit(0.8, "2026-03-02T12:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        model.latest_model_fit().await.unwrap(),
        Some(fit(0.8, "2026-03-02T12:00:00Z")),
        "the latest fit is the model in use, read back whole"
    );
}

/// The [`Accounts`] contract; `records` is the same backend, used to add a stylist.
pub async fn run_accounts(accounts: &dyn Accounts, records: &dyn Records) {
    let now = at("2026-03-01T12:00:00Z");
    records
        .upsert_stylist(
            StylistId::new("st-acc"),
            "Maya Okafor".into(),
            "maya@engage.example".into(),
        )
        .await
        .unwrap();
    let email = |raw: &str| ClientEmail::parse(raw).expect("a valid address");
    let password = || Password::parse("correct horse battery").expect("a valid password");
    let maya = accounts
        .add_user(
            email("Maya@Engage.example"),
            Role::Stylist,
            Some(StylistId::new("st-acc")),
            password(),
            now,
        )
        .await
        .expect("add maya");
    assert_eq!(maya.stylist_id, Some(StylistId::new("st-acc")));
    assert_eq!(accounts.user_count().await.unwrap(), 1);
    for (address, role, stylist, field) in [
        (
            "maya@engage.example",
            Role::Stylist,
            Some("st-acc"),
            "email",
        ),
        ("new@engage.example", Role::Stylist, None, "stylist_id"),
        (
            "boss@engage.example",
            Role::Manager,
            Some("st-acc"),
            "stylist_id",
        ),
        (
            "ghost@engage.example",
            Role::Stylist,
            Some("st-none"),
            "stylist_id",
        ),
    ] {
        match accounts
            .add_user(
                email(address),
                role,
                stylist.map(StylistId::new),
                password(),
                now,
            )
            .await
        {
            Err(AddUserError::Invalid(errors)) => assert!(
                errors.message_for(field).is_some(),
                "{address}: expected an error on {field}, got {errors}"
            ),
            other => panic!("{address} was not refused: {other:?}"),
        }
    }
    assert_eq!(
        accounts.user_count().await.unwrap(),
        1,
        "nothing half-written"
    );

    let signed_in = accounts
        .authenticate(
            " MAYA@engage.example ".into(),
            "correct horse battery".into(),
        )
        .await
        .unwrap();
    assert_eq!(signed_in.as_ref().map(|u| &u.id), Some(&maya.id));
    for (address, attempt) in [
        ("maya@engage.example", "wrong horse battery"),
        ("nobody@engage.example", "correct horse battery"),
    ] {
        assert!(
            accounts
                .authenticate(address.into(), attempt.into())
                .await
                .unwrap()
                .is_none()
        );
    }

    let token = accounts
        .create_session(&maya, now, chrono::Duration::hours(1))
        .await
        .unwrap();
    assert!(token.len() >= 64);
    let later = now + chrono::Duration::minutes(59);
    assert_eq!(
        accounts
            .session_user(token.clone(), later)
            .await
            .unwrap()
            .map(|u| u.id),
        Some(maya.id.clone())
    );
    let expired = now + chrono::Duration::minutes(61);
    assert!(
        accounts
            .session_user(token.clone(), expired)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        accounts
            .session_user("not-a-token".into(), later)
            .await
            .unwrap()
            .is_none()
    );
    accounts.end_session(token.clone()).await.unwrap();
    assert!(accounts.session_user(token, later).await.unwrap().is_none());

    let key = accounts.secret("contract_key").await.unwrap();
    assert_eq!(key.len(), 64);
    assert_eq!(accounts.secret("contract_key").await.unwrap(), key, "kept");
    assert_ne!(accounts.secret("another_key").await.unwrap(), key);

    // API keys: refused with the field named, stored as a hash, revocable.
    for (name, role, stylist, field) in [
        ("  ", Role::Manager, None, "name"),
        ("import", Role::Stylist, None, "stylist_id"),
        ("import", Role::Stylist, Some("st-none"), "stylist_id"),
        ("import", Role::Admin, Some("st-acc"), "stylist_id"),
    ] {
        match accounts
            .create_api_key(name.into(), role, stylist.map(StylistId::new), now)
            .await
        {
            Err(AddUserError::Invalid(errors)) => assert!(
                errors.message_for(field).is_some(),
                "{name}/{role:?}: expected an error on {field}, got {errors}"
            ),
            other => panic!("{name}/{role:?} was not refused: {other:?}"),
        }
    }
    assert!(
        accounts.api_keys().await.unwrap().is_empty(),
        "nothing half-written"
    );
    let created = accounts
        .create_api_key(
            " order system ".into(),
            Role::Stylist,
            Some(StylistId::new("st-acc")),
            now,
        )
        .await
        .unwrap();
    assert_eq!(created.key.name, "order system");
    assert!(
        created
            .secret
            .starts_with(&format!("ek_{}_", created.key.id))
    );
    let found = accounts.api_key(created.secret.clone()).await.unwrap();
    assert_eq!(found.as_ref(), Some(&created.key));
    let acting = found.unwrap().acting_user();
    assert_eq!(acting.role, Role::Stylist);
    assert_eq!(acting.stylist_id, Some(StylistId::new("st-acc")));
    let mut forged = created.secret.clone();
    forged.pop();
    forged.push(if created.secret.ends_with('0') {
        '1'
    } else {
        '0'
    });
    assert!(accounts.api_key(forged).await.unwrap().is_none());
    assert!(
        accounts
            .api_key("ek_nonsense".into())
            .await
            .unwrap()
            .is_none()
    );
    let later_key = accounts
        .create_api_key("analytics".into(), Role::Manager, None, later)
        .await
        .unwrap();
    let listed: Vec<String> = accounts
        .api_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(listed, ["analytics", "order system"], "newest first");
    let revoked = accounts
        .revoke_api_key(created.key.id.clone(), later)
        .await
        .unwrap()
        .expect("the key exists");
    assert_eq!(revoked.revoked_at, Some(later));
    assert!(accounts.api_key(created.secret).await.unwrap().is_none());
    assert!(accounts.api_key(later_key.secret).await.unwrap().is_some());
    assert!(
        accounts
            .revoke_api_key("0000000000000000".into(), later)
            .await
            .unwrap()
            .is_none()
    );
}

/// The decisions contract on an empty backend: a decision is kept with its event (naming
/// the draft it wrote, or as the skip it became when the draft was dropped), a client's
/// decisions come back newest first in its context, a conversion reaches the decision
/// and the email it drafted, and the band's start and the last rejection are read back.
pub async fn run_decisions(records: &dyn Records, review: &dyn crate::Review) {
    use domain::outcomes::{Conversion, Decision, DecisionOutcome};
    let t0 = at("2026-05-01T09:00:00Z");
    records
        .upsert_stylist(
            StylistId::new("st-o"),
            "Maya Okafor".into(),
            "maya@engage.example".into(),
        )
        .await
        .expect("add stylist");
    let ada = records
        .create_client(new_client("Ada Lovelace", "ada.o@example.com", "st-o"), t0)
        .await
        .expect("create ada");
    let decided = |event: &str, outcome, at| Decision {
        event_id: EventId::new(event),
        client_id: ada.id.clone(),
        stylist_id: ada.stylist_id.clone(),
        kind: EmailKind::WinBack,
        outcome,
        reason: "Score moved from Cooling to At risk".into(),
        reason_code: "entered_band".into(),
        decided_at: at,
        email_id: None,
        writer: (outcome == DecisionOutcome::Drafted).then(|| "template".into()),
        prompt_version: (outcome == DecisionOutcome::Drafted).then(|| "template-1".into()),
        expected_purchases: Some(0.75),
        conversion: None,
    };
    let effect = |event: &str, at, band_score: u8, draft: Option<NewDraft>, decision| {
        let mut score = engagement_score(&ada, at).expect("score ada");
        score.score = band_score;
        score.band = domain::Band::of(band_score);
        Effect {
            event_id: EventId::new(event),
            event_at: at,
            client: ada.id.clone(),
            stylist: ada.stylist_id.clone(),
            score: Some(NewScore::new(score).unwrap()),
            draft,
            redraft: None,
            event_text: None,
            decision,
            conversions: Vec::new(),
        }
    };
    let context = |event: &str| {
        let id = ada.id.clone();
        let event = EventId::new(event);
        async move {
            records
                .event_contexts(vec![(event, id)])
                .await
                .expect("context")
                .pop()
                .expect("one context")
        }
    };

    // A first score starts the band; a drafted decision names the draft it wrote.
    let t1 = at("2026-05-02T09:00:00Z");
    records
        .record_outcome(
            effect(
                "ev-o1",
                t1,
                20,
                Some(draft("Come back")),
                Some(decided("ev-o1", DecisionOutcome::Drafted, t1)),
            ),
            t1,
        )
        .await
        .expect("record the drafted decision");
    let seen = context("ev-next").await;
    assert_eq!(
        seen.band_since,
        Some(t1),
        "the band started with its first score"
    );
    assert_eq!(seen.decisions.len(), 1);
    let drafted = &seen.decisions[0];
    assert_eq!(drafted.outcome, DecisionOutcome::Drafted);
    assert_eq!(drafted.writer.as_deref(), Some("template"));
    assert_eq!(drafted.expected_purchases, Some(0.75));
    let email = drafted
        .email_id
        .clone()
        .expect("the decision names its draft");
    let emails = records
        .emails(
            EmailFilter {
                client: Some(ada.id.clone()),
                ..EmailFilter::default()
            },
            10,
        )
        .await
        .expect("emails");
    assert_eq!(emails[0].id, email, "the draft the decision names");

    // While that draft waits, a second drafted decision loses its draft: kept as a skip.
    let t2 = at("2026-05-03T09:00:00Z");
    records
        .record_outcome(
            effect(
                "ev-o2",
                t2,
                22,
                Some(draft("Again")),
                Some(decided("ev-o2", DecisionOutcome::Drafted, t2)),
            ),
            t2,
        )
        .await
        .expect("record the dropped draft");
    let seen = context("ev-next").await;
    assert_eq!(seen.band_since, Some(t1), "the band goes on while it stays");
    assert_eq!(seen.decisions.len(), 2);
    assert_eq!(seen.decisions[0].event_id.as_str(), "ev-o2", "newest first");
    assert_eq!(seen.decisions[0].outcome, DecisionOutcome::Skipped);
    assert_eq!(seen.decisions[0].reason_code, "draft_pending");
    assert_eq!(seen.decisions[0].email_id, None);

    // Rejecting the draft frees the client and is remembered.
    let t3 = at("2026-05-04T09:00:00Z");
    review
        .reject_email(
            email.clone(),
            "Not now".into(),
            crate::Reviewer {
                name: "maya@engage.example".into(),
                scope: None,
            },
            t3,
        )
        .await
        .expect("reject");
    assert_eq!(context("ev-next").await.last_rejected_at, Some(t3));

    // A held-out decision, then a purchase converts both touches' latest before it.
    let t4 = at("2026-05-20T09:00:00Z");
    let mut held = effect(
        "ev-o4",
        t4,
        60,
        None,
        Some(decided("ev-o4", DecisionOutcome::HeldOut, t4)),
    );
    let first = context("ev-next").await.decisions;
    let touch = first
        .iter()
        .find(|d| d.event_id.as_str() == "ev-o1")
        .unwrap()
        .clone();
    let conversion = Conversion {
        on: "2026-05-10".parse().unwrap(),
        purchases: 1,
        value_cents: 12_900,
    };
    held.conversions = vec![(touch, Some(conversion))];
    records
        .record_outcome(held, t4)
        .await
        .expect("record the holdout and a conversion");
    let seen = context("ev-next").await;
    assert_eq!(seen.band_since, Some(t4), "a new band starts anew");
    assert_eq!(seen.decisions.len(), 3);
    assert_eq!(seen.decisions[0].outcome, DecisionOutcome::HeldOut);
    let converted = seen
        .decisions
        .iter()
        .find(|d| d.event_id.as_str() == "ev-o1")
        .unwrap();
    assert_eq!(converted.conversion, Some(conversion));
    let detail = review
        .email_detail(email.clone(), None)
        .await
        .expect("detail")
        .expect("the email");
    assert_eq!(
        detail.conversion,
        Some(conversion),
        "the email shows its conversion"
    );

    // Taken back (the purchase was deleted): no conversion any more.
    let t5 = at("2026-05-21T09:00:00Z");
    let mut undo = effect("ev-o5", t5, 61, None, None);
    undo.conversions = vec![(converted.clone(), None)];
    records
        .record_outcome(undo, t5)
        .await
        .expect("undo the conversion");
    let decisions = records
        .decisions(ada.id.clone(), 10)
        .await
        .expect("decisions");
    assert_eq!(decisions.len(), 3);
    assert_eq!(
        decisions
            .iter()
            .find(|d| d.event_id.as_str() == "ev-o1")
            .unwrap()
            .conversion,
        None
    );
}
