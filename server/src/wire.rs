//! What the transport layer needs to know about frames without decoding them fully:
//! the message type for metrics and logs, and an `error` message of its own for
//! breaches the engine never sees (text frames, oversized frames, floods).

use dealersync_core::protocol::PeerId;
use dealersync_core::protocol::wire::Message;
use serde::Deserialize;

/// The message types counted in metrics. Anything else is counted as `other`, and a
/// frame that is not a CBOR map with a string `type` as `invalid`, so a hostile peer
/// cannot blow up the metric's label set.
pub const KNOWN_TYPES: &[&str] = &[
    "join",
    "peer",
    "request",
    "sync",
    "doc-unavailable",
    "ephemeral",
    "error",
    "leave",
    "remote-subscription-change",
    "remote-heads-changed",
];

/// The few header fields of a frame the transport looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameHeader {
    /// The message type, one of [`KNOWN_TYPES`], `other` or `invalid`.
    pub kind: &'static str,
    /// `senderId` if present and a string.
    pub sender_id: Option<String>,
    /// `documentId` if present and a string, clipped with [`crate::telemetry::clip`]: it
    /// only names the document in logs and spans (a real id is about 28 characters;
    /// the engine decodes the frame itself), and a peer may send one of any length.
    pub document_id: Option<String>,
}

#[derive(Deserialize)]
struct Peek {
    #[serde(rename = "type")]
    ty: String,
    #[serde(rename = "senderId", default)]
    sender_id: Option<ciborium::Value>,
    #[serde(rename = "documentId", default)]
    document_id: Option<ciborium::Value>,
}

fn text(v: Option<ciborium::Value>) -> Option<String> {
    match v {
        Some(ciborium::Value::Text(s)) => Some(s),
        _ => None,
    }
}

/// Reads the header of a frame; never fails (a bad frame is `invalid`; the engine
/// rejects it with a precise error).
pub fn peek(frame: &[u8]) -> FrameHeader {
    match ciborium::from_reader::<Peek, _>(frame) {
        Ok(p) => FrameHeader {
            kind: KNOWN_TYPES
                .iter()
                .find(|k| **k == p.ty)
                .copied()
                .unwrap_or("other"),
            sender_id: text(p.sender_id),
            document_id: text(p.document_id).map(|d| crate::telemetry::clip(&d)),
        },
        Err(_) => FrameHeader {
            kind: "invalid",
            ..FrameHeader::default()
        },
    }
}

/// An automerge-repo `error` message, CBOR-encoded.
pub fn error_frame(sender_id: &PeerId, target_id: Option<&str>, message: &str) -> Vec<u8> {
    Message::Error {
        message: message.to_string(),
        sender_id: Some(sender_id.clone()),
        target_id: target_id.map(PeerId::from),
    }
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_reads_type_sender_and_document() {
        let msg = ciborium::Value::Map(vec![
            ("type".into(), "sync".into()),
            ("senderId".into(), "peer-a".into()),
            ("documentId".into(), "abc".into()),
            ("data".into(), ciborium::Value::Bytes(vec![1, 2, 3])),
        ]);
        let mut buf = Vec::new();
        ciborium::into_writer(&msg, &mut buf).unwrap();
        assert_eq!(
            peek(&buf),
            FrameHeader {
                kind: "sync",
                sender_id: Some("peer-a".into()),
                document_id: Some("abc".into())
            }
        );
    }

    #[test]
    fn peek_clips_a_huge_document_id() {
        let msg = ciborium::Value::Map(vec![
            ("type".into(), "sync".into()),
            ("documentId".into(), "d".repeat(100_000).into()),
        ]);
        let mut buf = Vec::new();
        ciborium::into_writer(&msg, &mut buf).unwrap();
        let doc = peek(&buf).document_id.unwrap();
        assert!(doc.len() < 120, "{} bytes", doc.len());
        assert!(doc.ends_with("(100000 bytes)"));
    }

    #[test]
    fn peek_labels_garbage_and_unknown_types() {
        assert_eq!(peek(&[0xff, 0x00, 0x13]).kind, "invalid");
        assert_eq!(peek(&[]).kind, "invalid");
        let mut buf = Vec::new();
        ciborium::into_writer(
            &ciborium::Value::Map(vec![("type".into(), "made-up".into())]),
            &mut buf,
        )
        .unwrap();
        assert_eq!(peek(&buf).kind, "other");
        let mut buf = Vec::new();
        ciborium::into_writer(
            &ciborium::Value::Map(vec![("type".into(), 7.into())]),
            &mut buf,
        )
        .unwrap();
        assert_eq!(peek(&buf).kind, "invalid");
    }

    #[test]
    fn error_frames_are_error_messages() {
        let f = error_frame(&PeerId::from("server"), Some("peer"), "too big");
        assert!(matches!(Message::decode(&f), Ok(Message::Error { .. })));
        let h = peek(&f);
        assert_eq!(h.kind, "error");
        assert_eq!(h.sender_id.as_deref(), Some("server"));
    }
}
