//! Tests of `rfc6455`.

use bytes::Bytes;

use super::*;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

pub(super) fn server() -> Codec {
    Codec::new(Role::Server, 1 << 20, 1 << 20)
}

pub(super) fn client() -> Codec {
    Codec::new(Role::Client, 1 << 20, 1 << 20)
}

pub(super) fn frame(fin: bool, op: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut dst = BytesMut::new();
    encode_frame(fin, op, payload, mask, &mut dst);
    dst.to_vec()
}

/// A masked (client-to-server) frame.
pub(super) fn masked(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, op, payload, Some(KEY))
}

/// Decodes every message `bytes` holds in one go; stops at the first error.
pub(super) fn decode_all(codec: &mut Codec, bytes: &[u8]) -> Result<Vec<Message>, ProtocolError> {
    decode_chunked(codec, bytes, &[usize::MAX])
}

/// Feeds `bytes` one at a time, decoding after each.
pub(super) fn decode_bytewise(
    codec: &mut Codec,
    bytes: &[u8],
) -> Result<Vec<Message>, ProtocolError> {
    decode_chunked(codec, bytes, &[1])
}

/// Feeds `bytes` in chunks of the given sizes (cycled; 0 counts as 1), decoding after each.
pub(super) fn decode_chunked(
    codec: &mut Codec,
    bytes: &[u8],
    sizes: &[usize],
) -> Result<Vec<Message>, ProtocolError> {
    crate::codec::feed_chunked(bytes, sizes, |src| codec.decode(src))
}

pub(super) fn server_error(bytes: &[u8]) -> ProtocolError {
    decode_all(&mut server(), bytes).expect_err("should fail")
}

pub(super) fn client_error(bytes: &[u8]) -> ProtocolError {
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

#[test]
fn fragments_are_held_as_their_payload_only() {
    // Empty continuations: nothing is held, however many.
    let mut codec = server();
    let mut bytes = masked(false, opcode::BINARY, b"");
    for _ in 0..10_000 {
        bytes.extend(masked(false, opcode::CONTINUATION, b""));
    }
    assert_eq!(decode_all(&mut codec, &bytes), Ok(vec![]));
    assert_eq!(codec.fragments.capacity(), 0);
    // One-byte fragments: room for their bytes (grown by doubling), not per fragment.
    let mut bytes = Vec::new();
    for _ in 0..10_000 {
        bytes.extend(masked(false, opcode::CONTINUATION, b"a"));
    }
    assert_eq!(decode_all(&mut codec, &bytes), Ok(vec![]));
    assert_eq!(codec.fragments.len(), 10_000);
    assert!(codec.fragments.capacity() < 4 * 10_000, "{codec:?}");
}

#[test]
fn fragments_past_the_cap_are_refused() {
    let capped = |n| server().with_max_fragments(n);
    // Three frames: within a cap of 3; the fourth header is refused before its payload.
    let mut three = masked(false, opcode::TEXT, b"a");
    three.extend(masked(false, opcode::CONTINUATION, b""));
    three.extend(masked(true, opcode::CONTINUATION, b"b"));
    assert_eq!(
        decode_bytewise(&mut capped(3), &three),
        Ok(vec![Message::text("ab")])
    );
    let mut four = masked(false, opcode::TEXT, b"a");
    four.extend(masked(false, opcode::CONTINUATION, b""));
    four.extend(masked(false, opcode::CONTINUATION, b""));
    four.extend(&masked(true, opcode::CONTINUATION, b"b")[..2]);
    let e = decode_bytewise(&mut capped(3), &four).unwrap_err();
    assert_eq!(e, ProtocolError::TooManyFragments(3));
    assert_eq!(e.close_code(), CloseCode::POLICY_VIOLATION);
    // The count starts again with each message; control frames between fragments do not count.
    let mut codec = capped(2);
    let mut bytes = Vec::new();
    for _ in 0..3 {
        bytes.extend(masked(false, opcode::BINARY, b"x"));
        bytes.extend(masked(true, opcode::PING, b""));
        bytes.extend(masked(true, opcode::CONTINUATION, b"y"));
    }
    assert_eq!(decode_all(&mut codec, &bytes).unwrap().len(), 6);
    // A cap of 1: unfragmented messages only; 0: none.
    assert_eq!(
        decode_all(&mut capped(1), &masked(true, opcode::TEXT, b"a")),
        Ok(vec![Message::text("a")])
    );
    let mut two = masked(false, opcode::TEXT, b"a");
    two.extend(masked(true, opcode::CONTINUATION, b"b"));
    assert_eq!(
        decode_all(&mut capped(1), &two),
        Err(ProtocolError::TooManyFragments(1))
    );
    assert_eq!(
        decode_all(&mut capped(0), &masked(true, opcode::TEXT, b"a")),
        Err(ProtocolError::TooManyFragments(0))
    );
    // Without a cap (the default of a bare codec), any number.
    let mut many = masked(false, opcode::TEXT, b"");
    for _ in 0..20_000 {
        many.extend(masked(false, opcode::CONTINUATION, b""));
    }
    many.extend(masked(true, opcode::CONTINUATION, b"z"));
    assert_eq!(
        decode_all(&mut server(), &many),
        Ok(vec![Message::text("z")])
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
