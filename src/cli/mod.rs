//! The command line: parses `ehr-mcp <command>` (clap) and dispatches to the layers below.
//! Exit codes: 0 success, 1 failure (for example a broken audit chain), 2 bad usage or configuration.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{CommonArgs, ServeArgs};

mod audit;
mod client;
mod data;
mod doctor;
mod healthcheck;
mod keys;
mod serve;
pub mod stdio;
mod user;

/// EHR MCP server: electronic health records for AI agents over MCP, behind OAuth 2.0.
#[derive(Debug, Parser)]
#[command(name = "ehr-mcp", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP (WebSocket, Streamable HTTP), OAuth and health endpoints on one port.
    Serve(Box<ServeArgs>),
    /// Serve MCP over stdin/stdout for desktop clients (Claude Desktop, VS Code); logs go to stderr.
    Stdio(Box<stdio::StdioArgs>),
    /// Apply database migrations.
    Migrate,
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Manage people who sign in (authorization code + PKCE).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage token signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Check the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Load the demo data set, or N deterministic synthetic patients with full records.
    Seed(data::SeedArgs),
    /// Import the earlier system's JSON export (validated first; all or nothing).
    Import(data::ImportArgs),
    /// Export every record in the earlier system's JSON format.
    Export(data::ExportArgs),
    /// Check that a running server answers `/healthz` (exit 0) — for container health checks.
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Check the settings `serve` would use (same options): listen address, database, migrations,
    /// secret files, public URL and TLS; say what is wrong and how to fix it (exit 1 if anything fails).
    Doctor(Box<ServeArgs>),
}

/// A failure of a command, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad configuration or usage: exit 2.
    #[error("{0}")]
    Config(String),
    /// The command ran and failed: exit 1.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl CliError {
    fn exit_code(&self) -> ExitCode {
        match self {
            Self::Config(_) => ExitCode::from(2),
            Self::Failed(_) => ExitCode::from(1),
        }
    }
}

impl From<crate::store::StoreError> for CliError {
    fn from(error: crate::store::StoreError) -> Self {
        match error {
            crate::store::StoreError::Config(message) => Self::Config(message),
            other => Self::Failed(anyhow::Error::new(other)),
        }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // `.env` fills the environment without overriding it: flags > environment > .env > defaults.
    let _ = dotenvy::dotenv();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let log_level_source = match matches.value_source("log_level") {
        Some(clap::parser::ValueSource::DefaultValue) | None => {
            crate::telemetry::LogLevelSource::Default
        }
        Some(_) => crate::telemetry::LogLevelSource::Explicit,
    };
    if let Err(error) = crate::telemetry::init(&cli.common, log_level_source) {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            error.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let command = match cli.command {
        Command::Serve(args) => return serve::serve(&cli.common, *args).await,
        Command::Stdio(args) => return stdio::stdio(&cli.common, *args).await,
        Command::Healthcheck(args) => return healthcheck::healthcheck(args).await,
        Command::Doctor(args) => return doctor::doctor(&cli.common, *args).await,
        Command::Keys(keys::KeysCommand::GenerateKek) => {
            println!(
                "{}",
                crate::auth::key_encryption::KeyEncryptionKey::generate_text()
            );
            return Ok(ExitCode::SUCCESS);
        }
        command => command,
    };
    let store = open_batch_store(&cli.common).await?;
    let outcome = run_on_store(&store, command).await;
    // Closing checkpoints SQLite's write-ahead log into the `.db` file: nothing stays only in `-wal`.
    let closed = store.close().await;
    let code = outcome?;
    closed?;
    Ok(code)
}

async fn run_on_store(store: &crate::store::Store, command: Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Migrate => {
            store.migrate().await?;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Client(command) => client::run(store, command).await,
        Command::User(command) => user::run(store, command).await,
        Command::Keys(command) => keys::run(store, command).await,
        Command::Audit(command) => audit::run(store, command).await,
        Command::Seed(args) => data::seed(store, args).await,
        Command::Import(args) => data::import(store, args).await,
        Command::Export(args) => data::export(store, args).await,
        Command::Serve(_) | Command::Stdio(_) | Command::Healthcheck(_) | Command::Doctor(_) => {
            Err(CliError::Failed(anyhow::anyhow!(
                "serve, stdio, healthcheck and doctor manage their own connections"
            )))
        }
    }
}

/// Opens the configured database for serving (without migrating): requests fail fast with
/// `unavailable` when it cannot answer within the configured timeouts.
pub async fn open_store(common: &CommonArgs) -> Result<crate::store::Store, CliError> {
    let mut options = crate::store::StoreOptions::new(common.database_url.clone());
    options.acquire_timeout = std::time::Duration::from_secs(common.db_acquire_timeout_seconds);
    options.statement_timeout = Some(std::time::Duration::from_secs(
        common.db_statement_timeout_seconds,
    ));
    options.fsync_each_commit = common.audit_durability == crate::config::Durability::Full;
    Ok(crate::store::Store::connect(&options).await?)
}

/// Opens the configured database for a one-off command: no statement timeout (an import or a
/// verification of a long audit log may take minutes), a longer wait for a connection.
async fn open_batch_store(common: &CommonArgs) -> Result<crate::store::Store, CliError> {
    let mut options = crate::store::StoreOptions::new(common.database_url.clone());
    options.acquire_timeout = std::time::Duration::from_secs(30);
    options.statement_timeout = None;
    Ok(crate::store::Store::connect(&options).await?)
}
