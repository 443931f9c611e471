//! Engine.IO v4 packets, and the payloads that carry several of them over HTTP long-polling.
//!
//! A packet is a type digit followed by its data: `0` open, `1` close, `2` ping, `3` pong,
//! `4` message, `5` upgrade, `6` noop. Over WebSocket each packet is one frame, and a binary
//! message is a binary frame holding only its bytes. Where only text can travel (a polling body,
//! a hixie WebSocket), a binary message is `b` followed by its bytes in standard base64.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use hunchensocket_core::{Message, Utf8Bytes};

/// The record separator between packets of a polling payload.
pub const SEPARATOR: u8 = 0x1e;

/// Standard base64; padding written on encode, optional on decode (browsers' decoders accept
/// both).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Data of a message packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

/// One Engine.IO packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// `0`: the handshake, as JSON text (see [`OpenInfo`]).
    Open(Utf8Bytes),
    /// `1`: the session ends.
    Close,
    /// `2`: a heartbeat, with optional data (`probe` while upgrading).
    Ping(Utf8Bytes),
    /// `3`: the answer to a ping, echoing its data.
    Pong(Utf8Bytes),
    /// `4`: application data.
    Message(Payload),
    /// `5`: the client switches the session to the WebSocket it probed.
    Upgrade,
    /// `6`: nothing; ends a pending poll during an upgrade.
    Noop,
}

/// Why a packet or a polling payload could not be decoded.
///
/// Each of these closes the session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// An empty frame, an empty polling body, or an empty record in one.
    #[error("empty packet")]
    Empty,
    /// The first character is not a packet type.
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// A `b` packet whose data is not base64.
    #[error("invalid base64 in a binary packet")]
    InvalidBase64,
    /// A polling body that is not UTF-8.
    #[error("polling payload is not UTF-8")]
    InvalidUtf8,
}

impl Packet {
    /// Decodes one packet from a WebSocket text frame or one record of a polling payload.
    ///
    /// `b<base64>` gives a binary message. Data after the type of a close, upgrade or noop
    /// packet is ignored, as the reference server does.
    pub fn decode_text(text: Utf8Bytes) -> Result<Packet, PacketError> {
        let kind = text.chars().next().ok_or(PacketError::Empty)?;
        // Every known type is one ASCII byte, so the data starts at byte 1.
        let data = || {
            Utf8Bytes::try_from_bytes(text.as_bytes().slice(1..))
                .expect("slicing after an ASCII byte keeps UTF-8 valid")
        };
        Ok(match kind {
            '0' => Packet::Open(data()),
            '1' => Packet::Close,
            '2' => Packet::Ping(data()),
            '3' => Packet::Pong(data()),
            '4' => Packet::Message(Payload::Text(data())),
            '5' => Packet::Upgrade,
            '6' => Packet::Noop,
            'b' => {
                let bytes = BASE64
                    .decode(&text.as_bytes()[1..])
                    .map_err(|_| PacketError::InvalidBase64)?;
                Packet::Message(Payload::Binary(bytes.into()))
            }
            other => return Err(PacketError::UnknownType(other)),
        })
    }

    /// A WebSocket binary frame: always a binary message (it has no type byte).
    pub fn from_binary(data: Bytes) -> Packet {
        Packet::Message(Payload::Binary(data))
    }

    /// Appends the text form of the packet to `out`, with a binary message as `b` + base64.
    ///
    /// This is the form for polling records and for WebSockets that carry only text (hixie).
    pub fn encode_text(&self, out: &mut String) {
        let (kind, data) = match self {
            Packet::Open(data) => ('0', data.as_str()),
            Packet::Close => ('1', ""),
            Packet::Ping(data) => ('2', data.as_str()),
            Packet::Pong(data) => ('3', data.as_str()),
            Packet::Message(Payload::Text(data)) => ('4', data.as_str()),
            Packet::Message(Payload::Binary(data)) => {
                out.push('b');
                BASE64.encode_string(data, out);
                return;
            }
            Packet::Upgrade => ('5', ""),
            Packet::Noop => ('6', ""),
        };
        out.push(kind);
        out.push_str(data);
    }

    /// The WebSocket message for this packet: its text form, or for a binary message its raw
    /// bytes as a binary frame.
    pub fn to_ws(&self) -> Message {
        match self {
            Packet::Message(Payload::Binary(data)) => Message::Binary(data.clone()),
            other => {
                let mut text = String::new();
                other.encode_text(&mut text);
                Message::text(text)
            }
        }
    }
}

/// Splits a polling POST body into its packets.
///
/// The body must be UTF-8; records are separated by [`SEPARATOR`]; an empty body or an empty
/// record is an error.
pub fn decode_payload(body: Bytes) -> Result<Vec<Packet>, PacketError> {
    let mut packets = Vec::new();
    let mut start = 0;
    loop {
        let end = body[start..]
            .iter()
            .position(|&b| b == SEPARATOR)
            .map_or(body.len(), |i| start + i);
        // The separator is ASCII, so checking each record checks the whole body.
        let record = Utf8Bytes::try_from_bytes(body.slice(start..end))
            .map_err(|_| PacketError::InvalidUtf8)?;
        packets.push(Packet::decode_text(record)?);
        if end == body.len() {
            return Ok(packets);
        }
        start = end + 1;
    }
}

/// Joins packets into a polling GET response body.
///
/// Text holding the separator (U+001E) cannot be carried in a payload, by any Engine.IO
/// implementation: the peer would split the packet in two.
pub fn encode_payload(packets: &[Packet]) -> String {
    let mut out = String::new();
    for (i, packet) in packets.iter().enumerate() {
        if i > 0 {
            out.push(char::from(SEPARATOR));
        }
        packet.encode_text(&mut out);
    }
    out
}

/// The handshake data of an open packet.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenInfo {
    /// The session id.
    pub sid: String,
    /// Transports the session may upgrade to: `["websocket"]` over polling, `[]` over WebSocket.
    pub upgrades: Vec<String>,
    /// Milliseconds between the server's pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong.
    pub ping_timeout: u64,
    /// The largest polling body the server accepts, in bytes.
    pub max_payload: u64,
}

impl OpenInfo {
    /// The open packet carrying this handshake: `0` + JSON with exactly these five keys.
    pub fn packet(&self) -> Packet {
        let json = serde_json::to_string(self).expect("strings and integers always serialize");
        Packet::Open(json.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(s: &str) -> Result<Packet, PacketError> {
        Packet::decode_text(Utf8Bytes::from(s))
    }

    fn encode(p: &Packet) -> String {
        let mut out = String::new();
        p.encode_text(&mut out);
        out
    }

    fn text(s: &str) -> Payload {
        Payload::Text(s.into())
    }

    #[test]
    fn every_type_both_ways() {
        let cases = [
            ("0{\"sid\":\"a\"}", Packet::Open("{\"sid\":\"a\"}".into())),
            ("1", Packet::Close),
            ("2", Packet::Ping("".into())),
            ("3", Packet::Pong("".into())),
            ("2probe", Packet::Ping("probe".into())),
            ("3probe", Packet::Pong("probe".into())),
            ("4hello", Packet::Message(text("hello"))),
            ("4", Packet::Message(text(""))),
            ("4€ é", Packet::Message(text("€ é"))),
            ("5", Packet::Upgrade),
            ("6", Packet::Noop),
            (
                "bAQIDBA==",
                Packet::Message(Payload::Binary(vec![1, 2, 3, 4].into())),
            ),
            ("b", Packet::Message(Payload::Binary(Bytes::new()))),
        ];
        for (wire, packet) in cases {
            assert_eq!(decode(wire).unwrap(), packet, "{wire:?}");
            assert_eq!(encode(&packet), wire);
        }
    }

    #[test]
    fn unpadded_base64_is_accepted() {
        assert_eq!(
            decode("bAQIDBA").unwrap(),
            Packet::Message(Payload::Binary(vec![1, 2, 3, 4].into()))
        );
    }

    #[test]
    fn data_after_close_upgrade_noop_is_ignored() {
        assert_eq!(decode("1x").unwrap(), Packet::Close);
        assert_eq!(decode("5probe").unwrap(), Packet::Upgrade);
        assert_eq!(decode("6 ").unwrap(), Packet::Noop);
    }

    #[test]
    fn invalid_packets() {
        assert_eq!(decode(""), Err(PacketError::Empty));
        assert_eq!(decode("9"), Err(PacketError::UnknownType('9')));
        assert_eq!(decode("€4"), Err(PacketError::UnknownType('€')));
        assert_eq!(decode("b!!!"), Err(PacketError::InvalidBase64));
        assert_eq!(decode("bAQIDBA=x"), Err(PacketError::InvalidBase64));
    }

    #[test]
    fn binary_frames() {
        let p = Packet::from_binary(Bytes::from_static(&[1, 2, 3]));
        assert_eq!(p, Packet::Message(Payload::Binary(vec![1, 2, 3].into())));
        assert_eq!(p.to_ws(), Message::Binary(vec![1, 2, 3].into()));
        assert_eq!(
            Packet::Ping("probe".into()).to_ws(),
            Message::text("2probe")
        );
        assert_eq!(Packet::Message(text("hi")).to_ws(), Message::text("4hi"));
    }

    #[test]
    fn payloads() {
        let body = "4hello\x1e4€\x1ebAQIDBA==";
        let packets = vec![
            Packet::Message(text("hello")),
            Packet::Message(text("€")),
            Packet::Message(Payload::Binary(vec![1, 2, 3, 4].into())),
        ];
        assert_eq!(decode_payload(Bytes::from(body)).unwrap(), packets);
        assert_eq!(encode_payload(&packets), body);
        assert_eq!(
            decode_payload(Bytes::from_static(b"1")).unwrap(),
            vec![Packet::Close]
        );
        assert_eq!(encode_payload(&[]), "");
    }

    #[test]
    fn invalid_payloads() {
        let bad = |b: &'static [u8]| decode_payload(Bytes::from_static(b)).unwrap_err();
        assert_eq!(bad(b""), PacketError::Empty);
        assert_eq!(bad(b"4a\x1e"), PacketError::Empty);
        assert_eq!(bad(b"\x1e4a"), PacketError::Empty);
        assert_eq!(bad(b"4a\x1e\x1e4b"), PacketError::Empty);
        assert_eq!(bad(b"4\xff"), PacketError::InvalidUtf8);
        assert_eq!(bad(b"4a\x1e9"), PacketError::UnknownType('9'));
        assert_eq!(bad(b"4a\x1eb*"), PacketError::InvalidBase64);
    }

    #[test]
    fn open_info() {
        let info = OpenInfo {
            sid: "abc".into(),
            upgrades: vec!["websocket".into()],
            ping_interval: 25000,
            ping_timeout: 20000,
            max_payload: 1_000_000,
        };
        assert_eq!(
            encode(&info.packet()),
            r#"0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
    }

    /// Any packet but open, with text free of the separator (which no payload can carry).
    fn any_packet() -> impl Strategy<Value = Packet> {
        let data = || "[^\u{1e}]*".prop_map(Utf8Bytes::from);
        prop_oneof![
            Just(Packet::Close),
            data().prop_map(Packet::Ping),
            data().prop_map(Packet::Pong),
            data().prop_map(|s| Packet::Message(Payload::Text(s))),
            proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(|b| Packet::Message(Payload::Binary(b.into()))),
            Just(Packet::Upgrade),
            Just(Packet::Noop),
        ]
    }

    proptest! {
        #[test]
        fn payload_round_trip(packets in proptest::collection::vec(any_packet(), 1..8)) {
            let body = encode_payload(&packets);
            prop_assert_eq!(decode_payload(Bytes::from(body)).unwrap(), packets);
        }

        #[test]
        fn decoding_never_panics(s in any::<String>(), b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&s);
            let _ = decode_payload(Bytes::from(s));
            let _ = decode_payload(Bytes::from(b));
        }
    }
}
