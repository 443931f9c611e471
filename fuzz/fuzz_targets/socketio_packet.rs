//! Socket.IO packets from arbitrary text: decoding never panics, and a decoded packet encodes
//! to text that decodes to the same packet.
#![no_main]

use hunchensocket_io::packet::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(packet) = decode(text) {
        let again = encode(&packet);
        let back = decode(&again).expect("an encoded packet decodes");
        assert_eq!(back, packet);
    }
});
