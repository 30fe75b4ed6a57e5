//! WebSocket limits for the WebSocket transport: message and frame size on the upgrade, liveness (ping at
//! a third of the idle timeout, close when nothing arrived for the whole timeout) and the close frames that
//! explain why the server hung up.
//!
//! A handler loop looks like:
//! ```ignore
//! let mut liveness = Liveness::new(&state.limits);
//! loop {
//!     tokio::select! {
//!         () = state.shutdown.token().cancelled() => { socket.send(close_message(CloseReason::ServerShutdown)).await; break }
//!         event = liveness.tick() => match event {
//!             LivenessEvent::SendPing => socket.send(Message::Ping(Bytes::new())).await?,
//!             LivenessEvent::TimedOut => { socket.send(close_message(CloseReason::IdleTimeout)).await; break }
//!         },
//!         received = socket.recv() => { if is_text_or_binary { liveness.saw_traffic() } /* Err(e) → close_for_receive_error(&e) */ }
//!     }
//! }
//! ```

use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade, close_code};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::{LimitKind, NetworkLimits};

/// Applies the message and frame size limits to an upgrade (a bigger message fails the receive with a
/// capacity error; answer it with [`close_for_receive_error`]).
pub fn limit_upgrade(upgrade: WebSocketUpgrade, limits: &NetworkLimits) -> WebSocketUpgrade {
    upgrade
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
}

/// Why the server closes a WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Graceful shutdown: 1001 "going away".
    ServerShutdown,
    /// Nothing received for the idle timeout: 1001.
    IdleTimeout,
    /// A message over `EHR_MCP_MAX_MESSAGE_BYTES`: 1009.
    MessageTooLarge,
    /// A message nested deeper than `EHR_MCP_MAX_JSON_DEPTH`: 1008 (policy).
    JsonTooDeep,
    /// The peer broke the protocol: 1002.
    ProtocolError,
    /// No identity proved within `EHR_MCP_UNAUTHENTICATED_TIMEOUT_SECONDS`: 1008 (policy).
    Unauthenticated,
}

impl CloseReason {
    pub fn code(self) -> u16 {
        match self {
            Self::ServerShutdown | Self::IdleTimeout => close_code::AWAY,
            Self::MessageTooLarge => close_code::SIZE,
            Self::JsonTooDeep | Self::Unauthenticated => close_code::POLICY,
            Self::ProtocolError => close_code::PROTOCOL,
        }
    }

    /// The close reason text (at most 123 bytes, as the protocol requires).
    pub fn text(self) -> &'static str {
        match self {
            Self::ServerShutdown => "server shutting down",
            Self::IdleTimeout => "idle timeout (EHR_MCP_IDLE_TIMEOUT_SECONDS)",
            Self::MessageTooLarge => "message too large (EHR_MCP_MAX_MESSAGE_BYTES)",
            Self::JsonTooDeep => "JSON nested too deeply (EHR_MCP_MAX_JSON_DEPTH)",
            Self::ProtocolError => "protocol error",
            Self::Unauthenticated => {
                "not authenticated in time (EHR_MCP_UNAUTHENTICATED_TIMEOUT_SECONDS)"
            }
        }
    }

    fn limit(self) -> Option<LimitKind> {
        match self {
            Self::IdleTimeout => Some(LimitKind::IdleTimeout),
            Self::MessageTooLarge => Some(LimitKind::MessageTooLarge),
            Self::JsonTooDeep => Some(LimitKind::JsonTooDeep),
            Self::Unauthenticated => Some(LimitKind::UnauthenticatedTimeout),
            Self::ServerShutdown | Self::ProtocolError => None,
        }
    }
}

/// The close message for `reason`; counts limit closes in the metrics.
pub fn close_message(reason: CloseReason) -> Message {
    if let Some(limit) = reason.limit() {
        limit.record();
    }
    Message::Close(Some(CloseFrame {
        code: reason.code(),
        reason: reason.text().into(),
    }))
}

/// Why a receive failed: a message over the size limit (tungstenite's capacity error), or anything else
/// (a protocol error).
pub fn close_reason_for_receive_error(error: &axum::Error) -> CloseReason {
    let text = error.to_string();
    if text.contains("Space limit exceeded") || text.contains("Message too long") {
        CloseReason::MessageTooLarge
    } else {
        CloseReason::ProtocolError
    }
}

/// The close message answering a failed receive.
pub fn close_for_receive_error(error: &axum::Error) -> Message {
    close_message(close_reason_for_receive_error(error))
}

/// How long the server waits for the peer's close reply after sending its own close frame.
pub const CLOSE_REPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// After the server's close frame: reads (and drops) frames until the peer's close reply, the end of the
/// stream or `within`. Closing the socket at once would reset a peer still sending (a pong, say), and a
/// reset loses the close frame in its receive buffer.
pub async fn await_close_reply<S>(frames: &mut S, within: std::time::Duration)
where
    S: futures::Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    use futures::StreamExt;
    let _ = tokio::time::timeout(within, async {
        while let Some(Ok(frame)) = frames.next().await {
            if matches!(frame, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// What [`Liveness::tick`] asks the handler to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivenessEvent {
    SendPing,
    TimedOut,
}

/// A WebSocket's idle clock: call [`Liveness::saw_traffic`] on every message the client sends (not on pongs)
/// and select on [`Liveness::tick`] (cancel-safe).
#[derive(Debug)]
pub struct Liveness {
    idle_timeout: std::time::Duration,
    last_traffic: Instant,
    pings: Interval,
}

impl Liveness {
    pub fn new(limits: &NetworkLimits) -> Self {
        let interval = limits.ping_interval();
        let mut pings = tokio::time::interval_at(Instant::now() + interval, interval);
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            idle_timeout: limits.idle_timeout,
            last_traffic: Instant::now(),
            pings,
        }
    }

    pub fn saw_traffic(&mut self) {
        self.last_traffic = Instant::now();
    }

    /// Waits for the next ping time; then either a ping is due or the peer has been silent too long.
    pub async fn tick(&mut self) -> LivenessEvent {
        self.pings.tick().await;
        if self.last_traffic.elapsed() >= self.idle_timeout {
            LivenessEvent::TimedOut
        } else {
            LivenessEvent::SendPing
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(idle: Duration) -> NetworkLimits {
        NetworkLimits {
            max_message_bytes: 1024,
            max_connections: 4,
            max_connections_per_address: 4,
            header_read_timeout: Duration::from_secs(1),
            body_read_timeout: Duration::from_secs(1),
            unauthenticated_timeout: Duration::from_secs(1),
            idle_timeout: idle,
            request_timeout: Duration::from_secs(1),
            max_json_depth: 8,
            shutdown_grace: Duration::from_secs(1),
            messages: Default::default(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pings_while_traffic_flows_and_times_out_in_silence() {
        let mut liveness = Liveness::new(&limits(Duration::from_secs(30)));
        assert_eq!(liveness.tick().await, LivenessEvent::SendPing); // t = 10 s
        liveness.saw_traffic();
        assert_eq!(liveness.tick().await, LivenessEvent::SendPing); // t = 20 s
        assert_eq!(liveness.tick().await, LivenessEvent::SendPing); // t = 30 s, 20 s silent
        assert_eq!(liveness.tick().await, LivenessEvent::TimedOut); // t = 40 s, 30 s silent
    }

    #[test]
    fn close_reasons_use_the_protocol_codes_and_fit_the_frame() {
        assert_eq!(CloseReason::ServerShutdown.code(), 1001);
        assert_eq!(CloseReason::MessageTooLarge.code(), 1009);
        for reason in [
            CloseReason::ServerShutdown,
            CloseReason::IdleTimeout,
            CloseReason::MessageTooLarge,
            CloseReason::JsonTooDeep,
            CloseReason::ProtocolError,
            CloseReason::Unauthenticated,
        ] {
            assert!(reason.text().len() <= 123);
        }
    }
}
