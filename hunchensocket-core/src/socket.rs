//! The async WebSocket: a `Stream` of messages and a `Sink` for them, splittable into a
//! [`Reader`] and a cloneable [`Sender`].
//!
//! One writer task per connection owns the write half. Senders encode their messages straight
//! into a shared buffer and wake it; it writes everything queued since its last write in one
//! call, so messages queued by many tasks at once cost one syscall. The reader answers pings
//! and close frames through the same buffer.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf};
use tokio::sync::Notify;
use tokio_util::io::poll_read_buf;

use crate::codec::{Codec, Role};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::handshake::Version;
use crate::message::{CloseCode, CloseFrame, Message};

/// Capacity the read buffer grows by when it needs room.
const READ_CHUNK: usize = 4096;

mod shared;

use shared::{Shared, WriteState, check_close_code, write_loop};

/// A WebSocket over any byte stream `S`, after its opening handshake.
///
/// It is a [`Stream`] of received messages and a [`Sink`] of messages to send; [`split`](Self::split)
/// gives a [`Reader`] for one task and a cloneable [`Sender`] for any number of others.
/// Pings are answered and close frames echoed by the socket itself; protocol errors are
/// answered with the matching close code before they are reported.
pub struct WebSocket<S> {
    reader: Reader<S>,
    sender: Sender,
}

/// The receiving half of a [`WebSocket`]: a [`Stream`] of messages.
///
/// The stream ends (`None`) after the close handshake, after a protocol error (reported once as
/// `Err`), or when the peer drops the connection.
pub struct Reader<S> {
    io: ReadHalf<S>,
    buf: BytesMut,
    codec: Codec,
    shared: Arc<Shared>,
    done: bool,
    /// Whether this reader has corked the writer (see `WriteState::corked`).
    corked: bool,
}

/// The sending half of a [`WebSocket`]: cheap to clone, usable from many tasks at once.
///
/// Messages from all clones go out in the order they were queued; those queued while a write is
/// under way are written together in the next one.
pub struct Sender {
    shared: Arc<Shared>,
}

impl<S> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    /// Wraps a stream whose opening handshake is complete.
    ///
    /// `prefix` holds bytes already read past the handshake (they are decoded first). Spawns
    /// the connection's writer task, so it must be called inside a tokio runtime.
    pub fn from_raw(io: S, prefix: Bytes, version: Version, role: Role, config: &Config) -> Self {
        let codec = || {
            if version.is_hixie() {
                Codec::hixie(config)
            } else {
                Codec::rfc6455(role, config)
            }
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(WriteState {
                buf: BytesMut::new(),
                codec: codec(),
                queued: 0,
                written: 0,
                close_sent: false,
                close_received: false,
                finish_after_flush: false,
                stopped: false,
                error: None,
                waiters: Vec::new(),
                reader: None,
                corked: false,
                io: None,
                pong: None,
            }),
            wake_writer: Notify::new(),
            handles: std::sync::atomic::AtomicUsize::new(2),
            version,
            high_water: config.write_buffer_high_water.max(1),
        });
        let (read, write) = tokio::io::split(io);
        shared.lock().io = Some(Box::new(write));
        tokio::spawn(write_loop(
            shared.clone(),
            config.close_timeout,
            config.write_timeout,
        ));
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&prefix);
        WebSocket {
            reader: Reader {
                io: read,
                buf,
                codec: codec(),
                shared: shared.clone(),
                done: false,
                corked: false,
            },
            sender: Sender { shared },
        }
    }

    /// Splits into a [`Reader`] and a [`Sender`].
    pub fn split(self) -> (Reader<S>, Sender) {
        (self.reader, self.sender)
    }

    /// A new [`Sender`] for this socket.
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// The protocol version the peer speaks.
    pub fn version(&self) -> Version {
        self.sender.version()
    }

    /// Queues a message (waits while the write buffer is over its high-water mark).
    pub async fn send(&mut self, msg: impl Into<Message>) -> Result<()> {
        self.sender.send(msg).await
    }

    /// Starts the close handshake with `code` and `reason`, and waits until the close is written.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.sender.close(code, reason).await
    }
}

impl<S: AsyncRead + Unpin> WebSocket<S> {
    /// Receives the next message; `None` once the connection has ended.
    pub async fn recv(&mut self) -> Option<Result<Message>> {
        self.reader.recv().await
    }
}

impl<S: AsyncRead> Reader<S> {
    /// Receives the next message; `None` once the connection has ended.
    pub async fn recv(&mut self) -> Option<Result<Message>>
    where
        S: Unpin,
    {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// The protocol version the peer speaks.
    pub fn version(&self) -> Version {
        self.shared.version
    }

    fn poll_next_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message>>>
    where
        S: Unpin,
    {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match self.codec.decode(&mut self.buf) {
                Ok(Some(msg)) => {
                    // More bytes of this read wait: let the answers to them share one write.
                    self.set_corked(!self.buf.is_empty());
                    return Poll::Ready(Some(Ok(self.on_message(msg))));
                }
                Ok(None) => {}
                Err(e) => {
                    self.set_corked(false);
                    self.done = true;
                    let close = CloseFrame::new(e.close_code(), "");
                    self.shared.queue_close(Some(close), true);
                    return Poll::Ready(Some(Err(Error::Protocol(e))));
                }
            }
            // Every whole message of the last read has been taken: write what they caused.
            self.set_corked(false);
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
                self.buf.reserve(READ_CHUNK);
            }
            let polled = poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf);
            let Poll::Ready(read) = polled else {
                // Waiting for the peer: make sure a stopped writer (close timeout, write error)
                // ends this reader too.
                if self.buf.is_empty() {
                    // Idle: hold no read buffer while waiting (most sockets, most of the time).
                    self.buf = BytesMut::new();
                }
                let mut st = self.shared.lock();
                if st.stopped {
                    self.done = true;
                    return Poll::Ready(None);
                }
                if !st.reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    st.reader = Some(cx.waker().clone());
                }
                return Poll::Pending;
            };
            match read {
                Ok(0) => {
                    // The peer went away without (finishing) a close handshake.
                    self.done = true;
                    self.shared.transport_gone();
                    return Poll::Ready(None);
                }
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    self.shared.transport_gone();
                    return Poll::Ready(Some(Err(Error::Io(e))));
                }
            }
        }
    }

    fn set_corked(&mut self, corked: bool) {
        if self.corked == corked {
            return;
        }
        self.corked = corked;
        let mut st = self.shared.lock();
        st.corked = corked;
        if !corked {
            self.shared.kick(st);
        }
    }

    fn on_message(&mut self, msg: Message) -> Message {
        match &msg {
            Message::Ping(payload) => self.shared.queue_pong(payload.clone()),
            Message::Close(frame) => {
                self.done = true;
                let echo = frame.as_ref().map(|f| CloseFrame::new(f.code, ""));
                self.shared.close_received(echo);
            }
            _ => {}
        }
        msg
    }
}

impl<S: AsyncRead + Unpin> Stream for Reader<S> {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_inner(cx)
    }
}

impl<S> Drop for Reader<S> {
    fn drop(&mut self) {
        if self.corked {
            let mut st = self.shared.lock();
            st.corked = false;
            self.shared.kick(st);
        }
        self.shared.release();
    }
}

impl Sender {
    /// The protocol version the peer speaks.
    pub fn version(&self) -> Version {
        self.shared.version
    }

    /// Whether binary messages can be sent (false over hixie-75/76).
    pub fn supports_binary(&self) -> bool {
        !self.shared.version.is_hixie()
    }

    /// Queues a message, waiting first while the write buffer is over its high-water mark.
    ///
    /// Returns once the message is queued, not written: see [`flush`](Self::flush).
    pub async fn send(&self, msg: impl Into<Message>) -> Result<()> {
        let msg = msg.into();
        // Wait for room only when the buffer is over its mark (rarely); no waker otherwise.
        if self.shared.lock().buf.len() >= self.shared.high_water {
            poll_fn(|cx| self.shared.poll_ready(cx)).await?;
        }
        self.shared.queue(&msg)
    }

    /// Queues a message without waiting, however full the write buffer is.
    pub fn send_now(&self, msg: impl Into<Message>) -> Result<()> {
        self.shared.queue(&msg.into())
    }

    /// Queues one text message whose text is `parts` one after the other, without joining
    /// them first (a protocol prefix and a shared body, say). Does not wait.
    pub fn send_text_parts(&self, parts: &[&str]) -> Result<()> {
        self.send_text_parts_within(parts, usize::MAX).map(|_| ())
    }

    /// Like [`send_text_parts`](Self::send_text_parts), unless the bytes waiting to be written
    /// plus this text would pass `limit`: then nothing is queued and `Ok(false)` says so. Room
    /// is checked and the text queued under one lock (for flow control on a hot path).
    pub fn send_text_parts_within(&self, parts: &[&str], limit: usize) -> Result<bool> {
        let mut st = self.shared.lock();
        st.check_open()?;
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if st.unwritten().saturating_add(len) > limit {
            return Ok(false);
        }
        let before = st.buf.len();
        let WriteState { codec, buf, .. } = &mut *st;
        codec.encode_text_parts(parts, buf)?;
        st.queued += (st.buf.len() - before) as u64;
        self.shared.kick(st);
        Ok(true)
    }

    /// Queues bytes that are already one or more complete frames of this socket's protocol
    /// (for a broadcast encoded once for many sockets of the same version and role).
    pub fn send_encoded(&self, frames: &[u8]) -> Result<()> {
        let mut st = self.shared.lock();
        st.check_open()?;
        st.buf.extend_from_slice(frames);
        st.queued += frames.len() as u64;
        self.shared.kick(st);
        Ok(())
    }

    /// Waits until everything queued so far has been written to the transport.
    pub async fn flush(&self) -> Result<()> {
        let target = self.shared.lock().queued;
        poll_fn(|cx| self.shared.poll_flushed(cx, target)).await
    }

    /// Starts the close handshake with `code` and `reason` (at most 123 bytes are sent) and
    /// waits until the close frame is written. Closing twice is not an error.
    ///
    /// A code that may not be sent ([`CloseCode::is_allowed_on_wire`]: 1005 and 1006 only
    /// report a close without a code, others are reserved) is refused with
    /// [`Error::InvalidCloseCode`]; nothing is sent and the socket stays open. The same holds
    /// for a [`Message::Close`] given to [`send`](Self::send).
    pub async fn close(&self, code: CloseCode, reason: &str) -> Result<()> {
        let frame = CloseFrame::new(code, reason);
        check_close_code(Some(&frame))?;
        self.shared.queue_close(Some(frame), false);
        let target = self.shared.lock().queued;
        match poll_fn(|cx| self.shared.poll_flushed(cx, target)).await {
            Ok(()) | Err(Error::ConnectionClosed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Ends the connection at once, as a network failure would: nothing more is written (what
    /// is queued is dropped), no close frame is sent, later sends are refused as after a close,
    /// and the [`Reader`] ends (`None`). The transport is dropped, not shut down, once the
    /// writer has stopped and the reader is gone. For servers that cut a client off without a
    /// goodbye (and for testing how clients take that).
    pub fn abort(&self) {
        self.shared.abort();
    }

    /// Bytes queued and not yet written (those the writer is writing included).
    pub fn buffered(&self) -> usize {
        let st = self.shared.lock();
        // A writer that has ended let go of whatever was waiting.
        if st.stopped { 0 } else { st.unwritten() }
    }

    /// Whether a close frame has been sent or the connection has ended.
    pub fn is_closed(&self) -> bool {
        let st = self.shared.lock();
        st.close_sent || st.stopped
    }

    /// Waits until the connection has ended (its writer has stopped).
    pub async fn closed(&self) {
        poll_fn(|cx| self.shared.poll_stopped(cx)).await
    }

    /// A handle that does not keep the socket open (see [`WeakSender`]).
    pub fn downgrade(&self) -> WeakSender {
        WeakSender {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// Whether `other` sends on the same connection.
    pub fn same_socket(&self, other: &Sender) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

/// A [`Sender`] that does not count as a user of the socket: when every [`Sender`] and the
/// [`Reader`] are gone, the socket closes even while weak senders exist.
#[derive(Clone, Debug)]
pub struct WeakSender {
    shared: std::sync::Weak<Shared>,
}

impl WeakSender {
    /// Starts the close handshake if the socket still exists and is open. A code that may not
    /// be sent is refused as by [`Sender::close`].
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<()> {
        let frame = CloseFrame::new(code, reason);
        check_close_code(Some(&frame))?;
        if let Some(shared) = self.shared.upgrade() {
            shared.queue_close(Some(frame), false);
        }
        Ok(())
    }

    /// Waits until the connection has ended.
    pub async fn closed(&self) {
        poll_fn(|cx| match self.shared.upgrade() {
            Some(shared) => shared.poll_stopped(cx),
            None => Poll::Ready(()),
        })
        .await
    }
}

impl Clone for Sender {
    fn clone(&self) -> Self {
        self.shared
            .handles
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.shared.release();
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("version", &self.shared.version)
            .finish_non_exhaustive()
    }
}

impl<S> std::fmt::Debug for Reader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("version", &self.shared.version)
            .finish_non_exhaustive()
    }
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("version", &self.sender.shared.version)
            .finish_non_exhaustive()
    }
}

impl Sink<Message> for Sender {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.shared.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<()> {
        self.shared.queue(&item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let target = self.shared.lock().queued;
        self.shared.poll_flushed(cx, target)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if !self.shared.lock().close_sent {
            self.shared
                .queue_close(Some(CloseFrame::new(CloseCode::NORMAL, "")), false);
        }
        let target = self.shared.lock().queued;
        match ready!(self.shared.poll_flushed(cx, target)) {
            Ok(()) | Err(Error::ConnectionClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl<S: AsyncRead + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().reader).poll_next(cx)
    }
}

impl<S> Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut self.get_mut().sender).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<()> {
        Pin::new(&mut self.get_mut().sender).start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut self.get_mut().sender).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut self.get_mut().sender).poll_close(cx)
    }
}
