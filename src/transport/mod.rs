//! Transports: the HTTP endpoints on the one port (OAuth, MCP over WebSocket and Streamable HTTP) and
//! stdio. Transports resolve the caller's identity and hold no policy.

pub mod oauth;
