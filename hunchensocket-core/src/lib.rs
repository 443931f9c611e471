//! WebSockets for hyper 1.x on tokio, in every version a client may speak.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod codec;
mod config;
mod error;
pub mod handshake;
pub mod message;

pub use config::Config;
pub use error::{Error, ProtocolError, Refusal, Result};
pub use message::{CloseCode, CloseFrame, Message, Utf8Bytes};
