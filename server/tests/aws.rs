//! `engage aws bootstrap` and `engage serve --backend aws` as a user runs them: separate
//! processes against a moto_server the test starts, the app used over real HTTP.

use engage_aws::moto::Moto;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn engage(moto: &Moto, cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_engage"));
    command
        .current_dir(cwd)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("ENGAGE_AWS_PREFIX", "served")
        .env("RUST_LOG", "warn")
        .env_remove("ENGAGE_DB")
        .env_remove("OPENROUTER_API_KEY");
    command
}

/// Stops the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_on_the_aws_backend_drafts_for_a_client_created_over_http() {
    let moto = Moto::start().expect("moto_server");
    let dir = tempfile::tempdir().unwrap();

    // Serving before bootstrapping says what to do.
    let early = engage(&moto, dir.path())
        .args(["serve", "--backend", "aws", "--addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!early.status.success());
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("engage aws bootstrap"),
        "{}",
        String::from_utf8_lossy(&early.stderr)
    );

    let bootstrap = engage(&moto, dir.path())
        .args(["aws", "bootstrap"])
        .output()
        .unwrap();
    assert!(
        bootstrap.status.success(),
        "{}",
        String::from_utf8_lossy(&bootstrap.stderr)
    );
    let listed = String::from_utf8_lossy(&bootstrap.stdout).into_owned();
    for name in ["served-records", "served-events", "served-events-dlq"] {
        assert!(listed.contains(name), "{listed}");
    }
    // Again: finds them, changes nothing.
    let again = engage(&moto, dir.path())
        .args(["aws", "bootstrap"])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(String::from_utf8_lossy(&again.stdout), listed);

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Server(
        engage(&moto, dir.path())
            .args([
                "serve",
                "--backend",
                "aws",
                "--addr",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    eventually("the server", || async {
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await;
    let ready: serde_json::Value = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");

    // The demo accounts it made on first start.
    let accounts = std::fs::read_to_string(dir.path().join("data/demo-accounts-aws.txt")).unwrap();
    let password = accounts
        .split("password for each: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap()
        .to_owned();
    let signed_in = http
        .post(format!("{base}/signin"))
        .form(&[
            ("email", "maya.okafor@engage.example"),
            ("password", password.as_str()),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    let cookie = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("engage_session="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .expect("a session cookie");

    // The clients page renders from DynamoDB with the demo book.
    let page = http
        .get(format!("{base}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Maya Okafor"), "the book's stylist is named");

    let created: serde_json::Value = http
        .post(format!("{base}/api/v1/clients"))
        .header("cookie", &cookie)
        .json(&serde_json::json!({
            "name": "Ada Lovelace", "email": "ada@example.com", "stylist_id": "st-maya",
            "profile": {"email_opt_in": true}
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().expect("created").to_owned();

    // Through the stream, SNS, SQS and the email processor: the welcome draft.
    let emails = eventually("the welcome draft", || async {
        let emails: serde_json::Value = http
            .get(format!("{base}/api/v1/clients/{id}/emails"))
            .header("cookie", &cookie)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        emails.as_array().filter(|e| !e.is_empty()).cloned()
    })
    .await;
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0]["kind"], "welcome");
    assert_eq!(emails[0]["status"], "drafted");
    let score: serde_json::Value = http
        .get(format!("{base}/api/v1/clients/{id}/score"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        score["history"].as_array().map(Vec::len),
        Some(1),
        "{score}"
    );

    // The review queue shows it, and approving writes it to the outbox.
    let email_id = emails[0]["id"].as_str().unwrap().to_owned();
    let queue = http
        .get(format!("{base}/emails"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(queue.contains("Ada Lovelace"));
    let detail = http
        .get(format!("{base}/emails/{email_id}"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(detail.status(), 200);
}
