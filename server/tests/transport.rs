//! Sign-in hardening and transport limits, over real HTTP on a loopback port served by the
//! binary's own server loop, on a real SQLite file: who a request is from behind a
//! proxy, the growing wait after failed sign-ins, rate limits on sign-in and sessions,
//! header and request deadlines, caps on live-update streams, security headers, metrics
//! labels and where sign-in may lead.

use domain::StylistId;
use domain::user::{Password, Role};
use engage::auth::{AuthSettings, Backoff};
use engage::config::WebArgs;
use engage::startup::{AppState, router};
use processors::{Clock, SystemClock};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const PASSWORD: &str = "a long enough password";

struct Server {
    _dir: tempfile::TempDir,
    store: Store,
    base: String,
    addr: SocketAddr,
    http: reqwest::Client,
    manager_key: String,
    shutdown: CancellationToken,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(
    web: impl FnOnce(WebArgs) -> WebArgs,
    auth: impl FnOnce(AuthSettings) -> AuthSettings,
) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("engage.db")).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    store
        .upsert_stylist(
            StylistId::new("st-1"),
            "Maya Okafor".into(),
            "maya@engage.example".into(),
        )
        .await
        .unwrap();
    for (email, role, stylist) in [
        (
            "maya@engage.example",
            Role::Stylist,
            Some(StylistId::new("st-1")),
        ),
        ("manager@engage.example", Role::Manager, None),
    ] {
        store
            .add_user(
                domain::ClientEmail::parse(email).unwrap(),
                role,
                stylist,
                Password::parse(PASSWORD).unwrap(),
                clock.now(),
            )
            .await
            .unwrap();
    }
    let manager_key = store
        .create_api_key("dashboards", Role::Manager, None, clock.now())
        .await
        .unwrap()
        .secret;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let web = web(WebArgs::local(dir.path()));
    let state = AppState::new(store.clone(), clock, addr, &web)
        .await
        .unwrap();
    let settings = auth(state.auth.clone());
    let state = state.with_auth(settings);
    let limits = engage::transport::Limits {
        drain: Duration::from_secs(1),
        ..engage::startup::transport_limits(&web)
    };
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(engage::transport::serve(
        listener,
        router(state),
        limits,
        shutdown.clone(),
    ));
    Server {
        _dir: dir,
        store,
        base: format!("http://{addr}"),
        addr,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        manager_key,
        shutdown,
        serving,
    }
}

/// What a sign-in answered.
#[derive(Debug)]
struct SignedIn {
    status: StatusCode,
    location: String,
    retry_after: Option<String>,
    session: Option<String>,
}

impl Server {
    /// Posts the sign-in form as a browser behind a proxy would, the proxy having set
    /// `forwarded` as the `X-Forwarded-For` header.
    async fn sign_in(&self, email: &str, password: &str, next: &str, forwarded: &str) -> SignedIn {
        let body =
            serde_urlencoded::to_string([("email", email), ("password", password), ("next", next)])
                .unwrap();
        let response = self
            .http
            .post(format!("{}/signin", self.base))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-forwarded-for", forwarded)
            .body(body)
            .send()
            .await
            .unwrap();
        let text = |name: header::HeaderName| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        SignedIn {
            status: response.status(),
            location: text(header::LOCATION).unwrap_or_default(),
            retry_after: text(header::RETRY_AFTER),
            session: text(header::SET_COOKIE).and_then(|cookie| {
                cookie
                    .split(';')
                    .next()
                    .and_then(|pair| pair.strip_prefix("engage_session="))
                    .filter(|token| !token.is_empty())
                    .map(str::to_owned)
            }),
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    /// The body `request` answers with.
    async fn text(request: reqwest::RequestBuilder) -> String {
        request.send().await.unwrap().text().await.unwrap()
    }

    async fn get_with_session(&self, path: &str, session: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header(header::COOKIE, format!("engage_session={session}"))
            .send()
            .await
            .unwrap()
    }

    async fn session_for(&self, email: &str) -> String {
        let user = self
            .store
            .authenticate(email.into(), PASSWORD.into())
            .await
            .unwrap()
            .unwrap();
        self.store
            .create_session(&user, chrono::Utc::now(), chrono::Duration::hours(1))
            .await
            .unwrap()
    }
}

fn quick_backoff(free: u32) -> Backoff {
    Backoff {
        free,
        first: Duration::from_secs(1),
        max: Duration::from_secs(60),
        forget_after: Duration::from_secs(3600),
    }
}

#[tokio::test]
async fn guessing_waits_longer_per_account_and_address_but_the_owner_is_never_locked_out() {
    let server = start(
        |web| web,
        |auth| AuthSettings {
            account_backoff: quick_backoff(3),
            address_backoff: quick_backoff(6),
            ..auth
        },
    )
    .await;
    // The attacker writes a decoy first entry; the proxy appends what it saw.
    let attacker = "1.1.1.1, 198.51.100.7";
    for _ in 0..3 {
        let answer = server
            .sign_in("maya@engage.example", "guess", "/emails", attacker)
            .await;
        assert_eq!(answer.location, "/signin?error=invalid&next=%2Femails");
        assert_eq!(answer.session, None);
    }
    let answer = server
        .sign_in("maya@engage.example", PASSWORD, "/emails", attacker)
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        answer.location,
        "/signin?error=too_many&wait=1&next=%2Femails"
    );
    assert_eq!(answer.retry_after.as_deref(), Some("1"));
    assert_eq!(
        answer.session, None,
        "even the right password waits its turn"
    );
    // Claiming to be the owner in the first entry changes nothing: the last one counts.
    let answer = server
        .sign_in(
            "maya@engage.example",
            PASSWORD,
            "/emails",
            "203.0.113.5, 198.51.100.7",
        )
        .await;
    assert!(
        answer.location.starts_with("/signin?error=too_many"),
        "{answer:?}"
    );

    // The owner, at her own address, signs in at once.
    let owner = server
        .sign_in("maya@engage.example", PASSWORD, "/emails", "203.0.113.5")
        .await;
    assert_eq!(owner.location, "/emails", "{owner:?}");
    assert!(owner.session.is_some());

    // Once the wait is over, the right password is accepted from the guessing address too.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = server
        .sign_in("maya@engage.example", PASSWORD, "/emails", attacker)
        .await;
    assert_eq!(later.location, "/emails", "{later:?}");
    assert!(later.session.is_some());

    // One address guessing across many accounts waits too, whichever account it tries.
    let sprayer = "198.51.100.8";
    for i in 0..6 {
        let answer = server
            .sign_in(&format!("nobody{i}@engage.example"), "guess", "/", sprayer)
            .await;
        assert_eq!(answer.location, "/signin?error=invalid", "attempt {i}");
    }
    let answer = server
        .sign_in("manager@engage.example", PASSWORD, "/", sprayer)
        .await;
    assert!(
        answer.location.starts_with("/signin?error=too_many&wait="),
        "{answer:?}"
    );
    let page = Server::text(server.get(&answer.location)).await;
    assert!(
        page.contains("Too many failed attempts. Try again in"),
        "{page}"
    );
}

#[tokio::test]
async fn guesses_sent_all_at_once_get_no_more_tries_than_one_after_another() {
    let server = Arc::new(
        start(
            |web| web,
            |auth| AuthSettings {
                account_backoff: quick_backoff(3),
                ..auth
            },
        )
        .await,
    );
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..12 {
        let server = Arc::clone(&server);
        burst.spawn(async move {
            server
                .sign_in(
                    "maya@engage.example",
                    &format!("guess {i}"),
                    "/",
                    "198.51.100.30",
                )
                .await
        });
    }
    let (mut judged, mut waited) = (0, 0);
    while let Some(answer) = burst.join_next().await {
        let answer = answer.unwrap();
        if answer.location == "/signin?error=invalid" {
            judged += 1;
        } else {
            assert!(
                answer.location.starts_with("/signin?error=too_many"),
                "{answer:?}"
            );
            waited += 1;
        }
    }
    assert_eq!(
        (judged, waited),
        (3, 9),
        "only the free tries had their password checked"
    );
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_address_and_a_session_like_an_api_key() {
    let server = start(
        |web| WebArgs {
            signin_rate_per_minute: 3,
            api_rate_per_minute: 5,
            ..web
        },
        |auth| auth,
    )
    .await;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let answer = server
            .sign_in("maya@engage.example", PASSWORD, "/", "198.51.100.20")
            .await;
        assert_eq!(answer.location, "/", "{answer:?}");
        sessions.push(answer.session.unwrap());
    }
    let answer = server
        .sign_in("maya@engage.example", PASSWORD, "/", "198.51.100.20")
        .await;
    assert!(
        answer.location.starts_with("/signin?error=too_many&wait="),
        "{answer:?}"
    );
    let wait: u64 = answer.retry_after.unwrap().parse().unwrap();
    assert!(
        (1..=20).contains(&wait),
        "a third of a minute at most: {wait}"
    );
    assert_eq!(answer.session, None);
    let elsewhere = server
        .sign_in("maya@engage.example", PASSWORD, "/", "198.51.100.21")
        .await;
    assert_eq!(
        elsewhere.location, "/",
        "another address has its own budget"
    );

    // A session's budget: five requests, then 429 with Retry-After, as for an API key.
    let session = &sessions[0];
    for i in 0..5 {
        let response = server.get_with_session("/api/v1/clients", session).await;
        assert_eq!(response.status(), StatusCode::OK, "request {i}");
    }
    let refused = server.get_with_session("/api/v1/clients", session).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(
        refused.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let page = server.get_with_session("/clients", session).await;
    assert_eq!(page.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(page.text().await.unwrap().contains("Try again in"));
    // Static files cost nothing, and another session of the same user has its own budget.
    let css = server.get_with_session("/pkg/engage.css", session).await;
    assert_ne!(css.status(), StatusCode::TOO_MANY_REQUESTS);
    let other = server
        .get_with_session("/api/v1/clients", &sessions[1])
        .await;
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn sign_in_leads_only_to_paths_on_this_site() {
    let server = start(|web| web, |auth| auth).await;
    for (i, (next, expected)) in [
        ("/emails?status=drafted", "/emails?status=drafted"),
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
    ]
    .into_iter()
    .enumerate()
    {
        let answer = server
            .sign_in(
                "maya@engage.example",
                PASSWORD,
                next,
                &format!("198.51.100.{}", 40 + i),
            )
            .await;
        assert_eq!(answer.location, expected, "next = {next:?}");
        assert!(answer.session.is_some());
        // A failed sign-in carries back only a safe `next` too.
        let failed = server
            .sign_in(
                "maya@engage.example",
                "wrong",
                next,
                &format!("198.51.100.{}", 60 + i),
            )
            .await;
        if expected == "/" {
            assert_eq!(failed.location, "/signin?error=invalid", "next = {next:?}");
        } else {
            assert_eq!(
                failed.location, "/signin?error=invalid&next=%2Femails%3Fstatus%3Ddrafted",
                "next = {next:?}"
            );
        }
    }
}

/// Reads what the server sends on `stream` until it closes the connection (or 10 s pass,
/// which fails the test).
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> String {
    let mut received = Vec::new();
    let outcome =
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received)).await;
    assert!(outcome.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_or_its_body_is_cut_off() {
    let server = start(
        |web| WebArgs {
            header_read_timeout_secs: 1,
            request_timeout_secs: 2,
            ..web
        },
        |auth| auth,
    )
    .await;
    // Headers that never end: the connection is closed, no answer given.
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut slow).await;
    assert!(!answer.contains("200 OK"), "{answer}");

    // A body that stops halfway: 503 when the request's time is up.
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(
        b"POST /signin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail=maya",
    )
    .await
    .unwrap();
    let answer = read_until_closed(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");

    // Meanwhile everyone else is served.
    let ok = server
        .http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_request_that_takes_longer_than_its_time_is_answered_503() {
    let slow = axum::Router::new()
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(120)).await;
                "late"
            }),
        )
        .layer(engage::startup::time_limits(Duration::from_secs(30)));
    let response = tower::ServiceExt::oneshot(
        slow,
        axum::http::Request::get("/slow")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn live_update_streams_are_capped_per_session_and_overall() {
    let server = start(
        |web| WebArgs {
            live_max_per_session: 2,
            live_max_total: 3,
            ..web
        },
        |auth| auth,
    )
    .await;
    let maya = server.session_for("maya@engage.example").await;
    let manager = server.session_for("manager@engage.example").await;
    let open = |session: String| {
        let server = &server;
        async move { server.get_with_session("/api/v1/live", &session).await }
    };
    let first = open(maya.clone()).await;
    assert_eq!(first.status(), StatusCode::OK);
    let second = open(maya.clone()).await;
    assert_eq!(second.status(), StatusCode::OK);
    let third = open(maya.clone()).await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        third.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let problem: serde_json::Value = third.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("this sign-in has as many live-update streams open as allowed"),
        "{problem}"
    );
    let managers = open(manager.clone()).await;
    assert_eq!(
        managers.status(),
        StatusCode::OK,
        "another session has its own"
    );
    let full = open(manager.clone()).await;
    assert_eq!(full.status(), StatusCode::TOO_MANY_REQUESTS);
    let problem: serde_json::Value = full.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("the server has"),
        "{problem}"
    );

    // Closing a stream frees its place (the server sees the connection go).
    drop(first);
    let mut reopened = None;
    for _ in 0..150 {
        let attempt = open(maya.clone()).await;
        if attempt.status() == StatusCode::OK {
            reopened = Some(attempt);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(reopened.is_some(), "a closed stream's place came free");
    drop((second, managers));
}

/// The value of the CSP's nonce source in `policy`.
fn nonce_of(policy: &str) -> String {
    policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no nonce in {policy}"))
        .to_owned()
}

fn policy(headers: &HeaderMap) -> String {
    headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn every_answer_carries_security_headers_and_pages_a_policy_with_their_nonce() {
    let server = start(|web| web, |auth| auth).await;
    let get = async |path: &str| server.get(path).send().await.unwrap();
    let page = get("/signin").await;
    let headers = page.headers().clone();
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    let page_policy = policy(&headers);
    for directive in [
        "default-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "'wasm-unsafe-eval'",
    ] {
        assert!(
            page_policy.contains(directive),
            "{directive}: {page_policy}"
        );
    }
    assert!(!page_policy.contains("unsafe-inline"), "{page_policy}");
    let nonce = nonce_of(&page_policy);
    assert!(nonce.len() >= 16, "{nonce}");
    let html = page.text().await.unwrap();
    let scripts: Vec<&str> = html.split("<script").skip(1).collect();
    assert!(
        !scripts.is_empty(),
        "the page hydrates with an inline script"
    );
    for script in scripts {
        let tag = script.split('>').next().unwrap();
        assert!(
            tag.contains(&format!("nonce=\"{nonce}\"")),
            "a script without this response's nonce: <script{tag}>"
        );
    }
    assert!(
        !html.contains("style=\""),
        "no inline styles for the policy to refuse"
    );
    let again = nonce_of(&policy(get("/signin").await.headers()));
    assert_ne!(again, nonce, "a fresh nonce for every response");

    // The API's documentation page: its own inline script and style carry its nonce.
    let docs = get("/api/docs").await;
    let docs_nonce = nonce_of(&policy(docs.headers()));
    let html = docs.text().await.unwrap();
    assert!(html.contains(&format!("<script nonce=\"{docs_nonce}\">")));
    assert!(html.contains(&format!("<style nonce=\"{docs_nonce}\">")));

    // Everything else gets the strict default.
    for path in ["/healthz", "/api/v1/clients", "/unsubscribe?token=nope"] {
        let response = get(path).await;
        let strict = policy(response.headers());
        assert!(
            strict.contains("frame-ancestors 'none'"),
            "{path}: {strict}"
        );
        assert!(!strict.contains("nonce-"), "{path}: {strict}");
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );
    }
}

#[tokio::test]
async fn metrics_label_only_known_methods_and_routes() {
    let server = start(|web| web, |auth| auth).await;
    let invented = reqwest::Method::from_bytes(b"BREW").unwrap();
    server
        .http
        .request(invented, format!("{}/clients/secret-123", server.base))
        .send()
        .await
        .unwrap();
    server.get("/no/such/path-999").send().await.unwrap();
    let metrics = Server::text(server.get("/metrics").bearer_auth(&server.manager_key)).await;
    let requests: Vec<&str> = metrics
        .lines()
        .filter(|line| line.starts_with("engage_http_requests_total{"))
        .collect();
    assert!(
        requests
            .iter()
            .any(|line| line.contains("method=\"OTHER\"")),
        "{metrics}"
    );
    for unknown in ["BREW", "secret-123", "path-999"] {
        assert!(
            !metrics.contains(unknown),
            "{unknown} made a label:\n{metrics}"
        );
    }
    for line in requests {
        let method = line
            .split("method=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(
            [
                "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"
            ]
            .contains(&method),
            "{line}"
        );
    }
}

#[tokio::test]
async fn a_stop_waits_briefly_for_open_streams_then_closes_them() {
    let server = start(|web| web, |auth| auth).await;
    let maya = server.session_for("maya@engage.example").await;
    let stream = server.get_with_session("/api/v1/live", &maya).await;
    assert_eq!(stream.status(), StatusCode::OK);
    server.shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(15), server.serving).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "the server stopped within the drain: {stopped:?}"
    );
    drop(stream);
}
