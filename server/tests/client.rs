//! The typed client (`engage-client`) and its quickstart example against a real server:
//! real HTTP on a loopback port, API keys, a real SQLite file.

use domain::StylistId;
use domain::user::Role;
use engage::config::WebArgs;
use engage::startup::{AppState, router};
use engage_client::{Engage, Error};
use processors::{Clock, SystemClock};
use std::sync::Arc;
use store::Store;

#[path = "../../client/examples/quickstart.rs"]
mod quickstart;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_example_runs_against_a_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("engage.db")).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    for (id, name) in [("st-1", "Maya Okafor"), ("st-2", "Jonas Lindqvist")] {
        store
            .upsert_stylist(
                StylistId::new(id),
                name.into(),
                format!("{id}@engage.example"),
            )
            .await
            .unwrap();
    }
    let key = |stylist: &'static str| {
        let store = store.clone();
        let now = clock.now();
        async move {
            store
                .create_api_key(stylist, Role::Stylist, Some(StylistId::new(stylist)), now)
                .await
                .unwrap()
                .secret
        }
    };
    let (maya, jonas) = (key("st-1").await, key("st-2").await);
    let web = WebArgs::local(dir.path());
    let state = AppState::new(
        store.clone(),
        clock,
        "127.0.0.1:3000".parse().unwrap(),
        &web,
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });

    let engage = Engage::new(&base, &maya).unwrap();
    let outcome = quickstart::quickstart(&engage, "st-1", "quinn@example.com")
        .await
        .expect("the quickstart runs");
    assert_eq!(outcome.version_after_fix, 2, "the Fix made version 2");
    assert!(outcome.score <= 100);
    assert!(!outcome.reasons.is_empty(), "the score explains itself");
    assert_eq!(outcome.clients_in_book, 1);
    assert_eq!(outcome.drafts_waiting, 0, "no pipeline runs in this test");
    let detail = engage.client(&outcome.client_id).await.unwrap();
    assert_eq!(detail.client.name.as_str(), "Quinn Quickstart");
    assert_eq!(detail.client.profile.fixes().len(), 1);

    // Another book's key gets the server's 404 problem, as a typed error.
    let other = Engage::new(&base, &jonas).unwrap();
    match other.client(&outcome.client_id).await {
        Err(Error::Refused(problem)) => assert_eq!(problem.status, 404, "{problem:?}"),
        other => panic!("another book's client was not refused: {other:?}"),
    }
    // Bad input comes back naming the field; the same address twice is refused.
    match quickstart::quickstart(&engage, "st-1", "quinn@example.com").await {
        Err(Error::Refused(problem)) => {
            assert_eq!(problem.status, 422, "{problem:?}");
            assert_eq!(problem.field.as_deref(), Some("email"), "{problem:?}");
        }
        other => panic!("a taken address was not refused: {other:?}"),
    }
    // A wrong key is a 401 problem; a non-URL is refused before any request.
    match Engage::new(&base, "ek_wrong")
        .unwrap()
        .clients(&Default::default())
        .await
    {
        Err(Error::Refused(problem)) => assert_eq!(problem.status, 401),
        other => panic!("a wrong key was accepted: {other:?}"),
    }
    assert!(matches!(
        Engage::new("engage.example", &maya),
        Err(Error::BadUrl(_))
    ));
    assert!(
        !format!("{engage:?}").contains(&maya),
        "the key stays out of Debug"
    );
}
