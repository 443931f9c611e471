//! The `dispatch` example as a user meets it: the real binary, real clients.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hunchensocket_core::{Connector, Error, Message};

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &str, args: &[&str]) -> Server {
    let mut child = Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a first line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening on ADDR")
        .to_string();
    Server { child, addr }
}

async fn recv(
    ws: &mut hunchensocket_core::WebSocket<hunchensocket_core::MaybeTlsStream>,
) -> Message {
    tokio::time::timeout(Duration::from_secs(5), ws.recv())
        .await
        .expect("a message in time")
        .expect("open")
        .expect("no error")
}

#[tokio::test]
async fn chat_declines_foreign_origins_and_shout_answers_anyone() {
    let server = start(
        env!("CARGO_BIN_EXE_dispatch"),
        &[
            "--listen",
            "127.0.0.1:0",
            "--allow-origin",
            "http://good.example",
        ],
    );
    let chat = format!("ws://{}/chat", server.addr);
    let good = Connector::new().origin("http://good.example");
    let (mut a, _) = good.connect(&chat).await.expect("a joins");
    let (mut b, _) = good.connect(&chat).await.expect("b joins");
    // b's session joins the room when it opens, which a client cannot see: a says hello until
    // b hears one (each relayed to a as well), then both have heard every one of them.
    let mut said = 0;
    let heard = loop {
        a.send(format!("hello room {said}")).await.unwrap();
        said += 1;
        match tokio::time::timeout(Duration::from_millis(200), b.recv()).await {
            Ok(Some(Ok(msg))) => break msg,
            Ok(other) => panic!("b's connection ended: {other:?}"),
            Err(_) => assert!(said < 50, "b never joined the room"),
        }
    };
    let Message::Text(first) = heard else {
        panic!("a text, got {heard:?}")
    };
    let first: usize = first.trim_start_matches("hello room ").parse().unwrap();
    for n in first + 1..said {
        assert_eq!(recv(&mut b).await, Message::text(format!("hello room {n}")));
    }
    for n in 0..said {
        assert_eq!(recv(&mut a).await, Message::text(format!("hello room {n}")));
    }

    // The chat dispatcher declines another origin; no other dispatcher takes /chat: 404.
    let refused = Connector::new()
        .origin("http://evil.example")
        .connect(&chat)
        .await;
    match refused {
        Err(Error::Handshake(refusal)) => assert_eq!(refusal.status.as_u16(), 404),
        other => panic!("expected a 404 refusal, got {other:?}"),
    }

    // /shout is for everyone, over RFC 6455 and hixie-76 alike.
    let shout = format!("ws://{}/shout", server.addr);
    let (mut s, _) = Connector::new()
        .origin("http://evil.example")
        .connect(&shout)
        .await
        .unwrap();
    s.send("quiet please").await.unwrap();
    assert_eq!(recv(&mut s).await, Message::text("QUIET PLEASE"));
    let (mut old, _) = Connector::new()
        .version(hunchensocket_core::Version::Hixie76)
        .connect(&shout)
        .await
        .unwrap();
    old.send("from 2010").await.unwrap();
    assert_eq!(recv(&mut old).await, Message::text("FROM 2010"));
}
