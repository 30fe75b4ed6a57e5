//! The messages a WebSocket connection serves itself. rmcp's service loop hands every request to a task
//! of its own and sends the answer through a second one, so a call crossed four tasks between the socket
//! and the tool (on two cores those wake-ups cost more than an audited `get_patient`), and the loop keeps
//! a task and two channels per connection (about 15 KB of an idle one). So rmcp's service runs only the
//! handshake: once it has opened the session it hands over its [`Peer`], the reader stops feeding it (its
//! loop ends when its input does) and from then on serves every request here, with the same
//! [`Service::handle_request`] and a [`RequestContext`] built as rmcp builds it (a child cancellation
//! token, the request's `_meta` and extensions). Notifications are read here: a cancellation takes
//! effect, and none reaches [`EhrServer`]'s notification handlers, which are rmcp's no-op defaults (rmcp
//! lets no caller outside its loop build a `NotificationContext`; a server that needs a handler must
//! keep the loop for notifications). The server sends no requests of its own, so a client's responses
//! are dropped.
//!
//! Requests that come after the session-opening message (the `initialize`, the client's or the implicit
//! one, or a request carrying 2026-07-28 metadata the service will accept) and before the peer are held
//! here and run once it comes: the service no longer reads them, and rmcp drops the answer of a call
//! cancelled on its side, which left that call's in-flight slot and batch waiting for ever. Messages
//! before it (pings, `server/discover`, a request the handshake refuses) go to the service.
//!
//! Invariants: a request answers once, through the connection's `ReplyRouter` (batches, reply limit);
//! a `notifications/cancelled` for a running or held request cancels its token and its answer is
//! dropped, as rmcp drops it (a cancelled tool call is still audited); the connection's stop token
//! cancels every request.

use std::collections::HashMap;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use rmcp::Service;
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, GetExtensions, GetMeta,
    JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, ProtocolVersion, RequestId,
    ServerJsonRpcMessage,
};
use rmcp::service::{Peer, RequestContext, RoleServer};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::tools::EhrServer;

/// One connection's directly served messages.
pub(super) struct DirectCalls {
    server: EhrServer,
    /// The connection's stop token: the parent of every request's token.
    stop: CancellationToken,
    /// The service's peer, once its handshake is done.
    peer_rx: Option<oneshot::Receiver<Peer<RoleServer>>>,
    peer: Option<Peer<RoleServer>>,
    /// The session-opening message went to the service: its peer is coming (or the service ends).
    opening: bool,
    /// Requests that came after the opening message and before the peer, in order, with their tokens.
    held: Vec<(RequestId, ClientRequest, CancellationToken)>,
    /// Requests running, each yielding its answer.
    running: FuturesUnordered<BoxFuture<'static, (RequestId, ServerJsonRpcMessage)>>,
    /// Requests running or held and not cancelled by the client, with their tokens.
    live: HashMap<RequestId, CancellationToken>,
}

/// What happened on the direct path.
pub(super) enum Finished {
    /// A request's answer, to send.
    Answer(Box<ServerJsonRpcMessage>),
    /// The client cancelled it: nothing is sent.
    Cancelled(RequestId),
    /// The handshake is done: from now on every message is served here and none goes to the service.
    Opened,
    /// The service ended before its handshake was done: the session is over, and this many requests
    /// that waited for it are dropped.
    ServiceEnded { dropped: usize },
}

impl DirectCalls {
    pub(super) fn new(
        server: EhrServer,
        stop: CancellationToken,
        peer_rx: oneshot::Receiver<Peer<RoleServer>>,
    ) -> Self {
        Self {
            server,
            stop,
            peer_rx: Some(peer_rx),
            peer: None,
            opening: false,
            held: Vec::new(),
            running: FuturesUnordered::new(),
            live: HashMap::new(),
        }
    }

    /// Serves `message` here once the handshake is done, or holds it when the opening message has gone
    /// to the service; otherwise gives it back for the service.
    pub(super) fn take(&mut self, message: ClientJsonRpcMessage) -> Option<ClientJsonRpcMessage> {
        if let Some(peer) = self.peer.clone() {
            self.serve(message, peer);
            return None;
        }
        if self.opening && self.peer_rx.is_some() {
            self.hold(message);
            return None;
        }
        self.opening = self.opens_session(&message);
        Some(message)
    }

    /// Whether the service's handshake opens the session with `message` (as rmcp decides): an
    /// `initialize`, or another request (not a ping or `server/discover`) whose `_meta` has every field
    /// 2026-07-28 requires and names a protocol version the server supports.
    fn opens_session(&self, message: &ClientJsonRpcMessage) -> bool {
        let JsonRpcMessage::Request(JsonRpcRequest { request, .. }) = message else {
            return false;
        };
        match request {
            ClientRequest::InitializeRequest(_) => true,
            ClientRequest::PingRequest(_) | ClientRequest::DiscoverRequest(_) => false,
            request => {
                let meta = request.get_meta();
                meta.missing_required_keys(&ProtocolVersion::V_2026_07_28)
                    .is_empty()
                    && meta.protocol_version().is_some_and(|version| {
                        self.server.supported_protocol_versions().contains(&version)
                    })
            }
        }
    }

    /// Holds a request until the peer comes; a notification takes effect now.
    fn hold(&mut self, message: ClientJsonRpcMessage) {
        match message {
            JsonRpcMessage::Request(request) => {
                let token = self.admit(&request.id);
                self.held.push((request.id, request.request, token));
            }
            other => self.read_other(other),
        }
    }

    fn serve(&mut self, message: ClientJsonRpcMessage, peer: Peer<RoleServer>) {
        match message {
            JsonRpcMessage::Request(request) => {
                let token = self.admit(&request.id);
                self.run(request.id, request.request, peer, token);
            }
            other => self.read_other(other),
        }
    }

    /// A notification (a cancellation cancels the request it names) or a response, which no request of
    /// the server awaits.
    fn read_other(&mut self, message: ClientJsonRpcMessage) {
        if let JsonRpcMessage::Notification(JsonRpcNotification {
            notification: ClientNotification::CancelledNotification(cancelled),
            ..
        }) = message
        {
            let named = cancelled.params.request_id.as_ref();
            if let Some(token) = named.and_then(|id| self.live.remove(id)) {
                token.cancel();
            }
        }
    }

    /// A request's token, the request counted as live (answered) until the client cancels it.
    fn admit(&mut self, id: &RequestId) -> CancellationToken {
        let token = self.stop.child_token();
        self.live.insert(id.clone(), token.clone());
        token
    }

    /// Runs a request under `token` (its answer is sent only while the request is in `live`).
    fn run(
        &mut self,
        id: RequestId,
        mut request: ClientRequest,
        peer: Peer<RoleServer>,
        token: CancellationToken,
    ) {
        let mut context = RequestContext::new(id.clone(), peer);
        context.ct = token.child_token();
        // As rmcp does: the meta first (it carries the progress token), then the extensions.
        std::mem::swap(&mut context.meta, request.get_meta_mut());
        std::mem::swap(&mut context.extensions, request.extensions_mut());
        let server = self.server.clone();
        self.running.push(Box::pin(async move {
            let answer = match server.handle_request(request, context).await {
                Ok(result) => JsonRpcMessage::response(result, id.clone()),
                Err(error) => JsonRpcMessage::error(error, Some(id.clone())),
            };
            (id, answer)
        }));
    }

    /// Whether any request is running or held.
    pub(super) fn is_busy(&self) -> bool {
        !self.running.is_empty() || !self.held.is_empty()
    }

    /// The next thing to happen: a request finished, or the service's peer came (the held requests
    /// then run). Pending while nothing runs and no peer is awaited.
    pub(super) async fn next_finished(&mut self) -> Finished {
        tokio::select! {
            peer = async { self.peer_rx.as_mut()?.await.ok() }, if self.peer_rx.is_some() => {
                self.peer_rx = None;
                self.opened(peer)
            }
            Some((id, answer)) = self.running.next(), if !self.running.is_empty() => {
                match self.live.remove(&id) {
                    Some(_) => Finished::Answer(Box::new(answer)),
                    None => Finished::Cancelled(id),
                }
            }
            else => std::future::pending().await,
        }
    }

    /// The handshake's end: serves what was held, or drops it when the service ended first.
    fn opened(&mut self, peer: Option<Peer<RoleServer>>) -> Finished {
        let held = std::mem::take(&mut self.held);
        let Some(peer) = peer else {
            for (id, ..) in &held {
                self.live.remove(id);
            }
            return Finished::ServiceEnded {
                dropped: held.len(),
            };
        };
        // A request cancelled while it was held still runs (a tool call is audited), unanswered.
        for (id, request, token) in held {
            self.run(id, request, peer.clone(), token);
        }
        self.peer = Some(peer);
        Finished::Opened
    }
}
