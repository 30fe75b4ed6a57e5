//! The shutdown signal long-lived connections watch: a cancellation token WebSocket handlers and
//! Streamable HTTP sessions select on, a tracker of those connections so shutdown can wait for their
//! close frames within the grace period, and the count of a connection's calls still to answer.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TrackedFuture;

/// Shared through `AppState::shutdown`. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    connections: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancelled when the server begins to shut down: stop reading new messages, finish the one in
    /// flight, send a close frame (`limits::websocket::CloseReason::ServerShutdown`) and return.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    pub fn is_shutting_down(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Wraps a long-lived connection's future (a WebSocket session) so shutdown waits for it.
    pub fn track<F: Future>(&self, connection: F) -> TrackedFuture<F> {
        self.connections.track_future(connection)
    }

    /// Connections tracked and still open.
    pub fn open_connections(&self) -> usize {
        self.connections.len()
    }

    /// Signals every connection to close.
    pub(crate) fn begin(&self) {
        self.token.cancel();
        self.connections.close();
    }

    /// Waits until every tracked connection has closed, or `grace` has passed; `true` if all closed.
    pub(crate) async fn wait_for_connections(&self, grace: Duration) -> bool {
        tokio::time::timeout(grace, self.connections.wait())
            .await
            .is_ok()
    }
}

/// Calls a connection has taken in and not yet answered, so a closing connection can answer them first.
/// Cheap to clone (clones share the count).
#[derive(Debug, Clone)]
pub struct InFlightCalls {
    count: Arc<watch::Sender<usize>>,
}

impl Default for InFlightCalls {
    fn default() -> Self {
        Self {
            count: Arc::new(watch::Sender::new(0)),
        }
    }
}

impl InFlightCalls {
    /// A request went to the service.
    pub fn started(&self) {
        self.count.send_modify(|count| *count += 1);
    }

    /// Its answer went out.
    pub fn finished(&self) {
        self.count
            .send_modify(|count| *count = count.saturating_sub(1));
    }

    pub fn count(&self) -> usize {
        *self.count.borrow()
    }

    /// Returns once every call taken in has been answered.
    pub async fn wait_idle(&self) {
        let mut receiver = self.count.subscribe();
        let _ = receiver.wait_for(|count| *count == 0).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_flight_calls_are_waited_for_until_answered() {
        let calls = InFlightCalls::default();
        calls.wait_idle().await;
        calls.started();
        calls.started();
        let waiter = tokio::spawn({
            let calls = calls.clone();
            async move { calls.wait_idle().await }
        });
        calls.finished();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        calls.finished();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("idle once both are answered")
            .unwrap();
        assert_eq!(calls.count(), 0);
    }

    #[tokio::test]
    async fn waits_for_tracked_connections_to_see_the_signal_and_close() {
        let shutdown = Shutdown::new();
        let watched = shutdown.clone();
        tokio::spawn(shutdown.track(async move {
            watched.token().cancelled().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }));
        assert_eq!(shutdown.open_connections(), 1);
        shutdown.begin();
        assert!(shutdown.wait_for_connections(Duration::from_secs(5)).await);
        assert_eq!(shutdown.open_connections(), 0);
    }

    #[tokio::test]
    async fn gives_up_after_the_grace_period() {
        let shutdown = Shutdown::new();
        tokio::spawn(shutdown.track(std::future::pending::<()>()));
        shutdown.begin();
        assert!(
            !shutdown
                .wait_for_connections(Duration::from_millis(50))
                .await
        );
    }
}
