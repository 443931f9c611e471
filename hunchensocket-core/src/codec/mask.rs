//! Masking of RFC 6455 payloads: XOR with a 4-byte key, eight bytes at a time, in safe code.

/// XORs `buf` with `key`, byte `i` with `key[i % 4]` (RFC 6455 §5.3).
///
/// Masking and unmasking are the same operation.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    apply_mask_offset(buf, key, 0);
}

/// XORs `buf` with `key` as if `buf` started `offset` bytes into a payload: byte `i` with
/// `key[(offset + i) % 4]`.
///
/// Lets a payload that arrives in pieces be unmasked piece by piece.
pub fn apply_mask_offset(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // Rotate the key so that `rotated[0]` applies to `buf[0]`.
    let shift = offset % 4;
    let rotated = [
        key[shift],
        key[(shift + 1) % 4],
        key[(shift + 2) % 4],
        key[(shift + 3) % 4],
    ];
    // Eight bytes are two whole key periods, so every chunk uses the same word.
    let word = u64::from_ne_bytes([
        rotated[0], rotated[1], rotated[2], rotated[3], rotated[0], rotated[1], rotated[2],
        rotated[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let masked = u64::from_ne_bytes(bytes) ^ word;
        chunk.copy_from_slice(&masked.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= rotated[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn equals_naive_xor_for_all_short_lengths_and_offsets() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..64 {
            for offset in 0..9 {
                let original: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut fast = original.clone();
                let mut slow = original.clone();
                apply_mask_offset(&mut fast, key, offset);
                naive(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
                if offset == 0 {
                    let mut plain = original.clone();
                    apply_mask(&mut plain, key);
                    assert_eq!(plain, slow, "len {len}");
                }
            }
        }
    }

    #[test]
    fn rfc_example_hello() {
        let mut payload = *b"Hello";
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(payload, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn piecewise_equals_whole() {
        let key = [1, 2, 3, 250];
        let original: Vec<u8> = (0..100u8).collect();
        let mut whole = original.clone();
        apply_mask(&mut whole, key);
        for cut in 0..original.len() {
            let mut pieces = original.clone();
            let (a, b) = pieces.split_at_mut(cut);
            apply_mask_offset(a, key, 0);
            apply_mask_offset(b, key, cut);
            assert_eq!(pieces, whole, "cut {cut}");
        }
    }
}
