//! `ehr-mcp keys rotate`: a new ES256 signing key; the previous public key stays in the JWKS until the
//! tokens it signed have expired. Running servers pick the new key up within a second.

use std::process::ExitCode;

use clap::Subcommand;

use crate::audit::{AuditEvent, AuditLog, AuditOptions, Outcome, Transport};

use super::CliError;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new signing key and retire the current one (still published until its tokens expire).
    Rotate,
}

pub async fn run(store: &Store, command: KeysCommand) -> Result<ExitCode, CliError> {
    store.migrate().await?;
    match command {
        KeysCommand::Rotate => {
            let kid = crate::auth::keys::rotate(store)
                .await
                .map_err(|error| CliError::Failed(anyhow::Error::new(error)))?;
            let log = AuditLog::start(store.clone(), AuditOptions::default());
            let recorded = log
                .record(AuditEvent {
                    detail: Some(format!("kid={kid}")),
                    ..AuditEvent::new(Transport::Cli, "keys.rotate", Outcome::Success)
                })
                .await;
            log.shutdown().await;
            recorded.map_err(|error| CliError::Failed(anyhow::Error::new(error)))?;
            println!(
                "new signing key {kid}; the previous key stays published until its tokens have expired"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
