//! Sans-io framing: bytes in, messages out, and back, for RFC 6455 and for hixie-75/76.
//!
//! Nothing here touches a socket: a codec reads from and writes to [`BytesMut`] buffers that
//! the caller fills and drains, so it can be tested with byte vectors and fuzzed directly.
//!
//! ```
//! use bytes::BytesMut;
//! use hunchensocket_core::codec::{Codec, Role};
//! use hunchensocket_core::{Config, Message};
//!
//! let config = Config::default();
//! let mut client = Codec::rfc6455(Role::Client, &config);
//! let mut server = Codec::rfc6455(Role::Server, &config);
//!
//! let mut wire = BytesMut::new();
//! client.encode(&Message::text("hi"), &mut wire).unwrap();
//! assert_eq!(server.decode(&mut wire).unwrap(), Some(Message::text("hi")));
//! assert_eq!(server.decode(&mut wire).unwrap(), None);
//! ```

use bytes::BytesMut;

use crate::config::Config;
use crate::error::{Error, ProtocolError};
use crate::message::Message;

pub mod hixie;
mod mask;
pub mod rfc6455;

pub use mask::{apply_mask, apply_mask_offset};

/// Which end of the connection a codec speaks for (RFC 6455 masks client frames only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The accepting end: expects masked frames, sends unmasked ones.
    Server,
    /// The connecting end: expects unmasked frames, sends masked ones.
    Client,
}

/// The codec of one connection, in the protocol its handshake chose.
#[derive(Debug)]
pub enum Codec {
    /// RFC 6455 framing (also hybi-07/08).
    Rfc6455(rfc6455::Codec),
    /// hixie-75/76 framing.
    Hixie(hixie::Codec),
}

impl Codec {
    /// An RFC 6455 codec for `role`, with the limits of `config`.
    pub fn rfc6455(role: Role, config: &Config) -> Codec {
        Codec::Rfc6455(
            rfc6455::Codec::new(role, config.max_frame_size, config.max_message_size)
                .with_max_fragments(config.max_fragments),
        )
    }

    /// A hixie-75/76 codec, with the message limit of `config`.
    pub fn hixie(config: &Config) -> Codec {
        Codec::Hixie(hixie::Codec::new(config.max_message_size))
    }

    /// Whether this codec speaks hixie-75/76 (text and close only).
    pub fn is_hixie(&self) -> bool {
        matches!(self, Codec::Hixie(_))
    }

    /// Consumes complete frames from `src`; returns the next message, `Ok(None)` when more
    /// bytes are needed.
    ///
    /// See [`rfc6455::Codec::decode`] and [`hixie::Codec::decode`].
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        match self {
            Codec::Rfc6455(codec) => codec.decode(src),
            Codec::Hixie(codec) => codec.decode(src),
        }
    }

    /// Appends the encoding of `msg` to `dst`.
    ///
    /// Over hixie, [`Message::Binary`] fails with [`Error::BinaryUnsupported`], and pings and
    /// pongs write nothing. See [`rfc6455::Codec::encode`] and [`hixie::Codec::encode`].
    pub fn encode(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<(), Error> {
        match self {
            Codec::Rfc6455(codec) => codec.encode(msg, dst),
            Codec::Hixie(codec) => codec.encode(msg, dst),
        }
    }

    /// Appends one text message whose text is `parts` one after the other, without joining
    /// them first.
    pub fn encode_text_parts(&mut self, parts: &[&str], dst: &mut BytesMut) -> Result<(), Error> {
        let mut bytes: [&[u8]; 4] = [&[]; 4];
        if parts.len() > bytes.len() {
            return self.encode(&Message::text(parts.concat()), dst);
        }
        for (b, p) in bytes.iter_mut().zip(parts) {
            *b = p.as_bytes();
        }
        let bytes = &bytes[..parts.len()];
        match self {
            Codec::Rfc6455(codec) => codec.encode_text_parts(bytes, dst),
            Codec::Hixie(codec) => {
                codec.encode_text_parts(bytes, dst);
                Ok(())
            }
        }
    }
}

/// Test helper of both codecs: feeds `bytes` in chunks of the given sizes (cycled; 0 counts as
/// 1), decoding after each chunk; stops at the first error.
#[cfg(test)]
pub(crate) fn feed_chunked(
    bytes: &[u8],
    sizes: &[usize],
    mut decode: impl FnMut(&mut BytesMut) -> Result<Option<Message>, ProtocolError>,
) -> Result<Vec<Message>, ProtocolError> {
    let mut src = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        i += 1;
        src.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(msg) = decode(&mut src)? {
            out.push(msg);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::message::{CloseCode, CloseFrame};

    #[test]
    fn text_parts_equal_the_joined_text() {
        let config = Config::default();
        let parts = ["4", "[\"chat\",\"h\u{e9}llo\"]", ""];
        let joined = Message::text(parts.concat());
        // Server role and hixie: byte for byte the same frame.
        for mut codec in [Codec::rfc6455(Role::Server, &config), Codec::hixie(&config)] {
            let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
            codec.encode_text_parts(&parts, &mut a).unwrap();
            codec.encode(&joined, &mut b).unwrap();
            assert_eq!(a, b);
        }
        // Client role: masked, so compare what a server decodes; long and many parts too.
        let long = "x".repeat(70_000);
        let many = ["a"; 9];
        for parts in [&parts[..], &[long.as_str(), "y"][..], &many[..]] {
            let mut client = Codec::rfc6455(Role::Client, &config);
            let mut server = Codec::rfc6455(Role::Server, &config);
            let mut wire = BytesMut::new();
            client.encode_text_parts(parts, &mut wire).unwrap();
            assert_eq!(
                server.decode(&mut wire).unwrap(),
                Some(Message::text(parts.concat()))
            );
        }
    }

    #[test]
    fn constructors_pick_the_protocol_and_limits() {
        let config = Config::default().with_max_frame_size(10);
        let mut server = Codec::rfc6455(Role::Server, &config);
        assert!(!server.is_hixie());
        let mut src = BytesMut::from(&[0x82, 0x8B, 1, 2, 3, 4][..]);
        assert_eq!(
            server.decode(&mut src),
            Err(ProtocolError::FrameTooLarge(11))
        );

        let config = Config::default().with_max_message_size(4);
        let mut hixie = Codec::hixie(&config);
        assert!(hixie.is_hixie());
        let mut src = BytesMut::from(&b"\x00abcd"[..]);
        assert_eq!(hixie.decode(&mut src), Ok(None));
        src.extend_from_slice(b"e");
        assert_eq!(hixie.decode(&mut src), Err(ProtocolError::MessageTooLarge));
    }

    #[test]
    fn rfc6455_through_the_enum() {
        let config = Config::default();
        let mut client = Codec::rfc6455(Role::Client, &config);
        let mut server = Codec::rfc6455(Role::Server, &config);
        let messages = [
            Message::text("hi"),
            Message::binary(&b"\x00\x01"[..]),
            Message::Ping(Bytes::from_static(b"p")),
            Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "done"))),
        ];
        let mut wire = BytesMut::new();
        for msg in &messages {
            client.encode(msg, &mut wire).unwrap();
        }
        for msg in &messages {
            assert_eq!(server.decode(&mut wire).as_ref(), Ok(&Some(msg.clone())));
        }
        assert_eq!(server.decode(&mut wire), Ok(None));
    }

    #[test]
    fn hixie_through_the_enum() {
        let mut codec = Codec::hixie(&Config::default());
        let mut dst = BytesMut::new();
        codec.encode(&Message::text("hi"), &mut dst).unwrap();
        codec
            .encode(&Message::Ping(Bytes::new()), &mut dst)
            .unwrap();
        codec
            .encode(&Message::Pong(Bytes::new()), &mut dst)
            .unwrap();
        assert!(matches!(
            codec.encode(&Message::binary(&b"x"[..]), &mut dst),
            Err(Error::BinaryUnsupported)
        ));
        codec.encode(&Message::Close(None), &mut dst).unwrap();
        assert_eq!(&dst[..], b"\x00hi\xFF\xFF\x00");
        assert_eq!(codec.decode(&mut dst), Ok(Some(Message::text("hi"))));
        assert_eq!(codec.decode(&mut dst), Ok(Some(Message::Close(None))));
    }
}
