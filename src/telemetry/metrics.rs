//! Prometheus metrics: one process-wide recorder and the named functions the other layers call.
//!
//! Label values come from code, never from input (a tool label is a registered tool name or `unknown`), so
//! the number of series stays bounded. Gauges of the database pool and the audit queue are sampled when
//! `/metrics` is scraped. Without an installed recorder (CLI commands) every call is a no-op.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const REQUESTS_TOTAL: &str = "ehr_mcp_requests_total";
pub const REQUEST_DURATION: &str = "ehr_mcp_request_duration_seconds";
pub const CONNECTIONS_OPEN: &str = "ehr_mcp_connections_open";
pub const CONNECTIONS_TOTAL: &str = "ehr_mcp_connections_total";
pub const TCP_CONNECTIONS_OPEN: &str = "ehr_mcp_tcp_connections_open";
pub const TOKENS_ISSUED: &str = "ehr_mcp_tokens_issued_total";
pub const TOKENS_REFUSED: &str = "ehr_mcp_tokens_refused_total";
pub const RATE_LIMITED: &str = "ehr_mcp_rate_limited_total";
pub const LIMIT_REJECTIONS: &str = "ehr_mcp_limit_rejections_total";
pub const HTTP_REQUESTS: &str = "ehr_mcp_http_requests_total";
pub const HTTP_DURATION: &str = "ehr_mcp_http_request_duration_seconds";
pub const DB_POOL_SIZE: &str = "ehr_mcp_db_pool_connections";
pub const DB_POOL_IDLE: &str = "ehr_mcp_db_pool_idle_connections";
pub const DB_POOL_MAX: &str = "ehr_mcp_db_pool_max_connections";
pub const AUDIT_QUEUE_DEPTH: &str = "ehr_mcp_audit_queue_depth";
pub const AUDIT_ROWS: &str = "ehr_mcp_audit_rows_total";
pub const AUDIT_REFUSALS: &str = "ehr_mcp_audit_refusals_aggregated_total";
pub const BUILD_INFO: &str = "ehr_mcp_build_info";
pub const WIRE_BYTES: &str = "ehr_mcp_wire_bytes_total";
pub const UNCOMPRESSED_BYTES: &str = "ehr_mcp_uncompressed_bytes_total";

/// Latency buckets, seconds: from half a millisecond (a cached read) to ten seconds (a stuck database).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histograms are compacted when nobody scrapes (bounds their memory).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder once per process (idempotent: many applications in one test process
/// share it) and describes every metric. Returns `false` if another recorder was installed first.
pub fn install() -> bool {
    HANDLE.get_or_init(build_and_install).is_some()
}

fn build_and_install() -> Option<PrometheusHandle> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
        .ok()?;
    let handle = match builder.install_recorder() {
        Ok(handle) => handle,
        Err(error) => {
            tracing::warn!(%error, "metrics recorder not installed; /metrics will be empty");
            return None;
        }
    };
    describe_all();
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "metrics upkeep thread not started; histograms compact at scrape only");
    }
    Some(handle)
}

fn describe_all() {
    describe_counter!(
        REQUESTS_TOTAL,
        "MCP tool calls, by transport (websocket, streamable_http, stdio), tool and outcome."
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Latency of MCP tool calls, by transport and tool."
    );
    describe_gauge!(
        CONNECTIONS_OPEN,
        "Open MCP connections or sessions, by transport."
    );
    describe_counter!(
        CONNECTIONS_TOTAL,
        "MCP connections or sessions opened since start, by transport."
    );
    describe_gauge!(
        TCP_CONNECTIONS_OPEN,
        "Accepted TCP connections currently open (HTTP, WebSocket, TLS), counted against EHR_MCP_MAX_CONNECTIONS."
    );
    describe_counter!(TOKENS_ISSUED, "Access tokens issued by /oauth/token.");
    describe_counter!(
        TOKENS_REFUSED,
        "Token requests or presented tokens refused, by reason."
    );
    describe_counter!(RATE_LIMITED, "Calls refused by a rate limit, by kind.");
    describe_counter!(
        LIMIT_REJECTIONS,
        "Requests or connections refused by a network limit (body_too_large, too_many_connections, \
         request_timeout, json_too_deep, message_too_large, idle_timeout)."
    );
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to the response head of HTTP requests, by route."
    );
    describe_gauge!(
        DB_POOL_SIZE,
        "Database pool connections (idle and in use), sampled at scrape."
    );
    describe_gauge!(
        DB_POOL_IDLE,
        "Idle database pool connections, sampled at scrape."
    );
    describe_gauge!(DB_POOL_MAX, "Largest allowed database pool size.");
    describe_gauge!(
        AUDIT_QUEUE_DEPTH,
        "Audit events waiting for the audit writer, sampled at scrape."
    );
    describe_counter!(
        AUDIT_ROWS,
        "Audit rows committed to the hash-chained audit log."
    );
    describe_counter!(
        AUDIT_REFUSALS,
        "Unauthenticated refusals counted into aggregated audit rows."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the version label names the build.");
    describe_counter!(
        WIRE_BYTES,
        Unit::Bytes,
        "Message and body bytes as sent or received on the wire (compressed when compression was \
         negotiated), by transport (http, websocket) and direction (in, out)."
    );
    describe_counter!(
        UNCOMPRESSED_BYTES,
        Unit::Bytes,
        "The same messages and bodies before compression or after decompression, by transport and \
         direction."
    );
}

/// The Prometheus text exposition of every metric, or `None` when no recorder is installed.
pub fn render() -> Option<String> {
    let handle = HANDLE.get()?.as_ref()?;
    handle.run_upkeep();
    Some(handle.render())
}

/// One MCP tool call finished. `tool` must be a registered tool name (or `unknown`); `outcome` is `success`
/// or the tool error's code (`ToolError::code`: `unauthenticated`, `forbidden`, `not_found`, …).
pub fn record_request(
    transport: &'static str,
    tool: &str,
    outcome: &'static str,
    latency: Duration,
) {
    counter!(REQUESTS_TOTAL, "transport" => transport, "tool" => tool.to_owned(), "outcome" => outcome)
        .increment(1);
    histogram!(REQUEST_DURATION, "transport" => transport, "tool" => tool.to_owned())
        .record(latency.as_secs_f64());
}

/// An MCP connection (WebSocket) or session (Streamable HTTP, stdio) opened.
pub fn connection_opened(transport: &'static str) {
    gauge!(CONNECTIONS_OPEN, "transport" => transport).increment(1.0);
    counter!(CONNECTIONS_TOTAL, "transport" => transport).increment(1);
}

/// The connection or session counted by [`connection_opened`] closed.
pub fn connection_closed(transport: &'static str) {
    gauge!(CONNECTIONS_OPEN, "transport" => transport).decrement(1.0);
}

/// Counts an MCP connection while it lives: opened now, closed on drop (also on early return or panic).
#[derive(Debug)]
pub struct OpenConnection {
    transport: &'static str,
}

impl OpenConnection {
    pub fn open(transport: &'static str) -> Self {
        connection_opened(transport);
        Self { transport }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        connection_closed(self.transport);
    }
}

/// Counts bytes on the wire and uncompressed for one transport, both directions; the counter handles are
/// resolved once (per connection or request), then each count is one atomic add.
#[derive(Clone)]
pub struct ByteCounters {
    wire_in: metrics::Counter,
    wire_out: metrics::Counter,
    uncompressed_in: metrics::Counter,
    uncompressed_out: metrics::Counter,
}

impl ByteCounters {
    /// `transport` is `http` or `websocket`.
    pub fn new(transport: &'static str) -> Self {
        Self {
            wire_in: counter!(WIRE_BYTES, "transport" => transport, "direction" => "in"),
            wire_out: counter!(WIRE_BYTES, "transport" => transport, "direction" => "out"),
            uncompressed_in: counter!(UNCOMPRESSED_BYTES, "transport" => transport, "direction" => "in"),
            uncompressed_out: counter!(UNCOMPRESSED_BYTES, "transport" => transport, "direction" => "out"),
        }
    }

    pub fn wire_in(&self, bytes: usize) {
        self.wire_in.increment(bytes as u64);
    }

    pub fn wire_out(&self, bytes: usize) {
        self.wire_out.increment(bytes as u64);
    }

    pub fn uncompressed_in(&self, bytes: usize) {
        self.uncompressed_in.increment(bytes as u64);
    }

    pub fn uncompressed_out(&self, bytes: usize) {
        self.uncompressed_out.increment(bytes as u64);
    }
}

/// `/oauth/token` issued an access token.
pub fn token_issued() {
    counter!(TOKENS_ISSUED).increment(1);
}

/// A token request or a presented token was refused; `reason` is the OAuth error code (`invalid_client`,
/// `invalid_scope`, …; `invalid_token` for a presented token that is garbage, expired or revoked).
pub fn token_refused(reason: &'static str) {
    counter!(TOKENS_REFUSED, "reason" => reason).increment(1);
}

/// A call was refused by a rate limit; `kind` names the limit (`client_requests`, `token_requests`,
/// `failed_authentication`).
pub fn rate_limited(kind: &'static str) {
    counter!(RATE_LIMITED, "kind" => kind).increment(1);
}

/// A network limit refused a request, message or connection.
pub fn limit_rejected(limit: &'static str) {
    counter!(LIMIT_REJECTIONS, "limit" => limit).increment(1);
}

/// One HTTP request answered. `route` is the matched route template, never the raw path.
pub fn http_response(method: &'static str, route: String, status: u16, latency: Duration) {
    counter!(HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    histogram!(HTTP_DURATION, "route" => route).record(latency.as_secs_f64());
}

/// An accepted TCP connection opened (`+1`) or closed (`-1`).
pub fn tcp_connections_changed(delta: f64) {
    gauge!(TCP_CONNECTIONS_OPEN).increment(delta);
}

/// Samples the database pool.
pub fn set_database_pool(size: u32, idle: usize, max: u32) {
    gauge!(DB_POOL_SIZE).set(f64::from(size));
    gauge!(DB_POOL_IDLE).set(idle as f64);
    gauge!(DB_POOL_MAX).set(f64::from(max));
}

/// The audit writer committed `rows` rows.
pub fn audit_rows_committed(rows: usize) {
    counter!(AUDIT_ROWS).increment(rows as u64);
}

/// One unauthenticated refusal counted for an aggregated audit row.
pub fn audit_refusal_counted() {
    counter!(AUDIT_REFUSALS).increment(1);
}

/// Samples the audit writer's queue.
pub fn set_audit_queue_depth(depth: usize) {
    gauge!(AUDIT_QUEUE_DEPTH).set(depth as f64);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn install_is_idempotent_and_render_describes_metrics() {
        assert!(install());
        assert!(install());
        token_issued();
        rate_limited("unit_test");
        record_request(
            "websocket",
            "unit_test_tool",
            "success",
            Duration::from_millis(3),
        );
        let text = render().unwrap();
        assert!(text.contains("# HELP ehr_mcp_tokens_issued_total"));
        assert!(text.contains("ehr_mcp_rate_limited_total{kind=\"unit_test\"}"));
        assert!(text.contains(
            "ehr_mcp_request_duration_seconds_bucket{transport=\"websocket\",tool=\"unit_test_tool\",le=\"0.005\"}"
        ));
    }
}
