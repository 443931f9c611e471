//! RFC 6455 (and hybi-07/08) framing: a sans-io decoder and encoder, and a low-level frame writer.
//!
//! The decoder takes bytes from a [`BytesMut`] the caller keeps appending to, and hands back
//! whole messages: fragments are reassembled, control frames between fragments come out as
//! soon as they are complete, and text is checked for UTF-8 as its bytes arrive.
//!
//! Choices where RFC 6455 leaves room or the peer may be lax:
//! - Non-minimal length encodings (a 16- or 64-bit length that would fit a shorter form) are
//!   accepted; only a 64-bit length with its most significant bit set is refused.
//! - A ping or pong over 125 bytes is refused by the encoder with
//!   [`Error::MessageTooLarge`] rather than truncated, so a pong always echoes its ping.
//! - Outgoing messages are never fragmented.
//! - After a decoding error the codec keeps returning that error.

use std::fmt;

use bytes::{Buf, BufMut, BytesMut};

use super::Role;
use super::mask::{apply_mask, apply_mask_offset};
use crate::error::{Error, ProtocolError};
use crate::message::{CloseCode, CloseFrame, Message, Utf8Bytes};

/// The frame opcodes RFC 6455 defines (§5.2).
pub mod opcode {
    /// A continuation of a fragmented message.
    pub const CONTINUATION: u8 = 0x0;
    /// The first (or only) frame of a text message.
    pub const TEXT: u8 = 0x1;
    /// The first (or only) frame of a binary message.
    pub const BINARY: u8 = 0x2;
    /// A close frame.
    pub const CLOSE: u8 = 0x8;
    /// A ping.
    pub const PING: u8 = 0x9;
    /// A pong.
    pub const PONG: u8 = 0xA;

    /// Whether `opcode` is a control frame's (close, ping, pong, or a reserved control opcode).
    pub fn is_control(opcode: u8) -> bool {
        opcode & 0x8 != 0
    }
}

/// The largest payload of a control frame.
const MAX_CONTROL_PAYLOAD: usize = 125;

/// Writes one frame to `dst`: the header, then `payload`, masked with `mask` when given.
///
/// Writes exactly what it is asked for: any `opcode` (only its low four bits are used), any
/// payload length, fragment or not. Reserves room for the whole frame once.
///
/// ```
/// use bytes::BytesMut;
/// use hunchensocket_core::codec::rfc6455::{encode_frame, opcode};
///
/// let mut dst = BytesMut::new();
/// encode_frame(true, opcode::TEXT, b"Hello", None, &mut dst);
/// assert_eq!(&dst[..], b"\x81\x05Hello");
/// ```
pub fn encode_frame(
    fin: bool,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
    dst: &mut BytesMut,
) {
    let len = payload.len();
    let ext_len = if len < 126 {
        0
    } else if len <= usize::from(u16::MAX) {
        2
    } else {
        8
    };
    let mask_len = if mask.is_some() { 4 } else { 0 };
    dst.reserve(2 + ext_len + mask_len + len);

    let fin_bit = if fin { 0x80 } else { 0 };
    dst.put_u8(fin_bit | (opcode & 0x0F));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match ext_len {
        0 => dst.put_u8(mask_bit | len as u8),
        2 => {
            dst.put_u8(mask_bit | 126);
            dst.put_u16(len as u16);
        }
        _ => {
            dst.put_u8(mask_bit | 127);
            dst.put_u64(len as u64);
        }
    }
    match mask {
        Some(key) => {
            dst.put_slice(&key);
            let start = dst.len();
            dst.put_slice(payload);
            apply_mask(&mut dst[start..], key);
        }
        None => dst.put_slice(payload),
    }
}

/// The RFC 6455 codec of one endpoint: decodes what the peer sends, encodes what it is sent.
///
/// A server expects masked frames and sends unmasked ones; a client the other way round.
pub struct Codec {
    role: Role,
    max_frame_size: usize,
    max_message_size: usize,
    /// The header of the frame whose payload is being received, once it has been read.
    header: Option<Header>,
    /// How many payload bytes of that frame, at the front of the source buffer, are already
    /// unmasked (and UTF-8 checked, for text).
    processed: usize,
    /// The kind of the data message in progress, from its first frame's header to its last frame.
    open: Option<Kind>,
    /// The payload of the fragments received so far of a fragmented message.
    fragments: BytesMut,
    /// UTF-8 state of the text message in progress.
    utf8: Utf8Stream,
    /// Whether a close frame has been decoded.
    closed: bool,
    /// The error decoding stopped at, returned again by every later call.
    failed: Option<ProtocolError>,
    /// Random masking keys (client role).
    keys: KeyPool,
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Codec")
            .field("role", &self.role)
            .field("max_frame_size", &self.max_frame_size)
            .field("max_message_size", &self.max_message_size)
            .field("header", &self.header)
            .field("open", &self.open)
            .field("fragments_len", &self.fragments.len())
            .field("closed", &self.closed)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// A frame header, once read whole.
#[derive(Clone, Copy, Debug)]
struct Header {
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: usize,
}

/// The kind of a data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

impl Codec {
    /// A codec for `role`, refusing frames over `max_frame_size` bytes and reassembled messages
    /// over `max_message_size` bytes.
    pub fn new(role: Role, max_frame_size: usize, max_message_size: usize) -> Self {
        Codec {
            role,
            max_frame_size,
            max_message_size,
            header: None,
            processed: 0,
            open: None,
            fragments: BytesMut::new(),
            utf8: Utf8Stream::default(),
            closed: false,
            failed: None,
            keys: KeyPool::new(),
        }
    }

    /// The role this codec plays.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Consumes complete frames from `src`; returns the next message, `Ok(None)` when more
    /// bytes are needed.
    ///
    /// Call it again after each message: `src` may hold more. The caller appends to the same
    /// buffer between calls and does not change the bytes left in it: the payload of a frame
    /// still arriving stays in `src`, unmasked in place as it comes. An unfragmented frame's
    /// payload is handed back without copying. After a close frame, any further byte is
    /// [`ProtocolError::DataAfterClose`]; after an error, every call returns that error.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.decode_frames(src);
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    fn decode_frames(&mut self, src: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        loop {
            let header = match self.header {
                Some(header) => header,
                None => {
                    if self.closed {
                        return if src.is_empty() {
                            Ok(None)
                        } else {
                            Err(ProtocolError::DataAfterClose)
                        };
                    }
                    match self.read_header(src)? {
                        Some(header) => {
                            self.header = Some(header);
                            self.processed = 0;
                            header
                        }
                        None => return Ok(None),
                    }
                }
            };

            // Unmask (and check) the payload bytes that arrived since the last call.
            let available = src.len().min(header.len);
            if available > self.processed {
                let fresh = &mut src[self.processed..available];
                if let Some(key) = header.mask {
                    apply_mask_offset(fresh, key, self.processed);
                }
                if !opcode::is_control(header.opcode) && self.open == Some(Kind::Text) {
                    self.utf8.feed(fresh)?;
                }
                self.processed = available;
            }
            if src.len() < header.len {
                return Ok(None);
            }

            self.header = None;
            let payload = src.split_to(header.len);
            match header.opcode {
                opcode::CLOSE => {
                    let close = parse_close(payload)?;
                    self.closed = true;
                    return Ok(Some(close));
                }
                opcode::PING => return Ok(Some(Message::Ping(payload.freeze()))),
                opcode::PONG => return Ok(Some(Message::Pong(payload.freeze()))),
                _ => {
                    if !header.fin {
                        self.fragments.extend_from_slice(&payload);
                        continue;
                    }
                    let kind = self.open.take().unwrap_or(Kind::Binary);
                    let data = if self.fragments.is_empty() {
                        payload
                    } else {
                        self.fragments.extend_from_slice(&payload);
                        self.fragments.split()
                    };
                    return Ok(Some(match kind {
                        Kind::Text => {
                            self.utf8.finish()?;
                            Message::Text(Utf8Bytes::from_validated(data.freeze()))
                        }
                        Kind::Binary => Message::Binary(data.freeze()),
                    }));
                }
            }
        }
    }

    /// Reads and checks a frame header from the front of `src`, consuming it once whole.
    ///
    /// Rules that the first two bytes decide are checked as soon as those are in.
    fn read_header(&mut self, src: &mut BytesMut) -> Result<Option<Header>, ProtocolError> {
        if src.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (src[0], src[1]);
        let fin = b0 & 0x80 != 0;
        let op = b0 & 0x0F;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;

        if b0 & 0x70 != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        match op {
            opcode::CONTINUATION | opcode::TEXT | opcode::BINARY => {}
            opcode::CLOSE | opcode::PING | opcode::PONG => {
                if !fin {
                    return Err(ProtocolError::FragmentedControl);
                }
                if usize::from(len7) > MAX_CONTROL_PAYLOAD {
                    return Err(ProtocolError::ControlTooLong);
                }
            }
            other => return Err(ProtocolError::UnknownOpcode(other)),
        }
        match (self.role, masked) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        match op {
            opcode::CONTINUATION if self.open.is_none() => {
                return Err(ProtocolError::UnexpectedContinuation);
            }
            opcode::TEXT | opcode::BINARY if self.open.is_some() => {
                return Err(ProtocolError::ExpectedContinuation);
            }
            _ => {}
        }

        let ext_len = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask_len = if masked { 4 } else { 0 };
        let header_len = 2 + ext_len + mask_len;
        if src.len() < header_len {
            return Ok(None);
        }
        let len: u64 = match ext_len {
            0 => u64::from(len7),
            2 => u64::from(u16::from_be_bytes([src[2], src[3]])),
            _ => {
                let mut be = [0u8; 8];
                be.copy_from_slice(&src[2..10]);
                u64::from_be_bytes(be)
            }
        };
        if len >> 63 != 0 {
            return Err(ProtocolError::InvalidLength);
        }
        if len > self.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooLarge(len));
        }
        let control = opcode::is_control(op);
        if !control && self.fragments.len() as u64 + len > self.max_message_size as u64 {
            return Err(ProtocolError::MessageTooLarge);
        }
        let mask = if masked {
            let at = 2 + ext_len;
            Some([src[at], src[at + 1], src[at + 2], src[at + 3]])
        } else {
            None
        };
        src.advance(header_len);

        match op {
            opcode::TEXT => {
                self.open = Some(Kind::Text);
                self.utf8 = Utf8Stream::default();
            }
            opcode::BINARY => self.open = Some(Kind::Binary),
            _ => {}
        }
        Ok(Some(Header {
            fin,
            opcode: op,
            mask,
            // At most `max_frame_size`, a usize.
            len: len as usize,
        }))
    }

    /// Appends the encoding of `msg` to `dst`, as one frame.
    ///
    /// A client masks each frame with a fresh random key. A close reason is cut at a character
    /// boundary so that the close payload fits 125 bytes. A ping or pong over 125 bytes is
    /// refused with [`Error::MessageTooLarge`], and nothing is written.
    pub fn encode(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<(), Error> {
        match msg {
            Message::Text(text) => self.write(opcode::TEXT, text.as_bytes(), dst),
            Message::Binary(data) => self.write(opcode::BINARY, data, dst),
            Message::Ping(data) | Message::Pong(data) => {
                if data.len() > MAX_CONTROL_PAYLOAD {
                    return Err(Error::MessageTooLarge(data.len()));
                }
                let op = if matches!(msg, Message::Ping(_)) {
                    opcode::PING
                } else {
                    opcode::PONG
                };
                self.write(op, data, dst)
            }
            Message::Close(None) => self.write(opcode::CLOSE, &[], dst),
            Message::Close(Some(CloseFrame { code, reason })) => {
                let reason = truncate_at_char(reason, MAX_CONTROL_PAYLOAD - 2);
                let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
                payload[..2].copy_from_slice(&code.0.to_be_bytes());
                payload[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
                self.write(opcode::CLOSE, &payload[..2 + reason.len()], dst)
            }
        }
    }

    fn write(&mut self, op: u8, payload: &[u8], dst: &mut BytesMut) -> Result<(), Error> {
        let mask = match self.role {
            Role::Server => None,
            Role::Client => Some(self.keys.next()?),
        };
        encode_frame(true, op, payload, mask, dst);
        Ok(())
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Reads a close frame's payload: nothing, or a code and a UTF-8 reason.
fn parse_close(mut payload: BytesMut) -> Result<Message, ProtocolError> {
    match payload.len() {
        0 => Ok(Message::Close(None)),
        1 => Err(ProtocolError::InvalidClosePayload),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !CloseCode(code).is_allowed_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code));
            }
            payload.advance(2);
            let reason = Utf8Bytes::try_from_bytes(payload.freeze())
                .map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Message::Close(Some(CloseFrame {
                code: CloseCode(code),
                reason,
            })))
        }
    }
}

/// Checks UTF-8 arriving in pieces, each byte once, failing as soon as the bytes so far can no
/// longer begin valid UTF-8.
#[derive(Clone, Copy, Debug, Default)]
struct Utf8Stream {
    /// The start of a character cut off at the end of the last piece.
    pending: [u8; 4],
    pending_len: usize,
}

impl Utf8Stream {
    /// Checks the next piece.
    fn feed(&mut self, mut input: &[u8]) -> Result<(), ProtocolError> {
        if self.pending_len > 0 {
            // `pending` holds a proper prefix of a character; its first byte tells the width.
            let width = match self.pending[0] {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                _ => 4,
            };
            let take = (width - self.pending_len).min(input.len());
            let held = self.pending_len + take;
            self.pending[self.pending_len..held].copy_from_slice(&input[..take]);
            match std::str::from_utf8(&self.pending[..held]) {
                Ok(_) => self.pending_len = 0,
                // Still cut off: the input was too short to finish the character.
                Err(e) if e.error_len().is_none() && held < width => {
                    self.pending_len = held;
                    return Ok(());
                }
                Err(_) => return Err(ProtocolError::InvalidUtf8),
            }
            input = &input[take..];
        }
        match std::str::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &input[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len();
                Ok(())
            }
            Err(_) => Err(ProtocolError::InvalidUtf8),
        }
    }

    /// Checks that the text ends on a whole character.
    fn finish(&self) -> Result<(), ProtocolError> {
        if self.pending_len == 0 {
            Ok(())
        } else {
            Err(ProtocolError::InvalidUtf8)
        }
    }
}

/// Masking keys from the operating system's random source, fetched 64 at a time so that a
/// client does not make a system call per frame. Every key is fresh and unpredictable
/// (RFC 6455 §10.3); none is used twice. The pool is allocated on first use, so a server,
/// which never masks, does not carry it.
struct KeyPool {
    bytes: Option<Box<[u8; 256]>>,
    used: usize,
}

impl KeyPool {
    fn new() -> Self {
        KeyPool {
            bytes: None,
            used: 0,
        }
    }

    fn next(&mut self) -> Result<[u8; 4], Error> {
        let bytes = match &mut self.bytes {
            Some(bytes) if self.used + 4 <= bytes.len() => bytes,
            slot => {
                let bytes = slot.get_or_insert_with(|| Box::new([0; 256]));
                // Spent until the refill succeeds: a failed refill must not leave old or
                // zeroed bytes to be handed out as keys.
                self.used = bytes.len();
                getrandom::fill(&mut bytes[..]).map_err(|e| {
                    Error::Io(std::io::Error::other(format!("no random masking key: {e}")))
                })?;
                self.used = 0;
                bytes
            }
        };
        let at = self.used;
        self.used += 4;
        Ok([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn server() -> Codec {
        Codec::new(Role::Server, 1 << 20, 1 << 20)
    }

    fn client() -> Codec {
        Codec::new(Role::Client, 1 << 20, 1 << 20)
    }

    fn frame(fin: bool, op: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut dst = BytesMut::new();
        encode_frame(fin, op, payload, mask, &mut dst);
        dst.to_vec()
    }

    /// A masked (client-to-server) frame.
    fn masked(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        frame(fin, op, payload, Some(KEY))
    }

    /// Decodes every message `bytes` holds in one go; stops at the first error.
    fn decode_all(codec: &mut Codec, bytes: &[u8]) -> Result<Vec<Message>, ProtocolError> {
        let mut src = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(msg) = codec.decode(&mut src)? {
            out.push(msg);
        }
        Ok(out)
    }

    /// Feeds `bytes` one at a time, decoding after each.
    fn decode_bytewise(codec: &mut Codec, bytes: &[u8]) -> Result<Vec<Message>, ProtocolError> {
        decode_chunked(codec, bytes, &[1])
    }

    /// Feeds `bytes` in chunks of the given sizes (cycled; 0 counts as 1), decoding after each.
    fn decode_chunked(
        codec: &mut Codec,
        bytes: &[u8],
        sizes: &[usize],
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
            while let Some(msg) = codec.decode(&mut src)? {
                out.push(msg);
            }
        }
        Ok(out)
    }

    fn server_error(bytes: &[u8]) -> ProtocolError {
        decode_all(&mut server(), bytes).expect_err("should fail")
    }

    fn client_error(bytes: &[u8]) -> ProtocolError {
        decode_all(&mut client(), bytes).expect_err("should fail")
    }

    // RFC 6455 §5.7 examples.

    #[test]
    fn rfc_unmasked_hello() {
        let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(
            decode_all(&mut client(), &bytes),
            Ok(vec![Message::text("Hello")])
        );
        let mut dst = BytesMut::new();
        server().encode(&Message::text("Hello"), &mut dst).unwrap();
        assert_eq!(&dst[..], &bytes);
    }

    #[test]
    fn rfc_masked_hello() {
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(
            decode_all(&mut server(), &bytes),
            Ok(vec![Message::text("Hello")])
        );
        assert_eq!(masked(true, opcode::TEXT, b"Hello"), bytes);
    }

    #[test]
    fn rfc_fragmented_hello() {
        let bytes = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
        assert_eq!(
            decode_all(&mut client(), &bytes),
            Ok(vec![Message::text("Hello")])
        );
    }

    #[test]
    fn rfc_ping_and_masked_pong() {
        let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(
            decode_all(&mut client(), &ping),
            Ok(vec![Message::Ping(Bytes::from_static(b"Hello"))])
        );
        let pong = [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(
            decode_all(&mut server(), &pong),
            Ok(vec![Message::Pong(Bytes::from_static(b"Hello"))])
        );
    }

    #[test]
    fn rfc_256_bytes_binary_16_bit_length() {
        let payload: Vec<u8> = (0..=255u8).collect();
        let bytes = frame(true, opcode::BINARY, &payload, None);
        assert_eq!(&bytes[..4], &[0x82, 0x7E, 0x01, 0x00]);
        assert_eq!(bytes.len(), 4 + 256);
        assert_eq!(
            decode_all(&mut client(), &bytes),
            Ok(vec![Message::Binary(payload.into())])
        );
    }

    #[test]
    fn rfc_64k_binary_64_bit_length() {
        let payload: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        let bytes = frame(true, opcode::BINARY, &payload, None);
        assert_eq!(
            &bytes[..10],
            &[0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
        );
        assert_eq!(bytes.len(), 10 + 65536);
        assert_eq!(
            decode_all(&mut client(), &bytes),
            Ok(vec![Message::Binary(payload.clone().into())])
        );
        let bytes = masked(true, opcode::BINARY, &payload);
        assert_eq!(&bytes[..2], &[0x82, 0xFF]);
        assert_eq!(
            decode_all(&mut server(), &bytes),
            Ok(vec![Message::Binary(payload.into())])
        );
    }

    #[test]
    fn length_boundaries() {
        for len in [0, 1, 125, 126, 127, 65535, 65536] {
            let payload = vec![b'x'; len];
            let bytes = masked(true, opcode::BINARY, &payload);
            let header = if len < 126 {
                2
            } else if len < 65536 {
                4
            } else {
                10
            };
            assert_eq!(bytes.len(), header + 4 + len, "len {len}");
            assert_eq!(
                decode_all(&mut server(), &bytes),
                Ok(vec![Message::Binary(payload.into())]),
                "len {len}"
            );
        }
    }

    #[test]
    fn non_minimal_lengths_are_accepted() {
        let mut bytes = vec![0x82, 0x7E, 0x00, 0x03];
        bytes.extend_from_slice(b"abc");
        assert_eq!(
            decode_all(&mut client(), &bytes),
            Ok(vec![Message::binary(&b"abc"[..])])
        );
        let mut bytes = vec![0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0x03];
        bytes.extend_from_slice(b"abc");
        assert_eq!(
            decode_all(&mut client(), &bytes),
            Ok(vec![Message::binary(&b"abc"[..])])
        );
    }

    #[test]
    fn empty_messages() {
        let mut bytes = masked(true, opcode::TEXT, b"");
        bytes.extend(masked(true, opcode::BINARY, b""));
        bytes.extend(masked(false, opcode::TEXT, b""));
        bytes.extend(masked(true, opcode::CONTINUATION, b""));
        bytes.extend(masked(true, opcode::PING, b""));
        assert_eq!(
            decode_all(&mut server(), &bytes),
            Ok(vec![
                Message::text(""),
                Message::binary(Bytes::new()),
                Message::text(""),
                Message::Ping(Bytes::new()),
            ])
        );
    }

    // Errors, each with the close code the peer gets.

    #[test]
    fn reserved_bits() {
        for rsv in [0x40, 0x20, 0x10] {
            let mut bytes = masked(true, opcode::TEXT, b"hi");
            bytes[0] |= rsv;
            let e = server_error(&bytes);
            assert_eq!(e, ProtocolError::ReservedBits);
            assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR);
        }
    }

    #[test]
    fn unknown_opcodes() {
        for op in (3..=7).chain(0xB..=0xF) {
            let e = server_error(&masked(true, op, b""));
            assert_eq!(e, ProtocolError::UnknownOpcode(op));
            assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR);
        }
    }

    #[test]
    fn server_refuses_unmasked_frames() {
        let e = server_error(&frame(true, opcode::TEXT, b"hi", None));
        assert_eq!(e, ProtocolError::UnmaskedFrame);
        assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR);
    }

    #[test]
    fn client_refuses_masked_frames() {
        let e = client_error(&masked(true, opcode::TEXT, b"hi"));
        assert_eq!(e, ProtocolError::MaskedFrame);
        assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR);
    }

    #[test]
    fn length_with_msb_set() {
        let bytes = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4];
        let e = server_error(&bytes);
        assert_eq!(e, ProtocolError::InvalidLength);
        assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR);
    }

    #[test]
    fn frame_too_large_from_the_header_alone() {
        let mut codec = Codec::new(Role::Server, 100, 1000);
        // Header and mask of a 101-byte frame, no payload yet.
        let bytes = [0x82, 0xFE, 0x00, 101, 1, 2, 3, 4];
        let e = decode_all(&mut codec, &bytes).unwrap_err();
        assert_eq!(e, ProtocolError::FrameTooLarge(101));
        assert_eq!(e.close_code(), CloseCode::MESSAGE_TOO_BIG);
        // A frame of exactly the limit is fine.
        let mut codec = Codec::new(Role::Server, 100, 1000);
        let bytes = masked(true, opcode::BINARY, &[7; 100]);
        assert_eq!(decode_all(&mut codec, &bytes).unwrap().len(), 1);
    }

    #[test]
    fn message_too_large_single_frame() {
        let mut codec = Codec::new(Role::Server, 1000, 100);
        let bytes = [0x82, 0xFE, 0x00, 101, 1, 2, 3, 4];
        let e = decode_all(&mut codec, &bytes).unwrap_err();
        assert_eq!(e, ProtocolError::MessageTooLarge);
        assert_eq!(e.close_code(), CloseCode::MESSAGE_TOO_BIG);
    }

    #[test]
    fn message_too_large_across_fragments() {
        let mut codec = Codec::new(Role::Server, 1000, 100);
        let mut bytes = masked(false, opcode::BINARY, &[1; 60]);
        bytes.extend(masked(false, opcode::CONTINUATION, &[2; 40]));
        // The third header alone pushes the total past 100.
        bytes.extend(&masked(true, opcode::CONTINUATION, &[3; 1])[..6]);
        let e = decode_all(&mut codec, &bytes).unwrap_err();
        assert_eq!(e, ProtocolError::MessageTooLarge);
        assert_eq!(e.close_code(), CloseCode::MESSAGE_TOO_BIG);
        // Exactly 100 is fine.
        let mut codec = Codec::new(Role::Server, 1000, 100);
        let mut bytes = masked(false, opcode::BINARY, &[1; 60]);
        bytes.extend(masked(true, opcode::CONTINUATION, &[2; 40]));
        assert_eq!(decode_all(&mut codec, &bytes).unwrap().len(), 1);
    }

    #[test]
    fn message_past_the_frame_limit_re_encodes_as_one_frame() {
        // From the rfc6455_codec fuzz target: a message reassembled from frames within the
        // frame limit may exceed it; the encoder never fragments, so its echo is one frame
        // that only a frame limit as large as the message limit accepts.
        let mut bytes = masked(false, opcode::BINARY, &[1; 80]);
        bytes.extend(masked(true, opcode::CONTINUATION, &[2; 80]));
        let decoded = decode_all(&mut Codec::new(Role::Server, 100, 200), &bytes).unwrap();
        assert_eq!(decoded.len(), 1);
        assert_eq!(decoded[0].len(), 160);
        let mut wire = BytesMut::new();
        client().encode(&decoded[0], &mut wire).unwrap();
        assert_eq!(
            decode_all(&mut Codec::new(Role::Server, 100, 200), &wire),
            Err(ProtocolError::FrameTooLarge(160))
        );
        assert_eq!(
            decode_all(&mut Codec::new(Role::Server, 200, 200), &wire),
            Ok(decoded)
        );
    }

    #[test]
    fn control_frame_too_long() {
        // Checked from the first two bytes.
        let e = server_error(&[0x89, 0xFE]);
        assert_eq!(e, ProtocolError::ControlTooLong);
        assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR);
        let e = server_error(&masked(true, opcode::PONG, &[0; 126]));
        assert_eq!(e, ProtocolError::ControlTooLong);
        // 125 is allowed.
        assert_eq!(
            decode_all(&mut server(), &masked(true, opcode::PING, &[9; 125])),
            Ok(vec![Message::Ping(vec![9; 125].into())])
        );
    }

    #[test]
    fn fragmented_control_frame() {
        for op in [opcode::CLOSE, opcode::PING, opcode::PONG] {
            let e = server_error(&masked(false, op, b"x"));
            assert_eq!(e, ProtocolError::FragmentedControl);
            assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR);
        }
    }

    #[test]
    fn unexpected_continuation() {
        let e = server_error(&masked(true, opcode::CONTINUATION, b"x"));
        assert_eq!(e, ProtocolError::UnexpectedContinuation);
        assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR);
        // Also after a message has been completed.
        let mut bytes = masked(true, opcode::TEXT, b"done");
        bytes.extend(masked(false, opcode::CONTINUATION, b"x"));
        let mut codec = server();
        let mut src = BytesMut::from(&bytes[..]);
        assert_eq!(codec.decode(&mut src), Ok(Some(Message::text("done"))));
        assert_eq!(
            codec.decode(&mut src),
            Err(ProtocolError::UnexpectedContinuation)
        );
    }

    #[test]
    fn expected_continuation() {
        for op in [opcode::TEXT, opcode::BINARY] {
            let mut bytes = masked(false, opcode::BINARY, b"part");
            bytes.extend(masked(true, op, b"new"));
            let e = server_error(&bytes);
            assert_eq!(e, ProtocolError::ExpectedContinuation);
            assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR);
        }
    }

    #[test]
    fn invalid_utf8_in_a_text_frame() {
        let e = server_error(&masked(true, opcode::TEXT, b"ab\xFFcd"));
        assert_eq!(e, ProtocolError::InvalidUtf8);
        assert_eq!(e.close_code(), CloseCode::INVALID_PAYLOAD);
        // Binary may hold anything.
        assert!(decode_all(&mut server(), &masked(true, opcode::BINARY, b"ab\xFFcd")).is_ok());
    }

    #[test]
    fn close_payloads() {
        assert_eq!(
            decode_all(&mut server(), &masked(true, opcode::CLOSE, b"")),
            Ok(vec![Message::Close(None)])
        );
        assert_eq!(
            decode_all(&mut server(), &masked(true, opcode::CLOSE, b"\x03\xE8bye")),
            Ok(vec![Message::Close(Some(CloseFrame::new(
                CloseCode::NORMAL,
                "bye"
            )))])
        );
        assert_eq!(
            decode_all(
                &mut client(),
                &frame(true, opcode::CLOSE, b"\x0F\xA0", None)
            ),
            Ok(vec![Message::Close(Some(CloseFrame::new(
                CloseCode(4000),
                ""
            )))])
        );
    }

    #[test]
    fn close_payload_of_one_byte() {
        let e = server_error(&masked(true, opcode::CLOSE, b"\x03"));
        assert_eq!(e, ProtocolError::InvalidClosePayload);
        assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR);
    }

    #[test]
    fn close_codes_not_allowed_on_the_wire() {
        for code in [0u16, 999, 1004, 1005, 1006, 1012, 1015, 2999, 5000, 65535] {
            let mut payload = code.to_be_bytes().to_vec();
            payload.extend_from_slice(b"why");
            let e = server_error(&masked(true, opcode::CLOSE, &payload));
            assert_eq!(e, ProtocolError::InvalidCloseCode(code));
            assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR);
        }
    }

    #[test]
    fn close_reason_not_utf8() {
        let e = server_error(&masked(true, opcode::CLOSE, b"\x03\xE8\xC3\x28"));
        assert_eq!(e, ProtocolError::InvalidUtf8);
        assert_eq!(e.close_code(), CloseCode::INVALID_PAYLOAD);
    }

    #[test]
    fn data_after_close() {
        let mut bytes = masked(true, opcode::CLOSE, b"");
        bytes.extend(masked(true, opcode::TEXT, b"late"));
        let mut codec = server();
        let mut src = BytesMut::from(&bytes[..]);
        assert_eq!(codec.decode(&mut src), Ok(Some(Message::Close(None))));
        let e = codec.decode(&mut src).unwrap_err();
        assert_eq!(e, ProtocolError::DataAfterClose);
        assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR);
        // With nothing more, nothing happens.
        let mut codec = server();
        let mut src = BytesMut::from(&masked(true, opcode::CLOSE, b"")[..]);
        assert_eq!(codec.decode(&mut src), Ok(Some(Message::Close(None))));
        assert_eq!(codec.decode(&mut src), Ok(None));
    }

    #[test]
    fn errors_are_sticky() {
        let mut codec = server();
        let mut src = BytesMut::from(&frame(true, opcode::TEXT, b"x", None)[..]);
        assert_eq!(codec.decode(&mut src), Err(ProtocolError::UnmaskedFrame));
        let mut good = BytesMut::from(&masked(true, opcode::TEXT, b"x")[..]);
        assert_eq!(codec.decode(&mut good), Err(ProtocolError::UnmaskedFrame));
    }

    // Fragmentation, control frames between fragments, partial input.

    #[test]
    fn control_frames_between_fragments() {
        let mut bytes = masked(false, opcode::TEXT, b"Hel");
        bytes.extend(masked(true, opcode::PING, b"p1"));
        bytes.extend(masked(false, opcode::CONTINUATION, b"l"));
        bytes.extend(masked(true, opcode::PONG, b"p2"));
        bytes.extend(masked(true, opcode::CONTINUATION, b"o"));
        bytes.extend(masked(true, opcode::BINARY, b"next"));
        let expected = vec![
            Message::Ping(Bytes::from_static(b"p1")),
            Message::Pong(Bytes::from_static(b"p2")),
            Message::text("Hello"),
            Message::binary(&b"next"[..]),
        ];
        assert_eq!(decode_all(&mut server(), &bytes), Ok(expected.clone()));
        assert_eq!(decode_bytewise(&mut server(), &bytes), Ok(expected));
    }

    #[test]
    fn close_between_fragments_ends_the_stream() {
        let mut bytes = masked(false, opcode::TEXT, b"Hel");
        bytes.extend(masked(true, opcode::CLOSE, b"\x03\xE8"));
        assert_eq!(
            decode_all(&mut server(), &bytes),
            Ok(vec![Message::Close(Some(CloseFrame::new(
                CloseCode::NORMAL,
                ""
            )))])
        );
    }

    #[test]
    fn bytewise_equals_all_at_once() {
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 256) as u8).collect();
        let text = "añ€😀".repeat(100);
        let mut bytes = masked(true, opcode::TEXT, text.as_bytes());
        bytes.extend(masked(false, opcode::BINARY, &big[..300]));
        bytes.extend(masked(true, opcode::PING, b"ping"));
        bytes.extend(masked(true, opcode::CONTINUATION, &big[300..]));
        // Byte 5 is inside the first "€".
        let (a, b) = text.as_bytes().split_at(5);
        bytes.extend(masked(false, opcode::TEXT, a));
        bytes.extend(masked(true, opcode::CONTINUATION, b));
        bytes.extend(masked(true, opcode::CLOSE, b"\x03\xE9gone"));
        let all = decode_all(&mut server(), &bytes).unwrap();
        assert_eq!(
            all,
            vec![
                Message::text(text.as_str()),
                Message::Ping(Bytes::from_static(b"ping")),
                Message::Binary(big.into()),
                Message::text(text.as_str()),
                Message::Close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "gone"))),
            ]
        );
        assert_eq!(decode_bytewise(&mut server(), &bytes).unwrap(), all);
        assert_eq!(
            decode_chunked(&mut server(), &bytes, &[3, 7, 1, 100]).unwrap(),
            all
        );
    }

    #[test]
    fn partial_frames_wait_for_more() {
        let bytes = masked(true, opcode::TEXT, b"Hello");
        for cut in 0..bytes.len() {
            let mut codec = server();
            let mut src = BytesMut::from(&bytes[..cut]);
            assert_eq!(codec.decode(&mut src), Ok(None), "cut {cut}");
            src.extend_from_slice(&bytes[cut..]);
            assert_eq!(
                codec.decode(&mut src),
                Ok(Some(Message::text("Hello"))),
                "cut {cut}"
            );
            assert!(src.is_empty());
        }
    }

    #[test]
    fn unfragmented_payload_is_not_copied() {
        let bytes = masked(true, opcode::BINARY, &[5; 1000]);
        let mut src = BytesMut::from(&bytes[..]);
        let base = src.as_ptr() as usize;
        let Some(Message::Binary(payload)) = server().decode(&mut src).unwrap() else {
            panic!("expected binary");
        };
        assert_eq!(payload.as_ptr() as usize, base + 8);
        assert_eq!(&payload[..], &[5; 1000][..]);
    }

    #[test]
    fn many_tiny_fragments() {
        let text = "x€".repeat(2000);
        let bytes_of = text.as_bytes();
        let mut bytes = masked(false, opcode::TEXT, &bytes_of[..1]);
        for b in &bytes_of[1..bytes_of.len() - 1] {
            bytes.extend(masked(false, opcode::CONTINUATION, std::slice::from_ref(b)));
        }
        bytes.extend(masked(
            true,
            opcode::CONTINUATION,
            &bytes_of[bytes_of.len() - 1..],
        ));
        assert_eq!(
            decode_all(&mut server(), &bytes),
            Ok(vec![Message::text(text.as_str())])
        );
    }

    // Fail-fast UTF-8.

    #[test]
    fn char_split_across_fragments_is_accepted() {
        // "€" is E2 82 AC; cut it after each of its first two bytes.
        for cut in 1..3 {
            let s = "a€b".as_bytes();
            let mut bytes = masked(false, opcode::TEXT, &s[..1 + cut]);
            bytes.extend(masked(true, opcode::CONTINUATION, &s[1 + cut..]));
            assert_eq!(
                decode_all(&mut server(), &bytes),
                Ok(vec![Message::text("a€b")]),
                "cut {cut}"
            );
        }
        // Across three fragments, one byte each.
        let mut bytes = masked(false, opcode::TEXT, b"\xF0\x9F");
        bytes.extend(masked(false, opcode::CONTINUATION, b"\x98"));
        bytes.extend(masked(true, opcode::CONTINUATION, b"\x80"));
        assert_eq!(
            decode_all(&mut server(), &bytes),
            Ok(vec![Message::text("😀")])
        );
    }

    #[test]
    fn invalid_utf8_fails_at_the_first_fragment() {
        // Each first fragment can never become valid; no later frame is needed to tell.
        for first in [
            &b"ok\xC3\x28"[..],
            b"\xF4\x90",
            b"\xED\xA0",
            b"\xC0",
            b"\xFF",
        ] {
            let mut codec = server();
            let mut src = BytesMut::from(&masked(false, opcode::TEXT, first)[..]);
            let e = codec.decode(&mut src).unwrap_err();
            assert_eq!(e, ProtocolError::InvalidUtf8, "{first:x?}");
            assert_eq!(e.close_code(), CloseCode::INVALID_PAYLOAD);
        }
    }

    #[test]
    fn invalid_continuation_of_a_split_char() {
        let mut codec = server();
        let mut src = BytesMut::from(&masked(false, opcode::TEXT, b"a\xE2\x82")[..]);
        assert_eq!(codec.decode(&mut src), Ok(None));
        src.extend(masked(false, opcode::CONTINUATION, b"\x28"));
        assert_eq!(codec.decode(&mut src), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn incomplete_char_at_the_end_of_the_message() {
        let mut bytes = masked(false, opcode::TEXT, b"a");
        bytes.extend(masked(true, opcode::CONTINUATION, b"\xE2\x82"));
        assert_eq!(server_error(&bytes), ProtocolError::InvalidUtf8);
        assert_eq!(
            server_error(&masked(true, opcode::TEXT, b"\xF0")),
            ProtocolError::InvalidUtf8
        );
    }

    #[test]
    fn invalid_utf8_fails_before_the_frame_is_whole() {
        let mut text = b"a\xFF".to_vec();
        text.extend_from_slice(&[b'z'; 1000]);
        let bytes = masked(true, opcode::TEXT, &text);
        let mut codec = server();
        // Header (2 + 2 + 4) and the first two payload bytes only.
        let mut src = BytesMut::from(&bytes[..10]);
        assert_eq!(codec.decode(&mut src), Err(ProtocolError::InvalidUtf8));
        // A valid prefix keeps waiting.
        let bytes = masked(true, opcode::TEXT, &[b'z'; 1000]);
        let mut codec = server();
        let mut src = BytesMut::from(&bytes[..500]);
        assert_eq!(codec.decode(&mut src), Ok(None));
        src.extend_from_slice(&bytes[500..]);
        assert_eq!(codec.decode(&mut src).unwrap().unwrap().len(), 1000);
    }

    // Encoder.

    #[test]
    fn client_frames_are_masked_with_fresh_keys() {
        let mut codec = client();
        let mut dst = BytesMut::new();
        codec.encode(&Message::text("Hello"), &mut dst).unwrap();
        codec.encode(&Message::text("Hello"), &mut dst).unwrap();
        assert_eq!(dst.len(), 2 * (2 + 4 + 5));
        assert_eq!(dst[0], 0x81);
        assert_eq!(dst[1], 0x85);
        assert_ne!(&dst[2..6], &dst[13..17], "two frames with the same key");
        assert_eq!(
            decode_all(&mut server(), &dst),
            Ok(vec![Message::text("Hello"), Message::text("Hello")])
        );
    }

    #[test]
    fn many_client_frames_decode() {
        let mut codec = client();
        let mut dst = BytesMut::new();
        for i in 0..200 {
            codec
                .encode(&Message::text(i.to_string()), &mut dst)
                .unwrap();
        }
        let got = decode_all(&mut server(), &dst).unwrap();
        assert_eq!(got.len(), 200);
        assert_eq!(got[199], Message::text("199"));
    }

    #[test]
    fn encode_close() {
        let mut dst = BytesMut::new();
        server().encode(&Message::Close(None), &mut dst).unwrap();
        assert_eq!(&dst[..], &[0x88, 0x00]);
        let mut dst = BytesMut::new();
        let close = Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "bye")));
        server().encode(&close, &mut dst).unwrap();
        assert_eq!(&dst[..], b"\x88\x05\x03\xE8bye");
    }

    #[test]
    fn long_close_reason_is_cut_at_a_char_boundary() {
        let reason = "é".repeat(100); // 200 bytes, two per char
        let close = Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, reason.as_str())));
        let mut dst = BytesMut::new();
        server().encode(&close, &mut dst).unwrap();
        // 123 bytes of reason allowed: 61 whole chars = 122 bytes.
        assert_eq!(dst[1] as usize, 2 + 122);
        assert_eq!(
            decode_all(&mut client(), &dst),
            Ok(vec![Message::Close(Some(CloseFrame::new(
                CloseCode::NORMAL,
                "é".repeat(61)
            )))])
        );
        assert_eq!(truncate_at_char("abc", 123), "abc");
        assert_eq!(truncate_at_char("a€", 3), "a");
    }

    #[test]
    fn ping_over_125_bytes_is_refused() {
        let mut dst = BytesMut::new();
        let result = client().encode(&Message::Ping(vec![0; 126].into()), &mut dst);
        assert!(
            matches!(result, Err(Error::MessageTooLarge(126))),
            "{result:?}"
        );
        let result = server().encode(&Message::Pong(vec![0; 200].into()), &mut dst);
        assert!(
            matches!(result, Err(Error::MessageTooLarge(200))),
            "{result:?}"
        );
        assert!(dst.is_empty());
        server()
            .encode(&Message::Ping(vec![0; 125].into()), &mut dst)
            .unwrap();
        assert_eq!(dst.len(), 2 + 125);
    }

    #[test]
    fn encode_frame_writes_fragments_and_masks() {
        assert_eq!(frame(false, opcode::TEXT, b"Hel", None), b"\x01\x03Hel");
        assert_eq!(
            frame(true, opcode::CONTINUATION, b"lo", None),
            b"\x80\x02lo"
        );
        assert_eq!(
            frame(true, opcode::PONG, b"", Some([1, 2, 3, 4])),
            [0x8A, 0x80, 1, 2, 3, 4]
        );
    }

    #[test]
    fn utf8_stream_matches_std() {
        let cases: &[&[u8]] = &[
            b"",
            b"abc",
            "héllo€😀".as_bytes(),
            b"\xE2\x82",
            b"\xFF",
            b"a\xED\xA0\x80",
        ];
        for &case in cases {
            for cut in 0..=case.len() {
                let mut stream = Utf8Stream::default();
                let ok = stream.feed(&case[..cut]).is_ok()
                    && stream.feed(&case[cut..]).is_ok()
                    && stream.finish().is_ok();
                assert_eq!(ok, std::str::from_utf8(case).is_ok(), "{case:x?} cut {cut}");
            }
        }
    }

    // Properties.

    fn data_or_control() -> impl Strategy<Value = Message> {
        prop_oneof![
            any::<String>().prop_map(Message::text),
            proptest::collection::vec(any::<u8>(), 0..3000).prop_map(Message::binary),
            proptest::collection::vec(any::<u8>(), 0..=125).prop_map(|v| Message::Ping(v.into())),
            proptest::collection::vec(any::<u8>(), 0..=125).prop_map(|v| Message::Pong(v.into())),
        ]
    }

    fn close() -> impl Strategy<Value = Message> {
        let code = prop_oneof![1000u16..=1003, 1007u16..=1011, 3000u16..=4999];
        prop_oneof![
            Just(Message::Close(None)),
            // At most 30 chars of at most 4 bytes: fits the 123-byte reason.
            (code, "\\PC{0,30}").prop_map(|(code, reason)| {
                Message::Close(Some(CloseFrame::new(CloseCode(code), reason)))
            }),
        ]
    }

    fn round_trip(
        from: Role,
        to: Role,
        messages: &[Message],
        sizes: &[usize],
    ) -> Result<(), TestCaseError> {
        let mut encoder = Codec::new(from, 1 << 20, 1 << 20);
        let mut wire = BytesMut::new();
        for msg in messages {
            encoder.encode(msg, &mut wire).unwrap();
        }
        let mut decoder = Codec::new(to, 1 << 20, 1 << 20);
        let got = decode_chunked(&mut decoder, &wire, sizes);
        prop_assert_eq!(got, Ok(messages.to_vec()));
        Ok(())
    }

    proptest! {
        #[test]
        fn client_to_server_round_trip(
            mut messages in proptest::collection::vec(data_or_control(), 0..8),
            last in proptest::option::of(close()),
            sizes in proptest::collection::vec(1usize..200, 1..8),
        ) {
            messages.extend(last);
            round_trip(Role::Client, Role::Server, &messages, &sizes)?;
        }

        #[test]
        fn server_to_client_round_trip(
            mut messages in proptest::collection::vec(data_or_control(), 0..8),
            last in proptest::option::of(close()),
            sizes in proptest::collection::vec(1usize..200, 1..8),
        ) {
            messages.extend(last);
            round_trip(Role::Server, Role::Client, &messages, &sizes)?;
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            sizes in proptest::collection::vec(1usize..50, 1..6),
            small in any::<bool>(),
        ) {
            let (frame_limit, message_limit) = if small { (40, 60) } else { (1 << 20, 1 << 20) };
            for role in [Role::Server, Role::Client] {
                let mut codec = Codec::new(role, frame_limit, message_limit);
                let chunked = decode_chunked(&mut codec, &bytes, &sizes);
                let mut codec = Codec::new(role, frame_limit, message_limit);
                let whole = decode_all(&mut codec, &bytes);
                // However the bytes arrive, the outcome is the same.
                prop_assert_eq!(chunked, whole);
            }
        }

        #[test]
        fn fragmented_text_bytewise(
            text in any::<String>(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            // Any split of valid text into fragments, even inside a character, is accepted.
            let bytes_of = text.as_bytes();
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes_of.len() + 1)).collect();
            points.push(0);
            points.push(bytes_of.len());
            points.sort_unstable();
            let mut wire = Vec::new();
            for (i, pair) in points.windows(2).enumerate() {
                let op = if i == 0 { opcode::TEXT } else { opcode::CONTINUATION };
                let fin = i == points.len() - 2;
                wire.extend(masked(fin, op, &bytes_of[pair[0]..pair[1]]));
            }
            prop_assert_eq!(decode_bytewise(&mut server(), &wire), Ok(vec![Message::text(text.as_str())]));
        }

        #[test]
        fn utf8_stream_fails_fast(
            bytes in proptest::collection::vec(
                prop_oneof![any::<u8>(), 0x80u8..0xC0, Just(b'a')], 0..40),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            points.push(0);
            points.push(bytes.len());
            points.sort_unstable();
            let mut stream = Utf8Stream::default();
            for pair in points.windows(2) {
                let fed = stream.feed(&bytes[pair[0]..pair[1]]);
                // The bytes so far can still begin valid UTF-8 exactly when std finds no
                // invalid sequence in them (only, perhaps, an incomplete one at the end).
                let prefix_ok = match std::str::from_utf8(&bytes[..pair[1]]) {
                    Ok(_) => true,
                    Err(e) => e.error_len().is_none(),
                };
                prop_assert_eq!(fed.is_ok(), prefix_ok);
                if fed.is_err() {
                    return Ok(());
                }
            }
            prop_assert_eq!(stream.finish().is_ok(), std::str::from_utf8(&bytes).is_ok());
        }
    }
}
