//! Resumable SSE streams for Streamable HTTP sessions (protocol revisions before 2026-07-28, which removed
//! resumption). rmcp's [`LocalSessionManager`] numbers every event `<index>/<stream>` and replays a stream
//! only while its request is in flight: once the response is sent the stream is forgotten, so a client whose
//! connection was cut mid-call could never get its answer. [`ResumableSessions`] wraps it: every
//! request stream is drained into a bounded per-stream log by a task of its own (the response is kept even
//! when nobody is listening), and a `GET` with `Last-Event-ID` replays the log after that event and follows
//! it live until the response. A log holds at most [`ReplayLimits::events_per_stream`] events and
//! [`ReplayLimits::bytes_per_stream`] bytes, completed logs are kept for [`ReplayLimits::retain`], and at
//! most [`ReplayLimits::streams`] logs are held in all (oldest first out). Resuming from an event that is
//! no longer held answers the request with [`STREAM_EXPIRED`] instead of leaving the client waiting.
//! Streams are found by session *and* stream number: one session can never read another's events.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, ErrorCode, ErrorData, RequestId, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::SessionManager;
use rmcp::transport::streamable_http_server::session::ServerSseMessage;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError,
};
use rmcp::transport::streamable_http_server::session::{RestoreOutcome, SessionId};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

/// The JSON-RPC error answering a request whose stream can no longer be resumed.
pub const STREAM_EXPIRED: ErrorCode = ErrorCode(-32010);

/// Events buffered between a stream's log and one HTTP response.
const CHANNEL_CAPACITY: usize = 16;

/// Bounds of the replay buffer.
#[derive(Debug, Clone, Copy)]
pub struct ReplayLimits {
    /// Events kept per stream (the oldest are dropped first).
    pub events_per_stream: usize,
    /// Bytes of JSON kept per stream (the newest event is always kept).
    pub bytes_per_stream: usize,
    /// Streams kept in all, across sessions.
    pub streams: usize,
    /// How long a completed stream stays resumable.
    pub retain: Duration,
}

impl Default for ReplayLimits {
    fn default() -> Self {
        Self {
            events_per_stream: 64,
            bytes_per_stream: 4 * 1024 * 1024,
            streams: 1024,
            retain: Duration::from_secs(300),
        }
    }
}

/// rmcp's in-memory session manager with resumable request streams.
pub struct ResumableSessions {
    inner: LocalSessionManager,
    logs: Arc<Mutex<Logs>>,
    limits: ReplayLimits,
}

impl ResumableSessions {
    pub fn new(inner: LocalSessionManager, limits: ReplayLimits) -> Self {
        Self {
            inner,
            logs: Arc::new(Mutex::new(Logs::default())),
            limits,
        }
    }

    /// How many stream logs are held now.
    pub fn held_streams(&self) -> usize {
        lock(&self.logs).streams.len()
    }
}

/// `(session, stream number)`; the stream number is the part after `/` of rmcp's event ids.
type StreamKey = (SessionId, u64);

#[derive(Default)]
struct Logs {
    streams: HashMap<StreamKey, Arc<StreamLog>>,
    /// Keys in the order their streams opened, for eviction.
    order: VecDeque<StreamKey>,
}

impl Logs {
    fn insert(&mut self, key: StreamKey, log: Arc<StreamLog>, limits: &ReplayLimits) {
        let now = Instant::now();
        self.order.retain(|key| {
            let keep = self
                .streams
                .get(key)
                .is_some_and(|log| !log.expired(now, limits));
            if !keep {
                self.streams.remove(key);
            }
            keep
        });
        while self.streams.len() >= limits.streams.max(1) {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.streams.remove(&oldest);
        }
        self.order.push_back(key.clone());
        self.streams.insert(key, log);
    }

    fn remove_session(&mut self, session: &SessionId) {
        self.streams.retain(|(owner, _), _| owner != session);
        self.order.retain(|(owner, _)| owner != session);
    }
}

/// One request stream's events, appended by its pump task and read by any resumed response.
struct StreamLog {
    state: Mutex<LogState>,
    /// Bumped on every append and at the end.
    version: watch::Sender<u64>,
    /// The JSON-RPC id of the request the stream answers.
    request_id: Option<RequestId>,
}

#[derive(Default)]
struct LogState {
    events: VecDeque<(usize, usize, ServerSseMessage)>,
    bytes: usize,
    /// The highest index dropped from the front, if any.
    dropped_through: Option<usize>,
    completed_at: Option<Instant>,
}

impl StreamLog {
    fn new(request_id: Option<RequestId>) -> Self {
        Self {
            state: Mutex::new(LogState::default()),
            version: watch::Sender::new(0),
            request_id,
        }
    }

    fn append(&self, index: usize, event: ServerSseMessage, limits: &ReplayLimits) {
        let size = event_size(&event);
        {
            let mut state = lock(&self.state);
            state.events.push_back((index, size, event));
            state.bytes += size;
            while state.events.len() > 1
                && (state.events.len() > limits.events_per_stream
                    || state.bytes > limits.bytes_per_stream)
            {
                if let Some((dropped, size, _)) = state.events.pop_front() {
                    state.bytes -= size;
                    state.dropped_through = Some(dropped);
                }
            }
        }
        self.version.send_modify(|version| *version += 1);
    }

    fn complete(&self) {
        lock(&self.state).completed_at = Some(Instant::now());
        self.version.send_modify(|version| *version += 1);
    }

    fn expired(&self, now: Instant, limits: &ReplayLimits) -> bool {
        lock(&self.state)
            .completed_at
            .is_some_and(|at| now.duration_since(at) > limits.retain)
    }

    /// The held events after `after`, whether the stream is complete, or `None` when events after `after`
    /// were dropped.
    fn read_after(&self, after: usize) -> Option<(Vec<(usize, ServerSseMessage)>, bool)> {
        let state = lock(&self.state);
        if state.dropped_through.is_some_and(|dropped| dropped > after) {
            return None;
        }
        let events = state
            .events
            .iter()
            .filter(|(index, _, _)| *index > after)
            .map(|(index, _, event)| (*index, event.clone()))
            .collect();
        Some((events, state.completed_at.is_some()))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The size of an event's JSON, counted without allocating it.
fn event_size(event: &ServerSseMessage) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    if let Some(message) = &event.message {
        let _ = serde_json::to_writer(&mut count, message.as_ref());
    }
    count.0
}

/// Splits rmcp's `<index>/<stream>` event id.
fn parse_event_id(id: &str) -> Option<(usize, u64)> {
    let (index, stream) = id.split_once('/')?;
    Some((index.parse().ok()?, stream.parse().ok()?))
}

/// A one-event stream answering `request_id` with [`STREAM_EXPIRED`].
fn expired(request_id: Option<RequestId>) -> ReceiverStream<ServerSseMessage> {
    let error = ErrorData::new(
        STREAM_EXPIRED,
        "the events after this Last-Event-ID are no longer held by the server; send the request again",
        None,
    );
    let message = ServerJsonRpcMessage::error(error, request_id);
    let (sender, receiver) = mpsc::channel(1);
    let _ = sender.try_send(ServerSseMessage::from_message(message));
    ReceiverStream::new(receiver)
}

/// Drains rmcp's stream for one request into its log, passing events on to the first response while it
/// listens.
async fn pump(
    mut events: impl Stream<Item = ServerSseMessage> + Unpin,
    session: SessionId,
    request_id: Option<RequestId>,
    logs: Arc<Mutex<Logs>>,
    limits: ReplayLimits,
    sender: mpsc::Sender<ServerSseMessage>,
) {
    let mut sender = Some(sender);
    let mut log: Option<Arc<StreamLog>> = None;
    while let Some(event) = events.next().await {
        if let Some((index, stream)) = event.event_id.as_deref().and_then(parse_event_id) {
            let log = log.get_or_insert_with(|| {
                let log = Arc::new(StreamLog::new(request_id.clone()));
                lock(&logs).insert((session.clone(), stream), log.clone(), &limits);
                log
            });
            log.append(index, event.clone(), &limits);
        }
        if let Some(live) = &sender
            && live.send(event).await.is_err()
        {
            sender = None;
        }
    }
    if let Some(log) = log {
        log.complete();
    }
}

/// Passes rmcp's events on unchanged.
async fn forward(
    mut events: impl Stream<Item = ServerSseMessage> + Unpin,
    sender: mpsc::Sender<ServerSseMessage>,
) {
    while let Some(event) = events.next().await {
        if sender.send(event).await.is_err() {
            return;
        }
    }
}

/// Replays `log` after `after` and follows it until the stream completes.
async fn follow(log: Arc<StreamLog>, mut after: usize, sender: mpsc::Sender<ServerSseMessage>) {
    let mut version = log.version.subscribe();
    loop {
        version.borrow_and_update();
        let Some((events, complete)) = log.read_after(after) else {
            let mut expired = expired(log.request_id.clone());
            if let Some(event) = expired.next().await {
                let _ = sender.send(event).await;
            }
            return;
        };
        for (index, event) in events {
            if sender.send(event).await.is_err() {
                return;
            }
            after = index;
        }
        if complete || version.changed().await.is_err() {
            return;
        }
    }
}

impl SessionManager for ResumableSessions {
    type Error = LocalSessionManagerError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.inner.create_session().await
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        lock(&self.logs).remove_session(id);
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let request_id = match &message {
            ClientJsonRpcMessage::Request(request) => Some(request.id.clone()),
            _ => None,
        };
        let events = Box::pin(self.inner.create_stream(id, message).await?);
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        tokio::spawn(pump(
            events,
            id.clone(),
            request_id,
            self.logs.clone(),
            self.limits,
            sender,
        ));
        Ok(ReceiverStream::new(receiver))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let Some((after, stream)) = parse_event_id(&last_event_id) else {
            // The standalone GET stream (ids without a stream number) is resumed by rmcp itself.
            let events = Box::pin(self.inner.resume(id, last_event_id).await?);
            let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
            tokio::spawn(forward(events, sender));
            return Ok(ReceiverStream::new(receiver));
        };
        let log = lock(&self.logs).streams.get(&(id.clone(), stream)).cloned();
        let Some(log) = log else {
            return Ok(expired(None));
        };
        if log.expired(Instant::now(), &self.limits) {
            return Ok(expired(log.request_id.clone()));
        }
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        tokio::spawn(follow(log, after, sender));
        Ok(ReceiverStream::new(receiver))
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        self.inner.restore_session(id).await
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use rmcp::model::{EmptyResult, ServerResult};

    fn limits(events: usize, bytes: usize) -> ReplayLimits {
        ReplayLimits {
            events_per_stream: events,
            bytes_per_stream: bytes,
            streams: 2,
            retain: Duration::from_secs(60),
        }
    }

    fn answer(id: i64) -> ServerSseMessage {
        ServerSseMessage::new(
            format!("{id}/1"),
            ServerJsonRpcMessage::response(
                ServerResult::EmptyResult(EmptyResult {}),
                RequestId::Number(id),
            ),
        )
    }

    #[test]
    fn event_ids_name_an_index_and_a_stream() {
        assert_eq!(parse_event_id("3/17"), Some((3, 17)));
        assert_eq!(parse_event_id("3"), None);
        assert_eq!(parse_event_id("x/1"), None);
    }

    #[test]
    fn a_log_keeps_at_most_its_event_and_byte_bounds() {
        let log = StreamLog::new(Some(RequestId::Number(1)));
        let bounds = limits(3, usize::MAX);
        for index in 0..5 {
            log.append(index, answer(index as i64), &bounds);
        }
        let (events, complete) = log.read_after(1).expect("events after 1 are held");
        assert_eq!(
            events.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        assert!(!complete);
        assert!(log.read_after(0).is_none(), "event 1 was dropped");

        let small = StreamLog::new(None);
        let one = event_size(&answer(0));
        let bounds = limits(100, one * 2);
        for index in 0..4 {
            small.append(index, answer(index as i64), &bounds);
        }
        assert!(lock(&small.state).bytes <= one * 2);
        assert!(small.read_after(0).is_none());
    }

    #[test]
    fn the_oldest_streams_are_dropped_first_and_sessions_are_separate() {
        let mut logs = Logs::default();
        let bounds = limits(8, usize::MAX);
        let session: SessionId = Arc::from("a");
        for stream in 0..3 {
            logs.insert(
                (session.clone(), stream),
                Arc::new(StreamLog::new(None)),
                &bounds,
            );
        }
        assert_eq!(logs.streams.len(), 2);
        assert!(!logs.streams.contains_key(&(session.clone(), 0)));
        logs.remove_session(&session);
        assert!(logs.streams.is_empty() && logs.order.is_empty());
    }

    #[test]
    fn a_completed_stream_expires_after_the_retention() {
        let log = StreamLog::new(None);
        log.complete();
        let bounds = limits(8, usize::MAX);
        assert!(!log.expired(Instant::now(), &bounds));
        assert!(log.expired(Instant::now() + Duration::from_secs(61), &bounds));
    }
}
