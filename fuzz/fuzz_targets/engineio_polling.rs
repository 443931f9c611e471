//! Engine.IO v4 polling payloads (records separated by `\x1e`, binary messages as `b` +
//! base64), both ways.
//!
//! The bytes as a body the server reads: decoding never panics; what decodes re-encodes to a
//! canonical body that decodes to the same packets, and each packet survives its WebSocket
//! form (a binary frame, or one text frame). The same bytes as packets the server writes
//! (built with `arbitrary`): their body decodes to them, unless a text holds the separator,
//! which no payload can carry.
#![no_main]

use bytes::Bytes;
use hunchensocket_core::Message;
use hunchensocket_io::engine::packet::{
    Packet, Payload, SEPARATOR, decode_payload, encode_payload,
};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// A packet's WebSocket message, read back as the server reads a frame.
fn over_websocket(packet: &Packet) {
    let back = match packet.to_ws() {
        Message::Binary(data) => Packet::from_binary(data),
        Message::Text(text) => Packet::decode_text(text).expect("a packet's text form decodes"),
        other => panic!("{packet:?} became {other:?}"),
    };
    assert_eq!(&back, packet);
}

/// Up to 16 packets of any type, with any text and bytes.
fn packets(u: &mut Unstructured<'_>) -> Result<Vec<Packet>> {
    let mut packets = Vec::new();
    while !u.is_empty() && packets.len() < 16 {
        let text = |u: &mut Unstructured<'_>| u.arbitrary::<&str>().map(Into::into);
        packets.push(match u.int_in_range(0..=7u8)? {
            0 => Packet::Open(text(u)?),
            1 => Packet::Close,
            2 => Packet::Ping(text(u)?),
            3 => Packet::Pong(text(u)?),
            4 => Packet::Message(Payload::Text(text(u)?)),
            5 => Packet::Message(Payload::Binary(Bytes::copy_from_slice(u.arbitrary()?))),
            6 => Packet::Upgrade,
            _ => Packet::Noop,
        });
    }
    Ok(packets)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(packets) = decode_payload(Bytes::copy_from_slice(data)) {
        assert!(!packets.is_empty());
        let canonical = encode_payload(&packets);
        let separators = canonical.bytes().filter(|&b| b == SEPARATOR).count();
        assert_eq!(separators + 1, packets.len());
        let back = decode_payload(Bytes::from(canonical)).expect("an encoded payload decodes");
        assert_eq!(back, packets);
        packets.iter().for_each(over_websocket);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Packet::decode_text(text.into());
    }

    let Ok(sent) = packets(&mut Unstructured::new(data)) else {
        return;
    };
    sent.iter().for_each(over_websocket);
    let carries_separator = sent.iter().any(|p| match p {
        Packet::Open(t) | Packet::Ping(t) | Packet::Pong(t) | Packet::Message(Payload::Text(t)) => {
            t.as_bytes().contains(&SEPARATOR)
        }
        _ => false,
    });
    match decode_payload(Bytes::from(encode_payload(&sent))) {
        Ok(back) if !carries_separator => assert_eq!(back, sent),
        Ok(_) => {}
        Err(e) => assert!(sent.is_empty() || carries_separator, "{sent:?}: {e}"),
    }
});
