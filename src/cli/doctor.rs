//! `ehr-mcp doctor`: checks the settings `serve` would use (same flags, environment and `.env`) and says
//! what is wrong and how to fix it — the listen address, the database (reachable, writable, migrations),
//! files holding secrets, and the public URL against TLS. Exit 0 when nothing fails (warnings allowed),
//! 1 when a check fails.
//!
//! It changes nothing, with one exception shared with every command that opens the database: a SQLite
//! file readable by other users is set to 0600 (the store does that on open, and the report says so).

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;

use crate::config::{CommonArgs, ServeArgs};
use crate::store::{Store, StoreOptions};

use super::CliError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

/// One line of the report, and what to do about it.
#[derive(Debug)]
struct Finding {
    level: Level,
    what: String,
    fix: Option<String>,
}

#[derive(Debug, Default)]
struct Report {
    findings: Vec<Finding>,
}

impl Report {
    fn ok(&mut self, what: impl Into<String>) {
        self.push(Level::Ok, what.into(), None);
    }

    fn warn(&mut self, what: impl Into<String>, fix: impl Into<String>) {
        self.push(Level::Warn, what.into(), Some(fix.into()));
    }

    fn fail(&mut self, what: impl Into<String>, fix: impl Into<String>) {
        self.push(Level::Fail, what.into(), Some(fix.into()));
    }

    fn push(&mut self, level: Level, what: String, fix: Option<String>) {
        self.findings.push(Finding { level, what, fix });
    }

    fn failures(&self) -> usize {
        self.count(Level::Fail)
    }

    fn count(&self, level: Level) -> usize {
        self.findings
            .iter()
            .filter(|finding| finding.level == level)
            .count()
    }

    fn render(&self) -> String {
        let mut text = String::new();
        for finding in &self.findings {
            let label = match finding.level {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            let _ = writeln!(text, "{label}  {}", finding.what);
            if let Some(fix) = &finding.fix {
                let _ = writeln!(text, "      fix: {fix}");
            }
        }
        let (failures, warnings) = (self.failures(), self.count(Level::Warn));
        let _ = match (failures, warnings) {
            (0, 0) => writeln!(text, "no problems found"),
            (0, w) => writeln!(text, "no problems found, {w} warning(s)"),
            (f, w) => writeln!(text, "{f} problem(s) found, {w} warning(s)"),
        };
        text
    }
}

pub async fn doctor(common: &CommonArgs, args: ServeArgs) -> Result<ExitCode, CliError> {
    let mut report = Report::default();
    check_listen_address(&args, &mut report).await;
    check_database(common, &mut report).await;
    check_public_url_and_tls(&args, &mut report);
    check_secret_files(&args, &mut report);
    print!("{}", report.render());
    Ok(if report.failures() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn check_listen_address(args: &ServeArgs, report: &mut Report) {
    let address = format!("{}:{}", host_for_address(&args.host), args.port);
    if args.port == 0 {
        report.ok(format!(
            "listen address {address}: port 0, a free port is picked at start"
        ));
        return;
    }
    let error = match std::net::TcpListener::bind(&address) {
        Ok(listener) => {
            drop(listener);
            report.ok(format!("listen address {address} is free"));
            return;
        }
        Err(error) => error,
    };
    match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            let probe = super::healthcheck::HealthcheckArgs {
                host: args.host.clone(),
                port: args.port,
                timeout_seconds: 2,
                tls_cert: args.tls_cert.clone(),
            };
            let answers = args.tls_cert.is_none()
                && tokio::time::timeout(
                    std::time::Duration::from_secs(2),
                    super::healthcheck::probe(&probe),
                )
                .await
                .is_ok_and(|outcome| outcome.is_ok());
            let who = if answers {
                " by a server answering /healthz (is ehr-mcp already running?)"
            } else {
                " by another program"
            };
            report.fail(
                format!("listen address {address} is in use{who}"),
                format!(
                    "stop that process, or choose another port with --port or SERVER_PORT \
                     (e.g. --port {})",
                    args.port.saturating_add(1)
                ),
            );
        }
        std::io::ErrorKind::AddrNotAvailable => report.fail(
            format!(
                "cannot listen on {address}: {} is not an address of this machine",
                args.host
            ),
            "set --host or SERVER_HOST to one of this machine's addresses (127.0.0.1, or 0.0.0.0 \
             for all)",
        ),
        std::io::ErrorKind::PermissionDenied => report.fail(
            format!("cannot listen on {address}: permission denied"),
            "ports below 1024 need privileges: use a port of 1024 or more (--port or SERVER_PORT) \
             behind a proxy, or grant CAP_NET_BIND_SERVICE",
        ),
        _ => report.fail(
            format!("cannot listen on {address}: {error}"),
            "check --host / SERVER_HOST and --port / SERVER_PORT",
        ),
    }
}

fn host_for_address(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

async fn check_database(common: &CommonArgs, report: &mut Report) {
    let url = &common.database_url;
    if let Some(path) = crate::store::open::sqlite_path(url) {
        if !path.exists() {
            if let Err(error) = crate::store::open::check_sqlite_directory(url) {
                report.fail(format!("database: {error}"), "see above");
                return;
            }
            match directory_is_writable(&path) {
                Ok(()) => {
                    report.ok(format!(
                        "database file {} does not exist yet; `ehr-mcp migrate` or `ehr-mcp serve` \
                         creates it",
                        path.display()
                    ));
                    report.warn(
                        "migrations: none applied yet (no database)",
                        "run `ehr-mcp migrate` (serve also applies pending migrations at start)",
                    );
                }
                Err(error) => report.fail(
                    format!(
                        "cannot create the database file {} here: {error}",
                        path.display()
                    ),
                    "make its directory writable by this user, or point DATABASE_URL / \
                     --database-url elsewhere",
                ),
            }
            return;
        }
        if let Ok(metadata) = std::fs::metadata(&path)
            && metadata.permissions().mode() & 0o077 != 0
        {
            report.warn(
                format!(
                    "database file {} was readable by other users (mode {:04o}); it holds \
                     signing keys and patient data — opening it set it to 0600",
                    path.display(),
                    metadata.permissions().mode() & 0o7777
                ),
                format!("keep it 0600 (chmod 600 {})", path.display()),
            );
        }
    }
    let store = match Store::connect(&StoreOptions::new(url.clone())).await {
        Ok(store) => store,
        Err(error) => {
            report.fail(
                format!("database unreachable: {}", with_causes(&error)),
                "check DATABASE_URL / --database-url and that the database server runs",
            );
            return;
        }
    };
    report.ok(format!("database answers ({:?})", store.engine()));
    match store.check_writable().await {
        Ok(()) => report.ok("database accepts writes"),
        Err(error) => report.fail(
            format!("database does not accept writes: {}", with_causes(&error)),
            match store.engine() {
                crate::store::Engine::Sqlite => {
                    "make the database file and its directory writable by this user (SQLite writes \
                     -wal and -shm files beside it), and do not open it with mode=ro"
                }
                crate::store::Engine::Postgres => {
                    "connect to the primary server (not a standby or read-only replica) as a role \
                     that may create tables in the schema"
                }
            },
        ),
    }
    match store.migration_status().await {
        Err(error) => report.fail(
            format!("cannot read the migrations: {}", with_causes(&error)),
            "check that DATABASE_URL names an ehr-mcp database",
        ),
        Ok(status) => {
            if !status.unknown.is_empty() {
                report.fail(
                    format!(
                        "the database has migrations this binary does not know (versions {:?}): a \
                         newer ehr-mcp migrated it",
                        status.unknown
                    ),
                    "run the newer ehr-mcp, or restore a backup taken with this version",
                );
            }
            if !status.changed.is_empty() {
                report.fail(
                    format!(
                        "applied migrations differ from this binary's or failed half-way: {}",
                        status.changed.join(", ")
                    ),
                    "use the ehr-mcp release that applied them; a failed one needs its partial \
                     changes undone from a backup",
                );
            }
            match (status.applied, status.pending.len()) {
                (_, 0) if status.unknown.is_empty() && status.changed.is_empty() => {
                    report.ok(format!("migrations: all {} applied", status.applied));
                }
                (_, 0) => {}
                (0, pending) => report.warn(
                    format!("migrations: none applied ({pending} pending, an empty database)"),
                    "run `ehr-mcp migrate` (serve also applies pending migrations at start)",
                ),
                (_, _) => report.warn(
                    format!("migrations pending: {}", status.pending.join(", ")),
                    "run `ehr-mcp migrate` (serve also applies pending migrations at start)",
                ),
            }
        }
    }
    let _ = store.close().await;
}

/// Creates and removes a probe file beside `database`.
fn directory_is_writable(database: &Path) -> std::io::Result<()> {
    let directory = match database.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let probe = directory.join(format!(".ehr-mcp-doctor-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

fn check_public_url_and_tls(args: &ServeArgs, report: &mut Report) {
    let tls = args.tls_cert.is_some();
    if let (Some(certificate), Some(key)) = (&args.tls_cert, &args.tls_key) {
        match crate::transport::tls::server_config(certificate, key) {
            Ok(_) => report.ok("TLS certificate and key load and match"),
            Err(error) => report.fail(
                format!("TLS: {error}"),
                "point --tls-cert / EHR_MCP_TLS_CERT and --tls-key / EHR_MCP_TLS_KEY at a PEM \
                 certificate chain and its private key",
            ),
        }
        check_private_file(report, "TLS private key", key);
    }
    let public = args.public_base_url(args.port);
    if let Err(error) = args.auth.auth_settings(&public, args.demo) {
        report.fail(
            format!("token service settings: {error}"),
            "fix the setting named above",
        );
    }
    let scheme_is_https = public.starts_with("https://");
    let host = url_host(&public);
    if args.auth.public_url.is_none() && matches!(args.host.as_str(), "0.0.0.0" | "::" | "[::]") {
        report.fail(
            format!(
                "the public URL (token issuer and audience) defaults to {public}, which no client \
                 can reach"
            ),
            "set --public-url or EHR_MCP_PUBLIC_URL to the address clients use, e.g. \
             https://ehr.example.org",
        );
    } else if tls && !scheme_is_https {
        report.fail(
            format!("the public URL {public} is http:// but this server serves TLS only"),
            "set --public-url / EHR_MCP_PUBLIC_URL to the https:// address",
        );
    } else if !tls && scheme_is_https {
        report.ok(format!(
            "public URL {public}; no --tls-cert here, so a TLS proxy in front must forward to \
             port {}",
            args.port
        ));
    } else if !tls && !is_loopback(host) {
        report.warn(
            format!(
                "the public URL {public} is plain http on a non-loopback host: tokens and \
                 patient data cross the network unencrypted"
            ),
            "serve TLS (--tls-cert and --tls-key) or put a TLS proxy in front and set \
             --public-url https://…",
        );
    } else {
        report.ok(format!("public URL {public}"));
    }
}

/// The host of an `http(s)://host[:port]/…` URL, without brackets or port.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    if let Some(bracketed) = authority.strip_prefix('[') {
        return bracketed.split(']').next().unwrap_or_default();
    }
    authority.split(':').next().unwrap_or_default()
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

fn check_secret_files(args: &ServeArgs, report: &mut Report) {
    let credentials = &args.credentials_file;
    if credentials.exists() {
        check_private_file(report, "demo credentials file", credentials);
    } else if args.demo {
        report.ok(format!(
            "demo credentials file {} does not exist yet; serve --demo writes it (mode 0600)",
            credentials.display()
        ));
    }
    let dotenv = Path::new(".env");
    let holds_secret = std::fs::read_to_string(dotenv).is_ok_and(|text| {
        text.lines().any(|line| {
            let name = line.trim_start().trim_start_matches("export ");
            [
                "JWT_SECRET_KEY",
                "EHR_MCP_CLIENT_SECRET",
                "EHR_MCP_LOG_HASH_KEY",
                "DATABASE_URL",
            ]
            .iter()
            .any(|secret| name.starts_with(&format!("{secret}=")))
        })
    });
    if holds_secret {
        check_private_file(report, ".env file", dotenv);
    }
}

/// A file holding secrets must not be readable by group or others.
fn check_private_file(report: &mut Report, what: &str, path: &Path) {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.permissions().mode() & 0o077 != 0 => report.fail(
            format!(
                "{what} {} is readable by other users (mode {:04o})",
                path.display(),
                metadata.permissions().mode() & 0o7777
            ),
            format!("chmod 600 {}", path.display()),
        ),
        Ok(_) => report.ok(format!(
            "{what} {} is readable by its owner only",
            path.display()
        )),
        Err(error) => report.fail(
            format!("cannot read {what} {}: {error}", path.display()),
            "check the path and its permissions",
        ),
    }
}

/// An error and its sources on one line (the store's own messages name no secrets or values).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_urls_and_loopback() {
        assert_eq!(
            url_host("https://ehr.example.org:8443/x"),
            "ehr.example.org"
        );
        assert_eq!(url_host("http://[::1]:7777"), "::1");
        assert!(is_loopback("127.0.0.1") && is_loopback("::1") && is_loopback("localhost"));
        assert!(!is_loopback("10.0.0.5"));
    }
}
