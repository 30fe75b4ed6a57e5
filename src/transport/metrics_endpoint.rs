//! `GET /metrics`: samples the gauges read at scrape time (database pool, audit queue) and renders every
//! metric in the Prometheus text format.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::telemetry::metrics;

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn metrics(State(state): State<AppState>) -> Response {
    let pool = state.store.pool();
    metrics::set_database_pool(
        pool.size(),
        pool.num_idle(),
        pool.options().get_max_connections(),
    );
    metrics::set_audit_queue_depth(state.audit.queue_depth());
    match metrics::render() {
        Some(text) => ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], text).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed in this process",
        )
            .into_response(),
    }
}
