//! Property tests of `rfc6455`: round trips in both directions under any chunking, and
//! decoding that never panics.

use proptest::prelude::*;

use super::tests::*;
use super::*;

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
