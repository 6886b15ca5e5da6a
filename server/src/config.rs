//! The one configuration: command-line flags, each with an environment variable.

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Engage: win back clients before they drift away.
///
/// Runs the web app and the event pipeline on one SQLite file. Every flag can also be set
/// through the environment variable shown beside it.
#[derive(Debug, Parser)]
#[command(name = "engage", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Settings for `serve` when no command is given.
    #[command(flatten)]
    pub serve: ServeArgs,

    /// The SQLite database file (created on first use).
    #[arg(
        long,
        env = "ENGAGE_DB",
        default_value = "data/engage.db",
        global = true
    )]
    pub db: PathBuf,

    /// How log lines are written: `text` for people, `json` for log collectors.
    /// Levels and filters come from RUST_LOG (default: info).
    #[arg(long, env = "ENGAGE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web app and run the pipeline (the default).
    #[command(after_help = processors::email::OutreachSettings::help())]
    Serve(ServeArgs),
    /// Add demo data: a business whose past (sign-ups, Fixes, purchases, scores, drafts,
    /// reviews, sends, opens) is replayed through the pipeline over the last --days days,
    /// with progress; --days 0 adds clients as of now only.
    Seed(SeedArgs),
    /// The BG/NBD model of repeat buying: fit it, or simulate data to try it on.
    Model(ModelArgs),
    /// Score every client again as of today (scores decay as time passes without orders);
    /// the running server processes the queued rescores. Run it daily, e.g. from cron
    /// (on AWS the template's schedule runs it).
    Rescore(BackendArgs),
    /// The stylists whose books the clients are in.
    Stylist {
        #[command(subcommand)]
        command: StylistCommand,
        #[command(flatten)]
        target: BackendArgs,
    },
    /// Accounts that sign in to the app.
    User {
        #[command(subcommand)]
        command: UserCommand,
        #[command(flatten)]
        target: BackendArgs,
    },
    /// Keys programs use to call the REST API (`Authorization: Bearer …`).
    Apikey {
        #[command(subcommand)]
        command: ApiKeyCommand,
        #[command(flatten)]
        target: BackendArgs,
    },
    /// The pipeline's queue: how it is keeping up.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
        #[command(flatten)]
        target: BackendArgs,
    },
    /// The dead-letter queue: events that failed too often, with their last error.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
        #[command(flatten)]
        target: BackendArgs,
    },
    /// Engage's resources on AWS (or on moto_server via AWS_ENDPOINT_URL).
    Aws {
        #[command(subcommand)]
        command: AwsCommand,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// The dashboard's materialized views.
    Views {
        #[command(subcommand)]
        command: ViewsCommand,
        #[command(flatten)]
        target: BackendArgs,
    },
    /// The site's static files this binary serves (the browser bundle under its
    /// content-hashed name, the stylesheet, public files).
    Site {
        #[command(subcommand)]
        command: SiteCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// Write the site's files, under the names pages ask for, into a folder: what to
    /// upload to the assets bucket on AWS (`aws s3 sync DIR s3://BUCKET`, without
    /// `--delete`, so pages of the version still serving find their bundle).
    Export {
        /// The folder to write into (made if missing).
        #[arg(long)]
        dir: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ViewsCommand {
    /// Recompute every view (band counts and mix per day, email funnel, review times,
    /// pending drafts) from the logs: score changes, emails and their review steps. Shows
    /// progress. On SQLite run it with the server stopped or running; on AWS while no
    /// view facts are in flight (the views queue is empty), or they count twice.
    Rebuild,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an account. The password is read from standard input when it is not a terminal
    /// (`printf '%s' "$PASSWORD" | engage user add …`), otherwise prompted for.
    Add {
        /// The address the person signs in with.
        #[arg(long)]
        email: String,
        /// stylist, manager or admin.
        #[arg(long)]
        role: String,
        /// For a stylist account: the stylist record it works as (e.g. st-maya).
        #[arg(long)]
        stylist: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum StylistCommand {
    /// Add a stylist, or rename one (the same id again). Then give them an account with
    /// `engage user add --role stylist --stylist ID`.
    Add {
        /// A short id without spaces, as accounts, keys and imports name the stylist
        /// (e.g. st-maya).
        #[arg(long)]
        id: String,
        /// The name clients see in emails.
        #[arg(long)]
        name: String,
        /// The address their emails are sent from.
        #[arg(long)]
        email: String,
    },
    /// List the stylists by name.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key; prints the secret once (only its hash is kept).
    Create {
        /// What will use it ("order-system import").
        #[arg(long)]
        name: String,
        /// stylist, manager or admin.
        #[arg(long)]
        role: String,
        /// For a stylist key: the stylist whose book it reaches (e.g. st-maya).
        #[arg(long)]
        stylist: Option<String>,
    },
    /// List keys, newest first, with revoked ones marked.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its id. A running server that used the key in the last 30 seconds
    /// may accept it for up to 30 seconds more (revoking from the API or the API keys page
    /// of that server takes effect at once).
    Revoke {
        /// The key's id (the 16 hex characters after `ek_`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Depth, in flight, oldest message age, dead letters and change-feed lag.
    Stats {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters, oldest failure first.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Put dead letters back on the queue (all, or one with --id) once the fault is fixed.
    /// Each event still takes effect at most once.
    Redrive {
        /// Only the dead letter with this id (see `engage dlq list`).
        #[arg(long)]
        id: Option<i64>,
    },
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    #[command(subcommand)]
    pub command: ModelCommand,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Fit r, alpha, a and b by maximum likelihood. On the client base (the default) the fit
    /// is stored and used for P(alive) and expected purchases; with --transactions it is only
    /// printed.
    Fit(FitArgs),
    /// Write a transactions CSV drawn from the BG/NBD process with the given parameters.
    Simulate(SimulateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct FitArgs {
    /// A CSV with header client_id,date,amount (ISO dates) to fit instead of the client base.
    #[arg(long, value_name = "FILE")]
    pub transactions: Option<PathBuf>,
    /// Ignore purchases after this date (YYYY-MM-DD). Default: the last date in the file,
    /// or today for the client base.
    #[arg(long, value_name = "DATE")]
    pub calibration_end: Option<NaiveDate>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: BackendArgs,
}

#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// How many customers to simulate.
    #[arg(long, default_value_t = 10_000)]
    pub customers: u32,
    /// Shape of the purchase-rate distribution.
    #[arg(long, default_value_t = 0.8)]
    pub r: f64,
    /// Scale of the purchase-rate distribution, in days.
    #[arg(long, default_value_t = 30.0)]
    pub alpha: f64,
    /// First shape of the dropout distribution.
    #[arg(long, default_value_t = 0.9)]
    pub a: f64,
    /// Second shape of the dropout distribution.
    #[arg(long, default_value_t = 3.5)]
    pub b: f64,
    /// First purchases fall evenly from this date…
    #[arg(long, value_name = "DATE", default_value = "2024-01-01")]
    pub start: NaiveDate,
    /// …to this one, which also ends the log.
    #[arg(long, value_name = "DATE", default_value = "2025-12-31")]
    pub end: NaiveDate,
    /// Random seed: the same seed gives the same log.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ENGAGE_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    // Off unless asked for: a real first start must not create an admin whose password
    // sits in a file beside the database.
    /// Fill an empty database with demo stylists and clients on start, and add the demo
    /// accounts (one shared password, written beside the database) when there are none.
    /// `make run` turns this on.
    #[arg(long, env = "ENGAGE_DEMO_DATA", default_value_t = false, action = clap::ArgAction::Set)]
    pub demo_data: bool,

    /// Days of past the demo data replays (0: clients as of now, without a past).
    #[arg(long, env = "ENGAGE_DEMO_DAYS", default_value_t = crate::replay::Plan::DEFAULT_DAYS, value_parser = clap::value_parser!(u32).range(0..=366))]
    pub demo_days: u32,

    /// How many demo clients the demo data has (the AWS backend on one machine is slower:
    /// try fewer there).
    #[arg(long, env = "ENGAGE_DEMO_CLIENTS", default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub demo_clients: u32,

    /// Seconds a received event stays hidden from other workers before it is retried.
    #[arg(long, env = "ENGAGE_QUEUE_VISIBILITY_SECS", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=43_200))]
    pub queue_visibility_secs: u32,

    /// Receives after which a failing event moves to the dead-letter queue.
    #[arg(long, env = "ENGAGE_QUEUE_MAX_RECEIVES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub queue_max_receives: u32,

    /// Hours a change record is kept after the pipeline published it.
    #[arg(long, env = "ENGAGE_CHANGE_RETENTION_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=8760))]
    pub change_retention_hours: u32,

    /// Where records live and the pipeline runs: `embedded` (the SQLite file at --db, the
    /// pipeline in this process) or `aws` (DynamoDB, its stream, SNS and SQS, found with
    /// the standard AWS settings; set AWS_ENDPOINT_URL to use moto_server; create the
    /// resources first with `engage aws bootstrap`).
    #[arg(long, env = "ENGAGE_BACKEND", value_enum, default_value_t = BackendKind::Embedded)]
    pub backend: BackendKind,

    #[command(flatten)]
    pub aws: AwsArgs,

    #[command(flatten)]
    pub llm: LlmArgs,

    /// The policy's limits and the outcomes' window, from the environment only
    /// (`processors::email::OutreachSettings::VARIABLES`), read and checked at start.
    #[arg(skip)]
    pub outreach: processors::email::OutreachSettings,

    #[command(flatten)]
    pub web: WebArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    Embedded,
    Aws,
}

/// Which backend an operator command works on.
#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// `embedded` (the SQLite file at --db) or `aws` (the resources `engage aws
    /// bootstrap` or deploy/ made, found with the standard AWS settings).
    #[arg(long, env = "ENGAGE_BACKEND", value_enum, default_value_t = BackendKind::Embedded, global = true)]
    pub backend: BackendKind,

    /// On AWS: the prefix of the table, topic and queues' names.
    #[arg(
        long = "aws-prefix",
        env = "ENGAGE_AWS_PREFIX",
        default_value = "engage",
        global = true
    )]
    pub aws_prefix: String,
}

/// Where Engage's AWS resources are.
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// The table, topic and queues are named `<prefix>-records`, `<prefix>-events`,
    /// `<prefix>-events-dlq`.
    #[arg(
        long = "aws-prefix",
        env = "ENGAGE_AWS_PREFIX",
        default_value = "engage"
    )]
    pub prefix: String,

    /// Where the demo accounts' password is written when the AWS backend adds them.
    #[arg(
        long,
        env = "ENGAGE_DEMO_ACCOUNTS_FILE",
        default_value = "data/demo-accounts-aws.txt"
    )]
    pub demo_accounts_file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// Create the table (stream, indexes, TTL, point-in-time recovery), the topic, the
    /// queue with its dead-letter queue and redrive policy, and the topic's raw-delivery
    /// subscription on the AWS endpoint (or find them there). Safe to run again.
    Bootstrap {
        /// Receives after which SQS moves a failing event to the dead-letter queue.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
        max_receives: u32,
        /// Seconds a received event stays hidden (at least six times the email function's
        /// timeout on AWS).
        #[arg(long, default_value_t = 180, value_parser = clap::value_parser!(u32).range(1..=43_200))]
        visibility_timeout_secs: u32,
    },
    /// Put every event in the dead-letter queue back on the queue (after fixing the cause).
    Redrive,
}

/// Sign-in sessions, outgoing email and links.
#[derive(Debug, Clone, Args)]
pub struct WebArgs {
    /// The address people reach the app at, for links in emails (unsubscribe).
    /// Default: http:// and the listening address.
    #[arg(long, env = "ENGAGE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Directory approved emails are written to, one .eml file each (when no SMTP server
    /// is configured).
    #[arg(long, env = "ENGAGE_OUTBOX_DIR", default_value = "data/outbox")]
    pub outbox_dir: std::path::PathBuf,

    /// Send approved emails through this SMTP server instead of the outbox:
    /// `smtps://user:password@host` (TLS), `smtp://user:password@host:587?tls=required`
    /// (STARTTLS) or `smtp://host:25` (plain, for a relay on the same network).
    /// Read from the environment only; never logged.
    #[arg(
        long = "smtp-url",
        env = "ENGAGE_SMTP_URL",
        hide_env_values = true,
        hide = true
    )]
    pub smtp_url: Option<String>,

    /// Hours a sign-in lasts.
    #[arg(long, env = "ENGAGE_SESSION_HOURS", default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=720))]
    pub session_hours: u32,

    /// Mark the session cookie Secure even when no proxy reports HTTPS
    /// (X-Forwarded-Proto: https marks it Secure in any case).
    #[arg(long, env = "ENGAGE_SECURE_COOKIES", default_value_t = false, action = clap::ArgAction::Set)]
    pub secure_cookies: bool,

    /// End each live-update stream (/api/v1/live) after this many seconds; the browser
    /// reconnects at once. For AWS Lambda, where a response must end within the
    /// function's timeout. Default: streams stay open.
    #[arg(long, env = "ENGAGE_LIVE_MAX_SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub live_max_secs: Option<u64>,

    /// Requests per minute each API key, and each signed-in session, may make (a burst
    /// of that many, refilled evenly); beyond it the answer is 429 with Retry-After.
    #[arg(long, env = "ENGAGE_API_RATE_PER_MINUTE", default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub api_rate_per_minute: u32,

    /// Sign-in attempts per minute from one address (a burst of that many, refilled
    /// evenly), right or wrong; beyond it the sign-in page asks to wait.
    #[arg(long, env = "ENGAGE_SIGNIN_RATE_PER_MINUTE", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub signin_rate_per_minute: u32,

    /// Password checks (argon2, ~20 MiB each) run at once; more sign-ins wait their turn
    /// up to 10 s, then are asked to try again.
    #[arg(long, env = "ENGAGE_PASSWORD_CHECKS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub password_checks: u32,

    /// Proxies (addresses or CIDR ranges, comma-separated) in front of the app whose
    /// X-Forwarded-For entries are believed: the client is the right-most entry that is
    /// not one of them. Entries from anyone else are ignored. Use an empty value to trust
    /// no proxy.
    #[arg(
        long,
        env = "ENGAGE_TRUSTED_PROXIES",
        value_delimiter = ',',
        default_value = "127.0.0.1,::1"
    )]
    pub trusted_proxies: Vec<String>,

    /// A secret the proxy in front sends in the X-Engage-Proxy-Secret header: a request
    /// carrying it came through the proxy, whatever its address (CloudFront in front of a
    /// Lambda function URL). Read from the environment only; never logged.
    #[arg(
        long = "proxy-secret",
        env = "ENGAGE_PROXY_SECRET",
        hide_env_values = true,
        hide = true
    )]
    pub proxy_secret: Option<String>,

    /// Answer only requests carrying the proxy secret (403 for the rest), so the app is
    /// reachable only through the proxy (the template sets it for the Lambda function
    /// URL behind CloudFront).
    #[arg(long, env = "ENGAGE_ONLY_THROUGH_PROXY", default_value_t = false, action = clap::ArgAction::Set)]
    pub only_through_proxy: bool,

    /// Seconds a request may take to answer (its body's arrival included) before it is
    /// cut off with 503. Live-update streams and pages count as answered once they start.
    #[arg(long, env = "ENGAGE_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout_secs: u64,

    /// Seconds a connection may take to send a request's headers before it is closed.
    #[arg(long, env = "ENGAGE_HEADER_READ_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub header_read_timeout_secs: u64,

    /// Live-update streams (/api/v1/live) one session or API key may hold open at once
    /// (a user's sessions together: four times that).
    #[arg(long, env = "ENGAGE_LIVE_MAX_PER_SESSION", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub live_max_per_session: u32,

    /// Live-update streams the server holds open at once, for everyone together.
    #[arg(long, env = "ENGAGE_LIVE_MAX_TOTAL", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub live_max_total: u32,

    /// Origins (scheme://host[:port]) whose pages may call the API from a browser,
    /// comma-separated. Default: none (same origin only).
    #[arg(long, env = "ENGAGE_CORS_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_origins: Vec<axum::http::HeaderValue>,

    /// Emit request metrics as CloudWatch embedded-metric-format log lines (on by
    /// itself in AWS Lambda).
    #[arg(long, env = "ENGAGE_EMF_METRICS", default_value_t = false, action = clap::ArgAction::Set)]
    pub emf_metrics: bool,
}

impl WebArgs {
    /// The trusted proxies, each checked: an error names the entry that is no address.
    pub fn proxies(&self) -> Result<crate::client_address::TrustedProxies, String> {
        let secret = self
            .proxy_secret
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if self.only_through_proxy && secret.is_none() {
            return Err(
                "--only-through-proxy (ENGAGE_ONLY_THROUGH_PROXY) needs ENGAGE_PROXY_SECRET: without it nothing could be answered".to_owned(),
            );
        }
        self.trusted_proxies
            .iter()
            .map(|raw| raw.trim())
            .filter(|raw| !raw.is_empty())
            .map(|raw| {
                raw.parse()
                    .map_err(|e| format!("--trusted-proxies (ENGAGE_TRUSTED_PROXIES): {e}"))
            })
            .collect::<Result<_, _>>()
            .map(|ranges| crate::client_address::TrustedProxies {
                ranges,
                secret,
                only_through_proxy: self.only_through_proxy,
            })
    }
}

/// An origin for the CORS allowlist: `scheme://host[:port]`, nothing after.
fn parse_origin(raw: &str) -> Result<axum::http::HeaderValue, String> {
    let origin = raw.trim().trim_end_matches('/');
    let (scheme, rest) = origin
        .split_once("://")
        .ok_or_else(|| format!("{origin:?} is not an origin such as https://shop.example"))?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains('/') {
        return Err(format!(
            "{origin:?} is not an origin such as https://shop.example (scheme and host, no path)"
        ));
    }
    axum::http::HeaderValue::from_str(origin).map_err(|e| format!("{origin:?}: {e}"))
}

impl ServeArgs {
    /// The embedded defaults for tests and tools: listens on a free loopback port, no
    /// demo data, the offline writer, the outbox under `dir`, no holdout.
    pub fn local(dir: &std::path::Path) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            demo_data: false,
            demo_days: crate::replay::Plan::DEFAULT_DAYS,
            demo_clients: 300,
            queue_visibility_secs: 60,
            queue_max_receives: 5,
            change_retention_hours: 24,
            backend: BackendKind::Embedded,
            aws: AwsArgs {
                prefix: "engage".into(),
                demo_accounts_file: dir.join("demo-accounts-aws.txt"),
            },
            llm: LlmArgs::default(),
            // No holdout: tests and tools expect the drafts the rules call for.
            outreach: processors::email::OutreachSettings {
                policy: domain::policy::PolicySettings::without_holdout(),
                ..Default::default()
            },
            web: WebArgs::local(dir),
        }
    }

    /// The same arguments with the outreach settings the environment gives (a bad value
    /// is refused, naming its variable).
    pub fn with_outreach_from_env(mut self) -> anyhow::Result<Self> {
        self.outreach =
            processors::email::OutreachSettings::from_env().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(self)
    }
}

impl WebArgs {
    /// Settings for tests and tools: links to `addr`, the outbox under `dir`.
    pub fn local(dir: &std::path::Path) -> Self {
        Self {
            public_url: None,
            outbox_dir: dir.join("outbox"),
            smtp_url: None,
            session_hours: 12,
            secure_cookies: false,
            live_max_secs: None,
            api_rate_per_minute: 600,
            signin_rate_per_minute: 30,
            password_checks: 4,
            trusted_proxies: vec!["127.0.0.1".into(), "::1".into()],
            proxy_secret: None,
            only_through_proxy: false,
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            live_max_per_session: 8,
            live_max_total: 1000,
            cors_origins: Vec::new(),
            emf_metrics: false,
        }
    }
}

/// Where drafts are written. Without a key, the offline template writer drafts.
#[derive(Debug, Clone, Default, Args)]
pub struct LlmArgs {
    /// API key for OpenRouter (or the OpenAI-compatible endpoint at --llm-base-url).
    /// Read from the environment only; never logged.
    #[arg(
        long = "llm-api-key",
        env = "OPENROUTER_API_KEY",
        hide_env_values = true,
        hide = true
    )]
    pub api_key: Option<String>,

    /// Base URL of an OpenAI-compatible chat-completions API.
    #[arg(
        long,
        env = "ENGAGE_LLM_BASE_URL",
        default_value = "https://openrouter.ai/api/v1"
    )]
    pub base_url: String,

    /// Models to draft with, comma-separated: the first is preferred, the others are
    /// fallbacks OpenRouter may route to.
    #[arg(
        long,
        env = "ENGAGE_LLM_MODELS",
        default_value = "openai/gpt-4o-mini,anthropic/claude-3.5-haiku"
    )]
    pub models: String,

    /// Seconds one LLM request may take.
    #[arg(long, env = "ENGAGE_LLM_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=600))]
    pub timeout_secs: u32,

    /// The only link a drafted email may contain.
    #[arg(
        long,
        env = "ENGAGE_UNSUBSCRIBE_URL",
        default_value = "https://engage.example/unsubscribe"
    )]
    pub unsubscribe_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// How many demo clients to add.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub clients: u32,

    /// Days of past to replay through the pipeline, up to now (needs an empty database).
    /// 0 adds the clients as of now with their histories and no replayed past (fast, for
    /// large books; seeding twice skips the clients already there).
    #[arg(long, default_value_t = crate::replay::Plan::DEFAULT_DAYS, value_parser = clap::value_parser!(u32).range(0..=366))]
    pub days: u32,

    /// Random seed of the replay: the same seed gives the same past.
    #[arg(long, default_value_t = crate::replay::Plan::DEFAULT_SEED)]
    pub seed: u64,

    #[command(flatten)]
    pub target: BackendArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn proxy_settings_are_checked_and_name_the_setting_at_fault() {
        let dir = std::path::Path::new("/tmp");
        let web = WebArgs {
            trusted_proxies: vec!["10.0.0.0/8".into(), " ".into(), "::1".into()],
            ..WebArgs::local(dir)
        };
        assert_eq!(
            web.proxies().unwrap().ranges.len(),
            2,
            "blank entries are skipped"
        );
        let bad = WebArgs {
            trusted_proxies: vec!["10.0.0.0/40".into()],
            ..WebArgs::local(dir)
        };
        let error = bad.proxies().unwrap_err();
        assert!(
            error.starts_with("--trusted-proxies (ENGAGE_TRUSTED_PROXIES)"),
            "{error}"
        );
        let unanswerable = WebArgs {
            only_through_proxy: true,
            proxy_secret: Some("  ".into()),
            ..WebArgs::local(dir)
        };
        let error = unanswerable.proxies().unwrap_err();
        assert!(error.contains("needs ENGAGE_PROXY_SECRET"), "{error}");
        let guarded = WebArgs {
            only_through_proxy: true,
            proxy_secret: Some("0123456789abcdef0123456789abcdef".into()),
            ..WebArgs::local(dir)
        };
        assert!(guarded.proxies().unwrap().only_through_proxy);
    }

    #[test]
    fn serve_is_the_default_and_flags_parse() {
        let cli = Cli::try_parse_from(["engage", "--db", "/tmp/x.db", "--addr", "127.0.0.1:3900"])
            .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.db, PathBuf::from("/tmp/x.db"));
        assert_eq!(cli.serve.addr.port(), 3900);
        assert!(!cli.serve.demo_data, "demo data only when asked for");
        let cli = Cli::try_parse_from([
            "engage",
            "serve",
            "--addr",
            "127.0.0.1:4000",
            "--demo-data",
            "true",
        ])
        .unwrap();
        let Some(Command::Serve(args)) = cli.command else {
            panic!("expected serve")
        };
        assert_eq!(args.addr.port(), 4000);
        assert!(args.demo_data);
    }

    #[test]
    fn model_commands_parse_dates_and_refuse_bad_ones() {
        let cli = Cli::try_parse_from([
            "engage",
            "model",
            "fit",
            "--transactions",
            "t.csv",
            "--calibration-end",
            "2025-06-30",
            "--json",
        ])
        .unwrap();
        let Some(Command::Model(ModelArgs {
            command: ModelCommand::Fit(args),
        })) = cli.command
        else {
            panic!("expected model fit")
        };
        assert_eq!(args.calibration_end, NaiveDate::from_ymd_opt(2025, 6, 30));
        assert!(args.json);
        let error =
            Cli::try_parse_from(["engage", "model", "fit", "--calibration-end", "30/06/2025"])
                .unwrap_err()
                .to_string();
        assert!(error.contains("--calibration-end"), "{error}");
    }

    #[test]
    fn a_bad_address_is_refused_with_the_flag_named() {
        let error = Cli::try_parse_from(["engage", "serve", "--addr", "nowhere"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--addr"), "{error}");
    }
}
