//! Logging: tracing to stderr, as text or JSON, filtered by RUST_LOG.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

pub fn init(format: LogFormat) {
    let _ = FORMAT.set(format);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}

static FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// Logging for a job that would otherwise log each of its thousands of steps (the demo's
/// replay): warnings, errors and progress only, in the format [`init`] was given.
pub fn quiet() -> tracing::Dispatch {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("warn,engage::telemetry=info"))
        .with_writer(std::io::stderr);
    match FORMAT.get().copied().unwrap_or(LogFormat::Text) {
        LogFormat::Text => builder.finish().into(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .finish()
            .into(),
    }
}

/// Progress of a long job: a bar on a terminal; otherwise (CI, log files) a
/// log line about every tenth of the way.
pub struct Progress {
    bar: indicatif::ProgressBar,
    what: &'static str,
    step: u64,
    next_log: u64,
}

impl Progress {
    pub fn new(total: u64, what: &'static str) -> Self {
        let style = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len}, {per_sec}, eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = indicatif::ProgressBar::new(total).with_style(style);
        bar.set_message(what);
        let step = (total / 10).max(1);
        Self {
            bar,
            what,
            step,
            next_log: step,
        }
    }

    /// `done` of the total are through.
    pub fn set(&mut self, done: u64) {
        self.bar.set_position(done);
        let total = self.bar.length().unwrap_or(done);
        if self.bar.is_hidden() && (done >= self.next_log || done == total) {
            tracing::info!(done, total, "{}", self.what);
            self.next_log = done + self.step;
        }
    }

    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
