//! Transports: the axum router on one port (WebSocket, Streamable HTTP, OAuth, health, metrics), stdio, and
//! what every network transport shares — limits, TLS and the shutdown signal. Transports resolve the
//! caller's identity and hold no policy.

pub mod limits;
pub mod metrics_endpoint;
pub mod oauth;
pub mod shutdown;
pub mod tls;
