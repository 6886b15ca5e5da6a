//! The HTTP surface, called in-process through the same router the binary serves, on a
//! real SQLite file.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use engage::startup::{AppState, router};
use http_body_util::BodyExt;
use processors::{Clock, SystemClock};
use std::sync::Arc;
use store::Store;
use tower::ServiceExt;

async fn app() -> (tempfile::TempDir, Store, axum::Router) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("engage.db")).unwrap();
    store
        .upsert_stylist(
            domain::StylistId::new("st-1"),
            "Maya Okafor".into(),
            "maya@engage.example".into(),
        )
        .await
        .unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let router = router(AppState::new(
        store.clone(),
        clock,
        "127.0.0.1:0".parse().unwrap(),
    ));
    (dir, store, router)
}

async fn body_text(response: axum::response::Response) -> String {
    String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_clients_page_is_server_rendered_and_loads_the_hydrate_bundle() {
    let (_dir, _store, app) = app().await;
    let response = app
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = body_text(response).await;
    assert!(
        html.contains("/pkg/engage.js"),
        "no hydrate script in {html}"
    );
    assert!(
        html.contains("/pkg/engage_bg.wasm") || html.contains("engage_bg.wasm"),
        "no wasm reference"
    );
    assert!(
        html.contains("Maya Okafor"),
        "stylists are rendered into the form"
    );
    assert!(html.contains("<h1>Clients</h1>"));
}

async fn post_form(app: axum::Router, path: &str, form: &str) -> axum::response::Response {
    app.oneshot(
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(Body::from(form.to_owned()))
            .unwrap(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn creating_a_client_with_a_bad_email_names_the_field_and_stores_nothing() {
    use leptos::server_fn::ServerFn;
    let (_dir, store, app) = app().await;
    let response = post_form(
        app,
        app::routes::clients::CreateClient::PATH,
        "name=Ada+Lovelace&email=ada%40nowhere&stylist_id=st-1",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let outcome: app::routes::clients::CreateClientOutcome =
        serde_json::from_str(&body_text(response).await).unwrap();
    let app::routes::clients::CreateClientOutcome::Rejected(errors) = outcome else {
        panic!("expected a rejection, got {outcome:?}")
    };
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].field, "email");
    assert_eq!(store.client_count().await.unwrap(), 0);
    assert!(
        store.read_changes(0, 10).await.unwrap().is_empty(),
        "no change record either"
    );
}

#[tokio::test]
async fn creating_a_valid_client_stores_it_with_its_change_record() {
    use leptos::server_fn::ServerFn;
    let (_dir, store, app) = app().await;
    let response = post_form(
        app,
        app::routes::clients::CreateClient::PATH,
        "name=Ada+Lovelace&email=ada%40example.com&stylist_id=st-1",
    )
    .await;
    let outcome: app::routes::clients::CreateClientOutcome =
        serde_json::from_str(&body_text(response).await).unwrap();
    assert!(
        matches!(outcome, app::routes::clients::CreateClientOutcome::Created { ref name, emails_allowed: false, .. } if name == "Ada Lovelace"),
        "{outcome:?}"
    );
    assert_eq!(store.client_count().await.unwrap(), 1);
    assert_eq!(store.read_changes(0, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn ticking_the_consent_box_records_the_opt_in() {
    use leptos::server_fn::ServerFn;
    let (_dir, store, app) = app().await;
    let response = post_form(
        app,
        app::routes::clients::CreateClient::PATH,
        "name=Grace+Hopper&email=grace%40example.com&stylist_id=st-1&email_opt_in=yes",
    )
    .await;
    let outcome: app::routes::clients::CreateClientOutcome =
        serde_json::from_str(&body_text(response).await).unwrap();
    let app::routes::clients::CreateClientOutcome::Created {
        id, emails_allowed, ..
    } = outcome
    else {
        panic!("expected a new client, got {outcome:?}")
    };
    assert!(emails_allowed);
    let client = store.get_client(id).await.unwrap().unwrap();
    assert!(client.profile.consent().allows_email());
}

async fn get_json(app: axum::Router, path: &str) -> (StatusCode, String, serde_json::Value) {
    let response = app
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = serde_json::from_str(&body_text(response).await).unwrap();
    (status, content_type, body)
}

#[tokio::test]
async fn the_score_endpoint_explains_the_score_its_history_and_the_model_view() {
    use processors::email::EmailProcessorConfig;
    use processors::{EmailProcessor, StreamProcessor, TemplateWriter};
    let (_dir, store, app) = app().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let today = clock.now().date_naive();
    let day = |n: u64| (today - chrono::Days::new(n)).to_string();
    let input = domain::ClientInput {
        name: "Grace Hopper".into(),
        email: "grace@example.com".into(),
        stylist_id: "st-1".into(),
        status: None,
        profile: domain::ProfileInput {
            email_opt_in: true,
            signed_up_on: Some(day(400)),
            fixes: [300, 250, 200, 150, 100]
                .map(|n| domain::profile::FixInput {
                    delivered_on: day(n),
                    items_sent: 5,
                    items_kept: 2,
                    order_value: "120".into(),
                })
                .to_vec(),
            ..domain::ProfileInput::default()
        },
    };
    let client = store
        .create_client(
            domain::NewClient::parse(&input, clock.now()).unwrap(),
            clock.now(),
        )
        .await
        .unwrap();
    StreamProcessor::new(store.clone(), Arc::clone(&clock))
        .process_batch()
        .await
        .unwrap();
    EmailProcessor::new(
        store.clone(),
        Arc::clone(&clock),
        Arc::new(TemplateWriter),
        EmailProcessorConfig::default(),
    )
    .process_batch()
    .await
    .unwrap();
    // A stored model fit gives the client a P(alive).
    store
        .save_model_fit(store::StoredFit {
            fit: domain::bgnbd::BgNbdFit {
                params: domain::bgnbd::BgNbdParams {
                    r: 3.0,
                    alpha: 150.0,
                    a: 1.2,
                    b: 6.0,
                },
                log_likelihood: -1.0,
                customers: 1,
                iterations: 1,
            },
            source: "clients".into(),
            observation_end: today,
            fitted_at: clock.now(),
        })
        .await
        .unwrap();

    let (status, _, body) =
        get_json(app.clone(), &format!("/api/v1/clients/{}/score", client.id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let current = &body["current"];
    let factors = current["factors"].as_array().unwrap();
    let sum: i64 = factors.iter().map(|f| f["points"].as_i64().unwrap()).sum();
    assert_eq!(sum, current["score"].as_i64().unwrap());
    let recency = factors.iter().find(|f| f["name"] == "recency").unwrap();
    assert_eq!(
        recency["explanation"],
        "Last Fix 100 days ago; this client usually orders every 50 days: -5"
    );
    let history = body["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["score"], current["score"]);
    assert!(
        history[0]["event_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36)
    );
    let p_alive = body["model"]["p_alive"].as_f64().unwrap();
    assert!(p_alive > 0.0 && p_alive < 1.0, "{p_alive}");
    assert!(
        body["model"]["expected_purchases_90_days"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    let (status, content_type, problem) =
        get_json(app.clone(), "/api/v1/clients/nobody/score").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(problem["detail"], "no client with id nobody");

    let (status, _, problem) =
        get_json(app, &format!("/api/v1/clients/{}/score?limit=0", client.id)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["field"], "limit");
}

#[tokio::test]
async fn readiness_reports_the_pipeline_figures() {
    let (_dir, _store, app) = app().await;
    let response = app
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&body_text(response).await).unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["feed_lag"], 0);
    assert_eq!(body["events_queue"]["dead_letters"], 0);
}

#[tokio::test]
async fn an_unknown_address_gets_the_not_found_page() {
    let (_dir, _store, app) = app().await;
    let response = app
        .oneshot(Request::get("/no/such/page").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(body_text(response).await.contains("Page not found"));
}

async fn post_json(
    app: axum::Router,
    path: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let response = app
        .oneshot(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    (
        status,
        serde_json::from_str(&body_text(response).await).unwrap(),
    )
}

#[tokio::test]
async fn clients_are_created_and_fixes_recorded_through_the_api() {
    let (_dir, store, app) = app().await;
    let (status, created) = post_json(
        app.clone(),
        "/api/v1/clients",
        serde_json::json!({"name": "Ada Lovelace", "email": "ada@example.com", "stylist_id": "st-1",
                           "profile": {"email_opt_in": true}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["version"], 1);
    let id = created["id"].as_str().unwrap().to_owned();

    let today = chrono::Utc::now().date_naive().to_string();
    let fix = |version: u64| {
        serde_json::json!({"delivered_on": today, "items_sent": 5, "items_kept": 2,
                           "order_value": "120.00", "expected_version": version})
    };
    let (status, written) =
        post_json(app.clone(), &format!("/api/v1/clients/{id}/fixes"), fix(1)).await;
    assert_eq!(status, StatusCode::OK, "{written}");
    assert_eq!(written["version"], 2);
    assert_eq!(
        written["client"]["profile"]["fixes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Stale version: 409, nothing written.
    let (status, problem) =
        post_json(app.clone(), &format!("/api/v1/clients/{id}/fixes"), fix(1)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["field"], "expected_version");
    // Bad values: 422 naming each field.
    let (status, problem) = post_json(
        app.clone(),
        &format!("/api/v1/clients/{id}/fixes"),
        serde_json::json!({"delivered_on": "2999-01-01", "items_sent": 0, "items_kept": 3, "order_value": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["delivered_on", "order_value", "items_sent", "items_kept"]
    );
    // Not JSON of the right shape: 400.
    let (status, problem) = post_json(
        app.clone(),
        &format!("/api/v1/clients/{id}/fixes"),
        serde_json::json!({"nope": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    // Unknown client: 404.
    let (status, _) = post_json(app.clone(), "/api/v1/clients/nobody/fixes", fix(1)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A bad client: 422 naming the fields; nothing stored.
    let (status, problem) = post_json(
        app,
        "/api/v1/clients",
        serde_json::json!({"name": "", "email": "nope", "stylist_id": "st-1", "profile": {"fixes": [{"delivered_on": "2025-01-01", "items_sent": 3, "items_kept": 4, "order_value": "1"}]}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "email", "fixes[0].items_kept"]);
    assert_eq!(store.client_count().await.unwrap(), 1);
    assert_eq!(store.read_changes(0, 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_pending_email_can_be_regenerated_through_the_api() {
    use processors::email::EmailProcessorConfig;
    use processors::{EmailProcessor, StreamProcessor, TemplateWriter};
    let (_dir, store, app) = app().await;
    let (_, created) = post_json(
        app.clone(),
        "/api/v1/clients",
        serde_json::json!({"name": "Ada Lovelace", "email": "ada@example.com", "stylist_id": "st-1",
                           "profile": {"email_opt_in": true}}),
    )
    .await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    StreamProcessor::new(store.clone(), Arc::clone(&clock))
        .process_batch()
        .await
        .unwrap();
    let processor = EmailProcessor::new(
        store.clone(),
        Arc::clone(&clock),
        Arc::new(TemplateWriter),
        EmailProcessorConfig::default(),
    );
    processor.process_batch().await.unwrap();
    let id = domain::ClientId::new(created["id"].as_str().unwrap());
    let email = store.list_emails(Some(id), 1).await.unwrap().remove(0);

    let path = format!("/api/v1/emails/{}/regenerate", email.id);
    let (status, accepted) = post_json(
        app.clone(),
        &path,
        serde_json::json!({"instruction": "shorter, please"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["email_id"], email.id.as_str());
    assert_eq!(
        processor.process_batch().await.unwrap(),
        1,
        "the redraft went through the queue"
    );

    let (status, problem) = post_json(
        app.clone(),
        &path,
        serde_json::json!({"instruction": "x".repeat(201)}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "instruction");
    let (status, _) = post_json(app, "/api/v1/emails/nope/regenerate", serde_json::json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
