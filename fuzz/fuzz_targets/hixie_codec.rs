//! hixie-75/76 decoding of arbitrary bytes in arbitrary chunks; decoded text re-encodes to a
//! frame that decodes to the same text.
#![no_main]

use bytes::BytesMut;
use hunchensocket_core::codec::Codec;
use hunchensocket_core::{Config, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, bytes)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(ctl).max(1);
    // Small enough that libFuzzer's default 4 KiB inputs reach it, U+FFFD expansion included.
    let config = Config::default().with_max_message_size(1024);
    let mut codec = Codec::hixie(&config);
    let mut buf = BytesMut::new();
    let mut decoded = Vec::new();
    'feed: for piece in bytes.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(msg)) => decoded.push(msg),
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    let mut encoder = Codec::hixie(&config);
    let mut decoder = Codec::hixie(&config);
    for msg in decoded {
        assert!(
            matches!(msg, Message::Text(_) | Message::Close(None)),
            "{msg:?}"
        );
        let mut wire = BytesMut::new();
        encoder
            .encode(&msg, &mut wire)
            .expect("text and close encode");
        assert_eq!(decoder.decode(&mut wire).expect("decodes"), Some(msg));
    }
});
