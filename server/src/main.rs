//! `engage`: the Engage web app, event pipeline and operator commands in one binary.
//!
//! Run `engage --help` for commands and settings. `engage` alone serves the app on
//! http://127.0.0.1:3000 with the SQLite database at `data/engage.db` (demo data and
//! accounts only with `--demo-data true`). Build with `cargo leptos build --release` so the
//! binary carries its browser bundle.

use anyhow::Context;
use clap::Parser;
use engage::config::{
    BackendArgs, BackendKind, Cli, Command, ModelArgs, ModelCommand, SeedArgs, SimulateArgs,
    SiteCommand,
};
use engage::service::Ports;
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
    if let Some(Command::Site { command }) = &cli.command {
        return match command {
            SiteCommand::Export { dir } => {
                engage::assets::export(dir, &mut std::io::stdout().lock())
            }
        };
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let out = &mut std::io::stdout();
    let open = || Store::open(&cli.db);
    match cli.command {
        // The AWS backend and its commands need no SQLite database.
        Some(Command::Aws { command, aws }) => engage::aws::command(&command, &aws, out).await,
        None if cli.serve.backend == BackendKind::Aws => {
            let aws = cli.serve.aws.clone();
            engage::aws::serve(clock, cli.serve, &aws).await
        }
        Some(Command::Serve(args)) if args.backend == BackendKind::Aws => {
            let aws = args.aws.clone();
            engage::aws::serve(clock, args, &aws).await
        }
        None => startup::serve(open()?, clock, cli.serve).await,
        Some(Command::Serve(args)) => startup::serve(open()?, clock, args).await,
        // Operator commands work over the ports of either backend.
        Some(Command::Rescore(target)) => {
            let ports = ports(&target, &cli.db).await?;
            ops::rescore(ports.ops.as_ref(), clock.as_ref(), out).await
        }
        Some(Command::Stylist { command, target }) => {
            let ports = ports(&target, &cli.db).await?;
            ops::stylist(ports.records.as_ref(), ports.books.as_ref(), &command, out).await
        }
        Some(Command::Apikey { command, target }) => {
            let ports = ports(&target, &cli.db).await?;
            ops::apikey(ports.accounts.as_ref(), clock.as_ref(), &command, out).await
        }
        Some(Command::User { command, target }) => {
            let ports = ports(&target, &cli.db).await?;
            ops::user(ports.accounts.as_ref(), clock.as_ref(), &command, out).await
        }
        Some(Command::Queue { command, target }) => {
            let ports = ports(&target, &cli.db).await?;
            ops::queue(ports.ops.as_ref(), clock.as_ref(), &command, out).await
        }
        Some(Command::Dlq { command, target }) => {
            let ports = ports(&target, &cli.db).await?;
            ops::dlq(ports.ops.as_ref(), clock.as_ref(), &command, out).await
        }
        Some(Command::Seed(args)) => seed(&args, &cli.db, clock.as_ref(), out).await,
        Some(Command::Views { command, target }) => {
            let ports = ports(&target, &cli.db).await?;
            ops::views(ports.views.as_ref(), &command, out).await
        }
        Some(Command::Site { .. }) => Ok(()),
        Some(Command::Model(args)) => match args.command {
            ModelCommand::Fit(args) => {
                let ports = ports(&args.target, &cli.db).await?;
                model::fit_clients(ports.model.as_ref(), clock.as_ref(), &args, out).await
            }
            ModelCommand::Simulate(args) => simulate(&args),
        },
    }
}

/// The ports of the backend an operator command names.
async fn ports(target: &BackendArgs, db: &std::path::Path) -> anyhow::Result<Ports> {
    match target.backend {
        BackendKind::Embedded => Ok(startup::embedded_ports(&Store::open(db)?)),
        BackendKind::Aws => engage::aws::ports_from_env(&target.aws_prefix).await,
    }
}

/// `engage seed`: a replayed past on an empty backend, or (`--days 0`) clients as of now.
async fn seed(
    args: &SeedArgs,
    db: &std::path::Path,
    clock: &dyn Clock,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let outreach =
        processors::email::OutreachSettings::from_env().map_err(|e| anyhow::anyhow!("{e}"))?;
    let plan = engage::replay::Plan {
        seed: args.seed,
        days: args.days,
        clients: args.clients,
    };
    match (args.target.backend, args.days) {
        (BackendKind::Embedded, 0) => {
            let outcome = demo::seed(&Store::open(db)?, clock, args.clients).await?;
            writeln!(
                out,
                "Added {} demo clients ({} were already there).",
                outcome.created, outcome.skipped
            )?;
        }
        (BackendKind::Aws, 0) => {
            let ports = engage::aws::ports_from_env(&args.target.aws_prefix).await?;
            let outcome = demo::seed_records(ports.records.as_ref(), clock, args.clients).await?;
            writeln!(
                out,
                "Added {} demo clients ({} were already there).",
                outcome.created, outcome.skipped
            )?;
        }
        (BackendKind::Embedded, _) => {
            let started = std::time::Instant::now();
            let summary =
                engage::replay::on_store(&Store::open(db)?, plan, outreach, clock.now()).await?;
            writeln!(
                out,
                "Demo data {summary}, in {:.1} s.",
                started.elapsed().as_secs_f64()
            )?;
        }
        (BackendKind::Aws, _) => {
            let started = std::time::Instant::now();
            let aws = engage_aws::Aws::from_env(&args.target.aws_prefix).await;
            let resources = engage_aws::bootstrap::locate(&aws).await.map_err(|e| {
                anyhow::anyhow!("{e}; create the resources first with `engage aws bootstrap`")
            })?;
            let summary =
                engage::aws::replay(&aws, &resources, plan, outreach, clock.now()).await?;
            writeln!(
                out,
                "Demo data {summary}, in {:.1} s.",
                started.elapsed().as_secs_f64()
            )?;
        }
    }
    Ok(())
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
