//! `ehr-mcp stdio`: MCP over stdin/stdout for desktop clients (Claude Desktop, VS Code). Logs go to
//! stderr only. Identity from `EHR_MCP_CLIENT_ID` + `EHR_MCP_CLIENT_SECRET` (a token is issued, and
//! re-issued when it expires) or `EHR_MCP_ACCESS_TOKEN`; without them the client authenticates in-band.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use rmcp::ServiceExt;
use secrecy::{ExposeSecret, SecretString};

use super::{CliError, open_store};
use crate::config::{AuthArgs, CommonArgs, ResultArgs};
use crate::domain::origin::Transport;
use crate::tools::{ClientCredentials, EhrServer, Session, ToolServices};

/// The issuer when `EHR_MCP_PUBLIC_URL` is unset: `serve`'s default address.
const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:7777";

/// `ehr-mcp stdio` settings.
#[derive(Debug, Clone, Args)]
pub struct StdioArgs {
    /// OAuth client id this session acts as (with `EHR_MCP_CLIENT_SECRET`).
    #[arg(long, env = "EHR_MCP_CLIENT_ID", requires = "client_secret")]
    pub client_id: Option<String>,

    /// The client's secret.
    #[arg(long, env = "EHR_MCP_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<SecretString>,

    /// An access token to act with instead of client credentials.
    #[arg(
        long,
        env = "EHR_MCP_ACCESS_TOKEN",
        hide_env_values = true,
        conflicts_with = "client_id"
    )]
    pub access_token: Option<SecretString>,

    /// A demo database (made by `serve --demo`): its signing keys may stay unsealed, so no
    /// key-encryption key is needed. Never for real patient data.
    #[arg(long, env = "EHR_MCP_DEMO")]
    pub demo: bool,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub results: ResultArgs,
}

pub async fn stdio(common: &CommonArgs, args: StdioArgs) -> Result<ExitCode, CliError> {
    let store = open_store(common).await?;
    store.migrate().await?;
    let tools = Arc::new(ToolServices {
        result_budget: crate::tools::views::ResultBudget::new(args.results.result_budget_bytes),
        ..build_tool_services(store, &args.auth, args.demo).await?
    });
    let session = session_from(&args)?;
    if args.client_id.is_some() || args.access_token.is_some() {
        check_identity(&tools, &session).await?;
    }
    let server = EhrServer::new(tools.clone(), Arc::new(session));
    tracing::info!("serving MCP on stdio");
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|error| CliError::Failed(anyhow::anyhow!("MCP session did not start: {error}")))?;
    let _ = running.waiting().await;
    tools.audit.shutdown().await;
    tools.store.close().await?;
    Ok(ExitCode::SUCCESS)
}

fn session_from(args: &StdioArgs) -> Result<Session, CliError> {
    match (&args.client_id, &args.client_secret, &args.access_token) {
        (Some(client_id), Some(secret), _) => Ok(Session::with_client_credentials(
            Transport::Stdio,
            ClientCredentials {
                client_id: client_id.clone(),
                client_secret: secret.clone(),
            },
        )),
        (Some(_), None, _) => Err(CliError::Config(
            "EHR_MCP_CLIENT_ID is set but EHR_MCP_CLIENT_SECRET is not".to_owned(),
        )),
        (None, _, Some(token)) => Ok(Session::with_token(
            Transport::Stdio,
            token.expose_secret().to_owned(),
        )),
        (None, _, None) => Ok(Session::anonymous(Transport::Stdio)),
    }
}

/// Fails fast (exit 2) when the configured identity does not authenticate.
async fn check_identity(tools: &ToolServices, session: &Session) -> Result<(), CliError> {
    session
        .resolve(&tools.auth, None, None)
        .await
        .map(|_| ())
        .map_err(|error| {
            CliError::Config(format!(
                "EHR_MCP_CLIENT_ID/EHR_MCP_CLIENT_SECRET or EHR_MCP_ACCESS_TOKEN do not authenticate: {error}"
            ))
        })
}

/// The services `serve` runs, from the one composition root ([`crate::app::start_services`]). The issuer
/// is `EHR_MCP_PUBLIC_URL`, else the default address of `serve`, so tokens from a local server validate here too.
async fn build_tool_services(
    store: crate::store::Store,
    auth_args: &AuthArgs,
    demo: bool,
) -> Result<ToolServices, CliError> {
    let public_base_url = auth_args.public_url.as_deref().map_or_else(
        || DEFAULT_PUBLIC_URL.to_owned(),
        |url| url.trim_end_matches('/').to_owned(),
    );
    let settings = auth_args
        .auth_settings(&public_base_url, demo)
        .map_err(|error| CliError::Config(error.to_string()))?;
    crate::app::start_services(store, settings)
        .await
        .map_err(|error| {
            CliError::Failed(anyhow::anyhow!("cannot start the token service: {error}"))
        })
}
