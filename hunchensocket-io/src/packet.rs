//! Socket.IO v5 packets: parsing and writing the text that rides in one Engine.IO message.
//!
//! The form is `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`, for example
//! `2["chat","hi"]`, `3/admin,12["ok"]` or `51-["upload",{"_placeholder":true,"num":0}]`.
//! The namespace is left out when it is `/`. The binary attachments of `BINARY_*` packets
//! travel as the Engine.IO binary messages that follow; [`crate::args`] turns them into
//! arguments.

use std::fmt::Write as _;

use serde_json::Value;

/// The kind of a Socket.IO packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketType {
    /// `0`: joins a namespace (client), or accepts the join (server).
    Connect,
    /// `1`: leaves a namespace.
    Disconnect,
    /// `2`: an event, `["name", args...]`.
    Event,
    /// `3`: the answer to an event that carried an ack id.
    Ack,
    /// `4`: the server refuses a join.
    ConnectError,
    /// `5`: an event whose arguments hold binary attachments.
    BinaryEvent,
    /// `6`: an ack whose arguments hold binary attachments.
    BinaryAck,
}

impl PacketType {
    fn from_digit(c: char) -> Option<PacketType> {
        Some(match c {
            '0' => PacketType::Connect,
            '1' => PacketType::Disconnect,
            '2' => PacketType::Event,
            '3' => PacketType::Ack,
            '4' => PacketType::ConnectError,
            '5' => PacketType::BinaryEvent,
            '6' => PacketType::BinaryAck,
            _ => return None,
        })
    }

    fn digit(self) -> char {
        match self {
            PacketType::Connect => '0',
            PacketType::Disconnect => '1',
            PacketType::Event => '2',
            PacketType::Ack => '3',
            PacketType::ConnectError => '4',
            PacketType::BinaryEvent => '5',
            PacketType::BinaryAck => '6',
        }
    }

    /// Whether packets of this type are followed by binary attachments.
    pub fn is_binary(self) -> bool {
        matches!(self, PacketType::BinaryEvent | PacketType::BinaryAck)
    }
}

/// Event names a peer may not use: they mean something to Socket.IO itself.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// One Socket.IO packet.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    /// What the packet is.
    pub kind: PacketType,
    /// The namespace, starting with `/`; `/` when the wire leaves it out.
    pub nsp: String,
    /// The ack id of an event that wants an answer, or of the ack that answers it.
    pub id: Option<u64>,
    /// The JSON data.
    pub data: Option<Value>,
    /// How many binary attachments follow a `BINARY_*` packet; ignored for other types.
    pub attachments: usize,
}

/// Why a Socket.IO packet is invalid.
///
/// Each of these closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The packet is empty.
    #[error("empty packet")]
    Empty,
    /// The first character is not a packet type.
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// A binary packet without `<count>-`, or with a count too large.
    #[error("bad attachment count")]
    BadAttachmentCount,
    /// A binary packet announcing more attachments than the server accepts.
    #[error("{0} attachments announced, more than allowed")]
    TooManyAttachments(usize),
    /// A binary packet whose header and attachments together pass the payload limit.
    #[error("attachments over the payload limit")]
    AttachmentsTooLarge,
    /// A placeholder whose `num` is not the index of one of the packet's attachments.
    #[error("a placeholder names no attachment")]
    BadPlaceholder,
    /// Text arrived while the attachments of a binary packet were awaited, or an attachment
    /// arrived with no binary packet to complete.
    #[error("a binary packet's attachments out of turn")]
    AttachmentOutOfTurn,
    /// An ack id too large for a `u64`.
    #[error("bad ack id")]
    BadAckId,
    /// An ack without an ack id.
    #[error("ack without an id")]
    MissingAckId,
    /// The data is not JSON (the text after the header, for example junk where an ack id
    /// belongs).
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The data is JSON of the wrong shape for the packet type.
    #[error("invalid data: {0}")]
    InvalidData(&'static str),
}

/// Parses a Socket.IO packet (the text of an Engine.IO message, without its `4`).
///
/// The checks follow the reference parser (socket.io-parser 4.2, `isPayloadValid`): CONNECT
/// data is absent or an object; DISCONNECT has no data; an event's data is an array starting
/// with its name, a number or a string that is not one of [`RESERVED_EVENTS`]; an ack's data is an array and it has an id; CONNECT_ERROR data is absent,
/// an object or a string. The namespace runs from a leading `/` to the first `,` (or the end).
pub fn decode(text: &str) -> Result<Packet, ParseError> {
    let first = text.chars().next().ok_or(ParseError::Empty)?;
    let kind = PacketType::from_digit(first).ok_or(ParseError::UnknownType(first))?;
    let bytes = text.as_bytes();
    let digits_at = |i: usize| bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    // Every delimiter is ASCII, so each index below falls on a char boundary.
    let mut i = 1;

    let mut attachments = 0;
    if kind.is_binary() {
        let n = digits_at(i);
        if n == 0 || bytes.get(i + n) != Some(&b'-') {
            return Err(ParseError::BadAttachmentCount);
        }
        attachments = text[i..i + n]
            .parse()
            .map_err(|_| ParseError::BadAttachmentCount)?;
        i += n + 1;
    }

    let mut nsp = "/";
    if bytes.get(i) == Some(&b'/') {
        let end = bytes[i..]
            .iter()
            .position(|&b| b == b',')
            .map_or(bytes.len(), |p| i + p);
        nsp = &text[i..end];
        i = bytes.len().min(end + 1);
    }

    let n = digits_at(i);
    let id = match n {
        0 => None,
        _ => Some(text[i..i + n].parse().map_err(|_| ParseError::BadAckId)?),
    };
    i += n;

    let data = match &text[i..] {
        "" => None,
        json => Some(
            serde_json::from_str::<Value>(json)
                .map_err(|e| ParseError::InvalidJson(e.to_string()))?,
        ),
    };

    check(kind, id, data.as_ref())?;
    Ok(Packet {
        kind,
        nsp: nsp.to_owned(),
        id,
        data,
        attachments,
    })
}

/// Checks that every placeholder in `data` (an object whose `_placeholder` is `true`) has a
/// `num` that is the index of one of `attachments` attachments, as the reference parser does
/// when it puts a binary packet back together.
pub fn check_placeholders(data: Option<&Value>, attachments: usize) -> Result<(), ParseError> {
    // serde_json refuses JSON nested deeper than 128 levels, so this recursion is bounded.
    fn walk(value: &Value, attachments: usize) -> Result<(), ParseError> {
        match value {
            Value::Object(map) if map.get("_placeholder") == Some(&Value::Bool(true)) => {
                match map.get("num").and_then(Value::as_u64) {
                    Some(num) if num < attachments as u64 => Ok(()),
                    _ => Err(ParseError::BadPlaceholder),
                }
            }
            Value::Object(map) => map.values().try_for_each(|v| walk(v, attachments)),
            Value::Array(items) => items.iter().try_for_each(|v| walk(v, attachments)),
            _ => Ok(()),
        }
    }
    data.map_or(Ok(()), |data| walk(data, attachments))
}

fn check(kind: PacketType, id: Option<u64>, data: Option<&Value>) -> Result<(), ParseError> {
    use ParseError::InvalidData;
    match (kind, data) {
        (PacketType::Connect, None | Some(Value::Object(_))) => Ok(()),
        (PacketType::Connect, _) => Err(InvalidData("CONNECT data must be an object")),
        (PacketType::Disconnect, None) => Ok(()),
        (PacketType::Disconnect, _) => Err(InvalidData("DISCONNECT carries no data")),
        (PacketType::ConnectError, None | Some(Value::Object(_) | Value::String(_))) => Ok(()),
        (PacketType::ConnectError, _) => Err(InvalidData(
            "CONNECT_ERROR data must be an object or a string",
        )),
        (PacketType::Event | PacketType::BinaryEvent, Some(Value::Array(args))) => {
            match args.first() {
                Some(Value::String(name)) if RESERVED_EVENTS.contains(&name.as_str()) => {
                    Err(InvalidData("reserved event name"))
                }
                // socket.io-parser takes a number for a name too.
                Some(Value::String(_) | Value::Number(_)) => Ok(()),
                _ => Err(InvalidData("an event must start with its name")),
            }
        }
        (PacketType::Event | PacketType::BinaryEvent, _) => {
            Err(InvalidData("event data must be an array"))
        }
        (PacketType::Ack | PacketType::BinaryAck, Some(Value::Array(_))) => match id {
            Some(_) => Ok(()),
            None => Err(ParseError::MissingAckId),
        },
        (PacketType::Ack | PacketType::BinaryAck, _) => {
            Err(InvalidData("ack data must be an array"))
        }
    }
}

/// Writes a Socket.IO packet: `<type>[<attachments>-][<nsp>,][<id>][<JSON>]`.
///
/// The namespace is left out when it is `/` (or empty); otherwise it should start with `/` and
/// hold no `,`, or the peer will read something else.
pub fn encode(packet: &Packet) -> String {
    let mut out = String::new();
    out.push(packet.kind.digit());
    if packet.kind.is_binary() {
        let _ = write!(out, "{}-", packet.attachments);
    }
    if !packet.nsp.is_empty() && packet.nsp != "/" {
        out.push_str(&packet.nsp);
        out.push(',');
    }
    if let Some(id) = packet.id {
        let _ = write!(out, "{id}");
    }
    if let Some(data) = &packet.data {
        // A Value's Display is its compact JSON.
        let _ = write!(out, "{data}");
    }
    out
}

impl Packet {
    fn new(kind: PacketType, nsp: impl Into<String>, id: Option<u64>, data: Option<Value>) -> Self {
        Packet {
            kind,
            nsp: nsp.into(),
            id,
            data,
            attachments: 0,
        }
    }

    /// CONNECT: a join with optional auth data (client), or its acceptance with `{"sid": ...}`
    /// (server).
    pub fn connect(nsp: impl Into<String>, data: Option<Value>) -> Self {
        Packet::new(PacketType::Connect, nsp, None, data)
    }

    /// CONNECT_ERROR: `{"message": message}`, plus `"data"` when given.
    pub fn connect_error(nsp: impl Into<String>, message: &str, data: Option<Value>) -> Self {
        let mut body = serde_json::Map::new();
        body.insert("message".into(), message.into());
        if let Some(data) = data {
            body.insert("data".into(), data);
        }
        Packet::new(PacketType::ConnectError, nsp, None, Some(body.into()))
    }

    /// DISCONNECT: leaves a namespace.
    pub fn disconnect(nsp: impl Into<String>) -> Self {
        Packet::new(PacketType::Disconnect, nsp, None, None)
    }

    /// EVENT: `args` holds the event name first, then its arguments; `id` asks for an ack.
    pub fn event(nsp: impl Into<String>, args: Vec<Value>, id: Option<u64>) -> Self {
        Packet::new(PacketType::Event, nsp, id, Some(args.into()))
    }

    /// ACK: answers the event that carried `id`.
    pub fn ack(nsp: impl Into<String>, id: u64, args: Vec<Value>) -> Self {
        Packet::new(PacketType::Ack, nsp, Some(id), Some(args.into()))
    }

    /// An event whose arguments may hold `attachments` placeholders: BINARY_EVENT when there
    /// are any, else a plain EVENT.
    pub fn binary_event(
        nsp: impl Into<String>,
        args: Vec<Value>,
        id: Option<u64>,
        attachments: usize,
    ) -> Self {
        let mut packet = Packet::event(nsp, args, id);
        packet.set_attachments(attachments);
        packet
    }

    /// An ack whose arguments may hold `attachments` placeholders: BINARY_ACK when there are
    /// any, else a plain ACK.
    pub fn binary_ack(
        nsp: impl Into<String>,
        id: u64,
        args: Vec<Value>,
        attachments: usize,
    ) -> Self {
        let mut packet = Packet::ack(nsp, id, args);
        packet.set_attachments(attachments);
        packet
    }

    fn set_attachments(&mut self, attachments: usize) {
        if attachments > 0 {
            self.attachments = attachments;
            self.kind = match self.kind {
                PacketType::Event => PacketType::BinaryEvent,
                PacketType::Ack => PacketType::BinaryAck,
                other => other,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Decodes `wire`, checks it against `packet`, and checks that it encodes back to `wire`.
    fn both_ways(wire: &str, packet: Packet) {
        assert_eq!(decode(wire).unwrap(), packet, "{wire:?}");
        assert_eq!(encode(&packet), wire);
    }

    #[test]
    fn protocol_table() {
        both_ways("0", Packet::connect("/", None));
        both_ways(
            r#"0{"token":"abc"}"#,
            Packet::connect("/", Some(json!({"token": "abc"}))),
        );
        both_ways(
            r#"0{"sid":"x"}"#,
            Packet::connect("/", Some(json!({"sid": "x"}))),
        );
        both_ways("0/admin,", Packet::connect("/admin", None));
        both_ways(
            r#"0/admin,{"sid":"x"}"#,
            Packet::connect("/admin", Some(json!({"sid": "x"}))),
        );
        both_ways(
            r#"4/random,{"message":"Invalid namespace"}"#,
            Packet::connect_error("/random", "Invalid namespace", None),
        );
        // Key order in objects depends on serde_json's features: compare as values.
        let refusal = Packet::connect_error("/", "not authorized", Some(json!({"a": 1})));
        assert_eq!(
            decode(r#"4{"message":"not authorized","data":{"a":1}}"#).unwrap(),
            refusal
        );
        assert_eq!(decode(&encode(&refusal)).unwrap(), refusal);
        both_ways(
            r#"2["chat",{"text":"hi"}]"#,
            Packet::event("/", vec![json!("chat"), json!({"text": "hi"})], None),
        );
        both_ways(
            r#"2/admin,["chat",1]"#,
            Packet::event("/admin", vec![json!("chat"), json!(1)], None),
        );
        both_ways(
            r#"212["chat","hi"]"#,
            Packet::event("/", vec![json!("chat"), json!("hi")], Some(12)),
        );
        both_ways(r#"312["ok"]"#, Packet::ack("/", 12, vec![json!("ok")]));
        both_ways(
            r#"51-["upload",{"_placeholder":true,"num":0}]"#,
            Packet::binary_event(
                "/",
                vec![json!("upload"), json!({"_placeholder": true, "num": 0})],
                None,
                1,
            ),
        );
        both_ways("1", Packet::disconnect("/"));
        both_ways("1/admin,", Packet::disconnect("/admin"));
        // A number is a name, as in socket.io-parser.
        both_ways(
            r#"2[1,"x"]"#,
            Packet::event("/", vec![json!(1), json!("x")], None),
        );
        both_ways("2[-1.5]", Packet::event("/", vec![json!(-1.5)], None));
    }

    #[test]
    fn more_forms() {
        both_ways(
            r#"62-/admin,7[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            Packet::binary_ack(
                "/admin",
                7,
                vec![
                    json!({"_placeholder": true, "num": 0}),
                    json!({"_placeholder": true, "num": 1}),
                ],
                2,
            ),
        );
        both_ways(
            r#"4"nope""#,
            Packet::new(PacketType::ConnectError, "/", None, Some(json!("nope"))),
        );
        both_ways("3/a,0[]", Packet::ack("/a", 0, vec![]));
        both_ways(
            "218446744073709551615[\"x\"]",
            Packet::event("/", vec![json!("x")], Some(u64::MAX)),
        );
        // A namespace without its comma runs to the end.
        assert_eq!(decode("1/admin").unwrap(), Packet::disconnect("/admin"));
        // The JSON may have surrounding whitespace.
        assert_eq!(
            decode(r#"2 ["x"] "#).unwrap(),
            Packet::event("/", vec![json!("x")], None)
        );
        // The binary constructors pick plain types when there is nothing attached.
        assert_eq!(
            Packet::binary_event("/", vec![json!("e")], None, 0).kind,
            PacketType::Event
        );
        assert_eq!(Packet::binary_ack("/", 1, vec![], 0).kind, PacketType::Ack);
        // The attachment count of a plain type is not written.
        let mut plain = Packet::event("/", vec![json!("e")], None);
        plain.attachments = 3;
        assert_eq!(encode(&plain), r#"2["e"]"#);
    }

    #[test]
    fn invalid_packets() {
        let err = |s: &str| decode(s).unwrap_err();
        let invalid_json = |s: &str| matches!(decode(s), Err(ParseError::InvalidJson(_)));
        assert_eq!(err(""), ParseError::Empty);
        assert_eq!(err("9"), ParseError::UnknownType('9'));
        assert_eq!(err("é"), ParseError::UnknownType('é'));
        assert_eq!(
            err(r#"2{"a":1}"#),
            ParseError::InvalidData("event data must be an array")
        );
        assert_eq!(
            err(r#"2"chat""#),
            ParseError::InvalidData("event data must be an array")
        );
        assert_eq!(
            err("2"),
            ParseError::InvalidData("event data must be an array")
        );
        assert_eq!(
            err("2[]"),
            ParseError::InvalidData("an event must start with its name")
        );
        for not_a_name in [
            r#"2[null,"x"]"#,
            r#"2[true]"#,
            r#"2[{"toString":"f"}]"#,
            "2[[]]",
        ] {
            assert_eq!(
                err(not_a_name),
                ParseError::InvalidData("an event must start with its name"),
                "{not_a_name}"
            );
        }
        for name in RESERVED_EVENTS {
            assert_eq!(
                err(&format!(r#"51-["{name}",{{"_placeholder":true,"num":0}}]"#)),
                ParseError::InvalidData("reserved event name")
            );
        }
        assert_eq!(
            err(r#"2["disconnect"]"#),
            ParseError::InvalidData("reserved event name")
        );
        assert_eq!(err("3[]"), ParseError::MissingAckId);
        assert_eq!(err("3/a,[]"), ParseError::MissingAckId);
        assert_eq!(
            err("31"),
            ParseError::InvalidData("ack data must be an array")
        );
        assert_eq!(
            err(r#"31{}"#),
            ParseError::InvalidData("ack data must be an array")
        );
        assert_eq!(err(r#"5["upload"]"#), ParseError::BadAttachmentCount);
        assert_eq!(err(r#"5-["upload"]"#), ParseError::BadAttachmentCount);
        assert_eq!(err(r#"51["upload"]"#), ParseError::BadAttachmentCount);
        assert_eq!(
            err("699999999999999999999999-0[]"),
            ParseError::BadAttachmentCount
        );
        assert_eq!(err("218446744073709551616[\"x\"]"), ParseError::BadAckId);
        assert_eq!(
            err("0[]"),
            ParseError::InvalidData("CONNECT data must be an object")
        );
        assert_eq!(
            err(r#"0"a""#),
            ParseError::InvalidData("CONNECT data must be an object")
        );
        assert_eq!(
            err("1{}"),
            ParseError::InvalidData("DISCONNECT carries no data")
        );
        assert_eq!(
            err("4[]"),
            ParseError::InvalidData("CONNECT_ERROR data must be an object or a string")
        );
        assert!(invalid_json(r#"2abc["x"]"#));
        assert!(invalid_json(r#"2["x""#));
        assert!(invalid_json(r#"2["x"]]"#));
        assert!(invalid_json(r#"21-["x"]"#));
        // A namespace must end with a comma before anything follows it.
        assert!(decode(r#"2/admin["x"]"#).is_err());
    }

    #[test]
    fn placeholders() {
        let check =
            |json: &str, n| check_placeholders(Some(&serde_json::from_str(json).unwrap()), n);
        assert_eq!(check(r#"["e",{"_placeholder":true,"num":0}]"#, 1), Ok(()));
        assert_eq!(
            check(r#"["e",{"a":[{"_placeholder":true,"num":1}]}]"#, 2),
            Ok(())
        );
        // Not placeholders: left as they are.
        assert_eq!(check(r#"["e",{"_placeholder":"yes","num":9}]"#, 1), Ok(()));
        assert_eq!(check(r#"["e",{"num":9}]"#, 0), Ok(()));
        assert_eq!(check_placeholders(None, 0), Ok(()));
        for bad in [
            r#"["e",{"_placeholder":true,"num":1}]"#,
            r#"["e",[{"_placeholder":true,"num":-1}]]"#,
            r#"["e",{"x":{"_placeholder":true,"num":"0"}}]"#,
            r#"["e",{"_placeholder":true,"num":0.5}]"#,
            r#"["e",{"_placeholder":true,"num":1e3}]"#,
            r#"["e",{"_placeholder":true}]"#,
        ] {
            assert_eq!(check(bad, 1), Err(ParseError::BadPlaceholder), "{bad}");
        }
    }

    fn json_value() -> impl Strategy<Value = Value> + Clone {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(any::<String>(), inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn valid_packet() -> impl Strategy<Value = Packet> {
        let nsp = prop_oneof![Just("/".to_owned()), "/[a-z0-9_é-]{1,8}"];
        let args = proptest::collection::vec(json_value(), 0..4);
        let object = proptest::collection::btree_map(any::<String>(), json_value(), 0..3)
            .prop_map(|m| Value::Object(m.into_iter().collect()));
        let name = "[a-z]{1,8}[ -~]{0,4}"
            .prop_filter("reserved", |n| !RESERVED_EVENTS.contains(&n.as_str()));
        prop_oneof![
            (nsp.clone(), proptest::option::of(object.clone()))
                .prop_map(|(n, d)| Packet::connect(n, d)),
            nsp.clone().prop_map(Packet::disconnect),
            (
                nsp.clone(),
                any::<String>(),
                proptest::option::of(json_value())
            )
                .prop_map(|(n, m, d)| Packet::connect_error(n, &m, d)),
            (
                nsp.clone(),
                name,
                args.clone(),
                proptest::option::of(any::<u64>()),
                0..5usize
            )
                .prop_map(|(n, name, mut a, id, att)| {
                    a.insert(0, name.into());
                    Packet::binary_event(n, a, id, att)
                }),
            (nsp, any::<u64>(), args, 0..5usize)
                .prop_map(|(n, id, a, att)| Packet::binary_ack(n, id, a, att)),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(packet in valid_packet()) {
            prop_assert_eq!(decode(&encode(&packet)).unwrap(), packet);
        }

        #[test]
        fn decoding_never_panics(s in any::<String>()) {
            let _ = decode(&s);
        }

        #[test]
        fn decoding_near_valid_never_panics(s in "[0-6][0-9-]{0,3}/?[a-z,]{0,3}[0-9]{0,3}[\\[\\]{}\"a-z0-9,:]{0,8}") {
            let _ = decode(&s);
        }
    }
}

#[cfg(test)]
mod float_tests {
    use super::*;

    /// Numbers come back exactly as they were sent (found by the socketio_packet fuzz target).
    #[test]
    fn floats_round_trip_exactly() {
        let text = r#"3/x,1[1.1,8.2665e48,0.30000000000000004,-1e-300]"#;
        let packet = decode(text).unwrap();
        assert_eq!(decode(&encode(&packet)).unwrap(), packet);
    }
}
