//! Startup and shutdown as values: `Application::build` binds (port 0 in tests) and `run_until_stopped`
//! serves until the given future completes. The binary and the tests take the same path.

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::audit::{AuditLog, AuditOptions};
use crate::auth::{AuthService, AuthSettings};
use crate::config::ServeArgs;
use crate::store::Store;

/// Shared state of the running server. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub auth: AuthService,
    pub audit: AuditLog,
}

pub struct Application {
    listener: tokio::net::TcpListener,
    address: SocketAddr,
    base_url: String,
    router: Router,
    state: AppState,
}

impl Application {
    pub async fn build(store: Store, args: ServeArgs) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await?;
        let address = listener.local_addr()?;
        let base_url = args.public_base_url(address.port());
        let audit = AuditLog::start(store.clone(), AuditOptions::default());
        let settings = AuthSettings::new(&base_url, &args.auth)?;
        let auth = AuthService::new(store.clone(), audit.clone(), settings).await?;
        let state = AppState { store, auth, audit };
        let router = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(state.clone())
            .merge(crate::transport::oauth::router(state.auth.clone()));
        Ok(Self {
            listener,
            address,
            base_url,
            router,
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

    pub fn state(&self) -> &AppState {
        &self.state
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
        .with_graceful_shutdown(stop)
        .await?;
        // Every in-flight request has finished: commit the audit rows still queued.
        self.state.audit.shutdown().await;
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
