//! Startup and shutdown as values: `Application::build` binds (port 0 in tests) and `run_until_stopped`
//! serves until the given future completes. The binary and the tests take the same path.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};

use crate::audit::{AuditLog, AuditOptions};
use crate::auth::{AuthError, AuthService, AuthSettings};
use crate::config::ServeArgs;
use crate::store::Store;
use crate::tools::ToolServices;
use crate::transport::limits::{ConnectionLimitAcceptor, NetworkLimits};
use crate::transport::shutdown::Shutdown;

pub use crate::transport::AppState;

/// The composition root: the audit writer, the token service and the store, as every front end (`serve`,
/// `stdio`) runs them. Nothing else constructs these services.
pub async fn start_services(
    store: Store,
    settings: AuthSettings,
) -> Result<ToolServices, AuthError> {
    let audit = AuditLog::start(store.clone(), AuditOptions::default());
    let auth = AuthService::new(store.clone(), audit.clone(), settings).await?;
    Ok(ToolServices {
        store,
        auth,
        audit,
        result_budget: crate::tools::views::ResultBudget::default(),
    })
}

pub struct Application {
    listener: tokio::net::TcpListener,
    address: SocketAddr,
    base_url: String,
    router: Router,
    tls: Option<RustlsConfig>,
    state: AppState,
}

impl Application {
    pub async fn build(store: Store, args: ServeArgs) -> anyhow::Result<Self> {
        crate::telemetry::metrics::install();
        crate::transport::tls::install_crypto_provider();
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(certificate), Some(key)) => {
                Some(crate::transport::tls::server_config(certificate, key)?)
            }
            _ => None,
        };
        let listener = bind(&args.host, args.port).await?;
        let address = listener.local_addr()?;
        let base_url = args.public_base_url(address.port());
        let settings = args.auth.auth_settings(&base_url, args.demo)?;
        let ToolServices {
            store, auth, audit, ..
        } = start_services(store, settings).await?;
        let state = AppState {
            store,
            auth,
            audit,
            limits: Arc::new(NetworkLimits::from_args(&args.limits)),
            shutdown: Shutdown::new(),
        };
        let router = crate::transport::router(&state, &args, &base_url);
        Ok(Self {
            listener,
            address,
            base_url,
            router,
            tls,
            state,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The URL of the bound socket (`http[s]://address:port`), which differs from [`Self::base_url`]
    /// when `--public-url` names a proxy in front.
    pub fn listen_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.address)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `stop` completes, then shuts down gracefully: stops accepting, lets in-flight requests
    /// finish and WebSockets close (with a close frame) within `shutdown_grace_seconds`, flushes the audit
    /// writer and closes the database pool.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            router,
            tls,
            state,
            ..
        } = self;
        let grace = state.limits.shutdown_grace;
        let handle = axum_server::Handle::new();
        let mut server = axum_server::from_tcp(listener.into_std()?)?
            .handle(handle.clone())
            .first_request_timeout(state.limits.header_read_timeout);
        server
            .http_builder()
            .http1()
            .header_read_timeout(state.limits.header_read_timeout);
        let connection_limit = ConnectionLimitAcceptor::new(
            state.limits.max_connections,
            state.limits.max_connections_per_address,
        );
        let make_service = router.into_make_service_with_connect_info::<SocketAddr>();
        let mut serving = match tls {
            Some(config) => tokio::spawn(
                server
                    .acceptor(RustlsAcceptor::new(config).acceptor(connection_limit))
                    .serve(make_service),
            ),
            None => tokio::spawn(server.acceptor(connection_limit).serve(make_service)),
        };
        tokio::select! {
            () = stop => {}
            finished = &mut serving => {
                state.audit.shutdown().await;
                finished??;
                return Ok(());
            }
        }
        tracing::info!(
            grace_seconds = grace.as_secs_f64(),
            "shutting down: no new connections, finishing in-flight requests"
        );
        let started = Instant::now();
        state.shutdown.begin();
        handle.graceful_shutdown(Some(grace));
        serving.await??;
        let remaining = grace.saturating_sub(started.elapsed());
        if !state.shutdown.wait_for_connections(remaining).await {
            tracing::warn!(
                open = state.shutdown.open_connections(),
                "WebSocket connections still open after the grace period; closing them"
            );
        }
        // Every in-flight request has finished: commit the audit rows still queued.
        state.audit.shutdown().await;
        match tokio::time::timeout(grace.max(Duration::from_secs(1)), state.store.close()).await {
            Err(_) => tracing::warn!("database connections still busy after the grace period"),
            Ok(Err(error)) => tracing::warn!(%error, "closing the database failed"),
            Ok(Ok(())) => {}
        }
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "shutdown complete"
        );
        Ok(())
    }
}

/// Binds the listener; a failure names the address and the settings that choose it.
async fn bind(host: &str, port: u16) -> anyhow::Result<tokio::net::TcpListener> {
    let shown = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    tokio::net::TcpListener::bind((host, port))
        .await
        .map_err(|error| {
            let hint = match error.kind() {
                std::io::ErrorKind::AddrInUse => {
                    "another process is listening there; stop it or choose another port with --port or \
                     SERVER_PORT"
                }
                std::io::ErrorKind::PermissionDenied => {
                    "ports below 1024 need privileges; choose another with --port or SERVER_PORT"
                }
                _ => {
                    "--host / SERVER_HOST must be an address or name of this machine, e.g. 127.0.0.1 \
                     or 0.0.0.0"
                }
            };
            anyhow::anyhow!("cannot listen on {shown}: {error}; {hint}")
        })
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
