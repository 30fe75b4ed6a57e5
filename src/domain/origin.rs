//! Where a request came from: [`Origin`] `{ transport, peer }`, built once by the transport that received
//! the request and passed unchanged to auth (failed-authentication budgets are keyed by the peer) and audit
//! (the row's `transport`). A value type, so every layer can name it without depending on a transport.

use std::fmt;
use std::net::IpAddr;

/// How the request reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    WebSocket,
    StreamableHttp,
    Stdio,
    /// The OAuth endpoints and other plain HTTP endpoints.
    Http,
    Cli,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::StreamableHttp => "streamable_http",
            Self::Stdio => "stdio",
            Self::Http => "http",
            Self::Cli => "cli",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport a request arrived on and the peer's network address (none for stdio and the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    pub transport: Transport,
    pub peer: Option<IpAddr>,
}

impl Origin {
    pub fn new(transport: Transport, peer: Option<IpAddr>) -> Self {
        Self { transport, peer }
    }

    /// A local process (stdio, CLI): no network peer.
    pub fn local(transport: Transport) -> Self {
        Self::new(transport, None)
    }

    /// The same peer reached through another transport (a Streamable HTTP request behind a session).
    pub fn with_peer(self, peer: Option<IpAddr>) -> Self {
        Self { peer, ..self }
    }

    /// The key of the failed-authentication budget: the peer's address, whatever the door (`/oauth/token`,
    /// `authenticate` over WebSocket or HTTP), so one address has one budget; a local process is keyed by
    /// its transport.
    pub fn budget_key(&self) -> String {
        match self.peer {
            Some(address) => address.to_string(),
            None => self.transport.as_str().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_budget_per_address_across_transports() {
        let peer = IpAddr::from([192, 0, 2, 7]);
        let keys: Vec<String> = [
            Transport::Http,
            Transport::WebSocket,
            Transport::StreamableHttp,
        ]
        .into_iter()
        .map(|transport| Origin::new(transport, Some(peer)).budget_key())
        .collect();
        assert!(keys.iter().all(|key| key == "192.0.2.7"));
        assert_eq!(Origin::local(Transport::Stdio).budget_key(), "stdio");
    }
}
