//! `ehr-mcp audit verify`: walks the audit log's hash chain; exit 1 naming the first bad row.

use std::process::ExitCode;

use clap::Subcommand;

use super::CliError;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; prints the head (record it elsewhere to detect truncation) or the first bad row.
    Verify,
}

pub async fn run(store: &Store, command: AuditCommand) -> Result<ExitCode, CliError> {
    store.migrate().await?;
    match command {
        AuditCommand::Verify => {
            let report = crate::audit::verify(store)
                .await
                .map_err(|error| CliError::Failed(anyhow::Error::new(error)))?;
            match report.problem {
                None => {
                    match report.head {
                        Some((seq, hash)) => println!(
                            "audit log intact: {} rows; head seq {seq} hash {hash}",
                            report.rows_checked
                        ),
                        None => println!("audit log intact: empty"),
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Some(problem) => {
                    println!(
                        "audit log BROKEN after {} good rows: {problem}",
                        report.rows_checked
                    );
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
