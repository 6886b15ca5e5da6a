//! What the benchmarks share.

// Each benchmark uses what it needs of these.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use processors::{Clock, SystemClock};
use std::time::{Duration, Instant};
use store::Store;
use tower::ServiceExt;

/// Runs a benchmark's `future` on a tokio runtime with two workers (this machine's cores).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// Seeds `clients` demo clients and lets the pipeline score everyone and write the
/// welcome drafts, as after a first start; returns once the pipeline has stopped.
pub async fn seed_and_settle(
    store: &Store,
    clock: &std::sync::Arc<dyn Clock>,
    args: &engage::config::ServeArgs,
    clients: u32,
) {
    engage::demo::seed(store, clock.as_ref(), clients)
        .await
        .expect("demo data");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut tasks = engage::startup::spawn_pipeline(
        store,
        clock,
        std::sync::Arc::new(processors::TemplateWriter),
        args,
        &Default::default(),
        &shutdown,
    );
    drain(store).await;
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
}

/// Waits until the pipeline has nothing left: no change unpublished, no event waiting or
/// in flight.
pub async fn drain(store: &Store) {
    loop {
        let stats = store
            .queue_stats(processors::EVENTS_QUEUE, SystemClock.now())
            .await
            .expect("stats");
        let lag = store
            .feed_lag(processors::embedded::CHECKPOINT)
            .await
            .expect("lag");
        if lag == 0 && stats.visible == 0 && stats.in_flight == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Median and 90th percentile of `samples` sequential GETs of `path` (after `warm_up`
/// unmeasured ones), in ms.
pub async fn time_page(
    router: &axum::Router,
    path: &str,
    cookie: &str,
    warm_up: usize,
    samples: usize,
) -> (f64, f64) {
    let mut times = Vec::with_capacity(samples);
    for i in 0..warm_up + samples {
        let request = Request::get(path)
            .header(header::HOST, "127.0.0.1:3000")
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .expect("a request");
        let started = Instant::now();
        let response = router.clone().oneshot(request).await.expect("a response");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        let elapsed = started.elapsed();
        assert_eq!(
            status,
            StatusCode::OK,
            "{path}: {}",
            String::from_utf8_lossy(&body)
        );
        if i >= warm_up {
            times.push(elapsed);
        }
    }
    median_p90(times)
}

/// The median and 90th percentile of `times`, in ms.
pub fn median_p90(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(times[times.len() / 2]), ms(times[times.len() * 9 / 10]))
}

/// A signed-in session's cookie for a new account `email` with `role`.
pub async fn session(
    store: &Store,
    clock: &dyn Clock,
    email: &str,
    role: domain::user::Role,
    stylist: Option<domain::StylistId>,
) -> String {
    let user = store
        .add_user(
            domain::ClientEmail::parse(email).expect("an address"),
            role,
            stylist,
            domain::user::Password::parse("benchmark password").expect("a password"),
            clock.now(),
        )
        .await
        .expect("an account");
    let token = store
        .create_session(&user, clock.now(), chrono::Duration::hours(1))
        .await
        .expect("a session");
    format!("engage_session={token}")
}
