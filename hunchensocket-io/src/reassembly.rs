//! Binary Socket.IO packets put back together: a header announcing N attachments, then the N
//! binary messages that carry them.
//!
//! Sans-io: a [`Reassembler`] is fed one connection's messages in order and answers each with a
//! complete packet, with nothing yet, or with an error that ends the session. Its [`Limits`]
//! keep what a client's half-sent packet holds small.

use bytes::Bytes;

use crate::engine::Payload;
use crate::packet::{self, Packet, ParseError};

/// The limits of one connection's reassembly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most attachments one packet may announce.
    pub max_attachments: usize,
    /// The most bytes a packet being put back together may hold: its header's text and its
    /// attachments together (the server's payload limit).
    pub max_bytes: usize,
}

/// A complete packet and its attachments (none for a packet that is not binary).
pub type Complete = (Packet, Vec<Bytes>);

/// The reassembly state of one connection: idle, or a binary packet waiting for attachments.
#[derive(Debug, Default)]
pub struct Reassembler {
    partial: Option<Partial>,
}

/// A binary packet being put back together: its header, the attachments so far, and the bytes
/// they hold with the header's text.
#[derive(Debug)]
struct Partial {
    packet: Packet,
    attachments: Vec<Bytes>,
    bytes: usize,
}

impl Reassembler {
    /// An idle reassembler.
    pub fn new() -> Self {
        Reassembler::default()
    }

    /// Takes the next message of the connection: a text message is a whole packet or the
    /// header of a binary one, a binary message the next attachment of that header.
    ///
    /// `Ok(None)` while attachments are awaited. An error ends the session; the reassembler is
    /// idle again after one.
    pub fn push(
        &mut self,
        payload: Payload,
        limits: Limits,
    ) -> Result<Option<Complete>, ParseError> {
        let result = match payload {
            Payload::Text(text) => self.text(&text, limits),
            Payload::Binary(bin) => self.attachment(bin, limits),
        };
        if result.is_err() {
            self.partial = None;
        }
        result
    }

    /// The bytes held for the packet being put back together (0 when idle).
    pub fn held(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.bytes)
    }

    /// How many attachments are still awaited (0 when idle).
    pub fn awaited(&self) -> usize {
        self.partial
            .as_ref()
            .map_or(0, |p| p.packet.attachments - p.attachments.len())
    }

    fn text(&mut self, text: &str, limits: Limits) -> Result<Option<Complete>, ParseError> {
        if self.partial.is_some() {
            return Err(ParseError::AttachmentOutOfTurn);
        }
        let packet = packet::decode(text)?;
        if !packet.kind.is_binary() {
            return Ok(Some((packet, Vec::new())));
        }
        if packet.attachments == 0 {
            // Complete as it is, so any placeholder in it names no attachment.
            packet::check_placeholders(packet.data.as_ref(), 0)?;
            return Ok(Some((packet, Vec::new())));
        }
        if packet.attachments > limits.max_attachments {
            return Err(ParseError::TooManyAttachments(packet.attachments));
        }
        // The header counts too: the transport may carry messages larger than the limit (a
        // WebSocket message limit set higher than the payload limit).
        if text.len() > limits.max_bytes {
            return Err(ParseError::AttachmentsTooLarge);
        }
        self.partial = Some(Partial {
            packet,
            attachments: Vec::new(),
            bytes: text.len(),
        });
        Ok(None)
    }

    fn attachment(&mut self, bin: Bytes, limits: Limits) -> Result<Option<Complete>, ParseError> {
        let partial = self
            .partial
            .as_mut()
            .ok_or(ParseError::AttachmentOutOfTurn)?;
        partial.bytes = partial.bytes.saturating_add(bin.len());
        if partial.bytes > limits.max_bytes {
            return Err(ParseError::AttachmentsTooLarge);
        }
        partial.attachments.push(bin);
        if partial.attachments.len() < partial.packet.attachments {
            return Ok(None);
        }
        let Partial {
            packet,
            attachments,
            ..
        } = self.partial.take().expect("checked above");
        packet::check_placeholders(packet.data.as_ref(), attachments.len())?;
        Ok(Some((packet, attachments)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::PacketType;

    const LIMITS: Limits = Limits {
        max_attachments: 2,
        max_bytes: 100,
    };

    fn text(t: &str) -> Payload {
        Payload::Text(t.into())
    }

    fn bin(b: &'static [u8]) -> Payload {
        Payload::Binary(Bytes::from_static(b))
    }

    /// Feeds `messages` and returns each answer.
    fn feed(
        r: &mut Reassembler,
        messages: Vec<Payload>,
    ) -> Vec<Result<Option<Complete>, ParseError>> {
        messages.into_iter().map(|m| r.push(m, LIMITS)).collect()
    }

    #[test]
    fn a_packet_without_attachments_is_complete_at_once() {
        let mut r = Reassembler::new();
        let (packet, attachments) = r.push(text(r#"2["hi",1]"#), LIMITS).unwrap().unwrap();
        assert_eq!(packet.kind, PacketType::Event);
        assert!(attachments.is_empty());
        assert_eq!((r.held(), r.awaited()), (0, 0));
    }

    #[test]
    fn attachments_complete_a_binary_packet_in_order() {
        let header = r#"52-["up",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#;
        let mut r = Reassembler::new();
        assert_eq!(r.push(text(header), LIMITS), Ok(None));
        assert_eq!((r.held(), r.awaited()), (header.len(), 2));
        assert_eq!(r.push(bin(b"ab"), LIMITS), Ok(None));
        assert_eq!((r.held(), r.awaited()), (header.len() + 2, 1));
        let (packet, attachments) = r.push(bin(b"c"), LIMITS).unwrap().unwrap();
        assert_eq!(packet.kind, PacketType::BinaryEvent);
        assert_eq!(
            attachments,
            [Bytes::from_static(b"ab"), Bytes::from_static(b"c")]
        );
        assert_eq!((r.held(), r.awaited()), (0, 0));
        // And the next packet starts afresh.
        assert!(matches!(r.push(text("1"), LIMITS), Ok(Some(_))));
    }

    #[test]
    fn binary_acks_too() {
        let mut r = Reassembler::new();
        let answers = feed(
            &mut r,
            vec![text(r#"61-/a,7[{"_placeholder":true,"num":0}]"#), bin(b"")],
        );
        let (packet, attachments) = answers[1].clone().unwrap().unwrap();
        assert_eq!((packet.kind, packet.id), (PacketType::BinaryAck, Some(7)));
        assert_eq!(attachments.len(), 1);
    }

    #[test]
    fn too_many_attachments_are_refused_with_the_header() {
        let mut r = Reassembler::new();
        assert_eq!(
            r.push(text(r#"53-["up"]"#), LIMITS),
            Err(ParseError::TooManyAttachments(3))
        );
        assert_eq!(r.held(), 0);
        let limits = Limits {
            max_attachments: 0,
            ..LIMITS
        };
        assert_eq!(
            r.push(text(r#"51-["up"]"#), limits),
            Err(ParseError::TooManyAttachments(1))
        );
    }

    #[test]
    fn attachments_past_the_byte_limit_are_refused() {
        let header = r#"52-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        let room = LIMITS.max_bytes - header.len();
        let mut r = Reassembler::new();
        assert_eq!(r.push(text(header), LIMITS), Ok(None));
        let exactly = Bytes::from(vec![0; room]);
        assert_eq!(r.push(Payload::Binary(exactly), LIMITS), Ok(None));
        assert_eq!(r.held(), LIMITS.max_bytes);
        assert_eq!(
            r.push(bin(b"x"), LIMITS),
            Err(ParseError::AttachmentsTooLarge)
        );
        assert_eq!((r.held(), r.awaited()), (0, 0));
    }

    /// Found by the attachments fuzz target: a header longer than the byte limit was held until
    /// its first attachment came, which a client need never send.
    #[test]
    fn a_header_past_the_byte_limit_is_refused_at_once() {
        let header = format!(
            r#"51-["up",{{"_placeholder":true,"num":0}},"{}"]"#,
            "x".repeat(LIMITS.max_bytes)
        );
        let mut r = Reassembler::new();
        assert_eq!(
            r.push(text(&header), LIMITS),
            Err(ParseError::AttachmentsTooLarge)
        );
        assert_eq!(r.held(), 0);
        // A header that fits exactly leaves room only for empty attachments.
        let exact = r#"51-["up",{"_placeholder":true,"num":0}]"#;
        let limits = Limits {
            max_bytes: exact.len(),
            ..LIMITS
        };
        assert_eq!(r.push(text(exact), limits), Ok(None));
        assert!(matches!(r.push(bin(b""), limits), Ok(Some(_))));
    }

    #[test]
    fn out_of_turn_messages_are_refused() {
        let mut r = Reassembler::new();
        assert_eq!(
            r.push(bin(b"x"), LIMITS),
            Err(ParseError::AttachmentOutOfTurn)
        );
        let header = r#"51-["up",{"_placeholder":true,"num":0}]"#;
        assert_eq!(r.push(text(header), LIMITS), Ok(None));
        assert_eq!(
            r.push(text(r#"2["hi"]"#), LIMITS),
            Err(ParseError::AttachmentOutOfTurn)
        );
        // Idle after the error: the same header starts over.
        assert_eq!(r.held(), 0);
        assert_eq!(r.push(text(header), LIMITS), Ok(None));
    }

    #[test]
    fn placeholders_must_name_an_attachment() {
        for header in [
            r#"51-["up",{"_placeholder":true,"num":1}]"#,
            r#"51-["up",{"_placeholder":true,"num":"0"}]"#,
            r#"51-["up",[{"_placeholder":true}]]"#,
        ] {
            let mut r = Reassembler::new();
            assert_eq!(r.push(text(header), LIMITS), Ok(None));
            assert_eq!(
                r.push(bin(b"x"), LIMITS),
                Err(ParseError::BadPlaceholder),
                "{header}"
            );
            assert_eq!(r.held(), 0);
        }
    }

    /// Found by the attachments fuzz target: `50-` announces no attachment, and its placeholder
    /// named one. It was dispatched, while a packet announcing one was refused for the same.
    #[test]
    fn a_binary_packet_without_attachments_has_no_placeholders() {
        let mut r = Reassembler::new();
        assert_eq!(
            r.push(text(r#"50-["u",{"_placeholder":true,"num":0}]"#), LIMITS),
            Err(ParseError::BadPlaceholder)
        );
        let (packet, attachments) = r
            .push(text(r#"50-["u",{"a":1}]"#), LIMITS)
            .unwrap()
            .unwrap();
        assert_eq!(
            (packet.kind, attachments.len()),
            (PacketType::BinaryEvent, 0)
        );
        // In a packet that is not binary, such an object is plain JSON (as in the reference
        // parser).
        assert!(matches!(
            r.push(text(r#"2["u",{"_placeholder":true,"num":0}]"#), LIMITS),
            Ok(Some(_))
        ));
    }

    #[test]
    fn invalid_text_is_refused() {
        let mut r = Reassembler::new();
        assert_eq!(r.push(text(""), LIMITS), Err(ParseError::Empty));
        assert_eq!(
            r.push(text("5-[]"), LIMITS),
            Err(ParseError::BadAttachmentCount)
        );
        assert!(matches!(
            r.push(text("2[oops"), LIMITS),
            Err(ParseError::InvalidJson(_))
        ));
    }
}
