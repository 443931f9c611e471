//! hixie-76 (hybi-00) key material: key parts, the MD5 challenge, and random client keys.
//!
//! hixie-75 has no keys at all; everything it needs lives in the parent module.

use md5::{Digest, Md5};

use crate::Refusal;

/// The key part of a `Sec-WebSocket-Key1`/`Key2` value: the number formed by the key's digits
/// alone, divided by the key's count of spaces (U+0020).
///
/// Every error is a `400 Bad Request` refusal with a reason: no spaces, no digits, a number over
/// 4 294 967 295, or a number that is not an exact multiple of the count of spaces. Keys of any
/// length are handled without overflow.
pub fn key_part(key: &str) -> Result<u32, Refusal> {
    let mut number: u64 = 0;
    let mut digits = 0usize;
    let mut spaces: u64 = 0;
    let mut too_large = false;
    for byte in key.bytes() {
        match byte {
            b'0'..=b'9' => {
                digits += 1;
                // Once past u32::MAX the number can only grow, so stop accumulating; u64 holds
                // u32::MAX * 10 + 9 without overflowing.
                if !too_large {
                    number = number * 10 + u64::from(byte - b'0');
                    too_large = number > u64::from(u32::MAX);
                }
            }
            b' ' => spaces += 1,
            _ => {}
        }
    }
    if digits == 0 {
        return Err(Refusal::bad_request("hixie-76 key has no digits"));
    }
    if too_large {
        return Err(Refusal::bad_request(
            "hixie-76 key number is over 4294967295",
        ));
    }
    if spaces == 0 {
        return Err(Refusal::bad_request("hixie-76 key has no spaces"));
    }
    if number % spaces != 0 {
        return Err(Refusal::bad_request(
            "hixie-76 key number is not a multiple of its spaces",
        ));
    }
    // number <= u32::MAX and spaces >= 1, so the quotient fits.
    Ok((number / spaces) as u32)
}

/// The 16-byte answer to a hixie-76 challenge: MD5(part1 big-endian ‖ part2 big-endian ‖ key3).
pub fn challenge_answer(part1: u32, part2: u32, key3: &[u8; 8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(part1.to_be_bytes());
    md5.update(part2.to_be_bytes());
    md5.update(key3);
    md5.finalize().into()
}

/// What a hixie-76 client sends as its keys, and the answer it then expects from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientKeys {
    /// The `Sec-WebSocket-Key1` value.
    pub key1: String,
    /// The `Sec-WebSocket-Key2` value.
    pub key2: String,
    /// The 8 bytes sent right after the request headers.
    pub key3: [u8; 8],
    /// The 16 bytes the server must send right after its response headers.
    pub expected: [u8; 16],
}

/// A random hixie-76 key triple made the way the draft's client algorithm makes it (§4.1):
/// 1 to 12 spaces, the decimal digits of spaces × a random part, 1 to 12 random printable
/// non-digit characters inserted at random positions, then the spaces inserted anywhere but
/// at the start or the end; key3 is 8 random bytes.
///
/// # Panics
///
/// If the operating system cannot provide random bytes (`getrandom` fails).
pub fn client_keys() -> ClientKeys {
    let mut rng = Random::new();
    let (key1, part1) = client_key(&mut rng);
    let (key2, part2) = client_key(&mut rng);
    let mut key3 = [0u8; 8];
    rng.fill(&mut key3);
    let expected = challenge_answer(part1, part2, &key3);
    ClientKeys {
        key1,
        key2,
        key3,
        expected,
    }
}

/// One random key and its key part.
fn client_key(rng: &mut Random) -> (String, u32) {
    let spaces = rng.between(1, 12);
    let part = rng.between(0, u32::MAX / spaces);
    let mut key = (u64::from(part) * u64::from(spaces))
        .to_string()
        .into_bytes();
    for _ in 0..rng.between(1, 12) {
        // U+0021-U+002F (15 characters) and U+003A-U+007E (69 characters).
        let pick = rng.between(0, 15 + 69 - 1) as u8;
        let ch = if pick < 15 {
            0x21 + pick
        } else {
            0x3A + pick - 15
        };
        let at = rng.between(0, key.len() as u32) as usize;
        key.insert(at, ch);
    }
    for _ in 0..spaces {
        // Never at index 0 and never after the last byte; the key is at least 2 bytes long.
        let at = rng.between(1, key.len() as u32 - 1) as usize;
        key.insert(at, b' ');
    }
    let key = String::from_utf8(key).expect("the key is built from ASCII bytes only");
    (key, part)
}

/// Random numbers from the OS, drawn in batches so a key costs one or two system calls.
struct Random {
    pool: [u8; 64],
    used: usize,
}

impl Random {
    fn new() -> Self {
        Random {
            pool: [0; 64],
            used: 64,
        }
    }

    fn fill(&mut self, dest: &mut [u8]) {
        for byte in dest {
            if self.used == self.pool.len() {
                getrandom::fill(&mut self.pool).expect("the OS random source failed");
                self.used = 0;
            }
            *byte = self.pool[self.used];
            self.used += 1;
        }
    }

    /// A uniform number in `low..=high` (by rejection, so without modulo bias).
    fn between(&mut self, low: u32, high: u32) -> u32 {
        let span = u64::from(high - low) + 1;
        // The largest multiple of `span` that fits in 2^32; draws at or above it are redrawn.
        let zone = (1u64 << 32) - (1u64 << 32) % span;
        loop {
            let mut bytes = [0u8; 4];
            self.fill(&mut bytes);
            let draw = u64::from(u32::from_le_bytes(bytes));
            if draw < zone {
                return low + (draw % span) as u32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use proptest::prelude::*;

    /// (key1, key2, key3, answer) from protocols.md §2.
    const VECTORS: [(&str, &str, &[u8], &[u8]); 3] = [
        (
            "4 @1  46546xW%0l 1 5",
            "12998 5 Y3 1  .P00",
            b"^n:ds[4U",
            b"8jKS'y:G*Co,Wxa-",
        ),
        (
            "18x 6]8vM;54 *(5:  {   U1]8  z [  8",
            "1_ tx7X d  <  nw  334J702) 7]o}` 0",
            b"Tm[K T2u",
            b"fQJ,fN/4F4!~K~MH",
        ),
        (
            "3e6b263  4 17 80",
            "17  9 G`ZD9   2 2b 7X 3 /r90",
            b"WjN}|M(6",
            b"n`9eBk9z$R8pOtVb",
        ),
    ];

    #[test]
    fn vectors() {
        for (key1, key2, key3, answer) in VECTORS {
            let key3: &[u8; 8] = key3.try_into().expect("key3 is 8 bytes");
            let answer: &[u8; 16] = answer.try_into().expect("answer is 16 bytes");
            let part1 = key_part(key1).unwrap();
            let part2 = key_part(key2).unwrap();
            assert_eq!(&challenge_answer(part1, part2, key3), answer, "{key1:?}");
        }
    }

    #[test]
    fn draft_example_parts() {
        // The draft spells out the first example's arithmetic.
        assert_eq!(key_part("4 @1  46546xW%0l 1 5").unwrap(), 4_146_546_015 / 5);
        assert_eq!(key_part("12998 5 Y3 1  .P00").unwrap(), 259_970_620);
    }

    #[test]
    fn key_part_vectors() {
        assert_eq!(key_part("3e6b263  4 17 80").unwrap(), 0x3609_6565);
        assert_eq!(
            key_part("17  9 G`ZD9   2 2b 7X 3 /r90").unwrap(),
            0x0AB9_6733
        );
    }

    fn refused(key: &str) -> String {
        let refusal = key_part(key).unwrap_err();
        assert_eq!(refusal.status, StatusCode::BAD_REQUEST);
        refusal.reason
    }

    #[test]
    fn refusals() {
        assert!(refused("12345").contains("no spaces"));
        assert!(refused("a b c").contains("no digits"));
        assert!(refused("").contains("no digits"));
        assert!(
            refused("1 2 3").contains("multiple"),
            "123 is odd, 2 spaces"
        );
        // 11 digits: over u32::MAX.
        assert!(refused("1234567890 1").contains("over"));
        // Exactly u32::MAX + 1.
        assert!(refused("429496729 6").contains("over"));
        // 100 digits, would overflow any integer type.
        let long = format!("{} ", "9".repeat(100));
        assert!(refused(&long).contains("over"));
    }

    #[test]
    fn edges() {
        assert_eq!(key_part("429496729 5").unwrap(), u32::MAX);
        assert_eq!(key_part("0 ").unwrap(), 0);
        // Leading zeros do not count against the limit.
        assert_eq!(key_part(&format!("{}42 ", "0".repeat(50))).unwrap(), 42);
        // Non-ASCII characters are ignored like any other non-digit.
        assert_eq!(key_part("é4 ü2 ").unwrap(), 21);
    }

    #[test]
    fn generated_keys_round_trip() {
        for _ in 0..200 {
            let keys = client_keys();
            for key in [&keys.key1, &keys.key2] {
                assert!(!key.starts_with(' ') && !key.ends_with(' '), "{key:?}");
                assert!(key.bytes().all(|b| (0x20..0x7F).contains(&b)), "{key:?}");
                let others = key
                    .bytes()
                    .filter(|b| *b != b' ' && !b.is_ascii_digit())
                    .count();
                assert!((1..=12).contains(&others), "{key:?}");
                let spaces = key.bytes().filter(|b| *b == b' ').count();
                assert!((1..=12).contains(&spaces), "{key:?}");
            }
            let part1 = key_part(&keys.key1).unwrap();
            let part2 = key_part(&keys.key2).unwrap();
            assert_eq!(challenge_answer(part1, part2, &keys.key3), keys.expected);
        }
    }

    #[test]
    fn random_range_is_inclusive() {
        let mut rng = Random::new();
        let mut seen = [false; 3];
        for _ in 0..300 {
            let n = rng.between(4, 6);
            assert!((4..=6).contains(&n));
            seen[(n - 4) as usize] = true;
        }
        assert_eq!(seen, [true; 3]);
        assert_eq!(rng.between(7, 7), 7);
        let _ = rng.between(0, u32::MAX);
    }

    proptest! {
        #[test]
        fn key_part_never_panics(key in any::<String>()) {
            let _ = key_part(&key);
        }

        #[test]
        fn key_part_never_panics_on_key_like_strings(key in "[0-9 a-z]{0,120}") {
            if let Ok(part) = key_part(&key) {
                let spaces = key.bytes().filter(|b| *b == b' ').count() as u64;
                prop_assert!(spaces > 0);
                prop_assert!(u64::from(part) * spaces <= u64::from(u32::MAX));
            }
        }
    }
}
