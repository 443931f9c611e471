//! The WebSocket transport: sessions opened on a WebSocket, and polling sessions upgraded to one
//! (probe, noop to the waiting poll, upgrade packet).

use std::sync::Arc;

use hunchensocket_core::{Message, PendingSocket, Reader, Upgraded};

use super::packet::Packet;
use super::session::{CloseReason, HandshakeInfo, Session, Transport, send_ws, ws_message};
use super::{Engine, Handler};

/// A session that starts on a WebSocket.
pub(crate) async fn open<H: Handler>(
    engine: Engine<H>,
    pending: PendingSocket,
    info: HandshakeInfo,
) {
    // Boxed: the task lives as long as the session, and need not keep room for the upgrade.
    let Ok(ws) = Box::pin(pending.open()).await else {
        return;
    };
    let binary = !ws.version().is_hixie();
    let (reader, sender) = ws.split();
    let inner = &engine.inner;
    let session = inner.create(
        Transport::WebSocket {
            sender: sender.clone(),
            binary,
        },
        info,
    );
    let open = inner.open_packet(&session, false);
    if sender.send_now(ws_message(&open, binary)).is_err() {
        session.close(CloseReason::TransportError);
        return;
    }
    drop(sender);
    inner.started(&session, false);
    read_loop(&engine, &session, reader, true).await;
}

/// A WebSocket that is not wanted (its session has one already): closed as soon as it opens,
/// with a close frame without a code (what `ws` sends for `websocket.close()`), waiting at most
/// the close timeout for the client's answer.
pub(crate) async fn refuse(pending: PendingSocket) {
    let Ok(ws) = pending.open().await else {
        return;
    };
    let (mut reader, sender) = ws.split();
    if sender.send_now(Message::Close(None)).is_err() {
        return;
    }
    while let Some(Ok(_)) = reader.recv().await {}
}

/// A polling session moving to a WebSocket. The session was marked `upgrading` when the
/// request was accepted; whatever happens, that mark is cleared here.
pub(crate) async fn upgrade<H: Handler>(
    engine: Engine<H>,
    session: Arc<Session<H::Data>>,
    pending: PendingSocket,
) {
    let ws = match Box::pin(pending.open()).await {
        Ok(ws) => ws,
        Err(_) => {
            session.lock().upgrading = false;
            return;
        }
    };
    let binary = !ws.version().is_hixie();
    let (mut reader, sender) = ws.split();
    let probed = tokio::time::timeout(engine.inner.config.upgrade_timeout, async {
        // 2probe → 3probe; the waiting poll is released with a noop; then 5.
        let mut probe_answered = false;
        while let Some(Ok(msg)) = reader.recv().await {
            let Message::Text(text) = msg else { continue };
            match Packet::decode_text(text) {
                Ok(Packet::Ping(data)) if data == "probe" && !probe_answered => {
                    if sender
                        .send_now(ws_message(&Packet::Pong(data), binary))
                        .is_err()
                    {
                        return false;
                    }
                    probe_answered = true;
                    session.poll_wake.notify_one();
                }
                Ok(Packet::Upgrade) if probe_answered => return true,
                Ok(Packet::Noop) => {}
                _ => return false,
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    {
        let mut st = session.lock();
        st.upgrading = false;
        if !probed || st.closed.is_some() {
            // The session lives on over polling; this WebSocket is dropped (and closed).
            return;
        }
        // Packets queued during the upgrade go first, in order, under the same lock that
        // new sends take.
        for packet in st.queue.drain(..) {
            let _ = send_ws(&sender, &packet, binary);
        }
        st.queued_bytes = 0;
        st.transport = Transport::WebSocket { sender, binary };
    }
    session.poll_wake.notify_one();
    // Its heartbeat task has been running since it opened over polling.
    read_loop(&engine, &session, reader, false).await;
}

/// Reads packets until the WebSocket or the session ends. With `heartbeat`, it also pings
/// every `ping_interval` and ends the session when a pong is `ping_timeout` late: one task per
/// session instead of two.
async fn read_loop<H: Handler>(
    engine: &Engine<H>,
    session: &Arc<Session<H::Data>>,
    mut reader: Reader<Upgraded>,
    heartbeat: bool,
) {
    let handler = &engine.inner.handler;
    let config = &engine.inner.config;
    // The next ping is due at `timer`; once it is sent, `timer` is the pong's deadline.
    let mut awaiting_pong = false;
    let timer = tokio::time::sleep(config.ping_interval);
    tokio::pin!(timer);
    loop {
        let msg = tokio::select! {
            msg = reader.recv() => msg,
            () = &mut timer, if heartbeat => {
                if awaiting_pong {
                    session.close(CloseReason::PingTimeout);
                    break;
                }
                if session.send_packet(Packet::Ping(Default::default()), false).is_err() {
                    break;
                }
                awaiting_pong = true;
                timer.as_mut().reset(tokio::time::Instant::now() + config.ping_timeout);
                continue;
            }
        };
        let Some(msg) = msg else { break };
        let packet = match msg {
            Ok(Message::Text(text)) => match Packet::decode_text(text) {
                Ok(packet) => packet,
                Err(_) => {
                    session.close(CloseReason::ParseError);
                    break;
                }
            },
            Ok(Message::Binary(data)) => Packet::from_binary(data),
            Ok(Message::Close(_)) => break,
            Ok(_) => continue,
            Err(_) => {
                session.close(CloseReason::TransportError);
                break;
            }
        };
        if heartbeat && awaiting_pong && matches!(packet, Packet::Pong(_)) {
            awaiting_pong = false;
            timer
                .as_mut()
                .reset(tokio::time::Instant::now() + config.ping_interval);
        }
        session.on_packet(handler, packet);
        if session.is_closed() {
            break;
        }
    }
    session.close(CloseReason::TransportClose);
}
