//! The web function (`engage-web-lambda`): the same router as `engage serve --backend aws`,
//! under `lambda_http`, with its settings from the function's environment.

use crate::config::ServeArgs;
use crate::startup::router;
use axum::Router;
use clap::Parser;
use engage_aws::lambda::setting;
use engage_aws::{Aws, Resources};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use processors::openrouter::FallbackWriter;
use processors::{Clock, SystemClock};
use std::sync::Arc;
use tower::ServiceExt;
use tower::util::MapRequest;

/// What the function serves: the app's router, behind the stage-prefix fix.
pub type WebFunction = MapRequest<Router, fn(lambda_http::Request) -> lambda_http::Request>;

/// The function's settings: every `engage serve` setting, from the environment only.
#[derive(Debug, Parser)]
#[command(name = "engage-web-lambda")]
struct Settings {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Where the resources are: the template passes them by name.
pub fn resources_from_env() -> Result<Resources, String> {
    Ok(Resources {
        table: setting("ENGAGE_TABLE")?,
        // The web function does not read the stream.
        stream_arn: String::new(),
        topic_arn: setting("ENGAGE_TOPIC_ARN")?,
        queue_url: setting("ENGAGE_QUEUE_URL")?,
        dead_letter_queue_url: setting("ENGAGE_DLQ_URL")?,
        // The views function reads the views queue; the web function only reads the views.
        views_queue_url: String::new(),
        views_dead_letter_queue_url: String::new(),
        // The web function only approves; the stream queues deliveries and the email
        // function sends them.
        deliveries_queue_url: String::new(),
        deliveries_dead_letter_queue_url: String::new(),
    })
}

/// The function's router: `engage serve`'s settings from the environment, the resources
/// the template names, the OpenRouter key (for the writer's health) from Secrets Manager.
pub async fn app_from_env() -> anyhow::Result<WebFunction> {
    let config = engage_aws::lambda::sdk_config().await;
    let mut settings =
        Settings::try_parse_from(["engage-web-lambda"]).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Nothing scrapes a Lambda function: its metrics go out as CloudWatch EMF log lines
    // unless the template says otherwise.
    if std::env::var_os("ENGAGE_EMF_METRICS").is_none() {
        settings.serve.web.emf_metrics = true;
    }
    settings.serve = settings.serve.with_outreach_from_env()?;
    let resources = resources_from_env().map_err(|e| anyhow::anyhow!(e))?;
    let writer = engage_aws::lambda::writer_from_env(&config)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    app(
        &Aws::with_config(&config, &settings.serve.aws.prefix),
        &resources,
        Arc::new(SystemClock),
        writer,
        &settings.serve,
    )
    .await
}

/// The router a Lambda function serves over `aws` and `resources`.
pub async fn app(
    aws: &Aws,
    resources: &Resources,
    clock: Arc<dyn Clock>,
    writer: FallbackWriter,
    args: &ServeArgs,
) -> anyhow::Result<WebFunction> {
    let state = crate::aws::state(
        aws,
        resources,
        clock,
        Arc::new(writer),
        args.addr,
        &args.web,
    )
    .await?
    .with_outreach(args.outreach);
    Ok(router(state).map_request(from_gateway as fn(_) -> _))
}

/// A request as the gateway passed it, made to look as `engage serve` sees one: the
/// client's address (as the gateway saw it) in the connection info, the stage prefix off.
fn from_gateway(mut request: lambda_http::Request) -> lambda_http::Request {
    let source = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.clone(),
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        _ => None,
    };
    if let Some(ip) = source.and_then(|ip| ip.parse::<std::net::IpAddr>().ok()) {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(ip, 0)));
    }
    strip_stage(request)
}

/// API Gateway's REST stages show up as a first path segment (`/prod/…`) that the app's
/// routes do not have; this takes it off. Function URLs and HTTP APIs' `$default` stage
/// have none.
fn strip_stage(mut request: lambda_http::Request) -> lambda_http::Request {
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage else { return request };
    let prefix = format!("/{stage}");
    let Some(rest) = request
        .uri()
        .path()
        .strip_prefix(&prefix)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
    else {
        return request;
    };
    let rest = if rest.is_empty() { "/" } else { rest };
    let target = match request.uri().query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    if let Ok(uri) = target.parse() {
        *request.uri_mut() = uri;
    }
    request
}
