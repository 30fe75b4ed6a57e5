//! Tool calls a WebSocket connection runs itself. rmcp's service loop hands every request to a task of
//! its own and sends the answer through a second one, so a call crossed four tasks between the socket
//! and the tool: on two cores those wake-ups cost more than an audited `get_patient`. Once the service
//! has finished the handshake it hands over its [`Peer`]; from then on the reader starts each
//! `tools/call` here, with the same [`Service::handle_request`] and a [`RequestContext`] built as rmcp
//! builds it (a child cancellation token, the request's `_meta` and extensions), and polls it beside the
//! socket. Every other message, and any call before the handshake is done, still goes to the service.
//!
//! Invariants: a call answers once, through the connection's `ReplyRouter` (batches, reply limit); a
//! `notifications/cancelled` for a running call cancels its token and its answer is dropped, as rmcp
//! drops it (the tool's audit row is still written); the connection's stop token cancels every call.

use std::collections::HashMap;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use rmcp::Service;
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, GetExtensions, GetMeta,
    JsonRpcMessage, JsonRpcNotification, RequestId, ServerJsonRpcMessage,
};
use rmcp::service::{Peer, RequestContext, RoleServer};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::tools::EhrServer;

/// One connection's directly run calls.
pub(super) struct DirectCalls {
    server: EhrServer,
    /// The connection's stop token: the parent of every call's token.
    stop: CancellationToken,
    /// The service's peer, once its handshake is done.
    peer_rx: Option<oneshot::Receiver<Peer<RoleServer>>>,
    peer: Option<Peer<RoleServer>>,
    running: FuturesUnordered<BoxFuture<'static, (RequestId, ServerJsonRpcMessage)>>,
    /// Running calls not cancelled by the client, with their tokens.
    live: HashMap<RequestId, CancellationToken>,
}

/// What became of a finished call.
pub(super) enum Finished {
    /// Its answer, to send.
    Answer(Box<ServerJsonRpcMessage>),
    /// The client cancelled it: nothing is sent.
    Cancelled(RequestId),
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
            running: FuturesUnordered::new(),
            live: HashMap::new(),
        }
    }

    /// Starts `message` here when it is a `tools/call` and the handshake is done; otherwise gives it
    /// back for the service. A cancellation also cancels the call it names, and goes on to the service.
    pub(super) fn take(&mut self, message: ClientJsonRpcMessage) -> Option<ClientJsonRpcMessage> {
        match message {
            JsonRpcMessage::Request(request)
                if matches!(request.request, ClientRequest::CallToolRequest(_)) =>
            {
                match self.peer.clone() {
                    Some(peer) => {
                        self.start(request.id, request.request, peer);
                        None
                    }
                    None => Some(JsonRpcMessage::Request(request)),
                }
            }
            JsonRpcMessage::Notification(JsonRpcNotification {
                notification: ClientNotification::CancelledNotification(cancelled),
                ..
            }) => {
                let named = cancelled.params.request_id.as_ref();
                if let Some(token) = named.and_then(|id| self.live.remove(id)) {
                    token.cancel();
                }
                Some(JsonRpcMessage::notification(
                    ClientNotification::CancelledNotification(cancelled),
                ))
            }
            other => Some(other),
        }
    }

    fn start(&mut self, id: RequestId, mut request: ClientRequest, peer: Peer<RoleServer>) {
        let token = self.stop.child_token();
        let mut context = RequestContext::new(id.clone(), peer);
        context.ct = token.child_token();
        // As rmcp does: the meta first (it carries the progress token), then the extensions.
        std::mem::swap(&mut context.meta, request.get_meta_mut());
        std::mem::swap(&mut context.extensions, request.extensions_mut());
        self.live.insert(id.clone(), token);
        let server = self.server.clone();
        self.running.push(Box::pin(async move {
            let answer = match server.handle_request(request, context).await {
                Ok(result) => JsonRpcMessage::response(result, id.clone()),
                Err(error) => JsonRpcMessage::error(error, Some(id.clone())),
            };
            (id, answer)
        }));
    }

    /// Whether any call is running.
    pub(super) fn is_busy(&self) -> bool {
        !self.running.is_empty()
    }

    /// The next call to finish; meanwhile takes the service's peer when it comes. Pending while no call
    /// runs and no peer is awaited.
    pub(super) async fn next_finished(&mut self) -> Finished {
        loop {
            tokio::select! {
                peer = async { self.peer_rx.as_mut()?.await.ok() }, if self.peer_rx.is_some() => {
                    // `None`: the service ended before its handshake; calls keep going to it.
                    self.peer = peer;
                    self.peer_rx = None;
                }
                Some((id, answer)) = self.running.next(), if !self.running.is_empty() => {
                    return match self.live.remove(&id) {
                        Some(_) => Finished::Answer(Box::new(answer)),
                        None => Finished::Cancelled(id),
                    };
                }
                else => return std::future::pending().await,
            }
        }
    }
}
