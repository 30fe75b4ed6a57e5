//! `ehr-mcp healthcheck`: asks a running server's `/healthz` and exits 0 if it answers 200 — for container
//! HEALTHCHECKs and probes on images without curl. With TLS configured it checks that the port accepts
//! connections (the certificate is the client's business, not the probe's).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::CliError;

/// `ehr-mcp healthcheck` settings.
#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// Address of the server to check.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Port of the server to check.
    #[arg(long, env = "SERVER_PORT", default_value_t = 7777)]
    pub port: u16,

    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub timeout_seconds: u64,

    /// Set when the server serves TLS (`EHR_MCP_TLS_CERT`): then only the TCP connection is checked.
    #[arg(long, env = "EHR_MCP_TLS_CERT", hide = true)]
    pub tls_cert: Option<std::path::PathBuf>,
}

pub async fn healthcheck(args: HealthcheckArgs) -> Result<ExitCode, CliError> {
    let timeout = Duration::from_secs(args.timeout_seconds);
    match tokio::time::timeout(timeout, probe(&args)).await {
        Ok(Ok(())) => {
            println!("healthy");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Err(reason)) => {
            eprintln!("unhealthy: {reason}");
            Ok(ExitCode::from(1))
        }
        Err(_) => {
            eprintln!("unhealthy: no answer within {} s", args.timeout_seconds);
            Ok(ExitCode::from(1))
        }
    }
}

pub(super) async fn probe(args: &HealthcheckArgs) -> Result<(), String> {
    let mut stream = TcpStream::connect((args.host.as_str(), args.port))
        .await
        .map_err(|error| format!("cannot connect to {}:{}: {error}", args.host, args.port))?;
    if args.tls_cert.is_some() {
        return Ok(());
    }
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n\r\n",
        args.host, args.port
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|error| format!("cannot send the request: {error}"))?;
    let mut head = [0u8; 32];
    let read = stream
        .read(&mut head)
        .await
        .map_err(|error| format!("cannot read the answer: {error}"))?;
    let status_line = String::from_utf8_lossy(&head[..read]);
    let status = status_line.split_whitespace().nth(1).unwrap_or("none");
    if status == "200" {
        Ok(())
    } else {
        Err(format!("/healthz answered status {status}"))
    }
}
