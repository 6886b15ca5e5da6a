//! The web function: the Engage app (SSR, server functions, REST API, assets) under
//! `lambda_http`, on the resources the template names in its environment. See
//! deploy/README.md.

use engage::config::LogFormat;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    engage::telemetry::init(LogFormat::Json);
    let app = engage::lambda::app_from_env().await?;
    lambda_http::run(app).await
}
