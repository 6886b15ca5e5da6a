//! Operator commands: `engage queue stats`, `engage dlq list|redrive`, `engage stylist …`,
//! `engage user add`, `engage apikey …` and `engage rescore`, each over the ports of either
//! backend. The
//! pipeline's figures are also served on `/readyz`.

use crate::backend::Operations;
use crate::config::{
    ApiKeyCommand, DlqCommand, QueueCommand, StylistCommand, UserCommand, ViewsCommand,
};
pub use domain::api::PipelineFigures;
use domain::user::{Password, Role};
use domain::{ClientEmail, StylistId, ValidationErrors};
use ports::{Accounts, AddUserError, Books, Records, StoreError};
use processors::Clock;
use std::io::Write;
use std::io::{BufRead, IsTerminal};
use store::Store;

pub async fn pipeline_figures(
    store: &Store,
    clock: &dyn Clock,
) -> Result<PipelineFigures, StoreError> {
    crate::backend::Operations::pipeline_figures(store, clock.now()).await
}

pub async fn queue(
    ops: &dyn Operations,
    clock: &dyn Clock,
    command: &QueueCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        QueueCommand::Stats { json } => {
            let figures = ops.pipeline_figures(clock.now()).await?;
            if *json {
                serde_json::to_writer_pretty(&mut *out, &figures)?;
                writeln!(out)?;
            } else {
                let q = &figures.events_queue;
                writeln!(out, "queue \"{}\"", processors::EVENTS_QUEUE)?;
                writeln!(out, "  waiting (visible)   {}", q.visible)?;
                writeln!(out, "  in flight           {}", q.in_flight)?;
                writeln!(
                    out,
                    "  oldest message age  {:.1} s",
                    q.oldest_age_ms as f64 / 1000.0
                )?;
                writeln!(out, "  dead letters        {}", q.dead_letters)?;
                writeln!(
                    out,
                    "change feed lag       {} change(s) not yet published",
                    figures.feed_lag
                )?;
            }
        }
    }
    Ok(())
}

pub async fn dlq(
    ops: &dyn Operations,
    clock: &dyn Clock,
    command: &DlqCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        DlqCommand::List { json, limit } => {
            let letters = ops.dead_letters(*limit).await?;
            if *json {
                serde_json::to_writer_pretty(&mut *out, &letters)?;
                writeln!(out)?;
            } else if letters.is_empty() {
                writeln!(out, "The dead-letter queue is empty.")?;
            } else {
                for letter in &letters {
                    writeln!(
                        out,
                        "id {}  event {}  failed {}  after {} receive(s)\n  error: {}",
                        letter.id,
                        letter.dedup_id,
                        letter.failed_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        letter.receive_count,
                        letter.last_error
                    )?;
                }
                writeln!(
                    out,
                    "{} dead letter(s). Redrive with `engage dlq redrive [--id ID]`.",
                    letters.len()
                )?;
            }
        }
        DlqCommand::Redrive { id } => {
            let Some(moved) = ops.redrive(*id, clock.now()).await? else {
                anyhow::bail!(
                    "this backend puts its dead letters back on the queue together; leave out --id"
                );
            };
            match (id, moved) {
                (Some(id), 0) => anyhow::bail!("no dead letter with id {id}"),
                (_, moved) => writeln!(
                    out,
                    "Moved {moved} message(s) back onto the queue; a running `engage serve` processes them now."
                )?,
            }
        }
    }
    Ok(())
}

/// `engage user add`: checks every field, reads the password without echoing it, and
/// stores only its argon2id hash.
pub async fn user(
    accounts: &dyn Accounts,
    clock: &dyn Clock,
    command: &UserCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            email,
            role,
            stylist,
        } => {
            let mut errors = ValidationErrors::default();
            let email = errors.collect(ClientEmail::parse(email).map_err(|mut e| {
                e.field = "email".into();
                e
            }));
            let role = errors.collect(Role::parse(role));
            let stylist = match stylist.as_deref() {
                Some(raw) => errors.collect(StylistId::parse(raw)),
                None => None,
            };
            if !errors.is_empty() {
                anyhow::bail!("{errors}");
            }
            let raw = if std::io::stdin().is_terminal() {
                rpassword::prompt_password("Password (at least 12 characters): ")?
            } else {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            };
            let password = Password::parse(&raw).map_err(|e| anyhow::anyhow!("{e}"))?;
            let (Some(email), Some(role)) = (email, role) else {
                anyhow::bail!("{errors}");
            };
            let user = accounts
                .add_user(email, role, stylist, password, clock.now())
                .await
                .map_err(|e| match e {
                    AddUserError::Invalid(errors) => anyhow::anyhow!("{errors}"),
                    AddUserError::Store(error) => error.into(),
                })?;
            writeln!(
                out,
                "Added {} ({}).",
                user.email.as_str(),
                user.role.as_str()
            )?;
        }
    }
    Ok(())
}

/// `engage stylist add|list`.
pub async fn stylist(
    records: &dyn Records,
    books: &dyn Books,
    command: &StylistCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        StylistCommand::Add { id, name, email } => {
            let stylist =
                domain::NewStylist::parse(id, name, email).map_err(|e| anyhow::anyhow!("{e}"))?;
            records
                .upsert_stylist(
                    stylist.id.clone(),
                    stylist.name.as_str().to_owned(),
                    stylist.email.as_str().to_owned(),
                )
                .await?;
            writeln!(
                out,
                "Stylist {} ({}, {}) saved. Give them an account with: engage user add --role stylist --stylist {} --email …",
                stylist.id,
                stylist.name.as_str(),
                stylist.email.as_str(),
                stylist.id
            )?;
        }
        StylistCommand::List { json } => {
            let stylists = books.stylists().await?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&stylists)?)?;
            } else if stylists.is_empty() {
                writeln!(out, "No stylists yet: add one with `engage stylist add`.")?;
            } else {
                for stylist in stylists {
                    writeln!(out, "{}\t{}", stylist.id, stylist.name)?;
                }
            }
        }
    }
    Ok(())
}

/// `engage apikey create|list|revoke`.
pub async fn apikey(
    accounts: &dyn Accounts,
    clock: &dyn Clock,
    command: &ApiKeyCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        ApiKeyCommand::Create {
            name,
            role,
            stylist,
        } => {
            let mut errors = ValidationErrors::default();
            let role = errors.collect(Role::parse(role));
            let stylist = match stylist.as_deref() {
                Some(raw) => errors.collect(StylistId::parse(raw)),
                None => None,
            };
            let Some(role) = role.filter(|_| errors.is_empty()) else {
                anyhow::bail!("{errors}");
            };
            let created = accounts
                .create_api_key(name.clone(), role, stylist, clock.now())
                .await
                .map_err(|e| match e {
                    AddUserError::Invalid(errors) => anyhow::anyhow!("{errors}"),
                    AddUserError::Store(error) => error.into(),
                })?;
            writeln!(
                out,
                "Created API key {} \"{}\" ({}{}).",
                created.key.id,
                created.key.name,
                created.key.role.as_str(),
                created
                    .key
                    .stylist_id
                    .as_ref()
                    .map(|s| format!(", book of {s}"))
                    .unwrap_or_default()
            )?;
            writeln!(
                out,
                "Secret (shown only now; send it as Authorization: Bearer …):"
            )?;
            writeln!(out, "{}", created.secret)?;
        }
        ApiKeyCommand::List { json } => {
            let keys = accounts.api_keys().await?;
            if *json {
                serde_json::to_writer_pretty(&mut *out, &keys)?;
                writeln!(out)?;
            } else if keys.is_empty() {
                writeln!(out, "No API keys. Create one with `engage apikey create`.")?;
            } else {
                for key in keys {
                    let state = match key.revoked_at {
                        Some(at) => format!("revoked {}", at.format("%Y-%m-%d %H:%M")),
                        None => "active".to_owned(),
                    };
                    writeln!(
                        out,
                        "{}  {:<8} {:<10} {:<24} created {}  {}",
                        key.id,
                        key.role.as_str(),
                        key.stylist_id.as_ref().map_or("-", |s| s.as_str()),
                        key.name,
                        key.created_at.format("%Y-%m-%d %H:%M"),
                        state
                    )?;
                }
            }
        }
        ApiKeyCommand::Revoke { id } => {
            match accounts.revoke_api_key(id.clone(), clock.now()).await? {
                Some(key) => writeln!(out, "Revoked API key {} \"{}\".", key.id, key.name)?,
                None => anyhow::bail!(
                    "there is no API key with id {id}; `engage apikey list` shows them"
                ),
            }
        }
    }
    Ok(())
}

/// `engage rescore`: queues a rescore of every client as of today, in pages, with progress.
/// A running `engage serve` scores them and the policy acts on band changes (a client who
/// drifted into At risk gets a win-back draft). Asking twice on one day queues nothing new.
pub async fn rescore(
    ops: &dyn Operations,
    clock: &dyn Clock,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let total = ops.client_count().await?;
    let mut progress = crate::telemetry::Progress::new(total, "queueing rescores");
    let (seen, queued) = queue_rescores(ops, clock, |seen| progress.set(seen)).await?;
    progress.finish();
    writeln!(
        out,
        "Queued {queued} rescore(s) as of {} for {seen} client(s); {} were already queued today.",
        clock.now().date_naive(),
        seen - queued
    )?;
    Ok(())
}

/// Queues today's rescore event for every client, a page at a time, telling `progress`
/// how many clients it has been through; returns (clients seen, events queued).
pub async fn queue_rescores(
    ops: &dyn Operations,
    clock: &dyn Clock,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<(u64, u64)> {
    const PAGE: u32 = 1_000;
    let today = clock.now().date_naive();
    let (mut after, mut seen, mut queued) = (None, 0u64, 0u64);
    loop {
        let (page, next) = ops.client_keys(after.take(), PAGE).await?;
        let now = clock.now();
        let events = page
            .iter()
            .map(|(id, stylist, version)| {
                domain::event::rescore_event(id, stylist, *version, today, now)
            })
            .collect::<Vec<_>>();
        seen += events.len() as u64;
        if !events.is_empty() {
            queued += ops.queue_events(events, now).await?;
        }
        progress(seen);
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok((seen, queued))
}

/// `engage views rebuild`.
pub async fn views(
    views: &dyn ports::Views,
    command: &ViewsCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        ViewsCommand::Rebuild => {
            let started = std::time::Instant::now();
            rebuild_views(views).await?;
            writeln!(
                out,
                "views rebuilt from the logs in {:.1} s",
                started.elapsed().as_secs_f64()
            )?;
            Ok(())
        }
    }
}

/// Rebuilds the dashboard's views, showing progress.
pub async fn rebuild_views(views: &dyn ports::Views) -> anyhow::Result<()> {
    let progress = std::sync::Arc::new(std::sync::Mutex::new(None::<crate::telemetry::Progress>));
    let shown = std::sync::Arc::clone(&progress);
    views
        .rebuild_views(std::sync::Arc::new(move |done, total| {
            let mut bar = shown.lock().unwrap_or_else(|e| e.into_inner());
            bar.get_or_insert_with(|| crate::telemetry::Progress::new(total, "rebuilding views"))
                .set(done);
        }))
        .await?;
    if let Some(bar) = progress.lock().unwrap_or_else(|e| e.into_inner()).take() {
        bar.finish();
    }
    Ok(())
}
