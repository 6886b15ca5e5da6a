//! `engage serve` drafting with an LLM: the real binary, configured with a mock
//! OpenRouter on 127.0.0.1 as its base URL, labels drafts with the model that answered and
//! stores their token counts; `/readyz` shows the breaker.

use axum::Json;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A mock OpenRouter that always answers with a valid draft from `mock/stylist-1`.
async fn mock_openrouter() -> String {
    async fn chat(Json(request): Json<Value>) -> Json<Value> {
        assert!(request["response_format"]["json_schema"].is_object());
        let draft = json!({"subject": "Welcome to your styling journey", "body": "Hi there,\n\nI am so glad you joined. Tell me what you love to wear and I will pick your first pieces.\n\nWarmly,\nMaya"});
        Json(json!({
            "model": "mock/stylist-1",
            "choices": [{"finish_reason": "stop", "message": {"content": draft.to_string()}}],
            "usage": {"prompt_tokens": 321, "completion_tokens": 123, "cost": 0.0007}
        }))
    }
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_are_labelled_with_the_answering_model_and_carry_token_counts() {
    let llm = mock_openrouter().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engage.db");
    let seeded = Command::new(env!("CARGO_BIN_EXE_engage"))
        .args(["seed", "--days", "0", "--clients", "1"])
        .env("ENGAGE_DB", &db)
        .env("RUST_LOG", "warn")
        .env_remove("OPENROUTER_API_KEY")
        .status()
        .unwrap();
    assert!(seeded.success());
    // A manager session, made in the database before the server opens it.
    let cookie = {
        let store = store::Store::open(&db).unwrap();
        let now = chrono::Utc::now();
        let user = store
            .add_user(
                domain::ClientEmail::parse("manager@engage.example").unwrap(),
                domain::user::Role::Manager,
                None,
                domain::user::Password::parse("a long test password").unwrap(),
                now,
            )
            .await
            .unwrap();
        let token = store
            .create_session(&user, now, chrono::Duration::hours(1))
            .await
            .unwrap();
        format!("engage_session={token}")
    };
    let port = free_port();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_engage"))
            .arg("serve")
            .current_dir(dir.path())
            .env("ENGAGE_DB", &db)
            .env("ENGAGE_ADDR", format!("127.0.0.1:{port}"))
            .env("ENGAGE_DEMO_DATA", "false")
            .env("OPENROUTER_API_KEY", "test-key")
            .env("ENGAGE_LLM_BASE_URL", &llm)
            .env("ENGAGE_LLM_MODELS", "mock/stylist-1,mock/stylist-2")
            // The welcome must be drafted: with the default holdout one client in ten is
            // held out for comparison instead (by a hash of its random id).
            .env("ENGAGE_HOLDOUT", "welcome=0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .default_headers(
            [(
                reqwest::header::COOKIE,
                reqwest::header::HeaderValue::from_str(&cookie).unwrap(),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let created: Value = http
        .post(format!("{base}/api/v1/clients"))
        .json(
            &json!({"name": "Hedy Lamarr", "email": "hedy@example.com", "stylist_id": "st-maya",
                      "profile": {"email_opt_in": true}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let emails = loop {
        let emails: Value = http
            .get(format!("{base}/api/v1/clients/{id}/emails"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !emails.as_array().unwrap().is_empty() {
            break emails;
        }
        assert!(Instant::now() < deadline, "no draft appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(emails[0]["writer"], "mock/stylist-1");
    assert_eq!(emails[0]["prompt_tokens"], 321);
    assert_eq!(emails[0]["completion_tokens"], 123);
    assert_eq!(emails[0]["kind"], "welcome");

    let ready: Value = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["llm_breaker"]["state"], "closed");
}
