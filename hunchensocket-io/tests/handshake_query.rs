//! The query of an Engine.IO handshake, read once for the engine and the application alike: the
//! first value of each key, keys and values percent-decoded (escapes of two hex digits only).
//! Each case was found by the io_handshake fuzz target.

mod support;

use hunchensocket_io::{Socket, SocketIo};
use support::{http, next, start};
use tokio::sync::mpsc;

type Seen = [Option<String>; 4];

/// A server that reports what its sockets' handshakes say of `EIO`, `transport`, `a b` and `x`.
async fn server() -> (
    SocketIo,
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<Seen>,
) {
    let io = SocketIo::new();
    let (tx, rx) = mpsc::unbounded_channel();
    io.ns("/", move |socket: Socket| {
        let h = socket.handshake();
        let _ = tx.send(["EIO", "transport", "a b", "x"].map(|k| h.query(k)));
        async {}
    });
    let addr = start(&io).await;
    (io, addr, rx)
}

/// Opens a polling session with `query` and joins `/`: what the engine answered the handshake.
async fn join(addr: std::net::SocketAddr, query: &str) -> u16 {
    let res = http(addr, "GET", &format!("/socket.io/?{query}"), "").await;
    if res.status != 200 {
        return res.status;
    }
    let open: serde_json::Value = serde_json::from_str(&res.body[1..]).unwrap();
    let path = format!(
        "/socket.io/?EIO=4&transport=polling&sid={}",
        open["sid"].as_str().unwrap()
    );
    assert_eq!(http(addr, "POST", &path, "40").await.status, 200);
    200
}

fn seen(values: [&str; 4]) -> Seen {
    values.map(|v| Some(v.to_string()))
}

#[tokio::test]
async fn the_engine_takes_the_first_value_as_the_application_does() {
    // The engine took the last `transport` (a WebSocket without an upgrade: refused), while
    // the application read the first.
    let (io, addr, mut handshakes) = server().await;
    let query = "EIO=4&transport=polling&transport=websocket&EIO=3&a+b=1&a%20b=2&x=&x=2";
    assert_eq!(join(addr, query).await, 200);
    assert_eq!(next(&mut handshakes).await, seen(["4", "polling", "1", ""]));
    io.close().await;
}

#[tokio::test]
async fn encoded_keys_and_values_are_the_same_parameters() {
    // The engine did not decode its parameters (`EIO=%34` was version "%34"), and keys were
    // compared undecoded (`a+b` was not `a b`).
    let (io, addr, mut handshakes) = server().await;
    assert_eq!(
        join(addr, "E%49O=%34&transport=pollin%67&a+b=%41").await,
        200
    );
    assert_eq!(
        next(&mut handshakes).await[..3],
        seen(["4", "polling", "A", ""])[..3]
    );
    io.close().await;
}

#[tokio::test]
async fn a_sign_is_not_an_escape() {
    // `%+2` was read as the byte 2 (found by the io_handshake target too, after the probes
    // branch had fixed `percent_decode`).
    let (io, addr, mut handshakes) = server().await;
    assert_eq!(join(addr, "EIO=4&transport=polling&x=a%+2b%-1").await, 200);
    assert_eq!(next(&mut handshakes).await[3].as_deref(), Some("a% 2b%-1"));
    io.close().await;
}
