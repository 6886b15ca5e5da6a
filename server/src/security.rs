//! The headers every answer carries so a browser limits what a page can do: a Content
//! Security Policy (scripts only from this site, or inline with this response's nonce; no
//! framing by other sites), `X-Content-Type-Options`, `Referrer-Policy` and
//! `X-Frame-Options` for older browsers.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The policy for everything that sets none of its own: nothing inline, nothing from
/// elsewhere, never in a frame.
pub const DEFAULT_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The policy for a page the app renders: its inline hydration scripts carry `nonce`, and
/// the browser bundle may compile its WebAssembly.
pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The policy for a hand-written page whose inline `<script>` and `<style>` carry `nonce`.
pub fn inline_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// A fresh nonce for one response (128 bits, hex).
pub fn nonce() -> String {
    store::users::new_token()[..32].to_owned()
}

/// Middleware: adds the headers to every response (a policy the response set itself is
/// kept).
pub async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(DEFAULT_POLICY));
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
