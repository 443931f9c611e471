//! The Socket.IO API end to end: middleware, dynamic namespaces, typed handlers and their
//! error path, on_any, rooms and every broadcast operator, acks both ways, disconnect reasons,
//! handshake data, per-socket data and graceful shutdown — each against a client on the wire.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hunchensocket_core::{Connector, MaybeTlsStream, Message, WebSocket};
use hunchensocket_io::ack::AckError;
use hunchensocket_io::{AckSender, ConnectError, DisconnectReason, Socket, SocketIo};
use serde_json::{Value, json};

/// Polls `cond` until it holds (at most [`WAIT`]): waiting on what a test waits for, never on a
/// guess of how long it takes.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not in time: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

const WAIT: Duration = Duration::from_secs(5);

/// A bare Socket.IO client over WebSocket: enough to speak the protocol by hand.
struct Client {
    ws: WebSocket<MaybeTlsStream>,
    /// Socket.IO packets received but not yet asked for.
    backlog: Vec<String>,
}

impl Client {
    async fn open(addr: std::net::SocketAddr, query: &str) -> Client {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket{query}");
        let (ws, _) = Connector::new().connect(&url).await.expect("connect");
        let mut client = Client {
            ws,
            backlog: Vec::new(),
        };
        let open = client.next_engine().await.expect("open packet");
        assert!(open.starts_with("0{"), "{open}");
        client
    }

    /// Opens a connection and joins `nsp` (with `auth`); returns the CONNECT answer.
    async fn join(addr: std::net::SocketAddr, nsp: &str, auth: Option<Value>) -> (Client, String) {
        let mut client = Client::open(addr, "").await;
        let answer = client.connect(nsp, auth).await;
        (client, answer)
    }

    async fn connect(&mut self, nsp: &str, auth: Option<Value>) -> String {
        let prefix = if nsp == "/" {
            String::new()
        } else {
            format!("{nsp},")
        };
        let auth = auth.map(|a| a.to_string()).unwrap_or_default();
        self.send(&format!("0{prefix}{auth}")).await;
        self.recv_matching(|p| {
            p.starts_with(&format!("0{prefix}")) || p.starts_with(&format!("4{prefix}"))
        })
        .await
    }

    async fn send(&mut self, sio_packet: &str) {
        self.ws.send(format!("4{sio_packet}")).await.expect("send");
    }

    /// The next Engine.IO packet, answering pings on the way.
    async fn next_engine(&mut self) -> Option<String> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.recv())
                .await
                .ok()??
                .ok()?;
            match msg {
                Message::Text(t) if t.as_str() == "2" => {
                    let _ = self.ws.send("3").await;
                }
                Message::Text(t) => return Some(t.to_string()),
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// The next Socket.IO packet (without the Engine.IO `4`).
    async fn recv(&mut self) -> String {
        if !self.backlog.is_empty() {
            return self.backlog.remove(0);
        }
        loop {
            let packet = self
                .next_engine()
                .await
                .expect("a packet before the connection ended");
            if let Some(sio) = packet.strip_prefix('4') {
                return sio.to_string();
            }
        }
    }

    /// The first Socket.IO packet for which `pred` holds; others are kept for later.
    async fn recv_matching(&mut self, pred: impl Fn(&str) -> bool) -> String {
        if let Some(i) = self.backlog.iter().position(|p| pred(p)) {
            return self.backlog.remove(i);
        }
        loop {
            let packet = self.next_engine().await.expect("a matching packet");
            let Some(sio) = packet.strip_prefix('4') else {
                continue;
            };
            if pred(sio) {
                return sio.to_string();
            }
            self.backlog.push(sio.to_string());
        }
    }

    /// Whether a Socket.IO packet arrives within `d`.
    async fn quiet_for(&mut self, d: Duration) -> bool {
        if !self.backlog.is_empty() {
            return false;
        }
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.ws.recv()).await {
                Err(_) => return true,
                Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "2" => {
                    let _ = self.ws.send("3").await;
                }
                Ok(Some(Ok(Message::Text(t)))) if t.starts_with('4') => {
                    self.backlog.push(t[1..].to_string());
                    return false;
                }
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(_) => {}
            }
        }
    }
}

async fn start(io: &SocketIo) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(io.clone().serve(listener));
    addr
}

#[derive(Clone, Debug, PartialEq)]
struct User(String);

#[tokio::test]
async fn middleware_refuses_with_message_and_data_or_admits_with_typed_data() {
    let io = SocketIo::new();
    io.ns("/", |socket: Socket| async move {
        let user = socket.get::<User>().map(|u| u.0).unwrap_or_default();
        let _ = socket.emit("welcome", &user);
    })
    .use_middleware(|socket: Socket| async move {
        match socket.auth()["token"].as_str() {
            Some("secret") => {
                socket.set(User("ada".into()));
                Ok(())
            }
            _ => Err(ConnectError::new("not authorized").with_data(json!({ "code": 42 }))),
        }
    });
    let addr = start(&io).await;
    let (_c, refused) = Client::join(addr, "/", Some(json!({ "token": "nope" }))).await;
    let body: Value = serde_json::from_str(&refused[1..]).unwrap();
    assert_eq!(refused.as_bytes()[0], b'4', "{refused}");
    assert_eq!(
        body,
        json!({ "message": "not authorized", "data": { "code": 42 } })
    );
    let (mut c, admitted) = Client::join(addr, "/", Some(json!({ "token": "secret" }))).await;
    assert!(admitted.starts_with("0{\"sid\":"), "{admitted}");
    assert_eq!(c.recv().await, r#"2["welcome","ada"]"#);
}

#[tokio::test]
async fn dynamic_namespaces_are_created_on_demand() {
    let io = SocketIo::new();
    io.dynamic_ns(
        |path| path.starts_with("/team-"),
        |socket: Socket| async move {
            let _ = socket.emit("hello", socket.ns());
        },
    );
    let addr = start(&io).await;
    let (mut c, answer) = Client::join(addr, "/team-7", None).await;
    assert!(answer.starts_with("0/team-7,{\"sid\":"), "{answer}");
    assert_eq!(c.recv().await, r#"2/team-7,["hello","/team-7"]"#);
    assert!(io.of("/team-7").is_some());
    let other = c.connect("/other", None).await;
    assert_eq!(other, r#"4/other,{"message":"Invalid namespace"}"#);
}

#[tokio::test]
async fn typed_handlers_on_any_and_arguments_that_do_not_fit() {
    let io = SocketIo::new();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let (seen2, errors2) = (seen.clone(), errors.clone());
    io.ns("/", move |socket: Socket| {
        let (seen, errors) = (seen2.clone(), errors2.clone());
        async move {
            socket.on(
                "add",
                |_s: Socket, (a, b): (i64, i64), ack: AckSender| async move {
                    let _ = ack.send(&(a + b));
                },
            );
            socket.on_any(move |_s: Socket, name: String, args: Vec<Value>| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .push(format!("{name}{}", Value::Array(args)))
                }
            });
            socket.on_error(move |_s, e| errors.lock().unwrap().push(e.event.clone()));
        }
    });
    let addr = start(&io).await;
    let (mut c, _) = Client::join(addr, "/", None).await;
    c.send(r#"21["add",2,40]"#).await;
    assert_eq!(c.recv().await, "31[42]");
    c.send(r#"22["add","two",40]"#).await;
    let err = c.recv().await;
    assert!(
        err.starts_with(r#"32[{"error":"#),
        "an error ack, not silence: {err}"
    );
    c.send(r#"2["add",1]"#).await; // no ack asked: the hook still hears of it
    eventually("the error hook heard of both", || {
        errors.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(
        errors.lock().unwrap().clone(),
        vec!["add".to_string(), "add".to_string()]
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, vec![r#"add[2,40]"#, r#"add["two",40]"#, r#"add[1]"#]);
}

#[tokio::test]
async fn rooms_and_every_broadcast_operator() {
    let io = SocketIo::new();
    io.ns("/", |socket: Socket| async move {
        socket.on(
            "join",
            |s: Socket, room: String| async move { s.join(room) },
        );
        socket.on(
            "leave",
            |s: Socket, room: String| async move { s.leave(&room) },
        );
        socket.on("shout", |s: Socket, text: String| async move {
            let _ = s.broadcast().emit("shout", &text);
        });
        socket.on(
            "to",
            |s: Socket, (room, text): (String, String)| async move {
                let _ = s.to(room).emit("to", &text);
            },
        );
    });
    let addr = start(&io).await;
    let (mut a, _) = Client::join(addr, "/", None).await;
    let (mut b, _) = Client::join(addr, "/", None).await;
    let (mut c, _) = Client::join(addr, "/", None).await;
    for (client, room) in [(&mut a, "red"), (&mut b, "red"), (&mut c, "blue")] {
        client.send(&format!(r#"2["join","{room}"]"#)).await;
    }
    eventually("every join handled", || {
        io.to("red").sockets().len() == 2 && io.to("blue").sockets().len() == 1
    })
    .await;
    let ns = io.of("/").unwrap();
    assert_eq!(io.to("red").sockets().len(), 2);
    assert_eq!(ns.except("red").sockets().len(), 1);
    assert!(ns.rooms().contains(&"red".to_string()));

    // Server-side: to, except, namespace-wide, volatile, local.
    io.to("red").emit("n", &1).unwrap();
    assert_eq!(a.recv().await, r#"2["n",1]"#);
    assert_eq!(b.recv().await, r#"2["n",1]"#);
    assert!(c.quiet_for(Duration::from_millis(150)).await);
    io.except("red").emit("n", &2).unwrap();
    assert_eq!(c.recv().await, r#"2["n",2]"#);
    assert!(a.quiet_for(Duration::from_millis(150)).await);
    ns.emit("n", &3).unwrap();
    io.volatile().emit("n", &4).unwrap();
    io.local().to(["red", "blue"]).emit("n", &5).unwrap();
    for client in [&mut a, &mut b, &mut c] {
        assert_eq!(client.recv().await, r#"2["n",3]"#);
        assert_eq!(client.recv().await, r#"2["n",4]"#);
        assert_eq!(client.recv().await, r#"2["n",5]"#);
    }

    // From a socket: broadcast and to() leave the sender out.
    a.send(r#"2["shout","hey"]"#).await;
    assert_eq!(b.recv().await, r#"2["shout","hey"]"#);
    assert_eq!(c.recv().await, r#"2["shout","hey"]"#);
    assert!(a.quiet_for(Duration::from_millis(150)).await);
    a.send(r#"2["to","red","psst"]"#).await;
    assert_eq!(b.recv().await, r#"2["to","psst"]"#);
    assert!(c.quiet_for(Duration::from_millis(150)).await);
    assert!(a.quiet_for(Duration::from_millis(50)).await);

    // sockets_join / sockets_leave / disconnect_sockets.
    io.to("blue").join("green");
    assert_eq!(io.to("green").sockets().len(), 1);
    io.to("red").leave("red");
    assert!(io.to("red").sockets().is_empty());
    io.to("green").disconnect();
    assert_eq!(c.recv().await, "1");
    assert_eq!(ns.sockets().len(), 2);
}

#[tokio::test]
async fn acks_both_ways_and_broadcast_acks_collect_every_answer() {
    let io = SocketIo::builder()
        .ack_timeout(Duration::from_millis(300))
        .build();
    io.ns("/", |_socket: Socket| async {});
    let addr = start(&io).await;
    let (a, _) = Client::join(addr, "/", None).await;
    let (b, _) = Client::join(addr, "/", None).await;
    let sockets = io.of("/").unwrap().sockets();
    assert_eq!(sockets.len(), 2);

    // One socket, answered.
    let socket = sockets[0].clone();
    let asked = tokio::spawn(async move { socket.emit_with_ack::<_, String>("ask", &"q").await });
    let (mut first, mut second) = (a, b);
    let mut answered = false;
    for client in [&mut first, &mut second] {
        if client.quiet_for(Duration::from_millis(100)).await {
            continue;
        }
        let packet = client.recv().await;
        let (id, rest) = packet[1..].split_at(packet[1..].find('[').unwrap());
        assert_eq!(rest, r#"["ask","q"]"#);
        client.send(&format!(r#"3{id}["yes"]"#)).await;
        answered = true;
    }
    assert!(answered);
    assert_eq!(asked.await.unwrap().unwrap(), "yes");

    // Broadcast with acks: one answers, one stays silent; both results come back.
    let waiting = {
        let io = io.clone();
        tokio::spawn(async move {
            io.timeout(Duration::from_millis(400))
                .emit_with_ack::<_, u32>("count", &())
                .await
        })
    };
    let packet = first.recv().await;
    let id = &packet[1..packet.find('[').unwrap()];
    first.send(&format!("3{id}[7]")).await;
    let _ignored = second.recv().await;
    let results = waiting.await.unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results.iter().filter(|r| matches!(r, Ok(7))).count(), 1);
    assert_eq!(
        results
            .iter()
            .filter(|r| matches!(r, Err(AckError::Timeout)))
            .count(),
        1
    );
}

#[tokio::test]
async fn disconnect_reasons_handshake_and_graceful_shutdown() {
    let io = SocketIo::new();
    let reasons = Arc::new(Mutex::new(Vec::<DisconnectReason>::new()));
    let r2 = reasons.clone();
    io.ns("/", move |socket: Socket| {
        let reasons = r2.clone();
        async move {
            let name = socket.handshake().query("name").unwrap_or_default();
            let peer = socket
                .handshake()
                .peer
                .map(|p| p.ip().to_string())
                .unwrap_or_default();
            let _ = socket.emit("info", &(name, peer, socket.transport_name()));
            socket.on("kick", |s: Socket| async move { s.disconnect() });
            socket.on_disconnect(
                move |_s, reason| async move { reasons.lock().unwrap().push(reason) },
            );
        }
    });
    let addr = start(&io).await;

    let mut named = Client::open(addr, "&name=ada%20l").await;
    named.connect("/", None).await;
    assert_eq!(
        named.recv().await,
        r#"2["info","ada l","127.0.0.1","websocket"]"#
    );

    // The client leaves the namespace; the connection stays (it can join again).
    named.send("1").await;
    eventually("the client left the namespace", || {
        reasons.lock().unwrap().len() == 1
    })
    .await;
    let again = named.connect("/", None).await;
    assert!(again.starts_with("0{"), "{again}");
    // The server disconnects it.
    named.send(r#"2["kick"]"#).await;
    assert_eq!(named.recv_matching(|p| p == "1").await, "1");
    // The client goes away.
    let (dropped, _) = Client::join(addr, "/", None).await;
    drop(dropped);
    eventually("the dropped client's disconnect", || {
        reasons.lock().unwrap().len() == 3
    })
    .await;
    // Shutdown: the remaining socket gets its disconnect, and the connection a close.
    let (mut last, _) = Client::join(addr, "/", None).await;
    io.close().await;
    loop {
        match tokio::time::timeout(WAIT, last.ws.recv()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => {
                assert_eq!(frame.map(|f| f.code.0), Some(1001));
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    eventually("the shutdown's disconnect", || {
        reasons.lock().unwrap().len() == 4
    })
    .await;
    let reasons = reasons.lock().unwrap().clone();
    assert_eq!(
        reasons,
        vec![
            DisconnectReason::ClientNamespaceDisconnect,
            DisconnectReason::ServerNamespaceDisconnect,
            DisconnectReason::TransportClose,
            DisconnectReason::ServerShutdown,
        ]
    );
    assert_eq!(io.connections(), 0);
}
