//! `ehr-mcp user add|list|disable|enable|set-password|revoke-consent`: people who sign in through the
//! authorization-code flow. Passwords come from stdin (one line) or are generated and printed once.
//! Each change is written to the audit log (transport `cli`).

use std::io::BufRead;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::audit::{AuditEvent, AuditLog, AuditOptions, Outcome, Transport};
use crate::auth::users::{self, NewUser};
use crate::domain::access::Role;
use crate::domain::ids::Mrn;
use crate::domain::user::Username;
use crate::store::Store;

use super::CliError;
use super::client::{pretty, usage};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from stdin (`--password-stdin`) or generated and printed once.
    Add(AddArgs),
    /// List every user (no password hashes).
    List,
    /// Disable a user: their tokens stop working at once and they cannot sign in.
    Disable {
        /// The user's sign-in name.
        username: String,
    },
    /// Re-enable a disabled user.
    Enable {
        /// The user's sign-in name.
        username: String,
    },
    /// Set a new password, read from stdin (one line) or generated and printed once.
    SetPassword {
        /// The user's sign-in name.
        username: String,
        /// Read the password from the first line of stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Forget the consent a user gave (one client, or all) and revoke the matching refresh tokens.
    RevokeConsent {
        /// The user's sign-in name.
        username: String,
        /// Only the consent given to this client (default: every client).
        #[arg(long)]
        client_id: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Sign-in name of the new user.
    #[arg(long)]
    pub username: String,
    /// doctor, nurse, patient or admin.
    #[arg(long)]
    pub role: String,
    /// The patient a patient user is bound to.
    #[arg(long)]
    pub patient_mrn: Option<String>,
    /// Full name shown by `user list` (optional, 1-200 printable characters).
    #[arg(long)]
    pub display_name: Option<String>,
    /// Read the password from the first line of stdin instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
}

fn config(error: impl std::fmt::Display) -> CliError {
    CliError::Config(error.to_string())
}

fn password(from_stdin: bool) -> Result<(String, bool), CliError> {
    if !from_stdin {
        return Ok((users::generate_password(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| config(format!("cannot read the password from stdin: {error}")))?;
    Ok((line.trim_end_matches(['\r', '\n']).to_owned(), false))
}

pub async fn run(store: &Store, command: UserCommand) -> Result<ExitCode, CliError> {
    store.migrate().await?;
    match command {
        UserCommand::Add(args) => {
            let username = Username::parse(&args.username).map_err(config)?;
            let role = Role::parse(&args.role).map_err(config)?;
            let patient_mrn = args
                .patient_mrn
                .as_deref()
                .map(Mrn::parse)
                .transpose()
                .map_err(config)?;
            let (password, generated) = password(args.password_stdin)?;
            let user = users::add(
                store,
                NewUser {
                    username: username.clone(),
                    role,
                    patient_mrn,
                    display_name: args.display_name,
                },
                &password,
            )
            .await
            .map_err(usage)?;
            audit(store, "user.add", &username).await?;
            let mut shown = json!(user);
            if generated {
                shown["password"] = json!(password);
            }
            println!("{}", pretty(&shown)?);
        }
        UserCommand::List => {
            let listed = users::list(store).await.map_err(usage)?;
            println!("{}", pretty(&json!(listed))?);
        }
        UserCommand::Disable { username } => set_active(store, &username, false).await?,
        UserCommand::Enable { username } => set_active(store, &username, true).await?,
        UserCommand::SetPassword {
            username,
            password_stdin,
        } => {
            let username = Username::parse(&username).map_err(config)?;
            let (password, generated) = password(password_stdin)?;
            users::set_password(store, &username, &password)
                .await
                .map_err(usage)?;
            audit(store, "user.set_password", &username).await?;
            let mut shown = json!({"username": username.as_str()});
            if generated {
                shown["password"] = json!(password);
            }
            println!("{}", pretty(&shown)?);
        }
        UserCommand::RevokeConsent {
            username,
            client_id,
        } => {
            let username = Username::parse(&username).map_err(config)?;
            let removed = store
                .delete_consents(&username, client_id.as_deref())
                .await?;
            let revoked = store
                .revoke_user_refresh_tokens(username.as_str(), client_id.as_deref())
                .await?;
            audit(store, "user.revoke_consent", &username).await?;
            println!(
                "{}",
                pretty(&json!({"consents_removed": removed, "refresh_tokens_revoked": revoked}))?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_active(store: &Store, username: &str, active: bool) -> Result<(), CliError> {
    let username = Username::parse(username).map_err(config)?;
    users::set_active(store, &username, active)
        .await
        .map_err(usage)?;
    let action = if active {
        "user.enable"
    } else {
        "user.disable"
    };
    audit(store, action, &username).await?;
    println!(
        "user {username} {}",
        if active { "enabled" } else { "disabled" }
    );
    Ok(())
}

/// Records an administrative action on a user in the audit log and waits for it.
async fn audit(store: &Store, action: &str, username: &Username) -> Result<(), CliError> {
    let log = AuditLog::start(store.clone(), AuditOptions::default());
    let event = AuditEvent {
        detail: Some(format!("user={username}")),
        ..AuditEvent::new(Transport::Cli, action, Outcome::Success)
    };
    let recorded = log.record(event).await;
    log.shutdown().await;
    recorded.map_err(|error| CliError::Failed(anyhow::Error::new(error)))
}
