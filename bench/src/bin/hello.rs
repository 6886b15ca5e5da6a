//! The baseline for the HTTP benchmarks: a bare Axum handler answering "hello", served the
//! same way as `engage serve` (Tokio multi-threaded runtime, HTTP/1.1), so a ratio to it
//! says what Engage's own work costs on this machine in this run.
//!
//!   hello 127.0.0.1:3999

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3999".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let app = Router::new().route("/", get(|| async { "hello" }));
    axum::serve(listener, app).await
}
