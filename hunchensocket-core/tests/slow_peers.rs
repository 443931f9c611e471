//! Peers that stop reading: what the server holds for them stays bounded, and a write that makes
//! no progress ends the connection instead of pinning it forever.

use std::net::SocketAddr;
use std::time::Duration;

use hunchensocket_core::{Accept, Config, Handshake, Message, Sender, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

/// A server whose sockets hand their [`Sender`] to the test, keep reading, and answer each
/// text message by reporting the bytes waiting in their write buffer.
async fn server(config: Config) -> (SocketAddr, mpsc::UnboundedReceiver<(Sender, usize)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let server = Server::new()
        .config(config)
        .dispatch(move |_: &Handshake<'_>| {
            let tx = tx.clone();
            Some(Accept::socket(move |ws| async move {
                let (mut reader, sender) = ws.split();
                let _ = tx.send((sender.clone(), 0));
                while let Some(Ok(msg)) = reader.recv().await {
                    if let Message::Text(_) = msg {
                        let _ = tx.send((sender.clone(), sender.buffered()));
                    }
                }
            }))
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server.serve(listener));
    (addr, rx)
}

/// A raw client with a tiny receive buffer, after the opening handshake: it reads only what a
/// test asks it to.
async fn raw_client(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    // Read the response head byte by byte, so that nothing after it is consumed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(WAIT, s.read(&mut byte))
            .await
            .expect("response head in time")
            .unwrap();
        assert_eq!(n, 1, "closed during the handshake: {head:?}");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    s
}

/// A masked client frame with a payload under 126 bytes.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let key = [0x12, 0x34, 0x56, 0x78];
    let mut out = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("in time")
        .expect("the server is alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_from_a_peer_that_never_reads_stays_bounded() {
    const HIGH_WATER: usize = 64 * 1024;
    let config = Config::default().with_write_buffer_high_water(HIGH_WATER);
    let (addr, mut reports) = server(config).await;
    let mut client = raw_client(addr).await;
    let (_sender, _) = next(&mut reports).await;

    // 64 Ki pings of 125 bytes: 8 MiB of pongs to answer, more than the kernel buffers of both
    // ends hold, to a peer that reads none of them.
    let ping = frame(0x9, &[b'p'; 125]);
    let batch: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 1024)
        .collect();
    tokio::time::timeout(WAIT, async {
        for _ in 0..64 {
            client.write_all(&batch).await.unwrap();
        }
        // Messages are read in order: the report comes once every ping has been answered.
        client.write_all(&frame(0x1, b"report")).await.unwrap();
    })
    .await
    .expect("the server keeps reading");
    let (_sender, buffered) = next(&mut reports).await;
    assert!(
        buffered <= HIGH_WATER + 127,
        "{buffered} bytes of pongs wait for a peer that does not read"
    );
}

/// Reads one unmasked server frame with a payload under 126 bytes: opcode and payload.
async fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    tokio::time::timeout(WAIT, async {
        let mut head = [0u8; 2];
        s.read_exact(&mut head).await.unwrap();
        assert!(head[1] < 126, "{head:?}");
        let mut payload = vec![0u8; head[1] as usize];
        s.read_exact(&mut payload).await.unwrap();
        (head[0] & 0x0f, payload)
    })
    .await
    .expect("a frame in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ping_is_answered_while_there_is_room() {
    let (addr, mut reports) = server(Config::default()).await;
    let mut client = raw_client(addr).await;
    let _ = next(&mut reports).await;
    // Ten pings in one write, as Autobahn's case 2.10 sends them: ten pongs, in order.
    let pings: Vec<u8> = (0..10)
        .flat_map(|i| frame(0x9, format!("payload-{i}").as_bytes()))
        .collect();
    client.write_all(&pings).await.unwrap();
    for i in 0..10 {
        let (opcode, payload) = read_frame(&mut client).await;
        assert_eq!(opcode, 0xA);
        assert_eq!(payload, format!("payload-{i}").as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_makes_no_progress_ends_the_connection() {
    let config = Config::default().with_write_timeout(Duration::from_millis(200));
    let (addr, mut reports) = server(config).await;
    let _client = raw_client(addr).await;
    let (sender, _) = next(&mut reports).await;

    // Queue for a peer that reads nothing until the kernel buffers of both ends are full and
    // bytes stay queued here (a few MiB on Linux loopback).
    let chunk = bytes::Bytes::from(vec![0u8; 256 * 1024]);
    let mut queued = 0usize;
    while sender.buffered() < 1 << 20 {
        sender.send_now(Message::Binary(chunk.clone())).unwrap();
        queued += chunk.len();
        assert!(
            queued < 1 << 30,
            "1 GiB written to a peer that reads nothing"
        );
        tokio::task::yield_now().await;
    }
    let flushed = tokio::time::timeout(WAIT, sender.flush())
        .await
        .expect("flush gives up instead of waiting forever");
    match flushed {
        Err(hunchensocket_core::Error::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}")
        }
        other => panic!("expected a timed-out write, got {other:?}"),
    }
    let closed = tokio::time::timeout(
        WAIT,
        sender.close(hunchensocket_core::CloseCode::NORMAL, ""),
    )
    .await
    .expect("close gives up instead of waiting forever");
    assert!(closed.is_err(), "the close frame was never written");
    // The writer has ended and the queued bytes are gone.
    tokio::time::timeout(WAIT, sender.closed())
        .await
        .expect("the connection has ended");
    assert_eq!(sender.buffered(), 0);
    assert!(sender.is_closed());
}
