//! Wiring: the store, the pipeline tasks, the Axum router, and a graceful shutdown.

use crate::auth::{AttemptLimiter, AuthSettings, SessionCache};
use crate::backend::Operations;
use crate::config::{ServeArgs, WebArgs};
use crate::service::{Engage, Ports};
use crate::{api, assets, auth, demo, health, live, unsubscribe};
use app::service::Service;
use app::{App, shell};
use axum::Router;
use axum::extract::{FromRef, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use leptos::config::{Env, LeptosOptions};
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use ports::{Accounts, Records};
use processors::delivery::{Delivery, Outbox, Smtp, UnsubscribeLinks};
use processors::embedded::{
    EmailProcessor, EmailProcessorConfig, FeedRetention, Sender, StreamProcessor,
};
use processors::openrouter::{FallbackWriter, OpenRouterConfig, OpenRouterWriter};
use processors::sender::SenderCore;
use processors::supervise::{Health, supervise};
use processors::{Clock, EmailWriter};
use std::net::SocketAddr;
use std::sync::Arc;
use store::Store;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Everything a request handler may need, shared: every request clones the handle, not
/// the parts.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What [`AppState`] holds.
#[derive(Clone)]
pub struct AppParts {
    pub leptos_options: LeptosOptions,
    /// The application service, as pages and server functions see it.
    pub service: Service,
    /// The same service, with the calls only the REST API makes.
    pub engage: Arc<Engage>,
    /// The ports the service works over.
    pub ports: Ports,
    /// Where approved emails go (the outbox or SMTP).
    pub delivery: Arc<dyn Delivery>,
    pub records: Arc<dyn Records>,
    pub accounts: Arc<dyn Accounts>,
    pub ops: Arc<dyn Operations>,
    /// The embedded store, when the app runs on one (not on AWS).
    pub embedded: Option<Store>,
    pub clock: Arc<dyn Clock>,
    /// The pipeline's email writer, for its health on `/readyz`.
    pub writer: Arc<FallbackWriter>,
    pub auth: AuthSettings,
    pub attempts: Arc<AttemptLimiter>,
    /// Per-address sign-in budgets.
    pub signin_rate: Arc<auth::RateLimiter>,
    /// The bound on password checks running at once.
    pub password_checks: Arc<auth::PasswordChecks>,
    pub sessions: Arc<SessionCache>,
    /// The change stamp, for `/api/v1/live`.
    pub changes: tokio::sync::watch::Receiver<u64>,
    /// How long one live-update stream lasts (unlimited when `None`).
    pub live_limit: Option<std::time::Duration>,
    /// The open live-update streams, against their caps.
    pub live: Arc<live::LiveStreams>,
    /// How long a request may take to answer.
    pub request_timeout: std::time::Duration,
    pub unsubscribe: UnsubscribeLinks,
    /// The business's own links in emails, tracked, and the open pixel.
    pub tracking: processors::tracking::Tracking,
    /// Per-API-key and per-session request budgets.
    pub rate: Arc<auth::RateLimiter>,
    /// Request counts and latency for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Origins allowed to call the API from a browser.
    pub cors_origins: Vec<axum::http::HeaderValue>,
    /// The pipeline's supervised tasks in this process (none in a web-only Lambda).
    pub processors: Health,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// What every backend's state shares: rendering options, delivery and unsubscribe links.
struct Parts {
    leptos_options: LeptosOptions,
    delivery: Arc<dyn Delivery>,
    unsubscribe: UnsubscribeLinks,
    tracking: processors::tracking::Tracking,
    trusted_proxies: crate::client_address::TrustedProxies,
}

impl Parts {
    async fn new(accounts: &dyn Accounts, addr: SocketAddr, web: &WebArgs) -> anyhow::Result<Self> {
        let leptos_options = LeptosOptions::builder()
            .output_name(crate::assets::OUTPUT_NAME)
            .site_pkg_dir("pkg")
            .site_addr(addr)
            .env(Env::PROD)
            .build();
        let public_url = web
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let key = accounts.secret("unsubscribe_key").await?;
        let unsubscribe = UnsubscribeLinks::new(key.into_bytes(), &public_url);
        let tracking = tracking_from_env(accounts, &public_url).await?;
        let delivery: Arc<dyn Delivery> = match web
            .smtp_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        {
            Some(url) => {
                tracing::info!("approved emails are sent over SMTP");
                Arc::new(Smtp::new(url.trim()).map_err(|e| anyhow::anyhow!(e))?)
            }
            None => {
                tracing::info!(outbox = %web.outbox_dir.display(), "approved emails are written to the outbox");
                Arc::new(Outbox {
                    dir: web.outbox_dir.clone(),
                })
            }
        };
        Ok(Self {
            leptos_options,
            delivery,
            unsubscribe,
            tracking,
            trusted_proxies: web.proxies().map_err(|e| anyhow::anyhow!(e))?,
        })
    }
}

/// How links are tracked (`ENGAGE_LINK_HOSTS`, `ENGAGE_OPEN_PIXEL`), signed with the
/// app's own `tracking_key` (made on first use and kept with the accounts).
pub async fn tracking_from_env(
    accounts: &dyn Accounts,
    public_url: &str,
) -> anyhow::Result<processors::tracking::Tracking> {
    let (hosts, pixel) =
        processors::tracking::Tracking::settings_from(|name| std::env::var(name).ok())
            .map_err(|e| anyhow::anyhow!(e))?;
    let key = accounts.secret("tracking_key").await?;
    Ok(processors::tracking::Tracking::new(
        key.into_bytes(),
        public_url,
        hosts,
        pixel,
    ))
}

/// Every port of the service on the embedded store (on AWS: `crate::aws::ports`).
pub fn embedded_ports(store: &Store) -> Ports {
    Ports {
        records: Arc::new(store.clone()),
        accounts: Arc::new(store.clone()),
        books: Arc::new(store.clone()),
        review: Arc::new(store.clone()),
        sending: Arc::new(store.clone()),
        views: Arc::new(store.clone()),
        model: Arc::new(store.clone()),
        ops: Arc::new(store.clone()),
    }
}

impl AppState {
    /// The state for a server on the embedded store listening on `addr`. Reads (or makes,
    /// on first use) the key that signs unsubscribe links.
    pub async fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        addr: SocketAddr,
        web: &WebArgs,
    ) -> anyhow::Result<Self> {
        let writer = Arc::new(FallbackWriter::new(None));
        let parts = Parts::new(&store, addr, web).await?;
        let ports = embedded_ports(&store);
        Ok(Self::assemble(
            parts,
            ports,
            Some(store),
            clock,
            writer,
            web,
        ))
    }

    /// The state for a server on any backend's ports.
    pub async fn on(
        ports: Ports,
        clock: Arc<dyn Clock>,
        writer: Arc<FallbackWriter>,
        addr: SocketAddr,
        web: &WebArgs,
    ) -> anyhow::Result<Self> {
        let parts = Parts::new(ports.accounts.as_ref(), addr, web).await?;
        Ok(Self::assemble(parts, ports, None, clock, writer, web))
    }

    fn assemble(
        parts: Parts,
        ports: Ports,
        embedded: Option<Store>,
        clock: Arc<dyn Clock>,
        writer: Arc<FallbackWriter>,
        web: &WebArgs,
    ) -> Self {
        let engage = Arc::new(Engage::new(
            ports.clone(),
            Arc::clone(&clock),
            Arc::clone(&writer),
        ));
        let (records, accounts, ops) = (
            Arc::clone(&ports.records),
            Arc::clone(&ports.accounts),
            Arc::clone(&ports.ops),
        );
        let changes = live::watch_changes(Arc::clone(&ops));
        Self(Arc::new(AppParts {
            leptos_options: parts.leptos_options,
            service: engage.clone(),
            engage,
            ports,
            delivery: parts.delivery,
            records,
            accounts,
            ops,
            embedded,
            clock,
            writer,
            auth: AuthSettings {
                session_ttl: chrono::Duration::hours(i64::from(web.session_hours)),
                secure_cookies: web.secure_cookies,
                trusted_proxies: parts.trusted_proxies,
                ..AuthSettings::default()
            },
            attempts: Arc::default(),
            signin_rate: Arc::new(auth::RateLimiter::new(web.signin_rate_per_minute)),
            password_checks: Arc::new(auth::PasswordChecks::new(
                web.password_checks as usize,
                std::time::Duration::from_secs(10),
            )),
            sessions: Arc::default(),
            changes,
            live_limit: web.live_max_secs.map(std::time::Duration::from_secs),
            live: Arc::new(live::LiveStreams::new(
                web.live_max_per_session as usize,
                web.live_max_total as usize,
            )),
            request_timeout: std::time::Duration::from_secs(web.request_timeout_secs),
            unsubscribe: parts.unsubscribe,
            tracking: parts.tracking,
            rate: Arc::new(auth::RateLimiter::new(web.api_rate_per_minute)),
            metrics: Arc::new(crate::metrics::Metrics::new(web.emf_metrics)),
            cors_origins: web.cors_origins.clone(),
            processors: Health::default(),
        }))
    }

    /// The same state, reporting on `writer`.
    pub fn with_writer(mut self, writer: Arc<FallbackWriter>) -> Self {
        let parts = Arc::make_mut(&mut self.0);
        let engage = Arc::new(
            Engage::new(
                parts.ports.clone(),
                Arc::clone(&parts.clock),
                Arc::clone(&writer),
            )
            .with_outreach(parts.engage.outreach()),
        );
        parts.service = engage.clone();
        parts.engage = engage;
        parts.writer = writer;
        self
    }

    /// The same state, tracking links as `tracking` says (tests; servers read the
    /// environment).
    pub fn with_tracking(mut self, tracking: processors::tracking::Tracking) -> Self {
        Arc::make_mut(&mut self.0).tracking = tracking;
        self
    }

    /// The same state, its outcomes figured with these settings (the attribution window).
    pub fn with_outreach(mut self, outreach: processors::email::OutreachSettings) -> Self {
        let parts = Arc::make_mut(&mut self.0);
        let engage = Arc::new((*parts.engage).clone().with_outreach(outreach));
        parts.service = engage.clone();
        parts.engage = engage;
        self
    }

    /// The same state with these sign-in rules (tests use short delays).
    pub fn with_auth(mut self, auth: AuthSettings) -> Self {
        Arc::make_mut(&mut self.0).auth = auth;
        self
    }

    /// The same state, reporting on the supervised tasks in `health` on `/readyz`.
    pub fn with_processors(mut self, health: Health) -> Self {
        Arc::make_mut(&mut self.0).processors = health;
        self
    }
}

/// The whole HTTP surface: pages, server functions, health, and static files, behind the
/// sign-in guard.
/// The app's page routes, found once per process. Leptos finds them by rendering the app with
/// resource loading suppressed by a process-wide flag, so a resource that first polls while
/// another router is being built would wait forever (leptos-rs/leptos#4773): building them
/// once, before anything serves, keeps every later router (tests build many) clear of it.
fn page_routes() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

pub fn router(state: AppState) -> Router {
    let routes = page_routes();
    let context = page_context(state.service.clone());
    let page = {
        let options = state.leptos_options.clone();
        move || shell(options.clone())
    };
    let (api_routes, openapi) = api::api_routes();
    let spec = api::docs::openapi_text(&openapi);
    Router::new()
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/signin", post(auth::sign_in))
        .route("/signout", post(auth::sign_out))
        .route(
            "/unsubscribe",
            get(unsubscribe::confirm).post(unsubscribe::unsubscribe),
        )
        .route("/resubscribe", post(unsubscribe::resubscribe))
        .route("/t/{token}", get(crate::tracking::follow))
        .route("/o/{token}", get(crate::tracking::open))
        .route("/metrics", get(crate::metrics::serve))
        .merge(api_routes)
        .route("/api/docs", get(api::docs::docs_page))
        .route(
            "/api/openapi.json",
            get(api::docs::openapi_json).with_state(Arc::new(spec)),
        )
        .route("/api/{*rest}", axum::routing::any(api::no_route))
        .leptos_routes_with_context(&state, routes, context, page)
        .fallback(not_a_page)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(time_limits(state.request_timeout))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(cors(&state.cors_origins))
        .layer(axum::middleware::from_fn(crate::security::headers))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        // Outermost: every request gets an id (or keeps the caller's), which the span
        // above logs and every response carries back in `x-request-id`.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// What every page render is given: the app's service, and the response's Content
/// Security Policy naming the nonce Leptos put on its inline scripts.
fn page_context(service: Service) -> impl Fn() + Clone + Send + Sync + 'static {
    move || {
        provide_context(service.clone());
        let nonce = leptos::nonce::use_nonce();
        let response = leptos::prelude::use_context::<leptos_axum::ResponseOptions>();
        if let (Some(nonce), Some(response)) = (nonce, response)
            && let Ok(policy) =
                axum::http::HeaderValue::from_str(&crate::security::page_policy(&nonce))
        {
            response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, policy);
        }
    }
}

/// A request gets `timeout` to be answered, its body's arrival included; 503 after. A
/// stream's answer (live updates, a page rendered in chunks) counts as given once it
/// starts.
pub fn time_limits(timeout: std::time::Duration) -> tower_http::timeout::TimeoutLayer {
    tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        timeout,
    )
}

/// Browsers on the allowlisted origins may call the API (with an API key; cookies are not
/// sent cross-site). Without origins, no CORS headers: same origin only.
fn cors(origins: &[axum::http::HeaderValue]) -> tower_http::cors::CorsLayer {
    use axum::http::{Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return CorsLayer::new();
    }
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-api-key"),
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
            header::LOCATION,
        ])
        .max_age(std::time::Duration::from_secs(600))
}

/// The largest request body accepted (413 beyond it).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Each request's span: method, path and request id, so every log line it causes names it.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id,
    )
}

/// Static files, or else the app's "not found" page (with status 404).
async fn not_a_page(State(state): State<AppState>, request: Request) -> Response {
    let response = assets::serve(request.uri().clone(), request.headers().clone()).await;
    if response.status() != axum::http::StatusCode::NOT_FOUND {
        return response;
    }
    let options = state.leptos_options.clone();
    let render = leptos_axum::render_app_to_stream_with_context(
        page_context(state.service.clone()),
        move || shell(options.clone()),
    );
    render(request).await.into_response()
}

/// The pipeline's tasks, each supervised (restarted if it ends before `shutdown`, its
/// state in `health`), running until `shutdown` is cancelled.
pub fn spawn_pipeline(
    store: &Store,
    clock: &Arc<dyn Clock>,
    writer: Arc<dyn EmailWriter>,
    settings: &ServeArgs,
    health: &Health,
    shutdown: &CancellationToken,
) -> JoinSet<()> {
    let change_retention = chrono::Duration::hours(i64::from(settings.change_retention_hours));
    let config = EmailProcessorConfig {
        visibility_timeout: chrono::Duration::seconds(i64::from(settings.queue_visibility_secs)),
        max_receives: settings.queue_max_receives,
        policy: settings.outreach.policy,
        window_days: settings.outreach.window_days,
        ..EmailProcessorConfig::default()
    };
    let mut tasks = JoinSet::new();
    let (s, c, stop) = (store.clone(), Arc::clone(clock), shutdown.clone());
    tasks.spawn(supervise(
        "feed_retention",
        health.clone(),
        shutdown.clone(),
        move || FeedRetention::new(s.clone(), Arc::clone(&c), change_retention).run(stop.clone()),
    ));
    let (s, c, stop) = (store.clone(), Arc::clone(clock), shutdown.clone());
    tasks.spawn(supervise(
        "stream",
        health.clone(),
        shutdown.clone(),
        move || StreamProcessor::new(s.clone(), Arc::clone(&c)).run(stop.clone()),
    ));
    let (s, c, stop) = (store.clone(), Arc::clone(clock), shutdown.clone());
    tasks.spawn(supervise(
        "email",
        health.clone(),
        shutdown.clone(),
        move || {
            EmailProcessor::new(
                s.clone(),
                Arc::clone(&c),
                Arc::clone(&writer),
                config.clone(),
            )
            .run(stop.clone())
        },
    ));
    tasks
}

/// The embedded sender over `state`'s delivery and links.
pub fn sender(store: &Store, state: &AppState, settings: &ServeArgs) -> Sender {
    Sender {
        store: store.clone(),
        core: Arc::new(sender_core(
            Arc::new(store.clone()),
            state,
            settings.queue_max_receives,
        )),
        visibility: chrono::Duration::seconds(i64::from(settings.queue_visibility_secs)),
        max_receives: settings.queue_max_receives,
    }
}

/// The sender's core over `sending`, delivering through `state`'s delivery, retrying a
/// failed delivery until the `attempts`-th.
pub fn sender_core(
    sending: Arc<dyn ports::Sending>,
    state: &AppState,
    attempts: u32,
) -> SenderCore {
    SenderCore::new(
        sending,
        Arc::clone(&state.delivery),
        state.unsubscribe.clone(),
        processors::delivery::message_domain(state.unsubscribe.public_url()),
        Arc::clone(&state.clock),
        attempts,
    )
    .with_tracking(state.tracking.clone())
}

/// `engage serve`: opens the database, seeds it on first run, starts the pipeline and
/// serves until SIGINT or SIGTERM, then stops taking work, lets the pipeline finish its
/// batch, and closes the database cleanly.
pub async fn serve(store: Store, clock: Arc<dyn Clock>, args: ServeArgs) -> anyhow::Result<()> {
    let args = args.with_outreach_from_env()?;
    if !assets::embedded() {
        tracing::warn!(
            "this binary carries no browser bundle: pages render but will not hydrate; build it with `cargo leptos build --release`"
        );
    }
    if args.demo_data && store.client_count().await? == 0 {
        tracing::info!("empty database: adding demo data");
        if args.demo_days == 0 {
            demo::seed(&store, clock.as_ref(), args.demo_clients).await?;
        } else {
            let plan = crate::replay::Plan {
                seed: crate::replay::Plan::DEFAULT_SEED,
                days: args.demo_days,
                clients: args.demo_clients,
            };
            let summary = crate::replay::on_store(&store, plan, args.outreach, clock.now()).await?;
            tracing::info!(%summary, "demo data replayed");
        }
    }
    if store.views_need_rebuild().await? {
        tracing::info!("the dashboard's views are new: filling them from the history");
        crate::ops::rebuild_views(&store).await?;
    }
    demo::accounts_on_start(&store, clock.as_ref(), args.demo_data).await?;
    let shutdown = CancellationToken::new();
    let writer = Arc::new(llm_writer(&args)?);
    // This process is the only worker on this database: whatever a previous run had in
    // flight when it stopped (or was killed) can be retried at once.
    let released = store
        .release_in_flight(processors::EVENTS_QUEUE, clock.now())
        .await?;
    if released > 0 {
        tracing::info!(
            released,
            "events in flight at the last stop are visible again"
        );
    }
    let health = Health::default();
    let mut pipeline = spawn_pipeline(&store, &clock, writer.clone(), &args, &health, &shutdown);
    pipeline.spawn(purge_expired_sessions(
        store.clone(),
        Arc::clone(&clock),
        shutdown.clone(),
    ));

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(db = %store.path().display(), "Engage is serving at http://{addr}/");
    let state = AppState::new(store.clone(), clock, addr, &args.web)
        .await?
        .with_writer(writer)
        .with_outreach(args.outreach)
        .with_processors(health.clone());
    // Approved emails wait on the deliveries queue; what a previous run was sending when
    // it stopped is retried at once (the Message-ID stays the same).
    store
        .release_in_flight(ports::DELIVERIES_QUEUE, state.clock.now())
        .await?;
    let (s, st, a, stop) = (store.clone(), state.clone(), args.clone(), shutdown.clone());
    pipeline.spawn(supervise("sender", health, shutdown.clone(), move || {
        sender(&s, &st, &a).run(stop.clone())
    }));
    let app = router(state);
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    crate::transport::serve(listener, app, transport_limits(&args.web), shutdown.clone()).await?;

    tracing::info!("shutting down: waiting for the pipeline to finish its batch");
    while pipeline.join_next().await.is_some() {}
    store.checkpoint_wal().await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The connection limits `web` asks for.
pub fn transport_limits(web: &WebArgs) -> crate::transport::Limits {
    crate::transport::Limits {
        header_read_timeout: std::time::Duration::from_secs(web.header_read_timeout_secs),
        drain: std::time::Duration::from_secs(10),
    }
}

/// Deletes expired sign-in sessions once an hour (they are refused when expired anyway;
/// this keeps the table small).
async fn purge_expired_sessions(store: Store, clock: Arc<dyn Clock>, shutdown: CancellationToken) {
    let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every_hour.tick() => match store.purge_sessions(clock.now()).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "expired sessions deleted"),
                Err(error) => tracing::error!(%error, "cannot delete expired sessions"),
            },
        }
    }
}

/// The email writer: the LLM when a key is set, with the template as its fallback.
pub(crate) fn llm_writer(args: &ServeArgs) -> anyhow::Result<FallbackWriter> {
    let Some(key) = args.llm.api_key.as_deref().filter(|k| !k.trim().is_empty()) else {
        tracing::info!("no OPENROUTER_API_KEY: the template writer drafts every email");
        return Ok(FallbackWriter::new(None));
    };
    let models: Vec<String> = args
        .llm
        .models
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(!models.is_empty(), "--llm-models names no model");
    let mut config = OpenRouterConfig::new(args.llm.base_url.clone(), key.trim(), models);
    config.timeout = std::time::Duration::from_secs(u64::from(args.llm.timeout_secs));
    config.unsubscribe_url = args.llm.unsubscribe_url.clone();
    config.link_hosts = processors::tracking::Tracking::settings_from(|n| std::env::var(n).ok())
        .map_err(|e| anyhow::anyhow!(e))?
        .0;
    tracing::info!(base_url = %config.base_url, models = ?config.models, "drafting with the LLM (template as fallback)");
    let writer = OpenRouterWriter::new(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(FallbackWriter::new(Some(writer)))
}

pub(crate) async fn cancel_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown requested");
    shutdown.cancel();
}
