//! The rescore function: run daily by the template's EventBridge schedule, it queues a
//! rescore of every client as of today, exactly as `engage rescore --backend aws` does.
//! Each rescore event's id is derived from the client and the day, so a retried or
//! doubled run scores each client at most once that day.

use engage::config::LogFormat;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use processors::{Clock, SystemClock};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    engage::telemetry::init(LogFormat::Json);
    let config = engage_aws::lambda::sdk_config().await;
    let resources = engage::lambda::resources_from_env()?;
    let prefix = std::env::var("ENGAGE_AWS_PREFIX").unwrap_or_else(|_| "engage".into());
    let ports = engage::aws::ports(&engage_aws::Aws::with_config(&config, &prefix), &resources);
    let ports = &ports;
    lambda_runtime::run(service_fn(
        move |_scheduled: LambdaEvent<serde_json::Value>| async move {
            let mut report = Vec::new();
            let clock = SystemClock;
            engage::ops::rescore(ports.ops.as_ref(), &clock as &dyn Clock, &mut report)
                .await
                .map_err(|e| Error::from(e.to_string()))?;
            let report = String::from_utf8_lossy(&report).trim().to_owned();
            tracing::info!(%report, "rescores queued");
            Ok::<_, Error>(serde_json::json!({ "report": report }))
        },
    ))
    .await
}
