//! hixie-75/76 framing: a sans-io decoder and encoder for `00 text FF` frames and `FF 00` close.
//!
//! What the reference servers (pywebsocket, faye-websocket) do on odd input, this does too:
//! invalid UTF-8 in a text frame becomes U+FFFD, `00 FF` is an empty text message, sentinel
//! frames of types 0x01-0x7F and length-prefixed frames other than `FF 00` are read and
//! discarded. Discarded frames are skipped as they stream in, never buffered, but they count
//! against the message limit like text does.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Error, ProtocolError};
use crate::message::{Message, Utf8Bytes};

/// The hixie codec of one endpoint (the framing is the same both ways).
#[derive(Debug)]
pub struct Codec {
    max_message_size: usize,
    state: State,
    /// Whether `FF 00` has been decoded.
    closed: bool,
    /// The error decoding stopped at, returned again by every later call.
    failed: Option<ProtocolError>,
}

/// Where the decoder is within a frame. Type and length bytes are consumed as they are read.
#[derive(Clone, Copy, Debug)]
enum State {
    /// Between frames.
    Idle,
    /// In a text frame; the payload so far is in the buffer, and its first `scanned` bytes are
    /// known not to hold the 0xFF terminator.
    Text { scanned: usize },
    /// In a discarded sentinel frame (type 0x01-0x7F), `seen` bytes in.
    Sentinel { seen: u64 },
    /// Reading the length of a length-prefixed frame (type 0x80-0xFF).
    Length { frame_type: u8, len: u64 },
    /// Skipping the rest of a discarded length-prefixed frame.
    Skip { remaining: u64 },
}

impl Codec {
    /// A codec refusing frames over `max_message_size` bytes (or that grow past it without
    /// their terminator).
    pub fn new(max_message_size: usize) -> Self {
        Codec {
            max_message_size,
            state: State::Idle,
            closed: false,
            failed: None,
        }
    }

    /// Consumes complete frames from `src`; returns the next message, `Ok(None)` when more
    /// bytes are needed.
    ///
    /// The caller appends to the same buffer between calls and does not change the bytes left
    /// in it. Only [`Message::Text`] and [`Message::Close`] come out. A text frame's payload
    /// is handed back without copying when it is valid UTF-8. After `FF 00`, any further byte
    /// is [`ProtocolError::DataAfterClose`]; after an error, every call returns that error.
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
        let max = self.max_message_size as u64;
        loop {
            match self.state {
                State::Idle => {
                    let Some(&frame_type) = src.first() else {
                        return Ok(None);
                    };
                    if self.closed {
                        return Err(ProtocolError::DataAfterClose);
                    }
                    src.advance(1);
                    self.state = match frame_type {
                        0x00 => State::Text { scanned: 0 },
                        0x01..=0x7F => State::Sentinel { seen: 0 },
                        _ => State::Length { frame_type, len: 0 },
                    };
                }
                State::Text { scanned } => {
                    let from = scanned.min(src.len());
                    match src[from..].iter().position(|&b| b == 0xFF) {
                        Some(at) => {
                            let end = from + at;
                            if end as u64 > max {
                                return Err(ProtocolError::MessageTooLarge);
                            }
                            let payload = src.split_to(end).freeze();
                            src.advance(1);
                            self.state = State::Idle;
                            return Ok(Some(Message::Text(lossy_text(payload))));
                        }
                        None => {
                            if src.len() as u64 > max {
                                return Err(ProtocolError::MessageTooLarge);
                            }
                            self.state = State::Text { scanned: src.len() };
                            return Ok(None);
                        }
                    }
                }
                State::Sentinel { seen } => match src.iter().position(|&b| b == 0xFF) {
                    Some(at) => {
                        if seen + at as u64 > max {
                            return Err(ProtocolError::MessageTooLarge);
                        }
                        src.advance(at + 1);
                        self.state = State::Idle;
                    }
                    None => {
                        let seen = seen + src.len() as u64;
                        if seen > max {
                            return Err(ProtocolError::MessageTooLarge);
                        }
                        src.clear();
                        self.state = State::Sentinel { seen };
                        return Ok(None);
                    }
                },
                State::Length { frame_type, len } => {
                    let Some(&byte) = src.first() else {
                        return Ok(None);
                    };
                    src.advance(1);
                    let len = len.checked_mul(128).ok_or(ProtocolError::MessageTooLarge)?
                        | u64::from(byte & 0x7F);
                    // More groups only make the length larger, so a length already over the
                    // limit fails now.
                    if len > max {
                        return Err(ProtocolError::MessageTooLarge);
                    }
                    if byte & 0x80 != 0 {
                        self.state = State::Length { frame_type, len };
                    } else if frame_type == 0xFF && len == 0 {
                        self.state = State::Idle;
                        self.closed = true;
                        return Ok(Some(Message::Close(None)));
                    } else {
                        self.state = State::Skip { remaining: len };
                    }
                }
                State::Skip { remaining } => {
                    if remaining == 0 {
                        self.state = State::Idle;
                        continue;
                    }
                    // `take` is at most `src.len()`, a usize.
                    let take = remaining.min(src.len() as u64);
                    src.advance(take as usize);
                    self.state = State::Skip {
                        remaining: remaining - take,
                    };
                    if remaining > take {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Appends the encoding of `msg` to `dst`.
    ///
    /// Text becomes `00 text FF` and a close `FF 00` (its code and reason are not sent).
    /// Binary cannot be sent: [`Error::BinaryUnsupported`]. Pings and pongs do not exist here:
    /// nothing is written, and `Ok` returned.
    pub fn encode(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<(), Error> {
        match msg {
            Message::Text(text) => {
                // UTF-8 never holds 0xFF, so text needs no escaping.
                dst.reserve(text.len() + 2);
                dst.put_u8(0x00);
                dst.put_slice(text.as_bytes());
                dst.put_u8(0xFF);
                Ok(())
            }
            Message::Close(_) => {
                dst.put_slice(&[0xFF, 0x00]);
                Ok(())
            }
            Message::Binary(_) => Err(Error::BinaryUnsupported),
            Message::Ping(_) | Message::Pong(_) => Ok(()),
        }
    }
}

/// The text of a frame, with each invalid UTF-8 sequence replaced by U+FFFD.
fn lossy_text(payload: Bytes) -> Utf8Bytes {
    if std::str::from_utf8(&payload).is_ok() {
        Utf8Bytes::from_validated(payload)
    } else {
        Utf8Bytes::from(String::from_utf8_lossy(&payload).into_owned())
    }
}
