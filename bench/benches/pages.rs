//! Server-side render time of every page of the stylist's app on the demo data, through
//! the real router in process (session check, data, SSR), with a bare Axum handler timed
//! in the same run as the baseline. Run: `cargo bench -p engage-bench --bench pages`
//! (or `bench/pages-bench.sh`). Prints a table and writes JSON to
//! `$CARGO_TARGET_TMPDIR/pages.json`.

mod common;

use processors::{Clock, SystemClock};
use std::sync::Arc;
use store::Store;

/// The demo data's size; `PAGES_CLIENTS=100000` measures a larger book.
const DEMO_CLIENTS: u32 = 300;
const WARM_UP: usize = 20;
const SAMPLES: usize = 300;

fn main() {
    common::block_on(run());
}

async fn time_page(router: &axum::Router, path: &str, cookie: &str) -> (f64, f64) {
    common::time_page(router, path, cookie, WARM_UP, SAMPLES).await
}

async fn run() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(dir.path().join("engage.db")).expect("a database");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let clients = std::env::var("PAGES_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEMO_CLIENTS);
    let args = engage::config::ServeArgs::local(dir.path());
    common::seed_and_settle(&store, &clock, &args, clients).await;

    let mut cookies = Vec::new();
    for (email, role, stylist) in engage::demo::account_list().into_iter().take(3) {
        cookies.push((
            role,
            common::session(&store, clock.as_ref(), &email, role, stylist).await,
        ));
    }
    let (manager, stylist) = (&cookies[0].1, &cookies[2].1);
    let client = store
        .list_clients(
            domain::views::ClientQuery {
                limit: 1,
                ..Default::default()
            },
            Some(domain::StylistId::new("st-maya")),
        )
        .await
        .expect("clients")
        .clients
        .remove(0)
        .id;
    let email = store
        .find_emails(
            ports::EmailFilter {
                scope: Some(domain::StylistId::new("st-maya")),
                ..Default::default()
            },
            1,
        )
        .await
        .expect("emails")
        .remove(0)
        .id;
    let state = engage::startup::AppState::new(store.clone(), clock, args.addr, &args.web)
        .await
        .expect("the app state");
    let router = engage::startup::router(state);
    let bare = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));

    let (base_median, base_p90) = time_page(&bare, "/", manager).await;
    println!(
        "{clients} clients; baseline: bare Axum handler, median {base_median:.3} ms, p90 {base_p90:.3} ms"
    );
    println!(
        "{:<44} {:>8} {:>10} {:>8} {:>12}",
        "page (demo data)", "as", "median ms", "p90 ms", "x baseline"
    );
    let pages = [
        ("/", "manager", manager),
        ("/", "stylist", stylist),
        ("/?sort=score_lowest&band=at_risk", "manager", manager),
        ("/?search=ann", "manager", manager),
        (&*format!("/clients/{client}"), "stylist", stylist),
        (&*format!("/clients/{client}/edit"), "stylist", stylist),
        ("/clients/new", "stylist", stylist),
        ("/emails", "manager", manager),
        ("/emails", "stylist", stylist),
        (&*format!("/emails/{email}"), "stylist", stylist),
        ("/dashboard", "manager", manager),
        ("/signin", "nobody", &String::new()),
    ];
    let mut rows = Vec::new();
    for (path, who, cookie) in pages {
        let (median, p90) = time_page(&router, path, cookie).await;
        let shown = if path.len() > 44 {
            format!("{}…", &path[..43])
        } else {
            path.to_owned()
        };
        println!(
            "{shown:<44} {who:>8} {median:>10.2} {p90:>8.2} {:>12.0}",
            median / base_median
        );
        rows.push(serde_json::json!({"page": path, "as": who, "median_ms": median, "p90_ms": p90}));
    }
    let report =
        serde_json::json!({"clients": clients, "baseline_median_ms": base_median, "pages": rows});
    let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pages.json");
    std::fs::write(&out, report.to_string()).expect("report written");
}
