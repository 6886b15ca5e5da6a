//! `engage`: the Engage web app, event pipeline and operator commands in one binary.
//!
//! Run `engage --help` for commands and settings. `engage` alone serves the app on
//! http://127.0.0.1:3000 with the SQLite database at `data/engage.db`, adding demo data
//! to an empty database. Build with `cargo leptos build --release` so the binary carries
//! its browser bundle.

use clap::Parser;
use engage::config::{Cli, Command};
use engage::{demo, startup, telemetry};
use processors::{Clock, SystemClock};
use std::sync::Arc;
use store::Store;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let store = Store::open(&cli.db)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command {
        None => startup::serve(store, clock, cli.serve).await,
        Some(Command::Serve(args)) => startup::serve(store, clock, args).await,
        Some(Command::Seed(args)) => {
            let created = demo::seed(&store, clock.as_ref(), args.clients).await?;
            tracing::info!(created, "demo data added");
            Ok(())
        }
    }
}
