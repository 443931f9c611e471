//! RFC 6455 (and hybi-07/08) key material: the accept key and the client's random key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

/// The GUID RFC 6455 appends to `Sec-WebSocket-Key` before hashing.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`: base64(SHA-1(key ‖ GUID)).
///
/// `key` is the header value as sent (base64 text, not the decoded bytes).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

/// A fresh `Sec-WebSocket-Key` for a client: base64 of 16 random bytes.
///
/// # Panics
///
/// If the operating system cannot provide random bytes (`getrandom` fails), which a client
/// cannot recover from: a predictable key would defeat the handshake's purpose.
pub fn client_key() -> String {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).expect("the OS random source failed");
    STANDARD.encode(nonce)
}

/// True when `key` is a valid `Sec-WebSocket-Key`: base64 that decodes to exactly 16 bytes.
pub fn is_valid_key(key: &[u8]) -> bool {
    // 16 bytes encode to 24 characters; checking the length first bounds the decoding work.
    key.len() == 24 && STANDARD.decode(key).is_ok_and(|bytes| bytes.len() == 16)
}

/// True when a server's `Sec-WebSocket-Accept` value answers the client's `key`.
///
/// Surrounding whitespace in `accept` is ignored; the comparison is otherwise exact.
pub fn verify_accept(key: &[u8], accept: &[u8]) -> bool {
    accept.trim_ascii() == accept_key(key).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn verify() {
        let key = b"dGhlIHNhbXBsZSBub25jZQ==";
        assert!(verify_accept(key, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(verify_accept(key, b" s3pPLMBiTxaQ9kYGzzhZRbK+xOo= "));
        assert!(!verify_accept(key, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo"));
        assert!(!verify_accept(key, b"S3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(!verify_accept(
            b"AAAAAAAAAAAAAAAAAAAAAA==",
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        ));
    }

    #[test]
    fn client_keys_are_valid_and_fresh() {
        let a = client_key();
        let b = client_key();
        assert!(is_valid_key(a.as_bytes()), "{a}");
        assert!(is_valid_key(b.as_bytes()), "{b}");
        assert_ne!(a, b);
    }

    #[test]
    fn key_validity() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        // Not base64.
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ!="));
        // 15 bytes, 20 bytes.
        assert!(!is_valid_key(STANDARD.encode([0u8; 15]).as_bytes()));
        assert!(!is_valid_key(STANDARD.encode([0u8; 20]).as_bytes()));
        assert!(!is_valid_key(b""));
        // Right length, but 17 bytes' worth of padding would not decode.
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=A"));
    }
}
