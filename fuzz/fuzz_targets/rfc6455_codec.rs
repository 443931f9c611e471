//! RFC 6455 decoding of arbitrary bytes, in arbitrary chunks, for both roles; whatever decodes
//! must survive re-encoding by the opposite role unchanged.
#![no_main]

use bytes::BytesMut;
use hunchensocket_core::Config;
use hunchensocket_core::codec::{Codec, Role};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, bytes)) = data.split_first() else {
        return;
    };
    let role = if ctl & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let peer = if role == Role::Server {
        Role::Client
    } else {
        Role::Server
    };
    let chunk = usize::from(ctl >> 1).max(1);
    // Limits small enough that libFuzzer's default 4 KiB inputs reach both of them.
    let config = Config::default()
        .with_max_frame_size(1024)
        .with_max_message_size(2048);
    let mut codec = Codec::rfc6455(role, &config);
    let mut buf = BytesMut::new();
    let mut decoded = Vec::new();
    'feed: for piece in bytes.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(msg)) => decoded.push(msg),
                Ok(None) => break,
                Err(e) => {
                    let _ = e.close_code();
                    break 'feed;
                }
            }
        }
    }
    // Round trip: what the peer would send us, we decode to the same messages. The encoder
    // never fragments, so a message reassembled from several frames comes back as one frame
    // up to the message limit: the receiver's frame limit is the message limit.
    let mut sender = Codec::rfc6455(peer, &config);
    let whole = config.clone().with_max_frame_size(config.max_message_size);
    let mut receiver = Codec::rfc6455(role, &whole);
    for msg in decoded {
        let mut wire = BytesMut::new();
        sender
            .encode(&msg, &mut wire)
            .expect("a decoded message encodes");
        let again = receiver
            .decode(&mut wire)
            .expect("re-encoded message decodes");
        assert_eq!(again.as_ref(), Some(&msg));
        assert!(wire.is_empty());
    }
});
