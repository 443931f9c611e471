//! The async WebSocket: a `Stream` of messages and a `Sink` for them, splittable into a
//! [`Reader`] and a cloneable [`Sender`].
//!
//! One writer task per connection owns the write half. Senders encode their messages straight
//! into a shared buffer and wake it; it writes everything queued since its last write in one
//! call, so messages queued by many tasks at once cost one syscall. The reader answers pings
//! and close frames through the same buffer.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf};
use tokio::sync::Notify;
use tokio_util::io::poll_read_buf;

use crate::codec::{Codec, Role};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::handshake::Version;
use crate::message::{CloseCode, CloseFrame, Message};

/// Capacity the read buffer grows by when it needs room.
const READ_CHUNK: usize = 4096;

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

struct Shared {
    state: Mutex<WriteState>,
    /// Wakes the writer task: something was queued, or it should stop.
    wake_writer: Notify,
    /// Live user handles (readers and senders); at zero the socket closes itself.
    handles: std::sync::atomic::AtomicUsize,
    version: Version,
    high_water: usize,
}

struct WriteState {
    /// Encoded frames waiting for the writer.
    buf: BytesMut,
    /// Encoder (separate from the reader's decoder, so the two halves never contend).
    codec: Codec,
    /// Bytes ever queued, and bytes ever written: a flush waits until they are equal.
    queued: u64,
    written: u64,
    /// A close frame has been queued: nothing but it may follow.
    close_sent: bool,
    /// The peer's close frame (or its hixie `FF 00`) has arrived.
    close_received: bool,
    /// Close the transport once the buffer is written, without waiting for the peer's close.
    finish_after_flush: bool,
    /// The writer task has stopped; `error` says why when it failed.
    stopped: bool,
    error: Option<io::ErrorKind>,
    /// Tasks waiting for room in the buffer or for a flush.
    waiters: Vec<Waker>,
    /// The reader, woken when the writer stops so that it ends too.
    reader: Option<Waker>,
    /// The reader still holds messages of the same read: senders queue without writing, so
    /// the answers to a batch of messages go out in one write when the reader drains it.
    corked: bool,
    /// The write half, here whenever no write is waiting on it: a sender that queues bytes
    /// writes them at once (non-blocking). The writer task borrows it only for a write that
    /// would block, and puts it back after.
    io: Option<WriteIo>,
}

type WriteIo = Box<dyn AsyncWrite + Send + Unpin>;

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
            }),
            wake_writer: Notify::new(),
            handles: std::sync::atomic::AtomicUsize::new(2),
            version,
            high_water: config.write_buffer_high_water.max(1),
        });
        let (read, write) = tokio::io::split(io);
        shared.lock().io = Some(Box::new(write));
        tokio::spawn(write_loop(shared.clone(), config.close_timeout));
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
        let mut st = self.shared.lock();
        st.check_open()?;
        let before = st.buf.len();
        let WriteState { codec, buf, .. } = &mut *st;
        codec.encode_text_parts(parts, buf)?;
        st.queued += (st.buf.len() - before) as u64;
        self.shared.kick(st);
        Ok(())
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
    pub async fn close(&self, code: CloseCode, reason: &str) -> Result<()> {
        self.shared
            .queue_close(Some(CloseFrame::new(code, reason)), false);
        let target = self.shared.lock().queued;
        match poll_fn(|cx| self.shared.poll_flushed(cx, target)).await {
            Ok(()) | Err(Error::ConnectionClosed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Bytes queued and not yet written.
    pub fn buffered(&self) -> usize {
        self.shared.lock().buf.len()
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
    /// Starts the close handshake if the socket still exists and is open.
    pub fn close(&self, code: CloseCode, reason: &str) {
        if let Some(shared) = self.shared.upgrade() {
            shared.queue_close(Some(CloseFrame::new(code, reason)), false);
        }
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

impl WriteState {
    /// Writes queued bytes without waiting, while the transport takes them. Returns whether the
    /// writer task is needed: bytes are left (the transport would block, or the writer holds
    /// it), or the write failed.
    fn write_inline(&mut self) -> bool {
        if self.buf.is_empty() || self.error.is_some() {
            return self.error.is_some();
        }
        let Some(io) = self.io.as_mut() else {
            return true;
        };
        // A noop waker: if the transport would block, the writer task polls it again with a
        // real one.
        let mut cx = Context::from_waker(Waker::noop());
        let mut wrote = false;
        while !self.buf.is_empty() {
            match Pin::new(&mut *io).poll_write(&mut cx, &self.buf) {
                Poll::Ready(Ok(0)) => {
                    self.error = Some(io::ErrorKind::WriteZero);
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    self.buf.advance(n);
                    self.written += n as u64;
                    wrote = true;
                }
                Poll::Ready(Err(e)) => {
                    self.error = Some(e.kind());
                    return true;
                }
                Poll::Pending => break,
            }
        }
        if self.buf.is_empty() {
            // Streams that buffer (TLS) hold bytes until flushed.
            match Pin::new(&mut *io).poll_flush(&mut cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    self.error = Some(e.kind());
                    return true;
                }
                Poll::Pending => return true,
            }
        }
        if wrote {
            self.wake_waiters();
        }
        !self.buf.is_empty()
    }

    fn check_open(&self) -> Result<()> {
        if self.stopped {
            Err(Error::ConnectionClosed)
        } else if self.close_sent {
            Err(Error::AlreadyClosed)
        } else {
            Ok(())
        }
    }

    fn wake_waiters(&mut self) {
        for w in self.waiters.drain(..) {
            w.wake();
        }
    }

    fn register(&mut self, cx: &Context<'_>) {
        if !self.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            self.waiters.push(cx.waker().clone());
        }
    }
}

impl Shared {
    /// After bytes were queued: write them now if the transport takes them, and wake the
    /// writer task only for what it must do (a write that would block, an error).
    fn kick(&self, mut st: MutexGuard<'_, WriteState>) {
        // Corked: the reader writes when it has taken the rest of its read; the writer task is
        // woken too, in case whoever consumes the reader keeps it waiting.
        let needs_writer = if st.corked {
            !st.buf.is_empty()
        } else {
            st.write_inline()
        };
        drop(st);
        if needs_writer {
            self.wake_writer.notify_one();
        }
    }

    fn lock(&self) -> MutexGuard<'_, WriteState> {
        // A panic while holding this lock cannot leave the state half-updated in a way that
        // matters more than losing the connection, so a poisoned lock is used as it is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut st = self.lock();
        st.check_open()?;
        if st.buf.len() < self.high_water {
            return Poll::Ready(Ok(()));
        }
        st.register(cx);
        Poll::Pending
    }

    fn poll_stopped(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.lock();
        if st.stopped {
            return Poll::Ready(());
        }
        st.register(cx);
        Poll::Pending
    }

    fn poll_flushed(&self, cx: &mut Context<'_>, target: u64) -> Poll<Result<()>> {
        let mut st = self.lock();
        if st.written >= target {
            return Poll::Ready(Ok(()));
        }
        if st.stopped {
            return Poll::Ready(Err(match st.error {
                Some(kind) => Error::Io(kind.into()),
                None => Error::ConnectionClosed,
            }));
        }
        st.register(cx);
        Poll::Pending
    }

    fn queue(&self, msg: &Message) -> Result<()> {
        if let Message::Close(frame) = msg {
            self.queue_close(frame.clone(), false);
            return Ok(());
        }
        let mut st = self.lock();
        st.check_open()?;
        let before = st.buf.len();
        let WriteState { codec, buf, .. } = &mut *st;
        codec.encode(msg, buf)?;
        let added = st.buf.len() - before;
        if added == 0 {
            return Ok(());
        }
        st.queued += added as u64;
        self.kick(st);
        Ok(())
    }

    fn queue_pong(&self, payload: Bytes) {
        let mut st = self.lock();
        if st.close_sent || st.stopped {
            return;
        }
        let before = st.buf.len();
        let WriteState { codec, buf, .. } = &mut *st;
        if codec.encode(&Message::Pong(payload), buf).is_ok() {
            st.queued += (st.buf.len() - before) as u64;
            self.kick(st);
        }
    }

    /// Queues a close frame unless one was sent already. `fail` closes the transport as soon as
    /// it is written (a protocol error: the peer's answer is not awaited).
    fn queue_close(&self, frame: Option<CloseFrame>, fail: bool) {
        let mut st = self.lock();
        if fail {
            st.finish_after_flush = true;
        }
        if self.version == Version::Hixie75 {
            // hixie-75 has no closing handshake: closing is closing the TCP connection.
            st.close_sent = true;
            st.finish_after_flush = true;
        } else if !st.close_sent && !st.stopped {
            st.close_sent = true;
            let before = st.buf.len();
            let WriteState { codec, buf, .. } = &mut *st;
            // Encoding a close frame cannot fail (its reason is truncated to fit).
            let _ = codec.encode(&Message::Close(frame), buf);
            st.queued += (st.buf.len() - before) as u64;
            st.write_inline();
        }
        drop(st);
        self.wake_writer.notify_one();
    }

    /// The peer's close arrived: echo it (if we had not closed first), then end the connection.
    fn close_received(&self, echo: Option<CloseFrame>) {
        {
            let mut st = self.lock();
            st.close_received = true;
            st.finish_after_flush = true;
        }
        self.queue_close(echo, true);
    }

    /// The read side hit EOF or an error: nothing more can be exchanged.
    fn transport_gone(&self) {
        self.lock().finish_after_flush = true;
        self.wake_writer.notify_one();
    }

    /// A user handle was dropped; the last one closes the connection gracefully.
    fn release(&self) {
        if self
            .handles
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
            > 1
        {
            return;
        }
        // Nobody is left to read the peer's answer: send the close and finish.
        self.lock().finish_after_flush = true;
        let frame = if self.version.is_hixie() {
            None
        } else {
            Some(CloseFrame::new(CloseCode::NORMAL, ""))
        };
        self.queue_close(frame, true);
    }
}

/// What the writer does next.
enum Step {
    Write(BytesMut, WriteIo),
    Wait { close_pending: bool },
    Finish,
    Fail(io::ErrorKind),
}

/// The connection's writer task: writes what senders could not write at once, completes the
/// close, and shuts the transport down.
async fn write_loop(shared: Arc<Shared>, close_timeout: std::time::Duration) {
    let mut spare = BytesMut::new();
    let mut close_deadline: Option<tokio::time::Instant> = None;
    let result: io::Result<()> = async {
        loop {
            let step = {
                let mut st = shared.lock();
                if let Some(kind) = st.error {
                    Step::Fail(kind)
                } else if !st.buf.is_empty() && st.io.is_some() {
                    spare.clear();
                    let out = std::mem::replace(&mut st.buf, std::mem::take(&mut spare));
                    let io = st.io.take().expect("checked above");
                    Step::Write(out, io)
                } else if st.finish_after_flush || (st.close_sent && st.close_received) {
                    Step::Finish
                } else {
                    Step::Wait {
                        close_pending: st.close_sent,
                    }
                }
            };
            match step {
                Step::Write(mut out, mut io) => {
                    let n = out.len() as u64;
                    let written = async {
                        while out.has_remaining() {
                            let w = io.write(out.chunk()).await?;
                            if w == 0 {
                                return Err(io::ErrorKind::WriteZero.into());
                            }
                            out.advance(w);
                        }
                        io.flush().await
                    }
                    .await;
                    let mut st = shared.lock();
                    st.io = Some(io);
                    written?;
                    st.written += n;
                    st.wake_waiters();
                    drop(st);
                    spare = out;
                }
                Step::Fail(kind) => return Err(kind.into()),
                Step::Finish => return Ok(()),
                Step::Wait { close_pending } => {
                    if close_pending {
                        // We closed first: wait for the peer's close, but not forever.
                        let deadline = *close_deadline
                            .get_or_insert_with(|| tokio::time::Instant::now() + close_timeout);
                        if tokio::time::timeout_at(deadline, shared.wake_writer.notified())
                            .await
                            .is_err()
                        {
                            return Ok(());
                        }
                    } else {
                        shared.wake_writer.notified().await;
                    }
                }
            }
        }
    }
    .await;
    let io = shared.lock().io.take();
    let shutdown = match (result, io) {
        (Ok(()), Some(mut io)) => io.shutdown().await,
        (Ok(()), None) => Ok(()),
        (Err(e), _) => Err(e),
    };
    let mut st = shared.lock();
    st.stopped = true;
    if let Some(reader) = st.reader.take() {
        reader.wake();
    }
    if let Err(e) = shutdown {
        if e.kind() != io::ErrorKind::NotConnected {
            st.error = Some(e.kind());
        }
    }
    st.wake_waiters();
}
