//! `engage`: the Engage web app, event pipeline and operator commands in one binary.
//!
//! Run `engage --help` for commands and settings. `engage` alone serves the app on
//! http://127.0.0.1:3000 with the SQLite database at `data/engage.db` (demo data and
//! accounts only with `--demo-data true`). Build with `cargo leptos build --release` so the
//! binary carries its browser bundle.

use anyhow::Context;
use clap::Parser;
use engage::config::{BackendKind, Cli, Command, ModelArgs, ModelCommand, SimulateArgs};
use engage::{demo, model, ops, startup, telemetry};
use processors::{Clock, SystemClock};
use std::sync::Arc;
use store::Store;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    // Simulating and fitting a file need no database; every other command does.
    if let Some(Command::Model(ModelArgs { command })) = &cli.command {
        match command {
            ModelCommand::Simulate(args) => return simulate(args),
            ModelCommand::Fit(args) => {
                if let Some(path) = &args.transactions {
                    return model::fit_transactions(args, path, &mut std::io::stdout().lock());
                }
            }
        }
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // The AWS backend and its commands need no SQLite database.
    let command = match cli.command {
        Some(Command::Aws { command, aws }) => {
            return engage::aws::command(&command, &aws, &mut std::io::stdout().lock()).await;
        }
        None if cli.serve.backend == BackendKind::Aws => {
            let aws = cli.serve.aws.clone();
            return engage::aws::serve(clock, cli.serve, &aws).await;
        }
        Some(Command::Serve(args)) if args.backend == BackendKind::Aws => {
            let aws = args.aws.clone();
            return engage::aws::serve(clock, args, &aws).await;
        }
        other => other,
    };
    let store = Store::open(&cli.db)?;
    match command {
        None => startup::serve(store, clock, cli.serve).await,
        Some(Command::Serve(args)) => startup::serve(store, clock, args).await,
        Some(Command::Seed(args)) => {
            let outcome = demo::seed(&store, clock.as_ref(), args.clients).await?;
            tracing::info!(
                created = outcome.created,
                already_there = outcome.skipped,
                "demo data added"
            );
            Ok(())
        }
        Some(Command::Rescore) => {
            ops::rescore(&store, clock.as_ref(), &mut std::io::stdout().lock()).await
        }
        Some(Command::Apikey { command }) => {
            ops::apikey(
                &store,
                clock.as_ref(),
                &command,
                &mut std::io::stdout().lock(),
            )
            .await
        }
        Some(Command::User { command }) => {
            ops::user(
                &store,
                clock.as_ref(),
                &command,
                &mut std::io::stdout().lock(),
            )
            .await
        }
        Some(Command::Queue { command }) => {
            ops::queue(
                &store,
                clock.as_ref(),
                &command,
                &mut std::io::stdout().lock(),
            )
            .await
        }
        Some(Command::Dlq { command }) => {
            ops::dlq(
                &store,
                clock.as_ref(),
                &command,
                &mut std::io::stdout().lock(),
            )
            .await
        }
        Some(Command::Aws { command, aws }) => {
            engage::aws::command(&command, &aws, &mut std::io::stdout().lock()).await
        }
        Some(Command::Views { command }) => {
            ops::views(&store, &command, &mut std::io::stdout().lock()).await
        }
        Some(Command::Model(args)) => match args.command {
            ModelCommand::Fit(args) => {
                model::fit_clients(&store, clock.as_ref(), &args, &mut std::io::stdout().lock())
                    .await
            }
            ModelCommand::Simulate(args) => simulate(&args),
        },
    }
}

fn simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    match &args.out {
        Some(path) => {
            let mut file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            model::simulate(args, &mut file)
        }
        None => model::simulate(args, &mut std::io::stdout().lock()),
    }
}
