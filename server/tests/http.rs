//! The HTTP surface, called in-process through the same router the binary serves (with
//! its sign-in guard), on a real SQLite file.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use engage::config::WebArgs;
use engage::startup::{AppState, router};
use http_body_util::BodyExt;
use leptos::server_fn::ServerFn;
use processors::{Clock, SystemClock};
use std::sync::Arc;
use store::Store;
use tower::ServiceExt;

/// Who makes a request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum As {
    Nobody,
    Manager,
    /// The stylist st-1 (Maya).
    Maya,
    /// The stylist st-2 (Jonas).
    Jonas,
}

struct TestApp {
    dir: tempfile::TempDir,
    store: Store,
    router: axum::Router,
    sessions: Vec<(As, String)>,
    /// The embedded sender over the app's delivery, one attempt per email (the retries
    /// are the sender's own tests' concern).
    sender: processors::embedded::Sender,
    /// What `/readyz` reports on: the supervised tasks a test runs.
    processors: processors::supervise::Health,
}

const PASSWORD: &str = "correct horse battery staple";

async fn app() -> TestApp {
    app_sending_to(None).await
}

/// The app, sending approved emails to the SMTP server at `smtp` when given.
async fn app_sending_to(smtp: Option<String>) -> TestApp {
    app_with(smtp, None).await
}

/// The app, sending to `smtp` when given and tracking links as `tracking` says.
async fn app_with(
    smtp: Option<String>,
    tracking: Option<processors::tracking::Tracking>,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("engage.db")).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut sessions = Vec::new();
    for (who, id, name, email, role) in [
        (
            As::Maya,
            "st-1",
            "Maya Okafor",
            "maya@engage.example",
            domain::user::Role::Stylist,
        ),
        (
            As::Jonas,
            "st-2",
            "Jonas Lindqvist",
            "jonas@engage.example",
            domain::user::Role::Stylist,
        ),
        (
            As::Manager,
            "",
            "",
            "manager@engage.example",
            domain::user::Role::Manager,
        ),
    ] {
        let stylist = (!id.is_empty()).then(|| domain::StylistId::new(id));
        if let Some(stylist) = &stylist {
            store
                .upsert_stylist(stylist.clone(), name.into(), email.into())
                .await
                .unwrap();
        }
        let user = store
            .add_user(
                domain::ClientEmail::parse(email).unwrap(),
                role,
                stylist,
                domain::user::Password::parse(PASSWORD).unwrap(),
                clock.now(),
            )
            .await
            .unwrap();
        let token = store
            .create_session(&user, clock.now(), chrono::Duration::hours(1))
            .await
            .unwrap();
        sessions.push((who, token));
    }
    let processors = processors::supervise::Health::default();
    let web = WebArgs {
        smtp_url: smtp,
        ..WebArgs::local(dir.path())
    };
    let state = AppState::new(
        store.clone(),
        clock,
        "127.0.0.1:3000".parse().unwrap(),
        &web,
    )
    .await
    .unwrap()
    .with_processors(processors.clone());
    let state = match tracking {
        Some(tracking) => state.with_tracking(tracking),
        None => state,
    };
    let sender = processors::embedded::Sender {
        store: store.clone(),
        core: Arc::new(engage::startup::sender_core(
            Arc::new(store.clone()),
            &state,
            1,
        )),
        visibility: chrono::Duration::seconds(30),
        max_receives: 5,
    };
    TestApp {
        router: router(state),
        dir,
        store,
        sessions,
        sender,
        processors,
    }
}

impl TestApp {
    fn request(&self, method: &str, path: &str, who: As) -> axum::http::request::Builder {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "127.0.0.1:3000");
        if let Some((_, token)) = self.sessions.iter().find(|(w, _)| *w == who) {
            builder = builder.header(header::COOKIE, format!("engage_session={token}"));
        }
        builder
    }

    async fn send(&self, request: Request<Body>) -> axum::response::Response {
        self.router.clone().oneshot(request).await.unwrap()
    }

    async fn get(&self, path: &str, who: As) -> axum::response::Response {
        self.send(self.request("GET", path, who).body(Body::empty()).unwrap())
            .await
    }

    /// A server function called the way the hydrated page calls it.
    /// Approves draft `id` through the email page's form, as `who`.
    async fn approve(&self, id: &str, who: As) -> (StatusCode, String, Option<String>) {
        let form = format!("id={id}");
        self.call(app::routes::email_detail::ApproveEmail::PATH, &form, who)
            .await
    }

    /// Saves draft `id` with `subject` and `body` through the email page's form, as `who`.
    async fn save(
        &self,
        id: &str,
        subject: &str,
        body: &str,
        who: As,
    ) -> (StatusCode, String, Option<String>) {
        let form = form_encode(&[("id", id), ("subject", subject), ("body", body)]);
        self.call(app::routes::email_detail::SaveEmail::PATH, &form, who)
            .await
    }

    async fn call(&self, path: &str, form: &str, who: As) -> (StatusCode, String, Option<String>) {
        let response = self
            .send(
                self.request("POST", path, who)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(header::ACCEPT, "application/json")
                    .header(header::ORIGIN, "http://127.0.0.1:3000")
                    .body(Body::from(form.to_owned()))
                    .unwrap(),
            )
            .await;
        let status = response.status();
        let redirect = response
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        (status, body_text(response).await, redirect)
    }

    async fn get_json(&self, path: &str, who: As) -> (StatusCode, String, serde_json::Value) {
        let response = self.get(path, who).await;
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = serde_json::from_str(&body_text(response).await).unwrap();
        (status, content_type, body)
    }

    async fn post_json(
        &self,
        path: &str,
        body: serde_json::Value,
        who: As,
    ) -> (StatusCode, serde_json::Value) {
        let response = self
            .send(
                self.request("POST", path, who)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await;
        let status = response.status();
        (
            status,
            serde_json::from_str(&body_text(response).await).unwrap(),
        )
    }

    /// Runs the pipeline until it has nothing left to do.
    async fn drain_pipeline(&self) {
        use processors::TemplateWriter;
        use processors::embedded::EmailProcessorConfig;
        use processors::embedded::{EmailProcessor, StreamProcessor};
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let stream = StreamProcessor::new(self.store.clone(), Arc::clone(&clock));
        let email = EmailProcessor::new(
            self.store.clone(),
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
    }

    /// Delivers every approved email waiting on the deliveries queue.
    async fn drain_deliveries(&self) {
        while self.sender.run_once().await.unwrap() > 0 {}
    }

    /// The newest email of `client` (after the pipeline drafted it).
    async fn newest_email(&self, client: &domain::Client) -> domain::views::EmailSummary {
        self.store
            .list_emails(Some(client.id.clone()), 1)
            .await
            .unwrap()
            .remove(0)
    }

    async fn add_client(
        &self,
        name: &str,
        email: &str,
        stylist: &str,
        opt_in: bool,
    ) -> domain::Client {
        let input = domain::ClientInput {
            name: name.into(),
            email: email.into(),
            stylist_id: stylist.into(),
            status: None,
            profile: domain::ProfileInput {
                email_opt_in: opt_in,
                ..domain::ProfileInput::default()
            },
        };
        let now = chrono::Utc::now();
        self.store
            .create_client(domain::NewClient::parse(&input, now).unwrap(), now)
            .await
            .unwrap()
    }
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

fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc = |s: &str| -> String {
                s.bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect()
            };
            format!("{}={}", enc(k), enc(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn the_clients_page_is_server_rendered_and_loads_the_hydrate_bundle() {
    let t = app().await;
    t.add_client("Ada Lovelace", "ada@example.com", "st-1", false)
        .await;
    let response = t.get("/", As::Manager).await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = body_text(response).await;
    // The bundle's name is the one the site build gave it (content-hashed when a site is
    // embedded), never wasm-pack's `engage_bg.wasm`.
    let bundle = engage::assets::OUTPUT_NAME;
    assert!(
        html.contains(&format!("/pkg/{bundle}.js")),
        "no hydrate script in {html}"
    );
    assert!(
        html.contains(&format!("/pkg/{bundle}.wasm")),
        "no wasm reference"
    );
    assert!(
        html.contains(&format!("/pkg/{bundle}.css")),
        "no stylesheet"
    );
    assert!(!html.contains("_bg.wasm"), "wasm-pack's name");
    assert!(html.contains("<h1>Clients</h1>"));
    assert!(
        html.contains("Ada Lovelace"),
        "the list is rendered on the server"
    );
    assert!(
        html.contains("manager@engage.example"),
        "the header names who is signed in"
    );
}

#[tokio::test]
async fn nobody_signed_in_is_sent_to_sign_in_and_the_api_answers_401() {
    let t = app().await;
    let client = t
        .add_client("Ada Lovelace", "ada@example.com", "st-1", false)
        .await;
    let response = t.get(&format!("/clients/{}", client.id), As::Nobody).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[header::LOCATION],
        format!("/signin?next=%2Fclients%2F{}", client.id)
    );
    let (status, content_type, _) = t
        .get_json(&format!("/api/v1/clients/{}/score", client.id), As::Nobody)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(content_type, "application/problem+json");
    let (status, _, _) = t
        .call(app::routes::clients::ListClients::PATH, "", As::Nobody)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "server functions are guarded too"
    );
    let page = body_text(t.get("/signin", As::Nobody).await).await;
    assert!(page.contains("Sign in to Engage"));
    assert_eq!(t.get("/healthz", As::Nobody).await.status(), StatusCode::OK);
}

async fn sign_in(
    t: &TestApp,
    email: &str,
    password: &str,
    origin: Option<&str>,
) -> axum::response::Response {
    let mut request = t
        .request("POST", "/signin", As::Nobody)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-forwarded-for", "203.0.113.9");
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    t.send(
        request
            .body(Body::from(form_encode(&[
                ("email", email),
                ("password", password),
                ("next", "/emails"),
            ])))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn sign_in_sets_a_protected_cookie_and_sign_out_ends_the_session() {
    let t = app().await;
    let response = sign_in(
        &t,
        "Maya@Engage.example",
        PASSWORD,
        Some("http://127.0.0.1:3000"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/emails");
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("engage_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing from {cookie}"
        );
    }
    assert!(!cookie.contains("Secure"), "plain HTTP gets no Secure flag");
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("engage_session=")
        .to_owned();
    let signed_in = |path: &str, method: &str| {
        t.request(method, path, As::Nobody)
            .header(header::COOKIE, format!("engage_session={token}"))
            .header(header::ORIGIN, "http://127.0.0.1:3000")
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        t.send(signed_in("/emails", "GET")).await.status(),
        StatusCode::OK
    );
    let out = t.send(signed_in("/signout", "POST")).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        out.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        t.send(signed_in("/emails", "GET")).await.status(),
        StatusCode::SEE_OTHER,
        "the old cookie no longer works"
    );

    // Behind an HTTPS proxy the cookie is Secure.
    let request = t
        .request("POST", "/signin", As::Nobody)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-forwarded-proto", "https")
        .body(Body::from(form_encode(&[
            ("email", "maya@engage.example"),
            ("password", PASSWORD),
        ])))
        .unwrap();
    let response = t.send(request).await;
    assert!(
        response.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
}

#[tokio::test]
async fn wrong_passwords_are_refused_and_repeated_failures_make_the_next_try_wait() {
    let t = app().await;
    let response = sign_in(&t, "maya@engage.example", "not the password", None).await;
    assert_eq!(
        response.headers()[header::LOCATION],
        "/signin?error=invalid&next=%2Femails"
    );
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    for _ in 0..4 {
        sign_in(&t, "maya@engage.example", "still not it", None).await;
    }
    let response = sign_in(&t, "maya@engage.example", PASSWORD, None).await;
    assert_eq!(
        response.headers()[header::LOCATION],
        "/signin?error=too_many&wait=1&next=%2Femails"
    );
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    assert!(
        response.headers().get(header::SET_COOKIE).is_none(),
        "even the right password waits"
    );
    let page = body_text(t.get("/signin?error=too_many&wait=3", As::Nobody).await).await;
    assert!(
        page.contains("Too many failed attempts. Try again in 3 seconds"),
        "{page}"
    );
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let t = app().await;
    let response = sign_in(
        &t,
        "maya@engage.example",
        PASSWORD,
        Some("https://evil.example"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let request = t
        .request(
            "POST",
            app::routes::email_detail::RejectEmail::PATH,
            As::Maya,
        )
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(Body::from("id=x&reason=y"))
        .unwrap();
    assert_eq!(t.send(request).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_stylist_sees_only_their_own_book_and_other_clients_are_not_found() {
    let t = app().await;
    let mine = t
        .add_client("Ada Lovelace", "ada@example.com", "st-1", false)
        .await;
    let theirs = t
        .add_client("Grace Hopper", "grace@example.com", "st-2", false)
        .await;
    let list = body_text(t.get("/", As::Maya).await).await;
    assert!(
        list.contains("Ada Lovelace") && !list.contains("Grace Hopper"),
        "{list}"
    );
    let manager = body_text(t.get("/", As::Manager).await).await;
    assert!(
        manager.contains("Ada Lovelace") && manager.contains("Grace Hopper"),
        "{manager}"
    );

    assert_eq!(
        t.get(&format!("/clients/{}", mine.id), As::Maya)
            .await
            .status(),
        StatusCode::OK
    );
    let response = t.get(&format!("/clients/{}", theirs.id), As::Maya).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(!body_text(response).await.contains("Grace Hopper"));
    let (status, _, _) = t
        .get_json(&format!("/api/v1/clients/{}/score", theirs.id), As::Maya)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = t
        .get_json(&format!("/api/v1/clients/{}/emails", theirs.id), As::Maya)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Recording for someone else's client, or putting a client in someone else's book.
    let (status, body, _) = t
        .call(
            app::routes::client_detail::RecordFix::PATH,
            &form_encode(&[
                ("id", theirs.id.as_str()),
                ("delivered_on", ""),
                ("items_sent", "5"),
                ("items_kept", "2"),
                ("order_value", "100"),
            ]),
            As::Maya,
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        serde_json::from_str::<app::error::AppError>(&body).unwrap(),
        app::error::AppError::NotFound
    );
    let (_, body, _) = t
        .call(
            app::routes::client_form::CreateClient::PATH,
            &form_encode(&[
                ("name", "Eve"),
                ("email", "eve@example.com"),
                ("stylist_id", "st-2"),
            ]),
            As::Maya,
        )
        .await;
    let error: app::error::AppError = serde_json::from_str(&body).unwrap();
    assert!(error.message_for("stylist_id").is_some(), "{error:?}");
    assert_eq!(
        t.store
            .get_client(theirs.id)
            .await
            .unwrap()
            .unwrap()
            .version,
        1,
        "nothing written"
    );
}

#[tokio::test]
async fn creating_a_client_names_bad_fields_and_stores_nothing_then_opens_the_new_client() {
    let t = app().await;
    let (status, body, _) = t
        .call(
            app::routes::client_form::CreateClient::PATH,
            "name=Ada+Lovelace&email=ada%40nowhere&stylist_id=st-1",
            As::Maya,
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let app::error::AppError::Invalid(errors) = serde_json::from_str(&body).unwrap() else {
        panic!("{body}")
    };
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].field, "email");
    assert_eq!(t.store.client_count().await.unwrap(), 0);
    assert!(
        t.store.read_changes(0, 10).await.unwrap().is_empty(),
        "no change record either"
    );

    let form = "name=Grace+Hopper&email=grace%40example.com&stylist_id=st-1&email_opt_in=yes&styles%5B0%5D=classic&styles%5B4%5D=minimalist&budget=over_200&size_top=M&style_notes=Loves+navy";
    let (status, body, redirect) = t
        .call(app::routes::client_form::CreateClient::PATH, form, As::Maya)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = t
        .store
        .list_clients(
            domain::views::ClientQuery {
                limit: 10,
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    let client = t
        .store
        .get_client(page.clients[0].id.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(redirect.unwrap(), format!("/clients/{}?added=1", client.id));
    assert!(client.profile.consent().allows_email());
    let style = client.profile.style();
    assert_eq!(
        style.styles,
        [
            domain::profile::Style::Classic,
            domain::profile::Style::Minimalist
        ]
    );
    assert_eq!(style.budget, domain::profile::BudgetBand::Over200);
    assert_eq!(style.sizes.top.as_deref(), Some("M"));
    assert_eq!(style.notes, "Loves navy");
    assert_eq!(t.store.read_changes(0, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_form_posted_without_javascript_comes_back_with_the_error_in_the_address() {
    let t = app().await;
    let request = t
        .request(
            "POST",
            app::routes::client_form::CreateClient::PATH,
            As::Maya,
        )
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "text/html,application/xhtml+xml")
        .header(header::REFERER, "http://127.0.0.1:3000/clients/new")
        .body(Body::from("name=&email=ada%40example.com&stylist_id=st-1"))
        .unwrap();
    let response = t.send(request).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let back = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        back.starts_with("http://127.0.0.1:3000/clients/new?") && back.contains("__err="),
        "{back}"
    );
    // The page at that address shows the message beside the field.
    let path = back.trim_start_matches("http://127.0.0.1:3000");
    let html = body_text(t.get(path, As::Maya).await).await;
    assert!(html.contains("Name: Enter the client"), "{html}");
}

#[tokio::test]
async fn a_bulk_approval_posted_without_javascript_comes_back_saying_what_it_did() {
    let t = app().await;
    let client = t
        .add_client("Ada Lovelace", "ada@example.com", "st-1", true)
        .await;
    t.drain_pipeline().await;
    let draft = t.newest_email(&client).await;
    let request = t
        .request("POST", app::routes::emails::ApproveEmails::PATH, As::Maya)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "text/html,application/xhtml+xml")
        .header(header::REFERER, "http://127.0.0.1:3000/emails")
        .body(Body::from(form_encode(&[("ids[0]", draft.id.as_str())])))
        .unwrap();
    let response = t.send(request).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let back = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(back, "/emails?approved=1&scheduled=0");
    // The queue at that address says what happened; the draft has left it.
    let html = body_text(t.get(&back, As::Maya).await).await;
    assert!(
        html.contains("Approved: it is on its way to the client."),
        "{html}"
    );
    assert!(!html.contains(draft.id.as_str()), "{html}");
}

#[tokio::test]
async fn an_edit_based_on_an_old_version_gets_the_newer_values_and_writes_nothing() {
    let t = app().await;
    let client = t
        .add_client("Ada Lovelace", "ada@example.com", "st-1", false)
        .await;
    let edit = |name: &str, version: &str| {
        form_encode(&[
            ("id", client.id.as_str()),
            ("version", version),
            ("name", name),
            ("email", "ada@example.com"),
            ("stylist_id", "st-1"),
            ("status", "active"),
            ("budget", "from_50_to_100"),
        ])
    };
    let (status, body, redirect) = t
        .call(
            app::routes::client_form::UpdateClient::PATH,
            &edit("Ada King", "1"),
            As::Maya,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(redirect.unwrap(), format!("/clients/{}?saved=1", client.id));
    let (status, body, _) = t
        .call(
            app::routes::client_form::UpdateClient::PATH,
            &edit("Ada Byron", "1"),
            As::Manager,
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let app::error::AppError::Conflict { current, version } = serde_json::from_str(&body).unwrap()
    else {
        panic!("{body}")
    };
    assert_eq!((current.name.as_str(), version), ("Ada King", 2));
    let stored = t
        .store
        .get_client(client.id.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.name.as_str(), stored.version), ("Ada King", 2));
    // Invalid fields are named; the client stays as it was.
    let (_, body, _) = t
        .call(
            app::routes::client_form::UpdateClient::PATH,
            &edit(" ", "2"),
            As::Maya,
        )
        .await;
    let error: app::error::AppError = serde_json::from_str(&body).unwrap();
    assert!(error.message_for("name").is_some(), "{error:?}");
    assert_eq!(
        t.store
            .get_client(client.id)
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
}

#[tokio::test]
async fn recording_a_fix_moves_the_score_through_the_pipeline_and_shows_on_the_page() {
    let t = app().await;
    let client = t
        .add_client("Ada Lovelace", "ada@example.com", "st-1", false)
        .await;
    t.drain_pipeline().await;
    let before = t.store.score_points(client.id.clone(), 10).await.unwrap();
    assert_eq!(before.len(), 1);
    let fix = form_encode(&[
        ("id", client.id.as_str()),
        ("delivered_on", ""),
        ("items_sent", "5"),
        ("items_kept", "4"),
        ("order_value", "350.00"),
    ]);
    let (status, body, _) = t
        .call(app::routes::client_detail::RecordFix::PATH, &fix, As::Maya)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "2", "the new version");
    let bad = form_encode(&[
        ("id", client.id.as_str()),
        ("delivered_on", "2999-01-01"),
        ("items_sent", "five"),
        ("items_kept", "1"),
        ("order_value", "1"),
    ]);
    let (_, body, _) = t
        .call(app::routes::client_detail::RecordFix::PATH, &bad, As::Maya)
        .await;
    let error: app::error::AppError = serde_json::from_str(&body).unwrap();
    assert!(error.message_for("items_sent").is_some(), "{error:?}");
    t.drain_pipeline().await;
    let after = t.store.score_points(client.id.clone(), 10).await.unwrap();
    assert_eq!(after.len(), 2);
    assert!(after[1].score > before[0].score, "{after:?}");
    let html = body_text(t.get(&format!("/clients/{}", client.id), As::Maya).await).await;
    assert!(
        html.contains(&format!("data-score=\"{}\"", after[1].score)),
        "the page shows the new score"
    );
    assert!(
        html.contains("Fix recorded"),
        "the timeline lists the event"
    );
    assert!(
        html.contains("Keeps 80% of the items sent"),
        "the factors are explained"
    );
}
#[tokio::test]
async fn the_score_endpoint_explains_the_score_its_history_and_the_model_view() {
    use processors::TemplateWriter;
    use processors::embedded::EmailProcessorConfig;
    use processors::embedded::{EmailProcessor, StreamProcessor};
    let t = app().await;
    let store = t.store.clone();
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
        EmailProcessorConfig::without_holdout(),
    )
    .process_batch()
    .await
    .unwrap();
    // A stored model fit gives the client a P(alive).
    store
        .save_model_fit(ports::StoredFit {
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

    let (status, _, body) = t
        .get_json(&format!("/api/v1/clients/{}/score", client.id), As::Manager)
        .await;
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

    let (status, content_type, problem) = t
        .get_json("/api/v1/clients/nobody/score", As::Manager)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(problem["detail"], "no client with id nobody");

    let (status, _, problem) = t
        .get_json(
            &format!("/api/v1/clients/{}/score?limit=0", client.id),
            As::Manager,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "limit");
}

#[tokio::test]
async fn readiness_reports_the_pipeline_figures() {
    let t = app().await;
    let response = t.get("/readyz", As::Nobody).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&body_text(response).await).unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["feed_lag"], 0);
    assert_eq!(body["events_queue"]["dead_letters"], 0);

    // A supervised task that keeps panicking makes the server not ready, and says which.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let supervisor = tokio::spawn(processors::supervise::supervise(
        "email",
        t.processors.clone(),
        shutdown.clone(),
        || async { panic!("the email processor broke") },
    ));
    let body = loop {
        let response = t.get("/readyz", As::Nobody).await;
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            break body_text(response).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["processors"]["email"]["state"], "restarting", "{body}");
    assert!(body["processors"]["email"]["restarts"].as_u64().unwrap() >= 1);
    shutdown.cancel();
    supervisor.await.unwrap();
}

#[tokio::test]
async fn an_unknown_address_gets_the_not_found_page() {
    let t = app().await;
    let response = t.get("/no/such/page", As::Manager).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(body_text(response).await.contains("Page not found"));
}

#[tokio::test]
async fn clients_are_created_and_fixes_recorded_through_the_api() {
    let t = app().await;
    let store = t.store.clone();
    let (status, created) = t.post_json("/api/v1/clients",
        serde_json::json!({"name": "Ada Lovelace", "email": "ada@example.com", "stylist_id": "st-1",
                           "profile": {"email_opt_in": true}}), As::Maya).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["version"], 1);
    let id = created["id"].as_str().unwrap().to_owned();

    let today = chrono::Utc::now().date_naive().to_string();
    let fix = |version: u64| {
        serde_json::json!({"delivered_on": today, "items_sent": 5, "items_kept": 2,
                           "order_value": "120.00", "expected_version": version})
    };
    let (status, written) = t
        .post_json(&format!("/api/v1/clients/{id}/fixes"), fix(1), As::Maya)
        .await;
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
    let (status, problem) = t
        .post_json(&format!("/api/v1/clients/{id}/fixes"), fix(1), As::Maya)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["field"], "expected_version");
    // Bad values: 422 naming each field.
    let (status, problem) = t.post_json(&format!("/api/v1/clients/{id}/fixes"),
        serde_json::json!({"delivered_on": "2999-01-01", "items_sent": 0, "items_kept": 3, "order_value": "x"}), As::Maya).await;
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
    // JSON of the wrong shape: 422 naming the field.
    let (status, problem) = t
        .post_json(
            &format!("/api/v1/clients/{id}/fixes"),
            serde_json::json!({"nope": 1}),
            As::Maya,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], "nope", "{problem}");
    // Unknown client: 404.
    let (status, _) = t
        .post_json("/api/v1/clients/nobody/fixes", fix(1), As::Maya)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A bad client: 422 naming the fields; nothing stored.
    let (status, problem) = t.post_json("/api/v1/clients",
        serde_json::json!({"name": "", "email": "nope", "stylist_id": "st-1", "profile": {"fixes": [{"delivered_on": "2025-01-01", "items_sent": 3, "items_kept": 4, "order_value": "1"}]}}), As::Maya).await;
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
    use processors::TemplateWriter;
    use processors::embedded::EmailProcessorConfig;
    use processors::embedded::{EmailProcessor, StreamProcessor};
    let t = app().await;
    let store = t.store.clone();
    let (_, created) = t.post_json("/api/v1/clients",
        serde_json::json!({"name": "Ada Lovelace", "email": "ada@example.com", "stylist_id": "st-1",
                           "profile": {"email_opt_in": true}}), As::Maya).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    StreamProcessor::new(store.clone(), Arc::clone(&clock))
        .process_batch()
        .await
        .unwrap();
    let processor = EmailProcessor::new(
        store.clone(),
        Arc::clone(&clock),
        Arc::new(TemplateWriter),
        EmailProcessorConfig::without_holdout(),
    );
    processor.process_batch().await.unwrap();
    let id = domain::ClientId::new(created["id"].as_str().unwrap());
    let email = store.list_emails(Some(id), 1).await.unwrap().remove(0);

    let path = format!("/api/v1/emails/{}/regenerate", email.id);
    let (status, accepted) = t
        .post_json(
            &path,
            serde_json::json!({"instruction": "shorter, please"}),
            As::Maya,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["email_id"], email.id.as_str());
    assert_eq!(
        processor.process_batch().await.unwrap(),
        1,
        "the redraft went through the queue"
    );

    let (status, problem) = t
        .post_json(
            &path,
            serde_json::json!({"instruction": "x".repeat(201)}),
            As::Maya,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "instruction");
    let (status, _) = t
        .post_json(
            "/api/v1/emails/nope/regenerate",
            serde_json::json!({}),
            As::Maya,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_draft_is_edited_approved_and_sent_as_an_eml_with_a_working_unsubscribe_link() {
    let t = app().await;
    let client = t
        .add_client(
            "Ada <script>alert(1)</script> Lovelace",
            "ada@example.com",
            "st-1",
            true,
        )
        .await;
    t.drain_pipeline().await;
    let draft = t.newest_email(&client).await;
    assert_eq!(draft.status, domain::EmailStatus::Drafted);
    let id = draft.id.as_str().to_owned();

    // The review pages show the name as text, never as markup.
    for page in [
        "/emails".to_owned(),
        format!("/emails/{id}"),
        format!("/clients/{}", client.id),
    ] {
        let html = body_text(t.get(&page, As::Maya).await).await;
        assert!(
            !html.contains("<script>alert(1)"),
            "{page} renders the name as markup"
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
                || html.contains("&lt;script>alert(1)&lt;/script>"),
            "{page} does not show the name"
        );
    }
    // Someone else's stylist cannot touch it.
    let (status, body, _) = t.approve(id.as_str(), As::Jonas).await;
    assert_eq!(
        (
            status,
            serde_json::from_str::<app::error::AppError>(&body).unwrap()
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            app::error::AppError::NotFound
        )
    );

    // Edit: both fields are checked, then saved with who did it.
    let (_, body, _) = t.save(&id, "", "Hi", As::Maya).await;
    let error: app::error::AppError = serde_json::from_str(&body).unwrap();
    assert!(error.message_for("subject").is_some(), "{error:?}");
    let text = "Hi Ada,\n\nYour autumn Fix is ready when you are.\n\nMaya";
    let (status, body, _) = t.save(&id, "Your autumn Fix", text, As::Maya).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body, _) = t.approve(id.as_str(), As::Maya).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The email page's form answers with the sentence it shows: one email approved.
    let message: String = serde_json::from_str(&body).unwrap();
    assert!(message.starts_with("Approved: "), "{message}");
    t.drain_deliveries().await;
    let detail = t
        .store
        .email_detail(draft.id.clone(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.summary.status, domain::EmailStatus::Sent);
    assert!(detail.edited);
    let steps: Vec<(&str, &str)> = detail
        .reviews
        .iter()
        .map(|r| (r.action.as_str(), r.actor.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("edited", "maya@engage.example"),
            ("approved", "maya@engage.example"),
            ("sent", "delivery")
        ]
    );
    // Sent emails cannot be edited, rejected or approved again.
    let (_, body, _) = t.save(&id, "x", "y", As::Maya).await;
    assert!(
        serde_json::from_str::<app::error::AppError>(&body)
            .unwrap()
            .message_for("email_id")
            .is_some()
    );

    let eml =
        std::fs::read_to_string(t.dir.path().join("outbox").join(format!("{id}.eml"))).unwrap();
    assert!(eml.contains("Subject: Your autumn Fix\r\n"), "{eml}");
    assert!(eml.contains("Your autumn Fix is ready when you are."));
    assert!(eml.contains("From: \"Maya Okafor\" <maya@engage.example>"));
    let link = eml
        .lines()
        .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
        .map(|l| l.trim_end_matches('>').to_owned())
        .unwrap();
    assert!(
        link.starts_with("http://127.0.0.1:3000/unsubscribe?client="),
        "{link}"
    );
    assert!(eml.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    let path = link.trim_start_matches("http://127.0.0.1:3000");

    // Following the link asks first; a changed token is refused; the POST unsubscribes.
    let confirm = t.get(path, As::Nobody).await;
    assert_eq!(confirm.status(), StatusCode::OK);
    assert!(
        body_text(confirm)
            .await
            .contains("Unsubscribe from these emails?")
    );
    assert!(
        t.store
            .get_client(client.id.clone())
            .await
            .unwrap()
            .unwrap()
            .profile
            .consent()
            .allows_email()
    );
    let forged = format!("/unsubscribe?client={}&token=AAAA", client.id);
    assert_eq!(
        t.get(&forged, As::Nobody).await.status(),
        StatusCode::NOT_FOUND
    );
    // A mail client's one-click POST carries no Origin and no cookie.
    let one_click = Request::post(path)
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("List-Unsubscribe=One-Click"))
        .unwrap();
    let done = t.send(one_click).await;
    assert_eq!(done.status(), StatusCode::OK);
    let consent = t
        .store
        .get_client(client.id.clone())
        .await
        .unwrap()
        .unwrap()
        .profile
        .consent();
    assert!(
        matches!(consent, domain::EmailConsent::Unsubscribed { .. }),
        "{consent:?}"
    );
    // Opening the link again says so and offers the only way back: the client's own
    // new opt-in. A forged link cannot opt anyone in.
    let again = body_text(t.get(path, As::Nobody).await).await;
    assert!(again.contains("You are unsubscribed"), "{again}");
    let resubscribe = path.replacen("/unsubscribe?", "/resubscribe?", 1);
    assert!(
        again.contains(&resubscribe.replace('&', "&amp;")),
        "{again}"
    );
    let post = |path: &str| {
        Request::post(path)
            .header(header::HOST, "127.0.0.1:3000")
            .body(Body::empty())
            .unwrap()
    };
    let forged = format!("/resubscribe?client={}&token=AAAA", client.id);
    assert_eq!(t.send(post(&forged)).await.status(), StatusCode::NOT_FOUND);
    assert!(
        !t.store
            .get_client(client.id.clone())
            .await
            .unwrap()
            .unwrap()
            .profile
            .consent()
            .allows_email()
    );
    let back = t.send(post(&resubscribe)).await;
    assert_eq!(back.status(), StatusCode::OK);
    assert!(body_text(back).await.contains("Welcome back"));
    assert!(
        t.store
            .get_client(client.id.clone())
            .await
            .unwrap()
            .unwrap()
            .profile
            .consent()
            .allows_email(),
        "the client opted in again"
    );
}

/// Consent at send time from the pages: approving (alone or in a batch) a draft whose
/// client unsubscribed or whose account closed withdraws it with the reason, approves none
/// of the batch and sends nothing; the stylist's form cannot opt an unsubscribed client in.
#[tokio::test]
async fn the_pages_withdraw_drafts_of_clients_who_may_not_be_emailed() {
    let t = app().await;
    let ada = t
        .add_client("Ada Lovelace", "ada@example.com", "st-1", true)
        .await;
    let grace = t
        .add_client("Grace Hopper", "grace@example.com", "st-1", true)
        .await;
    let alan = t
        .add_client("Alan Turing", "alan@example.com", "st-1", true)
        .await;
    t.drain_pipeline().await;
    let (ada_draft, grace_draft, alan_draft) = (
        t.newest_email(&ada).await.id,
        t.newest_email(&grace).await.id,
        t.newest_email(&alan).await.id,
    );
    let now = chrono::Utc::now();
    t.store
        .update_client(
            ada.id.clone(),
            None,
            now,
            Box::new(move |client: &mut domain::Client| {
                client
                    .profile
                    .set_consent(domain::EmailConsent::Unsubscribed { at: now });
                Ok::<(), domain::ValidationErrors>(())
            }),
        )
        .await
        .unwrap();
    let status_of = |id: &domain::EmailId| {
        let (store, id) = (t.store.clone(), id.clone());
        async move {
            store
                .email_detail(id, None)
                .await
                .unwrap()
                .unwrap()
                .summary
                .status
        }
    };

    let batch = form_encode(&[
        ("ids[0]", grace_draft.as_str()),
        ("ids[1]", ada_draft.as_str()),
    ]);
    let (_, body, _) = t
        .call(app::routes::emails::ApproveEmails::PATH, &batch, As::Maya)
        .await;
    let error: app::error::AppError = serde_json::from_str(&body).unwrap();
    assert!(
        matches!(&error, app::error::AppError::Refused(m) if m.contains("unsubscribed")),
        "{error:?}"
    );
    assert_eq!(status_of(&ada_draft).await, domain::EmailStatus::Withdrawn);
    assert_eq!(status_of(&grace_draft).await, domain::EmailStatus::Drafted);
    let page = body_text(t.get(&format!("/emails/{ada_draft}"), As::Maya).await).await;
    assert!(
        page.contains("Not sent: </strong>The client has unsubscribed"),
        "the email page says why"
    );
    let queue = body_text(t.get("/emails", As::Maya).await).await;
    assert!(
        !queue.contains(ada_draft.as_str()),
        "it left the review queue"
    );

    // Alan's account is closed after his draft was written: approving it alone withdraws it.
    t.store
        .update_client(
            alan.id.clone(),
            None,
            now,
            Box::new(|client: &mut domain::Client| {
                client.status = domain::ClientStatus::Closed;
                Ok::<(), domain::ValidationErrors>(())
            }),
        )
        .await
        .unwrap();
    let (_, body, _) = t.approve(alan_draft.as_str(), As::Maya).await;
    let error: app::error::AppError = serde_json::from_str(&body).unwrap();
    assert!(
        matches!(&error, app::error::AppError::Refused(m) if m.contains("closed")),
        "{error:?}"
    );
    assert_eq!(status_of(&alan_draft).await, domain::EmailStatus::Withdrawn);
    t.drain_deliveries().await;
    assert!(!t.dir.path().join("outbox").exists(), "nothing was sent");

    // The form cannot tick the box for Ada again; nothing is written.
    let version = t
        .store
        .get_client(ada.id.clone())
        .await
        .unwrap()
        .unwrap()
        .version;
    let form = form_encode(&[
        ("id", ada.id.as_str()),
        ("version", &version.to_string()),
        ("name", "Ada Lovelace"),
        ("email", "ada@example.com"),
        ("stylist_id", "st-1"),
        ("status", "active"),
        ("email_opt_in", "yes"),
        ("budget", "from_50_to_100"),
    ]);
    let (_, body, _) = t
        .call(
            app::routes::client_form::UpdateClient::PATH,
            &form,
            As::Maya,
        )
        .await;
    let error: app::error::AppError = serde_json::from_str(&body).unwrap();
    assert!(
        error
            .message_for("email_opt_in")
            .is_some_and(|m| m.contains("Only the client")),
        "{error:?}"
    );
    let stored = t.store.get_client(ada.id.clone()).await.unwrap().unwrap();
    assert_eq!(stored.version, version, "nothing written");
    assert!(matches!(
        stored.profile.consent(),
        domain::EmailConsent::Unsubscribed { .. }
    ));
}

#[tokio::test]
async fn a_draft_is_rejected_with_a_reason_and_many_are_approved_at_once() {
    let t = app().await;
    let ada = t
        .add_client("Ada Lovelace", "ada@example.com", "st-1", true)
        .await;
    let grace = t
        .add_client("Grace Hopper", "grace@example.com", "st-1", true)
        .await;
    let alan = t
        .add_client("Alan Turing", "alan@example.com", "st-1", true)
        .await;
    t.drain_pipeline().await;
    let (ada_draft, grace_draft, alan_draft) = (
        t.newest_email(&ada).await.id,
        t.newest_email(&grace).await.id,
        t.newest_email(&alan).await.id,
    );

    let reject = |reason: &str| form_encode(&[("id", ada_draft.as_str()), ("reason", reason)]);
    let (_, body, _) = t
        .call(
            app::routes::email_detail::RejectEmail::PATH,
            &reject(" "),
            As::Maya,
        )
        .await;
    assert!(
        serde_json::from_str::<app::error::AppError>(&body)
            .unwrap()
            .message_for("reason")
            .is_some()
    );
    let (status, _, _) = t
        .call(
            app::routes::email_detail::RejectEmail::PATH,
            &reject("Too pushy for her"),
            As::Manager,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let rejected = t
        .store
        .email_detail(ada_draft.clone(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rejected.summary.status, domain::EmailStatus::Rejected);
    assert_eq!(rejected.reject_reason.as_deref(), Some("Too pushy for her"));
    assert_eq!(rejected.reviews[0].actor, "manager@engage.example");

    // Bulk approval is all or nothing: one rejected email in the batch approves none.
    let batch = |ids: &[&domain::EmailId]| {
        ids.iter()
            .enumerate()
            .map(|(i, id)| format!("ids%5B{i}%5D={id}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let (status, _, _) = t
        .call(
            app::routes::emails::ApproveEmails::PATH,
            &batch(&[&grace_draft, &ada_draft]),
            As::Maya,
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        t.store
            .email_detail(grace_draft.clone(), None)
            .await
            .unwrap()
            .unwrap()
            .summary
            .status,
        domain::EmailStatus::Drafted
    );
    let (status, body, _) = t
        .call(
            app::routes::emails::ApproveEmails::PATH,
            &batch(&[&grace_draft, &alan_draft]),
            As::Maya,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<domain::views::ApproveReport>(&body)
            .unwrap()
            .queued,
        2
    );
    t.drain_deliveries().await;
    let outbox = std::fs::read_dir(t.dir.path().join("outbox"))
        .unwrap()
        .count();
    assert_eq!(outbox, 2);
    // The review queue lists what is left to review, per stylist.
    let queue = body_text(t.get("/emails", As::Maya).await).await;
    assert!(queue.contains("Nothing here."), "every draft was reviewed");
    let timeline = body_text(t.get(&format!("/clients/{}", ada.id), As::Maya).await).await;
    assert!(
        timeline.contains("Draft rejected: Too pushy for her"),
        "the client's timeline records the review"
    );
}

/// A minimal SMTP server on 127.0.0.1 that keeps every message it accepts, or refuses every
/// recipient when `refuse` is set.
async fn mock_smtp(refuse: bool) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = Arc::clone(&received);
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let kept = Arc::clone(&kept);
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 mock ESMTP\r\n").await.unwrap();
                let mut message: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = message.as_mut() {
                        if line == "." {
                            kept.lock().unwrap().push(message.take().unwrap());
                            write.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let reply: &[u8] = match line
                        .get(..4)
                        .unwrap_or_default()
                        .to_ascii_uppercase()
                        .as_str()
                    {
                        "EHLO" | "HELO" => b"250 mock\r\n",
                        "RCPT" if refuse => b"550 no such mailbox\r\n",
                        "DATA" => {
                            message = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (url, received)
}

#[tokio::test]
async fn with_an_smtp_server_configured_approved_emails_are_sent_there_and_refusals_are_recorded() {
    let (url, received) = mock_smtp(false).await;
    let t = app_sending_to(Some(url)).await;
    let client = t
        .add_client("Ada Lovelace", "ada@example.com", "st-1", true)
        .await;
    t.drain_pipeline().await;
    let draft = t.newest_email(&client).await;
    let (status, body, _) = t.approve(draft.id.as_str(), As::Maya).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        received.lock().unwrap().is_empty(),
        "approval only queues the send"
    );
    t.drain_deliveries().await;
    let messages = received.lock().unwrap().clone();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].contains("To: \"Ada Lovelace\" <ada@example.com>"),
        "{}",
        messages[0]
    );
    assert!(messages[0].contains("List-Unsubscribe: <http://127.0.0.1:3000/unsubscribe?client="));
    assert!(
        !t.dir.path().join("outbox").exists(),
        "nothing went to the outbox"
    );

    // A server that refuses the recipient: the email is marked failed with the reason.
    let (url, _) = mock_smtp(true).await;
    let t = app_sending_to(Some(url)).await;
    let client = t
        .add_client("Grace Hopper", "grace@example.com", "st-1", true)
        .await;
    t.drain_pipeline().await;
    let draft = t.newest_email(&client).await;
    let (status, body, _) = t.approve(draft.id.as_str(), As::Maya).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The email page's form answers with the sentence it shows: one email approved.
    let message: String = serde_json::from_str(&body).unwrap();
    assert!(message.starts_with("Approved: "), "{message}");
    t.drain_deliveries().await;
    let detail = t.store.email_detail(draft.id, None).await.unwrap().unwrap();
    assert_eq!(detail.summary.status, domain::EmailStatus::Failed);
    let failure = detail.reviews.last().unwrap();
    assert_eq!(failure.action, "failed");
    assert!(
        failure.note.as_deref().unwrap().contains("550"),
        "{failure:?}"
    );
}

#[tokio::test]
async fn the_dashboard_counts_scores_drafts_and_reviews_and_a_rebuild_from_the_logs_gives_the_same_views()
 {
    let t = app().await;
    let ada = t
        .add_client("Ada Lovelace", "ada@example.com", "st-1", true)
        .await;
    let grace = t
        .add_client("Grace Hopper", "grace@example.com", "st-2", true)
        .await;
    t.add_client("Alan Turing", "alan@example.com", "st-1", false)
        .await;
    t.drain_pipeline().await;
    let (ada_draft, grace_draft) = (
        t.newest_email(&ada).await.id,
        t.newest_email(&grace).await.id,
    );
    t.save(
        ada_draft.as_str(),
        "Hello Ada",
        "Hi Ada,\n\nA short note from Maya.",
        As::Maya,
    )
    .await;
    t.approve(ada_draft.as_str(), As::Maya).await;
    t.call(
        app::routes::email_detail::RejectEmail::PATH,
        &form_encode(&[("id", grace_draft.as_str()), ("reason", "Not now")]),
        As::Jonas,
    )
    .await;
    t.drain_deliveries().await;

    let (status, _, body) = t.get_json("/api/v1/dashboard", As::Manager).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["bands"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        3
    );
    let today = body["email_days"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (
            today["drafted"].as_u64(),
            today["approved"].as_u64(),
            today["sent"].as_u64(),
            today["rejected"].as_u64()
        ),
        (Some(2), Some(1), Some(1), Some(1))
    );
    let template = &body["writers"][0];
    assert_eq!(template["writer"], "template");
    assert_eq!(template["approval_rate"], 0.5);
    assert!(
        template["mean_edit"].as_f64().unwrap() > 0.3,
        "the approved draft was rewritten: {template}"
    );
    let maya = body["stylists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stylist_id"] == "st-1")
        .unwrap()
        .clone();
    assert_eq!(
        (
            maya["clients"].as_u64(),
            maya["pending_reviews"].as_u64(),
            maya["sent"].as_u64()
        ),
        (Some(2), Some(0), Some(1))
    );
    assert!(maya["median_review_minutes"].as_f64().is_some());
    assert_eq!(body["health"]["dead_letters"], 0);

    // Stylists do not see it; bad ranges are named.
    let (status, _, _) = t.get_json("/api/v1/dashboard", As::Maya).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, problem) = t
        .get_json("/api/v1/dashboard?from=2026-13-01", As::Manager)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "from");
    let page = body_text(t.get("/dashboard", As::Manager).await).await;
    for chart in [
        "chart-bands",
        "chart-mix",
        "chart-at-risk",
        "chart-funnel",
        "chart-quality",
        "chart-review-time",
        "chart-cost",
    ] {
        assert!(page.contains(&format!("id=\"{chart}\"")), "{chart} missing");
    }
    assert_eq!(
        t.get("/dashboard", As::Maya).await.status(),
        StatusCode::FORBIDDEN
    );

    // The views rebuilt from the logs alone equal the ones kept live.
    let live = t.store.view_rows().await.unwrap();
    assert!(live.iter().all(|(_, rows)| !rows.is_empty()), "{live:?}");
    let progress = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&progress);
    t.store
        .rebuild_views(move |done, total| seen.lock().unwrap().push((done, total)))
        .await
        .unwrap();
    assert_eq!(t.store.view_rows().await.unwrap(), live);
    assert_eq!(
        progress.lock().unwrap().last().map(|(d, t)| d == t),
        Some(true),
        "progress reaches the end"
    );
}

#[tokio::test]
async fn emails_approved_but_not_sent_when_the_process_stopped_are_delivered_later() {
    let t = app().await;
    let client = t
        .add_client("Ada Lovelace", "ada@example.com", "st-1", true)
        .await;
    t.drain_pipeline().await;
    let draft = t.newest_email(&client).await;
    // Approval committed with its delivery request; the process stops before it sends,
    // with the request in flight.
    let reviewer = ports::Reviewer {
        name: "maya@engage.example".into(),
        scope: None,
    };
    t.store
        .approve_emails(vec![(draft.id.clone(), None)], reviewer, chrono::Utc::now())
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let taken = t
        .store
        .receive(
            ports::DELIVERIES_QUEUE,
            10,
            chrono::Duration::minutes(5),
            now,
        )
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);

    // What `engage serve` does on its next start: in-flight requests are visible again,
    // and the sender delivers them.
    t.store
        .release_in_flight(ports::DELIVERIES_QUEUE, chrono::Utc::now())
        .await
        .unwrap();
    t.drain_deliveries().await;
    assert!(
        t.dir
            .path()
            .join("outbox")
            .join(format!("{}.eml", draft.id))
            .exists()
    );
    let detail = t.store.email_detail(draft.id, None).await.unwrap().unwrap();
    assert_eq!(detail.summary.status, domain::EmailStatus::Sent);
    let stats = t
        .store
        .queue_stats(ports::DELIVERIES_QUEUE, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(
        (stats.visible, stats.in_flight),
        (0, 0),
        "nothing is sent twice"
    );
}

/// A raw API request: `body` sent as is with `content_type`.
async fn raw(
    t: &TestApp,
    path: &str,
    content_type: &str,
    body: impl Into<Body>,
    who: As,
) -> axum::response::Response {
    t.send(
        t.request("POST", path, who)
            .header(header::CONTENT_TYPE, content_type)
            .body(body.into())
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn bad_requests_get_the_right_status_a_problem_naming_the_field_and_a_request_id() {
    let t = app().await;
    let client = t
        .add_client("Ada Lovelace", "ada@example.com", "st-1", false)
        .await;
    let fixes = format!("/api/v1/clients/{}/fixes", client.id);
    let problem_of = |response: axum::response::Response| async move {
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE].clone();
        assert_eq!(content_type, "application/problem+json", "{status}");
        let problem: serde_json::Value = serde_json::from_str(&body_text(response).await).unwrap();
        assert_eq!(problem["status"], status.as_u16());
        (status, problem)
    };

    // No session: 401.
    let (status, _) = problem_of(raw(&t, &fixes, "application/json", "{}", As::Nobody).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Not JSON by its content type: 415.
    let (status, problem) = problem_of(
        raw(
            &t,
            &fixes,
            "text/plain",
            "delivered_on=2025-01-01",
            As::Maya,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );
    // Not JSON at all: 400.
    let (status, _) = problem_of(raw(&t, &fixes, "application/json", "{", As::Maya).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A required field missing: 422 naming it; a value of the wrong type: 422 naming it.
    let (status, problem) = problem_of(
        raw(
            &t,
            &fixes,
            "application/json",
            r#"{"items_sent": 1, "items_kept": 0, "order_value": "1"}"#,
            As::Maya,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "delivered_on", "{problem}");
    let (status, problem) = problem_of(
        raw(&t, &fixes, "application/json", r#"{"delivered_on": "2025-01-01", "items_sent": "five", "items_kept": 0, "order_value": "1"}"#, As::Maya).await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "items_sent", "{problem}");
    // Larger than the limit: 413, and nothing written.
    let huge = format!(
        r#"{{"name": "{}"}}"#,
        "x".repeat(engage::startup::MAX_BODY_BYTES)
    );
    let (status, problem) =
        problem_of(raw(&t, "/api/v1/clients", "application/json", huge, As::Maya).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
    assert_eq!(t.store.client_count().await.unwrap(), 1);

    // Every response carries a request id; a caller's own id comes back unchanged.
    let response = t.get("/healthz", As::Nobody).await;
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let response = t
        .send(
            t.request("GET", "/healthz", As::Nobody)
                .header("x-request-id", "order-sync-42")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.headers()["x-request-id"], "order-sync-42");
}

#[tokio::test]
async fn sql_metacharacters_and_script_tags_are_kept_as_plain_text() {
    let t = app().await;
    let name = "Bobby'); DROP TABLE clients;-- <script>alert(1)</script>";
    let (status, created) = t
        .post_json(
            "/api/v1/clients",
            serde_json::json!({"name": name, "email": "bobby@example.com", "stylist_id": "st-1",
                               "profile": {"style_notes": "\"'; DELETE FROM emails; <img src=x onerror=alert(2)>"}}),
            As::Maya,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["client"]["name"], name);
    let id = created["id"].as_str().unwrap().to_owned();
    // Stored and read back exactly; the tables are all there.
    let stored = t
        .store
        .get_client(domain::ClientId::new(id.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.name.as_str(), name);
    assert_eq!(t.store.client_count().await.unwrap(), 1);
    // The page shows the text, escaped: no tag of the client's reaches the page.
    let page = body_text(t.get(&format!("/clients/{id}"), As::Maya).await).await;
    assert!(
        page.contains("Bobby&#x27;); DROP TABLE clients;-- &lt;script&gt;alert(1)&lt;/script&gt;")
            || page
                .contains("Bobby'); DROP TABLE clients;-- &lt;script&gt;alert(1)&lt;/script&gt;"),
        "the name, escaped"
    );
    assert!(!page.contains("<script>alert(1)"));
    assert!(!page.contains("<img src=x"));
}

#[tokio::test]
async fn tracked_links_and_the_open_pixel_record_on_the_client_and_never_lead_elsewhere() {
    let base = "http://127.0.0.1:3000";
    let tracking = processors::tracking::Tracking::new(
        b"track".to_vec(),
        base,
        vec!["shop.example".into()],
        true,
    );
    let t = app_with(None, Some(tracking)).await;
    let client = t
        .add_client("Ada Lovelace", "ada@example.com", "st-1", true)
        .await;
    t.drain_pipeline().await;
    let id = t.newest_email(&client).await.id.as_str().to_owned();
    let text = "Hi Ada,\n\nBook your next Fix: https://shop.example/book?fix=autumn.\nOr read https://elsewhere.example/x\n\nMaya";
    let (status, body, _) = t.save(&id, "Your autumn Fix", text, As::Maya).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body, _) = t.approve(id.as_str(), As::Maya).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    t.drain_deliveries().await;
    let eml = support::unquote(
        &std::fs::read_to_string(t.dir.path().join("outbox").join(format!("{id}.eml"))).unwrap(),
    );
    assert!(
        eml.contains("Content-Type: text/html"),
        "an HTML part for the pixel"
    );
    assert!(
        eml.contains("https://elsewhere.example/x"),
        "a foreign link is left as it is"
    );
    assert!(
        !eml.contains("https://shop.example/book"),
        "the shop's link goes through the app"
    );
    let click = eml
        .split(|c: char| c.is_whitespace() || c == '"')
        .find(|w| w.starts_with(&format!("{base}/t/")))
        .unwrap()
        .trim_end_matches('.')
        .trim_start_matches(base)
        .to_owned();
    let pixel = eml
        .split('"')
        .find(|w| w.starts_with(&format!("{base}/o/")))
        .unwrap()
        .trim_start_matches(base)
        .to_owned();

    // A changed signature, or a link the email does not have, leads nowhere.
    let (head, signature) = click.rsplit_once('.').unwrap();
    let other = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{head}.{other}{}", &signature[1..]);
    assert_eq!(
        t.get(&forged, As::Nobody).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.get(&format!("/t/{id}.5.AAAA"), As::Nobody).await.status(),
        StatusCode::NOT_FOUND
    );
    let before = t
        .store
        .get_client(client.id.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.profile.engagement().last_clicked_at, None);

    let followed = t.get(&click, As::Nobody).await;
    assert!(followed.status().is_redirection(), "{}", followed.status());
    assert_eq!(
        followed.headers()[axum::http::header::LOCATION],
        "https://shop.example/book?fix=autumn"
    );
    let clicked = t
        .store
        .get_client(client.id.clone())
        .await
        .unwrap()
        .unwrap();
    assert!(clicked.profile.engagement().last_clicked_at.is_some());
    assert!(
        clicked.version > before.version,
        "recorded as a change of the client"
    );

    let opened = t.get(&pixel, As::Nobody).await;
    assert_eq!(opened.status(), StatusCode::OK);
    assert_eq!(
        opened.headers()[axum::http::header::CONTENT_TYPE],
        "image/gif"
    );
    let seen = t
        .store
        .get_client(client.id.clone())
        .await
        .unwrap()
        .unwrap();
    assert!(seen.profile.engagement().last_opened_at.is_some());
    assert_eq!(seen.profile.engagement().open_hours.iter().sum::<u16>(), 1);

    // The pipeline scores the client again on the click and the open: the email
    // engagement factor moves through it like any change.
    let scored_before = t
        .store
        .score_history(client.id.clone(), 50)
        .await
        .unwrap()
        .len();
    t.drain_pipeline().await;
    let history = t.store.score_history(client.id.clone(), 50).await.unwrap();
    assert_eq!(
        history.len(),
        scored_before + 2,
        "one score per recorded change"
    );
    let latest = serde_json::to_string(&history[0].factors).unwrap();
    assert!(
        latest.contains("engagement") || latest.contains("email"),
        "{latest}"
    );
}
