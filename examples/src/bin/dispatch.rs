//! `dispatch --listen ADDR [--allow-origin ORIGIN]`: the original Hunchensocket's dispatcher
//! style. Two endpoints with their own handlers:
//!
//! - `/chat`: every text message is relayed to everyone in the chat room. This dispatcher
//!   declines requests whose `Origin` is not the allowed one (default `http://localhost`); a
//!   declined request falls through to the next dispatcher, and finally to `404`.
//! - `/shout`: answers each text message in upper case, for any origin.

use std::sync::{Arc, Mutex};

use hunchensocket_core::{Accept, Handshake, Message, Sender, Server};
use hunchensocket_examples::{Args, bind, shutdown_signal};

const USAGE: &str = "usage: dispatch [--listen ADDR] [--allow-origin ORIGIN]";

/// The members of the chat room.
#[derive(Clone, Default)]
struct Room {
    members: Arc<Mutex<Vec<Sender>>>,
}

impl Room {
    fn join(&self, sender: Sender) {
        self.lock().push(sender);
    }

    fn leave(&self, sender: &Sender) {
        self.lock().retain(|s| !s.same_socket(sender));
    }

    fn broadcast(&self, text: &str) {
        for member in self.lock().iter() {
            // A member that cannot take more is skipped, not waited for.
            let _ = member.send_now(Message::text(text));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Sender>> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Accepts `/chat` from the allowed origin: the session joins the room and relays its texts.
fn chat(room: Room, allowed_origin: String) -> impl Fn(&Handshake<'_>) -> Option<Accept> {
    move |hs| {
        if hs.path() != "/chat" || hs.origin() != Some(allowed_origin.as_str()) {
            return None;
        }
        let room = room.clone();
        let accept = Accept::session(move |sender: Sender| {
            room.join(sender.clone());
            move |msg: Message| {
                let (room, sender) = (room.clone(), sender.clone());
                async move {
                    match msg {
                        Message::Text(text) => room.broadcast(&text),
                        Message::Close(_) => room.leave(&sender),
                        _ => {}
                    }
                }
            }
        });
        Some(accept.first_protocol(hs))
    }
}

/// Accepts `/shout`: each text comes back in upper case.
fn shout(hs: &Handshake<'_>) -> Option<Accept> {
    (hs.path() == "/shout").then(|| {
        Accept::session(|sender: Sender| {
            move |msg: Message| {
                let sender = sender.clone();
                async move {
                    if let Message::Text(text) = msg {
                        let _ = sender.send(text.to_uppercase()).await;
                    }
                }
            }
        })
        .first_protocol(hs)
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse(USAGE);
    hunchensocket_examples::init_logs();
    let origin = args.get_or("allow-origin", "http://localhost").to_string();
    let server = Server::new()
        .dispatch(chat(Room::default(), origin))
        .dispatch(shout);
    let listener = bind(args.get_or("listen", "127.0.0.1:9002")).await?;
    server
        .serve_with_shutdown(listener, shutdown_signal())
        .await
}
