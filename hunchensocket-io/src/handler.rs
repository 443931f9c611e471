//! Handlers: what runs on connection, on each event, on any event and on disconnect, typed by
//! the closure's parameters (serde types for the arguments).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ack::AckSender;
use crate::socket::Socket;

pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A handler's future for one socket that catches its own panics: the panic is logged and the
/// socket ended (see `client::handler_panicked`), and the future is never polled again. So a
/// handler that panics, before its first `.await` (polled inline, in the connection's read
/// loop) or after, cannot take the connection's other work down with it.
pub(crate) struct Guarded {
    fut: Option<BoxFuture>,
    socket: Socket,
}

impl Guarded {
    pub(crate) fn new(socket: &Socket, fut: BoxFuture) -> Self {
        Guarded {
            fut: Some(fut),
            socket: socket.clone(),
        }
    }

    /// The future `make` returns; a panic while making it (a handler that is a plain closure,
    /// an error hook) is caught as one in the future would be.
    pub(crate) fn make(socket: &Socket, make: impl FnOnce() -> BoxFuture) -> Self {
        use std::panic::{AssertUnwindSafe, catch_unwind};
        let fut = match catch_unwind(AssertUnwindSafe(make)) {
            Ok(fut) => Some(fut),
            Err(panic) => {
                crate::client::handler_panicked(socket, panic.as_ref());
                None
            }
        };
        Guarded {
            fut,
            socket: socket.clone(),
        }
    }
}

impl Future for Guarded {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        use std::panic::{AssertUnwindSafe, catch_unwind};
        use std::task::Poll;
        let Some(fut) = self.fut.as_mut() else {
            return Poll::Ready(());
        };
        // Unwind safety: after a panic the future is dropped unpolled, and the socket state it
        // may have left half-changed sits behind locks that tolerate poisoning.
        let panic = match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(())) => None,
            Err(panic) => Some(panic),
        };
        let fut = self.fut.take();
        if let Some(panic) = panic {
            // Its destructor may panic as well.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(fut)));
            crate::client::handler_panicked(&self.socket, panic.as_ref());
        }
        Poll::Ready(())
    }
}

/// An event received from a client, before its arguments are deserialized.
#[derive(Debug)]
pub struct Event {
    /// The event name.
    pub name: String,
    /// The arguments, with binary attachments still as placeholders.
    pub args: Vec<Value>,
    /// The binary attachments the placeholders refer to.
    pub attachments: Vec<Bytes>,
    /// Whether, and how, to acknowledge the event.
    pub ack: AckSender,
}

impl Event {
    /// The arguments as received, binary included, ready to emit or ack back unchanged.
    pub fn raw_args(&self) -> RawArgs {
        RawArgs {
            args: self.args.clone(),
            attachments: self.attachments.clone(),
        }
    }

    /// The arguments and the ack, apart.
    pub fn split(self) -> (RawArgs, AckSender) {
        (
            RawArgs {
                args: self.args,
                attachments: self.attachments,
            },
            self.ack,
        )
    }
}

/// Event or ack arguments as they arrived: JSON with binary placeholders, and the attachments.
///
/// It serializes back to the same arguments (each placeholder as its binary attachment), so it
/// can be emitted or acked unchanged.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawArgs {
    /// The arguments, binary as `{"_placeholder":true,"num":N}`.
    pub args: Vec<Value>,
    /// The attachments the placeholders refer to.
    pub attachments: Vec<Bytes>,
}

impl serde::Serialize for RawArgs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(self.args.len())?;
        for arg in &self.args {
            tuple.serialize_element(&WithBinary(arg, &self.attachments))?;
        }
        tuple.end()
    }
}

/// A JSON value whose placeholders serialize as their attachments' bytes.
struct WithBinary<'a>(&'a Value, &'a [Bytes]);

impl serde::Serialize for WithBinary<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        if let Some(bin) = crate::args::placeholder_num(self.0).and_then(|n| self.1.get(n)) {
            return serializer.serialize_bytes(bin);
        }
        match self.0 {
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&WithBinary(item, self.1))?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    out.serialize_entry(k, &WithBinary(v, self.1))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

/// Why an event reached no handler body: its arguments did not fit the handler's types.
#[derive(Debug)]
pub struct EventError {
    /// The event name.
    pub event: String,
    /// What serde said.
    pub error: serde_json::Error,
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "arguments of {:?} do not fit the handler: {}",
            self.event, self.error
        )
    }
}

/// A handler of one event. Implemented for async closures of these shapes, where `T` is any
/// `DeserializeOwned` type built from the event's arguments (see [`from_args`](crate::args::from_args):
/// a tuple takes several arguments, anything else the first):
///
/// - `|socket: Socket| async { .. }`
/// - `|socket: Socket, data: T| async { .. }`
/// - `|socket: Socket, data: T, ack: AckSender| async { .. }`
/// - `|socket: Socket, event: Event| async { .. }` (raw arguments, binary included)
///
/// When the arguments do not deserialize, the handler is not called: the client gets an error
/// ack if it asked for one, and the socket's error hook ([`Socket::on_error`]) runs (a warning
/// is logged when there is none).
pub trait EventHandler<M>: Send + Sync + 'static {
    /// Runs the handler for `event`.
    fn call(&self, socket: Socket, event: Event) -> BoxFuture;
}

/// Marker types that tell the shapes of [`EventHandler`] apart.
#[doc(hidden)]
pub mod shape {
    /// `Fn(Socket)`
    #[derive(Debug)]
    pub struct SocketOnly;
    /// `Fn(Socket, T)`
    #[derive(Debug)]
    pub struct WithData<T>(std::marker::PhantomData<T>);
    /// `Fn(Socket, T, AckSender)`
    #[derive(Debug)]
    pub struct WithAck<T>(std::marker::PhantomData<T>);
    /// `Fn(Socket, Event)`
    #[derive(Debug)]
    pub struct Raw;
}

impl<F, Fut> EventHandler<shape::Raw> for F
where
    F: Fn(Socket, Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn call(&self, socket: Socket, event: Event) -> BoxFuture {
        Box::pin(self(socket, event))
    }
}

impl<F, Fut> EventHandler<shape::SocketOnly> for F
where
    F: Fn(Socket) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn call(&self, socket: Socket, _event: Event) -> BoxFuture {
        Box::pin(self(socket))
    }
}

impl<F, Fut, T> EventHandler<shape::WithData<T>> for F
where
    F: Fn(Socket, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
    T: DeserializeOwned + Send + 'static,
{
    fn call(&self, socket: Socket, event: Event) -> BoxFuture {
        match crate::args::from_args::<T>(event.args, &event.attachments) {
            Ok(data) => Box::pin(self(socket, data)),
            Err(error) => {
                socket.args_error(
                    EventError {
                        event: event.name,
                        error,
                    },
                    event.ack,
                );
                Box::pin(async {})
            }
        }
    }
}

impl<F, Fut, T> EventHandler<shape::WithAck<T>> for F
where
    F: Fn(Socket, T, AckSender) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
    T: DeserializeOwned + Send + 'static,
{
    fn call(&self, socket: Socket, event: Event) -> BoxFuture {
        match crate::args::from_args::<T>(event.args, &event.attachments) {
            Ok(data) => Box::pin(self(socket, data, event.ack)),
            Err(error) => {
                socket.args_error(
                    EventError {
                        event: event.name,
                        error,
                    },
                    event.ack,
                );
                Box::pin(async {})
            }
        }
    }
}

pub(crate) type ErasedEventHandler = Arc<dyn Fn(Socket, Event) -> BoxFuture + Send + Sync>;

pub(crate) fn erase<H, M>(handler: H) -> ErasedEventHandler
where
    H: EventHandler<M>,
    M: 'static,
{
    Arc::new(move |socket, event| handler.call(socket, event))
}

/// The catch-all handler: event name and raw arguments.
pub(crate) type AnyHandler = Arc<dyn Fn(Socket, String, Vec<Value>) -> BoxFuture + Send + Sync>;

/// The connection handler of a namespace.
pub(crate) type ConnectHandler = Arc<dyn Fn(Socket) -> BoxFuture + Send + Sync>;

/// A disconnect handler; runs once.
pub(crate) type DisconnectHandler =
    Box<dyn FnOnce(Socket, crate::socket::DisconnectReason) -> BoxFuture + Send>;

/// Connect middleware: may refuse the connection with a [`ConnectError`].
pub(crate) type Middleware = Arc<
    dyn Fn(Socket) -> Pin<Box<dyn Future<Output = Result<(), ConnectError>> + Send>> + Send + Sync,
>;

/// A refusal by connect middleware, sent to the client as `connect_error`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectError {
    /// The error message (`err.message` on the client).
    pub message: String,
    /// Extra data (`err.data` on the client).
    pub data: Option<Value>,
}

impl ConnectError {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> Self {
        ConnectError {
            message: message.into(),
            data: None,
        }
    }

    /// Adds data for the client.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}
