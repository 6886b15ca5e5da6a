//! The `engage` binary's commands, run as a user runs them: a separate process, real files,
//! checking exit status and output.

use std::path::Path;
use std::process::{Command, Output};

fn engage(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_engage"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .env_remove("ENGAGE_DB")
        .output()
        .expect("the engage binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn fitting_a_simulated_transaction_log_recovers_its_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let simulated = engage(
        &[
            "model",
            "simulate",
            "--customers",
            "20000",
            "--r",
            "0.8",
            "--alpha",
            "30",
            "--a",
            "0.9",
            "--b",
            "3.5",
            "--start",
            "2024-01-01",
            "--end",
            "2025-12-31",
            "--seed",
            "11",
            "--out",
            "log.csv",
        ],
        dir.path(),
    );
    assert!(simulated.status.success(), "{}", stderr(&simulated));
    let fitted = engage(
        &[
            "model",
            "fit",
            "--transactions",
            "log.csv",
            "--calibration-end",
            "2025-12-31",
            "--json",
        ],
        dir.path(),
    );
    assert!(fitted.status.success(), "{}", stderr(&fitted));
    let report: serde_json::Value = serde_json::from_str(&stdout(&fitted)).unwrap();
    assert_eq!(report["customers"], 20000);
    // Within 15% of the simulating values: the tolerance stated in domain::bgnbd's tests.
    for (name, want) in [("r", 0.8), ("alpha", 30.0), ("a", 0.9), ("b", 3.5)] {
        let got = report[name].as_f64().unwrap();
        assert!(
            (got - want).abs() / want < 0.15,
            "{name}: fitted {got}, simulated with {want}"
        );
    }
    assert!(report["log_likelihood"].as_f64().unwrap() < 0.0);
    assert!(
        !dir.path().join("data").exists(),
        "fitting a file needs no database"
    );
}

#[test]
fn a_malformed_transaction_log_is_refused_with_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.csv"),
        "client_id,date,amount\nc1,2025-01-01,10\nc1,2025-13-01,10\nc2,2025-01-02,ten\n",
    )
    .unwrap();
    let output = engage(&["model", "fit", "--transactions", "bad.csv"], dir.path());
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("line 3: date"), "{message}");
    assert!(message.contains("line 4: amount"), "{message}");
    assert!(
        stdout(&output).is_empty(),
        "nothing is fitted from a bad file"
    );
}

#[test]
fn seeding_and_fitting_the_client_base_stores_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let seeded = engage(
        &[
            "--db",
            "engage.db",
            "seed",
            "--days",
            "0",
            "--clients",
            "1500",
        ],
        dir.path(),
    );
    assert!(seeded.status.success(), "{}", stderr(&seeded));
    let fitted = engage(&["--db", "engage.db", "model", "fit", "--json"], dir.path());
    assert!(fitted.status.success(), "{}", stderr(&fitted));
    let report: serde_json::Value = serde_json::from_str(&stdout(&fitted)).unwrap();
    assert!(report["customers"].as_u64().unwrap() > 1000, "{report}");
    assert_eq!(report["source"], "clients");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stored = runtime.block_on(async {
        let store = store::Store::open(dir.path().join("engage.db")).unwrap();
        store
            .latest_model_fit()
            .await
            .unwrap()
            .expect("the fit is stored")
    });
    assert_eq!(stored.fit.params.r, report["r"].as_f64().unwrap());
    // Seeding again adds nothing: the same demo clients are already there.
    let again = engage(
        &[
            "--db",
            "engage.db",
            "seed",
            "--days",
            "0",
            "--clients",
            "1500",
        ],
        dir.path(),
    );
    assert!(again.status.success());
    let runtime_count = runtime.block_on(async {
        store::Store::open(dir.path().join("engage.db"))
            .unwrap()
            .client_count()
            .await
            .unwrap()
    });
    assert_eq!(runtime_count, 1500);
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for command in [
        &["--help"][..],
        &["serve", "--help"],
        &["seed", "--help"],
        &["model", "--help"],
        &["model", "fit", "--help"],
        &["model", "simulate", "--help"],
        &["queue", "--help"],
        &["queue", "stats", "--help"],
        &["dlq", "--help"],
        &["dlq", "list", "--help"],
        &["dlq", "redrive", "--help"],
        &["rescore", "--help"],
        &["user", "--help"],
        &["user", "add", "--help"],
        &["views", "--help"],
        &["views", "rebuild", "--help"],
    ] {
        let output = engage(command, dir.path());
        assert!(output.status.success(), "{command:?}");
        assert!(stdout(&output).contains("Usage: engage"), "{command:?}");
    }
}

#[test]
fn queue_stats_dlq_list_and_redrive_work_on_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engage.db");
    // A dead letter, made the way production makes them: an event no processor can read.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = store::Store::open(&db).unwrap();
        let now = chrono::Utc::now();
        let unreadable = serde_json::from_value::<domain::DomainEvent>(serde_json::json!({
            "schema_version": 99, "id": "e-unreadable", "client_id": "c-1", "stylist_id": "st-1",
            "client_version": 1, "occurred_at": now, "type": "client_created"
        }))
        .unwrap();
        store
            .publish(
                "cli-test",
                0,
                processors::EVENTS_QUEUE,
                vec![unreadable],
                now,
            )
            .await
            .unwrap();
        let clock: std::sync::Arc<dyn processors::Clock> =
            std::sync::Arc::new(processors::SystemClock);
        let email = processors::embedded::EmailProcessor::new(
            store.clone(),
            clock,
            std::sync::Arc::new(processors::TemplateWriter),
            processors::embedded::EmailProcessorConfig::without_holdout(),
        );
        email.process_batch().await.unwrap();
    });

    let stats = engage(
        &["--db", "engage.db", "queue", "stats", "--json"],
        dir.path(),
    );
    assert!(stats.status.success(), "{}", stderr(&stats));
    let figures: serde_json::Value = serde_json::from_str(&stdout(&stats)).unwrap();
    assert_eq!(figures["events_queue"]["dead_letters"], 1);
    assert_eq!(figures["events_queue"]["visible"], 0);
    assert_eq!(figures["feed_lag"], 0);
    let text = engage(&["--db", "engage.db", "queue", "stats"], dir.path());
    assert!(
        stdout(&text).contains("dead letters        1"),
        "{}",
        stdout(&text)
    );

    let listed = engage(&["--db", "engage.db", "dlq", "list", "--json"], dir.path());
    let letters: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(letters.as_array().unwrap().len(), 1);
    assert_eq!(letters[0]["dedup_id"], "e-unreadable");
    assert!(
        letters[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("schema version 99")
    );
    let id = letters[0]["id"].as_i64().unwrap().to_string();

    let missing = engage(
        &["--db", "engage.db", "dlq", "redrive", "--id", "999999"],
        dir.path(),
    );
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("no dead letter with id 999999"));
    let redriven = engage(
        &["--db", "engage.db", "dlq", "redrive", "--id", &id],
        dir.path(),
    );
    assert!(redriven.status.success(), "{}", stderr(&redriven));
    assert!(stdout(&redriven).contains("Moved 1 message"));
    let after: serde_json::Value = serde_json::from_str(&stdout(&engage(
        &["--db", "engage.db", "queue", "stats", "--json"],
        dir.path(),
    )))
    .unwrap();
    assert_eq!(after["events_queue"]["dead_letters"], 0);
    assert_eq!(after["events_queue"]["visible"], 1);
    let empty = engage(&["--db", "engage.db", "dlq", "list"], dir.path());
    assert!(stdout(&empty).contains("empty"));
}

fn engage_with_stdin(args: &[&str], cwd: &Path, stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_engage"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn accounts_are_added_with_a_password_from_stdin_and_bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let seeded = engage(
        &["--db", "engage.db", "seed", "--days", "0", "--clients", "1"],
        dir.path(),
    );
    assert!(seeded.status.success());
    let added = engage_with_stdin(
        &[
            "--db",
            "engage.db",
            "user",
            "add",
            "--email",
            "Maya.Okafor@engage.example",
            "--role",
            "stylist",
            "--stylist",
            "st-maya",
        ],
        dir.path(),
        "correct horse battery\n",
    );
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(stdout(&added).contains("Added maya.okafor@engage.example (stylist)"));
    assert!(
        !stdout(&added).contains("horse") && !stderr(&added).contains("horse"),
        "the password is never echoed"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let signed_in = runtime.block_on(async {
        let store = store::Store::open(dir.path().join("engage.db")).unwrap();
        store
            .authenticate(
                "maya.okafor@engage.example".into(),
                "correct horse battery".into(),
            )
            .await
            .unwrap()
    });
    assert_eq!(
        signed_in.unwrap().stylist_id,
        Some(domain::StylistId::new("st-maya"))
    );

    for (args, input, expected) in [
        (
            vec!["--email", "x@engage.example", "--role", "owner"],
            "correct horse battery\n",
            "role",
        ),
        (
            vec!["--email", "not-an-address", "--role", "manager"],
            "correct horse battery\n",
            "email",
        ),
        (
            vec!["--email", "m@engage.example", "--role", "manager"],
            "short\n",
            "password",
        ),
        (
            vec!["--email", "s@engage.example", "--role", "stylist"],
            "correct horse battery\n",
            "stylist_id",
        ),
        (
            vec!["--email", "maya.okafor@engage.example", "--role", "manager"],
            "correct horse battery\n",
            "email",
        ),
    ] {
        let mut full = vec!["--db", "engage.db", "user", "add"];
        full.extend(args);
        let output = engage_with_stdin(&full, dir.path(), input);
        assert!(!output.status.success(), "{full:?} should fail");
        assert!(
            stderr(&output).contains(expected),
            "{full:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn rescore_queues_every_client_once_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let seeded = engage(
        &[
            "--db",
            "engage.db",
            "seed",
            "--days",
            "0",
            "--clients",
            "1200",
        ],
        dir.path(),
    );
    assert!(seeded.status.success());
    let first = engage(&["--db", "engage.db", "rescore"], dir.path());
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("Queued 1200 rescore(s)"),
        "{}",
        stdout(&first)
    );
    let again = engage(&["--db", "engage.db", "rescore"], dir.path());
    assert!(
        stdout(&again).contains("Queued 0 rescore(s)")
            && stdout(&again).contains("1200 were already queued"),
        "{}",
        stdout(&again)
    );
    let stats: serde_json::Value = serde_json::from_str(&stdout(&engage(
        &["--db", "engage.db", "queue", "stats", "--json"],
        dir.path(),
    )))
    .unwrap();
    assert_eq!(stats["events_queue"]["visible"], 1200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_rebuild_recomputes_the_dashboard_views_from_the_logs() {
    use processors::embedded::EmailProcessorConfig;
    use processors::embedded::{EmailProcessor, StreamProcessor};
    use processors::{Clock, SystemClock, TemplateWriter};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let live = {
        let store = store::Store::open(dir.path().join("engage.db")).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        engage::demo::seed(&store, clock.as_ref(), 120)
            .await
            .unwrap();
        let stream = StreamProcessor::new(store.clone(), Arc::clone(&clock));
        let email = EmailProcessor::new(
            store.clone(),
            clock,
            Arc::new(TemplateWriter),
            EmailProcessorConfig::without_holdout(),
        );
        loop {
            let published = stream.process_batch().await.unwrap();
            let handled = email.process_batch().await.unwrap();
            if published == 0 && handled == 0 {
                break;
            }
        }
        store.view_rows().await.unwrap()
    };
    assert!(live.iter().any(|(_, rows)| !rows.is_empty()));
    let output = engage(&["--db", "engage.db", "views", "rebuild"], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("views rebuilt from the logs"));
    let store = store::Store::open(dir.path().join("engage.db")).unwrap();
    assert_eq!(store.view_rows().await.unwrap(), live);
}

/// Starts `engage serve` on `dir/engage.db` with `args` added, waits until it serves, stops
/// it, and returns what it logged.
fn serve_until_ready(dir: &Path, args: &[&str]) -> String {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_engage"))
        .args(["--db", "engage.db", "serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        // The defaults are under test, not whatever the caller's shell has set.
        .env_remove("ENGAGE_DB")
        .env_remove("ENGAGE_DEMO_DATA")
        .env_remove("ENGAGE_LOG_FORMAT")
        .env_remove("OPENROUTER_API_KEY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("Engage is serving") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(log.contains("Engage is serving"), "{log}");
    log
}

fn user_and_client_counts(dir: &Path) -> (u64, u64) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = store::Store::open(dir.join("engage.db")).unwrap();
        (
            store.user_count().await.unwrap(),
            store.client_count().await.unwrap(),
        )
    })
}

#[test]
fn a_plain_serve_on_an_empty_database_adds_no_accounts_and_says_how_to_add_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let log = serve_until_ready(dir.path(), &[]);
    assert_eq!(user_and_client_counts(dir.path()), (0, 0));
    assert!(!dir.path().join("demo-accounts.txt").exists());
    assert!(log.contains("no accounts yet"), "{log}");
    assert!(
        log.contains("user add --email you@example.com --role admin"),
        "{log}"
    );
}

#[test]
fn serve_with_demo_data_true_adds_the_demo_book_and_accounts_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = serve_until_ready(dir.path(), &["--demo-data", "true"]);
    let accounts = engage::demo::account_list().len() as u64;
    let (users, clients) = user_and_client_counts(dir.path());
    assert_eq!(users, accounts);
    assert!(clients > 0);
    assert!(dir.path().join("demo-accounts.txt").exists());
    assert!(!log.contains("no accounts yet"), "{log}");

    // A later plain start keeps them and has nothing to say about accounts.
    let again = serve_until_ready(dir.path(), &[]);
    assert_eq!(user_and_client_counts(dir.path()), (users, clients));
    assert!(!again.contains("no accounts yet"), "{again}");
}

#[test]
fn seed_replays_a_past_with_progress_and_only_on_an_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--db",
        "engage.db",
        "seed",
        "--days",
        "5",
        "--clients",
        "12",
        "--seed",
        "9",
    ];
    let replayed = engage(&args, dir.path());
    assert!(replayed.status.success(), "{}", stderr(&replayed));
    let said = stdout(&replayed);
    assert!(
        said.starts_with("Demo data replayed 6 days: 12 clients,"),
        "{said}"
    );
    // Progress, a day at a time (logged, since this is not a terminal).
    assert!(
        stderr(&replayed).contains("replaying the demo's past"),
        "{}",
        stderr(&replayed)
    );
    let again = engage(&args, dir.path());
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("needs an empty one (use --days 0"),
        "{}",
        stderr(&again)
    );
    let bad = engage(&["--db", "engage.db", "seed", "--days", "400"], dir.path());
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("--days"), "{}", stderr(&bad));
}
