//! Who is asking: the session cookie, sign-in and sign-out, the checks every request
//! passes (a signed-in user for everything but the public paths, and a same-origin check
//! on every state-changing request), and the limits on guessing: a growing delay after
//! failed sign-ins (per account and address, and per address), a bound on concurrent
//! password checks, and a request budget per address for sign-in and per session.
//!
//! The signed-in [`User`] travels in the request's extensions; pages and server functions
//! read it from there (see `app::service::viewer`), API handlers take it as an extractor.

use crate::client_address::TrustedProxies;
use crate::startup::AppState;
use app::routes::percent_encode;
use axum::Form;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use domain::user::User;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "engage_session";

/// How sessions are issued.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// How long a session lasts after sign-in.
    pub session_ttl: chrono::Duration,
    /// Mark the cookie `Secure` even when no proxy says the request came over HTTPS.
    pub secure_cookies: bool,
    /// Failed sign-ins to one account from one address before each further try waits.
    pub account_backoff: Backoff,
    /// Failed sign-ins from one address (to any accounts) before each further try waits.
    pub address_backoff: Backoff,
    /// The proxies whose `X-Forwarded-For` entries say who the client is.
    pub trusted_proxies: TrustedProxies,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            session_ttl: chrono::Duration::hours(12),
            secure_cookies: false,
            account_backoff: Backoff::default(),
            address_backoff: Backoff {
                free: 20,
                ..Backoff::default()
            },
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// How failed sign-ins slow the next try: after `free` failures each try waits `first`,
/// doubling with every further failure up to `max`; the count is forgotten after
/// `forget_after` without a failure (and, per account and address, on success). A correct
/// password is accepted once the wait is over, so guessing is slowed without anyone being
/// locked out: a stranger's failures from another address never delay the owner's.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub free: u32,
    pub first: Duration,
    pub max: Duration,
    pub forget_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            free: 5,
            first: Duration::from_secs(1),
            max: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(60 * 60),
        }
    }
}

impl Backoff {
    /// The wait after `failures` failures, if any.
    fn delay_after(&self, failures: u32) -> Option<Duration> {
        let beyond = failures.checked_sub(self.free)?;
        let factor = 2u32.checked_pow(beyond.min(31)).unwrap_or(u32::MAX);
        Some(self.first.saturating_mul(factor).min(self.max))
    }
}

/// The address a request came from, as [`guard`] worked it out (none when the transport
/// does not say).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<IpAddr>);

/// Paths anyone may open: the sign-in page, health checks, the unsubscribe link in emails
/// (and its way back in), tracked links and the open pixel (signed per email), and the
/// site's static files.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/signin"
            | "/healthz"
            | "/readyz"
            | "/favicon.svg"
            | "/api/openapi.json"
            | "/api/docs"
            | "/unsubscribe"
            | "/resubscribe"
    ) || path.starts_with("/pkg/")
        || path.starts_with("/t/")
        || path.starts_with("/o/")
}

/// The value of cookie `name` in the request, if any.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether the request came over HTTPS (directly or, as reported by a proxy in front).
fn over_https(headers: &HeaderMap, settings: &AuthSettings) -> bool {
    settings.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

fn session_cookie(value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .expect("session tokens are hex")
}

/// Whether a state-changing request comes from one of our own pages. Browsers send
/// `Sec-Fetch-Site` and `Origin` with every form post and `fetch`; a request from another
/// site's page says so in both and is refused. Requests with neither header (and no
/// `Referer`) come from programs, not from a browser a third party can steer.
fn same_origin(headers: &HeaderMap) -> bool {
    let value = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = value(header::HeaderName::from_static("sec-fetch-site")) {
        return matches!(site, "same-origin" | "none");
    }
    let origin_host = |url: &str| {
        url.split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default().to_owned())
    };
    let claimed = match (value(header::ORIGIN), value(header::REFERER)) {
        (Some(origin), _) => origin,
        (None, Some(referer)) => referer,
        (None, None) => return true,
    };
    value(header::HOST).is_some_and(|host| origin_host(claimed).as_deref() == Some(host))
}

/// Middleware on every request: resolves the session cookie to a user, refuses cross-site
/// state changes, and sends anyone not signed in to the sign-in page (pages) or answers
/// 401 (API and server functions).
pub async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if !state.auth.trusted_proxies.admits(request.headers()) {
        tracing::warn!(path = %request.uri().path(), "refused a request that did not come through the proxy");
        return (
            StatusCode::FORBIDDEN,
            "Open Engage at the site's own address; this one answers only its proxy.",
        )
            .into_response();
    }
    let address = state.auth.trusted_proxies.client_of(&request);
    request.extensions_mut().insert(ClientAddress(address));
    // A program with an API key: no cookie is involved, so no cross-site check either.
    if let Some(secret) = presented_key(request.headers()) {
        let path = request.uri().path();
        if !(path.starts_with("/api/") || path == "/metrics") {
            return crate::api::ApiError::KeyNotForPages.into_response();
        }
        return match state.accounts.api_key(secret).await {
            Ok(Some(key)) => match state.rate.check(&key.id, Instant::now()) {
                Ok(()) => {
                    tracing::debug!(key = %key.id, "API key accepted");
                    request.extensions_mut().insert(key.acting_user());
                    next.run(request).await
                }
                Err(retry_after_secs) => {
                    tracing::info!(key = %key.id, retry_after_secs, "API key over its rate limit");
                    crate::api::ApiError::RateLimited { retry_after_secs }.into_response()
                }
            },
            Ok(None) => crate::api::ApiError::BadKey.into_response(),
            Err(error) => {
                tracing::error!(%error, "cannot read the API key");
                crate::api::ApiError::Store(error).into_response()
            }
        };
    }
    let changes_state = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if changes_state && !same_origin(request.headers()) {
        tracing::warn!(path = %request.uri().path(), "refused a cross-site request");
        return (
            StatusCode::FORBIDDEN,
            "This request came from another site and was refused.",
        )
            .into_response();
    }
    let token = cookie(request.headers(), SESSION_COOKIE).map(str::to_owned);
    let user = match token.clone() {
        Some(token) if !token.is_empty() => match state.sessions.get(&token) {
            Some(user) => Some(user),
            None => match state
                .accounts
                .session_user(token.clone(), state.clock.now())
                .await
            {
                Ok(user) => {
                    if let Some(user) = &user {
                        state.sessions.put(token, user.clone());
                    }
                    user
                }
                Err(error) => {
                    tracing::error!(%error, "cannot read the session");
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
            },
        },
        _ => None,
    };
    let path = request.uri().path();
    match user {
        Some(user) => {
            // A session's budget, like an API key's; static files cost nothing.
            if !is_static(path) {
                let session = format!("session:{}", ports::token_hash(&token.unwrap_or_default()));
                if let Err(retry_after_secs) = state.rate.check(&session, Instant::now()) {
                    tracing::info!(user_id = %user.id, retry_after_secs, "session over its rate limit");
                    return too_many_requests(path, retry_after_secs);
                }
            }
            request.extensions_mut().insert(user);
        }
        None if is_public(path) => {}
        None if path.starts_with("/api/") => {
            return crate::api::ApiError::Unauthenticated.into_response();
        }
        None => {
            let here = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let target = if here == "/" {
                "/signin".to_owned()
            } else {
                format!("/signin?next={}", percent_encode(&here))
            };
            return Redirect::to(&target).into_response();
        }
    }
    next.run(request).await
}

/// The site's static files.
fn is_static(path: &str) -> bool {
    path.starts_with("/pkg/") || path == "/favicon.svg"
}

/// 429 for a session over its budget: a problem document for the API and server
/// functions, a short page otherwise; `Retry-After` either way.
fn too_many_requests(path: &str, retry_after_secs: u64) -> Response {
    if path.starts_with("/api/") {
        return crate::api::ApiError::RateLimited { retry_after_secs }.into_response();
    }
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, HeaderValue::from(retry_after_secs))],
        format!("Too many requests from this sign-in. Try again in {retry_after_secs} s."),
    )
        .into_response()
}

/// The secret a request is made with: its API key, else its session token.
pub(crate) fn credential(headers: &HeaderMap) -> Option<String> {
    presented_key(headers).or_else(|| {
        cookie(headers, SESSION_COOKIE)
            .filter(|token| !token.is_empty())
            .map(str::to_owned)
    })
}

/// The API key a request presents: `Authorization: Bearer …` or `X-Api-Key: …`.
fn presented_key(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let header_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    bearer
        .or(header_key)
        .map(|key| key.trim().to_owned())
        .filter(|key| !key.is_empty())
}

/// Per-key request budget: a bucket of `per_minute` requests, refilled evenly.
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            buckets: Mutex::default(),
        }
    }

    /// Takes one request from `key`'s bucket, or says in how many whole seconds one will
    /// be there.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), u64> {
        let capacity = f64::from(self.per_minute);
        let per_sec = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        // Bound the memory many keys can make us spend: a bucket untouched for a minute is
        // full again, and the same as none.
        if buckets.len() > 100_000 {
            buckets.retain(|_, (_, last)| now.saturating_duration_since(*last).as_secs() < 60);
        }
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((capacity, now));
        let refilled = now.saturating_duration_since(*last).as_secs_f64() * per_sec;
        *tokens = (*tokens + refilled).min(capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / per_sec).ceil().max(1.0) as u64)
        }
    }
}

/// The signed-in user, for handlers behind [`guard`]. Answers 401 when there is none.
pub struct SignedIn(pub User);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = crate::api::ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<User>()
            .cloned()
            .map(SignedIn)
            .ok_or(crate::api::ApiError::Unauthenticated)
    }
}

/// Sessions checked in the last [`RecentCache::FRESH_FOR`](store::RecentCache::FRESH_FOR),
/// by token, so a busy page or integration does not cost a database read per request.
/// Sign-out removes its entry at once; an expired session is honoured at most that long
/// after it expired.
pub type SessionCache = store::RecentCache<User>;

/// Failed sign-ins per key (an account at an address, an address), each with the time of
/// the latest.
#[derive(Default)]
pub struct AttemptLimiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

type Failures = HashMap<String, (u32, Instant)>;

/// How long `key` must still wait before its next try, if at all.
fn wait_in(
    failures: &mut Failures,
    key: &str,
    backoff: &Backoff,
    now: Instant,
) -> Option<Duration> {
    let (count, last) = *failures.get(key)?;
    let since = now.saturating_duration_since(last);
    if since >= backoff.forget_after {
        failures.remove(key);
        return None;
    }
    backoff
        .delay_after(count)
        .and_then(|delay| delay.checked_sub(since))
        .filter(|wait| !wait.is_zero())
}

fn record_in(failures: &mut Failures, key: &str, backoff: &Backoff, now: Instant) {
    // Bound the memory an attacker can make us spend: past 100,000 keys, forget the
    // ones that wait no more.
    if failures.len() > 100_000 {
        failures.retain(|_, (count, last)| {
            backoff
                .delay_after(*count)
                .is_some_and(|delay| now.saturating_duration_since(*last) < delay)
        });
    }
    let entry = failures.entry(key.to_owned()).or_insert((0, now));
    if now.saturating_duration_since(entry.1) >= backoff.forget_after {
        entry.0 = 0;
    }
    entry.0 = entry.0.saturating_add(1);
    entry.1 = now;
}

impl AttemptLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Failures> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn wait(&self, key: &str, backoff: &Backoff, now: Instant) -> Option<Duration> {
        wait_in(&mut self.lock(), key, backoff, now)
    }

    #[cfg(test)]
    fn record_failure(&self, key: String, backoff: &Backoff, now: Instant) {
        record_in(&mut self.lock(), &key, backoff, now);
    }

    /// Starts a try for every key at once: refused with the longest wait still owed, or
    /// counted as a failure in advance (in one step, so tries sent together cannot all
    /// slip past the count). A try that turns out right or cannot be judged is taken back
    /// with [`forget`](Self::forget) or [`take_back`](Self::take_back).
    fn begin(&self, keys: &[(&str, &Backoff)], now: Instant) -> Result<(), Duration> {
        let mut failures = self.lock();
        let wait = keys
            .iter()
            .filter_map(|(key, backoff)| wait_in(&mut failures, key, backoff, now))
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        for (key, backoff) in keys {
            record_in(&mut failures, key, backoff, now);
        }
        Ok(())
    }

    /// Takes back one try counted in advance.
    fn take_back(&self, key: &str) {
        let mut failures = self.lock();
        if let Some((count, _)) = failures.get_mut(key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                failures.remove(key);
            }
        }
    }

    fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

/// At most so many password checks at once (each is an argon2 run, ~20 MiB and tens of
/// milliseconds of a core); a sign-in waits its turn up to `queue_wait`, then is told to
/// try again. A check runs to its end in its own task even when the sign-in that asked
/// for it has gone, so the bound holds.
pub struct PasswordChecks {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    queue_wait: Duration,
    in_flight: std::sync::Arc<AtomicUsize>,
    peak: std::sync::Arc<AtomicUsize>,
}

impl PasswordChecks {
    pub fn new(concurrent: usize, queue_wait: Duration) -> Self {
        Self {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(concurrent.max(1))),
            queue_wait,
            in_flight: std::sync::Arc::default(),
            peak: std::sync::Arc::default(),
        }
    }

    /// Runs `check` when a permit is free; `None` when none came free in time.
    pub async fn run<T: Send + 'static>(
        &self,
        check: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let permit = tokio::time::timeout(
            self.queue_wait,
            std::sync::Arc::clone(&self.permits).acquire_owned(),
        )
        .await
        .ok()?
        .ok()?;
        let (in_flight, peak) = (
            std::sync::Arc::clone(&self.in_flight),
            std::sync::Arc::clone(&self.peak),
        );
        tokio::spawn(async move {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let outcome = check.await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            outcome
        })
        .await
        .ok()
    }

    /// The most checks that ran at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// Only a path on this site may follow sign-in (never another site's address). Browsers
/// drop tabs and line breaks from a URL and read `\\` as `/`, so `/\t/evil.example` or
/// `/\\evil.example` would lead away; anything but a plain absolute path is refused.
fn safe_next(next: &str) -> &str {
    // Visible ASCII only (a browser sends anything else percent-encoded), no backslash.
    let plain = next.chars().all(|c| c.is_ascii_graphic() && c != '\\');
    let local = next.starts_with('/') && !next.starts_with("//");
    if plain && local { next } else { "/" }
}

/// `POST /signin`: checks the password and starts a session; a plain form post, so it works
/// without JavaScript. Failures go back to the sign-in page with the reason.
pub async fn sign_in(
    State(state): State<AppState>,
    axum::Extension(ClientAddress(address)): axum::Extension<ClientAddress>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let settings = &state.auth;
    let next = safe_next(&form.next).to_owned();
    let back = |error: &str, wait: Option<Duration>| {
        let mut target = format!("/signin?error={error}");
        let wait = wait.map(|wait| wait.as_secs_f64().ceil().max(1.0) as u64);
        if let Some(wait) = wait {
            target.push_str(&format!("&wait={wait}"));
        }
        if next != "/" {
            target.push_str(&format!("&next={}", percent_encode(&next)));
        }
        let mut response = Redirect::to(&target).into_response();
        if let Some(wait) = wait {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        }
        response
    };
    let now = Instant::now();
    let address = address.map_or_else(|| "-".to_owned(), crate::client_address::limit_key);
    if let Err(retry_after_secs) = state.signin_rate.check(&address, now) {
        tracing::warn!(%address, "sign-in refused: too many sign-ins from this address");
        return back("too_many", Some(Duration::from_secs(retry_after_secs)));
    }
    if form.email.trim().is_empty() || form.password.is_empty() {
        return back("missing", None);
    }
    // Keyed by a hash of the address, so a long one costs no more memory than a short one.
    let email = form.email.trim().to_lowercase();
    let account_key = format!("{}|{address}", ports::token_hash(&email));
    let address_key = format!("address|{address}");
    let keys = [
        (account_key.as_str(), &settings.account_backoff),
        (address_key.as_str(), &settings.address_backoff),
    ];
    if let Err(wait) = state.attempts.begin(&keys, now) {
        tracing::warn!(%address, wait_secs = wait.as_secs_f64(), "sign-in refused: too soon after failed attempts");
        return back("too_many", Some(wait));
    }
    // No account has an address this long (RFC 5321): a failed try, without a check.
    if email.len() > 254 {
        return back("invalid", None);
    }
    let take_back = || {
        state.attempts.take_back(&account_key);
        state.attempts.take_back(&address_key);
    };
    let accounts = std::sync::Arc::clone(&state.accounts);
    let checked = state
        .password_checks
        .run(async move { accounts.authenticate(email, form.password).await })
        .await;
    let user = match checked {
        Some(Ok(user)) => user,
        Some(Err(error)) => {
            tracing::error!(%error, "sign-in failed in the store");
            take_back();
            return back("unavailable", None);
        }
        None => {
            tracing::warn!("sign-in refused: too many password checks waiting");
            take_back();
            return back("busy", Some(Duration::from_secs(1)));
        }
    };
    let Some(user) = user else {
        tracing::info!(%address, "sign-in refused: wrong email or password");
        return back("invalid", None);
    };
    // Right: the account's count at this address goes, and this try leaves the address's
    // (whose earlier failures stay: signing in to one's own account buys no more guesses
    // at others').
    state.attempts.forget(&account_key);
    state.attempts.take_back(&address_key);
    let token = match state
        .accounts
        .create_session(&user, state.clock.now(), settings.session_ttl)
        .await
    {
        Ok(token) => token,
        Err(error) => {
            tracing::error!(%error, "cannot start a session");
            return back("unavailable", None);
        }
    };
    tracing::info!(user_id = %user.id, role = user.role.as_str(), "signed in");
    let mut response = Redirect::to(&next).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(
            &token,
            settings.session_ttl.num_seconds(),
            over_https(&headers, settings),
        ),
    );
    response
}

/// `POST /signout`: ends the session and clears the cookie.
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE).filter(|t| !t.is_empty()) {
        state.sessions.remove(token);
        if let Err(error) = state.accounts.end_session(token.to_owned()).await {
            tracing::error!(%error, "cannot end the session");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    let mut response = Redirect::to("/signin?signed_out=1").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie("", 0, over_https(&headers, &state.auth)),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "theme=dark; engage_session=abc123; x=y")]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc123"));
        assert_eq!(
            cookie(&headers(&[("cookie", "theme=dark")]), SESSION_COOKIE),
            None
        );
    }

    #[test]
    fn cross_site_posts_are_refused_and_same_site_ones_pass() {
        let host = ("host", "127.0.0.1:3000");
        assert!(same_origin(&headers(&[
            host,
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("sec-fetch-site", "same-site")
        ])));
        assert!(same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:3000")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "https://evil.example")
        ])));
        assert!(!same_origin(&headers(&[host, ("origin", "null")])));
        assert!(same_origin(&headers(&[
            host,
            ("referer", "http://127.0.0.1:3000/clients")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("referer", "https://evil.example/x")
        ])));
        // A program (curl, an integration) sends none of these.
        assert!(same_origin(&headers(&[host])));
        assert!(same_origin(&HeaderMap::new()));
        assert!(!same_origin(&headers(&[(
            "origin",
            "http://127.0.0.1:3000"
        )])));
    }

    #[test]
    fn only_local_paths_follow_sign_in() {
        assert_eq!(safe_next("/clients/c-1"), "/clients/c-1");
        assert_eq!(
            safe_next("/emails?status=drafted#top"),
            "/emails?status=drafted#top"
        );
        for away in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            " //evil.example",
            "/\u{0}/evil.example",
            "/\u{3000}/evil.example",
            "javascript:alert(1)",
            "/caf\u{e9}",
            "evil.example",
            "",
        ] {
            assert_eq!(safe_next(away), "/", "{away:?}");
        }
    }

    #[test]
    fn failures_delay_the_next_try_ever_longer_then_are_forgotten() {
        let backoff = Backoff {
            free: 3,
            first: Duration::from_secs(2),
            max: Duration::from_secs(10),
            forget_after: Duration::from_secs(60),
        };
        let limiter = AttemptLimiter::default();
        let start = Instant::now();
        for _ in 0..2 {
            limiter.record_failure("a".into(), &backoff, start);
        }
        assert_eq!(limiter.wait("a", &backoff, start), None, "two are free");
        limiter.record_failure("a".into(), &backoff, start);
        assert_eq!(
            limiter.wait("a", &backoff, start),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            limiter.wait("a", &backoff, start + Duration::from_secs(1)),
            Some(Duration::from_secs(1))
        );
        // After the wait, a try is allowed (a right password would be accepted).
        let later = start + Duration::from_secs(2);
        assert_eq!(limiter.wait("a", &backoff, later), None);
        limiter.record_failure("a".into(), &backoff, later);
        assert_eq!(
            limiter.wait("a", &backoff, later),
            Some(Duration::from_secs(4))
        );
        let later = later + Duration::from_secs(4);
        limiter.record_failure("a".into(), &backoff, later);
        assert_eq!(
            limiter.wait("a", &backoff, later),
            Some(Duration::from_secs(8))
        );
        let later = later + Duration::from_secs(8);
        limiter.record_failure("a".into(), &backoff, later);
        assert_eq!(
            limiter.wait("a", &backoff, later),
            Some(Duration::from_secs(10)),
            "capped"
        );
        assert_eq!(
            limiter.wait("b", &backoff, later),
            None,
            "others unaffected"
        );
        let quiet = later + Duration::from_secs(60);
        assert_eq!(limiter.wait("a", &backoff, quiet), None);
        limiter.record_failure("a".into(), &backoff, quiet);
        assert_eq!(
            limiter.wait("a", &backoff, quiet),
            None,
            "forgotten after a quiet hour: the count starts again"
        );
    }

    #[test]
    fn tries_are_counted_as_they_begin_so_a_burst_cannot_slip_past() {
        let backoff = Backoff {
            free: 3,
            ..Backoff::default()
        };
        let wide = Backoff {
            free: 100,
            ..Backoff::default()
        };
        let limiter = AttemptLimiter::default();
        let now = Instant::now();
        let keys = [("a|x", &backoff), ("address|x", &wide)];
        // Three tries sent together, none judged yet: the fourth already waits.
        for _ in 0..3 {
            assert_eq!(limiter.begin(&keys, now), Ok(()));
        }
        assert_eq!(limiter.begin(&keys, now), Err(Duration::from_secs(1)));
        // A try that could not be judged is taken back; so is one that was right.
        limiter.take_back("a|x");
        assert_eq!(limiter.begin(&keys, now), Ok(()));
        limiter.forget("a|x");
        limiter.take_back("address|x");
        assert_eq!(limiter.wait("a|x", &backoff, now), None);
        assert_eq!(limiter.wait("address|x", &wide, now), None);
        // The refused try counted nothing.
        let mut failures = limiter.lock();
        assert_eq!(failures.get("address|x").map(|f| f.0), Some(3));
        failures.clear();
    }

    #[test]
    fn the_delay_never_overflows() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay_after(4), None);
        assert_eq!(backoff.delay_after(5), Some(Duration::from_secs(1)));
        assert_eq!(backoff.delay_after(7), Some(Duration::from_secs(4)));
        assert_eq!(backoff.delay_after(u32::MAX), Some(backoff.max));
    }

    #[tokio::test(start_paused = true)]
    async fn password_checks_run_at_most_so_many_at_once() {
        let checks = std::sync::Arc::new(PasswordChecks::new(2, Duration::from_secs(60)));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..10u64 {
            let checks = std::sync::Arc::clone(&checks);
            tasks.spawn(async move {
                checks
                    .run(async move {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        i
                    })
                    .await
            });
        }
        let mut done = Vec::new();
        while let Some(outcome) = tasks.join_next().await {
            done.push(outcome.unwrap().expect("each had its turn"));
        }
        done.sort_unstable();
        assert_eq!(done, (0..10).collect::<Vec<_>>());
        assert_eq!(checks.peak(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_waits_too_long_for_its_turn_is_refused() {
        let checks = std::sync::Arc::new(PasswordChecks::new(1, Duration::from_secs(1)));
        let busy = std::sync::Arc::clone(&checks);
        let first =
            tokio::spawn(async move { busy.run(tokio::time::sleep(Duration::from_secs(5))).await });
        tokio::task::yield_now().await;
        assert_eq!(checks.run(async { 1 }).await, None);
        assert_eq!(first.await.unwrap(), Some(()));
        assert_eq!(checks.run(async { 2 }).await, Some(2));
    }
}
