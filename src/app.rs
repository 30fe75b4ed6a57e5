//! Startup and shutdown as values: `Application::build` binds (port 0 in tests) and `run_until_stopped`
//! serves until the given future completes. The binary and the tests take the same path.

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::config::ServeArgs;
use crate::store::Store;

/// Shared state of the running server. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
}

pub struct Application {
    listener: tokio::net::TcpListener,
    address: SocketAddr,
    base_url: String,
    router: Router,
    /// Cancelled when the server stops: ends MCP sessions and streams so shutdown can finish.
    shutdown: tokio_util::sync::CancellationToken,
}

impl Application {
    pub async fn build(store: Store, args: ServeArgs) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await?;
        let address = listener.local_addr()?;
        let base_url = args.public_base_url(address.port());
        let shutdown = tokio_util::sync::CancellationToken::new();
        // TEMPORARY (branch mcp): the auth helper's AppState builds the real AuthService and AuditLog.
        let tools = std::sync::Arc::new(crate::tools::ToolServices {
            store: store.clone(),
            auth: std::sync::Arc::new(crate::auth::AuthService),
            audit: std::sync::Arc::new(crate::audit::AuditLog),
        });
        let state = AppState { store };
        let router = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(state)
            .merge(crate::transport::mcp_routes(
                tools,
                &args,
                &base_url,
                shutdown.clone(),
            ));
        Ok(Self {
            listener,
            address,
            base_url,
            router,
            shutdown,
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

    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown({
            let shutdown = self.shutdown.clone();
            async move {
                stop.await;
                shutdown.cancel();
            }
        })
        .await?;
        Ok(())
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "database": "ok"})),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "database": "unreachable"})),
        ),
    }
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
