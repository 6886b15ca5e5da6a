//! Consent at send time and durable delivery on DynamoDB (moto_server): the `Sending`
//! contract the SQLite store passes too, and the AWS path end to end: an approval in the
//! table reaches the deliveries queue through the table's stream, and the deliveries
//! poller sends it once.

use domain::{ClientInput, EmailStatus, NewClient, ProfileInput, StylistId};
use engage_aws::bootstrap::{QueueSettings, bootstrap};
use engage_aws::{Aws, moto::Moto, poll};
use ports::{EmailFilter, Records, Reviewer, Sending};
use processors::delivery::{Outbox, UnsubscribeLinks};
use processors::sender::{SenderCore, approve};
use processors::{EmailCore, SystemClock, TemplateWriter};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_keeps_the_sending_contract() {
    let moto = Moto::start().expect("moto_server");
    let aws = Aws::at_endpoint(&moto.endpoint, "sending").await;
    bootstrap(&aws, &QueueSettings::default(), &|_| {})
        .await
        .expect("bootstrap");
    let store = aws.store();
    processors::sender::contract::run(&store, Arc::new(store.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_reaches_the_deliveries_queue_through_the_stream_and_is_sent_once() {
    let moto = Moto::start().expect("moto_server");
    let aws = Aws::at_endpoint(&moto.endpoint, "outbox").await;
    let resources = bootstrap(&aws, &QueueSettings::default(), &|_| {})
        .await
        .expect("bootstrap");
    let store = aws.store();
    store
        .upsert_stylist(
            StylistId::new("st-maya"),
            "Maya Okafor".into(),
            "maya@engage.example".into(),
        )
        .await
        .unwrap();
    let outbox = tempfile::tempdir().unwrap();
    let clock = Arc::new(SystemClock);
    let core = Arc::new(EmailCore::new(
        Arc::new(store.clone()),
        clock.clone(),
        Arc::new(TemplateWriter),
        domain::policy::PolicySettings::without_holdout(),
    ));
    let sender = Arc::new(SenderCore::new(
        Arc::new(store.clone()),
        Arc::new(Outbox {
            dir: outbox.path().to_owned(),
        }),
        UnsubscribeLinks::new(b"k".to_vec(), "https://shop.example"),
        "shop.example".into(),
        clock.clone(),
        3,
    ));
    let shutdown = CancellationToken::new();
    let tasks = poll::spawn_pollers(
        &aws,
        &resources,
        core,
        Some(sender),
        &Default::default(),
        &shutdown,
    );

    let now = chrono::Utc::now();
    let input = ClientInput {
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        stylist_id: "st-maya".into(),
        status: None,
        profile: ProfileInput {
            email_opt_in: true,
            ..ProfileInput::default()
        },
    };
    let client = store
        .create_client(NewClient::parse(&input, now).unwrap(), now)
        .await
        .unwrap();
    let filter = EmailFilter {
        client: Some(client.id.clone()),
        ..EmailFilter::default()
    };
    let mut draft = None;
    for _ in 0..150 {
        if let Some(email) = store.emails(filter.clone(), 5).await.unwrap().pop() {
            draft = Some(email);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let draft = draft.expect("the pipeline drafted a welcome within 30 s");
    let maya = Reviewer {
        name: "maya@engage.example".into(),
        scope: Some(StylistId::new("st-maya")),
    };
    assert_eq!(
        approve(
            &store,
            vec![draft.id.clone()],
            domain::schedule::SendAt::Now,
            &processors::sender::SendSettings::default(),
            maya,
            clock.as_ref()
        )
        .await
        .unwrap()
        .queued,
        1
    );
    let file = outbox.path().join(format!("{}.eml", draft.id));
    let mut status = EmailStatus::Approved;
    for _ in 0..150 {
        status = store
            .sendable(draft.id.clone())
            .await
            .unwrap()
            .unwrap()
            .status;
        if status == EmailStatus::Sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, EmailStatus::Sent, "the deliveries poller sent it");
    let eml = std::fs::read_to_string(&file).unwrap();
    assert!(eml.contains(&format!("Message-ID: <{}@shop.example>", draft.id)));

    // Bea's is scheduled 35 s ahead: the stream queues it with a delay, the sender puts
    // off what comes early, and it goes out at its time, not before.
    let bea = store
        .create_client(
            NewClient::parse(
                &ClientInput {
                    name: "Bea Moss".into(),
                    email: "bea@example.com".into(),
                    ..input.clone()
                },
                chrono::Utc::now(),
            )
            .unwrap(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let filter = EmailFilter {
        client: Some(bea.id.clone()),
        ..EmailFilter::default()
    };
    let mut scheduled = None;
    for _ in 0..150 {
        if let Some(email) = store.emails(filter.clone(), 5).await.unwrap().pop() {
            scheduled = Some(email);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let scheduled = scheduled.expect("the pipeline drafted Bea's welcome");
    let at = chrono::Utc::now() + chrono::Duration::seconds(35);
    let anytime = processors::sender::SendSettings {
        hours: domain::schedule::SendHours {
            quiet_start: 0,
            quiet_end: 0,
            default_hour: 10,
        },
        ..Default::default()
    };
    let report = approve(
        &store,
        vec![scheduled.id.clone()],
        domain::schedule::SendAt::At { at },
        &anytime,
        Reviewer {
            name: "maya@engage.example".into(),
            scope: Some(StylistId::new("st-maya")),
        },
        clock.as_ref(),
    )
    .await
    .unwrap();
    assert_eq!(report.scheduled, 1);
    let detail = store
        .email_detail(&scheduled.id, None)
        .await
        .unwrap()
        .unwrap();
    let kept = detail
        .send_after
        .expect("the schedule is kept on the email");
    assert!((kept - at).num_milliseconds().abs() <= 1, "{kept} vs {at}");
    let file = outbox.path().join(format!("{}.eml", scheduled.id));
    let mut sent_at = None;
    for _ in 0..450 {
        let status = store
            .sendable(scheduled.id.clone())
            .await
            .unwrap()
            .unwrap()
            .status;
        if status == EmailStatus::Sent {
            sent_at = Some(chrono::Utc::now());
            break;
        }
        assert_eq!(status, EmailStatus::Approved);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sent_at = sent_at.expect("sent within 90 s of approval");
    assert!(sent_at >= at, "sent at {sent_at}, scheduled for {at}");
    assert!(file.exists());
    shutdown.cancel();
    for task in tasks {
        let _ = task.await;
    }
}

/// How many messages moto's SES has sent (its `GetSendQuota`, which the v2 API lacks).
async fn sent_by_ses(endpoint: &str) -> u64 {
    let answer = reqwest::Client::new()
        .post(endpoint)
        // moto picks the service from the credential scope; it checks no signature.
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ses/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=GetSendQuota&Version=2010-12-01")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sent = answer
        .split("<SentLast24Hours>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no SentLast24Hours in {answer}"));
    sent.trim().parse::<f64>().unwrap() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ses_sends_the_built_message_from_a_verified_identity_and_refuses_other_senders() {
    use processors::delivery::{Delivery, build_message};
    let moto = Moto::start().expect("moto_server");
    let ses = aws_sdk_sesv2::Client::new(&Aws::endpoint_config(&moto.endpoint).await);
    let delivery = engage_aws::sender::SesDelivery::new(ses.clone(), "Engage.Example", None);
    let email = ports::Outgoing {
        id: domain::EmailId::new("em-ses-1"),
        client_id: domain::ClientId::new("cl-ada"),
        client_name: "Ada Lovelace".into(),
        client_email: "ada@example.com".into(),
        stylist_name: "Maya Okafor".into(),
        stylist_email: "maya@engage.example".into(),
        text: domain::DraftText {
            subject: "A few new pieces".into(),
            body_text: "Hi Ada,\n\nI picked a few cosy layers.\n\nMaya".into(),
        },
    };
    let message = build_message(
        &email,
        "https://shop.example/unsubscribe?c=1",
        "shop.example",
        chrono::Utc::now(),
    )
    .unwrap();

    // SES refuses a sender it has not verified, and says so.
    let refused = delivery.deliver(&email, &message).await.unwrap_err();
    assert!(refused.contains("SES refused the email"), "{refused}");
    assert_eq!(sent_by_ses(&moto.endpoint).await, 0);

    ses.create_email_identity()
        .email_identity("engage.example")
        .send()
        .await
        .unwrap();
    delivery.deliver(&email, &message).await.unwrap();
    assert_eq!(sent_by_ses(&moto.endpoint).await, 1, "SES took the message");

    // A stylist whose address is outside the identity is refused before SES is asked.
    let elsewhere = ports::Outgoing {
        stylist_email: "maya@gmail.example".into(),
        ..email.clone()
    };
    let refused = delivery.deliver(&elsewhere, &message).await.unwrap_err();
    assert!(
        refused.contains("outside the SES identity engage.example"),
        "{refused}"
    );
    assert_eq!(sent_by_ses(&moto.endpoint).await, 1);
}
