//! Socket.IO binary packets put back together from arbitrary text and binary messages: no
//! panic, the bytes held never pass the limit, and a complete binary packet has exactly the
//! attachments it announced, which its placeholders all name.
//!
//! Input: one byte of limits (low 3 bits: max attachments 0-7; high 5 bits: max bytes in steps
//! of 16, 0-496), then messages separated by 0x1f, each a kind byte (`b`: binary, anything
//! else: text, skipped unless UTF-8) and its content.
#![no_main]

use bytes::Bytes;
use hunchensocket_io::engine::Payload;
use hunchensocket_io::packet::check_placeholders;
use hunchensocket_io::reassembly::{Limits, Reassembler};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, messages)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_attachments: usize::from(ctl & 7),
        max_bytes: usize::from(ctl >> 3) * 16,
    };
    let mut r = Reassembler::new();
    for message in messages.split(|&b| b == 0x1f) {
        let Some((&kind, content)) = message.split_first() else {
            continue;
        };
        let payload = if kind == b'b' {
            Payload::Binary(Bytes::copy_from_slice(content))
        } else {
            let Ok(text) = std::str::from_utf8(content) else {
                continue;
            };
            Payload::Text(text.into())
        };
        let answer = r.push(payload, limits);
        assert!(
            r.held() <= limits.max_bytes,
            "holds {} bytes, limit {limits:?}",
            r.held()
        );
        match answer {
            Ok(Some((packet, attachments))) => {
                assert_eq!(
                    (r.held(), r.awaited()),
                    (0, 0),
                    "idle after a complete packet"
                );
                if packet.kind.is_binary() {
                    assert_eq!(attachments.len(), packet.attachments, "{packet:?}");
                    assert!(attachments.len() <= limits.max_attachments);
                    let sum: usize = attachments.iter().map(Bytes::len).sum();
                    assert!(sum <= limits.max_bytes);
                    assert_eq!(
                        check_placeholders(packet.data.as_ref(), attachments.len()),
                        Ok(()),
                        "{packet:?} with {} attachments",
                        attachments.len()
                    );
                } else {
                    // A packet that is not binary has no attachments: objects in it that look
                    // like placeholders are plain JSON, as the reference parser leaves them.
                    assert!(attachments.is_empty());
                }
            }
            Ok(None) => {
                let awaited = r.awaited();
                assert!(
                    (1..=limits.max_attachments).contains(&awaited),
                    "awaits {awaited}"
                );
            }
            Err(_) => assert_eq!((r.held(), r.awaited()), (0, 0), "idle after an error"),
        }
    }
});
