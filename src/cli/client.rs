//! `ehr-mcp client register|list|disable|enable|rotate-secret`: OAuth client management from the shell.
//! Each change is written to the audit log (transport `cli`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::audit::{AuditEvent, AuditLog, AuditOptions, Outcome, Transport};
use crate::auth::registration::{
    AuthMethod, RedirectPolicy, checked_grants, save_operator_redirects,
};
use crate::auth::{AuthError, NewClient, api_keys, clients};
use crate::domain::access::Role;
use crate::domain::ids::{ClientId, Mrn};
use crate::store::Store;

use super::CliError;

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and secret once, as JSON.
    Register(RegisterArgs),
    /// List every client (no secrets).
    List,
    /// Disable a client: its tokens stop working and it can get no new ones.
    Disable { client_id: String },
    /// Re-enable a disabled client.
    Enable { client_id: String },
    /// Replace a client's secret; prints the new secret once, as JSON.
    RotateSecret { client_id: String },
    /// Replace a client's redirect URIs and grant types (the authorization code flow), e.g. once
    /// Copilot Studio has shown the redirect URL of its connector.
    SetRedirects(SetRedirectsArgs),
    /// API keys of a client (`Authorization: Bearer <key>` or `X-API-Key: <key>` on /mcp and /ws).
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key for CLIENT_ID; prints it once, as JSON.
    Create {
        client_id: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
    },
    /// List keys (no secrets): created, last used, expiry, revoked.
    List {
        #[arg(long)]
        client_id: Option<String>,
    },
    /// Revoke a key by its key_id: it stops working at once.
    Revoke { key_id: String },
}

#[derive(Debug, Args)]
pub struct SetRedirectsArgs {
    pub client_id: String,
    #[command(flatten)]
    pub redirects: RedirectArgs,
}

/// The authorization-code settings of a client given on the command line.
#[derive(Debug, Args)]
pub struct RedirectArgs {
    /// A redirect URI for the authorization code flow (repeat for several; any https host, or
    /// loopback http). People then sign in through this client (Copilot Studio "Manual", Claude).
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// Grant types with --redirect-uri (comma-separated; default authorization_code,refresh_token;
    /// client_credentials may be added).
    #[arg(long, value_delimiter = ',')]
    pub grant_types: Vec<String>,
    /// How the client authenticates at the token endpoint with --redirect-uri: client_secret_basic
    /// (default; client_secret_post works too), or none (a public client: PKCE only).
    #[arg(long)]
    pub token_endpoint_auth_method: Option<String>,
}

/// Redirect settings that passed the checks: (redirect URIs, grant types, token endpoint auth method).
type CheckedRedirects = (Vec<String>, Vec<String>, AuthMethod);

impl RedirectArgs {
    /// The checked settings, or `None` without `--redirect-uri`.
    fn checked(&self) -> Result<Option<CheckedRedirects>, CliError> {
        if self.redirect_uris.is_empty() {
            if !self.grant_types.is_empty() || self.token_endpoint_auth_method.is_some() {
                return Err(CliError::Config(
                    "--grant-types and --token-endpoint-auth-method need --redirect-uri".to_owned(),
                ));
            }
            return Ok(None);
        }
        let method = AuthMethod::parse(
            self.token_endpoint_auth_method
                .as_deref()
                .unwrap_or("client_secret_basic"),
        )
        .map_err(usage)?;
        let grants = checked_grants(
            (!self.grant_types.is_empty()).then(|| self.grant_types.clone()),
            true,
        )
        .map_err(usage)?;
        RedirectPolicy::new(&[])
            .check_all(&self.redirect_uris, true)
            .map_err(usage)?;
        Ok(Some((self.redirect_uris.clone(), grants, method)))
    }
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Application id (1-48 letters, digits, '-', '_' or '.'); the client id is derived from it.
    #[arg(long)]
    pub app_id: String,
    /// Human-readable application name.
    #[arg(long)]
    pub app_name: String,
    /// doctor, nurse, patient, admin or system.
    #[arg(long)]
    pub role: String,
    /// Space-separated scopes, e.g. "read:patients read:labs" (SMART aliases such as system/Patient.rs too).
    #[arg(long)]
    pub scopes: String,
    /// The patient a patient client is bound to.
    #[arg(long)]
    pub patient_mrn: Option<String>,
    /// A JWKS file with the client's public keys, for private_key_jwt.
    #[arg(long)]
    pub jwks_file: Option<PathBuf>,
    /// Requests per hour (default 1000).
    #[arg(long)]
    pub rate_limit: Option<i64>,
    #[command(flatten)]
    pub redirects: RedirectArgs,
}

pub(super) fn usage(error: AuthError) -> CliError {
    match error {
        AuthError::Internal(_) => CliError::Failed(anyhow::Error::new(error)),
        AuthError::NotFound(message) => CliError::Failed(anyhow::anyhow!(message)),
        other => CliError::Config(other.to_string()),
    }
}

pub async fn run(store: &Store, command: ClientCommand) -> Result<ExitCode, CliError> {
    store.migrate().await?;
    match command {
        ClientCommand::Register(args) => register(store, args).await,
        ClientCommand::List => {
            let clients = clients::list(store).await.map_err(usage)?;
            println!("{}", pretty(&json!(clients))?);
            Ok(ExitCode::SUCCESS)
        }
        ClientCommand::Disable { client_id } => set_active(store, &client_id, false).await,
        ClientCommand::Enable { client_id } => set_active(store, &client_id, true).await,
        ClientCommand::ApiKey(command) => api_key(store, command).await,
        ClientCommand::SetRedirects(args) => {
            let client_id = parse_client_id(&args.client_id)?;
            let Some((uris, grants, method)) = args.redirects.checked()? else {
                return Err(CliError::Config(
                    "give at least one --redirect-uri".to_owned(),
                ));
            };
            if store.find_client(&client_id).await?.is_none() {
                return Err(CliError::Failed(anyhow::anyhow!("no such client")));
            }
            save_operator_redirects(store, &client_id, &uris, grants.clone(), method)
                .await
                .map_err(usage)?;
            audit(store, "client.set_redirects", &client_id).await?;
            println!(
                "{}",
                pretty(
                    &json!({"client_id": client_id, "redirect_uris": uris, "grant_types": grants,
                               "token_endpoint_auth_method": method.as_str()})
                )?
            );
            Ok(ExitCode::SUCCESS)
        }
        ClientCommand::RotateSecret { client_id } => {
            let client_id = parse_client_id(&client_id)?;
            let secret = clients::rotate_secret(store, &client_id)
                .await
                .map_err(usage)?;
            audit(store, "client.rotate_secret", &client_id).await?;
            println!(
                "{}",
                pretty(&json!({"client_id": client_id, "client_secret": secret.expose()}))?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn register(store: &Store, args: RegisterArgs) -> Result<ExitCode, CliError> {
    let role = Role::parse(&args.role).map_err(|error| CliError::Config(error.to_string()))?;
    let patient_mrn = args
        .patient_mrn
        .as_deref()
        .map(Mrn::parse)
        .transpose()
        .map_err(|error| CliError::Config(error.to_string()))?;
    let jwks = match &args.jwks_file {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|error| {
            CliError::Config(format!(
                "cannot read --jwks-file {}: {error}",
                path.display()
            ))
        })?),
        None => None,
    };
    let redirects = args.redirects.checked()?;
    let registered = clients::register(
        store,
        NewClient {
            app_id: args.app_id,
            app_name: args.app_name,
            role,
            scopes: args.scopes,
            patient_mrn,
            jwks,
            rate_limit: args.rate_limit,
            client_id: None,
        },
    )
    .await
    .map_err(usage)?;
    let mut shown = json!(registered);
    if let Some((uris, grants, method)) = redirects {
        save_operator_redirects(store, &registered.client_id, &uris, grants.clone(), method)
            .await
            .map_err(usage)?;
        shown["redirect_uris"] = json!(uris);
        shown["grant_types"] = json!(grants);
        shown["token_endpoint_auth_method"] = json!(method.as_str());
    }
    audit(store, "client.register", &registered.client_id).await?;
    println!("{}", pretty(&shown)?);
    Ok(ExitCode::SUCCESS)
}

async fn api_key(store: &Store, command: ApiKeyCommand) -> Result<ExitCode, CliError> {
    match command {
        ApiKeyCommand::Create {
            client_id,
            name,
            expires_in_days,
        } => {
            let client_id = parse_client_id(&client_id)?;
            let (info, key) = api_keys::create(store, &client_id, &name, expires_in_days)
                .await
                .map_err(usage)?;
            audit(store, "client.api_key.create", &client_id).await?;
            let mut shown = json!(info);
            shown["api_key"] = json!(key);
            println!("{}", pretty(&shown)?);
        }
        ApiKeyCommand::List { client_id } => {
            let client_id = client_id.as_deref().map(parse_client_id).transpose()?;
            let keys = api_keys::list(store, client_id.as_ref())
                .await
                .map_err(usage)?;
            println!("{}", pretty(&json!(keys))?);
        }
        ApiKeyCommand::Revoke { key_id } => {
            let key = store.find_api_key(&key_id).await?;
            api_keys::revoke(store, &key_id).await.map_err(usage)?;
            if let Some(client_id) = key.and_then(|key| ClientId::parse(&key.client_id).ok()) {
                audit(store, "client.api_key.revoke", &client_id).await?;
            }
            println!("API key {key_id} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_active(store: &Store, client_id: &str, active: bool) -> Result<ExitCode, CliError> {
    let client_id = parse_client_id(client_id)?;
    clients::set_active(store, &client_id, active)
        .await
        .map_err(usage)?;
    let action = if active {
        "client.enable"
    } else {
        "client.disable"
    };
    audit(store, action, &client_id).await?;
    println!(
        "client {client_id} {}",
        if active { "enabled" } else { "disabled" }
    );
    Ok(ExitCode::SUCCESS)
}

fn parse_client_id(raw: &str) -> Result<ClientId, CliError> {
    ClientId::parse(raw).map_err(|error| CliError::Config(error.to_string()))
}

pub(super) fn pretty(value: &serde_json::Value) -> Result<String, CliError> {
    serde_json::to_string_pretty(value).map_err(|error| CliError::Failed(anyhow::Error::new(error)))
}

/// Records an administrative action of the command line in the audit log and waits for it.
pub(super) async fn audit(
    store: &Store,
    action: &str,
    client_id: &ClientId,
) -> Result<(), CliError> {
    let log = AuditLog::start(store.clone(), AuditOptions::default());
    let event = AuditEvent {
        client_id: Some(client_id.as_str().to_owned()),
        ..AuditEvent::new(Transport::Cli, action, Outcome::Success)
    };
    let recorded = log.record(event).await;
    log.shutdown().await;
    recorded.map_err(|error| CliError::Failed(anyhow::Error::new(error)))
}
