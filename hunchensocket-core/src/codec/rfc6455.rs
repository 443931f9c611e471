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
//! - A data message may arrive in at most [`Codec::with_max_fragments`] frames; the fragments
//!   received are held as their payload bytes only, so empty continuations cost no memory.
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
    encode_frame_parts(fin, opcode, &[payload], mask, dst);
}

/// Like [`encode_frame`], with the payload given in parts that are written one after the
/// other (a prefix and a shared body, say), without joining them first.
pub fn encode_frame_parts(
    fin: bool,
    opcode: u8,
    parts: &[&[u8]],
    mask: Option<[u8; 4]>,
    dst: &mut BytesMut,
) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
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
    if let Some(key) = mask {
        dst.put_slice(&key);
    }
    let start = dst.len();
    for part in parts {
        dst.put_slice(part);
    }
    if let Some(key) = mask {
        apply_mask(&mut dst[start..], key);
    }
}

/// The RFC 6455 codec of one endpoint: decodes what the peer sends, encodes what it is sent.
///
/// A server expects masked frames and sends unmasked ones; a client the other way round.
pub struct Codec {
    role: Role,
    max_frame_size: usize,
    max_message_size: usize,
    /// Most frames one data message may arrive in.
    max_fragments: usize,
    /// The frames of the data message in progress whose headers have been read.
    frames: usize,
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
            .field("max_fragments", &self.max_fragments)
            .field("frames", &self.frames)
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
    /// over `max_message_size` bytes; messages may arrive in any number of frames (see
    /// [`with_max_fragments`](Self::with_max_fragments)).
    pub fn new(role: Role, max_frame_size: usize, max_message_size: usize) -> Self {
        Codec {
            role,
            max_frame_size,
            max_message_size,
            max_fragments: usize::MAX,
            frames: 0,
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

    /// Refuses a data message in more than `frames` frames (its first frame and its
    /// continuations, empty ones included) with [`ProtocolError::TooManyFragments`], as soon as
    /// the header of the frame one past the cap is read.
    pub fn with_max_fragments(mut self, frames: usize) -> Self {
        self.max_fragments = frames;
        self
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
            opcode::CONTINUATION if self.frames >= self.max_fragments => {
                return Err(ProtocolError::TooManyFragments(self.max_fragments));
            }
            opcode::TEXT | opcode::BINARY if self.max_fragments == 0 => {
                return Err(ProtocolError::TooManyFragments(0));
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
                self.frames = 1;
            }
            opcode::BINARY => {
                self.open = Some(Kind::Binary);
                self.frames = 1;
            }
            opcode::CONTINUATION => self.frames += 1,
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
    /// refused with [`Error::MessageTooLarge`], and a close code that may not be sent
    /// ([`CloseCode::is_allowed_on_wire`]) with [`Error::InvalidCloseCode`]; nothing is written.
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
            Message::Close(Some(CloseFrame { code, .. })) if !code.is_allowed_on_wire() => {
                Err(Error::InvalidCloseCode(*code))
            }
            Message::Close(Some(CloseFrame { code, reason })) => {
                let reason = truncate_at_char(reason, MAX_CONTROL_PAYLOAD - 2);
                let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
                payload[..2].copy_from_slice(&code.0.to_be_bytes());
                payload[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
                self.write(opcode::CLOSE, &payload[..2 + reason.len()], dst)
            }
        }
    }

    /// Appends one text frame whose payload is `parts` one after the other; the caller
    /// guarantees that together they are UTF-8.
    pub fn encode_text_parts(&mut self, parts: &[&[u8]], dst: &mut BytesMut) -> Result<(), Error> {
        let mask = match self.role {
            Role::Server => None,
            Role::Client => Some(self.keys.next()?),
        };
        encode_frame_parts(true, opcode::TEXT, parts, mask, dst);
        Ok(())
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
#[path = "rfc6455_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "rfc6455_proptests.rs"]
mod proptests;
