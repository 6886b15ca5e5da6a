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
        // Every welcome the tests expect is drafted, none held out.
        .env("ENGAGE_HOLDOUT", "welcome=0")
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
                // The demo book (as of now: a replayed past is server/tests/replay.rs's)
                // and accounts this test signs in with.
                "--demo-data",
                "true",
                "--demo-days",
                "0",
                "--demo-clients",
                "40",
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

    // Approving queues the send: the stream hands it to the deliveries queue, and the
    // sender writes it to the outbox once, marked sent.
    let approved = http
        .post(format!("{base}/api/v1/emails/{email_id}/approve"))
        .header("cookie", &cookie)
        .header("origin", &base)
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200);
    let report: serde_json::Value = approved.json().await.unwrap();
    assert_eq!(report["queued"], 1, "{report}");
    let eml_path = dir.path().join(format!("data/outbox/{email_id}.eml"));
    let eml = eventually("the sent email", || async {
        std::fs::read_to_string(&eml_path).ok()
    })
    .await;
    let status = |id: String| {
        let (http, base, cookie) = (http.clone(), base.clone(), cookie.clone());
        async move {
            let detail: serde_json::Value = http
                .get(format!("{base}/api/v1/emails/{id}"))
                .header("cookie", &cookie)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            detail["summary"]["status"].as_str().map(str::to_owned)
        }
    };
    eventually("sent", || async {
        status(email_id.clone()).await.filter(|s| s == "sent")
    })
    .await;

    // Ada unsubscribes through the link in that email; no edit opts her back in (422).
    let link = eml
        .lines()
        .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
        .map(|l| l.trim_end_matches('>').to_owned())
        .unwrap();
    let path = link.split_once("/unsubscribe").unwrap().1;
    let done = http
        .post(format!("{base}/unsubscribe{path}"))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let current: serde_json::Value = http
        .get(format!("{base}/api/v1/clients/{id}"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let put = |opt_in: bool| {
        http.put(format!("{base}/api/v1/clients/{id}"))
            .header("cookie", &cookie)
            .header("origin", &base)
            .json(&serde_json::json!({
                "expected_version": current["client"]["version"],
                "client": {"name": "Ada Lovelace", "email": "ada@example.com",
                    "stylist_id": "st-maya", "status": "active", "email_opt_in": opt_in,
                    "styles": [], "sizes": {}, "budget": "", "style_notes": ""}
            }))
            .send()
    };
    let refused = put(true).await.unwrap();
    assert_eq!(refused.status(), 422);
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "email_opt_in", "{problem}");

    // A draft for a client who has not agreed to emails is withdrawn on approval (409).
    let grace: serde_json::Value = http
        .post(format!("{base}/api/v1/clients"))
        .header("cookie", &cookie)
        .json(&serde_json::json!({
            "name": "Grace Hopper", "email": "grace@example.com", "stylist_id": "st-maya",
            "profile": {"email_opt_in": true}
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grace_id = grace["id"].as_str().unwrap().to_owned();
    let draft = eventually("Grace's welcome draft", || async {
        let emails: serde_json::Value = http
            .get(format!("{base}/api/v1/clients/{grace_id}/emails"))
            .header("cookie", &cookie)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        emails[0]["id"].as_str().map(str::to_owned)
    })
    .await;
    let unticked = http
        .put(format!("{base}/api/v1/clients/{grace_id}"))
        .header("cookie", &cookie)
        .json(&serde_json::json!({
            "expected_version": grace["version"],
            "client": {"name": "Grace Hopper", "email": "grace@example.com",
                "stylist_id": "st-maya", "status": "active", "email_opt_in": false,
                "styles": [], "sizes": {}, "budget": "", "style_notes": ""}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(unticked.status(), 200);
    let refused = http
        .post(format!("{base}/api/v1/emails/approve"))
        .header("cookie", &cookie)
        .json(&serde_json::json!({"ids": [draft]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(problem["reason"], "no_consent", "{problem}");
    assert_eq!(status(draft.clone()).await.as_deref(), Some("withdrawn"));
    assert!(
        !dir.path().join(format!("data/outbox/{draft}.eml")).exists(),
        "nothing was sent"
    );
}

/// What the web function answers a recorded Lambda event, as the runtime would send it
/// back: the JSON of `lambda_http`'s response.
async fn answer(function: &engage::lambda::WebFunction, event: &str) -> serde_json::Value {
    use lambda_http::tower::ServiceExt;
    let request: lambda_http::request::LambdaRequest = serde_json::from_str(event).unwrap();
    let event = lambda_http::LambdaEvent::new(request, lambda_http::Context::default());
    let response = lambda_http::Adapter::from(function.clone())
        .oneshot(event)
        .await
        .unwrap();
    serde_json::to_value(&response).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_function_answers_function_url_and_api_gateway_events() {
    use base64::Engine;
    use std::io::Read;
    let moto = Moto::start().expect("moto_server");
    let aws = engage_aws::Aws::at_endpoint(&moto.endpoint, "web").await;
    let settings = engage_aws::bootstrap::QueueSettings {
        max_receives: 5,
        visibility_timeout_secs: 30,
    };
    let resources = engage_aws::bootstrap::bootstrap(&aws, &settings, &|_| {})
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut args = engage::config::ServeArgs::local(dir.path());
    // As the template sets it: CloudFront sends this secret to the function URL.
    let secret = "cloudfront-origin-secret-0123456789abcdef";
    args.web.proxy_secret = Some(secret.into());
    let function = engage::lambda::app(
        &aws,
        &resources,
        std::sync::Arc::new(processors::SystemClock),
        processors::openrouter::FallbackWriter::new(None),
        &args,
    )
    .await
    .unwrap();

    // A Function URL request (payload 2.0) for the sign-in page, accepting gzip: the
    // compressed page goes back base64-encoded, intact.
    let page = answer(&function, include_str!("events/function-url.json")).await;
    assert_eq!(page["statusCode"], 200, "{page}");
    assert_eq!(page["headers"]["content-encoding"], "gzip", "{page}");
    assert_eq!(page["isBase64Encoded"], true);
    let compressed = base64::engine::general_purpose::STANDARD
        .decode(page["body"].as_str().unwrap())
        .unwrap();
    let mut html = String::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .read_to_string(&mut html)
        .unwrap();
    assert!(html.contains("signin-password"), "the sign-in form");
    let policy = page["headers"]["content-security-policy"].as_str().unwrap();
    assert!(
        policy.contains("'nonce-") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    assert_eq!(page["headers"]["x-content-type-options"], "nosniff");

    // Sign-in through the function counts failures against the address the gateway saw
    // (its request context), not what the client wrote into X-Forwarded-For.
    let through = |source: &str, forwarded: &str, secret: Option<&str>| {
        let mut event: serde_json::Value =
            serde_json::from_str(include_str!("events/function-url.json")).unwrap();
        event["requestContext"]["http"]["method"] = "POST".into();
        event["requestContext"]["http"]["sourceIp"] = source.into();
        event["headers"]["x-forwarded-for"] = forwarded.into();
        if let Some(secret) = secret {
            event["headers"]["x-engage-proxy-secret"] = secret.into();
        }
        event["headers"]["content-type"] = "application/x-www-form-urlencoded".into();
        event["body"] = "email=nobody%40engage.example&password=guess".into();
        event.to_string()
    };
    // A wrong password from `source`, which claims to be 203.0.113.5: the answer.
    let guess = async |source: &str| {
        let event = through(source, &format!("203.0.113.5, {source}"), None);
        answer(&function, &event).await
    };
    for attempt in 0..5 {
        let answer = guess("198.51.100.9").await;
        assert_eq!(
            answer["headers"]["location"], "/signin?error=invalid",
            "attempt {attempt}: {answer}"
        );
    }
    let waiting = guess("198.51.100.9").await;
    assert_eq!(
        waiting["headers"]["location"], "/signin?error=too_many&wait=1",
        "{waiting}"
    );
    assert_eq!(waiting["headers"]["retry-after"], "1");
    let elsewhere = guess("203.0.113.5").await;
    assert_eq!(
        elsewhere["headers"]["location"], "/signin?error=invalid",
        "another source address is not held back: {elsewhere}"
    );

    // Through CloudFront (the secret in the header), every viewer arrives from an edge
    // address: the viewer CloudFront appended is the one counted, so one viewer's guesses
    // hold back no one else at the same edge.
    let edge = "130.176.9.9";
    let viewer = |ip: &str| format!("1.2.3.4, {ip}, {edge}");
    // Where a wrong password from `source`, forwarding `viewer_ip`, leads.
    let location = async |source: &str, viewer_ip: &str, secret: Option<&str>| {
        let answer = answer(&function, &through(source, &viewer(viewer_ip), secret)).await;
        answer["headers"]["location"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    for attempt in 0..5 {
        let at = location(edge, "198.51.100.77", Some(secret)).await;
        assert_eq!(at, "/signin?error=invalid", "attempt {attempt}");
    }
    let waiting = location(edge, "198.51.100.77", Some(secret)).await;
    assert_eq!(waiting, "/signin?error=too_many&wait=1");
    let neighbour = location(edge, "198.51.100.78", Some(secret)).await;
    assert_eq!(neighbour, "/signin?error=invalid");
    // Without the secret (straight to the public function URL) the entries are not
    // believed: the caller is the source address.
    for _ in 0..5 {
        location("198.51.100.90", "198.51.100.91", Some("wrong")).await;
    }
    let forged = location("198.51.100.90", "198.51.100.92", None).await;
    assert_eq!(forged, "/signin?error=too_many&wait=1");

    // As deployed with a secret: the public function URL answers CloudFront only.
    args.web.only_through_proxy = true;
    let guarded = engage::lambda::app(
        &aws,
        &resources,
        std::sync::Arc::new(processors::SystemClock),
        processors::openrouter::FallbackWriter::new(None),
        &args,
    )
    .await
    .unwrap();
    let direct = answer(&guarded, include_str!("events/function-url.json")).await;
    assert_eq!(direct["statusCode"], 403, "{direct}");
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("events/function-url.json")).unwrap();
    event["headers"]["x-engage-proxy-secret"] = secret.into();
    let proxied = answer(&guarded, &event.to_string()).await;
    assert_eq!(proxied["statusCode"], 200, "{proxied}");

    // An API Gateway REST request through the stage `prod`: the stage is not part of the
    // app's paths, so /prod/healthz is the health check.
    let health = answer(&function, include_str!("events/apigw-rest.json")).await;
    assert_eq!(health["statusCode"], 200, "{health}");
    assert_eq!(health["isBase64Encoded"], false);

    // Signed-out requests for pages still go to the sign-in page, under any stage.
    let event = include_str!("events/apigw-rest.json")
        .replace("\"/healthz\"", "\"/emails\"")
        .replace("\"/prod/healthz\"", "\"/prod/emails\"");
    let redirect = answer(&function, &event).await;
    assert_eq!(redirect["statusCode"], 303, "{redirect}");
    assert_eq!(
        redirect["multiValueHeaders"]["location"][0],
        "/signin?next=%2Femails"
    );
}

/// Runs `engage <args>` against moto, with `stdin`; returns (success, stdout, stderr).
fn run(moto: &Moto, dir: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = engage(moto, dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_work_on_the_aws_backend() {
    use ports::{Accounts, Records};
    let moto = Moto::start().expect("moto_server");
    let dir = tempfile::tempdir().unwrap();
    let ok = |(success, out, err): (bool, String, String)| {
        assert!(success, "stdout: {out}\nstderr: {err}");
        out
    };
    ok(run(
        &moto,
        dir.path(),
        &[
            "aws",
            "bootstrap",
            "--max-receives",
            "2",
            "--visibility-timeout-secs",
            "1",
        ],
        "",
    ));
    let aws = engage_aws::Aws::at_endpoint(&moto.endpoint, "served").await;
    let store = aws.store();

    // Accounts: the first manager without touching DynamoDB by hand; bad input is named.
    let added = ok(run(
        &moto,
        dir.path(),
        &[
            "user",
            "add",
            "--backend",
            "aws",
            "--email",
            "boss@salon.example",
            "--role",
            "manager",
        ],
        "a long enough password\n",
    ));
    assert!(
        added.contains("Added boss@salon.example (manager)"),
        "{added}"
    );
    let boss = store
        .authenticate("boss@salon.example".into(), "a long enough password".into())
        .await
        .unwrap()
        .expect("the new manager signs in");
    assert_eq!(boss.role, domain::user::Role::Manager);
    let (success, _, err) = run(
        &moto,
        dir.path(),
        &[
            "user",
            "add",
            "--backend",
            "aws",
            "--email",
            "nope",
            "--role",
            "chief",
        ],
        "a long enough password\n",
    );
    assert!(
        !success && err.contains("email") && err.contains("role"),
        "{err}"
    );
    assert!(
        !dir.path().join("data/engage.db").exists(),
        "no SQLite file on AWS"
    );

    // Stylists: added and listed without demo data; bad input is named; then an account.
    let saved = ok(run(
        &moto,
        dir.path(),
        &[
            "stylist",
            "add",
            "--backend",
            "aws",
            "--id",
            "st-nia",
            "--name",
            "Nia  Adeyemi",
            "--email",
            "Nia@Salon.Example",
        ],
        "",
    ));
    assert!(
        saved.contains("Stylist st-nia (Nia Adeyemi, nia@salon.example) saved"),
        "{saved}"
    );
    let listed = ok(run(
        &moto,
        dir.path(),
        &["stylist", "list", "--backend", "aws", "--json"],
        "",
    ));
    let stylists: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(stylists[0]["id"], "st-nia");
    assert_eq!(stylists[0]["name"], "Nia Adeyemi");
    let (success, _, err) = run(
        &moto,
        dir.path(),
        &[
            "stylist",
            "add",
            "--backend",
            "aws",
            "--id",
            "st nia",
            "--name",
            "",
            "--email",
            "x",
        ],
        "",
    );
    assert!(
        !success && err.contains("id") && err.contains("stylist's name") && err.contains("email"),
        "{err}"
    );
    ok(run(
        &moto,
        dir.path(),
        &[
            "user",
            "add",
            "--backend",
            "aws",
            "--email",
            "nia@salon.example",
            "--role",
            "stylist",
            "--stylist",
            "st-nia",
        ],
        "another long password\n",
    ));

    // API keys: create, list, revoke.
    let created = ok(run(
        &moto,
        dir.path(),
        &[
            "apikey",
            "create",
            "--backend",
            "aws",
            "--name",
            "orders",
            "--role",
            "manager",
        ],
        "",
    ));
    let secret = created.lines().last().unwrap().trim().to_owned();
    let key = store.api_key(secret).await.unwrap().expect("the key works");
    let listed = ok(run(
        &moto,
        dir.path(),
        &["apikey", "list", "--backend", "aws"],
        "",
    ));
    assert!(
        listed.contains(&key.id) && listed.contains("active"),
        "{listed}"
    );
    let revoked = ok(run(
        &moto,
        dir.path(),
        &["apikey", "revoke", "--backend", "aws", &key.id],
        "",
    ));
    assert!(revoked.contains("Revoked API key"), "{revoked}");

    // A rescore queues one event per client; the served pipeline scores them.
    store
        .upsert_stylist(
            domain::StylistId::new("st-ops"),
            "Ops Stylist".into(),
            "ops@salon.example".into(),
        )
        .await
        .unwrap();
    let mut clients = Vec::new();
    for (name, email) in [
        ("Ada Ops", "ada.ops@example.com"),
        ("Ben Ops", "ben.ops@example.com"),
    ] {
        let input = domain::ClientInput {
            name: name.into(),
            email: email.into(),
            stylist_id: "st-ops".into(),
            status: None,
            profile: domain::ProfileInput {
                signed_up_on: Some("2025-01-10".into()),
                ..domain::ProfileInput::default()
            },
        };
        let now = chrono::Utc::now();
        let new = domain::NewClient::parse(&input, now).unwrap();
        clients.push(store.create_client(new, now).await.unwrap().id);
    }
    let rescored = ok(run(&moto, dir.path(), &["rescore", "--backend", "aws"], ""));
    assert!(
        rescored.contains("Queued 2 rescore(s)") && rescored.contains("for 2 client(s)"),
        "{rescored}"
    );
    let stats = ok(run(
        &moto,
        dir.path(),
        &["queue", "stats", "--backend", "aws", "--json"],
        "",
    ));
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["events_queue"]["visible"], 2, "{stats}");

    // A poisoned event is dead-lettered with its error, then redriven.
    let resources = engage_aws::bootstrap::locate(&aws).await.unwrap();
    aws.sqs
        .send_message()
        .queue_url(&resources.queue_url)
        .message_body("{ this is not an event")
        .send()
        .await
        .unwrap();
    let _server = Server(
        engage(&moto, dir.path())
            .args(["serve", "--backend", "aws", "--addr", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for client in &clients {
        eventually("the rescore to be scored", || async {
            (!store
                .score_history(client.clone(), 5)
                .await
                .unwrap()
                .is_empty())
            .then_some(())
        })
        .await;
    }
    let letters = eventually("the poisoned event in the dead-letter queue", || async {
        let (_, out, _) = run(
            &moto,
            dir.path(),
            &["dlq", "list", "--backend", "aws", "--json"],
            "",
        );
        let letters: Vec<serde_json::Value> = serde_json::from_str(&out).ok()?;
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let error = letters[0]["last_error"].as_str().unwrap();
    assert!(
        error.contains("not a domain event"),
        "the recorded error: {error}"
    );
    let listed = ok(run(
        &moto,
        dir.path(),
        &["dlq", "list", "--backend", "aws"],
        "",
    ));
    assert!(
        listed.contains("error: message is not a domain event"),
        "{listed}"
    );
    let (success, _, err) = run(
        &moto,
        dir.path(),
        &["dlq", "redrive", "--backend", "aws", "--id", "0"],
        "",
    );
    assert!(!success && err.contains("leave out --id"), "{err}");
    let moved = ok(run(
        &moto,
        dir.path(),
        &["dlq", "redrive", "--backend", "aws"],
        "",
    ));
    assert!(moved.contains("Moved 1 message(s)"), "{moved}");
}
