//! Engine.IO polling payloads and single packets from arbitrary bytes: whatever decodes
//! re-encodes to a payload that decodes to the same packets.
#![no_main]

use bytes::Bytes;
use hunchensocket_io::engine::packet::{Packet, decode_payload, encode_payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packets) = decode_payload(Bytes::copy_from_slice(data)) {
        let again = encode_payload(&packets);
        let back = decode_payload(Bytes::from(again)).expect("an encoded payload decodes");
        assert_eq!(back, packets);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Packet::decode_text(text.into());
    }
});
