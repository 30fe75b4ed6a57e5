//! Configuration: one `Settings` tree built from flags, then environment, then `.env`, then defaults.
//!
//! clap reads flags and their environment fallbacks; `.env` is loaded into the environment first without
//! overriding variables already set, which gives the documented precedence. The earlier system's names
//! (`DATABASE_URL`, `JWT_SECRET_KEY`, `SERVER_HOST`, `SERVER_PORT`, `LOG_LEVEL`) keep working; new settings
//! use the `EHR_MCP_` prefix.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

/// Settings shared by every command.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options (every command)")]
pub struct CommonArgs {
    /// Database URL: `sqlite://ehr_database.db` (default) or `postgres://user@host/db`.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        default_value = "sqlite://ehr_database.db"
    )]
    pub database_url: String,

    /// Log level or filter (`info`, `debug`, `ehr_mcp=debug,info`).
    #[arg(long, global = true, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log format.
    #[arg(long, global = true, env = "EHR_MCP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// Key for the keyed hash that stands in for MRNs in logs (stable tags across restarts and instances).
    /// When unset, a random key per process is used.
    #[arg(
        long,
        global = true,
        env = "EHR_MCP_LOG_HASH_KEY",
        hide_env_values = true
    )]
    pub log_hash_key: Option<SecretString>,

    /// Seconds a request waits for a database connection before failing with the retryable
    /// `unavailable` (HTTP 503) error.
    #[arg(long, global = true, env = "EHR_MCP_DB_ACQUIRE_TIMEOUT_SECONDS", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub db_acquire_timeout_seconds: u64,

    /// Seconds one SQL statement may run while serving (PostgreSQL `statement_timeout`, SQLite busy
    /// timeout) before failing with `unavailable`. Batch commands (import, seed, export, audit) are not
    /// limited.
    #[arg(long, global = true, env = "EHR_MCP_DB_STATEMENT_TIMEOUT_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub db_statement_timeout_seconds: u64,

    /// When a committed transaction (an audit batch with its writes) is on disk. `normal`: SQLite's WAL
    /// with `synchronous=NORMAL` — a power loss may lose the last commits, a crash of the process loses
    /// nothing. `full`: an fsync per group commit (`synchronous=FULL`), so an acknowledged call survives
    /// a power loss too. PostgreSQL always flushes each commit (its `synchronous_commit` default).
    #[arg(long, global = true, env = "EHR_MCP_AUDIT_DURABILITY", value_enum, default_value_t = Durability::Normal)]
    pub audit_durability: Durability,
}

/// See [`CommonArgs::audit_durability`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    Normal,
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Settings of the token service, shared by `serve` and `stdio`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Token service options")]
pub struct AuthArgs {
    /// Public base URL of this server (issuer; the MCP resource is `{this}/mcp`). Default `http://{host}:{port}`.
    #[arg(long, env = "EHR_MCP_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,

    /// Access-token lifetime in seconds.
    #[arg(long, env = "EHR_MCP_TOKEN_TTL_SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(60..=86_400))]
    pub token_ttl_seconds: u64,

    /// Shared HS256 key (the earlier system's mode). When unset, tokens are signed with ES256 keys kept in the database.
    #[arg(long, env = "JWT_SECRET_KEY", hide_env_values = true)]
    pub jwt_secret_key: Option<SecretString>,

    #[command(flatten)]
    pub key_encryption: KeyEncryptionArgs,

    /// Hosts allowed in https redirect URIs of dynamically registered clients and client metadata
    /// documents (comma-separated; loopback http redirects are always allowed, RFC 8252).
    #[arg(
        long,
        env = "EHR_MCP_REDIRECT_HOSTS",
        value_delimiter = ',',
        default_value = "global.consent.azure-apim.net,claude.ai,claude.com,vscode.dev,insiders.vscode.dev"
    )]
    pub redirect_hosts: Vec<String>,

    /// Fetch client metadata documents (CIMD) from private and loopback addresses too (tests, labs).
    #[arg(long, env = "EHR_MCP_CIMD_ALLOW_PRIVATE", default_value_t = false)]
    pub cimd_allow_private: bool,

    /// Refresh-token lifetime in days.
    #[arg(long, env = "EHR_MCP_REFRESH_TTL_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=365))]
    pub refresh_ttl_days: u64,
}

/// Where the key-encryption key (KEK) sealing the private signing keys comes from.
#[derive(Debug, Clone, Default, Args)]
pub struct KeyEncryptionArgs {
    /// Key-encryption key: 32 random bytes as base64 or hex (`ehr-mcp keys generate-kek`). Required
    /// except with `--demo`. Prefer the environment or `--key-encryption-key-file` to a flag.
    #[arg(long, env = "EHR_MCP_KEY_ENCRYPTION_KEY", hide_env_values = true)]
    pub key_encryption_key: Option<SecretString>,

    /// A file holding the key-encryption key (for example a mounted secret); used when
    /// `EHR_MCP_KEY_ENCRYPTION_KEY` is unset.
    #[arg(long, env = "EHR_MCP_KEY_ENCRYPTION_KEY_FILE")]
    pub key_encryption_key_file: Option<std::path::PathBuf>,
}

impl KeyEncryptionArgs {
    /// The configured KEK, if any; an unreadable file or a malformed key is a configuration error.
    pub fn load(
        &self,
    ) -> Result<Option<crate::auth::key_encryption::KeyEncryptionKey>, crate::auth::AuthError> {
        use crate::auth::key_encryption::KeyEncryptionKey;
        if let Some(text) = &self.key_encryption_key {
            return KeyEncryptionKey::parse(text.expose_secret(), "EHR_MCP_KEY_ENCRYPTION_KEY")
                .map(Some);
        }
        let Some(path) = &self.key_encryption_key_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|error| {
            crate::auth::AuthError::Config(format!(
                "cannot read EHR_MCP_KEY_ENCRYPTION_KEY_FILE {}: {error}",
                path.display()
            ))
        })?;
        KeyEncryptionKey::parse(&text, "EHR_MCP_KEY_ENCRYPTION_KEY_FILE").map(Some)
    }

    /// [`Self::load`], refusing a missing KEK unless `demo` (a demo database may keep keys in clear).
    pub fn load_required(
        &self,
        demo: bool,
    ) -> Result<Option<crate::auth::key_encryption::KeyEncryptionKey>, crate::auth::AuthError> {
        match self.load()? {
            None if !demo => Err(crate::auth::AuthError::Config(
                "EHR_MCP_KEY_ENCRYPTION_KEY (or EHR_MCP_KEY_ENCRYPTION_KEY_FILE) is required: it \
                 seals the token signing keys in the database. Generate one with `ehr-mcp keys \
                 generate-kek` and keep it outside the database (only --demo runs without one)"
                    .to_owned(),
            )),
            kek => Ok(kek),
        }
    }
}

impl AuthArgs {
    /// The token service's settings for a server whose public base URL is `public_base_url`. The
    /// key-encryption key is required unless `demo`.
    pub fn auth_settings(
        &self,
        public_base_url: &str,
        demo: bool,
    ) -> Result<crate::auth::AuthSettings, crate::auth::AuthError> {
        let mut settings = crate::auth::AuthSettings::new(
            public_base_url,
            std::time::Duration::from_secs(self.token_ttl_seconds),
            self.jwt_secret_key.clone(),
        )?;
        settings.redirects = crate::auth::registration::RedirectPolicy::new(&self.redirect_hosts);
        settings.cimd_allow_private = self.cimd_allow_private;
        settings.refresh_ttl = std::time::Duration::from_secs(self.refresh_ttl_days * 86_400);
        settings.key_encryption = self.key_encryption.load_required(demo)?;
        Ok(settings)
    }
}

/// Network limits of the server.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Network limits")]
pub struct LimitArgs {
    /// Largest accepted message (HTTP body or WebSocket frame), bytes.
    #[arg(long, env = "EHR_MCP_MAX_MESSAGE_BYTES", default_value_t = 1_048_576, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..=67_108_864))]
    pub max_message_bytes: usize,

    /// Most concurrent connections (HTTP and WebSocket together).
    #[arg(long, env = "EHR_MCP_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_connections: usize,

    /// Most concurrent connections from one IP address (behind a reverse proxy, every client has the
    /// proxy's address: raise this to `EHR_MCP_MAX_CONNECTIONS`).
    #[arg(long, env = "EHR_MCP_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_connections_per_address: usize,

    /// Longest wait for a request's headers, seconds (slowloris); also the wait for a connection's first request.
    #[arg(long, env = "EHR_MCP_HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub header_read_timeout_seconds: u64,

    /// Longest time to receive a request's whole body, seconds, counted from the request's arrival (a
    /// body trickled byte by byte is cut with 408 and the connection closed).
    #[arg(long, env = "EHR_MCP_BODY_READ_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub body_read_timeout_seconds: u64,

    /// Close a WebSocket that has not authenticated (bearer token on the upgrade, the `authenticate`
    /// tool, or a call with a valid `access_token`) within this many seconds of opening.
    #[arg(long, env = "EHR_MCP_UNAUTHENTICATED_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub unauthenticated_timeout_seconds: u64,

    /// Close a WebSocket on which the client sent no message for this many seconds (pings, sent at a
    /// third of it, and pongs do not count).
    #[arg(long, env = "EHR_MCP_IDLE_TIMEOUT_SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout_seconds: u64,

    /// Most time a single request may take, seconds.
    #[arg(long, env = "EHR_MCP_REQUEST_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub request_timeout_seconds: u64,

    /// Deepest JSON nesting accepted in a message.
    #[arg(long, env = "EHR_MCP_MAX_JSON_DEPTH", default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..=128))]
    pub max_json_depth: usize,

    /// Most messages in one JSON-RPC batch (WebSocket); a longer batch is refused whole.
    #[arg(long, env = "EHR_MCP_MAX_BATCH_LENGTH", default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub max_batch_length: usize,

    /// Largest reply to one message (a whole batch reply included), bytes; members past it get an error.
    #[arg(long, env = "EHR_MCP_MAX_REPLY_BYTES", default_value_t = 8_388_608, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(65_536..=268_435_456))]
    pub max_reply_bytes: usize,

    /// Most calls one connection may have unanswered at once; more get an error at once.
    #[arg(long, env = "EHR_MCP_MAX_IN_FLIGHT_CALLS", default_value_t = 128, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub max_in_flight_calls: usize,

    /// Longest time graceful shutdown waits for in-flight work, seconds.
    #[arg(long, env = "EHR_MCP_SHUTDOWN_GRACE_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub shutdown_grace_seconds: u64,
}

impl LimitArgs {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_seconds)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }
}

/// How much one MCP result may hold, shared by `serve` and `stdio`.
#[derive(Debug, Clone, Args)]
pub struct ResultArgs {
    /// Size budget of one tool result, resource or prompt, bytes of JSON (or Markdown); a longer one is
    /// cut at an item boundary and says how to get the rest (default 64 KiB, about 16k tokens).
    #[arg(long, env = "EHR_MCP_RESULT_BUDGET_BYTES", default_value_t = 65_536, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(4_096..=16_777_216))]
    pub result_budget_bytes: usize,
}

/// `EHR_MCP_COMPRESSION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionMode {
    On,
    Off,
}

impl CompressionMode {
    pub fn enabled(self) -> bool {
        self == Self::On
    }
}

/// `ehr-mcp serve` settings.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SERVER_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on (0 picks a free port).
    #[arg(long, env = "SERVER_PORT", default_value_t = 7777)]
    pub port: u16,

    /// Load the demo clients and demo data when the database has none; write their credentials file.
    #[arg(long)]
    pub demo: bool,

    /// Where `--demo` writes the demo clients' credentials (mode 0600).
    #[arg(
        long,
        env = "EHR_MCP_CREDENTIALS_FILE",
        default_value = "oauth_clients_credentials.json"
    )]
    pub credentials_file: PathBuf,

    /// PEM certificate chain; with `--tls-key`, serve https:// and wss://.
    #[arg(long, env = "EHR_MCP_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for `--tls-cert`.
    #[arg(long, env = "EHR_MCP_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Let `/mcp` accept the earlier system's in-band authentication (tool `authenticate`, `access_token` argument).
    #[arg(long, env = "EHR_MCP_HTTP_IN_BAND_AUTH", default_value_t = false, action = clap::ArgAction::Set)]
    pub http_in_band_auth: bool,

    /// Extra allowed `Origin` values for `/mcp` (comma-separated); same-host origins are always allowed.
    #[arg(long, env = "EHR_MCP_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Compression: `permessage-deflate` on WebSocket (when the client offers it) and gzip, br or zstd
    /// HTTP answers and request bodies (by `Accept-Encoding` / `Content-Encoding`); `off` turns all of it off.
    #[arg(long, env = "EHR_MCP_COMPRESSION", value_enum, default_value_t = CompressionMode::On)]
    pub compression: CompressionMode,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub results: ResultArgs,
}

impl ServeArgs {
    /// The public base URL: `EHR_MCP_PUBLIC_URL`, else derived from the listening address.
    pub fn public_base_url(&self, bound_port: u16) -> String {
        match &self.auth.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let scheme = if self.tls_cert.is_some() {
                    "https"
                } else {
                    "http"
                };
                let host = if self.host.contains(':') {
                    format!("[{}]", self.host)
                } else {
                    self.host.clone()
                };
                format!("{scheme}://{host}:{bound_port}")
            }
        }
    }
}

/// `--public-url`: an absolute `http://` or `https://` URL with a host and no query or fragment.
fn parse_public_url(value: &str) -> Result<String, String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or("must start with https:// or http:// (e.g. https://ehr.example.org)")?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err("has no host (e.g. https://ehr.example.org)".to_owned());
    }
    if value.contains(['?', '#', ' ', '@']) {
        return Err("must not contain a query, fragment, user name or spaces".to_owned());
    }
    Ok(value.trim_end_matches('/').to_owned())
}
