//! The one configuration: command-line flags, each with an environment variable.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Engage: win back clients before they drift away.
///
/// Runs the web app and the event pipeline on one SQLite file. Every flag can also be set
/// through the environment variable shown beside it.
#[derive(Debug, Parser)]
#[command(
    name = "engage",
    version,
    about,
    long_about,
    args_conflicts_with_subcommands = true
)]
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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web app and run the pipeline (the default).
    Serve(ServeArgs),
    /// Add demo stylists and clients to the database.
    Seed(SeedArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ENGAGE_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Fill an empty database with demo stylists and clients on start.
    #[arg(long, env = "ENGAGE_DEMO_DATA", default_value_t = true, action = clap::ArgAction::Set)]
    pub demo_data: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// How many demo clients to add.
    #[arg(long, default_value_t = 300)]
    pub clients: u32,
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
    fn serve_is_the_default_and_flags_parse() {
        let cli = Cli::try_parse_from(["engage", "--db", "/tmp/x.db", "--addr", "127.0.0.1:3900"])
            .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.db, PathBuf::from("/tmp/x.db"));
        assert_eq!(cli.serve.addr.port(), 3900);
        let cli = Cli::try_parse_from([
            "engage",
            "serve",
            "--addr",
            "127.0.0.1:4000",
            "--demo-data",
            "false",
        ])
        .unwrap();
        let Some(Command::Serve(args)) = cli.command else {
            panic!("expected serve")
        };
        assert_eq!(args.addr.port(), 4000);
        assert!(!args.demo_data);
    }

    #[test]
    fn a_bad_address_is_refused_with_the_flag_named() {
        let error = Cli::try_parse_from(["engage", "serve", "--addr", "nowhere"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--addr"), "{error}");
    }
}
