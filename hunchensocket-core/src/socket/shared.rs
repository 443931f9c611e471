//! The shared state of a socket's two halves: the write buffer and its flow control, the
//! close handshake's progress, inline writes, and the writer task.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::handshake::Version;
use crate::message::{CloseCode, CloseFrame, Message};

pub(super) struct Shared {
    pub(super) state: Mutex<WriteState>,
    /// Wakes the writer task: something was queued, or it should stop.
    pub(super) wake_writer: Notify,
    /// Live user handles (readers and senders); at zero the socket closes itself.
    pub(super) handles: std::sync::atomic::AtomicUsize,
    pub(super) version: Version,
    pub(super) high_water: usize,
}

pub(super) struct WriteState {
    /// Encoded frames waiting for the writer.
    pub(super) buf: BytesMut,
    /// Encoder (separate from the reader's decoder, so the two halves never contend).
    pub(super) codec: Codec,
    /// Bytes ever queued, and bytes ever written: a flush waits until they are equal.
    pub(super) queued: u64,
    pub(super) written: u64,
    /// A close frame has been queued: nothing but it may follow.
    pub(super) close_sent: bool,
    /// The peer's close frame (or its hixie `FF 00`) has arrived.
    pub(super) close_received: bool,
    /// Close the transport once the buffer is written, without waiting for the peer's close.
    pub(super) finish_after_flush: bool,
    /// The writer task has stopped; `error` says why when it failed.
    pub(super) stopped: bool,
    pub(super) error: Option<io::ErrorKind>,
    /// Tasks waiting for room in the buffer or for a flush.
    pub(super) waiters: Vec<Waker>,
    /// The reader, woken when the writer stops so that it ends too.
    pub(super) reader: Option<Waker>,
    /// The reader still holds messages of the same read: senders queue without writing, so
    /// the answers to a batch of messages go out in one write when the reader drains it.
    pub(super) corked: bool,
    /// The write half, here whenever no write is waiting on it: a sender that queues bytes
    /// writes them at once (non-blocking). The writer task borrows it only for a write that
    /// would block, and puts it back after.
    pub(super) io: Option<WriteIo>,
    /// The payload of the latest ping left unanswered because the bytes waiting to be written
    /// had reached the high-water mark; its pong is queued once they drain below it. RFC 6455
    /// (§5.5.3) lets an endpoint answer only the most recent of several pings, so a peer that
    /// floods pings and never reads holds at most one pong beyond the mark.
    pub(super) pong: Option<Bytes>,
}

pub(super) type WriteIo = Box<dyn AsyncWrite + Send + Unpin>;

impl WriteState {
    /// Writes queued bytes without waiting, while the transport takes them. Returns whether the
    /// writer task is needed: bytes are left (the transport would block, or the writer holds
    /// it), or the write failed.
    pub(super) fn write_inline(&mut self, high_water: usize) -> bool {
        if self.buf.is_empty() || self.error.is_some() {
            return self.error.is_some();
        }
        let Some(mut io) = self.io.take() else {
            return true;
        };
        let needs_writer = self.write_now(&mut io, high_water);
        self.io = Some(io);
        needs_writer
    }

    fn write_now(&mut self, io: &mut WriteIo, high_water: usize) -> bool {
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
                    self.release_pong(high_water);
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

    /// Bytes queued and not written yet, those the writer task holds included.
    pub(super) fn unwritten(&self) -> usize {
        usize::try_from(self.queued - self.written).unwrap_or(usize::MAX)
    }

    /// Encodes a pong after the queued bytes.
    fn encode_pong(&mut self, payload: Bytes) {
        let before = self.buf.len();
        let WriteState { codec, buf, .. } = self;
        if codec.encode(&Message::Pong(payload), buf).is_ok() {
            self.queued += (self.buf.len() - before) as u64;
        }
    }

    /// After bytes were written: queue the pong held back for room, if there is room now
    /// (and no close has been queued, after which nothing may follow).
    pub(super) fn release_pong(&mut self, high_water: usize) {
        if self.pong.is_none() || self.unwritten() >= high_water {
            return;
        }
        if let Some(payload) = self.pong.take() {
            if !self.close_sent {
                self.encode_pong(payload);
            }
        }
    }

    pub(super) fn check_open(&self) -> Result<()> {
        if self.stopped {
            Err(Error::ConnectionClosed)
        } else if self.close_sent {
            Err(Error::AlreadyClosed)
        } else {
            Ok(())
        }
    }

    pub(super) fn wake_waiters(&mut self) {
        for w in self.waiters.drain(..) {
            w.wake();
        }
    }

    pub(super) fn register(&mut self, cx: &Context<'_>) {
        if !self.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            self.waiters.push(cx.waker().clone());
        }
    }
}

impl Shared {
    /// After bytes were queued: write them now if the transport takes them, and wake the
    /// writer task only for what it must do (a write that would block, an error).
    pub(super) fn kick(&self, mut st: MutexGuard<'_, WriteState>) {
        // Corked: the reader writes when it has taken the rest of its read; the writer task is
        // woken too, in case whoever consumes the reader keeps it waiting.
        let needs_writer = if st.corked {
            !st.buf.is_empty()
        } else {
            st.write_inline(self.high_water)
        };
        drop(st);
        if needs_writer {
            self.wake_writer.notify_one();
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, WriteState> {
        // A panic while holding this lock cannot leave the state half-updated in a way that
        // matters more than losing the connection, so a poisoned lock is used as it is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut st = self.lock();
        st.check_open()?;
        if st.buf.len() < self.high_water {
            return Poll::Ready(Ok(()));
        }
        st.register(cx);
        Poll::Pending
    }

    pub(super) fn poll_stopped(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.lock();
        if st.stopped {
            return Poll::Ready(());
        }
        st.register(cx);
        Poll::Pending
    }

    pub(super) fn poll_flushed(&self, cx: &mut Context<'_>, target: u64) -> Poll<Result<()>> {
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

    pub(super) fn queue(&self, msg: &Message) -> Result<()> {
        if let Message::Close(frame) = msg {
            check_close_code(frame.as_ref())?;
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

    /// Answers a ping; at the high-water mark, only the latest ping is remembered, to be
    /// answered when there is room (see `WriteState::pong`).
    pub(super) fn queue_pong(&self, payload: Bytes) {
        let mut st = self.lock();
        if st.close_sent || st.stopped {
            return;
        }
        if st.unwritten() >= self.high_water {
            st.pong = Some(payload);
            return;
        }
        st.encode_pong(payload);
        self.kick(st);
    }

    /// Queues a close frame unless one was sent already. `fail` closes the transport as soon as
    /// it is written (a protocol error: the peer's answer is not awaited).
    pub(super) fn queue_close(&self, frame: Option<CloseFrame>, fail: bool) {
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
            st.write_inline(self.high_water);
        }
        drop(st);
        self.wake_writer.notify_one();
    }

    /// The peer's close arrived: echo it (if we had not closed first), then end the connection.
    pub(super) fn close_received(&self, echo: Option<CloseFrame>) {
        {
            let mut st = self.lock();
            st.close_received = true;
            st.finish_after_flush = true;
        }
        self.queue_close(echo, true);
    }

    /// [`Sender::abort`](super::Sender::abort): the writer fails at its next step (nothing
    /// more is written), which stops it and ends the reader.
    pub(super) fn abort(&self) {
        {
            let mut st = self.lock();
            if st.stopped {
                return;
            }
            st.error.get_or_insert(io::ErrorKind::ConnectionAborted);
            st.close_sent = true;
            st.buf.clear();
            st.pong = None;
        }
        self.wake_writer.notify_one();
    }

    /// The read side hit EOF or an error: nothing more can be exchanged.
    pub(super) fn transport_gone(&self) {
        self.lock().finish_after_flush = true;
        self.wake_writer.notify_one();
    }

    /// A user handle was dropped; the last one closes the connection gracefully.
    pub(super) fn release(&self) {
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

/// Refuses a close code that may not go on the wire (1005, 1006, reserved codes), before
/// anything is queued.
pub(super) fn check_close_code(frame: Option<&CloseFrame>) -> Result<()> {
    match frame {
        Some(frame) if !frame.code.is_allowed_on_wire() => Err(Error::InvalidCloseCode(frame.code)),
        _ => Ok(()),
    }
}

/// What the writer does next.
enum Step {
    Write(BytesMut, WriteIo),
    Wait { close_pending: bool },
    Finish,
    Fail(io::ErrorKind),
}

/// Runs one transport operation, failing it with `TimedOut` when it makes no progress within
/// `limit` (a peer that stopped reading).
async fn within<T>(
    limit: Duration,
    op: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(limit, op)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

/// The connection's writer task: writes what senders could not write at once, completes the
/// close, and shuts the transport down. A write or the shutdown that makes no progress for
/// `write_timeout` ends it with an error.
pub(super) async fn write_loop(
    shared: Arc<Shared>,
    close_timeout: Duration,
    write_timeout: Duration,
) {
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
                            let w = within(write_timeout, io.write(out.chunk())).await?;
                            if w == 0 {
                                return Err(io::ErrorKind::WriteZero.into());
                            }
                            out.advance(w);
                        }
                        within(write_timeout, io.flush()).await
                    }
                    .await;
                    let mut st = shared.lock();
                    st.io = Some(io);
                    written?;
                    st.written += n;
                    st.release_pong(shared.high_water);
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
        (Ok(()), Some(mut io)) => within(write_timeout, io.shutdown()).await,
        (Ok(()), None) => Ok(()),
        (Err(e), _) => Err(e),
    };
    let mut st = shared.lock();
    st.stopped = true;
    // Nothing more will be written: free what was waiting.
    st.buf = BytesMut::new();
    st.pong = None;
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
