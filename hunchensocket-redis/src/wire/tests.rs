//! Round trips and refusals of both encodings.

use super::*;

fn packet() -> BroadcastPacket {
    BroadcastPacket::new("/", vec![json!("hello"), json!("world")], Vec::new())
}

#[test]
fn classic_broadcast_round_trip() {
    let ch = classic::Channels::new("socket.io", "/", "abc123");
    let body = Body::Broadcast {
        packet: packet(),
        opts: Opts::default(),
        request_id: None,
    };
    let (channel, bytes) = classic::encode(&ch, "abc123", &body).unwrap();
    assert_eq!(channel, "socket.io#/#");
    let msg = classic::decode("/", Kind::Broadcast, &bytes).unwrap();
    assert_eq!(msg.uid.as_deref(), Some("abc123"));
    assert_eq!(msg.body, body);
    let one_room = Body::Broadcast {
        packet: packet(),
        opts: Opts {
            rooms: vec!["r1".into()],
            ..Default::default()
        },
        request_id: None,
    };
    assert_eq!(
        classic::encode(&ch, "abc123", &one_room).unwrap().0,
        "socket.io#/#r1#"
    );
}

#[test]
fn classic_requests_round_trip() {
    let ch = classic::Channels::new("k", "/chat", "u1");
    let opts = Opts {
        rooms: vec!["a".into()],
        except: vec!["b".into()],
        flags: Map::new(),
    };
    for body in [
        Body::Join {
            opts: opts.clone(),
            rooms: vec!["x".into()],
        },
        Body::Leave {
            opts: opts.clone(),
            rooms: vec!["x".into()],
        },
        Body::Disconnect {
            opts: opts.clone(),
            close: true,
        },
        Body::Fetch {
            request_id: "r".into(),
            opts: opts.clone(),
        },
        Body::AllRooms {
            request_id: "r".into(),
        },
        Body::ServerEmit {
            data: vec![json!("ping"), json!(1)],
            request_id: Some("r".into()),
        },
        Body::Broadcast {
            packet: BroadcastPacket::new("/chat", vec![json!("q")], Vec::new()),
            opts: Opts {
                flags: json!({"timeout": 1000}).as_object().unwrap().clone(),
                ..opts.clone()
            },
            request_id: Some("r".into()),
        },
    ] {
        let (channel, bytes) = classic::encode(&ch, "u1", &body).unwrap();
        assert_eq!(channel, "k-request#/chat#");
        let msg = classic::decode("/chat", Kind::Request, &bytes).unwrap();
        assert_eq!(msg.body, body);
        assert_eq!(msg.uid.as_deref(), Some("u1"));
    }
    for body in [
        Body::ClientCount {
            request_id: "r".into(),
            count: 3,
        },
        Body::Ack {
            request_id: "r".into(),
            answer: AckAnswer::new(json!({"a": 1})),
        },
        Body::Ack {
            request_id: "r".into(),
            answer: AckAnswer {
                value: json!({"id": {"_placeholder": true, "num": 0}}),
                attachments: vec![Bytes::from_static(b"\x00\xffid")],
            },
        },
        Body::RoomsReply {
            request_id: "r".into(),
            rooms: vec!["x".into()],
        },
        Body::ServerEmitReply {
            request_id: "r".into(),
            value: json!("n1"),
        },
        Body::FetchReply {
            request_id: "r".into(),
            sockets: vec![SocketInfo::new(
                "s".into(),
                json!({}),
                vec!["s".into()],
                json!({}),
            )],
        },
    ] {
        let (channel, bytes) = classic::encode(&ch, "u1", &body).unwrap();
        assert_eq!(channel, "k-response#/chat#");
        assert_eq!(
            classic::decode("/chat", Kind::Response, &bytes)
                .unwrap()
                .body,
            body
        );
    }
}

#[test]
fn sharded_round_trip() {
    let ch = sharded::Channels::new("socket.io", "/", "0123456789abcdef");
    let bin = BroadcastPacket::new(
        "/",
        vec![json!("up"), hunchensocket_io::args::placeholder(0)],
        vec![Bytes::from_static(b"\x00\x01")],
    );
    for (body, channel) in [
        (
            Body::Broadcast {
                packet: packet(),
                opts: Opts::default(),
                request_id: None,
            },
            "socket.io#/#",
        ),
        (
            Body::Broadcast {
                packet: packet(),
                opts: Opts {
                    rooms: vec!["room".into()],
                    ..Default::default()
                },
                request_id: None,
            },
            "socket.io#/#room#",
        ),
        (
            Body::Broadcast {
                packet: packet(),
                opts: Opts {
                    rooms: vec!["aaaaaaaaaaaaaaaaaaaa".into()],
                    ..Default::default()
                },
                request_id: None,
            },
            "socket.io#/#",
        ),
        (
            Body::Broadcast {
                packet: bin,
                opts: Opts::default(),
                request_id: None,
            },
            "socket.io#/#",
        ),
        (
            Body::Fetch {
                request_id: "r".into(),
                opts: Opts::default(),
            },
            "socket.io#/#",
        ),
    ] {
        let (got, bytes) = sharded::encode(&ch, "0123456789abcdef", "/", &body, None).unwrap();
        assert_eq!(got, channel);
        let msg = sharded::decode(&bytes).unwrap();
        assert_eq!(msg.body, body);
        assert_eq!(msg.nsp, "/");
    }
    let reply = Body::ClientCount {
        request_id: "r".into(),
        count: 2,
    };
    let (got, bytes) = sharded::encode(&ch, "me", "/", &reply, Some("them")).unwrap();
    assert_eq!(got, "socket.io#/#them#");
    assert_eq!(sharded::decode(&bytes).unwrap().body, reply);
}

#[test]
fn streams_entries_and_payloads_round_trip() {
    let bin = BroadcastPacket::new(
        "/",
        vec![json!("up"), hunchensocket_io::args::placeholder(0)],
        vec![Bytes::from_static(b"\x00\x01")],
    );
    for body in [
        Body::Broadcast {
            packet: packet(),
            opts: Opts {
                rooms: vec!["r".into()],
                ..Default::default()
            },
            request_id: None,
        },
        Body::Broadcast {
            packet: bin,
            opts: Opts::default(),
            request_id: None,
        },
        Body::Join {
            opts: Opts::default(),
            rooms: vec!["x".into()],
        },
    ] {
        assert!(streams::logged(&body));
        let fields: Vec<(Vec<u8>, Vec<u8>)> = streams::entry("u1", "/", &body)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect();
        assert_eq!(
            fields[2],
            (
                b"type".to_vec(),
                if matches!(body, Body::Join { .. }) {
                    b"4".to_vec()
                } else {
                    b"3".to_vec()
                }
            )
        );
        let msg = streams::from_entry(&fields).unwrap();
        assert_eq!((msg.uid.as_deref(), msg.body), (Some("u1"), body));
    }
    let fetch = Body::Fetch {
        request_id: "r".into(),
        opts: Opts::default(),
    };
    assert!(!streams::logged(&fetch));
    let payload = streams::payload("u1", "/", &fetch).unwrap();
    assert_ne!(payload[0], b'{', "pub/sub payloads are msgpack");
    assert_eq!(streams::from_payload(&payload).unwrap().body, fetch);
    let state = hunchensocket_io::adapter::SessionState::new(
        "s".into(),
        "p".into(),
        vec!["s".into(), "r".into()],
        json!({"a": 1}),
    );
    assert_eq!(
        streams::from_session(streams::session(&state).as_bytes()).unwrap(),
        state
    );
    assert!(
        streams::is_offset("1700000000000-0")
            && !streams::is_offset("17-")
            && !streams::is_offset("x-1")
    );
    assert_eq!(streams::next_offset("5-9").as_deref(), Some("5-10"));
    assert!(streams::cmp_offsets("10-0", "9-5").is_gt());
    assert!(streams::from_entry(&[(b"type".to_vec(), b"3".to_vec())]).is_err());
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for bytes in [
        &b""[..],
        b"\xc1",
        b"{",
        b"{\"type\":\"x\"}",
        b"\x93\x01\x02\x03",
        b"\x92\xa1a",
    ] {
        let _ = classic::decode("/", Kind::Broadcast, bytes);
        let _ = classic::decode("/", Kind::Request, bytes);
        let _ = classic::decode("/", Kind::Response, bytes);
        let _ = sharded::decode(bytes);
    }
    assert!(classic::decode("/", Kind::Broadcast, b"\x93\x01\x02\x03").is_err());
    assert!(sharded::decode(b"{\"type\":3,\"data\":{\"packet\":1}}").is_err());
}
