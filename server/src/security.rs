//! The headers every answer carries so a browser limits what a page can do: a Content
//! Security Policy (scripts only from this site, or inline with this response's nonce; no
//! framing by other sites), `X-Content-Type-Options`, `Referrer-Policy` and
//! `X-Frame-Options` for older browsers.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// A policy with these script and style sources; everything else is the same for every
/// answer: only this site's images, fetches and form targets, no plugins, no `<base>`,
/// never in a frame.
fn policy(script_src: &str, style_src: &str) -> String {
    format!(
        "default-src 'self'; script-src {script_src}; style-src {style_src}; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// The policy for everything that sets none of its own: nothing inline, nothing from
/// elsewhere.
static DEFAULT_POLICY: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
    HeaderValue::from_str(&policy("'self'", "'self'")).expect("the policy is ASCII")
});

/// The policy for a page the app renders: its inline hydration scripts carry `nonce`, and
/// the browser bundle may compile its WebAssembly.
pub fn page_policy(nonce: &str) -> String {
    policy(
        &format!("'self' 'nonce-{nonce}' 'wasm-unsafe-eval'"),
        "'self'",
    )
}

/// The policy for a hand-written page whose inline `<script>` and `<style>` carry `nonce`.
pub fn inline_policy(nonce: &str) -> String {
    let source = format!("'nonce-{nonce}'");
    policy(&source, &source)
}

/// A fresh nonce for one response (128 bits, hex).
pub fn nonce() -> String {
    ports::new_token()[..32].to_owned()
}

/// Middleware: adds the headers to every response (a policy the response set itself is
/// kept).
pub async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert_with(|| DEFAULT_POLICY.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
