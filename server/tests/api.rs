//! The REST API as integrators use it: over real HTTP on a loopback port, signed with API
//! keys, on a real SQLite file. Covers the routes against the OpenAPI document, the
//! security rules (401/403/404/413/415/422/429), CORS, imports and metrics.

use domain::StylistId;
use domain::user::Role;
use engage::config::WebArgs;
use engage::startup::{AppState, router};
use processors::{Clock, SystemClock};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use store::Store;

struct Api {
    _dir: tempfile::TempDir,
    store: Store,
    /// The embedded sender over the app's delivery, one attempt per email.
    sender: processors::embedded::Sender,
    /// Signs unsubscribe links as the server does (the client's own unsubscribe).
    links: engage::delivery::UnsubscribeLinks,
    base: String,
    http: reqwest::Client,
    admin: String,
    manager: String,
    /// Stylist st-1's key.
    maya: String,
    /// Stylist st-2's key.
    jonas: String,
}

async fn serve(web: impl FnOnce(WebArgs) -> WebArgs) -> Api {
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
    let key = |name: &'static str, role, stylist: Option<&'static str>| {
        let store = store.clone();
        let now = clock.now();
        async move {
            store
                .create_api_key(name, role, stylist.map(StylistId::new), now)
                .await
                .unwrap()
                .secret
        }
    };
    let admin = key("admin tool", Role::Admin, None).await;
    let manager = key("analytics", Role::Manager, None).await;
    let maya = key("maya's shop", Role::Stylist, Some("st-1")).await;
    let jonas = key("jonas's shop", Role::Stylist, Some("st-2")).await;
    let web = web(WebArgs::local(dir.path()));
    let state = AppState::new(
        store.clone(),
        clock,
        "127.0.0.1:3000".parse().unwrap(),
        &web,
    )
    .await
    .unwrap();
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
    let links = state.unsubscribe.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, router(state)).await.unwrap();
    });
    Api {
        _dir: dir,
        store,
        sender,
        links,
        base,
        http: reqwest::Client::new(),
        admin,
        manager,
        maya,
        jonas,
    }
}

impl Api {
    fn request(&self, method: reqwest::Method, path: &str, key: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        if key.is_empty() {
            request
        } else {
            request.bearer_auth(key)
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, String, Value) {
        let response = request.send().await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, content_type, body)
    }

    async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        let (status, _, body) = self
            .send(self.request(reqwest::Method::GET, path, key))
            .await;
        (status, body)
    }

    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self.send(self.request(method, path, key).json(&body)).await;
        (status, body)
    }

    async fn create(&self, key: &str, name: &str, email: &str, stylist: &str) -> Value {
        let (status, body) = self
            .json(
                reqwest::Method::POST,
                "/api/v1/clients",
                key,
                json!({"name": name, "email": email, "stylist_id": stylist,
                       "profile": {"email_opt_in": true}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }
}

/// Every operation the API serves, as (method, path template).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/clients"),
    ("post", "/api/v1/clients"),
    ("post", "/api/v1/clients/import"),
    ("get", "/api/v1/clients/{id}"),
    ("put", "/api/v1/clients/{id}"),
    ("delete", "/api/v1/clients/{id}"),
    ("post", "/api/v1/clients/{id}/activities"),
    ("post", "/api/v1/clients/{id}/fixes"),
    ("get", "/api/v1/clients/{id}/score"),
    ("get", "/api/v1/clients/{id}/emails"),
    ("get", "/api/v1/clients/{id}/decisions"),
    ("get", "/api/v1/emails"),
    ("post", "/api/v1/emails/approve"),
    ("get", "/api/v1/emails/{id}"),
    ("put", "/api/v1/emails/{id}"),
    ("post", "/api/v1/emails/{id}/approve"),
    ("post", "/api/v1/emails/{id}/reject"),
    ("post", "/api/v1/emails/{id}/regenerate"),
    ("post", "/api/v1/emails/{id}/resend"),
    ("get", "/api/v1/dashboard"),
    ("get", "/api/v1/outcomes"),
    ("get", "/api/v1/pipeline"),
    ("get", "/api/v1/dead-letters"),
    ("post", "/api/v1/dead-letters/redrive"),
    ("get", "/api/v1/api-keys"),
    ("post", "/api/v1/api-keys"),
    ("delete", "/api/v1/api-keys/{id}"),
    ("get", "/api/v1/live"),
];

#[tokio::test]
async fn the_openapi_document_is_3_1_and_matches_the_routes_the_server_answers() {
    let api = serve(|web| web).await;
    let (status, spec) = api.get("/api/openapi.json", "").await;
    assert_eq!(status, StatusCode::OK, "the document is public");
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        spec["openapi"]
    );
    let documented: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, expected);
    // Every reference resolves.
    let text = spec.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().unwrap();
        let name = target.trim_start_matches("#/components/schemas/");
        assert!(
            spec["components"]["schemas"][name].is_object(),
            "{target} is referred to but not defined"
        );
    }

    // Every documented operation is answered by a handler (never the "no such endpoint"
    // problem or 405), and undocumented paths under /api are not.
    for (method, path) in &documented {
        let concrete = path.replace("{id}", "no-such-id");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = api
            .request(method.clone(), &concrete, &api.admin)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if path == "/api/v1/live" {
            assert_eq!(status, StatusCode::OK);
            continue;
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_ne!(body["title"], "No such endpoint", "{method} {path}: {body}");
        assert!(status.as_u16() < 500, "{method} {path}: {status} {body}");
        let operation = &spec["paths"][path][method.as_str().to_lowercase()];
        assert!(
            operation["responses"][status.as_str()].is_object(),
            "{method} {path} answered {status}, which the document does not list"
        );
    }
    let (status, body) = api.get("/api/v1/nothing-here", &api.admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["title"], "No such endpoint");

    let docs = api
        .http
        .get(format!("{}/api/docs", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("/api/openapi.json"));
}

#[tokio::test]
async fn keys_authenticate_and_a_stylist_key_reaches_only_its_own_book() {
    let api = serve(|web| web).await;
    let jonas_client = api
        .create(&api.jonas, "Jonas's Client", "jc@example.com", "st-2")
        .await;
    let id = jonas_client["id"].as_str().unwrap().to_owned();

    // No key, a malformed key, a made-up key: 401 with a challenge.
    for key in [
        "",
        "not-a-key",
        &format!("ek_{}_{}", "0".repeat(16), "0".repeat(64)),
    ] {
        let response = api
            .request(reqwest::Method::GET, "/api/v1/clients", key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "key {key:?}");
        assert!(response.headers().contains_key("www-authenticate"));
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    // The same key in X-Api-Key works too.
    let response = api
        .http
        .get(format!("{}/api/v1/clients/{id}", api.base))
        .header("x-api-key", &api.jonas)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Maya's key: Jonas's client does not exist for her, whatever she tries.
    let not_found = [
        (reqwest::Method::GET, format!("/api/v1/clients/{id}"), None),
        (
            reqwest::Method::GET,
            format!("/api/v1/clients/{id}/score"),
            None,
        ),
        (
            reqwest::Method::GET,
            format!("/api/v1/clients/{id}/emails"),
            None,
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/v1/clients/{id}"),
            None,
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/clients/{id}/activities"),
            Some(json!({"activity": {"type": "email_open"}})),
        ),
        (
            reqwest::Method::PUT,
            format!("/api/v1/clients/{id}"),
            Some(json!({"expected_version": 1, "client": {
                "name": "Hijacked", "email": "jc@example.com", "stylist_id": "st-1",
                "status": "active", "email_opt_in": true, "styles": [], "sizes": {},
                "budget": "", "style_notes": ""}})),
        ),
    ];
    for (method, path, body) in not_found {
        let mut request = api.request(method.clone(), &path, &api.maya);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let (status, _, problem) = api.send(request).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {problem}");
        assert_eq!(problem["title"], "Client not found");
    }
    let (_, page) = api.get("/api/v1/clients", &api.maya).await;
    assert_eq!(page["clients"].as_array().unwrap().len(), 0);
    let (_, stored) = api.get(&format!("/api/v1/clients/{id}"), &api.jonas).await;
    assert_eq!(
        stored["client"]["name"], "Jonas's Client",
        "nothing changed"
    );

    // Roles: stylists see no dashboard, pipeline, dead letters, keys or metrics; managers
    // do not manage keys.
    for path in [
        "/api/v1/dashboard",
        "/api/v1/pipeline",
        "/api/v1/dead-letters",
        "/api/v1/api-keys",
        "/metrics",
    ] {
        let (status, _) = api.get(path, &api.maya).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let (status, _) = api.get("/api/v1/api-keys", &api.manager).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .json(
            reqwest::Method::POST,
            "/api/v1/clients",
            &api.maya,
            json!({"name": "Not Mine", "email": "nm@example.com", "stylist_id": "st-2"}),
        )
        .await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::UNPROCESSABLE_ENTITY,
        "{status}"
    );
    // A key opens the API, not the pages.
    let (status, _) = api.get("/clients", &api.manager).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Admins create and revoke keys through the API; a revoked key stops at once.
    let (status, created) = api
        .json(
            reqwest::Method::POST,
            "/api/v1/api-keys",
            &api.admin,
            json!({"name": "export job", "role": "manager"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap();
    assert_eq!(api.get("/api/v1/clients", secret).await.0, StatusCode::OK);
    let (status, listed) = api.get("/api/v1/api-keys", &api.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !listed.to_string().contains(secret),
        "secrets are never listed"
    );
    let (status, revoked) = api
        .send(api.request(
            reqwest::Method::DELETE,
            &format!(
                "/api/v1/api-keys/{}",
                created["key"]["id"].as_str().unwrap()
            ),
            &api.admin,
        ))
        .await
        .pipe(|(s, _, b)| (s, b));
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(
        api.get("/api/v1/clients", secret).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, problem) = api
        .json(
            reqwest::Method::POST,
            "/api/v1/api-keys",
            &api.admin,
            json!({"name": "no book", "role": "stylist"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "stylist_id");
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

#[tokio::test]
async fn bad_input_gets_413_415_422_naming_the_field_and_writes_nothing() {
    let api = serve(|web| web).await;
    let before = api.store.client_count().await.unwrap();
    let oversized = format!(
        r#"{{"name":"Big","email":"big@example.com","stylist_id":"st-1","profile":{{"style_notes":"{}"}}}}"#,
        "x".repeat(engage::startup::MAX_BODY_BYTES)
    );
    let (status, content_type, _) = api
        .send(
            api.request(reqwest::Method::POST, "/api/v1/clients", &api.maya)
                .header("content-type", "application/json")
                .body(oversized),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(content_type, "application/problem+json");

    let (status, _, problem) = api
        .send(
            api.request(reqwest::Method::POST, "/api/v1/clients", &api.maya)
                .header("content-type", "text/plain")
                .body(r#"{"name":"Ada"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );

    let (status, problem) = api
        .json(
            reqwest::Method::POST,
            "/api/v1/clients",
            &api.maya,
            json!({"name": "", "email": "not-an-address", "stylist_id": "st-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"name") && fields.contains(&"email"),
        "{problem}"
    );

    let (status, problem) = api
        .json(
            reqwest::Method::POST,
            "/api/v1/clients",
            &api.maya,
            json!({"name": "Ada", "email": "ada@example.com", "stylist_id": "st-1", "colour": "red"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], "colour");

    let (status, _, problem) = api
        .send(
            api.request(reqwest::Method::POST, "/api/v1/clients", &api.maya)
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");

    let (status, problem) = api.get("/api/v1/clients?limit=lots", &api.maya).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["field"], "limit", "{problem}");
    let (status, problem) = api.get("/api/v1/clients?limit=0", &api.maya).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "limit", "{problem}");
    assert_eq!(api.store.client_count().await.unwrap(), before);

    // SQL metacharacters and markup are plain data, stored and returned as sent.
    let name = r#"Robert'); DROP TABLE clients;-- <script>alert("x")</script>"#;
    let created = api
        .create(&api.maya, name, "bobby@example.com", "st-1")
        .await;
    let id = created["id"].as_str().unwrap();
    let (_, read) = api.get(&format!("/api/v1/clients/{id}"), &api.maya).await;
    assert_eq!(read["client"]["name"], name);
    let (_, found) = api
        .get("/api/v1/clients?search=DROP%20TABLE", &api.maya)
        .await;
    assert_eq!(found["clients"][0]["name"], name, "{found}");
    assert_eq!(api.store.client_count().await.unwrap(), before + 1);
    // A control character in a search (a NUL ended the search index's query) is named.
    for search in [
        "ab%00c",
        "%C3%94%C2%B02%40%C3%92f%C2%B9%3FS%00",
        "tab%09here",
    ] {
        let (status, problem) = api
            .get(
                &format!("/api/v1/clients?search={search}&band=at_risk&status=paused&limit=1"),
                &api.maya,
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{search}: {problem}"
        );
        assert_eq!(problem["field"], "search", "{problem}");
    }
}

#[tokio::test]
async fn each_key_has_its_own_rate_limit_and_is_told_when_to_retry() {
    let api = serve(|web| WebArgs {
        api_rate_per_minute: 3,
        ..web
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            api.get("/api/v1/clients", &api.maya).await.0,
            StatusCode::OK
        );
    }
    let response = api
        .request(reqwest::Method::GET, "/api/v1/clients", &api.maya)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 429);
    assert_eq!(
        api.get("/api/v1/clients", &api.jonas).await.0,
        StatusCode::OK,
        "another key is not affected"
    );
}

#[tokio::test]
async fn only_allowlisted_origins_may_call_the_api_from_a_browser() {
    let api = serve(|web| WebArgs {
        cors_origins: vec!["https://shop.example".parse().unwrap()],
        ..web
    })
    .await;
    let preflight = |origin: &'static str| {
        api.http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/v1/clients", api.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight("https://shop.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn clients_are_listed_read_updated_with_versions_and_closed() {
    let api = serve(|web| web).await;
    for n in 0..5 {
        api.create(
            &api.maya,
            &format!("Client {n}"),
            &format!("c{n}@example.com"),
            "st-1",
        )
        .await;
    }
    api.create(&api.jonas, "Other Book", "other@example.com", "st-2")
        .await;
    let mut seen = Vec::new();
    let mut path = "/api/v1/clients?limit=2&sort=newest".to_owned();
    loop {
        let (status, page) = api.get(&path, &api.maya).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for client in page["clients"].as_array().unwrap() {
            seen.push(client["name"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/clients?limit=2&sort=newest&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(!seen.contains(&"Other Book".to_owned()));
    let (_, all) = api.get("/api/v1/clients?limit=200", &api.manager).await;
    assert_eq!(all["clients"].as_array().unwrap().len(), 6);

    let client = api
        .create(&api.maya, "Ada Lovelace", "ada@example.com", "st-1")
        .await;
    let id = client["id"].as_str().unwrap();
    let version = client["version"].as_u64().unwrap();
    let mut edit = json!({
        "name": "Ada King", "email": "ada@example.com", "stylist_id": "st-1",
        "status": "active", "email_opt_in": true, "styles": ["classic"],
        "sizes": {"top": "M"}, "budget": "", "style_notes": "Likes navy"
    });
    let (status, updated) = api
        .json(
            reqwest::Method::PUT,
            &format!("/api/v1/clients/{id}"),
            &api.maya,
            json!({"expected_version": version, "client": edit.clone()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["client"]["name"], "Ada King");
    assert_eq!(updated["version"], version + 1);
    edit["name"] = json!("Stale Write");
    let (status, conflict) = api
        .json(
            reqwest::Method::PUT,
            &format!("/api/v1/clients/{id}"),
            &api.maya,
            json!({"expected_version": version, "client": edit}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(conflict["field"], "expected_version");

    let (status, opened) = api
        .json(
            reqwest::Method::POST,
            &format!("/api/v1/clients/{id}/activities"),
            &api.maya,
            json!({"activity": {"type": "email_open", "at": "2026-01-05T10:00:00Z"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    let (status, problem) = api
        .json(
            reqwest::Method::POST,
            &format!("/api/v1/clients/{id}/activities"),
            &api.maya,
            json!({"activity": {"type": "purchase", "purchased_on": "2026-01-05", "amount": "lots"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "amount", "{problem}");

    let (status, closed) = api
        .send(api.request(
            reqwest::Method::DELETE,
            &format!("/api/v1/clients/{id}"),
            &api.maya,
        ))
        .await
        .pipe(|(s, _, b)| (s, b));
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["client"]["status"], "closed");
    let (_, read) = api.get(&format!("/api/v1/clients/{id}"), &api.maya).await;
    assert_eq!(read["client"]["status"], "closed", "kept on record, closed");
    assert_eq!(read["client"]["name"], "Ada King");
}

#[tokio::test]
async fn a_csv_import_adds_the_good_rows_and_reports_each_bad_one_with_its_fields() {
    let api = serve(|web| web).await;
    let csv = "name,email,stylist_id,email_opt_in,styles,style_notes\n\
        Ada Lovelace,ada@example.com,st-1,true,classic;bohemian,\"Likes navy, hates \"\"beige\"\"\"\n\
        Grace Hopper,not-an-address,st-1,yes,,\n\
        Short Row,short@example.com\n\
        Mary Shelley,mary@example.com,st-1,maybe,,\n\
        Ada Again,ada.again@example.com,st-1,no,,\n\
        \"Multi\nLine\",ml@example.com,st-1,no,,\n\
        Not Mine,nm@example.com,st-2,no,,\n";
    let (status, _, report) = api
        .send(
            api.request(reqwest::Method::POST, "/api/v1/clients/import", &api.maya)
                .header("content-type", "text/csv")
                .body(csv),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["rows"], 7, "{report}");
    assert_eq!(report["created"], 3, "{report}");
    assert_eq!(report["failed"], 4, "{report}");
    let failures: Vec<(u64, String)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["line"].as_u64().unwrap(),
                row["errors"][0]["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        failures,
        [
            (3, "email".to_owned()),
            (4, "row".to_owned()),
            (5, "email_opt_in".to_owned()),
            (9, "stylist_id".to_owned()),
        ]
    );
    let (_, page) = api
        .get("/api/v1/clients?search=ada%40example", &api.maya)
        .await;
    let ada = &page["clients"][0];
    let (_, detail) = api
        .get(
            &format!("/api/v1/clients/{}", ada["id"].as_str().unwrap()),
            &api.maya,
        )
        .await;
    assert_eq!(
        detail["client"]["profile"]["style"]["notes"], "Likes navy, hates \"beige\"",
        "{detail}"
    );

    // JSON lines: each line a ClientInput; an unknown field is named.
    let lines = concat!(
        r#"{"name":"Lin One","email":"lin1@example.com","stylist_id":"st-1"}"#,
        "\n",
        r#"{"name":"Lin Two","email":"lin2@example.com","stylist_id":"st-1","shoe":"38"}"#,
        "\n\n",
        r#"{"name":"Lin Three","email":"lin3@example.com","stylist_id":"st-1"}"#,
    );
    let (status, _, report) = api
        .send(
            api.request(reqwest::Method::POST, "/api/v1/clients/import", &api.maya)
                .header("content-type", "application/x-ndjson")
                .body(lines),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (report["rows"].as_u64(), report["created"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(report["errors"][0]["line"], 2);
    assert_eq!(report["errors"][0]["errors"][0]["field"], "shoe");

    // A header that names an unknown column refuses the file before anything is written.
    let before = api.store.client_count().await.unwrap();
    let (status, _, problem) = api
        .send(
            api.request(reqwest::Method::POST, "/api/v1/clients/import", &api.maya)
                .header("content-type", "text/csv")
                .body("name,e-mail,stylist_id\nX,x@example.com,st-1\n"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "header");
    assert_eq!(api.store.client_count().await.unwrap(), before);
    let (status, _, _) = api
        .send(
            api.request(reqwest::Method::POST, "/api/v1/clients/import", &api.maya)
                .header("content-type", "application/pdf")
                .body("%PDF"),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn metrics_count_requests_by_route_with_pipeline_and_llm_figures() {
    let api = serve(|web| web).await;
    let client = api
        .create(&api.maya, "Ada Lovelace", "ada@example.com", "st-1")
        .await;
    let id = client["id"].as_str().unwrap();
    for _ in 0..3 {
        api.get(&format!("/api/v1/clients/{id}"), &api.maya).await;
    }
    api.get("/api/v1/clients/unknown", &api.maya).await;
    let response = api
        .request(reqwest::Method::GET, "/metrics", &api.manager)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains(
            "engage_http_requests_total{method=\"GET\",route=\"/api/v1/clients/{id}\",status=\"200\"} 3"
        ),
        "{text}"
    );
    assert!(text.contains("route=\"/api/v1/clients/{id}\",status=\"404\"} 1"));
    assert!(text.contains(
        "engage_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/clients\"} 1"
    ));
    for gauge in [
        "engage_queue_visible ",
        "engage_dead_letters 0",
        "engage_feed_lag 1",
        "engage_pipeline_up 1",
        "engage_llm_calls_total 0",
        "engage_llm_cost_usd_total 0",
    ] {
        assert!(text.contains(gauge), "{gauge} missing:\n{text}");
    }
    let (status, pipeline) = api.get("/api/v1/pipeline", &api.manager).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pipeline["feed_lag"], 1, "{pipeline}");
    assert_eq!(pipeline["llm_breaker"], Value::Null);
}

impl Api {
    /// Runs the pipeline until it has nothing left to do (scores and drafts).
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

    /// Lets the sender deliver everything approved so far.
    async fn drain_deliveries(&self) {
        while self.sender.run_once().await.unwrap() > 0 {}
    }

    /// The status of email `id`, as the manager sees it.
    async fn email_status(&self, id: &str) -> Value {
        let (_, detail) = self
            .get(&format!("/api/v1/emails/{id}"), &self.manager)
            .await;
        detail["summary"]["status"].clone()
    }

    /// `POST path` with no body.
    async fn post(&self, path: &str, key: &str) -> (StatusCode, Value) {
        let (status, _, body) = self
            .send(self.request(reqwest::Method::POST, path, key))
            .await;
        (status, body)
    }

    /// The drafts awaiting review of the client named `name`.
    async fn draft_of(&self, name: &str, key: &str) -> String {
        let (_, drafts) = self.get("/api/v1/emails?status=drafted", key).await;
        drafts
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["client_name"] == name)
            .unwrap_or_else(|| panic!("a draft for {name}: {drafts}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

#[tokio::test]
async fn drafts_are_listed_read_edited_approved_and_rejected_through_the_api() {
    let api = serve(|web| web).await;
    for (name, email) in [
        ("Ada Lovelace", "ada@example.com"),
        ("Grace Hopper", "grace@example.com"),
        ("Mary Shelley", "mary@example.com"),
    ] {
        api.create(&api.maya, name, email, "st-1").await;
    }
    api.create(&api.jonas, "Other Book", "other@example.com", "st-2")
        .await;
    api.drain_pipeline().await;

    let (status, drafts) = api.get("/api/v1/emails?status=drafted", &api.maya).await;
    assert_eq!(status, StatusCode::OK, "{drafts}");
    let drafts = drafts.as_array().unwrap().clone();
    assert_eq!(drafts.len(), 3, "welcome drafts of Maya's clients only");
    let id = |n: usize| drafts[n]["id"].as_str().unwrap().to_owned();
    let (status, problem) = api
        .get(&format!("/api/v1/emails/{}", id(0)), &api.jonas)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");

    let (status, edited) = api
        .json(
            reqwest::Method::PUT,
            &format!("/api/v1/emails/{}", id(0)),
            &api.maya,
            json!({"subject": "New pieces picked for you", "body": "Hi Ada, I picked a few lovely pieces for autumn. Warmly, Maya"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert!(edited["edited"].as_bool().unwrap());
    let (status, problem) = api
        .post(
            &format!("/api/v1/emails/{}/approve?send_at=whenever", id(0)),
            &api.maya,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], "send_at", "{problem}");
    let (status, report) = api
        .send(api.request(
            reqwest::Method::POST,
            &format!("/api/v1/emails/{}/approve", id(0)),
            &api.maya,
        ))
        .await
        .pipe(|(s, _, b)| (s, b));
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["queued"], 1);
    let (status, again) = api
        .send(api.request(
            reqwest::Method::POST,
            &format!("/api/v1/emails/{}/approve", id(0)),
            &api.maya,
        ))
        .await
        .pipe(|(s, _, b)| (s, b));
    assert_eq!(status, StatusCode::CONFLICT, "{again}");

    let (status, problem) = api
        .json(
            reqwest::Method::POST,
            &format!("/api/v1/emails/{}/reject", id(1)),
            &api.maya,
            json!({"reason": ""}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, rejected) = api
        .json(
            reqwest::Method::POST,
            &format!("/api/v1/emails/{}/reject", id(1)),
            &api.maya,
            json!({"reason": "Too generic"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rejected}");
    assert_eq!(rejected["summary"]["status"], "rejected");
    assert_eq!(rejected["reject_reason"], "Too generic");

    // When to send: a word it does not know, or a time gone, is refused on `send_at`
    // and approves nothing; a time tomorrow noon (UTC, outside the quiet hours) is kept.
    for bad in ["tomorrow", "2020-01-01T10:00:00Z"] {
        let (status, problem) = api
            .json(
                reqwest::Method::POST,
                "/api/v1/emails/approve",
                &api.maya,
                json!({"ids": [id(2)], "send_at": bad}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["field"], "send_at", "{problem}");
    }
    let (_, still) = api
        .get(&format!("/api/v1/emails/{}", id(2)), &api.maya)
        .await;
    assert_eq!(still["summary"]["status"], "drafted");
    let noon = (chrono::Utc::now() + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc();
    let (status, report) = api
        .json(
            reqwest::Method::POST,
            "/api/v1/emails/approve",
            &api.maya,
            json!({"ids": [id(2)], "send_at": noon.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["queued"], 1);
    assert_eq!(report["scheduled"], 1);
    let first: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(report["first_send_at"].clone()).unwrap();
    assert_eq!(first, noon);
    let (_, detail) = api
        .get(&format!("/api/v1/emails/{}", id(2)), &api.maya)
        .await;
    assert_eq!(detail["summary"]["status"], "approved");
    let kept: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(detail["send_after"].clone()).unwrap();
    assert_eq!(kept, noon);
    let (_, sent) = api.get("/api/v1/emails?status=sent", &api.manager).await;
    assert_eq!(sent.as_array().unwrap().len(), 0, "approval only queues");
    api.drain_deliveries().await;
    let (_, sent) = api.get("/api/v1/emails?status=sent", &api.manager).await;
    assert_eq!(
        sent.as_array().unwrap().len(),
        1,
        "the one sent now went; the scheduled one waits for tomorrow noon"
    );
}

/// The README's example: a program using the `domain` crate's own types for the request
/// and the answer.
#[tokio::test]
async fn a_rust_program_talks_to_the_api_with_the_domain_types() {
    use domain::views::ClientPage;
    use domain::{ClientInput, ProfileInput};
    let api = serve(|web| web).await;
    let http = reqwest::Client::new();
    let key = api.maya.clone();
    let input = ClientInput {
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        stylist_id: "st-1".into(),
        status: None,
        profile: ProfileInput {
            email_opt_in: true,
            ..ProfileInput::default()
        },
    };
    let created = http
        .post(format!("{}/api/v1/clients", api.base))
        .bearer_auth(&key)
        .json(&input)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let record: engage::api::ClientRecord = created.json().await.unwrap();
    assert_eq!(record.client.name.as_str(), "Ada Lovelace");
    let page: ClientPage = http
        .get(format!("{}/api/v1/clients?search=ada", api.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page.clients[0].name, "Ada Lovelace");
    assert_eq!(page.clients[0].id, record.id);
}

/// Every RFC 4180 case an import meets, in one file: a byte order mark, columns in another
/// order, CRLF and LF, quoted commas and doubled quotes, a stray quote mid-field, an empty
/// line, a quoted field over two lines, rows with too many and too few fields, non-ASCII
/// names, and no line end after the last row.
const RFC_4180_CSV: &str = concat!(
    "\u{feff}email,stylist_id,name,style_notes\r\n",
    "ada@example.com,st-1,\"Lovelace, Ada\",\"Said \"\"navy\"\", not beige\"\r\n",
    "maeve@example.com,st-1,Maeve O\"Brien,\r\n",
    "\r\n",
    "lucia@example.com,st-1,Lucía Ferreira,\"two\nlines\"\n",
    "zoe@example.com,st-1,Zoë Ångström,\n",
    "many@example.com,st-1,Too Many,x,extra\n",
    "few@example.com,st-1\n",
    "\"dee@example.com\",\"st-1\",\"Dee \"\"DJ\"\" Jones\",\"\"\n",
    "nadia@example.com,st-1,Надя Петрова,",
);

/// POSTs `body` to the import as `key` in HTTP/1.1 chunks of `size` bytes, so the server
/// reads it in pieces cut anywhere (inside the byte order mark, a quoted field, a
/// character), and returns the report.
async fn import_in_chunks(api: &Api, key: &str, body: &[u8], size: usize) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(api.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let mut request = format!(
        "POST /api/v1/clients/import HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {key}\r\nContent-Type: text/csv\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(size) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&request).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{response}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

#[tokio::test]
async fn a_csv_import_reads_rfc_4180_and_rows_after_a_stray_quote_still_import() {
    let api = serve(|web| web).await;
    let (status, _, report) = api
        .send(
            api.request(reqwest::Method::POST, "/api/v1/clients/import", &api.maya)
                .header("content-type", "text/csv")
                .body(RFC_4180_CSV),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (&report["rows"], &report["created"], &report["failed"]),
        (&json!(8), &json!(6), &json!(2)),
        "{report}"
    );
    // The physical line each refused row starts on: after the empty line and the quoted
    // field over two lines.
    let failures: Vec<(u64, &str)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["line"].as_u64().unwrap(),
                row["errors"][0]["field"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(failures, [(8, "row"), (9, "row")], "{report}");

    let (_, page) = api.get("/api/v1/clients?limit=100", &api.maya).await;
    let by_email: std::collections::BTreeMap<&str, &Value> = page["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|client| (client["email"].as_str().unwrap(), client))
        .collect();
    let names: Vec<&str> = by_email
        .values()
        .map(|client| client["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Lovelace, Ada",
            "Dee \"DJ\" Jones",
            "Lucía Ferreira",
            "Maeve O\"Brien",
            "Надя Петрова",
            "Zoë Ångström",
        ],
        "{page}"
    );
    // Four rows come after Maeve O"Brien's stray quote and are imported, each on its own.
    let after_the_stray_quote = ["lucia", "zoe", "dee", "nadia"]
        .iter()
        .filter(|who| by_email.contains_key(format!("{who}@example.com").as_str()))
        .count();
    assert_eq!(after_the_stray_quote, 4, "{page}");
    let notes = |email: &str| {
        let id = by_email[email]["id"].as_str().unwrap().to_owned();
        let api = &api;
        async move {
            let (_, detail) = api.get(&format!("/api/v1/clients/{id}"), &api.maya).await;
            detail["client"]["profile"]["style"]["notes"].clone()
        }
    };
    assert_eq!(notes("ada@example.com").await, "Said \"navy\", not beige");
    assert_eq!(notes("lucia@example.com").await, "two\nlines");

    // The same file streamed in pieces of every small size reads the same, on a fresh
    // database so that nothing is already there.
    for size in [1, 2, 7] {
        let fresh = serve(|web| web).await;
        let chunked = import_in_chunks(&fresh, &fresh.maya, RFC_4180_CSV.as_bytes(), size).await;
        assert_eq!(chunked, report, "in chunks of {size} bytes");
    }
}

/// Consent at send time over REST: a draft whose client unsubscribed (through the link in
/// an email) or lost consent is withdrawn on approval, alone or in a batch, with a 409
/// naming the reason; nothing is queued. Only the client can undo an unsubscribe: an API
/// update or an import that would opt them back in is refused naming `email_opt_in`.
#[tokio::test]
async fn approving_for_a_client_who_may_not_be_emailed_withdraws_the_draft_with_the_reason() {
    let api = serve(|web| web).await;
    let ada = api
        .create(&api.maya, "Ada Lovelace", "ada@example.com", "st-1")
        .await;
    let grace = api
        .create(&api.maya, "Grace Hopper", "grace@example.com", "st-1")
        .await;
    api.create(&api.maya, "Mary Shelley", "mary@example.com", "st-1")
        .await;
    api.drain_pipeline().await;
    let ada_draft = api.draft_of("Ada Lovelace", &api.maya).await;
    let grace_draft = api.draft_of("Grace Hopper", &api.maya).await;
    let mary_draft = api.draft_of("Mary Shelley", &api.maya).await;

    // Ada unsubscribes through her link while her draft awaits review.
    let ada_id = ada["id"].as_str().unwrap();
    let link = format!(
        "/unsubscribe?client={ada_id}&token={}",
        api.links.token(ada_id)
    );
    let (status, page) = api.post(&link, "").await;
    assert_eq!(status, StatusCode::OK, "{page}");

    let (status, content_type, problem) = api
        .send(api.request(
            reqwest::Method::POST,
            &format!("/api/v1/emails/{ada_draft}/approve"),
            &api.maya,
        ))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(problem["reason"], "unsubscribed", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("unsubscribed"),
        "{problem}"
    );
    let (_, detail) = api
        .get(&format!("/api/v1/emails/{ada_draft}"), &api.maya)
        .await;
    assert_eq!(detail["summary"]["status"], "withdrawn", "{detail}");
    assert_eq!(detail["withdrawn"], "unsubscribed", "{detail}");
    let (_, waiting) = api.get("/api/v1/emails?status=drafted", &api.maya).await;
    assert!(
        waiting
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["id"] != ada_draft.as_str()),
        "a withdrawn draft leaves the review queue: {waiting}"
    );
    let (_, withdrawn) = api.get("/api/v1/emails?status=withdrawn", &api.maya).await;
    assert_eq!(withdrawn.as_array().unwrap().len(), 1, "{withdrawn}");

    // A stylist's API update cannot tick the box again for her.
    let (_, current) = api
        .get(&format!("/api/v1/clients/{ada_id}"), &api.maya)
        .await;
    let mut edit = json!({
        "name": "Ada Lovelace", "email": "ada@example.com", "stylist_id": "st-1",
        "status": "active", "email_opt_in": true, "styles": [], "sizes": {},
        "budget": "", "style_notes": ""
    });
    let path = format!("/api/v1/clients/{ada_id}");
    let put = |edit: Value, version: u64| {
        api.json(
            reqwest::Method::PUT,
            &path,
            &api.maya,
            json!({"expected_version": version, "client": edit}),
        )
    };
    let version = current["client"]["version"].as_u64().unwrap();
    let (status, problem) = put(edit.clone(), version).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "email_opt_in", "{problem}");
    let (_, after) = api
        .get(&format!("/api/v1/clients/{ada_id}"), &api.maya)
        .await;
    assert_eq!(
        after["client"]["version"], current["client"]["version"],
        "nothing written"
    );
    // Other edits to her still work, and she stays unsubscribed.
    edit["email_opt_in"] = json!(false);
    edit["name"] = json!("Ada King");
    let (status, saved) = put(edit, version).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(
        saved["client"]["profile"]["consent"]["state"], "unsubscribed",
        "{saved}"
    );

    // An import cannot opt her back in either: her address is taken, and nothing is added.
    let (status, _, report) = api
        .send(
            api.request(reqwest::Method::POST, "/api/v1/clients/import", &api.maya)
                .header("content-type", "text/csv")
                .body(
                    "name,email,stylist_id,email_opt_in\nAda Lovelace,ada@example.com,st-1,yes\n",
                ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (report["created"].as_u64(), report["failed"].as_u64()),
        (Some(0), Some(1)),
        "{report}"
    );

    // Grace's stylist unticks her consent: in a batch with Mary's draft, hers is
    // withdrawn (no consent) and Mary's is not approved either: all or none.
    let grace_id = grace["id"].as_str().unwrap();
    let (_, current) = api
        .get(&format!("/api/v1/clients/{grace_id}"), &api.maya)
        .await;
    let (status, saved) = api
        .json(
            reqwest::Method::PUT,
            &format!("/api/v1/clients/{grace_id}"),
            &api.maya,
            json!({"expected_version": current["client"]["version"], "client": {
                "name": "Grace Hopper", "email": "grace@example.com", "stylist_id": "st-1",
                "status": "active", "email_opt_in": false, "styles": [], "sizes": {},
                "budget": "", "style_notes": ""}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let (status, problem) = api
        .json(
            reqwest::Method::POST,
            "/api/v1/emails/approve",
            &api.maya,
            json!({"ids": [mary_draft, grace_draft]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["reason"], "no_consent", "{problem}");
    assert_eq!(api.email_status(&grace_draft).await, "withdrawn");
    assert_eq!(api.email_status(&mary_draft).await, "drafted");
    api.drain_deliveries().await;
    assert!(!api._dir.path().join("outbox").exists(), "nothing was sent");

    // Mary alone is approved and sent; a sent email is not sent again.
    let (status, report) = api
        .post(&format!("/api/v1/emails/{mary_draft}/approve"), &api.maya)
        .await;
    assert_eq!(
        (status, report["queued"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    api.drain_deliveries().await;
    assert_eq!(api.email_status(&mary_draft).await, "sent");
    let sent = std::fs::read_dir(api._dir.path().join("outbox"))
        .unwrap()
        .count();
    assert_eq!(sent, 1, "only Mary's email left");
    let (status, problem) = api
        .post(&format!("/api/v1/emails/{mary_draft}/resend"), &api.manager)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["reason"], "not_failed", "{problem}");
}

/// A delivery that fails on every attempt leaves the email `failed` with the reason; a
/// stylist cannot resend it, a manager can (202), and it is queued and tried again.
#[tokio::test]
async fn a_failed_email_is_resent_by_a_manager() {
    let api = serve(|mut web| {
        // An outbox under a file: every write fails.
        web.outbox_dir = "/dev/null/outbox".into();
        web
    })
    .await;
    api.create(&api.maya, "Ada Lovelace", "ada@example.com", "st-1")
        .await;
    api.drain_pipeline().await;
    let draft = api.draft_of("Ada Lovelace", &api.maya).await;
    let (status, report) = api
        .post(&format!("/api/v1/emails/{draft}/approve"), &api.maya)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    api.drain_deliveries().await;
    let (_, detail) = api.get(&format!("/api/v1/emails/{draft}"), &api.maya).await;
    assert_eq!(detail["summary"]["status"], "failed", "{detail}");
    let failure = detail["reviews"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        failure["note"].as_str().unwrap().contains("outbox"),
        "{failure}"
    );

    let path = format!("/api/v1/emails/{draft}/resend");
    let (status, problem) = api.post(&path, &api.maya).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    let (status, resent) = api.post(&path, &api.manager).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{resent}");
    assert_eq!(resent["summary"]["status"], "approved", "{resent}");
    assert_eq!(
        api.sender.run_once().await.unwrap(),
        1,
        "the resend is queued for the sender"
    );
    let (_, detail) = api.get(&format!("/api/v1/emails/{draft}"), &api.maya).await;
    assert_eq!(
        detail["summary"]["status"], "failed",
        "tried again and failed again"
    );
    let actions: Vec<&str> = detail["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "failed").count(),
        2,
        "{actions:?}"
    );
    assert!(actions.contains(&"resend_requested"), "{actions:?}");
}
