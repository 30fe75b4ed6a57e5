//! `ehr-mcp serve`: migrate, optionally load demo data, then run the application until a signal.

use std::process::ExitCode;

use crate::app::Application;
use crate::config::{CommonArgs, ServeArgs};

use super::{CliError, open_store};

pub async fn serve(common: &CommonArgs, args: ServeArgs) -> Result<ExitCode, CliError> {
    // Check the auth settings first: a bad one is a configuration error (exit 2), not a failure.
    args.auth
        .auth_settings(&args.public_base_url(args.port), args.demo)
        .map_err(|error| CliError::Config(error.to_string()))?;
    // Unusable TLS files are a configuration error (exit 2), found before anything else starts.
    if let (Some(certificate), Some(key)) = (&args.tls_cert, &args.tls_key) {
        crate::transport::tls::server_config(certificate, key)
            .map_err(|error| CliError::Config(error.to_string()))?;
    }
    let store = open_store(common).await?;
    store.migrate().await?;
    if args.demo {
        let outcome = crate::auth::demo::ensure_demo_clients(&store, &args.credentials_file)
            .await
            .map_err(|error| CliError::Failed(anyhow::Error::new(error)))?;
        eprintln!("{}", outcome.message());
        let users_file = crate::auth::demo::demo_users_path(&args.credentials_file);
        let note = crate::auth::demo::ensure_demo_users(&store, &users_file)
            .await
            .map_err(|error| CliError::Failed(anyhow::Error::new(error)))?;
        eprintln!("{note}");
    }
    if args.demo
        && crate::dataset::demo::load_demo_data_if_empty(&store)
            .await
            .map_err(|error| CliError::Failed(anyhow::Error::new(error)))?
    {
        eprintln!("demo data loaded (patients MRN001-MRN030)");
    }
    let application = Application::build(store, args).await?;
    eprintln!("{}", banner(&application));
    application
        .run_until_stopped(crate::app::shutdown_signal())
        .await?;
    Ok(ExitCode::SUCCESS)
}

/// What `serve` prints once listening: the bound address (first line, read by scripts and tests), then
/// the URLs clients use, built from the public URL.
fn banner(application: &Application) -> String {
    let public = application.base_url();
    let websocket = public
        .strip_prefix("https://")
        .map(|rest| format!("wss://{rest}"))
        .or_else(|| {
            public
                .strip_prefix("http://")
                .map(|rest| format!("ws://{rest}"))
        })
        .unwrap_or_else(|| public.to_owned());
    let mut banner = format!(
        "ehr-mcp listening on {}\n  MCP (Streamable HTTP): {public}/mcp\n  MCP (WebSocket):       \
         {websocket}/ws\n  OAuth token endpoint:  {public}/oauth/token\n  Sign-in (browser):     \
         {public}/oauth/authorize (people; see docs/CLIENTS.md)",
        application.listen_url()
    );
    if public != application.listen_url() {
        banner.push_str(&format!("\n  public URL (issuer):   {public}"));
    }
    banner
}
