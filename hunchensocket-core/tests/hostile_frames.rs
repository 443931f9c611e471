//! Frames from a hostile peer: a message cut into thousands of fragments, floods of empty
//! continuation frames, and declared payload lengths of 2^63 and just under. What the server
//! holds follows the payload, not the number of fragments; the fragments of one message are
//! capped ([`Config::max_fragments`], as `ws`'s `maxFragments`); each violation closes the
//! connection with its documented code, and other clients are served meanwhile.

mod support;

use hunchensocket_core::Config;
use hunchensocket_core::codec::rfc6455::opcode::{BINARY, CONTINUATION, TEXT};
use support::{bystander, close_code, echo_server, frame, read_frame, upgraded};
use tokio::io::AsyncWriteExt;

/// The frames of one text message of `count` frames whose payload is `first` then `last`:
/// every frame between them is an empty continuation.
fn message_in_frames(count: usize, first: &[u8], last: &[u8]) -> Vec<u8> {
    assert!(count >= 2);
    let mut bytes = frame(false, TEXT, first);
    for _ in 0..count - 2 {
        bytes.extend(frame(false, CONTINUATION, b""));
    }
    bytes.extend(frame(true, CONTINUATION, last));
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_in_ten_thousand_fragments_arrives_whole() {
    let addr = echo_server(Config::default()).await;
    let mut s = upgraded(addr).await;
    let mut bytes = frame(false, BINARY, b"a");
    for i in 1..10_000 {
        bytes.extend(frame(i == 9_999, CONTINUATION, b"a"));
    }
    s.write_all(&bytes).await.unwrap();
    let (opcode, payload) = read_frame(&mut s).await.expect("the echo");
    assert_eq!(opcode, BINARY);
    assert_eq!(payload, vec![b'a'; 10_000]);
    bystander(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragments_past_the_cap_close_with_1008() {
    let cap = Config::default().max_fragments;
    assert_eq!(cap, 16_384, "the documented default");
    let addr = echo_server(Config::default()).await;

    // Exactly the cap, empty continuations included: one message.
    let mut s = upgraded(addr).await;
    s.write_all(&message_in_frames(cap, b"x", b"y"))
        .await
        .unwrap();
    assert_eq!(read_frame(&mut s).await, Some((TEXT, b"xy".to_vec())));

    // One frame more: a policy violation, refused before the message ends.
    s.write_all(&message_in_frames(cap + 1, b"x", b"y"))
        .await
        .unwrap();
    assert_eq!(close_code(&mut s).await, Some(1008));
    bystander(addr).await;

    // A smaller cap, set in the configuration.
    let addr = echo_server(Config::default().with_max_fragments(3)).await;
    let mut s = upgraded(addr).await;
    s.write_all(&message_in_frames(3, b"x", b"y"))
        .await
        .unwrap();
    assert_eq!(read_frame(&mut s).await, Some((TEXT, b"xy".to_vec())));
    s.write_all(&message_in_frames(4, b"x", b"y"))
        .await
        .unwrap();
    assert_eq!(close_code(&mut s).await, Some(1008));
    bystander(addr).await;
}

/// A binary frame header declaring `len` bytes of payload, masked, with no payload after it.
fn declared(len: u64) -> Vec<u8> {
    let mut bytes = vec![0x80 | BINARY, 0x80 | 127];
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(&[1, 2, 3, 4]);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_length_of_2_pow_63_closes_with_1002() {
    // RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0.
    let addr = echo_server(Config::default()).await;
    let mut s = upgraded(addr).await;
    s.write_all(&declared(1 << 63)).await.unwrap();
    assert_eq!(close_code(&mut s).await, Some(1002));
    let mut s = upgraded(addr).await;
    s.write_all(&declared(u64::MAX)).await.unwrap();
    assert_eq!(close_code(&mut s).await, Some(1002));
    bystander(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_length_past_the_frame_limit_closes_with_1009() {
    // A valid length, far past the limit: refused from the header, before any payload.
    let addr = echo_server(Config::default()).await;
    let mut s = upgraded(addr).await;
    s.write_all(&declared((1 << 63) - 1)).await.unwrap();
    assert_eq!(close_code(&mut s).await, Some(1009));
    let mut s = upgraded(addr).await;
    let limit = Config::default().max_frame_size as u64;
    s.write_all(&declared(limit + 1)).await.unwrap();
    assert_eq!(close_code(&mut s).await, Some(1009));
    bystander(addr).await;
}
