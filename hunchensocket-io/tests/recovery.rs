//! Connection state recovery with the in-memory store: a client that drops and comes back in
//! time gets its id, rooms and data back and each missed event once, in order; past the time,
//! after a namespace disconnect, or when its missed events are no longer all kept, it gets a new
//! socket and nothing partial. Acked and volatile events are never kept.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hunchensocket_io::adapter::Recovery;
use hunchensocket_io::{AckSender, Socket, SocketIo};
use serde_json::{Value, json};
use support::{WsClient, start};

struct Server {
    io: SocketIo,
    addr: std::net::SocketAddr,
    middleware_runs: Arc<AtomicUsize>,
}

async fn server(recovery: Recovery) -> Server {
    let io = SocketIo::builder()
        .connection_state_recovery(recovery)
        .build();
    let ns = io.ns("/", |socket: Socket| async move {
        socket.on(
            "join",
            |s: Socket, room: String, ack: AckSender| async move {
                s.join(room);
                s.set_data(json!({"joined": true}));
                let _ = ack.send("ok");
            },
        );
        socket.on("cut-me", |s: Socket, _: ()| async move {
            s.cut_connection();
        });
        let _ = socket.emit("hello", &socket.recovered());
    });
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    ns.use_middleware(move |_socket: Socket| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok(()) }
    });
    let addr = start(&io).await;
    Server {
        io,
        addr,
        middleware_runs: runs,
    }
}

/// The CONNECT answer of `40…`: (sid, pid).
fn ids(answer: &str) -> (String, String) {
    let v: Value =
        serde_json::from_str(answer.strip_prefix("40").expect("a CONNECT answer")).expect("JSON");
    (
        v["sid"].as_str().expect("sid").to_string(),
        v["pid"].as_str().expect("pid with recovery on").to_string(),
    )
}

/// An event packet's arguments.
fn event(packet: &str) -> Vec<Value> {
    serde_json::from_str(packet.strip_prefix("42").expect("an event")).expect("JSON")
}

/// Joins `/` (optionally asking to be recovered) and reads up to the CONNECT answer and the
/// `hello` the handler sends: (events before the answer, answer, recovered flag of hello).
async fn connect(
    addr: std::net::SocketAddr,
    auth: Option<Value>,
) -> (WsClient, Vec<String>, String, bool) {
    let mut client = WsClient::open(addr).await;
    match auth {
        Some(auth) => client.send(&format!("40{auth}")).await,
        None => client.send("40").await,
    }
    let mut before = Vec::new();
    let answer = loop {
        let p = client.next_text().await.expect("a packet");
        if p.starts_with("40") {
            break p;
        }
        before.push(p);
    };
    let hello = event(&client.next_text().await.expect("hello"));
    assert_eq!(hello[0], "hello");
    (client, before, answer, hello[1].as_bool().unwrap())
}

async fn join(client: &mut WsClient, room: &str) -> String {
    client.send(&format!("421[\"join\",\"{room}\"]")).await;
    loop {
        let p = client.next_text().await.expect("the ack");
        if p.starts_with("431") {
            return p;
        }
    }
}

#[tokio::test]
async fn a_dropped_client_gets_its_socket_back_and_every_missed_event_once_in_order() {
    let s = server(Recovery::new(Duration::from_secs(30), true)).await;
    let (mut client, _, answer, recovered) = connect(s.addr, None).await;
    assert!(!recovered);
    let (sid, pid) = ids(&answer);
    join(&mut client, "red").await;
    s.io.to("red").emit("n", &0).unwrap();
    let first = event(&client.next_text().await.unwrap());
    assert_eq!(first[..2], [json!("n"), json!(0)]);
    let offset = first[2].as_str().expect("the offset, last").to_string();

    // The connection drops without a close.
    drop(client);
    support::eventually("the socket left", || {
        s.io.of("/").unwrap().sockets().is_empty()
    })
    .await;
    s.io.to("red").emit("n", &1).unwrap();
    s.io.emit("n", &2).unwrap();
    s.io.to(sid.as_str()).emit("n", &3).unwrap();
    s.io.to("blue").emit("n", &99).unwrap();
    s.io.to("red").except(sid.as_str()).emit("n", &98).unwrap();
    s.io.volatile().emit("n", &97).unwrap();

    let runs = s.middleware_runs.load(Ordering::SeqCst);
    let (mut client, missed, answer, recovered) = connect(
        s.addr,
        Some(json!({"pid": pid, "offset": offset, "token": "t"})),
    )
    .await;
    assert!(recovered, "socket.recovered()");
    assert_eq!(ids(&answer), (sid.clone(), pid.clone()), "same id and pid");
    let numbers: Vec<Value> = missed.iter().map(|p| event(p)[1].clone()).collect();
    assert_eq!(
        numbers,
        [json!(1), json!(2), json!(3)],
        "missed, once each, in order, before the answer"
    );
    assert_eq!(
        s.middleware_runs.load(Ordering::SeqCst),
        runs,
        "middleware skipped"
    );
    let socket =
        s.io.of("/")
            .unwrap()
            .socket(&sid)
            .expect("the same socket id");
    let mut rooms = socket.rooms();
    rooms.sort();
    // Sorted on both sides: a random id may sort before or after "red".
    let mut expected = vec![sid.clone(), "red".to_string()];
    expected.sort();
    assert_eq!(rooms, expected);
    assert_eq!(socket.data(), json!({"joined": true}));
    assert_eq!(socket.auth()["token"], "t");

    // Live again, and nothing twice.
    s.io.to("red").emit("n", &4).unwrap();
    assert_eq!(event(&client.next_text().await.unwrap())[1], json!(4));
}

#[tokio::test]
async fn past_the_duration_a_client_gets_a_new_socket() {
    let s = server(Recovery::new(Duration::from_millis(50), true)).await;
    let (mut client, _, answer, _) = connect(s.addr, None).await;
    let (sid, pid) = ids(&answer);
    s.io.emit("n", &0).unwrap();
    let offset = event(&client.next_text().await.unwrap())[2].clone();
    drop(client);
    support::eventually("the socket left", || {
        s.io.of("/").unwrap().sockets().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.io.emit("n", &1).unwrap();
    let runs = s.middleware_runs.load(Ordering::SeqCst);
    let (_client, missed, answer, recovered) =
        connect(s.addr, Some(json!({"pid": pid, "offset": offset}))).await;
    assert!(!recovered);
    assert!(missed.is_empty(), "nothing replayed: {missed:?}");
    assert_ne!(ids(&answer).0, sid, "a new id");
    assert_eq!(
        s.middleware_runs.load(Ordering::SeqCst),
        runs + 1,
        "middleware ran"
    );
}

#[tokio::test]
async fn no_recovery_after_a_namespace_disconnect() {
    let s = server(Recovery::new(Duration::from_secs(30), true)).await;
    for by_server in [false, true] {
        let (mut client, _, answer, _) = connect(s.addr, None).await;
        let (sid, pid) = ids(&answer);
        s.io.emit("n", &0).unwrap();
        let offset = event(&client.next_text().await.unwrap())[2].clone();
        if by_server {
            s.io.of("/").unwrap().socket(&sid).unwrap().disconnect();
            assert_eq!(client.next_text().await.as_deref(), Some("41"));
        } else {
            client.send("41").await;
        }
        support::eventually("the socket left", || {
            s.io.of("/").unwrap().socket(&sid).is_none()
        })
        .await;
        drop(client);
        let (_c, missed, answer, recovered) =
            connect(s.addr, Some(json!({"pid": pid, "offset": offset}))).await;
        assert!(!recovered, "by_server={by_server}");
        assert!(missed.is_empty());
        assert_ne!(ids(&answer).0, sid);
    }
}

#[tokio::test]
async fn when_missed_events_were_forgotten_nothing_partial_is_replayed() {
    let s = server(Recovery::new(Duration::from_secs(30), true).with_max_packets(4)).await;
    let (mut client, _, answer, _) = connect(s.addr, None).await;
    let (sid, pid) = ids(&answer);
    s.io.emit("n", &0).unwrap();
    let offset = event(&client.next_text().await.unwrap())[2].clone();
    drop(client);
    support::eventually("the socket left", || {
        s.io.of("/").unwrap().sockets().is_empty()
    })
    .await;
    for n in 1..=10 {
        s.io.emit("n", &n).unwrap();
    }
    let (_c, missed, answer, recovered) =
        connect(s.addr, Some(json!({"pid": pid, "offset": offset}))).await;
    assert!(!recovered);
    assert!(missed.is_empty(), "never a partial replay: {missed:?}");
    assert_ne!(ids(&answer).0, sid);
}

#[tokio::test]
async fn acked_and_volatile_events_carry_no_offset() {
    let s = server(Recovery::new(Duration::from_secs(30), true)).await;
    let (mut client, _, answer, _) = connect(s.addr, None).await;
    let (sid, _) = ids(&answer);
    let socket = s.io.of("/").unwrap().socket(&sid).unwrap();
    socket.volatile().emit("v", &1).unwrap();
    assert_eq!(client.next_text().await.unwrap(), r#"42["v",1]"#);
    let asked = tokio::spawn({
        let socket = socket.clone();
        async move { socket.emit_with_ack::<_, Value>("q", &1).await }
    });
    let question = client.next_text().await.unwrap();
    assert_eq!(
        question, r#"420["q",1]"#,
        "no offset on an event that wants an ack"
    );
    client.send(r#"430["a"]"#).await;
    assert_eq!(asked.await.unwrap().unwrap(), json!("a"));
    socket.emit("plain", &1).unwrap();
    let plain = event(&client.next_text().await.unwrap());
    assert_eq!(plain.len(), 3, "a plain emit carries its offset: {plain:?}");
}

#[tokio::test]
async fn a_connection_the_server_cuts_off_is_recovered() {
    use hunchensocket_core::Message;
    let s = server(Recovery::new(Duration::from_secs(30), true)).await;
    let (mut client, _, answer, _) = connect(s.addr, None).await;
    let (sid, pid) = ids(&answer);
    join(&mut client, "red").await;
    s.io.to("red").emit("n", &0).unwrap();
    let first = event(&client.next_text().await.unwrap());
    let offset = first[2].as_str().expect("the offset").to_string();

    // The server drops the WebSocket: no DISCONNECT, no close packet, no close frame.
    client.send("42[\"cut-me\"]").await;
    let end = tokio::time::timeout(Duration::from_secs(5), client.ws.recv())
        .await
        .expect("the connection ends in time");
    assert!(
        !matches!(
            end,
            Some(Ok(Message::Close(_))) | Some(Ok(Message::Text(_)))
        ),
        "{end:?}"
    );
    support::eventually("the socket left", || {
        s.io.of("/").unwrap().sockets().is_empty()
    })
    .await;
    s.io.to("red").emit("n", &1).unwrap();

    let (_client, missed, answer, recovered) =
        connect(s.addr, Some(json!({"pid": pid, "offset": offset}))).await;
    assert!(recovered);
    assert_eq!(ids(&answer), (sid, pid));
    let numbers: Vec<Value> = missed.iter().map(|p| event(p)[1].clone()).collect();
    assert_eq!(numbers, [json!(1)]);
}

#[tokio::test]
async fn a_polling_session_the_server_cuts_off_answers_its_poll_with_an_error() {
    let s = server(Recovery::new(Duration::from_secs(30), true)).await;
    // Its CONNECT answer and `hello` came in join's one GET.
    let client = support::PollingClient::join(s.addr).await;
    let waiting = {
        let path = client.path();
        let addr = s.addr;
        tokio::spawn(async move { support::http(addr, "GET", &path, "").await })
    };
    // Whether the GET is waiting when the cut comes or arrives after it, its answer is an
    // error, never a close packet (the official client keeps a GET waiting: js-client's
    // recovery suite cuts that one).
    assert_eq!(client.post(&["42[\"cut-me\"]"]).await.status, 200);
    let res = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the poll is answered in time")
        .unwrap();
    assert_eq!(res.status, 400, "{res:?}");
    assert_eq!(support::error_code(&res.body), 1, "{res:?}");
    support::eventually("the socket left", || {
        s.io.of("/").unwrap().sockets().is_empty()
    })
    .await;
    assert_eq!(client.get().await.status, 400, "the session is gone");
}
