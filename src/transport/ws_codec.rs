//! The WebSocket frame codec of the server side (RFC 6455 §5) with `permessage-deflate` (RFC 7692):
//! [`WsConnection`] is a `Stream` of axum [`Message`]s and a `Sink` of them over the upgraded connection.
//!
//! Reading: client frames must be masked; RSV2/RSV3 are never set, RSV1 only on the first frame of a data
//! message and only when deflate was negotiated (else a protocol error); control frames are final, at
//! most 125 bytes and never compressed. A frame over the frame limit fails before its payload is read; a
//! message is inflated frame by frame into a buffer that may not pass the message limit, so a bomb stops
//! at the limit ([`WsError::TooLarge`], close 1009) without allocating what it would inflate to. Pings
//! are answered with pongs and a close frame with its echo, as tungstenite does.
//!
//! Writing: data messages of at least [`super::compression::MIN_COMPRESSED_BYTES`] are compressed at
//! level [`DEFLATE_LEVEL`] when deflate was negotiated; smaller ones go out plain (RFC 7692 lets each
//! message choose). Bytes on the wire and uncompressed are counted in the metrics.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use futures::task::AtomicWaker;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use bytes::{Buf, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::telemetry::metrics::ByteCounters;

/// The deflate level of outgoing messages: cheap (about a tenth of level 9's CPU) and most of its ratio on
/// JSON; fixed so a client cannot make the server work harder.
pub const DEFLATE_LEVEL: u32 = 3;

/// The tail every deflate message ends with after a sync flush; stripped on send, restored on receive
/// (RFC 7692 §7.2.1, §7.2.2).
const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The smallest step inflate output grows by (it doubles, capped at one byte over the message limit).
const INFLATE_STEP: usize = 16 * 1024;

/// Pending writes past this are flushed before another message is accepted.
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// The negotiated `permessage-deflate` parameters (what the 101 answer names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deflate {
    /// The window the server compresses with, when the client limited it (9–15); else 15.
    pub server_max_window_bits: Option<u8>,
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message (the server's inflater keeps its window
    /// either way, which decodes both).
    pub client_no_context_takeover: bool,
}

impl Deflate {
    /// The `Sec-WebSocket-Extensions` value of the 101 answer.
    pub fn response_header(&self) -> String {
        let mut value = "permessage-deflate".to_owned();
        if let Some(bits) = self.server_max_window_bits {
            value.push_str(&format!("; server_max_window_bits={bits}"));
        }
        if self.server_no_context_takeover {
            value.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            value.push_str("; client_no_context_takeover");
        }
        value
    }
}

/// Limits and extensions of one connection.
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// Largest message after reassembly and inflation, bytes.
    pub max_message_bytes: usize,
    /// Largest frame payload on the wire, bytes.
    pub max_frame_bytes: usize,
    pub deflate: Option<Deflate>,
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 << 20,
            max_frame_bytes: 16 << 20,
            deflate: None,
        }
    }
}

/// Why reading or writing failed.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// A frame or (inflated) message over the limit. The text keeps tungstenite's wording, which
    /// `limits::websocket` recognises.
    #[error("Message too long: over {limit} bytes")]
    TooLarge { limit: usize },
    #[error("WebSocket protocol error: {0}")]
    Protocol(&'static str),
    #[error("invalid UTF-8 in a text message")]
    InvalidUtf8,
    #[error("the connection is closed")]
    Closed,
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl WsError {
    fn into_axum(self) -> axum::Error {
        axum::Error::new(self)
    }
}

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Which half of a split connection writes: the reader writes control replies (pongs, the close echo),
/// the writer everything else.
#[derive(Clone, Copy)]
enum Side {
    Reader,
    Writer,
}

/// The socket keeps one waker for write readiness; both halves may be waiting on it, so it gets one that
/// wakes both (a half woken for nothing polls again and finds nothing to do).
#[derive(Default)]
struct WriteWakers {
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl std::task::Wake for WriteWakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.reader.wake();
        self.writer.wake();
    }
}

/// One frame as read: opcode, FIN, RSV1, unmasked payload.
type RawFrame = (u8, bool, bool, Vec<u8>);

/// A data message being reassembled.
struct Partial {
    opcode: u8,
    compressed: bool,
    payload: Vec<u8>,
}

/// One WebSocket connection, server side.
pub struct WsConnection<S = hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>> {
    io: S,
    settings: WsSettings,
    read_buffer: BytesMut,
    write_buffer: BytesMut,
    partial: Option<Partial>,
    inflate: Option<Decompress>,
    deflate: Option<Compress>,
    /// The peer's close frame was read (nothing more is read).
    received_close: bool,
    /// The server's close frame is queued or sent (nothing more is written but a close reply).
    sent_close: bool,
    /// The stream ended or failed; reads return `None`.
    finished: bool,
    bytes: ByteCounters,
    write_wakers: Arc<WriteWakers>,
    write_waker: Waker,
}

impl<S> WsConnection<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    pub fn new(io: S, settings: WsSettings) -> Self {
        let (inflate, deflate) = match &settings.deflate {
            Some(params) => {
                let window = params.server_max_window_bits.unwrap_or(15);
                (
                    Some(Decompress::new_with_window_bits(false, 15)),
                    Some(Compress::new_with_window_bits(
                        Compression::new(DEFLATE_LEVEL),
                        false,
                        window,
                    )),
                )
            }
            None => (None, None),
        };
        let write_wakers = Arc::new(WriteWakers::default());
        Self {
            io,
            settings,
            read_buffer: BytesMut::new(),
            write_buffer: BytesMut::new(),
            partial: None,
            inflate,
            deflate,
            received_close: false,
            sent_close: false,
            finished: false,
            bytes: ByteCounters::new("websocket"),
            write_waker: Waker::from(Arc::clone(&write_wakers)),
            write_wakers,
        }
    }

    /// Frees the read and write buffers when they hold nothing: an idle connection keeps no buffer
    /// (about 5 KB together, 50 MB for 10,000 idle connections); a busy one allocates them again per
    /// message.
    fn release_idle_buffers(&mut self) {
        if self.read_buffer.is_empty() && self.read_buffer.capacity() > 0 {
            self.read_buffer = BytesMut::new();
        }
        if self.write_buffer.is_empty() && self.write_buffer.capacity() > 0 {
            self.write_buffer = BytesMut::new();
        }
    }

    /// Whether `permessage-deflate` was negotiated.
    pub fn compressed(&self) -> bool {
        self.settings.deflate.is_some()
    }

    /// Writes out pending bytes (and flushes the stream), for `side`.
    fn poll_write_out(&mut self, cx: &mut Context<'_>, side: Side) -> Poll<Result<(), WsError>> {
        match side {
            Side::Reader => self.write_wakers.reader.register(cx.waker()),
            Side::Writer => self.write_wakers.writer.register(cx.waker()),
        }
        let waker = self.write_waker.clone();
        let cx = &mut Context::from_waker(&waker);
        while !self.write_buffer.is_empty() {
            let written = ready!(Pin::new(&mut self.io).poll_write(cx, &self.write_buffer))?;
            if written == 0 {
                return Poll::Ready(Err(WsError::Io(io::ErrorKind::WriteZero.into())));
            }
            self.write_buffer.advance(written);
        }
        self.release_idle_buffers();
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        Poll::Ready(Ok(()))
    }

    /// Appends one frame (unmasked: the server never masks) to the write buffer.
    fn queue_frame(&mut self, opcode: u8, compressed: bool, payload: &[u8]) {
        let mut first = 0x80 | opcode;
        if compressed {
            first |= 0x40;
        }
        // The header is at most 10 bytes.
        self.write_buffer.reserve(10 + payload.len());
        self.write_buffer.extend_from_slice(&[first]);
        let length = payload.len();
        if length < 126 {
            self.write_buffer.extend_from_slice(&[length as u8]);
        } else if let Ok(short) = u16::try_from(length) {
            self.write_buffer.extend_from_slice(&[126]);
            self.write_buffer.extend_from_slice(&short.to_be_bytes());
        } else {
            self.write_buffer.extend_from_slice(&[127]);
            self.write_buffer
                .extend_from_slice(&(length as u64).to_be_bytes());
        }
        self.write_buffer.extend_from_slice(payload);
    }

    /// Queues a data message, compressed when negotiated and worth it.
    fn queue_data(&mut self, opcode: u8, payload: &[u8]) -> Result<(), WsError> {
        self.bytes.uncompressed_out(payload.len());
        let worth_it = payload.len() >= super::compression::MIN_COMPRESSED_BYTES;
        let compressed = match (&mut self.deflate, worth_it) {
            (Some(compress), true) => {
                let reset = self
                    .settings
                    .deflate
                    .as_ref()
                    .is_some_and(|params| params.server_no_context_takeover);
                Some(deflate_message(compress, payload, reset)?)
            }
            _ => None,
        };
        match compressed {
            Some(wire) => {
                self.bytes.wire_out(wire.len());
                self.queue_frame(opcode, true, &wire);
            }
            None => {
                self.bytes.wire_out(payload.len());
                self.queue_frame(opcode, false, payload);
            }
        }
        Ok(())
    }

    fn queue_close(&mut self, frame: Option<&CloseFrame>) {
        let mut payload = Vec::new();
        if let Some(frame) = frame {
            payload.extend_from_slice(&frame.code.to_be_bytes());
            let reason = frame.reason.as_str();
            let mut end = reason.len().min(123);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            payload.extend_from_slice(&reason.as_bytes()[..end]);
        }
        self.queue_frame(OP_CLOSE, false, &payload);
        self.sent_close = true;
    }

    /// Parses one complete frame from the read buffer, if it holds one.
    fn parse_frame(&mut self) -> Result<Option<RawFrame>, WsError> {
        let available = self.read_buffer.len();
        if available < 2 {
            return Ok(None);
        }
        let (first, second) = (self.read_buffer[0], self.read_buffer[1]);
        let fin = first & 0x80 != 0;
        let rsv1 = first & 0x40 != 0;
        if first & 0x30 != 0 {
            return Err(WsError::Protocol("reserved bits RSV2/RSV3 set"));
        }
        let opcode = first & 0x0F;
        if second & 0x80 == 0 {
            return Err(WsError::Protocol("client frames must be masked"));
        }
        let (length, header) = match second & 0x7F {
            126 => {
                if available < 4 {
                    return Ok(None);
                }
                let bytes = [self.read_buffer[2], self.read_buffer[3]];
                (u64::from(u16::from_be_bytes(bytes)), 4)
            }
            127 => {
                if available < 10 {
                    return Ok(None);
                }
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&self.read_buffer[2..10]);
                (u64::from_be_bytes(bytes), 10)
            }
            short => (u64::from(short), 2),
        };
        let is_control = opcode & 0x08 != 0;
        if is_control {
            if !fin {
                return Err(WsError::Protocol("fragmented control frame"));
            }
            if length > 125 {
                return Err(WsError::Protocol("control frame longer than 125 bytes"));
            }
            if rsv1 {
                return Err(WsError::Protocol("compressed control frame"));
            }
        }
        let limit = self.settings.max_frame_bytes;
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        if length > limit {
            return Err(WsError::TooLarge { limit });
        }
        let total = header + 4 + length;
        if available < total {
            self.read_buffer.reserve(total - available);
            return Ok(None);
        }
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&self.read_buffer[header..header + 4]);
        self.read_buffer.advance(header + 4);
        let mut payload = self.read_buffer.split_to(length).to_vec();
        for (index, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[index % 4];
        }
        Ok(Some((opcode, fin, rsv1, payload)))
    }

    /// Handles one frame: `Some(message)` for the caller, `None` when a message is still incomplete.
    fn on_frame(
        &mut self,
        opcode: u8,
        fin: bool,
        rsv1: bool,
        payload: Vec<u8>,
    ) -> Result<Option<Message>, WsError> {
        match opcode {
            OP_PING => {
                if !self.sent_close {
                    self.queue_frame(OP_PONG, false, &payload);
                }
                Ok(Some(Message::Ping(Bytes::from(payload))))
            }
            OP_PONG => Ok(Some(Message::Pong(Bytes::from(payload)))),
            OP_CLOSE => {
                let frame = parse_close(&payload)?;
                self.received_close = true;
                if !self.sent_close {
                    // Echo the peer's code (RFC 6455 §5.5.1).
                    let echo = frame.as_ref().map(|frame| CloseFrame {
                        code: frame.code,
                        reason: Utf8Bytes::from_static(""),
                    });
                    self.queue_close(echo.as_ref());
                }
                Ok(Some(Message::Close(frame)))
            }
            OP_TEXT | OP_BINARY => {
                if self.partial.is_some() {
                    return Err(WsError::Protocol(
                        "a new data frame inside a fragmented message",
                    ));
                }
                if rsv1 && self.inflate.is_none() {
                    return Err(WsError::Protocol(
                        "RSV1 set but permessage-deflate was not negotiated",
                    ));
                }
                self.partial = Some(Partial {
                    opcode,
                    compressed: rsv1,
                    payload: Vec::new(),
                });
                self.on_data(&payload, fin)
            }
            OP_CONTINUATION => {
                if self.partial.is_none() {
                    return Err(WsError::Protocol("continuation frame without a message"));
                }
                if rsv1 {
                    return Err(WsError::Protocol("RSV1 set on a continuation frame"));
                }
                self.on_data(&payload, fin)
            }
            _ => Err(WsError::Protocol("reserved opcode")),
        }
    }

    /// Adds a data frame's payload to the message in progress; the message when `fin`.
    fn on_data(&mut self, payload: &[u8], fin: bool) -> Result<Option<Message>, WsError> {
        let limit = self.settings.max_message_bytes;
        self.bytes.wire_in(payload.len());
        let Some(partial) = self.partial.as_mut() else {
            return Err(WsError::Protocol("continuation frame without a message"));
        };
        if partial.compressed {
            let Some(inflate) = self.inflate.as_mut() else {
                return Err(WsError::Protocol("compressed frame without deflate"));
            };
            inflate_into(inflate, payload, &mut partial.payload, limit)?;
            if fin {
                inflate_into(inflate, &DEFLATE_TAIL, &mut partial.payload, limit)?;
            }
        } else {
            if partial.payload.len() + payload.len() > limit {
                return Err(WsError::TooLarge { limit });
            }
            partial.payload.extend_from_slice(payload);
        }
        if !fin {
            return Ok(None);
        }
        let Some(partial) = self.partial.take() else {
            return Ok(None);
        };
        self.bytes.uncompressed_in(partial.payload.len());
        if partial.opcode == OP_TEXT {
            let text = String::from_utf8(partial.payload).map_err(|_| WsError::InvalidUtf8)?;
            Ok(Some(Message::Text(Utf8Bytes::from(text))))
        } else {
            Ok(Some(Message::Binary(Bytes::from(partial.payload))))
        }
    }

    fn poll_read_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, WsError>>> {
        loop {
            if self.finished || self.received_close {
                return Poll::Ready(None);
            }
            // Control replies (pongs, the close echo) go out as soon as the socket takes them.
            if !self.write_buffer.is_empty() {
                if let Poll::Ready(Err(error)) = self.poll_write_out(cx, Side::Reader) {
                    self.finished = true;
                    return Poll::Ready(Some(Err(error)));
                }
            }
            match self.parse_frame() {
                Err(error) => {
                    self.finished = true;
                    return Poll::Ready(Some(Err(error)));
                }
                Ok(Some((opcode, fin, rsv1, payload))) => {
                    match self.on_frame(opcode, fin, rsv1, payload) {
                        Err(error) => {
                            self.finished = true;
                            return Poll::Ready(Some(Err(error)));
                        }
                        Ok(Some(message)) => {
                            if !self.write_buffer.is_empty() {
                                let _ = self.poll_write_out(cx, Side::Reader);
                            }
                            return Poll::Ready(Some(Ok(message)));
                        }
                        Ok(None) => continue,
                    }
                }
                Ok(None) => {}
            }
            if self.read_buffer.capacity() - self.read_buffer.len() < 4096 {
                self.read_buffer.reserve(4096);
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read_buffer) {
                Poll::Pending => {
                    self.release_idle_buffers();
                    return Poll::Pending;
                }
                Poll::Ready(Err(error)) => {
                    self.finished = true;
                    return Poll::Ready(Some(Err(WsError::Io(error))));
                }
                Poll::Ready(Ok(0)) => {
                    self.finished = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(_)) => {}
            }
        }
    }
}

/// Compresses one message: raw deflate, sync flush, the 4-byte tail stripped.
fn deflate_message(compress: &mut Compress, input: &[u8], reset: bool) -> Result<Vec<u8>, WsError> {
    let mut output = Vec::with_capacity(input.len() / 2 + 64);
    let start_in = compress.total_in();
    loop {
        let consumed = usize::try_from(compress.total_in() - start_in).unwrap_or(usize::MAX);
        if output.capacity() - output.len() < 64 {
            output.reserve(output.capacity().max(1024));
        }
        compress
            .compress_vec(&input[consumed..], &mut output, FlushCompress::Sync)
            .map_err(|error| WsError::Io(io::Error::other(error)))?;
        let consumed = usize::try_from(compress.total_in() - start_in).unwrap_or(usize::MAX);
        // All input taken and room left over: the sync flush is complete.
        if consumed >= input.len() && output.len() < output.capacity() {
            break;
        }
    }
    if output.ends_with(&DEFLATE_TAIL) {
        output.truncate(output.len() - DEFLATE_TAIL.len());
    }
    if reset {
        compress.reset();
    }
    Ok(output)
}

/// Inflates `input` onto `output`, refusing to let `output` pass `limit` bytes.
fn inflate_into(
    inflate: &mut Decompress,
    input: &[u8],
    output: &mut Vec<u8>,
    limit: usize,
) -> Result<(), WsError> {
    let start_in = inflate.total_in();
    loop {
        if output.len() > limit {
            return Err(WsError::TooLarge { limit });
        }
        if output.len() == output.capacity() {
            // Double (at least a step), never past one byte over the limit.
            let target = (output.capacity() * 2)
                .max(output.len() + INFLATE_STEP)
                .min(limit + 1);
            output.reserve_exact(target.saturating_sub(output.len()).max(1));
        }
        let consumed = usize::try_from(inflate.total_in() - start_in).unwrap_or(usize::MAX);
        let before_in = inflate.total_in();
        let before_out = inflate.total_out();
        let status = inflate
            .decompress_vec(&input[consumed..], output, FlushDecompress::Sync)
            .map_err(|_| WsError::Protocol("invalid deflate data"))?;
        if output.len() > limit {
            return Err(WsError::TooLarge { limit });
        }
        let progressed = inflate.total_in() != before_in || inflate.total_out() != before_out;
        let consumed = usize::try_from(inflate.total_in() - start_in).unwrap_or(usize::MAX);
        let room_left = output.len() < output.capacity();
        if matches!(status, Status::StreamEnd) {
            // A final deflate block: later messages would find the stream ended.
            inflate.reset(false);
            return Ok(());
        }
        if consumed >= input.len() && room_left {
            return Ok(());
        }
        if !progressed && room_left {
            return Ok(());
        }
    }
}

/// A close frame's payload: empty, or a valid code and a UTF-8 reason (RFC 6455 §5.5.1, §7.4).
fn parse_close(payload: &[u8]) -> Result<Option<CloseFrame>, WsError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(WsError::Protocol("close frame of one byte")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !valid {
                return Err(WsError::Protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(&payload[2..]).map_err(|_| WsError::InvalidUtf8)?;
            Ok(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from(reason.to_owned()),
            }))
        }
    }
}

impl<S> futures::Stream for WsConnection<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Item = Result<Message, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.poll_read_message(cx)
            .map(|item| item.map(|result| result.map_err(WsError::into_axum)))
    }
}

impl<S> futures::Sink<Message> for WsConnection<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Error = axum::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        if this.write_buffer.len() >= WRITE_HIGH_WATER {
            ready!(this.poll_write_out(cx, Side::Writer)).map_err(WsError::into_axum)?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Self::Error> {
        let this = self.get_mut();
        if this.sent_close {
            return Err(WsError::Closed.into_axum());
        }
        match message {
            Message::Text(text) => this
                .queue_data(OP_TEXT, text.as_str().as_bytes())
                .map_err(WsError::into_axum)?,
            Message::Binary(bytes) => this
                .queue_data(OP_BINARY, &bytes)
                .map_err(WsError::into_axum)?,
            Message::Ping(bytes) => {
                this.queue_frame(OP_PING, false, &bytes[..bytes.len().min(125)])
            }
            Message::Pong(bytes) => {
                this.queue_frame(OP_PONG, false, &bytes[..bytes.len().min(125)])
            }
            Message::Close(frame) => this.queue_close(frame.as_ref()),
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut()
            .poll_write_out(cx, Side::Writer)
            .map_err(WsError::into_axum)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        if !this.sent_close {
            this.queue_close(None);
        }
        ready!(this.poll_write_out(cx, Side::Writer)).map_err(WsError::into_axum)?;
        let waker = this.write_waker.clone();
        Pin::new(&mut this.io)
            .poll_shutdown(&mut Context::from_waker(&waker))
            .map_err(|error| WsError::Io(error).into_axum())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_message_deflates_and_inflates_back_with_context_takeover() {
        let mut compress = Compress::new_with_window_bits(Compression::new(3), false, 10);
        let mut inflate = Decompress::new_with_window_bits(false, 15);
        for round in 0..3 {
            let text = format!("{{\"round\":{round},\"pad\":\"{}\"}}", "abc".repeat(400));
            let wire = deflate_message(&mut compress, text.as_bytes(), false).unwrap();
            assert!(
                wire.len() < text.len() / 4,
                "{} of {}",
                wire.len(),
                text.len()
            );
            let mut output = Vec::new();
            inflate_into(&mut inflate, &wire, &mut output, 1 << 20).unwrap();
            inflate_into(&mut inflate, &DEFLATE_TAIL, &mut output, 1 << 20).unwrap();
            assert_eq!(output, text.as_bytes());
        }
    }

    #[test]
    fn inflation_stops_at_the_limit() {
        let mut compress = Compress::new(Compression::new(9), false);
        let zeros = vec![0u8; 8 << 20];
        let wire = deflate_message(&mut compress, &zeros, false).unwrap();
        assert!(wire.len() < 64 << 10);
        let mut inflate = Decompress::new(false);
        let mut output = Vec::new();
        let result = inflate_into(&mut inflate, &wire, &mut output, 1 << 20);
        assert!(matches!(result, Err(WsError::TooLarge { .. })));
        assert!(output.capacity() <= (1 << 20) + INFLATE_STEP + 1);
    }

    #[test]
    fn close_payloads_are_checked() {
        assert!(parse_close(&[]).unwrap().is_none());
        assert!(parse_close(&[0x03]).is_err());
        assert!(parse_close(&1005u16.to_be_bytes()).is_err());
        assert_eq!(
            parse_close(&1000u16.to_be_bytes()).unwrap().unwrap().code,
            1000
        );
    }
}
