//! `ehr-mcp keys …`: `rotate` (a new ES256 signing key; the previous public key stays in the JWKS until
//! the tokens it signed have expired; running servers pick the new key up within a second), `rewrap`
//! (re-seal every private key under a new key-encryption key) and `generate-kek`.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::audit::{AuditEvent, AuditLog, AuditOptions, Outcome, Transport};
use crate::auth::key_encryption::KeyEncryptionKey;
use crate::config::KeyEncryptionArgs;

use super::CliError;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new signing key and retire the current one (still published until its tokens expire).
    Rotate(KeyArgs),
    /// Re-seal every stored private key with a new key-encryption key (KEK rotation). The current KEK
    /// comes from EHR_MCP_KEY_ENCRYPTION_KEY(_FILE) (unset: the keys are in clear), the new one from
    /// EHR_MCP_NEW_KEY_ENCRYPTION_KEY(_FILE).
    Rewrap(RewrapArgs),
    /// Print a fresh random key-encryption key (base64) for EHR_MCP_KEY_ENCRYPTION_KEY.
    GenerateKek,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(flatten)]
    pub key_encryption: KeyEncryptionArgs,
    /// Allow a database without a key-encryption key (keys kept in clear, as `serve --demo` does).
    #[arg(long)]
    pub demo: bool,
}

#[derive(Debug, Args)]
pub struct RewrapArgs {
    #[command(flatten)]
    pub key_encryption: KeyEncryptionArgs,
    /// The new key-encryption key.
    #[arg(long, env = "EHR_MCP_NEW_KEY_ENCRYPTION_KEY", hide_env_values = true)]
    pub new_key_encryption_key: Option<secrecy::SecretString>,
    /// A file holding the new key-encryption key.
    #[arg(long, env = "EHR_MCP_NEW_KEY_ENCRYPTION_KEY_FILE")]
    pub new_key_encryption_key_file: Option<std::path::PathBuf>,
}

pub async fn run(store: &Store, command: KeysCommand) -> Result<ExitCode, CliError> {
    let config = |error: crate::auth::AuthError| CliError::Config(error.to_string());
    let failed = |error: crate::auth::AuthError| CliError::Failed(anyhow::Error::new(error));
    match command {
        KeysCommand::GenerateKek => {
            println!("{}", KeyEncryptionKey::generate_text());
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Rotate(args) => {
            let kek = args
                .key_encryption
                .load_required(args.demo)
                .map_err(config)?;
            store.migrate().await?;
            let kid = crate::auth::keys::rotate(store, kek.as_ref())
                .await
                .map_err(failed)?;
            record(store, "keys.rotate", format!("kid={kid}")).await?;
            println!(
                "new signing key {kid}; the previous key stays published until its tokens have expired"
            );
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Rewrap(args) => {
            let current = args.key_encryption.load().map_err(config)?;
            let new = KeyEncryptionArgs {
                key_encryption_key: args.new_key_encryption_key,
                key_encryption_key_file: args.new_key_encryption_key_file,
            }
            .load()
            .map_err(config)?
            .ok_or_else(|| {
                CliError::Config(
                    "set EHR_MCP_NEW_KEY_ENCRYPTION_KEY (or EHR_MCP_NEW_KEY_ENCRYPTION_KEY_FILE) to \
                     the new key-encryption key"
                        .to_owned(),
                )
            })?;
            store.migrate().await?;
            let count = crate::auth::keys::rewrap(store, current.as_ref(), &new)
                .await
                .map_err(|error| match error {
                    crate::auth::AuthError::Config(_) => config(error),
                    other => failed(other),
                })?;
            record(
                store,
                "keys.rewrap",
                format!("keys={count} kek={}", new.id()),
            )
            .await?;
            println!(
                "{count} signing keys re-sealed with key-encryption key {}; restart every server \
                 with EHR_MCP_KEY_ENCRYPTION_KEY set to the new key",
                new.id()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn record(store: &Store, action: &str, detail: String) -> Result<(), CliError> {
    let log = AuditLog::start(store.clone(), AuditOptions::default());
    let recorded = log
        .record(AuditEvent {
            detail: Some(detail),
            ..AuditEvent::new(Transport::Cli, action, Outcome::Success)
        })
        .await;
    log.shutdown().await;
    recorded.map_err(|error| CliError::Failed(anyhow::Error::new(error)))
}
