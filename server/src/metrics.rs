//! Request metrics: counts and latency by route, kept in memory and served in the
//! Prometheus text format at `/metrics` together with the pipeline's and the LLM's figures.
//! On AWS Lambda, where nothing scrapes the process, each request is also written as a
//! CloudWatch embedded-metric-format (EMF) log line, which CloudWatch turns into the same
//! metrics.

use crate::api::ApiError;
use crate::auth::SignedIn;
use crate::startup::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::user::Role;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default)]
struct Latency {
    /// Requests at or under each bucket's bound (not cumulative here; summed on output).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_secs: f64,
}

#[derive(Debug, Default)]
struct Figures {
    /// (method, route, status) -> requests.
    requests: BTreeMap<(String, String, u16), u64>,
    /// (method, route) -> latency.
    latency: BTreeMap<(String, String), Latency>,
}

/// The process's request metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    figures: Mutex<Figures>,
    /// Also log each request as a CloudWatch EMF line.
    emf: bool,
}

impl Metrics {
    pub fn new(emf: bool) -> Self {
        Self {
            figures: Mutex::default(),
            emf,
        }
    }

    fn record(&self, method: &str, route: &str, status: u16, secs: f64) {
        let mut figures = self.figures.lock().unwrap_or_else(|e| e.into_inner());
        *figures
            .requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let latency = figures
            .latency
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        latency.count += 1;
        latency.sum_secs += secs;
        if let Some(bucket) = BUCKETS.iter().position(|bound| secs <= *bound) {
            latency.buckets[bucket] += 1;
        }
    }

    /// The request figures in the Prometheus text format.
    fn render_requests(&self, out: &mut String) {
        let figures = self.figures.lock().unwrap_or_else(|e| e.into_inner());
        out.push_str(
            "# HELP engage_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE engage_http_requests_total counter\n");
        for ((method, route, status), count) in &figures.requests {
            let _ = writeln!(
                out,
                "engage_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                escape(route)
            );
        }
        out.push_str("# HELP engage_http_request_duration_seconds Time to answer, by route.\n");
        out.push_str("# TYPE engage_http_request_duration_seconds histogram\n");
        for ((method, route), latency) in &figures.latency {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(latency.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "engage_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "engage_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                latency.count
            );
            let _ = writeln!(
                out,
                "engage_http_request_duration_seconds_sum{{{labels}}} {}",
                latency.sum_secs
            );
            let _ = writeln!(
                out,
                "engage_http_request_duration_seconds_count{{{labels}}} {}",
                latency.count
            );
        }
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The route template a request matched (`/api/v1/clients/{id}`), so one client's id does
/// not make a metric of its own; static files and unknown paths count together.
fn route_of(request: &Request) -> String {
    match request.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str().to_owned(),
        None if request.uri().path().starts_with("/pkg/") => "/pkg/*".to_owned(),
        None => "unmatched".to_owned(),
    }
}

/// The method as a label: the ones the app answers, and `OTHER` for anything else, so a
/// client inventing methods cannot make new series.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Middleware: times every request and counts its answer.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method()).to_owned();
    let route = route_of(&request);
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let response = next.run(request).await;
    let secs = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    state.metrics.record(&method, &route, status, secs);
    if state.metrics.emf {
        println!("{}", emf_line(&method, &route, status, secs, &request_id));
    }
    response
}

/// One request as a CloudWatch embedded-metric-format record: `Requests`, `Errors` (5xx)
/// and `Latency`, by route and for the whole web function (`Function=web`: what the
/// deployment's rollback alarm on server errors watches).
fn emf_line(method: &str, route: &str, status: u16, secs: f64, request_id: &str) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "Engage",
                "Dimensions": [["Route"], ["Function"]],
                "Metrics": [
                    {"Name": "Requests", "Unit": "Count"},
                    {"Name": "Errors", "Unit": "Count"},
                    {"Name": "Latency", "Unit": "Milliseconds"},
                ],
            }],
        },
        "Route": format!("{method} {route}"),
        "Function": "web",
        "Requests": 1,
        "Errors": u8::from(status >= 500),
        "Latency": secs * 1000.0,
        "status": status,
        "request_id": request_id,
    })
    .to_string()
}

/// `GET /metrics`: Prometheus text format, for managers and admins (a scraper uses an API
/// key with one of those roles).
pub async fn serve(State(state): State<AppState>, SignedIn(user): SignedIn) -> Response {
    if user.role == Role::Stylist {
        return ApiError::Forbidden.into_response();
    }
    let mut out = String::new();
    state.metrics.render_requests(&mut out);
    let mut gauge = |name: &str, help: &str, kind: &str, value: f64| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    };
    match state.ops.pipeline_figures(state.clock.now()).await {
        Ok(figures) => {
            let q = &figures.events_queue;
            gauge(
                "engage_queue_visible",
                "Events waiting on the queue.",
                "gauge",
                q.visible as f64,
            );
            gauge(
                "engage_queue_in_flight",
                "Events being processed.",
                "gauge",
                q.in_flight as f64,
            );
            gauge(
                "engage_queue_oldest_age_seconds",
                "Age of the oldest event on the queue.",
                "gauge",
                q.oldest_age_ms as f64 / 1000.0,
            );
            gauge(
                "engage_dead_letters",
                "Events in the dead-letter queue.",
                "gauge",
                q.dead_letters as f64,
            );
            gauge(
                "engage_feed_lag",
                "Change records not yet published as events.",
                "gauge",
                figures.feed_lag as f64,
            );
            gauge(
                "engage_pipeline_up",
                "Whether the pipeline figures could be read.",
                "gauge",
                1.0,
            );
        }
        Err(error) => {
            tracing::warn!(%error, "metrics: cannot read the pipeline figures");
            gauge(
                "engage_pipeline_up",
                "Whether the pipeline figures could be read.",
                "gauge",
                0.0,
            );
        }
    }
    let llm = state.writer.llm_figures();
    gauge(
        "engage_llm_calls_total",
        "Drafts asked of the LLM.",
        "counter",
        llm.calls as f64,
    );
    gauge(
        "engage_llm_failures_total",
        "LLM calls that failed (the template wrote the draft).",
        "counter",
        llm.failures as f64,
    );
    gauge(
        "engage_llm_tokens_total",
        "Prompt and completion tokens used.",
        "counter",
        (llm.prompt_tokens + llm.completion_tokens) as f64,
    );
    gauge(
        "engage_llm_cost_usd_total",
        "LLM cost in US dollars, as the API reported it.",
        "counter",
        llm.cost_usd,
    );
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_and_the_histogram_is_cumulative() {
        let metrics = Metrics::new(false);
        metrics.record("GET", "/api/v1/clients/{id}", 200, 0.002);
        metrics.record("GET", "/api/v1/clients/{id}", 200, 0.2);
        metrics.record("GET", "/api/v1/clients/{id}", 404, 0.0005);
        let mut out = String::new();
        metrics.render_requests(&mut out);
        assert!(out.contains(
            "engage_http_requests_total{method=\"GET\",route=\"/api/v1/clients/{id}\",status=\"200\"} 2"
        ));
        assert!(out.contains("status=\"404\"} 1"));
        assert!(out.contains("le=\"0.001\"} 1\n"), "{out}");
        assert!(out.contains("le=\"0.0025\"} 2\n"), "{out}");
        assert!(out.contains("le=\"0.25\"} 3\n"), "{out}");
        assert!(out.contains("le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("_count{method=\"GET\",route=\"/api/v1/clients/{id}\"} 3"));
    }

    #[test]
    fn an_emf_line_names_the_namespace_metrics_and_route() {
        let line: serde_json::Value =
            serde_json::from_str(&emf_line("POST", "/api/v1/clients", 503, 0.012, "abc")).unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Engage");
        assert_eq!(directive["Dimensions"][0][0], "Route");
        assert_eq!(directive["Dimensions"][1][0], "Function");
        assert_eq!(line["Route"], "POST /api/v1/clients");
        assert_eq!(line["Function"], "web");
        assert_eq!(line["Errors"], 1);
        assert_eq!(line["request_id"], "abc");
        assert!((line["Latency"].as_f64().unwrap() - 12.0).abs() < 1e-9);
    }
}
