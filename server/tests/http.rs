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
        matches!(outcome, app::routes::clients::CreateClientOutcome::Created { ref name, .. } if name == "Ada Lovelace"),
        "{outcome:?}"
    );
    assert_eq!(store.client_count().await.unwrap(), 1);
    assert_eq!(store.read_changes(0, 10).await.unwrap().len(), 1);
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
