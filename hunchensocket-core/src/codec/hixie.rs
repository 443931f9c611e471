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
                            let text = lossy_text(payload);
                            // Each U+FFFD takes three bytes where the invalid byte took one:
                            // the limit holds for the text handed out, not only the frame.
                            if text.len() as u64 > max {
                                return Err(ProtocolError::MessageTooLarge);
                            }
                            return Ok(Some(Message::Text(text)));
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

    /// Appends one text frame whose payload is `parts` one after the other; the caller
    /// guarantees that together they are UTF-8.
    pub fn encode_text_parts(&mut self, parts: &[&[u8]], dst: &mut BytesMut) {
        dst.reserve(parts.iter().map(|p| p.len()).sum::<usize>() + 2);
        dst.put_u8(0x00);
        for part in parts {
            dst.put_slice(part);
        }
        dst.put_u8(0xFF);
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::message::{CloseCode, CloseFrame};

    fn codec() -> Codec {
        Codec::new(1 << 20)
    }

    fn decode_all(codec: &mut Codec, bytes: &[u8]) -> Result<Vec<Message>, ProtocolError> {
        decode_chunked(codec, bytes, &[usize::MAX])
    }

    fn decode_chunked(
        codec: &mut Codec,
        bytes: &[u8],
        sizes: &[usize],
    ) -> Result<Vec<Message>, ProtocolError> {
        crate::codec::feed_chunked(bytes, sizes, |src| codec.decode(src))
    }

    #[test]
    fn text_frames() {
        assert_eq!(
            decode_all(&mut codec(), b"\x00Hello\xFF\x00h\xC3\xA9\xFF"),
            Ok(vec![Message::text("Hello"), Message::text("hé")])
        );
    }

    #[test]
    fn invalid_utf8_becomes_replacement_chars() {
        assert_eq!(
            decode_all(&mut codec(), b"\x00a\xC3\x28b\x80\xFF"),
            Ok(vec![Message::text("a\u{FFFD}(b\u{FFFD}")])
        );
    }

    #[test]
    fn empty_text_frame() {
        assert_eq!(
            decode_all(&mut codec(), b"\x00\xFF"),
            Ok(vec![Message::text("")])
        );
    }

    #[test]
    fn sentinel_frames_of_other_types_are_discarded() {
        assert_eq!(
            decode_all(&mut codec(), b"\x01ignored\xFF\x7F\xFF\x00kept\xFF"),
            Ok(vec![Message::text("kept")])
        );
    }

    #[test]
    fn length_frames_are_discarded() {
        assert_eq!(
            decode_all(&mut codec(), b"\x80\x03abc\x00kept\xFF"),
            Ok(vec![Message::text("kept")])
        );
        // Two length groups: 0x81 0x00 is 128.
        let mut bytes = b"\x90\x81\x00".to_vec();
        bytes.extend_from_slice(&[0xFF; 128]);
        bytes.extend_from_slice(b"\x00kept\xFF");
        assert_eq!(
            decode_all(&mut codec(), &bytes),
            Ok(vec![Message::text("kept")])
        );
        // A zero-length frame of another type than 0xFF is no close.
        assert_eq!(
            decode_all(&mut codec(), b"\x80\x00\x00kept\xFF"),
            Ok(vec![Message::text("kept")])
        );
    }

    #[test]
    fn close() {
        let mut codec = codec();
        let mut src = BytesMut::from(&b"\x00bye\xFF\xFF\x00"[..]);
        assert_eq!(codec.decode(&mut src), Ok(Some(Message::text("bye"))));
        assert_eq!(codec.decode(&mut src), Ok(Some(Message::Close(None))));
        assert_eq!(codec.decode(&mut src), Ok(None));
        src.extend_from_slice(b"\x00late\xFF");
        let e = codec.decode(&mut src).unwrap_err();
        assert_eq!(e, ProtocolError::DataAfterClose);
        assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR);
    }

    #[test]
    fn never_ending_text_frame() {
        let mut codec = Codec::new(16);
        let mut src = BytesMut::from(&b"\x00"[..]);
        src.extend_from_slice(&[b'a'; 16]);
        assert_eq!(codec.decode(&mut src), Ok(None));
        src.extend_from_slice(b"a");
        let e = codec.decode(&mut src).unwrap_err();
        assert_eq!(e, ProtocolError::MessageTooLarge);
        assert_eq!(e.close_code(), CloseCode::MESSAGE_TOO_BIG);
        // Sticky.
        assert_eq!(codec.decode(&mut src), Err(ProtocolError::MessageTooLarge));
    }

    #[test]
    fn text_at_the_limit_and_over_it() {
        let mut bytes = b"\x00".to_vec();
        bytes.extend_from_slice(&[b'a'; 16]);
        bytes.push(0xFF);
        assert_eq!(decode_all(&mut Codec::new(16), &bytes).unwrap().len(), 1);
        // Terminated, but one byte too long, arriving all at once.
        let mut bytes = b"\x00".to_vec();
        bytes.extend_from_slice(&[b'a'; 17]);
        bytes.push(0xFF);
        assert_eq!(
            decode_all(&mut Codec::new(16), &bytes),
            Err(ProtocolError::MessageTooLarge)
        );
    }

    #[test]
    fn replacement_chars_count_against_the_limit() {
        // Found by the hixie_codec fuzz target: 6 invalid bytes fit a 16-byte limit on the
        // wire but become 18 bytes of U+FFFD, which a peer with the same limit refuses.
        let bytes = b"\x00\x80\x80\x80\x80\x80\x80\xFF";
        assert_eq!(
            decode_all(&mut Codec::new(16), bytes),
            Err(ProtocolError::MessageTooLarge)
        );
        // Five of them (15 bytes) fit, and re-encode to a frame the same limit accepts.
        let bytes = b"\x00\x80\x80\x80\x80\x80\xFF";
        let decoded = decode_all(&mut Codec::new(16), bytes).unwrap();
        assert_eq!(decoded, vec![Message::text("\u{FFFD}".repeat(5))]);
        let mut wire = BytesMut::new();
        codec().encode(&decoded[0], &mut wire).unwrap();
        assert_eq!(decode_all(&mut Codec::new(16), &wire), Ok(decoded));
    }

    #[test]
    fn never_ending_sentinel_frame() {
        let mut bytes = b"\x05".to_vec();
        bytes.extend_from_slice(&[b'a'; 17]);
        assert_eq!(
            decode_chunked(&mut Codec::new(16), &bytes, &[3]),
            Err(ProtocolError::MessageTooLarge)
        );
    }

    #[test]
    fn length_over_the_limit() {
        let e = decode_all(&mut Codec::new(100), b"\x80\x65").unwrap_err();
        assert_eq!(e, ProtocolError::MessageTooLarge);
        assert_eq!(e.close_code(), CloseCode::MESSAGE_TOO_BIG);
        // Known too large before the last group arrives.
        assert_eq!(
            decode_all(&mut Codec::new(100), b"\x80\x81\x81"),
            Err(ProtocolError::MessageTooLarge)
        );
    }

    #[test]
    fn length_overflow() {
        let mut bytes = vec![0x80];
        bytes.extend_from_slice(&[0xFF; 12]);
        assert_eq!(
            decode_all(&mut Codec::new(usize::MAX), &bytes),
            Err(ProtocolError::MessageTooLarge)
        );
    }

    #[test]
    fn discarded_frames_are_not_buffered() {
        let mut codec = codec();
        let mut src = BytesMut::from(&b"\x01aaaa"[..]);
        assert_eq!(codec.decode(&mut src), Ok(None));
        assert!(src.is_empty());
        let mut src = BytesMut::from(&b"\x80\x0Aaaaa"[..]);
        let mut codec = Codec::new(100);
        assert_eq!(codec.decode(&mut src), Ok(None));
        assert!(src.is_empty());
        src.extend_from_slice(b"bbbbbb\x00x\xFF");
        assert_eq!(codec.decode(&mut src), Ok(Some(Message::text("x"))));
    }

    #[test]
    fn scanning_resumes_where_it_stopped() {
        let mut codec = codec();
        let mut src = BytesMut::from(&b"\x00abc"[..]);
        assert_eq!(codec.decode(&mut src), Ok(None));
        assert!(matches!(codec.state, State::Text { scanned: 3 }));
        src.extend_from_slice(b"def");
        assert_eq!(codec.decode(&mut src), Ok(None));
        assert!(matches!(codec.state, State::Text { scanned: 6 }));
        src.extend_from_slice(b"\xFF");
        assert_eq!(codec.decode(&mut src), Ok(Some(Message::text("abcdef"))));
    }

    #[test]
    fn valid_text_is_not_copied() {
        let mut src = BytesMut::from(&b"\x00Hello\xFF"[..]);
        let base = src.as_ptr() as usize;
        let Some(Message::Text(text)) = codec().decode(&mut src).unwrap() else {
            panic!("expected text");
        };
        assert_eq!(text.as_bytes().as_ptr() as usize, base + 1);
    }

    #[test]
    fn bytewise_equals_all_at_once() {
        let bytes = b"\x00Hello\xFF\x01x\xFF\x80\x03abc\x00\xC3\x28\xFF\x00\xFF\x82\x01\x00\x00\xF0\x9F\x98\x80\xFF\xFF\x00";
        let all = decode_all(&mut codec(), bytes).unwrap();
        assert_eq!(
            all,
            vec![
                Message::text("Hello"),
                Message::text("\u{FFFD}("),
                Message::text(""),
                Message::text("😀"),
                Message::Close(None),
            ]
        );
        assert_eq!(decode_chunked(&mut codec(), bytes, &[1]), Ok(all));
    }

    #[test]
    fn encode() {
        let mut codec = codec();
        let mut dst = BytesMut::new();
        codec.encode(&Message::text("hé"), &mut dst).unwrap();
        codec.encode(&Message::Ping("p".into()), &mut dst).unwrap();
        codec.encode(&Message::Pong("p".into()), &mut dst).unwrap();
        codec.encode(&Message::Close(None), &mut dst).unwrap();
        let close = Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "bye")));
        codec.encode(&close, &mut dst).unwrap();
        assert_eq!(&dst[..], b"\x00h\xC3\xA9\xFF\xFF\x00\xFF\x00");
        let result = codec.encode(&Message::binary(&b"x"[..]), &mut dst);
        assert!(
            matches!(result, Err(Error::BinaryUnsupported)),
            "{result:?}"
        );
        assert_eq!(dst.len(), 9);
    }

    proptest! {
        #[test]
        fn text_round_trip(
            texts in proptest::collection::vec(any::<String>(), 0..8),
            sizes in proptest::collection::vec(1usize..64, 1..6),
        ) {
            let mut codec = codec();
            let mut wire = BytesMut::new();
            for text in &texts {
                codec.encode(&Message::text(text.as_str()), &mut wire).unwrap();
            }
            codec.encode(&Message::Close(None), &mut wire).unwrap();
            let mut expected: Vec<Message> = texts.iter().map(|t| Message::text(t.as_str())).collect();
            expected.push(Message::Close(None));
            prop_assert_eq!(decode_chunked(&mut Codec::new(1 << 20), &wire, &sizes), Ok(expected));
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            sizes in proptest::collection::vec(1usize..50, 1..6),
            limit in prop_oneof![Just(1usize << 20), 0usize..40],
        ) {
            let chunked = decode_chunked(&mut Codec::new(limit), &bytes, &sizes);
            let whole = decode_all(&mut Codec::new(limit), &bytes);
            prop_assert_eq!(chunked, whole);
        }
    }
}
