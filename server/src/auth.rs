//! Who is asking: the session cookie, sign-in and sign-out, the checks every request
//! passes (a signed-in user for everything but the public paths, and a same-origin check
//! on every state-changing request), and a limit on sign-in attempts.
//!
//! The signed-in [`User`] travels in the request's extensions; pages and server functions
//! read it from there (see `app::service::viewer`), API handlers take it as an extractor.

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
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
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
    /// Failed sign-ins allowed per account (and per address) in `attempt_window`.
    pub max_failed_attempts: usize,
    pub attempt_window: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            session_ttl: chrono::Duration::hours(12),
            secure_cookies: false,
            max_failed_attempts: 5,
            attempt_window: Duration::from_secs(15 * 60),
        }
    }
}

/// Paths anyone may open: the sign-in page, health checks, the unsubscribe link in emails
/// (and its way back in), and the site's static files.
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
    let user = match token {
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

/// Failed sign-in attempts per key (an account's email, a client address), forgotten after
/// the window.
#[derive(Default)]
pub struct AttemptLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl AttemptLimiter {
    /// How long until `key` may try again, if it is locked out now.
    fn locked_for(&self, key: &str, settings: &AuthSettings, now: Instant) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let recent = failures.get_mut(key)?;
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= settings.attempt_window)
        {
            recent.pop_front();
        }
        (recent.len() >= settings.max_failed_attempts).then(|| {
            let oldest = *recent.front().expect("at least one failure");
            settings.attempt_window - now.duration_since(oldest)
        })
    }

    fn record_failure(&self, key: String, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Bound the memory an attacker can make us spend: forget everything past 100,000 keys.
        if failures.len() > 100_000 {
            failures.clear();
        }
        failures.entry(key).or_default().push_back(now);
    }

    fn forget(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
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

/// Only a path on this site may follow sign-in (never another site's address).
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

/// `POST /signin`: checks the password and starts a session; a plain form post, so it works
/// without JavaScript. Failures go back to the sign-in page with the reason.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let settings = &state.auth;
    let next = safe_next(&form.next).to_owned();
    let back = |error: &str| {
        let mut target = format!("/signin?error={error}");
        if next != "/" {
            target.push_str(&format!("&next={}", percent_encode(&next)));
        }
        Redirect::to(&target).into_response()
    };
    let account_key = format!("account:{}", form.email.trim().to_lowercase());
    let address_key = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|ip| format!("address:{}", ip.trim()));
    let now = Instant::now();
    let locked = [Some(&account_key), address_key.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|key| state.attempts.locked_for(key, settings, now))
        .max();
    if let Some(wait) = locked {
        tracing::warn!("sign-in refused: too many failed attempts");
        let mut response = back("too_many");
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(wait.as_secs().max(1)),
        );
        return response;
    }
    if form.email.trim().is_empty() || form.password.is_empty() {
        return back("missing");
    }
    let user = match state.accounts.authenticate(form.email, form.password).await {
        Ok(user) => user,
        Err(error) => {
            tracing::error!(%error, "sign-in failed in the store");
            return back("unavailable");
        }
    };
    let Some(user) = user else {
        tracing::info!("sign-in refused: wrong email or password");
        state.attempts.record_failure(account_key, now);
        if let Some(key) = address_key {
            state.attempts.record_failure(key, now);
        }
        return back("invalid");
    };
    state.attempts.forget(&account_key);
    let token = match state
        .accounts
        .create_session(&user, state.clock.now(), settings.session_ttl)
        .await
    {
        Ok(token) => token,
        Err(error) => {
            tracing::error!(%error, "cannot start a session");
            return back("unavailable");
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
        assert_eq!(safe_next("//evil.example"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
    }

    #[test]
    fn an_account_is_locked_after_too_many_failures_until_the_window_passes() {
        let settings = AuthSettings {
            max_failed_attempts: 3,
            attempt_window: Duration::from_secs(60),
            ..AuthSettings::default()
        };
        let limiter = AttemptLimiter::default();
        let start = Instant::now();
        for _ in 0..2 {
            limiter.record_failure("account:a".into(), start);
        }
        assert_eq!(limiter.locked_for("account:a", &settings, start), None);
        limiter.record_failure("account:a".into(), start);
        let wait = limiter.locked_for("account:a", &settings, start + Duration::from_secs(10));
        assert_eq!(wait, Some(Duration::from_secs(50)));
        assert_eq!(limiter.locked_for("account:b", &settings, start), None);
        assert_eq!(
            limiter.locked_for("account:a", &settings, start + Duration::from_secs(60)),
            None
        );
    }
}
