//! `GET /healthz` (the process answers) and `GET /readyz` (the database answers: 200, else 503 with
//! `Retry-After`, within [`READY_WITHIN`] even when the database hangs or is down).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// The longest `/readyz` waits for the database: a load balancer's probe gets its answer in under 1 s.
pub const READY_WITHIN: Duration = Duration::from_millis(500);

pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping(READY_WITHIN).await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "database": "ok"})),
        )
            .into_response(),
        Err(_) => {
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "database": "unreachable"})),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}
